package resolver

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// errClosed is background work not started because the resolver was
// closed.
var errClosed = errors.New("resolver closed")

// backgroundWork tracks the work a resolver does after the question that
// started it was answered: stale refreshes, prefetches and island-mode
// trials. It runs under ctx, which Close cancels; Close then waits for it.
type backgroundWork struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	running atomic.Int64
}

func newBackgroundWork() *backgroundWork {
	ctx, cancel := context.WithCancel(context.Background())
	return &backgroundWork{ctx: ctx, cancel: cancel}
}

// background runs fn on a goroutine of its own, under the resolver's
// background context, unless the resolver is closed; it reports whether
// fn was started.
func (r *Resolver) background(fn func(ctx context.Context)) bool {
	w := r.bg
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.wg.Add(1)
	w.running.Add(1)
	w.mu.Unlock()
	go func() {
		defer w.wg.Done()
		defer w.running.Add(-1)
		fn(w.ctx)
	}()
	return true
}

// Close cancels the background work under way (stale refreshes,
// prefetches, island-mode trials), waits for it to end, and starts no
// more; questions are still resolved. Run calls it as it returns. It may
// be called more than once.
func (r *Resolver) Close() {
	w := r.bg
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
}
