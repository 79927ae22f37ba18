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

// TestResolverHeapHugePages: a resolver's heap is eligible for
// transparent huge pages while the server answers, as one mapping at
// least the size prepared for its caches, and the same range is made
// ineligible once the server is quiet.
func TestResolverHeapHugePages(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage"); err != nil {
		t.Skipf("no transparent huge pages here: %v", err)
	}
	// 1.5 times the two caches (32 + 16 MiB), prepared at start; a binary
	// built with the race detector prepares nothing, and its heap is a
	// mapping of a few MiB.
	prepared := uint64(72 << 20)
	if raceEnabled {
		prepared = 4 << 20
	}
	s := startServer(t, serveOpts{config: "response_cache_mb: 16\nresolver:\n  allow: [127.0.0.0/8]\n  cache_mb: 32\n"})
	pid := s.cmd.Process.Pid

	// Busy: questions until the heap's mapping is advised (bounded).
	q := newQuery("localhost.", dns.TypeA)
	c := &dns.Client{Timeout: time.Second}
	var heap smapsEntry
	deadline := time.Now().Add(30 * time.Second)
	for sent := 0; ; sent++ {
		if sent%20 == 0 {
			if e, ok := largestFlagged(t, pid, "hg"); ok && e.end-e.start >= prepared {
				heap = e
				break
			}
		}
		if time.Now().After(deadline) || sent > 200_000 {
			t.Fatalf("after %d questions, no mapping of %d MiB or more eligible for huge pages:\n%s", sent, prepared>>20, flagged(t, pid))
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

// smapsEntry is a mapping of /proc/PID/smaps: its range and VmFlags.
type smapsEntry struct {
	start, end uint64
	flags      map[string]bool
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
			fmt.Fprintf(&b, "%x-%x %d MiB hg=%v nh=%v\n", e.start, e.end, (e.end-e.start)>>20, e.flags["hg"], e.flags["nh"])
		}
	}
	return b.String()
}
