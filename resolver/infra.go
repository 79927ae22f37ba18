package resolver

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// infra keeps what is known of each upstream server: a smoothed
// round-trip time, for choosing whom to ask, and its failures in a row,
// for not asking a dead one at all.
//
// A server never tried counts as unknownRTT (as Unbound does), so it is
// tried before servers known to be slower and after those known to be
// faster; ties go in random order. A timeout or a lame answer counts as a
// long RTT, doubling with each failure in a row.
//
// After downAfter failures in a row a server is down: it is sent one
// probe question every probeEvery (on the resolver's clock; a clock set
// back makes the probe due at once) and skipped otherwise, so that a
// flood of questions for a dead zone costs neither sockets nor waits, nor
// queries to its servers; the first answer brings it back.
//
// Apart from that ranking each server has a retransmission timeout, the
// time a query to it is waited on (RFC 6298, as TCP does): from the RTTs
// of its answers alone a smoothed RTT and an RTT variance, and RTO =
// SRTT + 4×RTTVAR within [minRTO, maxRTO]. A server never answered is
// waited on initialRTO (as Unbound's 376 ms); each timeout in a row
// doubles the RTO, up to maxRTO, and the next answer sets it from the
// estimate again. A server that
// answers in 5 ms is thus given up on after tens of milliseconds, not
// after the whole query timeout, and one that just stopped answering is
// waited on longer with each timeout.
type infra struct {
	mu     sync.Mutex
	hosts  *lru[server, *hostState]
	now    func() time.Time
	maxRTO time.Duration // the query timeout: the RTO's cap
}

type hostState struct {
	srtt    time.Duration // for ranking: answers smoothed, failures charged
	est     rttEstimate   // for the timeout: answers only
	fails   int           // failures in a row
	probeAt time.Time     // down: when the next probe may go
	answers uint64        // answers so far: did it answer since a query went?
}

// rttEstimate is the RTT estimate of one server (RFC 6298 §2): srtt and
// rttvar from the RTTs of its answers (sampled: there was one), and rto,
// the timeout before any clamping (0: initialRTO), doubled by each
// timeout in a row.
type rttEstimate struct {
	srtt, rttvar, rto time.Duration
	sampled           bool
}

// sample adds an answer's RTT to the estimate (RFC 6298 §2.2, §2.3:
// α = 1/8, β = 1/4); it ends any backoff.
func (e *rttEstimate) sample(rtt time.Duration) {
	rtt = max(rtt, 0)
	if !e.sampled {
		e.srtt, e.rttvar, e.sampled = rtt, rtt/2, true
	} else {
		d := e.srtt - rtt
		if d < 0 {
			d = -d
		}
		e.rttvar = (3*e.rttvar + d) / 4
		e.srtt = (7*e.srtt + rtt) / 8
	}
	e.rto = max(e.srtt+4*e.rttvar, 1)
}

// timeout returns the RTO within [minRTO, maxRTO]; initialRTO with no
// answer yet. A maxRTO below minRTO wins.
func (e *rttEstimate) timeout(maxRTO time.Duration) time.Duration {
	rto := e.rto
	if rto == 0 {
		rto = initialRTO
	}
	return min(max(rto, minRTO), maxRTO)
}

// backoff doubles the RTO after a timeout (RFC 6298 §5.5), up to maxRTO.
func (e *rttEstimate) backoff(maxRTO time.Duration) {
	e.rto = min(2*e.timeout(maxRTO), maxRTO)
}

// initialRTO is the timeout of a server never answered (RFC 6298 §2.1
// says 1 s for TCP; DNS servers answer faster, and Unbound starts at
// 376 ms).
const initialRTO = 400 * time.Millisecond

// minRTO is the shortest time a query is waited on, however fast its
// server has been: below it, scheduling delays on either side would pass
// for lost queries.
const minRTO = 50 * time.Millisecond

// unknownRTT is what a server never tried is taken to need.
const unknownRTT = 300 * time.Millisecond

// maxInfra bounds the servers remembered; past it the server used least
// recently is forgotten.
const maxInfra = 1 << 16

// downAfter failures in a row make a server down; a down server gets one
// probe every probeEvery.
const (
	downAfter  = 5
	probeEvery = 2 * time.Second
)

// errServerDown is a server not asked because it is down.
var errServerDown = errors.New("server down: failed in a row, probed every " + probeEvery.String())

// newInfra returns an empty table whose servers are waited on at most
// maxRTO.
func newInfra(maxRTO time.Duration) *infra {
	return &infra{hosts: newLRU[server, *hostState](maxInfra), now: time.Now, maxRTO: maxRTO}
}

// host returns the state of s, created if need be. in.mu is held.
func (in *infra) host(s server) *hostState {
	h, ok := in.hosts.get(s)
	if !ok {
		h = &hostState{srtt: -1}
		in.hosts.put(s, h)
	}
	return h
}

// observe records an answer from s that took rtt: it ends a run of
// failures, and the RTT counts towards both ranking and timeout.
func (in *infra) observe(s server, rtt time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	h := in.host(s)
	h.est.sample(rtt)
	h.rank(rtt)
	h.answers++
}

// demote ranks s as if it had answered in rtt, leaving its timeout alone:
// for a server that answered, in time, with something not usable.
func (in *infra) demote(s server, rtt time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.host(s).rank(rtt)
}

// rank smooths rtt into the ranking RTT; the run of failures ends.
func (h *hostState) rank(rtt time.Duration) {
	if h.srtt < 0 {
		h.srtt = rtt
	} else {
		h.srtt = (7*h.srtt + 3*rtt) / 10
	}
	h.fails = 0
}

// maxBackoff caps the RTT charged to a server that keeps failing.
const maxBackoff = 120 * time.Second

// failed charges a server that timed out or answered uselessly: at least
// base, doubling with each failure in a row (exponential backoff), so a
// dead server sinks behind every other and is tried again only when they
// fail too. A good answer (observe) brings it back gradually.
func (in *infra) failed(s server, base time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	h := in.host(s)
	h.srtt = min(max(2*h.srtt, base), maxBackoff)
	if h.fails++; h.fails == downAfter {
		h.probeAt = in.now().Add(probeEvery)
	}
}

// timedOut takes note that a query to s, sent when s had given answers
// answers (see timeout), went unanswered, and reports whether that counts
// against s. It does when s has answered nothing since: the timeout then
// backs off its RTO, and the caller charges the failure (failed). A
// server that answered other queries meanwhile is alive; it lost this
// one, or dropped it under load, as a busy server does with some of a
// burst, and a burst of such losses must not take it for dead (as
// Unbound backs off only a timeout whose RTO nothing updated since).
func (in *infra) timedOut(s server, answers uint64) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	h := in.host(s)
	if h.answers != answers {
		return false
	}
	h.est.backoff(in.maxRTO)
	return true
}

// hasAnswered reports whether s has ever answered (since it entered the
// table).
func (in *infra) hasAnswered(s server) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	h, ok := in.hosts.get(s)
	return ok && h.answers > 0
}

// timeout returns how long a query to s is waited on, its RTO, and the
// answers s has given so far, for timedOut.
func (in *infra) timeout(s server) (time.Duration, uint64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if h, ok := in.hosts.get(s); ok {
		return h.est.timeout(in.maxRTO), h.answers
	}
	return min(initialRTO, in.maxRTO), 0
}

// skip reports whether s is down and must not be asked now. A down server
// whose probe is due is not skipped: the question asking it is the probe,
// and the next is due probeEvery later.
func (in *infra) skip(s server) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	h, down, now := in.heldDown(s)
	if h == nil || down {
		return down
	}
	if h.fails >= downAfter {
		h.probeAt = now.Add(probeEvery) // this question is the probe
	}
	return false
}

// down reports whether s is down with no probe due: skip would skip it.
func (in *infra) down(s server) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	_, down, _ := in.heldDown(s)
	return down
}

// heldDown returns the state of s (nil if unknown), whether it is down
// with no probe due (a clock set back makes the probe due), and the time
// (read only for a server that has failed downAfter times in a row, zero
// otherwise). in.mu is held.
func (in *infra) heldDown(s server) (*hostState, bool, time.Time) {
	h, ok := in.hosts.get(s)
	if !ok {
		return nil, false, time.Time{}
	}
	if h.fails < downAfter {
		return h, false, time.Time{} // up: the time is not needed
	}
	now := in.now()
	down := now.Before(h.probeAt) && !now.Before(h.probeAt.Add(-probeEvery))
	return h, down, now
}

// rtt returns the smoothed RTT of s, or unknownRTT. in.mu is held.
func (in *infra) rtt(s server) time.Duration {
	if h, ok := in.hosts.get(s); ok && h.srtt >= 0 {
		return h.srtt
	}
	return unknownRTT
}

// order sorts servers by smoothed RTT, ties in random order.
func (in *infra) order(ss []server) []server {
	if len(ss) <= 1 {
		return ss // nothing to order; the caller does not modify it
	}
	out := slices.Clone(ss)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	in.mu.Lock()
	rtt := make(map[server]time.Duration, len(out))
	for _, s := range out {
		rtt[s] = in.rtt(s)
	}
	in.mu.Unlock()
	slices.SortStableFunc(out, func(a, b server) int { return int(rtt[a] - rtt[b]) })
	return out
}
