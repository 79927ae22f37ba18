package resolver

import (
	"net/netip"
	"testing"
	"time"
)

func TestInfraBackoffAndOrder(t *testing.T) {
	in := newInfra(time.Second)
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
	in := newInfra(time.Second)
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

// The retransmission timeout follows RFC 6298: the first answer sets SRTT
// to its RTT and RTTVAR to half of it, later ones smooth them with gains
// 1/8 and 1/4; RTO = SRTT + 4×RTTVAR within [minRTO, maxRTO]; a timeout
// doubles it up to maxRTO and the next answer sets it from the estimate
// again.
func TestInfraRTO(t *testing.T) {
	const ms = time.Millisecond
	type step struct {
		rtt     time.Duration // an answer in rtt; 0: a timeout
		srtt    time.Duration // the estimate after the step
		rttvar  time.Duration
		timeout time.Duration // the wait for the next query
	}
	tests := []struct {
		name   string
		maxRTO time.Duration
		steps  []step
	}{
		{"first sample", time.Second, []step{
			{rtt: 100 * ms, srtt: 100 * ms, rttvar: 50 * ms, timeout: 300 * ms},
		}},
		{"smoothing", time.Second, []step{
			{rtt: 100 * ms, srtt: 100 * ms, rttvar: 50 * ms, timeout: 300 * ms},
			// rttvar = (3×50 + |100−20|)/4 = 57.5; srtt = (7×100 + 20)/8 = 90
			{rtt: 20 * ms, srtt: 90 * ms, rttvar: 57500 * time.Microsecond, timeout: 320 * ms},
			// rttvar = (3×57.5 + |90−90|)/4 = 43.125; srtt = 90
			{rtt: 90 * ms, srtt: 90 * ms, rttvar: 43125 * time.Microsecond, timeout: 262500 * time.Microsecond},
		}},
		{"floor", time.Second, []step{
			{rtt: 2 * ms, srtt: 2 * ms, rttvar: ms, timeout: minRTO},
			{rtt: 2 * ms, srtt: 2 * ms, rttvar: 750 * time.Microsecond, timeout: minRTO},
		}},
		{"cap", time.Second, []step{
			{rtt: 800 * ms, srtt: 800 * ms, rttvar: 400 * ms, timeout: time.Second},
		}},
		{"cap below the floor", 20 * ms, []step{
			{rtt: 2 * ms, srtt: 2 * ms, rttvar: ms, timeout: 20 * ms},
		}},
		{"backoff and reset", time.Second, []step{
			{rtt: 2 * ms, srtt: 2 * ms, rttvar: ms, timeout: minRTO},
			{srtt: 2 * ms, rttvar: ms, timeout: 2 * minRTO}, // doubled from the floor
			{srtt: 2 * ms, rttvar: ms, timeout: 4 * minRTO},
			{srtt: 2 * ms, rttvar: ms, timeout: 8 * minRTO},
			{srtt: 2 * ms, rttvar: ms, timeout: 16 * minRTO},
			{srtt: 2 * ms, rttvar: ms, timeout: time.Second}, // capped
			{srtt: 2 * ms, rttvar: ms, timeout: time.Second},
			// an answer ends the backoff: rttvar (3×1 + 0)/4
			{rtt: 2 * ms, srtt: 2 * ms, rttvar: 750 * time.Microsecond, timeout: minRTO},
		}},
		{"timeouts before any answer", time.Second, []step{
			{timeout: 2 * initialRTO},
			{timeout: time.Second},
			{rtt: 10 * ms, srtt: 10 * ms, rttvar: 5 * ms, timeout: minRTO},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := newInfra(tc.maxRTO)
			s := netip.MustParseAddrPort("192.0.2.1:53")
			if got, _ := in.timeout(s); got != min(initialRTO, tc.maxRTO) {
				t.Fatalf("untried: timeout %v, want %v", got, min(initialRTO, tc.maxRTO))
			}
			for i, st := range tc.steps {
				if st.rtt > 0 {
					in.observe(s, st.rtt)
				} else {
					_, answers := in.timeout(s)
					if !in.timedOut(s, answers) {
						t.Fatalf("step %d: a timeout with no answer since did not count", i)
					}
					in.failed(s, time.Second)
				}
				h := in.host(s)
				if h.est.srtt != st.srtt || h.est.rttvar != st.rttvar {
					t.Errorf("step %d: srtt %v rttvar %v, want %v %v", i, h.est.srtt, h.est.rttvar, st.srtt, st.rttvar)
				}
				if got, _ := in.timeout(s); got != st.timeout {
					t.Errorf("step %d: timeout %v, want %v", i, got, st.timeout)
				}
			}
		})
	}
}

// A useless answer ranks its server behind the others but leaves its
// timeout as measured; failures rank it further back without touching
// the RTT estimate.
func TestInfraDemoteKeepsTimeout(t *testing.T) {
	in := newInfra(time.Second)
	s := netip.MustParseAddrPort("192.0.2.1:53")
	in.observe(s, 10*time.Millisecond)
	in.demote(s, 2*time.Second)
	in.failed(s, 2*time.Second)
	if got, _ := in.timeout(s); got != minRTO {
		t.Fatalf("timeout %v, want %v", got, minRTO)
	}
	if got := in.host(s).srtt; got < time.Second {
		t.Fatalf("ranking RTT %v, want it charged", got)
	}
}

func BenchmarkInfraObserveTimeout(b *testing.B) {
	in := newInfra(time.Second)
	s := netip.MustParseAddrPort("192.0.2.1:53")
	b.ReportAllocs()
	for i := range b.N {
		in.observe(s, time.Duration(i%50)*time.Millisecond)
		_, _ = in.timeout(s)
	}
}

// A timeout counts against a server only if the server answered nothing
// since the query went: one that answers other queries meanwhile lost
// this one (a burst it could not take) and is neither backed off nor
// taken down, however many such losses come.
func TestInfraLossFromALiveServer(t *testing.T) {
	in := newInfra(time.Second)
	s := netip.MustParseAddrPort("192.0.2.1:53")
	in.observe(s, 2*time.Millisecond)
	var tickets []uint64
	for range 3 * downAfter { // a burst of queries, sent together
		_, a := in.timeout(s)
		tickets = append(tickets, a)
	}
	in.observe(s, 2*time.Millisecond) // one of the burst answered
	for i, a := range tickets {
		if in.timedOut(s, a) {
			t.Fatalf("loss %d counted against a server that answered meanwhile", i)
		}
	}
	if got, _ := in.timeout(s); got != minRTO {
		t.Fatalf("timeout %v after losses, want %v", got, minRTO)
	}
	if in.down(s) || in.skip(s) {
		t.Fatal("a live server is down after losses")
	}
	// Silence after the last answer counts.
	for i := range downAfter {
		_, a := in.timeout(s)
		if !in.timedOut(s, a) {
			t.Fatalf("timeout %d of a silent server did not count", i)
		}
		in.failed(s, time.Second)
	}
	if !in.down(s) {
		t.Fatal("a silent server is not down")
	}
}
