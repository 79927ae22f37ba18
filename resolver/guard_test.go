package resolver_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
)

// nxnsNet is the hierarchy with one more delegation in com.: nxns.com. to
// a hundred name servers, none with an address, all in example.com., whose
// server answers NXDOMAIN for each (NXNSAttack, Shafir et al. 2020).
func nxnsNet(t *testing.T) (*fakeNet, []dns.RR) {
	f, hints := hierarchy(t)
	var b strings.Builder
	b.WriteString("@ SOA a.gtld h 1 2 3 4 900\n@ NS a.gtld\na.gtld A 192.0.2.5\nexample NS ns.example\nns.example A 192.0.2.6\n")
	for i := range 100 {
		fmt.Fprintf(&b, "nxns NS ns%d.example.com.\n", i)
	}
	f.servers[ipCom] = zone.NewSet(mustZone(t, "com.", b.String()))
	return f, hints
}

// askedOf counts the questions sent to addr.
func (f *fakeNet) askedOf(addr netip.Addr) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, a := range f.asked {
		if strings.HasPrefix(a, addr.String()+" ") {
			n++
		}
	}
	return n
}

func TestNXNSBounded(t *testing.T) {
	f, hints := nxnsNet(t)
	stats := &resolver.Stats{}
	r := resolver.New(resolver.Config{RootHints: hints, QueryTimeout: 50 * time.Millisecond, ResolutionTimeout: 2 * time.Second},
		f, resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20}), nil, stats)
	// Warm the path to example.com.: its delegation is then known, so
	// every name-server lookup is one query to the victim's server.
	if res := r.Resolve(context.Background(), "www.example.com.", dns.TypeA); res.Rcode != dns.RcodeSuccess {
		t.Fatalf("www.example.com.: %s %v", dns.RcodeToString[res.Rcode], res.Err)
	}
	for i := range 5 {
		before, total := f.askedOf(ipEx), f.count()
		res := r.Resolve(context.Background(), fmt.Sprintf("w%d.nxns.com.", i), dns.TypeA)
		if res.Rcode != dns.RcodeServerFailure {
			t.Fatalf("w%d.nxns.com.: %s, want SERVFAIL", i, dns.RcodeToString[res.Rcode])
		}
		victim, all := f.askedOf(ipEx)-before, f.count()-total
		if victim > 3 {
			t.Errorf("client question %d sent %d queries to the victim zone's server, want at most 3", i, victim)
		}
		if all > 8 {
			t.Errorf("client question %d sent %d upstream queries in all, want at most 8", i, all)
		}
		if i == 0 && victim == 0 {
			t.Fatal("no name-server lookup reached the victim: the scenario did not run")
		}
	}
	if stats.TargetsSkipped.Load() == 0 {
		t.Error("no skipped name-server lookup counted")
	}
}

func TestZoneRateLimit(t *testing.T) {
	f, hints := hierarchy(t)
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	stats := &resolver.Stats{}
	r := resolver.New(resolver.Config{RootHints: hints, QueryTimeout: 50 * time.Millisecond, ResolutionTimeout: 2 * time.Second,
		ZoneRateLimit: 5, Now: clock, QNameMinimisation: resolver.QMinOff},
		f, resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20, Now: clock}), nil, stats)
	// gov.az. has two servers, one lame (REFUSED, tried first or not):
	// both count against the zone's limit.
	answered, limited := 0, 0
	for i := range 20 {
		res := r.Resolve(context.Background(), fmt.Sprintf("n%d.gov.az.", i), dns.TypeA)
		switch {
		case res.Rcode == dns.RcodeNameError:
			answered++
		case errors.Is(res.Err, resolver.ErrRateLimited):
			limited++
		default:
			t.Fatalf("n%d.gov.az.: %s %v", i, dns.RcodeToString[res.Rcode], res.Err)
		}
	}
	if got := f.askedOf(ipGov) + f.askedOf(ipLame); got != 5 {
		t.Errorf("gov.az.'s servers got %d queries in one second, want the limit, 5", got)
	}
	if answered < 4 || answered+limited != 20 {
		t.Errorf("%d answered and %d limited, want 4 or 5 answered and the rest limited", answered, limited)
	}
	if got := stats.ZoneRateLimited.Load(); got != uint64(limited) {
		t.Errorf("ZoneRateLimited %d, want %d", got, limited)
	}
	now = now.Add(time.Second)
	if res := r.Resolve(context.Background(), "next.gov.az.", dns.TypeA); res.Rcode != dns.RcodeNameError {
		t.Errorf("the next second: %s %v, want NXDOMAIN", dns.RcodeToString[res.Rcode], res.Err)
	}
}

// Below a validated NXDOMAIN nothing is asked upstream (RFC 8020); below
// an insecure one the servers are still asked.
func TestBelowNXDomain(t *testing.T) {
	n := signedHierarchy(t)
	stats := &resolver.Stats{}
	now := func() time.Time { return valNow }
	r := resolver.New(resolver.Config{RootHints: n.hints, QueryTimeout: 50 * time.Millisecond, ResolutionTimeout: 2 * time.Second,
		Now: now, DNSSEC: resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{n.rootDS}}},
		n.f, resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20, Now: now}), nil, stats)
	ctx := context.Background()
	for _, tc := range []struct {
		nx, below string
		queries   bool // the name below is asked upstream
	}{
		{"nope.gov.az.", "a.b.nope.gov.az.", false},
		{"nope.insecure.az.", "a.b.nope.insecure.az.", true},
	} {
		if res := r.Resolve(ctx, tc.nx, dns.TypeA); res.Rcode != dns.RcodeNameError {
			t.Fatalf("%s: %s %v", tc.nx, dns.RcodeToString[res.Rcode], res.Err)
		}
		before, hits := n.f.count(), stats.BelowNXDomain.Load()
		res := r.Resolve(ctx, tc.below, dns.TypeAAAA)
		if res.Rcode != dns.RcodeNameError {
			t.Fatalf("%s: %s %v, want NXDOMAIN", tc.below, dns.RcodeToString[res.Rcode], res.Err)
		}
		if asked := n.f.count() > before; asked != tc.queries {
			t.Errorf("%s: asked upstream %v, want %v", tc.below, asked, tc.queries)
		}
		if got := stats.BelowNXDomain.Load() - hits; (got == 1) == tc.queries {
			t.Errorf("%s: %d answers from the NXDOMAIN above", tc.below, got)
		}
		if !tc.queries && (res.Sec != dnssec.Secure || !slices.ContainsFunc(res.Ns, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeNSEC })) {
			t.Errorf("%s: sec %v, authority %v; want Secure with the NSEC proof", tc.below, res.Sec, res.Ns)
		}
	}
}

// Questions for a zone whose only server is dead stop reaching it once it
// has failed a few times in a row: they fail at once, but for one probe
// every two seconds.
func TestDeadServerSkipped(t *testing.T) {
	f, hints := hierarchy(t)
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	stats := &resolver.Stats{}
	r := resolver.New(resolver.Config{RootHints: hints, QueryTimeout: 20 * time.Millisecond, ResolutionTimeout: time.Second,
		Now: clock, QNameMinimisation: resolver.QMinOff, Island: resolver.IslandConfig{Disabled: true}},
		f, resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20, Now: clock}), nil, stats)
	if res := r.Resolve(context.Background(), "www.example.com.", dns.TypeA); res.Rcode != dns.RcodeSuccess {
		t.Fatalf("www.example.com.: %s %v", dns.RcodeToString[res.Rcode], res.Err)
	}
	f.mu.Lock()
	f.dead[ipEx] = true
	f.mu.Unlock()
	for i := range 20 {
		res := r.Resolve(context.Background(), fmt.Sprintf("n%d.example.com.", i), dns.TypeA)
		if !errors.Is(res.Err, resolver.ErrNoReachableAuthority) {
			t.Fatalf("n%d.example.com.: %s %v, want no reachable authority", i, dns.RcodeToString[res.Rcode], res.Err)
		}
	}
	if got := f.askedOf(ipEx); got != 1+5 {
		t.Errorf("the dead server was asked %d times, want 1 (before it died) + 5 (until it is down)", got)
	}
	if stats.DownSkips.Load() != 15 {
		t.Errorf("DownSkips %d, want 15", stats.DownSkips.Load())
	}
	// Two seconds on, one question probes it; it answers again.
	f.mu.Lock()
	f.dead[ipEx] = false
	f.mu.Unlock()
	now = now.Add(2 * time.Second)
	if res := r.Resolve(context.Background(), "www2.example.com.", dns.TypeA); res.Rcode != dns.RcodeNameError {
		t.Fatalf("the probe: %s %v, want NXDOMAIN from the server back", dns.RcodeToString[res.Rcode], res.Err)
	}
	if res := r.Resolve(context.Background(), "www3.example.com.", dns.TypeA); res.Rcode != dns.RcodeNameError {
		t.Fatalf("after the probe: %s %v", dns.RcodeToString[res.Rcode], res.Err)
	}
}
