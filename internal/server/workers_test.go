package server

import (
	"runtime"
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
		// Until the worker is back waiting, a job would start another
		// one: each job waits for it.
		deadline := time.Now().Add(10 * time.Second)
		for w.idle.Load() != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("job %d: the worker is not back waiting", i)
			}
			runtime.Gosched()
		}
	}
	if n := w.started.Load(); n != 1 {
		t.Errorf("100 jobs in a row took %d workers, want 1", n)
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
