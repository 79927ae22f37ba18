// Package zonetest holds zones that tests and benchmarks of several
// packages share.
package zonetest

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

// Institution returns the text of the i-th institution zone, z<i>.gov.test.:
// 18 records (SOA, 2 NS, MX, TXT, A and AAAA at the apex and a few names
// below), the kind of small zone a registry holds by the thousand, as
// bench/registry.sh generates them.
func Institution(i int) string {
	return fmt.Sprintf(`$ORIGIN z%[1]d.gov.test.
$TTL 3600
@ SOA ns1.gov.test. hostmaster.gov.test. 1 3600 600 1209600 300
@ NS ns1.gov.test.
@ NS ns2.gov.test.
@ MX 10 mail
@ TXT "v=spf1 mx -all"
@ A 10.%[2]d.%[3]d.1
@ AAAA 2001:db8:%[4]x::1
www A 10.%[2]d.%[3]d.2
www AAAA 2001:db8:%[4]x::2
www TXT "web site of z%[1]d.gov.test."
mail A 10.%[2]d.%[3]d.3
mail AAAA 2001:db8:%[4]x::3
portal CNAME www
api A 10.%[2]d.%[3]d.4
api AAAA 2001:db8:%[4]x::4
docs A 10.%[2]d.%[3]d.5
vpn A 10.%[2]d.%[3]d.6
`, i, i>>8&255, i&255, i)
}

// RRs parses each line as one record in presentation form, failing t on
// the first that does not parse.
func RRs(t testing.TB, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR // nil for no lines
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, rr)
	}
	return out
}
