package zonestore

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

func groupStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "zones.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Import(groupZone(t), false); err != nil {
		t.Fatal(err)
	}
	return s
}

// groupZone is a zone of three records at serial 10.
func groupZone(t *testing.T) *zone.Zone {
	t.Helper()
	var rrs []dns.RR
	for _, text := range []string{
		"example. 3600 IN SOA ns1.example. hostmaster.example. 10 7200 900 1209600 300",
		"example. 3600 IN NS ns1.example.",
		"ns1.example. 3600 IN A 192.0.2.53",
	} {
		rr, err := dns.NewRR(text)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	z, err := zone.Build("example.", rrs)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// waitingEdits returns the number of edits of origin waiting for a group.
func waitingEdits(s *Store, origin string) int {
	s.groups.mu.Lock()
	defer s.groups.mu.Unlock()
	if g := s.groups.zones[origin]; g != nil {
		return len(g.waiting)
	}
	return 0
}

// TestGroupCommit holds one edit of a zone in the middle of its commit,
// lets others arrive meanwhile, and checks that they are committed as one
// group: one serial step and one journal entry for all of them, each
// caller told of its own outcome, a failing edit leaving the others in.
func TestGroupCommit(t *testing.T) {
	s := groupStore(t)
	release := make(chan struct{})
	entered := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := s.As("first").UpdateFunc("example.", func(*zone.Zone) (Change, error) {
			close(entered)
			<-release
			rr, _ := dns.NewRR("first.example. 300 IN A 192.0.2.1")
			return Change{Add: []dns.RR{rr}}, nil
		})
		first <- err
	}()
	<-entered

	const n = 12
	type outcome struct {
		i   int
		res PutResult
		err error
	}
	out := make(chan outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c Change
			if i == 5 { // deletes what is not there: refused alone
				rr, _ := dns.NewRR("missing.example. 300 IN A 192.0.2.9")
				c.Delete = []Deletion{{RR: rr}}
			} else {
				rr, _ := dns.NewRR(fmt.Sprintf("h%d.example. 300 IN A 192.0.2.%d", i, 10+i))
				c.Add = []dns.RR{rr}
			}
			res, err := s.As(fmt.Sprintf("editor%d", i)).Update("example.", c)
			out <- outcome{i, res, err}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for waitingEdits(s, "example.") < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d edits waiting", waitingEdits(s, "example."))
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(out)
	var serial uint32
	for o := range out {
		if o.i == 5 {
			if !errors.Is(o.err, ErrNotFound) {
				t.Errorf("edit 5: %v, want ErrNotFound", o.err)
			}
			continue
		}
		if o.err != nil {
			t.Errorf("edit %d: %v", o.i, o.err)
			continue
		}
		if serial != 0 && o.res.Serial != serial {
			t.Errorf("edit %d committed at serial %d, another of its group at %d", o.i, o.res.Serial, serial)
		}
		serial = o.res.Serial
	}
	if serial != 12 {
		t.Errorf("group committed at serial %d, want 12 (one step after the first edit's 11)", serial)
	}
	z, err := s.Load("example.")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		k, _ := zone.WireKey(fmt.Sprintf("h%d.example.", i))
		if got := z.Lookup(k) != nil; got != (i != 5) {
			t.Errorf("h%d present: %v", i, got)
		}
	}
	h, err := s.History("example.", 10)
	if err != nil {
		t.Fatal(err)
	}
	// Import, the first edit, the group.
	if len(h) != 3 {
		t.Fatalf("%d journal entries, want 3", len(h))
	}
	g := h[len(h)-1] // oldest first
	if len(g.Added) != n-1 || g.To.Serial != 12 || g.FromSerial() != 11 || strings.Count(g.Author, "editor") != n-1 {
		t.Errorf("group entry: %d added, serial %d to %d, by %q", len(g.Added), g.FromSerial(), g.To.Serial, g.Author)
	}
	// The store read again from the file holds the same zone.
	s.mu.Lock()
	delete(s.cache, "example.")
	s.mu.Unlock()
	z2, err := s.Load("example.")
	if err != nil {
		t.Fatal(err)
	}
	if z2.Len() != z.Len() || z2.Serial() != z.Serial() {
		t.Errorf("read back: %d records serial %d, committed %d serial %d", z2.Len(), z2.Serial(), z.Len(), z.Serial())
	}
}
