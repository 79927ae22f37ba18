package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/zonestore"
)

// signerMetrics are the signing maintenance's gauges and counters.
type signerMetrics struct {
	expiry  *prometheus.GaugeVec
	resigns *prometheus.CounterVec
}

func newSignerMetrics(reg prometheus.Registerer) *signerMetrics {
	m := &signerMetrics{
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sovdns_dnssec_signature_expiry_timestamp_seconds",
			Help: "When the earliest-expiring signature of a signed zone expires (Unix time).",
		}, []string{"zone"}),
		resigns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sovdns_dnssec_maintenance_total",
			Help: "Signing maintenance runs that re-signed a zone, by result (resigned, error).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.expiry, m.resigns)
	return m
}

// maintainSigning refreshes signatures and takes due rollover steps for
// every signed zone, now and then every interval, until ctx ends.
func maintainSigning(ctx context.Context, st *zonestore.Store, m *signerMetrics, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		names, err := st.List()
		if err != nil {
			log.Error("signing maintenance: list zones", "err", err)
		}
		m.expiry.Reset()
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
			if s, err := st.DNSSEC(name); err == nil && s.Signed && !s.FirstExpiry.IsZero() {
				m.expiry.WithLabelValues(name).Set(float64(s.FirstExpiry.Unix()))
				if s.Guard != "" {
					log.Warn("DNSSEC expiry guard", "zone", name, "problem", s.Guard)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
