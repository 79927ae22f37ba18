// Package zonestore is the durable source of truth for zones: a bbolt file
// holding every zone's records, with master-file import and export. Every
// change is validated in full first and then committed in one bbolt
// transaction, so it lands whole or not at all. After each commit the store
// publishes the new immutable zone.Zone to its subscriber.
//
// On-disk layout (format version 1):
//
//	meta/version            "1"
//	zones/<origin>/info     created, updated: RFC 3339 times
//	zones/<origin>/names    key: zone.CanonicalKey(owner), 0x00 0x00 for the root; value: the owner's
//	                        records, each in uncompressed wire form, one after
//	                        the other (RRsets in type order, RRSIGs after the
//	                        set they cover)
//
// <origin> is the lower-case, fully qualified zone name. Keys in names are in
// RFC 4034 canonical order, so a cursor walks a zone as DNSSEC and zone
// transfers want it. Empty non-terminals are not stored: they are derived.
package zonestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/sovdns/sovdns/internal/arena"
	"github.com/sovdns/sovdns/internal/progress"
	"github.com/sovdns/sovdns/zone"
)

// FormatVersion is the on-disk layout version this code reads and writes.
const FormatVersion = "1"

var (
	bucketMeta  = []byte("meta")
	bucketZones = []byte("zones")
	bucketInfo  = []byte("info")
	bucketNames = []byte("names")
	keyVersion  = []byte("version")
	keyCreated  = []byte("created")
	keyUpdated  = []byte("updated")
	// keySummary holds what the zone list shows of the stored version
	// (serial, SOA expire, records, names: 4, 4, 8 and 8 octets), written with every
	// change, so that listing zones needs no zone built. A database
	// written before it has none: the zone is then built to be described.
	keySummary = []byte("summary")
)

// Options configure a Store.
type Options struct {
	// Timeout bounds the wait for the file lock; zero means one second.
	Timeout time.Duration
	// ReadOnly opens the file shared, for readers only.
	ReadOnly bool
	// SerialPolicy is how edits move the SOA serial; empty means increment.
	SerialPolicy SerialPolicy
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the store's messages; nil discards them.
	Logger *slog.Logger
	// JournalMaxBytes and JournalMaxAge bound each zone's journal; zero
	// means DefaultJournalMaxBytes, and no age limit.
	JournalMaxBytes int
	JournalMaxAge   time.Duration
	// Progress shows how far the signing of a whole zone has come; nil
	// shows nothing.
	Progress *progress.Progress
}

// Store is an open zone database. Its methods are safe for concurrent use;
// changes are serialised. Every change is journaled under the store's
// author (see As).
type Store struct {
	*core
	author string
}

// core is the state shared by a Store and the views As returns.
type core struct {
	db   *bolt.DB
	path string
	opts Options

	// mu guards the maps below and onCommit, for moments only.
	mu       sync.Mutex
	cache    map[string]*zone.Zone // last committed zone per origin
	onCommit func(origin string, z *zone.Zone)
	ttls     map[string]ttlBound
	locks    map[string]*sync.Mutex // by origin: see lockZone
	// zones is read-held by every change of one zone, and held whole by
	// what reads every zone at once (a reload), which so sees each zone
	// between two commits.
	zones  sync.RWMutex
	groups editGroups // edits waiting for a group commit, by zone

	// After commits, the pages of the file they touched are given back
	// (releaseSoon): releasing is set while one is due, releaseHeap when
	// it is to give the heap's free memory back too, closed once the file
	// is, and releases counts them.
	// gc: the collector's target lowered for signings under way (gcTight).
	gc struct {
		sync.Mutex
		depth, prev int
		// capDepth and capPrev are writeCap's: the writes under way and
		// the memory limit before the first.
		capDepth int
		capPrev  int64
	}

	releasing, closed bool
	releaseHeap       bool // the release due collects the heap too
	releaseDelay      time.Duration
	releases          atomic.Int64
	// touched counts the zones touched one by one since the last release
	// they asked for (touchedOne).
	touched atomic.Int64
}

// releaseDelay is how long after a commit the pages of the database file
// the process touched are given back, so that the resident memory of a
// server that is edited all day stays that of the zones it serves.
// Commits that come within it share one release. A release costs one
// madvise call and, for the next commit, the faults that map again the few
// pages it reads (its path through the file's tree). At 100,000 zones
// each 100 edits left some 11 MiB of pages mapped until their release.
const releaseDelay = 2 * time.Second

// releaseSoon gives the file's mapped pages back releaseDelay from now,
// unless a release is due already; with heap, that release also collects
// the whole heap and returns its free memory to the system (after much was
// written: a bulk import). A process that ends first (a command) pays for
// neither.
func (s *Store) releaseSoon(heap bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if heap {
		s.releaseHeap = true
	}
	if s.releasing || s.closed {
		return
	}
	s.releasing = true
	time.AfterFunc(s.releaseDelay, func() {
		s.mu.Lock()
		s.releasing = false
		closed, heap := s.closed, s.releaseHeap
		s.releaseHeap = false
		s.mu.Unlock()
		if closed {
			return
		}
		if heap {
			debug.FreeOSMemory()
		}
		s.releaseMapped()
		s.releases.Add(1)
	})
}

// As returns a view of the store whose changes are journaled as made by
// author ("unix:alice", "tsig:editor.", "token:ci"). It shares everything
// else, the file included: closing either closes both.
func (s *Store) As(author string) *Store { return &Store{core: s.core, author: author} }

// Author is the name the store's changes are journaled under.
func (s *Store) Author() string {
	if s.author == "" {
		return "sovdns"
	}
	return s.author
}

// Open opens or creates the database at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	if opts.SerialPolicy == "" {
		opts.SerialPolicy = SerialIncrement
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	db, err := bolt.Open(path, 0o640, &bolt.Options{
		Timeout:  opts.Timeout,
		ReadOnly: opts.ReadOnly,
		// Address space only: a large initial map spares the remaps (each
		// of which walks every dirty node) while a big import grows the file.
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("open zone database %s: %w", path, err)
	}
	// Writes that come together (see batch) wait this long for others to
	// join them: a few transfers in at once share one fsync, and a lone
	// one waits little.
	db.MaxBatchDelay = 2 * time.Millisecond
	s := &Store{core: &core{db: db, path: path, opts: opts, cache: map[string]*zone.Zone{}, locks: map[string]*sync.Mutex{},
		releaseDelay: releaseDelay}}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init() error {
	check := func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if m == nil {
			return nil
		}
		if v := m.Get(keyVersion); v != nil && string(v) != FormatVersion {
			return fmt.Errorf("%s: %w %q (this build reads %q)", s.path, ErrBadVersion, v, FormatVersion)
		}
		return nil
	}
	if s.opts.ReadOnly {
		return s.db.View(check)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := check(tx); err != nil {
			return err
		}
		m, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if m.Get(keyVersion) == nil {
			if err := m.Put(keyVersion, []byte(FormatVersion)); err != nil {
				return err
			}
		}
		if _, err = tx.CreateBucketIfNotExists(bucketZones); err != nil {
			return err
		}
		// Names staged by a write that never finished (stageNames).
		if tx.Bucket(bucketStaging) != nil {
			if err := tx.DeleteBucket(bucketStaging); err != nil {
				return err
			}
		}
		// The zone index, when the file has none (written by an earlier
		// version) or was written since by something that did not keep it.
		if !indexKeptBy(tx, tx.ID()-1) { // the last write before this one
			n, err := buildIndex(tx)
			if err != nil {
				return fmt.Errorf("build the zone index: %w", err)
			}
			s.opts.Logger.Info("zone index built", "zones", n)
		}
		return markIndexed(tx)
	})
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return s.db.Close()
}

// Subscribe sets the function called after every commit with the zone's
// new contents (nil when the zone was deleted). It is called with the
// zone's edit lock held, so it must not call back into the store; commits
// of different zones may call it at the same time.
func (s *Store) Subscribe(fn func(origin string, z *zone.Zone)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCommit = fn
}

// ZoneInfo describes a stored zone.
type ZoneInfo struct {
	Origin string `json:"zone"`
	Serial uint32 `json:"serial"`
	// SOAExpire is the SOA's expire timer, in seconds.
	SOAExpire uint32    `json:"soa_expire"`
	Records   int       `json:"records"`
	Names     int       `json:"names"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	Kind      string    `json:"kind"`
	// Refreshed is when a secondary copy was last found current, and
	// Source where it came from.
	Refreshed time.Time `json:"refreshed,omitzero"`
	Source    string    `json:"source,omitempty"`
	// Transaction is the editor's transaction open on the zone, if any.
	Transaction *TxnInfo `json:"transaction,omitempty"`
}

// List returns the origins of all stored zones, in canonical order.
func (s *Store) List() ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		zs := tx.Bucket(bucketZones)
		if zs == nil {
			return nil
		}
		return zs.ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list zones: %w", err)
	}
	zone.SortCanonical(out)
	return out, nil
}

// stampInfo records in the zone's info bucket that z was written at now:
// the update time and the summary the zone list shows.
func stampInfo(ib *bolt.Bucket, z *zone.Zone, now time.Time) error {
	if err := ib.Put(keyUpdated, []byte(now.UTC().Format(time.RFC3339))); err != nil {
		return err
	}
	v := binary.BigEndian.AppendUint32(nil, z.Serial())
	v = binary.BigEndian.AppendUint32(v, z.SOA.Expire)
	v = binary.BigEndian.AppendUint64(v, uint64(z.Len()))
	v = binary.BigEndian.AppendUint64(v, uint64(z.Names()))
	return ib.Put(keySummary, v)
}

// Info describes one zone. It reads the stored summary of the zone when
// the zone is not in memory: no zone is built for it.
func (s *Store) Info(origin string) (ZoneInfo, error) {
	origin = zone.Fqdn(origin)
	var info ZoneInfo
	var summarised bool
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		info, summarised, err = s.readInfo(tx, origin)
		return err
	})
	if err != nil || summarised {
		return info, err
	}
	return s.completeInfo(info)
}

// Infos describes every zone, in canonical order, reading them in one
// transaction: no zone is built, but those written before summaries were
// kept.
func (s *Store) Infos() ([]ZoneInfo, error) { return s.InfosMatching(nil) }

// InfosMatching is Infos for the zones whose origins match reports true
// for (nil: every zone); the others are not read.
func (s *Store) InfosMatching(match func(origin string) bool) ([]ZoneInfo, error) {
	out := []ZoneInfo{}
	var unsummarised []int
	if err := s.eachInfo(match, collectInfos(&out, &unsummarised)); err != nil {
		return nil, err
	}
	for _, i := range unsummarised {
		var err error
		if out[i], err = s.completeInfo(out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// infoEmitter receives the description of one zone, and whether its
// contents are summarised (else completeInfo fills them in).
type infoEmitter func(info ZoneInfo, summarised bool) error

// collectInfos returns an emitter that appends to out, and the index of
// each zone not summarised to unsummarised.
func collectInfos(out *[]ZoneInfo, unsummarised *[]int) infoEmitter {
	return func(info ZoneInfo, summarised bool) error {
		if !summarised {
			*unsummarised = append(*unsummarised, len(*out))
		}
		*out = append(*out, info)
		return nil
	}
}

// eachInfo emits the description of each zone that match reports true
// for (nil: every zone) in canonical order, reading them in one
// transaction, from the index or, when it is not current, from the
// zones' own buckets.
func (s *Store) eachInfo(match func(origin string) bool, emit infoEmitter) error {
	n := 0
	counted := func(info ZoneInfo, summarised bool) error {
		n++
		return emit(info, summarised)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		if indexed, err := s.eachIndexedInfo(tx, match, counted); indexed || err != nil {
			return err
		}
		return s.eachScannedInfo(tx, match, counted)
	})
	if err != nil {
		return fmt.Errorf("describe zones: %w", err)
	}
	s.passed(n)
	return nil
}

// scannedInfos is indexedInfos from each zone's own bucket, for a file
// whose index is not current (see bucketIndex).
func (s *Store) scannedInfos(tx *bolt.Tx, match func(origin string) bool) (out []ZoneInfo, unsummarised []int, err error) {
	out = []ZoneInfo{}
	if err := s.eachScannedInfo(tx, match, collectInfos(&out, &unsummarised)); err != nil {
		return nil, nil, err
	}
	return out, unsummarised, nil
}

// eachScannedInfo is eachIndexedInfo from each zone's own bucket.
func (s *Store) eachScannedInfo(tx *bolt.Tx, match func(origin string) bool, emit infoEmitter) error {
	zs := tx.Bucket(bucketZones)
	if zs == nil {
		return nil
	}
	var origins []string
	err := zs.ForEachBucket(func(k []byte) error {
		if match == nil || match(string(k)) {
			origins = append(origins, string(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	zone.SortCanonical(origins)
	for _, origin := range origins {
		zb := zs.Bucket([]byte(origin))
		if zb == nil {
			continue
		}
		// The zone's few keys in one pass, rather than a search for
		// each: a zone has names and info, and may have a transaction.
		var hasNames, hasInfo, hasTxn bool
		c := zb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				hasNames = hasNames || bytes.Equal(k, bucketNames)
				hasInfo = hasInfo || bytes.Equal(k, bucketInfo)
				hasTxn = hasTxn || bytes.Equal(k, bucketTxn)
			}
		}
		if !hasNames || !hasInfo {
			continue
		}
		info, summarised, err := infoIn(zb, origin, s.cached(origin), hasTxn)
		if err != nil {
			return err
		}
		if err := emit(info, summarised); err != nil {
			return err
		}
	}
	return nil
}

// readInfo reads the description of the zone at origin in tx, and says
// whether its contents are summarised (or the zone is in memory); if not,
// completeInfo fills them in.
func (s *Store) readInfo(tx *bolt.Tx, origin string) (info ZoneInfo, summarised bool, err error) {
	zb, err := zoneBucket(tx, origin)
	if err != nil {
		return ZoneInfo{Origin: origin}, false, err
	}
	return infoIn(zb, origin, s.cached(origin), true)
}

// infoIn is readInfo from the zone's bucket zb; z is the zone in memory,
// if it is. txn: the zone may have a transaction open.
func infoIn(zb *bolt.Bucket, origin string, z *zone.Zone, txn bool) (info ZoneInfo, summarised bool, err error) {
	info.Origin = origin
	ib := zb.Bucket(bucketInfo)
	if z != nil {
		info.Serial, info.SOAExpire, info.Records, info.Names = z.Serial(), z.SOA.Expire, z.Len(), z.Names()
		summarised = true
	} else if v := ib.Get(keySummary); len(v) == 24 {
		info.Serial = binary.BigEndian.Uint32(v)
		info.SOAExpire = binary.BigEndian.Uint32(v[4:])
		info.Records = int(binary.BigEndian.Uint64(v[8:]))
		info.Names = int(binary.BigEndian.Uint64(v[16:]))
		summarised = true
	}
	info.Created = stampIn(ib, keyCreated)
	m := metaIn(ib)
	info.Updated, info.Kind, info.Refreshed, info.Source = m.Updated, m.Kind, m.Refreshed, m.Source
	if txn {
		info.Transaction, _, err = txnIn(zb, origin)
	}
	return info, summarised, err
}

// completeInfo fills in the contents of a zone written before summaries
// were kept: the zone is built once.
func (s *Store) completeInfo(info ZoneInfo) (ZoneInfo, error) {
	z, err := s.Load(info.Origin)
	if err != nil {
		return ZoneInfo{}, err
	}
	info.Serial, info.SOAExpire, info.Records, info.Names = z.Serial(), z.SOA.Expire, z.Len(), z.Names()
	return info, nil
}

// Load returns the zone at origin as last committed.
func (s *Store) Load(origin string) (*zone.Zone, error) {
	origin = zone.Fqdn(origin)
	if z := s.cached(origin); z != nil {
		return z, nil
	}
	defer s.lockZone(origin)()
	return s.load(origin)
}

// lockZone takes the lock that serialises the changes of one zone, and
// returns its release. Changes of different zones run side by side; the
// bbolt file serialises only their short write transactions.
func (s *Store) lockZone(origin string) func() {
	s.zones.RLock()
	l := s.zoneMutex(origin)
	l.Lock()
	return func() {
		l.Unlock()
		s.zones.RUnlock()
	}
}

// zoneMutex returns the mutex of one zone's changes (see lockZone); the
// caller holds s.zones for reading.
func (s *Store) zoneMutex(origin string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.locks[origin]
	if l == nil {
		l = &sync.Mutex{}
		s.locks[origin] = l
	}
	return l
}

// cached returns the zone's last committed version if it has been read.
func (s *Store) cached(origin string) *zone.Zone {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache[origin]
}

// setCached records z (nil: none) as its zone's last committed version;
// the zone's lock is held.
func (s *Store) setCached(origin string, z *zone.Zone) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if z == nil {
		delete(s.cache, origin)
		delete(s.ttls, origin)
		return
	}
	s.cache[origin] = z
}

// InMemory reports whether the zone at origin has been read (or written)
// by this process and is held in memory.
func (s *Store) InMemory(origin string) bool { return s.cached(zone.Fqdn(origin)) != nil }

// Forget lets go of the zones at origins held in memory since they were
// last read or changed; they are read from the file when next needed. For
// a process that imports many zones and serves none.
func (s *Store) Forget(origins ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range origins {
		delete(s.cache, zone.Fqdn(o))
		delete(s.ttls, zone.Fqdn(o))
	}
}

// LoadAll returns every stored zone.
func (s *Store) LoadAll() ([]*zone.Zone, error) {
	names, err := s.List()
	if err != nil {
		return nil, err
	}
	s.zones.Lock()
	defer s.zones.Unlock()
	out, errs := s.loadMany(names)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// manyZones is the number of zones from which a pass that reads every
// zone's bucket lets go of the file's pages afterwards (releaseMapped).
const manyZones = 5000

// manyTouched is the number of zones touched one by one after which the
// file's pages are given back (touchedOne): a secondary of 100,000 zones
// checking 200 a second mapped about 8 MB of the file a second.
const manyTouched = 1000

// touchedOne is told that one zone's bucket was read, or written without a
// commit that publishes a zone (a refresh time): after manyTouched of
// them (a secondary of many zones checking them, each check a write that
// maps the pages on its path anew), the file's pages they mapped are
// given back soon, as after a commit.
func (s *Store) touchedOne() {
	if s.touched.Add(1) >= manyTouched {
		s.touched.Store(0)
		s.releaseSoon(false)
	}
}

// passed is told that a pass read the buckets of n zones.
func (s *Store) passed(n int) {
	if n >= manyZones {
		s.releaseMapped()
	}
}

// releaseLoad gives back, after many zones were read, the memory their
// reading used and the file's pages: what is served lives in the zones
// built, and the file is read again only for a change. The release (a
// forced collection of the whole heap) is not waited for: a server starts
// answering the zones meanwhile.
func (s *Store) releaseLoad(zs []*zone.Zone) {
	total := 0
	for _, z := range zs {
		total += z.Len()
	}
	if total < largeZone {
		return
	}
	go func() {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if !closed {
			debug.FreeOSMemory()
			s.releaseMapped()
		}
	}()
}

// Reread forgets the zones read so far and reads every zone again from
// the file, for a reload. A zone that cannot be read is reported in errs
// and left out.
func (s *Store) Reread() (zs []*zone.Zone, errs []error, err error) {
	names, err := s.List()
	if err != nil {
		return nil, nil, err
	}
	s.zones.Lock()
	defer s.zones.Unlock()
	s.mu.Lock()
	clear(s.cache)
	clear(s.ttls)
	s.mu.Unlock()
	zs, errs = s.loadMany(names)
	return zs, errs, nil
}

// loadMany returns the zones at origins (those that can be read: the
// others are reported in errs), reading them from the file on every CPU;
// every zone's lock is held (s.zones).
func (s *Store) loadMany(origins []string) (zs []*zone.Zone, errs []error) {
	got := make([]*zone.Zone, len(origins))
	failed := make([]error, len(origins))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(origins)/64+1) {
		wg.Go(func() {
			err := s.db.View(func(tx *bolt.Tx) error {
				var buf []dns.RR // the records of one zone, then the next
				var in names     // and the names they hold
				for i := int(next.Add(1)) - 1; i < len(origins); i = int(next.Add(1)) - 1 {
					if z := s.cached(origins[i]); z != nil {
						got[i] = z
						continue
					}
					got[i], buf, failed[i] = readZoneInto(tx, origins[i], buf[:0], &in)
				}
				return nil
			})
			if err != nil { // the transaction could not begin
				for i := int(next.Add(1)) - 1; i < len(origins); i = int(next.Add(1)) - 1 {
					failed[i] = err
				}
			}
		})
	}
	wg.Wait()
	zs = make([]*zone.Zone, 0, len(origins))
	for i, z := range got {
		if failed[i] != nil {
			errs = append(errs, failed[i])
			continue
		}
		s.setCached(origins[i], z)
		zs = append(zs, z)
	}
	s.releaseLoad(zs)
	return zs, errs
}

// load returns the zone's last committed version, reading it from the
// file the first time; the zone's lock (or all of them) is held.
func (s *Store) load(origin string) (*zone.Zone, error) {
	if z := s.cached(origin); z != nil {
		return z, nil
	}
	var z *zone.Zone
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		z, err = readZone(tx, origin)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.touchedOne()
	s.setCached(origin, z)
	return z, nil
}

// readZone reads and builds the zone at origin in tx.
func readZone(tx *bolt.Tx, origin string) (*zone.Zone, error) {
	z, _, err := readZoneInto(tx, origin, nil, &names{})
	return z, err
}

// readZoneInto is readZone that decodes the records into buf, and returns
// it for the next zone: the zone keeps the records, not the slice. The
// names the records hold are interned in in.
func readZoneInto(tx *bolt.Tx, origin string, buf []dns.RR, in *names) (*zone.Zone, []dns.RR, error) {
	zb, err := zoneBucket(tx, origin)
	if err != nil {
		return nil, buf, err
	}
	rrs := buf
	nb := zb.Bucket(bucketNames)
	// The records counted first, so that those of each common type come
	// from one allocation (see slab).
	if err := nb.ForEach(func(_, v []byte) error {
		in.count(v)
		return nil
	}); err != nil {
		return nil, rrs, err
	}
	in.reserve()
	err = nb.ForEach(func(k, v []byte) error {
		var err error
		rrs, err = decodeRRs(rrs, v, in)
		if err != nil {
			return fmt.Errorf("%w: zone %s: %w", ErrCorrupt, origin, err)
		}
		return nil
	})
	if err != nil {
		return nil, rrs, err
	}
	z, err := zone.Build(origin, rrs)
	clear(rrs) // the zone holds the records; the slice is for the next
	if err != nil {
		return nil, rrs, fmt.Errorf("%w: zone %s no longer validates: %w", ErrCorrupt, origin, err)
	}
	return z, rrs, nil
}

func zoneBucket(tx *bolt.Tx, origin string) (*bolt.Bucket, error) {
	zs := tx.Bucket(bucketZones)
	if zs == nil {
		return nil, fmt.Errorf("zone %s: %w", origin, ErrNoZone)
	}
	zb := zs.Bucket([]byte(origin))
	if zb == nil || zb.Bucket(bucketNames) == nil || zb.Bucket(bucketInfo) == nil {
		return nil, fmt.Errorf("zone %s: %w", origin, ErrNoZone)
	}
	return zb, nil
}

// Delete removes a zone.
func (s *Store) Delete(origin string) error {
	origin = zone.Fqdn(origin)
	defer s.lockZone(origin)()
	err := s.update(func(tx *bolt.Tx) error {
		if _, err := zoneBucket(tx, origin); err != nil {
			return err
		}
		if err := tx.Bucket(bucketZones).DeleteBucket([]byte(origin)); err != nil {
			return err
		}
		return reindex(tx, origin)
	})
	if err != nil {
		return err
	}
	s.setCached(origin, nil)
	s.publish(origin, nil)
	return nil
}

// batch is update for the writes of many zones side by side (transfers
// in, refresh times): those that come together share one transaction and
// one fsync (bbolt's Batch). fn may run more than once, and must have no
// effect outside tx.
func (s *Store) batch(fn func(tx *bolt.Tx) error) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	return s.db.Batch(keepingIndex(fn))
}

func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	return s.db.Update(keepingIndex(fn))
}

// keepingIndex is fn, which keeps the zone index, then the record that the
// index was kept (markIndexed).
func keepingIndex(fn func(tx *bolt.Tx) error) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return markIndexed(tx)
	}
}

// largeZone is the number of records from which a change that made the
// zone whole (an import, a full signing, a transfer) gives the memory it
// used back to the system at once, rather than over the next minutes.
const largeZone = 20_000

// signingGCPercent is the garbage collector's target (GOGC) while a large
// zone is signed whole: a signing makes several times the zone's size in
// short-lived garbage, and at the default of 100 the heap would grow to
// twice what is live.
const signingGCPercent = 35

// gcTight lowers the collector's target to signingGCPercent (unless it is
// lower already) until the function it returns is called; signings at
// once share one lowering.
func (c *core) gcTight() func() {
	c.gc.Lock()
	defer c.gc.Unlock()
	if c.gc.depth == 0 {
		c.gc.prev = debug.SetGCPercent(signingGCPercent)
		if c.gc.prev >= 0 && c.gc.prev < signingGCPercent {
			debug.SetGCPercent(c.gc.prev)
		}
	}
	c.gc.depth++
	return func() {
		c.gc.Lock()
		defer c.gc.Unlock()
		if c.gc.depth--; c.gc.depth == 0 {
			debug.SetGCPercent(c.gc.prev)
		}
	}
}

// writeHeadroom is the least room above the live heap that writeCap
// leaves: the write of a large zone is staged a few MiB at a time.
const writeHeadroom = 64 << 20

// writeCap sets a soft memory limit just above the live heap, for the
// write of a large zone made whole, until the function it returns is
// called: the write adds little to what is live (its names are staged a
// slice at a time), and without the cap the heap would grow by half again
// before the collector runs. A limit set lower already is kept; writes at
// once share one cap.
func (c *core) writeCap() func() {
	c.gc.Lock()
	defer c.gc.Unlock()
	if c.gc.capDepth == 0 {
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(sample)
		c.gc.capPrev = debug.SetMemoryLimit(-1)
		live := int64(0)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live = int64(sample[0].Value.Uint64())
		}
		debug.SetMemoryLimit(min(c.gc.capPrev, live+max(writeHeadroom, live/4)))
	}
	c.gc.capDepth++
	return func() {
		c.gc.Lock()
		defer c.gc.Unlock()
		if c.gc.capDepth--; c.gc.capDepth == 0 {
			debug.SetMemoryLimit(c.gc.capPrev)
		}
	}
}

// releaseMemory returns the memory the making of z used to the system, if
// z is large: a full garbage collection, a fraction of what making it
// cost. A server's size then stays near that of what it serves.
func releaseMemory(z *zone.Zone) {
	if z != nil && z.Len() >= largeZone {
		debug.FreeOSMemory()
	}
}

// publish hands a commit to the subscriber; the zone's lock is held.
func (s *Store) publish(origin string, z *zone.Zone) {
	s.releaseSoon(false)
	s.mu.Lock()
	fn := s.onCommit
	s.mu.Unlock()
	if fn != nil {
		fn(origin, z)
	}
}

// PutResult reports what an import or edit committed.
type PutResult struct {
	Zone       *zone.Zone
	OldSerial  uint32 // 0 for a new zone
	Serial     uint32
	Bumped     bool // the serial was moved forward by the store
	Created    bool
	Records    int
	OldRecords int
}

// Import stores z as the whole contents of its zone. Unless replace is set,
// an existing zone is an error. When replacing, a serial that does not move
// forward (RFC 1982) is bumped by the serial policy so secondaries notice.
func (s *Store) Import(z *zone.Zone, replace bool) (PutResult, error) {
	defer s.lockZone(z.Origin)()
	return s.importLocked(z, replace)
}

// importLocked is Import with the zone's lock held.
func (s *Store) importLocked(z *zone.Zone, replace bool) (PutResult, error) {
	res := PutResult{Records: z.Len()}
	old, err := s.load(z.Origin)
	switch {
	case errors.Is(err, ErrNoZone):
		res.Created = true
	case err != nil && !errors.Is(err, ErrCorrupt):
		return res, err
	case !replace:
		return res, fmt.Errorf("zone %s: %w (use replace to overwrite it)", z.Origin, ErrZoneExists)
	case old != nil:
		res.OldSerial, res.OldRecords = old.Serial(), old.Len()
		if !SerialLess(old.Serial(), z.Serial()) {
			z, err = withSerial(z, NextSerial(old.Serial(), s.opts.SerialPolicy, s.opts.Now()))
			if err != nil {
				return res, err
			}
			res.Bumped = true
		}
	}
	now := s.opts.Now()
	op := OpImport
	if old == nil {
		op = OpCreate
	}
	// A signed zone: the file's own DNSSEC records give way to the
	// signer's, made before the write transaction (the zone's lock keeps its
	// DNSSEC state as it is meanwhile).
	sg, err := s.loadSigning(z.Origin)
	if err != nil && !errors.Is(err, ErrNoZone) {
		return res, fmt.Errorf("store zone %s: %w", z.Origin, err)
	}
	signed := sg != nil && sg.Policy != nil
	if signed {
		if z.Len() >= largeZone {
			defer s.gcTight()() // through the write too
		}
		if z, err = s.signZone(z, old, sg, now); err != nil {
			return res, fmt.Errorf("store zone %s: %w", z.Origin, err)
		}
	}
	err = s.update(func(tx *bolt.Tx) error {
		if err := checkPrimary(tx, z.Origin); err != nil {
			return err
		}
		if err := s.writeImport(tx, old, z, now, signed); err != nil {
			return err
		}
		return s.journal(tx, old, z, op, now, nil)
	})
	if err != nil {
		return res, fmt.Errorf("store zone %s: %w", z.Origin, err)
	}
	res.Zone, res.Serial = z, z.Serial()
	s.setCached(z.Origin, z)
	s.publish(z.Origin, z)
	releaseMemory(z)
	return res, nil
}

// writeImport writes an imported zone: whole when it is new (old nil),
// else only the names that differ from old. shared is as for writeZone.
func (s *Store) writeImport(tx *bolt.Tx, old, z *zone.Zone, now time.Time, shared bool) error {
	if old == nil {
		return writeZone(tx, z, now, shared)
	}
	return writeVersion(tx, old, z, nil, now)
}

// writeVersion writes z, the version of a stored zone that follows old:
// the names with the keys in changed, or every name that differs from old
// when changed is nil; and the zone's summary.
func writeVersion(tx *bolt.Tx, old, z *zone.Zone, changed map[string]bool, now time.Time) error {
	zb, err := zoneBucket(tx, z.Origin)
	if err != nil {
		return err
	}
	if changed != nil {
		err = writeNames(zb.Bucket(bucketNames), z, changed)
	} else {
		err = writeDiff(zb.Bucket(bucketNames), old, z)
	}
	if err != nil {
		return err
	}
	if err := stampInfo(zb.Bucket(bucketInfo), z, now); err != nil {
		return err
	}
	return reindex(tx, z.Origin)
}

// writeZone replaces the stored records of z's zone with z's, keeping the
// zone's creation time and DNSSEC state.
// shared says z may hold records of a zone being served (see encodeNode).
func writeZone(tx *bolt.Tx, z *zone.Zone, now time.Time, shared bool) error {
	return writeZoneStaged(tx, z, now, shared, false)
}

// writeZoneStaged is writeZone; with staged set, z's names were written
// ahead by stageNames, and are moved into place rather than encoded.
func writeZoneStaged(tx *bolt.Tx, z *zone.Zone, now time.Time, shared, staged bool) error {
	if err := writeZoneContents(tx, z, now, shared, staged); err != nil {
		return err
	}
	return reindex(tx, z.Origin)
}

// writeZoneContents is writeZoneStaged but for the zone index.
func writeZoneContents(tx *bolt.Tx, z *zone.Zone, now time.Time, shared, staged bool) error {
	zs := tx.Bucket(bucketZones)
	stamp := []byte(now.UTC().Format(time.RFC3339))
	created := stamp
	zb := zs.Bucket([]byte(z.Origin))
	if zb == nil {
		var err error
		if zb, err = zs.CreateBucket([]byte(z.Origin)); err != nil {
			return err
		}
	}
	ib, err := zb.CreateBucketIfNotExists(bucketInfo)
	if err != nil {
		return err
	}
	if c := ib.Get(keyCreated); c != nil {
		created = append([]byte(nil), c...)
	}
	if zb.Bucket(bucketNames) != nil {
		if err := zb.DeleteBucket(bucketNames); err != nil {
			return err
		}
	}
	if err := ib.Put(keyCreated, created); err != nil {
		return err
	}
	if err := stampInfo(ib, z, now); err != nil {
		return err
	}
	if staged {
		sb := tx.Bucket(bucketStaging)
		var ob *bolt.Bucket
		if sb != nil {
			ob = sb.Bucket([]byte(z.Origin))
		}
		if ob == nil || ob.Bucket(bucketNames) == nil {
			return fmt.Errorf("%w: zone %s: its staged names are missing", ErrCorrupt, z.Origin)
		}
		if err := tx.MoveBucket(bucketNames, ob, zb); err != nil {
			return err
		}
		return sb.DeleteBucket([]byte(z.Origin))
	}
	nb, err := zb.CreateBucket(bucketNames)
	if err != nil {
		return err
	}
	nb.FillPercent = 1 // keys arrive in order: pack pages full
	// bbolt keeps the values until commit: they are cut from an arena.
	var values arena.Arena
	var scratch []byte
	z.WalkAll(func(ck []byte, n *zone.Node) bool {
		if n.Empty() {
			return true
		}
		if scratch, err = encodeNode(scratch[:0], n, shared); err != nil {
			return false
		}
		err = nb.Put(storeKey(ck), values.Cut(scratch))
		return err == nil
	})
	return err
}

// bucketStaging holds, by origin, the names of a large zone written ahead
// of the transaction that makes them the zone's (stageNames), so that the
// whole encoded zone is never held at once; the staging found at open is
// the leftover of a write that did not finish, and goes.
var bucketStaging = []byte("staging")

// stageBytes is about how much encoded data one staging transaction writes.
const stageBytes = 4 << 20

// stageNames writes z's names, encoded as writeZone encodes them, into
// staging/<origin>/names, in transactions of about stageBytes each, when z
// is large (largeZone records or more); it reports whether it did. The
// zone's lock is held; the caller's transaction then moves them into
// place (writeZoneStaged), or dropStaged drops them.
func (s *Store) stageNames(z *zone.Zone, shared bool) (bool, error) {
	if z.Len() < largeZone || s.opts.ReadOnly {
		return false, nil
	}
	origin := []byte(z.Origin)
	err := s.update(func(tx *bolt.Tx) error {
		sb, err := tx.CreateBucketIfNotExists(bucketStaging)
		if err != nil {
			return err
		}
		if sb.Bucket(origin) != nil {
			if err := sb.DeleteBucket(origin); err != nil {
				return err
			}
		}
		ob, err := sb.CreateBucket(origin)
		if err != nil {
			return err
		}
		_, err = ob.CreateBucket(bucketNames)
		return err
	})
	if err != nil {
		return false, err
	}
	type entry struct{ k, v []byte }
	var batch []entry
	var block, scratch []byte
	// flush commits the batch; bbolt has copied the values by then, so
	// the block is used again.
	flush := func() error {
		err := s.update(func(tx *bolt.Tx) error {
			nb := tx.Bucket(bucketStaging).Bucket(origin).Bucket(bucketNames)
			nb.FillPercent = 1 // keys arrive in order: pack pages full
			for _, e := range batch {
				if err := nb.Put(e.k, e.v); err != nil {
					return err
				}
			}
			return nil
		})
		batch, block = batch[:0], block[:0]
		return err
	}
	z.WalkAll(func(ck []byte, n *zone.Node) bool {
		if n.Empty() {
			return true
		}
		if scratch, err = encodeNode(scratch[:0], n, shared); err != nil {
			return false
		}
		if len(scratch) > cap(block)-len(block) {
			if len(batch) > 0 {
				if err = flush(); err != nil {
					return false
				}
			}
			if len(scratch) > cap(block) {
				block = make([]byte, 0, max(stageBytes, len(scratch)))
			}
		}
		start := len(block)
		block = append(block, scratch...)
		batch = append(batch, entry{storeKey(ck), block[start:len(block):len(block)]})
		return true
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	if err != nil {
		s.dropStaged(z.Origin)
		return false, fmt.Errorf("zone %s: stage its names: %w", z.Origin, err)
	}
	return true, nil
}

// dropStaged drops the names staged for origin, if any.
func (s *Store) dropStaged(origin string) {
	_ = s.update(func(tx *bolt.Tx) error {
		if sb := tx.Bucket(bucketStaging); sb != nil && sb.Bucket([]byte(origin)) != nil {
			return sb.DeleteBucket([]byte(origin))
		}
		return nil
	})
}

// withSerial returns the version of z whose SOA carries serial. It shares
// every node but the apex with z (zone.Apply), so that it costs no copy of
// a large zone.
func withSerial(z *zone.Zone, serial uint32) (*zone.Zone, error) {
	var apex []dns.RR
	for _, set := range z.Apex.RRsets {
		for _, rr := range set.RRs() {
			if soa, ok := rr.(*dns.SOA); ok {
				c := dns.Copy(soa).(*dns.SOA)
				c.Serial = serial
				rr = c
			}
			apex = append(apex, rr)
		}
		apex = append(apex, set.Sigs()...)
	}
	return zone.Apply(z, map[string][]dns.RR{z.Key: apex})
}
