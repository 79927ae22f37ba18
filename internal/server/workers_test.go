package server

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Jobs run one after another reuse the worker that finished the last
// one, rather than a goroutine each; stop waits for the job under way.
func TestWorkersReused(t *testing.T) {
	w := newWorkers()
	var started atomic.Int32
	done := make(chan struct{})
	for i := range 100 {
		w.run(func() {
			started.Add(1)
			done <- struct{}{}
		})
		<-done
		// Until a worker is back waiting, a job starts another one: each
		// job waits for every worker to be idle. A worker counts itself
		// idle just before it waits, so a job sent in between can still
		// start a second one, rarely.
		deadline := time.Now().Add(10 * time.Second)
		for int64(w.waiting()) != w.started.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("job %d: %d of %d workers back waiting", i, w.waiting(), w.started.Load())
			}
			runtime.Gosched()
		}
	}
	if n := w.started.Load(); n > 3 {
		t.Errorf("100 jobs in a row took %d workers, want them reused (at most 3)", n)
	}
	release := make(chan struct{})
	var finished atomic.Bool
	w.run(func() { <-release; finished.Store(true) })
	var afterJob bool
	stopped := make(chan struct{})
	go func() { w.stop(); afterJob = finished.Load(); close(stopped) }()
	close(release)
	<-stopped
	if !afterJob {
		t.Error("stop returned before the job under way ended")
	}
	if started.Load() != 100 {
		t.Errorf("%d jobs ran, want 100", started.Load())
	}
}

// Workers left without work for a whole idle period end, and a job after
// that starts one again.
func TestWorkersEndWhenIdle(t *testing.T) {
	w := newWorkersIdle(20 * time.Millisecond)
	defer w.stop()
	release := make(chan struct{})
	for range 4 {
		w.run(func() { <-release })
	}
	if n := w.started.Load(); n != 4 {
		t.Fatalf("%d workers started, want 4 (none was waiting)", n)
	}
	close(release)
	waitUntil(t, func() bool { return w.started.Load() == w.ended.Load() }) // the four workers ended
	done := make(chan struct{})
	w.run(func() { close(done) })
	<-done
	if n := w.started.Load(); n != 5 {
		t.Errorf("%d workers started in all, want 5", n)
	}
}

// The next job goes to the worker that became idle last, not to the one
// that waited longest.
func TestWorkersLastIdleFirst(t *testing.T) {
	w := newWorkers()
	defer w.stop()
	const n = 3
	var release [n]chan struct{}
	var order [n]string // job i's worker
	ids := make(chan struct{}, n)
	for i := range n {
		release[i] = make(chan struct{})
		w.run(func() { order[i] = goroutineID(); ids <- struct{}{}; <-release[i] })
	}
	for range n {
		<-ids
	}
	// Release the workers one at a time, each back waiting before the
	// next: job n-1's worker becomes idle last.
	for i := range n {
		close(release[i])
		waitUntil(t, func() bool { return w.waiting() == i+1 })
	}
	got := make(chan string)
	w.run(func() { got <- goroutineID() })
	if id := <-got; id != order[n-1] {
		t.Errorf("the job ran on goroutine %s; the last idle worker is %s (the first idle: %s)", id, order[n-1], order[0])
	}
	if s := w.started.Load(); s != n {
		t.Errorf("%d workers started, want %d", s, n)
	}
}

// goroutineID returns the number of the goroutine that calls it, from
// its stack's header.
func goroutineID() string {
	var b [64]byte
	f := strings.Fields(string(b[:runtime.Stack(b[:], false)]))
	return f[1]
}
