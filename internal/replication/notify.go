package replication

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// NOTIFY out (RFC 1996). After each commit of a primary zone, and once at
// start for every primary zone (so that secondaries which missed a change
// while this node was down catch up), every target of the zone's policy is
// sent a NOTIFY over UDP with the zone's SOA in the answer section, signed
// with the target's TSIG key when it has one, from the policy's
// notify_source address for the target's family (the system's choice when
// none is set). A target that does not acknowledge is tried again after
// 1s, 2s, 4s and 8s; when none of these UDP attempts got an answer, once
// more over TCP (as BIND and Knot do: a firewall or a server may take DNS
// over TCP only), and then given up (its SOA timers still bring it the
// change). A truncated answer over UDP is retried over TCP at once. A newer
// change of the zone replaces the one pending for a target, which is then
// sent the newer SOA and tried afresh, over UDP first.
//
// Pending notifications are one per zone and target, however many changes
// come: changed never blocks and never drops one. They are kept in a
// schedule ordered by when they are due, so that a node of many zones
// finds the next due ones without looking at all. At start the zones are
// notified the catalog zone first and the others spread at
// Config.NotifyStartRate per second, so that a start does not flood the secondaries (which refresh on
// their own too).

// Results counted in NotifySent.
const (
	notifyAcked   = "acked"
	notifyRetry   = "retry"
	notifyGivenUp = "given_up"
)

// notifyKey identifies a pending notification: one per zone and target.
type notifyKey struct {
	origin string
	addr   netip.AddrPort
}

// notifyJob is a pending notification.
type notifyJob struct {
	target Target
	serial uint32    // the zone's serial when last changed
	gen    uint64    // moved on by each change: an ack covers the gen it was sent for
	tries  int       // attempts made for this gen
	due    time.Time // when to send next
	busy   bool      // an attempt is under way
	tcp    bool      // the next attempt goes over TCP
	seq    uint64    // of its latest place in the schedule (dueEntry.seq)
}

// dueEntry is a job's place in the schedule; it is stale once the job has
// been scheduled again (seq) or is gone.
type dueEntry struct {
	due time.Time
	key notifyKey
	seq uint64
}

// dueHeap orders the schedule by due time (container/heap).
type dueHeap []dueEntry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// NotifyPending is the number of notifications (one per zone and
// target) waiting or under way.
func (n *Node) NotifyPending() int {
	n.notifier.mu.Lock()
	defer n.notifier.mu.Unlock()
	return len(n.notifier.jobs)
}

// DefaultNotifyStartRate is how many zones a second are notified at start
// unless configured otherwise.
const DefaultNotifyStartRate = 500

// notifier sends the NOTIFYs of one node.
type notifier struct {
	n *Node

	timeout  time.Duration // per attempt
	backoff  time.Duration // before the first retry; doubled each time
	tries    int           // attempts before giving up
	parallel int           // attempts under way at once
	startup  time.Duration // delay of the notifications sent at start

	wake chan struct{}

	mu    sync.Mutex
	jobs  map[notifyKey]*notifyJob
	sched dueHeap
	gen   uint64
	seq   uint64
}

func newNotifier(n *Node) *notifier {
	return &notifier{
		n:        n,
		timeout:  2 * time.Second,
		backoff:  time.Second,
		tries:    5,
		parallel: 16,
		startup:  time.Second,
		wake:     make(chan struct{}, 1),
		jobs:     map[notifyKey]*notifyJob{},
	}
}

// changed is told that the zone at origin now has serial. It queues a
// NOTIFY to each of the zone's targets and returns at once.
func (nt *notifier) changed(origin string, serial uint32) {
	nt.queue(origin, serial, time.Now())
}

// queue is changed with the time the notifications become due.
func (nt *notifier) queue(origin string, serial uint32, due time.Time) {
	origin = zone.Fqdn(origin)
	targets := nt.n.config().Policy(origin).Notify
	if len(targets) == 0 {
		return
	}
	nt.mu.Lock()
	for _, t := range targets {
		k := notifyKey{origin: origin, addr: t.Addr}
		j := nt.jobs[k]
		if j == nil {
			j = &notifyJob{}
			nt.jobs[k] = j
		}
		nt.gen++
		j.target, j.serial, j.gen, j.tries, j.due, j.tcp = t, serial, nt.gen, 0, due, false
		if !j.busy { // else the attempt under way schedules it when it ends
			nt.schedule(k, j)
		}
	}
	nt.n.m.NotifyPending.Set(float64(len(nt.jobs)))
	nt.mu.Unlock()
	nt.poke()
}

// schedule puts job j at k in the schedule at j.due; nt.mu is held.
func (nt *notifier) schedule(k notifyKey, j *notifyJob) {
	nt.seq++
	j.seq = nt.seq
	heap.Push(&nt.sched, dueEntry{due: j.due, key: k, seq: j.seq})
}

func (nt *notifier) poke() {
	select {
	case nt.wake <- struct{}{}:
	default:
	}
}

// run sends the pending notifications until ctx ends, starting with one
// for every primary zone.
func (nt *notifier) run(ctx context.Context) {
	// The catalog zone is notified first: its update at start comes
	// before the others are queued (a minute at most).
	select {
	case <-nt.n.secondary.catalog.ready:
	case <-time.After(time.Minute):
	case <-ctx.Done():
		return
	}
	nt.notifyAll(time.Now().Add(nt.startup))
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, nt.parallel)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		due, next := nt.take(now, nt.parallel-len(slots))
		for _, k := range due {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				nt.attempt(ctx, k)
				<-slots
				nt.poke() // the slot is free, the job maybe due again
			}()
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(now), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-nt.wake:
		case <-timer.C:
		}
	}
}

// notifyAll queues a notification of every primary zone, from due on:
// the catalog zone first, the others at the configured rate.
func (nt *notifier) notifyAll(due time.Time) {
	kinds, err := nt.n.store.Kinds()
	if err != nil {
		nt.n.log.Warn("cannot list zones to notify their secondaries", "err", err)
		return
	}
	names := zone.SortedCanonical(kinds)
	rate := cmp.Or(nt.n.config().NotifyStartRate, DefaultNotifyStartRate)
	cat := nt.n.config().Catalog
	if cat != "" {
		if i := slices.Index(names, cat); i > 0 {
			names = slices.Insert(slices.Delete(names, i, i+1), 0, cat)
		}
	}
	queued := 0
	defer func() {
		if queued > 1 {
			nt.n.log.Info("notifying the secondaries of every primary zone", "zones", queued,
				"over", (time.Duration(queued-1) * time.Second / time.Duration(rate)).Round(time.Millisecond))
		}
	}()
	for _, origin := range names {
		if len(nt.n.config().Policy(origin).Notify) == 0 {
			continue
		}
		if kinds[origin] != zonestore.KindPrimary {
			continue
		}
		z, err := nt.n.store.Load(origin)
		if err != nil {
			continue // logged where the zone is loaded for serving
		}
		if origin == cat {
			// The members follow a little later: a consumer then knows
			// them when their own NOTIFYs come.
			nt.queue(origin, z.Serial(), due)
			due = due.Add(catalogLead)
			continue
		}
		nt.queue(origin, z.Serial(), due.Add(time.Duration(queued)*time.Second/time.Duration(rate)))
		queued++
	}
}

// catalogLead is how long before the other zones the catalog zone is
// notified at start.
const catalogLead = time.Second

// take marks at most limit due notifications busy and returns them, with
// the time the next one not yet due will be. Those due that find no free
// slot wait for an attempt to end, which pokes run.
func (nt *notifier) take(now time.Time, limit int) (due []notifyKey, next time.Time) {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	for nt.sched.Len() > 0 {
		e := nt.sched[0]
		j := nt.jobs[e.key]
		switch {
		case j == nil || j.seq != e.seq || j.busy:
			heap.Pop(&nt.sched) // stale: rescheduled, done, or under way
		case e.due.After(now):
			return due, e.due
		case len(due) >= limit:
			return due, time.Time{} // a slot's end pokes run
		default:
			heap.Pop(&nt.sched)
			j.busy = true
			due = append(due, e.key)
		}
	}
	return due, time.Time{}
}

// errNotifyDropped ends a notification that cannot be sent at all;
// errNotifySkipped one that is not due after all. errNoAnswer is an
// attempt that got no answer (a timeout, or no server on the port), and
// errTruncated an answer over UDP with TC set: both are tried over TCP.
var (
	errNotifyDropped = errors.New("notification dropped")
	errNotifySkipped = errors.New("notification not needed")
	errNoAnswer      = errors.New("no answer")
	errTruncated     = errors.New("truncated answer")
)

// attempt sends one NOTIFY for the job at k and records the outcome.
func (nt *notifier) attempt(ctx context.Context, k notifyKey) {
	nt.mu.Lock()
	j := nt.jobs[k]
	t, gen, tries, tcp := j.target, j.gen, j.tries+1, j.tcp
	nt.mu.Unlock()

	serial, err := nt.send(ctx, k.origin, t, tcp)
	if ctx.Err() != nil {
		return // shutting down; the next start notifies again
	}

	nt.mu.Lock()
	defer nt.mu.Unlock()
	j.busy = false
	defer func() {
		if nt.jobs[k] == j { // still pending: a retry, or a newer change
			nt.schedule(k, j)
		}
		nt.n.m.NotifyPending.Set(float64(len(nt.jobs)))
	}()
	transport := "udp"
	if tcp {
		transport = "tcp"
	}
	log := nt.n.log.With("zone", k.origin, "target", t.Addr.String(), "serial", serial, "transport", transport)
	switch {
	case errors.Is(err, errNotifySkipped):
		delete(nt.jobs, k)
		log.Debug("NOTIFY not sent", "reason", err)
	case errors.Is(err, errNotifyDropped):
		delete(nt.jobs, k)
		log.Warn("NOTIFY not sent", "err", err)
	case err == nil:
		nt.n.m.NotifySent.WithLabelValues(nt.n.m.Zone(k.origin), notifyAcked).Inc()
		if j.gen == gen {
			delete(nt.jobs, k)
		}
		if tcp && tries > 1 {
			log.Info("NOTIFY acknowledged over TCP after no answer over UDP", "tries", tries)
		} else {
			log.Debug("NOTIFY acknowledged")
		}
	case j.gen != gen:
		// A newer change came while this one was under way: it goes next.
		nt.n.m.NotifySent.WithLabelValues(nt.n.m.Zone(k.origin), notifyRetry).Inc()
	case !tcp && (errors.Is(err, errTruncated) || tries >= nt.tries && errors.Is(err, errNoAnswer)):
		// Over TCP at once: the answer did not fit, or UDP got none.
		nt.n.m.NotifySent.WithLabelValues(nt.n.m.Zone(k.origin), notifyRetry).Inc()
		j.tries, j.tcp, j.due = tries, true, time.Now()
		log.Info("NOTIFY: trying TCP", "tries", tries, "err", err)
	case tries >= nt.tries:
		nt.n.m.NotifySent.WithLabelValues(nt.n.m.Zone(k.origin), notifyGivenUp).Inc()
		delete(nt.jobs, k)
		log.Warn("NOTIFY not acknowledged; giving up (the secondary's SOA timers will find the change)", "tries", tries, "err", err)
	default:
		nt.n.m.NotifySent.WithLabelValues(nt.n.m.Zone(k.origin), notifyRetry).Inc()
		j.tries = tries
		j.due = time.Now().Add(nt.backoff << (tries - 1))
		log.Debug("NOTIFY not acknowledged; will retry", "tries", tries, "retry_in", nt.backoff<<(tries-1), "err", err)
	}
}

// send sends one NOTIFY of the zone at origin, as served now, to t over
// UDP (over TCP with tcp set) and waits for the acknowledgement. It
// returns the serial sent.
func (nt *notifier) send(ctx context.Context, origin string, t Target, tcp bool) (uint32, error) {
	key, err := zone.WireKey(origin)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errNotifyDropped, err)
	}
	z := nt.n.zones().Get(key)
	if z == nil {
		return 0, fmt.Errorf("%w: the zone is no longer served", errNotifySkipped)
	}
	// A secondary copy is not notified onwards: its policy is its
	// primaries'.
	if meta, err := nt.n.store.Meta(origin); err == nil && meta.Kind != zonestore.KindPrimary {
		return z.Serial(), fmt.Errorf("%w: the zone is a secondary here", errNotifySkipped)
	}
	m := new(dns.Msg)
	m.SetNotify(origin)
	m.Answer = []dns.RR{z.SOA}
	network := "udp"
	if tcp {
		network = "tcp"
	}
	src := nt.n.config().Policy(origin).NotifySource.For(t.Addr.Addr())
	c := &dns.Client{Net: network, Timeout: nt.timeout,
		Dialer: &net.Dialer{Timeout: nt.timeout, LocalAddr: localAddr(network, src)}}
	if t.Key != "" {
		k, ok := nt.n.config().Keys[t.Key]
		if !ok {
			return z.Serial(), fmt.Errorf("%w: TSIG key %s is not configured", errNotifyDropped, t.Key)
		}
		m.SetTsig(t.Key, k.Algorithm, 300, time.Now().Unix())
		c.TsigSecret = map[string]string{t.Key: k.Secret}
	}
	actx, cancel := context.WithTimeout(ctx, nt.timeout)
	defer cancel()
	r, _, err := c.ExchangeContext(actx, m, t.Addr.String())
	switch {
	case err != nil && src.IsValid() && errors.Is(err, syscall.EADDRNOTAVAIL):
		// Not worth retrying: the configuration names an address this
		// host does not have.
		return z.Serial(), fmt.Errorf("%w: notify_source %s is not an address of this host: %w", errNotifyDropped, src, err)
	case err != nil && !isNetError(err):
		// An answer, but a bad one: unsigned, or a TSIG error.
		return z.Serial(), fmt.Errorf("NOTIFY to %s: %w", t.Addr, answerError(m, r, err))
	case err != nil:
		return z.Serial(), fmt.Errorf("NOTIFY to %s over %s: %w: %w", t.Addr, network, errNoAnswer, err)
	case r.Truncated && !tcp:
		return z.Serial(), fmt.Errorf("NOTIFY to %s: %w", t.Addr, errTruncated)
	case r.Rcode != dns.RcodeSuccess:
		return z.Serial(), fmt.Errorf("NOTIFY to %s: answered %s", t.Addr, dns.RcodeToString[r.Rcode])
	case r.Opcode != dns.OpcodeNotify:
		return z.Serial(), fmt.Errorf("NOTIFY to %s: answered with opcode %s", t.Addr, dns.OpcodeToString[r.Opcode])
	}
	return z.Serial(), nil
}

// isNetError reports whether err is the network's (a timeout, a refused
// connection) rather than a problem with an answer that came.
func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// answerError describes the answer r to m that came with err (a TSIG
// failure): its rcode, and the TSIG error the other side gives, when it
// is an answer to m at all.
func answerError(m, r *dns.Msg, err error) error {
	if r == nil || r.Id != m.Id {
		return err
	}
	what := dns.RcodeToString[r.Rcode]
	if ts := r.IsTsig(); ts != nil && ts.Error != 0 {
		what += " with TSIG error " + dns.RcodeToString[int(ts.Error)]
	}
	return fmt.Errorf("answered %s (%w)", what, err)
}
