package cachedb

import "time"

// Work of the writer between two pauses, and the pause. The writer runs
// beside the listeners, often on the same scheduler processor: a resolver
// without zones has one per CPU, one on a CPU of its own. Go's scheduler
// gives a running goroutine the processor until it blocks or has run for
// 10 ms, and looks for sockets that became readable only when no
// goroutine is runnable: neither runtime.Gosched nor a pause shorter than
// what the goroutines already runnable take lets the listeners in, as the
// writer is runnable again first (the scheduler polls anyway every 10 ms).
// A write-behind round of a stream of misses packs and commits thousands
// of records, 30-65 ms of CPU for 2 s of 5,000 misses a second: without
// pauses it held every query behind it for 5-12 ms at a time, and with a
// 1 ms pause a slice it still took half the processor, more than a
// loaded one had spare, so queries waited tens of milliseconds every
// round. Taking the changes from the cache's 256 shards was another
// 10-15 ms in one piece; the take pauses between shards too. The writer
// now takes at most a fifth of the processor's time
// (a slice of work, then a pause four times as long), and still keeps up:
// a stream of 12,000 misses a second needs some 40 ms of its CPU a
// second, a fifth of the 200 ms it may take.
const (
	paceSlice = 500 * time.Microsecond
	pacePause = 2 * time.Millisecond
	// paceEvery is how many steps go between two looks at the clock.
	paceEvery = 32
)

// pacer pauses a long piece of work every paceSlice, and has its waits
// on the disk made with a processor lent (lend, when set). The zero
// pacer, or a nil one, never pauses nor lends.
type pacer struct {
	on    bool
	n     int
	since time.Time
	// pauses counts the pauses made; sleep makes one (time.Sleep).
	pauses int
	sleep  func(time.Duration)
	lend   func() (giveBack func())
}

func newPacer(lend func() (giveBack func())) *pacer {
	return &pacer{on: true, sleep: time.Sleep, lend: lend}
}

// disk runs f, a wait on the disk (a commit, a sync), with a processor
// lent for its length. A commit also packs the transaction's pages
// before it writes them, which is work done beside the listeners rather
// than in their stead.
func (p *pacer) disk(f func() error) error {
	if p == nil || p.lend == nil {
		return f()
	}
	giveBack := p.lend()
	defer giveBack()
	return f()
}

// start begins a piece of work: the slice is counted from now.
func (p *pacer) start() {
	if p == nil || !p.on {
		return
	}
	p.n = 0
	p.since = time.Now()
}

// step is called for each unit of work (a record): every paceEvery, it
// pauses if the slice is used up.
func (p *pacer) step() {
	if p == nil || !p.on {
		return
	}
	if p.n++; p.n < paceEvery {
		return
	}
	p.yield()
}

// yield pauses if the slice is used up: after a burst that step does not
// see (a commit).
func (p *pacer) yield() {
	if p == nil || !p.on {
		return
	}
	p.n = 0
	if time.Since(p.since) < paceSlice {
		return
	}
	p.sleep(pacePause)
	p.pauses++
	p.since = time.Now()
}
