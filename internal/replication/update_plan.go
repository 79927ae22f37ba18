package replication

import (
	"fmt"
	"slices"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// The message logic of RFC 2136 dynamic UPDATE, as pure functions of the
// zone as last committed and the message: prerequisites (§3.2), the
// update section's prescan (§3.4.1) and its application (§3.4.2), which
// becomes one zonestore.Change.
//
// Where RFC 2136 has some updates silently ignored, sovdns refuses the
// whole message with REFUSED and changes nothing, so that a client never
// believes a change was made that was not:
//   - a CNAME added where other data is, or other data where a CNAME is
//     (§3.4.2.2 ignores the added record);
//   - the apex SOA deleted, as an RRset or as a record (§3.4.2.3 and
//     §3.4.2.4 ignore it);
//   - the apex NS RRset deleted, or its last record (§3.4.2.3 and
//     §3.4.2.4 ignore it);
//   - records the signer maintains (RRSIG, NSEC, NSEC3, NSEC3PARAM,
//     DNSKEY, CDS, CDNSKEY) added or deleted in a zone sovdns signs.
//
// Deleting all RRsets of the apex keeps its SOA and NS RRsets (§3.4.2.3),
// and in a zone sovdns signs, deleting all RRsets of a name leaves the
// signer's records to the signer. An added SOA whose serial is not newer
// than the zone's is ignored (§3.4.2.2). Every update record is applied in
// order, so a record added and then deleted in one message is not added.

// rcodeError is an UPDATE answered with rcode, for reason.
type rcodeError struct {
	rcode  int
	reason string
}

func (e *rcodeError) Error() string {
	return dns.RcodeToString[e.rcode] + ": " + e.reason
}

func rcodeErr(rcode int, format string, args ...any) error {
	return &rcodeError{rcode: rcode, reason: fmt.Sprintf(format, args...)}
}

// rdLength is the length of rr's RDATA, as read from the wire: UPDATE
// messages come unpacked, and an empty RDATA unpacks to a record of its
// type with empty fields, told apart only by this.
func rdLength(rr dns.RR) int {
	return int(rr.Header().Rdlength)
}

// isMeta reports whether t is a type that cannot be held in a zone.
func isMeta(t uint16) bool {
	switch t {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB,
		dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeNone:
		return true
	}
	return false
}

// inZone returns the wire key of name, or NOTZONE when it is not at or
// below origin (whose wire key is okey).
func inZone(name, okey string) (string, error) {
	key, err := zone.WireKey(name)
	if err != nil {
		return "", rcodeErr(dns.RcodeFormatError, "bad name %q", name)
	}
	if !zone.IsBelow(key, okey) {
		return "", rcodeErr(dns.RcodeNotZone, "%s is outside the zone", name)
	}
	return key, nil
}

// checkPrereqs evaluates the prerequisite section (RFC 2136 §3.2) against
// z. It returns nil when every prerequisite holds, and an *rcodeError
// otherwise.
func checkPrereqs(z *zone.Zone, prereqs []dns.RR) error {
	type prereqKey struct {
		key string
		t   uint16
	}
	var temp []prereqKey
	want := map[prereqKey][]dns.RR{}
	for _, rr := range prereqs {
		h := rr.Header()
		if h.Ttl != 0 {
			return rcodeErr(dns.RcodeFormatError, "prerequisite %s has a TTL", h.Name)
		}
		key, err := inZone(h.Name, z.Key)
		if err != nil {
			return err
		}
		n := z.LookupAny(key)
		switch h.Class {
		case dns.ClassANY:
			if rdLength(rr) != 0 {
				return rcodeErr(dns.RcodeFormatError, "prerequisite %s of class ANY has data", h.Name)
			}
			if h.Rrtype == dns.TypeANY {
				if !nameInUse(n) {
					return rcodeErr(dns.RcodeNameError, "prerequisite: %s is not in use", h.Name)
				}
			} else if !rrsetExists(n, h.Rrtype) {
				return rcodeErr(dns.RcodeNXRrset, "prerequisite: no %s RRset at %s", dns.Type(h.Rrtype), h.Name)
			}
		case dns.ClassNONE:
			if rdLength(rr) != 0 {
				return rcodeErr(dns.RcodeFormatError, "prerequisite %s of class NONE has data", h.Name)
			}
			if h.Rrtype == dns.TypeANY {
				if nameInUse(n) {
					return rcodeErr(dns.RcodeYXDomain, "prerequisite: %s is in use", h.Name)
				}
			} else if rrsetExists(n, h.Rrtype) {
				return rcodeErr(dns.RcodeYXRrset, "prerequisite: a %s RRset exists at %s", dns.Type(h.Rrtype), h.Name)
			}
		case dns.ClassINET:
			if h.Rrtype == dns.TypeANY {
				return rcodeErr(dns.RcodeFormatError, "prerequisite %s of type ANY has class IN", h.Name)
			}
			k := prereqKey{key, h.Rrtype}
			if _, seen := want[k]; !seen {
				temp = append(temp, k)
			}
			want[k] = append(want[k], rr)
		default:
			return rcodeErr(dns.RcodeFormatError, "prerequisite %s has class %s", h.Name, dns.Class(h.Class))
		}
	}
	// Value-dependent: the RRset must be exactly the records given.
	for _, k := range temp {
		var have []dns.RR
		if n := z.LookupAny(k.key); n != nil {
			have = rrsetOf(n, k.t)
		}
		if !sameRdata(have, want[k]) {
			h := want[k][0].Header()
			return rcodeErr(dns.RcodeNXRrset, "prerequisite: the %s RRset at %s is not as given", dns.Type(k.t), h.Name)
		}
	}
	return nil
}

func nameInUse(n *zone.Node) bool { return n != nil && !n.Empty() }

func rrsetExists(n *zone.Node, t uint16) bool {
	return n != nil && len(rrsetOf(n, t)) > 0
}

// rrsetOf returns n's records of type t; for RRSIG, every signature at n.
func rrsetOf(n *zone.Node, t uint16) []dns.RR {
	if t == dns.TypeRRSIG {
		var sigs []dns.RR
		for _, set := range n.RRsets {
			sigs = append(sigs, set.Sigs()...)
		}
		return sigs
	}
	if set := n.Get(t); set != nil {
		return set.RRs()
	}
	return nil
}

// sameRdata reports whether a and b hold the same records, TTLs aside, in
// any order and counting duplicates once.
func sameRdata(a, b []dns.RR) bool {
	contains := func(rrs []dns.RR, rr dns.RR) bool {
		return slices.ContainsFunc(rrs, func(x dns.RR) bool { return dns.IsDuplicate(x, rr) })
	}
	for _, rr := range a {
		if !contains(b, rr) {
			return false
		}
	}
	for _, rr := range b {
		if !contains(a, rr) {
			return false
		}
	}
	return true
}

// prescan checks the update section (RFC 2136 §3.4.1.3) of an UPDATE of
// the zone whose wire key is okey.
func prescan(okey string, updates []dns.RR) error {
	for _, rr := range updates {
		h := rr.Header()
		if _, err := inZone(h.Name, okey); err != nil {
			return err
		}
		t := h.Rrtype
		switch h.Class {
		case dns.ClassINET:
			if isMeta(t) {
				return rcodeErr(dns.RcodeFormatError, "%s records cannot be added", dns.Type(t))
			}
			if rdLength(rr) == 0 {
				return rcodeErr(dns.RcodeFormatError, "%s %s to add has no data", h.Name, dns.Type(t))
			}
		case dns.ClassANY:
			if h.Ttl != 0 || rdLength(rr) != 0 || (t != dns.TypeANY && isMeta(t)) {
				return rcodeErr(dns.RcodeFormatError, "malformed RRset deletion %s %s", h.Name, dns.Type(t))
			}
		case dns.ClassNONE:
			if h.Ttl != 0 || isMeta(t) {
				return rcodeErr(dns.RcodeFormatError, "malformed record deletion %s %s", h.Name, dns.Type(t))
			}
		default:
			return rcodeErr(dns.RcodeFormatError, "update %s has class %s", h.Name, dns.Class(h.Class))
		}
	}
	return nil
}

// simSet is an RRset as the update leaves it.
type simSet struct {
	ttl uint32
	rrs []dns.RR
}

// simNode is a name as the update leaves it.
type simNode struct {
	name string
	key  string
	sets map[uint16]*simSet
	orig *zone.Node // nil when the name held nothing
}

// types returns the node's types with records, in order.
func (s *simNode) types() []uint16 {
	var ts []uint16
	for t, set := range s.sets {
		if len(set.rrs) > 0 {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	return ts
}

// planUpdate applies the update section (already prescanned) to z in
// order, as RFC 2136 §3.4.2 has it, and returns the change that leads from
// z to the result. signed says that sovdns signs the zone: the signer's
// records are then not the client's to change. The change is empty when
// the update changes nothing.
func planUpdate(z *zone.Zone, updates []dns.RR, signed bool) (zonestore.Change, error) {
	nodes := map[string]*simNode{}
	var order []*simNode
	node := func(key, name string) *simNode {
		if s := nodes[key]; s != nil {
			return s
		}
		s := &simNode{name: zone.Fqdn(name), key: key, sets: map[uint16]*simSet{}}
		if n := z.LookupAny(key); n != nil && !n.Empty() {
			s.orig = n
			s.name = n.Name
			for _, set := range n.RRsets {
				s.sets[set.Type] = &simSet{ttl: set.TTL, rrs: slices.Clone(set.RRs())}
			}
			if sigs := rrsetOf(n, dns.TypeRRSIG); len(sigs) > 0 {
				s.sets[dns.TypeRRSIG] = &simSet{ttl: sigs[0].Header().Ttl, rrs: sigs}
			}
		}
		nodes[key] = s
		order = append(order, s)
		return s
	}
	managed := func(t uint16) bool { return signed && dnssec.Managed(t) }

	for _, rr := range updates {
		h := rr.Header()
		key, err := zone.WireKey(h.Name)
		if err != nil {
			return zonestore.Change{}, rcodeErr(dns.RcodeFormatError, "bad name %q", h.Name)
		}
		s := node(key, h.Name)
		apex := key == z.Key
		t := h.Rrtype
		if managed(t) {
			return zonestore.Change{}, rcodeErr(dns.RcodeRefused, "%s %s: %v", h.Name, dns.Type(t), dnssec.ErrManagedData)
		}
		switch h.Class {
		case dns.ClassINET: // add to an RRset
			if err := addRecord(s, rr, apex); err != nil {
				return zonestore.Change{}, err
			}
		case dns.ClassANY:
			switch {
			case t == dns.TypeANY: // delete all RRsets from a name
				for t := range s.sets {
					if (apex && (t == dns.TypeSOA || t == dns.TypeNS)) || managed(t) {
						continue
					}
					delete(s.sets, t)
				}
			case apex && t == dns.TypeSOA:
				return zonestore.Change{}, rcodeErr(dns.RcodeRefused, "the zone's SOA cannot be deleted")
			case apex && t == dns.TypeNS:
				return zonestore.Change{}, rcodeErr(dns.RcodeRefused, "the zone's NS RRset cannot be deleted")
			default: // delete an RRset
				delete(s.sets, t)
			}
		case dns.ClassNONE: // delete a record from an RRset
			if apex && t == dns.TypeSOA {
				return zonestore.Change{}, rcodeErr(dns.RcodeRefused, "the zone's SOA cannot be deleted")
			}
			set := s.sets[t]
			if set == nil {
				continue
			}
			del := dns.Copy(rr)
			del.Header().Class = dns.ClassINET
			before := len(set.rrs)
			set.rrs = slices.DeleteFunc(set.rrs, func(x dns.RR) bool { return dns.IsDuplicate(x, del) })
			if apex && t == dns.TypeNS && before > 0 && len(set.rrs) == 0 {
				return zonestore.Change{}, rcodeErr(dns.RcodeRefused, "the zone's last NS record cannot be deleted")
			}
		}
	}
	return diffNodes(order), nil
}

// addRecord adds rr to s (RFC 2136 §3.4.2.2).
func addRecord(s *simNode, rr dns.RR, apex bool) error {
	h := rr.Header()
	t := h.Rrtype
	switch t {
	case dns.TypeSOA:
		if !apex {
			return rcodeErr(dns.RcodeRefused, "an SOA record belongs at the zone apex only")
		}
		cur := s.sets[dns.TypeSOA]
		if cur != nil && len(cur.rrs) == 1 {
			if old, ok := cur.rrs[0].(*dns.SOA); ok && !zonestore.SerialLess(old.Serial, rr.(*dns.SOA).Serial) {
				return nil // not newer: ignored
			}
		}
		s.sets[dns.TypeSOA] = &simSet{ttl: h.Ttl, rrs: []dns.RR{rr}}
		return nil
	case dns.TypeCNAME:
		for _, other := range s.types() {
			if other != dns.TypeCNAME && !cnameCompanion(other) {
				return rcodeErr(dns.RcodeRefused, "a CNAME cannot be added at %s, which has other data (%s)", h.Name, dns.Type(other))
			}
		}
		s.sets[dns.TypeCNAME] = &simSet{ttl: h.Ttl, rrs: []dns.RR{rr}}
		return nil
	}
	if !cnameCompanion(t) {
		if set := s.sets[dns.TypeCNAME]; set != nil && len(set.rrs) > 0 {
			return rcodeErr(dns.RcodeRefused, "%s %s cannot be added next to the CNAME there", h.Name, dns.Type(t))
		}
	}
	set := s.sets[t]
	if set == nil {
		set = &simSet{}
		s.sets[t] = set
	}
	set.rrs = slices.DeleteFunc(set.rrs, func(x dns.RR) bool { return dns.IsDuplicate(x, rr) })
	set.rrs = append(set.rrs, rr)
	set.ttl = h.Ttl // an RRset has one TTL (RFC 2181 §5.2): the newest record's
	return nil
}

// cnameCompanion reports whether records of type t may share a name with
// a CNAME (RFC 4035 §2.5: the DNSSEC records of the name).
func cnameCompanion(t uint16) bool {
	return t == dns.TypeRRSIG || t == dns.TypeNSEC
}

// diffNodes returns the change from the nodes' original contents to their
// simulated ones.
func diffNodes(order []*simNode) zonestore.Change {
	c := zonestore.Change{Lenient: true}
	for _, s := range order {
		origTypes := map[uint16]*simSet{}
		if s.orig != nil {
			for _, set := range s.orig.RRsets {
				origTypes[set.Type] = &simSet{ttl: set.TTL, rrs: set.RRs()}
			}
			if sigs := rrsetOf(s.orig, dns.TypeRRSIG); len(sigs) > 0 {
				origTypes[dns.TypeRRSIG] = &simSet{ttl: sigs[0].Header().Ttl, rrs: sigs}
			}
		}
		var types []uint16
		for t := range origTypes {
			types = append(types, t)
		}
		for t := range s.sets {
			if origTypes[t] == nil {
				types = append(types, t)
			}
		}
		slices.Sort(types)
		for _, t := range types {
			var before, after []dns.RR
			var ttlBefore, ttlAfter uint32
			if o := origTypes[t]; o != nil {
				before, ttlBefore = o.rrs, o.ttl
			}
			if f := s.sets[t]; f != nil {
				after, ttlAfter = f.rrs, f.ttl
			}
			c = diffSet(c, s, t, before, after, ttlBefore, ttlAfter)
		}
	}
	return c
}

// diffSet adds to c the change of one RRset from before to after.
func diffSet(c zonestore.Change, s *simNode, t uint16, before, after []dns.RR, ttlBefore, ttlAfter uint32) zonestore.Change {
	withTTL := func(rr dns.RR) dns.RR {
		rr = dns.Copy(rr)
		rr.Header().Ttl = ttlAfter
		return rr
	}
	if t == dns.TypeSOA {
		if len(after) == 1 && (len(before) != 1 || !dns.IsDuplicate(before[0], after[0]) || ttlBefore != ttlAfter) {
			c.Add = append(c.Add, withTTL(after[0]))
		}
		return c
	}
	if len(after) == 0 {
		if len(before) == 0 {
			return c
		}
		if t == dns.TypeRRSIG {
			for _, rr := range before {
				c.Delete = append(c.Delete, zonestore.Deletion{Name: s.name, RR: rr})
			}
			return c
		}
		c.Delete = append(c.Delete, zonestore.Deletion{Name: s.name, Type: t})
		return c
	}
	var added []dns.RR
	for _, rr := range before {
		if !slices.ContainsFunc(after, func(x dns.RR) bool { return dns.IsDuplicate(x, rr) }) {
			c.Delete = append(c.Delete, zonestore.Deletion{Name: s.name, RR: rr})
		}
	}
	for _, rr := range after {
		if !slices.ContainsFunc(before, func(x dns.RR) bool { return dns.IsDuplicate(x, rr) }) {
			added = append(added, rr)
		}
	}
	if len(added) == 0 && ttlBefore != ttlAfter {
		added = after[:1] // one record added with the new TTL sets the RRset's
	}
	for _, rr := range added {
		c.Add = append(c.Add, withTTL(rr))
	}
	return c
}
