package zone

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/zonetest"
)

// smallText is a zone of origin example. with names names besides the
// apex's: hosts, one of them under an empty non-terminal, a wildcard and a
// delegation with glue.
func smallText(names int) string {
	var b strings.Builder
	b.WriteString("$ORIGIN example.\n$TTL 300\n@ SOA ns1 h 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n")
	b.WriteString("*.w A 192.0.2.2\nsub NS ns.sub\nns.sub A 192.0.2.3\nx.ent AAAA 2001:db8::1\n")
	for i := range names {
		fmt.Fprintf(&b, "h%d A 192.0.2.%d\n", i, i%250+4)
	}
	return b.String()
}

func buildSmallText(t *testing.T, names int) *Zone {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(smallText(names)), "", "")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	z, err := Build("example.", rrs)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// large returns z with its names in the large form (a hash map and a
// B-tree) whatever their number.
func large(z *Zone) *Zone {
	c := &Zone{Origin: z.Origin, Key: z.Key, Apex: z.Apex, SOA: z.SOA, nsec: z.nsec, nsec3: z.nsec3, count: z.count}
	nodes, order := z.index()
	c.nodes, c.order = nodes.done(), order
	return c
}

func names(walk func(func(*Node) bool)) []string {
	var out []string
	walk(func(n *Node) bool { out = append(out, n.Name); return true })
	return out
}

// TestSmallFormMatchesLarge: a zone in the small form answers every search
// as the same zone in the large form does: found and missing names, their
// closest enclosers, and the walks in canonical order from any place.
func TestSmallFormMatchesLarge(t *testing.T) {
	probes := []string{"example.", "h0.example.", "h7.example.", "zz.example.", "a.example.", "ent.example.",
		"x.ent.example.", "y.x.ent.example.", "q.w.example.", "w.example.", "ns.sub.example.", "deep.ns.sub.example.",
		"sub.example.", "0.example.", "\\000.example.", "h10.example.", "h1.example."}
	for _, n := range []int{0, 3, smallNames - 8, smallNames + 4} {
		z := buildSmallText(t, n)
		if small := z.Names() <= smallNames; small != (z.small != nil) {
			t.Fatalf("%d names: small form %v", z.Names(), z.small != nil)
		}
		big := large(z)
		if !slices.Equal(names(z.Walk), names(big.Walk)) || !slices.Equal(names(z.Reverse), names(big.Reverse)) {
			t.Fatalf("%d names: walks differ: %v, %v", z.Names(), names(z.Walk), names(big.Walk))
		}
		if z.Names() != big.Names() {
			t.Errorf("Names %d, %d", z.Names(), big.Names())
		}
		for _, p := range probes {
			k, err := WireKey(p)
			if err != nil {
				t.Fatal(err)
			}
			if z.Lookup(k) != big.Lookup(k) {
				t.Errorf("%d names, Lookup(%s) differs", z.Names(), p)
			}
			n1, e1 := z.Find(k)
			n2, e2 := big.Find(k)
			n3, e3 := z.FindBytes([]byte(k))
			if n1 != n2 || e1 != e2 || n3 != n1 || e3 != e1 {
				t.Errorf("%d names, Find(%s): %s %v, %s %v, bytes %s %v", z.Names(), p, n1.Name, e1, n2.Name, e2, n3.Name, e3)
			}
			if z.Prev(k) != big.Prev(k) {
				t.Errorf("%d names, Prev(%s): %s, %s", z.Names(), p, z.Prev(k).Name, big.Prev(k).Name)
			}
			for what, f := range map[string]func(*Zone) []string{
				"Before": func(x *Zone) []string { return names(func(fn func(*Node) bool) { x.Before(k, fn) }) },
				"After":  func(x *Zone) []string { return names(func(fn func(*Node) bool) { x.After(k, fn) }) },
				"Below":  func(x *Zone) []string { return names(func(fn func(*Node) bool) { x.Below(k, fn) }) },
			} {
				if a, b := f(z), f(big); !slices.Equal(a, b) {
					t.Errorf("%d names, %s(%s): %v, want %v", z.Names(), what, p, a, b)
				}
			}
		}
	}
}

// TestApplyAcrossSmallForm: a change that takes a zone past smallNames
// gives the large form, one that brings it back the small form, and each
// version is the zone Build makes of the same records.
func TestApplyAcrossSmallForm(t *testing.T) {
	z := buildSmallText(t, 2)
	if z.small == nil {
		t.Fatalf("%d names in the large form", z.Names())
	}
	add := map[string][]dns.RR{}
	for i := 2; i < smallNames+2; i++ {
		rr, err := dns.NewRR(fmt.Sprintf("h%d.example. 300 IN A 192.0.2.%d", i, i%250+4))
		if err != nil {
			t.Fatal(err)
		}
		add[rr.Header().Name] = []dns.RR{rr}
	}
	grown, err := Apply(z, keyed(t, add))
	if err != nil {
		t.Fatal(err)
	}
	if grown.small != nil || grown.Names() <= smallNames {
		t.Fatalf("grown to %d names, small form %v", grown.Names(), grown.small != nil)
	}
	same(t, grown, buildSmallText(t, smallNames+2))
	del := map[string][]dns.RR{}
	for name := range add {
		del[name] = nil
	}
	shrunk, err := Apply(grown, keyed(t, del))
	if err != nil {
		t.Fatal(err)
	}
	if shrunk.small == nil {
		t.Fatalf("shrunk to %d names, in the large form", shrunk.Names())
	}
	same(t, shrunk, z)
	if _, ok := shrunk.Find(mustKey(t, "h5.example.")); ok {
		t.Error("a deleted name is still found")
	}
}

func keyed(t *testing.T, byName map[string][]dns.RR) map[string][]dns.RR {
	out := make(map[string][]dns.RR, len(byName))
	for name, rrs := range byName {
		out[mustKey(t, name)] = rrs
	}
	return out
}

func mustKey(t *testing.T, name string) string {
	t.Helper()
	k, err := WireKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// same fails unless a and b hold the same names and records in the same
// order.
func same(t *testing.T, a, b *Zone) {
	t.Helper()
	ra, rb := a.Records(), b.Records()
	if len(ra) != len(rb) || a.Names() != b.Names() {
		t.Fatalf("%d records and %d names, want %d and %d", len(ra), a.Names(), len(rb), b.Names())
	}
	for i := range ra {
		if ra[i].String() != rb[i].String() {
			t.Fatalf("record %d: %s, want %s", i, ra[i], rb[i])
		}
	}
	if !slices.Equal(names(a.Walk), names(b.Walk)) {
		t.Fatalf("names %v, want %v", names(a.Walk), names(b.Walk))
	}
}

// TestSmallZoneKeysOneString: a node of a small zone holds its wire key
// and its canonical key as one string, their values those of WireKey and
// canonicalString of its name, and the nodes' strings are parts of one;
// the zone's key is its apex's.
func TestSmallZoneKeysOneString(t *testing.T) {
	z := buildSmallText(t, 3)
	if z.small == nil {
		t.Fatal("not in the small form")
	}
	if unsafe.StringData(z.Key) != unsafe.StringData(z.Apex.Key) {
		t.Error("the zone's key is not its apex's")
	}
	z.Walk(func(n *Node) bool {
		key, err := WireKey(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		if n.Key != key || n.ck != canonicalString(key) {
			t.Errorf("%s: keys %x and %x, want %x and %x", n.Name, n.Key, n.ck, key, canonicalString(key))
		}
		if unsafe.Add(unsafe.Pointer(unsafe.StringData(n.Key)), len(n.Key)) != unsafe.Pointer(unsafe.StringData(n.ck)) {
			t.Errorf("%s: the keys are two strings", n.Name)
		}
		return true
	})
	// One string: the keys cover the bytes from the first to the last
	// exactly, each once.
	lo, hi, total := ^uintptr(0), uintptr(0), uintptr(0)
	for _, n := range z.small {
		start := uintptr(unsafe.Pointer(unsafe.StringData(n.Key)))
		lo, hi = min(lo, start), max(hi, start+uintptr(len(n.Key)+len(n.ck)))
		total += uintptr(len(n.Key) + len(n.ck))
	}
	if hi-lo != total {
		t.Errorf("the nodes' keys span %d bytes, %d of keys: not one string", hi-lo, total)
	}
}

// BenchmarkSmallZoneFind is the search a query makes in a small zone (an
// owner, a name below one, a missing name), in the small form and in the
// large one.
func BenchmarkSmallZoneFind(b *testing.B) {
	zp := dns.NewZoneParser(strings.NewReader(zonetest.Institution(7)), "", "")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	z, err := Build("z7.gov.test.", rrs)
	if err != nil {
		b.Fatal(err)
	}
	var keys [][]byte
	for _, name := range []string{"www.z7.gov.test.", "vpn.z7.gov.test.", "a.b.api.z7.gov.test.", "nothing.z7.gov.test."} {
		k, err := WireKey(name)
		if err != nil {
			b.Fatal(err)
		}
		keys = append(keys, []byte(k))
	}
	for _, form := range []struct {
		name string
		z    *Zone
	}{{"small", z}, {"large", large(z)}} {
		b.Run(form.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if n, _ := form.z.FindBytes(keys[i%len(keys)]); n == nil {
					b.Fatal("not found")
				}
			}
		})
	}
}
