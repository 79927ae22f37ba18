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
// the miss path's CPU. A worker keeps its stack; one left without work for
// workerIdle ends. There are never more workers than questions resolved at
// once (the in-flight slots).
type workers struct {
	jobs chan func() // unbuffered: a job goes to a worker that waits
	quit chan struct{}
	wg   sync.WaitGroup
	// started counts the workers started, idle those waiting for a job.
	started atomic.Int64
	idle    atomic.Int32
}

// workerIdle is how long a worker waits for a job before it ends: long
// enough for the gaps of a steady stream of misses, short enough that the
// stacks a burst grew (some 8 MiB after a flood of 500 misses at once) go
// back within seconds of its end.
const workerIdle = 5 * time.Second

func newWorkers() *workers {
	return &workers{jobs: make(chan func()), quit: make(chan struct{})}
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
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(workerIdle)
		w.idle.Add(1)
		select {
		case f = <-w.jobs:
			w.idle.Add(-1)
		case <-idle.C:
			w.idle.Add(-1)
			return
		case <-w.quit:
			w.idle.Add(-1)
			return
		}
	}
}

// stop ends the workers once their jobs are done; run must not be called
// after it.
func (w *workers) stop() {
	close(w.quit)
	w.wg.Wait()
}
