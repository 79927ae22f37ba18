package resolver_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
)

// An in-memory hierarchy signed with package dnssec, for the aggressive
// use of NSEC (RFC 8198) and for prefetch:
//
//	.          192.0.2.1   NSEC; DS for agg., agg3., optout., bogus. (another key); insecure. without
//	agg.       192.0.2.11  NSEC: b, x.ent (ent is an empty non-terminal), m, ns,
//	                       sub (unsigned delegation), *.wild, y, pf (TTL 100), short (TTL 5)
//	sub.agg.   192.0.2.12  unsigned
//	insecure.  192.0.2.13  unsigned
//	bogus.     192.0.2.14  signed, but the root's DS names another key
//	optout.    192.0.2.15  NSEC3 with opt-out
//	agg3.      192.0.2.16  NSEC3, no opt-out: b, m, x.ent, *.wild
//	big.       192.0.2.17  NSEC, 300 names n0 to n299
//
// The canonical order of agg.'s NSEC chain is agg., b, x.ent, m, ns, pf,
// short, sub, *.wild, y: d.agg. lies between b and x.ent, n.agg. between m
// and ns, t.agg. between sub and *.wild.

var aggNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

type aggNet struct {
	f      *fakeNet
	hints  []dns.RR
	rootDS *dns.DS
	// agg3 is the NSEC3 chain of agg3., to choose names in one span.
	agg3 []*dns.NSEC3
}

func aggKey(t testing.TB, origin string, p dnssec.Policy) *dnssec.Key {
	t.Helper()
	for {
		k, err := dnssec.GenerateKey(origin, p, dnssec.RoleCSK, dnssec.StateActive, aggNow.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if k.Tag() != 0 { // miekg/dns does not sign with key tag 0
			return k
		}
	}
}

// aggSign signs the zone text with a new key under policy p and returns
// the signed zone and the key.
func aggSign(t testing.TB, origin, text string, p dnssec.Policy) (*zone.Zone, *dnssec.Key) {
	t.Helper()
	k := aggKey(t, origin, p)
	out, err := dnssec.Sign(dnssec.Input{Zone: mustZone(t, origin, text), Keys: []*dnssec.Key{k}, Policy: p, Now: aggNow})
	if err != nil {
		t.Fatalf("signing %s: %v", origin, err)
	}
	return out.Zone, k
}

// dsText is the DS record of k as its parent publishes it, TTL 3600.
func dsText(k *dnssec.Key) string {
	ds := k.DS()
	ds.Hdr.Ttl = 3600
	return ds.String()
}

func aggPolicy(denial dnssec.Denial, optOut bool) dnssec.Policy {
	p := dnssec.DefaultPolicy()
	p.Algorithm = dns.ED25519
	p.Denial = denial
	p.OptOut = optOut
	p.Jitter = 0
	return p
}

func aggHierarchy(t testing.TB) *aggNet {
	t.Helper()
	nsec, nsec3 := aggPolicy(dnssec.DenialNSEC, false), aggPolicy(dnssec.DenialNSEC3, false)
	agg, aggK := aggSign(t, "agg.", `@ SOA ns h 1 2 3 4 300
@ NS ns
ns A 192.0.2.11
b A 198.51.100.1
x.ent A 198.51.100.2
m A 198.51.100.3
pf 100 A 198.51.100.4
short 5 A 198.51.100.5
sub NS ns.sub
ns.sub A 192.0.2.12
*.wild A 198.51.100.6
y A 198.51.100.7
`, nsec)
	agg3, agg3K := aggSign(t, "agg3.", `@ SOA ns h 1 2 3 4 300
@ NS ns
ns A 192.0.2.16
b A 198.51.100.1
m A 198.51.100.3
x.ent A 198.51.100.2
*.wild A 198.51.100.6
`, nsec3)
	optout, optoutK := aggSign(t, "optout.", `@ SOA ns h 1 2 3 4 300
@ NS ns
ns A 192.0.2.15
www A 198.51.100.8
unsigned NS ns.unsigned
ns.unsigned A 192.0.2.13
`, aggPolicy(dnssec.DenialNSEC3, true))
	bogus, _ := aggSign(t, "bogus.", `@ SOA ns h 1 2 3 4 300
@ NS ns
ns A 192.0.2.14
www A 198.51.100.9
`, nsec)
	other := aggKey(t, "bogus.", nsec)
	var bigText strings.Builder
	bigText.WriteString("@ SOA ns h 1 2 3 4 300\n@ NS ns\nns A 192.0.2.17\n")
	for i := range 300 {
		fmt.Fprintf(&bigText, "n%d A 198.51.100.20\n", i)
	}
	big, bigK := aggSign(t, "big.", bigText.String(), nsec)
	root, rootK := aggSign(t, ".", `. SOA a.root.test. h.root.test. 1 2 3 4 86400
. NS a.root.test.
a.root.test. A 192.0.2.1
agg. NS ns.agg.
ns.agg. A 192.0.2.11
`+dsText(aggK)+`
agg3. NS ns.agg3.
ns.agg3. A 192.0.2.16
`+dsText(agg3K)+`
optout. NS ns.optout.
ns.optout. A 192.0.2.15
`+dsText(optoutK)+`
bogus. NS ns.bogus.
ns.bogus. A 192.0.2.14
`+dsText(other)+`
big. NS ns.big.
ns.big. A 192.0.2.17
`+dsText(bigK)+`
insecure. NS ns.insecure.
ns.insecure. A 192.0.2.13
`, nsec)
	ip := netip.MustParseAddr
	f := &fakeNet{dead: map[netip.Addr]bool{}, servers: map[netip.Addr]*zone.Set{
		ip("192.0.2.1"):  zone.NewSet(root),
		ip("192.0.2.11"): zone.NewSet(agg),
		ip("192.0.2.12"): zone.NewSet(mustZone(t, "sub.agg.", "@ SOA ns h 1 2 3 4 300\n@ NS ns\nns A 192.0.2.12\nwww A 198.51.100.10\n")),
		ip("192.0.2.13"): zone.NewSet(mustZone(t, "insecure.", "@ SOA ns h 1 2 3 4 300\n@ NS ns\nns A 192.0.2.13\nwww A 198.51.100.11\n"),
			mustZone(t, "unsigned.optout.", "@ SOA ns h 1 2 3 4 300\n@ NS ns\nns A 192.0.2.13\nwww A 198.51.100.12\n")),
		ip("192.0.2.14"): zone.NewSet(bogus),
		ip("192.0.2.15"): zone.NewSet(optout),
		ip("192.0.2.16"): zone.NewSet(agg3),
		ip("192.0.2.17"): zone.NewSet(big),
	}}
	hints, err := resolver.ParseHints(strings.NewReader(". NS a.root.test.\na.root.test. A 192.0.2.1\n"), "hints")
	if err != nil {
		t.Fatal(err)
	}
	n := &aggNet{f: f, hints: hints, rootDS: rootK.DS()}
	for _, rr := range agg3.Records() {
		if n3, ok := rr.(*dns.NSEC3); ok {
			n.agg3 = append(n.agg3, n3)
		}
	}
	if len(n.agg3) == 0 {
		t.Fatal("agg3. has no NSEC3 chain")
	}
	return n
}

// resolver returns a validating resolver over the hierarchy, with
// aggressive NSEC as given, its clock and its counters.
func (n *aggNet) resolver(t testing.TB, aggressive bool, mod func(*resolver.Config)) (*resolver.Resolver, *stepClock, *resolver.Stats) {
	t.Helper()
	clk := &stepClock{t: aggNow}
	stats := &resolver.Stats{}
	cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 8 << 20, StaleWindow: 72 * time.Hour, Now: clk.Now})
	cfg := resolver.Config{RootHints: n.hints, QueryTimeout: 50 * time.Millisecond, ResolutionTimeout: 2 * time.Second, Now: clk.Now,
		DNSSEC: resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{n.rootDS}, AggressiveNSEC: aggressive}}
	if mod != nil {
		mod(&cfg)
	}
	return resolver.New(cfg, n.f, cache, nil, stats), clk, stats
}

// sameSpan returns a name under agg3. (prefix plus a number) whose hash the
// same NSEC3 record covers as that of like, other than like.
func (n *aggNet) sameSpan(t testing.TB, like, prefix string) string {
	t.Helper()
	var span *dns.NSEC3
	for _, r := range n.agg3 {
		if r.Cover(like) {
			span = r
		}
	}
	if span == nil {
		t.Fatalf("no NSEC3 covers %s", like)
	}
	for i := range 2000 {
		name := fmt.Sprintf("%s%d.agg3.", prefix, i)
		if name != like && span.Cover(name) {
			return name
		}
	}
	t.Fatalf("no name in the span of %s", like)
	return ""
}

func synthTotal(st *resolver.Stats) uint64 {
	var n uint64
	for i := range st.AggressiveAnswers {
		n += st.AggressiveAnswers[i].Load()
	}
	return n
}

// aggQ is a question of TestAggressiveNSEC.
type aggQ struct {
	name  string
	qtype uint16
}

func aggA(name string) aggQ { return aggQ{name, dns.TypeA} }

// aggCase is one case of TestAggressiveNSEC.
type aggCase struct {
	name       string
	off        bool          // aggressive NSEC switched off
	prime      []aggQ        // asked first
	advance    time.Duration // then the clock moves on
	probe      aggQ          // never asked before
	rcode      int
	sec        dnssec.SecStatus
	synth      bool     // answered without an upstream query
	proofType  uint16   // NSEC or NSEC3 in the synthesised proof
	wantNSECAt []string // owners of the NSEC records of the proof, in order
}

func TestAggressiveNSEC(t *testing.T) {
	n := aggHierarchy(t)
	cases := []aggCase{
		{name: "nxdomain in a known range", prime: []aggQ{aggA("c.agg.")}, probe: aggA("d.agg."),
			rcode: dns.RcodeNameError, sec: dnssec.Secure, synth: true, proofType: dns.TypeNSEC, wantNSECAt: []string{"b.agg.", "agg."}},
		{name: "nxdomain for any type", prime: []aggQ{aggA("c.agg.")}, probe: aggQ{"d.agg.", dns.TypeMX},
			rcode: dns.RcodeNameError, sec: dnssec.Secure, synth: true, proofType: dns.TypeNSEC},
		{name: "nxdomain below a nonexistent name", prime: []aggQ{aggA("c.agg.")}, probe: aggA("x.d.agg."),
			rcode: dns.RcodeNameError, sec: dnssec.Secure, synth: true, proofType: dns.TypeNSEC},
		{name: "nodata from a matching nsec", prime: []aggQ{aggQ{"m.agg.", dns.TypeTXT}}, probe: aggQ{"m.agg.", dns.TypeMX},
			rcode: dns.RcodeSuccess, sec: dnssec.Secure, synth: true, proofType: dns.TypeNSEC, wantNSECAt: []string{"m.agg."}},
		{name: "nodata not for a type that exists", prime: []aggQ{aggQ{"m.agg.", dns.TypeTXT}}, probe: aggA("m.agg."),
			rcode: dns.RcodeSuccess, sec: dnssec.Secure},
		{name: "an empty non-terminal is nodata, not nxdomain", prime: []aggQ{aggA("c.agg.")}, probe: aggA("ent.agg."),
			rcode: dns.RcodeSuccess, sec: dnssec.Secure, synth: true, proofType: dns.TypeNSEC},
		{name: "wildcard not covered", prime: []aggQ{aggQ{"m.agg.", dns.TypeTXT}}, probe: aggA("n.agg."),
			rcode: dns.RcodeNameError, sec: dnssec.Secure},
		{name: "wildcard nodata", prime: []aggQ{aggQ{"p.wild.agg.", dns.TypeTXT}}, probe: aggQ{"r.wild.agg.", dns.TypeTXT},
			rcode: dns.RcodeSuccess, sec: dnssec.Secure, synth: true, proofType: dns.TypeNSEC},
		{name: "wildcard with the type", prime: []aggQ{aggQ{"p.wild.agg.", dns.TypeTXT}}, probe: aggA("r.wild.agg."),
			rcode: dns.RcodeSuccess, sec: dnssec.Secure},
		{name: "delegation in between", prime: []aggQ{aggA("c.agg."), {"sub.agg.", dns.TypeDS}}, probe: aggA("nope.sub.agg."),
			rcode: dns.RcodeNameError, sec: dnssec.Insecure},
		{name: "beside the delegation", prime: []aggQ{aggA("c.agg."), {"sub.agg.", dns.TypeDS}}, probe: aggA("t.agg."),
			rcode: dns.RcodeNameError, sec: dnssec.Secure, synth: true, proofType: dns.TypeNSEC, wantNSECAt: []string{"sub.agg.", "agg."}},
		{name: "ds nodata from the parent's nsec", prime: []aggQ{aggA("c.agg.")}, probe: aggQ{"b.agg.", dns.TypeDS},
			rcode: dns.RcodeSuccess, sec: dnssec.Secure, synth: true, proofType: dns.TypeNSEC, wantNSECAt: []string{"b.agg."}},
		{name: "expired nsec", prime: []aggQ{aggA("c.agg.")}, advance: 301 * time.Second, probe: aggA("d.agg."),
			rcode: dns.RcodeNameError, sec: dnssec.Secure},
		{name: "not yet expired", prime: []aggQ{aggA("c.agg.")}, advance: 290 * time.Second, probe: aggA("d.agg."),
			rcode: dns.RcodeNameError, sec: dnssec.Secure, synth: true, proofType: dns.TypeNSEC},
		{name: "switched off", off: true, prime: []aggQ{aggA("c.agg.")}, probe: aggA("d.agg."),
			rcode: dns.RcodeNameError, sec: dnssec.Secure},
		{name: "insecure zone", prime: []aggQ{aggA("a.insecure.")}, probe: aggA("b.insecure."),
			rcode: dns.RcodeNameError, sec: dnssec.Insecure},
		{name: "bogus zone", prime: []aggQ{aggA("a.bogus.")}, probe: aggA("b.bogus."),
			rcode: dns.RcodeNameError, sec: dnssec.Bogus},
		{name: "nsec3 opt-out", prime: []aggQ{aggA("a.optout.")}, probe: aggA("b.optout."),
			rcode: dns.RcodeNameError, sec: dnssec.Insecure},
		{name: "nsec3 nodata", prime: []aggQ{aggQ{"m.agg3.", dns.TypeTXT}}, probe: aggQ{"m.agg3.", dns.TypeMX},
			rcode: dns.RcodeSuccess, sec: dnssec.Secure, synth: true, proofType: dns.TypeNSEC3},
		{name: "nsec3 empty non-terminal", prime: []aggQ{aggQ{"ent.agg3.", dns.TypeTXT}}, probe: aggA("ent.agg3."),
			rcode: dns.RcodeSuccess, sec: dnssec.Secure, synth: true, proofType: dns.TypeNSEC3},
		{name: "nsec3 wildcard nodata", prime: []aggQ{aggQ{"p.wild.agg3.", dns.TypeTXT}}, probe: aggQ{"r.wild.agg3.", dns.TypeTXT},
			rcode: dns.RcodeSuccess, sec: dnssec.Secure, synth: true, proofType: dns.TypeNSEC3},
	}
	// NSEC3 NXDOMAIN: a name whose hash lies in the span of one primed,
	// and one whose hash lies elsewhere (its next closer name is not
	// covered by any record held).
	inSpan := n.sameSpan(t, "n0.agg3.", "q")
	var outSpan string
	for i := range 2000 {
		name := fmt.Sprintf("o%d.agg3.", i)
		if !slices.ContainsFunc(n.agg3, func(r *dns.NSEC3) bool { return r.Cover(name) && r.Cover("n0.agg3.") }) {
			outSpan = name
			break
		}
	}
	cases = append(cases,
		aggCase{name: "nsec3 nxdomain, complete proof", prime: []aggQ{aggA("n0.agg3.")}, probe: aggA(inSpan),
			rcode: dns.RcodeNameError, sec: dnssec.Secure, synth: true, proofType: dns.TypeNSEC3},
		aggCase{name: "nsec3 next closer not covered", prime: []aggQ{aggA("n0.agg3.")}, probe: aggA(outSpan),
			rcode: dns.RcodeNameError, sec: dnssec.Secure},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, clk, st := n.resolver(t, !tc.off, nil)
			ctx := context.Background()
			for _, p := range tc.prime {
				if res := r.Resolve(ctx, p.name, p.qtype); res.Err != nil {
					t.Fatalf("priming %s: %v", p.name, res.Err)
				}
			}
			if synthTotal(st) != 0 {
				t.Fatal("an answer was synthesised while priming")
			}
			clk.Advance(tc.advance)
			before := n.f.count()
			// The server's path first: the cache alone, on the socket's goroutine.
			cached, ok := r.Cached(tc.probe.name, tc.probe.qtype)
			if ok != tc.synth {
				t.Fatalf("Cached: ok %v, want %v (%s %v)", ok, tc.synth, dns.RcodeToString[cached.Rcode], cached.Ns)
			}
			res := r.Resolve(ctx, tc.probe.name, tc.probe.qtype)
			if tc.synth {
				res = cached
			}
			asked := n.f.count() - before
			if res.Rcode != tc.rcode || res.Sec != tc.sec {
				t.Fatalf("rcode %s sec %v (%v), want %s %v", dns.RcodeToString[res.Rcode], res.Sec, res.Why,
					dns.RcodeToString[tc.rcode], tc.sec)
			}
			if tc.synth != (asked == 0) || res.Synthesised != tc.synth {
				t.Fatalf("%d upstream queries, synthesised %v; want synthesised %v", asked, res.Synthesised, tc.synth)
			}
			if got := synthTotal(st); got != map[bool]uint64{true: 2, false: 0}[tc.synth] { // Cached and Resolve
				t.Errorf("%d synthesised answers counted", got)
			}
			if !tc.synth {
				return
			}
			var soa *dns.SOA
			var owners []string
			sigs := 0
			for _, rr := range res.Ns {
				switch v := rr.(type) {
				case *dns.SOA:
					soa = v
				case *dns.RRSIG:
					sigs++
				}
				if rr.Header().Rrtype == tc.proofType {
					owners = append(owners, rr.Header().Name)
				}
				if rr.Header().Ttl > 300 {
					t.Errorf("TTL above the SOA minimum: %v", rr)
				}
			}
			if soa == nil || len(owners) == 0 || sigs < 1+len(owners) {
				t.Fatalf("proof incomplete: SOA %v, %s at %v, %d RRSIGs\n%v", soa != nil, dns.Type(tc.proofType), owners, sigs, res.Ns)
			}
			if tc.wantNSECAt != nil && !slices.Equal(owners, tc.wantNSECAt) {
				t.Errorf("NSEC at %v, want %v", owners, tc.wantNSECAt)
			}
			if tc.advance > 0 && res.Ns[0].Header().Ttl > uint32((300*time.Second-tc.advance)/time.Second) {
				t.Errorf("TTL %d after %v: not counted down", res.Ns[0].Header().Ttl, tc.advance)
			}
			// The synthesised proof validates as an upstream one would.
			var proof []dns.RR
			for _, rr := range res.Ns {
				if t := rr.Header().Rrtype; t == dns.TypeNSEC || t == dns.TypeNSEC3 {
					proof = append(proof, rr)
				}
			}
			var err error
			if res.Rcode == dns.RcodeNameError {
				err = dnssec.ProveNXDomain(soa.Hdr.Name, tc.probe.name, proof, dnssec.NewBudget(dnssec.Limits{}))
			} else {
				_, err = dnssec.ProveNoData(soa.Hdr.Name, tc.probe.name, tc.probe.qtype, proof, dnssec.NewBudget(dnssec.Limits{}))
			}
			if err != nil {
				t.Errorf("the synthesised proof does not prove it: %v", err)
			}
		})
	}
}

// TestAggressiveNSECOutage: with every server unreachable, a never-asked
// name in a known range is answered NXDOMAIN from the index at once;
// once the records have expired, it is answered stale (serve-stale) after
// the resolution fails, and in island mode without asking.
func TestAggressiveNSECOutage(t *testing.T) {
	n := aggHierarchy(t)
	r, clk, st := n.resolver(t, true, func(c *resolver.Config) {
		c.Island = resolver.IslandConfig{Failures: 1000}
		c.FailureRecheck = time.Millisecond
	})
	ctx := context.Background()
	if res := r.Resolve(ctx, "c.agg.", dns.TypeA); res.Rcode != dns.RcodeNameError || res.Sec != dnssec.Secure {
		t.Fatalf("priming: %s %v", dns.RcodeToString[res.Rcode], res.Sec)
	}
	var all []netip.Addr
	for a := range n.f.servers {
		all = append(all, a)
	}
	n.f.cut(true, all...)

	before := n.f.count()
	res := r.Resolve(ctx, "d.agg.", dns.TypeA)
	if res.Rcode != dns.RcodeNameError || res.Sec != dnssec.Secure || res.Stale || !res.Synthesised || n.f.count() != before {
		t.Fatalf("during the outage: %s %v stale %v synthesised %v, %d queries", dns.RcodeToString[res.Rcode], res.Sec, res.Stale,
			res.Synthesised, n.f.count()-before)
	}

	// The records expire: no fresh synthesis any more.
	clk.Advance(time.Hour)
	if _, ok := r.Cached("e.agg.", dns.TypeA); ok {
		t.Fatal("synthesised from expired records")
	}
	res = r.Resolve(ctx, "e.agg.", dns.TypeA)
	if res.Rcode != dns.RcodeNameError || !res.Stale || res.StaleReason != resolver.StaleReasonFailed || !res.Synthesised || res.Sec != dnssec.Secure {
		t.Fatalf("stale synthesis: %s stale %v (%s) synthesised %v sec %v err %v", dns.RcodeToString[res.Rcode], res.Stale, res.StaleReason,
			res.Synthesised, res.Sec, res.Err)
	}
	for _, rr := range res.Ns {
		if rr.Header().Ttl != 30 {
			t.Errorf("stale TTL %d, want the stale TTL 30: %v", rr.Header().Ttl, rr)
		}
	}
	r.SetIslandForTest(true)
	before = n.f.count()
	res = r.Resolve(ctx, "ea.agg.", dns.TypeA)
	if res.Rcode != dns.RcodeNameError || !res.Stale || res.StaleReason != resolver.StaleReasonIsland || n.f.count() != before {
		t.Fatalf("island: %s stale %v (%s), %d queries", dns.RcodeToString[res.Rcode], res.Stale, res.StaleReason, n.f.count()-before)
	}
	if got := synthTotal(st); got != 3 {
		t.Errorf("%d synthesised answers counted, want 3", got)
	}
	if got := st.StaleAnswers[0].Load() + st.StaleAnswers[3].Load(); got != 2 {
		t.Errorf("%d stale answers counted, want 2", got)
	}

	// A flush forgets the records.
	r.Cache().FlushName("agg.")
	if r.Cache().DenialRecords() != 0 {
		t.Errorf("%d records after flushing agg.", r.Cache().DenialRecords())
	}
}

// TestAggressiveNSECFlood: random names under one zone cost one upstream
// query per NSEC range, not one per name.
func TestAggressiveNSECFlood(t *testing.T) {
	n := aggHierarchy(t)
	r, _, st := n.resolver(t, true, nil)
	ctx := context.Background()
	r.Resolve(ctx, "agg.", dns.TypeSOA) // the chain of trust
	before := n.f.count()
	const names = 400
	for i := range names {
		name := fmt.Sprintf("%c%x.agg.", 'a'+i%26, i*7919)
		if res := r.Resolve(ctx, name, dns.TypeA); res.Rcode != dns.RcodeNameError || res.Sec != dnssec.Secure {
			t.Fatalf("%s: %s %v", name, dns.RcodeToString[res.Rcode], res.Sec)
		}
	}
	asked := n.f.count() - before
	// agg. has 11 NSEC records: at most one NXDOMAIN per range reaches
	// the server.
	if asked > 11 {
		t.Errorf("%d upstream queries for %d random names", asked, names)
	}
	if got := synthTotal(st); got < names-11 {
		t.Errorf("%d synthesised", got)
	}
	if r.Cache().DenialRecords() == 0 || r.Cache().DenialRecords() > 11 {
		t.Errorf("%d records indexed", r.Cache().DenialRecords())
	}
	t.Logf("%d names, %d upstream queries, %d synthesised, %d records indexed", names, asked, synthTotal(st), r.Cache().DenialRecords())
}

// TestAggressiveNSECRestore: the index is rebuilt from a cache restored
// from its file.
func TestAggressiveNSECRestore(t *testing.T) {
	n := aggHierarchy(t)
	r, clk, _ := n.resolver(t, true, nil)
	ctx := context.Background()
	r.Resolve(ctx, "c.agg.", dns.TypeA)
	var recs []resolver.CacheRecord
	if err := r.Cache().Export(func(rec resolver.CacheRecord) error { recs = append(recs, rec); return nil }); err != nil {
		t.Fatal(err)
	}
	r2, clk2, st := n.resolver(t, true, nil)
	clk2.Advance(clk.Now().Sub(clk2.Now()))
	cache2 := r2.Cache()
	for _, rec := range recs {
		cache2.Import(rec)
	}
	if _, ok := r2.Cached("d.agg.", dns.TypeA); ok {
		t.Fatal("synthesised before the index was rebuilt")
	}
	if got := cache2.IndexDenials(); got == 0 {
		t.Fatal("nothing indexed from the restored cache")
	}
	before := n.f.count()
	res, ok := r2.Cached("d.agg.", dns.TypeA)
	if !ok || res.Rcode != dns.RcodeNameError || res.Sec != dnssec.Secure || n.f.count() != before || synthTotal(st) != 1 {
		t.Fatalf("after the restore: ok %v %s %v", ok, dns.RcodeToString[res.Rcode], res.Sec)
	}
}

// TestAggressiveNSECBounded: the index stays within its share of the
// cache however many ranges it is fed, and goes on working.
func TestAggressiveNSECBounded(t *testing.T) {
	n := aggHierarchy(t)
	clk := &stepClock{t: aggNow}
	// 1 MiB of cache: 64 KiB of index, a hundred-odd records with their RRSIGs.
	cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20, Now: clk.Now})
	stats := &resolver.Stats{}
	r := resolver.New(resolver.Config{RootHints: n.hints, QueryTimeout: 50 * time.Millisecond, Now: clk.Now,
		DNSSEC: resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{n.rootDS}, AggressiveNSEC: true}}, n.f, cache, nil, stats)
	ctx := context.Background()
	peak := int64(0)
	for i := range 300 {
		if res := r.Resolve(ctx, fmt.Sprintf("n%dx.big.", i), dns.TypeA); res.Rcode != dns.RcodeNameError || res.Sec != dnssec.Secure {
			t.Fatalf("n%dx.big.: %s %v", i, dns.RcodeToString[res.Rcode], res.Sec)
		}
		peak = max(peak, cache.DenialRecords())
	}
	if peak < 50 || peak > 160 {
		t.Errorf("peak of %d records in the index", peak)
	}
	if now := cache.DenialRecords(); now < peak/2 {
		t.Errorf("%d records left of %d: an eviction took too many", now, peak)
	}
	// The most recent ranges are still there.
	before := n.f.count()
	if res, ok := r.Cached("n299y.big.", dns.TypeA); !ok || res.Rcode != dns.RcodeNameError || n.f.count() != before {
		t.Errorf("the last range is gone: %v", ok)
	}
	t.Logf("peak %d records, %d now, %d synthesised", peak, cache.DenialRecords(), synthTotal(stats))
}

// gatedNet holds every upstream query to the servers in hold until
// released, counting those held.
type gatedNet struct {
	*fakeNet
	mu      sync.Mutex
	hold    map[netip.Addr]bool
	gate    chan struct{}
	waiting int
}

func (g *gatedNet) Exchange(ctx context.Context, m *dns.Msg, s netip.AddrPort, tcp bool) (*dns.Msg, time.Duration, error) {
	g.mu.Lock()
	held := g.hold[s.Addr()]
	gate := g.gate
	if held {
		g.waiting++
	}
	g.mu.Unlock()
	if held {
		select {
		case <-gate:
		case <-ctx.Done():
		}
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
	}
	return g.fakeNet.Exchange(ctx, m, s, tcp)
}

func (g *gatedNet) held() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting
}

func TestPrefetch(t *testing.T) {
	n := aggHierarchy(t)
	g := &gatedNet{fakeNet: n.f, hold: map[netip.Addr]bool{}, gate: make(chan struct{})}
	clk := &stepClock{t: aggNow}
	newResolver := func(prefetch bool, max int) (*resolver.Resolver, *resolver.Stats) {
		cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 8 << 20, Now: clk.Now})
		stats := &resolver.Stats{}
		return resolver.New(resolver.Config{RootHints: n.hints, QueryTimeout: time.Second, ResolutionTimeout: 5 * time.Second, Now: clk.Now,
			Prefetch: prefetch, MaxPrefetches: max,
			DNSSEC: resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{n.rootDS}}}, g, cache, nil, stats), stats
	}
	ctx := context.Background()
	ttlOf := func(res resolver.Result) uint32 { return res.Answer[0].Header().Ttl }
	agg := netip.MustParseAddr("192.0.2.11")

	t.Run("last tenth, once", func(t *testing.T) {
		r, stats := newResolver(true, 0)
		if res := r.Resolve(ctx, "pf.agg.", dns.TypeA); res.Err != nil || ttlOf(res) != 100 {
			t.Fatalf("pf.agg.: %v %v", res.Err, res.Answer)
		}
		before := n.f.count()
		for _, step := range []time.Duration{50 * time.Second, 39 * time.Second, 900 * time.Millisecond} {
			clk.Advance(step) // 10.1 s left at most: not yet in the last tenth
			if res, ok := r.Cached("pf.agg.", dns.TypeA); !ok || ttlOf(res) < 10 {
				t.Fatalf("cached: %v %v", ok, res.Answer)
			}
		}
		if n.f.count() != before || stats.Prefetches[0].Load()+stats.Prefetches[2].Load() != 0 {
			t.Fatalf("prefetched before the last tenth: %d queries", n.f.count()-before)
		}
		// The last tenth: answered from the cache at once, refreshed behind,
		// once however often it is asked meanwhile.
		g.mu.Lock()
		g.hold[agg] = true
		g.mu.Unlock()
		clk.Advance(200 * time.Millisecond)
		for range 20 {
			res, ok := r.Cached("pf.agg.", dns.TypeA)
			if !ok || ttlOf(res) != 9 {
				t.Fatalf("in the last tenth: %v %v", ok, res.Answer)
			}
		}
		waitFor(t, "the prefetch to ask upstream", func() bool { return g.held() == 1 })
		if res := r.Resolve(ctx, "pf.agg.", dns.TypeA); ttlOf(res) != 9 {
			t.Fatalf("Resolve during the prefetch: %v", res.Answer)
		}
		g.mu.Lock()
		close(g.gate)
		g.gate = make(chan struct{})
		g.hold[agg] = false
		g.mu.Unlock()
		waitFor(t, "the prefetch to finish", func() bool { return stats.Prefetches[0].Load() == 1 })
		if got := n.f.count() - before; got != 1 {
			t.Errorf("%d upstream queries for the prefetch, want 1: %v", got, n.f.asked[before:])
		}
		if res, ok := r.Cached("pf.agg.", dns.TypeA); !ok || ttlOf(res) != 100 {
			t.Errorf("after the prefetch: %v %v", ok, res.Answer)
		}
		if stats.Prefetches[0].Load() != 1 || stats.Prefetches[1].Load() != 0 || stats.Prefetches[2].Load() != 0 {
			t.Errorf("prefetches %d ok, %d failed, %d skipped", stats.Prefetches[0].Load(), stats.Prefetches[1].Load(), stats.Prefetches[2].Load())
		}
	})

	t.Run("short TTL, switched off", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			prefetch bool
			advance  time.Duration
		}{{"short.agg.", true, 4800 * time.Millisecond}, {"pf.agg.", false, 95 * time.Second}} {
			r, stats := newResolver(tc.prefetch, 0)
			r.Resolve(ctx, tc.name, dns.TypeA)
			clk.Advance(tc.advance)
			before := n.f.count()
			if _, ok := r.Cached(tc.name, dns.TypeA); !ok {
				t.Fatalf("%s not cached", tc.name)
			}
			r.Resolve(ctx, tc.name, dns.TypeA)
			if n.f.count() != before || stats.Prefetches[0].Load()+stats.Prefetches[2].Load() != 0 {
				t.Errorf("%s prefetched (prefetch %v)", tc.name, tc.prefetch)
			}
		}
	})

	t.Run("bounded", func(t *testing.T) {
		r, stats := newResolver(true, 2)
		names := []string{"b.agg.", "m.agg.", "y.agg.", "x.ent.agg.", "ns.agg."}
		for _, name := range names {
			if res := r.Resolve(ctx, name, dns.TypeA); res.Err != nil || res.Rcode != dns.RcodeSuccess {
				t.Fatalf("%s: %v", name, res.Err)
			}
		}
		g.mu.Lock()
		g.hold[agg] = true
		g.mu.Unlock()
		clk.Advance(3500 * time.Second) // 100 s of 3600 left
		for _, name := range names {
			if _, ok := r.Cached(name, dns.TypeA); !ok {
				t.Fatalf("%s not cached", name)
			}
		}
		waitFor(t, "two prefetches upstream", func() bool { return g.held() == 2 })
		if got := stats.Prefetches[2].Load(); got != uint64(len(names)-2) {
			t.Errorf("%d prefetches skipped, want %d", got, len(names)-2)
		}
		g.mu.Lock()
		close(g.gate)
		g.gate = make(chan struct{})
		g.hold[agg] = false
		g.mu.Unlock()
		waitFor(t, "the prefetches to finish", func() bool { return stats.Prefetches[0].Load() == 2 })
	})
}

// BenchmarkAggressiveNSEC is the cost of answering a never-asked name
// from the denial index, as the server's socket goroutines do (Cached):
// finding the zone and the records, checking the proof with the
// validator's code, and copying the records out.
func BenchmarkAggressiveNSEC(b *testing.B) {
	n := aggHierarchy(b)
	for _, tc := range []struct {
		name, prime string
		probe       func(i int) string
	}{
		{"nsec", "c.agg.", func(i int) string { return fmt.Sprintf("d%d.agg.", i%1024) }},
		{"nsec3", "n0.agg3.", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r, _, _ := n.resolver(b, true, nil)
			if res := r.Resolve(context.Background(), tc.prime, dns.TypeA); res.Rcode != dns.RcodeNameError || res.Sec != dnssec.Secure {
				b.Fatalf("priming: %s %v", dns.RcodeToString[res.Rcode], res.Sec)
			}
			probe := tc.probe
			if probe == nil {
				var names []string
				for len(names) < 64 {
					names = append(names, n.sameSpan(b, tc.prime, fmt.Sprintf("s%d-", len(names))))
				}
				probe = func(i int) string { return names[i%len(names)] }
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if res, ok := r.Cached(probe(i), dns.TypeA); !ok || res.Rcode != dns.RcodeNameError {
					b.Fatalf("%s not synthesised", probe(i))
				}
				i++
			}
		})
	}
}
