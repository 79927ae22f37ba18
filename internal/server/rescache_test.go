package server

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/resolver"
)

// countingRecursor answers every question with res, and from its "cache"
// once it has resolved the question (until set or a flush); it counts the
// resolutions, the answers from its cache and the hits counted for it, and
// has a cache epoch.
type countingRecursor struct {
	mu       sync.Mutex
	res      resolver.Result
	seen     map[string]bool
	resolves atomic.Int64
	cached   atomic.Int64
	hits     atomic.Int64
	epoch    atomic.Uint64
}

func questionOf(name string, qtype uint16) string {
	return strings.ToLower(name) + "/" + dns.TypeToString[qtype]
}

func (c *countingRecursor) ResolveMiss(_ context.Context, name string, qtype uint16, _ resolver.Miss) resolver.Result {
	c.resolves.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	c.seen[questionOf(name, qtype)] = true
	return c.res
}
func (c *countingRecursor) Lookup(name string, qtype uint16) (resolver.Result, resolver.Miss, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.seen[questionOf(name, qtype)] {
		return resolver.Result{}, resolver.Miss{}, false
	}
	c.cached.Add(1)
	return c.res, resolver.Miss{}, true
}
func (c *countingRecursor) CacheEpoch() uint64 { return c.epoch.Load() }
func (c *countingRecursor) CountCacheHit()     { c.hits.Add(1) }
func (c *countingRecursor) set(res resolver.Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.res, c.seen = res, nil
}
func (c *countingRecursor) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = nil
	c.epoch.Add(1)
}

// movingClock is a clock tests move.
type movingClock struct{ ns atomic.Int64 }

func (c *movingClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *movingClock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func newMovingClock() *movingClock {
	c := &movingClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

// A resolved answer asked again (answered then from the resolver's cache)
// is kept in the response cache and served from it, its TTLs lowered by
// the time since it was kept, for half its smallest TTL; not after the
// resolver's cache is flushed; never when served stale or failed; and
// separately for each DO, CD and AD combination. An answer asked once is
// not kept.
func TestResolvedAnswersCached(t *testing.T) {
	a, _ := dns.NewRR("www.example.com. 300 IN A 192.0.2.1")
	a2, _ := dns.NewRR("www.example.com. 300 IN A 192.0.2.2")
	soa, _ := dns.NewRR("example.com. 60 IN SOA ns h 1 2 3 4 60")
	clk := newMovingClock()
	rec := &countingRecursor{res: resolver.Result{Answer: []dns.RR{a, a2}}}
	s := startServer(t, Config{Resolver: rec, Clock: clk.now, RecursionAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})

	ask := func(name string, do, cd, ad bool) *dns.Msg {
		t.Helper()
		m := query(name, dns.TypeA)
		m.RecursionDesired = true
		m.CheckingDisabled, m.AuthenticatedData = cd, ad
		m.SetEdns0(1232, do)
		return exchange(t, "udp", s.udp, m)
	}
	// expect checks the resolutions, the answers from the resolver's
	// cache and the response cache's hits so far, and the answer's TTLs.
	expect := func(step string, r *dns.Msg, resolves, cached, hits int64, ttl uint32) {
		t.Helper()
		if got := [3]int64{rec.resolves.Load(), rec.cached.Load(), rec.hits.Load()}; got != [3]int64{resolves, cached, hits} {
			t.Errorf("%s: resolutions, resolver cache answers, response cache hits %v, want %v", step, got, [3]int64{resolves, cached, hits})
		}
		if len(r.Answer) != 2 || r.Answer[0].Header().Ttl != ttl || r.Answer[1].Header().Ttl != ttl {
			t.Errorf("%s: answer %v, want both TTLs %d", step, r.Answer, ttl)
		}
		if !r.RecursionAvailable || r.Authoritative {
			t.Errorf("%s: RA %v AA %v", step, r.RecursionAvailable, r.Authoritative)
		}
	}

	expect("first: resolved, not kept", ask("www.example.com.", false, false, false), 1, 0, 0, 300)
	expect("second: from the resolver's cache, kept", ask("www.example.com.", false, false, false), 1, 1, 0, 300)
	r := ask("WWW.Example.com.", false, false, false)
	expect("third: from the response cache", r, 1, 1, 1, 300)
	if r.Question[0].Name != "WWW.Example.com." {
		t.Errorf("question %q, want the client's spelling", r.Question[0].Name)
	}
	clk.advance(100 * time.Second)
	expect("100 s on", ask("www.example.com.", false, false, false), 1, 1, 2, 200)
	expect("with DO: kept apart", ask("www.example.com.", true, false, false), 1, 2, 2, 300)
	expect("with DO again", ask("www.example.com.", true, false, false), 1, 2, 3, 300)
	expect("with CD: kept apart", ask("www.example.com.", false, true, false), 1, 3, 3, 300)
	expect("with AD: kept apart", ask("www.example.com.", false, false, true), 1, 4, 3, 300)
	clk.advance(51 * time.Second) // 151 s: past half of 300
	expect("past half the TTL", ask("www.example.com.", false, false, false), 1, 5, 3, 300)
	expect("kept again", ask("www.example.com.", false, false, false), 1, 5, 4, 300)
	rec.flush()
	expect("after a flush", ask("www.example.com.", false, false, false), 2, 5, 4, 300)

	rec.set(resolver.Result{Rcode: dns.RcodeNameError, Ns: []dns.RR{soa}})
	for i := range 3 {
		r := ask("nx.example.com.", false, false, false)
		if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 || r.Ns[0].Header().Ttl != 60 {
			t.Fatalf("NXDOMAIN %d: %v", i, r)
		}
	}
	if got := [3]int64{rec.resolves.Load(), rec.cached.Load(), rec.hits.Load()}; got != [3]int64{3, 6, 5} {
		t.Errorf("a negative answer: %v, want [3 6 5] (resolved, then from each cache)", got)
	}

	for _, res := range []resolver.Result{
		{Answer: []dns.RR{a}, Stale: true, StaleReason: resolver.StaleReasonIsland},
		{Rcode: dns.RcodeServerFailure, Err: resolver.ErrNoReachableAuthority},
	} {
		rec.set(res)
		before := rec.hits.Load()
		for range 3 {
			ask("other.example.com.", false, false, false)
		}
		if rec.hits.Load() != before {
			t.Errorf("stale %v, error %v: served from the response cache", res.Stale, res.Err)
		}
	}
}

// A question answered from a kept resolved answer still counts against the
// client's rate limit.
func TestResolvedAnswersRateLimited(t *testing.T) {
	a, _ := dns.NewRR("www.example.com. 300 IN A 192.0.2.1")
	clk := newMovingClock()
	rec := &countingRecursor{res: resolver.Result{Answer: []dns.RR{a}}}
	s := startServer(t, Config{Resolver: rec, Clock: clk.now, ClientRateLimit: 3,
		RecursionAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	m := query("www.example.com.", dns.TypeA)
	m.RecursionDesired = true
	m.SetEdns0(1232, false)
	exchange(t, "udp", s.udp, m) // resolved
	exchange(t, "udp", s.udp, m) // from the resolver's cache: kept
	exchange(t, "udp", s.udp, m) // from the response cache
	if rec.hits.Load() != 1 || rec.cached.Load() != 1 {
		t.Fatalf("%d hits, %d from the resolver's cache, want 1 and 1", rec.hits.Load(), rec.cached.Load())
	}
	c := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	if _, _, err := c.Exchange(m, s.udp); err == nil {
		t.Fatal("a fourth question within the second was answered beyond the client's rate limit of 3")
	}
	if rec.hits.Load() != 1 {
		t.Fatalf("%d hits, want 1", rec.hits.Load())
	}
}

func TestTTLOffsets(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	m.Response = true
	a, _ := dns.NewRR("www.example.com. 300 IN A 192.0.2.1")
	c, _ := dns.NewRR("alias.example.com. 120 IN CNAME www.example.com.")
	soa, _ := dns.NewRR("example.com. 60 IN SOA ns.example.com. h.example.com. 1 2 3 4 5")
	m.Answer = []dns.RR{c, a}
	m.Ns = []dns.RR{soa}
	m.SetEdns0(1232, true)
	m.Compress = true
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	offs, least, ok := ttlOffsets([]byte{0xaa}, wire)
	if !ok || len(offs) != 7 || offs[0] != 0xaa || least != 60 {
		t.Fatalf("offsets %v least %d ok %v, want 3 offsets after the octet given, 60", offs, least, ok)
	}
	offs = offs[1:]
	out := append([]byte(nil), wire...)
	lowerTTLs(out, offs, 0, time.Unix(0, int64(100*time.Second)))
	var got dns.Msg
	if err := got.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if got.Answer[0].Header().Ttl != 20 || got.Answer[1].Header().Ttl != 200 || got.Ns[0].Header().Ttl != 0 {
		t.Fatalf("TTLs %d %d %d, want 20 200 0", got.Answer[0].Header().Ttl, got.Answer[1].Header().Ttl, got.Ns[0].Header().Ttl)
	}
	if got.IsEdns0() == nil || !got.IsEdns0().Do() {
		t.Fatal("the OPT record was changed")
	}
	for _, bad := range [][]byte{wire[:11], wire[:len(wire)-3]} {
		if _, _, ok := ttlOffsets(nil, bad); ok {
			t.Errorf("a cut message (%d bytes) walked", len(bad))
		}
	}
}
