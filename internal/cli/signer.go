package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/zonestore"
)

// signerMetrics are the signing maintenance's gauges and counters.
type signerMetrics struct {
	expiry   *prometheus.GaugeVec
	earliest prometheus.Gauge
	resigns  *prometheus.CounterVec
	// rollover: when the next step of each key rollover under way can be
	// taken, by zone, role and what it waits for (rolloverWait*).
	rollover *prometheus.GaugeVec
	// perZone reports whether series are kept per zone (nil: always).
	perZone func() bool
}

// newSignerMetrics registers the signing metrics on reg; with node set,
// the series per zone follow its per-zone setting.
func newSignerMetrics(reg prometheus.Registerer, node *metrics.Metrics) *signerMetrics {
	m := &signerMetrics{
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sovdns_dnssec_signature_expiry_timestamp_seconds",
			Help: "When the earliest-expiring signature of a signed zone expires (Unix time); absent while metrics per zone are off (metrics.zone_series_max).",
		}, []string{"zone"}),
		earliest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sovdns_dnssec_signature_expiry_earliest_timestamp_seconds",
			Help: "When the earliest-expiring signature of any signed zone expires (Unix time), as of the last signing maintenance run; 0 while no zone is signed.",
		}),
		resigns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sovdns_dnssec_maintenance_total",
			Help: "Signing maintenance runs that re-signed a zone, by result (resigned, error).",
		}, []string{"result"}),
		rollover: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sovdns_dnssec_rollover_next_step_timestamp_seconds",
			Help: "When the next step of a key rollover under way can be taken (Unix time), as of the last signing maintenance run, by zone, key role (ksk, zsk, csk) and what the step waits for: " +
				"waiting=\"time\", the time from which signing maintenance takes it (a pre-published ZSK starts signing, a retired ZSK leaves DNSKEY); " +
				"waiting=\"parent\", the time since which it has waited for the parent's servers to publish the new DS or withdraw the retired key's (a KSK or CSK double-DS rollover). " +
				"Absent when no rollover is under way; while metrics per zone are off (metrics.zone_series_max), zone \"all\" with the earliest of each role.",
		}, []string{"zone", "role", "waiting"}),
	}
	reg.MustRegister(m.expiry, m.earliest, m.resigns, m.rollover)
	if node != nil {
		m.perZone = node.PerZone
		node.OnPerZone(func(on bool) {
			if !on {
				m.expiry.Reset()
			}
			// Per zone or zone "all": either way the series held are of
			// the other kind until the next run.
			m.rollover.Reset()
		})
	}
	return m
}

// The values of the rollover metric's waiting label.
const (
	rolloverWaitTime   = "time"   // signing maintenance takes the step when due
	rolloverWaitParent = "parent" // waits for the parent's servers to publish or withdraw a DS
)

// rolloverSeries names one series of the rollover metric.
type rolloverSeries struct{ zone, role, waiting string }

// maintainSigning refreshes signatures and takes due rollover steps for
// every signed zone, now and then every interval, until ctx ends.
func maintainSigning(ctx context.Context, st *zonestore.Store, parent control.ParentChecker, m *signerMetrics, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		maintainOnce(ctx, st, parent, m, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maintainOnce is one run of maintainSigning over every signed zone.
//
// A zone whose KSK or CSK rollover waits for the parent has the parent's
// servers asked first (parent; nil: not asked), so that the run takes the
// steps what they publish allows.
func maintainOnce(ctx context.Context, st *zonestore.Store, parent control.ParentChecker, m *signerMetrics, log *slog.Logger) {
	names, err := st.SigningZones()
	if err != nil {
		log.Error("signing maintenance: list zones", "err", err)
	}
	m.expiry.Reset()
	perZone := m.perZone == nil || m.perZone()
	var earliest time.Time
	steps := make(map[rolloverSeries]time.Time)
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		if parent != nil {
			askParent(ctx, st, parent, name, log)
		}
		did, res, err := st.Maintain(name)
		switch {
		case err != nil:
			m.resigns.WithLabelValues("error").Inc()
			log.Error("signing maintenance failed; the zone keeps its current signatures", "zone", name, "err", err)
		case did:
			m.resigns.WithLabelValues("resigned").Inc()
			log.Info("zone re-signed", "zone", name, "serial", res.Serial)
		}
		s, err := st.DNSSEC(name)
		if err != nil || !s.Signed {
			continue
		}
		if !s.FirstExpiry.IsZero() {
			if perZone {
				m.expiry.WithLabelValues(name).Set(float64(s.FirstExpiry.Unix()))
			}
			if earliest.IsZero() || s.FirstExpiry.Before(earliest) {
				earliest = s.FirstExpiry
			}
			if s.Guard != "" {
				log.Warn("DNSSEC expiry guard", "zone", name, "problem", s.Guard)
			}
		}
		for _, step := range s.Rollover {
			k := rolloverSeries{zone: metrics.ZoneAll, role: string(step.Role), waiting: rolloverWaitTime}
			if perZone {
				k.zone = name
			}
			if step.Parent {
				k.waiting = rolloverWaitParent
			}
			if at, ok := steps[k]; !ok || step.At.Before(at) {
				steps[k] = step.At
			}
		}
	}
	// Replaced whole at the end of a run, so that the series do not
	// vanish while it runs; kept as they were when the zones could not
	// be listed, so that a step left overdue still shows.
	if err == nil && ctx.Err() == nil {
		m.rollover.Reset()
		for k, at := range steps {
			m.rollover.WithLabelValues(k.zone, k.role, k.waiting).Set(float64(at.Unix()))
		}
	}
	switch {
	case !earliest.IsZero():
		m.earliest.Set(float64(earliest.Unix()))
	case err == nil && ctx.Err() == nil:
		m.earliest.Set(0) // no zone is signed any more
	}
}

// askParent records what the parent's servers publish as the zone's DS,
// when one of its rollover steps waits for that.
func askParent(ctx context.Context, st *zonestore.Store, parent control.ParentChecker, name string, log *slog.Logger) {
	servers, wait, err := st.ParentServers(name)
	if err != nil || !wait {
		return
	}
	v := parent.Check(ctx, name, servers)
	if ctx.Err() != nil {
		return
	}
	if v.Err != "" {
		log.Warn("DNSSEC rollover: the parent's servers could not be asked", "zone", name, "err", v.Err)
	}
	for _, s := range v.Servers {
		if s.Err != "" {
			log.Warn("DNSSEC rollover: a parent server gave no answer", "zone", name, "server", s.Server, "err", s.Err)
		}
	}
	if err := st.SetParentView(name, v); err != nil {
		log.Error("DNSSEC rollover: record what the parent publishes", "zone", name, "err", err)
	}
}
