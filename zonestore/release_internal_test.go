package zonestore

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
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

// TestReleaseAfterEditsThatCommitNothing: an edit that changes nothing,
// or is refused, read the file all the same; its pages are given back as
// after a commit.
func TestReleaseAfterEditsThatCommitNothing(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "zones.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.releaseDelay = 10 * time.Millisecond
	rr, _ := dns.NewRR("r.example. 300 IN A 192.0.2.1")
	if _, err := s.Import(groupZone(t), false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update("example.", Change{Add: []dns.RR{rr}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return s.releases.Load() >= 1 })
	for _, c := range []Change{
		{Add: []dns.RR{rr}}, // there already
		{Delete: []Deletion{{Name: "none.example.", Type: dns.TypeA}}}, // nothing to delete
	} {
		before := s.releases.Load()
		if _, err := s.Update("example.", c); err == nil {
			t.Fatalf("%+v: no error", c)
		}
		waitUntil(t, func() bool { return s.releases.Load() > before })
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

// TestReleaseAfterBulkImport: a bulk import of many records leaves a
// release due that gives the heap back too, not one made at once (a
// command that imports and ends pays for none), and the release clears it.
func TestReleaseAfterBulkImport(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "zones.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.releaseDelay = time.Hour
	var zs []*zone.Zone
	for i := 0; i*4 < largeZone; i++ {
		origin := fmt.Sprintf("z%d.test.", i)
		zs = append(zs, buildText(t, "@ 300 IN SOA ns1 h 1 7200 900 1209600 300\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.1\nwww 300 IN A 192.0.2.2\n", origin))
	}
	for _, r := range s.ImportMany(zs, false, nil) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	s.mu.Lock()
	due, heap := s.releasing, s.releaseHeap
	s.mu.Unlock()
	if !due || !heap {
		t.Fatalf("after a bulk import: release due %v, with the heap %v", due, heap)
	}
	if n := s.releases.Load(); n != 0 {
		t.Fatalf("%d releases made at once", n)
	}
	// The release due is an hour away: one scheduled the same way with a
	// short delay gives the heap back and clears what was due.
	s.mu.Lock()
	s.releasing = false
	s.releaseDelay = 10 * time.Millisecond
	s.mu.Unlock()
	s.releaseSoon(false)
	waitUntil(t, func() bool { return s.releases.Load() == 1 })
	s.mu.Lock()
	heap = s.releaseHeap
	s.mu.Unlock()
	if heap {
		t.Error("the heap release is still due after the release")
	}
}

// TestReleaseAfterManyReads: zones read one by one (a secondary of many
// zones starting, before its first commit) leave a release of the file's
// pages due once there were manyTouched of them, and not before.
func TestReleaseAfterManyReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(groupZone(t), false); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openAt(t, path, Options{})
	s.releaseDelay = time.Hour
	due := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.releasing
	}
	if _, err := s.Load("example."); err != nil { // read from the file: one
		t.Fatal(err)
	}
	if got := s.touched.Load(); got != 1 || due() {
		t.Fatalf("after one zone read: %d reads counted, release due %v", got, due())
	}
	for range manyTouched - 2 {
		s.touchedOne()
	}
	if due() {
		t.Fatal("a release due before manyTouched reads")
	}
	s.touchedOne()
	if !due() || s.touched.Load() != 0 {
		t.Fatalf("after manyTouched reads: release due %v, %d reads counted", due(), s.touched.Load())
	}
}
