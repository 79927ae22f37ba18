package resolver_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
)

// A second signed in-memory hierarchy, for the cases that need more than
// signedHierarchy has:
//
//	.              192.0.2.1    signed; DS for az.
//	az.            192.0.2.2    signed; DS for gov.az., none for insecure.az.
//	gov.az.        192.0.2.3    signed (NSEC), and 192.0.2.13, a second
//	                            server with the same zone; a DNAME, an
//	                            unsigned delegation below an empty
//	                            non-terminal (c.b.gov.az.)
//	insecure.az.   192.0.2.4    unsigned
//	c.b.gov.az.    192.0.2.14   unsigned
//
// The tests script the servers' failures with hookNet.

var (
	ipGovA = netip.MustParseAddr("192.0.2.3")
	ipGovB = netip.MustParseAddr("192.0.2.13")
	ipAzS  = netip.MustParseAddr("192.0.2.2")
	ipAzS2 = netip.MustParseAddr("192.0.2.12")
	ipCB   = netip.MustParseAddr("192.0.2.14")
)

// With twoParents, az. has a second server, 192.0.2.12.
func correctnessHierarchy(t testing.TB, twoParents ...bool) (*fakeNet, []dns.RR, *dns.DS) {
	t.Helper()
	azNS2, rootNS2 := "", ""
	if len(twoParents) > 0 && twoParents[0] {
		azNS2 = "@ NS ns2.nic\nns2.nic A 192.0.2.12\n"
		rootNS2 = "az. NS ns2.nic.az.\nns2.nic.az. A 192.0.2.12\n"
	}
	valid := func(k [2]valKey, origin, text string) string {
		return signZone(t, origin, text, k[0], k[1], valNow.Add(-24*time.Hour), valNow.Add(30*24*time.Hour))
	}
	keys := map[string][2]valKey{}
	for _, z := range []string{".", "az.", "gov.az."} {
		keys[z] = [2]valKey{newValKey(t, z, dns.ZONE|dns.SEP), newValKey(t, z, dns.ZONE)}
	}
	ds := func(z string) string { return keys[z][0].rr.ToDS(dns.SHA256).String() + "\n" }
	gov := valid(keys["gov.az."], "gov.az.", `@ SOA ns1 h 1 2 3 4 300
@ NS ns1
@ NS ns2
ns1 A 192.0.2.3
ns2 A 192.0.2.13
www A 198.51.100.10
www TXT "hello"
portal CNAME www
legacy DNAME gov.az.
`+manyA()+`c.b NS ns.c.b
ns.c.b A 192.0.2.14
`)
	az := valid(keys["az."], "az.", `@ SOA ns.nic h 1 2 3 4 300
@ NS ns.nic
ns.nic A 192.0.2.2
`+azNS2+`gov NS ns1.gov
gov NS ns2.gov
ns1.gov A 192.0.2.3
ns2.gov A 192.0.2.13
`+ds("gov.az.")+`insecure NS ns.insecure
ns.insecure A 192.0.2.4
`)
	root := valid(keys["."], ".", `. SOA a.root.test. h.root.test. 1 2 3 4 86400
. NS a.root.test.
a.root.test. A 192.0.2.1
az. NS ns.nic.az.
ns.nic.az. A 192.0.2.2
`+rootNS2+ds("az."))
	insecure := mustZone(t, "insecure.az.", `@ SOA ns h 1 2 3 4 300
@ NS ns
ns A 192.0.2.4
www A 198.51.100.40
`)
	cb := mustZone(t, "c.b.gov.az.", `@ SOA ns h 1 2 3 4 300
@ NS ns
ns A 192.0.2.14
www A 198.51.100.60
`)
	govZone, azZone := mustZone(t, "gov.az.", gov), mustZone(t, "az.", az)
	f := &fakeNet{servers: map[netip.Addr]*zone.Set{
		netip.MustParseAddr("192.0.2.1"): zone.NewSet(mustZone(t, ".", root)),
		ipAzS:                            zone.NewSet(azZone),
		ipGovA:                           zone.NewSet(govZone),
		ipGovB:                           zone.NewSet(govZone),
		netip.MustParseAddr("192.0.2.4"): zone.NewSet(insecure),
		ipCB:                             zone.NewSet(cb),
	}}
	if azNS2 != "" {
		f.servers[ipAzS2] = zone.NewSet(azZone)
	}
	hints, err := resolver.ParseHints(strings.NewReader(". NS a.root.test.\na.root.test. A 192.0.2.1\n"), "hints")
	if err != nil {
		t.Fatal(err)
	}
	return f, hints, keys["."][0].rr.ToDS(dns.SHA256)
}

// manyA is zone text for an RRset of 20 A records at many.
func manyA() string {
	var b strings.Builder
	for i := range 20 {
		fmt.Fprintf(&b, "many A 198.51.100.%d\n", 100+i)
	}
	return b.String()
}

// hookNet passes each answer of the fake network through hook, which may
// change it, replace it, or report another round-trip time.
type hookNet struct {
	*fakeNet
	hook func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration)
}

func (h *hookNet) Exchange(ctx context.Context, m *dns.Msg, s netip.AddrPort, tcp bool) (*dns.Msg, time.Duration, error) {
	q := m.Copy()
	r, rtt, err := h.fakeNet.Exchange(ctx, m, s, tcp)
	if err != nil || h.hook == nil {
		return r, rtt, err
	}
	r, d := h.hook(q, s.Addr(), r)
	if d > 0 {
		rtt = d
	}
	return r, rtt, nil
}

// asked returns the queries logged for server a ("name TYPE").
func (f *fakeNet) queriesTo(a netip.Addr) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, q := range f.asked {
		if addr, rest, ok := strings.Cut(q, " "); ok && addr == a.String() {
			out = append(out, strings.ToLower(rest))
		}
	}
	return out
}

func newValResolver(ex resolver.Exchanger, hints []dns.RR, anchor dns.RR, stats *resolver.Stats) *resolver.Resolver {
	now := func() time.Time { return valNow }
	return resolver.New(resolver.Config{RootHints: hints, QueryTimeout: 50 * time.Millisecond, ResolutionTimeout: 2 * time.Second,
		Now: now, DNSSEC: resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{anchor}}},
		ex, resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20, Now: now}), nil, stats)
}

// referralForDS makes the servers at addrs answer every DS question with
// what they answer for type A: at a delegation, the referral (with the DS
// RRset or its denial in authority), as some servers and recorded
// scenarios do.
func referralForDS(f *fakeNet, addrs ...netip.Addr) func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
	return func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
		if q.Question[0].Qtype != dns.TypeDS || !slices.Contains(addrs, s) {
			return r, 0
		}
		a := q.Copy()
		a.Question[0].Qtype = dns.TypeA
		ar, _, err := f.Exchange(context.Background(), a, netip.AddrPortFrom(s, 53), false)
		if err != nil || len(ar.Answer) > 0 || ar.Authoritative {
			return r, 0 // not a delegation: the real answer
		}
		ar.Question = r.Question
		return ar, 0
	}
}

// TestDSFromReferral: the DS RRset (or its denial) that a signed referral
// brings is what the chain of trust uses; when the parent answers the DS
// question with the referral itself, the child's servers are never asked
// for a DS they do not hold.
func TestDSFromReferral(t *testing.T) {
	cases := []struct {
		name     string
		qname    string
		qtype    uint16
		rcode    int
		sec      dnssec.SecStatus
		answerDS bool // DS records in the answer
	}{
		{name: "signed delegation", qname: "www.gov.az.", qtype: dns.TypeA, sec: dnssec.Secure},
		{name: "through a CNAME", qname: "portal.gov.az.", qtype: dns.TypeA, sec: dnssec.Secure},
		{name: "unsigned delegation", qname: "www.insecure.az.", qtype: dns.TypeA, sec: dnssec.Insecure},
		{name: "DS asked by the client", qname: "gov.az.", qtype: dns.TypeDS, sec: dnssec.Secure, answerDS: true},
		{name: "absent DS asked by the client", qname: "insecure.az.", qtype: dns.TypeDS, sec: dnssec.Secure},
		{name: "DNSKEY of the child", qname: "gov.az.", qtype: dns.TypeDNSKEY, sec: dnssec.Secure},
		{name: "NXDOMAIN in the child", qname: "nope.gov.az.", qtype: dns.TypeA, rcode: dns.RcodeNameError, sec: dnssec.Secure},
	}
	for _, mode := range []string{"parent answers DS", "parent refers DS questions"} {
		for _, tc := range cases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				f, hints, anchor := correctnessHierarchy(t)
				h := &hookNet{fakeNet: f}
				if mode == "parent refers DS questions" {
					h.hook = referralForDS(f, ipAzS)
				}
				r := newValResolver(h, hints, anchor, nil)
				res := r.Resolve(context.Background(), tc.qname, tc.qtype)
				if res.Err != nil || res.Rcode != tc.rcode || res.Sec != tc.sec {
					t.Fatalf("rcode %s sec %v why %v err %v; want %s %v", dns.RcodeToString[res.Rcode], res.Sec, res.Why, res.Err,
						dns.RcodeToString[tc.rcode], tc.sec)
				}
				hasDS := slices.ContainsFunc(res.Answer, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeDS })
				if hasDS != tc.answerDS {
					t.Errorf("DS in the answer: %v, want %v: %v", hasDS, tc.answerDS, res.Answer)
				}
				// No DS question ever reached a child zone's servers.
				for _, a := range []netip.Addr{ipGovA, ipGovB, netip.MustParseAddr("192.0.2.4")} {
					for _, q := range f.queriesTo(a) {
						if strings.HasSuffix(q, " ds") && (q == "gov.az. ds" || q == "insecure.az. ds") {
							t.Errorf("%s was asked %q", a, q)
						}
					}
				}
				// The chain of trust took the DS from the referral: the
				// parent was not asked for it separately.
				if tc.qtype != dns.TypeDS {
					for _, q := range f.queriesTo(ipAzS) {
						if strings.HasSuffix(q, " ds") {
							t.Errorf("the parent was asked %q although its referral had the answer", q)
						}
					}
				}
			})
		}
	}
}

// TestDSReferralBadSignature: a DS RRset in a referral that does not
// validate is not believed; the parent is asked for the DS RRset, and a
// good answer from it validates.
func TestDSReferralBadSignature(t *testing.T) {
	f, hints, anchor := correctnessHierarchy(t)
	h := &hookNet{fakeNet: f, hook: func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
		if s != ipAzS || q.Question[0].Qtype == dns.TypeDS {
			return r, 0
		}
		ns := make([]dns.RR, len(r.Ns))
		for i, rr := range r.Ns {
			if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == dns.TypeDS {
				c := dns.Copy(sig).(*dns.RRSIG)
				c.Signature = corrupt(c.Signature)
				rr = c
			}
			ns[i] = rr
		}
		r.Ns = ns
		return r, 0
	}}
	r := newValResolver(h, hints, anchor, nil)
	res := r.Resolve(context.Background(), "www.gov.az.", dns.TypeA)
	if res.Err != nil || res.Sec != dnssec.Secure {
		t.Fatalf("sec %v why %v err %v, want secure", res.Sec, res.Why, res.Err)
	}
	if !slices.Contains(f.queriesTo(ipAzS), "gov.az. ds") {
		t.Errorf("the parent was not asked for the DS RRset: %v", f.queriesTo(ipAzS))
	}
}

func hasType(rrs []dns.RR, t uint16) bool {
	return slices.ContainsFunc(rrs, func(rr dns.RR) bool { return rr.Header().Rrtype == t })
}

// answerRRSIG makes the servers of gov.az. answer questions for type
// RRSIG with the signatures at the name (RFC 4035 §3.1.5), gathered from
// their answers for the types there.
func answerRRSIG(f *fakeNet) func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
	return func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
		if q.Question[0].Qtype != dns.TypeRRSIG || (s != ipGovA && s != ipGovB) {
			return r, 0
		}
		var sigs []dns.RR
		for _, t := range []uint16{dns.TypeA, dns.TypeTXT, dns.TypeNSEC} {
			a := q.Copy()
			a.Question[0].Qtype = t
			ar, _, err := f.Exchange(context.Background(), a, netip.AddrPortFrom(s, 53), false)
			if err != nil {
				continue
			}
			for _, rr := range ar.Answer {
				if sig, ok := rr.(*dns.RRSIG); ok && strings.EqualFold(sig.Hdr.Name, q.Question[0].Name) {
					sigs = append(sigs, rr)
				}
			}
		}
		if len(sigs) > 0 {
			r.Rcode, r.Authoritative, r.Answer, r.Ns = dns.RcodeSuccess, true, sigs, nil
		}
		return r, 0
	}
}

// nodataRRSIG makes the zone's servers answer a question for type RRSIG
// with NODATA (the answer they give for a type the name does not have), as
// servers do that do not answer such questions from their zones.
func nodataRRSIG(f *fakeNet) func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
	return func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
		if q.Question[0].Qtype != dns.TypeRRSIG || (s != ipGovA && s != ipGovB) {
			return r, 0
		}
		a := q.Copy()
		a.Question[0].Qtype = dns.TypeHINFO
		ar, _, err := f.Exchange(context.Background(), a, netip.AddrPortFrom(s, 53), false)
		if err != nil || len(ar.Answer) != 0 {
			return r, 0
		}
		ar.Question = q.Question
		return ar, 0
	}
}

// corrupt returns a base64 signature with its first bytes changed.
func corrupt(sig string) string {
	if strings.HasPrefix(sig, "AAAA") {
		return "BBBB" + sig[4:]
	}
	return "AAAA" + sig[4:]
}

// TestDSNXDomainForEmptyNonTerminal: a server that answers NXDOMAIN for the
// DS of an empty non-terminal on the chain of trust, with the NSEC that
// proves the name exists, does not break the chain: the name is no zone
// cut, and the unsigned delegation below it is insecure.
func TestDSNXDomainForEmptyNonTerminal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nx    bool
		qname string
		sec   dnssec.SecStatus
	}{
		{name: "NODATA for the empty non-terminal", qname: "www.c.b.gov.az.", sec: dnssec.Insecure},
		{name: "NXDOMAIN for the empty non-terminal", nx: true, qname: "www.c.b.gov.az.", sec: dnssec.Insecure},
		{name: "NXDOMAIN, then a name beside it", nx: true, qname: "www.gov.az.", sec: dnssec.Secure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, hints, anchor := correctnessHierarchy(t)
			h := &hookNet{fakeNet: f, hook: func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
				if tc.nx && (s == ipGovA || s == ipGovB) && q.Question[0].Qtype == dns.TypeDS &&
					strings.EqualFold(q.Question[0].Name, "b.gov.az.") && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 0 {
					r.Rcode = dns.RcodeNameError
				}
				return r, 0
			}}
			r := newValResolver(h, hints, anchor, nil)
			if res := r.Resolve(context.Background(), "www.c.b.gov.az.", dns.TypeA); res.Err != nil || res.Sec != dnssec.Insecure || !hasType(res.Answer, dns.TypeA) {
				t.Fatalf("www.c.b.gov.az: sec %v why %v err %v answer %v", res.Sec, res.Why, res.Err, res.Answer)
			}
			res := r.Resolve(context.Background(), tc.qname, dns.TypeA)
			if res.Err != nil || res.Sec != tc.sec || !hasType(res.Answer, dns.TypeA) {
				t.Fatalf("%s: sec %v why %v err %v answer %v", tc.qname, res.Sec, res.Why, res.Err, res.Answer)
			}
			// The NXDOMAIN was not believed for the names below it.
			if res := r.Resolve(context.Background(), "x.b.gov.az.", dns.TypeA); res.Rcode != dns.RcodeNameError || res.Sec != dnssec.Secure {
				t.Fatalf("x.b.gov.az: rcode %s sec %v why %v", dns.RcodeToString[res.Rcode], res.Sec, res.Why)
			}
		})
	}
}

// brokenServer makes one server of gov.az. answer, once *on is set, with
// what mangle makes of its answers, and report round-trip times that put
// it before the other server from its first answer on.
func brokenServer(bad netip.Addr, on *atomic.Bool, mangle func(q, r *dns.Msg)) func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
	return func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
		switch s {
		case bad:
			if on.Load() {
				mangle(q, r)
			}
			return r, time.Microsecond
		case ipGovA, ipGovB:
			return r, 900 * time.Millisecond // slower than an untried server
		}
		return r, 0
	}
}

// damageSigs damages the RRSIGs of the answers to questions of the types
// given (copies: the zone's records are shared).
func damageSigs(types ...uint16) func(q, r *dns.Msg) {
	return func(q, r *dns.Msg) {
		if !slices.Contains(types, q.Question[0].Qtype) {
			return
		}
		damage := func(sec []dns.RR) []dns.RR {
			out := make([]dns.RR, len(sec))
			for i, rr := range sec {
				if sig, ok := rr.(*dns.RRSIG); ok {
					c := dns.Copy(sig).(*dns.RRSIG)
					c.Signature = corrupt(c.Signature)
					rr = c
				}
				out[i] = rr
			}
			return out
		}
		r.Answer, r.Ns = damage(r.Answer), damage(r.Ns)
	}
}

// TestBogusRetry: an answer that fails validation is asked again of the
// zone's other servers before it is declared bogus, a limited number of
// times, and the retries are counted.
func TestBogusRetry(t *testing.T) {
	cases := []struct {
		name    string
		qname   string
		qtype   uint16
		rcode   int
		mangle  func(q, r *dns.Msg)
		both    bool // both servers broken
		sec     dnssec.SecStatus
		retries uint64 // at least
	}{
		{name: "bad RRSIG on the answer", qname: "www.gov.az.", qtype: dns.TypeTXT, mangle: damageSigs(dns.TypeTXT), sec: dnssec.Secure, retries: 1},
		{name: "bad RRSIG on the denial", qname: "nope.gov.az.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError, mangle: damageSigs(dns.TypeTXT), sec: dnssec.Secure, retries: 1},
		{name: "bad RRSIG on the DNSKEY RRset", qname: "www.gov.az.", qtype: dns.TypeTXT, mangle: damageSigs(dns.TypeDNSKEY), sec: dnssec.Secure, retries: 1},
		{name: "signatures stripped", qname: "www.gov.az.", qtype: dns.TypeTXT, mangle: func(q, r *dns.Msg) {
			if q.Question[0].Qtype == dns.TypeTXT {
				r.Answer = slices.DeleteFunc(r.Answer, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeRRSIG })
			}
		}, sec: dnssec.Secure, retries: 1},
		{name: "every server broken", qname: "www.gov.az.", qtype: dns.TypeTXT, mangle: damageSigs(dns.TypeTXT), both: true, sec: dnssec.Bogus, retries: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, hints, anchor := correctnessHierarchy(t)
			var on atomic.Bool
			hook := brokenServer(ipGovB, &on, tc.mangle)
			if tc.both {
				hook = func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
					if on.Load() && (s == ipGovA || s == ipGovB) {
						tc.mangle(q, r)
					}
					return r, 0
				}
			}
			h := &hookNet{fakeNet: f, hook: hook}
			stats := &resolver.Stats{}
			r := newValResolver(h, hints, anchor, stats)
			// Warm the delegation with good answers: the broken server
			// is asked first from then on (its round-trip time is less).
			if res := r.Resolve(context.Background(), "gov.az.", dns.TypeSOA); res.Err != nil {
				t.Fatal(res.Err)
			}
			// Only the servers' round-trip times are kept.
			r.FlushKeys()
			r.Cache().Flush()
			on.Store(true)
			res := r.Resolve(context.Background(), tc.qname, tc.qtype)
			if res.Rcode != tc.rcode || res.Sec != tc.sec {
				t.Fatalf("rcode %s sec %v why %v err %v; want %s %v", dns.RcodeToString[res.Rcode], res.Sec, res.Why, res.Err,
					dns.RcodeToString[tc.rcode], tc.sec)
			}
			if got := stats.BogusRetries.Load(); got < tc.retries || got > 2 {
				t.Errorf("retries %d, want %d to 2", got, tc.retries)
			}
			if got := stats.Verdicts[tc.sec].Load(); got == 0 {
				t.Errorf("the final verdict %v was not counted", tc.sec)
			}
			if tc.sec == dnssec.Secure && stats.Verdicts[dnssec.Bogus].Load() != 0 {
				t.Errorf("a bogus verdict was counted for an answer that validated in the end")
			}
		})
	}
}

// TestBogusDSRetry: a DS RRset (or its denial) whose signature fails,
// from one server of the parent, in its referrals and in its answers to
// the DS question, is asked again of the parent's other server.
func TestBogusDSRetry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		qname string
		sec   dnssec.SecStatus
	}{
		{"DS RRset", "www.gov.az.", dnssec.Secure},
		{"denial of DS", "www.insecure.az.", dnssec.Insecure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, hints, anchor := correctnessHierarchy(t, true)
			var on atomic.Bool
			damage := damageSigs(dns.TypeA, dns.TypeDS)
			h := &hookNet{fakeNet: f, hook: func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
				switch s {
				case ipAzS2:
					if on.Load() {
						damage(q, r)
					}
					return r, time.Microsecond
				case ipAzS:
					return r, 900 * time.Millisecond
				}
				return r, 0
			}}
			stats := &resolver.Stats{}
			r := newValResolver(h, hints, anchor, stats)
			if res := r.Resolve(context.Background(), "az.", dns.TypeSOA); res.Err != nil || res.Sec != dnssec.Secure {
				t.Fatalf("az. SOA: %v %v", res.Sec, res.Err)
			}
			r.FlushKeys()
			r.Cache().Flush()
			on.Store(true)
			res := r.Resolve(context.Background(), tc.qname, dns.TypeA)
			if res.Err != nil || res.Sec != tc.sec || !hasType(res.Answer, dns.TypeA) {
				t.Fatalf("sec %v why %v err %v answer %v", res.Sec, res.Why, res.Err, res.Answer)
			}
			if stats.BogusRetries.Load() == 0 {
				t.Fatal("no retry counted")
			}
			if !slices.ContainsFunc(f.queriesTo(ipAzS), func(q string) bool { return strings.HasSuffix(q, " ds") }) {
				t.Errorf("the good server was not asked for the DS RRset: %v", f.queriesTo(ipAzS))
			}
		})
	}
}

// TestAnswerShapes: questions for RRSIG are answered; a DNAME comes with
// the CNAME synthesised from it, validated, from upstream and from the
// cache; a record a server sends twice reaches the client once.
func TestAnswerShapes(t *testing.T) {
	cases := []struct {
		name   string
		qname  string
		qtype  uint16
		mangle func(q, r *dns.Msg)
		want   []string // owner/type of the records, RRSIGs left out
		sigs   int      // RRSIGs in the answer
		sec    dnssec.SecStatus
		// plainServer: the servers answer questions for RRSIG as
		// sovdns's authoritative server does (NODATA).
		plainServer bool
	}{
		{name: "RRSIG question", qname: "www.gov.az.", qtype: dns.TypeRRSIG, want: []string{}, sigs: 3, sec: dnssec.Insecure},
		{name: "RRSIG question, the server answers NODATA", qname: "www.gov.az.", qtype: dns.TypeRRSIG, plainServer: true,
			want: []string{}, sigs: 0, sec: dnssec.Insecure},
		{name: "DNAME", qname: "www.legacy.gov.az.", qtype: dns.TypeA,
			want: []string{"legacy.gov.az./DNAME", "www.legacy.gov.az./CNAME", "www.gov.az./A"}, sigs: 2, sec: dnssec.Secure},
		{name: "DNAME, the type asked absent", qname: "www.legacy.gov.az.", qtype: dns.TypeMX,
			want: []string{"legacy.gov.az./DNAME", "www.legacy.gov.az./CNAME"}, sigs: 1, sec: dnssec.Secure},
		{name: "duplicate CNAME", qname: "portal.gov.az.", qtype: dns.TypeA, mangle: func(q, r *dns.Msg) {
			answer := slices.Clone(r.Answer)
			for _, rr := range r.Answer {
				if rr.Header().Rrtype == dns.TypeCNAME || rr.Header().Rrtype == dns.TypeRRSIG {
					answer = append(answer, dns.Copy(rr))
				}
			}
			r.Answer = answer
		}, want: []string{"portal.gov.az./CNAME", "www.gov.az./A"}, sigs: 2, sec: dnssec.Secure},
		{name: "a large RRset sent twice", qname: "many.gov.az.", qtype: dns.TypeA, mangle: func(q, r *dns.Msg) {
			answer := slices.Clone(r.Answer)
			for _, rr := range r.Answer {
				answer = append(answer, dns.Copy(rr))
			}
			r.Answer = answer
		}, want: slices.Repeat([]string{"many.gov.az./A"}, 20), sigs: 1, sec: dnssec.Secure},
		{name: "duplicate A", qname: "www.gov.az.", qtype: dns.TypeA, mangle: func(q, r *dns.Msg) {
			r.Answer = append(slices.Clone(r.Answer), dns.Copy(r.Answer[0]))
		}, want: []string{"www.gov.az./A"}, sigs: 1, sec: dnssec.Secure},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, hints, anchor := correctnessHierarchy(t)
			rrsig := answerRRSIG(f)
			h := &hookNet{fakeNet: f, hook: func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
				if tc.mangle != nil && (s == ipGovA || s == ipGovB) {
					tc.mangle(q, r)
				}
				if tc.plainServer {
					return nodataRRSIG(f)(q, s, r)
				}
				return rrsig(q, s, r)
			}}
			r := newValResolver(h, hints, anchor, nil)
			check := func(from string, res resolver.Result) {
				t.Helper()
				if res.Err != nil || res.Rcode != dns.RcodeSuccess || res.Sec != tc.sec {
					t.Fatalf("%s: rcode %s sec %v why %v err %v", from, dns.RcodeToString[res.Rcode], res.Sec, res.Why, res.Err)
				}
				got, sigs := []string{}, 0
				for _, rr := range res.Answer {
					if rr.Header().Rrtype == dns.TypeRRSIG {
						sigs++
						continue
					}
					got = append(got, strings.ToLower(rr.Header().Name)+"/"+dns.Type(rr.Header().Rrtype).String())
				}
				if !slices.Equal(got, tc.want) || sigs != tc.sigs {
					t.Fatalf("%s: answer %v with %d RRSIGs, want %v with %d\n%v", from, got, sigs, tc.want, tc.sigs, res.Answer)
				}
			}
			check("upstream", r.Resolve(context.Background(), tc.qname, tc.qtype))
			cached, ok := r.Cached(tc.qname, tc.qtype)
			if !ok {
				t.Fatal("not cached")
			}
			check("cache", cached)
		})
	}
}

// TestDNAMEForged: a DNAME whose signature does not verify makes the
// answer bogus, although the synthesised CNAME carries no signature.
func TestDNAMEForged(t *testing.T) {
	f, hints, anchor := correctnessHierarchy(t)
	h := &hookNet{fakeNet: f, hook: func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
		for _, rr := range r.Answer {
			if d, ok := rr.(*dns.DNAME); ok {
				d.Target = "insecure.az."
			}
		}
		for i, rr := range r.Answer {
			if c, ok := rr.(*dns.CNAME); ok && strings.HasSuffix(strings.ToLower(c.Hdr.Name), ".legacy.gov.az.") {
				c.Target = "www.insecure.az."
				r.Answer[i] = c
			}
		}
		return r, 0
	}}
	r := newValResolver(h, hints, anchor, nil)
	res := r.Resolve(context.Background(), "www.legacy.gov.az.", dns.TypeA)
	if res.Sec != dnssec.Bogus {
		t.Fatalf("sec %v why %v, want bogus", res.Sec, res.Why)
	}
}

// TestUpwardReferralIsLame: an empty authoritative answer whose authority
// section refers upward (to the root) is a lame answer, not NODATA: the
// zone's other server is asked.
func TestUpwardReferralIsLame(t *testing.T) {
	for _, tc := range []struct {
		name string
		aa   bool
	}{{"with AA", true}, {"without AA", false}} {
		t.Run(tc.name, func(t *testing.T) {
			f, hints, anchor := correctnessHierarchy(t)
			var on atomic.Bool
			h := &hookNet{fakeNet: f, hook: brokenServer(ipGovB, &on, func(q, r *dns.Msg) {
				r.Answer, r.Extra = nil, nil
				r.Rcode, r.Authoritative = dns.RcodeSuccess, tc.aa
				r.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600}, Ns: "a.root.test."}}
			})}
			r := newValResolver(h, hints, anchor, nil)
			if res := r.Resolve(context.Background(), "gov.az.", dns.TypeSOA); res.Err != nil {
				t.Fatal(res.Err)
			}
			// Only the servers' round-trip times are kept.
			r.FlushKeys()
			r.Cache().Flush()
			on.Store(true)
			res := r.Resolve(context.Background(), "www.gov.az.", dns.TypeA)
			if res.Err != nil || len(res.Answer) == 0 || res.Sec != dnssec.Secure {
				t.Fatalf("answer %v sec %v why %v err %v", res.Answer, res.Sec, res.Why, res.Err)
			}
			if !slices.Contains(f.queriesTo(ipGovB), "www.gov.az. a") {
				t.Fatalf("the broken server was not asked: the test proves nothing")
			}
		})
	}
}

// TestRootWildcard: answers expanded from the wildcard at the root ("*.")
// validate, although miekg/dns cannot verify their signatures.
func TestRootWildcard(t *testing.T) {
	ksk, zsk := newValKey(t, ".", dns.ZONE|dns.SEP), newValKey(t, ".", dns.ZONE)
	root := signZone(t, ".", `. SOA a.root.test. h.root.test. 1 2 3 4 86400
. NS a.root.test.
a.root.test. A 192.0.2.1
*. A 198.51.100.99
*. TXT "everywhere"
`, ksk, zsk, valNow.Add(-24*time.Hour), valNow.Add(30*24*time.Hour))
	f := &fakeNet{servers: map[netip.Addr]*zone.Set{netip.MustParseAddr("192.0.2.1"): zone.NewSet(mustZone(t, ".", root))}}
	hints, err := resolver.ParseHints(strings.NewReader(". NS a.root.test.\na.root.test. A 192.0.2.1\n"), "hints")
	if err != nil {
		t.Fatal(err)
	}
	r := newValResolver(f, hints, ksk.rr.ToDS(dns.SHA256), nil)
	for _, tc := range []struct {
		qname string
		qtype uint16
		want  uint16 // the type of the answer's records; 0: NODATA
	}{
		{"nosuch.", dns.TypeA, dns.TypeA},
		{"www.nosuch.", dns.TypeTXT, dns.TypeTXT},
		{"*.", dns.TypeA, dns.TypeA},
		{"nosuch.", dns.TypeMX, 0},
	} {
		t.Run(tc.qname+dns.Type(tc.qtype).String(), func(t *testing.T) {
			res := r.Resolve(context.Background(), tc.qname, tc.qtype)
			if res.Err != nil || res.Rcode != dns.RcodeSuccess || res.Sec != dnssec.Secure {
				t.Fatalf("rcode %s sec %v why %v err %v", dns.RcodeToString[res.Rcode], res.Sec, res.Why, res.Err)
			}
			if tc.want != 0 && !hasType(res.Answer, tc.want) || tc.want == 0 && len(res.Answer) != 0 {
				t.Fatalf("answer %v", res.Answer)
			}
		})
	}
}

// TestNSEC3OptOut: answers whose proof rests on an NSEC3 opt-out span
// are insecure, never authenticated (RFC 5155 §9.2) nor refused: a
// wildcard NODATA, a name under an unsigned delegation in the span, an
// NXDOMAIN. The zone is signed by sovdns's own signer.
func TestNSEC3OptOut(t *testing.T) {
	p := dnssec.DefaultPolicy()
	p.Denial, p.OptOut, p.Algorithm = dnssec.DenialNSEC3, true, dns.ED25519
	ooKeys, err := dnssec.InitialKeys("oo.", p, valNow)
	if err != nil {
		t.Fatal(err)
	}
	out, err := dnssec.Sign(dnssec.Input{Zone: mustZone(t, "oo.", `@ SOA ns h 1 2 3 4 300
@ NS ns
ns A 192.0.2.21
www A 198.51.100.21
*.wild TXT "w"
d.ent NS ns.d.ent
ns.d.ent A 192.0.2.22
`), Keys: ooKeys, Policy: p, Now: valNow})
	if err != nil {
		t.Fatal(err)
	}
	var ds strings.Builder
	for _, k := range ooKeys {
		if k.InParent() {
			ds.WriteString(k.DS().String() + "\n")
		}
	}
	ksk, zsk := newValKey(t, ".", dns.ZONE|dns.SEP), newValKey(t, ".", dns.ZONE)
	root := signZone(t, ".", `. SOA a.root.test. h.root.test. 1 2 3 4 86400
. NS a.root.test.
a.root.test. A 192.0.2.1
oo. NS ns.oo.
ns.oo. A 192.0.2.21
`+ds.String(), ksk, zsk, valNow.Add(-24*time.Hour), valNow.Add(30*24*time.Hour))
	f := &fakeNet{servers: map[netip.Addr]*zone.Set{
		netip.MustParseAddr("192.0.2.1"):  zone.NewSet(mustZone(t, ".", root)),
		netip.MustParseAddr("192.0.2.21"): zone.NewSet(out.Zone),
		netip.MustParseAddr("192.0.2.22"): zone.NewSet(mustZone(t, "d.ent.oo.", "@ SOA ns h 1 2 3 4 300\n@ NS ns\nns A 192.0.2.22\nwww A 198.51.100.22\n")),
	}}
	hints, err := resolver.ParseHints(strings.NewReader(". NS a.root.test.\na.root.test. A 192.0.2.1\n"), "hints")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		qname  string
		qtype  uint16
		rcode  int
		answer bool
		sec    dnssec.SecStatus
	}{
		{qname: "www.oo.", qtype: dns.TypeA, answer: true, sec: dnssec.Secure},
		{qname: "x.wild.oo.", qtype: dns.TypeA, sec: dnssec.Insecure},
		{qname: "x.wild.oo.", qtype: dns.TypeTXT, answer: true, sec: dnssec.Insecure},
		{qname: "www.d.ent.oo.", qtype: dns.TypeA, answer: true, sec: dnssec.Insecure},
		{qname: "d.ent.oo.", qtype: dns.TypeDS, sec: dnssec.Insecure},
		{qname: "nope.oo.", qtype: dns.TypeA, rcode: dns.RcodeNameError, sec: dnssec.Insecure},
	} {
		t.Run(tc.qname+dns.Type(tc.qtype).String(), func(t *testing.T) {
			for _, mode := range []string{"parent answers DS", "parent refers DS questions"} {
				h := &hookNet{fakeNet: f}
				if mode == "parent refers DS questions" {
					h.hook = referralForDS(f, netip.MustParseAddr("192.0.2.21"))
				}
				r := newValResolver(h, hints, ksk.rr.ToDS(dns.SHA256), nil)
				res := r.Resolve(context.Background(), tc.qname, tc.qtype)
				if res.Err != nil || res.Rcode != tc.rcode || res.Sec != tc.sec || (len(res.Answer) > 0) != tc.answer {
					t.Fatalf("%s: rcode %s sec %v why %v err %v answer %v; want %s %v", mode, dns.RcodeToString[res.Rcode], res.Sec, res.Why, res.Err,
						res.Answer, dns.RcodeToString[tc.rcode], tc.sec)
				}
			}
		})
	}
}
