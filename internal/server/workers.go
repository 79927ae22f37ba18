package server

import (
	"sync"
	"sync/atomic"
	"time"
)

// workers runs the resolutions of UDP questions on goroutines kept from one
// question to the next. A resolution's stack grows to tens of kilobytes
// (the iterator, the cache, the exchange), and a goroutine started per
// question grew it again, by copying, on every cache miss: a twentieth of
// the miss path's CPU. A worker keeps its stack; workers left without work
// for a whole workerIdle end (a sweeper counts them). There are never more
// workers than questions resolved at once (the in-flight slots).
//
// A worker waits for its next job on the jobs channel alone: a timer of
// its own, reset after every job, and a select over it, the jobs and the
// end, cost a cache miss about 2 % of its CPU.
type workers struct {
	jobs chan func() // unbuffered: a job goes to a worker that waits; nil ends the worker that takes it
	wg   sync.WaitGroup
	// started and ended count the workers started and ended, idle those
	// waiting for a job, fewest the fewest that waited at once since the
	// sweeper last looked.
	started, ended atomic.Int64
	idle, fewest   atomic.Int32

	quit  chan struct{} // closed by stop: the sweeper ends
	swept chan struct{} // closed when the sweeper has ended
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
	w := &workers{jobs: make(chan func()), quit: make(chan struct{}), swept: make(chan struct{})}
	go w.sweep(idle)
	return w
}

// run runs f on a waiting worker, or on a new one when none waits.
func (w *workers) run(f func()) {
	select {
	case w.jobs <- f:
	default:
		w.wg.Add(1)
		w.started.Add(1)
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	defer w.wg.Done()
	defer w.ended.Add(1)
	for f != nil {
		f()
		w.idle.Add(1)
		f = <-w.jobs
		// Racy with another worker's: a lower count lost makes the
		// sweeper end one worker too many, which the next job starts
		// again.
		if n := w.idle.Add(-1); n < w.fewest.Load() {
			w.fewest.Store(n)
		}
	}
}

// sweep ends, every idle, as many workers as waited all through it: the
// fewest that waited at once. It returns once stop is called.
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
	end:
		for n := w.fewest.Swap(w.idle.Load()); n > 0; n-- {
			select {
			case w.jobs <- nil:
			default: // none waits now
				break end
			}
		}
	}
}

// stop ends the workers once their jobs are done; run must not be called
// after it, nor stop again.
func (w *workers) stop() {
	close(w.quit)
	<-w.swept
	close(w.jobs)
	w.wg.Wait()
}
