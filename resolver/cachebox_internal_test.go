package resolver

import (
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// TestCopyRR checks that copyRR copies every record as dns.Copy does,
// sharing no memory with the original, address records included.
func TestCopyRR(t *testing.T) {
	parse := func(s string) dns.RR {
		t.Helper()
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return rr
	}
	// An upstream answer's addresses are 4 octets (copyRR's own case);
	// dns.NewRR gives net.ParseIP's 16.
	a4 := parse("x.example. 300 IN A 192.0.2.1").(*dns.A)
	a4.A = a4.A.To4()
	tests := []struct {
		name string
		rr   dns.RR
	}{
		{"A", a4},
		{"A in 16 octets", parse("x.example. 300 IN A 192.0.2.1")},
		{"AAAA", parse("x.example. 300 IN AAAA 2001:db8::1")},
		{"A without data", &dns.A{Hdr: dns.RR_Header{Name: "x.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}}},
		{"NS", parse("example. 300 IN NS ns.example.")},
		{"TXT", parse(`x.example. 300 IN TXT "a" "b"`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := dns.Copy(tc.rr) // what tc.rr holds before the copy is changed
			cp := copyRR(tc.rr)
			if cp == tc.rr {
				t.Fatal("the copy is the original")
			}
			if cp.String() != orig.String() || !dns.IsDuplicate(cp, orig) || *cp.Header() != *orig.Header() {
				t.Fatalf("copy %v, want %v", cp, orig)
			}
			// The address keeps its form (4 or 16 octets). Then every
			// address octet and the header of the copy are changed: the
			// original keeps its own.
			addr := address(cp)
			if want := len(address(orig)); len(addr) != want {
				t.Fatalf("address of %d octets, want %d", len(addr), want)
			}
			for i := range addr {
				addr[i] ^= 0xff
			}
			cp.Header().Ttl = 1
			if tc.rr.String() != orig.String() {
				t.Fatalf("original changed to %v by its copy", tc.rr)
			}
		})
	}
}

// address returns the address of an A or AAAA record, nil for others.
func address(rr dns.RR) net.IP {
	switch r := rr.(type) {
	case *dns.A:
		return r.A
	case *dns.AAAA:
		return r.AAAA
	}
	return nil
}

// TestNewEntry checks the room newEntry and newEntryPair give: empty, at
// least n records without a new array, and entries apart from each other
// and from the records' slots.
func TestNewEntry(t *testing.T) {
	rr := &dns.A{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeA, Class: dns.ClassINET}}
	for _, pair := range []bool{false, true} {
		for n := range 7 {
			var e, spare *cacheEntry
			var rrs []dns.RR
			if pair {
				e, spare, rrs = newEntryPair(n)
			} else {
				e, rrs = newEntry(n)
			}
			if e == nil || (pair && (spare == nil || spare == e)) || len(rrs) != 0 || cap(rrs) < n {
				t.Fatalf("pair %v, n %d: entry %p spare %p, len %d cap %d", pair, n, e, spare, len(rrs), cap(rrs))
			}
			before := cap(rrs)
			for range n {
				rrs = append(rrs, rr)
			}
			if n > 0 && cap(rrs) != before {
				t.Fatalf("pair %v, n %d: the records moved the slice", pair, n)
			}
			*e = cacheEntry{rrs: rrs, nAns: uint16(n), expire: 1}
			if spare != nil {
				*spare = cacheEntry{rrs: rrs[:min(n, 1)], expire: 2}
			}
			if e.expire != 1 || (spare != nil && spare.expire != 2) {
				t.Fatalf("pair %v, n %d: the entries overlap", pair, n)
			}
			for i, got := range e.rrs {
				if got != rr {
					t.Fatalf("pair %v, n %d: record %d is %v", pair, n, i, got)
				}
			}
		}
	}
}

// TestCacheObjectsPerName counts the heap objects a cache holds for each
// name it was told the address of (an answer of one A record, stored as
// the message and as the RRset, as the resolver stores an answer): the
// collector marks every one of them each time it runs.
func TestCacheObjectsPerName(t *testing.T) {
	if testing.Short() {
		t.Skip("heap count")
	}
	const names = 20000
	c := NewCache(CacheConfig{MaxBytes: 256 << 20, Now: time.Now})
	msgs := make([]*dns.Msg, names)
	for i := range msgs {
		name := "n" + strconv.Itoa(i) + ".example."
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.Response = true
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600},
			A: net.IPv4(192, 0, 2, byte(i)).To4()}}
		m.Extra = []dns.RR{&dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}}
		msgs[i] = m
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, m := range msgs {
		c.PutValidatedWithRRset(m, dnssec.Insecure, nil, 0, m.Answer, RankAnswer)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if st := c.Stats(); st.Entries != 2*names {
		t.Fatalf("%d entries, want %d", st.Entries, 2*names)
	}
	// The names' strings are the messages' (still live here), and so not
	// counted; the shards' maps are.
	per := float64(after.HeapObjects-before.HeapObjects) / names
	t.Logf("%.2f heap objects per name", per)
	if per > 2.5 {
		t.Errorf("%.2f heap objects per name, want at most 2.5 (4.5 when the entries, their records' slots, and an A record and its address were apart)", per)
	}
	runtime.KeepAlive(msgs)
	runtime.KeepAlive(c)
}
