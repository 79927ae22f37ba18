// Package gather lets goroutines that each bring an item to send have
// them sent together: the upstream queries of a resolver's ring lanes in
// one entry into io_uring, the answers to a listener's clients in one
// sendmmsg.
//
// The goroutine that brings an item when none is being sent sends (it
// flushes): it first lets the other goroutines ready to run go
// (runtime.Gosched), so that the ones woken together bring theirs, then
// sends what gathered, a batch at a time, and what gathers while it
// sends. A yield can hold an item behind whatever else is ready to run,
// so a gathering whose recent batches held one item each yields only
// every Probe flushes, to see whether items come together again.
package gather

import (
	"runtime"
	"sync"
)

// Probe: see the package comment.
const Probe = 8

// Gather gathers items of type T. Its zero value is ready.
type Gather[T any] struct {
	mu       sync.Mutex
	queue    []T
	flushing bool // a goroutine is sending: it takes what comes
	lone     int  // flushes in a row whose first batch held one item
	// spare is the room of the batch last sent: the flusher's alone.
	spare []T
}

// Add queues v. The caller that finds no flush under way flushes: send
// gets every item gathered until none is left, max at a time (0: all),
// and Add returns true once v is among the items sent. Any other caller
// returns false at once: the flusher sends its item.
func (g *Gather[T]) Add(v T, max int, send func(batch []T)) bool {
	g.mu.Lock()
	g.queue = append(g.queue, v)
	if g.flushing {
		g.mu.Unlock()
		return false
	}
	g.flushing = true
	yield := g.lone%Probe == 0
	g.mu.Unlock()
	if yield {
		runtime.Gosched()
	}
	for first := true; ; first = false {
		g.mu.Lock()
		n := len(g.queue)
		if n == 0 {
			g.flushing = false
			g.mu.Unlock()
			return true
		}
		if first && n == 1 {
			g.lone++
		} else if first {
			g.lone = 0
		}
		if max > 0 && n > max {
			n = max
		}
		batch := append(g.spare[:0], g.queue[:n]...)
		k := copy(g.queue, g.queue[n:])
		clear(g.queue[k:])
		g.queue = g.queue[:k]
		g.mu.Unlock()
		send(batch)
		clear(batch)
		g.spare = batch[:0]
	}
}
