package zone

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/miekg/dns"
)

// MaxTTL is the largest TTL a record may carry (RFC 2181 §8).
const MaxTTL = 1<<31 - 1

type pending struct {
	key   string
	name  string
	sets  []RRset // in input order; sorted when the node is made
	sigs  []dns.RR
	sigAt []int          // input index of each of sigs, for error positions
	index []typeIndex    // first input index per type, for error positions
	extra map[uint16]int // input index of the second record of a CNAME or DNAME set
	first int
	// setFrom is where sets (and index) start in the builder's slabs, or
	// -1 when they are slices of their own.
	setFrom int
	// rdata indexes large RRsets by lower-cased record text, so that the
	// duplicate check stays linear (see seen).
	rdata map[uint16]map[string][]dns.RR
	// sigIdx indexes sigs once there are many (see seenSig).
	sigIdx map[sigKey][]dns.RR
}

type builder struct {
	origin    string
	originKey string
	byKey     map[string]*pending
	nsec3     map[string]*pending // owners of NSEC3 records and their RRSIGs
	errs      []error
	zero      map[uint16]dns.RR // an rdata-less record per type, for noRdata
	// in is the input of Build, of which add is given in[i]: the records
	// of one RRset that come one after another are sliced from it rather
	// than copied (assemble copies them once, into its slab). nil for
	// Apply.
	in []dns.RR
	// lastName and lastKey: the owner of the record before, and its wire
	// key (the records of one name come together).
	lastName, lastKey string
	// pend, sets and index are slabs sized by Build for its input: the
	// pending names, and their RRsets and first input positions, which
	// the names take one after another (see newPending, appendSet).
	pend  []pending
	sets  []RRset
	index []typeIndex
}

// newPending returns room for the pending records of one more name, from
// the slab (one allocation for many names).
func (b *builder) newPending() *pending {
	if len(b.pend) == cap(b.pend) {
		b.pend = make([]pending, 0, 16)
	}
	b.pend = b.pend[:len(b.pend)+1]
	return &b.pend[len(b.pend)-1]
}

// appendSet adds the new RRset s of p, and its first input position ti.
// While the names come one after another, a name's sets are the next
// places of the slabs; otherwise they are slices of their own.
func (b *builder) appendSet(p *pending, s RRset, ti typeIndex) {
	if len(p.sets) == 0 {
		p.setFrom = len(b.sets)
	}
	if p.setFrom >= 0 && p.setFrom+len(p.sets) == len(b.sets) && len(b.sets) < cap(b.sets) {
		b.sets = append(b.sets, s)
		b.index = append(b.index, ti)
		end := len(b.sets)
		p.sets, p.index = b.sets[p.setFrom:end:end], b.index[p.setFrom:end:end]
		return
	}
	// Capped at their ends, the slices are copied here.
	p.setFrom = -1
	p.sets = append(p.sets, s)
	p.index = append(p.index, ti)
}

// zeroTables holds the tables of rdata-less records that builders use
// (noRdata), so that each build does not make its own: a builder takes
// one, and gives it back when done, for the next.
var zeroTables = sync.Pool{New: func() any { return map[uint16]dns.RR{} }}

func (b *builder) fail(index int, rr dns.RR, err error) {
	if len(b.errs) > MaxErrors {
		return
	}
	if len(b.errs) == MaxErrors {
		b.errs = append(b.errs, ErrTooManyErrors)
		return
	}
	re := &RecordError{Index: index, Err: err}
	if rr != nil {
		re.Owner, re.Type = rr.Header().Name, rr.Header().Rrtype
	}
	b.errs = append(b.errs, re)
}

// Build validates rrs as the complete contents of the zone at origin and
// returns the immutable zone. Duplicate records are collapsed; records of
// one RRset that disagree on TTL take the TTL of the first (RFC 2181 §5.2).
// Owner names are stored lower-cased. Every problem found is returned,
// joined, each as a *RecordError; nothing is built when there is one.
// The records are taken over by the zone and must not be changed afterwards.
func Build(origin string, rrs []dns.RR) (*Zone, error) {
	origin = Fqdn(origin)
	okey, err := WireKey(origin)
	if err != nil {
		return nil, fmt.Errorf("zone origin: %w", err)
	}
	// One pass to size the slabs: the runs of records of one owner, and of
	// one owner and type (exact when the records come grouped, as from
	// the store; more than enough otherwise).
	names, sets := 0, 0
	for i, rr := range rrs {
		h := rr.Header()
		switch {
		case i == 0 || h.Name != rrs[i-1].Header().Name:
			names++
			sets++
		case h.Rrtype != rrs[i-1].Header().Rrtype:
			sets++
		}
	}
	b := &builder{origin: origin, originKey: okey, byKey: make(map[string]*pending, names), in: rrs,
		pend: make([]pending, 0, names), sets: make([]RRset, 0, sets), index: make([]typeIndex, 0, sets)}
	b.zero = zeroTables.Get().(map[uint16]dns.RR)
	for i, rr := range rrs {
		b.add(i, rr)
	}
	zeroTables.Put(b.zero)
	b.zero = nil
	z := b.assemble()
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	return z, nil
}

func (b *builder) add(i int, rr dns.RR) {
	h := rr.Header()
	if h.Class != dns.ClassINET {
		b.fail(i, rr, ErrBadClass)
		return
	}
	switch h.Rrtype {
	case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeANY,
		dns.TypeMAILA, dns.TypeMAILB, dns.TypeNone:
		b.fail(i, rr, ErrBadType)
		return
	}
	if h.Ttl > MaxTTL {
		b.fail(i, rr, ErrBadTTL)
		return
	}
	if b.noRdata(rr) {
		b.fail(i, rr, ErrNoRdata)
		return
	}
	// Records may be shared with a zone that is being served: write only
	// what actually changes.
	if name := Fqdn(h.Name); name != h.Name {
		h.Name = name
	}
	key := b.lastKey
	if h.Name != b.lastName || key == "" {
		var err error
		if key, err = WireKey(h.Name); err != nil {
			b.fail(i, rr, err)
			return
		}
		b.lastName, b.lastKey = h.Name, key
	}
	// RFC 3597 rdata is hex: one spelling, as decoding from the wire gives,
	// so that duplicates collapse and a stored zone reads back the same.
	if u, ok := rr.(*dns.RFC3597); ok {
		if l := strings.ToLower(u.Rdata); l != u.Rdata {
			u.Rdata = l
		}
	}
	if !IsBelow(key, b.originKey) {
		b.fail(i, rr, fmt.Errorf("%w %s", ErrOutOfZone, b.origin))
		return
	}
	byKey := b.byKey
	if isNSEC3(rr) {
		if pk, _ := ParentKey(key); pk != b.originKey {
			b.fail(i, rr, ErrNSEC3Owner)
			return
		}
		if b.nsec3 == nil {
			b.nsec3 = make(map[string]*pending)
		}
		byKey = b.nsec3
	}
	p := byKey[key]
	if p == nil {
		p = b.newPending()
		*p = pending{key: key, name: h.Name, first: i, setFrom: -1}
		byKey[key] = p
	}
	if sig, ok := rr.(*dns.RRSIG); ok {
		if len(p.sigs) < 16 {
			for _, s := range p.sigs {
				if dns.IsDuplicate(s, sig) {
					return
				}
			}
		} else if p.seenSig(sig) {
			return
		}
		p.sigs = append(p.sigs, rr)
		p.sigAt = append(p.sigAt, i)
		return
	}
	j := p.setIndex(h.Rrtype)
	if j < 0 {
		var one []dns.RR
		if b.in != nil {
			one = b.in[i : i+1 : i+1]
		} else {
			one = []dns.RR{rr}
		}
		b.appendSet(p, RRset{Type: h.Rrtype, TTL: h.Ttl, rrs: one}, typeIndex{h.Rrtype, i})
		return
	}
	set := &p.sets[j]
	if h.Rrtype == dns.TypeSOA {
		b.fail(i, rr, ErrMultipleSOA)
		return
	}
	if h.Ttl != set.TTL {
		h.Ttl = set.TTL
	}
	if len(set.rrs) < 16 {
		for _, old := range set.rrs {
			if dns.IsDuplicate(old, rr) {
				return
			}
		}
	} else if p.seen(set, rr) {
		return
	}
	if len(set.rrs) == 1 && (h.Rrtype == dns.TypeCNAME || h.Rrtype == dns.TypeDNAME) {
		if p.extra == nil {
			p.extra = make(map[uint16]int, 1)
		}
		p.extra[h.Rrtype] = i
	}
	// Records that follow the set's in the input widen its slice of it;
	// any other is appended (to a copy: the slice is full).
	if from := p.index[j].i; b.in != nil && from+len(set.rrs) == i && &set.rrs[0] == &b.in[from] {
		set.rrs = b.in[from : i+1 : i+1]
		return
	}
	set.rrs = append(set.rrs, rr)
}

// typeIndex is the input position of the first record of a type.
type typeIndex struct {
	t uint16
	i int
}

// setIndex returns the place of the pending RRset of type t in sets, or -1.
func (p *pending) setIndex(t uint16) int {
	for i := range p.sets {
		if p.sets[i].Type == t {
			return i
		}
	}
	return -1
}

// seen is the duplicate check for large RRsets: records are bucketed by
// their lower-cased text and compared exactly (dns.IsDuplicate) within a
// bucket, since letter case matters in some rdata (TXT) and not in other
// (domain names). The records of one set share their header text.
func (p *pending) seen(set *RRset, rr dns.RR) bool {
	idx := p.rdata[set.Type]
	if idx == nil {
		if p.rdata == nil {
			p.rdata = make(map[uint16]map[string][]dns.RR, 1)
		}
		idx = make(map[string][]dns.RR, 2*len(set.rrs))
		for _, old := range set.rrs {
			k := strings.ToLower(old.String())
			idx[k] = append(idx[k], old)
		}
		p.rdata[set.Type] = idx
	}
	k := strings.ToLower(rr.String())
	for _, old := range idx[k] {
		if dns.IsDuplicate(old, rr) {
			return true
		}
	}
	idx[k] = append(idx[k], rr)
	return false
}

// sigKey is what tells the signatures of one name apart most.
type sigKey struct {
	covered, tag uint16
	alg          uint8
	sig          string
}

// seenSig is the duplicate check among many signatures of one name (a
// hostile transfer may bring thousands): bucketed by what tells them apart
// most, then compared exactly.
func (p *pending) seenSig(sig *dns.RRSIG) bool {
	if p.sigIdx == nil {
		p.sigIdx = make(map[sigKey][]dns.RR, 2*len(p.sigs))
		for _, rr := range p.sigs {
			s := rr.(*dns.RRSIG)
			k := sigKey{s.TypeCovered, s.KeyTag, s.Algorithm, s.Signature}
			p.sigIdx[k] = append(p.sigIdx[k], rr)
		}
	}
	k := sigKey{sig.TypeCovered, sig.KeyTag, sig.Algorithm, sig.Signature}
	for _, old := range p.sigIdx[k] {
		if dns.IsDuplicate(old, sig) {
			return true
		}
	}
	p.sigIdx[k] = append(p.sigIdx[k], sig)
	return false
}

// noRdata reports whether rr has no rdata at all, as the parsers return a
// record written without data (the form dynamic update uses). Such a record
// cannot be served, exported or read back. Types whose rdata may be empty
// are exempt.
func (b *builder) noRdata(rr dns.RR) bool {
	switch rr.(type) {
	case *dns.RFC3597, *dns.APL, *dns.NULL:
		return false
	}
	t := rr.Header().Rrtype
	zero := b.zero[t]
	if zero == nil {
		newRR, ok := dns.TypeToRR[t]
		if !ok {
			return false
		}
		zero = newRR()
		if b.zero == nil {
			b.zero = make(map[uint16]dns.RR)
		}
		b.zero[t] = zero
	}
	*zero.Header() = *rr.Header()
	return dns.IsDuplicate(zero, rr)
}

// isNSEC3 reports whether rr is an NSEC3 record or a signature over one:
// the records kept out of the name tree.
func isNSEC3(rr dns.RR) bool {
	switch r := rr.(type) {
	case *dns.NSEC3:
		return true
	case *dns.RRSIG:
		return r.TypeCovered == dns.TypeNSEC3
	}
	return false
}

func (b *builder) assemble() *Zone {
	z := &Zone{Origin: b.origin, Key: b.originKey}
	// Sized for the owners and the apex; empty non-terminals, if any, grow
	// it. A small zone's map then fits in one group of eight entries.
	nodes := newCowEditor[*Node](len(b.byKey) + 1)

	// Nodes for every owner, then every missing ancestor (empty non-terminals).
	// The owners' nodes, their RRsets and the lists of their records come
	// from three slabs, sized exactly: three allocations, not three per
	// name, and nothing held for growth. Each slice is capped at its end,
	// so that appending to one (a later version) copies it.
	// The RRsets the builder's slab holds stay there (Build sized it for
	// its input); the others are copied into one of their own.
	nsets, nrrs := 0, 0
	for _, p := range b.byKey {
		if p.setFrom < 0 {
			nsets += len(p.sets)
		}
		for _, s := range p.sets {
			nrrs += len(s.rrs)
		}
		nrrs += len(p.sigs)
	}
	slab := make([]Node, len(b.byKey))
	var sets []RRset
	if nsets > 0 {
		sets = make([]RRset, 0, nsets)
	}
	rrs := make([]dns.RR, 0, nrrs)
	j := 0
	for key, p := range b.byKey {
		n := &slab[j]
		j++
		own := p.sets
		if p.setFrom < 0 {
			first := len(sets)
			sets = append(sets, p.sets...)
			own = sets[first:len(sets):len(sets)]
		}
		for i := range own {
			s := &own[i]
			from := len(rrs)
			for _, rr := range s.rrs {
				shareOwner(rr, p.name)
				rrs = append(rrs, rr)
			}
			// The signatures over the set follow its records (orphanSigs
			// reports those that cover no set).
			sigs := len(rrs)
			rrs = b.appendSigs(rrs, p, s)
			for _, rr := range rrs[sigs:] {
				shareOwner(rr, p.name)
			}
			s.rrs = rrs[from:len(rrs):len(rrs)]
		}
		*n = Node{Name: p.name, Key: key, RRsets: own}
		sortRRsets(n.RRsets)
		nodes.set(key, n)
	}
	z.count = len(rrs) // records and signatures (an orphan fails the build)
	if _, ok := nodes.get(b.originKey); !ok {
		nodes.set(b.originKey, &Node{Name: b.origin, Key: b.originKey})
	}
	for key := range b.byKey {
		addAncestors(nodes, z.Key, key)
	}
	all := nodes.done()
	sorted := make([]*Node, 0, all.len())
	small := all.len() <= smallNames
	all.all(func(_ string, n *Node) bool {
		sorted = append(sorted, n)
		return true
	})
	if small {
		// No map keeps the keys: all of them, and the canonical ones,
		// are parts of one string.
		shareKeys(sorted)
	} else {
		for _, n := range sorted {
			n.ck = canonicalString(n.Key)
		}
	}
	slices.SortFunc(sorted, func(a, c *Node) int { return strings.Compare(a.ck, c.ck) })
	if small {
		z.small = sorted
	} else {
		z.nodes, z.order = all, newOrder()
	}
	z.Apex = z.Lookup(b.originKey)
	if z.Apex != nil {
		z.Key = z.Apex.Key // one copy of the origin's key
	}

	// Parents come before children in canonical order, so one pass suffices.
	for _, n := range sorted {
		b.checkNode(z.Lookup, z.Apex, n)
	}
	for key, p := range b.byKey {
		b.orphanSigs(z.Lookup(key), p)
	}
	for _, n := range sorted {
		if z.order != nil {
			z.order.Load(n)
		}
		if n.Get(dns.TypeNSEC) != nil {
			if z.nsec == nil {
				z.nsec = newOrder()
			}
			z.nsec.Load(n)
		}
	}
	b.assembleNSEC3(z)
	if soa := z.Apex.Get(dns.TypeSOA); soa != nil {
		z.SOA = soa.RRs()[0].(*dns.SOA)
	} else {
		b.fail(-1, nil, ErrNoSOA)
	}
	if z.Apex.Get(dns.TypeNS) == nil {
		b.fail(-1, nil, ErrNoApexNS)
	}
	return z
}

// shareOwner makes rr's owner name the string name when they are equal
// but apart, so that a node's records hold one copy of its name. A record
// already sharing it is not written to (records may be shared with a zone
// being served).
func shareOwner(rr dns.RR, name string) {
	if h := rr.Header(); h.Name == name && unsafe.StringData(h.Name) != unsafe.StringData(name) {
		h.Name = name
	}
}

// addAncestors makes the empty non-terminals between key and the apex
// that nodes does not hold yet, and returns their keys.
func addAncestors(nodes *cowEditor[*Node], apex, key string) (added []string) {
	for key != apex {
		p, ok := ParentKey(key)
		if !ok {
			return added
		}
		if _, ok := nodes.get(p); ok {
			return added
		}
		name := keyToName(p) // the key is lower-cased already
		nodes.set(p, &Node{Name: name, Key: p})
		added = append(added, p)
		key = p
	}
	return added
}

func keyToName(key string) string {
	name, _, err := dns.UnpackDomainName([]byte(key), 0)
	if err != nil {
		return "."
	}
	return name
}

// checkNode links n to the nodes above it, which lookup returns already
// linked, and checks what may be at n given where it is.
func (b *builder) checkNode(lookup func(string) *Node, apex, n *Node) {
	p := b.byKey[n.Key]
	pos := func(t uint16) int {
		if p == nil {
			return -1
		}
		for _, x := range p.index {
			if x.t == t {
				return x.i
			}
		}
		return p.first
	}
	second := func(t uint16) int {
		if p != nil {
			if i, ok := p.extra[t]; ok {
				return i
			}
		}
		return pos(t)
	}
	first := func(t uint16) dns.RR {
		if s := n.Get(t); s != nil {
			return s.RRs()[0]
		}
		return nil
	}
	if n != apex {
		pk, _ := ParentKey(n.Key)
		parent := lookup(pk)
		n.setLinks(n.Wildcard(), parent.Cut(), parent.DNAME())
		if n.DNAME() != nil && !n.Empty() { // an empty non-terminal's descendants report it
			b.fail(pos(0), first(n.RRsets0()), ErrBelowDNAME)
		}
		if strings.HasPrefix(n.Key, "\x01*") {
			parent.setWildcard(n)
			if n.Get(dns.TypeNS) != nil {
				b.fail(pos(dns.TypeNS), first(dns.TypeNS), ErrWildcardNS)
			}
		}
		if n.Cut() == nil && n.Get(dns.TypeNS) != nil {
			n.setCut(n)
		}
		if n.Get(dns.TypeSOA) != nil {
			b.fail(pos(dns.TypeSOA), first(dns.TypeSOA), ErrSOANotApex)
		}
	} else if n.Get(dns.TypeDS) != nil {
		b.fail(pos(dns.TypeDS), first(dns.TypeDS), ErrDSAtApex)
	}
	if n.Get(dns.TypeDNAME) != nil {
		if n.DNAME() == nil {
			n.setDNAME(n)
		}
		if s := n.Get(dns.TypeDNAME); len(s.RRs()) > 1 {
			b.fail(second(dns.TypeDNAME), s.RRs()[1], ErrDNAMEConflict)
		}
	}
	if c := n.Get(dns.TypeCNAME); c != nil {
		if len(c.RRs()) > 1 {
			b.fail(second(dns.TypeCNAME), c.RRs()[1], ErrMultipleCNAME)
		}
		for _, s := range n.RRsets {
			if s.Type != dns.TypeCNAME && s.Type != dns.TypeNSEC {
				b.fail(pos(s.Type), s.RRs()[0], ErrCNAMEConflict)
			}
		}
	}
	if n.Cut() != nil {
		for _, s := range n.RRsets {
			switch s.Type {
			case dns.TypeA, dns.TypeAAAA:
				continue
			case dns.TypeNS, dns.TypeDS, dns.TypeNSEC:
				if n.Cut() == n {
					continue
				}
			}
			b.fail(pos(s.Type), s.RRs()[0], fmt.Errorf("%w %s", ErrOccluded, n.Cut().Name))
		}
	}
}

// RRsets0 returns the first type held by the node, for error reporting.
func (n *Node) RRsets0() uint16 {
	if len(n.RRsets) == 0 {
		return 0
	}
	return n.RRsets[0].Type
}

// attachSigs gives the RRsets of n, whose lists hold only records, the
// signatures p holds for them, each after the records of its set.
func (b *builder) attachSigs(n *Node, p *pending) {
	if len(p.sigs) == 0 {
		return
	}
	for i := range n.RRsets {
		s := &n.RRsets[i]
		// Clipped: a list shared with another set or version is copied.
		s.rrs = b.appendSigs(slices.Clip(s.rrs), p, s)
	}
	b.orphanSigs(n, p)
}

// appendSigs appends the signatures p holds over the type of s to rrs,
// and counts them in s; the 65,536th fails the build.
func (b *builder) appendSigs(rrs []dns.RR, p *pending, s *RRset) []dns.RR {
	k := 0
	for j, rr := range p.sigs {
		if rr.(*dns.RRSIG).TypeCovered == s.Type {
			rrs = append(rrs, rr)
			k++
			if k == math.MaxUint16+1 {
				b.fail(p.sigAt[j], rr, ErrTooManyRRSIGs)
			}
		}
	}
	s.nsig = uint16(min(k, math.MaxUint16))
	return rrs
}

// orphanSigs reports the signatures of p that cover no RRset of n.
func (b *builder) orphanSigs(n *Node, p *pending) {
	for i, rr := range p.sigs {
		if n.Get(rr.(*dns.RRSIG).TypeCovered) == nil {
			b.fail(p.sigAt[i], rr, ErrOrphanRRSIG)
		}
	}
}

// assembleNSEC3 makes the nodes of the NSEC3 owners, outside the tree,
// sorted by hash label.
func (b *builder) assembleNSEC3(z *Zone) {
	if len(b.nsec3) == 0 {
		return
	}
	sorted := make([]*Node, 0, len(b.nsec3))
	for key, p := range b.nsec3 {
		n := &Node{Name: p.name, Key: key, RRsets: p.sets, ck: canonicalString(key)}
		for i := range p.sets { // only NSEC3 records are routed here
			s := &p.sets[i]
			z.count += len(s.rrs)
			// Their own list: s.rrs may be a slice of Build's input.
			s.rrs = append(make([]dns.RR, 0, len(s.rrs)), s.rrs...)
		}
		sortRRsets(n.RRsets)
		b.attachSigs(n, p)
		z.count += len(p.sigs)
		sorted = append(sorted, n)
	}
	slices.SortFunc(sorted, func(x, y *Node) int { return strings.Compare(hashLabel(x.Key), hashLabel(y.Key)) })
	z.nsec3 = newHashOrder()
	for _, n := range sorted {
		z.nsec3.Load(n)
	}
}

// hashLabel returns the first label of a lower-case wire key.
func hashLabel(key string) string { return key[1 : 1+int(key[0])] }
