package resolver_test

import (
	"context"
	"crypto"
	"encoding/base64"
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

// A signed in-memory hierarchy, signed here with miekg/dns:
//
//	.              192.0.2.1   signed; DS for az.
//	az.            192.0.2.2   signed; DS for gov.az. and expired.az., none for insecure.az.
//	gov.az.        192.0.2.3   signed (NSEC), with a wildcard
//	insecure.az.   192.0.2.4   unsigned
//	expired.az.    192.0.2.5   signed, every signature expired

var valNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type valKey struct {
	rr   *dns.DNSKEY
	priv crypto.Signer
}

func newValKey(t testing.TB, zone string, flags uint16) valKey {
	t.Helper()
	k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: flags, Protocol: 3, Algorithm: dns.ED25519}
	for {
		priv, err := k.Generate(256)
		if err != nil {
			t.Fatal(err)
		}
		// miekg/dns refuses to sign with key tag 0 (ErrKey): one random
		// key in 65536 has it.
		if k.KeyTag() != 0 {
			return valKey{rr: k, priv: priv.(crypto.Signer)}
		}
	}
}

// canonicalLess orders plain names canonically (RFC 4034 §6.1).
func canonicalLess(a, b string) int {
	la, lb := dns.SplitDomainName(strings.ToLower(a)), dns.SplitDomainName(strings.ToLower(b))
	slices.Reverse(la)
	slices.Reverse(lb)
	return slices.Compare(la, lb)
}

// signZone returns the zone text signed with ksk (DNSKEY RRset) and zsk
// (the rest), with an NSEC chain; signatures run from inception to
// expiration.
func signZone(t testing.TB, origin, text string, ksk, zsk valKey, inception, expiration time.Time) string {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader("$TTL 3600\n"+text), origin, origin)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	rrs = append(rrs, ksk.rr, zsk.rr)
	cuts := map[string]bool{}
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeNS && !strings.EqualFold(rr.Header().Name, origin) {
			cuts[strings.ToLower(rr.Header().Name)] = true
		}
	}
	belowCut := func(name string) bool {
		for c := range cuts {
			if dns.IsSubDomain(c, name) && !strings.EqualFold(c, name) {
				return true
			}
		}
		return false
	}
	types := map[string][]uint16{}
	sets := map[string][]dns.RR{}
	var order []string
	for _, rr := range rrs {
		h := rr.Header()
		name := strings.ToLower(h.Name)
		if belowCut(name) {
			continue // glue
		}
		if !slices.Contains(types[name], h.Rrtype) {
			types[name] = append(types[name], h.Rrtype)
		}
		k := name + "/" + dns.Type(h.Rrtype).String()
		if _, ok := sets[k]; !ok {
			order = append(order, k)
		}
		sets[k] = append(sets[k], rr)
	}
	var names []string
	for n := range types {
		names = append(names, n)
	}
	slices.SortFunc(names, canonicalLess)
	var out []dns.RR
	out = append(out, rrs...)
	for i, n := range names {
		bitmap := append(slices.Clone(types[n]), dns.TypeNSEC, dns.TypeRRSIG)
		slices.Sort(bitmap)
		nsec := &dns.NSEC{Hdr: dns.RR_Header{Name: n, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 300},
			NextDomain: names[(i+1)%len(names)], TypeBitMap: bitmap}
		out = append(out, nsec)
		k := n + "/NSEC"
		order = append(order, k)
		sets[k] = []dns.RR{nsec}
	}
	for _, k := range order {
		set := sets[k]
		h := set[0].Header()
		if h.Rrtype == dns.TypeNS && cuts[strings.ToLower(h.Name)] {
			continue // the parent does not sign a delegation's NS
		}
		key := zsk
		if h.Rrtype == dns.TypeDNSKEY {
			key = ksk
		}
		sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: h.Ttl},
			TypeCovered: h.Rrtype, Algorithm: key.rr.Algorithm, Labels: uint8(dnssec.WireLabels(h.Name)), OrigTtl: h.Ttl,
			Expiration: uint32(expiration.Unix()), Inception: uint32(inception.Unix()), KeyTag: key.rr.KeyTag(), SignerName: origin}
		if sig.Labels == 0 && h.Name != "." {
			// The wildcard at the root, which miekg/dns cannot sign.
			data, err := resolver.WildcardSignedDataForTest(set, sig, "*.")
			if err != nil {
				t.Fatal(err)
			}
			b, err := key.priv.Sign(nil, data, crypto.Hash(0))
			if err != nil {
				t.Fatal(err)
			}
			sig.Signature = base64.StdEncoding.EncodeToString(b)
		} else if err := sig.Sign(key.priv, set); err != nil {
			t.Fatalf("signing %s: %v", k, err)
		}
		out = append(out, sig)
	}
	var b strings.Builder
	for _, rr := range out {
		b.WriteString(rr.String() + "\n")
	}
	return b.String()
}

// signedNet is the signed hierarchy and what tests need to validate it.
type signedNet struct {
	f       *fakeNet
	hints   []dns.RR
	rootDS  *dns.DS
	govDS   *dns.DS
	govKSK  *dns.DNSKEY
	servers map[string]netip.Addr
}

func signedHierarchy(t testing.TB) *signedNet {
	t.Helper()
	valid := func(k1, k2 valKey, origin, text string) string {
		return signZone(t, origin, text, k1, k2, valNow.Add(-24*time.Hour), valNow.Add(30*24*time.Hour))
	}
	keys := map[string][2]valKey{}
	for _, z := range []string{".", "az.", "gov.az.", "expired.az."} {
		keys[z] = [2]valKey{newValKey(t, z, dns.ZONE|dns.SEP), newValKey(t, z, dns.ZONE)}
	}
	ds := func(z string) string { return keys[z][0].rr.ToDS(dns.SHA256).String() + "\n" }
	gov := valid(keys["gov.az."][0], keys["gov.az."][1], "gov.az.", `@ SOA ns1 h 1 2 3 4 300
@ NS ns1
ns1 A 192.0.2.3
www A 198.51.100.10
portal CNAME www
*.apps A 198.51.100.80
`)
	expired := signZone(t, "expired.az.", `@ SOA ns h 1 2 3 4 300
@ NS ns
ns A 192.0.2.5
www A 198.51.100.50
`, keys["expired.az."][0], keys["expired.az."][1], valNow.Add(-30*24*time.Hour), valNow.Add(-24*time.Hour))
	az := valid(keys["az."][0], keys["az."][1], "az.", `@ SOA ns.nic h 1 2 3 4 300
@ NS ns.nic
ns.nic A 192.0.2.2
gov NS ns1.gov
ns1.gov A 192.0.2.3
`+ds("gov.az.")+`insecure NS ns.insecure
ns.insecure A 192.0.2.4
expired NS ns.expired
ns.expired A 192.0.2.5
`+ds("expired.az."))
	root := valid(keys["."][0], keys["."][1], ".", `. SOA a.root.test. h.root.test. 1 2 3 4 86400
. NS a.root.test.
a.root.test. A 192.0.2.1
az. NS ns.nic.az.
ns.nic.az. A 192.0.2.2
`+ds("az."))
	insecure := mustZone(t, "insecure.az.", `@ SOA ns h 1 2 3 4 300
@ NS ns
ns A 192.0.2.4
www A 198.51.100.40
`)
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	f := &fakeNet{servers: map[netip.Addr]*zone.Set{
		ip("192.0.2.1"): zone.NewSet(mustZone(t, ".", root)),
		ip("192.0.2.2"): zone.NewSet(mustZone(t, "az.", az)),
		ip("192.0.2.3"): zone.NewSet(mustZone(t, "gov.az.", gov)),
		ip("192.0.2.4"): zone.NewSet(insecure),
		ip("192.0.2.5"): zone.NewSet(mustZone(t, "expired.az.", expired)),
	}}
	hints, err := resolver.ParseHints(strings.NewReader(". NS a.root.test.\na.root.test. A 192.0.2.1\n"), "hints")
	if err != nil {
		t.Fatal(err)
	}
	return &signedNet{f: f, hints: hints, rootDS: keys["."][0].rr.ToDS(dns.SHA256),
		govDS: keys["gov.az."][0].rr.ToDS(dns.SHA256), govKSK: keys["gov.az."][0].rr}
}

func (n *signedNet) resolver(t testing.TB, d resolver.DNSSECConfig) *resolver.Resolver {
	t.Helper()
	now := func() time.Time { return valNow }
	cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20, Now: now})
	return resolver.New(resolver.Config{RootHints: n.hints, QueryTimeout: 50 * time.Millisecond,
		ResolutionTimeout: 2 * time.Second, Now: now, DNSSEC: d}, n.f, cache, nil, nil)
}

func TestValidation(t *testing.T) {
	n := signedHierarchy(t)
	cases := []struct {
		name   string
		qtype  uint16
		rcode  int
		sec    dnssec.SecStatus
		reason error
		sigs   bool // RRSIGs in the answer
	}{
		{name: "www.gov.az.", qtype: dns.TypeA, sec: dnssec.Secure, sigs: true},
		{name: "portal.gov.az.", qtype: dns.TypeA, sec: dnssec.Secure, sigs: true},
		{name: "x.apps.gov.az.", qtype: dns.TypeA, sec: dnssec.Secure, sigs: true},
		{name: "nope.gov.az.", qtype: dns.TypeA, rcode: dns.RcodeNameError, sec: dnssec.Secure},
		{name: "www.gov.az.", qtype: dns.TypeTXT, sec: dnssec.Secure},
		{name: "gov.az.", qtype: dns.TypeDNSKEY, sec: dnssec.Secure, sigs: true},
		{name: "gov.az.", qtype: dns.TypeDS, sec: dnssec.Secure, sigs: true},
		{name: "www.insecure.az.", qtype: dns.TypeA, sec: dnssec.Insecure},
		{name: "nope.insecure.az.", qtype: dns.TypeA, rcode: dns.RcodeNameError, sec: dnssec.Insecure},
		{name: "www.expired.az.", qtype: dns.TypeA, sec: dnssec.Bogus, reason: dnssec.ErrSignatureExpired, sigs: true},
	}
	r := n.resolver(t, resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{n.rootDS}})
	for _, tc := range cases {
		t.Run(tc.name+dns.Type(tc.qtype).String(), func(t *testing.T) {
			res := r.Resolve(context.Background(), tc.name, tc.qtype)
			if res.Err != nil || res.Rcode != tc.rcode || res.Sec != tc.sec {
				t.Fatalf("rcode %s sec %v why %v err %v; want %s %v", dns.RcodeToString[res.Rcode], res.Sec, res.Why, res.Err,
					dns.RcodeToString[tc.rcode], tc.sec)
			}
			if tc.reason != nil && !errors.Is(res.Why, tc.reason) {
				t.Fatalf("why %v, want %v", res.Why, tc.reason)
			}
			hasSig := slices.ContainsFunc(res.Answer, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeRRSIG })
			if hasSig != tc.sigs {
				t.Errorf("RRSIGs in the answer: %v, want %v\n%v", hasSig, tc.sigs, res.Answer)
			}
			if tc.rcode == dns.RcodeNameError && tc.sec == dnssec.Secure &&
				!slices.ContainsFunc(res.Ns, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeNSEC }) {
				t.Errorf("no NSEC proof in authority: %v", res.Ns)
			}
			// The cache answers with the same status, without upstream
			// queries or validation.
			before := n.f.count()
			cached, ok := r.Cached(tc.name, tc.qtype)
			if tc.sec != dnssec.Bogus && (!ok || cached.Sec != tc.sec || n.f.count() != before) {
				t.Errorf("cached: ok %v sec %v (want %v), %d queries", ok, cached.Sec, tc.sec, n.f.count()-before)
			}
		})
	}
	if s := r.Cache().Stats(); s.Entries == 0 {
		t.Error("nothing cached")
	}
}

func TestValidationAnchorsAndNTA(t *testing.T) {
	n := signedHierarchy(t)
	t.Run("pinned anchor only", func(t *testing.T) {
		r := n.resolver(t, resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{n.govDS}})
		if res := r.Resolve(context.Background(), "www.gov.az.", dns.TypeA); res.Sec != dnssec.Secure {
			t.Errorf("www.gov.az: %v %v", res.Sec, res.Why)
		}
		// Outside the anchor: insecure, even the broken zone.
		if res := r.Resolve(context.Background(), "www.expired.az.", dns.TypeA); res.Sec != dnssec.Insecure || res.Err != nil {
			t.Errorf("www.expired.az: %v %v %v", res.Sec, res.Why, res.Err)
		}
	})
	t.Run("pinned DNSKEY anchor", func(t *testing.T) {
		r := n.resolver(t, resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{n.govKSK}})
		if res := r.Resolve(context.Background(), "portal.gov.az.", dns.TypeA); res.Sec != dnssec.Secure {
			t.Errorf("portal.gov.az: %v %v", res.Sec, res.Why)
		}
	})
	t.Run("wrong root anchor", func(t *testing.T) {
		wrong := dns.Copy(n.rootDS).(*dns.DS)
		wrong.Digest = strings.Repeat("00", 32)
		r := n.resolver(t, resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{wrong}})
		res := r.Resolve(context.Background(), "www.gov.az.", dns.TypeA)
		if res.Sec != dnssec.Bogus || !errors.Is(res.Why, dnssec.ErrDNSKEYMissing) {
			t.Errorf("www.gov.az: %v %v", res.Sec, res.Why)
		}
	})
	t.Run("anchors replaced at run time", func(t *testing.T) {
		// RFC 5011 updates replace the anchors of a running resolver: the
		// chains of trust built on the old ones are dropped, and a new
		// question (each step asks another name under the wildcard) is
		// validated with the new ones. Answers validated as secure stay
		// cached for their TTL.
		wrong := dns.Copy(n.rootDS).(*dns.DS)
		wrong.Digest = strings.Repeat("00", 32)
		r := n.resolver(t, resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{wrong}})
		for i, c := range []struct {
			anchors []dns.RR
			want    dnssec.SecStatus
		}{
			{nil, dnssec.Bogus},
			{[]dns.RR{n.rootDS}, dnssec.Secure},
			{[]dns.RR{wrong}, dnssec.Bogus},
			{[]dns.RR{n.govKSK}, dnssec.Secure},
		} {
			if c.anchors != nil {
				if err := r.SetTrustAnchors(c.anchors); err != nil {
					t.Fatal(err)
				}
			}
			name := fmt.Sprintf("n%d.apps.gov.az.", i)
			if res := r.Resolve(context.Background(), name, dns.TypeA); res.Sec != c.want {
				t.Errorf("step %d: %s %v (%v), want %v", i, name, res.Sec, res.Why, c.want)
			}
		}
		if err := r.SetTrustAnchors([]dns.RR{n.govDS, &dns.A{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeA}}}); err == nil {
			t.Error("an A record taken as a trust anchor")
		}
	})
	t.Run("negative trust anchor", func(t *testing.T) {
		r := n.resolver(t, resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{n.rootDS}, NegativeAnchors: []string{"expired.az."}})
		if res := r.Resolve(context.Background(), "www.expired.az.", dns.TypeA); res.Sec != dnssec.Insecure || len(res.Answer) == 0 {
			t.Errorf("www.expired.az under an NTA: %v %v", res.Sec, res.Why)
		}
		if res := r.Resolve(context.Background(), "www.gov.az.", dns.TypeA); res.Sec != dnssec.Secure {
			t.Errorf("www.gov.az beside the NTA: %v %v", res.Sec, res.Why)
		}
	})
	t.Run("validation off", func(t *testing.T) {
		r := n.resolver(t, resolver.DNSSECConfig{})
		if res := r.Resolve(context.Background(), "www.expired.az.", dns.TypeA); res.Sec != dnssec.Unchecked || len(res.Answer) == 0 {
			t.Errorf("www.expired.az: %v %v", res.Sec, res.Why)
		}
	})
	t.Run("work limit", func(t *testing.T) {
		stats := &resolver.Stats{}
		now := func() time.Time { return valNow }
		r := resolver.New(resolver.Config{RootHints: n.hints, QueryTimeout: 50 * time.Millisecond, Now: now,
			DNSSEC: resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{n.rootDS}, MaxValidations: 2}},
			n.f, resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20, Now: now}), nil, stats)
		res := r.Resolve(context.Background(), "www.gov.az.", dns.TypeA)
		if res.Sec != dnssec.Bogus || !errors.Is(res.Why, dnssec.ErrWorkLimit) {
			t.Fatalf("%v %v, want bogus by the work limit", res.Sec, res.Why)
		}
		if got := stats.ValidationLimits[0].Load(); got != 1 {
			t.Errorf("validation limit hits %d, want 1", got)
		}
		if got := stats.Verdicts[dnssec.Bogus].Load(); got != 1 {
			t.Errorf("bogus verdicts %d", got)
		}
	})
}

// TestValidationStripped checks that a signed zone's answer stripped of its
// signatures, or of its denial proof, is bogus.
func TestValidationStripped(t *testing.T) {
	n := signedHierarchy(t)
	gov := netip.MustParseAddr("192.0.2.3")
	strip := &strippingNet{fakeNet: n.f, addr: gov}
	n.f = &fakeNet{} // unused
	now := func() time.Time { return valNow }
	r := resolver.New(resolver.Config{RootHints: n.hints, QueryTimeout: 50 * time.Millisecond, Now: now,
		DNSSEC: resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{n.rootDS}}},
		strip, resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20, Now: now}), nil, nil)
	// Warm the chain first, with the real answers.
	if res := r.Resolve(context.Background(), "gov.az.", dns.TypeDNSKEY); res.Sec != dnssec.Secure {
		t.Fatalf("gov.az DNSKEY: %v %v", res.Sec, res.Why)
	}
	strip.on = true
	for _, tc := range []struct {
		name   string
		qtype  uint16
		reason error
	}{
		{name: "www.gov.az.", qtype: dns.TypeA, reason: dnssec.ErrRRSIGsMissing},
		{name: "nope.gov.az.", qtype: dns.TypeA, reason: dnssec.ErrNSECMissing},
		{name: "y.apps.gov.az.", qtype: dns.TypeA, reason: dnssec.ErrNSECMissing},
	} {
		res := r.Resolve(context.Background(), tc.name, tc.qtype)
		if res.Sec != dnssec.Bogus || !errors.Is(res.Why, tc.reason) {
			t.Errorf("%s %s: %v %v, want bogus (%v)", tc.name, dns.Type(tc.qtype), res.Sec, res.Why, tc.reason)
		}
	}
}

// strippingNet removes, once on, the RRSIGs of answers and the NSEC
// records of authority sections that one server sends, except in answers
// to DS questions (the chain of trust stays intact).
type strippingNet struct {
	*fakeNet
	addr netip.Addr
	on   bool
}

func (s *strippingNet) Exchange(ctx context.Context, m *dns.Msg, server netip.AddrPort, tcp bool) (*dns.Msg, time.Duration, error) {
	r, rtt, err := s.fakeNet.Exchange(ctx, m, server, tcp)
	if err != nil || !s.on || server.Addr() != s.addr || m.Question[0].Qtype == dns.TypeDS {
		return r, rtt, err
	}
	var answer, ns []dns.RR
	wildcard := false
	for _, rr := range r.Answer {
		if sig, ok := rr.(*dns.RRSIG); ok && int(sig.Labels) < dnssec.WireLabels(sig.Hdr.Name) {
			wildcard = true
		}
	}
	for _, rr := range r.Answer {
		if rr.Header().Rrtype != dns.TypeRRSIG || wildcard {
			answer = append(answer, rr)
		}
	}
	for _, rr := range r.Ns {
		if t := rr.Header().Rrtype; t != dns.TypeNSEC && !(t == dns.TypeRRSIG && rr.(*dns.RRSIG).TypeCovered == dns.TypeNSEC) {
			ns = append(ns, rr)
		}
	}
	r.Answer, r.Ns = answer, ns
	return r, rtt, err
}

// BenchmarkCachedSecure answers a validated answer from the cache, as the
// server's socket goroutines do: no signature is checked again.
func BenchmarkCachedSecure(b *testing.B) {
	n := signedHierarchy(b)
	r := n.resolver(b, resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{n.rootDS}})
	if res := r.Resolve(context.Background(), "portal.gov.az.", dns.TypeA); res.Sec != dnssec.Secure {
		b.Fatalf("%v %v", res.Sec, res.Why)
	}
	b.ReportAllocs()
	for b.Loop() {
		if res, ok := r.Cached("portal.gov.az.", dns.TypeA); !ok || res.Sec != dnssec.Secure {
			b.Fatal("not cached")
		}
	}
}
