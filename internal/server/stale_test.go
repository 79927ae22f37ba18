package server

import (
	"context"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/resolver"
)

// scripted is a Recursor that gives one result to every question.
type scripted struct{ res resolver.Result }

func (s scripted) ResolveMiss(context.Context, string, uint16, resolver.Miss) resolver.Result {
	return s.res
}
func (s scripted) Lookup(string, uint16) (resolver.Result, resolver.Miss, bool) {
	return resolver.Result{}, resolver.Miss{}, false
}

// TestStaleAnswerEDE: an answer served stale carries Extended DNS Error 3
// (Stale Answer), a stale NXDOMAIN 19 (RFC 8914), an answer accepted under
// the island-mode signature grace 7; a fresh one none.
func TestStaleAnswerEDE(t *testing.T) {
	a, _ := dns.NewRR("www.example.com. 30 IN A 192.0.2.1")
	soa, _ := dns.NewRR("example.com. 30 IN SOA ns h 1 2 3 4 5")
	tests := []struct {
		name string
		res  resolver.Result
		want []uint16
	}{
		{"fresh", resolver.Result{Answer: []dns.RR{a}}, nil},
		{"stale", resolver.Result{Answer: []dns.RR{a}, Stale: true, StaleReason: resolver.StaleReasonIsland}, []uint16{dns.ExtendedErrorCodeStaleAnswer}},
		{"stale nxdomain", resolver.Result{Rcode: dns.RcodeNameError, Ns: []dns.RR{soa}, Stale: true, StaleReason: resolver.StaleReasonFailed},
			[]uint16{dns.ExtendedErrorCodeStaleNXDOMAINAnswer}},
		{"grace", resolver.Result{Answer: []dns.RR{a}, Grace: true}, []uint16{dns.ExtendedErrorCodeSignatureExpired}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{Resolver: scripted{tt.res}, MaxInFlight: 4,
				RecursionAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
			m := query("www.example.com.", dns.TypeA)
			m.RecursionDesired = true
			m.SetEdns0(1232, false)
			r := exchange(t, "udp", s.udp, m)
			if r.Rcode != tt.res.Rcode || !r.RecursionAvailable {
				t.Fatalf("rcode %s RA %v", dns.RcodeToString[r.Rcode], r.RecursionAvailable)
			}
			var got []uint16
			if opt := r.IsEdns0(); opt != nil {
				for _, o := range opt.Option {
					if e, ok := o.(*dns.EDNS0_EDE); ok {
						got = append(got, e.InfoCode)
					}
				}
			}
			if len(got) != len(tt.want) || (len(got) == 1 && got[0] != tt.want[0]) {
				t.Errorf("EDE %v, want %v", got, tt.want)
			}
		})
	}
}
