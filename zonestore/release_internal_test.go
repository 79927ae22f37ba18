package zonestore

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestReleaseAfterCommits: commits that come together are followed by one
// release of the file's mapped pages, and a store closed meanwhile makes
// none.
func TestReleaseAfterCommits(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "zones.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.releaseDelay = 50 * time.Millisecond
	if _, err := s.Import(groupZone(t), false); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		rr, _ := dns.NewRR(fmt.Sprintf("r%d.example. 300 IN A 192.0.2.%d", i, i+1))
		if _, err := s.Update("example.", Change{Add: []dns.RR{rr}}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return s.releases.Load() >= 1 })
	// Another commit, then the store closes before its release is due.
	s.releaseDelay = time.Hour
	rr, _ := dns.NewRR("late.example. 300 IN A 192.0.2.99")
	if _, err := s.Update("example.", Change{Add: []dns.RR{rr}}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	due := s.releasing
	s.mu.Unlock()
	if !due {
		t.Fatal("no release due after a commit")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := s.releases.Load(); n > 2 {
		t.Errorf("%d releases for two groups of commits", n)
	}
}

// waitUntil waits up to ten seconds for cond.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
