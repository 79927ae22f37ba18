package zone_test

import (
	"slices"
	"strconv"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// minimal returns a valid zone at origin with nothing but SOA and NS.
func minimal(t testing.TB, origin string, serial int) *zone.Zone {
	t.Helper()
	text := "$ORIGIN " + origin + "\n@ 3600 IN SOA ns.example.net. h.example.net. " +
		strconv.Itoa(serial) + " 7200 900 1209600 300\n@ 3600 IN NS ns.example.net.\n"
	return build(t, origin, text)
}

func TestSetMatch(t *testing.T) {
	parent := build(t, "example.", apex+"child IN NS ns.example.net.\nchild IN DS 12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE1ABD5D6D5B3F2E6B1B2D6E2A\n")
	child := minimal(t, "child.example.", 1)
	grandchild := minimal(t, "deep.child.example.", 1)
	orphan := minimal(t, "orphan.example.net.", 1) // its parent is not held
	root := minimal(t, ".", 1)

	tests := []struct {
		name  string
		set   *zone.Set
		qname string
		qtype uint16
		want  *zone.Zone
	}{
		{name: "apex", set: zone.NewSet(parent, child), qname: "example.", qtype: dns.TypeSOA, want: parent},
		{name: "name in the parent", set: zone.NewSet(parent, child), qname: "www.example.", qtype: dns.TypeA, want: parent},
		{name: "longest match wins", set: zone.NewSet(parent, child), qname: "www.child.example.", qtype: dns.TypeA, want: child},
		{name: "child apex", set: zone.NewSet(parent, child), qname: "child.example.", qtype: dns.TypeA, want: child},
		{name: "child apex NS from the child", set: zone.NewSet(parent, child), qname: "child.example.", qtype: dns.TypeNS, want: child},
		{name: "DS at the child apex from the parent", set: zone.NewSet(parent, child), qname: "child.example.", qtype: dns.TypeDS, want: parent},
		{name: "DS below the child apex from the child", set: zone.NewSet(parent, child), qname: "www.child.example.", qtype: dns.TypeDS, want: child},
		{name: "DS at the child apex, child only", set: zone.NewSet(child), qname: "child.example.", qtype: dns.TypeDS, want: child},
		{name: "DS skips only one level", set: zone.NewSet(parent, child, grandchild), qname: "deep.child.example.", qtype: dns.TypeDS, want: child},
		{name: "DS at an apex whose parent is not held", set: zone.NewSet(parent, orphan), qname: "orphan.example.net.", qtype: dns.TypeDS, want: orphan},
		{name: "DS at the root zone apex", set: zone.NewSet(root, parent), qname: ".", qtype: dns.TypeDS, want: root},
		{name: "DS at a TLD apex from the root", set: zone.NewSet(root, parent), qname: "example.", qtype: dns.TypeDS, want: root},
		{name: "not held", set: zone.NewSet(parent, child), qname: "www.example.com.", qtype: dns.TypeA, want: nil},
		{name: "parent of a held zone is not held", set: zone.NewSet(child), qname: "example.", qtype: dns.TypeA, want: nil},
		{name: "root zone holds everything", set: zone.NewSet(root, parent), qname: "www.example.org.", qtype: dns.TypeA, want: root},
		{name: "empty set", set: zone.NewSet(), qname: "example.", qtype: dns.TypeA, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.set.Match([]byte(key(t, tc.qname)), tc.qtype)
			if got != tc.want {
				t.Errorf("Match(%s, %s) = %v, want %v", tc.qname, dns.Type(tc.qtype), origin(got), origin(tc.want))
			}
		})
	}
}

func origin(z *zone.Zone) string {
	if z == nil {
		return "<nil>"
	}
	return z.Origin
}

func TestSetMatchAllocs(t *testing.T) {
	s := zone.NewSet(minimal(t, "example.", 1), minimal(t, "child.example.", 1))
	k := []byte(key(t, "a.b.c.child.example."))
	ds := []byte(key(t, "child.example."))
	allocs := testing.AllocsPerRun(100, func() {
		if s.Match(k, dns.TypeA) == nil || s.Match(ds, dns.TypeDS) == nil {
			t.Fatal("no match")
		}
	})
	if allocs != 0 {
		t.Errorf("Match allocates %v times per call", allocs)
	}
}

func TestSetWithWithout(t *testing.T) {
	a1 := minimal(t, "example.", 1)
	a2 := minimal(t, "example.", 2)
	b := minimal(t, "example.net.", 1)
	c := minimal(t, "a.example.", 1)

	s := zone.NewSet(a1, b, a2) // a later zone with the same origin wins
	if s.Len() != 2 || s.Get(a1.Key) != a2 {
		t.Fatalf("NewSet: Len %d, example. serial %d; want 2 zones and serial 2", s.Len(), s.Get(a1.Key).Serial())
	}
	s2 := s.With(c)
	if s.Len() != 2 || s.Get(c.Key) != nil {
		t.Error("With changed the original set")
	}
	if s2.Len() != 3 || s2.Get(c.Key) != c {
		t.Errorf("With: Len %d", s2.Len())
	}
	s3 := s2.With(a1)
	if s3.Get(a1.Key) != a1 || s2.Get(a1.Key) != a2 {
		t.Error("With did not replace the zone in the copy only")
	}
	s4 := s3.Without(b.Key)
	if s4.Len() != 2 || s4.Get(b.Key) != nil || s3.Get(b.Key) != b {
		t.Error("Without did not remove the zone from the copy only")
	}
	if s5 := s4.Without("\x07missing\x00"); s5.Len() != 2 {
		t.Error("Without of a missing zone changed the set")
	}
	var empty zone.Set
	if got := empty.With(c); got.Len() != 1 || got.Get(c.Key) != c {
		t.Error("With on a zero Set")
	}

	var origins []string
	for _, z := range s3.Zones() {
		origins = append(origins, z.Origin)
	}
	if want := []string{"example.", "a.example.", "example.net."}; !slices.Equal(origins, want) {
		t.Errorf("Zones() order %q, want %q", origins, want)
	}
}
