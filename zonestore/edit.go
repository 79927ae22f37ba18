package zonestore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"weak"

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
// committed, under the zone's edit lock: what fn checks (RFC 2136
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

// commitGroup commits a group of edits of one zone; its lock is taken here.
// Each edit is made and checked in turn on the version the ones before
// it left, and those that succeed are committed together.
func (s *Store) commitGroup(origin string, batch []*pendingEdit) {
	defer s.lockZone(origin)()
	old, err := s.load(origin)
	var sg *signing
	if err == nil {
		sg, err = s.signingOf(origin)
	}
	if err != nil {
		for _, e := range batch {
			e.err = err
			close(e.done)
		}
		return
	}
	cur := old
	all := map[string]bool{}
	bumped := false
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
		var changed map[string]bool
		if err == nil {
			z, changed, e.res, err = s.stage(cur, c, touched, e.res, cur != old, sg)
		}
		if err != nil {
			e.err = err
			close(e.done)
			continue
		}
		cur = z
		bumped = bumped || e.res.Bumped
		if all != nil && changed != nil {
			for k := range changed {
				all[k] = true
			}
		} else {
			all = nil // the whole zone was signed: compare it whole
		}
		ok = append(ok, e)
		if !slices.Contains(authors, e.author) {
			authors = append(authors, e.author)
		}
	}
	if len(ok) == 0 {
		// Nothing to commit (no change, or refused), but the zone's state
		// was read from the file: its pages are given back as after a
		// commit. An edit that keeps finding its records there (a
		// configuration tool that asserts them every minute) would
		// otherwise map the file a page at a time.
		s.releaseSoon(false)
		return
	}
	err = s.As(strings.Join(authors, ",")).commitEdit(old, cur, all, OpEdit)
	for _, e := range ok {
		if err != nil {
			e.err = err
		} else {
			e.res.Zone, e.res.Serial, e.res.Records = cur, cur.Serial(), cur.Len()
			e.res.Bumped = e.res.Bumped || bumped
		}
		close(e.done)
	}
}

// stage makes the version of a zone that c leaves: only the touched
// names are read, changed and checked (zone.Apply) and, in a zone the
// signer manages (sg not nil), signed with the chain patched around them
// (dnssec.SignEdit). It returns the names whose records changed, or nil
// when the zone had to be signed whole. The serial moves forward unless
// keepSerial is set (a later edit of a group, whose first edit moved it
// already) or c sets one that is ahead.
func (s *Store) stage(old *zone.Zone, c Change, touched map[string]bool, res PutResult, keepSerial bool, sg *signing) (*zone.Zone, map[string]bool, PutResult, error) {
	origin := old.Origin
	if sg != nil {
		// The editor changes the unsigned zone; the signer owns the rest.
		if err := checkUnmanaged(origin, c); err != nil {
			return nil, nil, res, err
		}
	}
	var base []dns.RR
	for k := range touched {
		base = appendNames(base, old, k)
	}
	if sg != nil {
		base = slices.DeleteFunc(base, func(rr dns.RR) bool {
			t := rr.Header().Rrtype
			return t == dns.TypeRRSIG || dnssec.Managed(t)
		})
	}
	rrs, newSOA, err := applyChange(base, c)
	if err != nil {
		return nil, nil, res, err
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
			return nil, nil, res, fmt.Errorf("zone %s: change refused: %w", origin, err)
		}
		changes[k] = append(changes[k], rr)
	}
	if sg == nil {
		z, err := zone.Apply(old, changes)
		if err != nil {
			return nil, nil, res, fmt.Errorf("zone %s: change refused: %w", origin, err)
		}
		if sameAt(old, z, touched) {
			return nil, nil, res, fmt.Errorf("zone %s: %w", origin, ErrNoChange)
		}
		return z, touched, res, nil
	}
	if sameUnsigned(old, changes) {
		return nil, nil, res, fmt.Errorf("zone %s: %w", origin, ErrNoChange)
	}
	z, changed, err := s.signEdit(old, changes, sg)
	if err != nil {
		return nil, nil, res, err
	}
	return z, changed, res, nil
}

// checkUnmanaged refuses a change of the records the signer makes.
func checkUnmanaged(origin string, c Change) error {
	for _, rr := range c.Add {
		if t := rr.Header().Rrtype; dnssec.Managed(t) {
			return fmt.Errorf("zone %s: %s %s: %w", origin, rr.Header().Name, dns.Type(t), dnssec.ErrManagedData)
		}
	}
	for _, d := range c.Delete {
		t := d.Type
		if d.RR != nil {
			t = d.RR.Header().Rrtype
		}
		if t != 0 && dnssec.Managed(t) {
			return fmt.Errorf("zone %s: %s %s: %w", origin, d.Name, dns.Type(t), dnssec.ErrManagedData)
		}
	}
	return nil
}

// signEdit signs the version of old, a zone the signer manages, in which
// the names of changes hold the given unsigned records: incrementally
// where it can, whole (changed nil) where the change reaches every
// signature. The expiry guard is checked against the new SOA and the
// largest TTL.
func (s *Store) signEdit(old *zone.Zone, changes map[string][]dns.RR, sg *signing) (*zone.Zone, map[string]bool, error) {
	origin := old.Origin
	soa := old.SOA
	largest := s.maxTTLOf(old)
	for _, rrs := range changes {
		for _, rr := range rrs {
			largest = max(largest, rr.Header().Ttl)
			if x, ok := rr.(*dns.SOA); ok {
				soa = x
			}
		}
	}
	if err := sg.Policy.CheckZone(soa, max(largest, soa.Hdr.Ttl)); err != nil {
		// The bound may be stale (the largest TTL deleted): look again.
		z, berr := s.buildWhole(old, changes)
		if berr != nil {
			return nil, nil, berr
		}
		largest = maxTTL(z)
		if err := sg.Policy.CheckZone(soa, max(largest, soa.Hdr.Ttl)); err != nil {
			return nil, nil, fmt.Errorf("zone %s: %w", origin, err)
		}
	}
	now := s.opts.Now()
	out, err := dnssec.SignEdit(dnssec.EditInput{Prev: old, Changes: changes, Keys: sg.Keys, Policy: *sg.Policy, Now: now})
	switch {
	case errors.Is(err, dnssec.ErrSignAll):
		z, err := s.buildWhole(old, changes)
		if err != nil {
			return nil, nil, err
		}
		if z.Len() >= largeZone {
			defer s.gcTight()()
		}
		if z, err = s.signZone(z, old, sg, now); err != nil {
			return nil, nil, err
		}
		s.setMaxTTL(z, largest)
		return z, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("zone %s: change refused: %w", origin, err)
	}
	s.opts.Logger.Debug("zone signed incrementally", "zone", origin, "serial", out.Zone.Serial(),
		"names", len(out.Changed), "signatures_made", out.Made, "signatures_kept", out.Kept)
	s.setMaxTTL(out.Zone, largest)
	return out.Zone, out.Changed, nil
}

// buildWhole builds the unsigned zone of old's records with the names of
// changes holding the given records.
func (s *Store) buildWhole(old *zone.Zone, changes map[string][]dns.RR) (*zone.Zone, error) {
	rrs := dnssec.Strip(old)
	rrs = slices.DeleteFunc(rrs, func(rr dns.RR) bool {
		k, err := zone.WireKey(rr.Header().Name)
		_, changed := changes[k]
		return err == nil && changed
	})
	for _, c := range changes {
		rrs = append(rrs, c...)
	}
	z, err := zone.Build(old.Origin, rrs)
	if err != nil {
		return nil, fmt.Errorf("zone %s: change refused: %w", old.Origin, err)
	}
	return z, nil
}

// maxTTLOf returns the largest TTL of z's records, or more: what an edit
// left is a bound kept from the version before, not a walk of the zone.
func (s *Store) maxTTLOf(z *zone.Zone) uint32 {
	s.mu.Lock()
	b, ok := s.ttls[z.Origin]
	s.mu.Unlock()
	if ok && b.z.Value() == z {
		return b.ttl
	}
	t := maxTTL(z)
	s.setMaxTTL(z, t)
	return t
}

func (s *Store) setMaxTTL(z *zone.Zone, ttl uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ttls == nil {
		s.ttls = map[string]ttlBound{}
	}
	s.ttls[z.Origin] = ttlBound{z: weak.Make(z), ttl: ttl}
}

// ttlBound is a bound on the largest TTL of one version of a zone, which
// it does not keep alive.
type ttlBound struct {
	z   weak.Pointer[zone.Zone]
	ttl uint32
}

// sameUnsigned reports whether old holds what changes gives, the SOA
// serial, the signer's records and signatures aside.
func sameUnsigned(old *zone.Zone, changes map[string][]dns.RR) bool {
	for k, rrs := range changes {
		var have []dns.RR
		if n := old.Lookup(k); n != nil {
			for _, set := range n.RRsets {
				if !dnssec.Managed(set.Type) {
					have = append(have, set.RRs()...)
				}
			}
		}
		// Both ways, for rrs may list a record twice (an added duplicate).
		for _, x := range rrs {
			if !slices.ContainsFunc(have, func(y dns.RR) bool { return sameRecord(x, y) }) {
				return false
			}
		}
		for _, y := range have {
			if !slices.ContainsFunc(rrs, func(x dns.RR) bool { return sameRecord(x, y) }) {
				return false
			}
		}
	}
	return true
}

// commitEdit writes the changed names of z, the version of a zone that
// follows old (every name that differs, when changed is nil), and its
// journal entry in one transaction, then publishes z; the zone's lock is
// held.
func (s *Store) commitEdit(old, z *zone.Zone, changed map[string]bool, op string, also ...func(*bolt.Tx) error) error {
	now := s.opts.Now()
	err := s.update(func(tx *bolt.Tx) error {
		if err := checkPrimary(tx, z.Origin); err != nil {
			return err
		}
		if err := writeVersion(tx, old, z, changed, now); err != nil {
			return err
		}
		for _, fn := range also {
			if err := fn(tx); err != nil {
				return err
			}
		}
		return s.journal(tx, old, z, op, now, changed)
	})
	if err != nil {
		return fmt.Errorf("store zone %s: %w", z.Origin, err)
	}
	s.setCached(z.Origin, z)
	s.publish(z.Origin, z)
	return nil
}

// appendNames appends the records z holds at the name with key k, those
// of an NSEC3 owner included.
func appendNames(rrs []dns.RR, z *zone.Zone, k string) []dns.RR {
	add := func(n *zone.Node) {
		for _, set := range n.RRsets {
			rrs = append(rrs, set.All()...)
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
			if sa.Type != sb.Type || !sameSet(sa.RRs(), sb.RRs()) || !sameSet(sa.Sigs(), sb.Sigs()) {
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
		if sa.Type != sb.Type || sa.TTL != sb.TTL || !dnssec.SameRRs(sa.RRs(), sb.RRs()) || !dnssec.SameRRs(sa.Sigs(), sb.Sigs()) {
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
