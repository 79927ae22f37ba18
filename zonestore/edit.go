package zonestore

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/zone"
)

// Deletion selects records to remove: every record at Name (Type 0), the
// RRset of Type at Name, or, when RR is set, that one record.
type Deletion struct {
	Name string
	Type uint16
	RR   dns.RR
}

func (d Deletion) String() string {
	if d.RR != nil {
		h := d.RR.Header()
		return fmt.Sprintf("%s %s %s", h.Name, dns.Type(h.Rrtype), strings.TrimSpace(d.RR.String()[len(h.String()):]))
	}
	if d.Type == 0 {
		return d.Name + " (all records)"
	}
	return d.Name + " " + dns.TypeToString[d.Type]
}

func (d Deletion) matches(rr dns.RR) bool {
	h := rr.Header()
	if !strings.EqualFold(h.Name, d.Name) {
		return false
	}
	if sig, ok := rr.(*dns.RRSIG); ok && d.Type != 0 && d.RR == nil {
		return sig.TypeCovered == d.Type
	}
	if d.RR != nil {
		return dns.IsDuplicate(rr, d.RR)
	}
	return d.Type == 0 || h.Rrtype == d.Type
}

// Change is one edit of a zone: the deletions are applied first, then the
// additions. An added record joins its RRset and sets the RRset's TTL; an
// added SOA replaces the SOA.
type Change struct {
	Add    []dns.RR
	Delete []Deletion
	// Lenient: a deletion that matches nothing is skipped rather than an
	// error, as RFC 2136 §3.4.2 has it.
	Lenient bool
}

// Update applies c to the zone at origin, validates the result as a whole,
// moves the serial forward and commits it in one transaction. A deletion
// that matches nothing is an error (ErrNotFound), and so is a change that
// leaves the zone as it was (ErrNoChange); neither writes anything.
func (s *Store) Update(origin string, c Change) (PutResult, error) {
	return s.UpdateFunc(origin, func(*zone.Zone) (Change, error) { return c, nil })
}

// UpdateFunc is Update with the change made by fn from the zone as last
// committed, under the store's edit lock: what fn checks (RFC 2136
// prerequisites) still holds when the change commits. An error from fn is
// returned as it is and nothing is written.
//
// Edits of one zone that arrive while another is being committed are
// committed together (group commit): each is made and checked in turn
// against the zone as the ones before it left it, and those that succeed
// land in one transaction, with one fsync, one serial step and one journal
// entry. Each caller gets its own result once the group is committed.
func (s *Store) UpdateFunc(origin string, fn func(*zone.Zone) (Change, error)) (PutResult, error) {
	origin = zone.Fqdn(origin)
	e := &pendingEdit{fn: fn, author: s.Author(), done: make(chan struct{})}
	s.groups.run(origin, e, func(batch []*pendingEdit) { s.commitGroup(origin, batch) })
	return e.res, e.err
}

// touchedBy returns the names c touches (the apex always), and c with its
// deletions normalised (in a copy: the caller's slice is left alone).
func touchedBy(old *zone.Zone, c Change) (Change, map[string]bool, error) {
	touched := map[string]bool{old.Key: true}
	touch := func(name string) error {
		k, err := zone.WireKey(name)
		if err != nil {
			return err
		}
		touched[k] = true
		return nil
	}
	// Normalise the deletions in a copy: the caller's slice is left alone.
	dels := make([]Deletion, len(c.Delete))
	for i, d := range c.Delete {
		if d.Name == "" && d.RR != nil {
			d.Name = d.RR.Header().Name
		}
		d.Name = zone.Fqdn(d.Name)
		if err := touch(d.Name); err != nil {
			return c, nil, err
		}
		dels[i] = d
	}
	c.Delete = dels
	for _, rr := range c.Add {
		if err := touch(rr.Header().Name); err != nil {
			return c, nil, err
		}
	}
	return c, touched, nil
}

// commitGroup commits a group of edits of one zone; s.mu is taken here.
func (s *Store) commitGroup(origin string, batch []*pendingEdit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sg, err := s.loadSigning(origin)
	if err == nil && sg != nil && sg.Policy != nil || len(batch) == 1 {
		// A signed zone is signed edit by edit; one edit is a group alone.
		for _, e := range batch {
			e.res, e.err = s.As(e.author).updateOne(origin, e.fn)
			close(e.done)
		}
		return
	}
	s.commitUnsignedGroup(origin, batch)
}

// updateOne makes, checks and commits one edit; s.mu is held.
func (s *Store) updateOne(origin string, fn func(*zone.Zone) (Change, error)) (PutResult, error) {
	old, err := s.load(origin)
	if err != nil {
		return PutResult{}, err
	}
	res := PutResult{OldSerial: old.Serial(), OldRecords: old.Len()}
	c, err := fn(old)
	if err != nil {
		return res, err
	}
	c, touched, err := touchedBy(old, c)
	if err != nil {
		return res, err
	}

	sg, err := s.loadSigning(origin)
	if err != nil {
		return res, err
	}
	if sg == nil || sg.Policy == nil {
		z, res, err := s.stageUnsigned(old, c, touched, res, false)
		if err != nil {
			return res, err
		}
		if err := s.commitUnsigned(old, z, touched); err != nil {
			return res, err
		}
		res.Zone, res.Serial, res.Records = z, z.Serial(), z.Len()
		return res, nil
	}
	return s.updateSigned(old, c, sg, res)
}

// updateSigned makes, signs and commits an edit of a zone the signer
// manages: the whole zone is rebuilt and signed in the write transaction;
// s.mu is held.
func (s *Store) updateSigned(old *zone.Zone, c Change, sg *signing, res PutResult) (PutResult, error) {
	origin := old.Origin
	// The editor changes the unsigned zone; the signer owns the rest.
	for _, rr := range c.Add {
		if t := rr.Header().Rrtype; dnssec.Managed(t) {
			return res, fmt.Errorf("zone %s: %s %s: %w", origin, rr.Header().Name, dns.Type(t), dnssec.ErrManagedData)
		}
	}
	for _, d := range c.Delete {
		t := d.Type
		if d.RR != nil {
			t = d.RR.Header().Rrtype
		}
		if t != 0 && dnssec.Managed(t) {
			return res, fmt.Errorf("zone %s: %s %s: %w", origin, d.Name, dns.Type(t), dnssec.ErrManagedData)
		}
	}
	rrs, newSOA, err := applyChange(dnssec.Strip(old), c)
	if err != nil {
		return res, err
	}
	oldSOA := old.SOA
	soa := dns.Copy(oldSOA).(*dns.SOA)
	if newSOA != nil {
		soa = dns.Copy(newSOA).(*dns.SOA)
	}
	if newSOA == nil || !SerialLess(oldSOA.Serial, soa.Serial) {
		soa.Serial = NextSerial(oldSOA.Serial, s.opts.SerialPolicy, s.opts.Now())
		res.Bumped = true
	}
	rrs = append(rrs, soa)
	z, err := zone.Build(origin, rrs)
	if err != nil {
		return res, fmt.Errorf("zone %s: change refused: %w", origin, err)
	}
	if sameData(old, z) {
		return res, fmt.Errorf("zone %s: %w", origin, ErrNoChange)
	}

	now := s.opts.Now().UTC().Format(time.RFC3339)
	err = s.update(func(tx *bolt.Tx) error {
		zb, err := zoneBucket(tx, origin)
		if err != nil {
			return err
		}
		if err := checkPrimary(tx, origin); err != nil {
			return err
		}
		// Signed in the same transaction: the edit and its signatures
		// land together or not at all.
		if z, err = s.signZone(z, old, sg, s.opts.Now()); err != nil {
			return err
		}
		if err := writeDiff(zb.Bucket(bucketNames), old, z); err != nil {
			return err
		}
		if err := zb.Bucket(bucketInfo).Put(keyUpdated, []byte(now)); err != nil {
			return err
		}
		return s.journal(tx, old, z, OpEdit, s.opts.Now(), nil)
	})
	if err != nil {
		return res, fmt.Errorf("store zone %s: %w", origin, err)
	}
	res.Zone, res.Serial, res.Records = z, z.Serial(), z.Len()
	s.cache[origin] = z
	s.publish(origin, z)
	return res, nil
}

// stageUnsigned makes the version of a zone the signer does not manage
// that c leaves: only the touched names are read, changed and checked
// (zone.Apply). The serial moves forward unless keepSerial is set (a later
// edit of a group, whose first edit moved it already) or c sets one that
// is ahead.
func (s *Store) stageUnsigned(old *zone.Zone, c Change, touched map[string]bool, res PutResult, keepSerial bool) (*zone.Zone, PutResult, error) {
	origin := old.Origin
	var base []dns.RR
	for k := range touched {
		base = appendNames(base, old, k)
	}
	rrs, newSOA, err := applyChange(base, c)
	if err != nil {
		return nil, res, err
	}
	soa := dns.Copy(old.SOA).(*dns.SOA)
	if newSOA != nil {
		soa = dns.Copy(newSOA).(*dns.SOA)
	}
	if (newSOA == nil || !SerialLess(old.SOA.Serial, soa.Serial)) && !keepSerial {
		soa.Serial = NextSerial(old.SOA.Serial, s.opts.SerialPolicy, s.opts.Now())
		res.Bumped = true
	} else if newSOA == nil || !SerialLess(old.SOA.Serial, soa.Serial) {
		soa.Serial = old.SOA.Serial
	}
	rrs = append(rrs, soa)
	changes := make(map[string][]dns.RR, len(touched))
	for k := range touched {
		changes[k] = nil
	}
	for _, rr := range rrs {
		k, err := zone.WireKey(rr.Header().Name)
		if err != nil {
			return nil, res, fmt.Errorf("zone %s: change refused: %w", origin, err)
		}
		changes[k] = append(changes[k], rr)
	}
	z, err := zone.Apply(old, changes)
	if err != nil {
		return nil, res, fmt.Errorf("zone %s: change refused: %w", origin, err)
	}
	if sameAt(old, z, touched) {
		return nil, res, fmt.Errorf("zone %s: %w", origin, ErrNoChange)
	}
	return z, res, nil
}

// commitUnsigned writes the touched names of z, the version of a zone
// the signer does not manage that follows old, and its journal entry in
// one transaction, then publishes z; s.mu is held.
func (s *Store) commitUnsigned(old, z *zone.Zone, touched map[string]bool) error {
	now := s.opts.Now()
	err := s.update(func(tx *bolt.Tx) error {
		zb, err := zoneBucket(tx, z.Origin)
		if err != nil {
			return err
		}
		if err := checkPrimary(tx, z.Origin); err != nil {
			return err
		}
		if err := writeNames(zb.Bucket(bucketNames), z, touched); err != nil {
			return err
		}
		if err := zb.Bucket(bucketInfo).Put(keyUpdated, []byte(now.UTC().Format(time.RFC3339))); err != nil {
			return err
		}
		return s.journal(tx, old, z, OpEdit, now, touched)
	})
	if err != nil {
		return fmt.Errorf("store zone %s: %w", z.Origin, err)
	}
	s.cache[z.Origin] = z
	s.publish(z.Origin, z)
	return nil
}

// commitUnsignedGroup makes each edit of batch in turn on the version
// the ones before it left, and commits those that succeed together; s.mu
// is held.
func (s *Store) commitUnsignedGroup(origin string, batch []*pendingEdit) {
	old, err := s.load(origin)
	if err != nil {
		for _, e := range batch {
			e.err = err
			close(e.done)
		}
		return
	}
	cur := old
	all := map[string]bool{}
	var ok []*pendingEdit
	var authors []string
	for _, e := range batch {
		e.res = PutResult{OldSerial: cur.Serial(), OldRecords: cur.Len()}
		c, err := e.fn(cur)
		var touched map[string]bool
		if err == nil {
			c, touched, err = touchedBy(cur, c)
		}
		var z *zone.Zone
		if err == nil {
			z, e.res, err = s.stageUnsigned(cur, c, touched, e.res, cur != old)
		}
		if err != nil {
			e.err = err
			close(e.done)
			continue
		}
		cur = z
		for k := range touched {
			all[k] = true
		}
		ok = append(ok, e)
		if !slices.Contains(authors, e.author) {
			authors = append(authors, e.author)
		}
	}
	if len(ok) == 0 {
		return
	}
	err = s.As(strings.Join(authors, ",")).commitUnsigned(old, cur, all)
	for _, e := range ok {
		if err != nil {
			e.err = err
		} else {
			e.res.Zone, e.res.Serial, e.res.Records = cur, cur.Serial(), cur.Len()
			e.res.Bumped = e.res.Bumped || old.Serial() != cur.Serial()
		}
		close(e.done)
	}
}

// appendNames appends the records z holds at the name with key k, those
// of an NSEC3 owner included.
func appendNames(rrs []dns.RR, z *zone.Zone, k string) []dns.RR {
	add := func(n *zone.Node) {
		for _, set := range n.RRsets {
			rrs = append(rrs, set.RRs...)
			rrs = append(rrs, set.Sigs...)
		}
	}
	n := z.Lookup(k)
	if n != nil {
		add(n)
	}
	if n3 := z.LookupNSEC3(k); n3 != nil {
		add(n3)
	}
	return rrs
}

// writeNames writes the records z holds at the touched names, deleting
// the names that hold none.
func writeNames(nb *bolt.Bucket, z *zone.Zone, touched map[string]bool) error {
	for key := range touched {
		ck := storeKey(zone.CanonicalKey(key))
		n := z.LookupAny(key)
		if n == nil || n.Empty() {
			if err := nb.Delete(ck); err != nil {
				return err
			}
			continue
		}
		val, err := encodeNode(nil, n, true) // bbolt holds values until commit
		if err != nil {
			return err
		}
		if err := nb.Put(ck, val); err != nil {
			return err
		}
	}
	return nil
}

// sameAt reports whether a and b hold the same records at the touched
// names, the SOA serial aside.
func sameAt(a, b *zone.Zone, touched map[string]bool) bool {
	if a.Len() != b.Len() || a.Names() != b.Names() {
		return false
	}
	for k := range touched {
		na, nb := a.LookupAny(k), b.LookupAny(k)
		if (na == nil) != (nb == nil) {
			return false
		}
		if na == nil {
			continue
		}
		if len(na.RRsets) != len(nb.RRsets) {
			return false
		}
		for i := range na.RRsets {
			sa, sb := &na.RRsets[i], &nb.RRsets[i]
			if sa.Type != sb.Type || !sameSet(sa.RRs, sb.RRs) || !sameSet(sa.Sigs, sb.Sigs) {
				return false
			}
		}
	}
	return true
}

// applyChange returns the zone's records (all) after c, without the SOA,
// and the SOA that c adds, if any.
func applyChange(all []dns.RR, c Change) ([]dns.RR, *dns.SOA, error) {
	keep := make([]dns.RR, 0, len(all)+len(c.Add))
	hits := make([]int, len(c.Delete))
	for _, rr := range all {
		if rr.Header().Rrtype == dns.TypeSOA {
			continue
		}
		drop := false
		for i, d := range c.Delete {
			if d.matches(rr) {
				hits[i]++
				drop = true
			}
		}
		if !drop {
			keep = append(keep, rr)
		}
	}
	for i, d := range c.Delete {
		if hits[i] == 0 && !c.Lenient {
			if d.Type == dns.TypeSOA || (d.RR != nil && d.RR.Header().Rrtype == dns.TypeSOA) {
				return nil, nil, fmt.Errorf("%s: %w", d, zone.ErrNoSOA)
			}
			return nil, nil, fmt.Errorf("delete %s: %w", d, ErrNotFound)
		}
	}
	var soa *dns.SOA
	for _, rr := range c.Add {
		h := rr.Header()
		if s, ok := rr.(*dns.SOA); ok {
			soa = s
			continue
		}
		// The added record's TTL becomes the RRset's TTL: copy the records
		// it changes, since they are shared with the zone being served.
		for i, k := range keep {
			kh := k.Header()
			if kh.Rrtype == h.Rrtype && kh.Ttl != h.Ttl && strings.EqualFold(kh.Name, h.Name) {
				k = dns.Copy(k)
				k.Header().Ttl = h.Ttl
				keep[i] = k
			}
		}
		keep = append(keep, rr)
	}
	return keep, soa, nil
}

// sameData reports whether two versions of a zone hold the same data
// apart from the SOA serial, DNSSEC records and signatures: whether an
// edit of a signed zone changed anything.
func sameData(a, b *zone.Zone) bool {
	if a.Names() != b.Names() {
		return false
	}
	same := true
	a.Walk(func(na *zone.Node) bool {
		nb := b.Lookup(na.Key)
		if nb == nil {
			same = false
			return false
		}
		var sa, sb []zone.RRset
		for _, set := range na.RRsets {
			if !dnssec.Managed(set.Type) {
				sa = append(sa, set)
			}
		}
		for _, set := range nb.RRsets {
			if !dnssec.Managed(set.Type) {
				sb = append(sb, set)
			}
		}
		if len(sa) != len(sb) {
			same = false
			return false
		}
		for i := range sa {
			if sa[i].Type != sb[i].Type || !sameSet(sa[i].RRs, sb[i].RRs) {
				same = false
				return false
			}
		}
		return true
	})
	return same
}

// writeDiff writes the names whose records differ between old and z, the
// owners of NSEC3 records included, and deletes those z no longer has.
func writeDiff(nb *bolt.Bucket, old, z *zone.Zone) error {
	var err error
	z.WalkAll(func(ck []byte, n *zone.Node) bool {
		o := old.LookupAny(n.Key)
		if o != nil && sameNode(o, n) {
			return true
		}
		if n.Empty() {
			if o != nil && !o.Empty() {
				err = nb.Delete(storeKey(ck))
			}
			return err == nil
		}
		var val []byte
		if val, err = encodeNode(nil, n, true); err == nil { // bbolt holds values until commit
			err = nb.Put(storeKey(ck), val)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	old.WalkAll(func(ck []byte, o *zone.Node) bool {
		if !o.Empty() && z.LookupAny(o.Key) == nil {
			err = nb.Delete(storeKey(ck))
		}
		return err == nil
	})
	return err
}

// sameNode reports whether two nodes hold the same records and signatures.
func sameNode(a, b *zone.Node) bool {
	if len(a.RRsets) != len(b.RRsets) {
		return false
	}
	for i := range a.RRsets {
		sa, sb := &a.RRsets[i], &b.RRsets[i]
		if sa.Type != sb.Type || sa.TTL != sb.TTL || !dnssec.SameRRs(sa.RRs, sb.RRs) || !dnssec.SameRRs(sa.Sigs, sb.Sigs) {
			return false
		}
	}
	return true
}

// sameSet reports whether x and y hold the same records with the same TTLs,
// in any order. Neither holds duplicates.
func sameSet(x, y []dns.RR) bool {
	if len(x) != len(y) {
		return false
	}
	for _, rx := range x {
		if !slices.ContainsFunc(y, func(ry dns.RR) bool { return sameRecord(rx, ry) }) {
			return false
		}
	}
	return true
}

// sameRecord compares two records and their TTLs, an SOA's serial aside.
func sameRecord(x, y dns.RR) bool {
	if x.Header().Ttl != y.Header().Ttl {
		return false
	}
	if xs, ok := x.(*dns.SOA); ok {
		if ys, ok := y.(*dns.SOA); ok {
			c := *xs
			c.Serial = ys.Serial
			x = &c
		}
	}
	return dns.IsDuplicate(x, y)
}

// pendingEdit is one edit waiting for its group's commit.
type pendingEdit struct {
	fn     func(*zone.Zone) (Change, error)
	author string
	done   chan struct{}
	res    PutResult
	err    error
}

// editGroups gathers the edits of each zone that arrive while one of its
// groups is being committed.
type editGroups struct {
	mu    sync.Mutex
	zones map[string]*editGroup
}

type editGroup struct {
	waiting []*pendingEdit
	leading bool // a caller is committing this zone's groups
}

// run adds e to its zone's next group. The first caller to find no group
// being committed commits groups until none waits; the others wait for
// theirs. It returns once e's group is committed.
func (g *editGroups) run(origin string, e *pendingEdit, commit func([]*pendingEdit)) {
	g.mu.Lock()
	if g.zones == nil {
		g.zones = map[string]*editGroup{}
	}
	zg := g.zones[origin]
	if zg == nil {
		zg = &editGroup{}
		g.zones[origin] = zg
	}
	zg.waiting = append(zg.waiting, e)
	if zg.leading {
		g.mu.Unlock()
		<-e.done
		return
	}
	zg.leading = true
	for len(zg.waiting) > 0 {
		batch := zg.waiting
		zg.waiting = nil
		g.mu.Unlock()
		commit(batch)
		g.mu.Lock()
	}
	delete(g.zones, origin)
	g.mu.Unlock()
	<-e.done
}
