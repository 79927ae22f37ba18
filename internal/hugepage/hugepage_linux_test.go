package hugepage

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestHeapRegions(t *testing.T) {
	const maps = `00400000-013fb000 r-xp 00000000 fe:00 10002957 /usr/bin/sovdns
013fb000-03440000 rw-p 00000000 00:00 0
3c000000-40000000 ---p 00000000 00:00 0
40000000-40400000 rw-p 00000000 00:00 0
40400000-40c00000 rw-p 00000000 00:00 0
40c00000-44000000 ---p 00000000 00:00 0
44000000-44200000 rw-p 00000000 00:00 0
44400000-44600000 rw-p 00000000 00:00 0
b4193000-b419b000 r--s 00000000 fe:00 10002965 /var/lib/sovdns/resolver-cache.db
b419b000-b421b000 rw-p 00000000 00:00 0
fe9c0000-fe9e1000 rw-p 00000000 00:00 0                          [stack]
`
	for _, tc := range []struct {
		name string
		at   uintptr
		want []region
		err  bool
	}{
		// The run from 3c000000 to 44200000 (a gap follows).
		{"heap", 0x40500000, []region{{0x40000000, 0x40400000}, {0x40400000, 0x40c00000}, {0x44000000, 0x44200000}}, false},
		{"alone", 0xb419c000, []region{{0xb419b000, 0xb421b000}}, false},
		{"file", 0xb4194000, nil, true},
		{"named", 0xfe9c1000, nil, true},
		{"unmapped", 0x1000, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := heapRegions([]byte(maps), tc.at)
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want an error: %v", err, tc.err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("regions %x, want %x", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("regions %x, want %x", got, tc.want)
				}
			}
		})
	}
	if _, err := heapRegions([]byte("zz-yy rw-p 0 0 0\n"), 0); err == nil {
		t.Error("a line without addresses: no error")
	}
}

// TestHeap: the kernel's flags for the mapping that holds a heap object
// say what Heap asked, both ways.
func TestHeap(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage"); err != nil {
		t.Skipf("no transparent huge pages here: %v", err)
	}
	obj := make([]byte, 64<<10+len(t.Name()))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(obj)))
	for _, on := range []bool{true, false, true} {
		n, err := Heap(on)
		if errors.Is(err, unix.EINVAL) {
			t.Skipf("the kernel refuses the advice: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		flag, other := "hg", "nh"
		if !on {
			flag, other = other, flag
		}
		flags := vmFlags(t, at)
		if n == 0 || !flags[flag] || flags[other] {
			t.Fatalf("Heap(%v) advised %d bytes; the heap's mapping has flags %v, want %s and not %s", on, n, flags, flag, other)
		}
	}
	runtime.KeepAlive(obj)
}

// vmFlags returns the VmFlags of the mapping that holds at, from
// /proc/self/smaps.
func vmFlags(t *testing.T, at uintptr) map[string]bool {
	t.Helper()
	v, ok := smapsField(t, at, "VmFlags:")
	if !ok {
		t.Fatalf("no VmFlags for the mapping that holds %#x", at)
	}
	flags := map[string]bool{}
	for _, f := range v {
		flags[f] = true
	}
	return flags
}

// smapsField returns the values of the line named key of the mapping
// that holds at, from /proc/self/smaps.
func smapsField(t *testing.T, at uintptr, key string) ([]string, bool) {
	t.Helper()
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && !strings.HasSuffix(fields[0], ":") {
			start, _ := strconv.ParseUint(lo, 16, 64)
			end, _ := strconv.ParseUint(hi, 16, 64)
			in = uintptr(start) <= at && at < uintptr(end)
			continue
		}
		if in && fields[0] == key {
			return fields[1:], true
		}
	}
	return nil, false
}

// TestDenseRanges: of the 2 MiB ranges of a mapping, those whose small
// pages are at least Dense resident, and only those.
func TestDenseRanges(t *testing.T) {
	const ranges = 4
	r, lo := smallPages(t, ranges)
	page := os.Getpagesize()
	per := Size / page
	// Range 0: every page; 1: all but one in eight (just Dense); 2: one
	// page fewer than that; 3: none.
	touch := []int{per, int(Dense * float64(per)), int(Dense*float64(per)) - 1, 0}
	for i, n := range touch {
		for p := range n {
			r[i*Size+p*page] = 1
		}
	}
	var a Advisor
	got, err := a.denseRanges(lo, lo+ranges*Size, uintptr(page))
	if err != nil {
		t.Fatal(err)
	}
	want := []uintptr{lo, lo + Size}
	if !slices.Equal(got, want) {
		t.Fatalf("dense ranges %x, want %x (pages touched per range: %v of %d)", got, want, touch, per)
	}
}

// TestCollapse: a mapping's ranges, resident in small pages, are gathered
// into huge pages, once until Forget, and the mapping is left ineligible.
// (Collapse finds the heap's mappings as Heap does, TestHeap; a mapping
// of the test's own is all its own ranges, where the heap's is shared
// with whatever else the test binary has allocated.)
func TestCollapse(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage"); err != nil || systemNever() {
		t.Skipf("no transparent huge pages here (or the system's setting is never): %v", err)
	}
	const ranges = 8
	m, lo := smallPages(t, ranges)
	r := region{lo, lo + ranges*Size}
	for i := 0; i < len(m); i += os.Getpagesize() {
		m[i] = 1
	}
	if got := anonHuge(t, lo); got != 0 {
		t.Fatalf("%d KiB in huge pages before gathering, want none", got>>10)
	}
	var a Advisor
	// The kernel may have no free huge page at a given moment (EAGAIN,
	// which Collapse leaves until Forget; each try compacts memory for
	// one): a few tries, bounded.
	var gathered []int64
	for try := 0; anonHuge(t, lo) < ranges*Size; try++ {
		if try == 5 {
			t.Fatalf("%d MiB of %d in huge pages after %d tries (gathered %v bytes)", anonHuge(t, lo)>>20, ranges*Size>>20, try, gathered)
		}
		a.Forget()
		n, err := a.gather([]region{r})
		if errors.Is(err, unix.EINVAL) {
			t.Skipf("the kernel has no MADV_COLLAPSE: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		gathered = append(gathered, n)
	}
	if flags := vmFlags(t, lo); !flags["nh"] || flags["hg"] {
		t.Fatalf("after gathering, the mapping has flags %v, want nh and not hg", flags)
	}
	if again, err := a.gather([]region{r}); err != nil || again != 0 {
		t.Fatalf("again: gathered %d bytes (%v), want the ranges left alone", again, err)
	}
	a.Forget()
	if again, err := a.gather([]region{r}); err != nil || again != ranges*Size {
		t.Fatalf("after Forget: gathered %d bytes (%v), want all %d asked for again", again, err, ranges*Size)
	}
}

// smallPages maps memory of the test's own, ranges times Size, aligned
// to Size and ineligible for huge pages (so that touching one page makes
// one small page resident), unmapped when the test ends.
func smallPages(t *testing.T, ranges int) ([]byte, uintptr) {
	t.Helper()
	b, err := unix.Mmap(-1, 0, (ranges+1)*Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := (start + Size - 1) &^ (Size - 1)
	if _, err := advise([]region{{lo, lo + uintptr(ranges)*Size}}, false); err != nil {
		t.Fatal(err)
	}
	return b[lo-start : lo-start+uintptr(ranges)*Size], lo
}

// anonHuge returns the AnonHugePages of the mapping that holds at, from
// /proc/self/smaps.
func anonHuge(t *testing.T, at uintptr) int64 {
	t.Helper()
	v, ok := smapsField(t, at, "AnonHugePages:")
	if !ok || len(v) < 1 {
		t.Fatalf("no AnonHugePages for the mapping that holds %#x", at)
	}
	kib, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return kib << 10
}
