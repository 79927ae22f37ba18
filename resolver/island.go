package resolver

import (
	"context"
	"errors"
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
// The probes (". NS" to a few of them at once) are asked at once when the
// resolver first asks a foreign server, so that a node cut off from the
// start finds out within one probe timeout (a question whose foreign
// server failed waits for a probe under way before it tries the next
// server); then every ProbeInterval while no foreign server answers, and
// at once when Failures queries in a row to foreign servers failed. When
// no probe answers, and no foreign server answered since the last look,
// the resolver enters island mode: no client waits on a foreign server any
// more. Foreign names are answered stale at once, what is not known fails
// (ErrNoReachableAuthority), national names are resolved from the
// national zone cuts, and a resolution that was waiting on a foreign
// server stops before asking the next one.
//
// In island mode the outside is tried by questions: at most one foreign
// query every IslandTrialInterval goes out (a question that needs a
// foreign server, or the refresh of a stale answer), and the question that
// sent it waits for it at most TrialWait (so do the questions that
// come together with it). The first foreign answer ends island mode (a
// trial's also wakes the prober), so the questions that follow are
// resolved upstream at once. Nothing is sent before the first question; a
// resolver restarted during an outage starts as an island when its saved
// state says it was one (RestoreIsland), and probes at once.
type IslandConfig struct {
	Disabled      bool
	Failures      int              // 0: 5
	Probes        []netip.AddrPort // nil: the root hints' addresses
	ProbeInterval time.Duration    // 0: 5s
	TrialWait     time.Duration    // 0: IslandTrialWait
}

func (c *IslandConfig) defaults() {
	if c.Failures <= 0 {
		c.Failures = 5
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = 5 * time.Second
	}
	if c.TrialWait <= 0 {
		c.TrialWait = IslandTrialWait
	}
}

// probeTimeout bounds one probe query.
const probeTimeout = time.Second

// IslandTrialInterval is the least time between two trial queries to
// foreign servers in island mode, and IslandTrialWait the longest a
// question waits for the trial it sent before it is answered without it,
// unless IslandConfig.TrialWait says otherwise.
// The links' return is found within a trial interval and a round trip of
// the first question after it.
const (
	IslandTrialInterval = 100 * time.Millisecond
	IslandTrialWait     = 25 * time.Millisecond
)

// island is the isolation state.
type island struct {
	active    atomic.Bool
	wake      chan string   // probe now, and enter island mode for this reason when none answers
	recovered chan struct{} // a foreign server ended island mode: back to the normal schedule

	asked     atomic.Bool  // a foreign server has been asked: probing may start
	answered  atomic.Bool  // a foreign server answered since the last probe
	nextTrial atomic.Int64 // island mode: when a foreign server may be tried again (Unix ns)

	ticks atomic.Uint64 // probe-timer ticks handled (read by tests)

	// The trial query under way, if any: closed when it is answered or
	// fails, and when it was sent (wall clock: questions wait on it).
	trialMu   sync.Mutex
	trialDone chan struct{}
	trialSent time.Time

	// probing is closed when the probe under way ends; nil when none is.
	probeMu sync.Mutex
	probing chan struct{}

	mu          sync.Mutex
	failures    int // foreign failures in a row
	since       time.Time
	total       time.Duration // island time before the current period
	transitions uint64
	lastProbe   time.Time
	lastProbeOK bool
}

func newIsland() *island {
	return &island{wake: make(chan string, 1), recovered: make(chan struct{}, 1)}
}

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

// islandBars reports whether the servers of cut are not to be asked now:
// island mode, and they are foreign.
func (r *Resolver) islandBars(cut string) bool {
	return !r.cfg.Island.Disabled && r.island.active.Load() && r.foreign(cut)
}

// trialSlot takes the slot of a trial query if one may go out now (at
// most one per IslandTrialInterval) and returns the channel to close when
// the trial is over, or nil. The trial is registered with the slot, in
// one step: a question that finds the slot taken waits on this trial
// (awaitTrial), never on the one before it.
func (r *Resolver) trialSlot() chan struct{} {
	in := r.island
	in.trialMu.Lock()
	defer in.trialMu.Unlock()
	now := r.cfg.Now().UnixNano()
	if now < in.nextTrial.Load() {
		return nil
	}
	in.nextTrial.Store(now + int64(IslandTrialInterval))
	in.trialDone, in.trialSent = make(chan struct{}), time.Now()
	return in.trialDone
}

// trialFree reports whether a trial query could go out now.
func (r *Resolver) trialFree() bool {
	return r.cfg.Now().UnixNano() >= r.island.nextTrial.Load()
}

// errTrialPending: the trial query did not answer within the trial wait.
var errTrialPending = errors.New("trial query not answered yet")

// trialQuery sends the trial query whose slot gave over (trialSlot) in
// island mode (query, to server s of cut) and waits for it at most the
// trial wait (IslandConfig.TrialWait). The query goes on after that, on
// its own, until its own timeout; its answer ends island mode whenever it
// comes, and over is closed when it is over.
func (r *Resolver) trialQuery(ctx context.Context, over chan struct{}, cut string, s server, name string, qtype uint16) (*dns.Msg, error) {
	r.stats.IslandTrials.Add(1)
	type result struct {
		resp *dns.Msg
		err  error
	}
	done := make(chan result, 1)
	if !r.background(func(bctx context.Context) {
		resp, err := r.query(bctx, cut, s, name, qtype, false, false)
		if !errors.Is(err, ErrRateLimited) && !errors.Is(err, ErrZoneBusy) {
			r.observeUpstream(cut, err == nil)
		}
		close(over)
		done <- result{resp, err}
	}) {
		close(over)
		return nil, errClosed
	}
	t := time.NewTimer(r.cfg.Island.TrialWait)
	defer t.Stop()
	select {
	case res := <-done:
		return res.resp, res.err
	case <-t.C:
		return nil, errTrialPending
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// awaitTrial waits for the trial query under way, if it was sent less
// than the trial wait ago, until it is over or that time has passed, and
// reports whether island mode is over: questions that come together with
// the one that sent the trial are not failed while it may still end
// island mode.
func (r *Resolver) awaitTrial(ctx context.Context) bool {
	in := r.island
	in.trialMu.Lock()
	done, sent := in.trialDone, in.trialSent
	in.trialMu.Unlock()
	left := r.cfg.Island.TrialWait - time.Since(sent)
	if done == nil || left <= 0 {
		return !in.active.Load()
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
	return !in.active.Load()
}

// awaitProbe waits for the probe under way, if any, to end: a question
// whose foreign server failed lets the probes (a few servers at once)
// tell whether the outside is there before it tries the next one, so that
// a node cut off waits one probe timeout, not one query timeout per
// server.
func (r *Resolver) awaitProbe(ctx context.Context) {
	in := r.island
	in.probeMu.Lock()
	done := in.probing
	in.probeMu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// awaitProbeThenIsland waits for the probe under way (awaitProbe) and
// reports whether island mode began.
func (r *Resolver) awaitProbeThenIsland(ctx context.Context) bool {
	r.awaitProbe(ctx)
	return r.island.active.Load()
}

// noteForeignAsk is called before a query to a foreign server: the first
// one wakes the prober, so that a node cut off from the start finds out
// within one probe timeout rather than one query timeout per server.
func (r *Resolver) noteForeignAsk() {
	if r.cfg.Island.Disabled || r.island.asked.Swap(true) {
		return
	}
	select {
	case r.island.wake <- "no foreign server has answered since start, and no probe answered":
	default:
	}
}

// kickTrial, in island mode, refreshes (name, qtype) in the background as
// a trial of the outside when a trial may go out now: a question answered
// stale from the cache tells when the links are back too.
func (r *Resolver) kickTrial(ctx context.Context, name string, qtype uint16) {
	if !r.trialFree() {
		return
	}
	select {
	case r.staleSt.bg <- struct{}{}:
	default:
		return
	}
	if !r.background(func(bctx context.Context) {
		defer func() { <-r.staleSt.bg }()
		r.Refresh(bctx, name, qtype)
	}) {
		<-r.staleSt.bg
	}
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
		if in.active.Load() && r.leaveIsland("a foreign server answered") {
			select {
			case in.recovered <- struct{}{}:
			default:
			}
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
		case in.wake <- "foreign servers failed and no probe answered":
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
	in.nextTrial.Store(in.since.Add(IslandTrialInterval).UnixNano())
	in.transitions++
	in.active.Store(true)
	in.mu.Unlock()
	r.stats.IslandEntered.Add(1)
	r.persistNow("island mode entered")
	r.log.Warn("island mode: the outside world does not answer; serving stale answers and local copies, probing for recovery",
		"why", why, "probe_interval", r.cfg.Island.ProbeInterval)
}

// leaveIsland ends island mode, and reports whether it was on.
func (r *Resolver) leaveIsland(why string) bool {
	in := r.island
	in.mu.Lock()
	if !in.active.Load() {
		in.mu.Unlock()
		return false
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
	return true
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
// answered. decide, if not nil, acts on the result before the questions
// waiting for the probe (awaitProbe) go on, so that they see its outcome
// (island mode entered or not).
func (r *Resolver) probe(ctx context.Context, decide func(ok bool)) bool {
	in := r.island
	done := make(chan struct{})
	in.probeMu.Lock()
	in.probing = done
	in.probeMu.Unlock()
	defer func() {
		in.probeMu.Lock()
		in.probing = nil
		in.probeMu.Unlock()
		close(done)
	}()
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
	in.mu.Lock()
	in.lastProbe, in.lastProbeOK = r.cfg.Now(), ok
	in.mu.Unlock()
	if decide != nil {
		decide(ok)
	}
	return ok
}

// decideIsland acts on a probe's result ok, for a probe sent because of
// why: island mode ends when a probe answers, begins when none did and no
// foreign server answered meanwhile.
func (r *Resolver) decideIsland(ctx context.Context, ok bool, why string) {
	in := r.island
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

// runIsland watches for isolation until ctx ends: a probe at the first
// foreign query, one whenever foreign failures reach the threshold, and
// every ProbeInterval in island mode (at once when the resolver starts as
// an island). When a foreign answer ends island mode, a probe confirms it
// for Health and the schedule starts again from there.
func (r *Resolver) runIsland(ctx context.Context) {
	if r.cfg.Island.Disabled {
		return
	}
	in := r.island
	check := func(why string) {
		in.answered.Store(false)
		r.probe(ctx, func(ok bool) { r.decideIsland(ctx, ok, why) })
	}
	if in.active.Load() {
		check("") // restored: the outside may have come back meanwhile
	}
	t := time.NewTicker(r.cfg.Island.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case why := <-in.wake:
			if !in.active.Load() {
				check(why)
			}
		case <-in.recovered:
			// A foreign server answered: the outside is there whatever
			// the probe says; it only brings Health up to date.
			t.Reset(r.cfg.Island.ProbeInterval)
			if !in.active.Load() && r.probe(ctx, nil) {
				in.mu.Lock()
				in.failures = 0
				in.mu.Unlock()
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
	for s, hs := range r.infra.hosts.all() {
		if hs.srtt >= 0 {
			h.Servers = append(h.Servers, ServerHealth{Addr: s, SRTT: hs.srtt, Failing: hs.srtt >= pen})
		}
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
