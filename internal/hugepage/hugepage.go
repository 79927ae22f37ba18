// Package hugepage makes the Go heap's memory eligible, or not, for the
// kernel's transparent huge pages.
//
// A resolver's cache is spread over its whole heap, and every cached
// answer touches a few lines of it at random: a heap of 130 MB is some
// 33,000 pages of 4 KiB, more than the processor's TLB maps (one to a few
// thousand entries), so nearly every answer walks the page tables. A
// virtual machine whose host takes its CPU for a millisecond comes back
// with those walks, and the answers queued meanwhile wait for them. In
// pages of 2 MiB, the same heap is 65. Where the system leaves huge pages
// to the programs that ask (transparent_hugepage/enabled set to madvise,
// the default of many distributions), the Go runtime does not ask for
// them for its heap; Heap does.
//
// Huge pages cost memory where a 2 MiB range is partly used, and the
// kernel's khugepaged may gather a range whose pages were returned to the
// system back into a huge page. So the heap is eligible only while the
// program is busy (memlimit's keeper): when it turns quiet, it is made
// ineligible before its free memory is returned. They also cost time
// while the heap grows: the first touch of a 2 MiB range zeroes all of it
// in one fault, where small pages spread the same work (more of it) over
// 512 faults.
package hugepage

import (
	"runtime"
	"strconv"
	"strings"
)

// Prepare has the runtime map n bytes of heap, which it neither touches
// nor keeps: the next collection frees them, and the heap grows into them
// before it maps more. Heap advises a mapping as it finds it, and a page
// touched before its mapping is advised stays small: a resolver's cold
// pass grows the heap by tens of MiB a second, a new mapping each time.
// Prepared, the heap the caches will fill is one mapping from the start.
// n is capped at half the machine's memory (an allocation the system
// refuses would end the program), and it costs address space, not
// resident memory; a 32-bit program, short of address space, prepares
// nothing, nor does one built with the race detector (raceDetector).
func Prepare(n int64) {
	n = min(n, physical()/2)
	if n <= 0 || strconv.IntSize < 64 || raceDetector {
		return
	}
	runtime.KeepAlive(make([]byte, n))
}

// Off reports whether godebug (the GODEBUG environment variable's value)
// turns huge pages for the heap off, as the Go runtime's own disablethp=1
// does: the operator's setting, against which Heap is not called. As in
// the runtime, the last setting of the name wins.
func Off(godebug string) bool {
	off := false
	for _, kv := range strings.Split(godebug, ",") {
		switch strings.TrimSpace(kv) {
		case "disablethp=1":
			off = true
		case "disablethp=0":
			off = false
		}
	}
	return off
}
