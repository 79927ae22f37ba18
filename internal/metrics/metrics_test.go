package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/resolver"
)

// TestNamesPassPromlint checks every collector, the resolver's included,
// against the Prometheus naming conventions.
func TestNamesPassPromlint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Queries.WithLabelValues("udp", "example.", "A", "NOERROR").Inc()
	m.Duration.WithLabelValues("udp").Observe(0.001)
	m.Truncated.WithLabelValues("udp").Inc()
	m.Dropped.WithLabelValues("short").Inc()
	m.ZoneRecords.WithLabelValues("example.").Set(1)
	m.ZoneSerial.WithLabelValues("example.").Set(1)
	m.StoreErrors.WithLabelValues("load").Inc()
	m.BuildInfo.WithLabelValues("test", "go").Set(1)
	m.SecondaryExpiry.WithLabelValues("example.").Set(1)
	m.SetSecondaryTotals(func() (int, int64, int64) { return 0, 1, 2 })
	metrics.RegisterResolver(reg, &resolver.Stats{}, resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20}))

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if len(p.Metric) > 7 && p.Metric[:7] == "sovdns_" {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
	var resolverMetrics int
	for _, f := range families {
		if len(f.GetName()) > 16 && f.GetName()[:16] == "sovdns_resolver_" {
			resolverMetrics++
		}
	}
	if resolverMetrics < 8 {
		t.Errorf("%d sovdns_resolver_ families, want at least 8", resolverMetrics)
	}
}

func TestQtypeAndRcodeLabelsAreBounded(t *testing.T) {
	for _, tc := range []struct {
		qtype uint16
		want  string
	}{{1, "A"}, {28, "AAAA"}, {65000, metrics.TypeOther}, {0, metrics.TypeOther}} {
		if got := metrics.QtypeLabel(tc.qtype); got != tc.want {
			t.Errorf("QtypeLabel(%d) = %q, want %q", tc.qtype, got, tc.want)
		}
	}
	if got := metrics.RcodeLabel(4000); got != "other" {
		t.Errorf("RcodeLabel(4000) = %q", got)
	}
}

// TestGoCPUClasses: the CPU the garbage collector and the scavenger took
// is exported, by class, beside the Go collector's defaults.
func TestGoCPUClasses(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range families {
		have[f.GetName()] = true
	}
	for _, name := range []string{
		"go_cpu_classes_gc_mark_assist_cpu_seconds_total", "go_cpu_classes_gc_total_cpu_seconds_total",
		"go_cpu_classes_scavenge_assist_cpu_seconds_total", "go_cpu_classes_scavenge_background_cpu_seconds_total",
		"go_gc_duration_seconds", "go_memstats_heap_inuse_bytes", // the defaults the dashboard uses
	} {
		if !have[name] {
			t.Errorf("no %s", name)
		}
	}
	if have["go_cpu_classes_user_cpu_seconds_total"] {
		t.Error("go_cpu_classes_user_cpu_seconds_total exported: only the collector's and the scavenger's classes are")
	}
}
