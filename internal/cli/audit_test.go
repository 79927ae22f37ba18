package cli

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/authoritative"
	"github.com/sovdns/sovdns/internal/audit"
	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/internal/testaddr"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// govZone is the national zone audited.
const govZone = `$ORIGIN gov.az.
$TTL 3600
@       SOA  ns1 hostmaster 2024010101 7200 900 1209600 300
        NS   ns1
        NS   ns.cloudflare.com.
ns1     A    192.0.2.1
www     CNAME cdn.example.com.
portal  CNAME web.good.az.
intra   CNAME www.good.az.
d       CNAME www.dept.az.
`

// loopbackWorld is the DNS hierarchy the loopback authorities serve, by
// server address: the root, az. and two zones under it, one of them
// served by a foreign name server. Every server is on the same port of a
// different loopback address, so nothing the resolver asks goes elsewhere.
// The addresses are templates, moved into a /24 of the test's own
// (loopbackAuthority).
var loopbackWorld = map[string]map[string]string{
	"127.0.0.1": {".": `@ SOA a.root.test. hostmaster.root.test. 1 1800 900 604800 86400
@ NS a.root.test.
a.root.test. A 127.0.0.1
az. NS ns.az.
ns.az. A 127.0.0.2
cloudflare.com. NS ns1.cloudflare.com.
ns1.cloudflare.com. A 127.0.0.4
`},
	"127.0.0.2": {"az.": `@ SOA ns hostmaster 1 7200 900 1209600 300
@ NS ns
ns A 127.0.0.2
good NS ns.good
ns.good A 127.0.0.3
dept NS ns1.cloudflare.com.
`},
	"127.0.0.3": {"good.az.": `@ SOA ns hostmaster 1 7200 900 1209600 300
@ NS ns
ns A 127.0.0.3
www A 192.0.2.11
web CNAME x.akamai.net.
`},
	"127.0.0.4": {
		"dept.az.": `@ SOA ns1.cloudflare.com. hostmaster 1 7200 900 1209600 300
@ NS ns1.cloudflare.com.
www A 192.0.2.20
`,
		"cloudflare.com.": `@ SOA ns1 hostmaster 1 7200 900 1209600 300
@ NS ns1
ns1 A 127.0.0.4
`,
	},
}

// loopbackNet is a running loopbackWorld: its template addresses moved
// into a /24 of the test's own, every server on one port.
type loopbackNet struct {
	block testaddr.Block
	port  int
}

// loopbackAuthority serves loopbackWorld (UDP) on a /24 of its own
// (testaddr.Block), every server on the same port.
func loopbackAuthority(t *testing.T) *loopbackNet {
	t.Helper()
	ln := &loopbackNet{block: testaddr.NewBlock()}
	var ips []netip.Addr
	for addr := range loopbackWorld {
		ips = append(ips, netip.MustParseAddr(ln.block.Rewrite(addr)))
	}
	ln.port = int(testaddr.Port(t, ips...))
	for addr, zones := range loopbackWorld {
		var zs []*zone.Zone
		for origin, text := range zones {
			p, err := zonestore.Parse(strings.NewReader("$TTL 3600\n"+ln.block.Rewrite(text)), origin, origin, nil)
			if err != nil {
				t.Fatal(err)
			}
			z, err := p.Build()
			if err != nil {
				t.Fatal(err)
			}
			zs = append(zs, z)
		}
		set := zone.NewSet(zs...)
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ln.block.Rewrite(addr), strconv.Itoa(ln.port)))
		if err != nil {
			t.Fatalf("the test hierarchy: %v", err)
		}
		started := make(chan struct{})
		srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
			Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
				m := new(dns.Msg)
				m.SetReply(r)
				if len(r.Question) == 1 {
					q := r.Question[0]
					res := authoritative.Answer(set, authoritative.Query{Name: q.Name, Type: q.Qtype})
					m.Rcode, m.Authoritative = res.Rcode, res.Authoritative
					m.Answer, m.Ns, m.Extra = res.Answer, res.Ns, res.Extra
				}
				_ = w.WriteMsg(m)
			})}
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return ln
}

// hintsText is the root hints naming the loopback root server.
func (ln *loopbackNet) hintsText() string { return ln.block.Rewrite(loopbackHintsText) }

// hints are the root hints naming the loopback root server.
func (ln *loopbackNet) hints(t *testing.T) []dns.RR {
	t.Helper()
	hints, err := resolver.ParseHints(strings.NewReader(ln.hintsText()), "test hints")
	if err != nil {
		t.Fatal(err)
	}
	return hints
}

// loopbackHintsText is the root hints for loopbackWorld (its template
// addresses).
const loopbackHintsText = ". 3600 IN NS a.root.test.\na.root.test. 3600 IN A 127.0.0.1\n"

// auditConfig writes a configuration for the data directory dir: national
// suffixes az., and recursion off, or (ln not nil) with the loopback
// authority ln as the only upstream.
func auditConfig(t *testing.T, dir string, ln *loopbackNet, suffixes string) string {
	t.Helper()
	text := fmt.Sprintf("data_dir: %s\nresilience:\n  national_suffixes: %s\n  island:\n    enabled: false\n", dir, suffixes)
	if ln == nil {
		text += "resolver:\n  allow: []\n"
	} else {
		hints := filepath.Join(t.TempDir(), "hints.zone")
		if err := os.WriteFile(hints, []byte(ln.hintsText()), 0o600); err != nil {
			t.Fatal(err)
		}
		text += fmt.Sprintf("resolver:\n  allow: [127.0.0.0/8]\n  root_hints: %s\n  upstream_port: %d\n  query_loopback: true\n"+
			"  upstream_ipv6: false\n  qname_minimisation: \"off\"\n  dnssec:\n    validation: false\n", hints, ln.port)
	}
	p := filepath.Join(t.TempDir(), "sovdns.yml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// govDataDir makes a data directory holding govZone.
func govDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(t.TempDir(), "gov.az.zone")
	if err := os.WriteFile(p, []byte(govZone), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, dir, "zone", "import", p)
	return dir
}

func auditFindings(rep audit.Report) []string {
	out := []string{}
	for _, f := range rep.Findings {
		out = append(out, f.Name+" "+f.Type+" "+f.Target+": "+f.Why())
	}
	return out
}

var wantWithResolver = []string{
	"gov.az. NS ns.cloudflare.com.: outside the national suffixes",
	"d.gov.az. CNAME www.dept.az.: via dept.az. NS ns1.cloudflare.com.",
	"portal.gov.az. CNAME web.good.az.: via web.good.az. CNAME x.akamai.net.",
	"www.gov.az. CNAME cdn.example.com.: outside the national suffixes",
}

// TestAuditDepsWithoutRecursion: with recursion off in the configuration
// and no server, chains are followed through the zone's own data, and the
// output says so.
func TestAuditDepsWithoutRecursion(t *testing.T) {
	clearEnv(t)
	dir := govDataDir(t)
	conf := auditConfig(t, dir, nil, "[az.]")
	r := mustRun(t, "", "audit", "deps", "gov.az", "--config", conf)
	want := `NAME         TYPE   TARGET              WHY
gov.az.      NS     ns.cloudflare.com.  outside the national suffixes
www.gov.az.  CNAME  cdn.example.com.    outside the national suffixes

gov.az.: 6 names, 6 references, 0 lookups: 2 names depend on something foreign, 0 unresolved; no resolver: ` +
		`chains followed through the zone's own data only, 3 references to other national zones not followed
Audited by this command: no server runs on data directory ` + dir + `; recursion is off in the configuration ` +
		`(resolver.allow is empty).
`
	if r.stdout != want {
		t.Errorf("output:\n%s\nwant\n%s", r.stdout, want)
	}
	rep := decodeJSON[audit.Report](t, mustRun(t, "", "audit", "deps", "gov.az.", "--json", "--config", conf))
	if rep.Resolver || rep.Unchecked != 3 || !slices.Equal(auditFindings(rep), []string{wantWithResolver[0], wantWithResolver[3]}) {
		t.Errorf("report %+v", rep)
	}
	// --suffix replaces the configured suffixes.
	rep = decodeJSON[audit.Report](t, mustRun(t, "", "audit", "deps", "gov.az.", "--json", "--config", conf, "--suffix", "gov.az", "--suffix", "good.az."))
	if !slices.Equal(rep.Suffixes, []string{"good.az.", "gov.az."}) || rep.Foreign != 3 || rep.Unchecked != 2 {
		t.Errorf("with --suffix: %+v", rep)
	}
}

// TestAuditDepsFollowsChains runs the audit with a resolver whose only
// upstream is the loopback authority: here, from the configuration, and
// on a running server, with the server's resolver. Both find the same.
func TestAuditDepsFollowsChains(t *testing.T) {
	clearEnv(t)
	ln := loopbackAuthority(t)
	dir := govDataDir(t)
	conf := auditConfig(t, dir, ln, "[az.]")

	offline := mustRun(t, "", "audit", "deps", "gov.az", "--config", conf)
	rep := decodeJSON[audit.Report](t, mustRun(t, "", "audit", "deps", "gov.az", "--json", "--config", conf))
	if got := auditFindings(rep); !slices.Equal(got, wantWithResolver) {
		t.Errorf("findings:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(wantWithResolver, "\n  "))
	}
	if !rep.Resolver || rep.Unchecked != 0 || rep.Lookups == 0 || rep.Foreign != 4 || rep.Unresolved != 0 {
		t.Errorf("report %+v", rep)
	}
	if !strings.Contains(offline.stdout, "Audited by this command: no server runs on data directory") {
		t.Errorf("offline output does not say where the audit ran:\n%s", offline.stdout)
	}

	rec := resolver.New(resolver.Config{RootHints: ln.hints(t), UpstreamPort: uint16(ln.port), QueryLoopback: true, NoIPv6: true,
		QNameMinimisation: resolver.QMinOff, Island: resolver.IslandConfig{Disabled: true}},
		resolver.NewNetExchanger(resolver.ExchangeConfig{}), resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20}), nil, nil)
	srv := serveDataDir(t, dir, control.Node{Resolver: rec, Cache: rec.Cache()})
	online := mustRun(t, "", "audit", "deps", "gov.az", "--config", conf)
	if srv.requests.Load() == 0 {
		t.Fatal("the audit did not go through the server")
	}
	strip := func(s string) string {
		s, _, _ = strings.Cut(s, "\nAudited by this command")
		return normalize(strings.TrimSpace(s))
	}
	if strip(offline.stdout) != strip(online.stdout) {
		t.Errorf("offline:\n%s\nonline:\n%s", offline.stdout, online.stdout)
	}
	if rep := decodeJSON[audit.Report](t, mustRun(t, "", "audit", "deps", "gov.az", "--json", "--config", conf)); !slices.Equal(auditFindings(rep), wantWithResolver) {
		t.Errorf("online findings %v", auditFindings(rep))
	}
}

func TestAuditDepsErrors(t *testing.T) {
	clearEnv(t)
	dir := govDataDir(t)
	conf := auditConfig(t, dir, nil, "[az.]")
	noSuffixes := auditConfig(t, dir, nil, "[]")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "no national suffixes", args: []string{"--config", noSuffixes}, code: 2, want: "set resilience.national_suffixes"},
		{name: "bad suffix", args: []string{"--config", conf, "--suffix", "a..b"}, code: 2, want: `--suffix "a..b"`},
		{name: "zone outside the suffixes", args: []string{"--config", conf, "--suffix", "tr."}, code: 2, want: "not under the national suffixes"},
		{name: "bad timeout", args: []string{"--config", conf, "--timeout", "0s"}, code: 2, want: "--timeout"},
		{name: "no zone argument", args: []string{"--config", conf, "gov.az"}, code: 2, want: "accepts 1 arg(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectFail(t, "", tt.code, tt.want, append([]string{"audit", "deps", "gov.az"}, tt.args...)...)
		})
	}
	t.Run("unknown zone", func(t *testing.T) {
		expectFail(t, "", 1, "nothing.az", "audit", "deps", "nothing.az", "--config", conf)
	})
	t.Run("no database", func(t *testing.T) {
		expectFail(t, "", 1, "no zone database", "audit", "deps", "gov.az", "--config", auditConfig(t, t.TempDir(), nil, "[az.]"))
	})
	t.Run("through the server", func(t *testing.T) {
		serveDataDir(t, dir, control.Node{})
		expectFail(t, "", 2, "not under the national suffixes", "audit", "deps", "gov.az", "--config", conf, "--suffix", "tr.")
		expectFail(t, "", 1, "nothing.az", "audit", "deps", "nothing.az", "--config", conf)
		r := mustRun(t, "", "audit", "deps", "gov.az", "--config", conf)
		if !strings.Contains(r.stdout, "Audited by the server, which does not resolve") {
			t.Errorf("output does not say the server does not resolve:\n%s", r.stdout)
		}
	})
}
