package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/zone"
)

// Metrics are the audit's collectors. The zone label takes the origins of
// the zones held under the national suffixes only.
type Metrics struct {
	Foreign    *prometheus.GaugeVec // zone: names with a foreign dependency
	Unresolved *prometheus.GaugeVec // zone: names with a dependency that could not be followed
	LastRun    prometheus.Gauge     // unix time the last run ended
	Runs       *prometheus.CounterVec
}

// Results of a run, the values of the result label of Runs.
const (
	RunOK    = "ok"    // every zone was audited
	RunError = "error" // some zone could not be
)

// NewMetrics creates the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "sovdns", "audit"
	m := &Metrics{
		Foreign: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "foreign_dependencies",
			Help: "Names of a national zone whose resolution, mail or service depends on a name or name server outside the national suffixes, at the last audit."},
			[]string{"zone"}),
		Unresolved: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "unresolved",
			Help: "Names of a national zone with a dependency the last audit could not follow (a lookup failed or a limit was reached)."},
			[]string{"zone"}),
		LastRun: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "last_run_timestamp_seconds",
			Help: "Unix time the last foreign-dependency audit ended."}),
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "runs_total",
			Help: "Foreign-dependency audits of the national zones held, by result (ok, or error when a zone could not be audited)."},
			[]string{"result"}),
	}
	m.Runs.WithLabelValues(RunOK)
	m.Runs.WithLabelValues(RunError)
	reg.MustRegister(m.Foreign, m.Unresolved, m.LastRun, m.Runs)
	return m
}

// firstRun is how long Run waits before its first audit: the resolver's
// cache and probes have settled by then.
const firstRun = time.Minute

// Run audits the zones held every interval until ctx ends; interval 0
// (resilience.audit_interval: 0) turns it off. zones returns the zones held
// now; those whose origin is under none of suffixes are left out, so a
// mirror of the root is not audited. res may be nil (recursion off): chains
// are then followed through each zone's own data. The first audit comes a
// minute after start, or after interval if shorter.
func Run(ctx context.Context, interval time.Duration, zones func() []*zone.Zone, suffixes []string, res Resolver, m *Metrics, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		return
	}
	if len(suffixes) == 0 {
		log.Warn("foreign-dependency audit off: resilience.national_suffixes is empty, so nothing is national",
			"audit_interval", interval)
		return
	}
	t := time.NewTimer(min(firstRun, interval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		RunOnce(ctx, zones(), suffixes, res, Options{}, m, log)
		t.Reset(interval)
	}
}

// RunOnce audits each of zs under the suffixes, one after the other, and
// sets the metrics (m may be nil): the gauges then hold exactly the zones
// audited. It returns the reports of the zones audited.
func RunOnce(ctx context.Context, zs []*zone.Zone, suffixes []string, res Resolver, opts Options, m *Metrics, log *slog.Logger) []Report {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var reports []Report
	failed := false
	for _, z := range zs {
		if !National(z.Origin, suffixes) {
			continue
		}
		rep, err := Deps(ctx, z, suffixes, res, opts)
		if ctx.Err() != nil {
			return reports // shutting down: not a failed run
		}
		if err != nil {
			failed = true
			log.Error("foreign-dependency audit failed", "zone", z.Origin, "err", err)
			continue
		}
		reports = append(reports, rep)
		lvl := slog.LevelInfo
		if rep.Foreign > 0 || rep.Unresolved > 0 {
			lvl = slog.LevelWarn
		}
		log.Log(ctx, lvl, "foreign-dependency audit: "+rep.Summary()+"; details: sovdns audit deps "+rep.Zone,
			"zone", rep.Zone, "foreign_names", rep.Foreign, "unresolved_names", rep.Unresolved,
			"lookups", rep.Lookups, "duration", rep.Duration.Round(time.Millisecond))
	}
	if m == nil {
		return reports
	}
	m.Foreign.Reset()
	m.Unresolved.Reset()
	for _, rep := range reports {
		m.Foreign.WithLabelValues(rep.Zone).Set(float64(rep.Foreign))
		m.Unresolved.WithLabelValues(rep.Zone).Set(float64(rep.Unresolved))
	}
	m.LastRun.Set(float64(time.Now().Unix()))
	if failed {
		m.Runs.WithLabelValues(RunError).Inc()
	} else {
		m.Runs.WithLabelValues(RunOK).Inc()
	}
	return reports
}
