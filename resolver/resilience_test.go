package resolver_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
)

// stepClock is a clock that moves only when told to.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// cut makes the servers at addrs stop answering (dead true) or answer
// again.
func (f *fakeNet) cut(dead bool, addrs ...netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead == nil {
		f.dead = map[netip.Addr]bool{}
	}
	for _, a := range addrs {
		f.dead[a] = dead
	}
}

// foreignServers are the servers of the test hierarchy outside az.
var foreignServers = []netip.Addr{ipRoot, ipCom, ipEx, ipDNS}

func staleResolver(t *testing.T, f *fakeNet, hints []dns.RR, mod func(*resolver.Config)) (*resolver.Resolver, *stepClock) {
	t.Helper()
	clk := &stepClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20, StaleWindow: 72 * time.Hour, Now: clk.Now})
	cfg := resolver.Config{RootHints: hints, QueryTimeout: 20 * time.Millisecond, ResolutionTimeout: time.Second,
		Now: clk.Now, National: []string{"az."}, Island: resolver.IslandConfig{Failures: 2, ProbeInterval: 10 * time.Millisecond}}
	if mod != nil {
		mod(&cfg)
	}
	return resolver.New(cfg, f, cache, nil, nil), clk
}

func resolveOK(t *testing.T, r *resolver.Resolver, name string, qtype uint16) resolver.Result {
	t.Helper()
	res := r.Resolve(context.Background(), name, qtype)
	if res.Err != nil || res.Rcode != dns.RcodeSuccess || len(res.Answer) == 0 {
		t.Fatalf("%s %s: rcode %s, err %v, answer %v", name, dns.Type(qtype), dns.RcodeToString[res.Rcode], res.Err, res.Answer)
	}
	return res
}

// TestServeStale walks RFC 8767: a failed refresh serves the expired
// answer with the stale TTL, the failure-recheck timer spares the dead
// servers, and once they answer again fresh data replaces the stale.
func TestServeStale(t *testing.T) {
	f, hints := hierarchy(t)
	r, clk := staleResolver(t, f, hints, func(c *resolver.Config) { c.Island.Disabled = true })
	resolveOK(t, r, "www.example.com.", dns.TypeA)
	resolveOK(t, r, "e-services.gov.az.", dns.TypeA)

	f.cut(true, foreignServers...)
	clk.Advance(2 * time.Hour) // every TTL of the hierarchy has run out

	res := resolveOK(t, r, "www.example.com.", dns.TypeA)
	if !res.Stale || res.StaleReason != resolver.StaleReasonFailed {
		t.Fatalf("stale %v (%s), want a stale answer after the failed refresh", res.Stale, res.StaleReason)
	}
	if ttl := res.Answer[0].Header().Ttl; ttl != 30 {
		t.Errorf("stale TTL %d, want 30", ttl)
	}
	// A CNAME chain from a national name into the dead foreign zone.
	if res := resolveOK(t, r, "e-services.gov.az.", dns.TypeA); !res.Stale || len(res.Answer) != 2 {
		t.Errorf("chain: stale %v, answer %v", res.Stale, res.Answer)
	}

	// Within the failure-recheck time nothing is asked upstream.
	n := f.count()
	res = resolveOK(t, r, "www.example.com.", dns.TypeA)
	if res.StaleReason != resolver.StaleReasonRecheck || f.count() != n {
		t.Errorf("reason %q, %d upstream queries; want %q and none", res.StaleReason, f.count()-n, resolver.StaleReasonRecheck)
	}

	// Data never cached is a plain failure.
	if res := r.Resolve(context.Background(), "www.slow.com.", dns.TypeA); res.Err == nil || res.Stale {
		t.Errorf("uncached name: err %v stale %v, want a failure", res.Err, res.Stale)
	}

	// The servers come back with new data; after the recheck time the
	// next question refreshes the entry.
	f.mu.Lock()
	f.servers[ipEx] = zone.NewSet(mustZone(t, "example.com.", "@ SOA ns h 2 2 3 4 300\n@ NS ns\nns A 192.0.2.6\nwww A 198.51.100.99\n"))
	f.mu.Unlock()
	f.cut(false, foreignServers...)
	clk.Advance(31 * time.Second)
	res = resolveOK(t, r, "www.example.com.", dns.TypeA)
	if res.Stale || res.Answer[0].(*dns.A).A.String() != "198.51.100.99" {
		t.Fatalf("after recovery: stale %v, answer %v; want the new address, fresh", res.Stale, res.Answer)
	}
	st := r.Stats()
	if st.StaleAnswers[0].Load() < 2 || st.StaleAnswers[2].Load() != 1 {
		t.Errorf("stale answers by reason %d/%d/%d/%d", st.StaleAnswers[0].Load(), st.StaleAnswers[1].Load(),
			st.StaleAnswers[2].Load(), st.StaleAnswers[3].Load())
	}
}

// TestLookupMiss: a Lookup that finds nothing hands the resolution what
// it saw. A name with no entry at all is not looked up again (two Get
// calls fewer, one upstream query as before), unless an entry was stored
// since: a question that waited while the same name was resolved takes
// the answer from the cache. A name whose entries have expired is still
// served stale from them.
func TestLookupMiss(t *testing.T) {
	f, hints := hierarchy(t)
	r, clk := staleResolver(t, f, hints, func(c *resolver.Config) { c.Island.Disabled = true })
	ctx := context.Background()
	resolveOK(t, r, "www.example.com.", dns.TypeA) // the delegations are cached

	// resolveCost returns the cache misses and upstream queries one
	// resolution of name took.
	resolveCost := func(name string, useMiss bool) (misses uint64, queries int) {
		t.Helper()
		_, miss, ok := r.Lookup(name, dns.TypeA)
		if ok {
			t.Fatalf("%s: Lookup answered a name never asked", name)
		}
		if !useMiss {
			miss = resolver.Miss{}
		}
		m0, q0 := r.Cache().Stats().Misses, f.count()
		res := r.ResolveMiss(ctx, name, dns.TypeA, miss)
		if res.Err != nil || res.Rcode != dns.RcodeNameError {
			t.Fatalf("%s: rcode %s, err %v; want NXDOMAIN", name, dns.RcodeToString[res.Rcode], res.Err)
		}
		return r.Cache().Stats().Misses - m0, f.count() - q0
	}
	plainMisses, plainQueries := resolveCost("a.example.com.", false)
	missMisses, missQueries := resolveCost("b.example.com.", true)
	if plainQueries != 1 || missQueries != 1 {
		t.Errorf("upstream queries %d without the miss, %d with it; want 1 each", plainQueries, missQueries)
	}
	if plainMisses != missMisses+2 {
		t.Errorf("cache misses %d without the miss, %d with it; want 2 fewer with it", plainMisses, missMisses)
	}
	if _, _, ok := r.Lookup("b.example.com.", dns.TypeA); !ok {
		t.Error("the answer resolved after a miss was not cached")
	}

	_, waited, ok := r.Lookup("c.example.com.", dns.TypeA)
	if ok {
		t.Fatal("Lookup answered a name never asked")
	}
	r.Resolve(ctx, "c.example.com.", dns.TypeA) // another question resolves it meanwhile
	q0 := f.count()
	if res := r.ResolveMiss(ctx, "c.example.com.", dns.TypeA, waited); res.Rcode != dns.RcodeNameError {
		t.Errorf("after a miss and a resolution of the same name: rcode %s, err %v", dns.RcodeToString[res.Rcode], res.Err)
	}
	if n := f.count() - q0; n != 0 {
		t.Errorf("a question whose name was resolved while it waited sent %d upstream queries, want the cached answer", n)
	}

	f.cut(true, foreignServers...)
	clk.Advance(2 * time.Hour)
	_, miss, ok := r.Lookup("www.example.com.", dns.TypeA)
	if ok {
		t.Fatal("Lookup answered from an expired entry")
	}
	if res := r.ResolveMiss(ctx, "www.example.com.", dns.TypeA, miss); !res.Stale || len(res.Answer) == 0 {
		t.Errorf("expired entry after a miss: stale %v, answer %v, err %v; want it served stale", res.Stale, res.Answer, res.Err)
	}
}

// TestClientTimeout: a question with a stale answer waits no longer than
// the client-response timer; the resolution goes on and refreshes the
// cache for the next client.
func TestClientTimeout(t *testing.T) {
	f, hints := hierarchy(t)
	r, clk := staleResolver(t, f, hints, func(c *resolver.Config) {
		c.Island.Disabled = true
		c.ClientTimeout = time.Millisecond
		c.QueryTimeout = 200 * time.Millisecond
	})
	resolveOK(t, r, "www.example.com.", dns.TypeA)
	clk.Advance(2 * time.Hour)
	f.cut(true, ipEx) // its one server hangs for QueryTimeout
	res := resolveOK(t, r, "www.example.com.", dns.TypeA)
	if res.StaleReason != resolver.StaleReasonTimeout {
		t.Fatalf("reason %q, want %q", res.StaleReason, resolver.StaleReasonTimeout)
	}
	f.cut(false, ipEx)
	// The background resolution fails (its server hung); the next one,
	// after the recheck time, succeeds and is kept.
	deadline := time.Now().Add(5 * time.Second)
	for {
		clk.Advance(31 * time.Second)
		res = r.Resolve(context.Background(), "www.example.com.", dns.TypeA)
		if !res.Stale {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no fresh answer after the server came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIslandMode: when the foreign servers and the probes stop answering
// the resolver becomes an island: foreign names are answered stale at once
// without asking anyone, national ones are still resolved, and it leaves
// island mode by itself when a probe answers.
func TestIslandMode(t *testing.T) {
	f, hints := hierarchy(t)
	r, clk := staleResolver(t, f, hints, nil)
	resolveOK(t, r, "www.example.com.", dns.TypeA)
	resolveOK(t, r, "www.gov.az.", dns.TypeA)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "a periodic probe", func() bool { return r.Stats().Probes[1].Load() > 0 })
	if r.Island() {
		t.Fatal("island mode with every server answering")
	}

	f.cut(true, foreignServers...)
	clk.Advance(2 * time.Hour)
	resolveOK(t, r, "www.example.com.", dns.TypeA) // fails over to stale; counts foreign failures
	r.Resolve(context.Background(), "www.slow.com.", dns.TypeA)
	waitFor(t, "island mode", r.Island)

	n := f.count()
	res := resolveOK(t, r, "www.example.com.", dns.TypeA)
	if res.StaleReason != resolver.StaleReasonIsland {
		t.Errorf("reason %q, want %q", res.StaleReason, resolver.StaleReasonIsland)
	}
	if res := r.Resolve(context.Background(), "www.tc.com.", dns.TypeA); res.Err == nil {
		t.Errorf("uncached foreign name answered %v in island mode", res.Answer)
	}
	f.mu.Lock()
	var others []string
	for _, q := range f.asked[n:] {
		if !strings.HasPrefix(q, ipRoot.String()+" . NS") {
			others = append(others, q)
		}
	}
	f.mu.Unlock()
	if len(others) > 1 {
		t.Errorf("asked %q in island mode; only probes and one backed-off trial may go out", others)
	}
	// National names: their servers are still asked.
	if res := resolveOK(t, r, "www.gov.az.", dns.TypeA); res.Stale {
		t.Errorf("national name answered stale: its servers answer")
	}
	if h := r.Health(); !h.Island || h.IslandSince.IsZero() || h.LastProbeOK {
		t.Errorf("health %+v", h)
	}

	f.cut(false, foreignServers...)
	waitFor(t, "the end of island mode", func() bool { return !r.Island() })
	if res := resolveOK(t, r, "www.example.com.", dns.TypeA); res.Stale {
		t.Error("still stale after island mode")
	}
	if st := r.Stats(); st.IslandEntered.Load() != 1 || st.IslandLeft.Load() != 1 {
		t.Errorf("transitions enter %d leave %d", st.IslandEntered.Load(), st.IslandLeft.Load())
	}
}

// TestNoProbeBeforeQuestion: a resolver that was never asked anything
// sends nothing (root priming is lazy, probes too).
func TestNoProbeBeforeQuestion(t *testing.T) {
	f, hints := hierarchy(t)
	r, _ := staleResolver(t, f, hints, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	// The positive sign: the probe loop runs, and has had its timer fire
	// several times, each a chance to probe.
	waitFor(t, "five ticks of the probe timer", func() bool { return r.IslandTicksForTest() >= 5 })
	cancel()
	<-done
	if n := f.count(); n != 0 || r.Island() {
		t.Errorf("%d upstream queries, island %v; want none", n, r.Island())
	}
}

// TestProbesBlocked: probes that never answer do not cut a resolver off
// from an outside that answers: in island mode one foreign query per
// trial interval still goes out, and its answer ends island mode.
func TestProbesBlocked(t *testing.T) {
	f, hints := hierarchy(t)
	dead := netip.MustParseAddr("192.0.2.99")
	f.servers[dead] = nil
	r, clk := staleResolver(t, f, hints, func(c *resolver.Config) {
		c.Island.Probes = []netip.AddrPort{netip.AddrPortFrom(dead, 53)}
		c.Island.ProbeInterval = 20 * time.Millisecond
	})
	r.RestoreIsland()
	if res := r.Resolve(context.Background(), "www.example.com.", dns.TypeA); res.Err == nil {
		t.Fatal("answered at once after entering island mode: the trial is not backed off")
	}
	clk.Advance(resolver.IslandTrialInterval)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	res := r.Resolve(context.Background(), "www.example.com.", dns.TypeA) // one trial goes out
	if res.Err != nil || r.Island() {
		t.Fatalf("err %v island %v: the trial query should have found the outside", res.Err, r.Island())
	}
}

// TestLocalRoot: with the root zone held on the node (RFC 8806), root
// referrals and NXDOMAIN for TLDs that do not exist need no root server.
func TestLocalRoot(t *testing.T) {
	f, hints := hierarchy(t)
	local := server.NewLocal()
	local.SetZones(f.servers[ipRoot])
	r, _ := staleResolver(t, f, hints, func(c *resolver.Config) { c.Local = local; c.Island.Disabled = true })
	f.cut(true, ipRoot)
	resolveOK(t, r, "www.example.com.", dns.TypeA)
	res := r.Resolve(context.Background(), "www.nosuchtld.", dns.TypeA)
	if res.Rcode != dns.RcodeNameError || len(res.Ns) == 0 || res.Ns[0].Header().Name != "." {
		t.Errorf("nonexistent TLD: rcode %s, authority %v", dns.RcodeToString[res.Rcode], res.Ns)
	}
	f.mu.Lock()
	for _, q := range f.asked {
		if strings.HasPrefix(q, ipRoot.String()+" ") {
			t.Errorf("asked the root server: %q", q)
		}
	}
	f.mu.Unlock()
	if r.Stats().LocalAnswers.Load() == 0 {
		t.Error("no local answers counted")
	}
}

// TestKeepWarm: a keep-warm name is refreshed before it expires.
func TestKeepWarm(t *testing.T) {
	f, hints := hierarchy(t)
	r, clk := staleResolver(t, f, hints, func(c *resolver.Config) {
		c.Island.Disabled = true
		c.KeepWarm = []resolver.Question{{Name: "www.example.com.", Qtype: dns.TypeA}}
		c.KeepWarmInterval = 10 * time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the first refresh", func() bool { return r.Stats().WarmRefreshes[1].Load() >= 1 })
	if _, ok := r.Cached("www.example.com.", dns.TypeA); !ok {
		t.Fatal("keep-warm name not in the cache")
	}
	clk.Advance(3598 * time.Second) // 2s left of its TTL
	waitFor(t, "the refresh before expiry", func() bool { return r.Stats().WarmRefreshes[1].Load() >= 2 })
	res, ok := r.Cached("www.example.com.", dns.TypeA)
	if !ok || res.Answer[0].Header().Ttl < 3500 {
		t.Fatalf("after the refresh: cached %v, answer %v", ok, res.Answer)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
