// Package cachedb keeps the resolver's cache in a bbolt file across
// restarts and crashes, so that a resolver started during an outage still
// answers what it knew: the message and RRset entries (name servers, glue,
// DNSKEY and DS included), with their DNSSEC status, the servers'
// round-trip times and whether the resolver was an island.
//
// Entries keep their absolute expiry: one that expired while the server was
// down comes back stale, served only by serve-stale (the cache's
// StaleWindow), and one past its stale window is dropped.
//
// A Writer (writer.go) keeps the file a few seconds behind the cache: the
// cache records which entries changed, and the writer appends their new
// state (or their deletion) to the file's log in bounded batches, one
// bbolt transaction each, off the query path. Save writes a whole new file
// beside the old one and renames it over it: the writer's snapshots (which
// also convert files of the earlier format), or, with write-behind off, the
// periodic saves. Load is meant for start: a missing
// file is an empty cache, and a damaged one is an error the caller logs
// before setting the file aside and starting with an empty cache.
package cachedb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/sovdns/sovdns/internal/arena"
	"github.com/sovdns/sovdns/internal/progress"
	"github.com/sovdns/sovdns/resolver"
)

// lockTimeout bounds the wait for a file another process holds.
const lockTimeout = time.Second

// commitBytes is how much record data one write transaction of Save takes
// before it is committed and another begun, bounding the memory a save
// holds: about twice this, the records and bbolt's nodes for them (the
// file is synced once, at the end, so more commits cost little).
const commitBytes = 4 << 20

// maxServers bounds the servers read from a file (the resolver keeps at
// most as many).
const maxServers = 1 << 16

// tempPattern names the temporary files of a save, beside the file.
func tempPattern(path string) string { return filepath.Base(path) + ".tmp-*" }

// Stats says what a Save or a Load did.
type Stats struct {
	Entries int // cache records written (Save) or imported (Load)
	Stale   int // Load: imported entries already expired, served only stale
	// Dropped (Load) counts sound records not imported: past their stale
	// window, superseded by a fresher entry, too large for a shard, or
	// beyond what the cache can hold.
	Dropped int
	Bad     int       // Load: damaged records skipped
	Servers int       // infrastructure entries written or imported
	Bytes   int64     // Save: the file's size
	SavedAt time.Time // when the file was last written, on the cache's clock
	Island  bool      // the resolver was in island mode when the file was written
	Version uint32    // Load: the file's format version (0: no file)
}

// Save writes the entries of c that can still be served and, if r is not
// nil, r's infrastructure table to a new file at path, in the current
// format, replacing the file there.
//
// The file is first written under a temporary name in the same directory,
// synced, then renamed over path, and the directory synced: a crash at any
// point leaves either the old file or the new one. The file holds what the
// cache holds, so its size follows the cache's MaxBytes.
func Save(path string, c *resolver.Cache, r *resolver.Resolver) (st Stats, err error) {
	return save(path, c, r, nil)
}

// save is Save with the pauses of p (nil: none) between slices of the work.
func save(path string, c *resolver.Cache, r *resolver.Resolver, p *pacer) (st Stats, err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPattern(path))
	if err != nil {
		return Stats{}, fmt.Errorf("save resolver cache: %w", err)
	}
	tmp := f.Name()
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()

	var size int64
	st, size, err = write(tmp, c, r, p)
	if err == nil {
		// bbolt grows its file ahead of its pages; the pages past the
		// last one in use are never read.
		err = os.Truncate(tmp, size)
	}
	if err == nil {
		err = p.disk(func() error { return syncFile(tmp) })
	}
	if err != nil {
		return Stats{}, fmt.Errorf("save resolver cache to %s: %w", tmp, err)
	}
	st.Bytes = size
	if err := os.Rename(tmp, path); err != nil {
		return Stats{}, fmt.Errorf("save resolver cache: %w", err)
	}
	if err := p.disk(func() error { return syncDir(dir) }); err != nil {
		return Stats{}, fmt.Errorf("save resolver cache: %w", err)
	}
	return st, nil
}

// write fills the new file at path, and returns the size of the pages in
// use.
func write(path string, c *resolver.Cache, r *resolver.Resolver, p *pacer) (st Stats, size int64, err error) {
	// The file is synced once, at the end: until the rename nobody reads
	// it. The records take less room than the cache's estimate of its
	// size, so a map of that size spares the remaps (each of which copies
	// every record written so far) as the file grows; it is address space
	// only.
	mmap := min(max(c.Stats().Bytes+1<<20, 1<<20), 1<<30)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, NoSync: true, NoFreelistSync: true,
		InitialMmapSize: int(mmap)})
	if err != nil {
		return Stats{}, 0, err
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()

	w := &batchWriter{db: db, p: p}
	if err := w.begin(); err != nil {
		return Stats{}, 0, err
	}
	defer w.rollback()
	var seq, national uint64
	var kept arena.Arena // bbolt keeps the keys and values until the commit
	var scratch []byte
	p.start()
	err = c.Export(func(rec resolver.CacheRecord) error {
		p.step()
		v, err := appendValue(scratch[:0], rec)
		if err != nil {
			return nil // nothing the cache holds is this large; skip it
		}
		scratch = v
		// Growing keys: bbolt appends (random keys inserted in one
		// transaction cost it time quadratic in their number).
		seq++
		st.Entries++
		if rec.National && national == seq-1 {
			national++
		}
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], seq)
		return w.put(kept.Cut(k[:]), kept.Cut(v))
	})
	if err != nil {
		return Stats{}, 0, err
	}

	if r != nil {
		infra := w.tx.Bucket(bucketInfra)
		for s, rtt := range r.ExportInfra() {
			k, err := s.MarshalBinary()
			if err != nil {
				continue
			}
			if err := infra.Put(k, binary.BigEndian.AppendUint64(nil, uint64(rtt))); err != nil {
				return Stats{}, 0, err
			}
			st.Servers++
		}
	}
	st.SavedAt = c.Now()
	st.Island = r != nil && r.Island()
	if err := putMeta(w.tx, st.SavedAt, st.Island); err != nil {
		return Stats{}, 0, err
	}
	if err := w.tx.Bucket(bucketMeta).Put(keyNational, binary.BigEndian.AppendUint64(nil, national)); err != nil {
		return Stats{}, 0, err
	}
	if err := w.commit(); err != nil {
		return Stats{}, 0, err
	}
	if err := db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		return Stats{}, 0, err
	}
	return st, size, nil
}

// putMeta writes the meta bucket's keys: the format version, when, and the
// island state.
func putMeta(tx *bolt.Tx, savedAt time.Time, island bool) error {
	meta := tx.Bucket(bucketMeta)
	is := byte(0)
	if island {
		is = 1
	}
	if err := meta.Put(keyVersion, binary.BigEndian.AppendUint32(nil, FormatVersion)); err != nil {
		return err
	}
	if err := meta.Put(keySavedAt, binary.BigEndian.AppendUint64(nil, uint64(savedAt.UnixNano()))); err != nil {
		return err
	}
	return meta.Put(keyIsland, []byte{is})
}

// createBuckets makes the buckets of the current format.
func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketCache, bucketInfra, bucketLog} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// batchWriter puts records into the cache bucket, committing every
// commitBytes so that a large cache is not held twice in memory.
type batchWriter struct {
	db    *bolt.DB
	p     *pacer // lends for the commits
	tx    *bolt.Tx
	b     *bolt.Bucket
	bytes int
}

func (w *batchWriter) begin() error {
	tx, err := w.db.Begin(true)
	if err != nil {
		return err
	}
	w.tx = tx
	if err := createBuckets(tx); err != nil {
		return err
	}
	w.b = tx.Bucket(bucketCache)
	w.b.FillPercent = 1 // keys only ever grow: pack the pages full
	w.bytes = 0
	return nil
}

func (w *batchWriter) put(k, v []byte) error {
	if err := w.b.Put(k, v); err != nil {
		return err
	}
	w.bytes += len(k) + len(v)
	if w.bytes < commitBytes {
		return nil
	}
	if err := w.commit(); err != nil {
		return err
	}
	return w.begin()
}

func (w *batchWriter) commit() error {
	tx := w.tx
	w.tx = nil
	return w.p.disk(tx.Commit)
}

func (w *batchWriter) rollback() {
	if w.tx != nil {
		w.tx.Rollback()
		w.tx = nil
	}
}

// syncFile makes the contents of the file at path durable.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// fileData is what Load read from a file, copied out of it.
type fileData struct {
	version uint32
	savedAt time.Time
	records []resolver.CacheRecord
	servers map[netip.AddrPort]time.Duration
	dropped int // records not read: beyond the cache's capacity
	bad     int // records that could not be decoded
	island  bool
}

// Load reads the file at path into c and, if r is not nil, r's
// infrastructure table. A missing file is not an error: there is nothing to
// load. Any error means nothing was loaded (the caller logs it and starts
// with the cache as it was): a file of another format version
// (ErrBadVersion), a damaged file (ErrCorrupt: bbolt's structure is wrong,
// or a format 1 file's checksum), one locked by another process for longer
// than a second (ErrLocked), or one that cannot be read. Damaged records
// in a sound file (a bad checksum or framing) and records the cache
// refuses (resolver.ErrBadRecord) are skipped and counted in Stats.Bad.
//
// Both formats are read: the current one, and format 1 (sealed files
// rewritten whole at each save) that earlier versions wrote; Stats.Version
// says which. Once the records read add up to the cache's capacity, the
// rest are counted as dropped and not read. Load also removes the
// temporary files a save interrupted by a crash left beside path.
func Load(path string, c *resolver.Cache, r *resolver.Resolver) (Stats, error) {
	return LoadProgress(path, c, r, nil)
}

// LoadProgress is Load that shows on prog how far it has come: the
// records read from the file, then those put in the cache.
func LoadProgress(path string, c *resolver.Cache, r *resolver.Resolver, prog *progress.Progress) (Stats, error) {
	removeTemps(path)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return Stats{}, nil
	}
	v1, err := isV1(path)
	if err != nil {
		return Stats{}, fmt.Errorf("resolver cache: %w", err)
	}
	if v1 {
		if err := verify(path); err != nil {
			return Stats{}, fmt.Errorf("resolver cache %s: %w", path, err)
		}
	}
	bar := prog.Start("read resolver cache", 0, "records")
	data, err := read(path, c.Capacity(), v1, bar)
	bar.Finish()
	if err != nil {
		return Stats{}, err
	}
	st := Stats{SavedAt: data.savedAt, Dropped: data.dropped, Bad: data.bad, Island: data.island, Version: data.version}
	now := c.Now()
	bar = prog.Start("restore resolver cache", int64(len(data.records)), "records")
	defer bar.Finish()
	evictions := c.Stats().Evictions
	count := func(rec resolver.CacheRecord, err error) {
		bar.Add(1)
		switch {
		case err == nil:
			st.Entries++
			if !rec.Expire.After(now) {
				st.Stale++
			}
		case errors.Is(err, resolver.ErrBadRecord):
			st.Bad++
		default:
			st.Dropped++
		}
	}
	// NS RRsets first, as Export gives them: the cache keeps the addresses
	// of national name servers (whatever their age) only once it holds an
	// NS RRset naming them, and the log has its changes in any order. Each
	// is then put in its place among the rest (Touch), or imported again
	// there if the records before it evicted it (its eviction is counted,
	// and so is its return): the cache keeps the order of use the file
	// has, in which a cache that cannot hold all evicts.
	for _, rec := range data.records {
		if isNS(rec) {
			count(rec, c.ImportRecord(rec))
		}
	}
	for _, rec := range data.records {
		if !isNS(rec) {
			count(rec, c.ImportRecord(rec))
		} else if !c.Touch(keyOf(rec)) && c.ImportRecord(rec) == nil {
			st.Entries++
		}
	}
	// A log may hold more than the cache can (readV2): the records put
	// first, the least recent, were evicted as the later ones came in.
	evicted := int(c.Stats().Evictions - evictions)
	st.Entries -= evicted
	st.Dropped += evicted
	if r != nil {
		st.Servers = r.ImportInfra(data.servers)
	}
	return st, nil
}

// isNS reports whether rec is an NS RRset.
func isNS(rec resolver.CacheRecord) bool {
	return rec.Kind == resolver.RecordRRset && rec.Qtype == dns.TypeNS
}

// isV1 reports whether the file at path ends with a format 1 trailer.
func isV1(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, sealed, err := trailer(f)
	return sealed, err
}

// read reads the file at path, of format 1 when v1 is set, else of the
// current format, taking at most capacity bytes of records; bar counts
// the records read.
func read(path string, capacity int64, v1 bool, bar *progress.Bar) (data fileData, err error) {
	// bbolt trusts the pages it reads: a damaged page can make it panic,
	// or fault on a page past the end of a truncated file. Both become an
	// error here, so a damaged file never stops a start.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			data, err = fileData{}, fmt.Errorf("resolver cache %s: %w: %v", path, ErrCorrupt, p)
		}
	}()

	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return fileData{}, openError(path, err)
	}
	defer db.Close()
	info, err := os.Stat(path)
	if err != nil {
		return fileData{}, fmt.Errorf("resolver cache: %w", err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Size() > info.Size() {
			return fmt.Errorf("%w: truncated to %d bytes of %d", ErrCorrupt, info.Size(), tx.Size())
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("%w: no %s bucket", ErrCorrupt, bucketMeta)
		}
		v := meta.Get(keyVersion)
		if len(v) != 4 {
			return fmt.Errorf("%w: no format version", ErrCorrupt)
		}
		data.version = binary.BigEndian.Uint32(v)
		switch {
		case v1 && data.version != formatV1:
			return fmt.Errorf("%w %d in a sealed file (this build reads %d sealed, %d unsealed)", ErrBadVersion, data.version, formatV1, FormatVersion)
		case !v1 && data.version == formatV1:
			return fmt.Errorf("%w: a format %d file without its checksum (cut short)", ErrCorrupt, formatV1)
		case !v1 && data.version != FormatVersion && data.version != formatV2:
			return fmt.Errorf("%w %d (this build reads %d, %d and %d)", ErrBadVersion, data.version, formatV1, formatV2, FormatVersion)
		}
		if v := meta.Get(keySavedAt); len(v) == 8 {
			data.savedAt = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		}
		if v := meta.Get(keyIsland); len(v) == 1 {
			data.island = v[0] == 1
		}
		national := int64(-1)
		if v := meta.Get(keyNational); len(v) == 8 && !v1 {
			national = int64(min(binary.BigEndian.Uint64(v), 1<<62))
		}
		cache, infra := tx.Bucket(bucketCache), tx.Bucket(bucketInfra)
		if cache == nil || infra == nil {
			return fmt.Errorf("%w: bucket missing", ErrCorrupt)
		}

		if v := meta.Get(keyEntries); v1 && len(v) == 8 {
			// Each entry takes more than 128 bytes of the cache's capacity,
			// which bounds the room a forged count could ask for.
			n := min(binary.BigEndian.Uint64(v), uint64(capacity/128))
			data.records = make([]resolver.CacheRecord, 0, int(n))
		}
		if v1 {
			var total int64
			cur := cache.Cursor()
			for k, v := cur.First(); k != nil; k, v = cur.Next() {
				bar.Add(1)
				if total += int64(len(v)); total > capacity {
					data.dropped++
					continue
				}
				rec, err := decodeRecord(v)
				if err != nil {
					data.bad++
					continue
				}
				data.records = append(data.records, rec)
			}
		} else {
			log := tx.Bucket(bucketLog)
			if log == nil {
				return fmt.Errorf("%w: bucket missing", ErrCorrupt)
			}
			readV2(cache, log, capacity, national, &data, bar)
		}

		data.servers = readInfra(infra)
		return nil
	})
	if err != nil {
		return fileData{}, fmt.Errorf("resolver cache %s: %w", path, err)
	}
	return data, nil
}

// readV2 reads the snapshot of a current format file and applies its log:
// the snapshot's records in the order they were saved, at most capacity
// bytes of them, then those the log put, in the order it put them (the
// most recent last, as the most recently used), up to logCapacity bytes
// in all. The log keeps the entries the cache evicted for room (the
// writer logs no deletion for them), so it may hold more than the cache
// can: the cache, filled in this order, keeps the most recent. Between
// two snapshots the file holds at most compactLog bytes, or the cache's
// capacity, of records the cache no longer does (dueCompaction); the
// bound is there, and for a file written with another setting.
//
// A snapshot that holds more than capacity bytes loses its least recent
// records. When national is known (meta/national: the snapshot's first
// national records are the national infrastructure, the rest goes from
// the least to the most recently used) those are the first records after
// the national ones. A file without it was written by an earlier version,
// shard by shard: the records kept are then the first capacity bytes.
func readV2(cache, log *bolt.Bucket, capacity, national int64, data *fileData, bar *progress.Bar) {
	logCapacity := capacity + max(capacity, compactLog)
	type slot struct {
		rec  resolver.CacheRecord
		size int64
		gone bool
	}
	var slots []slot
	cur := cache.Cursor()
	// excess is the bytes of the least recent records left out.
	var excess int64
	if national >= 0 {
		var sum int64
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			sum += int64(len(v))
		}
		excess = sum - capacity
	}
	// Records are bounded by capacity at every step.
	var total, seen int64
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		bar.Add(1)
		if seen++; seen > national && excess > 0 {
			excess -= int64(len(v))
			data.dropped++
			continue
		}
		rec, err := decodeValue(v)
		if err != nil {
			data.bad++
			continue
		}
		if total += int64(len(v)); total > capacity {
			total -= int64(len(v))
			data.dropped++
			continue
		}
		slots = append(slots, slot{rec: rec, size: int64(len(v))})
	}
	cur = log.Cursor()
	if k, _ := cur.First(); k == nil {
		data.records = make([]resolver.CacheRecord, len(slots))
		for i, s := range slots {
			data.records[i] = s.rec
		}
		return
	}
	// A log to apply: the entries by key (a snapshot holds each key once).
	index := make(map[resolver.CacheKey]int, len(slots))
	for i, s := range slots {
		index[keyOf(s.rec)] = i
	}
	add := func(k resolver.CacheKey, rec resolver.CacheRecord, size int64) {
		if i, ok := index[k]; ok && !slots[i].gone {
			slots[i].gone = true
			total -= slots[i].size
		}
		if total+size > logCapacity {
			data.dropped++
			delete(index, k)
			return
		}
		total += size
		index[k] = len(slots)
		slots = append(slots, slot{rec: rec, size: size})
	}
	apply := func(v []byte) {
		key, rec, deleted, err := decodeLog(v)
		if err != nil {
			data.bad++
			return
		}
		if deleted {
			if i, ok := index[key]; ok && !slots[i].gone {
				slots[i].gone = true
				total -= slots[i].size
			}
			delete(index, key)
			return
		}
		add(key, rec, int64(len(v)))
	}
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		bar.Add(1)
		data.bad += logChanges(v, apply)
	}
	data.records = make([]resolver.CacheRecord, 0, len(index))
	for _, s := range slots {
		if !s.gone {
			data.records = append(data.records, s.rec)
		}
	}
}

// readInfra reads the infrastructure bucket.
func readInfra(infra *bolt.Bucket) map[netip.AddrPort]time.Duration {
	out := make(map[netip.AddrPort]time.Duration)
	cur := infra.Cursor()
	for k, v := cur.First(); k != nil && len(out) < maxServers; k, v = cur.Next() {
		var s netip.AddrPort
		if len(v) != 8 || s.UnmarshalBinary(bytes.Clone(k)) != nil {
			continue
		}
		out[s] = time.Duration(binary.BigEndian.Uint64(v))
	}
	return out
}

// openError classifies an error of bolt.Open.
func openError(path string, err error) error {
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return fmt.Errorf("resolver cache %s: %w", path, ErrLocked)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("resolver cache: %w", err)
	}
	return fmt.Errorf("resolver cache %s: %w: %w", path, ErrCorrupt, err)
}

// keepV1 keeps a format 1 file at path as path+".v1" before it is
// replaced: as a second name of the same file where hard links work, else
// as a copy. An earlier backup is replaced. It reports whether path was a
// format 1 file.
func keepV1(path string) (bool, error) {
	v1, err := isV1(path)
	if err != nil || !v1 {
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return false, err
	}
	backup := path + backupSuffix
	if err := os.Remove(backup); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return true, fmt.Errorf("keep the format %d cache file: %w", formatV1, err)
	}
	if err := os.Link(path, backup); err != nil {
		if err := copyFile(path, backup); err != nil {
			return true, fmt.Errorf("keep the format %d cache file: %w", formatV1, err)
		}
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return true, fmt.Errorf("keep the format %d cache file: %w", formatV1, err)
	}
	return true, nil
}

// copyFile copies src to a new file dst, synced.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Sync()
}

// removeTemps removes the temporary files of saves that never finished.
func removeTemps(path string) {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), globEscape(tempPattern(path))))
	for _, m := range matches {
		os.Remove(m)
	}
}

// globEscape escapes the pattern characters of a file name, but for the
// final "*" of a temp pattern.
func globEscape(pattern string) string {
	name := strings.TrimSuffix(pattern, "*")
	var b strings.Builder
	for _, r := range name {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String() + "*"
}
