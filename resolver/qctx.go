package resolver

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// questionCtx is the context of one question: its parent's, ending at a
// deadline too, as context.WithTimeout's would. context.WithTimeout
// starts a timer, registers the child with its parent (a lock and a map
// entry on the server's context, shared by every question) and makes its
// channel when first asked for: four objects and two locked map changes
// per question, about 3 % of a cache miss's CPU. A question's work rarely
// waits on its context's channel: the upstream read takes the deadline as
// its socket's (exchangeNoting) and looks at Err, and nothing else on a
// miss's way waits on Done. So this context has no timer and no channel
// until something asks for Done (or registers a callback, as
// context.WithCancel and context.AfterFunc do on it): then it makes the
// ordinary one, which takes over the waiting.
//
// Err reads the clock instead of a timer's result: it is non-nil from the
// deadline on, at most a timer's delay before Done closes.
type questionCtx struct {
	context.Context           // the parent
	start           time.Time // when it was made
	deadline        time.Time
	ended           atomic.Bool
	mu              sync.Mutex
	full            context.Context // made by Done, AfterFunc
	cancel          context.CancelFunc
}

// newQuestionCtx returns parent's context ending after timeout too, as
// context.WithTimeout's; its end method is the cancel function.
func newQuestionCtx(parent context.Context, timeout time.Duration) *questionCtx {
	now := time.Now()
	q := &questionCtx{Context: parent, start: now, deadline: now.Add(timeout)}
	if d, ok := parent.Deadline(); ok && d.Before(q.deadline) {
		q.deadline = d
	}
	return q
}

// Deadline returns when the question ends at the latest.
func (q *questionCtx) Deadline() (time.Time, bool) { return q.deadline, true }

// Err returns context.Canceled once ended, the parent's error once it
// has one, and context.DeadlineExceeded from the deadline on.
func (q *questionCtx) Err() error {
	if q.ended.Load() {
		return context.Canceled
	}
	if err := q.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(q.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// Done returns a channel closed when the question ends.
func (q *questionCtx) Done() <-chan struct{} { return q.made().Done() }

// AfterFunc runs f in its own goroutine once the question ends, as
// context.AfterFunc does; context.WithCancel and context.AfterFunc call it
// instead of starting a goroutine to wait on Done.
func (q *questionCtx) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(q.made(), f)
}

// made returns the ordinary context that waits for the question's end,
// making it the first time.
func (q *questionCtx) made() context.Context {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.full == nil {
		q.full, q.cancel = context.WithDeadline(q.Context, q.deadline)
		if q.ended.Load() {
			q.cancel()
		}
	}
	return q.full
}

// end ends the question, and releases the ordinary context if made.
func (q *questionCtx) end() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ended.Store(true)
	if q.cancel != nil {
		q.cancel()
	}
}

// waitOn returns what a wait that sets its own timer watches for ctx: a
// channel closed when ctx ends, or for a question's context its parent's
// (which exists already), and ctx's deadline, if any, which the wait's
// timer is to end at the latest. ctx's own end by its function is not
// watched: a question's context ends when its question returns.
func waitOn(ctx context.Context) (done <-chan struct{}, deadline time.Time, ok bool) {
	if q, isQ := ctx.(*questionCtx); isQ {
		return q.Context.Done(), q.deadline, true
	}
	deadline, ok = ctx.Deadline()
	return ctx.Done(), deadline, ok
}
