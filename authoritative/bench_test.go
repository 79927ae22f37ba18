package authoritative_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/authoritative"
	"github.com/sovdns/sovdns/zone"
)

const benchNames = 100_000

// benchZone builds example.com with benchNames names: hosts with A and AAAA,
// one in ten a CNAME to a host, one in a hundred a delegation with glue, and
// a wildcard under wild.
func benchZone(b *testing.B) *zone.Set {
	b.Helper()
	var sb strings.Builder
	sb.WriteString("$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 7200 900 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n*.wild IN TXT \"wildcard\"\n")
	for i := range benchNames {
		switch {
		case i%100 == 0:
			fmt.Fprintf(&sb, "h%d IN NS ns.h%d\nns.h%d IN A 192.0.2.%d\n", i, i, i, i%250+1)
		case i%10 == 0:
			fmt.Fprintf(&sb, "h%d IN CNAME h%d\n", i, i+1)
		default:
			fmt.Fprintf(&sb, "h%d IN A 192.0.2.%d\nh%d IN AAAA 2001:db8::%x:%x\n", i, i%250+1, i, i>>16, i&0xffff)
		}
	}
	return zone.NewSet(buildZone(b, sb.String()))
}

func BenchmarkAnswer(b *testing.B) {
	zs := benchZone(b)
	const spread = 1024 // distinct names per case, to touch more of the tree
	// pick spreads i over n slots of width w, at offset off in each slot.
	pick := func(i, n, w, off int) int { return (i*97%n)*w + off }
	cases := []struct {
		name  string
		qname func(i int) string
		qtype uint16
		kind  authoritative.Kind
	}{
		{name: "exact", qtype: dns.TypeA, kind: authoritative.KindAnswer,
			qname: func(i int) string { return fmt.Sprintf("h%d.example.com.", pick(i, benchNames/10, 10, 1)) }},
		{name: "nxdomain", qtype: dns.TypeA, kind: authoritative.KindNXDomain,
			qname: func(i int) string { return fmt.Sprintf("nope%d.example.com.", i) }},
		{name: "nodata", qtype: dns.TypeMX, kind: authoritative.KindNoData,
			qname: func(i int) string { return fmt.Sprintf("h%d.example.com.", pick(i, benchNames/10, 10, 3)) }},
		{name: "referral", qtype: dns.TypeA, kind: authoritative.KindReferral,
			qname: func(i int) string { return fmt.Sprintf("www.h%d.example.com.", pick(i, benchNames/100, 100, 0)) }},
		{name: "wildcard", qtype: dns.TypeTXT, kind: authoritative.KindAnswer,
			qname: func(i int) string { return fmt.Sprintf("x%d.wild.example.com.", i) }},
		{name: "cname", qtype: dns.TypeA, kind: authoritative.KindAnswer,
			qname: func(i int) string { return fmt.Sprintf("h%d.example.com.", pick(i, benchNames/100, 100, 10)) }},
	}
	for _, c := range cases {
		qs := make([]authoritative.Query, spread)
		for i := range qs {
			qs[i] = authoritative.Query{Name: c.qname(i), Type: c.qtype}
			if res := authoritative.Answer(zs, qs[i]); res.Kind != c.kind {
				b.Fatalf("%s %s: kind %s, want %s", c.name, qs[i].Name, res.Kind, c.kind)
			}
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				authoritative.Answer(zs, qs[i%spread])
				i++
			}
		})
	}
}
