package dnssec

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// bigZone is a zone of about n records: n/2 names with an A and a TXT.
func bigZone(b *testing.B, n int) string {
	var sb strings.Builder
	sb.WriteString("$ORIGIN example.az.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n")
	for i := range n / 2 {
		fmt.Fprintf(&sb, "h%d A 192.0.2.%d\nh%d TXT \"host %d\"\n", i, i%250+1, i, i)
	}
	return sb.String()
}

// BenchmarkSign100k signs a 100,000-record zone from scratch, and then
// re-signs it after a one-record change (what an edit costs).
func BenchmarkSign100k(b *testing.B) {
	for _, denial := range []Denial{DenialNSEC, DenialNSEC3} {
		p := DefaultPolicy()
		p.Denial = denial
		z := buildZone(b, bigZone(b, 100_000))
		keys, err := InitialKeys(z.Origin, p, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		var first Output
		b.Run("full-"+string(denial), func(b *testing.B) {
			for b.Loop() {
				first = signWith(b, p, nil, keys, time.Now(), z)
			}
			b.ReportMetric(float64(first.Made), "sigs")
		})
		z2 := buildZone(b, bigZone(b, 100_000)+"new A 192.0.2.99\n")
		b.Run("edit-"+string(denial), func(b *testing.B) {
			var out Output
			for b.Loop() {
				out = signWith(b, p, first.Zone, keys, time.Now(), z2)
			}
			b.ReportMetric(float64(out.Made), "sigs")
		})
	}
}
