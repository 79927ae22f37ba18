package replication

import (
	"container/heap"
	"context"
	"runtime/debug"
	"time"
)

// The schedule of the secondary zones. Every worker not running waits in
// one queue, a heap ordered by when it is next due (its next check, or its
// expire time). The scheduler, run's loop, starts the due workers on
// goroutines of their own, at most maxRuns at once, and sleeps until the
// next is due. A NOTIFY or an operator's check moves a waiting worker to
// the front; one that arrives while the worker runs is kept for a run
// straight after. Nothing here grows with the number of zones but the
// queue itself: an idle zone costs its worker and its place in the heap.

// maxRuns bounds the workers running at once. Their checks are bounded
// further by the SOA and transfer slots; the runs beyond those wait for a
// slot, so that a zone that is due finds its SOA query already queued.
const maxRuns = 64

// workQueue is a heap of workers by due time.
type workQueue []*worker

func (q workQueue) Len() int           { return len(q) }
func (q workQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q workQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].idx, q[j].idx = i, j
}

func (q *workQueue) Push(x any) {
	w := x.(*worker)
	w.idx = len(*q)
	*q = append(*q, w)
}

func (q *workQueue) Pop() any {
	old := *q
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	w.idx = -1
	return w
}

// signal wakes the scheduler; a wake already pending is enough.
func (s *secondaries) signal() {
	select {
	case s.tick <- struct{}{}:
	default:
	}
}

// scheduleLocked makes w due at due, unless it runs (it is scheduled again
// when the run ends) or was removed. Called with s.mu held.
func (s *secondaries) scheduleLocked(w *worker, due time.Time) {
	if w.running || w.removed {
		return
	}
	w.due = due
	if w.idx >= 0 {
		heap.Fix(&s.queue, w.idx)
	} else {
		heap.Push(&s.queue, w)
	}
	if s.queue[0] == w {
		s.signal()
	}
}

// kickLocked has w checked as soon as there is room: now if it waits,
// straight after its run if it runs. Called with s.mu held.
func (s *secondaries) kickLocked(w *worker) {
	w.kicked = true
	s.scheduleLocked(w, s.now())
}

// removeLocked takes w off the schedule: its run under way, if any, is
// cancelled, and done is closed when it ends. Called with s.mu held.
func (s *secondaries) removeLocked(w *worker) {
	if w.removed {
		return
	}
	w.removed = true
	if s.workers[w.origin] == w {
		delete(s.workers, w.origin)
	}
	if w.idx >= 0 {
		heap.Remove(&s.queue, w.idx)
	}
	if w.running {
		w.cancel()
		return
	}
	close(w.done)
}

// dispatch starts the workers that are due, as many as there is room for,
// and returns how long until the next one is due (an hour when the queue
// is empty or every run is taken: a new zone, a kick or the end of a run
// wakes the scheduler).
func (s *secondaries) dispatch() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		return time.Hour
	}
	now := s.now()
	for len(s.queue) > 0 && s.runs < maxRuns {
		w := s.queue[0]
		if w.due.After(now) {
			return w.due.Sub(now)
		}
		heap.Pop(&s.queue)
		s.startRunLocked(w)
	}
	return time.Hour
}

// startRunLocked runs w on a goroutine of its own, with the kick and the
// first operator's check waiting for it; when the run ends, w goes back
// into the queue at the time the run gives, or at once when more is
// waiting. Called with s.mu held and s.ctx set.
func (s *secondaries) startRunLocked(w *worker) {
	ctx, cancel := context.WithCancel(s.ctx)
	kicked := w.kicked
	var rq *checkRequest
	if len(w.reqs) > 0 {
		r := w.reqs[0]
		rq = &r
		w.reqs = w.reqs[1:]
	}
	w.kicked, w.running, w.cancel = false, true, cancel
	s.runs++
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		due := s.step(ctx, w, kicked, rq)
		cancel()
		s.mu.Lock()
		s.runs--
		w.running, w.cancel = false, nil
		switch {
		case w.removed:
			close(w.done)
		case w.kicked || len(w.reqs) > 0:
			s.scheduleLocked(w, s.now())
		default:
			s.scheduleLocked(w, due)
		}
		idle := s.runs == 0
		s.mu.Unlock()
		s.signal() // room for another run
		if idle && s.received.Load() >= int64(s.t.releaseRecords) {
			// The transfers are over for now: what they used, beyond
			// the zones they made, goes back to the system at once
			// rather than over the next minutes.
			s.received.Store(0)
			debug.FreeOSMemory()
			s.releases.Add(1)
		}
	}()
}
