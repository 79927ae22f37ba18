package resolver_test

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/resolver"
)

// tldNet is one server at 192.0.2.1 for the root and bench-tld., where
// every name has an A record: it answers by hand, with few allocations,
// so that what the miss path costs shows.
type tldNet struct{}

var (
	tldNS   = &dns.NS{Hdr: dns.RR_Header{Name: "bench-tld.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 86400}, Ns: "a.root.test."}
	tldGlue = &dns.A{Hdr: dns.RR_Header{Name: "a.root.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 86400}, A: []byte{192, 0, 2, 1}}
)

func (tldNet) Exchange(_ context.Context, m *dns.Msg, _ netip.AddrPort, _ bool) (*dns.Msg, time.Duration, error) {
	q := m.Question[0]
	r := new(dns.Msg)
	r.SetReply(m)
	switch {
	case q.Name == "a.root.test." || q.Name == "A.ROOT.TEST.":
		r.Authoritative = true
		if q.Qtype == dns.TypeA {
			r.Answer = []dns.RR{tldGlue}
		}
	case dns.IsSubDomain("bench-tld.", q.Name) && q.Qtype == dns.TypeA:
		r.Authoritative = true
		r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600}, A: []byte{10, 0, 0, 1}}}
	case dns.IsSubDomain("bench-tld.", q.Name):
		r.Authoritative = true
		r.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "bench-tld.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
			Ns: "a.root.test.", Mbox: "h.root.test.", Serial: 1, Refresh: 2, Retry: 3, Expire: 4, Minttl: 3600}}
	default:
		r.Ns = []dns.RR{tldNS}
		r.Extra = []dns.RR{tldGlue}
	}
	return r, time.Millisecond, nil
}

func missResolver(tb testing.TB) *resolver.Resolver {
	hints, err := resolver.ParseHints(strings.NewReader(". NS a.root.test.\na.root.test. A 192.0.2.1\n"), "hints")
	if err != nil {
		tb.Fatal(err)
	}
	r := resolver.New(resolver.Config{RootHints: hints, QueryTimeout: time.Second, ResolutionTimeout: 5 * time.Second,
		QNameMinimisation: resolver.QMinOff, ZoneRateLimit: -1, Island: resolver.IslandConfig{Disabled: true}},
		tldNet{}, resolver.NewCache(resolver.CacheConfig{MaxBytes: 256 << 20}), nil, nil)
	tb.Cleanup(r.Close)
	if res := r.Resolve(context.Background(), "warm.bench-tld.", dns.TypeA); res.Rcode != dns.RcodeSuccess {
		tb.Fatalf("warm-up: %s %v", dns.RcodeToString[res.Rcode], res.Err)
	}
	return r
}

// BenchmarkResolveMiss resolves names never asked before in a zone whose
// delegation is cached: one upstream query each, over an exchanger that
// costs little, so the resolver's own work on a cache miss shows.
func BenchmarkResolveMiss(b *testing.B) {
	r := missResolver(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if res := r.Resolve(ctx, "n"+strconv.Itoa(i)+".bench-tld.", dns.TypeA); res.Rcode != dns.RcodeSuccess {
			b.Fatalf("%s %v", dns.RcodeToString[res.Rcode], res.Err)
		}
	}
}

// missAllocBudget is what one cache miss may allocate, the exchanger's
// answer included (BenchmarkResolveMiss shows the figure: 19).
const missAllocBudget = 22

// TestResolveMissAllocations holds the miss path to its allocation budget.
func TestResolveMissAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	r := missResolver(t)
	ctx := context.Background()
	i := 0
	got := testing.AllocsPerRun(200, func() {
		i++
		r.Resolve(ctx, "m"+strconv.Itoa(i)+".bench-tld.", dns.TypeA)
	})
	t.Logf("%.0f allocations per cache miss (budget %d)", got, missAllocBudget)
	if got > missAllocBudget {
		t.Errorf("%.0f allocations per cache miss, over the budget of %d", got, missAllocBudget)
	}
}
