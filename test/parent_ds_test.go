package test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/dnssectest"
)

// childZone is a zone whose TTLs are all 0, so that (with no propagation
// delay) a rollover step waits for the parent only, not for caches.
const childZone = `$ORIGIN child.example.
$TTL 0
@    IN SOA ns1 hostmaster 1 7200 900 1209600 0
@    IN NS  ns1
ns1  IN A   192.0.2.53
www  IN A   192.0.2.80
`

// parentNSD serves the zone example., delegating child.example. with the
// given DS records, from NSD on an address of its own.
type parentNSD struct {
	addr, file string
	d          *daemon
}

func startParentNSD(t *testing.T, nsdBin string, ds []string) *parentNSD {
	t.Helper()
	dir := t.TempDir()
	p := &parentNSD{addr: newAddr(t), file: filepath.Join(dir, "zone")}
	p.write(t, ds)
	conf := nsdConf(p.addr, dir, "zone:\n    name: \"example.\"\n    zonefile: \"zone\"\n")
	confPath := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p.d = startDaemon(t, nsdBin, "-d", "-c", confPath)
	if !p.d.waitSOA(t, p.addr, "example.", false) {
		p.d.stop()
		t.Fatalf("NSD did not start:\n%s", p.d.log.String())
	}
	t.Cleanup(p.d.stop)
	return p
}

// write writes the parent zone with ds as child.example.'s DS RRset, its
// file time a second past the last so that NSD sees the change.
func (p *parentNSD) write(t *testing.T, ds []string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("$ORIGIN example.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 7200 900 1209600 0\n@ IN NS ns1\nns1 IN A 192.0.2.1\n")
	b.WriteString("child IN NS ns1.child\nns1.child IN A 192.0.2.53\n")
	for _, d := range ds {
		b.WriteString(d + "\n")
	}
	var mtime time.Time
	if st, err := os.Stat(p.file); err == nil {
		mtime = st.ModTime().Add(time.Second)
	}
	if err := os.WriteFile(p.file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(p.file, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// publish rewrites the parent zone with ds and has NSD reload it, until
// NSD answers child.example.'s DS with as many records.
func (p *parentNSD) publish(t *testing.T, ds []string) {
	t.Helper()
	p.write(t, ds)
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(startTimeout)
	for attempt := 0; attempt < 100 && time.Now().Before(deadline); attempt++ {
		_ = syscall.Kill(p.d.pid, syscall.SIGHUP)
		time.Sleep(50 * time.Millisecond)
		r, _, err := c.ExchangeContext(t.Context(), newQuery("child.example.", dns.TypeDS), p.addr)
		if err == nil && r.Authoritative && len(r.Answer) == len(ds) {
			return
		}
	}
	t.Fatalf("NSD does not serve the new DS RRset of child.example.:\n%s", p.d.log.String())
}

// dsRecords returns what sovdns dnssec ds prints, a record per line.
func dsRecords(t *testing.T, dir string) []string {
	t.Helper()
	return strings.Split(strings.TrimSpace(mustCLI(t, nil, "dnssec", "ds", "child.example", "--data-dir", dir).stdout), "\n")
}

// TestRolloverChecksParentNSD: a CSK rollover of a zone whose parent is
// served by NSD, the zone served by a running sovdns that takes the
// commands through its control socket. `key rollover --continue` asks NSD
// and is refused while it lacks the new DS; once NSD publishes it the
// step is taken. At every step the exported zone passes ldns-verify-zone
// and dnssec-verify, and delv, anchored at the DS records NSD publishes
// then, validates the served zone.
func TestRolloverChecksParentNSD(t *testing.T) {
	t.Parallel()
	nsdBin := requireTool(t, "nsd", "/usr/sbin/nsd")
	delv := requireTool(t, "delv", "/usr/bin/delv")
	dir := t.TempDir()
	importZone(t, dir, childZone)
	// The first signing, and the parent with its DS.
	mustCLI(t, nil, "dnssec", "enable", "child.example", "--propagation-delay", "0s", "--data-dir", dir)
	oldDS := dsRecords(t, dir)
	parent := startParentNSD(t, nsdBin, oldDS)
	srv := startServer(t, serveOpts{dataDir: dir, config: "demo_zone: false\n"})
	host, port, _ := net.SplitHostPort(srv.dns)
	published := oldDS
	verify := func() {
		t.Helper()
		exported := mustCLI(t, nil, "zone", "export", "child.example", "--data-dir", dir).stdout
		dnssectest.Verify(t, "child.example.", parseRRs(t, exported), time.Now())
		anchors := dsAnchorFile(t, published)
		for _, q := range [][2]string{{"www.child.example.", "A"}, {"child.example.", "DNSKEY"}, {"nope.child.example.", "A"}} {
			out := runDelvAt(t, delv, host, port, anchors, "child.example", q[0], q[1])
			if !strings.Contains(out, "fully validated") {
				t.Errorf("delv %s %s, anchored at the parent's DS %q:\n%s", q[0], q[1], published, out)
			}
		}
	}
	mustCLI(t, nil, "dnssec", "enable", "child.example", "--parent-server", parent.addr, "--data-dir", dir)
	verify()

	mustCLI(t, nil, "key", "rollover", "child.example", "ksk", "--data-dir", dir)
	verify()
	both := dsRecords(t, dir)
	if len(both) != 2 {
		t.Fatalf("dnssec ds during the rollover: %q", both)
	}
	r := runCLI(t, nil, "key", "rollover", "child.example", "ksk", "--continue", "--data-dir", dir)
	if r.code == 0 || !strings.Contains(r.stderr, "1 of 1 servers lacks it ("+parent.addr+")") {
		t.Fatalf("--continue while NSD lacks the new DS: exit %d, %s", r.code, r.stderr)
	}
	status := mustCLI(t, nil, "dnssec", "status", "child.example", "--data-dir", dir).stdout
	oldID := strings.Fields(oldDS[0])[5] + "-" + strings.Fields(oldDS[0])[4]
	if !strings.Contains(status, parent.addr+":") || !strings.Contains(status, "DS of "+oldID+", TTL 0") {
		t.Errorf("status does not show what the parent server publishes (DS of %s):\n%s", oldID, status)
	}

	parent.publish(t, both)
	published = both
	verify()
	// TTLs of 0 and no propagation delay: no wait for caches is due.
	mustCLI(t, nil, "key", "rollover", "child.example", "ksk", "--continue", "--data-dir", dir)
	verify()
	newDS := dsRecords(t, dir)
	if len(newDS) != 1 || newDS[0] == oldDS[0] {
		t.Errorf("after the swap dnssec ds prints %q, want the new key's only", newDS)
	}

	// Signing off: the zone stays signed, with the RFC 8078 delete
	// records, until NSD has no DS for it and the DS TTL has passed.
	parent.publish(t, newDS)
	published = newDS
	verify()
	mustCLI(t, nil, "dnssec", "disable", "child.example", "--data-dir", dir)
	verify()
	exported := mustCLI(t, nil, "zone", "export", "child.example", "--data-dir", dir).stdout
	if !strings.Contains(exported, "CDS\t0 0 0 00") || !strings.Contains(exported, "CDNSKEY\t0 3 0 AA==") || !strings.Contains(exported, "RRSIG") {
		t.Fatalf("disabled zone without the delete records or its signatures:\n%s", exported)
	}
	dnssectest.Verify(t, "child.example.", parseRRs(t, exported), time.Now())
	r = runCLI(t, nil, "dnssec", "disable", "child.example", "--data-dir", dir)
	if r.code == 0 || !strings.Contains(r.stderr, "1 of 1 servers still publishes it ("+parent.addr+")") {
		t.Fatalf("disable again while NSD has the DS: exit %d, %s", r.code, r.stderr)
	}
	parent.publish(t, nil)
	mustCLI(t, nil, "dnssec", "disable", "child.example", "--data-dir", dir)
	if exported := mustCLI(t, nil, "zone", "export", "child.example", "--data-dir", dir).stdout; strings.Contains(exported, "RRSIG") || strings.Contains(exported, "DNSKEY") {
		t.Errorf("zone still signed after disable:\n%s", exported)
	}
}

// TestRolloverParentUnreachable: with the parent's server silent,
// --continue is refused naming the server and why, and --force goes on.
func TestRolloverParentUnreachable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	importZone(t, dir, childZone)
	// A UDP socket that never answers stands for a parent server that
	// is down: queries to it time out.
	silent, err := net.ListenPacket("udp", newAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	addr := silent.LocalAddr().String()
	mustCLI(t, nil, "dnssec", "enable", "child.example", "--propagation-delay", "0s", "--parent-server", addr, "--data-dir", dir)
	mustCLI(t, nil, "key", "rollover", "child.example", "ksk", "--data-dir", dir)
	r := runCLI(t, nil, "key", "rollover", "child.example", "ksk", "--continue", "--data-dir", dir)
	if r.code == 0 || !strings.Contains(r.stderr, addr+" (no answer within") || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("--continue with the parent silent: exit %d, %s", r.code, r.stderr)
	}
	if out := mustCLI(t, nil, "dnssec", "status", "child.example", "--data-dir", dir).stdout; !strings.Contains(out, fmt.Sprintf("%s:", addr)) || !strings.Contains(out, "no answer") {
		t.Errorf("status does not show the silent parent server:\n%s", out)
	}
	mustCLI(t, nil, "key", "rollover", "child.example", "ksk", "--continue", "--force", "--data-dir", dir)
	out := mustCLI(t, nil, "key", "list", "child.example", "--data-dir", dir).stdout
	if !strings.Contains(out, "retired") {
		t.Errorf("--force did not swap the keys:\n%s", out)
	}
}

// dsAnchorFile writes a delv trust-anchor file of the DS records ds (as
// sovdns dnssec ds prints them).
func dsAnchorFile(t *testing.T, ds []string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("trust-anchors {\n")
	for _, line := range ds {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatal(err)
		}
		d := rr.(*dns.DS)
		fmt.Fprintf(&b, "  %s static-ds %d %d %d %q;\n", d.Hdr.Name, d.KeyTag, d.Algorithm, d.DigestType, d.Digest)
	}
	b.WriteString("};\n")
	path := filepath.Join(t.TempDir(), "anchors.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
