package server

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// workers runs the resolutions of UDP questions on goroutines kept from one
// question to the next. A resolution's stack grows to tens of kilobytes
// (the iterator, the cache, the exchange), and a goroutine started per
// question grew it again, by copying, on every cache miss: a twentieth of
// the miss path's CPU. A worker keeps its stack; workers left without work
// for a whole workerIdle end (a sweeper ends them). There are never more
// workers than questions resolved at once (the in-flight slots).
//
// The next job goes to the worker that became idle last. The garbage
// collector halves the stack of every goroutine that waits with most of
// it unused, and the worker's next job grows it again, by copying, frame
// by frame. Handed out in turn (the order of a channel's waiters), the
// jobs of a stream of misses reached every worker a burst had started
// (hundreds) between two collections, so each collection was followed by
// hundreds of such regrowths, milliseconds of CPU in all that answers
// waited behind on one CPU. Handed to the last idle, the jobs of a steady
// stream keep to as few workers as it has questions under way, and the
// rest wait untouched until the sweeper ends them.
//
// A worker waits for its next job on a channel of its own alone: a timer
// of its own, reset after every job, and a select over it, the jobs and
// the end, cost a cache miss about 2 % of its CPU.
type workers struct {
	mu      sync.Mutex
	idle    []*worker // the workers waiting for a job, the last idle last
	stopped bool      // stop was called: a worker done with its job ends
	// round counts the sweeper's rounds: a worker notes it when it
	// becomes idle.
	round atomic.Int64
	wg    sync.WaitGroup
	// started and ended count the workers started and ended.
	started, ended atomic.Int64

	quit  chan struct{} // closed by stop: the sweeper ends
	swept chan struct{} // closed when the sweeper has ended
}

// worker is one worker's mailbox.
type worker struct {
	job   chan func() // buffered (one): its next job; nil ends it
	round int64       // the sweeper's round when it became idle
}

// workerIdle is how long a worker waits for a job before it ends, at
// least (at most twice it): long enough for the gaps of a steady stream of
// misses, short enough that the stacks a burst grew (some 8 MiB after a
// flood of 500 misses at once) go back within seconds of its end.
const workerIdle = 5 * time.Second

func newWorkers() *workers {
	return newWorkersIdle(workerIdle)
}

// newWorkersIdle is newWorkers with idle for workerIdle (tests).
func newWorkersIdle(idle time.Duration) *workers {
	w := &workers{quit: make(chan struct{}), swept: make(chan struct{})}
	go w.sweep(idle)
	return w
}

// run runs f on the worker that became idle last, or on a new one when
// none waits.
func (w *workers) run(f func()) {
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		wk := w.idle[n-1]
		w.idle[n-1] = nil
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		wk.job <- f
		return
	}
	w.mu.Unlock()
	w.wg.Add(1)
	w.started.Add(1)
	go w.loop(&worker{job: make(chan func(), 1)}, f)
}

func (w *workers) loop(wk *worker, f func()) {
	defer w.wg.Done()
	defer w.ended.Add(1)
	for f != nil {
		f()
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return
		}
		wk.round = w.round.Load()
		w.idle = append(w.idle, wk)
		w.mu.Unlock()
		f = <-wk.job
	}
}

// waiting returns how many workers wait for a job.
func (w *workers) waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.idle)
}

// sweep ends, every idle, the workers that waited all through the last
// one. It returns once stop is called.
func (w *workers) sweep(idle time.Duration) {
	defer close(w.swept)
	t := time.NewTicker(idle)
	defer t.Stop()
	for {
		select {
		case <-w.quit:
			return
		case <-t.C:
		}
		r := w.round.Add(1)
		w.mu.Lock()
		// The longest idle come first; a worker idle since before the
		// round that just ended has waited at least idle.
		n := 0
		for n < len(w.idle) && w.idle[n].round < r-1 {
			n++
		}
		ending := slices.Clone(w.idle[:n])
		w.idle = slices.Delete(w.idle, 0, n) // zeroes the tail it leaves
		w.mu.Unlock()
		for _, wk := range ending {
			wk.job <- nil
		}
	}
}

// stop ends the workers once their jobs are done; run must not be called
// after it, nor stop again.
func (w *workers) stop() {
	close(w.quit)
	<-w.swept
	w.mu.Lock()
	w.stopped = true
	ending := w.idle
	w.idle = nil
	w.mu.Unlock()
	for _, wk := range ending {
		wk.job <- nil
	}
	w.wg.Wait()
}
