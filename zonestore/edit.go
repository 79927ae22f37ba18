package zonestore

import (
	"fmt"
	"slices"
	"strings"
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
func (s *Store) UpdateFunc(origin string, fn func(*zone.Zone) (Change, error)) (PutResult, error) {
	origin = zone.Fqdn(origin)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.load(origin)
	if err != nil {
		return PutResult{}, err
	}
	res := PutResult{OldSerial: old.Serial(), OldRecords: old.Len()}
	c, err := fn(old)
	if err != nil {
		return res, err
	}

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
			return res, err
		}
		dels[i] = d
	}
	c.Delete = dels
	for _, rr := range c.Add {
		if err := touch(rr.Header().Name); err != nil {
			return res, err
		}
	}

	sg, err := s.loadSigning(origin)
	if err != nil {
		return res, err
	}
	signed := sg != nil && sg.Policy != nil
	base := old.Records()
	if signed {
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
		base = dnssec.Strip(old)
	}
	rrs, newSOA, err := applyChange(base, c)
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
	if signed && sameData(old, z) || !signed && sameRecords(old, z) {
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
		nb := zb.Bucket(bucketNames)
		if signed {
			// Signed in the same transaction: the edit and its signatures
			// land together or not at all.
			if z, err = s.signZone(z, old, sg, s.opts.Now()); err != nil {
				return err
			}
			if err := writeDiff(nb, old, z); err != nil {
				return err
			}
			if err := zb.Bucket(bucketInfo).Put(keyUpdated, []byte(now)); err != nil {
				return err
			}
			return s.journal(tx, old, z, OpEdit, s.opts.Now(), nil)
		}
		for key := range touched {
			ck := storeKey(zone.CanonicalKey(key))
			n := z.Lookup(key)
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
		if err := zb.Bucket(bucketInfo).Put(keyUpdated, []byte(now)); err != nil {
			return err
		}
		return s.journal(tx, old, z, OpEdit, s.opts.Now(), touched)
	})
	if err != nil {
		return res, fmt.Errorf("store zone %s: %w", origin, err)
	}
	res.Zone, res.Serial, res.Records = z, z.Serial(), z.Len()
	s.cache[origin] = z
	s.publish(origin, z)
	return res, nil
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

// sameRecords reports whether two versions of a zone hold the same records,
// the SOA serial aside. The order of records within an RRset does not count.
func sameRecords(a, b *zone.Zone) bool {
	if a.Len() != b.Len() || a.Names() != b.Names() {
		return false
	}
	same := true
	a.Walk(func(na *zone.Node) bool {
		nb := b.Lookup(na.Key)
		if nb == nil || len(na.RRsets) != len(nb.RRsets) {
			same = false
			return false
		}
		for i := range na.RRsets {
			sa, sb := &na.RRsets[i], &nb.RRsets[i]
			if sa.Type != sb.Type || !sameSet(sa.RRs, sb.RRs) || !sameSet(sa.Sigs, sb.Sigs) {
				same = false
				return false
			}
		}
		return true
	})
	return same
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
