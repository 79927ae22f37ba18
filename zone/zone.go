// Package zone holds the immutable in-memory form of a DNS zone: a name tree
// in canonical order in which every name that exists (including empty
// non-terminals) is a real node. A Zone is built once, validated, and then
// only read, so it can be shared by any number of goroutines and swapped
// atomically by its owner.
package zone

import (
	"bytes"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// RRset is the records of one owner and type. All records share the TTL.
type RRset struct {
	Type uint16
	TTL  uint32
	RRs  []dns.RR
	// Sigs holds the RRSIG records covering this type, if the zone is signed.
	Sigs []dns.RR
}

// Node is one name of the zone. Nodes with no RRsets are empty
// non-terminals: they exist (RFC 4592 §2.2.2) and are answered NODATA.
type Node struct {
	Name   string // lower-case, fully qualified presentation form
	Key    string // lower-case wire form
	Parent *Node
	RRsets []RRset // sorted by type; no RRSIG set of its own (see RRset.Sigs)

	// Wildcard is the "*" child of this node, if any.
	Wildcard *Node
	// Cut is the highest delegation point at or above this node (excluding
	// the apex), or nil when the node is authoritative data.
	Cut *Node
	// DNAME is the nearest node at or above this one that owns a DNAME.
	DNAME *Node
}

// Get returns the RRset of type t, or nil.
func (n *Node) Get(t uint16) *RRset {
	for i := range n.RRsets {
		if n.RRsets[i].Type == t {
			return &n.RRsets[i]
		}
	}
	return nil
}

// Empty reports whether the node is an empty non-terminal.
func (n *Node) Empty() bool { return len(n.RRsets) == 0 }

// IsCut reports whether the node is a delegation point.
func (n *Node) IsCut() bool { return n.Cut == n }

// Zone is an immutable, validated zone.
type Zone struct {
	Origin string // lower-case, fully qualified
	Key    string // wire form of Origin
	Apex   *Node
	SOA    *dns.SOA

	nodes  map[string]*Node
	sorted []*Node  // canonical order, apex first
	ckeys  [][]byte // CanonicalKey of each node of sorted
	count  int      // number of resource records

	// nsecAt holds the indexes in sorted of the nodes that own an NSEC
	// RRset, in canonical order: the NSEC chain.
	nsecAt []int32
	// nsec3 holds the owners of NSEC3 records, which are kept out of the
	// name tree (RFC 5155 §7.2.8: they do not exist as names), sorted by
	// their hash label; nsec3h holds those labels, lower-cased.
	nsec3  []*Node
	nsec3h []string
}

// Serial returns the zone's SOA serial.
func (z *Zone) Serial() uint32 { return z.SOA.Serial }

// Len returns the number of resource records in the zone.
func (z *Zone) Len() int { return z.count }

// Names returns the number of nodes, including empty non-terminals.
func (z *Zone) Names() int { return len(z.sorted) }

// Lookup returns the node for an exact wire-format key.
func (z *Zone) Lookup(key string) *Node { return z.nodes[key] }

// Find descends towards key, which must be at or below the apex, and
// returns the deepest existing node on the way (the closest encloser)
// and whether it is key itself.
func (z *Zone) Find(key string) (n *Node, exact bool) {
	if n = z.nodes[key]; n != nil {
		return n, true
	}
	for {
		p, ok := ParentKey(key)
		if !ok {
			return z.Apex, false
		}
		if n = z.nodes[p]; n != nil {
			return n, false
		}
		key = p
	}
}

// FindBytes is Find for a wire name held in a byte slice; it does not
// allocate.
func (z *Zone) FindBytes(key []byte) (n *Node, exact bool) {
	if n = z.nodes[string(key)]; n != nil {
		return n, true
	}
	for len(key) > 1 {
		key = key[1+int(key[0]):]
		if n = z.nodes[string(key)]; n != nil {
			return n, false
		}
	}
	return z.Apex, false
}

// Prev returns the last node in canonical order that sorts before key (the
// owner of the NSEC record that covers key), wrapping to the last node.
func (z *Zone) Prev(key string) *Node {
	ck := CanonicalKey(key)
	i := sort.Search(len(z.sorted), func(i int) bool {
		return bytes.Compare(z.ckeys[i], ck) >= 0
	})
	if i == 0 {
		return z.sorted[len(z.sorted)-1]
	}
	return z.sorted[i-1]
}

// Walk calls fn for each node in canonical order until fn returns false.
func (z *Zone) Walk(fn func(*Node) bool) {
	for _, n := range z.sorted {
		if !fn(n) {
			return
		}
	}
}

// WalkCanonical is Walk that also gives each node's CanonicalKey, which
// the caller must not modify.
func (z *Zone) WalkCanonical(fn func(ck []byte, n *Node) bool) {
	for i, n := range z.sorted {
		if !fn(z.ckeys[i], n) {
			return
		}
	}
}

// WalkAll is WalkCanonical over every owner of records, the owners of
// NSEC3 records included, merged in canonical order.
func (z *Zone) WalkAll(fn func(ck []byte, n *Node) bool) {
	j := 0
	var ck3 []byte
	for i, n := range z.sorted {
		for j < len(z.nsec3) {
			if ck3 == nil {
				ck3 = CanonicalKey(z.nsec3[j].Key)
			}
			if bytes.Compare(ck3, z.ckeys[i]) >= 0 {
				break
			}
			if !fn(ck3, z.nsec3[j]) {
				return
			}
			j, ck3 = j+1, nil
		}
		if !fn(z.ckeys[i], n) {
			return
		}
	}
	for ; j < len(z.nsec3); j++ {
		if !fn(CanonicalKey(z.nsec3[j].Key), z.nsec3[j]) {
			return
		}
	}
}

// Records returns every record of the zone in canonical order, the SOA first.
func (z *Zone) Records() []dns.RR {
	out := make([]dns.RR, 0, z.count)
	z.WalkAll(func(_ []byte, n *Node) bool {
		for _, set := range n.RRsets {
			out = append(out, set.RRs...)
			out = append(out, set.Sigs...)
		}
		return true
	})
	return out
}

// LookupAny is Lookup that also finds the owners of NSEC3 records.
func (z *Zone) LookupAny(key string) *Node {
	if n := z.nodes[key]; n != nil {
		return n
	}
	if p, ok := ParentKey(key); ok && p == z.Key && len(z.nsec3) > 0 {
		h := strings.ToLower(key[1 : 1+int(key[0])])
		if i, ok := slices.BinarySearch(z.nsec3h, h); ok {
			return z.nsec3[i]
		}
	}
	return nil
}

// Signed reports whether the zone holds a DNSKEY RRset at its apex and
// an NSEC or NSEC3 chain: whether denial of existence can be proven.
func (z *Zone) Signed() bool {
	return z.Apex.Get(dns.TypeDNSKEY) != nil && (len(z.nsecAt) > 0 || len(z.nsec3) > 0)
}

// CoveringNSEC returns the node whose NSEC record covers or matches key:
// the last owner of an NSEC in canonical order at or before key, wrapping
// to the last one. It returns nil when the zone has no NSEC chain.
func (z *Zone) CoveringNSEC(key string) *Node {
	if len(z.nsecAt) == 0 {
		return nil
	}
	ck := CanonicalKey(key)
	i := sort.Search(len(z.nsecAt), func(i int) bool {
		return bytes.Compare(z.ckeys[z.nsecAt[i]], ck) > 0
	})
	if i == 0 {
		i = len(z.nsecAt)
	}
	return z.sorted[z.nsecAt[i-1]]
}

// NSEC3Nodes returns the owners of the zone's NSEC3 records in hash order.
// The slice must not be modified.
func (z *Zone) NSEC3Nodes() []*Node { return z.nsec3 }

// FindNSEC3 returns the NSEC3 owner whose hash equals hash (matching), or
// else the one that covers it: the last in hash order before it, wrapping
// around. hash is the base32hex hash label in either case. It returns nil
// when the zone has no NSEC3 records.
func (z *Zone) FindNSEC3(hash string) (n *Node, match bool) {
	if len(z.nsec3) == 0 {
		return nil, false
	}
	h := strings.ToLower(hash)
	i, ok := slices.BinarySearch(z.nsec3h, h)
	if ok {
		return z.nsec3[i], true
	}
	if i == 0 {
		i = len(z.nsec3)
	}
	return z.nsec3[i-1], false
}

func sortRRsets(sets []RRset) {
	slices.SortFunc(sets, func(a, b RRset) int {
		// SOA first at the apex keeps exports conventional; the rest by type.
		switch {
		case a.Type == b.Type:
			return 0
		case a.Type == dns.TypeSOA:
			return -1
		case b.Type == dns.TypeSOA:
			return 1
		case a.Type < b.Type:
			return -1
		}
		return 1
	})
}
