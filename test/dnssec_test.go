package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/dnssectest"
)

// TestSignedZoneValidates signs a zone with the CLI, serves it, and has
// delv (BIND's validating lookup tool) validate answers and denials
// against the zone's own key as trust anchor, for NSEC, NSEC3 and NSEC3
// with opt-out. The exported zone passes ldns-verify-zone and
// dnssec-verify.
func TestSignedZoneValidates(t *testing.T) {
	t.Parallel()
	delv := requireTool(t, "delv", "/usr/bin/delv")
	modes := []struct {
		name  string
		flags []string
	}{
		{"nsec-csk", nil},
		{"nsec3-split", []string{"--nsec3", "--split-keys"}},
		{"nsec3-optout-ed25519", []string{"--nsec3", "--opt-out", "--algorithm", "ED25519"}},
	}
	// The questions and what delv must say about each.
	const (
		secure   = "; fully validated"
		negative = "; negative response, fully validated"
	)
	questions := []struct {
		name, qtype, want string
	}{
		{"www.example.com.", "A", secure},
		{"example.com.", "MX", secure},
		{"example.com.", "DNSKEY", secure},
		{"alias2.example.com.", "A", secure},
		{"nope.example.com.", "A", negative},
		{"www.example.com.", "TXT", negative},
		{"b.ent.example.com.", "A", negative}, // empty non-terminal
		{"x.b.ent.example.com.", "A", negative},
		{"x.wild.example.com.", "MX", negative}, // wildcard without the type
		{"sub.example.com.", "DS", negative},    // insecure delegation
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			importZone(t, dir, testZone)
			mustCLI(t, nil, append([]string{"dnssec", "enable", "example.com", "--data-dir", dir}, mode.flags...)...)
			exported := mustCLI(t, nil, "zone", "export", "example.com", "--data-dir", dir).stdout
			if strings.Contains(exported, "Private") {
				t.Fatal("zone export prints private key material")
			}
			dnssectest.Verify(t, "example.com.", parseRRs(t, exported), time.Now())

			var status struct {
				Signed bool  `json:"signed"`
				Left   int64 `json:"seconds_left"`
			}
			if err := json.Unmarshal([]byte(mustCLI(t, nil, "dnssec", "status", "example.com", "--json", "--data-dir", dir).stdout), &status); err != nil {
				t.Fatal(err)
			}
			if !status.Signed || status.Left < 14*24*3600 {
				t.Errorf("status: signed %v, %d s left on the earliest signature", status.Signed, status.Left)
			}
			ds := strings.TrimSpace(mustCLI(t, nil, "dnssec", "ds", "example.com", "--data-dir", dir).stdout)

			s := startServer(t, serveOpts{dataDir: dir, config: "demo_zone: false\n"})
			keys := exchange(t, "udp", s.dns, doQuery("example.com.", dns.TypeDNSKEY))
			anchor, dsOK := anchorFile(t, keys, ds)
			if !dsOK {
				t.Errorf("sovdns dnssec ds printed %q, which matches no served key-signing key", ds)
			}
			host, port, _ := net.SplitHostPort(s.dns)
			for _, q := range questions {
				out := runDelv(t, delv, host, port, anchor, q.name, q.qtype)
				if !strings.Contains(out, q.want+"\n") {
					t.Errorf("delv %s %s: want %q:\n%s", q.name, q.qtype, q.want, out)
				}
			}
			// With opt-out a wildcard answer can only be proven insecure;
			// otherwise it validates.
			want := secure
			if strings.Contains(mode.name, "optout") {
				want = "; unsigned answer"
			}
			if out := runDelv(t, delv, host, port, anchor, "a.b.wild.example.com.", "TXT"); !strings.Contains(out, want+"\n") {
				t.Errorf("delv wildcard answer: want %q:\n%s", want, out)
			}
			// A trust anchor that is not the zone's key: nothing validates.
			wrong := wrongAnchor(t)
			if out := runDelv(t, delv, host, port, wrong, "www.example.com.", "A"); strings.Contains(out, "fully validated") {
				t.Errorf("validated with a foreign trust anchor:\n%s", out)
			}
		})
	}
}

// TestSignedZoneServing checks the DO rules on the wire: no DNSSEC records
// without DO, RRSIGs and proofs with it, TC when they do not fit.
func TestSignedZoneServing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	importZone(t, dir, testZone)
	mustCLI(t, nil, "dnssec", "enable", "example.com", "--nsec3", "--data-dir", dir)
	s := startServer(t, serveOpts{dataDir: dir, config: "demo_zone: false\n"})

	// The running server holds the database: status and DS come from it
	// through the control socket.
	if out := mustCLI(t, nil, "dnssec", "status", "example.com", "--data-dir", dir).stdout; !strings.Contains(out, "earliest expiry:") {
		t.Errorf("dnssec status while serving:\n%s", out)
	}
	if out := mustCLI(t, nil, "dnssec", "ds", "example.com", "--data-dir", dir).stdout; !strings.Contains(out, "IN\tDS\t") {
		t.Errorf("dnssec ds while serving:\n%s", out)
	}

	plain := exchange(t, "udp", s.dns, newQuery("nope.example.com.", dns.TypeA))
	for _, rr := range append(plain.Answer, plain.Ns...) {
		switch rr.Header().Rrtype {
		case dns.TypeRRSIG, dns.TypeNSEC3:
			t.Errorf("without DO: %s", rr)
		}
	}
	signed := exchange(t, "udp", s.dns, doQuery("nope.example.com.", dns.TypeA))
	if signed.Rcode != dns.RcodeNameError {
		t.Fatalf("rcode %s", dns.RcodeToString[signed.Rcode])
	}
	count := map[uint16]int{}
	for _, rr := range signed.Ns {
		count[rr.Header().Rrtype]++
	}
	// SOA, closest encloser, next closer and wildcard: up to three NSEC3s,
	// each signed.
	if count[dns.TypeSOA] != 1 || count[dns.TypeNSEC3] < 2 || count[dns.TypeRRSIG] != 1+count[dns.TypeNSEC3] {
		t.Errorf("NXDOMAIN with DO: authority holds %v", count)
	}
	a := exchange(t, "udp", s.dns, doQuery("www.example.com.", dns.TypeA))
	if len(a.Answer) != 2 || a.Answer[1].Header().Rrtype != dns.TypeRRSIG {
		t.Errorf("A with DO: %v", a.Answer)
	}
	// The 3 kB TXT RRset and its signature do not fit 1232 bytes.
	big := doQuery("big.example.com.", dns.TypeTXT)
	if r := exchangeOnce(t, "udp", s.dns, big); !r.Truncated {
		t.Errorf("big answer with DO over UDP not truncated")
	}
	if r := exchange(t, "tcp", s.dns, big); r.Truncated || len(r.Answer) != 31 {
		t.Errorf("big answer over TCP: TC %v, %d records", r.Truncated, len(r.Answer))
	}
}

// TestDNSSECCLIErrors: bad policies and rollover misuse are refused with
// exit code 2 and a message, and change nothing.
func TestDNSSECCLIErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	importZone(t, dir, testZone)
	for _, args := range [][]string{
		{"dnssec", "enable", "example.com", "--algorithm", "5"},
		{"dnssec", "enable", "example.com", "--refresh", "7d", "--validity", "10d"}, // SOA expire is 14 days
		{"dnssec", "enable", "example.com", "--nsec3", "--iterations", "500"},
		{"dnssec", "enable", "example.com", "--validity", "3x"},
	} {
		r := runCLI(t, nil, append(args, "--data-dir", dir)...)
		if r.code != 2 || r.stderr == "" {
			t.Errorf("sovdns %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if out := mustCLI(t, nil, "dnssec", "status", "example.com", "--data-dir", dir).stdout; !strings.Contains(out, "signed:           no") && !strings.Contains(out, "no\n") {
		t.Errorf("a refused policy signed the zone:\n%s", out)
	}
	mustCLI(t, nil, "dnssec", "enable", "example.com", "--data-dir", dir)
	if r := runCLI(t, nil, "record", "add", "example.com", "www NSEC a.example.com. A", "--data-dir", dir); r.code == 0 {
		t.Error("added an NSEC record to a signed zone")
	}
	if r := runCLI(t, nil, "key", "rollover", "example.com", "zsk", "--data-dir", dir); r.code != 2 {
		t.Errorf("ZSK rollover of a CSK zone: exit %d, %s", r.code, r.stderr)
	}
	if r := runCLI(t, nil, "key", "rollover", "example.com", "ksk", "--continue", "--data-dir", dir); r.code == 0 {
		t.Error("continued a rollover that was never started")
	}
	mustCLI(t, nil, "key", "rollover", "example.com", "ksk", "--data-dir", dir)
	if n := len(strings.Split(strings.TrimSpace(mustCLI(t, nil, "dnssec", "ds", "example.com", "--data-dir", dir).stdout), "\n")); n != 2 {
		t.Errorf("during a KSK rollover dnssec ds printed %d records, want 2", n)
	}
	if out := mustCLI(t, nil, "dnssec", "status", "example.com", "--data-dir", dir).stdout; !strings.Contains(out, "ds-pending") || !strings.Contains(out, "--continue") {
		t.Errorf("status does not show the rollover step:\n%s", out)
	}
}

func doQuery(name string, qtype uint16) *dns.Msg {
	m := newQuery(name, qtype)
	m.SetEdns0(1232, true)
	return m
}

func parseRRs(t *testing.T, text string) []dns.RR {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), "", "export")
	var out []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out = append(out, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// anchorFile writes a delv trust-anchor file for the key-signing keys in
// resp and reports whether ds is the DS of one of them.
func anchorFile(t *testing.T, resp *dns.Msg, ds string) (string, bool) {
	t.Helper()
	var b strings.Builder
	b.WriteString("trust-anchors {\n")
	matched := false
	for _, rr := range resp.Answer {
		k, ok := rr.(*dns.DNSKEY)
		if !ok || k.Flags&dns.SEP == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %s static-key %d %d %d %q;\n", k.Hdr.Name, k.Flags, k.Protocol, k.Algorithm, k.PublicKey)
		matched = matched || k.ToDS(dns.SHA256).String() == ds
	}
	b.WriteString("};\n")
	path := filepath.Join(t.TempDir(), "anchors.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, matched
}

// wrongAnchor is a trust anchor for example.com that is some other key.
func wrongAnchor(t *testing.T) string {
	t.Helper()
	k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET}, Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	if _, err := k.Generate(256); err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.Answer = []dns.RR{k}
	path, _ := anchorFile(t, m, "")
	return path
}

func runDelv(t *testing.T, delv, host, port, anchors, name, qtype string) string {
	t.Helper()
	return runDelvAt(t, delv, host, port, anchors, "example.com", name, qtype)
}

// runDelvAt is runDelv with the anchor's zone, root, named.
func runDelvAt(t *testing.T, delv, host, port, anchors, root, name, qtype string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// +root names the anchor's zone: validation starts there, not at the
	// root. delv talks only to the server under test.
	out, _ := exec.CommandContext(ctx, delv, "@"+host, "-p", port, "-a", anchors, "+root="+root, name, qtype).CombinedOutput()
	return string(out)
}
