package cli

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/zone"
)

func smallZone(tb testing.TB, origin string, serial uint32) *zone.Zone {
	tb.Helper()
	var rrs []dns.RR
	for _, s := range []string{
		fmt.Sprintf("%s 3600 IN SOA ns1.%s hostmaster.%s %d 7200 900 1209600 300", origin, origin, origin, serial),
		fmt.Sprintf("%s 3600 IN NS ns1.%s", origin, origin),
		fmt.Sprintf("ns1.%s 3600 IN A 192.0.2.1", origin),
		fmt.Sprintf("www.%s 3600 IN A 192.0.2.2", origin),
	} {
		rr, err := dns.NewRR(s)
		if err != nil {
			tb.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	z, err := zone.Build(origin, rrs)
	if err != nil {
		tb.Fatal(err)
	}
	return z
}

// BenchmarkCommitPublish times what the running server does with one
// committed edit (a new version of one zone): the zone sets swapped, the
// old version retired, that zone's metrics set. Its cost should not
// depend on how many zones are held.
func BenchmarkCommitPublish(b *testing.B) {
	for _, n := range []int{1, 10_000} {
		b.Run(fmt.Sprintf("zones=%d", n), func(b *testing.B) {
			m := metrics.New(prometheus.NewRegistry())
			log := slog.New(slog.DiscardHandler)
			p := newServed(server.New(server.Config{}, log, m), server.NewLocal(), nil, m, 1<<30, log)
			zs := make([]*zone.Zone, n)
			for i := range zs {
				zs[i] = smallZone(b, fmt.Sprintf("z%d.example.", i), 1)
			}
			p.replace(zs)
			versions := make([]*zone.Zone, 64)
			for i := range versions {
				versions[i] = smallZone(b, "z0.example.", uint32(2+i))
			}
			i := 0
			for b.Loop() {
				p.committed("z0.example.", versions[i%len(versions)])
				i++
			}
		})
	}
}
