// Package authoritative answers queries from immutable zone snapshots, as
// RFC 1034 §4.3.2 describes, with the RFC 2308, RFC 4592, RFC 6672 and RFC
// 8482 refinements. It never touches the wire or the store: Answer is a pure
// function of a zone.Set and a question, and the caller builds the message.
package authoritative

import (
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// MaxChain caps the CNAME and DNAME links followed for one answer.
const MaxChain = 16

// Kind classifies a result.
type Kind uint8

// The kinds of result.
const (
	KindAnswer   Kind = iota // data in the answer section
	KindNoData               // the name exists, the type does not
	KindNXDomain             // the name does not exist
	KindReferral             // a delegation to a child zone
	KindRefused              // no zone held for the name
	KindYXDomain             // a DNAME substitution would overflow the name
)

var kindNames = [...]string{"answer", "nodata", "nxdomain", "referral", "refused", "yxdomain"}

func (k Kind) String() string { return kindNames[k] }

// Query is the question asked.
type Query struct {
	Name string // as received: the case is preserved in answers
	Type uint16
	DO   bool // the client asked for DNSSEC records
}

// Result is what Answer found. Records in the sections may be shared with
// the zone and must not be modified.
type Result struct {
	Kind          Kind
	Rcode         int
	Authoritative bool
	Zone          *zone.Zone // the zone that answered the question name, or nil
	// Chained holds the other zones a CNAME chain went through.
	Chained []*zone.Zone
	// LeftZones: a CNAME chain went on to a name no zone held here holds,
	// so a zone added there would change the answer.
	LeftZones bool
	Answer    []dns.RR
	Ns        []dns.RR
	Extra     []dns.RR
	// Wildcard is set when the question name was answered by a wildcard
	// (RFC 4592) standing in for it.
	Wildcard bool
}

// Answer looks q up in zs.
func Answer(zs *zone.Set, q Query) Result {
	var kb [zone.MaxNameWire + 1]byte
	key, ok := wireKey(kb[:], q.Name)
	if !ok {
		return Result{Kind: KindRefused, Rcode: dns.RcodeRefused}
	}
	z := zs.Match(key, q.Type)
	if z == nil {
		return Result{Kind: KindRefused, Rcode: dns.RcodeRefused}
	}
	a := answerer{zs: zs, do: q.DO, qname: q.Name}
	a.res.Zone = z
	a.res.Authoritative = true
	a.lookup(z, key, q.Name, q.Type, 0)
	return a.res
}

func wireKey(buf []byte, name string) ([]byte, bool) {
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil || n > zone.MaxNameWire {
		return nil, false
	}
	zone.LowerWire(buf[:n])
	return buf[:n], true
}

type answerer struct {
	zs      *zone.Set
	do      bool
	res     Result
	qname   string       // the question's name: where every chain starts
	visited []string     // CNAME chain, by lower-case key, for loop detection
	proofs  []*zone.Node // NSEC and NSEC3 owners already in the authority section
}

// lookup answers name (its lower-case wire form is key) from z, appending to
// the result. depth counts the CNAME/DNAME links already followed.
func (a *answerer) lookup(z *zone.Zone, key []byte, name string, qtype uint16, depth int) {
	n, exact := z.FindBytes(key)

	// A delegation at or above the name: refer, unless this is the DS at the
	// cut itself, which the parent side answers (RFC 4035 §3.1.4.1).
	if cut := n.Cut(); cut != nil && !(exact && cut == n && qtype == dns.TypeDS) {
		// At the end of a CNAME chain the referral joins the answer, which
		// stays authoritative for what it holds (RFC 1034 §4.3.2 step 3b).
		a.referral(z, cut, depth == 0)
		return
	}

	// A DNAME strictly above the name rewrites it (RFC 6672 §2.2).
	dn := n.DNAME()
	if exact {
		dn = n.DNAMEAbove()
	}
	if dn != nil {
		a.dname(z, dn, name, qtype, depth)
		return
	}

	if exact {
		a.node(z, n, name, qtype, depth, key, nil)
		return
	}
	// The closest encloser's wildcard child stands in for the name
	// (RFC 4592 §3.3.1); an empty non-terminal as closest encloser blocks
	// wildcards above it because the search stops here.
	if w := n.Wildcard(); w != nil {
		if depth == 0 {
			a.res.Wildcard = true
		}
		a.node(z, w, name, qtype, depth, key, n)
		return
	}
	a.negative(z, dns.RcodeNameError, KindNXDomain)
	a.prove(z, proofNXDomain, key, n)
}

// node answers from an existing node, or from a wildcard standing in for
// name, whose closest encloser is then ce. key is name's wire key.
func (a *answerer) node(z *zone.Zone, n *zone.Node, name string, qtype uint16, depth int, key []byte, ce *zone.Node) {
	synth := !strings.EqualFold(n.Name, name) // owner must be rewritten
	nodata := func() {
		a.negative(z, dns.RcodeSuccess, KindNoData)
		if ce != nil {
			a.prove(z, proofWildNoData, key, ce)
		} else {
			a.prove(z, proofNoData, key, n)
		}
	}
	if ce != nil {
		defer func() {
			if a.res.Kind == KindAnswer {
				a.prove(z, proofWildcard, key, ce)
			}
		}()
	}
	if qtype == dns.TypeANY {
		// RFC 8482: one RRset is enough; CNAME first if there is one.
		if len(n.RRsets) == 0 {
			nodata()
			return
		}
		set := &n.RRsets[0]
		if c := n.Get(dns.TypeCNAME); c != nil {
			set = c
		}
		a.addAnswer(set, name, synth)
		a.res.Kind = KindAnswer
		return
	}
	if qtype == dns.TypeRRSIG {
		// The signatures at the name are not an RRset of their own (they
		// are kept with the RRsets they cover): as Knot DNS does, and as
		// RFC 8482 does for ANY, one RRset's signatures are enough, with
		// or without DO, since they were asked for.
		for i := range n.RRsets {
			if sigs := n.RRsets[i].Sigs(); len(sigs) > 0 {
				a.addRecords(sigs, name, synth)
				a.res.Kind = KindAnswer
				return
			}
		}
		nodata()
		return
	}
	if set := n.Get(qtype); set != nil {
		a.addAnswer(set, name, synth)
		a.additional(z, set.RRs())
		a.res.Kind = KindAnswer
		return
	}
	if c := n.Get(dns.TypeCNAME); c != nil {
		a.addAnswer(c, name, synth)
		a.res.Kind = KindAnswer
		a.follow(c.RRs()[0].(*dns.CNAME).Target, qtype, depth+1)
		return
	}
	nodata()
}

// follow continues a CNAME chain at target, in any zone held.
func (a *answerer) follow(target string, qtype uint16, depth int) {
	if depth > MaxChain {
		return
	}
	var kb [zone.MaxNameWire + 1]byte
	key, ok := wireKey(kb[:], target)
	if !ok {
		return
	}
	var qb [zone.MaxNameWire + 1]byte
	if qkey, ok := wireKey(qb[:], a.qname); ok && string(qkey) == string(key) {
		return // back at the question: a loop
	}
	for _, v := range a.visited {
		if v == string(key) {
			return // a loop: the answer so far is all there is
		}
	}
	a.visited = append(a.visited, string(key))
	z := a.zs.Match(key, qtype)
	if z == nil {
		a.res.LeftZones = true
		return // out of our authority: the resolver follows on
	}
	if z != a.res.Zone && !slices.Contains(a.res.Chained, z) {
		a.res.Chained = append(a.res.Chained, z)
	}
	a.lookup(z, key, target, qtype, depth)
}

func (a *answerer) dname(z *zone.Zone, dn *zone.Node, name string, qtype uint16, depth int) {
	set := dn.Get(dns.TypeDNAME)
	d := set.RRs()[0].(*dns.DNAME)
	a.res.Answer = append(a.res.Answer, d)
	a.res.Answer = append(a.res.Answer, a.sigs(set)...)
	a.res.Kind = KindAnswer
	// The labels of name below the DNAME owner, counted in labels since
	// either name may use escapes, and lower-cased: the synthesized target
	// does not depend on how one client spelled the question.
	owner := dns.Fqdn(name)
	labels := dns.Split(owner)
	prefix := strings.ToLower(owner[:labels[len(labels)-zone.LabelCount(dn.Key)]])
	target := prefix + d.Target
	if d.Target == "." {
		target = prefix
	}
	var tb [zone.MaxNameWire + 1]byte
	if _, ok := wireKey(tb[:], target); !ok {
		a.res.Kind, a.res.Rcode = KindYXDomain, dns.RcodeYXDomain
		return
	}
	cname := &dns.CNAME{
		Hdr:    dns.RR_Header{Name: owner, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: set.TTL},
		Target: target,
	}
	a.res.Answer = append(a.res.Answer, cname)
	if qtype != dns.TypeCNAME {
		a.follow(target, qtype, depth+1)
	}
}

// addAnswer appends set (and its signatures when DO is set) to the answer,
// giving the records the question's spelling of the owner name.
func (a *answerer) addAnswer(set *zone.RRset, name string, synth bool) {
	a.addRecords(set.RRs(), name, synth)
	a.addRecords(a.sigs(set), name, synth)
}

// addRecords adds rrs to the answer under the owner name asked for.
func (a *answerer) addRecords(rrs []dns.RR, name string, synth bool) {
	owner := dns.Fqdn(name)
	for _, rr := range rrs {
		if rr.Header().Name != owner || synth {
			rr = dns.Copy(rr)
			rr.Header().Name = owner
		}
		a.res.Answer = append(a.res.Answer, rr)
	}
}

func (a *answerer) sigs(set *zone.RRset) []dns.RR {
	if !a.do {
		return nil
	}
	return set.Sigs()
}

// negative ends the chain with NXDOMAIN or NODATA and the zone's SOA in the
// authority section, its TTL capped by the SOA minimum (RFC 2308 §3).
func (a *answerer) negative(z *zone.Zone, rcode int, kind Kind) {
	soa := dns.Copy(z.SOA).(*dns.SOA)
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	a.res.Ns = append(a.res.Ns, soa)
	if a.do {
		// An RRSIG's TTL matches the TTL of the RRset it covers (RFC 4034 §3).
		for _, sig := range z.Apex.Get(dns.TypeSOA).Sigs() {
			if sig.Header().Ttl != soa.Hdr.Ttl {
				sig = dns.Copy(sig)
				sig.Header().Ttl = soa.Hdr.Ttl
			}
			a.res.Ns = append(a.res.Ns, sig)
		}
	}
	a.res.Rcode = rcode
	if len(a.res.Answer) == 0 {
		a.res.Kind = kind
	}
}

// referral adds the delegation at cut: NS in authority, glue from this zone
// in additional. A first referral (not reached through a CNAME) is the
// whole answer and is not authoritative.
func (a *answerer) referral(z *zone.Zone, cut *zone.Node, first bool) {
	ns := cut.Get(dns.TypeNS)
	if first {
		a.res.Kind = KindReferral
		a.res.Authoritative = false
	}
	a.res.Ns = append(a.res.Ns, ns.RRs()...)
	if a.do {
		// DS goes with the referral only from a signed zone (RFC 4035
		// §3.1.4); its proofs of absence come with DNSSEC signing.
		if ds := cut.Get(dns.TypeDS); ds != nil && len(ds.Sigs()) > 0 {
			a.res.Ns = append(a.res.Ns, ds.RRs()...)
			a.res.Ns = append(a.res.Ns, ds.Sigs()...)
		} else {
			a.prove(z, proofNoDS, []byte(cut.Key), cut)
		}
	}
	a.glue(z, ns.RRs(), true)
}

// additional adds the addresses of in-zone targets of NS, MX and SRV answers.
func (a *answerer) additional(z *zone.Zone, rrs []dns.RR) {
	switch rrs[0].Header().Rrtype {
	case dns.TypeNS:
		a.glue(z, rrs, true)
	case dns.TypeMX, dns.TypeSRV:
		a.glue(z, rrs, false)
	}
}

// glue adds A and AAAA records of the targets that lie in z. Occluded
// addresses (below a cut) are used only for NS targets, where they are glue.
func (a *answerer) glue(z *zone.Zone, rrs []dns.RR, occluded bool) {
	var kb [zone.MaxNameWire + 1]byte
	for i, rr := range rrs {
		target := targetOf(rr)
		if target == "" || seenTarget(rrs[:i], target) {
			continue
		}
		key, ok := wireKey(kb[:], target)
		if !ok || !zone.IsBelow(string(key), z.Key) {
			continue
		}
		n := z.Lookup(string(key))
		if n == nil || (n.Cut() != nil && !occluded) {
			continue
		}
		for _, t := range [2]uint16{dns.TypeA, dns.TypeAAAA} {
			if set := n.Get(t); set != nil {
				a.res.Extra = append(a.res.Extra, set.RRs()...)
				if n.Cut() == nil {
					a.res.Extra = append(a.res.Extra, a.sigs(set)...)
				}
			}
		}
	}
}

// targetOf returns the host name an NS, MX or SRV record points at.
func targetOf(rr dns.RR) string {
	switch r := rr.(type) {
	case *dns.NS:
		return r.Ns
	case *dns.MX:
		return r.Mx
	case *dns.SRV:
		return r.Target
	}
	return ""
}

func seenTarget(rrs []dns.RR, target string) bool {
	for _, rr := range rrs {
		if strings.EqualFold(targetOf(rr), target) {
			return true
		}
	}
	return false
}
