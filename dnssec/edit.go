package dnssec

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// ErrSignAll is returned by SignEdit for a change that touches every
// signature or chain record (the SOA's TTL or minimum, which the chain's
// TTL follows) or a previous version not signed as the policy and keys
// say: such a change is signed whole, by Sign.
var ErrSignAll = errors.New("the change needs the whole zone signed")

// EditInput is what SignEdit works from.
type EditInput struct {
	// Prev is the zone as last signed, under Keys and Policy.
	Prev *zone.Zone
	// Changes holds, by owner's wire key, the records each changed name
	// holds now, none of a Managed type: none at all for a name that goes.
	Changes map[string][]dns.RR
	// Refresh holds the wire keys of names (owners of NSEC3 records
	// included) whose signatures are remade where Sign would remake them:
	// those that expire within Policy.Refresh of Now.
	Refresh []string
	Keys    []*Key
	Policy  Policy
	Now     time.Time
}

// EditOutput is the signed new version and what it took.
type EditOutput struct {
	Zone *zone.Zone
	// Changed holds the wire keys of the names whose records or
	// signatures differ from Prev's, the owners of NSEC3 records included.
	Changed    map[string]bool
	Made, Kept int
}

// SignEdit returns the signed version of in.Prev in which the names of
// in.Changes hold the given records: only the RRsets that changed are
// signed, and the NSEC or NSEC3 chain is patched around the names whose
// presence, types or authority changed (their neighbours' chain records,
// the names below a delegation made or removed, the empty non-terminals
// that appear or go). The result is the zone Sign makes of the same
// records, every unchanged signature kept: its cost follows the change,
// not the zone.
func SignEdit(in EditInput) (EditOutput, error) {
	prev, p := in.Prev, in.Policy
	edits := make(map[string][]dns.RR, len(in.Changes)+1)
	var soa *dns.SOA
	for k, rrs := range in.Changes {
		k = strings.ToLower(k)
		for _, rr := range rrs {
			h := rr.Header()
			if Managed(h.Rrtype) {
				return EditOutput{}, fmt.Errorf("%s %s: %w", h.Name, dns.Type(h.Rrtype), ErrManagedData)
			}
			if s, ok := rr.(*dns.SOA); ok && k == prev.Key {
				soa = s
			}
		}
		edits[k] = rrs
	}
	if soa == nil {
		soa = prev.SOA
	}
	s, err := newSigner(Input{Prev: prev, Keys: in.Keys, Policy: p, Now: in.Now}, prev.Origin, soa)
	if err != nil {
		return EditOutput{}, err
	}
	if neg, key := chainTTLs(prev.SOA); neg != s.negTTL || key != s.keyTTL {
		return EditOutput{}, ErrSignAll
	}
	apex := s.apexSets()
	if !s.signedAlike(prev, apex) {
		return EditOutput{}, ErrSignAll
	}
	// Below a new delegation the names lose their chain records and
	// signatures with their authority: they go into the change as what
	// they hold unsigned, so that only glue remains to be checked.
	for k, rrs := range in.Changes {
		k = strings.ToLower(k)
		if k == prev.Key || !slices.ContainsFunc(rrs, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeNS }) {
			continue
		}
		if n := prev.Lookup(k); n != nil && n.IsCut() {
			continue
		}
		prev.Below(k, func(n *zone.Node) bool {
			if _, ok := edits[n.Key]; !ok {
				edits[n.Key] = unsignedRecords(n)
			}
			return true
		})
	}
	if rrs, ok := edits[prev.Key]; ok {
		for _, set := range apex {
			rrs = append(slices.Clip(rrs), set...)
		}
		edits[prev.Key] = rrs
	}

	// The new version's names and data, the old chain and signatures
	// left where the names are untouched.
	mid, err := zone.Apply(prev, edits)
	if err != nil {
		return EditOutput{}, err
	}
	e := &editor{signer: s, prev: prev, mid: mid, apex: apex, recs: map[string]bool{}, chain: map[string]dns.RR{}}
	cand := e.candidates(edits)
	if p.Denial == DenialNSEC3 {
		err = e.patchNSEC3(cand)
	} else {
		e.patchNSEC(cand)
	}
	if err != nil {
		return EditOutput{}, err
	}
	for _, k := range in.Refresh {
		k = strings.ToLower(k)
		if n := prev.LookupNSEC3(k); n != nil {
			if _, ok := e.chain[k]; !ok {
				e.chain[k] = n.Get(dns.TypeNSEC3).RRs()[0]
			}
		} else if mid.Lookup(k) != nil {
			e.recs[k] = true
		}
	}
	changes := e.changes()
	s.signAll()
	for _, j := range s.jobs {
		changes[j.key] = append(changes[j.key], j.sigs...)
	}
	out, err := zone.Apply(prev, changes)
	if err != nil {
		return EditOutput{}, fmt.Errorf("zone %s: signed zone does not validate: %w", prev.Origin, err)
	}
	changed := make(map[string]bool, len(changes))
	for k := range changes {
		changed[k] = true
	}
	return EditOutput{Zone: out, Changed: changed, Made: s.made, Kept: s.kept}, nil
}

// signedAlike reports whether prev carries the apex records and the kind
// of chain that s makes, so that its unchanged parts can stay.
func (s *signer) signedAlike(prev *zone.Zone, apex [][]dns.RR) bool {
	for _, set := range apex {
		have := prev.Apex.Get(set[0].Header().Rrtype)
		if have == nil || have.TTL != set[0].Header().Ttl || !SameRRs(have.RRs(), set) {
			return false
		}
	}
	for _, t := range []uint16{dns.TypeCDS, dns.TypeCDNSKEY, dns.TypeNSEC3PARAM} {
		if prev.Apex.Get(t) != nil && !slices.ContainsFunc(apex, func(set []dns.RR) bool { return set[0].Header().Rrtype == t }) {
			return false
		}
	}
	if s.in.Policy.Denial == DenialNSEC3 {
		first := prev.FirstNSEC3()
		if first == nil || prev.Apex.Get(dns.TypeNSEC) != nil {
			return false
		}
		n3, ok := first.Get(dns.TypeNSEC3).RRs()[0].(*dns.NSEC3)
		p := s.in.Policy
		return ok && n3.Hdr.Ttl == s.negTTL && (n3.Flags&1 == 1) == p.OptOut &&
			n3.Iterations == p.Iterations && strings.EqualFold(n3.Salt, saltText(p.Salt))
	}
	nsec := prev.Apex.Get(dns.TypeNSEC)
	return nsec != nil && nsec.TTL == s.negTTL && !prev.HasNSEC3()
}

// editor patches a signed zone around a change.
type editor struct {
	*signer
	prev, mid *zone.Zone
	apex      [][]dns.RR
	// recs holds the names whose records are remade from mid: the
	// candidates and the owners of NSEC records that change.
	recs map[string]bool
	// chain holds the chain records that change, by owner's wire key;
	// nil for an NSEC3 record that goes.
	chain map[string]dns.RR
}

// candidates returns the names whose records, chain membership or
// authority the edit can change: the edited names, their ancestors
// (empty non-terminals that appear or go) and everything below a name
// that became or stopped being a delegation.
func (e *editor) candidates(edits map[string][]dns.RR) map[string]bool {
	cand := make(map[string]bool, 2*len(edits))
	for k := range edits {
		cand[k] = true
		for a, ok := zone.ParentKey(k); ok && !cand[a] && len(a) >= len(e.prev.Key); a, ok = zone.ParentKey(a) {
			cand[a] = true
		}
		po, mn := e.prev.Lookup(k), e.mid.Lookup(k)
		if (po != nil && po.IsCut()) != (mn != nil && mn.IsCut()) {
			e.mid.Below(k, func(n *zone.Node) bool {
				cand[n.Key] = true
				return true
			})
		}
	}
	return cand
}

// patchNSEC remakes the NSEC record of every candidate in the chain and
// of the chain member before each candidate, whose successor may change.
func (e *editor) patchNSEC(cand map[string]bool) {
	owners := map[string]*zone.Node{}
	for k := range cand {
		e.recs[k] = true
		if n := e.mid.Lookup(k); nsecMember(n) {
			owners[k] = n
		}
		if p := e.prevMember(k); p != nil {
			owners[p.Key] = p
		}
	}
	for k, n := range owners {
		rr := e.nsec(n, e.nextMember(k).Name, e.apex)
		if old := e.prev.Lookup(k); old != nil && !cand[k] {
			if set := old.Get(dns.TypeNSEC); set != nil && set.TTL == rr.Hdr.Ttl && SameRRs(set.RRs(), []dns.RR{rr}) {
				continue
			}
		}
		e.recs[k] = true
		e.chain[k] = rr
	}
}

// prevMember returns the NSEC chain member of mid before k, wrapping to
// the last.
func (e *editor) prevMember(k string) *zone.Node {
	var out *zone.Node
	find := func(n *zone.Node) bool {
		if nsecMember(n) {
			out = n
			return false
		}
		return true
	}
	e.mid.Before(k, find)
	if out == nil {
		e.mid.Reverse(find)
	}
	return out
}

// nextMember returns the NSEC chain member of mid after k, wrapping to
// the apex.
func (e *editor) nextMember(k string) *zone.Node {
	var out *zone.Node
	e.mid.After(k, func(n *zone.Node) bool {
		if nsecMember(n) {
			out = n
			return false
		}
		return true
	})
	if out == nil {
		out = e.mid.Apex
	}
	return out
}

// patchNSEC3 hashes the candidates that join or leave the chain, remakes
// the NSEC3 records of those that join or stay (their types may have
// changed) and of the hashes before each that joins or leaves.
func (e *editor) patchNSEC3(cand map[string]bool) error {
	p := e.in.Policy
	gone := map[string]bool{}         // hashes that leave the chain
	joined := map[string]*zone.Node{} // hashes that join it, with their names
	remade := map[string]*zone.Node{} // hashes whose record is made anew
	for k := range cand {
		e.recs[k] = true
		po, mn := e.prev.Lookup(k), e.mid.Lookup(k)
		was, is := nsec3Member(po, p), nsec3Member(mn, p)
		if !was && !is {
			continue
		}
		name := keyName(po, mn)
		h := strings.ToLower(hashOf(name, p))
		switch {
		case was && !is:
			gone[h] = true
		case is && !was:
			if other, ok := joined[h]; ok {
				return fmt.Errorf("%s and %s: %w", other.Name, mn.Name, ErrHashClash)
			}
			if n, match := e.prev.FindNSEC3(h); match && n != nil {
				return fmt.Errorf("%s and the owner of %s: %w", mn.Name, n.Name, ErrHashClash)
			}
			joined[h] = mn
			remade[h] = mn
		default:
			remade[h] = mn
		}
	}
	added := make([]string, 0, len(joined))
	for h := range joined {
		added = append(added, h)
	}
	slices.Sort(added)
	live := func(n *zone.Node) bool { return !gone[zone.HashLabel(n.Key)] }
	// around returns the hashes of the new chain nearest before and
	// after h, wrapping around.
	around := func(h string) (before, after string) {
		b, a := e.prev.NSEC3Around(h, live)
		if b != nil {
			before = zone.HashLabel(b.Key)
		}
		if a != nil {
			after = zone.HashLabel(a.Key)
		}
		i, _ := slices.BinarySearch(added, h)
		if i > 0 && added[i-1] > before {
			before = added[i-1]
		}
		j := i
		if j < len(added) && added[j] == h {
			j++
		}
		if j < len(added) && (after == "" || added[j] < after) {
			after = added[j]
		}
		if before == "" {
			before = e.lastHash(added, live)
		}
		if after == "" {
			after = e.firstHash(added, live)
		}
		return before, after
	}
	for h := range gone {
		if _, ok := joined[h]; !ok {
			e.chain[e.hashKey(h)] = nil
		}
		if b, _ := around(h); b != "" && !gone[b] {
			if _, ok := remade[b]; !ok {
				remade[b] = nil
			}
		}
	}
	for h := range joined {
		if b, _ := around(h); b != h {
			if _, ok := remade[b]; !ok {
				remade[b] = nil
			}
		}
	}
	for h, n := range remade {
		_, next := around(h)
		if next == "" { // the only member
			next = h
		}
		key := e.hashKey(h)
		old := e.prev.LookupNSEC3(key)
		var rr *dns.NSEC3
		if n != nil {
			rr = e.nsec3(n, h, next, e.apex)
		} else if old != nil {
			c := *old.Get(dns.TypeNSEC3).RRs()[0].(*dns.NSEC3)
			c.NextDomain = strings.ToUpper(next)
			rr = &c
		} else {
			continue
		}
		if old != nil {
			if set := old.Get(dns.TypeNSEC3); set != nil && SameRRs(set.RRs(), []dns.RR{rr}) {
				continue
			}
		}
		e.chain[key] = rr
	}
	return nil
}

// firstHash and lastHash return the first and last hash of the new
// chain: of prev's that stay (live) and those added, sorted.
func (e *editor) firstHash(added []string, live func(*zone.Node) bool) string {
	_, a := e.prev.NSEC3Around("", live)
	h := ""
	if a != nil {
		h = zone.HashLabel(a.Key)
	}
	if len(added) > 0 && (h == "" || added[0] < h) {
		h = added[0]
	}
	return h
}

func (e *editor) lastHash(added []string, live func(*zone.Node) bool) string {
	b, _ := e.prev.NSEC3Around("~", live)
	h := ""
	if b != nil {
		h = zone.HashLabel(b.Key)
	}
	if len(added) > 0 && added[len(added)-1] > h {
		h = added[len(added)-1]
	}
	return h
}

// hashKey returns the wire key of the NSEC3 owner for hash h.
func (e *editor) hashKey(h string) string {
	return string(rune(len(h))) + h + e.prev.Key
}

// unsignedRecords returns the records of n that the signer does not make.
func unsignedRecords(n *zone.Node) []dns.RR {
	var out []dns.RR
	for _, set := range n.RRsets {
		if !Managed(set.Type) {
			out = append(out, set.RRs()...)
		}
	}
	return out
}

// keyName returns the name of whichever node is not nil.
func keyName(a, b *zone.Node) string {
	if a != nil {
		return a.Name
	}
	return b.Name
}

// changes returns the records of every name that changes, without
// signatures, and queues the RRsets to sign.
func (e *editor) changes() map[string][]dns.RR {
	out := make(map[string][]dns.RR, len(e.recs)+len(e.chain))
	for k := range e.recs {
		var rrs []dns.RR
		if n := e.mid.Lookup(k); n != nil {
			rrs = unsignedRecords(n)
			if k == e.prev.Key {
				for _, set := range e.apex {
					rrs = append(rrs, set...)
				}
			}
		}
		if rr := e.chain[k]; rr != nil {
			rrs = append(rrs, rr)
		} else if n := e.mid.Lookup(k); e.in.Policy.Denial == DenialNSEC && nsecMember(n) {
			// A name refreshed, not changed: its NSEC record stays.
			if set := e.prev.Lookup(k).Get(dns.TypeNSEC); set != nil {
				rrs = append(rrs, set.RRs()...)
			}
		}
		out[k] = rrs
	}
	for k, rr := range e.chain {
		if _, ok := out[k]; ok {
			continue
		}
		if rr == nil {
			out[k] = nil
		} else {
			out[k] = []dns.RR{rr}
		}
	}
	for k, rrs := range out {
		if e.same(k, rrs) {
			delete(out, k) // exactly as it was, signatures included
			continue
		}
		for i := 0; i < len(rrs); {
			j := i + 1
			for j < len(rrs) && rrs[j].Header().Rrtype == rrs[i].Header().Rrtype {
				j++
			}
			if e.signs(k, rrs[i].Header().Rrtype) {
				e.add(k, rrs[i:j])
			}
			i = j
		}
	}
	return out
}

// signs reports whether the RRset of type t at k is signed in the new
// version: every RRset of an authoritative name or NSEC3 owner, at a
// delegation its DS and NSEC, below one none.
func (e *editor) signs(k string, t uint16) bool {
	n := e.mid.Lookup(k)
	if n == nil || n.Cut() == nil {
		return true
	}
	return n.IsCut() && (t == dns.TypeDS || t == dns.TypeNSEC)
}

// same reports whether prev holds exactly rrs at k, signed where the new
// version signs: whether the name can stay as it is.
func (e *editor) same(k string, rrs []dns.RR) bool {
	n := e.prev.LookupAny(k)
	if n == nil {
		return len(rrs) == 0
	}
	c := 0
	for _, set := range n.RRsets {
		c += len(set.RRs())
		if (len(set.Sigs()) > 0) != e.signs(k, set.Type) {
			return false
		}
		for _, sig := range set.Sigs() {
			if e.due(sig.(*dns.RRSIG)) {
				return false
			}
		}
	}
	if c != len(rrs) {
		return false
	}
	for _, rr := range rrs {
		set := n.Get(rr.Header().Rrtype)
		if set == nil || set.TTL != rr.Header().Ttl || !slices.ContainsFunc(set.RRs(), func(x dns.RR) bool { return dns.IsDuplicate(x, rr) }) {
			return false
		}
	}
	return true
}

// due reports whether sig is one that Sign would remake now: it expires
// within the policy's refresh time or is not valid yet.
func (s *signer) due(sig *dns.RRSIG) bool {
	now := uint32(s.now.Unix())
	keepUntil := uint32(s.now.Add(s.in.Policy.Refresh.D()).Unix())
	return !serialLess(keepUntil, sig.Expiration) || serialLess(now, sig.Inception)
}

// Due returns the wire keys of the names of z (owners of NSEC3 records
// included) that hold a signature expiring before until, in canonical
// order.
func Due(z *zone.Zone, until time.Time) []string {
	u := uint32(until.Unix())
	var out []string
	z.WalkAll(func(_ []byte, n *zone.Node) bool {
		for _, set := range n.RRsets {
			if slices.ContainsFunc(set.Sigs(), func(rr dns.RR) bool { return !serialLess(u, rr.(*dns.RRSIG).Expiration) }) {
				out = append(out, n.Key)
				break
			}
		}
		return true
	})
	return out
}
