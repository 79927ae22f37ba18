package zonestore_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// apexText is the three-line head of most test zones (lines 1-3).
const apexText = "$ORIGIN example.\n@ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300\n@ 3600 IN NS ns.example.net.\n"

// baseZone is a small valid zone used by the store tests.
const baseZone = `$ORIGIN example.
$TTL 3600
@       IN SOA  ns1 hostmaster 5 7200 900 1209600 300
@       IN NS   ns1
@       IN NS   ns2.example.net.
@       IN MX   10 mail
ns1     IN A    192.0.2.53
mail    IN A    192.0.2.25
www     IN A    192.0.2.80
www     IN A    192.0.2.81
www     IN AAAA 2001:db8::80
a.b.c   IN TXT  "deep"
alias   IN CNAME www
sub     IN NS   ns.sub
ns.sub  IN A    192.0.2.100
*.wild  IN TXT  "wildcard"
unk     IN TYPE65280 \# 4 0A000001
`

// parse reads zone text (file name test.zone, origin example.).
func parse(t testing.TB, text string) *zonestore.Parsed {
	t.Helper()
	p, err := zonestore.Parse(strings.NewReader(text), "example.", "test.zone", nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// buildText parses and builds zone text.
func buildText(t testing.TB, text string) *zone.Zone {
	t.Helper()
	z, err := parse(t, text).Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return z
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("NewRR(%q): %v", s, err)
	}
	return rr
}

func wireKey(t testing.TB, name string) string {
	t.Helper()
	k, err := zone.WireKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// export renders z with zonestore.Export.
func export(t testing.TB, z *zone.Zone) string {
	t.Helper()
	var b bytes.Buffer
	if err := zonestore.Export(&b, z); err != nil {
		t.Fatalf("Export: %v", err)
	}
	return b.String()
}

// fixedClock returns a clock stopped at the given RFC 3339 time.
func fixedClock(t testing.TB, at string) func() time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, at)
	if err != nil {
		t.Fatal(err)
	}
	return func() time.Time { return ts }
}
