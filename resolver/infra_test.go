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
	if got := in.srtt[dead]; got != 4*time.Second {
		t.Fatalf("after 3 failures the dead server is charged %v, want 4s (doubling from 1s)", got)
	}
	for range 20 {
		in.failed(dead, time.Second)
	}
	if got := in.srtt[dead]; got != maxBackoff {
		t.Fatalf("backoff %v, want the cap %v", got, maxBackoff)
	}
	order := in.order([]server{dead, fresh, good})
	if order[0] != good || order[1] != fresh || order[2] != dead {
		t.Fatalf("order %v, want known-good, untried, dead", order)
	}
}
