package test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// registryZones is the number of zones the registry tests hold: enough
// that anything done per zone on the path of one change shows, small
// enough for CI.
const registryZones = 5000

// bulkImportTimeout bounds one bulk import of generated zones.
const bulkImportTimeout = 2 * time.Minute

// writeRegistryZones writes n small institution zones, z<i>.gov.test., as
// zone files named after their origins in a new directory, and returns it.
func writeRegistryZones(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		origin := fmt.Sprintf("z%d.gov.test.", i)
		text := fmt.Sprintf("$ORIGIN %s\n$TTL 3600\n@ SOA ns1.gov.test. hostmaster.gov.test. 1 7200 900 1209600 300\n"+
			"@ NS ns1.gov.test.\n@ NS ns2.gov.test.\n@ MX 10 mail\nwww A 192.0.2.%d\nwww AAAA 2001:db8::%x\nmail A 192.0.2.25\nportal CNAME www\n",
			origin, i%250+1, i)
		if err := os.WriteFile(filepath.Join(dir, origin+"zone"), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// notifyCounter is a secondary that acknowledges every NOTIFY and notes
// the zones notified, in the order they first came.
type notifyCounter struct {
	addr  string
	mu    sync.Mutex
	seen  map[string]int // zone -> NOTIFYs received
	order []string
}

func startNotifyCounter(t *testing.T) *notifyCounter {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &notifyCounter{addr: pc.LocalAddr().String(), seen: map[string]int{}}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if req.Opcode != dns.OpcodeNotify || len(req.Question) != 1 {
			return
		}
		name := strings.ToLower(req.Question[0].Name)
		f.mu.Lock()
		if f.seen[name] == 0 {
			f.order = append(f.order, name)
		}
		f.seen[name]++
		f.mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ActivateAndServe() }()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the counting secondary did not start")
	}
	t.Cleanup(func() { _ = srv.Shutdown(); <-done })
	return f
}

// zones returns how many zones were notified.
func (f *notifyCounter) zones() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

// position is where zone came in the order of the zones first notified
// (-1: never).
func (f *notifyCounter) position(zone string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Index(f.order, zone)
}

// count is how many NOTIFYs zone got.
func (f *notifyCounter) count(zone string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[zone]
}

// registryNode imports n generated zones with one bulk import and serves
// them as a primary that publishes a catalog and notifies sec.
func registryNode(t *testing.T, n int, sec string) (*server, string) {
	t.Helper()
	dataDir := t.TempDir()
	if n > 0 {
		// Thousands of zones, with the race detector, beside the other
		// tests: the bound is a hang guard, not a measure (the import
		// takes about a second alone; 16 s for 4,000 files was seen on
		// a loaded machine).
		mustCLIWithin(t, bulkImportTimeout, fastExit(), "zone", "import", writeRegistryZones(t, n), "--data-dir", dataDir)
	}
	conf := fmt.Sprintf("demo_zone: false\nudp_sockets: 1\nprimary:\n  notify: [%q]\n  notify_start_rate: 5000\ncatalog:\n  zone: %s\n",
		sec, catalogName)
	return startOn(t, "127.0.0.1:0", dataDir, conf), dataDir
}

// TestRegistryNotifyAtStart: a primary of a few thousand zones notifies
// every one of them at start, the catalog first, and none is dropped;
// sovdns status stays one screen.
func TestRegistryNotifyAtStart(t *testing.T) {
	t.Parallel()
	sec := startNotifyCounter(t)
	s, dataDir := registryNode(t, registryZones, sec.addr)
	want := registryZones + 1 // and the catalog
	waitUntil(t, 60*time.Second, fmt.Sprintf("NOTIFY for each of the %d zones", want),
		func() bool { return sec.zones() == want },
		func() string { return fmt.Sprintf("%d zones notified\n%s", sec.zones(), s.log) })
	// The catalog goes out a second before the others.
	if i := sec.position(catalogName); i != 0 {
		t.Errorf("the catalog %s arrived as NOTIFY number %d; want the first", catalogName, i+1)
	}
	// The summary counts the zones after the catalog.
	if !regexp.MustCompile(fmt.Sprintf(`msg="notifying the secondaries of every primary zone" zones=%d `, registryZones)).MatchString(s.log.String()) {
		t.Errorf("no summary line for the NOTIFYs at start:\n%s", s.log)
	}
	if n := strings.Count(s.log.String(), "zone loaded"); n > 1 {
		t.Errorf("%d lines about loaded zones at start; want one summary", n)
	}
	if v := metricValue(t, s, "sovdns_zones_loaded", map[string]string{}); v != float64(want) {
		t.Errorf("sovdns_zones_loaded %v; want %d", v, want)
	}
	st := mustCLI(t, fastExit(), "status", "--data-dir", dataDir)
	if lines := strings.Count(st.stdout, "\n"); lines > 60 {
		t.Errorf("sovdns status is %d lines with %d zones; want at most 60:\n%s", lines, want, st.stdout)
	}
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^zones:\s+%d$`, want)).MatchString(st.stdout) {
		t.Errorf("sovdns status does not count the zones:\n%s", st.stdout)
	}

	// A new zone is one change of the catalog, which is notified again.
	catalogBefore := sec.count(catalogName)
	mustCLI(t, fastExit(), "zone", "create", "new.gov.test", "--ns", "ns1.gov.test", "--data-dir", dataDir)
	waitUntil(t, 20*time.Second, "NOTIFY of the new zone and of the catalog again",
		func() bool { return sec.count("new.gov.test.") > 0 && sec.count(catalogName) > catalogBefore },
		func() string { return s.log.String() })
}

// editCost returns a function that measures the memory the server at s
// allocates for one record added to zone z0.gov.test. (from the Go
// runtime's count of bytes allocated, over edits record adds from the
// CLI, each of a new name).
func editCost(t *testing.T, s *server, dataDir string) func(edits int) float64 {
	next := 0
	return func(edits int) float64 {
		t.Helper()
		before := metricValue(t, s, "go_memstats_alloc_bytes_total", map[string]string{})
		for range edits {
			mustCLI(t, fastExit(), "record", "add", "z0.gov.test", fmt.Sprintf("e%d 3600 A 192.0.2.%d", next, next%250+1), "--data-dir", dataDir)
			next++
		}
		after := metricValue(t, s, "go_memstats_alloc_bytes_total", map[string]string{})
		return (after - before) / float64(edits)
	}
}

// TestRegistryEditCost: what one edit costs the running server stays
// bounded as the number of zones it holds grows, measured as the memory
// the server allocates per edit (the Go runtime's count), with 10 and
// 5,000 zones: 40 to 190 kB either way (an edit copies one shard, about
// 128 zones, of each persistent set of zones, whatever their number; the
// rest is the edit itself and, on a loaded machine, retried NOTIFYs). A
// commit that did work of some hundred bytes for every zone fails it:
// setting a metric per zone, as one did before, allocates megabytes at
// 5,000 zones. Work of a few bytes per zone does not show: sorting the
// zones on every commit adds about 130 kB (4.6x on an idle machine).
func TestRegistryEditCost(t *testing.T) {
	t.Parallel()
	sec := startNotifyCounter(t)
	costs := map[int]float64{}
	for _, n := range []int{10, registryZones} {
		s, dataDir := registryNode(t, n, sec.addr)
		// Let the start settle: every zone notified, nothing pending.
		waitUntil(t, 60*time.Second, "the NOTIFYs of the start",
			func() bool {
				return sec.count(fmt.Sprintf("z%d.gov.test.", n-1)) > 0 && metricValue(t, s, "sovdns_notify_pending", map[string]string{}) == 0
			},
			func() string { return s.log.String() })
		cost := editCost(t, s, dataDir)
		cost(3) // warm up
		// The least of three rounds: what else the server does meanwhile
		// (timers, the metrics scrapes) only adds.
		costs[n] = min(cost(10), cost(10), cost(10))
		t.Logf("%d zones: %.0f bytes allocated per edit", n, costs[n])
		s.stop(t)
	}
	if ratio := costs[registryZones] / costs[10]; ratio > 8 {
		t.Errorf("an edit with %d zones allocates %.2fx what it does with 10 (%.0f against %.0f bytes); want at most 8x",
			registryZones, ratio, costs[registryZones], costs[10])
	}
}
