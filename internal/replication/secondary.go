package replication

// Secondary zones. Every configured secondary zone, and every member of a
// catalog this node consumes, has a worker that keeps the stored copy
// current. A worker is state, not a goroutine: it waits in one schedule
// ordered by when it next needs attention (schedule.go), and runs on a
// goroutine of its own only while it checks, a bounded number at a time,
// so that a node of 100,000 secondary zones costs no stack per zone:
//
//   - At start, and whenever a primary NOTIFYs the zone (RFC 1996), it asks
//     the primaries, in the configured order, for their SOA (UDP, TCP when
//     truncated or unanswered; signed with the zone's TSIG key). A serial
//     newer than the stored one (RFC 1982) is transferred: IXFR from the
//     stored SOA first (RFC 1995, incremental and AXFR-style replies), AXFR
//     (RFC 5936) when IXFR fails or there is no copy yet.
//   - The transferred zone is built and checked whole (one SOA at the apex,
//     the origin asked for, nothing outside the zone, a newer serial; a
//     catalog must also be a valid RFC 9432 catalog) and stored in one
//     transaction. A transfer that breaks off, or a zone that fails a
//     check, changes nothing: the old copy goes on being served.
//   - Between checks the stored SOA's timers rule (RFC 1034 §4.3.5):
//     REFRESH after a success, RETRY after a failure, each up to a tenth
//     earlier at random so that zones do not move in lockstep. Past EXPIRE
//     (the SOA's, or the one configured) without a success the zone stops
//     being served (Node.OnExpire, the secondary_expired metric); its data
//     is kept, and it is served again after the next successful check. The
//     time of the last success is stored with the zone, so expiry counts
//     across restarts.
//   - Checks always come before expiry: REFRESH is shortened to a third of
//     the expire time and RETRY to a sixth when they are longer (an expire
//     configured shorter than the SOA's refresh, or an SOA whose timers
//     contradict each other), so that a check and a few retries fall within
//     it; and a copy found past its expire time when its worker starts
//     (the node was down) is checked once before it is withdrawn.
//   - An operator can have a zone checked now (Node.Refresh: the SOA, and a
//     transfer if it is newer) or transferred whole regardless of serials
//     (retransfer: AXFR, replacing the copy even with an equal or older
//     serial); the worker runs these like any check and answers with what
//     it found.
//
// A restarted node checks every zone soon after start, since it may have
// missed NOTIFYs while it was down. Checks run a bounded number at a time
// (SOA queries and transfers separately), so that a dead primary or a
// large transfer does not hold up the other zones for long.
//
// A zone stored as secondary that is no longer configured (nor listed by a
// consumed catalog) is neither refreshed nor deleted: it goes on being
// served as it is, and a warning names it at start and at each
// reconfiguration. Deleting a zone is an operator's decision (sovdns zone
// delete); a configuration mistake must not take a zone off the air. Only
// a catalog removing one of its members deletes that member's copy.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// Errors of transfers in.
var (
	errUnsigned      = errors.New("the response is not signed with the zone's TSIG key")
	errNoKey         = errors.New("no such TSIG key in tsig_keys")
	errBadResponse   = errors.New("unusable response")
	errBadTransfer   = errors.New("malformed zone transfer")
	errInvalidZone   = errors.New("transferred zone fails validation")
	errTooLarge      = errors.New("zone transfer larger than the limit")
	errPrimaryHere   = errors.New("a primary zone of this name is stored on this node; delete it to make it a secondary")
	errNoPrimaries   = errors.New("no primaries configured")
	errIXFRNotUsable = errors.New("the IXFR reply cannot be applied")
)

// Results counted in TransfersIn and NotifyRecv.
const (
	xfrSuccess = "success"
	xfrFailed  = "failed"
	xfrInvalid = "invalid"

	notifyAccepted     = "accepted"
	notifyRefused      = "refused"
	notifyNotSecondary = "not_secondary"
)

// timing holds the bounds of the refresh machinery. The SOA's timers are
// clamped to them, as a primary's SOA is not under this node's control.
type timing struct {
	minRefresh, maxRefresh time.Duration
	minRetry, maxRetry     time.Duration
	minExpire              time.Duration
	// firstRetry is the wait after a failure while no copy is stored (no
	// SOA to take RETRY from); it doubles with each failure up to maxBackoff.
	firstRetry, maxBackoff time.Duration
	// startSpread spreads the checks made at start.
	startSpread time.Duration
	soaTimeout  time.Duration // one SOA query, per transport
	dialTimeout time.Duration // the TCP connection of a transfer
	xfrRead     time.Duration // between two messages of a transfer
	xfrTotal    time.Duration // one whole transfer
	maxRecords  int           // records of one transfer
	// releaseRecords: when that many records came in by transfers since
	// the last time, the memory the transfers used is given back to the
	// system once no check runs (a first synchronisation of many zones).
	releaseRecords int
}

// maxTransfersIn bounds the transfers in under way at once (BIND's
// transfers-in is 10): enough that a node taking thousands of small zones
// from a catalog keeps its primaries busy, and its stores share fsyncs.
const maxTransfersIn = 16

// startCheckRate bounds the SOA checks of stored copies made at start, per
// second: a node of many zones spreads them (100,000 zones: over 500 s)
// rather than asking its primaries for every zone at once. Each copy is
// served meanwhile, and a NOTIFY brings a check at once.
const startCheckRate = 200

func defaultTiming() timing {
	return timing{
		minRefresh: 2 * time.Second, maxRefresh: 7 * 24 * time.Hour,
		minRetry: 2 * time.Second, maxRetry: 24 * time.Hour,
		minExpire:  10 * time.Second,
		firstRetry: 5 * time.Second, maxBackoff: 5 * time.Minute,
		startSpread: 2 * time.Second,
		soaTimeout:  3 * time.Second,
		dialTimeout: 5 * time.Second,
		xfrRead:     20 * time.Second,
		xfrTotal:    15 * time.Minute,
		maxRecords:  10_000_000,

		releaseRecords: 20_000,
	}
}

// secondaries keeps the secondary zones of a node current.
type secondaries struct {
	n   *Node
	t   timing
	now func() time.Time
	// jitter returns a random duration in [0, d).
	jitter  func(d time.Duration) time.Duration
	soaSlot chan struct{} // bounds SOA queries under way
	xfrSlot chan struct{} // bounds transfers under way

	catalog *catalogProducer

	mu      sync.Mutex
	ctx     context.Context // run's; nil before run and after it ends
	wg      sync.WaitGroup  // the runs under way
	workers map[string]*worker
	// queue holds the workers not running, by when they are next due;
	// runs counts those running (at most maxRuns). tick wakes the
	// scheduler when the head of the queue or the room for runs changes.
	queue workQueue
	runs  int
	tick  chan struct{}
	// received counts the records transfers brought in since memory was
	// last given back; releases counts those times (see
	// timing.releaseRecords).
	received, releases atomic.Int64
	// spread is the window over which the checks of stored copies are
	// spread at start: startSpread, or more with many zones, so that the
	// primaries get at most startCheckRate SOA queries a second.
	spread time.Duration
	// members holds, per consumed catalog, its members and their unique
	// ids, as last stored.
	members map[string]map[string]string
	// dups holds, per consumed catalog, the members it lists more than
	// once, as of the last reading of the whole catalog.
	dups   map[string]map[string]bool
	warned map[string]bool // unconfigured secondaries already warned of
}

// worker refreshes one secondary zone.
type worker struct {
	origin string
	cfg    atomic.Pointer[SecondaryZone]

	// Under secondaries.mu: the place in the queue (-1: not in it), when
	// it is due there, whether it is running, a NOTIFY (kicked) and the
	// operator's checks (reqs) waiting for the next run, and the end of
	// the run under way (cancel). removed: no longer kept current; done
	// is closed once removed and not running.
	idx     int
	due     time.Time
	running bool
	kicked  bool
	reqs    []checkRequest
	cancel  context.CancelFunc
	removed bool
	done    chan struct{}

	// Of the run under way, one at a time: what the worker knows of its
	// zone, and when it is next checked. started: its first run loaded
	// the stored copy.
	st      zoneState
	next    time.Time
	started bool

	// kept: past its expire time, kept and served because the node is cut
	// off (HoldExpiry), for sovdns status.
	kept atomic.Bool
	// expired (not served) and refreshed (Unix time the copy was last
	// found current), for the node-wide metrics.
	expired   atomic.Bool
	refreshed atomic.Int64
	// expires is the Unix time the copy stops being served unless
	// refreshed first (0: no copy yet, or one that never expires), for
	// the metrics. It is set with expMu held, from refreshed, soaExpire and
	// cfg: by the worker at each refresh, and by reconcile when the
	// configured expire changes.
	expires   atomic.Int64
	expMu     sync.Mutex
	soaExpire uint32 // the stored copy's SOA expire, in seconds; under expMu
}

// checkRequest asks a worker for a check now: the SOA and a transfer if
// it is newer, or with retransfer an AXFR regardless of serials. The
// outcome goes to reply, which has room for it.
type checkRequest struct {
	retransfer bool
	reply      chan checkReply
}

type checkReply struct {
	res RefreshResult
	err error
}

func newSecondaries(n *Node) *secondaries {
	s := &secondaries{
		n:       n,
		t:       defaultTiming(),
		now:     time.Now,
		jitter:  randomJitter,
		soaSlot: make(chan struct{}, 32),
		xfrSlot: make(chan struct{}, maxTransfersIn),
		workers: map[string]*worker{},
		tick:    make(chan struct{}, 1),
		members: map[string]map[string]string{},
		dups:    map[string]map[string]bool{},
		warned:  map[string]bool{},
	}
	s.catalog = newCatalogProducer(n)
	return s
}

func randomJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}

// run keeps the secondary zones current, and publishes the catalog, until
// ctx ends. Reconfigure's wake adds and removes zones.
func (s *secondaries) run(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() { defer pwg.Done(); s.catalog.run(ctx) }()
	s.reconcile("")
	s.warnUnconfigured()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(s.dispatch())
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.ctx = nil
			for _, w := range s.workers {
				s.removeLocked(w)
			}
			s.mu.Unlock()
			s.wg.Wait()
			pwg.Wait()
			return
		case <-s.tick:
		case <-timer.C:
		case <-s.n.wake:
			s.reconcile("")
			s.warnUnconfigured()
			s.catalog.poke()
		}
	}
}

// desired is the set of zones to keep current: the configured secondary
// zones, then the members of the consumed catalogs (a zone configured
// explicitly keeps its own settings; a member listed by two catalogs
// belongs to the one configured first). Called with s.mu held.
func (s *secondaries) desired(cfg *Config) map[string]SecondaryZone {
	d, _ := s.desiredOwned(cfg)
	return d
}

// desiredOwned is desired that also tells which catalog provides each
// member zone (zones configured explicitly are not in owner). Called with
// s.mu held.
func (s *secondaries) desiredOwned(cfg *Config) (d map[string]SecondaryZone, owner map[string]string) {
	d = make(map[string]SecondaryZone, len(cfg.Secondaries))
	owner = map[string]string{}
	for _, sz := range cfg.Secondaries {
		d[sz.Zone] = sz
	}
	for _, sz := range cfg.Secondaries {
		if !sz.Catalog {
			continue
		}
		// The catalogs in their configured order decide which lists a
		// member first; within one, the order does not matter.
		for m := range s.members[sz.Zone] {
			if _, ok := d[m]; ok || m == cfg.Catalog {
				continue
			}
			d[m] = memberZone(sz, m)
			owner[m] = sz.Zone
		}
	}
	return d, owner
}

// memberZone is the secondary zone member m of catalog c is: with the
// catalog's primaries, key and NOTIFY and transfer settings.
func memberZone(c SecondaryZone, m string) SecondaryZone {
	return SecondaryZone{Zone: m, Primaries: c.Primaries, Key: c.Key,
		AllowNotify: c.AllowNotify, TransferSource: c.TransferSource}
}

// wantedLocked is desired for one zone: its settings, and whether it is to
// be kept current at all. Called with s.mu held.
func (s *secondaries) wantedLocked(cfg *Config, origin string) (SecondaryZone, bool) {
	for _, sz := range cfg.Secondaries {
		if sz.Zone == origin {
			return sz, true
		}
	}
	if origin == cfg.Catalog {
		return SecondaryZone{}, false
	}
	for _, sz := range cfg.Secondaries {
		if _, ok := s.members[sz.Zone][origin]; ok && sz.Catalog {
			return memberZone(sz, origin), true
		}
	}
	return SecondaryZone{}, false
}

// reconcile starts a worker for each desired zone that has none, gives the
// running ones their current settings, and stops the others, waiting for
// them to end (except self, the calling worker, which is only cancelled).
func (s *secondaries) reconcile(self string) {
	s.mu.Lock()
	if s.ctx == nil || s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	cfg := s.n.config()
	catalogs := map[string]bool{}
	for _, sz := range cfg.Secondaries {
		if sz.Catalog {
			catalogs[sz.Zone] = true
		}
	}
	for c := range s.members {
		if !catalogs[c] {
			delete(s.members, c)
			delete(s.dups, c)
		}
	}
	for c := range catalogs {
		if _, ok := s.members[c]; !ok {
			var dups []string
			s.members[c], dups = s.storedMembers(c)
			s.dups[c] = setOf(dups)
		}
	}
	want := s.desired(cfg)
	s.spread = max(s.t.startSpread, time.Duration(len(want))*time.Second/startCheckRate)
	var stopped []*worker
	for origin, w := range s.workers {
		if _, ok := want[origin]; !ok {
			s.removeLocked(w)
			stopped = append(stopped, w)
		}
	}
	for origin, sz := range want {
		if w := s.workers[origin]; w != nil {
			if old := w.cfg.Swap(&sz); old == nil || old.Expire != sz.Expire {
				// The expire in effect, and so the expiry time, changed.
				w.expMu.Lock()
				s.noteExpiryLocked(w)
				w.expMu.Unlock()
			}
			continue
		}
		s.startLocked(sz)
	}
	s.mu.Unlock()
	for _, w := range stopped {
		if w.origin != self {
			<-w.done
		}
		s.ended(w)
	}
}

// ended takes the series of w, removed, away, and says so.
func (s *secondaries) ended(w *worker) {
	if s.n.m.PerZone() {
		s.n.m.LastRefresh.DeleteLabelValues(w.origin)
		s.n.m.ZoneExpired.DeleteLabelValues(w.origin)
		s.n.m.SecondaryExpiry.DeleteLabelValues(w.origin)
	}
	s.n.log.Info("secondary zone no longer refreshed", "zone", w.origin)
}

// startLocked starts the worker of sz: due at once, for its first run.
// Called with s.mu held and s.ctx set.
func (s *secondaries) startLocked(sz SecondaryZone) {
	w := &worker{origin: sz.Zone, idx: -1, done: make(chan struct{})}
	w.cfg.Store(&sz)
	s.workers[sz.Zone] = w
	s.scheduleLocked(w, s.now())
}

// stop stops the worker of origin, if any, and waits for it to end.
func (s *secondaries) stop(origin string) {
	s.mu.Lock()
	w := s.workers[origin]
	if w != nil {
		s.removeLocked(w)
	}
	s.mu.Unlock()
	if w != nil {
		<-w.done
	}
}

// warnUnconfigured names the zones stored as secondaries that no
// configured zone or catalog accounts for: they are served as they are.
func (s *secondaries) warnUnconfigured() {
	kinds, err := s.n.store.Kinds()
	if err != nil {
		s.n.log.Warn("cannot list the stored zones", "err", err)
		return
	}
	s.mu.Lock()
	want := s.desired(s.n.config())
	s.mu.Unlock()
	var names []string
	for name, kind := range kinds {
		if _, ok := want[name]; !ok && kind == zonestore.KindSecondary {
			names = append(names, name)
		}
	}
	zone.SortCanonical(names)
	for _, name := range names {
		s.mu.Lock()
		warned := s.warned[name]
		s.warned[name] = true
		s.mu.Unlock()
		if !warned {
			var source string
			if m, err := s.n.store.Meta(name); err == nil {
				source = m.Source
			}
			s.n.log.Warn("zone is stored as a secondary but no longer configured: it is served as it is and never refreshed; "+
				"configure it again, or delete it with sovdns zone delete", "zone", name, "source", source)
		}
	}
}

// zoneState is what a worker knows of its zone.
type zoneState struct {
	soa       *dns.SOA  // of the stored copy; nil when there is none
	refreshed time.Time // when the copy was last found current
	expired   bool
	held      bool  // past expiry, kept by HoldExpiry
	failures  int   // in a row
	lastErr   error // of the last check, when it failed
	// checked: the worker has made a check (a copy is not withdrawn as
	// expired before one).
	checked bool
	// shortened: the timers were last shortened to fit the expire time
	// (said once in the log, not at every check).
	shortened bool
}

// expireAfter is how long the stored copy stays current after a success:
// the configured expire time, else the SOA's, at least minExpire; ok is
// false for a copy that never expires. fromConfig says which it is.
func (s *secondaries) expireAfter(w *worker, st *zoneState) (d time.Duration, fromConfig, ok bool) {
	return s.expireFor(w.cfg.Load(), st.soa.Expire)
}

// expireFor is expireAfter under the configuration c (nil: none) for a
// copy whose SOA expire is soaExpire seconds.
func (s *secondaries) expireFor(c *SecondaryZone, soaExpire uint32) (d time.Duration, fromConfig, ok bool) {
	e := time.Duration(soaExpire) * time.Second
	if c != nil {
		switch {
		case c.Expire == ExpireNever:
			return 0, true, false
		case c.Expire > 0:
			e, fromConfig = c.Expire, true
		}
	}
	return max(e, s.t.minExpire), fromConfig, true
}

// expireAt is when the stored copy expires: the SOA's expire time after
// the last success, or the configured one; ok is false for a copy that
// never expires.
func (s *secondaries) expireAt(w *worker, st *zoneState) (at time.Time, ok bool) {
	e, _, ok := s.expireAfter(w, st)
	if !ok {
		return time.Time{}, false
	}
	return st.refreshed.Add(e), true
}

// holdRecheck is how often an expiry held back (HoldExpiry) is looked at
// again.
const holdRecheck = 10 * time.Second

// nextCheck is when to check the zone again after a check that succeeded
// (ok) or failed at now.
func (s *secondaries) nextCheck(st *zoneState, ok bool, now time.Time) time.Time {
	if st.soa == nil {
		d := s.t.firstRetry
		for i := 1; i < st.failures && d < s.t.maxBackoff; i++ {
			d *= 2
		}
		d = min(d, s.t.maxBackoff)
		return now.Add(d - s.jitter(d/10))
	}
	var d time.Duration
	if ok {
		d = min(max(time.Duration(st.soa.Refresh)*time.Second, s.t.minRefresh), s.t.maxRefresh)
	} else {
		d = min(max(time.Duration(st.soa.Retry)*time.Second, s.t.minRetry), s.t.maxRetry)
	}
	return now.Add(d - s.jitter(d/10))
}

// nextCheckOf is nextCheck for w's zone, shortened so that checks fall
// within its expire time: after a success at most a third of it (a check
// comes well before expiry), after a failure at most a sixth (a few
// retries do too).
func (s *secondaries) nextCheckOf(w *worker, st *zoneState, ok bool, now time.Time) time.Time {
	next := s.nextCheck(st, ok, now)
	if st.soa == nil {
		return next
	}
	expire, fromConfig, expires := s.expireAfter(w, st)
	if !expires {
		return next
	}
	limit := max(expire/3, s.t.minRefresh)
	if !ok {
		limit = max(expire/6, s.t.minRetry)
	}
	if next.Sub(now) <= limit {
		return next
	}
	if !st.shortened {
		st.shortened = true
		source := "the SOA's"
		if fromConfig {
			source = "the configured"
		}
		s.n.log.Info("secondary zone checked more often than its SOA timers say, so that checks come before "+source+" expire time",
			"zone", w.origin, "soa_refresh", time.Duration(st.soa.Refresh)*time.Second, "soa_retry", time.Duration(st.soa.Retry)*time.Second,
			"expire", expire, "check_every", max(expire/3, s.t.minRefresh), "retry_every", max(expire/6, s.t.minRetry))
	}
	return now.Add(limit - s.jitter(limit/10))
}

// loadState reads the stored copy of origin and when it was last current.
func (s *secondaries) loadState(origin string) zoneState {
	var st zoneState
	z, err := s.n.store.Load(origin)
	if err != nil {
		if !errors.Is(err, zonestore.ErrNoZone) {
			s.n.log.Warn("stored copy of secondary zone unusable: transferring it anew", "zone", origin, "err", err)
		}
		return st
	}
	st.soa = z.SOA
	m, err := s.n.store.Meta(origin)
	switch {
	case err != nil:
		st.refreshed = s.now()
	case !m.Refreshed.IsZero():
		st.refreshed = m.Refreshed
	case !m.Updated.IsZero():
		st.refreshed = m.Updated
	default:
		st.refreshed = s.now()
	}
	return st
}

// step is one run of w: its first loads the stored copy; a run checks
// the zone when it is kicked (a NOTIFY), asked (rq, an operator's check)
// or due, and then marks expiry as needed. It returns when w is next due.
func (s *secondaries) step(ctx context.Context, w *worker, kicked bool, rq *checkRequest) time.Time {
	st := &w.st
	if !w.started {
		w.started = true
		*st = s.loadState(w.origin)
		if s.n.m.PerZone() {
			s.n.m.ZoneExpired.WithLabelValues(w.origin).Set(0)
		}
		w.next = s.now()
		if st.soa != nil {
			s.noteRefresh(w, st.soa, st.refreshed)
			s.mu.Lock()
			spread := s.spread
			s.mu.Unlock()
			w.next = w.next.Add(s.jitter(spread))
		}
	}
	if kicked || rq != nil || !s.now().Before(w.next) {
		res, err := s.check(ctx, w, st, rq != nil && rq.retransfer)
		if rq != nil {
			rq.reply <- checkReply{res: res, err: err}
		}
		if ctx.Err() != nil {
			return s.now() // removed, or the node stops
		}
		s.checked(ctx, w, err)
	}
	return s.plan(w)
}

// checked takes in the outcome of a check of w: the time of the next one,
// the refresh time and expiry on success, the failure count and log on
// failure.
func (s *secondaries) checked(ctx context.Context, w *worker, err error) {
	st := &w.st
	st.checked = true
	now := s.now()
	if err != nil {
		st.failures++
		st.lastErr = err
		w.next = s.nextCheckOf(w, st, false, now)
		// Bad data from a primary, or a name clash here, needs an
		// operator; an unreachable primary may come back by itself.
		lvl := slog.LevelWarn
		if errors.Is(err, errInvalidZone) || errors.Is(err, errPrimaryHere) {
			lvl = slog.LevelError
		}
		s.n.log.Log(ctx, lvl, "secondary zone refresh failed", "zone", w.origin, "err", err,
			"failures", st.failures, "retry_in", w.next.Sub(now).Round(time.Second))
		return
	}
	st.failures, st.lastErr = 0, nil
	st.held = false
	w.kept.Store(false)
	st.refreshed = now
	s.noteRefresh(w, st.soa, now)
	if st.expired {
		s.setExpired(w, st, false)
	}
	w.next = s.nextCheckOf(w, st, true, now)
}

// plan is when w next needs a run: its next check, or sooner its expire
// time. A copy past its expire time is withdrawn here (after one check
// of this run of the node, and unless held while the node is cut off).
func (s *secondaries) plan(w *worker) time.Time {
	st := &w.st
	due := w.next
	if st.soa == nil || st.expired {
		return due
	}
	at, ok := s.expireAt(w, st)
	if !ok {
		return due
	}
	now := s.now()
	switch {
	case now.Before(at):
		return minTime(due, at)
	case !st.checked:
		// Past its expire time before any check of this run of the node
		// (the node was down): a check first.
		w.next = now
		return now
	case s.n.holdExpiry():
		// Cut off from the primaries: the last copy is worth more than
		// none. Looked at again shortly.
		if !st.held {
			st.held = true
			w.kept.Store(true)
			s.n.log.Warn("secondary zone past its expire time is kept while the node is cut off (island mode)", "zone", w.origin)
		}
		return minTime(due, now.Add(holdRecheck))
	default:
		s.setExpired(w, st, true)
		return due
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// noteRefresh records that w's copy, whose SOA is soa, was found current
// at t, and so when it expires. A transfer brings the SOA in with the
// refresh, so a changed SOA expire is taken into account here too.
func (s *secondaries) noteRefresh(w *worker, soa *dns.SOA, t time.Time) {
	w.expMu.Lock()
	defer w.expMu.Unlock()
	w.refreshed.Store(t.Unix())
	w.soaExpire = soa.Expire
	if s.n.m.PerZone() {
		s.n.m.LastRefresh.WithLabelValues(w.origin).Set(float64(t.Unix()))
	}
	s.noteExpiryLocked(w)
}

// noteExpiryLocked records when w's copy stops being served unless
// refreshed first: its last refresh plus the expire in effect; nothing
// before a copy is loaded, or for a copy that never expires. Called with
// w.expMu held.
func (s *secondaries) noteExpiryLocked(w *worker) {
	var at int64
	if r := w.refreshed.Load(); r != 0 {
		if d, _, ok := s.expireFor(w.cfg.Load(), w.soaExpire); ok {
			at = time.Unix(r, 0).Add(d).Unix()
		}
	}
	w.expires.Store(at)
	switch {
	case !s.n.m.PerZone():
	case at == 0:
		s.n.m.SecondaryExpiry.DeleteLabelValues(w.origin)
	default:
		s.n.m.SecondaryExpiry.WithLabelValues(w.origin).Set(float64(at))
	}
}

// totals counts the secondary zones past their expire time and not served,
// and gives the oldest time a copy was last found current and the earliest
// time a copy still served expires (0: none). Expired copies are left out
// of earliest: they are counted in expired, and would hide the next copy
// to expire.
func (s *secondaries) totals() (expired int, oldest, earliest int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workers {
		if w.expired.Load() {
			expired++
		} else if e := w.expires.Load(); e != 0 && (earliest == 0 || e < earliest) {
			earliest = e
		}
		if r := w.refreshed.Load(); r != 0 && (oldest == 0 || r < oldest) {
			oldest = r
		}
	}
	return expired, oldest, earliest
}

// setExpired marks the zone expired (no longer served) or current again.
func (s *secondaries) setExpired(w *worker, st *zoneState, expired bool) {
	origin := w.origin
	st.expired = expired
	v := 0.0
	if expired {
		v = 1
		w.kept.Store(false)
		expire, fromConfig, _ := s.expireAfter(w, st)
		source := "soa"
		if fromConfig {
			source = "config"
		}
		args := []any{"zone", origin, "last_refresh", st.refreshed.UTC().Format(time.RFC3339),
			"expire", expire, "expire_from", source, "failed_checks", st.failures}
		msg := "secondary zone expired: no check succeeded within its expire time; it is no longer served"
		if st.lastErr != nil {
			args = append(args, "last_error", st.lastErr.Error())
		} else {
			msg = "secondary zone expired: its expire time passed before a check could be made; it is no longer served"
		}
		s.n.log.Error(msg, args...)
	} else {
		s.n.log.Info("expired secondary zone is current again and served", "zone", origin)
	}
	w.expired.Store(expired)
	if s.n.m.PerZone() {
		s.n.m.ZoneExpired.WithLabelValues(origin).Set(v)
	}
	if s.n.serve != nil {
		s.n.serve(origin, !expired)
	}
}

// acquire takes a slot of sem, or fails when ctx ends first.
func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refresh checks the zone at its primaries, in order, and transfers it
// from the first that has a newer serial. It returns nil when the stored
// copy is current, now or after a transfer.
func (s *secondaries) refresh(ctx context.Context, w *worker, st *zoneState) error {
	_, err := s.check(ctx, w, st, false)
	return err
}

// check is refresh, saying what it found; with retransfer it skips the
// SOA query and takes the zone whole by AXFR from the first primary that
// gives it, whatever its serial.
func (s *secondaries) check(ctx context.Context, w *worker, st *zoneState, retransfer bool) (RefreshResult, error) {
	cfg := w.cfg.Load()
	res := RefreshResult{Zone: cfg.Zone}
	if len(cfg.Primaries) == 0 {
		return res, errNoPrimaries
	}
	if m, err := s.n.store.Meta(cfg.Zone); err == nil && m.Kind != zonestore.KindSecondary {
		return res, fmt.Errorf("zone %s: %w", cfg.Zone, errPrimaryHere)
	}
	cur, err := s.n.store.Load(cfg.Zone)
	if err != nil {
		cur, st.soa = nil, nil // none yet, or unusable: transfer it whole
	} else {
		st.soa = cur.SOA
		res.OldSerial, res.Serial = cur.Serial(), cur.Serial()
	}
	var errs []error
	for _, p := range cfg.Primaries {
		var z *zone.Zone
		var changed map[string]bool
		var typ string
		if retransfer {
			z, err = s.retransfer(ctx, cfg, p, cur)
			typ = "AXFR"
		} else {
			var soa *dns.SOA
			soa, err = s.querySOA(ctx, cfg, p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			res.Primary, res.PrimarySerial = p.Addr.String(), soa.Serial
			if cur != nil && !zonestore.SerialLess(cur.Serial(), soa.Serial) {
				if soa.Serial != cur.Serial() {
					s.n.log.Warn("primary has an older serial than this copy: keeping the copy (RFC 1982)",
						"zone", cfg.Zone, "primary", p.Addr.String(), "primary_serial", soa.Serial, "serial", cur.Serial())
				}
				if err := s.n.store.MarkRefreshed(cfg.Zone, s.now()); err != nil {
					s.n.log.Warn("cannot record the refresh time", "zone", cfg.Zone, "err", err)
				}
				return res, nil
			}
			z, changed, typ, err = s.transfer(ctx, cfg, p, cur)
		}
		if err != nil {
			errs = append(errs, err)
			if errors.Is(err, errPrimaryHere) || ctx.Err() != nil {
				break
			}
			continue
		}
		st.soa = z.SOA
		res.Primary, res.PrimarySerial, res.Serial, res.Transfer = p.Addr.String(), z.Serial(), z.Serial(), typ
		if cfg.Catalog {
			s.applyCatalog(w.origin, cur, z, changed)
		}
		return res, nil
	}
	res.Primary, res.PrimarySerial = "", 0
	return res, errors.Join(errs...)
}

// sign adds a TSIG record for key to m and returns the secret for the
// client; nothing for an empty key.
func (s *secondaries) sign(m *dns.Msg, key string) (map[string]string, error) {
	if key == "" {
		return nil, nil
	}
	k, ok := s.n.config().Keys[key]
	if !ok {
		return nil, fmt.Errorf("key %s: %w", key, errNoKey)
	}
	m.SetTsig(key, k.Algorithm, 300, s.now().Unix())
	return map[string]string{key: k.Secret}, nil
}

// querySOA asks primary p for the zone's SOA: over UDP, then over TCP if
// the answer is truncated or does not come.
func (s *secondaries) querySOA(ctx context.Context, cfg *SecondaryZone, p Target) (*dns.SOA, error) {
	if err := acquire(ctx, s.soaSlot); err != nil {
		return nil, err
	}
	defer func() { <-s.soaSlot }()
	addr := p.Addr.String()
	var r *dns.Msg
	var err error
	for _, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion(cfg.Zone, dns.TypeSOA)
		m.RecursionDesired = false
		var secret map[string]string
		if secret, err = s.sign(m, cfg.Key); err != nil {
			return nil, err
		}
		c := &dns.Client{Net: network, Timeout: s.t.soaTimeout, TsigSecret: secret,
			Dialer: &net.Dialer{Timeout: s.t.soaTimeout, LocalAddr: localAddr(network, cfg.TransferSource.For(p.Addr.Addr()))}}
		r, _, err = c.ExchangeContext(ctx, m, addr)
		if err != nil && !isNetError(err) {
			err = answerError(m, r, err) // the primary's rcode, not just "bad authentication"
		}
		if err == nil && secret != nil && r.IsTsig() == nil {
			err = errUnsigned
		}
		if err == nil && !r.Truncated {
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("SOA query to %s: %w", addr, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("SOA query to %s: %w: %s", addr, errBadResponse, dns.RcodeToString[r.Rcode])
	}
	if !r.Authoritative {
		return nil, fmt.Errorf("SOA query to %s: %w: not authoritative for %s", addr, errBadResponse, cfg.Zone)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok && zone.Fqdn(soa.Hdr.Name) == cfg.Zone {
			return soa, nil
		}
	}
	return nil, fmt.Errorf("SOA query to %s: %w: no SOA of %s in the answer", addr, errBadResponse, cfg.Zone)
}

// transfer brings the zone in from primary p and stores it: by IXFR from
// cur when there is a copy, by AXFR otherwise or when IXFR fails. It
// returns the type of the transfer that succeeded, and the names an
// incremental one changed (transferOnce).
func (s *secondaries) transfer(ctx context.Context, cfg *SecondaryZone, p Target, cur *zone.Zone) (*zone.Zone, map[string]bool, string, error) {
	if err := acquire(ctx, s.xfrSlot); err != nil {
		return nil, nil, "", err
	}
	defer func() { <-s.xfrSlot }()
	var ixfrErr error
	if cur != nil {
		z, changed, err := s.transferOnce(ctx, cfg, p, cur, dns.TypeIXFR, false)
		if err == nil || errors.Is(err, errPrimaryHere) || ctx.Err() != nil {
			return z, changed, "IXFR", err
		}
		ixfrErr = err
		s.n.log.Info("IXFR failed: trying AXFR", "zone", cfg.Zone, "primary", p.Addr.String(), "err", err)
	}
	z, changed, err := s.transferOnce(ctx, cfg, p, cur, dns.TypeAXFR, false)
	if err != nil && ixfrErr != nil {
		err = errors.Join(ixfrErr, err)
	}
	return z, changed, "AXFR", err
}

// retransfer brings the zone in whole from p by AXFR and stores it in
// place of cur, whatever the serials.
func (s *secondaries) retransfer(ctx context.Context, cfg *SecondaryZone, p Target, cur *zone.Zone) (*zone.Zone, error) {
	if err := acquire(ctx, s.xfrSlot); err != nil {
		return nil, err
	}
	defer func() { <-s.xfrSlot }()
	z, _, err := s.transferOnce(ctx, cfg, p, cur, dns.TypeAXFR, true)
	return z, err
}

// transferOnce makes one transfer of type qtype from p, checks the zone
// and stores it. With replace, an AXFR replaces the copy whatever the
// serials. An incremental transfer also returns the wire keys of the
// names it changed (nil: the zone came whole).
func (s *secondaries) transferOnce(ctx context.Context, cfg *SecondaryZone, p Target, cur *zone.Zone, qtype uint16, replace bool) (*zone.Zone, map[string]bool, error) {
	start := s.now()
	typ := dns.TypeToString[qtype]
	count := func(result string) { s.n.m.TransfersIn.WithLabelValues(s.n.m.Zone(cfg.Zone), typ, result).Inc() }
	rrs, err := s.receive(ctx, cfg, p, cur, qtype)
	if err != nil {
		count(xfrFailed)
		return nil, nil, fmt.Errorf("%s of %s from %s: %w", typ, cfg.Zone, p.Addr, err)
	}
	z, changed, err := assemble(cfg.Zone, cur, rrs, qtype)
	if err == nil {
		check := cur
		if replace {
			check = nil // any serial will do
		}
		err = checkTransfer(cfg, check, z, changed)
	}
	if err != nil {
		if errors.Is(err, errInvalidZone) {
			count(xfrInvalid)
		} else {
			count(xfrFailed)
		}
		return nil, nil, fmt.Errorf("%s of %s from %s: %w", typ, cfg.Zone, p.Addr, err)
	}
	var res zonestore.PutResult
	switch {
	case replace:
		res, err = s.n.store.ReplaceTransfer(z, p.Addr.String())
	case changed != nil:
		// Only the names the IXFR touched are written and journaled.
		res, err = s.n.store.PutTransferChanges(cur, z, changed, p.Addr.String())
	default:
		res, err = s.n.store.PutTransfer(z, p.Addr.String())
	}
	if err != nil {
		count(xfrFailed)
		if errors.Is(err, zonestore.ErrNotSecondary) {
			err = fmt.Errorf("%w: %w", errPrimaryHere, err)
		}
		return nil, nil, fmt.Errorf("%s of %s from %s: %w", typ, cfg.Zone, p.Addr, err)
	}
	count(xfrSuccess)
	s.received.Add(int64(res.Records))
	s.n.log.Info("zone transferred", "zone", cfg.Zone, "type", typ, "primary", p.Addr.String(),
		"serial", res.Serial, "old_serial", res.OldSerial, "records", res.Records, "replace", replace,
		"duration", s.now().Sub(start).Round(time.Millisecond))
	return res.Zone, changed, nil
}

// receive runs one AXFR or IXFR with p over TCP and returns the records
// of the answer sections, in order. Every message must be signed when the
// zone has a key.
func (s *secondaries) receive(ctx context.Context, cfg *SecondaryZone, p Target, cur *zone.Zone, qtype uint16) ([]dns.RR, error) {
	ctx, cancel := context.WithTimeout(ctx, s.t.xfrTotal)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(cfg.Zone, qtype)
	m.RecursionDesired = false
	if qtype == dns.TypeIXFR {
		m.Ns = []dns.RR{dns.Copy(cur.SOA)}
	}
	secret, err := s.sign(m, cfg.Key)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: s.t.dialTimeout, LocalAddr: localAddr("tcp", cfg.TransferSource.For(p.Addr.Addr()))}
	conn, err := d.DialContext(ctx, "tcp", p.Addr.String())
	if err != nil {
		return nil, err
	}
	// Closing the connection ends the transfer's reads when ctx ends.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	tr := &dns.Transfer{Conn: &dns.Conn{Conn: conn}, ReadTimeout: s.t.xfrRead, WriteTimeout: s.t.xfrRead, TsigSecret: secret}
	env, err := tr.In(m, p.Addr.String())
	if err != nil {
		conn.Close()
		return nil, err
	}
	var rrs []dns.RR
	var ferr error
	// Read to the end of the channel, so that the reading goroutine ends;
	// after an error the connection is closed and it ends at once.
	for e := range env {
		switch {
		case ferr != nil:
		case e.Error != nil:
			ferr = e.Error
		case len(rrs)+len(e.RR) > s.t.maxRecords:
			ferr = fmt.Errorf("%w (%d records)", errTooLarge, s.t.maxRecords)
			conn.Close()
		default:
			rrs = append(rrs, e.RR...)
		}
	}
	if ferr == nil {
		ferr = ctx.Err()
	}
	if ferr != nil {
		return nil, ferr
	}
	return rrs, nil
}

// assemble makes the zone a transfer's records describe: the whole zone
// for AXFR and an AXFR-style IXFR reply, cur with the differences applied
// for an incremental one (RFC 1995 §4), with the wire keys of the names
// that differ from cur's (nil: compare them all).
func assemble(origin string, cur *zone.Zone, rrs []dns.RR, qtype uint16) (*zone.Zone, map[string]bool, error) {
	if len(rrs) == 0 {
		return nil, nil, fmt.Errorf("%w: no records", errBadTransfer)
	}
	first, ok := rrs[0].(*dns.SOA)
	if !ok {
		return nil, nil, fmt.Errorf("%w: the first record is not an SOA", errBadTransfer)
	}
	if zone.Fqdn(first.Hdr.Name) != origin {
		return nil, nil, fmt.Errorf("%w: SOA of %s, not of %s", errInvalidZone, first.Hdr.Name, origin)
	}
	if qtype == dns.TypeIXFR {
		if len(rrs) == 1 {
			// The primary's SOA alone: nothing newer than cur, or no IXFR
			// to give (then AXFR).
			return nil, nil, fmt.Errorf("%w: the primary sent its SOA alone (serial %d)", errIXFRNotUsable, first.Serial)
		}
		if _, incremental := rrs[1].(*dns.SOA); incremental {
			return applyIXFR(origin, cur, rrs)
		}
	}
	if len(rrs) < 2 {
		return nil, nil, fmt.Errorf("%w: the transfer does not end with the SOA", errBadTransfer)
	}
	last, ok := rrs[len(rrs)-1].(*dns.SOA)
	if !ok || last.Serial != first.Serial || zone.Fqdn(last.Hdr.Name) != origin {
		return nil, nil, fmt.Errorf("%w: the transfer does not end with the SOA it began with", errBadTransfer)
	}
	body := rrs[:len(rrs)-1]
	z, err := zone.Build(origin, body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errInvalidZone, err)
	}
	return z, nil, nil
}

// applyIXFR applies the difference sequences of an incremental IXFR reply
// to cur. Each sequence must start from the serial the previous one ended
// at (the first from cur's), and every record it deletes must be there.
// Only the names the differences touch are read and checked (zone.Apply);
// it returns their wire keys with the new version.
func applyIXFR(origin string, cur *zone.Zone, rrs []dns.RR) (*zone.Zone, map[string]bool, error) {
	if cur == nil {
		return nil, nil, fmt.Errorf("%w: an incremental reply with no copy to apply it to", errIXFRNotUsable)
	}
	final := rrs[0].(*dns.SOA)
	last := len(rrs) - 1
	if end, ok := rrs[last].(*dns.SOA); !ok || end.Serial != final.Serial {
		return nil, nil, fmt.Errorf("%w: the reply does not end with the primary's SOA", errBadTransfer)
	}
	// names holds the records of each touched name as the differences
	// leave them, starting from copies of cur's (zone.Apply may align the
	// TTLs of an RRset, and cur's records are being served).
	names := map[string][]dns.RR{}
	at := func(rr dns.RR) ([]dns.RR, string, error) {
		k, err := zone.WireKey(rr.Header().Name)
		if err != nil {
			return nil, "", fmt.Errorf("%w: %s: %w", errInvalidZone, rr.Header().Name, err)
		}
		k = strings.ToLower(k)
		if held, ok := names[k]; ok {
			return held, k, nil
		}
		var held []dns.RR
		add := func(n *zone.Node) {
			for _, set := range n.RRsets {
				for _, x := range set.RRs() {
					if x.Header().Rrtype != dns.TypeSOA {
						held = append(held, dns.Copy(x))
					}
				}
				for _, x := range set.Sigs() {
					held = append(held, dns.Copy(x))
				}
			}
		}
		if n := cur.Lookup(k); n != nil {
			add(n)
		}
		if n := cur.LookupNSEC3(k); n != nil {
			add(n)
		}
		return held, k, nil
	}
	serial := cur.Serial()
	soa := cur.SOA
	i := 1
	for i < last {
		from, ok := rrs[i].(*dns.SOA)
		if !ok || zone.Fqdn(from.Hdr.Name) != origin {
			return nil, nil, fmt.Errorf("%w: a difference sequence does not start with the zone's SOA", errBadTransfer)
		}
		if from.Serial != serial {
			return nil, nil, fmt.Errorf("%w: a difference from serial %d, the copy has %d", errIXFRNotUsable, from.Serial, serial)
		}
		for i++; i < last; i++ {
			rr := rrs[i]
			if _, isSOA := rr.(*dns.SOA); isSOA {
				break
			}
			held, k, err := at(rr)
			if err != nil {
				return nil, nil, err
			}
			j := slices.IndexFunc(held, func(x dns.RR) bool { return dns.IsDuplicate(x, rr) })
			if j < 0 {
				return nil, nil, fmt.Errorf("%w: it deletes %s, which the copy does not have", errIXFRNotUsable, rr)
			}
			names[k] = slices.Delete(held, j, j+1)
		}
		to, ok := rrs[i].(*dns.SOA)
		if i >= last || !ok || zone.Fqdn(to.Hdr.Name) != origin {
			return nil, nil, fmt.Errorf("%w: a difference sequence has no SOA of the zone for its additions", errBadTransfer)
		}
		if !zonestore.SerialLess(serial, to.Serial) {
			return nil, nil, fmt.Errorf("%w: a difference from serial %d to %d goes backwards", errInvalidZone, serial, to.Serial)
		}
		for i++; i < last; i++ {
			rr := rrs[i]
			if _, isSOA := rr.(*dns.SOA); isSOA {
				break
			}
			held, k, err := at(rr)
			if err != nil {
				return nil, nil, err
			}
			// Already there: the addition may change the TTL.
			held = slices.DeleteFunc(held, func(x dns.RR) bool { return dns.IsDuplicate(x, rr) })
			names[k] = append(held, rr)
		}
		serial, soa = to.Serial, to
	}
	if serial != final.Serial {
		return nil, nil, fmt.Errorf("%w: the differences end at serial %d, the primary has %d", errBadTransfer, serial, final.Serial)
	}
	apex, k, err := at(soa)
	if err != nil {
		return nil, nil, err
	}
	names[k] = append(slices.Clip(apex), dns.Copy(soa))
	z, err := zone.Apply(cur, names)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errInvalidZone, err)
	}
	changed := make(map[string]bool, len(names))
	for k := range names {
		changed[k] = true
	}
	return z, changed, nil
}

// checkTransfer checks a transferred zone against the stored copy. A
// catalog is checked whole, or after an incremental transfer, the names it
// changed only.
func checkTransfer(cfg *SecondaryZone, cur, z *zone.Zone, changed map[string]bool) error {
	if z.Origin != cfg.Zone {
		return fmt.Errorf("%w: zone %s, not %s", errInvalidZone, z.Origin, cfg.Zone)
	}
	if cur != nil && !zonestore.SerialLess(cur.Serial(), z.Serial()) {
		return fmt.Errorf("%w: serial %d is not newer than the copy's %d (RFC 1982)", errInvalidZone, z.Serial(), cur.Serial())
	}
	if !cfg.Catalog {
		return nil
	}
	var err error
	if changed != nil && cur != nil {
		_, _, err = catalogChanges(cur, z, changed)
	} else {
		_, _, err = catalogMembers(z)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalidZone, err)
	}
	return nil
}

// fromPrimary reports whether addr is the address of one of cfg's
// primaries.
func fromPrimary(cfg *SecondaryZone, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range cfg.Primaries {
		if p.Addr.Addr().Unmap() == addr {
			return true
		}
	}
	return false
}

// notifyRcode decides a NOTIFY for the zone of cfg from addr, signed with
// key (empty: unsigned): NOERROR when it comes from a primary's address or
// an address of allow_notify, signed as the zone requires (with the zone's
// key when it has one, or with the key the allow_notify entry names);
// NOTAUTH when the address is admitted but not the signature; REFUSED
// when the address is not.
func notifyRcode(cfg *SecondaryZone, addr netip.Addr, key string) int {
	key = strings.ToLower(key)
	if key != "" {
		key = dns.Fqdn(key)
	}
	zoneKey := func(k string) bool { return cfg.Key == "" || strings.EqualFold(k, cfg.Key) }
	rcode := dns.RcodeRefused
	if fromPrimary(cfg, addr) {
		if zoneKey(key) {
			return dns.RcodeSuccess
		}
		rcode = dns.RcodeNotAuth
	}
	addr = addr.Unmap()
	for _, e := range cfg.AllowNotify {
		if !e.Any && !e.Prefix.Contains(addr) {
			continue
		}
		if (e.Key == "" && zoneKey(key)) || (e.Key != "" && strings.EqualFold(e.Key, key)) {
			return dns.RcodeSuccess
		}
		rcode = dns.RcodeNotAuth
	}
	return rcode
}

// notify answers a NOTIFY (RFC 1996 §3.7): for a secondary zone, from one
// of its primaries' addresses or an address its allow_notify admits, and
// signed as they require, the zone is checked at once and the answer is
// NOERROR with AA. A NOTIFY from elsewhere is REFUSED, one without the
// right key NOTAUTH, and one for a zone that is not a secondary here
// NOTAUTH.
func (s *secondaries) notify(_ context.Context, req *dns.Msg, p server.Peer) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(req)
	if len(req.Question) != 1 {
		r.Rcode = dns.RcodeFormatError
		return r
	}
	origin := zone.Fqdn(req.Question[0].Name)
	s.mu.Lock()
	w := s.workers[origin]
	var cfg *SecondaryZone
	if w != nil {
		cfg = w.cfg.Load()
	} else if s.ctx == nil {
		// Not running yet: the zone is checked when its worker starts.
		if sz, ok := s.desired(s.n.config())[origin]; ok {
			cfg = &sz
		}
	}
	s.mu.Unlock()
	if cfg == nil {
		r.Rcode = dns.RcodeNotAuth
		s.n.m.NotifyRecv.WithLabelValues(metrics.ZoneNone, notifyNotSecondary).Inc()
		s.n.log.Debug("NOTIFY for a zone that is not a secondary here", "zone", origin, "client", p.Addr.Addr())
		return r
	}
	r.Rcode = notifyRcode(cfg, p.Addr.Addr(), p.Key)
	if r.Rcode != dns.RcodeSuccess {
		s.n.m.NotifyRecv.WithLabelValues(s.n.m.Zone(origin), notifyRefused).Inc()
		why := "not from a primary's address, nor from one allow_notify admits"
		if r.Rcode == dns.RcodeNotAuth {
			why = "not signed with the key required"
		}
		s.n.log.Info("NOTIFY refused: "+why, "zone", origin, "client", p.Addr.Addr(), "key", p.Key, "rcode", dns.RcodeToString[r.Rcode])
		return r
	}
	r.Authoritative = true
	s.n.m.NotifyRecv.WithLabelValues(s.n.m.Zone(origin), notifyAccepted).Inc()
	s.n.log.Debug("NOTIFY accepted", "zone", origin, "client", p.Addr.Addr(), "key", p.Key)
	if w != nil {
		s.mu.Lock()
		s.kickLocked(w)
		s.mu.Unlock()
	}
	return r
}
