package resolver

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// Limit names one of the work limits of a resolution.
type Limit int

// The limits counted in Stats.Limits.
const (
	LimitReferrals       Limit = iota // Config.MaxReferrals
	LimitUpstreamQueries              // Config.MaxUpstreamQueries
	LimitNSLookups                    // Config.MaxNSLookups
)

// LimitNames are the metric label values of the limits.
var LimitNames = [...]string{"referrals", "upstream_queries", "ns_lookups"}

// Stats counts what the resolver does; the metrics layer reads it.
type Stats struct {
	CacheHits       atomic.Uint64
	CacheMisses     atomic.Uint64
	Limits          [3]atomic.Uint64 // by Limit: resolutions a limit stopped or cut short
	UpstreamUDP     atomic.Uint64    // queries sent
	UpstreamTCP     atomic.Uint64
	UpstreamTimeout atomic.Uint64
	UpstreamError   atomic.Uint64 // network errors other than timeouts, and mismatched answers
	UpstreamRcode   [24]atomic.Uint64
	// Defences: upstream messages refused as malformed (checkWire), replies
	// to no question asked (wrong ID, question or client cookie) and the
	// spoofing alarms they raised, UDP answers refused for a missing server
	// cookie, questions not sent upstream for the per-zone rate limit, and
	// name-server lookups skipped by MaxTargetFetches or MaxTargetFailures.
	UpstreamMalformed atomic.Uint64
	UnwantedReplies   atomic.Uint64
	UnwantedAlarms    atomic.Uint64
	CookieRefused     atomic.Uint64
	ZoneRateLimited   atomic.Uint64
	ZoneBusy          atomic.Uint64 // questions not sent: MaxZoneInFlight were waiting on the zone's servers
	TargetsSkipped    atomic.Uint64
	// DownSkips counts the queries not sent to a server that is down
	// (infra.go: failed downAfter times in a row, probed every probeEvery).
	DownSkips atomic.Uint64
	// RTOTimeouts counts the upstream queries given up on at the server's
	// retransmission timeout (infra.go), before the whole query timeout,
	// for another server to be asked.
	RTOTimeouts atomic.Uint64
	// LateAnswers counts the answers taken after their server's RTO had
	// passed, while another server was asked (parallel tries, hedge.go).
	LateAnswers atomic.Uint64
	// BelowNXDomain counts the questions answered NXDOMAIN because a name
	// above them was proven not to exist (RFC 8020).
	BelowNXDomain atomic.Uint64
	// RingFailures counts the io_uring rings that failed
	// (ExchangeConfig.OnRingError): their upstream UDP queries go with a
	// system call each from then on.
	RingFailures atomic.Uint64

	// DNSSEC validation: answers validated by verdict (indexed by
	// dnssec.SecStatus), bogus ones by Extended DNS Error code, and
	// resolutions stopped by a validation work limit (by ValidationLimit).
	Verdicts         [5]atomic.Uint64
	BogusByEDE       [32]atomic.Uint64
	ValidationLimits [3]atomic.Uint64
	// BogusRetries counts the questions asked again of another server of
	// a zone because the answer of one failed validation (at most twice
	// per answer: the data asked for, a DS or a DNSKEY RRset); only the
	// final verdict is counted in Verdicts.
	BogusRetries atomic.Uint64

	// Resilience: stale answers served (by StaleReason, index as
	// StaleReasons), island mode entered and left, probes by result
	// (0 failed, 1 answered), signatures accepted under the island-mode
	// grace, keep-warm refreshes by result (0 failed, 1 done).
	StaleAnswers  [5]atomic.Uint64
	IslandEntered atomic.Uint64
	IslandLeft    atomic.Uint64
	Probes        [2]atomic.Uint64
	GraceAccepted atomic.Uint64
	LocalAnswers  atomic.Uint64 // upstream questions answered from zones held here
	WarmRefreshes [2]atomic.Uint64
	// IslandTrials counts the trial queries to foreign servers sent in
	// island mode; NationalCutStarts the resolutions of national names
	// started at a national zone cut (or the national hints) because the
	// servers above it were unreachable.
	IslandTrials      atomic.Uint64
	NationalCutStarts atomic.Uint64

	// Denials synthesised from validated NSEC and NSEC3 records (RFC
	// 8198), by rcode and proof (AggressiveLabels), and prefetches by
	// result (PrefetchResults).
	AggressiveAnswers [4]atomic.Uint64
	Prefetches        [3]atomic.Uint64

	// Observer, if set, is told durations as they happen (for histograms).
	Observer Observer
}

// The reasons a stale answer is served, indexed as Stats.StaleAnswers.
const (
	StaleReasonFailed  = "upstream_failed" // the resolution failed
	StaleReasonTimeout = "client_timeout"  // the resolution took longer than ClientTimeout
	StaleReasonRecheck = "failure_recheck" // a resolution failed less than FailureRecheck ago
	StaleReasonIsland  = "island"          // island mode
	StaleReasonBusy    = "busy"            // no resolution could be started: the server's bound on them was reached
)

// StaleReasons are the metric label values of Stats.StaleAnswers.
var StaleReasons = [...]string{StaleReasonFailed, StaleReasonTimeout, StaleReasonRecheck, StaleReasonIsland, StaleReasonBusy}

func (s *Stats) countStale(reason string) {
	for i, n := range StaleReasons {
		if n == reason {
			s.StaleAnswers[i].Add(1)
		}
	}
}

func (s *Stats) countProbe(ok bool) {
	if ok {
		s.Probes[1].Add(1)
	} else {
		s.Probes[0].Add(1)
	}
}

// ValidationLimitNames are the metric label values of the validation work
// limits, indexed as Stats.ValidationLimits.
var ValidationLimitNames = [...]string{"validations", "sig_checks_per_rrset", "nsec3_hashes"}

func (s *Stats) countVerdict(sec dnssec.SecStatus, why error) {
	if int(sec) < len(s.Verdicts) {
		s.Verdicts[sec].Add(1)
	}
	if sec == dnssec.Bogus {
		code, _ := dnssec.EDE(why)
		if int(code) >= len(s.BogusByEDE) {
			code = 0
		}
		s.BogusByEDE[code].Add(1)
	}
}

func (s *Stats) countValidationLimit(name string) {
	for i, n := range ValidationLimitNames {
		if n == name {
			s.ValidationLimits[i].Add(1)
		}
	}
}

// Observer receives the resolver's timings.
type Observer interface {
	// UpstreamRTT is the round-trip time of one answered upstream query.
	UpstreamRTT(d time.Duration)
	// Resolution is the time one client question took from the cache or
	// the network, and why it failed (nil when it did not).
	Resolution(d time.Duration, err error)
}

func (s *Stats) countUpstream(tcp bool, resp *dns.Msg, err error) {
	if tcp {
		s.UpstreamTCP.Add(1)
	} else {
		s.UpstreamUDP.Add(1)
	}
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)):
		s.UpstreamTimeout.Add(1)
	case errors.Is(err, ErrMalformed):
		s.UpstreamMalformed.Add(1)
	case errors.Is(err, errCookieMissing):
		s.CookieRefused.Add(1)
	case err != nil:
		s.UpstreamError.Add(1)
	case resp.Rcode >= 0 && resp.Rcode < len(s.UpstreamRcode):
		s.UpstreamRcode[resp.Rcode].Add(1)
	}
}

// countLate counts what came of an upstream query after its RTO, when
// it was waited for late (parallel tries): the query itself was counted
// then. A wait that ended without an answer counts nothing more.
func (s *Stats) countLate(resp *dns.Msg, err error) {
	switch {
	case errors.Is(err, ErrMalformed):
		s.UpstreamMalformed.Add(1)
	case err == nil && resp.Rcode >= 0 && resp.Rcode < len(s.UpstreamRcode):
		s.UpstreamRcode[resp.Rcode].Add(1)
	}
}

// countSent counts an upstream query whose outcome is not known: its
// question no longer needed it (another server's answer came first).
func (s *Stats) countSent(tcp bool) {
	if tcp {
		s.UpstreamTCP.Add(1)
	} else {
		s.UpstreamUDP.Add(1)
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
