package resolver

// The addresses of a name server come from two sides: the parent's glue,
// sent with each referral, and the child zone's own A and AAAA records,
// which replace the glue in the cache when they are looked up (they rank
// higher). The two may differ, and the child's may be wrong where the
// glue works; so the glue of the referrals is also kept here, apart, and
// a zone's servers are asked at the addresses of both sides, in order of
// how well each address has answered (infra.go).

import (
	"slices"
	"sync"
	"time"
)

// maxGlueEntries bounds the glue store; it is emptied past it.
const maxGlueEntries = 1 << 14

type glueEntry struct {
	addrs  []server
	expire int64 // Unix nanoseconds
}

// glueStore holds the glue addresses of name servers, by lower-case name.
type glueStore struct {
	mu sync.Mutex
	m  map[string]glueEntry
}

// put keeps the glue addresses of ns for ttl, in place of those it had.
func (g *glueStore) put(ns string, addrs []server, now time.Time, ttl time.Duration) {
	if len(addrs) == 0 || ttl <= 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil || len(g.m) >= maxGlueEntries {
		g.m = map[string]glueEntry{}
	}
	g.m[ns] = glueEntry{addrs: addrs, expire: now.Add(ttl).UnixNano()}
}

// add appends to out the glue addresses of ns that it lacks; expired ones
// only with stale (island mode).
func (g *glueStore) add(out []server, ns string, now time.Time, stale bool) []server {
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.m[ns]
	if !ok {
		return out
	}
	if !stale && now.UnixNano() >= e.expire {
		return out
	}
	for _, a := range e.addrs {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// flushName forgets the glue of name servers at or below name ("": all).
func (g *glueStore) flushName(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if name == "" {
		clear(g.m)
		return
	}
	for k := range g.m {
		if atOrBelow(k, name) {
			delete(g.m, k)
		}
	}
}
