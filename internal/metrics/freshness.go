package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/resolver"
)

// registerFreshness registers the metrics of the aggressive use of the
// validated cache (RFC 8198) and of prefetch.
func registerFreshness(reg prometheus.Registerer, st *resolver.Stats, cache *resolver.Cache) {
	reg.MustRegister(
		&aggressiveCollector{st: st, desc: prometheus.NewDesc(Namespace+"_resolver_aggressive_answers_total",
			"NXDOMAIN (rcode NXDOMAIN) and NODATA (rcode NOERROR) answers synthesised from cached validated NSEC or NSEC3 records (RFC 8198), by rcode and proof, stale ones included.",
			[]string{"rcode", "proof"}, nil)},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "resolver", Name: "aggressive_nsec_records",
			Help: "Validated NSEC and NSEC3 records held for synthesising denials."},
			func() float64 { return float64(cache.DenialRecords()) }),
		&countsCollector{desc: prometheus.NewDesc(Namespace+"_resolver_prefetches_total",
			"Cached answers refreshed in the background because they were asked for in the last tenth of their TTL, by result (ok, failed, skipped: too many under way).",
			[]string{"result"}, nil),
			values: resolver.PrefetchResults[:], counts: []*atomic.Uint64{&st.Prefetches[0], &st.Prefetches[1], &st.Prefetches[2]}},
	)
}

// aggressiveCollector reports Stats.AggressiveAnswers.
type aggressiveCollector struct {
	st   *resolver.Stats
	desc *prometheus.Desc
}

func (c *aggressiveCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *aggressiveCollector) Collect(ch chan<- prometheus.Metric) {
	for i, l := range resolver.AggressiveLabels {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.st.AggressiveAnswers[i].Load()), l[0], l[1])
	}
}
