package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/testaddr"
)

// A hierarchy signed by sovdns itself: the root (127.0.0.30), az.
// (127.0.0.31) and, on 127.0.0.32, gov.az. (NSEC3), open.az. (unsigned,
// delegated without DS) and bad.az. (signed, but its parent's DS names
// another key). A validating sovdns resolver with the test root's key as
// its only trust anchor must find each answer secure, insecure or bogus.
// The addresses are templates, moved with the zone data into a /24 of the
// test's own (testaddr.Block).
const (
	ipSignedRoot = "127.0.0.30"
	ipSignedAz   = "127.0.0.31"
	ipSignedGov  = "127.0.0.32"
)

func signedRootZone(azDS string) string {
	return `. 3600 IN SOA a.root.test. hostmaster.root.test. 1 7200 900 1209600 300
. 3600 IN NS a.root.test.
a.root.test. 3600 IN A ` + ipSignedRoot + `
az. 3600 IN NS ns.az.
ns.az. 3600 IN A ` + ipSignedAz + `
` + azDS + "\n"
}

func signedAzZone(govDS, badDS string) string {
	return `az. 3600 IN SOA ns.az. hostmaster.az. 1 7200 900 1209600 300
az. 3600 IN NS ns.az.
ns.az. 3600 IN A ` + ipSignedAz + `
gov.az. 3600 IN NS ns.gov.az.
ns.gov.az. 3600 IN A ` + ipSignedGov + `
` + govDS + `
open.az. 3600 IN NS ns.gov.az.
bad.az. 3600 IN NS ns.gov.az.
` + badDS + "\n"
}

func leafZone(origin string) string {
	return fmt.Sprintf(`%[1]s 3600 IN SOA ns.gov.az. hostmaster.%[1]s 1 7200 900 1209600 300
%[1]s 3600 IN NS ns.gov.az.
www.%[1]s 300 IN A 192.0.2.10
*.wild.%[1]s 300 IN TXT "wildcard"
`, origin)
}

// signedNet is the hierarchy signed by sovdns, running.
type signedNet struct {
	block       testaddr.Block // where the template addresses are moved to
	port        int
	hints       string             // root hints file
	rootDS      string             // the test root's DS: the trust anchor
	azDS        string             // az.'s DS: a pinned national anchor
	authorities map[string]*server // by template address
}

// addr is the hierarchy's address for the template address tmpl, with
// the hierarchy's port.
func (n *signedNet) addr(tmpl string) string {
	return fmt.Sprintf("%s:%d", n.block.Rewrite(tmpl), n.port)
}

// startSignedNet signs the hierarchy with sovdns and starts its three
// authorities, in a /24 of their own.
func startSignedNet(t *testing.T) *signedNet {
	t.Helper()
	n := &signedNet{block: testaddr.NewBlock(), authorities: map[string]*server{}}
	n.port = sharedPort(t, n.block, []string{ipSignedRoot, ipSignedAz, ipSignedGov})
	cli := func(dir string, args ...string) string {
		return strings.TrimSpace(mustCLI(t, fastExit(), append(args, "--data-dir", dir)...).stdout)
	}

	// Bottom up: each parent needs its children's DS.
	govDir := t.TempDir()
	for _, z := range []string{"gov.az.", "open.az.", "bad.az."} {
		importZoneOrigin(t, govDir, z, leafZone(z))
	}
	cli(govDir, "dnssec", "enable", "gov.az", "--nsec3")
	cli(govDir, "dnssec", "enable", "bad.az", "--algorithm", "15")
	govDS := cli(govDir, "dnssec", "ds", "gov.az")
	// bad.az's parent publishes a DS for a key bad.az does not have.
	badDS := "bad.az. 3600 IN DS 12345 15 2 " + strings.Repeat("AB", 32)

	azDir := t.TempDir()
	importZoneOrigin(t, azDir, "az.", n.block.Rewrite(signedAzZone(govDS, badDS)))
	cli(azDir, "dnssec", "enable", "az", "--split-keys")
	n.azDS = cli(azDir, "dnssec", "ds", "az")

	rootDir := t.TempDir()
	importZoneOrigin(t, rootDir, ".", n.block.Rewrite(signedRootZone(n.azDS)))
	cli(rootDir, "dnssec", "enable", ".", "--nsec3") // opt-out would make the NXDOMAIN below insecure (RFC 5155 §9.2)
	n.rootDS = cli(rootDir, "dnssec", "ds", ".")

	for ip, dir := range map[string]string{ipSignedRoot: rootDir, ipSignedAz: azDir, ipSignedGov: govDir} {
		n.authorities[ip] = startServer(t, serveOpts{dataDir: dir, config: authorityConfig(n.addr(ip)), env: fastExit(),
			args: []string{"--metrics-listen", "127.0.0.1:0"}})
	}
	n.hints = writeTemp(t, "root.hints", ".  3600000 NS a.root.test.\na.root.test. 3600000 A "+n.block.Rewrite(ipSignedRoot)+"\n")
	return n
}

// TestValidateSovdnsSignedHierarchy: the resolver validates zones signed
// and served by sovdns: secure with AD, insecure without, bogus as
// SERVFAIL with an Extended DNS Error, CD honoured.
func TestValidateSovdnsSignedHierarchy(t *testing.T) {
	t.Parallel()
	n := startSignedNet(t)
	res := startServer(t, serveOpts{env: fastExit(), config: fmt.Sprintf(`demo_zone: false
resolver:
  allow: [127.0.0.0/8]
  root_hints: %q
  upstream_port: %d
  query_timeout: 300ms
  query_loopback: true
  dnssec:
    builtin_root_anchors: false
    trust_anchors: [%q]
`, n.hints, n.port, n.rootDS)})

	ask := func(name string, qtype uint16, do, cd bool) *dns.Msg {
		m := newQuery(name, qtype)
		m.RecursionDesired = true
		m.CheckingDisabled = cd
		m.SetEdns0(1232, do)
		return exchange(t, "udp", res.dns, m)
	}
	tests := []struct {
		name  string
		qtype uint16
		do    bool
		cd    bool
		rcode int
		ad    bool
		edes  []uint16 // one of them, for SERVFAIL
	}{
		{"www.gov.az.", dns.TypeA, true, false, dns.RcodeSuccess, true, nil},
		{"nope.gov.az.", dns.TypeA, true, false, dns.RcodeNameError, true, nil},
		{"x.wild.gov.az.", dns.TypeTXT, true, false, dns.RcodeSuccess, true, nil},
		{"www.gov.az.", dns.TypeMX, true, false, dns.RcodeSuccess, true, nil},
		{"nosuchtld.", dns.TypeA, true, false, dns.RcodeNameError, true, nil},
		{"www.gov.az.", dns.TypeA, false, false, dns.RcodeSuccess, false, nil}, // no DO: no AD
		{"www.open.az.", dns.TypeA, true, false, dns.RcodeSuccess, false, nil}, // insecure
		{"www.bad.az.", dns.TypeA, true, false, dns.RcodeServerFailure, false, []uint16{dns.ExtendedErrorCodeDNSKEYMissing, dns.ExtendedErrorCodeDNSBogus}},
		{"www.bad.az.", dns.TypeA, true, true, dns.RcodeSuccess, false, nil}, // CD: the data, unvalidated
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s/do=%v/cd=%v", tc.name, dns.TypeToString[tc.qtype], tc.do, tc.cd), func(t *testing.T) {
			r := ask(tc.name, tc.qtype, tc.do, tc.cd)
			if r.Rcode != tc.rcode || r.AuthenticatedData != tc.ad {
				t.Fatalf("rcode %s AD %v, want %s AD %v\n%s", dns.RcodeToString[r.Rcode], r.AuthenticatedData,
					dns.RcodeToString[tc.rcode], tc.ad, r)
			}
			sigs := 0
			for _, rr := range append(r.Answer, r.Ns...) {
				if rr.Header().Rrtype == dns.TypeRRSIG {
					sigs++
				}
			}
			if !tc.do && sigs > 0 {
				t.Errorf("RRSIGs without DO:\n%s", r)
			}
			if tc.do && tc.ad && sigs == 0 {
				t.Errorf("secure answer with DO but no RRSIG:\n%s", r)
			}
			if tc.edes != nil {
				e, err := ede(r)
				if err != nil {
					t.Fatal(err)
				}
				ok := false
				for _, code := range tc.edes {
					ok = ok || e.InfoCode == code
				}
				if !ok {
					t.Errorf("EDE %d (%s), want one of %v", e.InfoCode, e.ExtraText, tc.edes)
				}
			}
		})
	}
}

// writeTemp writes text to a file of that name in a new temporary
// directory and returns its path.
func writeTemp(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
