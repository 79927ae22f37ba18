package gather

import (
	"sync"
	"testing"
)

// Items brought by many goroutines at once are each sent once, in
// batches of at most max, one flush at a time; each Add that returns true
// saw its own item sent, and the flushes return with nothing left.
func TestGather(t *testing.T) {
	for _, tc := range []struct {
		name      string
		max, n, w int
	}{
		{"one", 0, 1, 1},
		{"all at a time", 0, 2000, 16},
		{"four at a time", 4, 2000, 16},
		{"one at a time", 1, 500, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Gather[int]
			var mu sync.Mutex
			sent := map[int]int{}
			flushing, batches, most := 0, 0, 0
			send := func(batch []int) {
				mu.Lock()
				flushing++
				if flushing > 1 {
					t.Error("two flushes at once")
				}
				batches++
				most = max(most, len(batch))
				for _, v := range batch {
					sent[v]++
				}
				mu.Unlock()
				mu.Lock()
				flushing--
				mu.Unlock()
			}
			var wg sync.WaitGroup
			per := tc.n / tc.w
			for w := range tc.w {
				wg.Go(func() {
					for i := range per {
						v := w*per + i
						if g.Add(v, tc.max, send) {
							mu.Lock()
							ok := sent[v] == 1
							mu.Unlock()
							if !ok {
								t.Errorf("Add(%d) returned true before its item was sent", v)
							}
						}
					}
				})
			}
			wg.Wait()
			total := per * tc.w
			if len(sent) != total {
				t.Fatalf("%d items sent, want %d", len(sent), total)
			}
			for v, k := range sent {
				if k != 1 {
					t.Fatalf("item %d sent %d times", v, k)
				}
			}
			if tc.max > 0 && most > tc.max {
				t.Fatalf("a batch of %d, over max %d", most, tc.max)
			}
			if g.flushing || len(g.queue) != 0 {
				t.Fatalf("left flushing %v with %d queued", g.flushing, len(g.queue))
			}
			t.Logf("%d items in %d batches, at most %d", total, batches, most)
		})
	}
}

// A gathering whose flushes find one item each yields only every Probe
// flushes; one whose flush found company yields at the next.
func TestGatherProbes(t *testing.T) {
	var g Gather[int]
	send := func([]int) {}
	for i := range 3 * Probe {
		want := i%Probe == 0
		if got := g.lone%Probe == 0; got != want {
			t.Fatalf("flush %d: yields %v, want %v", i, got, want)
		}
		g.Add(i, 0, send)
	}
	g.lone = 3
	g.queue = []int{-1} // as if brought while the next flush began
	g.Add(0, 0, send)
	if g.lone != 0 {
		t.Fatalf("after a batch of two, lone %d, want 0", g.lone)
	}
}
