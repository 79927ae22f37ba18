package cachedb

import (
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingPacer is a pacer whose pauses are counted, not slept.
func countingPacer() *pacer {
	p := newPacer(nil)
	p.sleep = func(time.Duration) {}
	return p
}

// TestPacer: a pacer pauses once a slice of work is used up, never more
// often than one pause a slice, and not at all when off or nil.
func TestPacer(t *testing.T) {
	tests := []struct {
		name  string
		p     *pacer
		pause bool
	}{
		{"on", countingPacer(), true},
		{"off", func() *pacer { p := countingPacer(); p.on = false; return p }(), false},
		{"nil", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			tc.p.start()
			// Work until three slices have passed: a real clock, and the
			// steps go on until it has moved that far.
			for time.Since(start) < 3*paceSlice {
				tc.p.step()
			}
			tc.p.yield()
			elapsed := time.Since(start)
			pauses := 0
			if tc.p != nil {
				pauses = tc.p.pauses
			}
			if tc.pause && pauses == 0 {
				t.Errorf("no pause in %v of work", elapsed)
			}
			if !tc.pause && pauses != 0 {
				t.Errorf("%d pauses, want none", pauses)
			}
			if most := int(elapsed / paceSlice); pauses > most {
				t.Errorf("%d pauses in %v of work: more than one a slice (%v)", pauses, elapsed, paceSlice)
			}
		})
	}
}

// TestWriterPauses: a round of many changes pauses between slices of its
// work, so that the listeners sharing the processor are served meanwhile;
// the last round, at shutdown, does not (nothing is left to serve).
func TestWriterPauses(t *testing.T) {
	c := newCache(newClock())
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: time.Hour})
	w.pace.sleep = func(time.Duration) {}
	t.Cleanup(w.close)
	if !w.flush(true, "start") {
		t.Fatal("the file did not open")
	}
	// Rounds of changes until one has taken longer than a few slices
	// (the steps of a round are counted against a real clock).
	n := 0
	for round := 0; w.pace.pauses == 0; round++ {
		if round == 20 {
			t.Fatalf("no pause in %d rounds of %d changes", round, batchEntries)
		}
		for range batchEntries {
			c.Put(hostA(n))
			n++
		}
		if !w.flush(false, "") {
			t.Fatal("the round failed")
		}
	}
	if keys := fileKeys(t, path); len(keys) != n {
		t.Errorf("the file holds %d entries, want %d", len(keys), n)
	}

	// Shutdown: Run's last round, with the listeners stopped, does not
	// pause, though it writes more than the round above that did.
	c2 := newCache(newClock())
	path2 := filepath.Join(t.TempDir(), "resolver-cache.db")
	w2 := NewWriter(path2, c2, nil, WriterConfig{WriteBehind: time.Hour})
	var pauses atomic.Int32 // the pacer's sleeps, counted from Run's goroutine
	w2.pace.sleep = func(time.Duration) { pauses.Add(1) }
	stop := runWriter(t, w2)
	waitFor(t, "the first batch", func() bool { st := w2.Status(); return st.Open && st.Batches >= 1 })
	// Spread over the 256 shards, far from filling one: nothing is
	// written before the end.
	const last = 2 * batchEntries
	for i := range last {
		c2.Put(hostA(i))
	}
	before := pauses.Load() // the first round's take may have paused
	stop()
	if keys := fileKeys(t, path2); len(keys) != last {
		t.Fatalf("the last round wrote %d entries, want %d", len(keys), last)
	}
	if n := pauses.Load() - before; n != 0 {
		t.Errorf("%d pauses in the last round, want none", n)
	}
}

// TestPacerDisk: a wait on the disk runs inside a lend, given back when
// it fails too; without a lend, or without a pacer, it just runs.
func TestPacerDisk(t *testing.T) {
	var got []string
	lend := func() func() {
		got = append(got, "lend")
		return func() { got = append(got, "back") }
	}
	fail := errors.New("disk full")
	for _, tc := range []struct {
		name string
		p    *pacer
		err  error
		want string
	}{
		{"lent", newPacer(lend), nil, "lend wait back"},
		{"lent, failing", newPacer(lend), fail, "lend wait back"},
		{"no lend", newPacer(nil), nil, "wait"},
		{"no pacer", nil, fail, "wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = got[:0]
			err := tc.p.disk(func() error { got = append(got, "wait"); return tc.err })
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Errorf("error %v, want %v", err, tc.err)
			}
			if s := strings.Join(got, " "); s != tc.want {
				t.Errorf("calls %q, want %q", s, tc.want)
			}
		})
	}
}

// TestWriterLends: each commit of write-behind, and each commit and sync
// of a file written anew, waits with a processor lent
// (WriterConfig.Lend), and every lend is given back.
func TestWriterLends(t *testing.T) {
	lends, backs := 0, 0
	lend := func() func() {
		lends++
		return func() { backs++ }
	}
	c := newCache(newClock())
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: time.Hour, Lend: lend})
	w.pace.sleep = func(time.Duration) {}
	t.Cleanup(w.close)
	if !w.flush(true, "start") {
		t.Fatal("the file did not open")
	}
	// Opening wrote the file's first snapshot; a round of changes now.
	opened, batches := lends, w.Status().Batches
	if opened == 0 || backs != lends {
		t.Fatalf("the first file: %d lends, %d given back; want some, all given back", lends, backs)
	}
	for i := range 3 * batchEntries {
		c.Put(hostA(i))
	}
	if !w.flush(false, "") {
		t.Fatal("the round failed")
	}
	n := int(w.Status().Batches - batches)
	if n < 3 {
		t.Fatalf("%d batches for %d changes, want at least 3", n, 3*batchEntries)
	}
	if lends-opened != n || backs != lends {
		t.Fatalf("%d batches committed, %d lends, %d of %d given back: want one lend a batch, all given back", n, lends-opened, backs, lends)
	}

	before := lends
	if err := w.compact(); err != nil {
		t.Fatal(err)
	}
	// The new file's commit (one: it is small), its sync and its
	// directory's.
	if n := lends - before; n < 3 || backs != lends {
		t.Errorf("writing the file anew: %d lends, %d of %d given back; want at least 3, all given back", n, backs, lends)
	}
	if keys := fileKeys(t, path); len(keys) != 3*batchEntries {
		t.Errorf("the file holds %d entries, want %d", len(keys), 3*batchEntries)
	}
}
