package cachedb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/internal/mapped"
	"github.com/sovdns/sovdns/resolver"
)

// DefaultWriteBehind is how far the file lags behind the cache at most when
// WriterConfig.WriteBehind is not set.
const DefaultWriteBehind = 2 * time.Second

// Bounds of one write-behind batch, one bbolt transaction: at most
// batchEntries puts and deletes, or batchBytes of keys and records,
// whichever comes first. bbolt's commit (laying the new pages out, then
// writing them) runs in one piece that the writer's pauses cannot cut: at
// 4,096 entries it held the processor for 2-4 ms, and on one CPU the
// answers queued behind it (a stream of 5,000 misses a second had its
// slow answers every 2 s, in step with the rounds). At 1,024 a commit
// holds it some 0.6 ms (1.1 at most, traced), and costs no CPU that
// shows (bench/resolver-ab.sh: 1.003 times 4,096's per miss); at 512,
// 0.4 ms, but each commit's own work (two syncs, the meta page) made a
// miss cost 3.5 % more at full load.
const (
	batchEntries = 1024
	batchBytes   = 512 << 10
)

// infraEvery is how often the servers' round-trip times are written when
// they changed (island mode, a PersistNow and the shutdown write them at
// once). Copying the table takes its lock, which upstream queries share.
const infraEvery = 10 * time.Second

// retryOpen is how long a writer that could not open its file waits before
// trying again.
const retryOpen = 30 * time.Second

// maxKeptKeys bounds the room for keys the writer keeps from one round to
// the next: what the cache's change sets hold when they are taken as they
// fill.
const maxKeptKeys = resolver.Shards * resolver.FillingChanges

// recordRoom is the room a record is packed in before it is copied to
// the log: a larger one has its own.
const recordRoom = 4096

// minKeptKeys is the room for keys kept however few a round had.
const minKeptKeys = 1024

// quietRounds is how many rounds in a row must need a quarter of the
// keys' room or less for the room to be let go (release): with
// write_behind at 2 s, some 8 s after a stream of changes ends.
const quietRounds = 4

// maxRetryKeys bounds the keys a writer keeps after a failed batch; past
// it, every entry is marked changed in the cache instead.
const maxRetryKeys = 1 << 18

// compactLog is the default of WriterConfig.CompactLog: the size of the
// log below which it is never folded into a new snapshot.
const compactLog = 32 << 20

// compactForce is how many times the larger of CompactLog and the
// snapshot's size the log may grow to before it is folded in whatever its
// records (see dueCompaction).
const compactForce = 8

// WriterConfig configures a Writer.
type WriterConfig struct {
	// WriteBehind is the most the file lags behind the cache: the changes
	// are written every WriteBehind. Zero turns write-behind off: the
	// whole file is saved every Interval and at the end instead.
	WriteBehind time.Duration
	// Interval: with write-behind, how often the file is written anew
	// from the cache when changes were logged since (a new snapshot, the
	// log emptied: entries past their stale window leave the file); without,
	// how often the file is saved. Zero or less: never, only at the end
	// (and, with write-behind, when the log's records the cache no longer
	// needs outweigh the rest: see CompactLog).
	Interval time.Duration
	// Trigger, if not nil, asks for the changes to be written at once
	// (the resolver's Config.PersistNow).
	Trigger *Trigger
	// CompactLog is the size of the log (bytes) below which it is never
	// folded into a new snapshot; 0 means 32 MiB. Past it, the log is
	// folded in when the records the cache no longer needs (replaced or
	// deleted since they were written) outweigh those it does.
	CompactLog int64
	// Lend, if not nil, is called before each of the writer's waits on
	// the disk (a commit, a sync of a new file), and what it returns
	// after it: it may give the scheduler another processor meanwhile,
	// so that the listeners run beside the wait (procs.Owner.Lend).
	Lend    func() (giveBack func())
	Log     *slog.Logger // nil: discard
	Metrics *Metrics     // nil: none
}

// Trigger asks a Writer to write at once. It is safe for concurrent use
// and Pull never blocks: pulls made while one is pending are merged.
type Trigger struct{ ch chan string }

// NewTrigger returns a Trigger for one Writer.
func NewTrigger() *Trigger { return &Trigger{ch: make(chan string, 1)} }

// Pull asks for the changes to be written now; reason is logged. It has
// the signature of the resolver's Config.PersistNow.
func (t *Trigger) Pull(reason string) {
	if t == nil {
		return
	}
	select {
	case t.ch <- reason:
	default:
	}
}

func (t *Trigger) c() <-chan string {
	if t == nil {
		return nil
	}
	return t.ch
}

// FileStatus says how far the cache file is behind the cache.
type FileStatus struct {
	Path        string
	WriteBehind time.Duration // 0: off, the file is saved whole every Interval
	Open        bool          // write-behind: the file is open and being written
	// Pending is how many changed entries are not yet in the file (with
	// write-behind; else 0: not counted), and Lag how long ago the oldest
	// change not yet in the file was made (without write-behind: since the
	// last save); 0 when the file is up to date.
	Pending   int
	Lag       time.Duration
	LastWrite time.Time // wall clock of the last batch or save written
	Batches   uint64    // transactions committed by write-behind
	Bytes     uint64    // bytes written by write-behind (pages and meta pages)
	Fsyncs    uint64    // fsyncs made by write-behind
	Saves     uint64    // whole files written (snapshots with write-behind, else the saves every Interval)
	Errors    uint64    // failed writes or saves
	LastError string    // the last error, until a write succeeds
}

// Writer keeps the cache file up to date with a cache: with write-behind,
// the changes the cache records are written every WriteBehind, in bounded
// batches of one bbolt transaction each, so that a crash at any moment
// loses at most that window; without, the whole file is saved every
// Interval. Run does the work; Status may be called from any goroutine.
type Writer struct {
	path string
	c    *resolver.Cache
	r    *resolver.Resolver
	cfg  WriterConfig
	log  *slog.Logger
	m    *Metrics

	// Owned by Run's goroutine.
	db        *bolt.DB
	pageSize  int
	seq       uint64 // the last key of the log
	logBytes  int64  // bytes of values in the log
	snapBytes int64  // size of the file when its snapshot was written
	// The records of the snapshot, and the puts and deletes of the log
	// since: what the file holds, of which the cache needs one record for
	// each entry it has (dueCompaction).
	snapRecords, logPuts, logDeletes int64
	keys                             []resolver.CacheKey
	held                             []resolver.HeldEntry
	quietRounds                      int // rounds in a row that needed a quarter of keys' room or less (release)
	arena                            []byte
	record                           []byte                           // room a held entry's record is packed in, before it is copied to arena
	infra                            map[netip.AddrPort]time.Duration // as in the file
	infraAt                          time.Time
	island                           bool
	islandSet                        bool // island holds what the file says
	retry                            map[resolver.CacheKey]struct{}
	retryLost                        map[int]bool
	openAfter                        time.Time
	failing                          bool
	pace                             *pacer // pauses between slices of a round's work

	mu sync.Mutex // guards st and the fields below
	st FileStatus
	// Changes taken from the cache and not yet committed, and when the
	// oldest of them was made.
	inflight      int
	inflightSince time.Time
}

// NewWriter returns a writer of the file at path. With write-behind it
// starts the cache's change tracking (resolver.Cache.TrackChanges): call
// it after Load and before the cache is used, so that every change after
// the load is recorded. r may be nil (no infrastructure table, no island
// state).
func NewWriter(path string, c *resolver.Cache, r *resolver.Resolver, cfg WriterConfig) *Writer {
	if cfg.WriteBehind < 0 {
		cfg.WriteBehind = 0
	}
	if cfg.CompactLog <= 0 {
		cfg.CompactLog = compactLog
	}
	w := &Writer{path: path, c: c, r: r, cfg: cfg, log: cfg.Log, m: cfg.Metrics, pace: newPacer(cfg.Lend)}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.st = FileStatus{Path: path, WriteBehind: cfg.WriteBehind}
	if cfg.WriteBehind > 0 {
		c.TrackChanges()
	} else {
		// The lag without write-behind is counted from the last save; at
		// start, the file was just loaded into the cache.
		w.st.LastWrite = time.Now()
	}
	w.m.setSource(w)
	return w
}

// Run writes until ctx ends, then writes what is left (with write-behind,
// the changes; without, the whole file), closes the file and returns; the
// caller waits for it before exiting.
func (w *Writer) Run(ctx context.Context) {
	if w.cfg.WriteBehind <= 0 {
		w.runSaves(ctx)
		return
	}
	defer w.close()
	w.flush(true, "start")
	tick := time.NewTicker(w.cfg.WriteBehind)
	defer tick.Stop()
	var renew <-chan time.Time
	if w.cfg.Interval > 0 {
		t := time.NewTicker(w.cfg.Interval)
		defer t.Stop()
		renew = t.C
	}
	for {
		select {
		case <-ctx.Done():
			// The listeners have stopped: nothing to pause for.
			w.pace.on = false
			w.flush(true, "shutdown")
			w.mu.Lock()
			st := w.st
			w.mu.Unlock()
			w.log.Info("resolver cache file up to date", "path", w.path, "pending", st.Pending, "batches", st.Batches, "bytes", st.Bytes, "errors", st.Errors)
			return
		case reason := <-w.cfg.Trigger.c():
			w.flush(true, reason)
		case <-tick.C:
			w.flush(false, "")
		case <-w.c.ChangesFilling():
			// A set of changes is filling: taken now, they neither grow
			// the sets nor overflow them (which would mean writing the
			// whole file again).
			w.flush(false, "")
		case <-renew:
			if w.flush(false, "") && w.logBytes > 0 {
				if err := w.compact(); err != nil {
					w.failed(err, "resolver cache file not written anew")
				}
			}
		}
	}
}

// runSaves saves the whole file every Interval and at the end.
func (w *Writer) runSaves(ctx context.Context) {
	var tick <-chan time.Time
	if w.cfg.Interval > 0 {
		t := time.NewTicker(w.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			w.pace.on = false
			w.save(true)
			return
		case <-tick:
			w.save(false)
		}
	}
}

// save writes the whole file, keeping a format 1 file it replaces.
func (w *Writer) save(final bool) bool {
	if v1, err := keepV1(w.path); err != nil {
		w.failed(err, "resolver cache not saved")
		w.m.observeSave(Stats{}, 0, err)
		return false
	} else if v1 {
		w.log.Info("resolver cache file converted to the current format; the format 1 file is kept", "path", w.path, "kept", w.path+backupSuffix)
	}
	start := time.Now()
	st, err := save(w.path, w.c, w.r, w.pace)
	took := time.Since(start)
	w.m.observeSave(st, took, err)
	if err != nil {
		w.failed(err, "resolver cache not saved")
		return false
	}
	w.mu.Lock()
	w.st.Saves++
	w.st.LastWrite = time.Now()
	w.st.LastError = ""
	w.mu.Unlock()
	w.failing = false
	lvl := slog.LevelDebug
	if final {
		lvl = slog.LevelInfo
	}
	w.log.Log(context.Background(), lvl, "resolver cache saved", "path", w.path, "entries", st.Entries, "servers", st.Servers, "bytes", st.Bytes, "took", took)
	return true
}

// failed counts and logs an error: a warning for the first of a series,
// then at debug level until a write succeeds.
func (w *Writer) failed(err error, msg string) {
	w.mu.Lock()
	w.st.Errors++
	w.st.LastError = err.Error()
	w.mu.Unlock()
	if w.m != nil {
		w.m.FileErrors.Inc()
	}
	if w.failing {
		w.log.Debug(msg, "path", w.path, "err", err)
		return
	}
	w.failing = true
	w.log.Warn(msg, "path", w.path, "err", err)
}

// succeeded ends a series of failures.
func (w *Writer) succeeded() {
	if w.failing {
		w.failing = false
		w.log.Info("resolver cache file written again", "path", w.path)
	}
	w.mu.Lock()
	w.st.LastError = ""
	w.mu.Unlock()
}

// open opens the file for write-behind, after writing it anew from the
// cache (a snapshot, with an empty log): a format 1 file is kept as
// path.v1 first, a damaged one set aside as path.bad. Entries of the old
// file the cache did not load are not in the new one.
func (w *Writer) open() error {
	v1, err := keepV1(w.path)
	if err != nil {
		return err
	}
	if _, statErr := os.Stat(w.path); !v1 && statErr == nil {
		db, err := openRW(w.path)
		switch {
		case errors.Is(err, ErrCorrupt) || errors.Is(err, ErrBadVersion):
			bad := w.path + ".bad"
			if rerr := os.Rename(w.path, bad); rerr != nil {
				return fmt.Errorf("%w (and it cannot be set aside: %w)", err, rerr)
			}
			w.log.Warn("resolver cache file unusable: set aside, and written anew from the cache", "path", w.path, "kept", bad, "err", err)
		case err != nil:
			return err // locked by another process: not replaced
		default:
			db.Close()
		}
	}
	if err := w.snapshot(); err != nil {
		return err
	}
	if v1 {
		w.log.Info("resolver cache file converted to the current format; the format 1 file is kept", "path", w.path, "kept", w.path+backupSuffix)
	}
	return nil
}

// snapshot writes the file anew from the cache (Save) and opens it.
func (w *Writer) snapshot() error {
	w.close()
	if err := w.saveWhole(); err != nil {
		return err
	}
	db, err := openRW(w.path)
	if err != nil {
		return err
	}
	w.db = db
	w.pageSize = db.Info().PageSize
	w.seq, w.logBytes, w.logPuts, w.logDeletes = 0, 0, 0, 0
	if info, err := os.Stat(w.path); err == nil {
		w.snapBytes = info.Size()
	}
	w.island, w.islandSet = w.r != nil && w.r.Island(), false
	err = db.View(func(tx *bolt.Tx) error {
		w.infra = readInfra(tx.Bucket(bucketInfra))
		return nil
	})
	if err != nil {
		return err
	}
	w.infraAt = time.Now()
	w.mu.Lock()
	w.st.Open = true
	w.mu.Unlock()
	return nil
}

// saveWhole writes the whole file from the cache (Save), counted as a save.
func (w *Writer) saveWhole() error {
	start := time.Now()
	st, err := save(w.path, w.c, w.r, w.pace)
	w.m.observeSave(st, time.Since(start), err)
	if err != nil {
		return err
	}
	w.snapRecords = int64(st.Entries)
	w.mu.Lock()
	w.st.Saves++
	w.st.LastWrite = time.Now()
	w.mu.Unlock()
	return nil
}

// openRW opens the file at path for writing and checks its format.
func openRW(path string) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if db != nil {
				db.Close()
			}
			db, err = nil, fmt.Errorf("resolver cache %s: %w: %v", path, ErrCorrupt, p)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, openError(path, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		if tx.Size() > info.Size() {
			return fmt.Errorf("%w: truncated to %d bytes of %d", ErrCorrupt, info.Size(), tx.Size())
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil || tx.Bucket(bucketCache) == nil || tx.Bucket(bucketInfra) == nil || tx.Bucket(bucketLog) == nil {
			return fmt.Errorf("%w: bucket missing", ErrCorrupt)
		}
		v := meta.Get(keyVersion)
		if len(v) != 4 {
			return fmt.Errorf("%w: no format version", ErrCorrupt)
		}
		// A format 2 file is opened to be replaced by a snapshot (open).
		if got := binary.BigEndian.Uint32(v); got != FormatVersion && got != formatV2 {
			return fmt.Errorf("%w %d (this build writes %d)", ErrBadVersion, got, FormatVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("resolver cache %s: %w", path, err)
	}
	return db, nil
}

func (w *Writer) close() {
	if w.db == nil {
		return
	}
	if err := w.db.Close(); err != nil {
		w.log.Warn("resolver cache file not closed cleanly", "path", w.path, "err", err)
	}
	w.db = nil
	w.mu.Lock()
	w.st.Open = false
	w.mu.Unlock()
}

// flush writes the changes taken from the cache, and the island state and
// the servers' RTTs when they changed (the RTTs at most every infraEvery,
// unless now is set). It reports whether everything was written.
func (w *Writer) flush(now bool, reason string) bool {
	if w.db == nil {
		if !now && time.Now().Before(w.openAfter) {
			return false
		}
		if err := w.open(); err != nil {
			w.close()
			w.openAfter = time.Now().Add(retryOpen)
			w.failed(err, "resolver cache file cannot be written: changes are kept in memory and written once it can")
			return false
		}
	}
	if reason != "" {
		w.log.Debug("resolver cache changes written at once", "reason", reason)
	}
	// The changes move from the cache's count to the writer's under w.mu,
	// which Status holds while it reads both: never seen in neither. The
	// take pauses between shards (a Status waits for it meanwhile).
	w.pace.start()
	w.mu.Lock()
	ch := w.c.TakeChangesPaced(resolver.CacheChanges{Keys: w.keys, Held: w.held}, w.pace.yield)
	keys, held := ch.Keys, ch.Held
	lost := ch.Lost
	oldest := ch.Oldest
	if len(w.retry) > 0 || len(w.retryLost) > 0 {
		keys, lost = w.mergeRetry(keys, lost)
		if !w.inflightSince.IsZero() && (oldest.IsZero() || w.inflightSince.Before(oldest)) {
			oldest = w.inflightSince
		}
	}
	w.inflight, w.inflightSince = len(keys), oldest
	w.mu.Unlock()

	island := w.r != nil && w.r.Island()
	var infra map[netip.AddrPort]time.Duration
	if w.r != nil && (now || time.Since(w.infraAt) >= infraEvery) {
		infra = w.r.ExportInfra()
		w.infraAt = time.Now()
	}
	infraPut, infraDel := w.infraDiff(infra)
	if len(keys) == 0 && len(lost) == 0 && w.islandSet && island == w.island && len(infraPut)+len(infraDel) == 0 {
		w.release(keys, held)
		w.setInflight(0, time.Time{})
		return true
	}

	var done int
	var err error
	if len(lost) > 0 {
		// Changes not all recorded: the file is written anew, with
		// everything the cache holds now.
		err = w.snapshot()
		if err == nil {
			done = len(keys)
		}
	} else {
		done, err = w.writeKeys(keys, held, island, infraPut, infraDel)
		if err == nil && w.dueCompaction() {
			err = w.compact()
		}
	}
	if err != nil {
		w.keepForRetry(keys[done:], lost, oldest)
		w.failed(err, "resolver cache changes not written: kept for the next batch")
		w.release(keys, held)
		return false
	}
	if len(lost) == 0 {
		w.island, w.islandSet = island, true
		if infra != nil {
			w.infra = infra
		}
	}
	w.release(keys, held)
	w.setInflight(0, time.Time{})
	w.succeeded()
	// The pages the batch read on its way through the file's tree are not
	// read again before the next batch: kept mapped, a stream of changes
	// spread over the tree kept much of the file resident (up to 19 MB
	// after a cold pass of 300,000 names).
	if err := mapped.Release(w.db); err != nil {
		w.log.Debug("resolver cache file mapping not released", "err", err)
	}
	return true
}

// release keeps keys' and held's arrays for the next round, emptied (the
// names and entries let go), unless this round held whole shards
// rewritten, or the last quietRounds rounds each needed a quarter of them
// or less: the changes have slowed down (at rest, none), and the arrays a
// stream of misses grew (some 3-6 MiB) are let go until another needs
// them. The bound is on the round, not on the arrays' room, which
// appending took past it: a stream's rounds of about maxKeptKeys kept none
// and grew the arrays anew each time. And it takes several quiet rounds
// in a row: under a stream the rounds come uneven (a round taken as the
// sets fill, then one of the few changes made while it was written), and
// letting the arrays go at the first small one had the next grow them
// again, some 5 MiB copied each time.
func (w *Writer) release(keys []resolver.CacheKey, held []resolver.HeldEntry) {
	clear(keys)
	clear(held)
	w.keys, w.held = keys[:0], held[:0]
	c := cap(keys)
	switch {
	case len(keys) > maxKeptKeys:
		w.quietRounds = quietRounds
	case c > minKeptKeys && len(keys)*4 <= c:
		w.quietRounds++
	default:
		w.quietRounds = 0
	}
	if w.quietRounds >= quietRounds {
		w.keys, w.held, w.quietRounds = nil, nil, 0
	}
}

// mergeRetry adds the keys and shards of a failed round to this one's
// (after the round's held entries: ExportEntry says what they are now).
func (w *Writer) mergeRetry(keys []resolver.CacheKey, lost []int) ([]resolver.CacheKey, []int) {
	seen := make(map[resolver.CacheKey]struct{}, len(keys))
	for _, k := range keys {
		seen[k] = struct{}{}
	}
	for k := range w.retry {
		if _, ok := seen[k]; !ok {
			keys = append(keys, k)
		}
	}
	for s := range w.retryLost {
		lost = append(lost, s)
	}
	w.retry, w.retryLost = nil, nil
	return keys, lost
}

// keepForRetry keeps what a failed round did not write for the next one,
// within maxRetryKeys.
func (w *Writer) keepForRetry(keys []resolver.CacheKey, lost []int, oldest time.Time) {
	if len(w.retry)+len(keys) > maxRetryKeys {
		w.retry, w.retryLost = nil, nil
		w.c.MarkAllChanged()
		w.setInflight(0, time.Time{})
		return
	}
	if w.retry == nil {
		w.retry = make(map[resolver.CacheKey]struct{}, len(keys))
	}
	for _, k := range keys {
		w.retry[k] = struct{}{}
	}
	if len(lost) > 0 && w.retryLost == nil {
		w.retryLost = make(map[int]bool, len(lost))
	}
	for _, s := range lost {
		w.retryLost[s] = true
	}
	w.setInflight(len(w.retry), oldest)
}

func (w *Writer) setInflight(n int, since time.Time) {
	w.mu.Lock()
	w.inflight, w.inflightSince = n, since
	w.mu.Unlock()
}

// infraDiff returns the servers of now whose RTT differs from the file's,
// and the servers of the file no longer in now; nothing when now is nil.
func (w *Writer) infraDiff(now map[netip.AddrPort]time.Duration) (put map[netip.AddrPort]time.Duration, del []netip.AddrPort) {
	if now == nil {
		return nil, nil
	}
	for s, rtt := range now {
		if old, ok := w.infra[s]; !ok || old != rtt {
			if put == nil {
				put = make(map[netip.AddrPort]time.Duration)
			}
			put[s] = rtt
		}
	}
	for s := range w.infra {
		if _, ok := now[s]; !ok {
			del = append(del, s)
		}
	}
	return put, del
}

// writeKeys appends the current state of each key to the log, in batches,
// the last one with the island state and the servers' changes. done is how
// many keys were committed.
func (w *Writer) writeKeys(keys []resolver.CacheKey, held []resolver.HeldEntry, island bool, infraPut map[netip.AddrPort]time.Duration, infraDel []netip.AddrPort) (done int, err error) {
	i := 0
	for {
		b, err := w.begin()
		if err != nil {
			return done, err
		}
		size := 0
		n := 0
		seq := w.seq
		// bbolt keeps keys and values until the commit: they are in the
		// arena, which is only reset after it.
		chunk := -1 // where the chunk under way starts in the arena
		put := func() error {
			v := w.arena[chunk:len(w.arena):len(w.arena)]
			ks := len(w.arena)
			seq++
			w.arena = binary.BigEndian.AppendUint64(w.arena, seq)
			key := w.arena[ks:len(w.arena):len(w.arena)]
			size += len(v)
			chunk = -1
			return b.log.Put(key, v)
		}
		// One time for the batch's records: they are built within
		// milliseconds, and their TTLs are in seconds.
		now := w.c.Now()
		for ; i < len(keys) && n < batchEntries && size < batchBytes; i++ {
			k := keys[i]
			var rec resolver.CacheRecord
			var ok bool
			if i < len(held) {
				if w.record == nil {
					w.record = make([]byte, 0, recordRoom)
				}
				rec, ok = w.c.ExportHeldInto(held[i], w.record, now)
			} else {
				rec, ok = w.c.ExportEntry(k) // kept from a failed round
			}
			if chunk < 0 {
				chunk = len(w.arena)
				w.arena = appendChunk(w.arena)
			}
			start := len(w.arena)
			w.arena, err = appendChange(w.arena, k, rec, !ok)
			if err != nil {
				// Nothing the cache holds is this large: deleted.
				ok = false
				w.arena, _ = appendChange(w.arena[:start], k, rec, true)
			}
			b.count(ok)
			n++
			w.pace.step()
			if len(w.arena)-chunk >= chunkBytes {
				if err := put(); err != nil {
					b.rollback()
					return done, err
				}
			}
		}
		if chunk >= 0 {
			if err := put(); err != nil {
				b.rollback()
				return done, err
			}
		}
		last := i == len(keys)
		if last {
			if err := b.infra(infraPut, infraDel); err != nil {
				b.rollback()
				return done, err
			}
		}
		if err := b.commit(island); err != nil {
			return done, err
		}
		w.pace.yield()
		w.seq = seq
		w.logBytes += int64(size)
		w.logPuts += int64(b.puts)
		w.logDeletes += int64(b.dels)
		done = i
		w.arena = w.arena[:0]
		if cap(w.arena) > 2*batchBytes {
			w.arena = nil
		}
		w.setInflight(len(keys)-done, w.inflightSinceOr())
		if last {
			return done, nil
		}
	}
}

func (w *Writer) inflightSinceOr() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inflightSince
}

// batch is one write transaction of the writer.
type batch struct {
	w          *Writer
	tx         *bolt.Tx
	log        *bolt.Bucket
	puts, dels int
}

func (w *Writer) begin() (*batch, error) {
	tx, err := w.db.Begin(true)
	if err != nil {
		return nil, err
	}
	log := tx.Bucket(bucketLog)
	// Keys only ever grow: full pages, as bbolt's sequential writes want.
	log.FillPercent = 1
	return &batch{w: w, tx: tx, log: log}, nil
}

// count counts a change written to the log: a put, or a delete.
func (b *batch) count(put bool) {
	if put {
		b.puts++
	} else {
		b.dels++
	}
}

func (b *batch) infra(put map[netip.AddrPort]time.Duration, del []netip.AddrPort) error {
	bk := b.tx.Bucket(bucketInfra)
	for s, rtt := range put {
		k, err := s.MarshalBinary()
		if err != nil {
			continue
		}
		if err := bk.Put(k, binary.BigEndian.AppendUint64(nil, uint64(rtt))); err != nil {
			return err
		}
	}
	for _, s := range del {
		k, err := s.MarshalBinary()
		if err != nil {
			continue
		}
		if err := bk.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (b *batch) rollback() { b.tx.Rollback() }

// commit writes the meta keys and commits, and counts the batch: bbolt
// writes the transaction's new pages and syncs, then the meta page and
// syncs again.
func (b *batch) commit(island bool) error {
	w := b.w
	if err := putMeta(b.tx, w.c.Now(), island); err != nil {
		b.tx.Rollback()
		return err
	}
	if err := w.pace.disk(b.tx.Commit); err != nil {
		return err
	}
	ts := b.tx.Stats()
	written := uint64(ts.GetPageAlloc()) + uint64(w.pageSize)
	now := time.Now()
	w.mu.Lock()
	w.st.Batches++
	w.st.Bytes += written
	w.st.Fsyncs += 2
	w.st.LastWrite = now
	w.mu.Unlock()
	if m := w.m; m != nil {
		m.Batches.Inc()
		m.WrittenBytes.Add(float64(written))
		m.Fsyncs.Add(2)
		m.Changes.WithLabelValues("put").Add(float64(b.puts))
		m.Changes.WithLabelValues("delete").Add(float64(b.dels))
		m.LastWrite.Set(float64(now.UnixNano()) / 1e9)
	}
	return nil
}

// dueCompaction reports whether the log is to be folded into a new
// snapshot: past CompactLog, when what the file holds that the cache no
// longer needs (records replaced or deleted since they were written, and
// the deletions themselves) outweighs what it needs, one record for each
// entry the cache holds. A log of new entries only, a cache filling, has
// nothing to fold however long it grows: folding it would write it all
// again, and did so at every doubling of the log (a tenth of a filling
// resolver's CPU). The weights are counts of records times their mean
// size in the file; as the cache's count may include entries past their
// stale window that the file would drop, a log past compactForce times the
// larger of CompactLog and the snapshot is folded in whatever it holds.
func (w *Writer) dueCompaction() bool {
	limit := w.cfg.CompactLog
	if w.logBytes <= limit {
		return false
	}
	if w.logBytes > compactForce*max(limit, w.snapBytes) {
		return true
	}
	records := w.snapRecords + w.logPuts + w.logDeletes
	if records == 0 {
		return false
	}
	live := min(int64(w.c.Stats().Entries), w.snapRecords+w.logPuts)
	mean := (w.snapBytes + w.logBytes) / records
	return (records-live)*mean > max(limit, live*mean)
}

// compact writes the file anew from the cache: a new snapshot, renamed
// over the file, with an empty log. Changes made meanwhile stay recorded
// in the cache and are logged after.
func (w *Writer) compact() error {
	size := w.snapBytes
	logged := w.logBytes
	if err := w.snapshot(); err != nil {
		return err
	}
	w.log.Debug("resolver cache file written anew", "path", w.path, "log_bytes", logged, "was", size, "now", w.snapBytes)
	return nil
}

// Status says how far the file is behind the cache.
func (w *Writer) Status() FileStatus {
	var pending int
	var oldest time.Time
	w.mu.Lock()
	if w.cfg.WriteBehind > 0 {
		pending, oldest = w.c.PendingChanges()
	}
	now := time.Now()
	st := w.st
	if w.cfg.WriteBehind > 0 {
		pending += w.inflight
		if !w.inflightSince.IsZero() && (oldest.IsZero() || w.inflightSince.Before(oldest)) {
			oldest = w.inflightSince
		}
	} else {
		oldest = st.LastWrite
	}
	w.mu.Unlock()
	st.Pending = pending
	if !oldest.IsZero() && now.After(oldest) {
		st.Lag = now.Sub(oldest)
	}
	return st
}
