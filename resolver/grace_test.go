package resolver_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
)

// A signed hierarchy for the island-mode signature grace, national
// namespace az.:
//
//	.        192.0.2.1   signed, valid; held locally (a root mirror)
//	az.      192.0.2.2   national; DS for gov.az.
//	gov.az.      192.0.2.3   national; DS for sub.gov.az.
//	sub.gov.az.  192.0.2.7   national, signed, valid
//	corp.        192.0.2.6   not national; a stub zone (the operator's own servers)
//
// gov.az. and corp. are signed with the validity period a test chooses,
// az. with another.

// sigWindow is a validity period of RRSIGs.
type sigWindow struct{ inception, expiration time.Time }

var (
	validWindow = sigWindow{valNow.Add(-24 * time.Hour), valNow.Add(30 * 24 * time.Hour)}
	expired1h   = sigWindow{valNow.Add(-30 * 24 * time.Hour), valNow.Add(-time.Hour)}
	expired100h = sigWindow{valNow.Add(-30 * 24 * time.Hour), valNow.Add(-100 * time.Hour)}
	notYetValid = sigWindow{valNow.Add(time.Hour), valNow.Add(30 * 24 * time.Hour)}
	ipCorp      = netip.MustParseAddr("192.0.2.6")
	ipSub       = netip.MustParseAddr("192.0.2.7")
)

// graceHierarchy builds the hierarchy: gov.az. and corp. signed for w,
// az. for tld. It returns the servers, the root hints, the root zone (for
// the local mirror) and the root's DS anchor.
func graceHierarchy(t *testing.T, w, tld sigWindow) (*fakeNet, []dns.RR, *zone.Set, *dns.DS) {
	t.Helper()
	keys := map[string][2]valKey{}
	for _, z := range []string{".", "az.", "gov.az.", "sub.gov.az.", "corp."} {
		keys[z] = [2]valKey{newValKey(t, z, dns.ZONE|dns.SEP), newValKey(t, z, dns.ZONE)}
	}
	sign := func(origin string, w sigWindow, text string) *zone.Zone {
		return mustZone(t, origin, signZone(t, origin, text, keys[origin][0], keys[origin][1], w.inception, w.expiration))
	}
	ds := func(z string) string { return keys[z][0].rr.ToDS(dns.SHA256).String() + "\n" }
	root := sign(".", validWindow, `. SOA a.root.test. h.root.test. 1 2 3 4 86400
. NS a.root.test.
a.root.test. A 192.0.2.1
az. NS ns.nic.az.
ns.nic.az. A 192.0.2.2
`+ds("az.")+`corp. NS ns.corp.
ns.corp. A 192.0.2.6
`+ds("corp."))
	az := sign("az.", tld, `@ SOA ns.nic h 1 2 3 4 300
@ NS ns.nic
ns.nic A 192.0.2.2
gov NS ns1.gov
ns1.gov A 192.0.2.3
`+ds("gov.az."))
	gov := sign("gov.az.", w, `@ SOA ns1 h 1 2 3 4 300
@ NS ns1
ns1 A 192.0.2.3
www A 198.51.100.10
mail A 198.51.100.11
web A 198.51.100.12
sub NS ns.sub
ns.sub A 192.0.2.7
`+ds("sub.gov.az."))
	sub := sign("sub.gov.az.", validWindow, `@ SOA ns h 1 2 3 4 300
@ NS ns
ns A 192.0.2.7
www A 198.51.100.20
mail A 198.51.100.21
web A 198.51.100.22
`)
	corp := sign("corp.", w, `@ SOA ns h 1 2 3 4 300
@ NS ns
ns A 192.0.2.6
www A 198.51.100.60
`)
	rootSet := zone.NewSet(root)
	f := &fakeNet{servers: map[netip.Addr]*zone.Set{
		ipRoot: rootSet,
		ipAz:   zone.NewSet(az),
		ipGov:  zone.NewSet(gov),
		ipSub:  zone.NewSet(sub),
		ipCorp: zone.NewSet(corp),
	}}
	hints, err := resolver.ParseHints(strings.NewReader(". NS a.root.test.\na.root.test. A 192.0.2.1\n"), "hints")
	if err != nil {
		t.Fatal(err)
	}
	return f, hints, rootSet, keys["."][0].rr.ToDS(dns.SHA256)
}

// graceResolver is a validating resolver of the national namespace az.,
// with the root held locally and corp. as a stub zone, so that in island
// mode it needs no foreign server.
func graceResolver(t *testing.T, f *fakeNet, hints []dns.RR, root *zone.Set, anchor *dns.DS, grace time.Duration, clk *stepClock) (*resolver.Resolver, *resolver.Stats) {
	t.Helper()
	local := server.NewLocal()
	local.SetZones(root)
	stats := &resolver.Stats{}
	cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20, Now: clk.Now})
	cfg := resolver.Config{RootHints: hints, QueryTimeout: 50 * time.Millisecond, ResolutionTimeout: 2 * time.Second,
		Now: clk.Now, DNSSEC: resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{anchor}},
		Local: local, National: []string{"az."}, SignatureGrace: grace,
		Stubs: map[string][]netip.AddrPort{"corp.": {netip.AddrPortFrom(ipCorp, 53)}}}
	return resolver.New(cfg, f, cache, nil, stats), stats
}

func TestSignatureGrace(t *testing.T) {
	cases := []struct {
		name   string
		qname  string
		island bool
		grace  time.Duration
		window sigWindow // of gov.az. and corp.
		tld    sigWindow // of az.; zero: validWindow
		rcode  int
		sec    dnssec.SecStatus
		reason error  // why it is not secure
		ede    uint16 // and its Extended DNS Error
		graced bool
	}{
		{name: "outside island mode", qname: "www.gov.az.", grace: 72 * time.Hour, window: expired1h,
			sec: dnssec.Bogus, reason: dnssec.ErrSignatureExpired, ede: dns.ExtendedErrorCodeSignatureExpired},
		{name: "island, national", qname: "www.gov.az.", island: true, grace: 72 * time.Hour, window: expired1h,
			sec: dnssec.Secure, graced: true},
		{name: "island, national NXDOMAIN", qname: "nope.gov.az.", island: true, grace: 72 * time.Hour, window: expired1h,
			rcode: dns.RcodeNameError, sec: dnssec.Secure, graced: true},
		{name: "island, national TLD expired too", qname: "www.gov.az.", island: true, grace: 72 * time.Hour, window: expired1h, tld: expired1h,
			sec: dnssec.Secure, graced: true},
		{name: "island, national TLD expired only", qname: "www.gov.az.", island: true, grace: 72 * time.Hour, window: validWindow, tld: expired1h,
			sec: dnssec.Secure, graced: true},
		{name: "outside island mode, national TLD expired only", qname: "www.gov.az.", grace: 72 * time.Hour, window: validWindow, tld: expired1h,
			sec: dnssec.Bogus, reason: dnssec.ErrSignatureExpired, ede: dns.ExtendedErrorCodeSignatureExpired},
		{name: "island, valid signatures", qname: "www.gov.az.", island: true, grace: 72 * time.Hour, window: validWindow,
			sec: dnssec.Secure},
		{name: "island, not national", qname: "www.corp.", island: true, grace: 72 * time.Hour, window: expired1h,
			sec: dnssec.Bogus, reason: dnssec.ErrSignatureExpired, ede: dns.ExtendedErrorCodeSignatureExpired},
		{name: "island, expired beyond the grace", qname: "www.gov.az.", island: true, grace: 72 * time.Hour, window: expired100h,
			sec: dnssec.Bogus, reason: dnssec.ErrSignatureExpired, ede: dns.ExtendedErrorCodeSignatureExpired},
		{name: "island, not yet valid", qname: "www.gov.az.", island: true, grace: 72 * time.Hour, window: notYetValid,
			sec: dnssec.Bogus, reason: dnssec.ErrSignatureNotYetValid, ede: dns.ExtendedErrorCodeSignatureNotYetValid},
		{name: "island, no grace configured", qname: "www.gov.az.", island: true, window: expired1h,
			sec: dnssec.Bogus, reason: dnssec.ErrSignatureExpired, ede: dns.ExtendedErrorCodeSignatureExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.tld == (sigWindow{}) {
				tc.tld = validWindow
			}
			f, hints, root, anchor := graceHierarchy(t, tc.window, tc.tld)
			clk := &stepClock{t: valNow}
			r, stats := graceResolver(t, f, hints, root, anchor, tc.grace, clk)
			r.SetIslandForTest(tc.island)
			res := r.Resolve(context.Background(), tc.qname, dns.TypeA)
			if res.Err != nil || res.Rcode != tc.rcode || res.Sec != tc.sec {
				t.Fatalf("rcode %s sec %v why %v err %v; want %s %v", dns.RcodeToString[res.Rcode], res.Sec, res.Why, res.Err,
					dns.RcodeToString[tc.rcode], tc.sec)
			}
			if tc.reason != nil {
				code, _ := dnssec.EDE(res.Why)
				if !errors.Is(res.Why, tc.reason) || code != tc.ede {
					t.Errorf("why %v (EDE %d), want %v (EDE %d)", res.Why, code, tc.reason, tc.ede)
				}
			}
			if res.Grace != tc.graced {
				t.Errorf("Grace %v, want %v", res.Grace, tc.graced)
			}
			want := uint64(0)
			if tc.graced {
				want = 1
			}
			if got := stats.GraceAccepted.Load(); got != want {
				t.Errorf("GraceAccepted %d, want %d", got, want)
			}
			if r.Island() != tc.island {
				t.Errorf("island mode %v after the question, want %v", r.Island(), tc.island)
			}
			if !tc.graced {
				return
			}
			// Graced data is cached briefly.
			cached, ok := r.Cached(tc.qname, dns.TypeA)
			if !ok || cached.Sec != dnssec.Secure {
				t.Fatalf("cached: ok %v sec %v", ok, cached.Sec)
			}
			for _, rr := range slices.Concat(cached.Answer, cached.Ns) {
				if rr.Header().Ttl > dnssec.MaxGraceTTL {
					t.Errorf("cached with TTL %d, more than %d: %v", rr.Header().Ttl, dnssec.MaxGraceTTL, rr)
				}
			}
		})
	}
}

// TestSignatureGraceEnds: what was accepted under the grace is not used
// once island mode is over, nor once the grace has run out. Only az.'s
// signatures have expired: gov.az.'s data is signed, but its chain of
// trust holds only under the grace.
func TestSignatureGraceEnds(t *testing.T) {
	resolve := func(t *testing.T, r *resolver.Resolver, name string, sec dnssec.SecStatus, grace bool) {
		t.Helper()
		res := r.Resolve(context.Background(), name, dns.TypeA)
		if res.Sec != sec || res.Grace != grace || (sec == dnssec.Bogus && !errors.Is(res.Why, dnssec.ErrSignatureExpired)) {
			t.Errorf("%s: %v %v grace %v, want %v grace %v", name, res.Sec, res.Why, res.Grace, sec, grace)
		}
	}
	t.Run("island mode over", func(t *testing.T) {
		f, hints, root, anchor := graceHierarchy(t, validWindow, expired1h)
		clk := &stepClock{t: valNow}
		r, stats := graceResolver(t, f, hints, root, anchor, 72*time.Hour, clk)
		r.SetIslandForTest(true)
		resolve(t, r, "www.gov.az.", dnssec.Secure, true)
		resolve(t, r, "www.sub.gov.az.", dnssec.Secure, true)
		// The chain from the key cache is still graced.
		resolve(t, r, "mail.gov.az.", dnssec.Secure, true)
		resolve(t, r, "mail.sub.gov.az.", dnssec.Secure, true)
		if got := stats.GraceAccepted.Load(); got != 4 {
			t.Errorf("GraceAccepted %d, want 4", got)
		}
		cached, ok := r.Cached("www.gov.az.", dns.TypeA)
		if !ok || cached.Answer[0].Header().Ttl > dnssec.MaxGraceTTL {
			t.Fatalf("cached %v: %v", ok, cached.Answer)
		}
		r.SetIslandForTest(false)
		// The keys accepted under the grace, and those below them, are
		// checked again.
		resolve(t, r, "web.gov.az.", dnssec.Bogus, false)
		resolve(t, r, "web.sub.gov.az.", dnssec.Bogus, false)
		// The graced answers leave the cache within MaxGraceTTL.
		clk.Advance(dnssec.MaxGraceTTL * time.Second)
		resolve(t, r, "www.gov.az.", dnssec.Bogus, false)
		resolve(t, r, "www.sub.gov.az.", dnssec.Bogus, false)
		if got := stats.GraceAccepted.Load(); got != 4 {
			t.Errorf("GraceAccepted %d, want 4", got)
		}
	})
	t.Run("grace runs out", func(t *testing.T) {
		f, hints, root, anchor := graceHierarchy(t, validWindow, expired1h)
		clk := &stepClock{t: valNow}
		r, _ := graceResolver(t, f, hints, root, anchor, time.Hour+20*time.Second, clk)
		r.SetIslandForTest(true)
		resolve(t, r, "www.gov.az.", dnssec.Secure, true)
		resolve(t, r, "www.sub.gov.az.", dnssec.Secure, true)
		// Cached no longer than the 20s of grace left.
		cached, ok := r.Cached("www.gov.az.", dns.TypeA)
		if !ok || cached.Answer[0].Header().Ttl > 20 {
			t.Fatalf("cached %v: %v", ok, cached.Answer)
		}
		clk.Advance(21 * time.Second)
		if _, ok := r.Cached("www.gov.az.", dns.TypeA); ok {
			t.Error("still cached after the grace")
		}
		for _, name := range []string{"www.gov.az.", "mail.gov.az.", "www.sub.gov.az.", "mail.sub.gov.az."} {
			resolve(t, r, name, dnssec.Bogus, false)
		}
	})
}
