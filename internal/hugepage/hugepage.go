// Package hugepage makes the Go heap's memory eligible, or not, for the
// kernel's transparent huge pages, and gathers its densely used ranges
// into them.
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
// kernel's khugepaged, on a heap eligible for them, gathers ranges the
// heap uses a single page of, or whose pages it returned to the system.
// They also cost time while the heap grows: the first touch of a 2 MiB
// range zeroes all of it in one fault, and what waits behind that fault
// waits for all of it. So the heap is kept ineligible, and an Advisor
// gathers it into huge pages once it has stopped growing and the program
// is busy (memlimit's keeper): Collapse makes it eligible, has the kernel
// copy each range that is nearly all in use into a huge page, off the
// listeners' way, and makes it ineligible again.
//
// A Prefaulter, whatever the page size, faults in the memory the runtime
// maps as the heap grows before the program first writes to it.
package hugepage

import (
	"strings"
	"time"
)

// Size is a huge page's size, and the alignment of the ranges Collapse
// gathers: 2 MiB (x86-64; arm64 with 4 KiB pages).
const Size = 2 << 20

// Dense is the share of a huge page's small pages that must be resident
// for Collapse to gather its range: the rest become resident with it, so
// a gathered range costs at most an eighth more memory than it held.
const Dense = 7.0 / 8

// CollapsePause is Collapse's wait after each range it gathers.
const CollapsePause = time.Millisecond

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

// PrefaultChunk is the unit in which a Prefaulter populates the heap: the
// runtime maps the heap in chunks of 4 MiB (its page allocator's), and
// a larger object in a multiple of it.
const PrefaultChunk = 4 << 20

// PrefaultMax bounds what one Prefaulter Step populates.
const PrefaultMax = 64 << 20

// PrefaultFast is how often a Prefaulter looks for newly mapped heap memory
// while the heap grows (a stream of misses into an empty cache grows it by
// 4 MiB every 0.1-0.2 s); once it has not grown for PrefaultIdle, after
// PrefaultSlow and then twice as long each time, up to PrefaultIdle: a
// server at rest is woken once a second (ten looks a second cost 0.4 % of
// a CPU at rest on the virtual machine measured), and what its heap grows
// by before a look finds it is faulted a page at a time. A look is a
// system call that fails at once.
const (
	PrefaultFast = 10 * time.Millisecond
	PrefaultSlow = 100 * time.Millisecond
	PrefaultIdle = time.Second
)

// PrefaultLocate is how often at most a Prefaulter that finds nothing new
// reads where the heap ends from /proc/self/maps: only a runtime that
// starts the heap's next arena elsewhere (rare) moves it.
const PrefaultLocate = 10 * time.Second
