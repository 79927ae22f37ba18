package resolver

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrZoneBusy is a question not sent upstream because
// Config.MaxZoneInFlight queries were already waiting on the servers of
// its zone.
var ErrZoneBusy = errors.New("too many queries waiting on the servers of the zone")

// DefaultMaxZoneInFlight is Config.MaxZoneInFlight when zero: a quarter
// of the server's default bound on resolutions under way, so that one
// slow or dead zone can hold at most a quarter of them.
const DefaultMaxZoneInFlight = 250

// Queueing for a zone's query slots (zoneWaits.acquire).
const (
	// zoneLive is how recent a zone's last answer must be for a question
	// that finds its slots taken to queue for one: a zone that answers
	// frees its slots within a round trip.
	zoneLive = 250 * time.Millisecond
	// zoneQueueWait is the longest a question queues for a slot.
	zoneQueueWait = 250 * time.Millisecond
)

// zoneWaits counts the upstream queries waiting on the servers of each
// zone (delegation point). A zone whose servers time out or answer slowly
// holds its queries for long; past max of them, more questions for it
// fail at once instead of waiting too, and the resolutions under way stay
// free for the zones that answer. A zone that answers, busy only because
// many questions go to it at once (a cold cache, a popular zone), frees
// its slots within a round trip: there a question queues for a slot, up
// to zoneQueueWait. Zones are forgotten when nothing waits on them, so the
// table holds at most the queries under way.
type zoneWaits struct {
	max int // <= 0: no limit
	mu  sync.Mutex
	z   map[string]*zoneSlots
	// timers serves the queue's waits: a cold cache queues most of its
	// questions.
	timers timerPool
}

// zoneSlots is one zone's entry.
type zoneSlots struct {
	n        int           // queries waiting on the zone's servers
	queued   int           // questions queued for a slot
	answered time.Time     // the zone's last answer, or when the entry was made
	free     chan struct{} // a token per slot freed while questions queue
}

func newZoneWaits(max int) *zoneWaits {
	return &zoneWaits{max: max, z: map[string]*zoneSlots{}}
}

// acquire counts one query waiting on the servers of zone. When max are
// already waiting it queues for a slot if the zone answers (an answer in
// the last zoneLive, or its first queries went out less than zoneLive
// ago), up to zoneQueueWait or the end of ctx, and reports false if none
// came. now is the time: the caller's clock reading, which its query's
// timing shares.
func (z *zoneWaits) acquire(ctx context.Context, zone string, now time.Time) bool {
	if z.max <= 0 {
		return true
	}
	z.mu.Lock()
	e := z.z[zone]
	if e == nil {
		e = &zoneSlots{answered: now}
		z.z[zone] = e
	}
	if e.n < z.max {
		e.n++
		z.mu.Unlock()
		return true
	}
	if now.Sub(e.answered) > zoneLive {
		z.mu.Unlock()
		return false
	}
	if e.free == nil {
		e.free = make(chan struct{}, z.max)
	}
	e.queued++
	free := e.free
	z.mu.Unlock()

	// The timer ends the wait at ctx's deadline too, so that a
	// question's context makes no channel and timer of its own for it.
	done, deadline, ok := waitOn(ctx)
	wait := zoneQueueWait
	if ok {
		wait = min(wait, time.Until(deadline))
	}
	t := z.timers.get(wait)
	defer z.timers.put(t)
	for {
		select {
		case <-free:
		case <-t.C:
			z.leaveQueue(zone, e, false)
			return false
		case <-done:
			z.leaveQueue(zone, e, false)
			return false
		}
		z.mu.Lock()
		if e.n < z.max {
			z.mu.Unlock()
			z.leaveQueue(zone, e, true)
			return true
		}
		z.mu.Unlock() // taken by a question that did not queue
	}
}

// leaveQueue ends a question's queueing, with a slot (took) or without.
func (z *zoneWaits) leaveQueue(zone string, e *zoneSlots, took bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	e.queued--
	if took {
		e.n++
	}
	z.forget(zone, e)
}

// answered notes an answer from a server of zone, come at time at: the
// zone is live.
func (z *zoneWaits) answered(zone string, at time.Time) {
	if z.max <= 0 {
		return
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if e := z.z[zone]; e != nil && at.After(e.answered) {
		e.answered = at
	}
}

// release ends a query counted by acquire, and hands its slot to a
// queued question if any.
func (z *zoneWaits) release(zone string) {
	if z.max <= 0 {
		return
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	e := z.z[zone]
	if e == nil {
		return
	}
	e.n--
	if e.queued > 0 {
		select {
		case e.free <- struct{}{}:
		default:
		}
	}
	z.forget(zone, e)
}

// forget drops the entry of a zone nothing waits on. z.mu is held.
func (z *zoneWaits) forget(zone string, e *zoneSlots) {
	if e.n <= 0 && e.queued == 0 && z.z[zone] == e {
		delete(z.z, zone)
	}
}
