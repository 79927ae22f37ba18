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

// resolvedEntry returns an entry for wire, a resolved answer, with what
// serving it again takes: when it was stored and until when it may be
// served; and its TTL offsets, appended to offs, for respCache.put. It
// reports false when the answer is not to be kept: a TTL under 2 s, or a
// message it cannot walk.
func (s *Server) resolvedEntry(wire, offs []byte, now time.Time) (*cacheEntry, []byte, bool) {
	offs, least, ok := ttlOffsets(offs, wire)
	if !ok || least < 2 || s.epocher == nil {
		return nil, nil, false
	}
	e := newResolvedEntry()
	stored := now.UnixNano()
	*e.resolved = resolvedAnswer{stored: stored,
		expires: stored + int64(least/2)*int64(time.Second), epoch: s.epocher.CacheEpoch()}
	e.open = true // a zone added above the name takes the answer over
	return e, offs, true
}

// ttlOffsets appends to offs where the TTL of each record of m is (two
// octets, big-endian), but the OPT record's (its TTL field holds flags),
// and returns the smallest of those TTLs. An answer without records has
// none; its smallest TTL is then 0.
func ttlOffsets(offs, m []byte) (_ []byte, least uint32, ok bool) {
	if len(m) < 12 || len(m) > 65535 {
		return nil, 0, false
	}
	off, ok := skipQuestions(m)
	if !ok {
		return nil, 0, false
	}
	n := int(binary.BigEndian.Uint16(m[6:])) + int(binary.BigEndian.Uint16(m[8:])) + int(binary.BigEndian.Uint16(m[10:]))
	start := len(offs)
	for range n {
		if off, ok = skipName(m, off); !ok || off+10 > len(m) {
			return nil, 0, false
		}
		if binary.BigEndian.Uint16(m[off:]) != 41 { // OPT
			ttl := binary.BigEndian.Uint32(m[off+4:])
			if len(offs) == start || ttl < least {
				least = ttl
			}
			offs = binary.BigEndian.AppendUint16(offs, uint16(off+4))
		}
		off += 10 + int(binary.BigEndian.Uint16(m[off+8:]))
		if off > len(m) {
			return nil, 0, false
		}
	}
	return offs, least, true
}

// lowerTTLs lowers the TTLs of out, a copy of a resolved answer stored
// at stored (unix nanoseconds) whose TTL offsets are ttls, by the whole
// seconds since.
func lowerTTLs(out, ttls []byte, stored int64, now time.Time) {
	age := uint32((now.UnixNano() - stored) / int64(time.Second))
	if age == 0 {
		return
	}
	for i := 0; i+1 < len(ttls); i += 2 {
		o := binary.BigEndian.Uint16(ttls[i:])
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
