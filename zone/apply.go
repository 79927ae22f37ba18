package zone

import (
	"bytes"
	"errors"
	"slices"
	"strings"

	"github.com/miekg/dns"
	"github.com/tidwall/btree"
)

// Apply returns the version of z in which each name of changes (an
// owner's wire key) holds exactly the records given, signatures included:
// none when the list is empty. Every other name keeps its records. The
// records are validated as Build validates a whole zone, but only the
// changed names and their neighbourhood are looked at, and the new
// version shares every node and index page it does not change with z: a
// change of k names costs O(k · log n) (plus the names below a delegation
// or DNAME that is changed), not O(n).
//
// Apply gives exactly the zone that Build gives for the same records. It
// does not modify z. Errors are *RecordError values whose Index is the
// position of the record in the order changes were walked (by key).
func Apply(z *Zone, changes map[string][]dns.RR) (*Zone, error) {
	keys := make([]string, 0, len(changes))
	for k := range changes {
		keys = append(keys, strings.ToLower(k))
	}
	slices.SortFunc(keys, func(a, b string) int { return bytes.Compare(CanonicalKey(a), CanonicalKey(b)) })

	b := &builder{origin: z.Origin, originKey: z.Key, byKey: make(map[string]*pending, len(changes))}
	i := 0
	for _, k := range keys {
		for _, rr := range changes[k] {
			b.add(i, rr)
			i++
		}
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	// Records listed under another name than their owner's change that
	// owner too.
	touched := make(map[string]bool, len(keys))
	for _, k := range keys {
		touched[k] = true
	}
	for k := range b.byKey {
		if !touched[k] {
			touched[k] = true
			keys = append(keys, k)
		}
	}
	for k := range b.nsec3 {
		if !touched[k] {
			touched[k] = true
			keys = append(keys, k)
		}
	}

	nodes, order := z.index()
	a := &applier{
		b:      b,
		old:    z,
		nodes:  nodes,
		order:  order,
		z:      &Zone{Origin: z.Origin, Key: z.Key, count: z.count},
		dirty:  map[string]bool{},
		fresh:  map[*Node]bool{},
		closed: map[string]bool{},
	}
	if z.nsec != nil {
		a.nsec = z.nsec.Copy()
	} else {
		a.nsec = newOrder()
	}
	if z.nsec3 != nil {
		a.nsec3 = z.nsec3.Copy()
	} else {
		a.nsec3 = newHashOrder()
	}
	for _, k := range keys {
		a.change(k)
	}
	a.relink()
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}

	out := a.z
	out.setIndex(a.nodes.done(), a.order)
	out.nsec, out.nsec3 = a.nsec, a.nsec3
	if out.nsec.Len() == 0 {
		out.nsec = nil
	}
	out.Apex = out.Lookup(out.Key)
	if out.Apex == nil {
		return nil, errors.Join(&RecordError{Index: -1, Err: ErrNoSOA})
	}
	if soa := out.Apex.Get(dns.TypeSOA); soa != nil {
		out.SOA = soa.RRs()[0].(*dns.SOA)
	} else {
		b.fail(-1, nil, ErrNoSOA)
	}
	if out.Apex.Get(dns.TypeNS) == nil {
		b.fail(-1, nil, ErrNoApexNS)
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	return out, nil
}

// applier makes one new version of a zone.
type applier struct {
	b     *builder
	old   *Zone
	z     *Zone // the new version: header fields and count
	nodes *cowEditor[*Node]
	order *btree.BTreeG[*Node]
	nsec  *btree.BTreeG[*Node]
	nsec3 *btree.BTreeG[*Node]

	// dirty holds the names whose node must be remade and linked again:
	// the changed names, the empty non-terminals made or dropped around
	// them, the parents of changed wildcards and everything below a
	// changed delegation or DNAME.
	dirty map[string]bool
	// fresh holds the nodes made by this version, which it may still
	// modify.
	fresh map[*Node]bool
	// closed holds the names whose descendants are all in dirty already.
	closed map[string]bool
}

func (a *applier) lookup(k string) *Node {
	n, _ := a.nodes.get(k)
	return n
}

// change gives the name k the records the builder collected for it.
func (a *applier) change(k string) {
	if p := a.b.nsec3[k]; p != nil || a.old.HasNSEC3() {
		a.changeNSEC3(k, p)
	}
	old := a.lookup(k)
	p := a.b.byKey[k]
	if old != nil {
		a.z.count -= old.records()
		a.noteLinks(old)
	}
	if p == nil {
		if old == nil {
			return
		}
		if k != a.z.Key && !a.hasDescendants(old) {
			a.remove(old)
			return
		}
		// An empty non-terminal now, or an apex without records (refused
		// below).
		n := &Node{Name: old.Name, Key: k, ck: old.ck}
		a.put(n)
		return
	}
	n := &Node{Name: p.name, Key: k, RRsets: p.sets}
	if old != nil {
		n.ck = old.ck
	} else {
		n.ck = canonicalString(k)
	}
	sortRRsets(n.RRsets)
	a.b.attachSigs(n, p)
	a.z.count += n.records()
	a.put(n)
	a.noteLinks(n)
	if old == nil {
		for _, e := range addAncestors(a.nodes, a.z.Key, k) {
			en := a.lookup(e)
			en.ck = canonicalString(e)
			a.fresh[en] = true
			a.dirty[e] = true
			a.order.Set(en)
		}
	}
}

// put makes n the node of its name, to be linked by relink.
func (a *applier) put(n *Node) {
	a.nodes.set(n.Key, n)
	a.fresh[n] = true
	a.dirty[n.Key] = true
	a.order.Set(n)
}

// remove drops the node n, which has no descendants, and the empty
// non-terminals above it that it leaves without any.
func (a *applier) remove(n *Node) {
	for {
		a.nodes.del(n.Key)
		a.order.Delete(n)
		a.nsec.Delete(n)
		delete(a.dirty, n.Key)
		a.wildcardParent(n.Key)
		p, ok := ParentKey(n.Key)
		if !ok || p == a.z.Key {
			return
		}
		pn := a.lookup(p)
		if pn == nil || !pn.Empty() || a.hasDescendants(pn) || a.b.byKey[p] != nil {
			return
		}
		n = pn
	}
}

// hasDescendants reports whether a name lies below n in the new version.
func (a *applier) hasDescendants(n *Node) bool {
	below := false
	a.order.Ascend(n, func(x *Node) bool {
		if x == n || x.ck == n.ck {
			return true
		}
		below = strings.HasPrefix(x.ck, n.ck)
		return false
	})
	return below
}

// noteLinks marks the names whose links depend on n: its parent when n
// is a wildcard, and every name below it when it is (or was) a
// delegation or owns a DNAME.
func (a *applier) noteLinks(n *Node) {
	a.wildcardParent(n.Key)
	if a.linksBelow(n) {
		a.markBelow(n)
	}
}

// linksBelow reports whether the names below n link to it: whether it is
// a delegation (the apex's NS records are not one) or owns a DNAME.
func (a *applier) linksBelow(n *Node) bool {
	return n.Key != a.z.Key && (n.Get(dns.TypeNS) != nil || n.Cut() == n) || n.Get(dns.TypeDNAME) != nil || n.DNAME() == n
}

func (a *applier) wildcardParent(k string) {
	if strings.HasPrefix(k, "\x01*") {
		if p, ok := ParentKey(k); ok {
			a.dirty[p] = true
		}
	}
}

// markBelow marks every name below n dirty.
func (a *applier) markBelow(n *Node) {
	if a.closed[n.Key] {
		return
	}
	a.closed[n.Key] = true
	a.order.Ascend(n, func(x *Node) bool {
		if x.ck == n.ck {
			return true
		}
		if !strings.HasPrefix(x.ck, n.ck) {
			return false
		}
		a.dirty[x.Key] = true
		return true
	})
}

// changeNSEC3 gives the owner of NSEC3 records k its new records.
func (a *applier) changeNSEC3(k string, p *pending) {
	if p, _ := ParentKey(k); p != a.z.Key {
		return // not a name NSEC3 records can have (see builder.add)
	}
	if old, ok := a.nsec3.Get(&Node{Key: k}); ok {
		a.z.count -= old.records()
		a.nsec3.Delete(old)
	}
	if p == nil || len(p.sets) == 0 && len(p.sigs) == 0 {
		return
	}
	n := &Node{Name: p.name, Key: k, RRsets: p.sets, ck: canonicalString(k)}
	sortRRsets(n.RRsets)
	a.b.attachSigs(n, p)
	a.z.count += n.records()
	a.nsec3.Set(n)
}

// relink remakes the dirty nodes, parents before children, linking each
// to the new version's nodes above it and checking it as Build does.
func (a *applier) relink() {
	// The parent of a dirty wildcard is dirty; then a dirty delegation or
	// DNAME owner takes its descendants along (and their wildcards'
	// parents are among them).
	for k := range a.dirty {
		a.wildcardParent(k)
	}
	keys := make([]string, 0, len(a.dirty))
	for k := range a.dirty {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if n := a.lookup(k); n != nil && a.linksBelow(n) {
			a.markBelow(n)
		}
	}
	work := make([]*Node, 0, len(a.dirty))
	for k := range a.dirty {
		n := a.lookup(k)
		if n == nil {
			continue
		}
		if !a.fresh[n] {
			c := *n
			n = &c
			a.fresh[n] = true
			a.nodes.set(k, n)
			a.order.Set(n)
		}
		work = append(work, n)
	}
	slices.SortFunc(work, func(x, y *Node) int { return strings.Compare(x.ck, y.ck) })
	apex := a.lookup(a.z.Key)
	for _, n := range work {
		n.setLinks(a.lookup(wildcardKey(n.Key)), nil, nil)
		a.b.checkNode(a.lookup, apex, n)
		if old := a.old.Lookup(n.Key); old != nil && old.Get(dns.TypeNSEC) != nil {
			a.nsec.Delete(old)
		}
		if n.Get(dns.TypeNSEC) != nil {
			a.nsec.Set(n)
		}
	}
}

// wildcardKey returns the key of the "*" child of key.
func wildcardKey(key string) string { return "\x01*" + key }
