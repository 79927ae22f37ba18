package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkCachePutRRsetNational measures storing address RRsets (as the
// resolver does for every answer with addresses) without national
// suffixes and with them, where each store asks whether the name is a
// national name server: the cost of the national store on the hot path.
func BenchmarkCachePutRRsetNational(b *testing.B) {
	const n = 100_000
	names := benchNames(n)
	sets := make([][]dns.RR, n)
	for i, name := range names {
		sets[i] = []dns.RR{benchA(name, i)}
	}
	for _, national := range []bool{false, true} {
		name := "plain"
		if national {
			name = "national"
		}
		b.Run(name, func(b *testing.B) {
			c := NewCache(CacheConfig{MaxBytes: 256 << 20})
			if national {
				c.setNational([]string{"az."}, 0, nil)
				ns, _ := dns.NewRR("az. 3600 NS ns1.nic.az.")
				c.PutRRset([]dns.RR{ns}, RankAuthority)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					c.PutRRset(sets[i%n], RankAnswer)
					i += 7
				}
			})
		})
	}
}
