package test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// sample is one line of the text exposition format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape fetches /metrics and returns the body.
func scrape(t *testing.T, addr string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), queryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s\n%s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q; want the text format", ct)
	}
	return body
}

// parseSamples reads the samples of a text exposition. Label values may not
// contain '"' or ',' here, which holds for sovdns's labels.
func parseSamples(t *testing.T, body []byte) []sample {
	t.Helper()
	var out []sample
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q: %v", line, err)
		}
		s := sample{labels: map[string]string{}, value: v}
		series := line[:i]
		if j := strings.IndexByte(series, '{'); j >= 0 {
			s.name = series[:j]
			for _, kv := range strings.Split(strings.TrimSuffix(series[j+1:], "}"), ",") {
				k, val, _ := strings.Cut(kv, "=")
				s.labels[k] = strings.Trim(val, `"`)
			}
		} else {
			s.name = series
		}
		out = append(out, s)
	}
	return out
}

// find returns the value of the series name{labels}, and whether it exists.
func find(samples []sample, name string, labels map[string]string) (float64, bool) {
	for _, s := range samples {
		if s.name != name || len(s.labels) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if s.labels[k] != v {
				match = false
				break
			}
		}
		if match {
			return s.value, true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	s := zoneServer(t, "")

	// A known mix of queries; repeats are answered from the response cache
	// and must be counted all the same.
	for range 3 {
		exchangeOnce(t, "udp", s.dns, newQuery("www.example.com.", dns.TypeA))
	}
	for range 2 {
		exchangeOnce(t, "tcp", s.dns, newQuery("www.example.com.", dns.TypeMX))
	}
	exchangeOnce(t, "udp", s.dns, newQuery("nope.example.com.", dns.TypeA))
	for range 2 {
		exchangeOnce(t, "udp", s.dns, newQuery("www.example.net.", dns.TypeA))
	}
	exchangeOnce(t, "udp", s.dns, newQuery("www.example.com.", dns.TypeHINFO))
	exchangeOnce(t, "udp", s.dns, newQuery("big.example.com.", dns.TypeTXT))

	body := scrape(t, s.metrics)
	samples := parseSamples(t, body)

	queries := []struct {
		transport, zone, qtype, rcode string
		want                          float64
	}{
		{transport: "udp", zone: "example.com.", qtype: "A", rcode: "NOERROR", want: 3},
		{transport: "tcp", zone: "example.com.", qtype: "MX", rcode: "NOERROR", want: 2},
		{transport: "udp", zone: "example.com.", qtype: "A", rcode: "NXDOMAIN", want: 1},
		{transport: "udp", zone: "none", qtype: "A", rcode: "REFUSED", want: 2},
		{transport: "udp", zone: "example.com.", qtype: "other", rcode: "NOERROR", want: 1},
		{transport: "udp", zone: "example.com.", qtype: "TXT", rcode: "NOERROR", want: 1},
	}
	var total float64
	for _, s := range samples {
		if s.name == "sovdns_queries_total" {
			total += s.value
		}
	}
	if total != 10 {
		t.Errorf("sovdns_queries_total sums to %v; 10 queries were sent", total)
	}
	for _, q := range queries {
		labels := map[string]string{"transport": q.transport, "zone": q.zone, "qtype": q.qtype, "rcode": q.rcode}
		got, ok := find(samples, "sovdns_queries_total", labels)
		if !ok || got != q.want {
			t.Errorf("sovdns_queries_total%v = %v (present %v); want %v", labels, got, ok, q.want)
		}
	}
	if got, ok := find(samples, "sovdns_responses_truncated_total", map[string]string{"transport": "udp"}); !ok || got != 1 {
		t.Errorf("sovdns_responses_truncated_total{transport=udp} = %v (present %v); want 1", got, ok)
	}

	zoneLabel := map[string]string{"zone": "example.com."}
	if got, ok := find(samples, "sovdns_zone_serial", zoneLabel); !ok || got != 2024060101 {
		t.Errorf("sovdns_zone_serial = %v (present %v); want 2024060101", got, ok)
	}
	if got, ok := find(samples, "sovdns_zone_records", zoneLabel); !ok || got != float64(len(parseZone(t, testZone))) {
		t.Errorf("sovdns_zone_records = %v (present %v); want %d", got, ok, len(parseZone(t, testZone)))
	}
	if got, ok := find(samples, "sovdns_zones_loaded", nil); !ok || got != 1 {
		t.Errorf("sovdns_zones_loaded = %v (present %v); want 1", got, ok)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "go_gc_duration_seconds_count", "process_resident_memory_bytes"} {
		if _, ok := find(samples, name, nil); !ok {
			t.Errorf("%s missing from /metrics", name)
		}
	}
	for _, s := range samples {
		if s.name == "sovdns_build_info" && s.labels["version"] == "" {
			t.Errorf("sovdns_build_info without a version: %v", s.labels)
		}
	}

	// No label may carry a query name or a client address.
	for _, s := range samples {
		for k, v := range s.labels {
			if strings.Contains(v, "www.") || strings.Contains(v, "nope") || strings.Contains(v, "127.0.0.1") {
				t.Errorf("%s has label %s=%q: query names and addresses must not become labels", s.name, k, v)
			}
		}
	}

	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "sovdns_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

// TestMetricsZoneSeriesMax: above metrics.zone_series_max zones the series
// per zone go and queries are counted under zone "all"; with a zone
// deleted, back at the maximum, they come back.
func TestMetricsZoneSeriesMax(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	importZoneOrigin(t, dir, "a.test.", memberZone("a.test.", 1))
	importZoneOrigin(t, dir, "b.test.", memberZone("b.test.", 1))
	s := startOn(t, "127.0.0.1:0", dir, "demo_zone: false\nudp_sockets: 1\nmetrics:\n  zone_series_max: 1\n")
	query := func() {
		if r := exchange(t, "udp", s.dns, newQuery("www.a.test.", dns.TypeA)); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("www.a.test. A: %v", r)
		}
	}
	query()
	samples := parseSamples(t, scrape(t, s.metrics))
	if v, _ := find(samples, "sovdns_zones_loaded", map[string]string{}); v != 2 {
		t.Errorf("sovdns_zones_loaded %v; want 2", v)
	}
	if v, _ := find(samples, "sovdns_records_loaded", map[string]string{}); v != 8 {
		t.Errorf("sovdns_records_loaded %v; want 8 (4 records in each zone)", v)
	}
	udpA := func(zone string) map[string]string {
		return map[string]string{"transport": "udp", "zone": zone, "qtype": "A", "rcode": "NOERROR"}
	}
	if v, _ := find(samples, "sovdns_queries_total", udpA("all")); v != 1 {
		t.Errorf("queries counted under zone \"all\": %v; want 1", v)
	}
	for _, sm := range samples {
		if sm.labels["zone"] == "a.test." || sm.labels["zone"] == "b.test." {
			t.Errorf("a series per zone with 2 zones held and zone_series_max 1: %s %v", sm.name, sm.labels)
		}
	}

	mustCLI(t, fastExit(), "zone", "delete", "b.test", "--yes", "--data-dir", dir)
	waitUntil(t, 20*time.Second, "zone_records of a.test. back once one zone is held",
		func() bool {
			return metricValue(t, s, "sovdns_zone_records", map[string]string{"zone": "a.test."}) == 4
		}, func() string { return string(scrape(t, s.metrics)) })
	query()
	samples = parseSamples(t, scrape(t, s.metrics))
	if v, _ := find(samples, "sovdns_queries_total", udpA("a.test.")); v != 1 {
		t.Errorf("queries counted under zone a.test.: %v; want 1", v)
	}
	if _, ok := find(samples, "sovdns_queries_total", udpA("all")); ok {
		t.Errorf("zone \"all\" still counted with metrics per zone on")
	}
}
