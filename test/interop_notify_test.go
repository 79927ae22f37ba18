package test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/testaddr"
)

// Replication as NSD, Knot and BIND are usually configured: a primary
// that NOTIFYs from another of its addresses than the one it serves
// transfers on (NSD outgoing-interface, Knot via), a secondary whose
// access list names the one address NOTIFYs must come from (sovdns
// notify_source), NOTIFY over TCP, SOA queries and transfers from
// transfer_source, refresh and retransfer on request, and an expire time
// shorter than the SOA's refresh.
//
// Every test has loopback addresses of its own, 127.A.B.1 and up in a /24
// of its own (testaddr.NewBlock; Linux routes all of 127/8 to lo), and one
// port outside the ephemeral range that is free on each of them for UDP
// and TCP (testaddr.Port).

// replNet is a test's own loopback addresses and port.
type replNet struct {
	block testaddr.Block
	port  int
}

// newReplNet takes a /24 of the test's own and a port free on its first n
// addresses. The addresses are the test's alone, so the port stays free
// for the servers it starts.
func newReplNet(t *testing.T, n int) *replNet {
	t.Helper()
	r := &replNet{block: testaddr.NewBlock()}
	ips := make([]netip.Addr, n)
	for i := range ips {
		ips[i] = r.block.IP(byte(i + 1))
	}
	r.port = int(testaddr.Port(t, ips...))
	return r
}

// ip is the i-th address (from 1); addr is it with the port, at is it in
// NSD's and Knot's IP@port form.
func (r *replNet) ip(i int) string   { return r.block.IP(byte(i)).String() }
func (r *replNet) addr(i int) string { return net.JoinHostPort(r.ip(i), fmt.Sprint(r.port)) }
func (r *replNet) at(i int) string   { return fmt.Sprintf("%s@%d", r.ip(i), r.port) }

// smallZone is example.com at serial, refresh an hour (no check by the
// timers while a test runs), with extra lines.
func smallZone(serial uint32, extra ...string) string {
	return fmt.Sprintf("$ORIGIN example.com.\n$TTL 3600\n@ SOA ns1 hostmaster %d 3600 600 1209600 300\n@ NS ns1\n@ NS ns2\n"+
		"ns1 A 192.0.2.1\nns2 A 192.0.2.2\nwww A 192.0.2.10\n%s", serial, strings.Join(extra, "\n")+"\n")
}

// metricValue is the value of a sample of s's metrics, 0 when absent.
func metricValue(t *testing.T, s *server, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := find(parseSamples(t, scrape(t, s.metrics)), name, labels)
	return v
}

// waitUntil polls cond every 100ms, for at most d, and fails the test
// with what and more() when it never holds.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool, more func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for i := 0; i < 10000 && time.Now().Before(deadline); i++ {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v\n%s", what, d, more())
}

// sovdnsSecondary starts sovdns on addr as a secondary of example.com from
// primary (IP:port) with the key xfr, SOA queries and transfers from
// source, and the allow_notify entries given; debug logs.
func sovdnsSecondary(t *testing.T, addr, primary, source string, allowNotify []string, extra string) *server {
	t.Helper()
	allow := "[]"
	if len(allowNotify) > 0 {
		allow = `["` + strings.Join(allowNotify, `", "`) + `"]`
	}
	conf := fmt.Sprintf("demo_zone: false\nudp_sockets: 1\ntsig_keys:\n  - {name: xfr, secret: %s}\n"+
		"secondary:\n  - zone: example.com\n    primaries: [%q]\n    key: xfr\n    transfer_source: [%s]\n    allow_notify: %s\n%s",
		xfrSecret, primary, source, allow, extra)
	return startServer(t, serveOpts{config: conf, env: fastExit(),
		args: []string{"--listen", addr, "--metrics-listen", "127.0.0.1:0", "--log-level", "debug"}})
}

// notifyingPrimary is NSD or Knot as the primary of example.com: it
// serves and gives transfers on one address, provides transfers only to
// the secondary's transfer_source, and NOTIFYs the secondary from another
// address.
type notifyingPrimary struct {
	name string
	// start runs it on r: serving on address 1, notifying from 2 the
	// secondary at 3 (which transfers from 3), the zone at serial 1.
	start func(t *testing.T, r *replNet) *daemon
	// change makes the zone serial 2 and has the primary NOTIFY.
	change func(t *testing.T)
}

// nsdPrimary is NSD: outgoing-interface sets where NOTIFYs leave from.
func nsdPrimary(t *testing.T) *notifyingPrimary {
	nsdBin := requireTool(t, "nsd", "/usr/sbin/nsd")
	p := &notifyingPrimary{name: "NSD"}
	var d *daemon
	var zonePath string
	p.start = func(t *testing.T, r *replNet) *daemon {
		dir := t.TempDir()
		zonePath = filepath.Join(dir, "example.com.zone")
		if err := os.WriteFile(zonePath, []byte(smallZone(1)), 0o600); err != nil {
			t.Fatal(err)
		}
		zones := fmt.Sprintf("key:\n    name: \"xfr\"\n    algorithm: hmac-sha256\n    secret: %q\n"+
			"zone:\n    name: \"example.com\"\n    zonefile: \"example.com.zone\"\n    provide-xfr: %s xfr\n"+
			"    notify: %s xfr\n    outgoing-interface: %s\n", xfrSecret, r.ip(3), r.at(3), r.ip(2))
		confPath := filepath.Join(dir, "nsd.conf")
		if err := os.WriteFile(confPath, []byte(nsdConf(r.addr(1), dir, zones)), 0o600); err != nil {
			t.Fatal(err)
		}
		d = startDaemon(t, nsdBin, "-d", "-c", confPath)
		t.Cleanup(func() {
			d.stop()
			if t.Failed() {
				t.Logf("NSD log:\n%s", d.log)
			}
		})
		if !d.waitSOA(t, r.addr(1), "example.com.", false) {
			t.Fatalf("NSD did not serve example.com on %s:\n%s", r.addr(1), d.log)
		}
		return d
	}
	p.change = func(t *testing.T) {
		// NSD rereads a changed zone file on SIGHUP and NOTIFYs.
		if err := os.WriteFile(zonePath, []byte(smallZone(2, "new A 192.0.2.77")), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(d.pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// knotPrimary is Knot DNS: the remote's via sets where NOTIFYs leave from.
func knotPrimary(t *testing.T) *notifyingPrimary {
	knotd := requireTool(t, "knotd", "/usr/sbin/knotd")
	knotc := requireTool(t, "knotc", "/usr/sbin/knotc")
	p := &notifyingPrimary{name: "Knot"}
	var dir, confPath string
	p.start = func(t *testing.T, r *replNet) *daemon {
		dir = t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "example.com.zone"), []byte(smallZone(1)), 0o600); err != nil {
			t.Fatal(err)
		}
		conf := fmt.Sprintf(`server:
    rundir: %[1]q
    listen: %[2]s
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: %[1]q
control:
    listen: %[3]q
log:
  - target: stderr
    any: debug
key:
  - id: xfr
    algorithm: hmac-sha256
    secret: %[4]s
remote:
  - id: sovdns
    address: %[5]s
    key: xfr
    via: %[6]s
acl:
  - id: xfr
    address: %[7]s
    key: xfr
    action: transfer
template:
  - id: default
    storage: %[1]q
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: changes
zone:
  - domain: example.com
    file: example.com.zone
    notify: sovdns
    acl: xfr
`, dir, r.at(1), filepath.Join(dir, "knot.sock"), xfrSecret, r.at(3), r.ip(2), r.ip(3))
		confPath = filepath.Join(dir, "knot.conf")
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
		if !d.waitSOA(t, r.addr(1), "example.com.", false) {
			t.Fatalf("knotd did not serve example.com on %s:\n%s", r.addr(1), d.log)
		}
		return d
	}
	p.change = func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(dir, "example.com.zone"), []byte(smallZone(2, "new A 192.0.2.77")), 0o600); err != nil {
			t.Fatal(err)
		}
		runKnotc(t, knotc, confPath, "zone-reload", "example.com")
	}
	return p
}

// runKnotc runs knotc with args against the Knot of conf.
func runKnotc(t *testing.T, knotc, conf string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, knotc, append([]string{"-c", conf}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("knotc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestNotifyFromAnotherAddress: NSD and Knot, as primaries that serve and
// transfer on one address and NOTIFY from another, have sovdns take a
// change at once when allow_notify names that other address. Without it
// the NOTIFY is refused, the copy stays as it was, and sovdns zone refresh
// brings the change. Their ACLs give transfers only to sovdns's
// transfer_source.
func TestNotifyFromAnotherAddress(t *testing.T) {
	t.Parallel()
	for _, newPrimary := range []func(*testing.T) *notifyingPrimary{nsdPrimary, knotPrimary} {
		for _, allowed := range []bool{true, false} {
			p := newPrimary(t)
			t.Run(fmt.Sprintf("%s/allow_notify %v", p.name, allowed), func(t *testing.T) {
				t.Parallel()
				r := newReplNet(t, 3)
				p.start(t, r)
				var allow []string
				if allowed {
					allow = []string{r.ip(2) + "/32"}
				}
				s := sovdnsSecondary(t, r.addr(3), r.addr(1), r.ip(3), allow, "")
				waitSerial(t, s, "example.com.", 1, 20*time.Second)
				p.change(t)
				labels := func(result string) map[string]string {
					return map[string]string{"zone": "example.com.", "result": result}
				}
				if allowed {
					waitSerial(t, s, "example.com.", 2, 20*time.Second)
					checkAnswer(t, s, "new.example.com.", dns.TypeA, "new.example.com. 3600 IN A 192.0.2.77")
					if !strings.Contains(s.log.String(), fmt.Sprintf(`msg="NOTIFY accepted" zone=example.com. client=%s key=xfr.`, r.ip(2))) {
						t.Errorf("no NOTIFY accepted from %s, signed with xfr:\n%s", r.ip(2), s.log)
					}
					if v := metricValue(t, s, "sovdns_notify_received_total", labels("refused")); v != 0 {
						t.Errorf("%v NOTIFYs refused", v)
					}
					return
				}
				// The NOTIFY of serial 2 arrives and is refused; then the
				// copy is still serial 1 (the SOA refresh is an hour).
				refused := fmt.Sprintf(`msg="NOTIFY refused: not from a primary's address, nor from one allow_notify admits" zone=example.com. client=%s`, r.ip(2))
				waitUntil(t, 20*time.Second, "a NOTIFY refused", func() bool {
					return strings.Contains(s.log.String(), refused) && metricValue(t, s, "sovdns_notify_received_total", labels("refused")) >= 1
				}, s.log.String)
				if serial, _ := serialAt(t, s.dns, "example.com."); serial != 1 {
					t.Errorf("serial %d after a refused NOTIFY, want 1", serial)
				}
				if v := metricValue(t, s, "sovdns_notify_received_total", labels("accepted")); v != 0 {
					t.Errorf("%v NOTIFYs accepted", v)
				}
				// The operator's remedy: a check now.
				res := mustCLI(t, fastExit(), "zone", "refresh", "example.com", "--data-dir", s.dataDir)
				if !strings.Contains(res.stdout, "zone example.com.: serial 1 -> 2 by ") || !strings.Contains(res.stdout, " from "+r.addr(1)) {
					t.Errorf("sovdns zone refresh printed %q", res.stdout)
				}
				checkAnswer(t, s, "new.example.com.", dns.TypeA, "new.example.com. 3600 IN A 192.0.2.77")
			})
		}
	}
}

// TestNotifySourceToKnot: Knot as a secondary whose ACL takes NOTIFY only
// from one address of the sovdns primary takes every change at once when
// sovdns sends from that address (notify_source), and answers NOTAUTH
// when it does not.
func TestNotifySourceToKnot(t *testing.T) {
	t.Parallel()
	knotd := requireTool(t, "knotd", "/usr/sbin/knotd")
	for _, withSource := range []bool{true, false} {
		t.Run(fmt.Sprintf("notify_source %v", withSource), func(t *testing.T) {
			t.Parallel()
			// 1: sovdns serves; 2: its notify_source; 3: Knot.
			r := newReplNet(t, 3)
			pDir := t.TempDir()
			importZone(t, pDir, smallZone(1))
			source := ""
			if withSource {
				source = fmt.Sprintf("  notify_source: [%s]\n", r.ip(2))
			}
			pConf := fmt.Sprintf("demo_zone: false\nudp_sockets: 1\ntsig_keys:\n  - {name: xfr, secret: %s}\n"+
				"primary:\n  allow_transfer: [\"127.0.0.0/8 key:xfr\"]\n  notify: [\"%s key:xfr\"]\n%s", xfrSecret, r.addr(3), source)
			p := startServer(t, serveOpts{dataDir: pDir, config: pConf, env: fastExit(),
				args: []string{"--listen", r.addr(1), "--metrics-listen", "127.0.0.1:0", "--log-level", "debug"}})
			k := runKnotSecondary(t, knotd, r)
			mustCLI(t, fastExit(), "record", "add", "example.com", "e1 A 192.0.2.101", "--data-dir", pDir)
			serial, _ := serialAt(t, p.dns, "example.com.")
			if withSource {
				waitUntil(t, 20*time.Second, "Knot at the new serial", func() bool {
					got, _ := serialAt(t, r.addr(3), "example.com.")
					return got == serial
				}, k.log.String)
				if text := k.log.String(); !strings.Contains(text, "notify, incoming, remote "+r.ip(2)+"@") {
					t.Errorf("Knot's log shows no NOTIFY from %s:\n%s", r.ip(2), text)
				}
				return
			}
			// Knot refuses the NOTIFY of the new serial; it stays behind.
			waitUntil(t, 20*time.Second, "Knot refusing the NOTIFY", func() bool {
				for _, l := range strings.Split(p.log.String(), "\n") {
					if strings.Contains(l, "NOTIFY not acknowledged") && strings.Contains(l, fmt.Sprintf("serial=%d", serial)) &&
						strings.Contains(l, "answered NOTAUTH") {
						return true
					}
				}
				return false
			}, p.log.String)
			if got, _ := serialAt(t, r.addr(3), "example.com."); got == serial {
				t.Errorf("Knot took serial %d though it refused the NOTIFY", got)
			}
		})
	}
}

// runKnotSecondary runs Knot on address 3 of r as a secondary of the
// sovdns at address 1, taking NOTIFY (signed with xfr) only from address
// 2, and waits until it has the zone.
func runKnotSecondary(t *testing.T, knotd string, r *replNet) *daemon {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf(`server:
    rundir: %[1]q
    listen: %[2]s
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: %[1]q
control:
    listen: %[3]q
log:
  - target: stderr
    any: debug
key:
  - id: xfr
    algorithm: hmac-sha256
    secret: %[4]s
remote:
  - id: primary
    address: %[5]s
    key: xfr
acl:
  - id: notify_from_source
    address: %[6]s
    key: xfr
    action: notify
template:
  - id: default
    storage: %[1]q
    zonefile-sync: -1
zone:
  - domain: example.com
    master: primary
    acl: notify_from_source
`, dir, r.at(3), filepath.Join(dir, "knot.sock"), xfrSecret, r.at(1), r.ip(2))
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
	if !d.waitSOA(t, r.addr(3), "example.com.", false) {
		t.Fatalf("Knot did not transfer example.com from %s:\n%s", r.addr(1), d.log)
	}
	return d
}

// tcpOnlySecondary takes NOTIFY over TCP only: UDP datagrams are read and
// never answered. It records the source address of each NOTIFY.
type tcpOnlySecondary struct {
	addr string
	mu   sync.Mutex
	udp  int
	tcp  []string // source addresses
}

func startTCPOnlySecondary(t *testing.T, ip string) *tcpOnlySecondary {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	var err error
	for range 20 {
		if ln, err = net.Listen("tcp", net.JoinHostPort(ip, "0")); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", ln.Addr().String()); err == nil {
			break
		}
		ln.Close()
	}
	if err != nil {
		t.Fatalf("no port on %s for UDP and TCP: %v", ip, err)
	}
	f := &tcpOnlySecondary{addr: ln.Addr().String()}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if w.RemoteAddr().Network() != "tcp" {
			f.udp++
			return
		}
		host, _, _ := net.SplitHostPort(w.RemoteAddr().String())
		f.tcp = append(f.tcp, host)
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		_ = w.WriteMsg(m)
	})
	servers := []*dns.Server{{Listener: ln, Handler: h}, {PacketConn: pc, Handler: h}}
	var wg sync.WaitGroup
	for _, s := range servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.ActivateAndServe() }()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("the TCP-only secondary did not start")
		}
	}
	t.Cleanup(func() {
		for _, s := range servers {
			_ = s.Shutdown()
		}
		wg.Wait()
	})
	return f
}

func (f *tcpOnlySecondary) seen() (udp int, tcp []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.udp, append([]string(nil), f.tcp...)
}

// TestNotifyOverTCP: a secondary that never answers NOTIFY over UDP gets
// it over TCP once the UDP tries are spent, from notify_source.
func TestNotifyOverTCP(t *testing.T) {
	t.Parallel()
	r := newReplNet(t, 2)
	f := startTCPOnlySecondary(t, r.ip(3))
	dir := t.TempDir()
	importZone(t, dir, smallZone(1))
	conf := fmt.Sprintf("demo_zone: false\nudp_sockets: 1\nprimary:\n  notify: [%q]\n  notify_source: [%s]\n", f.addr, r.ip(2))
	p := startServer(t, serveOpts{dataDir: dir, config: conf, env: fastExit(),
		args: []string{"--listen", r.addr(1), "--metrics-listen", "127.0.0.1:0"}})
	// Five tries over UDP (2s each, 1+2+4+8s apart), then TCP.
	waitUntil(t, 60*time.Second, "a NOTIFY over TCP", func() bool {
		_, tcp := f.seen()
		return len(tcp) > 0
	}, p.log.String)
	udp, tcp := f.seen()
	if udp != 5 || len(tcp) != 1 || tcp[0] != r.ip(2) {
		t.Errorf("%d NOTIFYs over UDP, over TCP from %v; want 5, then one from %s", udp, tcp, r.ip(2))
	}
	waitUntil(t, 10*time.Second, "the acknowledgement counted", func() bool {
		return metricValue(t, p, "sovdns_notify_sent_total", map[string]string{"zone": "example.com.", "result": "acked"}) == 1
	}, p.log.String)
	if !strings.Contains(p.log.String(), "NOTIFY acknowledged over TCP after no answer over UDP") {
		t.Errorf("the log does not say the NOTIFY went over TCP:\n%s", p.log)
	}
}

// TestZoneRefreshAndRetransfer: sovdns zone refresh and retransfer on a
// running secondary of NSD: a change NSD does not notify is brought by
// refresh; a change that keeps the serial only by retransfer. Zones that
// are not secondaries, and a data directory with no server, are errors.
func TestZoneRefreshAndRetransfer(t *testing.T) {
	t.Parallel()
	nsdBin := requireTool(t, "nsd", "/usr/sbin/nsd")
	r := newReplNet(t, 2)
	dir := t.TempDir()
	zonePath := filepath.Join(dir, "example.com.zone")
	if err := os.WriteFile(zonePath, []byte(smallZone(1)), 0o600); err != nil {
		t.Fatal(err)
	}
	zones := fmt.Sprintf("key:\n    name: \"xfr\"\n    algorithm: hmac-sha256\n    secret: %q\n"+
		"zone:\n    name: \"example.com\"\n    zonefile: \"example.com.zone\"\n    provide-xfr: %s xfr\n", xfrSecret, r.ip(2))
	confPath := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(confPath, []byte(nsdConf(r.addr(1), dir, zones)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, nsdBin, "-d", "-c", confPath)
	t.Cleanup(d.stop)
	if !d.waitSOA(t, r.addr(1), "example.com.", false) {
		t.Fatalf("NSD did not start:\n%s", d.log)
	}
	s := sovdnsSecondary(t, r.addr(2), r.addr(1), r.ip(2), nil, "")
	waitSerial(t, s, "example.com.", 1, 20*time.Second)

	// change rewrites NSD's zone file and has NSD reread it, waiting
	// until NSD serves the new version.
	change := func(text, probe string) {
		t.Helper()
		if err := os.WriteFile(zonePath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(d.pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 20*time.Second, "NSD serving the change", func() bool {
			m := exchange(t, "udp", r.addr(1), newQuery(probe, dns.TypeA))
			return len(m.Answer) > 0
		}, d.log.String)
	}
	zoneCmd := func(args ...string) cliResult {
		t.Helper()
		return runCLI(t, fastExit(), append([]string{"zone"}, append(args, "--data-dir", s.dataDir)...)...)
	}
	steps := []struct {
		name  string
		text  string // NSD's zone afterwards; empty: unchanged
		probe string
		args  []string
		code  int
		want  string // in stdout, or stderr when code is not 0
		check string // a name the secondary must then answer
	}{
		{name: "current", args: []string{"refresh", "example.com"}, want: "zone example.com.: current at serial 1 (primary " + r.addr(1) + " has 1); nothing transferred"},
		{name: "newer", text: smallZone(2, "two A 192.0.2.2"), probe: "two.example.com.", args: []string{"refresh", "example.com"},
			want: "zone example.com.: serial 1 -> 2 by ", check: "two.example.com."},
		{name: "same serial, refresh", text: smallZone(2, "same A 192.0.2.3"), probe: "same.example.com.", args: []string{"refresh", "example.com."},
			want: "zone example.com.: current at serial 2"},
		{name: "same serial, retransfer", args: []string{"retransfer", "example.com"},
			want: "zone example.com.: serial 2 -> 2 by AXFR from " + r.addr(1), check: "same.example.com."},
		{name: "not held", args: []string{"refresh", "example.org"}, code: 1, want: "zone example.org.: not a secondary zone of this server: no such zone"},
	}
	for _, st := range steps {
		if st.text != "" {
			change(st.text, st.probe)
		}
		res := zoneCmd(st.args...)
		out := res.stdout
		if st.code != 0 {
			out = res.stderr
		}
		if res.code != st.code || !strings.Contains(out, st.want) {
			t.Fatalf("%s: sovdns zone %s: exit %d\nstdout: %s\nstderr: %s\nwant exit %d and %q",
				st.name, strings.Join(st.args, " "), res.code, res.stdout, res.stderr, st.code, st.want)
		}
		if st.check != "" {
			if m := exchange(t, "udp", s.dns, newQuery(st.check, dns.TypeA)); len(m.Answer) == 0 {
				t.Errorf("%s: the secondary does not answer %s", st.name, st.check)
			}
		}
	}
	if v := metricValue(t, s, "sovdns_transfers_in_total", map[string]string{"zone": "example.com.", "type": "AXFR", "result": "success"}); v != 2 {
		t.Errorf("%v AXFRs, want 2 (the first, the retransfer)", v)
	}

	// A primary zone, and no server at all.
	pDir := t.TempDir()
	importZone(t, pDir, smallZone(1))
	startServer(t, serveOpts{dataDir: pDir, config: "demo_zone: false\nudp_sockets: 1\n", env: fastExit(),
		args: []string{"--listen", r.ip(1) + ":0", "--metrics-listen", "127.0.0.1:0"}})
	if res := runCLI(t, fastExit(), "zone", "retransfer", "example.com", "--data-dir", pDir); res.code != 1 ||
		!strings.Contains(res.stderr, "not a secondary zone of this server: it is a primary zone here") {
		t.Errorf("retransfer of a primary zone: exit %d, %s", res.code, res.stderr)
	}
	empty := t.TempDir()
	if res := runCLI(t, fastExit(), "zone", "refresh", "example.com", "--data-dir", empty); res.code != 1 ||
		!strings.Contains(res.stderr, "no running sovdns server on data directory "+empty) {
		t.Errorf("refresh with no server: exit %d, %s", res.code, res.stderr)
	}
}

// TestShortExpire: a secondary configured to expire sooner (1m) than the
// SOA's refresh (an hour) checks its primary before the copy expires; with
// the primary gone it expires after failed checks, and the log says so.
func TestShortExpire(t *testing.T) {
	t.Parallel()
	r := newReplNet(t, 2)
	pDir := t.TempDir()
	importZone(t, pDir, smallZone(1))
	pConf := fmt.Sprintf("demo_zone: false\nudp_sockets: 1\ntsig_keys:\n  - {name: xfr, secret: %s}\n"+
		"primary:\n  allow_transfer: [\"127.0.0.0/8 key:xfr\"]\n", xfrSecret)
	p := startServer(t, serveOpts{dataDir: pDir, config: pConf, env: fastExit(),
		args: []string{"--listen", r.addr(1), "--metrics-listen", "127.0.0.1:0"}})
	conf := fmt.Sprintf("demo_zone: false\nudp_sockets: 1\ntsig_keys:\n  - {name: xfr, secret: %s}\n"+
		"secondary:\n  - zone: example.com\n    primaries: [%q]\n    key: xfr\n    expire: 1m\n", xfrSecret, r.addr(1))
	s := startServer(t, serveOpts{config: conf, env: fastExit(), errorsExpected: true,
		args: []string{"--listen", r.addr(2), "--metrics-listen", "127.0.0.1:0"}})
	waitSerial(t, s, "example.com.", 1, 20*time.Second)
	p.stop(t)
	start := time.Now()
	waitRcode(t, s, "example.com.", dns.RcodeRefused, 100*time.Second)
	text := s.log.String()
	failed := strings.Index(text, "secondary zone refresh failed")
	expired := strings.Index(text, "secondary zone expired: no check succeeded within its expire time")
	if failed < 0 || expired < 0 || failed > expired {
		t.Errorf("want failed checks logged before the expiry:\n%s", text)
	}
	for _, want := range []string{"checked more often than its SOA timers say", "expire_from=config", "last_error=", "SOA query to " + r.addr(1)} {
		if !strings.Contains(text, want) {
			t.Errorf("the log lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "failed_checks=0") {
		t.Errorf("expired without a failed check:\n%s", text)
	}
	t.Logf("expired %v after the primary stopped", time.Since(start).Round(time.Second))
}
