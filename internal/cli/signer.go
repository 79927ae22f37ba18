package cli

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/zone"
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

	// mu guards what the gauges are set from: each signed zone as the
	// last maintenance run or commit left it, and the zones committed
	// since (dirty), which wake watchCommits.
	mu    sync.Mutex
	zones map[string]zoneSigning
	dirty map[string]bool
	wake  chan struct{}
}

// newSignerMetrics registers the signing metrics on reg; with node set,
// the series per zone follow its per-zone setting.
func newSignerMetrics(reg prometheus.Registerer, node *metrics.Metrics) *signerMetrics {
	m := &signerMetrics{
		zones: make(map[string]zoneSigning),
		dirty: make(map[string]bool),
		wake:  make(chan struct{}, 1),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sovdns_dnssec_signature_expiry_timestamp_seconds",
			Help: "When the earliest-expiring signature of a signed zone expires (Unix time), as of the last signing maintenance run or commit of the zone; absent while metrics per zone are off (metrics.zone_series_max).",
		}, []string{"zone"}),
		earliest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sovdns_dnssec_signature_expiry_earliest_timestamp_seconds",
			Help: "When the earliest-expiring signature of any signed zone expires (Unix time), as of the last signing maintenance run or commit of a signed zone; 0 while no zone is signed.",
		}),
		resigns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sovdns_dnssec_maintenance_total",
			Help: "Signing maintenance runs that re-signed a zone, by result (resigned, error).",
		}, []string{"result"}),
		rollover: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sovdns_dnssec_rollover_next_step_timestamp_seconds",
			Help: "When the next step of a key rollover under way can be taken (Unix time), as of the last signing maintenance run or commit of the zone, by zone, key role (ksk, zsk, csk) and what the step waits for: " +
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
	if parent != nil {
		askParents(ctx, st, parent, names, log)
	}
	seen := make(map[string]zoneSigning, len(names))
	for _, name := range names {
		if ctx.Err() != nil {
			return
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
		if s.Guard != "" {
			log.Warn("DNSSEC expiry guard", "zone", name, "problem", s.Guard)
		}
		seen[name] = zoneSigning{expiry: s.FirstExpiry, steps: s.Rollover}
	}
	// Replaced whole at the end of a run, so that the series do not
	// vanish while it runs; kept as they were when the zones could not
	// be listed, so that a step left overdue still shows.
	m.mu.Lock()
	if err == nil && ctx.Err() == nil {
		m.zones = seen
	} else {
		maps.Copy(m.zones, seen)
	}
	m.publishLocked()
	m.mu.Unlock()
}

// zoneSigning is what the signing metrics show of one signed zone.
type zoneSigning struct {
	expiry time.Time     // the earliest signature expiry; zero for none
	steps  []dnssec.Step // of the rollovers under way
}

// publishLocked sets the gauges from m.zones; m.mu is held.
func (m *signerMetrics) publishLocked() {
	perZone := m.perZone == nil || m.perZone()
	m.expiry.Reset()
	var earliest time.Time
	steps := make(map[rolloverSeries]time.Time)
	for name, z := range m.zones {
		if !z.expiry.IsZero() {
			if perZone {
				m.expiry.WithLabelValues(name).Set(float64(z.expiry.Unix()))
			}
			if earliest.IsZero() || z.expiry.Before(earliest) {
				earliest = z.expiry
			}
		}
		for _, step := range z.steps {
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
	m.rollover.Reset()
	for k, at := range steps {
		m.rollover.WithLabelValues(k.zone, k.role, k.waiting).Set(float64(at.Unix()))
	}
	if earliest.IsZero() {
		m.earliest.Set(0) // no zone is signed
	} else {
		m.earliest.Set(float64(earliest.Unix()))
	}
}

// committed notes a commit of a zone (z nil: the zone was deleted): when
// it is signed (or was), its series are brought up to date by
// watchCommits. It does not block.
func (m *signerMetrics) committed(origin string, z *zone.Zone) {
	m.mu.Lock()
	_, known := m.zones[origin]
	if known || (z != nil && z.Signed()) {
		m.dirty[origin] = true
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
	m.mu.Unlock()
}

// commitBatchGap is the least time between two updates of the series
// after commits: a zone edited without pause is read at most this often
// (and a large one, whose reading takes long, less often).
const commitBatchGap = time.Second

// watchCommits brings the series of zones committed (see committed) up
// to date, until ctx ends: the signature expiry and rollover steps of a
// zone show as soon as it is signed, re-signed or rolled, not at the
// next maintenance run.
func (m *signerMetrics) watchCommits(ctx context.Context, st *zonestore.Store) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		}
		m.mu.Lock()
		dirty := m.dirty
		m.dirty = make(map[string]bool)
		m.mu.Unlock()
		started := time.Now()
		got := make(map[string]*zoneSigning, len(dirty))
		for name := range dirty {
			got[name] = nil
			if s, err := st.DNSSEC(name); err == nil && s.Signed {
				got[name] = &zoneSigning{expiry: s.FirstExpiry, steps: s.Rollover}
			}
		}
		m.mu.Lock()
		for name, z := range got {
			if z == nil {
				delete(m.zones, name)
			} else {
				m.zones[name] = *z
			}
		}
		m.publishLocked()
		m.mu.Unlock()
		// Reading a large signed zone's state walks it: at most a
		// twentieth of the time goes to it while edits pour in.
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(commitBatchGap, 20*time.Since(started))):
		}
	}
}

// parentsAtOnce bounds the zones whose parents are asked at the same time.
const parentsAtOnce = 16

// askParents asks the parents of the zones among names that wait for them
// (askParent), parentsAtOnce zones at a time: a parent that does not
// answer holds up only its own zones.
func askParents(ctx context.Context, st *zonestore.Store, parent control.ParentChecker, names []string, log *slog.Logger) {
	slots := make(chan struct{}, parentsAtOnce)
	var wg sync.WaitGroup
	for _, name := range names {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case slots <- struct{}{}:
		}
		wg.Go(func() {
			defer func() { <-slots }()
			askParent(ctx, st, parent, name, log)
		})
	}
	wg.Wait()
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
