package resolver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// Serve-stale (RFC 8767). The cache keeps expired entries for its
// StaleWindow; Resolve serves them, with TTL Config.StaleTTL, when the
// resolution of a question cannot give a fresh answer:
//
//   - in island mode, for names outside the national namespace, at once
//     (nothing foreign is asked);
//   - when a resolution of the question failed less than FailureRecheck
//     ago (RFC 8767 §4, the failure recheck timer), at once;
//   - when the resolution takes longer than ClientTimeout (the client
//     response timer): the resolution goes on in the background and
//     refreshes the cache for the next client;
//   - when the resolution fails.
//
// A fresh answer always wins, and a successful resolution replaces the
// stale entries.

// maxBackground bounds the resolutions that go on after their client was
// answered stale; past it a stale answer is given without a refresh.
const maxBackground = 256

// maxRecheck bounds the failure-recheck table; past it the question that
// failed least recently is forgotten.
const maxRecheck = 1 << 16

// staleState is the serve-stale bookkeeping of a resolver.
type staleState struct {
	bg chan struct{} // a slot per background resolution

	mu     sync.Mutex
	failed *lru[question, time.Time] // question -> when its resolution last failed
}

func newStaleState() *staleState {
	return &staleState{bg: make(chan struct{}, maxBackground), failed: newLRU[question, time.Time](maxRecheck)}
}

// questionKey returns the key of the question (name, qtype) in the
// tables of questions under way and of failures.
func questionKey(name string, qtype uint16) question {
	return question{asciiLower(name), qtype}
}

// question is a question's name, lower-cased, and type: a map key that
// costs no allocation of its own.
type question struct {
	name  string
	qtype uint16
}

// recentlyFailed reports whether the resolution of key failed less than
// FailureRecheck ago.
func (r *Resolver) recentlyFailed(key question) bool {
	st := r.staleSt
	st.mu.Lock()
	defer st.mu.Unlock()
	t, ok := st.failed.get(key)
	if !ok {
		return false
	}
	if r.cfg.Now().Sub(t) >= r.cfg.FailureRecheck {
		st.failed.remove(key)
		return false
	}
	return true
}

// noteOutcome records whether the resolution of key failed.
func (r *Resolver) noteOutcome(key question, failed bool) {
	st := r.staleSt
	st.mu.Lock()
	defer st.mu.Unlock()
	if !failed {
		st.failed.remove(key)
		return
	}
	st.failed.put(key, r.cfg.Now())
}

// forgetFailures empties the failure-recheck table: the outside answers
// again, so stale entries are refreshed when next asked for.
func (r *Resolver) forgetFailures() {
	st := r.staleSt
	st.mu.Lock()
	st.failed.clear()
	st.mu.Unlock()
}

// failedResult reports whether res is a failure to reach upstream, which a
// stale answer may replace: a SERVFAIL, or an answer whose DNSSEC chain
// could not be fetched.
func failedResult(res Result) bool {
	if res.Err != nil {
		return true
	}
	return res.Sec == dnssec.Indeterminate && (errors.Is(res.Why, ErrNoReachableAuthority) || errors.Is(res.Why, ErrLame))
}

// foreignName reports whether resolving name needs foreign servers: it is
// not national, nor under a stub or forward zone.
func (r *Resolver) foreignName(name string) bool {
	if r.national(name) {
		return false
	}
	z := strings.ToLower(dns.Fqdn(name))
	for {
		if _, ok := r.cfg.Stubs[z]; ok {
			return false
		}
		if _, ok := r.cfg.Forwards[z]; ok {
			return false
		}
		if z == "." {
			return true
		}
		z = parentName(z)
	}
}

// staleAnswer answers (name, qtype) from the cache, expired entries
// included, following CNAMEs through it. stale reports whether any entry
// used had expired; ok is false when a step is not cached at all. With
// absent, the question's own entries are known not to be there (Miss).
func (r *Resolver) staleAnswer(name string, qtype uint16, absent bool) (res Result, stale, ok bool) {
	checked := r.val != nil
	skip := absent
	res, ok = r.follow(name, qtype, func(n string) (lookupResult, bool) {
		lr, st, ok := r.staleStep(n, qtype, checked, skip)
		skip = false
		stale = stale || st
		return lr, ok
	})
	if !ok || res.Err != nil {
		return Result{}, false, false
	}
	return res, stale, true
}

// serveStale marks res as a stale answer given for reason, with TTLs of
// at most StaleTTL (the expired records' TTL of 0 becomes StaleTTL).
func (r *Resolver) serveStale(res Result, reason string) Result {
	ttl := uint32(r.cfg.StaleTTL / time.Second)
	for _, sec := range [2][]dns.RR{res.Answer, res.Ns} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Ttl == 0 || h.Ttl > ttl {
				h.Ttl = ttl
			}
		}
	}
	res.Stale, res.StaleReason = true, reason
	r.stats.countStale(reason)
	if res.Synthesised {
		r.countSynthResult(res)
	}
	return res
}

// Stale answers (name, qtype) from the cache alone, expired entries
// included, for a question that cannot be resolved now (the server has
// its bound of resolutions under way). An answer made of expired entries
// is served stale (reason StaleReasonBusy); ok is false when the cache
// holds no answer or serve-stale is off. It never waits.
func (r *Resolver) Stale(name string, qtype uint16) (Result, bool) {
	if r.cache.staleWindow <= 0 {
		return Result{}, false
	}
	res, stale, ok := r.staleAnswer(name, qtype, false)
	if !ok {
		return Result{}, false
	}
	if stale {
		res = r.serveStale(res, StaleReasonBusy)
	}
	return res, true
}

// Resolve answers (name, qtype), following CNAMEs, within the configured
// time and work limits, and falls back to stale answers as described
// above.
func (r *Resolver) Resolve(ctx context.Context, name string, qtype uint16) Result {
	return r.ResolveMiss(ctx, name, qtype, Miss{})
}

// ResolveMiss is Resolve for a question whose Lookup just returned miss.
func (r *Resolver) ResolveMiss(ctx context.Context, name string, qtype uint16, miss Miss) Result {
	absent := miss.still(r.cache, name)
	if r.cache.staleWindow <= 0 {
		return r.resolve(ctx, name, qtype, absent)
	}
	old, stale, ok := r.staleAnswer(name, qtype, absent)
	if ok && !stale {
		return old // fresh in the cache
	}
	key := questionKey(name, qtype)
	if !ok {
		res := r.resolve(ctx, name, qtype, absent)
		r.noteOutcome(key, failedResult(res))
		return res
	}
	switch {
	case r.Island() && r.foreignName(name):
		r.kickTrial(ctx, name, qtype)
		return r.serveStale(old, StaleReasonIsland)
	case r.recentlyFailed(key):
		return r.serveStale(old, StaleReasonRecheck)
	}
	if r.cfg.ClientTimeout <= 0 {
		res := r.resolve(ctx, name, qtype, false)
		failed := failedResult(res)
		r.noteOutcome(key, failed)
		if failed {
			return r.serveStale(old, StaleReasonFailed)
		}
		return res
	}
	select {
	case r.staleSt.bg <- struct{}{}:
	default:
		return r.serveStale(old, StaleReasonTimeout) // too much under way to refresh it now
	}
	done := make(chan Result, 1)
	started := r.background(func(bctx context.Context) {
		defer func() { <-r.staleSt.bg }()
		// The resolution outlives the client's wait, within its own
		// ResolutionTimeout, until the resolver is closed.
		res := r.resolve(bctx, name, qtype, false)
		r.noteOutcome(key, failedResult(res))
		done <- res
	})
	if !started {
		<-r.staleSt.bg
		return r.serveStale(old, StaleReasonTimeout)
	}
	t := time.NewTimer(r.cfg.ClientTimeout)
	defer t.Stop()
	select {
	case res := <-done:
		if failedResult(res) {
			return r.serveStale(old, StaleReasonFailed)
		}
		return res
	case <-t.C:
		return r.serveStale(old, StaleReasonTimeout)
	case <-ctx.Done():
		return r.serveStale(old, StaleReasonTimeout)
	}
}
