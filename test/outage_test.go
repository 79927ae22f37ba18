package test

// TestOutage is the acceptance test of sovereign resilience: a resolver node
// of a country keeps answering when every server outside the country stops
// answering, and goes back to fresh answers when they answer again.
//
// The simulated hierarchy, on loopback addresses sharing one port (the
// addresses are templates, moved with the zone data that names them into a
// /24 of the test's own, testaddr.Block):
//
//	127.0.0.50  .                       NSD      foreign: the root, AXFR to 127.0.0.0/8
//	127.0.0.51  com., net.              NSD      foreign: a.gtld.com.
//	127.0.0.52  example.com.,           NSD      foreign: ns1.example.com.,
//	            cdn-provider.net.                         ns1.cdn-provider.net.
//	127.0.0.53  az.                     sovdns   national: ns1.nic.az.
//	127.0.0.54  gov.az.                 sovdns   national: ns1.gov.az.
//
// The foreign side is served by NSD, other DNS software than the node under
// test, and is cut off as a whole: its servers stop and sockets that drop
// every packet take their place, as when the international links go down
// (queries time out rather than being refused). Every foreign record has a
// TTL of 3s, the national leaf data 2s, so all of it expires during the
// outage.
// The node under test is the sovdns binary, a resolver for 127.0.0.0/8 with
// the root zone as a mirror (RFC 8806, expire: never), az. as its national
// namespace and island probes every second.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/testaddr"
	"github.com/sovdns/sovdns/resolver"
)

// Addresses of the outage hierarchy.
const (
	ipOutRoot    = "127.0.0.50"
	ipOutGTLD    = "127.0.0.51"
	ipOutForeign = "127.0.0.52"
	ipOutAZ      = "127.0.0.53"
	ipOutGovAZ   = "127.0.0.54"
)

var outageIPs = []string{ipOutRoot, ipOutGTLD, ipOutForeign, ipOutAZ, ipOutGovAZ}

// Bounds of the outage test.
const (
	foreignTTL      = 3 * time.Second // every foreign record
	nationalTTL     = 2 * time.Second // the gov.az. records
	staleTTL        = 30              // resolver.serve_stale.stale_ttl, seconds
	islandLatency   = 100 * time.Millisecond
	islandDetectMax = 10 * time.Second // from the first query after the cut
	recoverMax      = 8 * time.Second  // from the foreign servers' return
	outageQueryWait = resolutionTimeout + time.Second
	clientTimeout   = 400 * time.Millisecond // resolver.serve_stale.client_timeout
	// firstAnswerSlack is what an answer may take beyond client_timeout
	// before island mode (a busy machine, the race detector).
	firstAnswerSlack = 600 * time.Millisecond
)

const outageRootZone = `$ORIGIN .
$TTL 86400
.                     SOA  a.root-servers.test. nstld.root-servers.test. 2026010101 1800 900 604800 86400
.                     NS   a.root-servers.test.
a.root-servers.test.  A    127.0.0.50
az.                   NS   ns1.nic.az.
ns1.nic.az.           A    127.0.0.53
com.                  NS   a.gtld.com.
a.gtld.com.           A    127.0.0.51
net.                  NS   a.gtld.com.
`

const outageComZone = `$ORIGIN com.
$TTL 3
@            SOA  a.gtld hostmaster.gtld 2026010101 7200 900 1209600 3
@            NS   a.gtld
a.gtld       A    127.0.0.51
example      NS   ns1.example
ns1.example  A    127.0.0.52
`

const outageNetZone = `$ORIGIN net.
$TTL 3
@                 SOA  a.gtld.com. hostmaster.gtld.com. 2026010101 7200 900 1209600 3
@                 NS   a.gtld.com.
cdn-provider      NS   ns1.cdn-provider
ns1.cdn-provider  A    127.0.0.52
`

// foreignData is what the foreign leaf zones say; it changes while the
// country is cut off.
type foreignData struct {
	serial                      int
	wwwA, wwwAAAA, mailA, edgeA string
}

var (
	foreignBefore = foreignData{serial: 2026010101, wwwA: "192.0.2.20", wwwAAAA: "2001:db8::20", mailA: "192.0.2.26", edgeA: "198.51.100.7"}
	foreignAfter  = foreignData{serial: 2026010102, wwwA: "192.0.2.21", wwwAAAA: "2001:db8::21", mailA: "192.0.2.27", edgeA: "198.51.100.8"}
)

func (d foreignData) exampleCom() string {
	return fmt.Sprintf(`$ORIGIN example.com.
$TTL 3
@       SOA    ns1 hostmaster %d 7200 900 1209600 3
@       NS     ns1
@       MX     10 mail
ns1     A      127.0.0.52
www     A      %s
www     AAAA   %s
mail    A      %s
static  CNAME  edge.cdn-provider.net.
kw      A      192.0.2.30
`, d.serial, d.wwwA, d.wwwAAAA, d.mailA)
}

func (d foreignData) cdnProviderNet() string {
	return fmt.Sprintf(`$ORIGIN cdn-provider.net.
$TTL 3
@     SOA  ns1 hostmaster %d 7200 900 1209600 3
@     NS   ns1
ns1   A    127.0.0.52
edge  A    %s
`, d.serial, d.edgeA)
}

const outageAZZone = `$ORIGIN az.
$TTL 3600
@        SOA  ns1.nic hostmaster.nic 2026010101 7200 900 1209600 300
@        NS   ns1.nic
ns1.nic  A    127.0.0.53
gov      NS   ns1.gov
ns1.gov  A    127.0.0.54
`

// outageGovAZZone has short TTLs too: during the outage its names are
// asked again of the national servers, through the local root.
const outageGovAZZone = `$ORIGIN gov.az.
$TTL 2
@           SOA    ns1 hostmaster 2026010101 7200 900 1209600 2
@           NS     ns1
@           MX     10 mail
ns1         A      127.0.0.54
www         A      192.0.2.10
www         AAAA   2001:db8::10
mail        A      192.0.2.11
intranet    A      192.0.2.12
portal      CNAME  www
e-services  CNAME  www.example.com.
`

// outageQuestion is a name the resolver is asked in every phase.
type outageQuestion struct {
	name  string
	qtype uint16
	// foreign: the answer needs foreign data, so it is stale during the
	// outage and changes with foreignAfter.
	foreign bool
	want    func(d foreignData) []string // answer section, without TTLs
}

var outageQuestions = []outageQuestion{
	{name: "www.gov.az.", qtype: dns.TypeA, want: func(foreignData) []string { return []string{"www.gov.az. A 192.0.2.10"} }},
	{name: "www.gov.az.", qtype: dns.TypeAAAA, want: func(foreignData) []string { return []string{"www.gov.az. AAAA 2001:db8::10"} }},
	{name: "gov.az.", qtype: dns.TypeMX, want: func(foreignData) []string { return []string{"gov.az. MX 10 mail.gov.az."} }},
	{name: "mail.gov.az.", qtype: dns.TypeA, want: func(foreignData) []string { return []string{"mail.gov.az. A 192.0.2.11"} }},
	{name: "portal.gov.az.", qtype: dns.TypeA, want: func(foreignData) []string {
		return []string{"portal.gov.az. CNAME www.gov.az.", "www.gov.az. A 192.0.2.10"}
	}},
	{name: "www.example.com.", qtype: dns.TypeA, foreign: true, want: func(d foreignData) []string { return []string{"www.example.com. A " + d.wwwA} }},
	{name: "www.example.com.", qtype: dns.TypeAAAA, foreign: true, want: func(d foreignData) []string { return []string{"www.example.com. AAAA " + d.wwwAAAA} }},
	{name: "example.com.", qtype: dns.TypeMX, foreign: true, want: func(foreignData) []string { return []string{"example.com. MX 10 mail.example.com."} }},
	{name: "mail.example.com.", qtype: dns.TypeA, foreign: true, want: func(d foreignData) []string { return []string{"mail.example.com. A " + d.mailA} }},
	// A CNAME chain from one foreign domain into another.
	{name: "static.example.com.", qtype: dns.TypeA, foreign: true, want: func(d foreignData) []string {
		return []string{"static.example.com. CNAME edge.cdn-provider.net.", "edge.cdn-provider.net. A " + d.edgeA}
	}},
	// A national name that is an alias of a foreign one.
	{name: "e-services.gov.az.", qtype: dns.TypeA, foreign: true, want: func(d foreignData) []string {
		return []string{"e-services.gov.az. CNAME www.example.com.", "www.example.com. A " + d.wwwA}
	}},
}

func (q outageQuestion) String() string { return q.name + "/" + dns.TypeToString[q.qtype] }

// outageNet is the running hierarchy.
type outageNet struct {
	block   testaddr.Block // where the template addresses are moved to
	port    int
	hints   string
	foreign []*daemon // the NSD processes, while running
	nsdBin  string
	// holes drop every packet sent to the foreign addresses during the
	// outage, by address.
	holes map[string]*silentServer
}

// foreignIPs are the addresses of the servers outside the country.
var foreignIPs = []string{ipOutRoot, ipOutGTLD, ipOutForeign}

// addr is the hierarchy's address for the template address tmpl, with
// the hierarchy's port.
func (o *outageNet) addr(tmpl string) string {
	return net.JoinHostPort(o.block.Rewrite(tmpl), strconv.Itoa(o.port))
}

// startForeign starts the three foreign NSD servers with data d and waits
// until each answers.
func (o *outageNet) startForeign(t *testing.T, d foreignData) {
	t.Helper()
	root := "zone:\n    name: \".\"\n    zonefile: \"root.zone\"\n    provide-xfr: 127.0.0.0/8 NOKEY\n"
	o.foreign = []*daemon{
		o.startNSD(t, ipOutRoot, ".", map[string]string{"root.zone": outageRootZone}, root),
		o.startNSD(t, ipOutGTLD, "com.", map[string]string{"com.zone": outageComZone, "net.zone": outageNetZone},
			"zone:\n    name: \"com\"\n    zonefile: \"com.zone\"\nzone:\n    name: \"net\"\n    zonefile: \"net.zone\"\n"),
		o.startNSD(t, ipOutForeign, "example.com.", map[string]string{"example.com.zone": d.exampleCom(), "cdn-provider.net.zone": d.cdnProviderNet()},
			"zone:\n    name: \"example.com\"\n    zonefile: \"example.com.zone\"\nzone:\n    name: \"cdn-provider.net\"\n    zonefile: \"cdn-provider.net.zone\"\n"),
	}
}

// cutForeign stops every foreign server and puts in its place a socket
// that drops whatever it is sent, as when the international links are
// cut: queries to the outside time out rather than being refused.
func (o *outageNet) cutForeign(t *testing.T) {
	t.Helper()
	for _, d := range o.foreign {
		d.stop()
	}
	o.foreign = nil
	o.holes = map[string]*silentServer{}
	for _, ip := range foreignIPs {
		s, err := startSilentServer(t, o.addr(ip))
		if err != nil {
			t.Fatalf("black hole on %s: %v", o.addr(ip), err)
		}
		o.holes[ip] = s
	}
}

// restoreForeign ends the outage: the black holes go, and the foreign
// servers start again with data d.
func (o *outageNet) restoreForeign(t *testing.T, d foreignData) {
	t.Helper()
	for _, s := range o.holes {
		s.close()
	}
	o.holes = nil
	o.startForeign(t, d)
}

// foreignQueries is the number of queries (UDP datagrams and TCP
// connections) the black holes at ips have received.
func (o *outageNet) foreignQueries(ips ...string) int64 {
	var n int64
	for _, ip := range ips {
		if s := o.holes[ip]; s != nil {
			n += s.datagrams.Load() + s.accepted.Load()
		}
	}
	return n
}

// startNSD runs one NSD on the template address ip serving files (their
// template addresses moved into the block), and waits until it answers
// the SOA of zone.
func (o *outageNet) startNSD(t *testing.T, ip, zone string, files map[string]string, zonesConf string) *daemon {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(o.block.Rewrite(text)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	confPath := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(confPath, []byte(nsdConf(o.addr(ip), dir, zonesConf)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, o.nsdBin, "-d", "-c", confPath)
	t.Cleanup(d.stop)
	if !d.waitSOA(t, o.addr(ip), zone, false) {
		d.stop()
		t.Fatalf("NSD on %s did not answer for %s:\n%s", o.addr(ip), zone, d.log)
	}
	return d
}

// startNational starts the national authorities, sovdns both.
func (o *outageNet) startNational(t *testing.T) {
	t.Helper()
	for _, a := range []struct{ ip, origin, text string }{{ipOutAZ, "az.", outageAZZone}, {ipOutGovAZ, "gov.az.", outageGovAZZone}} {
		dir := t.TempDir()
		importZoneOrigin(t, dir, a.origin, o.block.Rewrite(a.text))
		startServer(t, serveOpts{dataDir: dir, config: authorityConfig(o.addr(a.ip)), env: fastExit(),
			args: []string{"--metrics-listen", "127.0.0.1:0"}})
	}
}

// resolverConfig is the node under test.
func (o *outageNet) resolverConfig() string {
	return fmt.Sprintf(`demo_zone: false
udp_sockets: 2
resolver:
  allow: [127.0.0.0/8]
  root_hints: %q
  upstream_port: %d
  query_timeout: 300ms
  resolution_timeout: %s
  query_loopback: true
  dnssec:
    validation: false # the hierarchy is unsigned
  serve_stale:
    max_stale: 72h
    stale_ttl: %ds
    client_timeout: %s
    failure_recheck: 1s
  persist:
    enabled: true
resilience:
  national_suffixes: [az.]
  island:
    enabled: true
    failures: 5
    probe_interval: 1s
    keep_copies: true
  # Never asked by a client before the outage: in the cache only because
  # it is kept warm.
  keep_warm: ["kw.example.com A"]
  keep_warm_interval: 1s
secondary:
  - zone: "."
    primaries: [%q]
    mirror: true
    expire: never
`, o.hints, o.port, resolutionTimeout, staleTTL, clientTimeout, o.addr(ipOutRoot))
}

// metricSum is the sum of the samples of name whose labels include labels.
func metricSum(t *testing.T, s *server, name string, labels map[string]string) float64 {
	t.Helper()
	var sum float64
	for _, smp := range parseSamples(t, scrape(t, s.metrics)) {
		if smp.name != name {
			continue
		}
		match := true
		for k, v := range labels {
			if smp.labels[k] != v {
				match = false
				break
			}
		}
		if match {
			sum += smp.value
		}
	}
	return sum
}

// waitMetric polls name{labels} of s, bounded by d, until it equals want,
// and returns how long that took.
func waitMetric(t *testing.T, s *server, name string, labels map[string]string, want float64, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var got float64
	for i := 0; i < 2000 && time.Since(start) < d; i++ {
		if got = metricSum(t, s, name, labels); got == want {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s%v = %v after %v, want %v\nlog:\n%s", name, labels, got, d, want, s.log)
	return 0
}

// edeCodes returns the Extended DNS Error codes of m.
func edeCodes(m *dns.Msg) []uint16 {
	var out []uint16
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				out = append(out, e.InfoCode)
			}
		}
	}
	return out
}

// staleText is the text of r's Stale Answer EDE, empty when it has none.
func staleText(r *dns.Msg) string {
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok && e.InfoCode == dns.ExtendedErrorCodeStaleAnswer {
				return e.ExtraText
			}
		}
	}
	return ""
}

// answerIs reports whether the answer section of r is exactly want
// (zone text without TTLs), ignoring order and TTLs.
func answerIs(r *dns.Msg, want []string) bool {
	var g, w []string
	for _, rr := range r.Answer {
		c := dns.Copy(rr)
		c.Header().Ttl = 0
		g = append(g, c.String())
	}
	for _, s := range want {
		rr, err := dns.NewRR(s)
		if err != nil {
			return false
		}
		rr.Header().Ttl = 0
		w = append(w, rr.String())
	}
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

// latencies collects the response times of one phase.
type latencies struct {
	phase string
	max   time.Duration
	worst string
	n     int
}

func (l *latencies) add(q string, d time.Duration) {
	l.n++
	if d > l.max {
		l.max, l.worst = d, q
	}
}

func (l *latencies) log(t *testing.T) {
	t.Helper()
	t.Logf("%s: %d answers, slowest %v (%s)", l.phase, l.n, l.max.Round(10*time.Microsecond), l.worst)
}

// answerMode is what an answer is expected to be.
type answerMode int

const (
	answerFresh answerMode = iota // fresh data: no stale EDE, TTL at most the zone's
	answerStale                   // served stale: EDE 3, foreign records with TTL stale_ttl
)

// ask sends q to res and checks the answer: NOERROR, RA, no AA, the data of
// d, and fresh or stale as mode says. It returns the response time.
func ask(t *testing.T, res *server, q outageQuestion, d foreignData, mode answerMode) time.Duration {
	t.Helper()
	r, elapsed := exchangeWithin(t, res.dns, rdQuery(q.name, q.qtype), outageQueryWait)
	checkOutageAnswer(t, r, q, d, mode, elapsed)
	return elapsed
}

func checkOutageAnswer(t *testing.T, r *dns.Msg, q outageQuestion, d foreignData, mode answerMode, elapsed time.Duration) {
	t.Helper()
	if r.Rcode != dns.RcodeSuccess || !r.RecursionAvailable || r.Authoritative {
		t.Errorf("%s: rcode %s RA %v AA %v after %v; want NOERROR, RA, no AA\n%v", q, dns.RcodeToString[r.Rcode],
			r.RecursionAvailable, r.Authoritative, elapsed, r)
		return
	}
	if want := q.want(d); !answerIs(r, want) {
		t.Errorf("%s: answer\n %s\nwant\n %s", q, strings.Join(rrStrings(r.Answer), "\n "), strings.Join(want, "\n "))
	}
	codes := edeCodes(r)
	stale := slices.Contains(codes, dns.ExtendedErrorCodeStaleAnswer)
	switch mode {
	case answerStale:
		if !stale {
			t.Errorf("%s: EDE %v, want %d (Stale Answer)\n%v", q, codes, dns.ExtendedErrorCodeStaleAnswer, r)
		}
		for _, rr := range r.Answer {
			ttl := rr.Header().Ttl
			if dns.IsSubDomain("az.", rr.Header().Name) {
				if ttl < 1 || ttl > staleTTL {
					t.Errorf("%s: stale answer: TTL %d not in [1, %d]: %v", q, ttl, staleTTL, rr)
				}
			} else if ttl != staleTTL {
				t.Errorf("%s: stale answer: TTL %d, want %d (serve_stale.stale_ttl): %v", q, ttl, staleTTL, rr)
			}
		}
	case answerFresh:
		if stale || slices.Contains(codes, dns.ExtendedErrorCodeStaleNXDOMAINAnswer) {
			t.Errorf("%s: EDE %v on what should be a fresh answer\n%v", q, codes, r)
		}
		maxTTL := uint32(foreignTTL / time.Second)
		if !q.foreign {
			maxTTL = uint32(nationalTTL / time.Second)
		}
		for _, rr := range r.Answer {
			if ttl := rr.Header().Ttl; ttl > maxTTL {
				t.Errorf("%s: fresh answer: TTL %d, want at most %d (the zone's): %v", q, ttl, maxTTL, rr)
			}
		}
	}
}

// askNXTLD checks that a name under a TLD that does not exist is NXDOMAIN
// with the root's SOA, fresh (from the local root).
func askNXTLD(t *testing.T, res *server, name string) time.Duration {
	t.Helper()
	r, elapsed := exchangeWithin(t, res.dns, rdQuery(name, dns.TypeA), outageQueryWait)
	wantRcode(t, r, dns.RcodeNameError, false, true)
	wantSOA(t, r, ".", 86400)
	if codes := edeCodes(r); slices.Contains(codes, dns.ExtendedErrorCodeStaleNXDOMAINAnswer) || slices.Contains(codes, dns.ExtendedErrorCodeStaleAnswer) {
		t.Errorf("%s: EDE %v: the local root's NXDOMAIN is not stale\n%v", name, codes, r)
	}
	return elapsed
}

// islandRound asks the questions that pick selects once each, in island
// mode, checking the answers (stale for foreign names, fresh for national
// ones) and that each comes within islandLatency (islandPrompt).
func (o *outageNet) islandRound(t *testing.T, res *server, lat *latencies, pick func(outageQuestion) bool) {
	t.Helper()
	for _, q := range outageQuestions {
		if !pick(q) {
			continue
		}
		mode := answerFresh
		if q.foreign {
			mode = answerStale
		}
		sent := o.foreignQueries(ipOutGTLD, ipOutForeign)
		d := ask(t, res, q, foreignBefore, mode)
		lat.add(q.String(), d)
		o.islandPrompt(t, q.String(), d, sent)
	}
}

// islandPrompt checks that a question answered in island mode took less
// than islandLatency, sent being the count of foreignQueries before it
// was asked. In island mode one trial query per trial interval still goes
// out to a foreign server (which the counts of foreign queries check),
// sent by a question then needing the outside or by the refresh of a
// stale answer: a question that sent it, or came together with it, waits
// for it at most resolver.IslandTrialWait. Every other question waits for
// nothing.
func (o *outageNet) islandPrompt(t *testing.T, what string, d time.Duration, sent int64) {
	t.Helper()
	if n := o.foreignQueries(ipOutGTLD, ipOutForeign) - sent; n > 0 {
		if limit := islandLatency + resolver.IslandTrialWait; d >= limit {
			t.Errorf("%s: answered in %v in island mode, with a trial query to a foreign server under way; want under %v (%v and the trial wait %v)",
				what, d, limit, islandLatency, resolver.IslandTrialWait)
		} else {
			t.Logf("%s: answered in %v, with a trial query to a foreign server under way", what, d)
		}
		return
	}
	if d >= islandLatency {
		t.Errorf("%s: answered in %v in island mode, want under %v", what, d, islandLatency)
	}
}

func anyQuestion(outageQuestion) bool        { return true }
func nationalQuestion(q outageQuestion) bool { return !q.foreign }
func foreignQuestion(q outageQuestion) bool  { return q.foreign }

// islandUncached asks, in island mode, what was never asked before: a
// national name, a national name that does not exist, and a name under a
// TLD that does not exist. They are answered from the national servers and
// the local root, fresh, within islandLatency.
func islandUncached(t *testing.T, res *server, lat *latencies) {
	t.Helper()
	prompt := func(what string, d time.Duration) {
		t.Helper()
		lat.add(what, d)
		if d >= islandLatency {
			t.Errorf("%s: answered in %v in island mode, want under %v", what, d, islandLatency)
		}
	}
	q := outageQuestion{name: "intranet.gov.az.", qtype: dns.TypeA,
		want: func(foreignData) []string { return []string{"intranet.gov.az. A 192.0.2.12"} }}
	prompt(q.String(), ask(t, res, q, foreignBefore, answerFresh))

	r, d := exchangeWithin(t, res.dns, rdQuery("nosuch.gov.az.", dns.TypeA), outageQueryWait)
	wantRcode(t, r, dns.RcodeNameError, false, true)
	wantSOA(t, r, "gov.az.", uint32(nationalTTL/time.Second))
	if codes := edeCodes(r); slices.Contains(codes, dns.ExtendedErrorCodeStaleNXDOMAINAnswer) {
		t.Errorf("nosuch.gov.az./A: EDE %v: the national servers answer, the NXDOMAIN is not stale\n%v", codes, r)
	}
	prompt("nosuch.gov.az./A", d)

	prompt("www.nosuchtld./A", askNXTLD(t, res, "www.nosuchtld."))
}

// TestOutage: warm the resolver with national and foreign names; cut the
// foreign side off and let the TTLs run out; check that the resolver goes
// into island mode, that national names are answered fresh through the
// local root and the national servers, foreign ones stale (EDE 3, TTL
// stale_ttl) and every answer within 100 ms, and the metrics; restart the
// resolver during the outage and check the same answers from the saved
// cache; bring the foreign side back with changed data and check that
// island mode ends and the new data is answered fresh. The latencies and
// times of each phase are logged.
func TestOutage(t *testing.T) {
	t.Parallel()
	testStart := time.Now()
	o := &outageNet{nsdBin: requireTool(t, "nsd", "/usr/sbin/nsd"), block: testaddr.NewBlock()}
	o.port = sharedPort(t, o.block, outageIPs)
	o.hints = filepath.Join(t.TempDir(), "root.hints")
	if err := os.WriteFile(o.hints, []byte(".  3600000  NS  a.root-servers.test.\na.root-servers.test.  3600000  A  "+o.block.Rewrite(ipOutRoot)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.startForeign(t, foreignBefore)
	o.startNational(t)

	dataDir := t.TempDir()
	res := startServer(t, serveOpts{dataDir: dataDir, config: o.resolverConfig(), env: fastExit()})
	t.Logf("hierarchy and resolver up in %v", time.Since(testStart).Round(time.Millisecond))

	// 1. Warm. The root mirror is transferred first, so that the referrals
	// come from it.
	d := waitMetric(t, res, "sovdns_zone_serial", map[string]string{"zone": "."}, 2026010101, 15*time.Second)
	t.Logf("root mirror transferred %v after the resolver started", d.Round(time.Millisecond))
	if r := exchange(t, "udp", res.dns, newQuery(".", dns.TypeSOA)); r.Authoritative || len(r.Answer) != 0 {
		t.Errorf("the root mirror is answered to clients (AA %v, %d answers); a mirror is for the resolver alone\n%v", r.Authoritative, len(r.Answer), r)
	}
	warm := &latencies{phase: "warm (everything reachable)"}
	for _, q := range outageQuestions {
		warm.add(q.String(), ask(t, res, q, foreignBefore, answerFresh))
	}
	lastWarm := time.Now()
	warm.log(t)
	if n := metricSum(t, res, "sovdns_resolver_local_answers_total", nil); n < 1 {
		t.Errorf("sovdns_resolver_local_answers_total = %v after resolving through the root: the local root was not used", n)
	}
	if v := metricSum(t, res, "sovdns_island_mode", nil); v != 0 {
		t.Fatalf("sovdns_island_mode = %v with the whole hierarchy up", v)
	}
	for start := time.Now(); metricSum(t, res, "sovdns_resolver_keep_warm_refreshes_total", map[string]string{"result": "ok"}) < 1; {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the keep-warm name was not refreshed within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if t.Failed() {
		t.FailNow()
	}

	// 2. Cut: nothing outside the country answers. The short TTLs run out.
	o.cutForeign(t)
	cut := time.Now()
	if wait := time.Until(lastWarm.Add(foreignTTL + 300*time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}

	// 3. The outage. The first answers after the cut may wait for the
	// resolver to find out; once in island mode every answer is prompt.
	first := &latencies{phase: "first answers after the cut, until island mode"}
	staleBefore := metricSum(t, res, "sovdns_resolver_stale_answers_total", nil)
	detectStart := time.Now()
	var detected time.Duration
	for i := 0; detected == 0; i++ {
		if time.Since(detectStart) > islandDetectMax || i > 200 {
			t.Fatalf("no island mode %v after the first query that needed the outside (sovdns_island_mode %v)\nlog:\n%s",
				time.Since(detectStart), metricSum(t, res, "sovdns_island_mode", nil), res.log)
		}
		q := outageQuestions[i%len(outageQuestions)]
		r, elapsed := exchangeWithin(t, res.dns, rdQuery(q.name, q.qtype), outageQueryWait)
		first.add(q.String(), elapsed)
		if i < len(outageQuestions) {
			t.Logf("after the cut: %s in %v (EDE %v)", q, elapsed.Round(10*time.Microsecond), edeCodes(r))
		}
		// Before island mode the national names are fresh, and the
		// foreign ones stale (the failure was either found or waited
		// for longer than client_timeout).
		mode := answerFresh
		if q.foreign {
			mode = answerStale
		}
		checkOutageAnswer(t, r, q, foreignBefore, mode, elapsed)
		if elapsed >= clientTimeout+firstAnswerSlack {
			t.Errorf("%s: answered in %v before island mode; serve_stale.client_timeout is %v", q, elapsed, clientTimeout)
		}
		if metricSum(t, res, "sovdns_island_mode", nil) == 1 {
			detected = time.Since(detectStart)
		}
	}
	first.log(t)
	t.Logf("island mode detected %v after the first query that needed the outside (%v after the cut)",
		detected.Round(time.Millisecond), time.Since(cut).Round(time.Millisecond))

	island := &latencies{phase: "island mode"}
	sent := o.foreignQueries(ipOutGTLD, ipOutForeign)
	islandStart := time.Now()
	for range 3 {
		o.islandRound(t, res, island, anyQuestion)
	}
	islandUncached(t, res, island)
	// In island mode foreign servers get at most one trial query per
	// trial interval.
	if n, most := o.foreignQueries(ipOutGTLD, ipOutForeign)-sent, int64(time.Since(islandStart)/natTrialInterval)+1; n > most {
		t.Errorf("%d queries to foreign servers (com., net., example.com.) in island mode, want at most %d (one trial per %v)", n, most, natTrialInterval)
	}
	island.log(t)
	// The keep-warm name, which no client asked for before the outage.
	kwSent := o.foreignQueries(ipOutGTLD, ipOutForeign)
	if r, elapsed := exchangeWithin(t, res.dns, rdQuery("kw.example.com.", dns.TypeA), outageQueryWait); r.Rcode != dns.RcodeSuccess ||
		!answerIs(r, []string{"kw.example.com. A 192.0.2.30"}) || !slices.Contains(edeCodes(r), dns.ExtendedErrorCodeStaleAnswer) {
		t.Errorf("keep-warm name kw.example.com in island mode: %v in %v, want its address, stale (EDE 3)", r, elapsed)
	} else {
		o.islandPrompt(t, "keep-warm name kw.example.com./A", elapsed, kwSent)
	}
	if v := metricSum(t, res, "sovdns_island_mode", nil); v != 1 {
		t.Errorf("sovdns_island_mode = %v during the outage, want 1", v)
	}
	if v := metricSum(t, res, "sovdns_island_transitions_total", map[string]string{"direction": "enter"}); v != 1 {
		t.Errorf(`sovdns_island_transitions_total{direction="enter"} = %v, want 1`, v)
	}
	if v := metricSum(t, res, "sovdns_island_transitions_total", map[string]string{"direction": "leave"}); v != 0 {
		t.Errorf(`sovdns_island_transitions_total{direction="leave"} = %v during the outage, want 0`, v)
	}
	staleNow := metricSum(t, res, "sovdns_resolver_stale_answers_total", nil)
	if foreign := countForeign(); staleNow-staleBefore < float64(3*foreign) {
		t.Errorf("sovdns_resolver_stale_answers_total rose by %v during the outage; at least %d stale answers were given", staleNow-staleBefore, 3*foreign)
	}
	// Names outside az. are answered stale at once in island mode; a
	// national alias of a foreign name (e-services.gov.az.) is resolved
	// again through the national servers, and served stale when the
	// foreign part cannot be refreshed.
	if v, n := metricSum(t, res, "sovdns_resolver_stale_answers_total", map[string]string{"reason": "island"}), countForeignNames(); v < float64(3*n) {
		t.Errorf(`sovdns_resolver_stale_answers_total{reason="island"} = %v after 3 rounds of %d names outside az. in island mode, want at least %d`, v, n, 3*n)
	}
	if v := metricSum(t, res, "sovdns_island_probes_total", map[string]string{"result": "failed"}); v < 1 {
		t.Errorf(`sovdns_island_probes_total{result="failed"} = %v in island mode, want at least 1`, v)
	}
	if v := metricSum(t, res, "sovdns_island_mode_seconds_total", nil); v <= 0 {
		t.Errorf("sovdns_island_mode_seconds_total = %v in island mode, want > 0", v)
	}
	if t.Failed() {
		t.FailNow()
	}

	// 4. The resolver restarts during the outage, on the same data
	// directory: the local root is there at once, and so is the cache.
	stopTook := res.stop(t)
	cacheFile := filepath.Join(dataDir, "resolver-cache.db")
	_, cacheErr := os.Stat(cacheFile)
	restartAt := time.Now()
	res = startServer(t, serveOpts{dataDir: dataDir, config: o.resolverConfig(), env: fastExit()})
	d = waitMetric(t, res, "sovdns_island_mode", nil, 1, islandDetectMax)
	t.Logf("restart: stopped in %v; started and in island mode %v after the start, %v after it logged its addresses (cache file: %v)",
		stopTook.Round(time.Millisecond), time.Since(restartAt).Round(time.Millisecond), d.Round(time.Millisecond), errOrOK(cacheErr))
	t.Run("restart", func(t *testing.T) {
		after := &latencies{phase: "island mode after the restart, national names"}
		sent := o.foreignQueries(ipOutGTLD, ipOutForeign)
		since := time.Now()
		for range 2 {
			o.islandRound(t, res, after, nationalQuestion)
		}
		islandUncached(t, res, after)
		after.log(t)
		// The foreign names come from the cache saved at shutdown
		// (resolver.persist), stale.
		if cacheErr != nil {
			t.Errorf("no %s after a clean shutdown with resolver.persist.enabled: %v", cacheFile, cacheErr)
		}
		lat := &latencies{phase: "island mode after the restart, foreign names"}
		for range 2 {
			o.islandRound(t, res, lat, foreignQuestion)
		}
		lat.log(t)
		if n, most := o.foreignQueries(ipOutGTLD, ipOutForeign)-sent, int64(time.Since(since)/natTrialInterval)+1; n > most {
			t.Errorf("%d queries to foreign servers (com., net., example.com.) in island mode after the restart, want at most %d (one trial per %v)", n, most, natTrialInterval)
		}
	})

	// 5. Recovery: the outside answers again, with changed data.
	o.restoreForeign(t, foreignAfter)
	back := time.Now()
	left := waitMetric(t, res, "sovdns_island_mode", nil, 0, recoverMax)
	t.Logf("island mode left %v after the foreign servers answered again", left.Round(time.Millisecond))
	if v := metricSum(t, res, "sovdns_island_transitions_total", map[string]string{"direction": "leave"}); v != 1 {
		t.Errorf(`sovdns_island_transitions_total{direction="leave"} = %v, want 1`, v)
	}
	if v := metricSum(t, res, "sovdns_island_transitions_total", map[string]string{"direction": "enter"}); v != 1 {
		t.Errorf(`sovdns_island_transitions_total{direction="enter"} = %v (this process), want 1`, v)
	}
	if v := metricSum(t, res, "sovdns_island_probes_total", map[string]string{"result": "answered"}); v < 1 {
		t.Errorf(`sovdns_island_probes_total{result="answered"} = %v after island mode ended, want at least 1`, v)
	}
	recovered := &latencies{phase: "recovery"}
	for _, q := range outageQuestions {
		// The stale entry is refreshed at the first question after the
		// recovery; it may still be served stale while that resolution
		// runs (client_timeout), never for longer than recoverMax. A
		// national name, whose servers never went away, is answered stale
		// only when its resolution outlasts client_timeout (on a busy
		// machine); it is asked again then, and for no other stale reason.
		var r *dns.Msg
		var elapsed time.Duration
		for i := 0; ; i++ {
			r, elapsed = exchangeWithin(t, res.dns, rdQuery(q.name, q.qtype), outageQueryWait)
			stale := slices.Contains(edeCodes(r), dns.ExtendedErrorCodeStaleAnswer)
			fresh := !stale && answerIs(r, q.want(foreignAfter))
			if fresh || time.Since(back) > recoverMax || i > 100 {
				break
			}
			if !q.foreign && !strings.Contains(staleText(r), resolver.StaleReasonTimeout) {
				break
			}
			t.Logf("%s: stale (%s) %v after the recovery, asked again", q, staleText(r), time.Since(back).Round(time.Millisecond))
			time.Sleep(50 * time.Millisecond)
		}
		recovered.add(q.String(), elapsed)
		checkOutageAnswer(t, r, q, foreignAfter, answerFresh, elapsed)
	}
	t.Logf("every foreign name fresh with the new data %v after the foreign servers answered again", time.Since(back).Round(time.Millisecond))
	recovered.log(t)
	if v := metricSum(t, res, "sovdns_island_mode", nil); v != 0 {
		t.Errorf("sovdns_island_mode = %v after the recovery, want 0", v)
	}
	t.Logf("TestOutage wall time %v", time.Since(testStart).Round(time.Millisecond))
}

// countForeign is the number of questions whose answers need foreign data.
func countForeign() int {
	n := 0
	for _, q := range outageQuestions {
		if q.foreign {
			n++
		}
	}
	return n
}

// countForeignNames is the number of questions for names outside az.
func countForeignNames() int {
	n := 0
	for _, q := range outageQuestions {
		if !dns.IsSubDomain("az.", q.name) {
			n++
		}
	}
	return n
}

func errOrOK(err error) string {
	if err != nil {
		return err.Error()
	}
	return "present"
}
