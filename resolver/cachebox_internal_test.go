package resolver

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net"
	"reflect"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// TestCopyRR checks that copyRR copies every record as dns.Copy does,
// sharing no memory with the original, address records included.
func TestCopyRR(t *testing.T) {
	parse := func(s string) dns.RR { return mustRR(t, s) }
	a4 := addressA4(t, "x.example. 300 IN A 192.0.2.1")
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

// addressA4 parses an A record and gives it a 4-octet address, as an
// upstream answer's are (dns.NewRR gives net.ParseIP's 16).
func addressA4(t testing.TB, s string) *dns.A {
	t.Helper()
	a := mustRR(t, s).(*dns.A)
	a.A = a.A.To4()
	return a
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

// TestEntryWire: an entry's bytes give back its records as they were
// stored (owners lower-cased, TTLs the one asked for), whatever their
// types and owners; recordsEnd finds where the first records end.
func TestEntryWire(t *testing.T) {
	parse := func(s string) dns.RR { return mustRR(t, s) }
	a4 := addressA4(t, "WWW.Example. 300 IN A 192.0.2.1")
	tests := []struct {
		name string
		rrs  []string
		rr   []dns.RR // added after rrs
	}{
		{name: "one A, 4 octets", rr: []dns.RR{a4}},
		{name: "A in 16 octets, AAAA", rrs: []string{"www.example. 300 IN A 192.0.2.1", "www.example. 300 IN AAAA 2001:db8::1"}},
		{name: "a CNAME chain and the zone's SOA", rrs: []string{
			"www.example. 300 IN CNAME Target.Example.NET.",
			"target.example.net. 60 IN A 192.0.2.2",
			"target.example.net. 60 IN A 192.0.2.3",
			"example.net. 60 IN SOA ns.example.net. host.example.net. 1 2 3 4 60"}},
		{name: "signed", rrs: []string{
			"www.example. 300 IN A 192.0.2.1",
			"www.example. 300 IN RRSIG A 8 2 300 20300101000000 20200101000000 12345 example. AwEAAcNEU67LJI5GHhhv2lUIJ9HxnCJA1ZgR//3Kg0wKfSdYLr6eAUhX7PH9A4QEiAY9y9J6Nc3OTUdaUHFRM3xvyoc8KTbOcSlqcr+9C98qR6Dx4NH7dLdVcmVhKPm5ZAmr59vebHB7hSzpHY/zNUwEw2X5CVrwTW4dN/mXC88zNmeI"}},
		{name: "other types", rrs: []string{
			`www.example. 300 IN TXT "a b" "c"`,
			"www.example. 300 IN MX 10 Mail.Example.",
			"_sip._udp.example. 300 IN SRV 1 2 5060 sip.example.",
			"example. 300 IN NS ns1.example.",
			"example. 300 IN DS 12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE2B0E8B29A8E4D7AE9FF7D4A5",
			"www.example. 300 IN TYPE65000 \\# 3 010203"}},
		{name: "escaped and root owners", rrs: []string{
			"a\\.b.example. 300 IN A 192.0.2.9",
			". 300 IN NS a.root-servers.net."}},
		{name: "empty address", rr: []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "www.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rrs []dns.RR
			for _, s := range tc.rrs {
				rrs = append(rrs, parse(s))
			}
			rrs = append(rrs, tc.rr...)
			data, ok := encodeEntry("www.example.", rrs)
			if !ok {
				t.Fatal("encodeEntry refused")
			}
			if entryName(data) != "www.example." {
				t.Fatalf("name %q", entryName(data))
			}
			got, err := decodeRecords(nil, data, 77)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(rrs) {
				t.Fatalf("%d records back, want %d", len(got), len(rrs))
			}
			for i, rr := range rrs {
				want := dns.Copy(rr)
				want.Header().Name = cacheName(want.Header().Name)
				want.Header().Ttl = 77
				if got[i].String() != want.String() {
					t.Errorf("record %d: %v, want %v", i, got[i], want)
				}
			}
			for n := range len(rrs) + 1 {
				end, ok := recordsEnd(data, n)
				if !ok {
					t.Fatalf("recordsEnd(%d) failed", n)
				}
				part, err := decodeRecords(nil, data[:end], 77)
				if err != nil || len(part) != n {
					t.Fatalf("first %d records: %d back, %v", n, len(part), err)
				}
			}
			if _, ok := recordsEnd(data, len(rrs)+1); ok {
				t.Fatal("recordsEnd found a record past the last")
			}
			// Damaged bytes give an error, never a panic.
			for i := 1 + len("www.example."); i < len(data); i++ {
				bad := slices.Clone(data)
				bad[i] ^= 0xff
				decodeRecords(nil, bad, 0)
				decodeRecords(nil, bad[:i], 0)
			}
		})
	}
}

// TestSlotChains: keys whose hashes collide share an index chain, and each
// is found, replaced and removed on its own.
func TestSlotChains(t *testing.T) {
	var tab slotTable
	tab.reset()
	names := []string{"a.example.", "b.example.", "c.example.", "d.example."}
	slots := map[string]int32{}
	for _, n := range names {
		data, _ := encodeEntry(n, nil)
		i := tab.add(slot{hash: keyHash(7, dns.TypeA, kindMsg), kind: kindMsg, qtype: dns.TypeA}, data, nil) // one name hash for all
		tab.link(lruHead, i)
		slots[n] = i
	}
	check := func(present ...string) {
		t.Helper()
		for _, n := range names {
			want := slices.Contains(present, n)
			i, ok := tab.find(7, n, dns.TypeA, kindMsg)
			if ok != want || (ok && i != slots[n]) {
				t.Fatalf("%s: slot %d found %v, want %v (slot %d)", n, i, ok, want, slots[n])
			}
		}
		if tab.n != len(present) {
			t.Fatalf("%d slots in use, want %d", tab.n, len(present))
		}
	}
	check(names...)
	tab.unlink(slots["b.example."])
	tab.drop(slots["b.example."]) // inside the chain
	check("a.example.", "c.example.", "d.example.")
	tab.unlink(slots["d.example."])
	tab.drop(slots["d.example."]) // its head
	check("a.example.", "c.example.")
	data, _ := encodeEntry("e.example.", nil)
	i := tab.add(slot{hash: keyHash(7, dns.TypeA, kindMsg), kind: kindMsg, qtype: dns.TypeA}, data, errors.New("why")) // reuses a freed slot
	if i != slots["d.example."] {
		t.Fatalf("new slot %d, want the freed %d", i, slots["d.example."])
	}
	if tab.why(i) == nil {
		t.Fatal("reason lost")
	}
	names = append(names, "e.example.")
	slots["e.example."] = i
	check("a.example.", "c.example.", "e.example.")
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
	scan := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
	runtime.GC()
	runtime.ReadMemStats(&before)
	metrics.Read(scan)
	scanBefore := scan[0].Value.Uint64()
	for _, m := range msgs {
		c.PutValidatedWithRRset(m, dnssec.Insecure, nil, 0, m.Answer, RankAnswer)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	metrics.Read(scan)
	scanned := (float64(scan[0].Value.Uint64()) - float64(scanBefore)) / names
	if st := c.Stats(); st.Entries != 2*names {
		t.Fatalf("%d entries, want %d", st.Entries, 2*names)
	}
	// A name's message and RRset share one byte slice, which holds no
	// pointer; the shards' slots and indexes are a few large objects.
	per := float64(after.HeapObjects-before.HeapObjects) / names
	t.Logf("%.2f heap objects per name", per)
	if per > 1.1 {
		t.Errorf("%.2f heap objects per name, want at most 1.1 (2.0 when entries were Go records, 4.5 before they were boxed)", per)
	}
	// What the collector scans of it: the slices of the entries' bytes
	// (a slice header an entry, room to grow included): 71 bytes a name.
	// As Go records, 391.
	t.Logf("%.0f scannable heap bytes per name", scanned)
	if scanned > 128 {
		t.Errorf("%.0f scannable heap bytes per name, want at most 128", scanned)
	}
	runtime.KeepAlive(msgs)
	runtime.KeepAlive(c)
}

// TestSlotHoldsNoPointer: the collector does not scan a shard's slots
// while no field of a slot is, or holds, a pointer.
func TestSlotHoldsNoPointer(t *testing.T) {
	typ := reflect.TypeFor[slot]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		switch f.Type.Kind() {
		case reflect.Bool, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			t.Errorf("slot.%s is a %s", f.Name, f.Type)
		}
	}
}

// TestBoxRRSIG: an RRSIG read by boxRRSIG equals the one
// dns.UnpackRRWithHeader reads, whatever its signer's name and its owner;
// plainRRSIG leaves to the latter the data boxRRSIG does not read.
func TestBoxRRSIG(t *testing.T) {
	sig := "MEUCIQDk3gXJ8b5YpJc0h3w8o0v3zJqYtq2V1n7o6n0kqCQm3wIgS0J3m0Hd9H3qk5z5m8m3x8V7Xh5Y8jV6m0h1y0m4J9w="
	tests := []struct {
		name          string
		owner, signer string
		sig           string
		plain         bool
	}{
		{"signer ends the owner", "www.example.", "example.", sig, true},
		{"signer is the owner", "example.", "example.", sig, true},
		{"root signer", "www.example.", ".", sig, true},
		{"root owner", ".", ".", sig, true},
		{"escaped dot in the owner", `a\.example.`, "example.", sig, true},
		{"owner in other case", "WWW.Example.", "example.", sig, true},
		{"signer elsewhere", "www.example.", "other.net.", sig, true},
		{"suffix, not at a label", "xexample.", "example.", sig, true},
		{"wildcard, hyphen, underscore", "*.a-b.example.", "_x.a-b.example.", sig, true},
		{"no signature", "www.example.", "example.", "", true},
		{"signer escaped", "www.example.", `a\(b.example.`, sig, false},
		{"signer with a space", "www.example.", `a\032b.example.`, sig, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rr := &dns.RRSIG{Hdr: dns.RR_Header{Name: tc.owner, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 300},
				TypeCovered: dns.TypeA, Algorithm: dns.ECDSAP256SHA256, Labels: 2, OrigTtl: 300,
				Expiration: 1893456000, Inception: 1577836800, KeyTag: 12345, SignerName: tc.signer, Signature: tc.sig}
			buf := make([]byte, 1024)
			end, err := dns.PackRR(rr, buf, 0, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			h := rr.Hdr
			h.Rdlength = rr.Hdr.Rdlength
			start := end - int(h.Rdlength)
			data := buf[start:end]
			if got := plainRRSIG(data); got != tc.plain {
				t.Fatalf("plainRRSIG = %v, want %v", got, tc.plain)
			}
			want, _, err := dns.UnpackRRWithHeader(h, buf[:end], start)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.plain {
				return
			}
			got := boxRRSIG(h, data)
			if !reflect.DeepEqual(got, want) || got.String() != want.String() {
				t.Errorf("boxRRSIG = %v\nwant       %v", got, want)
			}
			if plainRRSIG(data[:rrsigFixed]) || tc.signer != "." && plainRRSIG(data[:rrsigFixed+2]) {
				t.Error("plainRRSIG accepts data cut before or in the signer's name")
			}
		})
	}
	// Two allocations: the record, the signature's text (with the signer's
	// name when it does not end the owner's), whatever the name's length.
	for _, owner := range []string{"www.example.", "www.a-rather-long-zone-name.example-registry.gov.az."} {
		for _, signer := range []string{"example.", "a-rather-long-zone-name.example-registry.gov.az."} {
			rr := mustRR(t, owner+" 300 IN RRSIG A 13 2 300 20300101000000 20200101000000 12345 "+signer+" "+sig)
			buf := make([]byte, 1024)
			end, err := dns.PackRR(rr, buf, 0, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			h := *rr.Header()
			data := buf[end-int(h.Rdlength) : end]
			if n := testing.AllocsPerRun(100, func() { boxRRSIG(h, data) }); n > 2 {
				t.Errorf("owner %s, signer %s: %v allocations a record, want 2", owner, signer, n)
			}
		}
	}
}

// TestSlotTableGrows adds and drops keys at random, the index growing
// through many sizes, and checks it against a map: every key held is
// found in its slot, no other is, and every slot in use is in one chain.
func TestSlotTableGrows(t *testing.T) {
	var tab slotTable
	tab.reset()
	rng := rand.New(rand.NewPCG(3, 4))
	held := map[string]int32{}
	nameHash := func(n string) uint64 {
		if n[0] == 'c' {
			return 42 // a family of names whose hashes are all the same
		}
		return maphash.String(maphash.MakeSeed(), n)
	}
	hashes := map[string]uint64{}
	for step := range 20000 {
		n := fmt.Sprintf("%c%d.example.", "abc"[rng.IntN(3)], rng.IntN(3000))
		if _, ok := hashes[n]; !ok {
			hashes[n] = nameHash(n)
		}
		nh := hashes[n]
		if i, ok := held[n]; ok && rng.IntN(2) == 0 {
			tab.unlink(i)
			tab.drop(i)
			delete(held, n)
		} else if !ok {
			data, _ := encodeEntry(n, nil)
			i := tab.add(slot{hash: keyHash(nh, dns.TypeA, kindMsg), kind: kindMsg, qtype: dns.TypeA}, data, nil)
			tab.link(lruHead, i)
			held[n] = i
		}
		if step%1000 != 999 {
			continue
		}
		for n, nh := range hashes {
			i, ok := tab.find(nh, n, dns.TypeA, kindMsg)
			if want, has := held[n]; ok != has || ok && i != want {
				t.Fatalf("step %d: %s found in slot %d (%v), held in %d (%v)", step, n, i, ok, want, has)
			}
		}
		chained := 0
		for _, head := range tab.heads {
			for j := head; j != noSlot; j = tab.slots[j].chain {
				chained++
			}
		}
		if chained != len(held) || tab.n != len(held) || len(tab.heads) < tab.n {
			t.Fatalf("step %d: %d chained, %d in use, %d held, %d buckets", step, chained, tab.n, len(held), len(tab.heads))
		}
	}
}

// TestColocatedKeys: the keys a miss looks up together share their
// name's chain, and a name stored with every type still spreads over the
// table (its chain holds the colocated keys only), whatever the table's
// size.
func TestColocatedKeys(t *testing.T) {
	var tab slotTable
	tab.reset()
	const name = "many.example."
	nh := maphash.String(maphash.MakeSeed(), name)
	for qtype := range uint16(4096) {
		for _, kind := range []cacheEntryKind{kindMsg, kindRRset} {
			data, _ := encodeEntry(name, nil)
			tab.link(lruHead, tab.add(slot{hash: keyHash(nh, qtype, kind), kind: kind, qtype: qtype}, data, nil))
		}
	}
	data, _ := encodeEntry(name, nil)
	tab.link(lruHead, tab.add(slot{hash: keyHash(nh, 0, kindNX), kind: kindNX}, data, nil))

	b := tab.bucket(keyHash(nh, dns.TypeA, kindMsg))
	together := []struct {
		qtype uint16
		kind  cacheEntryKind
	}{
		{dns.TypeA, kindMsg}, {dns.TypeAAAA, kindMsg}, {dns.TypeCNAME, kindMsg}, {dns.TypeNS, kindMsg},
		{dns.TypeA, kindRRset}, {dns.TypeAAAA, kindRRset}, {dns.TypeCNAME, kindRRset}, {dns.TypeNS, kindRRset},
		{0, kindNX},
	}
	for _, k := range together {
		if got := tab.bucket(keyHash(nh, k.qtype, k.kind)); got != b {
			t.Errorf("type %d kind %d: bucket %d, want its name's %d", k.qtype, k.kind, got, b)
		}
		if _, ok := tab.find(nh, name, k.qtype, k.kind); !ok {
			t.Errorf("type %d kind %d: not found", k.qtype, k.kind)
		}
	}
	// All 8,193 keys are found, and no chain is longer than the name's
	// own keys and a few others.
	for qtype := range uint16(4096) {
		if _, ok := tab.find(nh, name, qtype, kindMsg); !ok {
			t.Fatalf("type %d: not found", qtype)
		}
	}
	longest := 0
	for _, head := range tab.heads {
		n := 0
		for j := head; j != noSlot; j = tab.slots[j].chain {
			n++
		}
		longest = max(longest, n)
	}
	if longest > len(together)+8 {
		t.Errorf("longest chain %d over %d buckets: a name's types pile up in one", longest, len(tab.heads))
	}
}
