package resolver

// Prefetch, as Unbound's prefetch option: a cached answer asked for in
// the last tenth of its TTL is answered from the cache at once, and
// resolved again in the background, so that the names in use are always
// fresh (and fresh when a cut starts). Only entries stored with a TTL of
// at least prefetchMinTTL are prefetched: shorter ones would be refreshed
// on nearly every question.
//
// A prefetch is one resolution of the question, validated and stored as
// any other; it takes the question's place in the table of resolutions
// under way, so a client's question for it waits for it rather than
// starting another, and a prefetch never starts while that question is
// being resolved. At most Config.MaxPrefetches run at once; past that the
// entry is left to expire and counted as skipped. A prefetch that fails
// is not tried again for Config.FailureRecheck (the failure-recheck table
// of serve-stale), and foreign names are not prefetched in island mode.

import (
	"context"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

const (
	// prefetchMinTTL is the shortest original TTL, in seconds, of an
	// entry that is prefetched.
	prefetchMinTTL = 10
	// defaultMaxPrefetches is Config.MaxPrefetches when zero.
	defaultMaxPrefetches = 32
)

// The results of prefetches, indexed as Stats.Prefetches.
const (
	PrefetchOK      = "ok"      // resolved and stored
	PrefetchFailed  = "failed"  // the resolution failed
	PrefetchSkipped = "skipped" // not started: MaxPrefetches were under way
)

// PrefetchResults are the metric label values of Stats.Prefetches.
var PrefetchResults = [...]string{PrefetchOK, PrefetchFailed, PrefetchSkipped}

// AggressiveLabels are the metric label values (rcode, proof) of
// Stats.AggressiveAnswers, by index.
var AggressiveLabels = [...][2]string{{"NXDOMAIN", "nsec"}, {"NXDOMAIN", "nsec3"}, {"NOERROR", "nsec"}, {"NOERROR", "nsec3"}}

// initFreshness sets up prefetch and the aggressive use of NSEC.
func (r *Resolver) initFreshness() {
	n := r.cfg.MaxPrefetches
	if n <= 0 {
		n = defaultMaxPrefetches
	}
	r.pfSlots = make(chan struct{}, n)
	if r.val != nil && r.cfg.DNSSEC.AggressiveNSEC {
		r.cache.denials.on.Store(true)
	}
}

// prefetchDue reports whether m, a fresh cached answer, is in the last
// tenth of its TTL and long-lived enough to be prefetched.
func (r *Resolver) prefetchDue(m Message) bool {
	return r.cfg.Prefetch && !m.Stale && m.OrigTTL >= prefetchMinTTL && uint64(m.TTL)*10 < uint64(m.OrigTTL)
}

// prefetch resolves (name, qtype) again in the background, unless it is
// being resolved, failed a moment ago, is foreign in island mode, or too
// many prefetches are under way.
func (r *Resolver) prefetch(name string, qtype uint16) {
	key := questionKey(name, qtype)
	if r.recentlyFailed(key) || (r.Island() && r.foreignName(name)) {
		return
	}
	r.mu.Lock()
	if _, busy := r.flight[key]; busy {
		r.mu.Unlock()
		return
	}
	select {
	case r.pfSlots <- struct{}{}:
	default:
		r.mu.Unlock()
		r.stats.Prefetches[2].Add(1)
		return
	}
	c := r.newCall()
	r.flight[key] = c
	r.mu.Unlock()

	started := r.background(func(ctx context.Context) {
		defer func() { <-r.pfSlots }()
		q := newQuestionCtx(ctx, r.cfg.ResolutionTimeout)
		defer q.end()
		ctx = q
		res := r.resolveStore(ctx, r.newBudget(), name, qtype, r.val != nil)
		r.end(key, c, res)
		failed := failedResult(Result{Err: res.err, Sec: res.sec, Why: res.why})
		r.noteOutcome(key, failed)
		if failed {
			r.stats.Prefetches[1].Add(1)
			r.log.Debug("prefetch failed", "qname", name, "qtype", dns.Type(qtype), "err", res.err)
			return
		}
		r.stats.Prefetches[0].Add(1)
	})
	if !started { // closed: a question waiting on it fails
		r.end(key, c, lookupResult{err: errClosed})
		<-r.pfSlots
	}
}

// staleStep answers one name for serve-stale (staleAnswer): a cached
// entry, fresh or stale, else a denial synthesised from validated NSEC or
// NSEC3 records, stale ones included. A fresh synthesis wins over a stale
// entry; a fresh entry due for prefetch is prefetched. With skip, the
// name's own entries are known to be absent (Miss) and not looked for.
func (r *Resolver) staleStep(name string, qtype uint16, checked, skip bool) (lr lookupResult, stale, ok bool) {
	var m Message
	found := false
	if !skip {
		m, found = r.cache.GetStale(name, qtype)
		found = found && !(checked && m.Sec == dnssec.Unchecked)
		if !found && qtype != dns.TypeCNAME {
			m, found = r.cache.GetStale(name, dns.TypeCNAME)
			found = found && m.Kind == MsgAnswer && !(checked && m.Sec == dnssec.Unchecked)
		}
	}
	if found && !m.Stale {
		if r.prefetchDue(m) {
			r.prefetch(name, qtype)
		}
		return lookupResult{rcode: m.Rcode, answer: m.Answer, ns: m.Ns, sec: m.Sec, why: m.Why}, false, true
	}
	if s, st, ok := r.synthesise(name, qtype, !found); ok && (!st || !found) {
		return s, st, true
	}
	if found {
		return lookupResult{rcode: m.Rcode, answer: m.Answer, ns: m.Ns, sec: m.Sec, why: m.Why}, true, true
	}
	return lookupResult{}, false, false
}
