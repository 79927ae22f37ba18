package server

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/zone"
)

// respCache holds encoded responses for the zones being served, so a
// repeated question is answered by copying bytes and patching the ID, the
// RD and CD bits and the spelling of the question name. It lives until
// the zones are reloaded; an entry whose zone has a newer version is never
// returned (see cacheEntry.stale), so an edit retires the answers of its
// zone alone, and a zone added or removed those of the zones above it (see
// changed). It is sharded, and
// each shard is bounded in bytes: a shard that fills is emptied and starts
// again, which keeps a flood of distinct names from holding memory.
type respCache struct {
	// now and epoch tell whether a resolved answer is still good (see
	// cacheEntry.expires, cacheEntry.epoch).
	now   func() time.Time
	epoch func() uint64

	shards     [cacheShards]cacheShard
	shardBytes int64
	entries    atomic.Int64
	bytes      atomic.Int64 // the entries' size (cacheEntry.size), all shards

	// gen is the newest zone set change; log holds the last changes
	// (zones added or removed), for entries made before them.
	gen atomic.Uint64
	mu  sync.Mutex // serialises changed
	log atomic.Pointer[changeLog]
}

// changeLog is an immutable list of the last zone set changes.
type changeLog struct {
	oldest uint64 // entries older than this generation are retired
	items  []zoneChange
}

// zoneChange is a zone added or removed at generation gen.
type zoneChange struct {
	gen    uint64
	origin string // wire key
}

// maxChanges is how many zone set changes the cache remembers; an entry
// older than all of them is retired.
const maxChanges = 256

const cacheShards = 64

type cacheShard struct {
	mu    sync.RWMutex
	m     map[string]*cacheEntry
	bytes int64
}

// cacheEntry is one encoded response and the counters it increments. A
// registry's node holds one per zone asked for, so it is kept small: 96
// bytes, and its key and response in one allocation (see respCache.put).
type cacheEntry struct {
	wire []byte
	// zone is the version of the zone the answer came from (nil for a
	// name no zone holds), chained those of the zones a CNAME chain led
	// to besides (nil for most); a newer version of any retires the entry.
	zone    *zone.Zone
	chained *[]*zone.Zone
	queries *entryCounters // shared by the entries of one zone label, type and rcode
	// resolved is what a resolved answer (recursion) also has; nil for an
	// answer from the zones.
	resolved *resolvedAnswer
	// gen is the zone set generation the answer was made in; open says
	// it depends on names no zone held (see handler's reply.open).
	gen  uint64
	rrl  rrlAccount // what it counts against for rate limiting
	open bool
}

// entryCounters are the query counters of cached answers by transport
// (transportNames); nil for one not served.
type entryCounters [numTransports]prometheus.Counter

// resolvedAnswer is what serving a resolved answer again takes, besides
// the offsets of its TTL fields (see cacheEntry.ttls): expires, when it is
// no longer served (unix nanoseconds); stored, when its TTLs were as in
// the entry's wire; epoch, the resolver cache's flush count it was made
// in.
type resolvedAnswer struct {
	expires, stored int64
	epoch           uint64
}

// resolvedEntry is a cache entry for a resolved answer: the entry and
// what serving the answer again takes, in one allocation of 128 bytes
// (two cache lines), whose entry's resolved points to its answer. With
// the key, the response and the TTL offsets in one more (see
// respCache.put), a cached answer is read from two objects besides the
// map's slot, not four: with many names in use, each is a line the
// processor's caches and a page its TLB may not hold
// (BenchmarkResolvedHit).
type resolvedEntry struct {
	cacheEntry
	answer resolvedAnswer
}

// newResolvedEntry returns an entry for a resolved answer.
func newResolvedEntry() *cacheEntry {
	re := new(resolvedEntry)
	re.resolved = &re.answer
	return &re.cacheEntry
}

// superseded reports whether a newer version of a zone the entry was
// answered from has been published.
func (e *cacheEntry) superseded() bool {
	if e.zone != nil && e.zone.Superseded() {
		return true
	}
	if e.chained != nil {
		for _, z := range *e.chained {
			if z.Superseded() {
				return true
			}
		}
	}
	return false
}

// stale reports whether a zone the entry was answered from has been
// replaced since, or a resolved answer is no longer to be served at now
// (unix nanoseconds).
func (e *cacheEntry) stale(c *respCache, now int64) bool {
	if r := e.resolved; r != nil && (now >= r.expires || r.epoch != c.epoch()) {
		return true
	}
	return e.superseded() || e.gen != c.gen.Load() && c.affects(e)
}

// changed records that the zones with the given origins were added or
// removed after generation gen, and returns the new generation.
func (c *respCache) changed(gen uint64, origins []string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := max(gen, c.gen.Load()) + 1
	old := c.log.Load()
	log := &changeLog{oldest: 0}
	if old != nil {
		log.oldest = old.oldest
		log.items = append(log.items, old.items...)
	}
	for _, o := range origins {
		log.items = append(log.items, zoneChange{gen: next, origin: o})
	}
	if n := len(log.items) - maxChanges; n > 0 {
		log.oldest = log.items[n-1].gen
		log.items = log.items[n:]
	}
	c.log.Store(log)
	c.gen.Store(next)
	return next
}

// affects reports whether a zone set change made since e was cached can
// change its answer: a zone added or removed at or below one of e's zones,
// or any change for an answer that drew on a name no zone held.
func (c *respCache) affects(e *cacheEntry) bool {
	if e.open {
		return true
	}
	log := c.log.Load()
	if log == nil || e.gen < log.oldest {
		return true
	}
	for _, ch := range log.items {
		if ch.gen <= e.gen {
			continue
		}
		if e.zone != nil && atOrBelow(ch.origin, e.zone.Key) {
			return true
		}
		if e.chained != nil {
			for _, z := range *e.chained {
				if atOrBelow(ch.origin, z.Key) {
					return true
				}
			}
		}
	}
	return false
}

// atOrBelow reports whether the wire key k is key or a name below it.
func atOrBelow(k, key string) bool {
	for i := 0; i < len(k); i += 1 + int(k[i]) {
		if len(k)-i == len(key) && k[i:] == key {
			return true
		}
		if k[i] == 0 {
			break
		}
	}
	return false
}

func newRespCache(maxBytes int64, now func() time.Time, epoch func() uint64) *respCache {
	c := &respCache{shardBytes: maxBytes / cacheShards, now: now, epoch: epoch}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*cacheEntry)
	}
	return c
}

func shardOf(key []byte) int {
	h := uint32(2166136261)
	for _, b := range key {
		h = (h ^ uint32(b)) * 16777619
	}
	return int(h % cacheShards)
}

// get returns the entry for key, if it may be served at now (unix
// nanoseconds, the question's arrival: one clock reading serves the whole
// answer).
func (c *respCache) get(key []byte, now int64) *cacheEntry {
	if c == nil || c.shardBytes <= 0 {
		return nil
	}
	sh := &c.shards[shardOf(key)]
	sh.mu.RLock()
	e := sh.m[string(key)]
	sh.mu.RUnlock()
	if e != nil && e.stale(c, now) {
		return nil
	}
	return e
}

// ttls returns the offsets of the TTL fields in e.wire (two octets each,
// big-endian), which follow it in its array; none for an answer from the
// zones.
func (e *cacheEntry) ttls() []byte { return e.wire[len(e.wire):cap(e.wire)] }

// size is what an entry under key is counted for: its bytes, and
// entryOverhead for the entry struct (96 bytes), the map's slot, the key's
// string header and the allocators' rounding, so that response_cache_mb
// bounds the heap the cache really holds (BenchmarkCacheMemory); a
// resolved answer's TTL offsets and its part of resolvedEntry besides
// (BenchmarkResolvedCacheMemory).
func (e *cacheEntry) size(key []byte) int64 {
	n := int64(len(key) + len(e.wire) + entryOverhead)
	if r := e.resolved; r != nil {
		n += int64(cap(e.wire) - len(e.wire) + resolvedOverhead)
	}
	return n
}

const (
	entryOverhead    = 160
	resolvedOverhead = 32
)

// put caches wire, the response to the question of key, as e, whose wire
// it sets, and for a resolved answer ttls, its TTL offsets: the key, the
// response and the offsets are copied into one allocation, which the
// map's key shares; the offsets are the wire's spare capacity.
func (c *respCache) put(key, wire, ttls []byte, e *cacheEntry) {
	if c == nil || c.shardBytes <= 0 || len(key) == 0 {
		return
	}
	buf := make([]byte, len(key)+len(wire)+len(ttls))
	copy(buf, key)
	end := len(key) + copy(buf[len(key):], wire)
	copy(buf[end:], ttls)
	e.wire = buf[len(key):end:len(buf)]
	size := e.size(key)
	sh := &c.shards[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.m[string(key)]; ok {
		if !old.stale(c, c.now().UnixNano()) {
			return
		}
		sh.bytes -= old.size(key)
		c.bytes.Add(-old.size(key))
		delete(sh.m, string(key))
		c.entries.Add(-1)
	}
	if sh.bytes+size > c.shardBytes {
		c.entries.Add(-int64(len(sh.m)))
		c.bytes.Add(-sh.bytes)
		sh.m = make(map[string]*cacheEntry)
		sh.bytes = 0
	}
	sh.m[unsafe.String(&buf[0], len(key))] = e
	sh.bytes += size
	c.bytes.Add(size)
	c.entries.Add(1)
}
