package server

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

const otherZone = `$ORIGIN other.gov.
$TTL 3600
@       SOA ns1 hostmaster 1 7200 900 1209600 300
@       NS  ns1
ns1     A   192.0.2.1
www     A   198.51.100.1
link    CNAME www.example.gov.
`

// firstA returns the address of the first A record of an answer.
func firstA(t *testing.T, r *dns.Msg) string {
	t.Helper()
	for i := len(r.Answer) - 1; i >= 0; i-- {
		if a, ok := r.Answer[i].(*dns.A); ok {
			return a.A.String()
		}
	}
	t.Fatalf("no A record in %v", r)
	return ""
}

// TestCacheRetiresPerZone checks that publishing a newer version of one
// zone retires that zone's cached answers, the answers of other zones
// that drew on it through a CNAME, and nothing else.
func TestCacheRetiresPerZone(t *testing.T) {
	ex := mustZone(t, testZone, "example.gov.")
	other := mustZone(t, otherZone, "other.gov.")
	ts := startServer(t, Config{}, ex, other)
	ask := func(name string) string {
		return firstA(t, exchange(t, "udp", ts.udp, query(name, dns.TypeA)))
	}
	for range 2 { // asked twice: the second answer comes from the cache
		if got := ask("www.other.gov."); got != "198.51.100.1" {
			t.Fatalf("www.other.gov. = %s", got)
		}
		if got := ask("link.other.gov."); got != "192.0.2.10" {
			t.Fatalf("link.other.gov. = %s", got)
		}
		if got := ask("www.example.gov."); got != "192.0.2.10" {
			t.Fatalf("www.example.gov. = %s", got)
		}
	}
	if n := ts.st.Load().cache.entries.Load(); n != 3 {
		t.Fatalf("%d cache entries, want 3", n)
	}

	// A new version of example.gov. is published and the old one retired.
	ex2 := mustZone(t, strings.Replace(testZone, "www     A   192.0.2.10", "www     A   192.0.2.99", 1), "example.gov.")
	// other.gov. is also swapped for a different zone without retiring the
	// old version: the cache must go on answering from the old one, which
	// shows the cache was kept and other.gov.'s entry was not retired.
	other2 := mustZone(t, strings.Replace(otherZone, "198.51.100.1", "198.51.100.2", 1), "other.gov.")
	ts.UpdateZones(zone.NewSet(ex2, other2))
	ex.Supersede()

	if got := ask("www.example.gov."); got != "192.0.2.99" {
		t.Errorf("www.example.gov. after the edit = %s, want the new 192.0.2.99", got)
	}
	if got := ask("link.other.gov."); got != "192.0.2.99" {
		t.Errorf("link.other.gov. (a CNAME into the edited zone) = %s, want 192.0.2.99", got)
	}
	if got := ask("www.other.gov."); got != "198.51.100.1" {
		t.Errorf("www.other.gov. = %s: its cached answer was dropped by an edit of another zone", got)
	}
	other.Supersede()
	if got := ask("www.other.gov."); got != "198.51.100.2" {
		t.Errorf("www.other.gov. after its zone was retired = %s, want 198.51.100.2", got)
	}
}
