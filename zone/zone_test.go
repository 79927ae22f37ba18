package zone_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// walkNames returns the zone's node names in Walk order.
func walkNames(z *zone.Zone) []string {
	var out []string
	z.Walk(func(n *zone.Node) bool {
		out = append(out, n.Name)
		return true
	})
	return out
}

// TestWalkCanonicalOrder builds a zone of the RFC 4034 §6.1 example names
// and checks that Walk visits them in that order.
func TestWalkCanonicalOrder(t *testing.T) {
	var b strings.Builder
	b.WriteString("$ORIGIN example.\n@ 3600 IN SOA ns.example.net. h.example.net. 1 2 3 4 5\n@ 3600 IN NS ns.example.net.\n")
	// Add them in reverse, so the order must come from sorting.
	for _, name := range slices.Backward(rfc4034Order) {
		if name == "example." {
			continue
		}
		fmt.Fprintf(&b, "%s 3600 IN TXT %q\n", name, name)
	}
	z := build(t, "example.", b.String())
	want := make([]string, len(rfc4034Order))
	for i, n := range rfc4034Order {
		want[i] = strings.ToLower(n)
	}
	if got := walkNames(z); !slices.Equal(got, want) {
		t.Errorf("Walk order\n%q\nwant\n%q", got, want)
	}
	var stopped int
	z.Walk(func(*zone.Node) bool { stopped++; return stopped < 3 })
	if stopped != 3 {
		t.Errorf("Walk went on after fn returned false: %d calls", stopped)
	}
	// Records follow the same order, the SOA first.
	var owners []string
	for _, rr := range z.Records() {
		if o := rr.Header().Name; len(owners) == 0 || owners[len(owners)-1] != o {
			owners = append(owners, o)
		}
	}
	if !slices.Equal(owners, want) {
		t.Errorf("Records owner order\n%q\nwant\n%q", owners, want)
	}
}

const lookupZone = apex + `
www        IN A    192.0.2.1
a.b.c      IN A    192.0.2.2
*.w        IN TXT  "wild"
sub        IN NS   ns.example.net.
`

func TestFind(t *testing.T) {
	z := build(t, "example.", lookupZone)
	tests := []struct {
		name      string
		qname     string
		wantNode  string
		wantExact bool
	}{
		{name: "apex", qname: "example.", wantNode: "example.", wantExact: true},
		{name: "exact", qname: "www.example.", wantNode: "www.example.", wantExact: true},
		{name: "upper-case query name", qname: "WWW.Example.", wantNode: "www.example.", wantExact: true},
		{name: "below a leaf", qname: "x.www.example.", wantNode: "www.example."},
		{name: "missing child of the apex", qname: "nope.example.", wantNode: "example."},
		{name: "empty non-terminal exact", qname: "b.c.example.", wantNode: "b.c.example.", wantExact: true},
		{name: "below an empty non-terminal", qname: "x.c.example.", wantNode: "c.example."},
		{name: "deep below", qname: "1.2.3.a.b.c.example.", wantNode: "a.b.c.example."},
		{name: "wildcard itself", qname: "*.w.example.", wantNode: "*.w.example.", wantExact: true},
		{name: "covered by a wildcard", qname: "x.w.example.", wantNode: "w.example."},
		{name: "below a cut", qname: "x.sub.example.", wantNode: "sub.example."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := key(t, tc.qname)
			n, exact := z.Find(k)
			if n.Name != tc.wantNode || exact != tc.wantExact {
				t.Errorf("Find(%s) = %s, %v; want %s, %v", tc.qname, n.Name, exact, tc.wantNode, tc.wantExact)
			}
			nb, exactb := z.FindBytes([]byte(k))
			if nb != n || exactb != exact {
				t.Errorf("FindBytes(%s) = %s, %v; Find gave %s, %v", tc.qname, nb.Name, exactb, n.Name, exact)
			}
			if got := z.Lookup(k); (got != nil) != tc.wantExact {
				t.Errorf("Lookup(%s) = %v, want found=%v", tc.qname, got, tc.wantExact)
			}
		})
	}
}

func TestFindBytesAllocs(t *testing.T) {
	z := build(t, "example.", lookupZone)
	k := []byte(key(t, "x.y.a.b.c.example."))
	allocs := testing.AllocsPerRun(100, func() {
		if n, _ := z.FindBytes(k); n == nil {
			t.Fatal("nil node")
		}
	})
	if allocs != 0 {
		t.Errorf("FindBytes allocates %v times per call", allocs)
	}
}

func TestPrev(t *testing.T) {
	z := build(t, "example.", lookupZone)
	// Empty non-terminals take their place in canonical order.
	wantOrder := []string{
		"example.", "c.example.", "b.c.example.", "a.b.c.example.", "ns1.example.",
		"sub.example.", "w.example.", "*.w.example.", "www.example.",
	}
	if got := walkNames(z); !slices.Equal(got, wantOrder) {
		t.Fatalf("order %q, want %q", got, wantOrder)
	}
	tests := []struct {
		name  string
		qname string
		want  string
	}{
		{name: "before the first child wraps to the apex", qname: "a.example.", want: "example."},
		{name: "existing name gives its predecessor", qname: "www.example.", want: "*.w.example."},
		{name: "between two names", qname: "d.example.", want: "a.b.c.example."},
		{name: "after the last wraps to the last", qname: "zzz.example.", want: "www.example."},
		{name: "the apex itself wraps", qname: "example.", want: "www.example."},
		{name: "below a name", qname: "x.www.example.", want: "www.example."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := z.Prev(key(t, tc.qname)).Name; got != tc.want {
				t.Errorf("Prev(%s) = %s, want %s", tc.qname, got, tc.want)
			}
		})
	}
}

func TestNodeGet(t *testing.T) {
	z := build(t, "example.", lookupZone)
	n := node(t, z, "www.example.")
	if set := n.Get(dns.TypeA); set == nil || len(set.RRs()) != 1 || set.TTL != 3600 {
		t.Errorf("Get(A) = %+v", set)
	}
	if set := n.Get(dns.TypeAAAA); set != nil {
		t.Errorf("Get(AAAA) = %+v, want nil", set)
	}
	if n.RRsets0() != dns.TypeA {
		t.Errorf("RRsets0() = %d", n.RRsets0())
	}
	if e := node(t, z, "c.example."); e.RRsets0() != 0 || !e.Empty() {
		t.Errorf("empty non-terminal: RRsets0() = %d, Empty() = %v", e.RRsets0(), e.Empty())
	}
}
