package hugepage

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
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
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("huge pages: %w", err)
	}
	// A slice of a size the compiler cannot know is made on the heap.
	probe := make([]byte, os.Getpagesize())
	at := uintptr(unsafe.Pointer(unsafe.SliceData(probe)))
	regions, err := heapRegions(maps, at)
	runtime.KeepAlive(probe)
	if err != nil {
		return 0, fmt.Errorf("huge pages: %w", err)
	}
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

// physical returns the machine's memory in bytes, 0 when it is unknown.
func physical() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
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
