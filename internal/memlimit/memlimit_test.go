package memlimit

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name                 string
		budget, cached, live int64
		share                float64
		want                 int64
	}{
		{"empty caches, no room", 128 * mib, 0, 40 * mib, 0, 50*mib + Floor},
		{"empty caches, all the room", 128 * mib, 0, 40 * mib, 1, 128*mib + 50*mib + Floor},
		{"caches filling, half the room", 128 * mib, 48 * mib, 88 * mib, 0.5, 64*mib + 50*mib + Floor + 32*mib},
		{"full caches", 128 * mib, 96 * mib, 136 * mib, 0, 128*mib + 50*mib + Floor},
		{"full caches, all the room", 128 * mib, 96 * mib, 136 * mib, 1, 128*mib + 50*mib + Floor},
		{"zones loaded, caches half full", 128 * mib, 48 * mib, 548 * mib, 0, 64*mib + 500*mib + MaxRoom + Floor},
		{"zones loaded, a costly collector", 128 * mib, 48 * mib, 548 * mib, 1, 128*mib + 625*mib + Floor},
		{"zones loaded, half the room", 128 * mib, 48 * mib, 548 * mib, 0.5, 96*mib + 500*mib + MaxRoom + (125*mib-MaxRoom)/2 + Floor},
		{"room just under MaxRoom", 0, 0, 4 * MaxRoom, 0, 5*MaxRoom + Floor},
		{"estimate above live", 128 * mib, 200 * mib, 100 * mib, 1, 128*mib + Floor},
		{"no caches", 0, 0, 40 * mib, 1, 50*mib + Floor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Limit(tt.budget, tt.cached, tt.live, tt.share); got != tt.want {
				t.Errorf("Limit(%d, %d, %d, %g) = %d MiB, want %d MiB", tt.budget>>20, tt.cached>>20, tt.live>>20, tt.share, got>>20, tt.want>>20)
			}
		})
	}
}

// TestFollow: the collector's room grows fast while collecting is costly
// and shrinks slowly while it is cheap, within 0 and 1.
func TestFollow(t *testing.T) {
	tests := []struct {
		name                 string
		share, gc, cpu, wall float64
		want                 float64
	}{
		{"no collection, nothing done", 0.5, 0, 0, 1, 0.5 - ShareDecay},
		{"cheap", 0.5, 0.01, 1, 1, 0.5 - ShareDecay},
		{"cheap at zero", 0, 0.001, 1, 1, 0},
		{"between", 0.5, 0.06, 1.94, 1, 0.5},
		// A large share of a small program's CPU, little of one CPU.
		{"costly share, cheap in all", 0.5, 0.4, 3, 20, 0.5 - ShareDecay},
		{"costly share, GCRate in all", 0, 1, 3, 20, 1},
		{"costly", 0, 0.2, 0.8, 1, 1},
		{"costly at one", 1, 0.2, 0.8, 1, 1},
		{"costly, over a longer interval", 0, 0.2, 0.8, 4, 1},
		// A node at rest that the runtime collects: nearly all of its CPU
		// is the collector's, but it is not busy.
		{"collected at rest", 0.5, 0.3, 0.01, 1, 0.5 - ShareDecay},
		{"just below busy", 0, 0.3, Busy*2 - 0.001, 2, 0},
		{"just busy", 0, 0.3, Busy * 2, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Follow(tt.share, tt.gc, tt.cpu, tt.wall); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Follow(%g, %g, %g, %g) = %g, want %g", tt.share, tt.gc, tt.cpu, tt.wall, got, tt.want)
			}
		})
	}
}

// TestShareFollowsTheCollector: a program that collects for most of its
// CPU gets all the room after one Interval; one at rest gives it back.
func TestShareFollowsTheCollector(t *testing.T) {
	share := Follow(0, 0.3, 0.7, 1)
	if share != 1 {
		t.Fatalf("share %g after a costly interval, want 1", share)
	}
	for range int(1/ShareDecay) + 1 {
		share = Follow(share, 0, 0, 1)
	}
	if share != 0 {
		t.Fatalf("share %g after %d intervals at rest, want 0", share, int(1/ShareDecay)+1)
	}
}

// TestWeighSpansCollections: a collection is weighed against the time
// since the one before. A node that collects 0.4 s of CPU every 20 s
// while its code uses 15 % of a CPU gets no room (the collector costs 2 %
// of one CPU); every 2 s it gets all of it (20 %).
func TestWeighSpansCollections(t *testing.T) {
	run := func(every int) float64 {
		k := &Keeper{Share: 0.5}
		at := time.Unix(0, 0)
		var gc, user float64
		var auto uint64
		k.weigh(gc, user, auto, at)
		for i := 1; i <= 60; i++ {
			at = at.Add(time.Second)
			user += 0.15
			if i%every == 0 {
				gc += 0.4
				auto++
			}
			k.weigh(gc, user, auto, at)
		}
		return k.Share
	}
	if got := run(20); got != 0 {
		t.Errorf("share %g with a collection every 20 s, want 0", got)
	}
	if got := run(2); got != 1 {
		t.Errorf("share %g with a collection every 2 s, want 1", got)
	}
}

func TestEntries(t *testing.T) {
	if got, want := Entries(64<<20), int64(48<<20); got != want {
		t.Errorf("Entries(64 MiB) = %d, want %d", got, want)
	}
	if Entries(0) != 0 {
		t.Errorf("Entries(0) = %d", Entries(0))
	}
}

// Update sets the runtime's limit to what Limit gives for the live heap.
func TestUpdateSetsTheLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	k := &Keeper{Budget: 128 << 20, Cached: func() int64 { return 96 << 20 }} // full
	got := k.Update()
	if got < 128<<20+Floor {
		t.Fatalf("limit %d below the full caches' sizes", got)
	}
	if now := debug.SetMemoryLimit(-1); now != got {
		t.Fatalf("runtime limit %d, Update returned %d", now, got)
	}
}

// Update adds to Limit what the runtime holds besides its heap: here, among
// others, the stacks of a few hundred goroutines.
func TestUpdateCountsTheRuntime(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	stop := make(chan struct{})
	for range 200 {
		go func() {
			var grow func(n int) int
			grow = func(n int) int { // a stack of a few KiB
				var pad [512]byte
				if n == 0 {
					<-stop
					return int(pad[0])
				}
				return grow(n-1) + int(pad[n%512])
			}
			grow(16)
		}()
	}
	defer close(stop)
	runtime.GC()
	k := &Keeper{Budget: 64 << 20, Cached: func() int64 { return 0 }}
	got := k.Update()
	over := overhead(k.sample[4:])
	live := int64(k.sample[0].Value.Uint64())
	if over < 1<<20 {
		t.Fatalf("overhead %d bytes, want the stacks of 200 goroutines and more", over)
	}
	unused := int64(k.sample[6].Value.Uint64())
	if want := Floored(Limit(k.Budget, 0, live, k.Share)+over, live, unused, over); got != want {
		t.Fatalf("limit %d, want Limit %d + overhead %d, at least live %d + unused %d + overhead + Floor", got, want-over, over, live, unused)
	}
}

// TestFloored: the limit leaves the collector Floor above what the heap
// holds, holes in its spans included, whatever Limit gives.
func TestFloored(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name                      string
		limit, live, unused, over int64
		want                      int64
	}{
		{"Limit has room", 200 * mib, 100 * mib, 10 * mib, 5 * mib, 200 * mib},
		{"just enough", 131 * mib, 100 * mib, 10 * mib, 5 * mib, 131 * mib},
		{"holes of a churned cache", 90 * mib, 56 * mib, 20 * mib, 6 * mib, 98 * mib},
		{"nothing held", 0, 0, 0, 0, Floor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Floored(tt.limit, tt.live, tt.unused, tt.over); got != tt.want {
				t.Errorf("Floored(%d, %d, %d, %d MiB) = %d MiB, want %d MiB", tt.limit>>20, tt.live>>20, tt.unused>>20, tt.over>>20, got>>20, tt.want>>20)
			}
		})
	}
}

// TestEased: a limit that comes down stops Floor above what the heap
// holds now, when it was there or above; one that goes up, or the first,
// is as given.
func TestEased(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name              string
		limit, prev, held int64
		want              int64
	}{
		{"first", 60 * mib, 0, 74 * mib, 60 * mib},
		{"going up", 120 * mib, 100 * mib, 74 * mib, 120 * mib},
		{"down below the heap", 46 * mib, 116 * mib, 74 * mib, 74*mib + Floor},
		{"down, the heap well below", 60 * mib, 116 * mib, 30 * mib, 60 * mib},
		{"down, prev under the heap's room", 46 * mib, 80 * mib, 74 * mib, 80 * mib},
		{"unchanged", 80 * mib, 80 * mib, 90 * mib, 80 * mib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Eased(tt.limit, tt.prev, tt.held); got != tt.want {
				t.Errorf("Eased(%d, %d, %d MiB) = %d MiB, want %d MiB", tt.limit>>20, tt.prev>>20, tt.held>>20, got>>20, tt.want>>20)
			}
		})
	}
}

// TestLowerReturnsInSteps: with the heap's freed pages far above the
// limit Update computes, the limit is never set more than ReleaseStep
// below what the runtime holds (so no allocation elsewhere has more than
// that to return at once), the pages are returned by Update itself, in
// steps with pauses between them, and the limit ends where Update says
// (after a few Updates at most).
func TestLowerReturnsInSteps(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no collection but ours
	freeGarbage()
	before, releasedBefore := mapped()
	var sets []int64
	pauses := 0
	k := &Keeper{Budget: 16 << 20, Cached: func() int64 { return 0 },
		quiet: true, cpuNow: idleCPU, // returns wait for a quiet Interval: TestLowerWaitsWhileBusy
		pause: func(time.Duration) { pauses++ },
		setLimit: func(l int64) {
			if now, _ := mapped(); l < now-ReleaseStep-64<<10 {
				t.Errorf("limit set to %d MiB with %d MiB held: more than a step below", l>>20, now>>20)
			}
			sets = append(sets, l)
			debug.SetMemoryLimit(l)
		}}
	got := k.Update()
	if got > before-8*ReleaseStep {
		t.Fatalf("limit %d MiB with %d MiB held: not far enough below for steps, the test shows nothing", got>>20, before>>20)
	}
	// The runtime may return nothing for a few steps (lower then leaves
	// the rest to the next Update): a few more Updates finish the return.
	updates := 1
	for range 10 {
		if sets[len(sets)-1] == got {
			break
		}
		got = k.Update()
		updates++
	}
	after, releasedAfter := mapped()
	if returned := releasedAfter - releasedBefore; returned < (before-got)/2 {
		t.Errorf("%d MiB returned to the system by Update, want most of the %d MiB above the limit", returned>>20, (before-got)>>20)
	}
	// Each Update pauses after each of its steps but one whose return
	// stalled, then sets its limit once more: at most two limits set an
	// Update without a pause after them.
	if len(sets) < 8 || pauses < len(sets)-2*updates {
		t.Errorf("%d limits set and %d pauses in %d Updates, want the return made in steps with pauses", len(sets), pauses, updates)
	}
	if last := sets[len(sets)-1]; last != got {
		t.Errorf("last limit set %d MiB, Update returned %d MiB, %d MiB held after", last>>20, got>>20, after>>20)
	}
	t.Logf("%d MiB held, limit %d MiB: %d steps in %d Updates, %d MiB held after", before>>20, got>>20, len(sets), updates, after>>20)
}

// freeGarbage allocates 128 MiB and frees it: the heap's pages stay
// mapped until returned.
func freeGarbage() {
	garbage := make([][]byte, 0, 128)
	for range 128 {
		garbage = append(garbage, make([]byte, 1<<20))
	}
	runtime.KeepAlive(garbage)
	garbage = nil
	runtime.GC()
}

// mapped returns what the runtime holds from the system, and what of its
// heap it has returned.
func mapped() (held, released int64) {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return sampleInt(s[0]) - sampleInt(s[1]), sampleInt(s[1])
}

// idleCPU is a process that uses no CPU: every Interval is quiet.
func idleCPU() (float64, bool) { return 0, true }

// busyCPU returns a process that uses a whole CPU: no Interval is quiet.
func busyCPU() func() (float64, bool) {
	start := time.Now()
	return func() (float64, bool) { return 2 * time.Since(start).Seconds(), true }
}

// TestLowerWaitsWhileBusy: while the program is busy, memory the heap
// freed goes back to the system only past BusyHold times the caches'
// sizes, without steps within it; once it is quiet, all of it goes back,
// in steps.
func TestLowerWaitsWhileBusy(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no collection but ours
	for _, tc := range []struct {
		name   string
		budget int64
	}{
		{"within BusyHold", 512 << 20},
		{"past BusyHold", 48 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64) // the last case's limit would return the garbage at once
			freeGarbage()
			before, releasedBefore := mapped()
			var sets []int64
			pauses := 0
			k := &Keeper{Budget: tc.budget, Cached: func() int64 { return 0 }, cpuNow: busyCPU(),
				pause: func(time.Duration) { pauses++ },
				setLimit: func(l int64) {
					sets = append(sets, l)
					debug.SetMemoryLimit(l)
				}}
			hold := int64(BusyHold * float64(tc.budget))
			var got int64
			for range 3 { // busy throughout: quiet starts false, and each reading after the first keeps it so
				got = k.Update()
			}
			if k.quiet {
				t.Fatal("a busy program seen quiet: the test shows nothing")
			}
			if got > before-8*ReleaseStep {
				t.Fatalf("limit %d MiB with %d MiB held: not far enough below to return, the test shows nothing", got>>20, before>>20)
			}
			busyHeld, _ := mapped()
			switch last := sets[len(sets)-1]; {
			case hold >= before:
				if pauses != 0 || last < before-ReleaseStep {
					t.Errorf("busy within BusyHold: %d steps, last limit %d MiB with %d MiB held; want no step, the limit at what is held", pauses, last>>20, before>>20)
				}
			default:
				// The runtime may return a little more than a step asks.
				if pauses == 0 || busyHeld > hold+2*ReleaseStep || busyHeld < got+(hold-got)/2 || last < busyHeld-ReleaseStep {
					t.Errorf("busy past BusyHold: %d steps, %d MiB held, last limit %d MiB; want steps down to about %d MiB, not to the limit (%d MiB)", pauses, busyHeld>>20, last>>20, hold>>20, got>>20)
				}
			}
			// Quiet: the rest goes back, in steps.
			k.cpuNow = idleCPU
			pauses = 0
			for range 12 {
				if got = k.Update(); sets[len(sets)-1] == got && k.quiet {
					break
				}
			}
			after, releasedAfter := mapped()
			if pauses == 0 || releasedAfter-releasedBefore < (before-got)/2 {
				t.Errorf("quiet: %d steps, %d MiB returned of the %d MiB above the limit", pauses, (releasedAfter-releasedBefore)>>20, (before-got)>>20)
			}
			t.Logf("%d MiB held, limit %d MiB; busy: %d MiB held; quiet: %d MiB held", before>>20, got>>20, busyHeld>>20, after>>20)
		})
	}
}

// TestUpdateEasesTheLimitDown: with the share of room taken away while the
// heap holds garbage, the next limit stays Floor above what the heap holds
// instead of dropping under it.
func TestUpdateEasesTheLimitDown(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no collection meanwhile
	runtime.GC()
	k := &Keeper{Budget: 512 << 20, Cached: func() int64 { return 0 }, Share: 1}
	high := k.Update()
	garbage := make([][]byte, 0, 64)
	for range 64 {
		garbage = append(garbage, make([]byte, 1<<20))
	}
	k.Share = 0
	got := k.Update()
	held := sampleInt(k.sample[5]) + sampleInt(k.sample[6]) + overhead(k.sample[4:9])
	if got >= high || got < held+Floor {
		t.Errorf("limit %d MiB after %d MiB; the process holds %d MiB: want it lowered, Floor above that", got>>20, high>>20, held>>20)
	}
	live := sampleInt(k.sample[0])
	if bare := Floored(Limit(k.Budget, 0, live, 0)+overhead(k.sample[4:9]), live, sampleInt(k.sample[6]), overhead(k.sample[4:9])); bare >= held+Floor {
		t.Errorf("Limit alone gives %d MiB, not below what is held (%d MiB): the test shows nothing", bare>>20, held>>20)
	}
	runtime.KeepAlive(garbage)
}

func TestOverhead(t *testing.T) {
	tests := []struct {
		name                                   string
		total, objects, unused, free, released uint64
		want                                   int64
	}{
		{"stacks and metadata", 100, 50, 10, 10, 20, 10},
		{"all held by the heap", 100, 50, 10, 20, 20, 0},
		{"read apart, above the total", 100, 60, 10, 20, 20, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Overhead(tt.total, tt.objects, tt.unused, tt.free, tt.released); got != tt.want {
				t.Errorf("Overhead = %d, want %d", got, tt.want)
			}
		})
	}
	if got := overhead(make([]metrics.Sample, 5)); got != 0 {
		t.Errorf("overhead of unread samples = %d, want 0", got)
	}
}

// Run collects before it sets the first limit (the live heap known before
// may be stale), sets one, collects again once the start has settled, and
// lifts the limit when its context ends.
func TestRunCollectsFirst(t *testing.T) {
	if Operator() {
		t.Skip("GOMEMLIMIT is set")
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	before := gcPercent()
	var limitAtCollect atomic.Int64
	logged := make(logSignal, 1) // Run logs the first limit once it is set
	// The settling collection waits for a quiet Interval: the test's
	// process is, within a few.
	k := &Keeper{Budget: 128 << 20, Log: slog.New(slog.NewTextHandler(logged, nil)), tick: 20 * time.Millisecond, settle: 50 * time.Millisecond}
	collected := make(chan struct{}, 2)
	k.collect = func() {
		limitAtCollect.CompareAndSwap(0, debug.SetMemoryLimit(-1))
		runtime.GC()
		collected <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	go func() { k.Run(ctx); close(ended) }()
	select {
	case <-logged:
	case <-time.After(10 * time.Second):
		t.Fatal("no limit set within 10 s")
	}
	if got := debug.SetMemoryLimit(-1); got == math.MaxInt64 {
		t.Fatal("no limit after the first one was logged")
	}
	if got := limitAtCollect.Load(); got != math.MaxInt64 {
		t.Fatalf("limit %d set before the collection", got)
	}
	if got := gcPercent(); got != GCPercent && os.Getenv("GOGC") == "" {
		t.Errorf("GOGC %d while Run runs, want %d", got, GCPercent)
	}
	for i := range 2 {
		select {
		case <-collected:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d collections within 10 s, want 2 (at start and once settled)", i)
		}
	}
	cancel()
	<-ended
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("limit %d after Run ended, want none (%d)", got, int64(math.MaxInt64))
	}
	if got := gcPercent(); got != before {
		t.Errorf("GOGC %d after Run ended, want %d as before", got, before)
	}
}

// gcPercent returns the runtime's GOGC.
func gcPercent() int {
	v := debug.SetGCPercent(100)
	debug.SetGCPercent(v)
	return v
}

// TestRunKeepsOperatorGOGC: a GOGC set in the environment is the
// operator's: Run leaves it.
func TestRunKeepsOperatorGOGC(t *testing.T) {
	if Operator() {
		t.Skip("GOMEMLIMIT is set")
	}
	t.Setenv("GOGC", "150")
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	logged := make(logSignal, 1)
	k := &Keeper{Budget: 64 << 20, Log: slog.New(slog.NewTextHandler(logged, nil)), tick: time.Hour, settle: time.Hour, collect: func() {}}
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	go func() { k.Run(ctx); close(ended) }()
	select {
	case <-logged: // the limit is set: Run is past its start
	case <-time.After(10 * time.Second):
		t.Fatal("no limit set within 10 s")
	}
	if got := gcPercent(); got != 150 {
		t.Errorf("GOGC %d while Run runs, want the operator's 150", got)
	}
	cancel()
	<-ended
}

// TestSettleWaitsForQuiet: the collection made once the start has
// settled comes at the first Interval the program is quiet, once; never
// while it is busy.
func TestSettleWaitsForQuiet(t *testing.T) {
	steps := []struct {
		due, quiet bool
		collect    bool
	}{
		{due: false, quiet: true, collect: false}, // Settle has not passed
		{due: true, quiet: false, collect: false}, // busy: it waits
		{due: true, quiet: false, collect: false},
		{due: true, quiet: true, collect: true}, // the first quiet Interval
		{due: false, quiet: true, collect: false},
	}
	k := &Keeper{Budget: 64 << 20}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	for i, st := range steps {
		if st.due {
			k.settleDue = true
		}
		k.quiet = st.quiet
		collected := false
		k.settleOnce(func() { collected = true })
		if collected != st.collect {
			t.Errorf("step %d (due %v, quiet %v): collected %v, want %v", i, st.due, st.quiet, collected, st.collect)
		}
		if st.collect && k.settleDue {
			t.Errorf("step %d: still due after the collection", i)
		}
	}
}

// logSignal is a log writer that signals each line written.
type logSignal chan struct{}

func (l logSignal) Write(p []byte) (int, error) {
	select {
	case l <- struct{}{}:
	default:
	}
	return len(p), nil
}

// Collections the program forces (a release after a load, after
// transfers) give the collector no room, however much of a busy interval
// they take: more room would not have spared one of them.
func TestUpdateIgnoresForcedCollections(t *testing.T) {
	if Operator() {
		t.Skip("GOMEMLIMIT is set")
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no automatic collection
	// A heap of many small objects, which each collection marks.
	type cell struct{ next *cell }
	var live *cell
	for range 1 << 20 {
		live = &cell{live}
	}
	auto := []metrics.Sample{{Name: "/gc/cycles/automatic:gc-cycles"}}
	metrics.Read(auto)
	k := &Keeper{Share: 0.5}
	k.Update()
	// A busy interval that is mostly forced collections.
	for range 5 {
		runtime.GC()
		for spin := time.Now(); time.Since(spin) < time.Millisecond; {
		}
	}
	k.Update()
	runtime.KeepAlive(live)
	before := auto[0].Value.Uint64()
	metrics.Read(auto)
	if auto[0].Value.Uint64() != before {
		t.Skip("an automatic collection ran meanwhile")
	}
	if k.gc == 0 || k.user == 0 {
		t.Fatal("no CPU read")
	}
	if want := 0.5 - ShareDecay; math.Abs(k.Share-want) > 1e-9 {
		t.Fatalf("share %g after forced collections, want %g", k.Share, want)
	}
}

// TestReleaseOnceAtRest: the heap's free memory is returned once the
// share of room has come back to none, at the first quiet Interval after
// that (not while the program is busy: the release holds a processor),
// once; a share given again before then cancels it.
func TestReleaseOnceAtRest(t *testing.T) {
	const (
		quiet = Quiet / 2 // the program's CPU in an Interval, in seconds
		busy  = 0.25
	)
	// Each Interval ends a collection the heap's growth started, which
	// cost gc.
	type step struct {
		user, gc float64 // CPU seconds in the Interval
		share    float64 // after it
		releases int     // in all, after it
	}
	decay := func(from float64, user float64, releases int) []step {
		var out []step
		for s := from - ShareDecay; s > 1e-9; s -= ShareDecay {
			out = append(out, step{user: user, share: s, releases: releases})
		}
		return out
	}
	var steps []step
	steps = append(steps, decay(3*ShareDecay, quiet, 0)...) // given back, not all
	steps = append(steps,
		step{user: busy, share: 0},               // none left, but busy: not now
		step{user: busy, share: 0},               // still busy
		step{user: quiet, share: 0, releases: 1}, // quiet: now
		step{user: quiet, share: 0, releases: 1}, // once
		step{user: busy, gc: 0.1, share: 1, releases: 1},
	)
	steps = append(steps, decay(1, busy, 1)...)
	steps = append(steps,
		step{user: busy, share: 0, releases: 1},
		step{user: busy, gc: 0.1, share: 1, releases: 1}, // the room is in use again: cancelled
	)
	steps = append(steps, decay(1, quiet, 1)...)
	steps = append(steps, step{user: quiet, share: 0, releases: 2})

	releases := 0
	k := &Keeper{Share: 3 * ShareDecay, release: func() { releases++ }}
	at := time.Unix(0, 0)
	var gc, user float64
	var auto uint64
	k.weigh(gc, user, auto, at) // the first reading: nothing to weigh yet
	k.noteCPU(user, at)
	for i, st := range steps {
		at = at.Add(time.Second)
		gc, user, auto = gc+st.gc, user+st.user, auto+1
		before := k.Share
		k.weigh(gc, user, auto, at)
		k.noteCPU(gc+user, at)
		k.released(before)
		if math.Abs(k.Share-st.share) > 1e-9 || releases != st.releases {
			t.Fatalf("step %d: share %g and %d releases, want %g and %d", i, k.Share, releases, st.share, st.releases)
		}
	}
}

// TestUpdateSeesBusy: Update reads the process's CPU from the kernel (the
// runtime's counts move only when a collection ends, which spinning does
// not start): after the process spun for 50 ms of CPU, it is not quiet.
// That a process using little CPU is quiet is TestReleaseOnceAtRest's.
func TestUpdateSeesBusy(t *testing.T) {
	if Operator() {
		t.Skip("GOMEMLIMIT is set")
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	k := &Keeper{}
	k.Update()
	before := k.cpu
	for x := 0; ; x++ {
		runtime.KeepAlive(x) // spin
		if x%100000 != 0 {
			continue
		}
		if cpu, ok := processCPU(); !ok {
			t.Fatal("the process's CPU cannot be read")
		} else if cpu-before >= 0.05 {
			break
		}
	}
	k.Update()
	if k.cpu-before < 0.05 {
		t.Fatalf("Update read %.3f s of CPU since the last, want the 0.05 s spun at least", k.cpu-before)
	}
	if k.quiet {
		t.Fatal("quiet after spinning")
	}
}

// fakePager records a Keeper's requests for huge pages in events; each
// Collapse makes gathered more bytes resident (rss) and returns them.
type fakePager struct {
	events   *[]string
	rss      *int64
	gathered int64
}

func (p fakePager) Advise(on bool) error {
	*p.events = append(*p.events, fmt.Sprintf("huge %v", on))
	return nil
}

func (p fakePager) Forget() { *p.events = append(*p.events, "forget") }

func (p fakePager) Collapse() (int64, error) {
	*p.events = append(*p.events, "collapse")
	*p.rss += p.gathered
	return p.gathered, nil
}

// TestHugePagesWhileBusy: the heap is made ineligible for huge pages at
// the first Update; it is gathered into them once the program is busy and its resident memory
// has not grown for CalmIntervals, again once that memory moved by
// GatherStep, and again when the program is busy after a quiet Interval,
// whose release is forgotten. What the gathering itself made resident is
// no growth.
func TestHugePagesWhileBusy(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	var events []string
	rss := int64(100 << 20)
	rate := 1.0 // busy: one CPU's worth
	k := &Keeper{Budget: 1 << 40, Cached: func() int64 { return 0 }, cpuNow: rateCPU(&rate),
		rssNow:    func() (int64, bool) { return rss, true },
		tick:      time.Nanosecond, // resident memory measured at every Update
		setLimit:  func(int64) { events = append(events, "limit") },
		pause:     func(time.Duration) {},
		HugePages: fakePager{events: &events, rss: &rss, gathered: 8 << 20}}
	huge := func() []string {
		var out []string
		for _, e := range events {
			if e != "limit" {
				out = append(out, e)
			}
		}
		events = events[:0]
		return out
	}
	// grow makes the resident memory grow by more than CalmGrowth.
	grow := func() { rss += 1 << 40 }
	updates := func(n int) func() {
		return func() {
			for range n {
				k.Update()
			}
		}
	}
	if CalmIntervals != 3 {
		t.Fatalf("the steps below are written for CalmIntervals 3, not %d", CalmIntervals)
	}
	for _, step := range []struct {
		name string
		do   func()
		want []string
	}{
		{"busy, not calm yet", updates(3), []string{"huge false"}},
		// The gathering's own 8 MiB is no growth, and no cause to gather
		// again.
		{"busy, calm", updates(2), []string{"collapse"}},
		{"busy, calm, resident memory moved", func() { rss -= GatherStep; k.Update() }, []string{"collapse"}},
		{"busy, growing", func() { grow(); k.Update(); k.Update() }, nil},
		{"busy, calm again", updates(2), []string{"collapse"}},
		{"quiet", func() {
			rate = 0
			k.Update()
			k.Update()
			if !k.quiet {
				t.Fatal("an idle program seen busy: the test shows nothing")
			}
		}, []string{"forget", "forget"}},
		{"busy again, calm", func() { rate = 1; k.Update() }, []string{"collapse"}},
	} {
		step.do()
		if got := huge(); !slices.Equal(got, step.want) {
			t.Fatalf("%s: asked %q, want %q", step.name, got, step.want)
		}
	}
}

// rateCPU returns a process's CPU seconds that grow by *rate CPUs from
// one reading to the next.
func rateCPU(rate *float64) func() (float64, bool) {
	cpu, at := 0.0, time.Now()
	return func() (float64, bool) {
		now := time.Now()
		cpu += *rate * now.Sub(at).Seconds()
		at = now
		return cpu, true
	}
}

// TestHugePagesCalmOverAnInterval: an Update that comes less than half an
// Interval after the last (Settle's, beside a tick's) measures no growth:
// the heap stays calm however the resident memory moved meanwhile.
func TestHugePagesCalmOverAnInterval(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	var events []string
	rss := int64(100 << 20)
	k := &Keeper{Budget: 1 << 40, Cached: func() int64 { return 0 }, cpuNow: busyCPU(),
		rssNow:    func() (int64, bool) { return rss, true },
		tick:      time.Hour,
		setLimit:  func(int64) {},
		pause:     func(time.Duration) {},
		HugePages: fakePager{events: &events, rss: &rss}}
	k.Update()
	k.rss = []int64{rss, rss, rss, rss} // as after CalmIntervals calm Intervals
	rss += 1 << 30
	k.Update()
	if len(k.rss) != CalmIntervals+1 || !slices.Contains(events, "collapse") {
		t.Fatalf("an Update a moment after the last: resident memory %v (asked %q), want it unmeasured and a gathering", k.rss, events)
	}
}
