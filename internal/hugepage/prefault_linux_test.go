package hugepage

import (
	"os"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident returns how many of the pages of [lo, lo+n) are resident
// (mincore).
func resident(t *testing.T, lo, n uintptr) int {
	t.Helper()
	page := uintptr(os.Getpagesize())
	vec := make([]byte, n/page)
	if err := mincore(lo, lo+n, vec); err != nil {
		t.Fatal(err)
	}
	in := 0
	for _, b := range vec {
		in += int(b & 1)
	}
	return in
}

// TestPrefaulterStep: a reservation without access, made writable a part at
// a time as the runtime maps its heap, is populated up to where it is
// writable, PrefaultMax at most a Step, without changing what it holds.
func TestPrefaulterStep(t *testing.T) {
	if err := populateSupported(); err != nil {
		t.Skipf("the kernel has no MADV_POPULATE_WRITE: %v", err)
	}
	const chunks = PrefaultMax/PrefaultChunk + 4
	b, err := unix.Mmap(-1, 0, (chunks+1)*PrefaultChunk, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := (start + PrefaultChunk - 1) &^ (PrefaultChunk - 1)
	m := b[lo-start : lo-start+chunks*PrefaultChunk]
	mapFor := func(from, to int) { // chunks [from, to) made writable
		t.Helper()
		if err := unix.Mprotect(m[from*PrefaultChunk:to*PrefaultChunk], unix.PROT_READ|unix.PROT_WRITE); err != nil {
			t.Fatal(err)
		}
	}
	page := os.Getpagesize()
	perChunk := PrefaultChunk / page

	mapFor(0, 2)
	m[PrefaultChunk+page] = 7 // written before it is populated
	p := Prefaulter{next: lo}
	steps := []struct {
		name     string
		mapTo    int   // chunks writable before the Step
		want     int64 // bytes the Step populates
		resident int   // chunks resident after it
	}{
		{"two chunks", 2, 2 * PrefaultChunk, 2},
		{"nothing new", 2, 0, 2},
		{"one more", 3, PrefaultChunk, 3},
		{"more than a Step's bound", chunks, PrefaultMax, 3 + PrefaultMax/PrefaultChunk},
		{"the rest", chunks, (chunks - 3 - PrefaultMax/PrefaultChunk) * PrefaultChunk, chunks},
	}
	mapped := 2
	for _, s := range steps {
		if s.mapTo > mapped {
			mapFor(mapped, s.mapTo)
			mapped = s.mapTo
		}
		n, err := p.Step()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if n != s.want {
			t.Fatalf("%s: populated %d MiB, want %d", s.name, n>>20, s.want>>20)
		}
		if got := resident(t, lo, chunks*PrefaultChunk); got != s.resident*perChunk {
			t.Fatalf("%s: %d pages resident, want %d", s.name, got, s.resident*perChunk)
		}
	}
	if m[PrefaultChunk+page] != 7 || m[0] != 0 || m[len(m)-1] != 0 {
		t.Fatalf("populated memory changed: %d, %d, %d; want 7, 0, 0", m[PrefaultChunk+page], m[0], m[len(m)-1])
	}
}

// TestPrefaulterHeap: memory the runtime maps for large objects, which it
// does not zero (it is fresh from the system) and so leaves out of memory,
// is resident after a Step.
func TestPrefaulterHeap(t *testing.T) {
	if err := populateSupported(); err != nil {
		t.Skipf("the kernel has no MADV_POPULATE_WRITE: %v", err)
	}
	var p Prefaulter
	if _, err := p.Step(); err != nil { // finds the heap's end
		t.Fatal(err)
	}
	end := p.next
	if end == 0 {
		t.Fatal("the heap's end not found")
	}
	// Objects until one ends beyond what the runtime had mapped (it fills
	// that first), bounded.
	const size = 3 * PrefaultChunk
	var kept [][]byte
	var at uintptr
	for at+size <= end+PrefaultChunk {
		if len(kept) == 32 {
			t.Fatalf("32 objects of %d MiB, none beyond the heap's end at %#x", size>>20, end)
		}
		kept = append(kept, make([]byte, size))
		at = uintptr(unsafe.Pointer(unsafe.SliceData(kept[len(kept)-1])))
	}
	page := uintptr(os.Getpagesize())
	lo, hi := max(at, end), (at+size)&^(page-1)
	before := resident(t, lo, hi-lo)
	n, err := p.Step()
	if err != nil {
		t.Fatal(err)
	}
	after := resident(t, lo, hi-lo)
	runtime.KeepAlive(kept)
	if n < int64(hi-lo) || after != int((hi-lo)/page) {
		t.Fatalf("populated %d bytes; the %d pages beyond the heap's end: %d resident before, %d after; want all after", n, (hi-lo)/page, before, after)
	}
}
