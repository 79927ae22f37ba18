package test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// resolutionTimeout is the resolver node's budget per client query; the
// SERVFAIL test waits at most a second longer.
const resolutionTimeout = 3 * time.Second

// intraAZZone is held by the resolver node itself. az. does not delegate
// intra.az., so only the node's own copy can answer it.
const intraAZZone = `$ORIGIN intra.az.
$TTL 3600
@    SOA  ns hostmaster 2024060101 7200 900 1209600 300
@    NS   ns
ns   A    127.0.0.1
www  A    192.0.2.90
`

// rdQuery builds a recursive query with EDNS (which carries the EDE).
func rdQuery(name string, qtype uint16) *dns.Msg {
	m := newQuery(name, qtype)
	m.RecursionDesired = true
	m.SetEdns0(1232, false)
	return m
}

// wantRcode checks the response code and the AA and RA flags.
func wantRcode(t *testing.T, r *dns.Msg, rcode int, aa, ra bool) {
	t.Helper()
	if r.Rcode != rcode {
		t.Errorf("rcode %s, want %s\n%v", dns.RcodeToString[r.Rcode], dns.RcodeToString[rcode], r)
	}
	if r.Authoritative != aa {
		t.Errorf("AA %v, want %v\n%v", r.Authoritative, aa, r)
	}
	if r.RecursionAvailable != ra {
		t.Errorf("RA %v, want %v\n%v", r.RecursionAvailable, ra, r)
	}
}

// wantData compares got with want (zone text without TTLs) ignoring order
// and TTLs, and checks that every TTL is between 1 and maxTTL.
func wantData(t *testing.T, section string, got []dns.RR, maxTTL uint32, want ...string) {
	t.Helper()
	var g, w []string
	for _, rr := range got {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		if ttl := rr.Header().Ttl; ttl < 1 || ttl > maxTTL {
			t.Errorf("%s section: TTL %d not in [1, %d]: %v", section, ttl, maxTTL, rr)
		}
		c := dns.Copy(rr)
		c.Header().Ttl = 0
		g = append(g, c.String())
	}
	for _, s := range want {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("bad expected record %q: %v", s, err)
		}
		rr.Header().Ttl = 0
		w = append(w, rr.String())
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s section:\n got %s\nwant %s", section, strings.Join(g, "\n     "), strings.Join(w, "\n     "))
	}
}

// wantSOA checks that the authority section holds the SOA of zone with a
// TTL of at most maxTTL (the RFC 2308 negative TTL).
func wantSOA(t *testing.T, r *dns.Msg, zone string, maxTTL uint32) {
	t.Helper()
	for _, rr := range r.Ns {
		if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, zone) {
			if soa.Hdr.Ttl > maxTTL {
				t.Errorf("SOA TTL %d, want at most %d", soa.Hdr.Ttl, maxTTL)
			}
			return
		}
	}
	t.Errorf("no SOA of %s in the authority section\n%v", zone, r)
}

// exchangeWithin sends m once over UDP with a client timeout of limit and
// returns the response and how long it took.
func exchangeWithin(t *testing.T, addr string, m *dns.Msg, limit time.Duration) (*dns.Msg, time.Duration) {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: limit}
	start := time.Now()
	r, _, err := c.ExchangeContext(t.Context(), m, addr)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("query %s to %s: %v after %v", m.Question[0].String(), addr, err, elapsed)
	}
	return r, elapsed
}

// TestHierarchyServesZones checks the simulated hierarchy itself, server by
// server, without a resolver: each authority answers its zones with AA, the
// referrals carry the right NS and glue, the lame server refuses, and the
// in-process silent and truncating servers behave as intended.
func TestHierarchyServesZones(t *testing.T) {
	t.Parallel()
	h := startHierarchy(t)
	tests := []struct {
		name         string
		ip           string
		qname        string
		qtype        uint16
		rcode        int
		aa           bool
		answer       []string
		ns, extra    []string
		checkNS      bool // compare the authority and additional sections
		firstNSIsNS0 bool
	}{
		{name: "root NS", ip: ipRoot, qname: ".", qtype: dns.TypeNS, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{". 86400 IN NS a.root-servers.test."}},
		{name: "root refers az", ip: ipRoot, qname: "www.gov.az.", qtype: dns.TypeA, checkNS: true,
			ns: []string{"az. 86400 IN NS ns1.nic.az."}, extra: []string{"ns1.nic.az. 86400 IN A 127.0.0.3"}},
		{name: "root refers com", ip: ipRoot, qname: "www.example.com.", qtype: dns.TypeA, checkNS: true,
			ns: []string{"com. 86400 IN NS a.gtld.com."}, extra: []string{"a.gtld.com. 86400 IN A 127.0.0.4"}},
		{name: "root refers net with sibling glue", ip: ipRoot, qname: "www.example.net.", qtype: dns.TypeA, checkNS: true,
			ns: []string{"net. 86400 IN NS a.gtld.com."}, extra: []string{"a.gtld.com. 86400 IN A 127.0.0.4"}},
		{name: "root NXDOMAIN", ip: ipRoot, qname: "nosuchtld.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, checkNS: true,
			ns: []string{". 86400 IN SOA a.root-servers.test. nstld.root-servers.test. 2024060101 1800 900 604800 86400"}},
		{name: "az refers gov.az, lame first", ip: ipAZ, qname: "www.gov.az.", qtype: dns.TypeA, checkNS: true, firstNSIsNS0: true,
			ns:    []string{"gov.az. 3600 IN NS ns0.gov.az.", "gov.az. 3600 IN NS ns1.gov.az."},
			extra: []string{"ns0.gov.az. 3600 IN A 127.0.0.9", "ns1.gov.az. 3600 IN A 127.0.0.5"}},
		{name: "com refers example.com", ip: ipGTLD, qname: "www.example.com.", qtype: dns.TypeA, checkNS: true,
			ns: []string{"example.com. 3600 IN NS ns1.example.com."}, extra: []string{"ns1.example.com. 3600 IN A 127.0.0.6"}},
		{name: "com refers mfa-dns.com", ip: ipGTLD, qname: "ns.mfa-dns.com.", qtype: dns.TypeA, checkNS: true,
			ns: []string{"mfa-dns.com. 3600 IN NS ns.mfa-dns.com."}, extra: []string{"ns.mfa-dns.com. 3600 IN A 127.0.0.7"}},
		{name: "com refers slow.com", ip: ipGTLD, qname: "www.slow.com.", qtype: dns.TypeA, checkNS: true,
			ns:    []string{"slow.com. 3600 IN NS ns1.slow.com.", "slow.com. 3600 IN NS ns2.slow.com."},
			extra: []string{"ns1.slow.com. 3600 IN A 127.0.0.10", "ns2.slow.com. 3600 IN A 127.0.0.6"}},
		{name: "com refers tc.com", ip: ipGTLD, qname: "www.tc.com.", qtype: dns.TypeA, checkNS: true,
			ns: []string{"tc.com. 3600 IN NS ns.tc.com."}, extra: []string{"ns.tc.com. 3600 IN A 127.0.0.11"}},
		{name: "com refers dead.com", ip: ipGTLD, qname: "www.dead.com.", qtype: dns.TypeA, checkNS: true,
			ns:    []string{"dead.com. 3600 IN NS ns1.dead.com.", "dead.com. 3600 IN NS ns2.dead.com."},
			extra: []string{"ns1.dead.com. 3600 IN A 127.0.0.10", "ns2.dead.com. 3600 IN A 127.0.0.12"}},
		{name: "net answers", ip: ipGTLD, qname: "www.example.net.", qtype: dns.TypeA, aa: true,
			answer: []string{"www.example.net. 3600 IN A 192.0.2.40"}},
		{name: "gov.az www", ip: ipGovAZ, qname: "www.gov.az.", qtype: dns.TypeA, aa: true,
			answer: []string{"www.gov.az. 3600 IN A 192.0.2.10"}},
		{name: "gov.az CNAME", ip: ipGovAZ, qname: "portal.gov.az.", qtype: dns.TypeA, aa: true,
			answer: []string{"portal.gov.az. 3600 IN CNAME www.gov.az.", "www.gov.az. 3600 IN A 192.0.2.10"}},
		{name: "gov.az CNAME out of zone", ip: ipGovAZ, qname: "e-services.gov.az.", qtype: dns.TypeA, aa: true,
			answer: []string{"e-services.gov.az. 3600 IN CNAME www.example.com."}},
		{name: "gov.az MX", ip: ipGovAZ, qname: "gov.az.", qtype: dns.TypeMX, aa: true,
			answer: []string{"gov.az. 3600 IN MX 10 mail.gov.az."}},
		{name: "gov.az wildcard", ip: ipGovAZ, qname: "x.apps.gov.az.", qtype: dns.TypeA, aa: true,
			answer: []string{"x.apps.gov.az. 3600 IN A 192.0.2.80"}},
		{name: "gov.az NXDOMAIN", ip: ipGovAZ, qname: "nonexistent.gov.az.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, checkNS: true,
			ns: []string{"gov.az. 300 IN SOA ns1.gov.az. hostmaster.gov.az. 2024060101 7200 900 1209600 300"}},
		{name: "gov.az NODATA", ip: ipGovAZ, qname: "www.gov.az.", qtype: dns.TypeTXT, aa: true, checkNS: true,
			ns: []string{"gov.az. 300 IN SOA ns1.gov.az. hostmaster.gov.az. 2024060101 7200 900 1209600 300"}},
		{name: "gov.az refers mfa, no glue", ip: ipGovAZ, qname: "www.mfa.gov.az.", qtype: dns.TypeA, checkNS: true,
			ns: []string{"mfa.gov.az. 3600 IN NS ns.mfa-dns.com."}},
		{name: "example.com", ip: ipExample, qname: "www.example.com.", qtype: dns.TypeA, aa: true,
			answer: []string{"www.example.com. 3600 IN A 192.0.2.20"}},
		{name: "slow.com working server", ip: ipExample, qname: "www.slow.com.", qtype: dns.TypeA, aa: true,
			answer: []string{"www.slow.com. 3600 IN A 192.0.2.50"}},
		{name: "mfa.gov.az", ip: ipMFA, qname: "www.mfa.gov.az.", qtype: dns.TypeA, aa: true,
			answer: []string{"www.mfa.gov.az. 3600 IN A 192.0.2.30"}},
		{name: "mfa-dns.com", ip: ipMFA, qname: "ns.mfa-dns.com.", qtype: dns.TypeA, aa: true,
			answer: []string{"ns.mfa-dns.com. 3600 IN A 127.0.0.7"}},
		{name: "lame server refuses gov.az", ip: ipLame, qname: "www.gov.az.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := exchange(t, "udp", h.addr(tt.ip), newQuery(tt.qname, tt.qtype))
			wantRcode(t, r, tt.rcode, tt.aa, false)
			wantRRs(t, "answer", r.Answer, h.rewrite(tt.answer)...)
			if tt.checkNS {
				wantRRs(t, "authority", r.Ns, h.rewrite(tt.ns)...)
				wantRRs(t, "additional", r.Extra, h.rewrite(tt.extra)...)
			}
			if tt.firstNSIsNS0 && (len(r.Ns) == 0 || r.Ns[0].(*dns.NS).Ns != "ns0.gov.az.") {
				t.Errorf("the lame server is not listed first: %v", r.Ns)
			}
		})
	}
	// With recursion asked for, an authority still refuses what it does not
	// hold: these servers never recurse.
	for _, ip := range []string{ipAZ, ipGTLD, ipGovAZ, ipExample, ipMFA, ipLame} {
		t.Run("no recursion on "+ip, func(t *testing.T) {
			t.Parallel()
			r := exchange(t, "udp", h.addr(ip), rdQuery("www.example.org.", dns.TypeA))
			wantRcode(t, r, dns.RcodeRefused, false, false)
		})
	}
	t.Run("silent server", func(t *testing.T) {
		t.Parallel()
		for _, network := range []string{"udp", "tcp"} {
			c := &dns.Client{Net: network, Timeout: 300 * time.Millisecond}
			r, _, err := c.ExchangeContext(t.Context(), newQuery("www.slow.com.", dns.TypeA), h.addr(ipSilent))
			var ne net.Error
			if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("%s: the silent server answered %v (error %v); want a timeout", network, r, err)
			}
		}
		if h.silent.datagrams.Load() == 0 || h.silent.accepted.Load() == 0 {
			t.Errorf("the silent server saw %d datagrams and %d connections", h.silent.datagrams.Load(), h.silent.accepted.Load())
		}
	})
	t.Run("nobody listens", func(t *testing.T) {
		t.Parallel()
		c := &dns.Client{Net: "udp", Timeout: time.Second}
		if r, _, err := c.ExchangeContext(t.Context(), newQuery("www.dead.com.", dns.TypeA), h.addr(ipNobody)); err == nil {
			t.Errorf("%s answered: %v", h.addr(ipNobody), r)
		}
	})
	t.Run("truncating server", func(t *testing.T) {
		t.Parallel()
		r := exchange(t, "udp", h.addr(ipTrunc), newQuery("www.tc.com.", dns.TypeA))
		if !r.Truncated || len(r.Answer) != 0 {
			t.Errorf("over UDP: TC %v with %d answers; want TC and none", r.Truncated, len(r.Answer))
		}
		r = exchange(t, "tcp", h.addr(ipTrunc), newQuery("www.tc.com.", dns.TypeA))
		wantRcode(t, r, dns.RcodeSuccess, true, false)
		if r.Truncated {
			t.Error("TC over TCP")
		}
		wantRRs(t, "answer", r.Answer, "www.tc.com. 3600 IN A 192.0.2.60")
		r = exchange(t, "tcp", h.addr(ipTrunc), newQuery("nope.tc.com.", dns.TypeA))
		wantRcode(t, r, dns.RcodeNameError, true, false)
		wantRRs(t, "authority", r.Ns, "tc.com. 300 IN SOA ns.tc.com. hostmaster.tc.com. 2024060101 7200 900 1209600 300")
	})
}

// TestResolver resolves through the simulated hierarchy with a resolver
// node, then checks the cache by stopping an authority, then the metrics.
func TestResolver(t *testing.T) {
	t.Parallel()
	h := startHierarchy(t)
	res := h.startResolver(t, []string{"127.0.0.0/8"}, hierZone{"intra.az.", intraAZZone})

	t.Run("resolves", func(t *testing.T) {
		tests := []struct {
			name   string
			qname  string
			qtype  uint16
			rcode  int
			answer []string
			soa    string // zone whose SOA the authority section must hold
			negTTL uint32
		}{
			{name: "A past a lame server", qname: "www.gov.az.", qtype: dns.TypeA,
				answer: []string{"www.gov.az. A 192.0.2.10"}},
			{name: "AAAA", qname: "www.gov.az.", qtype: dns.TypeAAAA,
				answer: []string{"www.gov.az. AAAA 2001:db8::10"}},
			{name: "CNAME in zone", qname: "portal.gov.az.", qtype: dns.TypeA,
				answer: []string{"portal.gov.az. CNAME www.gov.az.", "www.gov.az. A 192.0.2.10"}},
			{name: "CNAME across zones", qname: "e-services.gov.az.", qtype: dns.TypeA,
				answer: []string{"e-services.gov.az. CNAME www.example.com.", "www.example.com. A 192.0.2.20"}},
			{name: "MX", qname: "gov.az.", qtype: dns.TypeMX,
				answer: []string{"gov.az. MX 10 mail.gov.az."}},
			{name: "wildcard", qname: "x.apps.gov.az.", qtype: dns.TypeA,
				answer: []string{"x.apps.gov.az. A 192.0.2.80"}},
			{name: "NXDOMAIN", qname: "nonexistent.gov.az.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
				soa: "gov.az.", negTTL: 300},
			{name: "NODATA", qname: "www.gov.az.", qtype: dns.TypeTXT,
				soa: "gov.az.", negTTL: 300},
			{name: "out-of-bailiwick NS", qname: "www.mfa.gov.az.", qtype: dns.TypeA,
				answer: []string{"www.mfa.gov.az. A 192.0.2.30"}},
			{name: "TLD served by a name in another TLD", qname: "www.example.net.", qtype: dns.TypeA,
				answer: []string{"www.example.net. A 192.0.2.40"}},
			{name: "NXDOMAIN from the root", qname: "nosuchtld.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
				soa: ".", negTTL: 86400},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				r := exchange(t, "udp", res.dns, rdQuery(tt.qname, tt.qtype))
				wantRcode(t, r, tt.rcode, false, true)
				wantData(t, "answer", r.Answer, 3600, tt.answer...)
				if tt.soa != "" {
					wantSOA(t, r, tt.soa, tt.negTTL)
				}
			})
		}
		t.Run("one dead server of two", func(t *testing.T) {
			t.Parallel()
			r, elapsed := exchangeWithin(t, res.dns, rdQuery("www.slow.com.", dns.TypeA), resolutionTimeout+2*time.Second)
			wantRcode(t, r, dns.RcodeSuccess, false, true)
			wantData(t, "answer", r.Answer, 3600, "www.slow.com. A 192.0.2.50")
			if limit := resolutionTimeout / 2; elapsed > limit {
				t.Errorf("answered in %v; want well under the resolution timeout (%v)", elapsed, limit)
			}
		})
		t.Run("TCP after TC", func(t *testing.T) {
			t.Parallel()
			r := exchange(t, "udp", res.dns, rdQuery("www.tc.com.", dns.TypeA))
			wantRcode(t, r, dns.RcodeSuccess, false, true)
			wantData(t, "answer", r.Answer, 3600, "www.tc.com. A 192.0.2.60")
			if h.trunc.tcpQueries.Load() == 0 {
				t.Errorf("the truncating server saw %d UDP and no TCP queries", h.trunc.udpQueries.Load())
			}
		})
		t.Run("all servers dead: SERVFAIL with EDE", func(t *testing.T) {
			t.Parallel()
			r, elapsed := exchangeWithin(t, res.dns, rdQuery("www.dead.com.", dns.TypeA), resolutionTimeout+3*time.Second)
			wantRcode(t, r, dns.RcodeServerFailure, false, true)
			if e, err := ede(r); err != nil {
				t.Errorf("SERVFAIL without EDE: %v\n%v", err, r)
			} else {
				t.Logf("EDE %d (%s) %q after %v", e.InfoCode, dns.ExtendedErrorCodeToString[e.InfoCode], e.ExtraText, elapsed)
			}
			if limit := resolutionTimeout + time.Second; elapsed > limit {
				t.Errorf("SERVFAIL after %v; want at most %v", elapsed, limit)
			}
		})
		t.Run("RD=0 for a name not held", func(t *testing.T) {
			t.Parallel()
			m := rdQuery("norec.example.com.", dns.TypeA)
			m.RecursionDesired = false
			r := exchange(t, "udp", res.dns, m)
			if r.Rcode != dns.RcodeRefused {
				t.Errorf("rcode %s, want REFUSED\n%v", dns.RcodeToString[r.Rcode], r)
			}
		})
		t.Run("own zone is authoritative", func(t *testing.T) {
			t.Parallel()
			for _, rd := range []bool{true, false} {
				m := rdQuery("www.intra.az.", dns.TypeA)
				m.RecursionDesired = rd
				r := exchange(t, "udp", res.dns, m)
				if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
					t.Errorf("RD=%v: rcode %s AA %v; want NOERROR and AA\n%v", rd, dns.RcodeToString[r.Rcode], r.Authoritative, r)
				}
				wantRRs(t, "answer", r.Answer, "www.intra.az. 3600 IN A 192.0.2.90")
			}
			r := exchange(t, "udp", res.dns, rdQuery("nope.intra.az.", dns.TypeA))
			if r.Rcode != dns.RcodeNameError || !r.Authoritative {
				t.Errorf("rcode %s AA %v; want NXDOMAIN and AA\n%v", dns.RcodeToString[r.Rcode], r.Authoritative, r)
			}
			wantSOA(t, r, "intra.az.", 300)
		})
		t.Run("name delegated away from a zone held", func(t *testing.T) {
			t.Parallel()
			// This node holds a copy of az., which delegates gov.az.: with RD
			// the name below the cut is resolved, without RD it is referred.
			node := h.startResolver(t, []string{"127.0.0.0/8"}, hierZone{"az.", azZone})
			r := exchange(t, "udp", node.dns, rdQuery("www.gov.az.", dns.TypeA))
			if r.Rcode != dns.RcodeSuccess || r.Authoritative || !r.RecursionAvailable || len(r.Answer) == 0 {
				t.Errorf("RD=1: want a resolved answer with RA and without AA\n%v", r)
			}
			m := rdQuery("www.gov.az.", dns.TypeA)
			m.RecursionDesired = false
			r = exchange(t, "udp", node.dns, m)
			if r.Rcode != dns.RcodeSuccess || r.Authoritative || len(r.Answer) != 0 || len(r.Ns) == 0 {
				t.Errorf("RD=0: want the referral\n%v", r)
			}
		})
		t.Run("client outside allow", func(t *testing.T) {
			t.Parallel()
			closed := h.startResolver(t, []string{"127.0.0.5/32"})
			r := exchange(t, "udp", closed.dns, rdQuery("www.gov.az.", dns.TypeA))
			if r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
				t.Errorf("rcode %s with %d answers; want REFUSED and none\n%v", dns.RcodeToString[r.Rcode], len(r.Answer), r)
			}
		})
		t.Run("dig", func(t *testing.T) {
			t.Parallel()
			dig := requireTool(t, "dig", "/usr/bin/dig")
			host, port, err := net.SplitHostPort(res.dns)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
			defer cancel()
			args := []string{"@" + host, "-p", port, "+time=5", "+tries=1", "e-services.gov.az.", "A"}
			out, err := exec.CommandContext(ctx, dig, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			for _, w := range []string{
				`status: NOERROR`, `flags: qr rd ra;`,
				`(?m)^e-services\.gov\.az\.\s+\d+\s+IN\s+CNAME\s+www\.example\.com\.$`,
				`(?m)^www\.example\.com\.\s+\d+\s+IN\s+A\s+192\.0\.2\.20$`,
			} {
				if !regexp.MustCompile(w).Match(out) {
					t.Errorf("dig %s: output does not match %q:\n%s", strings.Join(args, " "), w, out)
				}
			}
		})
	})

	// The cache: answers and negative answers survive their authority.
	t.Run("cache", func(t *testing.T) {
		first := exchange(t, "udp", res.dns, rdQuery("cache.gov.az.", dns.TypeA))
		wantRcode(t, first, dns.RcodeSuccess, false, true)
		wantData(t, "answer", first.Answer, 3600, "cache.gov.az. A 192.0.2.70")
		neg := exchange(t, "udp", res.dns, rdQuery("gone.gov.az.", dns.TypeA))
		wantRcode(t, neg, dns.RcodeNameError, false, true)
		if t.Failed() {
			t.FailNow()
		}
		h.servers[ipGovAZ].stop(t)

		// Answered from the cache, the TTL counting down: asked until the
		// TTL is below the first answer's (a second at most, bounded).
		var second *dns.Msg
		for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
			second = exchange(t, "udp", res.dns, rdQuery("cache.gov.az.", dns.TypeA))
			wantRcode(t, second, dns.RcodeSuccess, false, true)
			wantData(t, "answer", second.Answer, first.Answer[0].Header().Ttl, "cache.gov.az. A 192.0.2.70")
			if t.Failed() || ttlOf(second.Answer) < ttlOf(first.Answer) {
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("TTL still %d after %v", ttlOf(second.Answer), time.Since(start))
			}
		}
		t.Logf("TTL %d, then %d from the cache", first.Answer[0].Header().Ttl, ttlOf(second.Answer))
		neg2 := exchange(t, "udp", res.dns, rdQuery("gone.gov.az.", dns.TypeA))
		wantRcode(t, neg2, dns.RcodeNameError, false, true)
		wantSOA(t, neg2, "gov.az.", 300)
	})

	t.Run("cache commands", func(t *testing.T) {
		// The gov.az authority is stopped by now: what the cache holds is
		// all there is, and the CLI reaches it through the control socket.
		r := mustCLI(t, nil, "cache", "stats", "--json", "--data-dir", res.dataDir)
		var st struct {
			Entries   *int64 `json:"entries"`
			Hits      *int64 `json:"hits"`
			StaleHits *int64 `json:"stale_hits"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Entries == nil || *st.Entries == 0 ||
			st.Hits == nil || *st.Hits == 0 || st.StaleHits == nil || strings.Contains(r.stdout, `"Hits"`) {
			t.Fatalf("cache stats: %v\n%s", err, r.stdout)
		}
		if r := mustCLI(t, nil, "cache", "dump", "--data-dir", res.dataDir); !strings.Contains(strings.ToLower(r.stdout), "cache.gov.az.") {
			t.Errorf("cache dump does not show cache.gov.az.:\n%s", r.stdout)
		}
		// --json: JSON Lines, an object per entry.
		r = mustCLI(t, nil, "cache", "dump", "--json", "--data-dir", res.dataDir)
		found := false
		for line := range strings.Lines(r.stdout) {
			var e struct {
				Kind, Name, Type string
				TTL              *uint32 `json:"ttl"`
			}
			if err := json.Unmarshal([]byte(line), &e); err != nil || e.Kind == "" || e.TTL == nil {
				t.Fatalf("cache dump --json: line %q: %v", line, err)
			}
			found = found || strings.EqualFold(e.Name, "cache.gov.az.") && e.Type == "A"
		}
		if !found {
			t.Errorf("cache dump --json does not show cache.gov.az. A:\n%s", r.stdout)
		}
		r = mustCLI(t, nil, "cache", "flush", "gov.az", "--data-dir", res.dataDir)
		if !strings.Contains(r.stdout, "flushed gov.az") {
			t.Errorf("cache flush said %q", r.stdout)
		}
		r = mustCLI(t, nil, "cache", "flush", "gov.az", "--json", "--data-dir", res.dataDir)
		var fl struct {
			Flushed     string `json:"flushed"`
			Removed     *int   `json:"removed"`
			KeysRemoved *int   `json:"keys_removed"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &fl); err != nil || fl.Flushed != "gov.az" || fl.Removed == nil || fl.KeysRemoved == nil {
			t.Errorf("cache flush --json: %v\n%s", err, r.stdout)
		}
		// Flushed, with its authority gone: the name no longer resolves.
		m := exchange(t, "udp", res.dns, rdQuery("cache.gov.az.", dns.TypeA))
		if m.Rcode != dns.RcodeServerFailure {
			t.Errorf("after the flush: rcode %s, want SERVFAIL (authority stopped)", dns.RcodeToString[m.Rcode])
		}
		if r := runCLI(t, nil, "cache", "stats", "--data-dir", t.TempDir()); r.code == 0 || !strings.Contains(r.stderr, "no running sovdns server") {
			t.Errorf("cache stats without a server: exit %d, %q", r.code, r.stderr)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		body := scrape(t, res.metrics)
		if !regexp.MustCompile(`(?m)^sovdns_resolver_\w+`).Match(body) {
			t.Errorf("no sovdns_resolver_ metric in /metrics:\n%s", body)
		}
	})
}

// ttlOf is the TTL of the first record of rrs, 0 when there is none.
func ttlOf(rrs []dns.RR) uint32 {
	if len(rrs) == 0 {
		return 0
	}
	return rrs[0].Header().Ttl
}
