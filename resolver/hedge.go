package resolver

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/miekg/dns"
)

// Parallel tries. A query over UDP is waited on its server's RTO when the
// zone has another server left (query); when the RTO passes, the next
// server is asked, but the first query's socket stays open until the
// whole query_timeout from when it went, and its answer, if it comes
// first, is taken: a slow server costs the client the shorter of its own
// time and the next server's, never both (as Knot Resolver keeps its
// earlier queries open). hedge holds the queries of one zone's servers
// that are so waited on for one question.
type hedge struct {
	r    *Resolver
	q    context.Context // the question's
	zone string

	mu sync.Mutex
	// cancel ends the query under way, when a late answer comes first.
	cancel context.CancelFunc
	// results holds the usable late answers not taken yet; pending
	// counts the late waits not ended. signal (one slot) wakes a waiter
	// when either changes.
	results []lateResult
	pending int
	signal  chan struct{}

	late    context.Context // the late waits', ended by stop
	endLate context.CancelFunc
	wg      sync.WaitGroup
}

func newHedge(r *Resolver, q context.Context, zone string) *hedge {
	return &hedge{r: r, q: q, zone: zone}
}

// lateResult is a usable late answer, from s.
type lateResult struct {
	s    server
	resp *dns.Msg
}

// queryCtx returns the context for the next query of the zone, and what
// to call when it is over: the question's until a query waits late, then
// one of its own (own), which a late answer ends (already ended when one
// has come and is not taken yet: the query need not go).
func (h *hedge) queryCtx() (ctx context.Context, done func(), own bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.signal == nil {
		return h.q, func() {}, false
	}
	ctx, cancel := context.WithCancel(h.q)
	if len(h.results) > 0 {
		cancel()
	}
	h.cancel = cancel
	return ctx, cancel, true
}

// add waits, on a goroutine of its own, for the late answer of q, sent to
// s of the zone, until query_timeout after it went.
func (h *hedge) add(s server, q *lateQuery) {
	h.mu.Lock()
	if h.signal == nil {
		h.late, h.endLate = context.WithCancel(h.q)
		h.signal = make(chan struct{}, 1)
	}
	h.pending++
	h.mu.Unlock()
	r := h.r
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		var note exchangeNote
		resp, rtt, err := q.wait(h.late, q.start.Add(r.cfg.QueryTimeout), &note)
		if note.unwanted > 0 && r.noteUnwanted(h.zone, s, note.unwanted) && err == nil {
			resp, err = nil, fmt.Errorf("%s: %w", s, errSpoofing)
		}
		// The query was counted when its RTO passed; what is counted
		// now is what came of it, if anything did.
		r.stats.countLate(resp, err)
		if err == nil {
			err = lateUsable(resp, q.m)
		}
		if err == nil {
			r.infra.observe(s, rtt)
			r.waits.answered(h.zone, q.start.Add(rtt))
			r.stats.LateAnswers.Add(1)
		}
		h.mu.Lock()
		h.pending--
		if err == nil {
			h.results = append(h.results, lateResult{s: s, resp: resp})
			if h.cancel != nil {
				h.cancel() // the query under way: this answer came first
			}
		}
		h.mu.Unlock()
		select {
		case h.signal <- struct{}{}:
		default:
		}
	}()
}

// lateUsable says whether a late answer can be taken as it is: one that
// would have been asked again (truncated, a new cookie, FORMERR, 0x20
// not echoed) is not, as its query is over.
func lateUsable(resp, m *dns.Msg) error {
	switch {
	case resp.Truncated:
		return errors.New("late answer truncated")
	case resp.Rcode == dns.RcodeBadCookie || resp.Rcode == dns.RcodeFormatError:
		return fmt.Errorf("late answer %s", dns.RcodeToString[resp.Rcode])
	case len(resp.Question) > 0 && len(m.Question) > 0 && resp.Question[0].Name != m.Question[0].Name:
		return errors.New("late answer does not echo the question's spelling")
	}
	return nil
}

// answer returns a usable late answer that has come, if any; with wait,
// it waits for one while late waits are pending (or until ctx ends).
func (h *hedge) answer(ctx context.Context, wait bool) (lateResult, bool) {
	for {
		h.mu.Lock()
		if len(h.results) > 0 {
			a := h.results[0]
			h.results = h.results[1:]
			h.mu.Unlock()
			return a, true
		}
		pending := h.pending
		h.mu.Unlock()
		if !wait || pending == 0 {
			return lateResult{}, false
		}
		select {
		case <-h.signal:
		case <-ctx.Done():
			return lateResult{}, false
		}
	}
}

// stop ends the late waits and waits for their goroutines.
func (h *hedge) stop() {
	h.mu.Lock()
	if h.endLate != nil {
		h.endLate()
	}
	if h.cancel != nil {
		h.cancel()
	}
	h.mu.Unlock()
	h.wg.Wait()
}
