package server

import (
	"encoding/binary"
	"time"
)

// Resolved answers in the response cache. An answer the resolver gave
// (from its cache or from upstream) is kept in wire form too, as Unbound's
// message cache keeps it, so that the next client asking the same question
// gets it by a copy and a patch: the ID, the RD bit and the question's
// spelling as for the zones' answers, and every TTL lowered by the seconds
// since it was stored. The key holds everything that changes such an
// answer: the name, type and class, DO, CD and AD, and what the client
// may do. An answer enters when it is asked for a second time, from the
// resolver's cache, so that names asked once (a cold cache, a
// random-subdomain flood) do not churn the cache for the names in use.
// An entry is served for half the smallest TTL it holds, so that
// questions near the end of a TTL reach the resolver's cache again, where
// a popular name is prefetched; never after the resolver's cache was
// flushed (its epoch); never for an answer served stale, with an error,
// or truncated.

// cacheEpocher is a Recursor whose cache tells its flushes.
type cacheEpocher interface {
	CacheEpoch() uint64
	CountCacheHit()
}

// cacheEpoch returns the resolver cache's flush count, 0 without one.
func (s *Server) cacheEpoch() uint64 {
	if s.epocher != nil {
		return s.epocher.CacheEpoch()
	}
	return 0
}

// resolvedEntry fills e, for wire, a resolved answer, with what serving it
// again takes: its TTL offsets, when it was stored and until when it may
// be served. It reports false when the answer is not to be kept: a TTL
// under 2 s, or a message it cannot walk.
func (s *Server) resolvedEntry(e *cacheEntry, wire []byte, now time.Time) bool {
	offs, least, ok := ttlOffsets(wire)
	if !ok || least < 2 {
		return false
	}
	if s.epocher == nil {
		return false
	}
	stored := now.UnixNano()
	e.resolved = &resolvedAnswer{ttls: offs, stored: stored,
		expires: stored + int64(least/2)*int64(time.Second), epoch: s.epocher.CacheEpoch()}
	e.open = true // a zone added above the name takes the answer over
	return true
}

// ttlOffsets returns where the TTL of each record of m is, but the OPT
// record's (its TTL field holds flags), and the smallest of those TTLs.
// An answer without records has none; its smallest TTL is then 0.
func ttlOffsets(m []byte) (offs []uint16, least uint32, ok bool) {
	if len(m) < 12 || len(m) > 65535 {
		return nil, 0, false
	}
	off, ok := skipQuestions(m)
	if !ok {
		return nil, 0, false
	}
	n := int(binary.BigEndian.Uint16(m[6:])) + int(binary.BigEndian.Uint16(m[8:])) + int(binary.BigEndian.Uint16(m[10:]))
	offs = make([]uint16, 0, n)
	for range n {
		if off, ok = skipName(m, off); !ok || off+10 > len(m) {
			return nil, 0, false
		}
		if binary.BigEndian.Uint16(m[off:]) != 41 { // OPT
			ttl := binary.BigEndian.Uint32(m[off+4:])
			if len(offs) == 0 || ttl < least {
				least = ttl
			}
			offs = append(offs, uint16(off+4))
		}
		off += 10 + int(binary.BigEndian.Uint16(m[off+8:]))
		if off > len(m) {
			return nil, 0, false
		}
	}
	return offs, least, true
}

// lowerTTLs lowers the TTLs of out, a copy of a resolved answer, by the
// whole seconds since e was stored.
func lowerTTLs(out []byte, e *resolvedAnswer, now time.Time) {
	age := uint32((now.UnixNano() - e.stored) / int64(time.Second))
	if age == 0 {
		return
	}
	for _, o := range e.ttls {
		t := binary.BigEndian.Uint32(out[o:])
		binary.BigEndian.PutUint32(out[o:], t-min(age, t))
	}
}

// cacheHit counts a question answered from a resolved answer kept here as
// a hit of the resolver's cache.
func (s *Server) cacheHit() {
	if s.epocher != nil {
		s.epocher.CountCacheHit()
	}
}
