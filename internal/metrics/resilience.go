package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/resolver"
)

// Island is what the resilience metrics read of the resolver;
// resolver.Resolver is one.
type Island interface {
	Island() bool
	IslandSeconds() float64
}

// RegisterResilience registers the metrics of the resolver's behaviour
// when the outside world is unreachable: island mode, stale answers,
// probes, the signature grace, keep-warm refreshes and local answers.
func RegisterResilience(reg prometheus.Registerer, is Island, st *resolver.Stats) {
	labelled := func(name, help, label string, values []string, counts []*atomic.Uint64) prometheus.Collector {
		return &countsCollector{desc: prometheus.NewDesc(name, help, []string{label}, nil), values: values, counts: counts}
	}
	ptrs := func(a []atomic.Uint64) []*atomic.Uint64 {
		out := make([]*atomic.Uint64, len(a))
		for i := range a {
			out[i] = &a[i]
		}
		return out
	}
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "island_mode",
			Help: "1 while the resolver is in island mode: the outside world does not answer, stale answers and local copies are served."},
			func() float64 {
				if is.Island() {
					return 1
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: "island_mode_seconds_total",
			Help: "Time spent in island mode since start."}, is.IslandSeconds),
		labelled(Namespace+"_island_transitions_total", "Entries into (enter) and exits from (leave) island mode.",
			"direction", []string{"enter", "leave"}, []*atomic.Uint64{&st.IslandEntered, &st.IslandLeft}),
		labelled(Namespace+"_island_probes_total", "Probes of the outside world, by result.",
			"result", []string{"failed", "answered"}, ptrs(st.Probes[:])),
		labelled(Namespace+"_resolver_stale_answers_total", "Answers served stale (RFC 8767), by why they were not fresh.",
			"reason", resolver.StaleReasons[:], ptrs(st.StaleAnswers[:])),
		labelled(Namespace+"_resolver_keep_warm_refreshes_total", "Refreshes of keep-warm names, by result.",
			"result", []string{"failed", "ok"}, ptrs(st.WarmRefreshes[:])),
		counter("resolver_signature_grace_total", "Expired signatures accepted in island mode under the national signature grace.", &st.GraceAccepted),
		counter("resolver_local_answers_total", "Upstream questions answered from zones held on this node (mirrors, local root).", &st.LocalAnswers),
		counter("island_trials_total", "Trial queries to foreign servers in island mode (at most one per 100 ms); the first answered ends island mode.", &st.IslandTrials),
		counter("resolver_national_cut_starts_total", "Resolutions of national names started at a national zone cut or the national hints because the servers above were unreachable.", &st.NationalCutStarts),
	)
}

// countsCollector exports counters kept as atomics, one per label value.
type countsCollector struct {
	desc   *prometheus.Desc
	values []string
	counts []*atomic.Uint64
}

func (c *countsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *countsCollector) Collect(ch chan<- prometheus.Metric) {
	for i, v := range c.values {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.counts[i].Load()), v)
	}
}
