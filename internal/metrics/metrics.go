// Package metrics defines sovdns's Prometheus collectors. Everything is
// registered on an injected Registerer, never the global one, and every
// label has a bounded set of values: zones are configured zones, query types
// come from an allow-list, and no label ever carries a query name or a
// client address.
package metrics

import (
	"errors"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/resolver"
)

// Namespace prefixes every metric name.
const Namespace = "sovdns"

// Label values used when nothing more specific applies.
const (
	ZoneNone  = "none"  // the query matched no zone held
	TypeOther = "other" // a query type outside the allow-list
	// ZoneAll stands for every zone while per-zone series are off (more
	// zones held than the configured maximum): the series are then node
	// totals.
	ZoneAll = "all"
)

// Metrics holds the collectors of a running node.
type Metrics struct {
	Queries      *prometheus.CounterVec   // transport, zone, qtype, rcode
	Duration     *prometheus.HistogramVec // transport
	Truncated    *prometheus.CounterVec   // transport
	Dropped      *prometheus.CounterVec   // reason
	Panics       prometheus.Counter
	ZonesLoaded  prometheus.Gauge
	ZoneRecords  *prometheus.GaugeVec // zone
	ZoneSerial   *prometheus.GaugeVec // zone
	StoreErrors  *prometheus.CounterVec
	CacheEntries prometheus.Gauge
	RateLimited  *prometheus.CounterVec // kind, action
	BuildInfo    *prometheus.GaugeVec

	// Replication and live editing.
	TSIG          *prometheus.CounterVec // result: ok, badkey, badsig, badtime
	TransfersOut  *prometheus.CounterVec // zone, type (AXFR, IXFR), result
	TransfersIn   *prometheus.CounterVec // zone, type, result
	NotifySent    *prometheus.CounterVec // zone, result: acked, failed, given_up
	NotifyPending prometheus.Gauge       // notifications waiting or under way
	NotifyRecv    *prometheus.CounterVec // zone, result: accepted, refused, unknown_zone
	Updates       *prometheus.CounterVec // zone, result: NOERROR, REFUSED, NOTAUTH, ...
	LastRefresh   *prometheus.GaugeVec   // zone: unix time of the last successful refresh of a secondary
	ZoneExpired   *prometheus.GaugeVec   // zone: 1 while a secondary is expired and not served
	ControlReqs   *prometheus.CounterVec // endpoint, code
	ConfigReloads *prometheus.CounterVec // result

	// SecondaryExpiry: zone: unix time a secondary stops being served
	// without a refresh; no series for a copy that never expires.
	SecondaryExpiry *prometheus.GaugeVec

	RecordsLoaded prometheus.Gauge // records in the zones served, all zones together

	// RecursionBusy: transport: recursive questions that found every
	// resolution slot (resolver.max_in_flight) taken.
	RecursionBusy *prometheus.CounterVec

	// secondaryTotals gives the node-wide secondary freshness figures.
	secondaryTotals atomic.Pointer[func() (expired int, oldest, earliest int64)]

	// zoneTotals is set while per-zone series are off (see SetPerZone).
	zoneTotals atomic.Bool
	// onPerZone are told when per-zone series are turned off or on.
	onPerZone []func(on bool)
}

// SetSecondaryTotals sets the function that counts the secondary zones
// expired and gives the oldest time a copy was last found current and the
// earliest time one expires (Unix times, 0 for none), read at each scrape.
func (m *Metrics) SetSecondaryTotals(fn func() (expired int, oldest, earliest int64)) {
	if m != nil {
		m.secondaryTotals.Store(&fn)
	}
}

// secondaryCollector exports what SetSecondaryTotals gives.
type secondaryCollector struct {
	m                         *Metrics
	expired, oldest, earliest *prometheus.Desc
}

func (c secondaryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.expired
	ch <- c.oldest
	ch <- c.earliest
}

func (c secondaryCollector) Collect(ch chan<- prometheus.Metric) {
	fn := c.m.secondaryTotals.Load()
	if fn == nil {
		return
	}
	expired, oldest, earliest := (*fn)()
	ch <- prometheus.MustNewConstMetric(c.expired, prometheus.GaugeValue, float64(expired))
	if oldest != 0 {
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, float64(oldest))
	}
	if earliest != 0 {
		ch <- prometheus.MustNewConstMetric(c.earliest, prometheus.GaugeValue, float64(earliest))
	}
}

// PerZone reports whether series are kept per zone.
func (m *Metrics) PerZone() bool { return !m.zoneTotals.Load() }

// Zone is the zone label value for the zone at origin: origin itself, or
// ZoneAll while per-zone series are off (ZoneNone stays as it is).
func (m *Metrics) Zone(origin string) string {
	if m.zoneTotals.Load() && origin != ZoneNone {
		return ZoneAll
	}
	return origin
}

// OnPerZone adds fn to the functions told when per-zone series are turned
// off or on, to drop or set series of their own. Not safe to call once
// the node runs.
func (m *Metrics) OnPerZone(fn func(on bool)) { m.onPerZone = append(m.onPerZone, fn) }

// SetPerZone turns per-zone series on or off and reports whether that was
// a change. Turning them off drops every series labelled with a zone (the
// counters start again from zero under zone "all", which rate() takes as
// a reset); turning them on starts them empty, each filled by the next
// event of its zone.
func (m *Metrics) SetPerZone(on bool) bool {
	if m.zoneTotals.Swap(!on) == !on {
		return false
	}
	for _, v := range []interface{ Reset() }{m.Queries, m.ZoneRecords, m.ZoneSerial, m.TransfersOut, m.TransfersIn,
		m.NotifySent, m.NotifyRecv, m.Updates, m.LastRefresh, m.ZoneExpired, m.SecondaryExpiry} {
		v.Reset()
	}
	for _, fn := range m.onPerZone {
		fn(on)
	}
	return true
}

// New creates the collectors and registers them, with the Go runtime and
// process collectors, on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "queries_total",
			Help: "DNS queries answered, by transport, zone (\"all\" while metrics per zone are off: metrics.zone_series_max), query type and response code.",
		}, []string{"transport", "zone", "qtype", "rcode"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "query_duration_seconds",
			Help:    "Time from reading a query to having its response ready, by transport.",
			Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1, 0.5, 2},
		}, []string{"transport"}),
		Truncated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "responses_truncated_total",
			Help: "Responses sent with the TC bit because they did not fit the client's buffer.",
		}, []string{"transport"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "queries_dropped_total",
			Help: "Packets dropped without a response, by reason.",
		}, []string{"reason"}),
		Panics: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "panics_total",
			Help: "Queries whose handling panicked and was answered SERVFAIL.",
		}),
		ZonesLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "zones_loaded",
			Help: "Zones being served.",
		}),
		ZoneRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "zone_records",
			Help: "Resource records in each served zone; absent while metrics per zone are off (metrics.zone_series_max).",
		}, []string{"zone"}),
		ZoneSerial: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "zone_serial",
			Help: "SOA serial of each served zone; absent while metrics per zone are off (metrics.zone_series_max).",
		}, []string{"zone"}),
		StoreErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "store_errors_total",
			Help: "Errors reading or writing the zone database, by operation.",
		}, []string{"op"}),
		CacheEntries: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "response_cache_entries",
			Help: "Encoded responses held by the authoritative response cache.",
		}),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "build_info",
			Help: "Always 1; labelled with the running version.",
		}, []string{"version", "goversion"}),
	}
	m.RateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rrl_limited_responses_total",
		Help: "UDP responses over the response rate limit, by kind (answer, wildcard, nxdomain, nodata, referral, error) and action (drop, slip: sent truncated, log_only: sent whole)."}, []string{"kind", "action"})
	m.TSIG = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "tsig_verifications_total",
		Help: "TSIG-signed messages received, by result (ok, badkey, badsig, badtime)."}, []string{"result"})
	m.TransfersOut = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "transfers_out_total",
		Help: "Zone transfers served, by zone, type (AXFR, IXFR, IXFR as AXFR: AXFR-fallback, up to date: current) and result."}, []string{"zone", "type", "result"})
	m.TransfersIn = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "transfers_in_total",
		Help: "Zone transfers of secondary zones from their primaries, by zone, type and result."}, []string{"zone", "type", "result"})
	m.NotifySent = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "notify_sent_total",
		Help: "NOTIFY messages sent to secondaries, by zone and result (acked, retry, given_up)."}, []string{"zone", "result"})
	m.NotifyPending = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "notify_pending",
		Help: "NOTIFYs waiting to be sent or under way, one per zone and target at most."})
	m.NotifyRecv = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "notify_received_total",
		Help: "NOTIFY messages received, by zone and result (accepted, refused, not_secondary)."}, []string{"zone", "result"})
	m.Updates = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "updates_total",
		Help: "RFC 2136 dynamic UPDATE messages, by zone and response code."}, []string{"zone", "rcode"})
	m.LastRefresh = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "secondary_last_refresh_timestamp_seconds",
		Help: "Unix time a secondary zone was last found current at its primary; time() minus this is the seconds since."}, []string{"zone"})
	m.ZoneExpired = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "secondary_expired",
		Help: "1 while a secondary zone is past its SOA expire without a refresh and is not served."}, []string{"zone"})
	m.SecondaryExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "secondary_expiry_timestamp_seconds",
		Help: "Unix time a secondary zone stops being served unless refreshed first: its last refresh plus the expire in effect (the SOA's, or the configured expire); " +
			"absent for a copy that never expires or was never loaded, and while metrics per zone are off (metrics.zone_series_max)."}, []string{"zone"})
	m.ControlReqs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "control_requests_total",
		Help: "Control API requests, by endpoint and HTTP status."}, []string{"endpoint", "code"})
	m.ConfigReloads = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "config_reloads_total",
		Help: "Configuration reloads (SIGHUP, sovdns reload), by result."}, []string{"result"})
	m.RecordsLoaded = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "records_loaded",
		Help: "Resource records in the zones being served, all zones together."})
	sec := secondaryCollector{m: m,
		expired: prometheus.NewDesc(Namespace+"_secondary_zones_expired",
			"Secondary zones past their expire time without a refresh, and so not served.", nil, nil),
		oldest: prometheus.NewDesc(Namespace+"_secondary_oldest_refresh_timestamp_seconds",
			"Unix time the least fresh secondary zone was last found current at its primary; time() minus this is the oldest refresh age.", nil, nil),
		earliest: prometheus.NewDesc(Namespace+"_secondary_earliest_expiry_timestamp_seconds",
			"Unix time the first secondary zone to expire stops being served unless refreshed first (last refresh plus expire); absent while no secondary copy can expire.", nil, nil)}
	m.RecursionBusy = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "resolver", Name: "busy_total",
		Help: "Recursive questions that found resolver.max_in_flight resolutions under way, by transport: answered stale when the cache could, else dropped (UDP) or answered SERVFAIL at once (TCP, TLS, HTTPS)."}, []string{"transport"})
	reg.MustRegister(sec, m.RecordsLoaded, m.RecursionBusy, m.Queries, m.Duration, m.Truncated, m.Dropped, m.Panics, m.ZonesLoaded,
		m.ZoneRecords, m.ZoneSerial, m.StoreErrors, m.CacheEntries, m.RateLimited, m.BuildInfo,
		m.TSIG, m.TransfersOut, m.TransfersIn, m.NotifySent, m.NotifyPending, m.NotifyRecv, m.Updates, m.LastRefresh,
		m.ZoneExpired, m.SecondaryExpiry, m.ControlReqs, m.ConfigReloads,
		goCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// goCollector is the Go runtime's collector, with the CPU the garbage
// collector and the scavenger (which returns free heap memory to the
// system) took, by class: go_cpu_classes_gc_*_cpu_seconds_total (mark
// assist, dedicated, idle, pause, total) and
// go_cpu_classes_scavenge_*_cpu_seconds_total (assist, background,
// total). Assists are taken from the goroutines that allocate, answers
// included: a scavenge assist is memory returned inline because the
// memory limit was below what the heap held mapped.
func goCollector() prometheus.Collector {
	return collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/cpu/classes/(gc|scavenge)/`)}))
}

var qtypeAllowed = map[uint16]bool{
	dns.TypeA: true, dns.TypeAAAA: true, dns.TypeNS: true, dns.TypeSOA: true, dns.TypeMX: true,
	dns.TypeTXT: true, dns.TypeCNAME: true, dns.TypePTR: true, dns.TypeSRV: true, dns.TypeDS: true,
	dns.TypeDNSKEY: true, dns.TypeCAA: true, dns.TypeHTTPS: true, dns.TypeSVCB: true,
	dns.TypeNAPTR: true, dns.TypeANY: true, dns.TypeAXFR: true, dns.TypeIXFR: true, dns.TypeTLSA: true,
	dns.TypeRRSIG: true, dns.TypeNSEC: true, dns.TypeNSEC3: true, dns.TypeDNAME: true,
	dns.TypeCDS: true, dns.TypeCDNSKEY: true, dns.TypeSSHFP: true, dns.TypeNSEC3PARAM: true,
}

// QtypeLabel maps a query type to its bounded label value.
func QtypeLabel(t uint16) string {
	if qtypeAllowed[t] {
		return dns.TypeToString[t]
	}
	return TypeOther
}

// RcodeLabel maps a response code to its label value.
func RcodeLabel(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "other"
}

// RegisterResolver exposes the resolver's counters on reg. They are read at
// scrape time, so the resolver's hot path only increments atomics; the
// histograms are fed through st.Observer, which this sets.
func RegisterResolver(reg prometheus.Registerer, st *resolver.Stats, cache *resolver.Cache) {
	obs := &resolverObserver{
		rtt: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "resolver", Name: "upstream_rtt_seconds",
			Help: "Round-trip time of answered upstream queries.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		resolution: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "resolver", Name: "resolution_duration_seconds",
			Help: "Time to resolve a client question that was not wholly in the cache.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 17)}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "resolver", Name: "servfail_total",
			Help: "Client questions answered SERVFAIL, by reason."}, []string{"reason"}),
	}
	for _, r := range failureReasons {
		obs.failures.WithLabelValues(r.label)
	}
	st.Observer = obs
	reg.MustRegister(obs.rtt, obs.resolution, obs.failures)
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "resolver", Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	reg.MustRegister(
		counter("cache_hits_total", "Questions answered from the resolver cache.", &st.CacheHits),
		counter("cache_misses_total", "Questions not in the resolver cache.", &st.CacheMisses),
		&limitCollector{st: st, desc: prometheus.NewDesc(Namespace+"_resolver_limit_hits_total",
			"Resolutions stopped or cut short by a work limit, by limit.", []string{"limit"}, nil)},
		counter("upstream_timeouts_total", "Upstream queries that timed out.", &st.UpstreamTimeout),
		counter("upstream_errors_total", "Upstream queries that failed otherwise or got a mismatched answer.", &st.UpstreamError),
		counter("upstream_malformed_total", "Upstream answers refused as malformed (section counts, trailing bytes, misplaced OPT or TSIG, wrong class).", &st.UpstreamMalformed),
		counter("unwanted_replies_total", "Replies to no question asked (wrong ID, question or client cookie) on upstream query sockets.", &st.UnwantedReplies),
		counter("unwanted_reply_alarms_total", "Zones whose unwanted replies reached resolver.unwanted_reply_threshold; their cache entries were dropped.", &st.UnwantedAlarms),
		counter("cookie_refused_total", "UDP answers refused for lacking the server cookie their server is known to send (asked again over TCP).", &st.CookieRefused),
		counter("zone_ratelimited_total", "Upstream queries not sent for the per-zone rate limit (resolver.zone_ratelimit).", &st.ZoneRateLimited),
		counter("zone_busy_total", "Upstream queries not sent because as many as the per-zone bound were already waiting on the servers of their zone (a slow or dead zone); their questions fail at once or are answered stale.", &st.ZoneBusy),
		counter("upstream_down_skips_total", "Upstream queries not sent because the server is down (5 failures in a row; probed every 2 s until it answers).", &st.DownSkips),
		counter("upstream_rto_timeouts_total", "Upstream queries given up on at their server's retransmission timeout (smoothed RTT + 4 deviations, at least 50 ms, doubled per timeout in a row), before resolver.query_timeout, so that another server of the zone is asked.", &st.RTOTimeouts),
		counter("upstream_late_answers_total", "Upstream answers that came after their server's retransmission timeout, while another server of the zone was asked, and were taken (parallel tries: the query stays open until resolver.query_timeout).", &st.LateAnswers),
		counter("upstream_ring_failures_total", "io_uring rings that failed (the kernel refused an entry, or a batch was not done within a second); their upstream UDP queries go with a system call each from then on.", &st.RingFailures),
		counter("bogus_retries_total", "Questions asked again of another server of a zone because one server's answer failed DNSSEC validation (at most twice per answer).", &st.BogusRetries),
		counter("below_nxdomain_total", "Questions answered NXDOMAIN from a validated NXDOMAIN for a name above them (RFC 8020).", &st.BelowNXDomain),
		counter("nameserver_lookups_skipped_total", "Name-server address lookups not made: beyond the few looked up per delegation, or after failed ones (NXNS defence).", &st.TargetsSkipped),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "resolver", Name: "cache_entries", Help: "Entries in the resolver cache."},
			func() float64 { return float64(cache.Stats().Entries) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "resolver", Name: "cache_bytes", Help: "Estimated bytes held by the resolver cache."},
			func() float64 { return float64(cache.Stats().Bytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "resolver", Name: "cache_evictions_total", Help: "Resolver cache entries evicted for room."},
			func() float64 { return float64(cache.Stats().Evictions) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "resolver", Name: "national_infra_entries",
			Help: "National infrastructure entries held apart from the cache's LRU (delegations, server addresses, DS and DNSKEY leading to the national zones): never evicted, kept past their TTL."},
			func() float64 { return float64(cache.Stats().National) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "resolver", Name: "national_infra_refused_total",
			Help: "National infrastructure entries stored in the LRU instead because the national store was full."},
			func() float64 { return float64(cache.NationalRefused()) }),
		&validationCollector{st: st,
			verdicts: prometheus.NewDesc(Namespace+"_resolver_validations_total",
				"Answers validated with DNSSEC, by result (secure, insecure, bogus, indeterminate).", []string{"result"}, nil),
			bogus: prometheus.NewDesc(Namespace+"_resolver_bogus_total",
				"Bogus answers, by reason (the Extended DNS Error sent).", []string{"reason"}, nil),
			limits: prometheus.NewDesc(Namespace+"_resolver_validation_limit_hits_total",
				"Resolutions stopped by a DNSSEC validation work limit, by limit.", []string{"limit"}, nil)},
		&upstreamCollector{st: st,
			queries: prometheus.NewDesc(Namespace+"_resolver_upstream_queries_total",
				"Upstream queries sent, by transport.", []string{"transport"}, nil),
			responses: prometheus.NewDesc(Namespace+"_resolver_upstream_responses_total",
				"Upstream answers received, by response code.", []string{"rcode"}, nil)},
	)
	registerFreshness(reg, st, cache)
}

// upstreamCollector reports the upstream counters with bounded labels.
type upstreamCollector struct {
	st                 *resolver.Stats
	queries, responses *prometheus.Desc
}

func (c *upstreamCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.queries; ch <- c.responses }

func (c *upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.queries, prometheus.CounterValue, float64(c.st.UpstreamUDP.Load()), "udp")
	ch <- prometheus.MustNewConstMetric(c.queries, prometheus.CounterValue, float64(c.st.UpstreamTCP.Load()), "tcp")
	for rc := range c.st.UpstreamRcode {
		if name, ok := dns.RcodeToString[rc]; ok {
			ch <- prometheus.MustNewConstMetric(c.responses, prometheus.CounterValue, float64(c.st.UpstreamRcode[rc].Load()), name)
		}
	}
}

// failureReasons maps resolver errors to bounded label values.
var failureReasons = []struct {
	err   error
	label string
}{
	{resolver.ErrNoReachableAuthority, "no_reachable_authority"},
	{resolver.ErrLimit, "limit"},
	{resolver.ErrCNAMEChain, "cname_chain"},
	{resolver.ErrLame, "lame"},
}

type resolverObserver struct {
	rtt, resolution prometheus.Histogram
	failures        *prometheus.CounterVec
}

func (o *resolverObserver) UpstreamRTT(d time.Duration) { o.rtt.Observe(d.Seconds()) }

func (o *resolverObserver) Resolution(d time.Duration, err error) {
	o.resolution.Observe(d.Seconds())
	if err == nil {
		return
	}
	label := "other"
	for _, r := range failureReasons {
		if errors.Is(err, r.err) {
			label = r.label
			break
		}
	}
	o.failures.WithLabelValues(label).Inc()
}

// validationCollector reports the DNSSEC validation counters.
type validationCollector struct {
	st                      *resolver.Stats
	verdicts, bogus, limits *prometheus.Desc
}

// verdictLabels are the reported results, by dnssec.SecStatus.
var verdictLabels = map[dnssec.SecStatus]string{dnssec.Secure: "secure", dnssec.Insecure: "insecure",
	dnssec.Bogus: "bogus", dnssec.Indeterminate: "indeterminate"}

// bogusReasons are the reason labels of bogus answers, by Extended DNS
// Error code; other codes count as "other".
var bogusReasons = map[uint16]string{
	dns.ExtendedErrorCodeDNSBogus:             "dnssec_bogus",
	dns.ExtendedErrorCodeSignatureExpired:     "signature_expired",
	dns.ExtendedErrorCodeSignatureNotYetValid: "signature_not_yet_valid",
	dns.ExtendedErrorCodeDNSKEYMissing:        "dnskey_missing",
	dns.ExtendedErrorCodeRRSIGsMissing:        "rrsigs_missing",
	dns.ExtendedErrorCodeNSECMissing:          "nsec_missing",
	dns.ExtendedErrorCodeDNSSECIndeterminate:  "indeterminate",
}

func (c *validationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.verdicts
	ch <- c.bogus
	ch <- c.limits
}

func (c *validationCollector) Collect(ch chan<- prometheus.Metric) {
	for sec, name := range verdictLabels {
		ch <- prometheus.MustNewConstMetric(c.verdicts, prometheus.CounterValue, float64(c.st.Verdicts[sec].Load()), name)
	}
	var other uint64
	for code := range c.st.BogusByEDE {
		n := c.st.BogusByEDE[code].Load()
		if _, ok := bogusReasons[uint16(code)]; !ok {
			other += n
		}
	}
	for code, name := range bogusReasons {
		ch <- prometheus.MustNewConstMetric(c.bogus, prometheus.CounterValue, float64(c.st.BogusByEDE[code].Load()), name)
	}
	ch <- prometheus.MustNewConstMetric(c.bogus, prometheus.CounterValue, float64(other), "other")
	for i, name := range resolver.ValidationLimitNames {
		ch <- prometheus.MustNewConstMetric(c.limits, prometheus.CounterValue, float64(c.st.ValidationLimits[i].Load()), name)
	}
}

// limitCollector reports the work-limit counters by limit.
type limitCollector struct {
	st   *resolver.Stats
	desc *prometheus.Desc
}

func (c *limitCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *limitCollector) Collect(ch chan<- prometheus.Metric) {
	for i, name := range resolver.LimitNames {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.st.Limits[i].Load()), name)
	}
}
