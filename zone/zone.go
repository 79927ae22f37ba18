// Package zone holds the immutable in-memory form of a DNS zone: a name tree
// in canonical order in which every name that exists (including empty
// non-terminals) is a real node. A Zone is built once, validated, and then
// only read, so it can be shared by any number of goroutines and swapped
// atomically by its owner.
package zone

import (
	"slices"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/miekg/dns"
	"github.com/tidwall/btree"
)

// RRset is the records of one owner and type. All records share the TTL.
//
// The records and the signatures over them are one list, the signatures
// last, so that an RRset takes 32 bytes (a small zone holds about 16 of
// them): RRs and Sigs return the two parts, All both.
type RRset struct {
	Type uint16
	nsig uint16 // the signatures at the end of rrs
	TTL  uint32
	rrs  []dns.RR
}

// RRs returns the records, which the caller must not modify; appending to
// the slice copies it.
func (s RRset) RRs() []dns.RR {
	n := len(s.rrs) - int(s.nsig)
	return s.rrs[:n:n]
}

// Sigs returns the RRSIG records covering this type (none unless the zone
// is signed), which the caller must not modify.
func (s RRset) Sigs() []dns.RR {
	if s.nsig == 0 {
		return nil
	}
	return s.rrs[len(s.rrs)-int(s.nsig):]
}

// All returns the records followed by their signatures, which the caller
// must not modify; appending to the slice copies it.
func (s RRset) All() []dns.RR { return s.rrs[:len(s.rrs):len(s.rrs)] }

// Node is one name of the zone. Nodes with no RRsets are empty
// non-terminals: they exist (RFC 4592 §2.2.2) and are answered NODATA.
//
// Nodes are shared between versions of a zone: a change makes new nodes
// for the names it touches (and for the names whose links below change)
// and keeps every other node as it was. So a node links only to nodes at
// or above it whose replacement replaces it too (Cut, DNAME) and to its
// wildcard child, never to its parent.
type Node struct {
	Name   string  // lower-case, fully qualified presentation form
	Key    string  // lower-case wire form
	RRsets []RRset // sorted by type; no RRSIG set of its own (see RRset.Sigs)

	ck    string // CanonicalKey(Key): the node's place in canonical order
	links *links // nil for most names: no wildcard child, no cut or DNAME
}

// links are a node's ties to other nodes, kept apart because most names
// have none: a node is then 80 bytes, not 112. They are never changed in
// place: a node copied for a new version of the zone shares them.
type links struct {
	wildcard, cut, dname *Node
}

// Wildcard returns the "*" child of this node, if any.
func (n *Node) Wildcard() *Node {
	if n.links == nil {
		return nil
	}
	return n.links.wildcard
}

// Cut returns the highest delegation point at or above this node
// (excluding the apex), or nil when the node is authoritative data.
func (n *Node) Cut() *Node {
	if n.links == nil {
		return nil
	}
	return n.links.cut
}

// DNAME returns the nearest node at or above this one that owns a DNAME.
func (n *Node) DNAME() *Node {
	if n.links == nil {
		return nil
	}
	return n.links.dname
}

// setLinks gives the node new links (nil when there are none).
func (n *Node) setLinks(wildcard, cut, dname *Node) {
	if wildcard == nil && cut == nil && dname == nil {
		n.links = nil
		return
	}
	n.links = &links{wildcard: wildcard, cut: cut, dname: dname}
}

func (n *Node) setWildcard(w *Node) { n.setLinks(w, n.Cut(), n.DNAME()) }
func (n *Node) setCut(c *Node)      { n.setLinks(n.Wildcard(), c, n.DNAME()) }
func (n *Node) setDNAME(d *Node)    { n.setLinks(n.Wildcard(), n.Cut(), d) }

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
func (n *Node) IsCut() bool { return n.Cut() == n }

// DNAMEAbove returns the nearest node strictly above this one that owns a
// DNAME, the one that rewrites this name (RFC 6672 §2.2), or nil. A name
// below a DNAME cannot own one itself, so it is DNAME unless that is the
// node itself.
func (n *Node) DNAMEAbove() *Node {
	if n.DNAME() == n {
		return nil
	}
	return n.DNAME()
}

// CanonicalKey returns the node's CanonicalKey, which the caller must not
// modify.
func (n *Node) CanonicalKey() []byte { return bytesOf(n.ck) }

// bytesOf is s as bytes, without a copy: they must not be modified.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (n *Node) records() int {
	c := 0
	for _, s := range n.RRsets {
		c += len(s.rrs)
	}
	return c
}

// Zone is an immutable, validated zone. Versions made by Apply share
// every untouched node and index page with the version they came from.
type Zone struct {
	Origin string // lower-case, fully qualified
	Key    string // wire form of Origin
	Apex   *Node
	SOA    *dns.SOA

	// small holds every name in canonical order, apex first, when the
	// zone has at most smallNames of them; nodes and order are then empty.
	small []*Node
	nodes cowMap[*Node]        // every name, by wire key
	order *btree.BTreeG[*Node] // every name in canonical order, apex first
	// nsec holds the owners of NSEC records in canonical order: the NSEC
	// chain; nil when there are none (most zones: no tree is kept).
	nsec *btree.BTreeG[*Node]
	// nsec3 holds the owners of NSEC3 records, which are kept out of the
	// name tree (RFC 5155 §7.2.8: they do not exist as names), ordered by
	// their hash label.
	nsec3 *btree.BTreeG[*Node]
	count int // number of resource records

	// superseded is set once a newer version of the zone (or its removal)
	// has been published, for what its readers derived and kept.
	superseded atomic.Bool
}

// smallNames is the most names a zone keeps in the small form: one slice
// in canonical order, searched in place, instead of a hash map and a
// B-tree. For the small zones a registry holds by the thousand that is
// about 450 bytes and five objects less each; searching a few names in
// place costs about what hashing the name does.
const smallNames = 16

// get returns the node of the wire key key, or nil.
func (z *Zone) get(key string) *Node {
	if z.small != nil {
		for _, n := range z.small {
			if n.Key == key {
				return n
			}
		}
		return nil
	}
	n, _ := z.nodes.get(key)
	return n
}

// getBytes is get for a key held in a byte slice; it does not allocate.
func (z *Zone) getBytes(key []byte) *Node {
	if z.small != nil {
		for _, n := range z.small {
			if n.Key == string(key) {
				return n
			}
		}
		return nil
	}
	n, _ := z.nodes.getBytes(key)
	return n
}

// scan calls fn for each name in canonical order until fn returns false.
func (z *Zone) scan(fn func(*Node) bool) {
	if z.small != nil {
		for _, n := range z.small {
			if !fn(n) {
				return
			}
		}
		return
	}
	z.order.Scan(fn)
}

// descend calls fn for each name at or before pivot's CanonicalKey, the
// nearest first, until fn returns false.
func (z *Zone) descend(pivot *Node, fn func(*Node) bool) {
	if z.small != nil {
		i, found := z.smallIndex(pivot.ck)
		if !found {
			i--
		}
		for ; i >= 0; i-- {
			if !fn(z.small[i]) {
				return
			}
		}
		return
	}
	z.order.Descend(pivot, fn)
}

// ascend calls fn for each name at or after pivot's CanonicalKey, the
// nearest first, until fn returns false.
func (z *Zone) ascend(pivot *Node, fn func(*Node) bool) {
	if z.small != nil {
		i, _ := z.smallIndex(pivot.ck)
		for ; i < len(z.small); i++ {
			if !fn(z.small[i]) {
				return
			}
		}
		return
	}
	z.order.Ascend(pivot, fn)
}

// smallIndex is the place of ck in the small form, and whether a name is
// there.
func (z *Zone) smallIndex(ck string) (int, bool) {
	return slices.BinarySearchFunc(z.small, ck, func(n *Node, ck string) int { return strings.Compare(n.ck, ck) })
}

// index returns an editor of the zone's names by key and a copy of its
// canonical order, for Apply to make the next version from.
func (z *Zone) index() (*cowEditor[*Node], *btree.BTreeG[*Node]) {
	if z.small == nil {
		return z.nodes.edit(), z.order.Copy()
	}
	nodes, order := newCowEditor[*Node](len(z.small)), newOrder()
	for _, n := range z.small {
		nodes.set(n.Key, n)
		order.Load(n)
	}
	return nodes, order
}

// setIndex makes nodes and order the zone's names, in the small form when
// there are few enough.
func (z *Zone) setIndex(nodes cowMap[*Node], order *btree.BTreeG[*Node]) {
	if order.Len() > smallNames {
		z.nodes, z.order = nodes, order
		return
	}
	z.small = make([]*Node, 0, order.Len())
	order.Scan(func(n *Node) bool {
		z.small = append(z.small, n)
		return true
	})
}

func canonicalLess(a, b *Node) bool { return a.ck < b.ck }

func hashLess(a, b *Node) bool { return hashLabel(a.Key) < hashLabel(b.Key) }

func newOrder() *btree.BTreeG[*Node] {
	return btree.NewBTreeGOptions(canonicalLess, btree.Options{NoLocks: true})
}

func newHashOrder() *btree.BTreeG[*Node] {
	return btree.NewBTreeGOptions(hashLess, btree.Options{NoLocks: true})
}

// Supersede marks the zone as replaced by a newer version; whoever
// publishes the newer one calls it.
func (z *Zone) Supersede() { z.superseded.Store(true) }

// Superseded reports whether a newer version of the zone was published.
func (z *Zone) Superseded() bool { return z.superseded.Load() }

// Serial returns the zone's SOA serial.
func (z *Zone) Serial() uint32 { return z.SOA.Serial }

// Len returns the number of resource records in the zone.
func (z *Zone) Len() int { return z.count }

// Names returns the number of nodes, including empty non-terminals.
func (z *Zone) Names() int {
	if z.small != nil {
		return len(z.small)
	}
	return z.order.Len()
}

// Lookup returns the node for an exact wire-format key.
func (z *Zone) Lookup(key string) *Node { return z.get(key) }

// Find descends towards key, which must be at or below the apex, and
// returns the deepest existing node on the way (the closest encloser)
// and whether it is key itself.
func (z *Zone) Find(key string) (n *Node, exact bool) {
	if n = z.get(key); n != nil {
		return n, true
	}
	for {
		p, ok := ParentKey(key)
		if !ok {
			return z.Apex, false
		}
		if n = z.get(p); n != nil {
			return n, false
		}
		key = p
	}
}

// FindBytes is Find for a wire name held in a byte slice; it does not
// allocate.
func (z *Zone) FindBytes(key []byte) (n *Node, exact bool) {
	if n = z.getBytes(key); n != nil {
		return n, true
	}
	for len(key) > 1 {
		key = key[1+int(key[0]):]
		if n = z.getBytes(key); n != nil {
			return n, false
		}
	}
	return z.Apex, false
}

// Prev returns the last node in canonical order that sorts before key (the
// owner of the NSEC record that covers key), wrapping to the last node.
func (z *Zone) Prev(key string) *Node {
	pivot := &Node{ck: canonicalString(key)}
	var out *Node
	z.descend(pivot, func(n *Node) bool {
		if n.ck == pivot.ck {
			return true
		}
		out = n
		return false
	})
	if out == nil {
		z.reverse(func(n *Node) bool { out = n; return false })
	}
	return out
}

// Walk calls fn for each node in canonical order until fn returns false.
func (z *Zone) Walk(fn func(*Node) bool) { z.scan(fn) }

// WalkCanonical is Walk that also gives each node's CanonicalKey, which
// the caller must not modify.
func (z *Zone) WalkCanonical(fn func(ck []byte, n *Node) bool) {
	z.scan(func(n *Node) bool { return fn(bytesOf(n.ck), n) })
}

// WalkAll is WalkCanonical over every owner of records, the owners of
// NSEC3 records included, merged in canonical order.
func (z *Zone) WalkAll(fn func(ck []byte, n *Node) bool) {
	var n3 []*Node
	if z.nsec3 != nil && z.nsec3.Len() > 0 {
		n3 = make([]*Node, 0, z.nsec3.Len())
		z.nsec3.Scan(func(n *Node) bool { n3 = append(n3, n); return true })
		slices.SortFunc(n3, func(a, b *Node) int { return strings.Compare(a.ck, b.ck) })
	}
	j := 0
	stopped := false
	z.scan(func(n *Node) bool {
		for ; j < len(n3) && n3[j].ck < n.ck; j++ {
			if !fn(bytesOf(n3[j].ck), n3[j]) {
				stopped = true
				return false
			}
		}
		if !fn(bytesOf(n.ck), n) {
			stopped = true
			return false
		}
		return true
	})
	for ; !stopped && j < len(n3); j++ {
		if !fn(bytesOf(n3[j].ck), n3[j]) {
			return
		}
	}
}

// Records returns every record of the zone in canonical order, the SOA first.
func (z *Zone) Records() []dns.RR {
	out := make([]dns.RR, 0, z.count)
	z.WalkAll(func(_ []byte, n *Node) bool {
		for _, set := range n.RRsets {
			out = append(out, set.rrs...)
		}
		return true
	})
	return out
}

// LookupAny is Lookup that also finds the owners of NSEC3 records.
func (z *Zone) LookupAny(key string) *Node {
	if n := z.get(key); n != nil {
		return n
	}
	return z.LookupNSEC3(key)
}

// LookupNSEC3 returns the owner of NSEC3 records with the wire key key,
// or nil.
func (z *Zone) LookupNSEC3(key string) *Node {
	if !z.HasNSEC3() {
		return nil
	}
	if p, ok := ParentKey(key); !ok || p != z.Key {
		return nil
	}
	n, _ := z.nsec3.Get(&Node{Key: strings.ToLower(key)})
	return n
}

// Signed reports whether the zone holds a DNSKEY RRset at its apex and
// an NSEC or NSEC3 chain: whether denial of existence can be proven.
func (z *Zone) Signed() bool {
	return z.Apex.Get(dns.TypeDNSKEY) != nil && (z.hasNSEC() || z.HasNSEC3())
}

// CoveringNSEC returns the node whose NSEC record covers or matches key:
// the last owner of an NSEC in canonical order at or before key, wrapping
// to the last one. It returns nil when the zone has no NSEC chain.
func (z *Zone) CoveringNSEC(key string) *Node {
	if !z.hasNSEC() {
		return nil
	}
	var out *Node
	z.nsec.Descend(&Node{ck: canonicalString(key)}, func(n *Node) bool {
		out = n
		return false
	})
	if out == nil {
		out, _ = z.nsec.Max()
	}
	return out
}

// hasNSEC reports whether the zone holds NSEC records.
func (z *Zone) hasNSEC() bool { return z.nsec != nil && z.nsec.Len() > 0 }

// HasNSEC3 reports whether the zone holds NSEC3 records.
func (z *Zone) HasNSEC3() bool { return z.nsec3 != nil && z.nsec3.Len() > 0 }

// FirstNSEC3 returns the owner of the first NSEC3 record in hash order,
// or nil.
func (z *Zone) FirstNSEC3() *Node {
	if !z.HasNSEC3() {
		return nil
	}
	n, _ := z.nsec3.Min()
	return n
}

// NSEC3Nodes returns the owners of the zone's NSEC3 records in hash order.
func (z *Zone) NSEC3Nodes() []*Node {
	if !z.HasNSEC3() {
		return nil
	}
	out := make([]*Node, 0, z.nsec3.Len())
	z.nsec3.Scan(func(n *Node) bool { out = append(out, n); return true })
	return out
}

// FindNSEC3 returns the NSEC3 owner whose hash equals hash (matching), or
// else the one that covers it: the last in hash order before it, wrapping
// around. hash is the base32hex hash label in either case. It returns nil
// when the zone has no NSEC3 records.
func (z *Zone) FindNSEC3(hash string) (n *Node, match bool) {
	if !z.HasNSEC3() {
		return nil, false
	}
	h := strings.ToLower(hash)
	if len(h) > 63 {
		h = h[:63] // longer than any label: compared as its first 63 bytes
	}
	pivot := &Node{Key: string(rune(len(h))) + h} // only the label is compared
	z.nsec3.Descend(pivot, func(x *Node) bool {
		n = x
		return false
	})
	if n == nil {
		n, _ = z.nsec3.Max()
		return n, false
	}
	return n, hashLabel(n.Key) == h
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

// Before calls fn for each name that sorts before key in canonical order,
// the nearest first, until fn returns false.
func (z *Zone) Before(key string, fn func(*Node) bool) {
	pivot := &Node{ck: canonicalString(key)}
	z.descend(pivot, func(n *Node) bool {
		if n.ck == pivot.ck {
			return true
		}
		return fn(n)
	})
}

// After calls fn for each name that sorts after key in canonical order,
// the nearest first, until fn returns false.
func (z *Zone) After(key string, fn func(*Node) bool) {
	pivot := &Node{ck: canonicalString(key)}
	z.ascend(pivot, func(n *Node) bool {
		if n.ck == pivot.ck {
			return true
		}
		return fn(n)
	})
}

// Reverse calls fn for each name from the last in canonical order to the
// apex, until fn returns false.
func (z *Zone) Reverse(fn func(*Node) bool) { z.reverse(fn) }

func (z *Zone) reverse(fn func(*Node) bool) {
	if z.small != nil {
		for _, n := range slices.Backward(z.small) {
			if !fn(n) {
				return
			}
		}
		return
	}
	z.order.Reverse(fn)
}

// Below calls fn for each name strictly below key, in canonical order,
// until fn returns false.
func (z *Zone) Below(key string, fn func(*Node) bool) {
	prefix := canonicalString(key)
	z.ascend(&Node{ck: prefix}, func(n *Node) bool {
		if !strings.HasPrefix(n.ck, prefix) {
			return false
		}
		if len(n.ck) == len(prefix) {
			return true
		}
		return fn(n)
	})
}

// NSEC3Around returns the owners of NSEC3 records whose hash labels
// come nearest before and after hash (a base32hex hash label, in either
// case) for which keep returns true, without wrapping around: nil where
// there is none.
func (z *Zone) NSEC3Around(hash string, keep func(*Node) bool) (before, after *Node) {
	if !z.HasNSEC3() {
		return nil, nil
	}
	h := strings.ToLower(hash)
	pivot := &Node{Key: string(rune(len(h))) + h}
	z.nsec3.Descend(pivot, func(n *Node) bool {
		if hashLabel(n.Key) == h || !keep(n) {
			return true
		}
		before = n
		return false
	})
	z.nsec3.Ascend(pivot, func(n *Node) bool {
		if hashLabel(n.Key) == h || !keep(n) {
			return true
		}
		after = n
		return false
	})
	return before, after
}

// HashLabel returns the first label of the wire key of an NSEC3 owner:
// its hash in lower-case base32hex.
func HashLabel(key string) string { return hashLabel(key) }
