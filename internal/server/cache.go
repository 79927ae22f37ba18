package server

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/zone"
)

// respCache holds encoded responses for the zones being served, so a
// repeated question is answered by copying bytes and patching the ID, the
// RD and CD bits and the spelling of the question name. It lives as long
// as the set of zones held stays the same; an entry whose zone has a newer
// version is never returned (see cacheEntry.stale), so an edit retires the
// answers of its zone alone. It is sharded, and
// each shard is bounded in bytes: a shard that fills is emptied and starts
// again, which keeps a flood of distinct names from holding memory.
type respCache struct {
	shards     [cacheShards]cacheShard
	shardBytes int64
	entries    atomic.Int64
}

const cacheShards = 64

type cacheShard struct {
	mu    sync.RWMutex
	m     map[string]*cacheEntry
	bytes int64
}

// cacheEntry is one encoded response and the counters it increments.
type cacheEntry struct {
	wire    []byte
	nameLen int                   // wire length of the question name
	rrl     rrlAccount            // what it counts against for rate limiting
	queries [2]prometheus.Counter // by transport: udp, tcp
	// zones are the versions of the zones the answer came from (none for
	// a name no zone holds); a newer version of any retires the entry.
	zones []*zone.Zone
}

// stale reports whether a zone the entry was answered from has been
// replaced since.
func (e *cacheEntry) stale() bool {
	for _, z := range e.zones {
		if z.Superseded() {
			return true
		}
	}
	return false
}

func newRespCache(maxBytes int64) *respCache {
	c := &respCache{shardBytes: maxBytes / cacheShards}
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
	if e != nil && e.stale() {
		return nil
	}
	return e
}

func (c *respCache) put(key []byte, e *cacheEntry) {
	if c == nil || c.shardBytes <= 0 {
		return
	}
	size := int64(len(key) + len(e.wire) + 96)
	sh := &c.shards[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.m[string(key)]; ok {
		if !old.stale() {
			return
		}
		sh.bytes -= int64(len(key) + len(old.wire) + 96)
		delete(sh.m, string(key))
		c.entries.Add(-1)
	}
	if sh.bytes+size > c.shardBytes {
		c.entries.Add(-int64(len(sh.m)))
		sh.m = make(map[string]*cacheEntry)
		sh.bytes = 0
	}
	sh.m[string(key)] = e
	sh.bytes += size
	c.entries.Add(1)
}
