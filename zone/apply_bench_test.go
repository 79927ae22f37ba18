package zone_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// BenchmarkApply times zone.Apply of a one-name change (an address
// added at a new name) on zones of growing size: the cost should not grow
// with the zone's, as a full zone.Build's does.
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("names=%d", n), func(b *testing.B) {
			if testing.Short() && n > 100_000 {
				b.Skip("a million names take a while; not in -short mode")
			}
			rrs := make([]dns.RR, 0, n+2)
			soa, _ := dns.NewRR("example. 3600 IN SOA ns1.example. hostmaster.example. 1 7200 900 1209600 300")
			ns, _ := dns.NewRR("example. 3600 IN NS ns1.example.net.")
			rrs = append(rrs, soa, ns)
			base := netip.MustParseAddr("10.0.0.0")
			for i := range n {
				base = base.Next()
				rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Name: fmt.Sprintf("h%d.example.", i), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: base.AsSlice()})
			}
			z, err := zone.Build("example.", rrs)
			if err != nil {
				b.Fatal(err)
			}
			apex := z.Apex.RRsets
			i := 0
			for b.Loop() {
				k, _ := zone.WireKey(fmt.Sprintf("new%d.example.", i))
				s := dns.Copy(z.SOA).(*dns.SOA)
				s.Serial++
				a := &dns.A{Hdr: dns.RR_Header{Name: fmt.Sprintf("new%d.example.", i), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: []byte{192, 0, 2, 1}}
				next, err := zone.Apply(z, map[string][]dns.RR{k: {a}, z.Key: {s, apex[1].RRs()[0]}})
				if err != nil {
					b.Fatal(err)
				}
				z = next
				i++
			}
		})
	}
}
