package resolver

import (
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// infra keeps a smoothed round-trip time per upstream server, for choosing
// whom to ask. A server never tried counts as unknownRTT (as Unbound does),
// so it is tried before servers known to be slower and after those known
// to be faster; ties go in random order. A timeout or a lame answer counts
// as a long RTT.
type infra struct {
	mu   sync.Mutex
	srtt map[server]time.Duration
}

// unknownRTT is what a server never tried is taken to need.
const unknownRTT = 300 * time.Millisecond

// maxInfra bounds the servers remembered; the table is emptied past it.
const maxInfra = 1 << 16

func newInfra() *infra { return &infra{srtt: map[server]time.Duration{}} }

func (in *infra) observe(s server, rtt time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.srtt) >= maxInfra {
		clear(in.srtt)
	}
	old, ok := in.srtt[s]
	if !ok {
		in.srtt[s] = rtt
		return
	}
	in.srtt[s] = (7*old + 3*rtt) / 10
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
	if len(in.srtt) >= maxInfra {
		clear(in.srtt)
	}
	in.srtt[s] = min(max(2*in.srtt[s], base), maxBackoff)
}

// order sorts servers by smoothed RTT, ties in random order.
func (in *infra) order(ss []server) []server {
	out := slices.Clone(ss)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	in.mu.Lock()
	rtt := make(map[server]time.Duration, len(out))
	for _, s := range out {
		v, ok := in.srtt[s]
		if !ok {
			v = unknownRTT
		}
		rtt[s] = v
	}
	in.mu.Unlock()
	slices.SortStableFunc(out, func(a, b server) int { return int(rtt[a] - rtt[b]) })
	return out
}
