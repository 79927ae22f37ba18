package resolver

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// IslandConfig configures the detection of isolation ("island mode"): the
// outside world (every server not under Config.National, nor a configured
// stub or forwarder) no longer answers.
//
// Once the resolver has asked a foreign server, the probes (". NS" to a
// few of them at once) are asked every ProbeInterval, and at once when
// Failures queries in a row to foreign servers failed. When no probe
// answers, and no foreign server answered since the last look, the
// resolver enters island mode: stale answers are served at once for
// foreign names, and foreign servers are asked at most once per
// ProbeInterval (by a question that has no stale answer). A probe or a
// foreign server that answers ends island mode. Nothing is sent before
// the first question; a resolver restarted during an outage starts as an
// island when its saved state says it was one (RestoreIsland).
type IslandConfig struct {
	Disabled      bool
	Failures      int              // 0: 5
	Probes        []netip.AddrPort // nil: the root hints' addresses
	ProbeInterval time.Duration    // 0: 10s
}

func (c *IslandConfig) defaults() {
	if c.Failures <= 0 {
		c.Failures = 5
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = 5 * time.Second
	}
}

// probeTimeout bounds one probe query.
const probeTimeout = time.Second

// island is the isolation state.
type island struct {
	active atomic.Bool
	wake   chan struct{} // failures reached the threshold: probe now

	asked     atomic.Bool  // a foreign server has been asked: probing may start
	answered  atomic.Bool  // a foreign server answered since the last probe
	nextTrial atomic.Int64 // island mode: when a foreign server may be tried again (Unix ns)

	ticks atomic.Uint64 // probe-timer ticks handled (read by tests)

	mu          sync.Mutex
	failures    int // foreign failures in a row
	since       time.Time
	total       time.Duration // island time before the current period
	transitions uint64
	lastProbe   time.Time
	lastProbeOK bool
}

func newIsland() *island { return &island{wake: make(chan struct{}, 1)} }

// Island reports whether the resolver is in island mode.
func (r *Resolver) Island() bool { return r.island.active.Load() }

// national reports whether name is at or below one of the national
// suffixes.
func (r *Resolver) national(name string) bool {
	for _, s := range r.cfg.National {
		if atOrBelow(strings.ToLower(name), s) {
			return true
		}
	}
	return false
}

// foreign reports whether the servers of zone cut are outside the country:
// not national, nor configured (stubs and forwarders are the operator's
// own infrastructure).
func (r *Resolver) foreign(cut string) bool {
	if r.national(cut) {
		return false
	}
	cut = strings.ToLower(cut)
	if _, ok := r.cfg.Stubs[cut]; ok {
		return false
	}
	if _, ok := r.cfg.Forwards[cut]; ok {
		return false
	}
	return true
}

// skipForeign reports whether the servers of cut are not to be asked now:
// island mode, and they are foreign.
func (r *Resolver) skipForeign(cut string) bool {
	if r.cfg.Island.Disabled || !r.island.active.Load() || !r.foreign(cut) {
		return false
	}
	// Backed-off retries: one foreign query per probe interval goes out,
	// so that a resolver whose probes are blocked still finds the way out.
	now := r.cfg.Now().UnixNano()
	next := r.island.nextTrial.Load()
	if now >= next && r.island.nextTrial.CompareAndSwap(next, now+int64(r.cfg.Island.ProbeInterval)) {
		return false
	}
	return true
}

// infraRRset returns a cached delegation (NS) or server address RRset. In
// island mode expired ones serve too: the national zones' servers are
// still reachable, but the delegations to them, from the root and TLD
// servers, can no longer be refreshed.
func (r *Resolver) infraRRset(name string, t uint16) ([]dns.RR, bool) {
	if r.island.active.Load() {
		rrs, _, _, ok := r.cache.GetRRsetStale(name, t)
		return rrs, ok
	}
	rrs, _, ok := r.cache.GetRRset(name, t)
	return rrs, ok
}

// observeUpstream records the outcome of a query to a server of cut.
func (r *Resolver) observeUpstream(cut string, ok bool) {
	if r.cfg.Island.Disabled || !r.foreign(cut) {
		return
	}
	in := r.island
	in.asked.Store(true)
	if ok {
		in.answered.Store(true)
		if in.active.Load() {
			r.leaveIsland("a foreign server answered")
		}
		in.mu.Lock()
		in.failures = 0
		in.mu.Unlock()
		return
	}
	in.mu.Lock()
	in.failures++
	reached := in.failures >= r.cfg.Island.Failures
	in.mu.Unlock()
	if reached && !in.active.Load() {
		select {
		case in.wake <- struct{}{}:
		default:
		}
	}
}

func (r *Resolver) enterIsland(why string) {
	in := r.island
	in.mu.Lock()
	if in.active.Load() {
		in.mu.Unlock()
		return
	}
	in.since = r.cfg.Now()
	in.nextTrial.Store(in.since.Add(r.cfg.Island.ProbeInterval).UnixNano())
	in.transitions++
	in.active.Store(true)
	in.mu.Unlock()
	r.stats.IslandEntered.Add(1)
	r.persistNow("island mode entered")
	r.log.Warn("island mode: the outside world does not answer; serving stale answers and local copies, probing for recovery",
		"why", why, "probe_interval", r.cfg.Island.ProbeInterval)
}

func (r *Resolver) leaveIsland(why string) {
	in := r.island
	in.mu.Lock()
	if !in.active.Load() {
		in.mu.Unlock()
		return
	}
	d := r.cfg.Now().Sub(in.since)
	in.total += d
	in.transitions++
	in.failures = 0
	in.active.Store(false)
	in.mu.Unlock()
	r.stats.IslandLeft.Add(1)
	r.forgetFailures()
	r.log.Info("island mode over: the outside world answers again; stale entries are refreshed as they are asked for",
		"why", why, "duration", d.Round(time.Second))
}

// IslandSeconds is the time spent in island mode so far, the current
// period included.
func (r *Resolver) IslandSeconds() float64 {
	in := r.island
	in.mu.Lock()
	defer in.mu.Unlock()
	d := in.total
	if in.active.Load() {
		d += r.cfg.Now().Sub(in.since)
	}
	return d.Seconds()
}

// probeAddrs are the addresses asked whether the outside answers.
func (r *Resolver) probeAddrs() []server {
	if len(r.cfg.Island.Probes) > 0 {
		return r.cfg.Island.Probes
	}
	var out []server
	for _, rr := range r.cfg.RootHints {
		if s, ok := r.upstreamAddr(rr); ok {
			out = append(out, s)
		}
	}
	return out
}

// probe asks the probes ". NS", a few at once, and reports whether any
// answered.
func (r *Resolver) probe(ctx context.Context) bool {
	addrs := r.infra.order(r.probeAddrs())
	if len(addrs) > 4 {
		addrs = addrs[:4]
	}
	ok := false
	if len(addrs) > 0 {
		res := make(chan bool, len(addrs))
		for _, s := range addrs {
			go func() {
				m := new(dns.Msg)
				m.SetQuestion(".", dns.TypeNS)
				m.SetEdns0(1232, false)
				qctx, cancel := context.WithTimeout(ctx, probeTimeout)
				defer cancel()
				resp, _, err := r.ex.Exchange(qctx, m, s, false)
				res <- err == nil && resp != nil && (resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError)
			}()
		}
		for range addrs {
			if <-res {
				ok = true
			}
		}
	}
	r.stats.countProbe(ok)
	in := r.island
	in.mu.Lock()
	in.lastProbe, in.lastProbeOK = r.cfg.Now(), ok
	in.mu.Unlock()
	return ok
}

// runIsland watches for isolation until ctx ends: a probe at start, one
// whenever foreign failures reach the threshold, and every ProbeInterval
// in island mode.
func (r *Resolver) runIsland(ctx context.Context) {
	if r.cfg.Island.Disabled {
		return
	}
	in := r.island
	check := func(why string) {
		in.answered.Store(false)
		ok := r.probe(ctx)
		switch {
		case ctx.Err() != nil:
		case ok && in.active.Load():
			r.leaveIsland("a probe answered")
		case ok:
			in.mu.Lock()
			in.failures = 0 // the failures were of some servers, not of the outside
			in.mu.Unlock()
		case in.answered.Load():
			// A foreign server answered while the probes did not: the
			// outside is there, the probes are not the way to it.
		case !in.active.Load():
			r.enterIsland(why)
		}
	}
	t := time.NewTicker(r.cfg.Island.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-in.wake:
			if !in.active.Load() {
				check("foreign servers failed and no probe answered")
			}
		case <-t.C:
			in.ticks.Add(1)
			switch {
			case in.active.Load():
				check("")
			case in.asked.Load() && !in.answered.Load():
				// Nothing answered from outside since the last look: ask.
				check("no probe answered")
			default:
				in.answered.Store(false)
			}
		}
	}
}

// Health is the resolver's view of the outside world, for sovdns status.
type Health struct {
	Island          bool
	IslandSince     time.Time // zero when not in island mode
	IslandSeconds   float64   // in total since start
	Transitions     uint64    // into and out of island mode
	LastProbe       time.Time
	LastProbeOK     bool
	ForeignFailures int // foreign queries failed in a row
	Servers         []ServerHealth
}

// ServerHealth is what the resolver knows of one upstream server.
type ServerHealth struct {
	Addr    netip.AddrPort
	SRTT    time.Duration
	Failing bool // its last queries failed (its RTT is a penalty)
}

// maxHealthServers bounds the servers listed in Health.
const maxHealthServers = 32

// Health returns the island state and the upstream servers, failing ones
// first, then by round-trip time.
func (r *Resolver) Health() Health {
	in := r.island
	in.mu.Lock()
	h := Health{
		Island:          in.active.Load(),
		Transitions:     in.transitions,
		LastProbe:       in.lastProbe,
		LastProbeOK:     in.lastProbeOK,
		ForeignFailures: in.failures,
	}
	if h.Island {
		h.IslandSince = in.since
	}
	in.mu.Unlock()
	h.IslandSeconds = r.IslandSeconds()
	pen := r.penalty()
	r.infra.mu.Lock()
	for s, rtt := range r.infra.srtt {
		h.Servers = append(h.Servers, ServerHealth{Addr: s, SRTT: rtt, Failing: rtt >= pen})
	}
	r.infra.mu.Unlock()
	slices.SortFunc(h.Servers, func(a, b ServerHealth) int {
		if a.Failing != b.Failing {
			if a.Failing {
				return -1
			}
			return 1
		}
		if a.SRTT != b.SRTT {
			return int(a.SRTT - b.SRTT)
		}
		return a.Addr.Compare(b.Addr)
	})
	if len(h.Servers) > maxHealthServers {
		h.Servers = h.Servers[:maxHealthServers]
	}
	return h
}

// RestoreIsland starts the resolver in island mode, as it was when its
// state was saved (a restart during an outage): stale answers at once, and
// probes until the outside answers.
func (r *Resolver) RestoreIsland() {
	if !r.cfg.Island.Disabled {
		r.enterIsland("it was an island when its cache was saved")
	}
}

// Stats returns the resolver's counters.
func (r *Resolver) Stats() *Stats { return r.stats }
