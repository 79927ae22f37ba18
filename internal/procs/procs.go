// Package procs owns the number of scheduler processors (GOMAXPROCS) a
// server runs with: a floor raised once, when the node starts to hold
// zones, and a processor lent for the length of a wait on the disk when
// the node runs with a single one.
//
// With one processor, a goroutine in a long system call (an fsync of the
// resolver's cache file: 0.5 to 4 ms) keeps it until the runtime's
// monitor takes it back, which in a quiet spell it looks for only every
// few milliseconds; every query waits meanwhile. A second processor for
// the length of the call lets the listeners run beside it. A permanent
// second processor on one CPU costs every query more (threads woken that
// find no work), so it is lent, not kept.
package procs

import (
	"runtime"
	"sync"
)

// Runtime reads and sets the processor count: the Go runtime's (Go), or
// a test's.
type Runtime interface {
	// Get returns the current count.
	Get() int
	// Set sets it (and ends the runtime's own updates of it).
	Set(n int)
	// Default gives it back to the runtime: its default, kept up to
	// date with the CPUs and the cgroup's quota.
	Default()
}

// Go is the Go runtime's count.
type Go struct{}

func (Go) Get() int  { return runtime.GOMAXPROCS(0) }
func (Go) Set(n int) { runtime.GOMAXPROCS(n) }
func (Go) Default()  { runtime.SetDefaultGOMAXPROCS() }

// Owner is the one place that changes the count. Its methods may be
// called from any goroutine.
type Owner struct {
	rt    Runtime
	fixed bool // the operator set the count: never changed

	mu    sync.Mutex
	floor int  // the fewest processors (Raise); 0: the runtime's default
	lends int  // lends not given back
	added bool // a processor was added for the lends not given back
}

// New returns the owner of rt's count. env is the GOMAXPROCS environment
// variable: when set, the operator chose the count, and the owner keeps
// it as it is.
func New(rt Runtime, env string) *Owner {
	return &Owner{rt: rt, fixed: env != ""}
}

// Raise makes n the fewest processors the node runs with, from now on,
// and reports whether that raised the count. A count already at n or
// above is left as it is (and so are the runtime's updates of it).
func (o *Owner) Raise(n int) bool {
	if o == nil || o.fixed {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if n <= o.floor {
		return false
	}
	o.floor = n
	// A processor lent is within the floor from now on: a lend given
	// back leaves the count alone.
	o.added = false
	if o.rt.Get() >= n {
		return false
	}
	o.rt.Set(n)
	return true
}

// Lend is called before a wait on the disk, and the function it returns
// after it. While the node runs with one processor, lends add a second
// one until the last of them is given back; otherwise they change
// nothing. Giving back twice is giving back once.
func (o *Owner) Lend() (giveBack func()) {
	if o == nil || o.fixed {
		return func() {}
	}
	o.mu.Lock()
	o.lends++
	if o.lends == 1 && o.rt.Get() == 1 {
		o.rt.Set(2)
		o.added = true
	}
	o.mu.Unlock()
	var once sync.Once
	return func() { once.Do(o.giveBack) }
}

func (o *Owner) giveBack() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lends--
	if o.lends > 0 || !o.added {
		return
	}
	o.added = false
	if o.floor > 0 {
		o.rt.Set(o.floor)
		return
	}
	o.rt.Default()
}
