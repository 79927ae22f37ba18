package server

import (
	"sync"
	"sync/atomic"
	"time"

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

// cacheEntry is one encoded response and the counters it increments.
type cacheEntry struct {
	wire    []byte
	nameLen int                               // wire length of the question name
	rrl     rrlAccount                        // what it counts against for rate limiting
	queries [numTransports]prometheus.Counter // by transport (transportNames); nil for one not served
	// zones are the versions of the zones the answer came from (none for
	// a name no zone holds); a newer version of any retires the entry.
	zones []*zone.Zone
	// gen is the zone set generation the answer was made in; open says
	// it depends on names no zone held (see handler's reply.open).
	gen  uint64
	open bool
	// A resolved answer (recursion) also has: expires, when it is no
	// longer served (unix nanoseconds; 0 for an answer from the zones);
	// stored, when its TTLs were as in wire; ttls, the offsets of the TTL
	// fields in wire, lowered by the seconds since stored on the way out;
	// epoch, the resolver cache's flush count it was made in.
	expires, stored int64
	ttls            []uint16
	epoch           uint64
}

// stale reports whether a zone the entry was answered from has been
// replaced since.
func (e *cacheEntry) stale(c *respCache) bool {
	if e.expires != 0 && (c.now().UnixNano() >= e.expires || e.epoch != c.epoch()) {
		return true
	}
	for _, z := range e.zones {
		if z.Superseded() {
			return true
		}
	}
	return e.gen != c.gen.Load() && c.affects(e)
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
		for _, z := range e.zones {
			if atOrBelow(ch.origin, z.Key) {
				return true
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

func (c *respCache) get(key []byte) *cacheEntry {
	if c == nil || c.shardBytes <= 0 {
		return nil
	}
	sh := &c.shards[shardOf(key)]
	sh.mu.RLock()
	e := sh.m[string(key)]
	sh.mu.RUnlock()
	if e != nil && e.stale(c) {
		return nil
	}
	return e
}

// size is what an entry under key is counted for: its bytes, and
// entryOverhead for the entry struct (200 bytes), the map's slot, the key's
// string header and the allocators' rounding, so that response_cache_mb
// bounds the heap the cache really holds.
func (e *cacheEntry) size(key []byte) int64 {
	return int64(len(key) + len(e.wire) + 2*len(e.ttls) + entryOverhead)
}

const entryOverhead = 288

func (c *respCache) put(key []byte, e *cacheEntry) {
	if c == nil || c.shardBytes <= 0 {
		return
	}
	size := e.size(key)
	sh := &c.shards[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.m[string(key)]; ok {
		if !old.stale(c) {
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
	sh.m[string(key)] = e
	sh.bytes += size
	c.bytes.Add(size)
	c.entries.Add(1)
}
