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
type infra struct {
	mu    sync.Mutex
	hosts *lru[server, *hostState]
	now   func() time.Time
}

type hostState struct {
	srtt    time.Duration
	fails   int       // failures in a row
	probeAt time.Time // down: when the next probe may go
}

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

func newInfra() *infra { return &infra{hosts: newLRU[server, *hostState](maxInfra), now: time.Now} }

// host returns the state of s, created if need be. in.mu is held.
func (in *infra) host(s server) *hostState {
	h, ok := in.hosts.get(s)
	if !ok {
		h = &hostState{srtt: -1}
		in.hosts.put(s, h)
	}
	return h
}

func (in *infra) observe(s server, rtt time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	h := in.host(s)
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

// skip reports whether s is down and must not be asked now. A down server
// whose probe is due is not skipped: the question asking it is the probe,
// and the next is due probeEvery later.
func (in *infra) skip(s server) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	h, ok := in.hosts.get(s)
	if !ok || h.fails < downAfter {
		return false
	}
	now := in.now()
	if now.Before(h.probeAt) && !now.Before(h.probeAt.Add(-probeEvery)) {
		return true
	}
	h.probeAt = now.Add(probeEvery)
	return false
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
