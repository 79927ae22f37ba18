//go:build linux

package test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestResolverHeapHugePages: a resolver's heap is made ineligible for
// transparent huge pages at start, grows into memory faulted in ahead
// and, once the server has answered for a few seconds without its heap
// growing, is gathered into huge pages (Linux 6.1 and later) and left
// ineligible.
func TestResolverHeapHugePages(t *testing.T) {
	t.Parallel()
	enabled, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || bytes.Contains(enabled, []byte("[never]")) {
		t.Skipf("no transparent huge pages here: %q %v", enabled, err)
	}
	// A resolver whose only upstream is a local authoritative server with
	// a wildcard: each new name is a new answer in its cache. No rate
	// limit: the questions must keep it busy.
	auth := zoneServer(t, "rate_limit: {responses_per_second: 0}\n")
	s := startServer(t, serveOpts{config: fmt.Sprintf("log: {level: debug}\nresponse_cache_mb: 16\nrate_limit: {responses_per_second: 0}\n"+
		"resolver:\n  allow: [127.0.0.0/8]\n  cache_mb: 32\n  stub: [{zone: example.com., servers: [%q]}]\n", auth.dns)})
	pid := s.cmd.Process.Pid
	// The keeper's first word: none while the server starts.
	waitUntil(t, 30*time.Second, "a mapping made ineligible for huge pages at start",
		func() bool { return hasMapping(t, pid, func(e smapsEntry) bool { return e.flags["nh"] }) },
		func() string { return flagged(t, pid) })
	if !kernelAtLeast(t, 6, 1) {
		t.Skip("the kernel has no MADV_COLLAPSE (Linux 6.1): nothing is gathered")
	}

	// A heap to gather: new names, each a new answer in the caches
	// (bounded), then the same question again and again, the heap no
	// longer growing, until an ineligible mapping holds huge pages
	// (bounded).
	c := &dns.Client{Timeout: time.Second}
	fill := time.Now().Add(20 * time.Second)
	for i := 0; i < 30_000 && time.Now().Before(fill); i++ {
		m := newQuery(fmt.Sprintf("n%d.wild.example.com.", i), dns.TypeA)
		m.RecursionDesired = true
		_, _, _ = c.Exchange(m, s.dns)
	}
	// The heap grew into memory faulted in ahead (hugepage.Prefaulter,
	// Linux 5.14), logged once the growth has stopped for a second.
	prefaulted := regexp.MustCompile(`msg="heap memory faulted in ahead" bytes=[1-9]`)
	waitUntil(t, 30*time.Second, "the heap's growth faulted in ahead",
		func() bool { return prefaulted.MatchString(s.log.String()) },
		func() string { return s.log.String() })
	gathered := func(e smapsEntry) bool { return e.anonHuge > 0 && e.flags["nh"] && !e.flags["hg"] }
	q := newQuery("www.example.com.", dns.TypeA)
	q.RecursionDesired = true
	deadline := time.Now().Add(60 * time.Second)
	for sent := 0; ; sent++ {
		if sent%20 == 0 && hasMapping(t, pid, gathered) {
			break
		}
		if time.Now().After(deadline) || sent > 500_000 {
			t.Fatalf("after %d questions, no mapping ineligible for huge pages holds some:\n%s", sent, flagged(t, pid))
		}
		_, _, _ = c.Exchange(q, s.dns)
	}
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

// hasMapping reports whether an anonymous mapping of process pid is
// one that ok accepts.
func hasMapping(t *testing.T, pid int, ok func(smapsEntry) bool) bool {
	return slices.ContainsFunc(smaps(t, pid), ok)
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
