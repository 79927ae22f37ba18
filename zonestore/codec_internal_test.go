package zonestore

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/miekg/dns"
)

// TestNamesSharesAddresses: the addresses of A and AAAA records move into
// shared blocks unchanged, each capped so that an append to one does not
// write over the next.
func TestNamesSharesAddresses(t *testing.T) {
	var in names
	var rrs []dns.RR
	for i := range 600 { // more than one block
		rrs = append(rrs,
			mustNewRR(t, fmt.Sprintf("h%d.example. 300 IN A 10.0.%d.%d", i, i>>8, i&255)),
			mustNewRR(t, fmt.Sprintf("h%d.example. 300 IN AAAA 2001:db8::%x", i, i)))
	}
	want := make([]string, len(rrs))
	for i, rr := range rrs {
		want[i] = rr.String()
	}
	for i := 0; i < len(rrs); i += 2 {
		in.node(rrs[i : i+2])
	}
	for i, rr := range rrs {
		if got := rr.String(); got != want[i] {
			t.Fatalf("record %d is %q after, %q before", i, got, want[i])
		}
		var ip []byte
		switch r := rr.(type) {
		case *dns.A:
			ip = r.A
		case *dns.AAAA:
			ip = r.AAAA
		}
		if cap(ip) != len(ip) {
			t.Fatalf("record %d: address of %d bytes with room for %d", i, len(ip), cap(ip))
		}
	}
	// The first two addresses are next to each other in one block.
	a, aaaa := rrs[0].(*dns.A).A, rrs[1].(*dns.AAAA).AAAA
	if uintptr(unsafe.Pointer(unsafe.SliceData(aaaa)))-uintptr(unsafe.Pointer(unsafe.SliceData(a))) != uintptr(len(a)) {
		t.Fatal("the addresses of a name's A and AAAA records are not in one block")
	}
	if a, ok := rrs[0].(*dns.A); ok {
		_ = append(a.A, 0xff) // copies: the next address stays
	}
	if got := rrs[1].String(); got != want[1] {
		t.Fatalf("an append to an address changed the next record: %q", got)
	}
}
