package resolver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestAppendEntryMsg: the message appendEntryMsg writes from an entry's
// bytes unpacks to the records, sections, class and TTL that decoding
// the entry and packing the records gives, whatever the owners (the
// entry's name, others, runs of one), the types, and the message's size
// (owners past a compression pointer's reach are written whole).
func TestAppendEntryMsg(t *testing.T) {
	rr := func(s string) dns.RR {
		t.Helper()
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	rrs := func(lines ...string) []dns.RR {
		out := make([]dns.RR, len(lines))
		for i, l := range lines {
			out[i] = rr(l)
		}
		return out
	}
	var big []string // 40 KiB of records: owners past 16 KiB, in runs of two
	for i := range 400 {
		owner := fmt.Sprintf("o%d.example.", i/2)
		big = append(big, owner+" 300 IN TXT \""+strings.Repeat("x", 80)+"\"")
	}
	var bigName []string // the entry's own name throughout
	for range 300 {
		bigName = append(bigName, "big.example. 300 IN TXT \""+strings.Repeat("y", 100)+"\"")
	}
	tests := []struct {
		name     string
		entry    string
		rrs      []dns.RR
		nAns     uint16
		nNs      uint16
		wantSize int // 0: any
	}{
		{name: "one address", entry: "www.example.", rrs: rrs("www.example. 60 IN A 192.0.2.1"), nAns: 1},
		{name: "two addresses", entry: "www.example.", rrs: rrs("www.example. 60 IN A 192.0.2.1", "www.example. 60 IN A 192.0.2.2"), nAns: 2},
		{name: "a CNAME chain", entry: "a.example.", rrs: rrs(
			"a.example. 60 IN CNAME b.example.org.",
			"b.example.org. 60 IN CNAME c.example.net.",
			"c.example.net. 60 IN AAAA 2001:db8::1",
			"c.example.net. 60 IN AAAA 2001:db8::2"), nAns: 4},
		{name: "referral with glue", entry: "zone.example.", rrs: rrs(
			"zone.example. 60 IN NS ns1.zone.example.",
			"zone.example. 60 IN NS ns2.zone.example.",
			"ns1.zone.example. 60 IN A 192.0.2.53",
			"ns1.zone.example. 60 IN AAAA 2001:db8::53",
			"ns2.zone.example. 60 IN A 192.0.2.54"), nAns: 0, nNs: 2},
		{name: "signed NXDOMAIN", entry: "nx.example.", rrs: rrs(
			"example. 60 IN SOA ns.example. host.example. 1 7200 900 1209600 60",
			"example. 60 IN RRSIG SOA 13 1 60 20300101000000 20200101000000 12345 example. AAAA",
			"m.example. 60 IN NSEC z.example. A RRSIG NSEC",
			"m.example. 60 IN RRSIG NSEC 13 2 60 20300101000000 20200101000000 12345 example. AAAA"), nNs: 4},
		{name: "an escaped name", entry: `a\.b\000.example.`, rrs: rrs(`a\.b\000.example. 60 IN A 192.0.2.9`, `x\.y.example. 60 IN TXT "t"`), nAns: 1},
		{name: "other owners past 16 KiB", entry: "o0.example.", rrs: rrs(big...), nAns: 400},
		{name: "its own name past 16 KiB", entry: "big.example.", rrs: rrs(bigName...), nAns: 300},
		{name: "counts over the records", entry: "www.example.", rrs: rrs("www.example. 60 IN A 192.0.2.1"), nAns: 3, nNs: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := encodeEntry(tc.entry, tc.rrs)
			if !ok {
				t.Fatal("encodeEntry failed")
			}
			const ttl = 1234
			decoded, err := decodeRecords(nil, d, ttl)
			if err != nil {
				t.Fatal(err)
			}
			answer, ns, extra := sections(decoded, tc.nAns, tc.nNs)
			want := &dns.Msg{Compress: true, Answer: answer, Ns: ns, Extra: extra}
			wantWire, err := want.Pack()
			if err != nil {
				t.Fatal(err)
			}
			prefix := []byte("kept")
			b, ok := appendEntryMsg(prefix, d, tc.nAns, tc.nNs, ttl)
			if !ok {
				t.Fatal("appendEntryMsg refused the entry")
			}
			if string(b[:4]) != "kept" {
				t.Fatal("the bytes before the message changed")
			}
			var got, exp dns.Msg
			if err := got.Unpack(b[4:]); err != nil {
				t.Fatalf("the message does not unpack: %v", err)
			}
			if err := exp.Unpack(wantWire); err != nil {
				t.Fatal(err)
			}
			if got.MsgHdr != exp.MsgHdr || len(got.Question) != 0 {
				t.Errorf("header %+v, question %v; want %+v and none", got.MsgHdr, got.Question, exp.MsgHdr)
			}
			for _, sec := range []struct {
				name      string
				got, want []dns.RR
			}{{"answer", got.Answer, exp.Answer}, {"authority", got.Ns, exp.Ns}, {"additional", got.Extra, exp.Extra}} {
				if len(sec.got) != len(sec.want) {
					t.Fatalf("%s: %d records, want %d", sec.name, len(sec.got), len(sec.want))
				}
				for i := range sec.got {
					if g, w := sec.got[i].String(), sec.want[i].String(); g != w {
						t.Errorf("%s %d: %s, want %s", sec.name, i, g, w)
					}
				}
			}
			// Compressed owners: no more than a tenth over the packer's
			// (which also compresses names in the data).
			t.Logf("%d bytes, the packer's %d", len(b)-4, len(wantWire))
			if len(b)-4 > len(wantWire)+len(wantWire)/10 {
				t.Errorf("%d bytes, the packer's %d", len(b)-4, len(wantWire))
			}
		})
	}
	// A first record marked as the previous record's owner has the
	// entry's name, as decodeRecords reads it.
	first := append(appendEntryName(nil, "first.example."), ownerPrev, 0, 1, 0, 4, 192, 0, 2, 1)
	var fm dns.Msg
	if b, ok := appendEntryMsg(nil, first, 1, 0, 60); !ok {
		t.Error("a first record marked ownerPrev is refused")
	} else if err := fm.Unpack(b); err != nil || len(fm.Answer) != 1 || fm.Answer[0].Header().Name != "first.example." {
		t.Errorf("a first record marked ownerPrev: %v %v", fm.Answer, err)
	}
	// Bytes that are not an entry's leave b as it was.
	d, _ := encodeEntry("www.example.", rrs("www.example. 60 IN A 192.0.2.1"))
	for cut := len(d) - 1; cut > len(d)-8; cut-- {
		if b, ok := appendEntryMsg([]byte("kept"), d[:cut], 1, 0, 60); ok || string(b) != "kept" {
			t.Errorf("cut at %d: ok %v, %q", cut, ok, b)
		}
	}
}

// BenchmarkExportHeld exports the entries a stream of misses leaves (an
// answer of one address, as the message and as the RRset), as the cache
// file's writer does: the message built from the entry's bytes.
func BenchmarkExportHeld(b *testing.B) {
	c := NewCache(CacheConfig{MaxBytes: 256 << 20})
	c.TrackChanges()
	for i := range 10_000 {
		c.Put(benchMsg(fmt.Sprintf("h%d.bench-tld.", i), i))
	}
	held := c.TakeChanges(nil).Held
	buf := make([]byte, 0, 4096)
	now := c.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, ok := c.ExportHeldInto(held[i%len(held)], buf, now); !ok {
			b.Fatal("not exported")
		}
	}
}
