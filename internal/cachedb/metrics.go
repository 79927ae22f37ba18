package cachedb

import (
	"sync/atomic"
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

	// Write-behind.
	Batches      prometheus.Counter
	WrittenBytes prometheus.Counter
	Fsyncs       prometheus.Counter
	Changes      *prometheus.CounterVec // op: put, delete
	LastWrite    prometheus.Gauge
	FileErrors   prometheus.Counter

	src atomic.Pointer[Writer] // for the lag gauges
}

// NewMetrics creates the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "sovdns", "resolver"
	m := &Metrics{
		SavedEntries: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "cache_saved_entries",
			Help: "Entries written to the resolver cache file by the last successful whole save."}),
		LastSave: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "cache_last_save_timestamp_seconds",
			Help: "Unix time of the last successful whole save of the resolver cache file."}),
		SaveDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "cache_save_duration_seconds",
			Help: "Time taken to write the whole resolver cache file.", Buckets: prometheus.ExponentialBuckets(0.005, 4, 8)}),
		Saves: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cache_saves_total",
			Help: "Whole saves of the resolver cache file (without write-behind, every resolver.persist.interval; with it, the snapshots written at start, every interval and when the log holds more that the cache no longer needs than it needs), by result (ok, error)."}, []string{"result"}),
		LoadedEntries: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "cache_loaded_entries",
			Help: "Entries loaded into the resolver cache from its file at start."}),
		LoadErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cache_load_errors_total",
			Help: "Problems loading the resolver cache file, by reason (file: unusable, nothing loaded; record: one damaged record skipped)."}, []string{"reason"}),

		Batches: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cache_file_batches_total",
			Help: "Write-behind batches (bbolt transactions) committed to the resolver cache file."}),
		WrittenBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cache_file_written_bytes_total",
			Help: "Bytes of pages written to the resolver cache file by write-behind batches."}),
		Fsyncs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cache_file_fsyncs_total",
			Help: "fsyncs of the resolver cache file made by write-behind batches (two per batch)."}),
		Changes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cache_file_changes_total",
			Help: "Entries written to (put) or deleted from (delete) the resolver cache file by write-behind."}, []string{"op"}),
		LastWrite: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "cache_file_last_write_timestamp_seconds",
			Help: "Unix time of the last write-behind batch committed to the resolver cache file."}),
		FileErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cache_file_errors_total",
			Help: "Failed writes of the resolver cache file: batches, saves, or the file not opened."}),
	}
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "cache_file_lag_seconds",
		Help: "Seconds since the oldest change to the resolver cache not yet in its file (0: up to date; without write-behind, since the last save)."},
		func() float64 { return m.status().Lag.Seconds() })
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "cache_file_pending_entries",
		Help: "Changed resolver cache entries not yet written to its file (write-behind)."},
		func() float64 { return float64(m.status().Pending) })
	for _, r := range []string{"ok", "error"} {
		m.Saves.WithLabelValues(r)
	}
	for _, r := range []string{"file", "record"} {
		m.LoadErrors.WithLabelValues(r)
	}
	for _, op := range []string{"put", "delete"} {
		m.Changes.WithLabelValues(op)
	}
	reg.MustRegister(m.SavedEntries, m.LastSave, m.SaveDuration, m.Saves, m.LoadedEntries, m.LoadErrors,
		m.Batches, m.WrittenBytes, m.Fsyncs, m.Changes, m.LastWrite, m.FileErrors, lag, pending)
	return m
}

// setSource makes w the writer the lag gauges describe.
func (m *Metrics) setSource(w *Writer) {
	if m != nil {
		m.src.Store(w)
	}
}

func (m *Metrics) status() FileStatus {
	if w := m.src.Load(); w != nil {
		return w.Status()
	}
	return FileStatus{}
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
