package dnssec

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// Managed reports whether records of type t are made by the signer, and so
// cannot be edited in a zone it signs.
func Managed(t uint16) bool {
	switch t {
	case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeNSEC3PARAM,
		dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY:
		return true
	}
	return false
}

// Strip returns the records of z without those the signer makes: the
// zone as an editor wrote it.
func Strip(z *zone.Zone) []dns.RR {
	out := make([]dns.RR, 0, z.Len())
	z.Walk(func(n *zone.Node) bool {
		for _, set := range n.RRsets {
			if !Managed(set.Type) {
				out = append(out, set.RRs()...)
			}
		}
		return true
	})
	return out
}

// Input is what Sign works from.
type Input struct {
	// Zone is the unsigned zone: it holds no record of a Managed type.
	Zone *zone.Zone
	// Prev is the previous signed version of the zone, whose signatures
	// are kept where the RRset is unchanged, the key still signs and
	// more than Policy.Refresh is left; nil signs everything afresh.
	Prev   *zone.Zone
	Keys   []*Key
	Policy Policy
	Now    time.Time
	// Progress, if not nil, is told as the RRsets are signed how many
	// more were (64 at a time, from several goroutines at once) of total,
	// for a progress bar.
	Progress func(n, total int)
}

// Output is the signed zone and what signing it took.
type Output struct {
	Zone     *zone.Zone
	Made     int       // signatures made
	Kept     int       // signatures kept from Prev
	Earliest time.Time // when the first signature expires
}

// Sentinels for zones that cannot be signed.
var (
	ErrNoSigningKey = errors.New("no active key to sign with")
	ErrManagedData  = errors.New("record type is maintained by the signer")
	ErrHashClash    = errors.New("two names of the zone have the same NSEC3 hash; change the salt")
)

// Sign signs in.Zone: DNSKEY, CDS and CDNSKEY at the apex, the NSEC or
// NSEC3 chain, and an RRSIG by every active key of the right role over
// every authoritative RRset (at a delegation only DS and the chain's own
// record; glue is not signed).
func Sign(in Input) (Output, error) {
	z := in.Zone
	s, err := newSigner(in, z.Origin, z.SOA)
	if err != nil {
		return Output{}, err
	}
	p := in.Policy

	// The records that are not signed (at and below delegations); the
	// signed ones are the jobs'.
	var unsigned []dns.RR
	z.Walk(func(n *zone.Node) bool {
		for _, set := range n.RRsets {
			if Managed(set.Type) {
				s.err = fmt.Errorf("%s %s: %w", n.Name, dns.Type(set.Type), ErrManagedData)
				return false
			}
			if n.Cut() == nil || (n.IsCut() && set.Type == dns.TypeDS) {
				s.add(n.Key, set.RRs())
			} else {
				unsigned = append(unsigned, set.RRs()...)
			}
		}
		return true
	})
	if s.err != nil {
		return Output{}, s.err
	}
	apex := s.apexSets()
	for _, rrs := range apex {
		s.add(z.Key, rrs)
	}
	var chain []dns.RR
	if p.Denial == DenialNSEC3 {
		chain, err = s.nsec3Chain(apex)
	} else {
		chain = s.nsecChain(apex)
	}
	if err != nil {
		return Output{}, err
	}
	for _, rr := range chain {
		key, err := zone.WireKey(rr.Header().Name)
		if err != nil {
			return Output{}, err
		}
		s.add(key, []dns.RR{rr})
	}

	s.signAll()
	// Each RRset followed by its signatures, in the zone's order: the
	// builder finds them grouped, and sizes its tables to the zone.
	n := len(unsigned)
	for _, j := range s.jobs {
		n += len(j.rrs) + len(j.sigs)
	}
	out := make([]dns.RR, 0, n)
	for _, j := range s.jobs {
		out = append(append(out, j.rrs...), j.sigs...)
	}
	out = append(out, unsigned...)
	s.jobs = nil
	signed, err := zone.Build(z.Origin, out)
	if err != nil {
		return Output{}, fmt.Errorf("zone %s: signed zone does not validate: %w", z.Origin, err)
	}
	return Output{Zone: signed, Made: s.made, Kept: s.kept, Earliest: s.earliest}, nil
}

// newSigner checks the policy and sorts the keys by role for signing the
// zone origin whose SOA is soa.
func newSigner(in Input, origin string, soa *dns.SOA) (*signer, error) {
	p := in.Policy
	if err := p.Check(); err != nil {
		return nil, err
	}
	s := &signer{in: in, origin: origin, now: in.Now}
	for _, k := range in.Keys {
		if k.DNSKEY.Algorithm != p.Algorithm && k.State != StateRetired && (p.AlgorithmFrom == 0 || k.DNSKEY.Algorithm != p.AlgorithmFrom) {
			return nil, fmt.Errorf("%w: key %s has algorithm %d, the policy %d", ErrPolicy, k.ID(), k.DNSKEY.Algorithm, p.Algorithm)
		}
		if k.SignsKeys() {
			s.kskeys = append(s.kskeys, k)
		}
		if k.SignsZone() {
			s.zskeys = append(s.zskeys, k)
		}
	}
	if len(s.kskeys) == 0 || len(s.zskeys) == 0 {
		return nil, fmt.Errorf("zone %s: %w", origin, ErrNoSigningKey)
	}
	s.negTTL, s.keyTTL = chainTTLs(soa)
	return s, nil
}

// chainTTLs returns the TTL of the chain's records (RFC 9077: the SOA's
// minimum, capped by its TTL) and of the apex's key records.
func chainTTLs(soa *dns.SOA) (neg, key uint32) {
	return min(soa.Minttl, soa.Hdr.Ttl), soa.Hdr.Ttl
}

type job struct {
	key  string // owner's wire key
	rrs  []dns.RR
	sigs []dns.RR // the result
}

type signer struct {
	in             Input
	origin         string
	now            time.Time
	kskeys, zskeys []*Key
	negTTL, keyTTL uint32
	jobs           []job
	err            error

	made, kept int
	earliest   time.Time
}

func (s *signer) add(key string, rrs []dns.RR) {
	s.jobs = append(s.jobs, job{key: key, rrs: rrs})
}

// apexSets returns the RRsets the signer adds at the apex.
func (s *signer) apexSets() [][]dns.RR {
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: s.origin, Rrtype: t, Class: dns.ClassINET, Ttl: s.keyTTL}
	}
	var keys, cds, cdnskey []dns.RR
	for _, k := range s.in.Keys {
		if k.Published() {
			c := *k.DNSKEY
			c.Hdr = hdr(dns.TypeDNSKEY)
			keys = append(keys, &c)
		}
		if k.InParent() {
			ds := k.DS()
			cds = append(cds, &dns.CDS{DS: dns.DS{Hdr: hdr(dns.TypeCDS), KeyTag: ds.KeyTag, Algorithm: ds.Algorithm, DigestType: ds.DigestType, Digest: ds.Digest}})
			c := *k.DNSKEY
			c.Hdr = hdr(dns.TypeCDNSKEY)
			cdnskey = append(cdnskey, &dns.CDNSKEY{DNSKEY: c})
		}
	}
	if !s.in.Policy.Unsigning.IsZero() {
		// RFC 8078 §4: the parent is asked to remove the DS.
		cds = []dns.RR{&dns.CDS{DS: dns.DS{Hdr: hdr(dns.TypeCDS), Digest: "00"}}}
		cdnskey = []dns.RR{&dns.CDNSKEY{DNSKEY: dns.DNSKEY{Hdr: hdr(dns.TypeCDNSKEY), Protocol: 3, PublicKey: "AA=="}}}
	}
	sets := [][]dns.RR{keys}
	if len(cds) > 0 {
		sets = append(sets, cds, cdnskey)
	}
	if p := s.in.Policy; p.Denial == DenialNSEC3 {
		sets = append(sets, []dns.RR{&dns.NSEC3PARAM{
			Hdr:        dns.RR_Header{Name: s.origin, Rrtype: dns.TypeNSEC3PARAM, Class: dns.ClassINET, Ttl: 0},
			Hash:       dns.SHA1,
			Iterations: p.Iterations,
			SaltLength: uint8(len(p.Salt) / 2),
			Salt:       saltText(p.Salt),
		}})
	}
	return sets
}

// saltText is the salt as the record holds it: upper-case hex, empty for
// none (written "-" in presentation form).
func saltText(s string) string { return strings.ToUpper(s) }

// types returns the types at n for a chain record's bitmap, with the
// apex's added sets (apex is nil for any other node, see atApex).
func types(n *zone.Node, apex [][]dns.RR, extra ...uint16) []uint16 {
	t := make([]uint16, 0, len(n.RRsets)+len(apex)+len(extra))
	for _, set := range n.RRsets {
		t = append(t, set.Type)
	}
	for _, rrs := range apex { // nil for every node but the apex
		t = append(t, rrs[0].Header().Rrtype)
	}
	t = append(t, extra...)
	slices.Sort(t)
	return slices.Compact(t)
}

// atApex returns apex for the zone's apex node and nil for any other.
func (s *signer) atApex(n *zone.Node, apex [][]dns.RR) [][]dns.RR {
	if n.Name != s.origin {
		return nil
	}
	return apex
}

// nsecChain links every authoritative name with data, and every
// delegation, in canonical order (RFC 4034 §4, RFC 4035 §2.3).
func (s *signer) nsecChain(apex [][]dns.RR) []dns.RR {
	var members []*zone.Node
	s.in.Zone.Walk(func(n *zone.Node) bool {
		if nsecMember(n) {
			members = append(members, n)
		}
		return true
	})
	out := make([]dns.RR, len(members))
	for i, n := range members {
		out[i] = s.nsec(n, members[(i+1)%len(members)].Name, apex)
	}
	return out
}

// nsec returns the NSEC record of member n whose successor is next.
func (s *signer) nsec(n *zone.Node, next string, apex [][]dns.RR) *dns.NSEC {
	return &dns.NSEC{
		Hdr:        dns.RR_Header{Name: n.Name, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: s.negTTL},
		NextDomain: next,
		TypeBitMap: types(n, s.atApex(n, apex), dns.TypeNSEC, dns.TypeRRSIG),
	}
}

// nsecMember reports whether n owns an NSEC record: authoritative names
// with data, and delegations.
func nsecMember(n *zone.Node) bool {
	return n != nil && !n.Empty() && (n.Cut() == nil || n.IsCut())
}

// nsec3Member reports whether n is hashed into the NSEC3 chain under p:
// authoritative names, empty non-terminals included, and delegations
// (with opt-out, only those with a DS).
func nsec3Member(n *zone.Node, p Policy) bool {
	return n != nil && (n.Cut() == nil || (n.IsCut() && (!p.OptOut || n.Get(dns.TypeDS) != nil)))
}

// nsec3Chain hashes every authoritative name, empty non-terminals
// included, and every delegation (with opt-out, only those with a DS),
// and links the hashes in order (RFC 5155 §7.1).
func (s *signer) nsec3Chain(apex [][]dns.RR) ([]dns.RR, error) {
	p := s.in.Policy
	type member struct {
		hash string
		n    *zone.Node
	}
	var members []member
	s.in.Zone.Walk(func(n *zone.Node) bool {
		if !nsec3Member(n, p) {
			return true
		}
		members = append(members, member{hash: hashOf(n.Name, p), n: n})
		return true
	})
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.hash, b.hash) })
	out := make([]dns.RR, len(members))
	for i, m := range members {
		if i > 0 && members[i-1].hash == m.hash {
			return nil, fmt.Errorf("%s and %s: %w", members[i-1].n.Name, m.n.Name, ErrHashClash)
		}
		out[i] = s.nsec3(m.n, m.hash, members[(i+1)%len(members)].hash, apex)
	}
	return out, nil
}

// nsec3 returns the NSEC3 record of member n, whose hash is hash and
// whose successor in hash order is next (both base32hex).
func (s *signer) nsec3(n *zone.Node, hash, next string, apex [][]dns.RR) *dns.NSEC3 {
	p := s.in.Policy
	var flags uint8
	if p.OptOut {
		flags = 1
	}
	var bitmap []uint16
	switch {
	case n.Empty():
	case n.IsCut() && n.Get(dns.TypeDS) == nil:
		bitmap = types(n, nil)
	default:
		bitmap = types(n, s.atApex(n, apex), dns.TypeRRSIG)
	}
	return &dns.NSEC3{
		Hdr:        dns.RR_Header{Name: below(strings.ToLower(hash), s.origin), Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: s.negTTL},
		Hash:       dns.SHA1,
		Flags:      flags,
		Iterations: p.Iterations,
		SaltLength: uint8(len(p.Salt) / 2),
		Salt:       saltText(p.Salt),
		HashLength: 20,
		NextDomain: strings.ToUpper(next),
		TypeBitMap: bitmap,
	}
}

// hashOf returns the NSEC3 hash of name under p, in base32hex.
func hashOf(name string, p Policy) string {
	return dns.HashName(name, dns.SHA1, p.Iterations, p.Salt)
}

// below returns the name label.origin.
func below(label, origin string) string {
	if origin == "." {
		return label + "."
	}
	return label + "." + origin
}

// signAll signs every job on all CPUs and returns the signatures.
func (s *signer) signAll() {
	workers := runtime.GOMAXPROCS(0)
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	type tally struct {
		made, kept int
		earliest   uint32
	}
	tallies := make([]tally, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[w]
			for {
				mu.Lock()
				i := next
				next += 64
				mu.Unlock()
				if i >= len(s.jobs) {
					return
				}
				end := min(i+64, len(s.jobs))
				for j := i; j < end; j++ {
					made, kept, earliest := s.sign(&s.jobs[j])
					t.made += made
					t.kept += kept
					if t.earliest == 0 || (earliest != 0 && earliest < t.earliest) {
						t.earliest = earliest
					}
				}
				if s.in.Progress != nil {
					s.in.Progress(end-i, len(s.jobs))
				}
			}
		}()
	}
	wg.Wait()
	var min32 uint32
	for _, t := range tallies {
		s.made += t.made
		s.kept += t.kept
		if min32 == 0 || (t.earliest != 0 && t.earliest < min32) {
			min32 = t.earliest
		}
	}
	if min32 != 0 {
		s.earliest = sigTime(min32, s.now)
	}
}

// sign signs one RRset with each key of its role, keeping a previous
// signature where it may. It returns the counts and the earliest expiry.
func (s *signer) sign(j *job) (made, kept int, earliest uint32) {
	h := j.rrs[0].Header()
	keys := s.zskeys
	switch h.Rrtype {
	case dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY:
		keys = s.kskeys
	}
	prev := s.prevSigs(j.key, h.Rrtype, j.rrs)
	p := s.in.Policy
	now := uint32(s.now.Unix())
	keepUntil := uint32(s.now.Add(p.Refresh.D()).Unix())
	for _, k := range keys {
		var sig *dns.RRSIG
		for _, rr := range prev {
			old := rr.(*dns.RRSIG)
			if old.KeyTag == k.Tag() && old.Algorithm == k.DNSKEY.Algorithm && old.OrigTtl == h.Ttl &&
				strings.EqualFold(old.SignerName, s.origin) &&
				serialLess(keepUntil, old.Expiration) && !serialLess(now, old.Inception) {
				sig = old
				kept++
				break
			}
		}
		if sig == nil {
			exp := s.now.Add(p.Validity.D())
			if j := p.Jitter.D(); j > 0 {
				exp = exp.Add(-time.Duration(rand.Int64N(int64(j))))
			}
			sig = &dns.RRSIG{
				Hdr:        dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: h.Ttl},
				Algorithm:  k.DNSKEY.Algorithm,
				OrigTtl:    h.Ttl,
				Expiration: uint32(exp.Unix()),
				Inception:  uint32(s.now.Add(-p.InceptionOffset.D()).Unix()),
				KeyTag:     k.Tag(),
				SignerName: s.origin,
			}
			if err := sig.Sign(k.Private, j.rrs); err != nil {
				// A key that cannot sign is a broken key: no signature is
				// better than a wrong one, and verification says so.
				continue
			}
			made++
		}
		if earliest == 0 || serialLess(sig.Expiration, earliest) {
			earliest = sig.Expiration
		}
		j.sigs = append(j.sigs, sig)
	}
	return made, kept, earliest
}

// prevSigs returns the previous signatures over an identical RRset.
func (s *signer) prevSigs(key string, t uint16, rrs []dns.RR) []dns.RR {
	if s.in.Prev == nil {
		return nil
	}
	n := s.in.Prev.LookupAny(key)
	if n == nil {
		return nil
	}
	set := n.Get(t)
	if set == nil || set.TTL != rrs[0].Header().Ttl || !SameRRs(set.RRs(), rrs) {
		return nil
	}
	return set.Sigs()
}

// SameRRs reports whether x and y hold the same records (TTLs aside), in
// any order. Neither may hold duplicates.
func SameRRs(x, y []dns.RR) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] == y[i] {
			continue
		}
		if !slices.ContainsFunc(y, func(ry dns.RR) bool { return dns.IsDuplicate(x[i], ry) }) {
			return false
		}
	}
	return true
}

// serialLess compares RRSIG times with RFC 1982 arithmetic (RFC 4034 §3.1.5).
func serialLess(a, b uint32) bool { return a != b && b-a < 1<<31 }

// Earliest returns when the first signature of z expires, and the zero
// time when z holds none.
func Earliest(z *zone.Zone, now time.Time) time.Time {
	var first uint32
	z.WalkAll(func(_ []byte, n *zone.Node) bool {
		for _, set := range n.RRsets {
			for _, rr := range set.Sigs() {
				e := rr.(*dns.RRSIG).Expiration
				if first == 0 || serialLess(e, first) {
					first = e
				}
			}
		}
		return true
	})
	if first == 0 {
		return time.Time{}
	}
	return sigTime(first, now)
}

// sigTime places an RRSIG time, a 32-bit serial, in the 68 years around now.
func sigTime(v uint32, now time.Time) time.Time {
	return time.Unix(now.Unix()+int64(int32(v-uint32(now.Unix()))), 0).UTC()
}
