package server

import (
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/internal/metrics"
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

// TestCacheKeptWhenZonesComeAndGo checks that adding or removing a zone
// retires the cached answers it can change (those of the zones above it,
// of the zone removed, of names no zone held) and keeps the others.
func TestCacheKeptWhenZonesComeAndGo(t *testing.T) {
	ex := mustZone(t, testZone, "example.gov.")
	other := mustZone(t, otherZone, "other.gov.")
	ts := startServer(t, Config{}, ex, other)
	ask := func(name string) *dns.Msg { return exchange(t, "udp", ts.udp, query(name, dns.TypeA)) }
	for range 2 {
		if got := firstA(t, ask("www.other.gov.")); got != "198.51.100.1" {
			t.Fatalf("www.other.gov. = %s", got)
		}
		if r := ask("www.sub.example.gov."); r.Rcode != dns.RcodeNameError && len(r.Ns) == 0 {
			t.Fatalf("www.sub.example.gov. before the child zone: %v", r)
		}
		if r := ask("www.new.gov."); r.Rcode != dns.RcodeRefused {
			t.Fatalf("www.new.gov. before its zone: rcode %d", r.Rcode)
		}
	}
	keyOf := func(name string) string {
		k, err := zone.WireKey(name)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}

	// other.gov. is swapped for a version with another address without
	// retiring the old one: an answer from the old one shows the cache
	// kept other.gov.'s entry.
	other2 := mustZone(t, strings.Replace(otherZone, "198.51.100.1", "198.51.100.2", 1), "other.gov.")
	sub := mustZone(t, "$ORIGIN sub.example.gov.\n@ 3600 SOA ns1 hostmaster 1 7200 900 1209600 300\n@ 3600 NS ns1\nns1 3600 A 192.0.2.77\nwww 3600 A 192.0.2.78\n", "sub.example.gov.")
	newz := mustZone(t, "$ORIGIN new.gov.\n@ 3600 SOA ns1 hostmaster 1 7200 900 1209600 300\n@ 3600 NS ns1\nns1 3600 A 192.0.2.87\nwww 3600 A 192.0.2.88\n", "new.gov.")
	ts.ChangeZones(zone.NewSet(ex, other2, sub, newz), keyOf("sub.example.gov."), keyOf("new.gov."))

	if got := firstA(t, ask("www.sub.example.gov.")); got != "192.0.2.78" {
		t.Errorf("www.sub.example.gov. after its zone was added = %s (the parent's cached answer was kept)", got)
	}
	if got := firstA(t, ask("www.new.gov.")); got != "192.0.2.88" {
		t.Errorf("www.new.gov. after its zone was added = %s (the cached REFUSED was kept)", got)
	}
	if got := firstA(t, ask("www.other.gov.")); got != "198.51.100.1" {
		t.Errorf("www.other.gov. = %s: its cached answer was dropped when unrelated zones were added", got)
	}

	// Removing the child zone: its answers retire with it (superseded) and
	// the parent answers again.
	ts.ChangeZones(zone.NewSet(ex, other2, newz), keyOf("sub.example.gov."))
	sub.Supersede()
	if r := ask("www.sub.example.gov."); len(r.Answer) != 0 {
		t.Errorf("www.sub.example.gov. after its zone was removed: %v", r.Answer)
	}
	if got := firstA(t, ask("www.other.gov.")); got != "198.51.100.1" {
		t.Errorf("www.other.gov. = %s after an unrelated zone was removed", got)
	}
}

// BenchmarkCacheMemory reports what one entry of the response cache costs
// in live heap and heap objects, and what the cache counts it for: every
// zone of a registry's small ones asked for its SOA once, as a minute of
// queries over them leaves it.
func BenchmarkCacheMemory(b *testing.B) {
	const zones = 2000
	zs := make([]*zone.Zone, zones)
	for i := range zs {
		origin := fmt.Sprintf("z%d.gov.test.", i)
		zs[i] = mustZone(b, "$TTL 3600\n@ SOA ns1.gov.test. hostmaster.gov.test. 1 3600 600 1209600 300\n"+
			"@ NS ns1.gov.test.\n@ NS ns2.gov.test.\n@ A 10.0.0.1\nwww A 10.0.0.2\n", origin)
	}
	queries := make([][]byte, zones)
	for i := range queries {
		wire, err := query(fmt.Sprintf("z%d.gov.test.", i), dns.TypeSOA).Pack()
		if err != nil {
			b.Fatal(err)
		}
		queries[i] = wire
	}
	src := netip.MustParseAddrPort("127.0.0.1:53000")
	out := make([]byte, 0, 4096)
	var perEntry, objects, counted float64
	for b.Loop() {
		m := metrics.New(prometheus.NewRegistry())
		m.SetPerZone(false) // as above metrics.zone_series_max zones
		s := New(Config{ResponseCache: 64 << 20}, slog.New(slog.DiscardHandler), m)
		s.SetZones(zone.NewSet(zs...))
		s.respond(queries[0], out, src, nil, udp) // the counters' series
		bytes, objs := heapGrowth(func() {
			for _, q := range queries {
				if s.respond(q, out, src, nil, udp) == nil {
					b.Fatal("no response")
				}
			}
		})
		c := s.st.Load().cache
		if n := c.entries.Load(); n != zones {
			b.Fatalf("%d entries cached, want %d", n, zones)
		}
		counted = float64(c.bytes.Load()) / zones
		perEntry, objects = float64(bytes)/zones, float64(objs)/zones
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perEntry, "B/entry")
	b.ReportMetric(objects, "objects/entry")
	b.ReportMetric(counted, "counted-B/entry") // what response_cache_mb is held to
}

// heapGrowth returns the live heap, in bytes and objects, that fill adds:
// the heap is collected before and after it.
func heapGrowth(fill func()) (bytes, objects int64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fill()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc), int64(after.HeapObjects) - int64(before.HeapObjects)
}

// A response cache entry is 96 bytes at most (entryOverhead counts it):
// this does not compile when a field makes it larger.
var _ [96 - unsafe.Sizeof(cacheEntry{})]struct{}

// A resolved answer's entry is 128 bytes at most, a size class of its own
// (resolvedOverhead counts what it adds to the entry): this does not
// compile when a field makes it larger.
var _ [128 - unsafe.Sizeof(resolvedEntry{})]struct{}
