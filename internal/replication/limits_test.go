package replication

import (
	"testing"

	"github.com/miekg/dns"
)

// TestTransfersOutBounded: beyond MaxTransfersOut at once a transfer is
// refused, and a slot that frees up serves the next one.
func TestTransfersOutBounded(t *testing.T) {
	h := newPrimaryHarness(t, Config{Policy: func(string) Policy { return Policy{AllowTransfer: loopbackACL(keyXfr)} }}, primaryZone)
	h.start(false)
	for range MaxTransfersOut {
		h.node.xfrOut <- struct{}{} // transfers under way
	}
	if _, err := xfrIn(t, h.addr, "example.", dns.TypeAXFR, 0, keyXfr); xfrRcode(err) != dns.RcodeRefused {
		t.Fatalf("transfer beyond the limit: %v, want REFUSED", err)
	}
	<-h.node.xfrOut
	msgs, err := xfrIn(t, h.addr, "example.", dns.TypeAXFR, 0, keyXfr)
	if err != nil || len(flattenMsgs(msgs)) == 0 {
		t.Fatalf("transfer with a free slot: %d messages, %v", len(msgs), err)
	}
}
