package resolver_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/authoritative"
	"github.com/sovdns/sovdns/internal/clock"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// fakeNet answers as the authoritative servers of an in-memory hierarchy
// would, with scripted failures. It never touches the network.
type fakeNet struct {
	mu      sync.Mutex
	servers map[netip.Addr]*zone.Set
	dead    map[netip.Addr]bool               // never answers: the context runs out
	refuse  map[netip.Addr]bool               // answers REFUSED
	tcOnUDP map[netip.Addr]bool               // answers TC over UDP, fully over TCP
	recurse map[netip.Addr]*resolver.Resolver // a recursive resolver: answers RD queries
	lowerQ  bool                              // every server lower-cases the question it echoes
	latency time.Duration                     // every answer takes this long
	asked   []string                          // "addr qname qtype tcp"
}

func (f *fakeNet) Exchange(ctx context.Context, m *dns.Msg, s netip.AddrPort, tcp bool) (*dns.Msg, time.Duration, error) {
	f.mu.Lock()
	f.asked = append(f.asked, s.Addr().String()+" "+m.Question[0].Name+" "+dns.Type(m.Question[0].Qtype).String())
	zs, dead, refuse, tc := f.servers[s.Addr()], f.dead[s.Addr()], f.refuse[s.Addr()], f.tcOnUDP[s.Addr()]
	rec := f.recurse[s.Addr()]
	latency := f.latency
	f.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	if rec != nil && m.RecursionDesired {
		res := rec.Resolve(ctx, m.Question[0].Name, m.Question[0].Qtype)
		r := new(dns.Msg)
		r.SetReply(m)
		r.RecursionAvailable = true
		r.Rcode, r.Answer, r.Ns = res.Rcode, res.Answer, res.Ns
		return r, time.Millisecond, nil
	}
	if dead || zs == nil {
		<-ctx.Done()
		return nil, 0, ctx.Err()
	}
	r := new(dns.Msg)
	r.SetReply(m)
	if f.lowerQ {
		r.Question[0].Name = strings.ToLower(r.Question[0].Name)
	}
	switch {
	case refuse:
		r.Rcode = dns.RcodeRefused
	case tc && !tcp:
		r.Truncated = true
	default:
		q := m.Question[0]
		res := authoritative.Answer(zs, authoritative.Query{Name: q.Name, Type: q.Qtype, DO: m.IsEdns0() != nil && m.IsEdns0().Do()})
		r.Rcode, r.Authoritative = res.Rcode, res.Authoritative
		r.Answer, r.Ns, r.Extra = res.Answer, res.Ns, res.Extra
	}
	return r, time.Millisecond, nil
}

func (f *fakeNet) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.asked)
}

func mustZone(t testing.TB, origin, text string) *zone.Zone {
	t.Helper()
	p, err := zonestore.Parse(strings.NewReader("$TTL 3600\n"+text), origin, origin, nil)
	if err != nil {
		t.Fatal(err)
	}
	z, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	return z
}

var (
	ipRoot  = netip.MustParseAddr("192.0.2.1")
	ipAz    = netip.MustParseAddr("192.0.2.2")
	ipGov   = netip.MustParseAddr("192.0.2.3")
	ipLame  = netip.MustParseAddr("192.0.2.4")
	ipCom   = netip.MustParseAddr("192.0.2.5")
	ipEx    = netip.MustParseAddr("192.0.2.6")
	ipDNS   = netip.MustParseAddr("192.0.2.7")
	ipDead  = netip.MustParseAddr("192.0.2.8")
	ipSlow2 = netip.MustParseAddr("192.0.2.9")
	ipTC    = netip.MustParseAddr("192.0.2.10")
)

func hierarchy(t *testing.T) (*fakeNet, []dns.RR) {
	root := mustZone(t, ".", `. SOA a.root.test. h.root.test. 1 2 3 4 86400
. NS a.root.test.
a.root.test. A 192.0.2.1
az. NS ns.nic.az.
ns.nic.az. A 192.0.2.2
com. NS a.gtld.com.
a.gtld.com. A 192.0.2.5
`)
	az := mustZone(t, "az.", `@ SOA ns.nic.az. h.nic.az. 1 2 3 4 300
@ NS ns.nic.az.
ns.nic A 192.0.2.2
gov NS lame.nic.az.
gov NS ns1.gov.az.
lame.nic A 192.0.2.4
ns1.gov A 192.0.2.3
`)
	gov := mustZone(t, "gov.az.", `@ SOA ns1 h 1 2 3 4 300
@ NS ns1
ns1 A 192.0.2.3
www A 198.51.100.10
portal CNAME www
e-services CNAME www.example.com.
mfa NS ns.mfa-dns.com.
`)
	com := mustZone(t, "com.", `@ SOA a.gtld h 1 2 3 4 900
@ NS a.gtld
a.gtld A 192.0.2.5
example NS ns.example
ns.example A 192.0.2.6
mfa-dns NS ns.mfa-dns
ns.mfa-dns A 192.0.2.7
slow NS dead.slow
slow NS ok.slow
dead.slow A 192.0.2.8
ok.slow A 192.0.2.9
tc NS ns.tc
ns.tc A 192.0.2.10
`)
	ex := mustZone(t, "example.com.", `@ SOA ns h 1 2 3 4 300
@ NS ns
ns A 192.0.2.6
www A 198.51.100.20
`)
	mfa := mustZone(t, "mfa.gov.az.", `@ SOA ns.mfa-dns.com. h 1 2 3 4 300
@ NS ns.mfa-dns.com.
www A 198.51.100.30
`)
	mfadns := mustZone(t, "mfa-dns.com.", `@ SOA ns h 1 2 3 4 300
@ NS ns
ns A 192.0.2.7
`)
	slow := mustZone(t, "slow.com.", `@ SOA ok h 1 2 3 4 300
@ NS ok
@ NS dead
ok A 192.0.2.9
dead A 192.0.2.8
www A 198.51.100.40
`)
	tcz := mustZone(t, "tc.com.", `@ SOA ns h 1 2 3 4 300
@ NS ns
ns A 192.0.2.10
www A 198.51.100.50
`)
	f := &fakeNet{
		servers: map[netip.Addr]*zone.Set{
			ipRoot: zone.NewSet(root), ipAz: zone.NewSet(az), ipGov: zone.NewSet(gov), ipLame: zone.NewSet(ex),
			ipCom: zone.NewSet(com), ipEx: zone.NewSet(ex), ipDNS: zone.NewSet(mfa, mfadns),
			ipSlow2: zone.NewSet(slow), ipTC: zone.NewSet(tcz),
		},
		dead:    map[netip.Addr]bool{ipDead: true},
		refuse:  map[netip.Addr]bool{ipLame: true},
		tcOnUDP: map[netip.Addr]bool{ipTC: true},
	}
	hints, err := resolver.ParseHints(strings.NewReader(". NS a.root.test.\na.root.test. A 192.0.2.1\n"), "hints")
	if err != nil {
		t.Fatal(err)
	}
	return f, hints
}

func newResolver(t *testing.T, f *fakeNet, hints []dns.RR) *resolver.Resolver {
	cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20})
	return resolver.New(resolver.Config{RootHints: hints, QueryTimeout: 50 * time.Millisecond, ResolutionTimeout: 2 * time.Second},
		f, cache, nil, nil)
}

func TestResolve(t *testing.T) {
	f, hints := hierarchy(t)
	r := newResolver(t, f, hints)
	cases := []struct {
		name   string
		qtype  uint16
		rcode  int
		answer []string // owner/type pairs, in order
		soa    string   // owner of the SOA in authority for negative answers
	}{
		{name: "www.gov.az.", qtype: dns.TypeA, answer: []string{"www.gov.az./A"}},
		{name: "portal.gov.az.", qtype: dns.TypeA, answer: []string{"portal.gov.az./CNAME", "www.gov.az./A"}},
		{name: "e-services.gov.az.", qtype: dns.TypeA, answer: []string{"e-services.gov.az./CNAME", "www.example.com./A"}},
		{name: "nope.gov.az.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: "gov.az."},
		{name: "www.gov.az.", qtype: dns.TypeTXT, soa: "gov.az."},
		{name: "www.mfa.gov.az.", qtype: dns.TypeA, answer: []string{"www.mfa.gov.az./A"}},
		{name: "www.slow.com.", qtype: dns.TypeA, answer: []string{"www.slow.com./A"}},
		{name: "www.tc.com.", qtype: dns.TypeA, answer: []string{"www.tc.com./A"}},
		{name: "nosuchtld.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: "."},
	}
	for _, tc := range cases {
		t.Run(tc.name+dns.Type(tc.qtype).String(), func(t *testing.T) {
			res := r.Resolve(context.Background(), tc.name, tc.qtype)
			if res.Err != nil || res.Rcode != tc.rcode {
				t.Fatalf("rcode %s err %v, want %s", dns.RcodeToString[res.Rcode], res.Err, dns.RcodeToString[tc.rcode])
			}
			var got []string
			for _, rr := range res.Answer {
				got = append(got, rr.Header().Name+"/"+dns.Type(rr.Header().Rrtype).String())
			}
			if strings.Join(got, " ") != strings.Join(tc.answer, " ") {
				t.Fatalf("answer %v, want %v", got, tc.answer)
			}
			if tc.soa != "" && (len(res.Ns) != 1 || !strings.EqualFold(res.Ns[0].Header().Name, tc.soa)) {
				t.Fatalf("authority %v, want the SOA of %s", res.Ns, tc.soa)
			}
		})
	}
}

func TestResolveFromCache(t *testing.T) {
	f, hints := hierarchy(t)
	r := newResolver(t, f, hints)
	first := r.Resolve(context.Background(), "www.gov.az.", dns.TypeA)
	n := f.count()
	second := r.Resolve(context.Background(), "www.gov.az.", dns.TypeA)
	if f.count() != n {
		t.Fatalf("the second resolution sent %d more queries", f.count()-n)
	}
	if len(second.Answer) != 1 || second.Answer[0].Header().Ttl > first.Answer[0].Header().Ttl {
		t.Fatalf("cached answer %v after %v", second.Answer, first.Answer)
	}
	// The delegation is cached too: a sibling name needs one query, to gov.az.
	r.Resolve(context.Background(), "ns1.gov.az.", dns.TypeA)
	if got := f.count() - n; got != 1 {
		t.Fatalf("a sibling name took %d upstream queries, want 1", got)
	}
}

func TestResolveFailures(t *testing.T) {
	f, hints := hierarchy(t)
	f.dead[ipSlow2] = true // both servers of slow.com are dead now
	r := newResolver(t, f, hints)
	start := time.Now()
	res := r.Resolve(context.Background(), "www.slow.com.", dns.TypeA)
	if res.Rcode != dns.RcodeServerFailure || !errors.Is(res.Err, resolver.ErrNoReachableAuthority) {
		t.Fatalf("rcode %s err %v, want SERVFAIL, no reachable authority", dns.RcodeToString[res.Rcode], res.Err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("took %v, beyond the resolution timeout", time.Since(start))
	}
}

func TestLimits(t *testing.T) {
	f, hints := hierarchy(t)
	cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20})
	stats := &resolver.Stats{}
	r := resolver.New(resolver.Config{RootHints: hints, QueryTimeout: 50 * time.Millisecond, MaxUpstreamQueries: 2},
		f, cache, nil, stats)
	res := r.Resolve(context.Background(), "www.example.com.", dns.TypeA)
	if !errors.Is(res.Err, resolver.ErrLimit) {
		t.Fatalf("err %v, want the upstream-query limit", res.Err)
	}
	if n := stats.Limits[resolver.LimitUpstreamQueries].Load(); n != 1 {
		t.Fatalf("upstream-query limit counted %d times, want 1", n)
	}
}

func TestCNAMELoop(t *testing.T) {
	f, hints := hierarchy(t)
	loop := mustZone(t, "loop.com.", "@ SOA ns h 1 2 3 4 300\n@ NS ns\nns A 192.0.2.11\na CNAME b\nb CNAME a\n")
	ip := netip.MustParseAddr("192.0.2.11")
	f.servers[ip] = zone.NewSet(loop)
	com := f.servers[ipCom].Zones()[0]
	rrs := append(com.Records(), mustRR(t, "loop.com. 3600 NS ns.loop.com."), mustRR(t, "ns.loop.com. 3600 A 192.0.2.11"))
	z, err := zone.Build("com.", rrs)
	if err != nil {
		t.Fatal(err)
	}
	f.servers[ipCom] = zone.NewSet(z)
	r := newResolver(t, f, hints)
	res := r.Resolve(context.Background(), "a.loop.com.", dns.TypeA)
	if res.Rcode != dns.RcodeServerFailure || !errors.Is(res.Err, resolver.ErrCNAMEChain) {
		t.Fatalf("rcode %s err %v, want SERVFAIL for the loop", dns.RcodeToString[res.Rcode], res.Err)
	}
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func TestDedupe(t *testing.T) {
	f, hints := hierarchy(t)
	r := newResolver(t, f, hints)
	r.Resolve(context.Background(), "gov.az.", dns.TypeNS) // warm the delegations
	n := f.count()
	var wg sync.WaitGroup
	results := make([]resolver.Result, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = r.Resolve(context.Background(), "www.example.com.", dns.TypeA)
		}()
	}
	wg.Wait()
	if got := f.count() - n; got > 4 {
		t.Fatalf("8 identical questions sent %d upstream queries, want them shared", got)
	}
	// Each question, whether it resolved or waited, has the answer.
	for i, res := range results {
		if res.Err != nil || res.Rcode != dns.RcodeSuccess || len(res.Answer) == 0 {
			t.Fatalf("question %d: rcode %s, %d records, err %v", i, dns.RcodeToString[res.Rcode], len(res.Answer), res.Err)
		}
	}
	// A question asked again once they are over resolves anew from the
	// cache, with the same answer.
	again := r.Resolve(context.Background(), "www.example.com.", dns.TypeA)
	if len(again.Answer) != len(results[0].Answer) {
		t.Fatalf("asked again: %v, first %v", again.Answer, results[0].Answer)
	}
}

func TestBuiltInHints(t *testing.T) {
	hints := resolver.RootHints()
	if len(hints) != 13+26 {
		t.Fatalf("%d root hint records, want 13 NS and 26 addresses", len(hints))
	}
}

func TestCachedAnswersWithoutQueries(t *testing.T) {
	f, hints := hierarchy(t)
	r := newResolver(t, f, hints)
	if _, ok := r.Cached("portal.gov.az.", dns.TypeA); ok {
		t.Fatal("Cached answered before anything was resolved")
	}
	want := r.Resolve(context.Background(), "portal.gov.az.", dns.TypeA)
	n := f.count()
	got, ok := r.Cached("portal.gov.az.", dns.TypeA)
	if !ok || len(got.Answer) != len(want.Answer) || f.count() != n {
		t.Fatalf("Cached = %v, %v after %v (%d queries sent)", got.Answer, ok, want.Answer, f.count()-n)
	}
	r.Resolve(context.Background(), "nope.gov.az.", dns.TypeA)
	if neg, ok := r.Cached("nope.gov.az.", dns.TypeA); !ok || neg.Rcode != dns.RcodeNameError {
		t.Fatalf("cached NXDOMAIN: %v %v", neg, ok)
	}
}

// TestUpstreamAddressPolicy: loopback servers are not queried unless
// allowed, and a disabled family is never used.
func TestUpstreamAddressPolicy(t *testing.T) {
	cases := []struct {
		name  string
		hints string
		cfg   resolver.Config
	}{
		{"loopback refused by default", ". NS a.root.test.\na.root.test. A 127.0.0.53\n", resolver.Config{}},
		{"IPv4 disabled", ". NS a.root.test.\na.root.test. A 192.0.2.1\n", resolver.Config{NoIPv4: true}},
		{"private refused", ". NS a.root.test.\na.root.test. A 10.0.0.53\n", resolver.Config{NoPrivate: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := hierarchy(t)
			hints, err := resolver.ParseHints(strings.NewReader(tc.hints), "hints")
			if err != nil {
				t.Fatal(err)
			}
			cfg := tc.cfg
			cfg.RootHints, cfg.QueryTimeout = hints, 50*time.Millisecond
			r := resolver.New(cfg, f, resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20}), nil, nil)
			res := r.Resolve(context.Background(), "www.gov.az.", dns.TypeA)
			if res.Rcode != dns.RcodeServerFailure || f.count() != 0 {
				t.Fatalf("rcode %s after %d upstream queries; want SERVFAIL and none", dns.RcodeToString[res.Rcode], f.count())
			}
		})
	}
}

func TestStubAndForwardZones(t *testing.T) {
	f, hints := hierarchy(t)
	deadRoot, err := resolver.ParseHints(strings.NewReader(". NS a.root.test.\na.root.test. A 192.0.2.8\n"), "hints")
	if err != nil {
		t.Fatal(err)
	}
	gov := netip.AddrPortFrom(ipGov, 53)
	ipFwd := netip.MustParseAddr("192.0.2.99")
	f.recurse = map[netip.Addr]*resolver.Resolver{ipFwd: newResolver(t, f, hints)}
	r := resolver.New(resolver.Config{
		RootHints:    deadRoot, // the root is unreachable: only the stub and the forwarder work
		QueryTimeout: 50 * time.Millisecond,
		Stubs:        map[string][]netip.AddrPort{"gov.az.": {gov}},
		Forwards:     map[string][]netip.AddrPort{"com.": {netip.AddrPortFrom(ipFwd, 53)}},
	}, f, resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20}), nil, nil)

	res := r.Resolve(context.Background(), "www.gov.az.", dns.TypeA)
	if res.Rcode != dns.RcodeSuccess || len(res.Answer) != 1 {
		t.Fatalf("stub zone: rcode %s answer %v err %v", dns.RcodeToString[res.Rcode], res.Answer, res.Err)
	}
	res = r.Resolve(context.Background(), "www.example.com.", dns.TypeA)
	if res.Rcode != dns.RcodeSuccess || len(res.Answer) != 1 {
		t.Fatalf("forward zone: rcode %s answer %v err %v", dns.RcodeToString[res.Rcode], res.Answer, res.Err)
	}
	// Both ended in one hop each from this resolver: nothing went to the root.
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.asked {
		if strings.HasPrefix(q, "192.0.2.8 ") && strings.Contains(q, "gov.az") {
			t.Errorf("the stub zone's name went to the root: %s", q)
		}
	}
}

// TestQNameMinimisation: each zone's servers see one label more than the
// zone, not the whole name (RFC 9156); with minimisation off they see it.
func TestQNameMinimisation(t *testing.T) {
	for _, tc := range []struct {
		mode     resolver.QMin
		rootSees string
	}{
		{resolver.QMinRelaxed, "192.0.2.1 az. A"},
		{resolver.QMinStrict, "192.0.2.1 az. A"},
		{resolver.QMinOff, "192.0.2.1 www.mfa.gov.az. A"},
	} {
		f, hints := hierarchy(t)
		r := resolver.New(resolver.Config{RootHints: hints, QueryTimeout: 50 * time.Millisecond, QNameMinimisation: tc.mode},
			f, resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20}), nil, nil)
		res := r.Resolve(context.Background(), "www.mfa.gov.az.", dns.TypeA)
		if res.Rcode != dns.RcodeSuccess || len(res.Answer) != 1 {
			t.Fatalf("mode %d: rcode %s answer %v err %v", tc.mode, dns.RcodeToString[res.Rcode], res.Answer, res.Err)
		}
		f.mu.Lock()
		first := f.asked[0]
		var leaked []string
		for _, q := range f.asked {
			if tc.mode != resolver.QMinOff && strings.HasPrefix(q, "192.0.2.1 ") && strings.Contains(q, "gov.az") {
				leaked = append(leaked, q)
			}
		}
		f.mu.Unlock()
		if first != tc.rootSees {
			t.Errorf("mode %d: first query %q, want %q", tc.mode, first, tc.rootSees)
		}
		if len(leaked) > 0 {
			t.Errorf("mode %d: the root saw %v", tc.mode, leaked)
		}
	}
}

// Test0x20: upstream names are sent in random case and answers must echo
// it; the answer given to the client does not depend on it.
func Test0x20(t *testing.T) {
	f, hints := hierarchy(t)
	r := resolver.New(resolver.Config{RootHints: hints, QueryTimeout: 50 * time.Millisecond, Use0x20: true, QNameMinimisation: resolver.QMinOff},
		f, resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20}), nil, nil)
	res := r.Resolve(context.Background(), "www.example.com.", dns.TypeA)
	if res.Rcode != dns.RcodeSuccess || len(res.Answer) != 1 {
		t.Fatalf("rcode %s answer %v err %v", dns.RcodeToString[res.Rcode], res.Answer, res.Err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	mixed := 0
	for _, q := range f.asked {
		if name := strings.Fields(q)[1]; strings.ToLower(name) != name {
			mixed++
		}
	}
	if mixed == 0 {
		t.Fatalf("no upstream name was sent in mixed case: %v", f.asked)
	}
}

// Test0x20Fallback: servers that do not preserve the case are asked again
// with the name as it came, and the answer is still found.
func Test0x20Fallback(t *testing.T) {
	f, hints := hierarchy(t)
	f.lowerQ = true
	r := resolver.New(resolver.Config{RootHints: hints, QueryTimeout: 50 * time.Millisecond, Use0x20: true},
		f, resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20}), nil, nil)
	res := r.Resolve(context.Background(), "www.example.com.", dns.TypeA)
	if res.Rcode != dns.RcodeSuccess || len(res.Answer) != 1 {
		t.Fatalf("rcode %s answer %v err %v", dns.RcodeToString[res.Rcode], res.Answer, res.Err)
	}
}

// TestNameServerAddresses: the parent's glue and the child's own address
// of a name server are both kept and both tried, whichever works; and a
// zone whose glue expired before its NS RRset is found again through the
// parent's referral.
func TestNameServerAddresses(t *testing.T) {
	const ipDeadNS = "192.0.2.8" // never answers (hierarchy's dead server)
	cases := []struct {
		name     string
		childNS  string        // the address the child zone gives its server
		glueTTL  int           // the TTL of the glue in the parent
		warm     []string      // names resolved first (type A)
		advance  time.Duration // then the clock moves on
		glueDies bool          // then the glue's address stops answering
		question string
	}{
		{name: "the child's address fails, the glue works", childNS: ipDeadNS, glueTTL: 3600,
			warm: []string{"www.gov.az.", "ns1.gov.az."}, question: "portal.gov.az."},
		{name: "the glue fails, the child's address works", childNS: "192.0.2.13", glueTTL: 3600,
			warm: []string{"www.gov.az.", "ns1.gov.az."}, glueDies: true, question: "portal.gov.az."},
		{name: "the glue expired before the NS RRset", childNS: "192.0.2.3", glueTTL: 60,
			warm: []string{"www.gov.az."}, advance: 10 * time.Minute, question: "portal.gov.az."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := mustZone(t, ".", `. SOA a.root.test. h.root.test. 1 2 3 4 86400
. NS a.root.test.
a.root.test. A 192.0.2.1
az. NS ns.nic.az.
ns.nic.az. A 192.0.2.2
`)
			az := mustZone(t, "az.", fmt.Sprintf(`@ SOA ns.nic.az. h.nic.az. 1 2 3 4 300
@ NS ns.nic.az.
ns.nic A 192.0.2.2
gov 86400 NS ns1.gov.az.
ns1.gov %d A 192.0.2.3
`, tc.glueTTL))
			gov := mustZone(t, "gov.az.", `@ SOA ns1 h 1 2 3 4 300
@ 86400 NS ns1
ns1 A `+tc.childNS+`
www A 198.51.100.10
portal A 198.51.100.11
`)
			f := &fakeNet{servers: map[netip.Addr]*zone.Set{
				netip.MustParseAddr("192.0.2.1"): zone.NewSet(root),
				netip.MustParseAddr("192.0.2.2"): zone.NewSet(az),
				netip.MustParseAddr("192.0.2.3"): zone.NewSet(gov),
			}, dead: map[netip.Addr]bool{netip.MustParseAddr(ipDeadNS): true}}
			if tc.childNS != ipDeadNS {
				f.servers[netip.MustParseAddr(tc.childNS)] = zone.NewSet(gov)
			}
			hints, err := resolver.ParseHints(strings.NewReader(". NS a.root.test.\na.root.test. A 192.0.2.1\n"), "hints")
			if err != nil {
				t.Fatal(err)
			}
			clk := clock.NewStep(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
			r := resolver.New(resolver.Config{RootHints: hints, QueryTimeout: 50 * time.Millisecond, ResolutionTimeout: 2 * time.Second, Now: clk.Now},
				f, resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20, Now: clk.Now}), nil, nil)
			for _, n := range tc.warm {
				if res := r.Resolve(context.Background(), n, dns.TypeA); res.Rcode != dns.RcodeSuccess || len(res.Answer) == 0 {
					t.Fatalf("%s: rcode %s err %v", n, dns.RcodeToString[res.Rcode], res.Err)
				}
			}
			if tc.glueDies {
				f.mu.Lock()
				f.dead[netip.MustParseAddr("192.0.2.3")] = true
				f.mu.Unlock()
			}
			clk.Advance(tc.advance)
			res := r.Resolve(context.Background(), tc.question, dns.TypeA)
			if res.Rcode != dns.RcodeSuccess || len(res.Answer) != 1 {
				t.Fatalf("%s: rcode %s answer %v err %v", tc.question, dns.RcodeToString[res.Rcode], res.Answer, res.Err)
			}
		})
	}
}
