package cachedb

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the collectors of the cache file. A nil *Metrics records
// nothing.
type Metrics struct {
	SavedEntries  prometheus.Gauge
	LastSave      prometheus.Gauge
	SaveDuration  prometheus.Histogram
	Saves         *prometheus.CounterVec // result: ok, error
	LoadedEntries prometheus.Gauge
	LoadErrors    *prometheus.CounterVec // reason: file (nothing loaded), record (one skipped)
}

// NewMetrics creates the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "sovdns", "resolver"
	m := &Metrics{
		SavedEntries: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "cache_saved_entries",
			Help: "Entries written to the resolver cache file by the last successful save."}),
		LastSave: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "cache_last_save_timestamp_seconds",
			Help: "Unix time of the last successful save of the resolver cache file."}),
		SaveDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "cache_save_duration_seconds",
			Help: "Time taken to write the resolver cache file.", Buckets: prometheus.ExponentialBuckets(0.005, 4, 8)}),
		Saves: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cache_saves_total",
			Help: "Saves of the resolver cache file, by result (ok, error)."}, []string{"result"}),
		LoadedEntries: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "cache_loaded_entries",
			Help: "Entries loaded into the resolver cache from its file at start."}),
		LoadErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cache_load_errors_total",
			Help: "Problems loading the resolver cache file, by reason (file: unusable, nothing loaded; record: one damaged record skipped)."}, []string{"reason"}),
	}
	for _, r := range []string{"ok", "error"} {
		m.Saves.WithLabelValues(r)
	}
	for _, r := range []string{"file", "record"} {
		m.LoadErrors.WithLabelValues(r)
	}
	reg.MustRegister(m.SavedEntries, m.LastSave, m.SaveDuration, m.Saves, m.LoadedEntries, m.LoadErrors)
	return m
}

// ObserveLoad records the outcome of Load.
func (m *Metrics) ObserveLoad(st Stats, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.LoadErrors.WithLabelValues("file").Inc()
		return
	}
	m.LoadedEntries.Set(float64(st.Entries))
	m.LoadErrors.WithLabelValues("record").Add(float64(st.Bad))
}

// observeSave records the outcome of Save.
func (m *Metrics) observeSave(st Stats, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.SaveDuration.Observe(took.Seconds())
	if err != nil {
		m.Saves.WithLabelValues("error").Inc()
		return
	}
	m.Saves.WithLabelValues("ok").Inc()
	m.SavedEntries.Set(float64(st.Entries))
	m.LastSave.Set(float64(st.SavedAt.UnixNano()) / 1e9)
}
