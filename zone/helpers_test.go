package zone_test

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// apex is the minimum every test zone needs, for origin example.
const apex = `$ORIGIN example.
$TTL 3600
@ IN SOA ns1.example. hostmaster.example. 1 7200 900 1209600 300
@ IN NS ns1.example.
ns1 IN A 192.0.2.53
`

// parseRRs reads zone text into records, failing the test on a syntax error.
func parseRRs(t testing.TB, origin, text string) []dns.RR {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "test")
	var out []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out = append(out, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("parse test zone: %v", err)
	}
	return out
}

// build builds the zone origin from text and fails the test on any error.
func build(t testing.TB, origin, text string) *zone.Zone {
	t.Helper()
	z, err := zone.Build(origin, parseRRs(t, origin, text))
	if err != nil {
		t.Fatalf("Build(%s): %v", origin, err)
	}
	return z
}

// key is zone.WireKey that fails the test on error.
func key(t testing.TB, name string) string {
	t.Helper()
	k, err := zone.WireKey(name)
	if err != nil {
		t.Fatalf("WireKey(%q): %v", name, err)
	}
	return k
}

// node returns the node of name in z, failing the test when it is missing.
func node(t testing.TB, z *zone.Zone, name string) *zone.Node {
	t.Helper()
	n := z.Lookup(key(t, name))
	if n == nil {
		t.Fatalf("no node %s in zone %s", name, z.Origin)
	}
	return n
}

// recordErrors returns the *zone.RecordError values joined in err.
func recordErrors(t testing.TB, err error) []*zone.RecordError {
	t.Helper()
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v (%T) is not a joined error", err, err)
	}
	var out []*zone.RecordError
	for _, e := range j.Unwrap() {
		re, ok := e.(*zone.RecordError)
		if !ok {
			continue
		}
		out = append(out, re)
	}
	return out
}
