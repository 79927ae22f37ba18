package zonestore

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/miekg/dns"
)

// TestNamesSharesAddresses: the addresses of A and AAAA records are read
// into shared blocks unchanged, each capped so that an append to one does not
// write over the next.
func TestNamesSharesAddresses(t *testing.T) {
	var in names
	var rrs, written []dns.RR
	for i := range 600 { // more than one block
		written = append(written,
			mustNewRR(t, fmt.Sprintf("h%d.example. 300 IN A 10.0.%d.%d", i, i>>8, i&255)),
			mustNewRR(t, fmt.Sprintf("h%d.example. 300 IN AAAA 2001:db8::%x", i, i)))
	}
	want := make([]string, len(written))
	for i, rr := range written {
		want[i] = rr.String()
	}
	for i := 0; i < len(written); i += 2 { // a name's records, as the store keeps them
		v, err := appendFresh(nil, written[i:i+2])
		if err != nil {
			t.Fatal(err)
		}
		if rrs, err = decodeRRs(rrs, v, &in); err != nil {
			t.Fatal(err)
		}
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

// decodeBoth decodes v with names and with dns.UnpackRR alone, and fails
// the test when they disagree: on the records, or on whether v is whole.
func decodeBoth(t *testing.T, in *names, v []byte) []dns.RR {
	t.Helper()
	want, wantErr := decodeRRs(nil, v, nil)
	got, err := decodeRRs(nil, v, in)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%x: error %v, UnpackRR's %v", v, err, wantErr)
	}
	if len(got) != len(want) {
		t.Fatalf("%x: %d records, UnpackRR %d", v, len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("%x: record %d is %#v, UnpackRR's %#v", v, i, got[i], want[i])
		}
	}
	return got
}

// TestDecodeAsUnpackRR: the records decoded with names are those UnpackRR
// gives, of the types decoded by hand and the others, whatever the names
// hold (escapes, case, the root, wildcards); data that ends where it
// should not is refused as UnpackRR refuses it.
func TestDecodeAsUnpackRR(t *testing.T) {
	records := []string{
		"Www.Example. 300 IN A 192.0.2.1",
		"example. 0 IN AAAA 2001:db8::1",
		"example. 3600 IN NS ns1.example.net.",
		"example. 3600 IN NS .",
		"*.example. 60 IN CNAME target.example.",
		`a\\b.example. 60 IN CNAME t\.x.example.`,
		"a\\.b.example. 60 IN PTR x\\032y.example.",
		`a\"b.example. 60 IN DNAME \(x\).example.`,
		`x\000y.example. 60 IN NS a\255.example.`,
		"_sip._tcp.example. 60 IN SRV 0 5 5060 sip.example.",
		"example. 60 IN MX 10 mail.example.",
		"example. 60 IN MX 0 .",
		"example. 3600 IN SOA ns1.example.net. hostmaster.example.net. 2026120501 7200 900 1209600 300",
		"example. 60 IN TXT \"v=spf1 -all\" \"two\"",
		"example. 60 IN TXT \"\"",
		"example. 60 IN TXT \"\" \"x y;z\" \"\"",
		`example. 60 IN TXT "a\"b" "c\\d" "e\009f" "\255"`,
		"example. 60 CH A 192.0.2.9",
		"example. 60 IN TYPE65280 \\# 3 010203",
		"example. 60 IN RRSIG A 13 1 60 20270101000000 20260101000000 12345 Example. AAAA",
		"x.example. 60 IN A",
		"x.example. 60 IN NS",
	}
	// A name of 255 octets, the most there may be.
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61) + "."
	records = append(records, long+" 60 IN NS "+long, long+" 60 IN MX 1 "+long)
	var in names
	for _, text := range records {
		rr, err := dns.NewRR(text)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		v, err := appendFresh(nil, []dns.RR{rr})
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		got := decodeBoth(t, &in, v)
		if len(got) != 1 || got[0].String() != rr.String() {
			t.Fatalf("%s: read back as %v", text, got)
		}
		// Each shorter or longer copy of the data is refused, or read, as
		// UnpackRR does it.
		for cut := range len(v) {
			decodeBoth(t, &in, v[:cut])
		}
		decodeBoth(t, &in, append(v[:len(v):len(v)], 0))
	}
	// Names read before are the same strings: the owner of each record of
	// a name, and a name in the data.
	v, err := appendFresh(nil, []dns.RR{mustNewRR(t, "x.example. 60 IN NS ns.example."),
		mustNewRR(t, "x.example. 60 IN MX 1 ns.example.")})
	if err != nil {
		t.Fatal(err)
	}
	rrs := decodeBoth(t, &in, v)
	ns, mx := rrs[0].(*dns.NS), rrs[1].(*dns.MX)
	if unsafe.StringData(ns.Hdr.Name) != unsafe.StringData(mx.Hdr.Name) || unsafe.StringData(ns.Ns) != unsafe.StringData(mx.Mx) {
		t.Fatal("the names of a name's records are not one string each")
	}
	// A compression pointer (not written by this store, read all the same).
	ptr, err := hex.DecodeString("076578616d706c6500" + "0002000100000e10" + "0002" + "c000")
	if err != nil {
		t.Fatal(err)
	}
	rrs = decodeBoth(t, &in, ptr)
	if len(rrs) != 1 || rrs[0].(*dns.NS).Ns != "example." {
		t.Fatalf("compressed record read as %v", rrs)
	}
}

// TestDecodeAllocations: counted first, the records of a zone of the
// common types come from one allocation per type, and a name read before
// costs none: 12 records, 7 allocations (5 types, and the TXT record's
// bytes and its list of strings).
func TestDecodeAllocations(t *testing.T) {
	var recs []dns.RR
	for i := range 6 {
		recs = append(recs, mustNewRR(t, fmt.Sprintf("www.example. 60 IN A 192.0.2.%d", i)))
	}
	recs = append(recs, mustNewRR(t, "www.example. 60 IN AAAA 2001:db8::1"),
		mustNewRR(t, "www.example. 60 IN AAAA 2001:db8::2"),
		mustNewRR(t, "www.example. 60 IN NS ns1.example.net."),
		mustNewRR(t, "www.example. 60 IN NS ns2.example.net."),
		mustNewRR(t, "www.example. 60 IN MX 10 mail.example."),
		mustNewRR(t, "www.example. 60 IN TXT \"v=spf1 -all\""))
	v, err := appendFresh(nil, recs)
	if err != nil {
		t.Fatal(err)
	}
	var in names
	rrs := make([]dns.RR, 0, len(recs))
	read := func() {
		in.count(v)
		in.reserve()
		if rrs, err = decodeRRs(rrs[:0], v, &in); err != nil {
			t.Fatal(err)
		}
	}
	read()
	for i, rr := range rrs {
		if rr.String() != recs[i].String() {
			t.Fatalf("record %d read as %s, written as %s", i, rr, recs[i])
		}
	}
	// One array: each A record next to the one before.
	for i := 1; i < 6; i++ {
		if uintptr(unsafe.Pointer(rrs[i].(*dns.A)))-uintptr(unsafe.Pointer(rrs[i-1].(*dns.A))) != unsafe.Sizeof(dns.A{}) {
			t.Fatalf("A records %d and %d are not next to each other", i-1, i)
		}
	}
	if allocs := testing.AllocsPerRun(100, read); allocs > 7.1 {
		t.Fatalf("%.1f allocations for %d records of 5 types", allocs, len(recs))
	}
	// More records than counted: each of the others has its own.
	in.reserve()
	if rrs, err = decodeRRs(rrs[:0], v, &in); err != nil {
		t.Fatal(err)
	}
	for i, rr := range rrs {
		if rr.String() != recs[i].String() {
			t.Fatalf("uncounted record %d read as %s, written as %s", i, rr, recs[i])
		}
	}
}

// FuzzDecode: names decodes whatever bytes it is given as dns.UnpackRR
// does: the same records, and an error for the same inputs.
func FuzzDecode(f *testing.F) {
	for _, text := range []string{
		"example. 3600 IN SOA ns1.example.net. hostmaster.example.net. 1 7200 900 1209600 300",
		"www.example. 60 IN A 192.0.2.1", "www.example. 60 IN AAAA 2001:db8::1",
		"example. 60 IN MX 10 mail.example.", "*.example. 60 IN CNAME a\\.b.example.",
		"example. 60 IN TXT \"x\"",
	} {
		rr, err := dns.NewRR(text)
		if err != nil {
			f.Fatal(err)
		}
		v, err := appendFresh(nil, []dns.RR{rr})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		if len(v) > 4096 {
			return
		}
		decodeBoth(t, &names{}, v)
	})
}
