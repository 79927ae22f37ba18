package resolver

import (
	"context"
	"time"

	"github.com/miekg/dns"
)

// warmAhead is added to twice the keep-warm interval to tell when an entry
// is refreshed: when its remaining TTL is below that, so that it never
// expires between two looks.
const warmAhead = 5 * time.Second

// keepWarm refreshes the keep-warm questions before their cache entries
// expire, until ctx ends, so that they are in the cache when the outside
// world becomes unreachable. Nothing is refreshed in island mode.
func (r *Resolver) keepWarm(ctx context.Context) {
	if len(r.cfg.KeepWarm) == 0 {
		return
	}
	t := time.NewTicker(r.cfg.KeepWarmInterval)
	defer t.Stop()
	for {
		if !r.Island() {
			for _, q := range r.cfg.KeepWarm {
				if ctx.Err() != nil {
					return
				}
				r.warm(ctx, q)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// warm refreshes one question when its answer is missing, stale, or
// expires within two keep-warm intervals.
func (r *Resolver) warm(ctx context.Context, q Question) {
	if m, ok := r.cache.GetStale(q.Name, q.Qtype); ok && !m.Stale &&
		time.Duration(m.TTL)*time.Second > 2*r.cfg.KeepWarmInterval+warmAhead {
		return
	}
	res := r.Refresh(ctx, q.Name, q.Qtype)
	if failedResult(res) {
		r.stats.WarmRefreshes[0].Add(1)
		r.log.Debug("keep-warm refresh failed", "name", q.Name, "type", dns.Type(q.Qtype), "err", res.Err)
		return
	}
	r.stats.WarmRefreshes[1].Add(1)
}

// Refresh resolves (name, qtype) upstream whatever the cache holds for it,
// and stores the answer; the CNAME targets of the answer are taken from
// the cache when fresh there.
func (r *Resolver) Refresh(ctx context.Context, name string, qtype uint16) Result {
	q := newQuestionCtx(ctx, r.cfg.ResolutionTimeout)
	defer q.end()
	ctx = q
	b := r.newBudget()
	validate := r.val != nil
	first := true
	res, _ := r.follow(name, qtype, func(n string) (lookupResult, bool) {
		if first {
			first = false
			return r.resolveStore(ctx, b, n, qtype, validate), true
		}
		return r.lookup(ctx, b, n, qtype), true
	})
	r.noteOutcome(questionKey(name, qtype), failedResult(res))
	return res
}
