package resolver

import (
	"net/netip"
	"testing"
	"time"
)

func TestInfraBackoffAndOrder(t *testing.T) {
	in := newInfra()
	good := netip.MustParseAddrPort("192.0.2.1:53")
	dead := netip.MustParseAddrPort("192.0.2.2:53")
	fresh := netip.MustParseAddrPort("192.0.2.3:53")
	in.observe(good, 10*time.Millisecond)
	for range 3 {
		in.failed(dead, time.Second)
	}
	if got := in.host(dead).srtt; got != 4*time.Second {
		t.Fatalf("after 3 failures the dead server is charged %v, want 4s (doubling from 1s)", got)
	}
	for range 20 {
		in.failed(dead, time.Second)
	}
	if got := in.host(dead).srtt; got != maxBackoff {
		t.Fatalf("backoff %v, want the cap %v", got, maxBackoff)
	}
	order := in.order([]server{dead, fresh, good})
	if order[0] != good || order[1] != fresh || order[2] != dead {
		t.Fatalf("order %v, want known-good, untried, dead", order)
	}
}

// A server that failed downAfter times in a row is skipped, but for one
// probe every probeEvery; an answer brings it back.
func TestInfraDownAndProbe(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := newInfra()
	in.now = func() time.Time { return now }
	s := netip.MustParseAddrPort("192.0.2.2:53")
	for i := range downAfter - 1 {
		in.failed(s, time.Second)
		if in.skip(s) {
			t.Fatalf("skipped after %d failures", i+1)
		}
	}
	in.failed(s, time.Second)
	steps := []struct {
		advance time.Duration
		skip    bool
	}{
		{0, true},
		{probeEvery - time.Millisecond, true},
		{time.Millisecond, false}, // the probe
		{0, true},                 // the next is skipped
		{probeEvery, false},       // the next probe
		{0, true},
		{-time.Hour, false}, // the clock set back: due at once
	}
	for i, st := range steps {
		now = now.Add(st.advance)
		if got := in.skip(s); got != st.skip {
			t.Fatalf("step %d (+%v): skip %v, want %v", i, st.advance, got, st.skip)
		}
	}
	in.observe(s, 10*time.Millisecond)
	if in.skip(s) || in.skip(s) {
		t.Fatal("skipped after it answered")
	}
}
