package test

// The national infrastructure, end to end, on the outage hierarchy of
// outage_test.go (NSD abroad: the root, com. and net., example.com. and
// cdn-provider.net.; sovdns at home: az. and gov.az.), without a root
// mirror: the node's only way to az. is the delegation it learned from the
// root, or the national hints.
//
// The island probes (". NS" to the root) are asked when foreign queries
// fail and at start, but their periodic round is an hour apart: the end of
// island mode is found by the questions' trial queries, not by a probe.
// The root's black hole records what it is asked, so that the probes can
// be told from the resolution's queries.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/testaddr"
)

// Bounds of the national tests.
const (
	natMaxTTL   = 2 * time.Second // resolver.max_ttl: every TTL
	natMaxStale = time.Second     // resolver.serve_stale.max_stale
	// natTrialInterval is resolver.IslandTrialInterval: in island mode at
	// most one trial query per interval goes to a foreign server.
	natTrialInterval = 100 * time.Millisecond
	// natDetectMax bounds the time from the first question of a node cut
	// off from the start to island mode: one probe timeout (1s) and slack.
	natDetectMax = 3 * time.Second
	// natPrompt bounds each answer in island mode. The resolver answers in
	// under 50 ms (the latencies are logged); the bound is generous for a
	// loaded machine running the race detector, and what shows that no
	// question waits on a dead server is the count of queries sent to them.
	natPrompt = time.Second
)

// startNationalNet starts the outage hierarchy, in a /24 of its own, with
// the foreign side up (or cut off from the start, as black holes only).
func startNationalNet(t *testing.T, foreignUp bool) *outageNet {
	t.Helper()
	o := &outageNet{nsdBin: requireTool(t, "nsd", "/usr/sbin/nsd"), block: testaddr.NewBlock()}
	o.port = sharedPort(t, o.block, outageIPs)
	o.hints = filepath.Join(t.TempDir(), "root.hints")
	if err := os.WriteFile(o.hints, []byte(".  3600000  NS  a.root-servers.test.\na.root-servers.test.  3600000  A  "+o.block.Rewrite(ipOutRoot)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if foreignUp {
		o.startForeign(t, foreignBefore)
	} else {
		o.cutForeign(t)
	}
	o.startNational(t)
	return o
}

// nationalConfig is a resolver node with az. as its national namespace, no
// root mirror, every TTL capped at natMaxTTL and stale entries kept for
// natMaxStale only: once those have passed, what the node still holds of
// the way to az. is its national infrastructure. resilience is added to
// the resilience section.
func (o *outageNet) nationalConfig(resilience string) string {
	return fmt.Sprintf(`demo_zone: false
udp_sockets: 2
resolver:
  allow: [127.0.0.0/8]
  root_hints: %q
  upstream_port: %d
  query_timeout: 300ms
  resolution_timeout: %s
  query_loopback: true
  max_ttl: %s
  dnssec:
    validation: false # the hierarchy is unsigned
  serve_stale:
    max_stale: %s
    stale_ttl: 30s
    client_timeout: 400ms
    failure_recheck: 1s
  persist:
    enabled: true
resilience:
  national_suffixes: [az.]
  island:
    enabled: true
    failures: 2
    probe_interval: 1h
    # The burst right after the links return waits for the trial query
    # to the local NSD, which on a loaded machine running the race
    # detector may take more than the default 25 ms; questions during
    # the cut still answer well within natPrompt.
    trial_wait: 250ms
%s`, o.hints, o.port, resolutionTimeout, natMaxTTL, natMaxStale, resilience)
}

// rootQueries is the number of queries the root's black hole received
// other than the island probes (". NS").
func (o *outageNet) rootQueries() int {
	s := o.holes[ipOutRoot]
	if s == nil {
		return 0
	}
	n := int(s.accepted.Load())
	for _, q := range s.questions() {
		if q != ". NS" {
			n++
		}
	}
	return n
}

// nationalNames are names of gov.az. and what they answer.
var nationalNames = []outageQuestion{
	{name: "www.gov.az.", qtype: dns.TypeA, want: func(foreignData) []string { return []string{"www.gov.az. A 192.0.2.10"} }},
	{name: "mail.gov.az.", qtype: dns.TypeA, want: func(foreignData) []string { return []string{"mail.gov.az. A 192.0.2.11"} }},
	{name: "intranet.gov.az.", qtype: dns.TypeA, want: func(foreignData) []string { return []string{"intranet.gov.az. A 192.0.2.12"} }},
	{name: "portal.gov.az.", qtype: dns.TypeA, want: func(foreignData) []string {
		return []string{"portal.gov.az. CNAME www.gov.az.", "www.gov.az. A 192.0.2.10"}
	}},
	{name: "gov.az.", qtype: dns.TypeMX, want: func(foreignData) []string { return []string{"gov.az. MX 10 mail.gov.az."} }},
}

// askNational asks every national name once, checks the answers (fresh,
// from the national servers) and that each comes within limit.
func askNational(t *testing.T, res *server, lat *latencies, limit time.Duration) {
	t.Helper()
	for _, q := range nationalNames {
		d := ask(t, res, q, foreignBefore, answerFresh)
		lat.add(q.String(), d)
		if d >= limit {
			t.Errorf("%s: answered in %v, want under %v", q, d, limit)
		}
	}
}

// askUnknownForeign asks n foreign names the node never saw, in island
// mode: each is SERVFAIL with Extended DNS Error 22 (No Reachable
// Authority) within natPrompt.
func askUnknownForeign(t *testing.T, res *server, lat *latencies, prefix string, n int) {
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("%s%d.example.com.", prefix, i)
		r, d := exchangeWithin(t, res.dns, rdQuery(name, dns.TypeA), outageQueryWait)
		lat.add(name, d)
		if r.Rcode != dns.RcodeServerFailure || !slices.Contains(edeCodes(r), dns.ExtendedErrorCodeNoReachableAuthority) {
			t.Errorf("%s in island mode: rcode %s EDE %v, want SERVFAIL with EDE 22\n%v", name, dns.RcodeToString[r.Rcode], edeCodes(r), r)
		}
		if d >= natPrompt {
			t.Errorf("%s: answered in %v in island mode, want under %v", name, d, natPrompt)
		}
	}
}

// TestNationalInfra: the national delegations outlive their TTL and stale
// window and a restart; with the root cut off national names are resolved
// from the national cut, without a query to the root once it is known to
// fail; in island mode every answer is prompt and foreign servers get
// trial queries only; a node restarted during the cut starts as an island;
// and a burst of questions right after the links return is answered, not
// failed.
func TestNationalInfra(t *testing.T) {
	t.Parallel()
	testStart := time.Now()
	o := startNationalNet(t, true)
	dataDir := t.TempDir()
	res := startServer(t, serveOpts{dataDir: dataDir, config: o.nationalConfig(""), env: fastExit()})

	// 1. Warm: the way to gov.az. is learned from the root.
	for _, q := range nationalNames[:1] {
		ask(t, res, q, foreignBefore, answerFresh)
	}
	ask(t, res, outageQuestions[5], foreignBefore, answerFresh) // www.example.com. A
	lastWarm := time.Now()
	// az. NS, gov.az. NS and the addresses of ns1.nic.az. and ns1.gov.az.
	if n := metricSum(t, res, "sovdns_resolver_national_infra_entries", nil); n < 4 {
		t.Fatalf("sovdns_resolver_national_infra_entries = %v after resolving through az., want at least 4", n)
	}

	// 2. The cut. Every TTL and the stale window run out: the cache keeps
	// nothing of the root's or az.'s answers but the national
	// infrastructure.
	o.cutForeign(t)
	if wait := time.Until(lastWarm.Add(natMaxTTL + natMaxStale + 300*time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}
	// Before island mode: the first national question finds the root
	// dead (one query timeout) and goes on from gov.az.; once the root is
	// known to fail, national names start there.
	r, d := exchangeWithin(t, res.dns, rdQuery("www.gov.az.", dns.TypeA), outageQueryWait)
	checkOutageAnswer(t, r, nationalNames[0], foreignBefore, answerFresh, d)
	t.Logf("first national question after the cut: %v", d.Round(time.Millisecond))
	if d >= 300*time.Millisecond+firstAnswerSlack {
		t.Errorf("www.gov.az./A: %v with the root dead, want within a query timeout (300ms) and slack", d)
	}
	roots := int64(o.rootQueries())
	before := &latencies{phase: "national names, root dead, before island mode"}
	askNational(t, res, before, natPrompt)
	before.log(t)
	if n := int64(o.rootQueries()) - roots; n != 0 {
		t.Errorf("%d queries to the root for national names once it was known to fail, want 0", n)
	}
	if n := metricSum(t, res, "sovdns_resolver_national_cut_starts_total", nil); n < 1 {
		t.Errorf("sovdns_resolver_national_cut_starts_total = %v, want at least 1", n)
	}

	// 3. Island mode: a foreign question makes the failures known.
	exchangeWithin(t, res.dns, rdQuery("find-out.example.com.", dns.TypeA), outageQueryWait)
	waitMetric(t, res, "sovdns_island_mode", nil, 1, islandDetectMax)
	island := &latencies{phase: "island mode"}
	roots = int64(o.rootQueries())
	for range 3 {
		askNational(t, res, island, natPrompt)
	}
	if n := int64(o.rootQueries()) - roots; n != 0 {
		t.Errorf("%d queries to the root for national names in island mode, want 0", n)
	}
	sent := o.foreignQueries(foreignIPs...)
	start := time.Now()
	askUnknownForeign(t, res, island, "island", 20)
	if n, most := o.foreignQueries(foreignIPs...)-sent, int64(time.Since(start)/natTrialInterval)+1; n > most {
		t.Errorf("%d queries to foreign servers for 20 unknown names in island mode, want at most %d (one trial per %v)", n, most, natTrialInterval)
	}
	island.log(t)
	if t.Failed() {
		t.FailNow()
	}

	// 4. A restart during the cut: the node starts as the island it was,
	// and the national infrastructure (past its TTL and stale window) is
	// loaded with the cache.
	res.stop(t)
	restartAt := time.Now()
	res = startServer(t, serveOpts{dataDir: dataDir, config: o.nationalConfig(""), env: fastExit()})
	if v := metricSum(t, res, "sovdns_island_mode", nil); v != 1 {
		t.Errorf("sovdns_island_mode = %v right after a restart during the cut, want 1: the saved state says island", v)
	}
	if n := metricSum(t, res, "sovdns_resolver_national_infra_entries", nil); n < 4 {
		t.Errorf("sovdns_resolver_national_infra_entries = %v after the restart, want at least 4", n)
	}
	after := &latencies{phase: "island mode after the restart"}
	roots = int64(o.rootQueries())
	// Questions never asked before: no answer of them was saved, only the
	// way to gov.az.
	for _, q := range []outageQuestion{
		{name: "www.gov.az.", qtype: dns.TypeAAAA, want: func(foreignData) []string { return []string{"www.gov.az. AAAA 2001:db8::10"} }},
		{name: "ns1.gov.az.", qtype: dns.TypeA, want: func(foreignData) []string { return []string{"ns1.gov.az. A " + o.block.Rewrite(ipOutGovAZ)} }},
	} {
		d := ask(t, res, q, foreignBefore, answerFresh)
		after.add(q.String(), d)
		if d >= natPrompt {
			t.Errorf("%s: answered in %v after the restart, want under %v", q, d, natPrompt)
		}
	}
	r, d = exchangeWithin(t, res.dns, rdQuery("nosuch.gov.az.", dns.TypeA), outageQueryWait)
	wantRcode(t, r, dns.RcodeNameError, false, true)
	after.add("nosuch.gov.az./A", d)
	askNational(t, res, after, natPrompt)
	askUnknownForeign(t, res, after, "restarted", 5)
	lastTrial := time.Now()
	after.log(t)
	if n := int64(o.rootQueries()) - roots; n > int64(time.Since(restartAt)/natTrialInterval)+1 {
		t.Errorf("%d queries to the root after the restart, want only trials", n)
	}
	if t.Failed() {
		t.FailNow()
	}

	// 5. The links return. The probes still go nowhere: the questions'
	// trials find the way out. A burst of questions right after, together,
	// is answered: none SERVFAIL.
	o.restoreForeign(t, foreignAfter)
	back := time.Now()
	// A trial sent before the links returned is lost; the next may go
	// out a trial interval after it.
	if wait := time.Until(lastTrial.Add(natTrialInterval)); wait > 0 {
		time.Sleep(wait)
	}
	burst := []outageQuestion{outageQuestions[5], outageQuestions[6], outageQuestions[7], outageQuestions[8], outageQuestions[9]}
	burst = append(burst, nationalNames...)
	for i := range 20 {
		name := fmt.Sprintf("burst%d.example.com.", i)
		burst = append(burst, outageQuestion{name: name, qtype: dns.TypeA, foreign: true})
	}
	type reply struct {
		q outageQuestion
		r *dns.Msg
		d time.Duration
	}
	replies := make([]reply, len(burst))
	var wg sync.WaitGroup
	for i, q := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, d := exchangeWithin(t, res.dns, rdQuery(q.name, q.qtype), outageQueryWait)
			replies[i] = reply{q, r, d}
		}()
	}
	wg.Wait()
	slowest := time.Duration(0)
	for _, rp := range replies {
		slowest = max(slowest, rp.d)
		switch {
		case rp.r.Rcode == dns.RcodeServerFailure:
			t.Errorf("%s right after the links returned: SERVFAIL (EDE %v) in %v", rp.q, edeCodes(rp.r), rp.d)
		case rp.q.want == nil:
			if rp.r.Rcode != dns.RcodeNameError {
				t.Errorf("%s right after the links returned: rcode %s, want NXDOMAIN from example.com.", rp.q, dns.RcodeToString[rp.r.Rcode])
			}
		case !answerIs(rp.r, rp.q.want(foreignAfter)):
			t.Errorf("%s right after the links returned: %v", rp.q, rp.r)
		}
	}
	t.Logf("burst of %d questions together %v after the links returned: slowest %v", len(burst),
		time.Since(back).Round(time.Millisecond), slowest.Round(time.Millisecond))
	if v := metricSum(t, res, "sovdns_island_mode", nil); v != 0 {
		t.Errorf("sovdns_island_mode = %v after foreign answers, want 0", v)
	}
	if v := metricSum(t, res, "sovdns_island_trials_total", nil); v < 1 {
		t.Errorf("sovdns_island_trials_total = %v, want at least 1", v)
	}
	t.Logf("TestNationalInfra wall time %v", time.Since(testStart).Round(time.Millisecond))
}

// TestNationalHintsEmptyStart: a node started with an empty cache while
// the outside is cut off reaches the national zones through
// resilience.national_hints, finds out that it is an island within one
// probe timeout of its first question, and answers promptly from then
// on: national names, and SERVFAIL with EDE 22 for foreign ones.
func TestNationalHintsEmptyStart(t *testing.T) {
	t.Parallel()
	o := startNationalNet(t, false)
	hints := filepath.Join(t.TempDir(), "az.hints")
	if err := os.WriteFile(hints, []byte("az.  NS  ns1.nic.az.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The NS record from a file, the address inline.
	res := startServer(t, serveOpts{config: o.nationalConfig(fmt.Sprintf("  national_hints:\n    - %s\n    - \"ns1.nic.az. A %s\"\n", hints, o.block.Rewrite(ipOutAZ))),
		env: fastExit()})

	start := time.Now()
	r, d := exchangeWithin(t, res.dns, rdQuery("www.gov.az.", dns.TypeA), outageQueryWait)
	checkOutageAnswer(t, r, nationalNames[0], foreignBefore, answerFresh, d)
	t.Logf("first question of a node that knows nothing, cut off: %v", d.Round(time.Millisecond))
	if d >= 300*time.Millisecond+firstAnswerSlack {
		t.Errorf("www.gov.az./A: %v, want within a query timeout (300ms) and slack", d)
	}
	waitMetric(t, res, "sovdns_island_mode", nil, 1, natDetectMax)
	t.Logf("island mode %v after the first question", time.Since(start).Round(time.Millisecond))
	if since := time.Since(start); since > natDetectMax {
		t.Errorf("island mode %v after the first question, want within one probe timeout (1s) and slack", since)
	}
	lat := &latencies{phase: "island mode, national hints"}
	roots := int64(o.rootQueries())
	for range 2 {
		askNational(t, res, lat, natPrompt)
	}
	if n := int64(o.rootQueries()) - roots; n != 0 {
		t.Errorf("%d queries to the root for national names in island mode, want 0", n)
	}
	askUnknownForeign(t, res, lat, "unknown", 5)
	lat.log(t)
	// What was learned through the hints is held, and saved.
	if n := metricSum(t, res, "sovdns_resolver_national_infra_entries", nil); n < 2 {
		t.Errorf("sovdns_resolver_national_infra_entries = %v, want at least 2 (gov.az. NS and its server's address)", n)
	}
	st := mustCLI(t, nil, "status", "--data-dir", res.dataDir)
	if !strings.Contains(st.stdout, "national infra:") || !strings.Contains(st.stdout, "island mode:     YES") {
		t.Errorf("sovdns status does not show the national infrastructure and island mode:\n%s", st.stdout)
	}
}

// TestNationalValidation: DNSSEC validation of national names keeps
// working from the keys kept with the national infrastructure after a
// restart with the root cut off and every TTL and stale window past, on
// the hierarchy signed by sovdns (signed_hierarchy_test.go): under the
// test root's anchor (the root's DNSKEY and az.'s DS are kept and saved)
// and under a pinned az. anchor. The root is not asked.
func TestNationalValidation(t *testing.T) {
	t.Parallel()
	n := startSignedNet(t)
	config := func(anchor string) string {
		return fmt.Sprintf(`demo_zone: false
resolver:
  allow: [127.0.0.0/8]
  root_hints: %q
  upstream_port: %d
  query_timeout: 300ms
  query_loopback: true
  max_ttl: %s
  dnssec:
    builtin_root_anchors: false
    trust_anchors: [%q]
  serve_stale:
    max_stale: %s
  persist:
    enabled: true
resilience:
  national_suffixes: [az.]
  island:
    enabled: true
    failures: 2
    probe_interval: 1h
`, n.hints, n.port, natMaxTTL, anchor, natMaxStale)
	}
	ask := func(res *server, name string, qtype uint16) *dns.Msg {
		m := rdQuery(name, qtype)
		m.IsEdns0().SetDo()
		r, _ := exchangeWithin(t, res.dns, m, outageQueryWait)
		return r
	}
	type node struct {
		what, config, dir string
		res               *server
	}
	nodes := []*node{{what: "root anchor", config: config(n.rootDS)}, {what: "pinned az. anchor", config: config(n.azDS)}}
	for _, nd := range nodes {
		nd.dir = t.TempDir()
		nd.res = startServer(t, serveOpts{dataDir: nd.dir, config: nd.config, env: fastExit()})
		if r := ask(nd.res, "www.gov.az.", dns.TypeA); r.Rcode != dns.RcodeSuccess || !r.AuthenticatedData {
			t.Fatalf("%s: www.gov.az. before the cut: rcode %s AD %v", nd.what, dns.RcodeToString[r.Rcode], r.AuthenticatedData)
		}
	}
	warmed := time.Now()

	// The root is cut off: its server stops and a black hole takes its
	// place. Every TTL and the stale window run out.
	n.authorities[ipSignedRoot].stop(t)
	hole, err := startSilentServer(t, n.addr(ipSignedRoot))
	if err != nil {
		t.Fatalf("black hole for the root: %v", err)
	}
	if wait := time.Until(warmed.Add(natMaxTTL + natMaxStale + 300*time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}
	rootQueries := func() int {
		k := int(hole.accepted.Load())
		for _, q := range hole.questions() {
			if q != ". NS" {
				k++
			}
		}
		return k
	}
	for _, nd := range nodes {
		// Two questions for the root make the node an island; the
		// restart keeps it one, with the cache saved at the stop.
		for range 2 {
			ask(nd.res, "nosuchtld.", dns.TypeA)
		}
		waitMetric(t, nd.res, "sovdns_island_mode", nil, 1, islandDetectMax)
		nd.res.stop(t)
		nd.res = startServer(t, serveOpts{dataDir: nd.dir, config: nd.config, env: fastExit()})
		before := rootQueries()
		for _, q := range []struct {
			name  string
			qtype uint16
			rcode int
		}{
			{"www.gov.az.", dns.TypeMX, dns.RcodeSuccess},
			{"nope.gov.az.", dns.TypeA, dns.RcodeNameError},
			{"x.wild.gov.az.", dns.TypeTXT, dns.RcodeSuccess},
		} {
			r := ask(nd.res, q.name, q.qtype)
			if r.Rcode != q.rcode || !r.AuthenticatedData {
				t.Errorf("%s, after a restart with the root cut off: %s %s: rcode %s AD %v, want %s AD\n%v\nlog:\n%s", nd.what, q.name,
					dns.TypeToString[q.qtype], dns.RcodeToString[r.Rcode], r.AuthenticatedData, dns.RcodeToString[q.rcode], r, nd.res.log)
			}
		}
		if k := rootQueries() - before; k != 0 {
			t.Errorf("%s: %d queries to the root for national names after the restart, want 0", nd.what, k)
		}
	}
}
