package zone

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/zonetest"
)

// BenchmarkSmallZoneMemory reports the live heap a small zone costs once
// built (bytes and objects per zone, from the records as parsed): what a
// node of 100,000 such zones holds.
func BenchmarkSmallZoneMemory(b *testing.B) {
	const zones = 2000
	parsed := make([][]dns.RR, zones)
	for i := range parsed {
		zp := dns.NewZoneParser(strings.NewReader(zonetest.Institution(i)), "", "")
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			parsed[i] = append(parsed[i], rr)
		}
		if err := zp.Err(); err != nil {
			b.Fatal(err)
		}
	}
	var perZone, objects float64
	for range b.N {
		held := make([]*Zone, 0, zones)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i, rrs := range parsed {
			z, err := Build(fmt.Sprintf("z%d.gov.test.", i), rrs)
			if err != nil {
				b.Fatal(err)
			}
			held = append(held, z)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perZone = float64(after.HeapAlloc-before.HeapAlloc) / zones
		objects = float64(after.HeapObjects-before.HeapObjects) / zones
		runtime.KeepAlive(held)
	}
	b.ReportMetric(perZone, "B/zone")
	b.ReportMetric(objects, "objects/zone")
}

// BenchmarkSmallZoneBuild is the time to build one small zone from its
// records: most of a start's work with many zones.
func BenchmarkSmallZoneBuild(b *testing.B) {
	const zones = 1000
	parsed := make([][]dns.RR, zones)
	origins := make([]string, zones)
	for i := range parsed {
		origins[i] = fmt.Sprintf("z%d.gov.test.", i)
		zp := dns.NewZoneParser(strings.NewReader(zonetest.Institution(i)), "", "")
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			parsed[i] = append(parsed[i], rr)
		}
		if err := zp.Err(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := Build(origins[i%zones], parsed[i%zones]); err != nil {
			b.Fatal(err)
		}
	}
}
