//go:build linux

package test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestResolverHeapHugePages: a resolver's heap is made ineligible for
// transparent huge pages at start, eligible once the server has answered
// for a few seconds without its heap growing, when its dense ranges are
// gathered into huge pages (Linux 6.1 and later), and ineligible again
// once the server is quiet.
func TestResolverHeapHugePages(t *testing.T) {
	t.Parallel()
	enabled, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || bytes.Contains(enabled, []byte("[never]")) {
		t.Skipf("no transparent huge pages here: %q %v", enabled, err)
	}
	s := startServer(t, serveOpts{config: "response_cache_mb: 16\nresolver:\n  allow: [127.0.0.0/8]\n  cache_mb: 32\n"})
	pid := s.cmd.Process.Pid
	// The keeper's first word: none while the server starts.
	waitUntil(t, 30*time.Second, "a mapping made ineligible for huge pages at start",
		func() bool { _, ok := largestFlagged(t, pid, "nh"); return ok },
		func() string { return flagged(t, pid) })

	// Busy, with a heap that does not grow: questions answered from
	// memory until a mapping is eligible and, where the kernel can
	// gather (MADV_COLLAPSE), holds huge pages (bounded).
	q := newQuery("localhost.", dns.TypeA)
	c := &dns.Client{Timeout: time.Second}
	gathers := kernelAtLeast(t, 6, 1)
	var heap smapsEntry
	deadline := time.Now().Add(30 * time.Second)
	for sent := 0; ; sent++ {
		if sent%20 == 0 {
			if e, ok := largestFlagged(t, pid, "hg"); ok && (!gathers || e.anonHuge > 0) {
				heap = e
				break
			}
		}
		if time.Now().After(deadline) || sent > 500_000 {
			t.Fatalf("after %d questions, no mapping eligible for huge pages (and holding some, on a kernel that gathers: %v):\n%s", sent, gathers, flagged(t, pid))
		}
		_, _, _ = c.Exchange(q, s.dns)
	}
	// Quiet: the same range made ineligible.
	waitUntil(t, 30*time.Second, fmt.Sprintf("the heap's mapping %x-%x made ineligible once quiet", heap.start, heap.end),
		func() bool {
			e, ok := mappingAt(t, pid, heap.start)
			return ok && e.flags["nh"] && !e.flags["hg"]
		},
		func() string { return flagged(t, pid) })
}

// kernelAtLeast reports whether the running kernel's release is at least
// major.minor.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	var ma, mi int
	if _, err := fmt.Sscanf(string(b), "%d.%d", &ma, &mi); err != nil {
		t.Fatalf("kernel release %q: %v", b, err)
	}
	return ma > major || ma == major && mi >= minor
}

// smapsEntry is a mapping of /proc/PID/smaps: its range and VmFlags.
type smapsEntry struct {
	start, end uint64
	flags      map[string]bool
	anonHuge   int64 // bytes in huge pages
}

// smaps reads the anonymous mappings of process pid.
func smaps(t *testing.T, pid int) []smapsEntry {
	t.Helper()
	text, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []smapsEntry
	var cur *smapsEntry
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && !strings.HasSuffix(f[0], ":") {
			cur = nil
			if len(f) != 5 || f[4] != "0" { // a file or a named mapping
				continue
			}
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("smaps line %q", sc.Text())
			}
			out = append(out, smapsEntry{start: start, end: end, flags: map[string]bool{}})
			cur = &out[len(out)-1]
			continue
		}
		if cur != nil && f[0] == "AnonHugePages:" && len(f) >= 2 {
			kib, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("smaps line %q", sc.Text())
			}
			cur.anonHuge = kib << 10
		}
		if cur != nil && f[0] == "VmFlags:" {
			for _, fl := range f[1:] {
				cur.flags[fl] = true
			}
		}
	}
	return out
}

// largestFlagged returns the largest anonymous mapping with flag.
func largestFlagged(t *testing.T, pid int, flag string) (smapsEntry, bool) {
	var best smapsEntry
	found := false
	for _, e := range smaps(t, pid) {
		if e.flags[flag] && (!found || e.end-e.start > best.end-best.start) {
			best, found = e, true
		}
	}
	return best, found
}

// mappingAt returns the anonymous mapping that holds addr.
func mappingAt(t *testing.T, pid int, addr uint64) (smapsEntry, bool) {
	for _, e := range smaps(t, pid) {
		if e.start <= addr && addr < e.end {
			return e, true
		}
	}
	return smapsEntry{}, false
}

// flagged lists the anonymous mappings with huge page flags, for errors.
func flagged(t *testing.T, pid int) string {
	var b strings.Builder
	for _, e := range smaps(t, pid) {
		if e.flags["hg"] || e.flags["nh"] || e.end-e.start >= 16<<20 {
			fmt.Fprintf(&b, "%x-%x %d MiB hg=%v nh=%v huge pages %d KiB\n", e.start, e.end, (e.end-e.start)>>20, e.flags["hg"], e.flags["nh"], e.anonHuge>>10)
		}
	}
	return b.String()
}
