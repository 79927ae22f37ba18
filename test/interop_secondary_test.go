package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// NSD and Knot as secondaries of a sovdns primary, with TSIG: each takes
// the zone by AXFR when it starts, and every change after that by IXFR when
// sovdns NOTIFYs it. sovdns listens on a port of 127.0.0.1 the kernel
// picks, NSD and Knot each on an address of its own (newAddr).

// secondaryUnderTest is a running NSD or Knot, with its log.
type secondaryUnderTest struct {
	addr string
	log  *logBuffer
}

// interopPrimary starts a sovdns primary of testZone on 127.0.0.1 that
// notifies notify ("IP:port key:xfr").
func interopPrimary(t *testing.T, notify string) *server {
	t.Helper()
	dir := t.TempDir()
	importZone(t, dir, testZone)
	return startServer(t, serveOpts{dataDir: dir,
		config: "demo_zone: false\nudp_sockets: 1\n" + primaryConfig("127.0.0.0/8", notify),
		args:   []string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-level", "debug"}})
}

// interopEdits changes the zone at the primary twice through dynamic
// UPDATE and waits, bounded, until the secondary answers the last change.
// It returns the serial the zone then has.
func interopEdits(t *testing.T, primary *server, sec *secondaryUnderTest) uint32 {
	t.Helper()
	nsupdate := requireTool(t, "nsupdate")
	mustNsupdate(t, nsupdate, primary.dns, "update add interop1.example.com. 300 IN A 192.0.2.101\nupdate delete old.example.com. A\n")
	mustNsupdate(t, nsupdate, primary.dns, "update add interop2.example.com. 300 IN TXT \"second\"\nupdate delete www.example.com. AAAA\n")
	soa := exchange(t, "udp", primary.dns, newQuery("example.com.", dns.TypeSOA))
	want := soa.Answer[0].(*dns.SOA).Serial
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 0; attempt < 200 && time.Now().Before(deadline); attempt++ {
		r := exchange(t, "udp", sec.addr, newQuery("example.com.", dns.TypeSOA))
		if len(r.Answer) == 1 && r.Answer[0].(*dns.SOA).Serial == want {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	checks := []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{name: "example.com.", qtype: dns.TypeSOA, want: []string{soaText(want)}},
		{name: "interop1.example.com.", qtype: dns.TypeA, want: []string{"interop1.example.com.\t300\tIN\tA\t192.0.2.101"}},
		{name: "interop2.example.com.", qtype: dns.TypeTXT, want: []string{"interop2.example.com.\t300\tIN\tTXT\t\"second\""}},
		{name: "old.example.com.", qtype: dns.TypeA},
		{name: "www.example.com.", qtype: dns.TypeAAAA},
		{name: "www.example.com.", qtype: dns.TypeA, want: []string{"www.example.com.\t3600\tIN\tA\t192.0.2.10"}},
	}
	for _, c := range checks {
		r := exchange(t, "udp", sec.addr, newQuery(c.name, c.qtype))
		if got := rrTexts(r.Answer); strings.Join(got, "\n") != strings.Join(c.want, "\n") || !r.Authoritative {
			t.Errorf("the secondary answers %s %s with %q (AA %v), want %q", c.name, dns.Type(c.qtype), got, r.Authoritative, c.want)
		}
	}
	return want
}

// checkTransfersServed checks the primary's count of transfers: the first
// by AXFR, the changes by IXFR. A transfer is counted once its last message
// is written, which the secondary may have read and served already: the
// counts are read until they are as wanted, or a bound.
func checkTransfersServed(t *testing.T, primary *server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var errs []string
		samples := parseSamples(t, scrape(t, primary.metrics))
		for _, typ := range []string{"AXFR", "IXFR"} {
			if v, _ := find(samples, "sovdns_transfers_out_total", map[string]string{"zone": "example.com.", "type": typ, "result": "ok"}); v < 1 {
				errs = append(errs, fmt.Sprintf("sovdns_transfers_out_total{type=%q,result=\"ok\"} = %v, want at least 1", typ, v))
			}
		}
		if v, _ := find(samples, "sovdns_notify_sent_total", map[string]string{"zone": "example.com.", "result": "acked"}); v < 2 {
			errs = append(errs, fmt.Sprintf("sovdns_notify_sent_total{result=\"acked\"} = %v, want at least 2", v))
		}
		if len(errs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Error(strings.Join(errs, "\n"))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSecondaryNSD(t *testing.T) {
	nsdBin := requireTool(t, "nsd", "/usr/sbin/nsd")
	requireTool(t, "nsupdate")
	addr := newAddr(t)
	primary := interopPrimary(t, addr+" key:xfr")
	pHost, pPort, _ := strings.Cut(primary.dns, ":")
	dir := t.TempDir()
	zones := fmt.Sprintf(`key:
    name: "xfr"
    algorithm: hmac-sha256
    secret: %q
zone:
    name: "example.com"
    zonefile: "example.com.zone"
    request-xfr: %s@%s xfr
    allow-notify: 127.0.0.0/8 xfr
`, replXfrSecret, pHost, pPort)
	confPath := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(confPath, []byte(nsdConf(addr, dir, zones)), 0o600); err != nil {
		t.Fatal(err)
	}
	// runNSD waits until NSD answers the zone: the AXFR is done.
	if ok, log := runNSD(t, nsdBin, confPath, addr, "example.com."); !ok {
		t.Fatalf("NSD did not start and transfer the zone:\n%s", log)
	}
	interopEdits(t, primary, &secondaryUnderTest{addr: addr})
	checkTransfersServed(t, primary)
}

func TestSecondaryKnot(t *testing.T) {
	knotd := requireTool(t, "knotd", "/usr/sbin/knotd")
	requireTool(t, "nsupdate")
	addr := newAddr(t)
	primary := interopPrimary(t, addr+" key:xfr")
	pHost, pPort, _ := strings.Cut(primary.dns, ":")
	ip, port, _ := strings.Cut(addr, ":")
	sec, log, ok := runKnot(t, knotd, ip, port, pHost+"@"+pPort)
	if !ok {
		t.Fatalf("Knot did not start and transfer the zone:\n%s", log)
	}
	serial := interopEdits(t, primary, sec)
	checkTransfersServed(t, primary)
	// Knot says how it took each change: the first by AXFR, the edits by
	// IXFR, never falling back to AXFR.
	text := sec.log.String()
	for _, want := range []string{
		"AXFR, incoming, remote " + pHost + "@" + pPort + ", finished",
		"IXFR, incoming, remote " + pHost + "@" + pPort + ", finished",
		fmt.Sprintf("-> %d", serial),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Knot's log lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "fallback to AXFR") {
		t.Errorf("Knot fell back to AXFR:\n%s", text)
	}
}

// runKnot runs knotd in the foreground on ip:port as a secondary of
// example.com from primary (IP@port), with key xfr, its files in a
// temporary directory. It waits, bounded, until Knot answers the zone with
// AA (its first transfer done); it reports false with Knot's log if Knot
// exits or never answers. On cleanup it stops Knot.
func runKnot(t *testing.T, knotd, ip, port, primary string) (*secondaryUnderTest, string, bool) {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	if err := os.MkdirAll(db, 0o750); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`server:
    rundir: %[1]q
    pidfile: %[2]q
    listen: %[3]s@%[4]s
log:
  - target: stderr
    any: info
database:
    storage: %[5]q
control:
    listen: %[6]q
key:
  - id: xfr
    algorithm: hmac-sha256
    secret: %[7]s
remote:
  - id: primary
    address: %[8]s
    key: xfr
acl:
  - id: notify_from_primary
    address: 127.0.0.0/8
    key: xfr
    action: notify
template:
  - id: default
    storage: %[5]q
    zonefile-sync: -1
zone:
  - domain: example.com
    master: primary
    acl: notify_from_primary
`, dir, filepath.Join(dir, "knot.pid"), ip, port, db, filepath.Join(dir, "knot.sock"), replXfrSecret, primary)
	confPath := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, knotd, "-c", confPath)
	addr := ip + ":" + port
	if !d.waitSOA(t, addr, "example.com.", false) {
		d.stop()
		return nil, d.log.String(), false
	}
	t.Cleanup(d.stop)
	return &secondaryUnderTest{addr: addr, log: d.log}, "", true
}
