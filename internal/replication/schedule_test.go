package replication

import (
	"fmt"
	"net/netip"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/zone"
)

// runningSteps counts the goroutines that are in a worker's run.
func runningSteps(t *testing.T) int {
	t.Helper()
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		t.Fatal(err)
	}
	return strings.Count(b.String(), "(*secondaries).step(")
}

// TestScheduleManyZones: a node with many secondary zones transfers every
// one, never runs more than maxRuns workers at once, and keeps no
// goroutine per zone once they are current; a NOTIFY still brings one
// zone's new version at once, and an operator's check is answered.
func TestScheduleManyZones(t *testing.T) {
	const zones = 1500
	f := newFakePrimary(t, "")
	var secs []SecondaryZone
	origin := func(i int) string { return fmt.Sprintf("z%04d.example.", i) }
	text := func(o string, serial int) string {
		return fmt.Sprintf("$ORIGIN %s\n@ 300 SOA ns h %d 3600 600 86400 300\n@ 300 NS ns\nns 300 A 192.0.2.1\n", o, serial)
	}
	for i := range zones {
		o := origin(i)
		f.set(o, &fakeZone{versions: []*zone.Zone{buildZone(t, o, text(o, 1))}})
		secs = append(secs, SecondaryZone{Zone: o, Primaries: []Target{{Addr: f.addr}}})
	}
	base := runtime.NumGoroutine()
	tn := newTestNode(t, Config{Secondaries: secs})
	s := tn.n.secondary
	s.t.releaseRecords = zones // the first synchronisation brings 3 a zone
	tn.run(t)

	peak := 0
	waitFor(t, 60*time.Second, "every zone transferred", func() bool {
		peak = max(peak, runningSteps(t))
		n := 0
		tn.served.Range(func(_, v any) bool {
			if v.(uint32) == 1 {
				n++
			}
			return true
		})
		return n == zones
	})
	if peak == 0 {
		t.Fatal("no worker was ever seen running: the count of runs measures nothing")
	}
	if peak > maxRuns {
		t.Errorf("%d workers ran at once, more than %d", peak, maxRuns)
	}
	// Every zone current and due in an hour: the runs end, and what is
	// left is the node's own goroutines, not one per zone.
	waitFor(t, 10*time.Second, "the runs to end", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.runs == 0 && len(s.queue) == zones
	})
	if g := runtime.NumGoroutine() - base; g > zones/10 {
		t.Errorf("%d goroutines for %d current zones", g, zones)
	}
	// The first synchronisation over, its memory went back to the system.
	waitFor(t, 10*time.Second, "the memory given back", func() bool { return s.releases.Load() >= 1 })

	// A NOTIFY for one zone brings its new version at once, ahead of the
	// hour the others wait.
	o := origin(zones / 2)
	f.update(o, buildZone(t, o, text(o, 2)))
	req := new(dns.Msg)
	req.SetNotify(o)
	if r := tn.n.Notify(t.Context(), req, server.Peer{Addr: netip.AddrPortFrom(f.addr.Addr(), 999)}); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("NOTIFY: %v", r)
	}
	waitFor(t, 10*time.Second, "the transfer after NOTIFY", func() bool { return tn.serial(o) == 2 })

	// An operator's check of another zone is answered by its worker.
	o = origin(7)
	f.update(o, buildZone(t, o, text(o, 5)))
	res, err := tn.n.Refresh(t.Context(), o, false)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if res.OldSerial != 1 || res.Serial != 5 || res.Transfer == "" {
		t.Errorf("refresh found %+v, want serial 1 to 5 by a transfer", res)
	}
	if got := f.countFor("SOA", origin(8)); got != 1 {
		t.Errorf("a zone nobody asked about had %d SOA queries, want the 1 of its first check", got)
	}
}
