package test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// xfrSecret is the TSIG secret (hmac-sha256) of the key "xfr" shared by
// the primaries and secondaries of these tests.
const xfrSecret = "eGZyLWtleS1mb3Itc292ZG5zLXNlY29uZGFyeS10ZXN0cw=="

// xfrZone is the zone the secondary tests transfer: serial, plus extra
// lines. It has enough records for a transfer of several messages.
func xfrZone(serial uint32, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN example.com.\n$TTL 3600\n@ SOA ns1 hostmaster %d 3600 600 1209600 300\n@ NS ns1\n@ NS ns2\n"+
		"ns1 A 192.0.2.1\nns2 A 192.0.2.2\nwww A 192.0.2.10\n", serial)
	for i := range 2000 {
		fmt.Fprintf(&b, "h%04d A 198.51.100.%d\nh%04d TXT \"host %d of the bulk of this zone\"\n", i, i%250+1, i, i)
	}
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	return b.String()
}

// secondaryConfig is the configuration of a sovdns secondary of zone
// (catalog: a catalog zone) from primary, with the key xfr.
func secondaryConfig(zone, primary string, catalog bool) string {
	return fmt.Sprintf("demo_zone: false\nudp_sockets: 1\ntsig_keys:\n  - {name: xfr, secret: %s}\n"+
		"secondary:\n  - zone: %s\n    primaries: [%q]\n    key: xfr\n    catalog: %v\n", xfrSecret, zone, primary, catalog)
}

// notifyingAddr is where a sovdns primary that notifies sovdns secondaries
// listens: a port of 127.0.0.1 the kernel picks and that no other socket
// can share. sovdns sends NOTIFY from the address the kernel picks for the
// destination, 127.0.0.1 on loopback, and a secondary accepts NOTIFY only
// from its primary's address.
const notifyingAddr = "127.0.0.1:0"

// startOn starts sovdns with config on addr (DNS), metrics on a free port.
func startOn(t *testing.T, addr, dataDir, config string) *server {
	t.Helper()
	return startServer(t, serveOpts{dataDir: dataDir, config: config, env: fastExit(),
		args: []string{"--listen", addr, "--metrics-listen", "127.0.0.1:0"}})
}

// serialAt returns the serial of zone's SOA at addr, with the rcode of
// the answer (the serial is 0 unless NOERROR with AA).
func serialAt(t *testing.T, addr, zone string) (uint32, int) {
	t.Helper()
	r := exchange(t, "udp", addr, newQuery(zone, dns.TypeSOA))
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		return 0, r.Rcode
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, r.Rcode
		}
	}
	return 0, r.Rcode
}

// waitSerial waits, bounded by d, until addr serves zone with serial.
func waitSerial(t *testing.T, s *server, zone string, serial uint32, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	var got uint32
	var rcode int
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		if got, rcode = serialAt(t, s.dns, zone); got == serial {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s still at serial %d (%s) after %v, want %d\nlog:\n%s", s.dns, zone, got, dns.RcodeToString[rcode], d, serial, s.log)
}

// waitRcode waits, bounded by d, until addr answers zone's SOA with rcode.
func waitRcode(t *testing.T, s *server, zone string, rcode int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	var got int
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		if _, got = serialAt(t, s.dns, zone); got == rcode {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s answered %s after %v, want %s\nlog:\n%s", s.dns, zone, dns.RcodeToString[got], d, dns.RcodeToString[rcode], s.log)
}

// transfersIn returns sovdns_transfers_in_total{zone,type,result} of s.
func transfersIn(t *testing.T, s *server, zone, typ, result string) float64 {
	t.Helper()
	v, _ := find(parseSamples(t, scrape(t, s.metrics)), "sovdns_transfers_in_total",
		map[string]string{"zone": zone, "type": typ, "result": result})
	return v
}

// transfersInReach returns transfersIn once it is at least want, or after
// a bound: a transfer is counted just after its zone is committed, so the
// count can trail the serial served by a moment.
func transfersInReach(t *testing.T, s *server, zone, typ, result string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := transfersIn(t, s, zone, typ, result)
		if got >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkAnswer checks that s answers qname/qtype with exactly want.
func checkAnswer(t *testing.T, s *server, qname string, qtype uint16, want ...string) {
	t.Helper()
	r := exchange(t, "tcp", s.dns, newQuery(qname, qtype))
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		t.Errorf("%s %s at %s: %s AA=%v", qname, dns.TypeToString[qtype], s.dns, dns.RcodeToString[r.Rcode], r.Authoritative)
	}
	wantRRs(t, qname+" answer", r.Answer, want...)
}

// knotServer is a running knotd.
type knotServer struct {
	addr  string
	conf  string
	dir   string
	knotc string
	log   *logBuffer
}

// startKnot runs knotd on addr (IP:port, from newAddr) with zones (the
// knot.conf zone section; templates, when not empty, are more items of the
// template section, in which {dir} stands for Knot's directory) and the
// files of files in its own directory, and waits until it answers
// waitZone's SOA (any query, when waitZone is empty). The TSIG key xfr, an
// ACL "xfr" allowing transfers and NOTIFY signed with it, and a remote
// "sovdns" at sovdnsAddr are defined; Knot talks to that remote from its
// own address, so its NOTIFYs come from the address sovdns knows it by.
func startKnot(t *testing.T, addr, sovdnsAddr, templates, zones string, files map[string]string, waitZone string) *knotServer {
	t.Helper()
	knotd := requireTool(t, "knotd", "/usr/sbin/knotd")
	knotc := requireTool(t, "knotc", "/usr/sbin/knotc")
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	host, sport, _ := strings.Cut(sovdnsAddr, ":")
	ip, port, _ := strings.Cut(addr, ":")
	templates = strings.ReplaceAll(templates, "{dir}", dir)
	conf := fmt.Sprintf(`server:
    rundir: %[1]q
    listen: %[9]s@%[2]s
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: %[1]q
control:
    listen: %[3]q
log:
  - target: stderr
    any: info
key:
  - id: xfr
    algorithm: hmac-sha256
    secret: %[4]s
remote:
  - id: sovdns
    address: %[5]s@%[6]s
    via: %[9]s
    key: xfr
acl:
  - id: xfr
    address: 127.0.0.0/8
    key: xfr
    action: [transfer, notify]
template:
  - id: default
    storage: %[1]q
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: changes
%[8]s
%[7]s`, dir, port, filepath.Join(dir, "knot.sock"), xfrSecret, host, sport, zones, templates, ip)
	confPath := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, knotd, "-c", confPath)
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("knotd log:\n%s", d.log)
		}
	})
	k := &knotServer{addr: addr, conf: confPath, dir: dir, knotc: knotc, log: d.log}
	if !d.waitSOA(t, k.addr, cmp.Or(waitZone, "."), waitZone == "") {
		t.Fatalf("knotd did not answer for %s within %v, or exited:\n%s", waitZone, startTimeout, d.log)
	}
	return k
}

// control runs knotc with args against k.
func (k *knotServer) control(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, k.knotc, append([]string{"-c", k.conf}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("knotc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestSecondaryOfKnot: sovdns is a secondary of a Knot DNS primary, with
// TSIG: AXFR first, then, after Knot reloads a changed zone and NOTIFYs,
// IXFR.
func TestSecondaryOfKnot(t *testing.T) {
	t.Parallel()
	sovdnsAddr := newAddr(t)
	k := startKnot(t, newAddr(t), sovdnsAddr, "",
		"zone:\n  - domain: example.com\n    file: example.com.zone\n    notify: sovdns\n    acl: xfr\n",
		map[string]string{"example.com.zone": xfrZone(1)}, "example.com.")
	s := startOn(t, sovdnsAddr, "", secondaryConfig("example.com", k.addr, false))
	waitSerial(t, s, "example.com.", 1, 20*time.Second)
	checkAnswer(t, s, "h0042.example.com.", dns.TypeA, "h0042.example.com. 3600 IN A 198.51.100.43")
	if got := transfersInReach(t, s, "example.com.", "AXFR", "success", 1); got != 1 {
		t.Errorf("AXFR successes %v, want 1", got)
	}

	if err := os.WriteFile(filepath.Join(k.dir, "example.com.zone"), []byte(xfrZone(2, "new A 192.0.2.77", "www TXT \"changed\"")), 0o600); err != nil {
		t.Fatal(err)
	}
	k.control(t, "zone-reload", "example.com")
	waitSerial(t, s, "example.com.", 2, 20*time.Second)
	checkAnswer(t, s, "new.example.com.", dns.TypeA, "new.example.com. 3600 IN A 192.0.2.77")
	checkAnswer(t, s, "www.example.com.", dns.TypeTXT, "www.example.com. 3600 IN TXT \"changed\"")
	if got := transfersInReach(t, s, "example.com.", "IXFR", "success", 1); got != 1 {
		t.Errorf("IXFR successes %v, want 1\nlog:\n%s", got, s.log)
	}
	if got := transfersIn(t, s, "example.com.", "AXFR", "success"); got != 1 {
		t.Errorf("AXFR successes %v, want still 1", got)
	}
}

// TestSecondaryOfNSD: sovdns is a secondary of an NSD primary, with TSIG
// (NSD 4.6 sends no IXFR: the changed zone comes whole).
func TestSecondaryOfNSD(t *testing.T) {
	t.Parallel()
	nsdBin := requireTool(t, "nsd", "/usr/sbin/nsd")
	dir := t.TempDir()
	zonePath := filepath.Join(dir, "example.com.zone")
	if err := os.WriteFile(zonePath, []byte(xfrZone(1)), 0o600); err != nil {
		t.Fatal(err)
	}
	sovdnsAddr := newAddr(t)
	host, sport, _ := strings.Cut(sovdnsAddr, ":")
	nsdAddr := newAddr(t)
	nsdIP, _, _ := strings.Cut(nsdAddr, ":")
	// NSD sends its NOTIFY from its own address (outgoing-interface), the
	// one sovdns knows it by.
	zones := fmt.Sprintf("key:\n    name: \"xfr\"\n    algorithm: hmac-sha256\n    secret: %q\n"+
		"zone:\n    name: \"example.com\"\n    zonefile: \"example.com.zone\"\n    provide-xfr: 127.0.0.0/8 xfr\n    notify: %s@%s xfr\n    outgoing-interface: %s\n",
		xfrSecret, host, sport, nsdIP)
	confPath := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(confPath, []byte(nsdConf(nsdAddr, dir, zones)), 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, log := runNSD(t, nsdBin, confPath, nsdAddr, "example.com."); !ok {
		t.Fatalf("NSD did not start:\n%s", log)
	}
	s := startOn(t, sovdnsAddr, "", secondaryConfig("example.com", nsdAddr, false))
	waitSerial(t, s, "example.com.", 1, 20*time.Second)
	checkAnswer(t, s, "h1999.example.com.", dns.TypeTXT, "h1999.example.com. 3600 IN TXT \"host 1999 of the bulk of this zone\"")

	// NSD rereads a changed zone file on SIGHUP and NOTIFYs.
	if err := os.WriteFile(zonePath, []byte(xfrZone(2, "new A 192.0.2.77")), 0o600); err != nil {
		t.Fatal(err)
	}
	pid, err := os.ReadFile(filepath.Join(dir, "nsd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err != nil {
		t.Fatalf("nsd.pid: %v", err)
	}
	if err := syscall.Kill(p, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitSerial(t, s, "example.com.", 2, 20*time.Second)
	checkAnswer(t, s, "new.example.com.", dns.TypeA, "new.example.com. 3600 IN A 192.0.2.77")
}

// TestSecondariesOfSovdns: a sovdns primary and two sovdns secondaries on
// loopback stay in step through NOTIFY and IXFR; a secondary stopped
// during several edits catches up when it starts again.
func TestSecondariesOfSovdns(t *testing.T) {
	t.Parallel()
	s1Addr, s2Addr := newAddr(t), newAddr(t)
	pDir := t.TempDir()
	importZone(t, pDir, xfrZone(1))
	pConf := fmt.Sprintf("demo_zone: false\nudp_sockets: 1\ntsig_keys:\n  - {name: xfr, secret: %s}\n"+
		"primary:\n  allow_transfer: [\"127.0.0.0/8 key:xfr\"]\n  notify: [\"%s key:xfr\", \"%s key:xfr\"]\n", xfrSecret, s1Addr, s2Addr)
	p := startOn(t, notifyingAddr, pDir, pConf)
	pAddr := p.dns
	s1 := startOn(t, s1Addr, "", secondaryConfig("example.com", pAddr, false))
	s2Dir := t.TempDir()
	s2 := startOn(t, s2Addr, s2Dir, secondaryConfig("example.com", pAddr, false))
	for _, s := range []*server{s1, s2} {
		waitSerial(t, s, "example.com.", 1, 20*time.Second)
	}

	edit := func(rr string) uint32 {
		t.Helper()
		mustCLI(t, fastExit(), "record", "add", "example.com", rr, "--data-dir", pDir)
		serial, rcode := serialAt(t, p.dns, "example.com.")
		if rcode != dns.RcodeSuccess {
			t.Fatalf("primary: %s", dns.RcodeToString[rcode])
		}
		return serial
	}
	serial := edit("e1 A 192.0.2.101")
	for _, s := range []*server{s1, s2} {
		waitSerial(t, s, "example.com.", serial, 20*time.Second)
		checkAnswer(t, s, "e1.example.com.", dns.TypeA, "e1.example.com. 3600 IN A 192.0.2.101")
	}

	s2.stop(t)
	for i := 2; i <= 4; i++ {
		serial = edit(fmt.Sprintf("e%d A 192.0.2.%d", i, 100+i))
		waitSerial(t, s1, "example.com.", serial, 20*time.Second)
	}
	s2 = startOn(t, s2Addr, s2Dir, secondaryConfig("example.com", pAddr, false))
	waitSerial(t, s2, "example.com.", serial, 20*time.Second)
	for _, s := range []*server{s1, s2} {
		checkAnswer(t, s, "e4.example.com.", dns.TypeA, "e4.example.com. 3600 IN A 192.0.2.104")
		checkAnswer(t, s, "e2.example.com.", dns.TypeA, "e2.example.com. 3600 IN A 192.0.2.102")
	}
	// The restarted secondary caught up by IXFR, not a new AXFR.
	if got := transfersInReach(t, s2, "example.com.", "IXFR", "success", 1); got != 1 {
		t.Errorf("restarted secondary: IXFR successes %v, want 1\nlog:\n%s", got, s2.log)
	}
	if got := transfersIn(t, s2, "example.com.", "AXFR", "success"); got != 0 {
		t.Errorf("restarted secondary: AXFR successes %v, want 0", got)
	}
	if got := transfersInReach(t, s1, "example.com.", "IXFR", "success", 4); got != 4 {
		t.Errorf("secondary 1: IXFR successes %v, want 4", got)
	}
	// Edits of a secondary copy are refused.
	r := runCLI(t, fastExit(), "record", "add", "example.com", "x A 192.0.2.1", "--data-dir", s2Dir)
	if r.code == 0 {
		t.Errorf("an edit of a secondary copy succeeded")
	}
}

// TestSecondaryExpires: a secondary whose primary stays away past the SOA
// expire time stops serving the zone, and serves it again once the
// primary is back.
func TestSecondaryExpires(t *testing.T) {
	t.Parallel()
	pAddr := newAddr(t) // the primary restarts there
	pDir := t.TempDir()
	// refresh 2s, retry 2s, expire 10s (the shortest sovdns honours)
	importZone(t, pDir, "$ORIGIN example.com.\n$TTL 60\n@ SOA ns1 hostmaster 1 2 2 10 60\n@ NS ns1\nns1 A 192.0.2.1\n")
	pConf := fmt.Sprintf("demo_zone: false\nudp_sockets: 1\ntsig_keys:\n  - {name: xfr, secret: %s}\n"+
		"primary:\n  allow_transfer: [\"127.0.0.0/8 key:xfr\"]\n", xfrSecret)
	p := startOn(t, pAddr, pDir, pConf)
	s := startServer(t, serveOpts{config: secondaryConfig("example.com", pAddr, false), env: fastExit(), errorsExpected: true})
	waitSerial(t, s, "example.com.", 1, 20*time.Second)
	expired := func() float64 {
		v, _ := find(parseSamples(t, scrape(t, s.metrics)), "sovdns_secondary_expired", map[string]string{"zone": "example.com."})
		return v
	}
	if v, ok := find(parseSamples(t, scrape(t, s.metrics)), "sovdns_secondary_last_refresh_timestamp_seconds",
		map[string]string{"zone": "example.com."}); !ok || v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last refresh metric %v (present: %v)", v, ok)
	}

	p.stop(t)
	waitRcode(t, s, "example.com.", dns.RcodeRefused, 30*time.Second)
	if v := expired(); v != 1 {
		t.Errorf("sovdns_secondary_expired = %v while expired, want 1", v)
	}
	startOn(t, pAddr, pDir, pConf)
	waitSerial(t, s, "example.com.", 1, 20*time.Second)
	if v := expired(); v != 0 {
		t.Errorf("sovdns_secondary_expired = %v after recovery, want 0", v)
	}
	if !strings.Contains(s.log.String(), "secondary zone expired") {
		t.Errorf("the expiry was not logged:\n%s", s.log)
	}
}
