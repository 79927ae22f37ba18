package audit

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/sovdns/sovdns/zone"
)

// heldZones are what a node holds: two national zones and a mirror of the
// root, which is not audited.
func heldZones(t *testing.T) []*zone.Zone {
	t.Helper()
	return []*zone.Zone{
		parseZone(t, ".", "@ SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400\n@ NS a.root-servers.net.\n"),
		parseZone(t, "gov.az.", govApex+"www CNAME cdn.example.com.\nmail MX 10 mx.outlook.com.\nb CNAME x.broken.az.\n"),
		parseZone(t, "edu.az.", govApex+"www CNAME www.good.az.\n"),
	}
}

func TestRunOnceSetsMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	reports := RunOnce(t.Context(), heldZones(t), national, newFake(t), Options{}, m, slog.New(slog.DiscardHandler))
	if len(reports) != 2 {
		t.Fatalf("%d reports, want 2 (the root is not national)", len(reports))
	}
	want := `
# HELP sovdns_audit_foreign_dependencies Names of a national zone whose resolution, mail or service depends on a name or name server outside the national suffixes, at the last audit.
# TYPE sovdns_audit_foreign_dependencies gauge
sovdns_audit_foreign_dependencies{zone="edu.az."} 0
sovdns_audit_foreign_dependencies{zone="gov.az."} 2
# HELP sovdns_audit_unresolved Names of a national zone with a dependency the last audit could not follow (a lookup failed or a limit was reached).
# TYPE sovdns_audit_unresolved gauge
sovdns_audit_unresolved{zone="edu.az."} 0
sovdns_audit_unresolved{zone="gov.az."} 1
# HELP sovdns_audit_runs_total Foreign-dependency audits of the national zones held, by result (ok, or error when a zone could not be audited).
# TYPE sovdns_audit_runs_total counter
sovdns_audit_runs_total{result="error"} 0
sovdns_audit_runs_total{result="ok"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"sovdns_audit_foreign_dependencies", "sovdns_audit_unresolved", "sovdns_audit_runs_total"); err != nil {
		t.Error(err)
	}
	if v := testutil.ToFloat64(m.LastRun); time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("last run timestamp %v", v)
	}

	// A zone no longer held leaves the gauges at the next run.
	RunOnce(t.Context(), heldZones(t)[2:], national, newFake(t), Options{}, m, nil)
	if n := testutil.CollectAndCount(m.Foreign); n != 1 {
		t.Errorf("%d foreign_dependencies series after gov.az. went, want 1", n)
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestRunOnceCancelled: a run cut short by shutdown is neither counted
// nor reported.
func TestRunOnceCancelled(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if reps := RunOnce(ctx, heldZones(t), national, newFake(t), Options{}, m, nil); len(reps) != 0 {
		t.Errorf("cancelled run: %d reports", len(reps))
	}
	if got := testutil.ToFloat64(m.Runs.WithLabelValues(RunOK)) + testutil.ToFloat64(m.Runs.WithLabelValues(RunError)); got != 0 {
		t.Errorf("a run cut short by shutdown was counted (%v)", got)
	}
}

func TestRun(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			Run(t.Context(), 0, func() []*zone.Zone { t.Error("zones asked for with the audit off"); return nil }, national, nil, nil, nil)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run with interval 0 did not return")
		}
	})
	t.Run("no suffixes", func(t *testing.T) {
		Run(t.Context(), time.Millisecond, func() []*zone.Zone { t.Error("zones asked for without suffixes"); return nil }, nil, nil, nil, nil)
	})
	t.Run("runs until cancelled", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		m := NewMetrics(reg)
		ctx, cancel := context.WithCancel(t.Context())
		runs := make(chan struct{}, 10)
		zones := func() []*zone.Zone {
			select {
			case runs <- struct{}{}:
			default:
			}
			return heldZones(t)[1:]
		}
		done := make(chan struct{})
		go func() { Run(ctx, 10*time.Millisecond, zones, national, newFake(t), m, nil); close(done) }()
		for range 2 {
			select {
			case <-runs:
			case <-time.After(5 * time.Second):
				t.Fatal("no audit run")
			}
		}
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not stop when its context ended")
		}
		if testutil.ToFloat64(m.Runs.WithLabelValues(RunOK)) < 1 {
			t.Error("no run counted")
		}
	})
}
