package test

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// TestResponseCacheByClient checks that the response cache never gives one
// client what was built for another: a refusal or a referral made for a
// client outside resolver.allow, or for an RD=0 question, must not reach an
// allowed client's RD=1 question, and RA follows the client asking. Each
// step is asked twice in a row, so the second answer comes from the cache
// when the question takes the fast path (no EDNS, or EDNS with no options).
func TestResponseCacheByClient(t *testing.T) {
	t.Parallel()
	h := startHierarchy(t)
	// The node holds az., which delegates gov.az. away: www.gov.az. is
	// answered with a referral unless it is resolved.
	res := h.startResolver(t, []string{"127.0.50.5/32"}, hierZone{"az.", azZone})
	const (
		allowed  = "127.0.50.5"
		outsider = "127.0.50.9"
	)
	type want struct {
		rcode    int
		ra       bool
		answer   []string // empty: none
		referral bool     // NS of gov.az. in the authority section, no answer
	}
	nicAZ := "ns1.nic.az. A " + h.ip(ipAZ) // the hierarchy's address of ns1.nic.az.
	resolved := want{rcode: dns.RcodeSuccess, ra: true, answer: []string{"www.gov.az. A 192.0.2.10"}}
	steps := []struct {
		name  string
		from  string
		qname string
		rd    bool
		want  want
	}{
		{"outsider, no zone: refused", outsider, "www.example.com.", true, want{rcode: dns.RcodeRefused}},
		{"allowed, no zone: resolved", allowed, "www.example.com.", true,
			want{rcode: dns.RcodeSuccess, ra: true, answer: []string{"www.example.com. A 192.0.2.20"}}},
		{"outsider again: still refused", outsider, "www.example.com.", true, want{rcode: dns.RcodeRefused}},
		{"outsider, delegated: referral", outsider, "www.gov.az.", true, want{rcode: dns.RcodeSuccess, referral: true}},
		{"allowed, delegated, RD=0: referral with RA", allowed, "www.gov.az.", false,
			want{rcode: dns.RcodeSuccess, ra: true, referral: true}},
		{"allowed, delegated, RD=1: resolved", allowed, "www.gov.az.", true, resolved},
		{"outsider, delegated again: referral without RA", outsider, "www.gov.az.", true, want{rcode: dns.RcodeSuccess, referral: true}},
		{"outsider, in zone: no RA", outsider, "ns1.nic.az.", true,
			want{rcode: dns.RcodeSuccess, answer: []string{nicAZ}}},
		{"allowed, in zone: RA", allowed, "ns1.nic.az.", true,
			want{rcode: dns.RcodeSuccess, ra: true, answer: []string{nicAZ}}},
		{"allowed, in zone, RD=0: RA", allowed, "ns1.nic.az.", false,
			want{rcode: dns.RcodeSuccess, ra: true, answer: []string{nicAZ}}},
	}
	for _, edns := range []bool{false, true} {
		name := "no EDNS"
		if edns {
			name = "EDNS"
		}
		t.Run(name, func(t *testing.T) {
			for _, st := range steps {
				for try := range 2 {
					m := newQuery(st.qname, dns.TypeA)
					m.RecursionDesired = st.rd
					if edns {
						m.SetEdns0(1232, false)
					}
					r := exchangeFrom(t, "udp", st.from, res.dns, m)
					if r.Rcode != st.want.rcode || r.RecursionAvailable != st.want.ra || r.RecursionDesired != st.rd {
						t.Fatalf("%s (try %d): rcode %s RA %v RD %v; want %s RA %v RD %v\n%v", st.name, try,
							dns.RcodeToString[r.Rcode], r.RecursionAvailable, r.RecursionDesired,
							dns.RcodeToString[st.want.rcode], st.want.ra, st.rd, r)
					}
					if st.want.referral {
						if len(r.Answer) != 0 || r.Authoritative || !hasNS(r.Ns, "gov.az.") {
							t.Fatalf("%s (try %d): not a referral to gov.az.\n%v", st.name, try, r)
						}
						continue
					}
					wantData(t, st.name+" answer", r.Answer, 3600, st.want.answer...)
					if t.Failed() {
						t.FailNow()
					}
				}
			}
		})
	}
}

// exchangeFrom sends m over network (udp or tcp) from the loopback
// address src.
func exchangeFrom(t *testing.T, network, src, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	var local net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
	if network == "tcp" {
		local = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c := &dns.Client{Net: network, Timeout: queryTimeout, Dialer: &net.Dialer{Timeout: queryTimeout, LocalAddr: local}}
	r, _, err := c.ExchangeContext(t.Context(), m, addr)
	if err != nil {
		t.Fatalf("%s query %s from %s to %s: %v", network, m.Question[0].String(), src, addr, err)
	}
	return r
}

// hasNS reports whether rrs hold an NS record owned by zone.
func hasNS(rrs []dns.RR, zone string) bool {
	for _, rr := range rrs {
		if ns, ok := rr.(*dns.NS); ok && dns.CanonicalName(ns.Hdr.Name) == zone {
			return true
		}
	}
	return false
}
