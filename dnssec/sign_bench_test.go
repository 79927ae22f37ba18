package dnssec

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
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

// BenchmarkSign100k signs a 100,000-record zone from scratch, then signs
// it again after a one-record change the whole way (Sign, keeping every
// good signature) and the incremental way (SignEdit, what an edit does).
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
		if first.Zone == nil { // full- was left out by -bench
			first = signWith(b, p, nil, keys, time.Now(), z)
		}
		z2 := buildZone(b, bigZone(b, 100_000)+"new A 192.0.2.99\n")
		b.Run("resign-"+string(denial), func(b *testing.B) {
			var out Output
			for b.Loop() {
				out = signWith(b, p, first.Zone, keys, time.Now(), z2)
			}
			b.ReportMetric(float64(out.Made), "sigs")
		})
		// The same change made by SignEdit: the new name and the SOA.
		rr, err := dns.NewRR("new.example.az. 3600 IN A 192.0.2.99")
		if err != nil {
			b.Fatal(err)
		}
		k, _ := zone.WireKey("new.example.az.")
		apex := nextApex(first.Zone)
		b.Run("edit-"+string(denial), func(b *testing.B) {
			var out EditOutput
			for b.Loop() {
				var err error
				out, err = SignEdit(EditInput{Prev: first.Zone, Changes: map[string][]dns.RR{k: {rr}, first.Zone.Key: apex},
					Keys: keys, Policy: p, Now: time.Now()})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.Made), "sigs")
		})
	}
}
