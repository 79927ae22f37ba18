package hugepage

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Heap marks the mappings that hold the Go heap eligible for transparent
// huge pages (on) or not (madvise MADV_HUGEPAGE or MADV_NOHUGEPAGE), and
// returns how many bytes they span. The heap is found from the address of
// an object just allocated: the readable and writable anonymous mappings
// of the run of anonymous mappings around it (the runtime reserves the
// heap's arenas without access and maps them for use as the heap grows;
// a part mapped since is a mapping of its own, until it is advised too).
// It is safe for concurrent use, but meant for one caller.
func Heap(on bool) (int64, error) {
	regions, err := heap()
	if err != nil {
		return 0, err
	}
	return advise(regions, on)
}

// heap returns the mappings that hold the Go heap (Heap).
func heap() ([]region, error) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil, fmt.Errorf("huge pages: %w", err)
	}
	// A slice of a size the compiler cannot know is made on the heap.
	probe := make([]byte, os.Getpagesize())
	at := uintptr(unsafe.Pointer(unsafe.SliceData(probe)))
	regions, err := heapRegions(maps, at)
	runtime.KeepAlive(probe)
	if err != nil {
		return nil, fmt.Errorf("huge pages: %w", err)
	}
	return regions, nil
}

// advise marks regions eligible for huge pages (on) or not, and returns
// how many bytes they span.
func advise(regions []region, on bool) (int64, error) {
	advice := unix.MADV_NOHUGEPAGE
	if on {
		advice = unix.MADV_HUGEPAGE
	}
	var n int64
	for _, r := range regions {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, uintptr(advice)); errno != 0 {
			return n, fmt.Errorf("huge pages: madvise %#x-%#x: %w", r.start, r.end, errno)
		}
		n += int64(r.end - r.start)
	}
	return n, nil
}

// Advisor advises the heap as Heap does, and gathers its densely used
// ranges into huge pages (Collapse). The zero value is ready; it is not
// safe for concurrent use.
type Advisor struct {
	// tried holds the ranges Collapse asked for since Forget; vec is its
	// buffer for mincore.
	tried map[uintptr]struct{}
	vec   []byte
	// unsupported: the kernel refused MADV_COLLAPSE (before Linux 6.1).
	unsupported bool
}

// Advise makes the heap eligible for huge pages, or not (Heap).
func (a *Advisor) Advise(on bool) error {
	_, err := Heap(on)
	return err
}

// Forget has Collapse ask for every dense range again: the heap's free
// pages may have gone back to the system since, splitting the huge pages
// they were part of.
func (a *Advisor) Forget() { clear(a.tried) }

// Collapse gathers into a huge page each 2 MiB range of the heap whose
// small pages are at least Dense resident and that it has not asked for
// since Forget, waiting CollapsePause after each (madvise MADV_COLLAPSE: the
// kernel copies the range into a new huge page while the range is
// locked, 0.4-9 ms of the caller's CPU on the virtual machine measured;
// what touches the range meanwhile waits, and the pause gives the
// processor back). The heap is eligible for huge pages while it gathers,
// and ineligible after (Heap): huge pages are where Collapse put them,
// not where a fault of the growing heap or the kernel's khugepaged would
// (a range khugepaged gathers may hold a single page the heap uses). It
// returns how many bytes it gathered. It does nothing where the system's
// setting is never, or where the kernel has no MADV_COLLAPSE (before
// Linux 6.1): then it returns an error once.
func (a *Advisor) Collapse() (int64, error) {
	if a.unsupported || systemNever() {
		return 0, nil
	}
	regions, err := heap()
	if err != nil {
		return 0, err
	}
	return a.gather(regions)
}

// gather makes regions eligible, gathers their dense ranges (Collapse),
// and makes them ineligible again. The regions advised are the ones
// gathered: a part of the heap the runtime maps meanwhile is neither.
func (a *Advisor) gather(regions []region) (int64, error) {
	if _, err := advise(regions, true); err != nil {
		return 0, err
	}
	n, err := a.collapse(regions)
	if _, offErr := advise(regions, false); err == nil {
		err = offErr
	}
	return n, err
}

func (a *Advisor) collapse(regions []region) (int64, error) {
	if a.tried == nil {
		a.tried = make(map[uintptr]struct{})
	}
	page := uintptr(os.Getpagesize())
	var n int64
	for _, r := range regions {
		lo, hi := (r.start+Size-1)&^(Size-1), r.end&^(Size-1)
		if lo >= hi {
			continue
		}
		dense, err := a.denseRanges(lo, hi, page)
		if err != nil {
			return n, err
		}
		for _, at := range dense {
			if _, ok := a.tried[at]; ok {
				continue
			}
			a.tried[at] = struct{}{}
			_, _, errno := unix.Syscall(unix.SYS_MADVISE, at, Size, unix.MADV_COLLAPSE)
			switch errno {
			case 0:
				n += Size
			case unix.EINVAL:
				// No MADV_COLLAPSE in this kernel, or huge pages
				// turned off for the process (prctl PR_SET_THP_DISABLE).
				a.unsupported = true
				return n, fmt.Errorf("huge pages: madvise MADV_COLLAPSE %#x: %w", at, errno)
			}
			// EAGAIN, ENOMEM: no huge page to be had now; the range is
			// not asked for again until Forget.
			time.Sleep(CollapsePause)
		}
	}
	return n, nil
}

// denseRanges returns the starts of the Size ranges in [lo, hi) (both
// multiples of Size) of which at least Dense of the small pages are
// resident (mincore).
func (a *Advisor) denseRanges(lo, hi, page uintptr) ([]uintptr, error) {
	pages := int((hi - lo) / page)
	if cap(a.vec) < pages {
		a.vec = make([]byte, pages)
	}
	vec := a.vec[:pages]
	if err := mincore(lo, hi, vec); err != nil {
		return nil, err
	}
	per := int(Size / page)
	need := int(Dense * float64(per))
	var out []uintptr
	for i := 0; i+per <= pages; i += per {
		resident := 0
		for _, b := range vec[i : i+per] {
			resident += int(b & 1)
		}
		if resident >= need {
			out = append(out, lo+uintptr(i)*page)
		}
	}
	return out, nil
}

// mincore fills vec, a byte for each page of [lo, hi), with whether the
// page is resident (its low bit).
func mincore(lo, hi uintptr, vec []byte) error {
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, lo, hi-lo, uintptr(unsafe.Pointer(unsafe.SliceData(vec)))); errno != 0 {
		return fmt.Errorf("huge pages: mincore %#x-%#x: %w", lo, hi, errno)
	}
	return nil
}

// systemNever reports whether the system's setting for transparent huge
// pages is never: the operator's, which Collapse does not override
// (MADV_COLLAPSE would).
func systemNever() bool {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err != nil || bytes.Contains(b, []byte("[never]"))
}

// region is one mapping's address range, [start, end).
type region struct{ start, end uintptr }

// mapping is a line of /proc/self/maps: its range, whether it is anonymous
// (no file, no name) and whether it is readable and writable.
type mapping struct {
	region
	anon, rw bool
}

// heapRegions returns, from the text of /proc/self/maps, the readable and
// writable mappings in the run of address-adjacent anonymous mappings that
// holds the address at.
func heapRegions(maps []byte, at uintptr) ([]region, error) {
	var ms []mapping
	hit := -1
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		m, err := parseMapping(sc.Bytes())
		if err != nil {
			return nil, err
		}
		if m.start <= at && at < m.end {
			hit = len(ms)
		}
		ms = append(ms, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("/proc/self/maps: %w", err)
	}
	if hit < 0 || !ms[hit].anon {
		return nil, fmt.Errorf("/proc/self/maps: no anonymous mapping holds the heap's address %#x", at)
	}
	first, last := hit, hit
	for first > 0 && ms[first-1].anon && ms[first-1].end == ms[first].start {
		first--
	}
	for last+1 < len(ms) && ms[last+1].anon && ms[last+1].start == ms[last].end {
		last++
	}
	var out []region
	for _, m := range ms[first : last+1] {
		if m.rw {
			out = append(out, m.region)
		}
	}
	return out, nil
}

// parseMapping reads one line of /proc/self/maps:
// "start-end perms offset dev inode [path]".
func parseMapping(line []byte) (mapping, error) {
	fields := bytes.Fields(line)
	if len(fields) < 5 {
		return mapping{}, fmt.Errorf("/proc/self/maps: line %q: too few fields", line)
	}
	lo, hi, ok := bytes.Cut(fields[0], []byte("-"))
	if !ok {
		return mapping{}, fmt.Errorf("/proc/self/maps: line %q: no address range", line)
	}
	start, err1 := strconv.ParseUint(string(lo), 16, 64)
	end, err2 := strconv.ParseUint(string(hi), 16, 64)
	if err1 != nil || err2 != nil || end <= start {
		return mapping{}, fmt.Errorf("/proc/self/maps: line %q: bad address range", line)
	}
	perms := fields[1]
	return mapping{
		region: region{uintptr(start), uintptr(end)},
		anon:   len(fields) == 5 && string(fields[4]) == "0",
		rw:     len(perms) >= 4 && perms[0] == 'r' && perms[1] == 'w' && perms[3] == 'p',
	}, nil
}
