package test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// writeBehind is resolver.persist.write_behind in TestCacheSurvivesSIGKILL.
const writeBehind = time.Second

// restartAnswerMax bounds each answer of the restarted, cut-off resolver:
// every one comes from the cache file, none waits on the dead hierarchy or
// for a stale answer's timer (serve_stale.client_timeout, staleTimer in
// this test). From the cache an answer takes milliseconds, but one took
// 330 ms on a machine running the whole suite under the race detector:
// the bound is well above that and well below the timer.
const (
	restartAnswerMax = 1500 * time.Millisecond
	staleTimer       = 3 * time.Second
)

// TestCacheSurvivesSIGKILL: a resolver whose cache file is written behind
// (resolver.persist.write_behind) is killed with SIGKILL moments after it
// answered, as a power cut or an OOM kill would, and restarted with every
// upstream server gone. Every question answered before the kill is answered
// again, from the file, at once. Two moments: once the file caught up with
// the write-behind window; and, with a window too long to matter, once
// island mode started, which writes the file at once.
func TestCacheSurvivesSIGKILL(t *testing.T) {
	t.Run("write-behind caught up", func(t *testing.T) {
		cacheSurvivesKill(t, false)
	})
	t.Run("island mode entered", func(t *testing.T) {
		cacheSurvivesKill(t, true)
	})
}

// sigkillQuestions are asked before the kill and again after the restart.
var sigkillQuestions = []struct {
	name  string
	qtype uint16
}{
	{"www.gov.az.", dns.TypeA},
	{"www.gov.az.", dns.TypeAAAA},
	{"portal.gov.az.", dns.TypeA},     // CNAME in the zone
	{"e-services.gov.az.", dns.TypeA}, // CNAME to a foreign name
	{"mail.gov.az.", dns.TypeA},
	{"gov.az.", dns.TypeMX},
	{"x.apps.gov.az.", dns.TypeA},       // wildcard
	{"www.mfa.gov.az.", dns.TypeA},      // out-of-bailiwick name server
	{"www.gov.az.", dns.TypeTXT},        // NODATA
	{"nothing.gov.az.", dns.TypeA},      // NXDOMAIN
	{"www.example.com.", dns.TypeA},     // foreign
	{"www.example.net.", dns.TypeA},     // sibling glue
	{"nothing.example.com.", dns.TypeA}, // foreign NXDOMAIN
}

func cacheSurvivesKill(t *testing.T, island bool) {
	h := startHierarchy(t)
	dir := t.TempDir()
	wb := writeBehind
	if island {
		wb = time.Minute // only island mode's trigger writes within the test
	}
	config := h.resolverConfig("127.0.0.0/8") + "  persist:\n    write_behind: " + wb.String() + "\n" +
		"  serve_stale:\n    client_timeout: " + staleTimer.String() + "\n" +
		"resilience:\n  island:\n    failures: 2\n    probe_interval: 1s\n"
	res := startServer(t, serveOpts{dataDir: dir, config: config, env: fastExit()})

	before := make([]*dns.Msg, len(sigkillQuestions))
	for i, q := range sigkillQuestions {
		r := exchange(t, "udp", res.dns, rdQuery(q.name, q.qtype))
		if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
			t.Fatalf("%s/%s before the kill: %s\nlog:\n%s", q.name, dns.TypeToString[q.qtype], dns.RcodeToString[r.Rcode], res.log)
		}
		before[i] = r
	}
	answered := time.Now()

	if island {
		// The cut: every server of the hierarchy gone. Questions the cache
		// cannot answer fail until the probes find no one: island mode.
		for _, s := range h.servers {
			s.stop(t)
		}
		for i := 0; i < 50 && metricSum(t, res, "sovdns_island_mode", nil) != 1; i++ {
			exchange(t, "udp", res.dns, rdQuery(fmt.Sprintf("new%d.example.com.", i), dns.TypeA))
		}
		waitMetric(t, res, "sovdns_island_mode", nil, 1, 10*time.Second)
	}

	// The cache file catches up: within the write-behind window, or at
	// once as island mode starts. Nothing pending means every change is
	// committed.
	waitMetric(t, res, "sovdns_resolver_cache_file_pending_entries", nil, 0, writeBehind+10*time.Second)
	if n := metricSum(t, res, "sovdns_resolver_cache_file_batches_total", nil); n < 1 {
		t.Fatalf("no write-behind batch counted (%v)", n)
	}
	caughtUp := time.Since(answered)
	var st struct {
		Resolver struct {
			CacheFile *struct {
				Path           string  `json:"path"`
				PendingEntries int     `json:"pending_entries"`
				LagSeconds     float64 `json:"lag_seconds"`
				Open           bool    `json:"open"`
			} `json:"cache_file"`
		} `json:"resolver"`
	}
	out := mustCLI(t, fastExit(), "status", "--json", "--data-dir", dir).stdout
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("sovdns status --json: %v\n%s", err, out)
	}
	if f := st.Resolver.CacheFile; f == nil || !f.Open || !strings.HasSuffix(f.Path, "resolver-cache.db") {
		t.Errorf("sovdns status: cache file %+v\n%s", f, out)
	}
	if text := mustCLI(t, fastExit(), "status", "--data-dir", dir).stdout; !strings.Contains(text, "cache file:") {
		t.Errorf("sovdns status does not show the cache file:\n%s", text)
	}

	res.kill(t)
	killedAfter := time.Since(answered)
	for _, s := range h.servers {
		s.stop(t)
	}

	res = startServer(t, serveOpts{dataDir: dir, config: config, env: fastExit()})
	if !strings.Contains(res.log.String(), "resolver cache loaded") {
		t.Errorf("the cache file was not loaded:\n%s", res.log)
	}
	if island && metricSum(t, res, "sovdns_island_mode", nil) != 1 {
		t.Errorf("the restarted node is not the island it was")
	}
	var slowest time.Duration
	for i, q := range sigkillQuestions {
		start := time.Now()
		r := exchange(t, "udp", res.dns, rdQuery(q.name, q.qtype))
		took := time.Since(start)
		slowest = max(slowest, took)
		what := q.name + "/" + dns.TypeToString[q.qtype]
		if r.Rcode != before[i].Rcode || !slices.Equal(withoutTTL(r.Answer), withoutTTL(before[i].Answer)) {
			t.Errorf("%s after the kill: %s %v; before: %s %v", what, dns.RcodeToString[r.Rcode], r.Answer,
				dns.RcodeToString[before[i].Rcode], before[i].Answer)
		}
		if took > restartAnswerMax {
			t.Errorf("%s after the kill took %v, more than %v", what, took, restartAnswerMax)
		}
	}
	t.Logf("%d questions; file caught up %v after the answers, killed %v after them; after the restart, with every upstream gone, the slowest answer took %v",
		len(sigkillQuestions), caughtUp.Round(time.Millisecond), killedAfter.Round(time.Millisecond), slowest.Round(time.Microsecond))
}

// withoutTTL returns the records of rrs as text with TTL 0, sorted.
func withoutTTL(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Ttl = 0
		out = append(out, c.String())
	}
	slices.Sort(out)
	return out
}
