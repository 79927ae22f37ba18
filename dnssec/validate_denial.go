package dnssec

// Denial of existence: NSEC (RFC 4035 §5.4, RFC 6840 §4) and NSEC3
// (RFC 5155 §8, RFC 9276) proofs. The records given must already be
// authenticated: the caller verifies their RRSIGs with the zone's keys.

import (
	"bytes"
	"cmp"
	"crypto/sha1"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// ErrOptOut: the proof rests on an NSEC3 opt-out span, which may hide an
// unsigned delegation, so what it proves is insecure (RFC 5155 §6, §8.6).
var ErrOptOut = errors.New("NSEC3 opt-out span")

// ProveNXDomain checks that rrs, NSEC or NSEC3 records of zone, prove that
// qname does not exist: no name matches it and no wildcard could have been
// expanded for it.
func ProveNXDomain(zone, qname string, rrs []dns.RR, b *Budget) error {
	zone, qname = vCanonical(zone), vCanonical(qname)
	nsec, nsec3 := vSplitDenial(rrs)
	if len(nsec)+len(nsec3) == 0 {
		return vBogus(ErrNSECMissing, "NXDOMAIN %s: no NSEC or NSEC3 records", qname)
	}
	if len(nsec) > 0 {
		if err := vNSECNXDomain(zone, qname, nsec); err == nil || len(nsec3) == 0 {
			return err
		}
	}
	s, err := vNewNSEC3Set(zone, nsec3, b)
	if err != nil {
		return err
	}
	return s.nxdomain(qname)
}

// ProveNoData checks that rrs, NSEC or NSEC3 records of zone, prove that
// qname exists without data of type qtype (nor a CNAME), possibly as an
// empty non-terminal or through a wildcard. For qtype DS, delegation
// reports whether qname is a zone cut (NS present): a delegation without
// DS, so the child zone is insecure.
func ProveNoData(zone, qname string, qtype uint16, rrs []dns.RR, b *Budget) (delegation bool, err error) {
	zone, qname = vCanonical(zone), vCanonical(qname)
	nsec, nsec3 := vSplitDenial(rrs)
	if len(nsec)+len(nsec3) == 0 {
		return false, vBogus(ErrNSECMissing, "NODATA %s %s: no NSEC or NSEC3 records", qname, dns.Type(qtype))
	}
	if len(nsec) > 0 {
		if delegation, err = vNSECNoData(zone, qname, qtype, nsec); err == nil || len(nsec3) == 0 {
			return delegation, err
		}
	}
	s, err := vNewNSEC3Set(zone, nsec3, b)
	if err != nil {
		return false, err
	}
	return s.nodata(qname, qtype)
}

// ProveWildcard checks that rrs, NSEC or NSEC3 records of zone, prove that
// qname, answered by expanding wildcard ("*." plus the closest encloser),
// does not exist itself and has no closer encloser (RFC 4035 §5.3.4,
// RFC 5155 §8.8).
func ProveWildcard(zone, qname, wildcard string, rrs []dns.RR, b *Budget) error {
	zone, qname, wildcard = vCanonical(zone), vCanonical(qname), vCanonical(wildcard)
	ce := strings.TrimPrefix(wildcard, "*.")
	if !vIsSubDomain(ce, qname) || ce == qname || !vIsSubDomain(zone, ce) {
		return vBogus(ErrBogus, "%s cannot be expanded from %s", qname, wildcard)
	}
	nsec, nsec3 := vSplitDenial(rrs)
	var err error = vBogus(ErrNSECMissing, "wildcard answer %s: no NSEC or NSEC3 records", qname)
	if len(nsec) > 0 {
		for _, n := range nsec {
			if vNSECCovers(zone, n, qname) && vNSECCloser(qname, n) == ce {
				return nil
			}
		}
		err = vBogus(ErrNSECMissing, "wildcard answer %s: no NSEC denies the name", qname)
		if len(nsec3) == 0 {
			return err
		}
	}
	if len(nsec3) > 0 {
		s, serr := vNewNSEC3Set(zone, nsec3, b)
		if serr != nil {
			return serr
		}
		nc := vChildToward(ce, qname)
		cov, herr := s.cover(nc)
		if herr != nil {
			return herr
		}
		if cov == nil {
			return vBogus(ErrNSECMissing, "wildcard answer %s: no NSEC3 covers the next closer name %s", qname, nc)
		}
		if cov.Flags&1 != 0 {
			return vInsecure(ErrOptOut, "wildcard answer %s", qname)
		}
		return nil
	}
	return err
}

func vSplitDenial(rrs []dns.RR) (nsec []*dns.NSEC, nsec3 []*dns.NSEC3) {
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *dns.NSEC:
			nsec = append(nsec, v)
		case *dns.NSEC3:
			nsec3 = append(nsec3, v)
		}
	}
	return nsec, nsec3
}

func vHasType(types []uint16, t uint16) bool { return slices.Contains(types, t) }

// vNSECNXDomain: an NSEC covers qname and an NSEC covers the wildcard at
// the closest encloser it implies.
func vNSECNXDomain(zone, qname string, nsec []*dns.NSEC) error {
	for _, n := range nsec {
		if vCanonical(n.Hdr.Name) == qname {
			return vBogus(ErrBogus, "NXDOMAIN %s: an NSEC says the name exists", qname)
		}
	}
	for _, n := range nsec {
		if !vNSECCovers(zone, n, qname) || vNSECDelegationAbove(n, qname) {
			continue
		}
		if next := vCanonical(n.NextDomain); next != qname && vIsSubDomain(qname, next) {
			// The next name lies below qname: qname is an empty
			// non-terminal, which exists (RFC 4592 §2.2.2).
			return vBogus(ErrBogus, "NXDOMAIN %s: an NSEC shows names below it (an empty non-terminal)", qname)
		}
		wc := "*." + vNSECCloser(qname, n)
		if wc == "*.." {
			wc = "*."
		}
		for _, w := range nsec {
			if vCanonical(w.Hdr.Name) == wc {
				return vBogus(ErrBogus, "NXDOMAIN %s: the wildcard %s exists", qname, wc)
			}
		}
		for _, w := range nsec {
			if vNSECCovers(zone, w, wc) {
				return nil
			}
		}
		return vBogus(ErrNSECMissing, "NXDOMAIN %s: no NSEC denies the wildcard %s", qname, wc)
	}
	return vBogus(ErrNSECMissing, "NXDOMAIN %s: no NSEC covers the name", qname)
}

func vNSECNoData(zone, qname string, qtype uint16, nsec []*dns.NSEC) (bool, error) {
	for _, n := range nsec {
		if vCanonical(n.Hdr.Name) != qname {
			continue
		}
		return vTypesDeny(qname, qtype, n.TypeBitMap, qname == zone || zone == ".")
	}
	for _, n := range nsec {
		if !vNSECCovers(zone, n, qname) {
			continue
		}
		next := vCanonical(n.NextDomain)
		if vIsSubDomain(qname, next) && next != qname {
			return false, nil // an empty non-terminal
		}
		if vNSECDelegationAbove(n, qname) || qtype == dns.TypeDS {
			continue
		}
		// A wildcard that matches qname but lacks the type.
		wc := "*." + vNSECCloser(qname, n)
		if wc == "*.." {
			wc = "*." // the wildcard at the root
		}
		for _, w := range nsec {
			if vCanonical(w.Hdr.Name) == wc {
				if _, err := vTypesDeny(qname, qtype, w.TypeBitMap, false); err != nil {
					return false, err
				}
				return false, nil
			}
		}
	}
	return false, vBogus(ErrNSECMissing, "NODATA %s %s: no NSEC proves it", qname, dns.Type(qtype))
}

// vTypesDeny checks a type bitmap that should deny qtype at qname. apex
// says whether qname is the zone's own apex (or the root), where the SOA
// bit is expected.
func vTypesDeny(qname string, qtype uint16, types []uint16, apex bool) (bool, error) {
	if vHasType(types, qtype) {
		return false, vBogus(ErrBogus, "NODATA %s %s: the type exists", qname, dns.Type(qtype))
	}
	if qtype != dns.TypeCNAME && vHasType(types, dns.TypeCNAME) {
		return false, vBogus(ErrBogus, "NODATA %s %s: the name has a CNAME", qname, dns.Type(qtype))
	}
	ns, soa := vHasType(types, dns.TypeNS), vHasType(types, dns.TypeSOA)
	if qtype == dns.TypeDS {
		// The DS proof comes from the parent; an apex record (SOA) is the
		// child's and proves nothing about the parent side (RFC 6840 §4.4).
		if soa && !apex {
			return false, vBogus(ErrBogus, "NODATA %s DS: the proof comes from the child zone", qname)
		}
		return ns && !soa, nil
	}
	if ns && !soa {
		// The parent side of a delegation says nothing about the child's
		// data (RFC 6840 §4.4).
		return false, vBogus(ErrBogus, "NODATA %s %s: the proof comes from the parent of a delegation", qname, dns.Type(qtype))
	}
	return false, nil
}

// vNSECCovers reports whether n covers name (owner < name < next in
// canonical order, the last NSEC wrapping to the apex), name inside zone.
func vNSECCovers(zone string, n *dns.NSEC, name string) bool {
	if !vIsSubDomain(zone, name) {
		return false
	}
	o, nx := n.Hdr.Name, n.NextDomain
	if vCompare(o, nx) < 0 {
		return vCompare(o, name) < 0 && vCompare(name, nx) < 0
	}
	return vCompare(o, name) < 0 || vCompare(name, nx) < 0
}

// vNSECDelegationAbove reports whether n is the NSEC of a delegation (NS
// without SOA) or a DNAME above name: such an NSEC cannot deny names below
// its owner (RFC 6840 §4.1).
func vNSECDelegationAbove(n *dns.NSEC, name string) bool {
	owner := vCanonical(n.Hdr.Name)
	if owner == name || !vIsSubDomain(owner, name) {
		return false
	}
	t := n.TypeBitMap
	return vHasType(t, dns.TypeDNAME) || (vHasType(t, dns.TypeNS) && !vHasType(t, dns.TypeSOA))
}

// vNSECCloser returns the closest encloser of qname that an NSEC covering
// it implies: the deeper of qname's common ancestors with the owner and
// with the next name.
func vNSECCloser(qname string, n *dns.NSEC) string {
	a := vCommon(qname, vCanonical(n.Hdr.Name))
	c := vCommon(qname, vCanonical(n.NextDomain))
	if dns.CountLabel(c) > dns.CountLabel(a) {
		return c
	}
	return a
}

// vCommon returns the longest common ancestor of two canonical names.
func vCommon(a, b string) string {
	n := dns.CompareDomainName(a, b)
	return vAncestor(a, n)
}

// vChildToward returns the name one label below ancestor on the way to
// name (the next closer name when ancestor is the closest encloser).
func vChildToward(ancestor, name string) string {
	return vAncestor(name, dns.CountLabel(ancestor)+1)
}

// vIsSubDomain is dns.IsSubDomain (child is parent or below it, letters
// in any case) without allocating, for names without escapes.
func vIsSubDomain(parent, child string) bool {
	if strings.IndexByte(parent, '\\') >= 0 || strings.IndexByte(child, '\\') >= 0 {
		return dns.IsSubDomain(parent, child)
	}
	parent, child = dns.Fqdn(parent), dns.Fqdn(child)
	if parent == "." {
		return true
	}
	if len(child) < len(parent) || !strings.EqualFold(child[len(child)-len(parent):], parent) {
		return false
	}
	return len(child) == len(parent) || child[len(child)-len(parent)-1] == '.'
}

// vCompare orders names canonically (RFC 4034 §6.1): label by label from
// the root, each label as lower-cased octets. It allocates nothing: it is
// on the path of every NSEC proof, and of answers synthesised from them.
func vCompare(a, b string) int {
	var ba, bb [256]byte
	var sa, sb [128]uint8
	wa, na, oka := vWireLabels(a, &ba, &sa)
	wb, nb, okb := vWireLabels(b, &bb, &sb)
	if !oka || !okb {
		return strings.Compare(strings.ToLower(a), strings.ToLower(b))
	}
	for i, j := na-1, nb-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		la := wa[int(sa[i])+1 : int(sa[i])+1+int(wa[sa[i]])]
		lb := wb[int(sb[j])+1 : int(sb[j])+1+int(wb[sb[j]])]
		if c := vCompareLabel(la, lb); c != 0 {
			return c
		}
	}
	return cmp.Compare(na, nb)
}

// vCompareLabel compares two labels as lower-cased octets.
func vCompareLabel(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return cmp.Compare(ca, cb)
		}
	}
	return cmp.Compare(len(a), len(b))
}

// vWireLabels packs name (escapes resolved) into buf and notes where each
// label starts, leftmost first; it returns the wire form, the number of
// labels, and false when the name cannot be packed.
func vWireLabels(name string, buf *[256]byte, starts *[128]uint8) ([]byte, int, bool) {
	n, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false)
	if err != nil {
		return nil, 0, false
	}
	k := 0
	for off := 0; off < n && buf[off] != 0 && k < len(starts); off += int(buf[off]) + 1 {
		starts[k] = uint8(off)
		k++
	}
	return buf[:n], k, true
}

// vNSEC3Set is the usable NSEC3 records of one proof, with one set of
// parameters, and the hashes computed for it.
type vNSEC3Set struct {
	zone   string
	recs   []*dns.NSEC3
	owners []string // owner hash labels, upper-case
	iter   uint16
	salt   []byte
	hashes map[string]string
	b      *Budget
	n      int
}

var vBase32 = base32.HexEncoding.WithPadding(base32.NoPadding)

func vNewNSEC3Set(zone string, recs []*dns.NSEC3, b *Budget) (*vNSEC3Set, error) {
	s := &vNSEC3Set{zone: zone, hashes: map[string]string{}, b: b}
	unknown := false
	for _, r := range recs {
		owner := vCanonical(r.Hdr.Name)
		i, end := dns.NextLabel(owner, 0)
		parent := owner[i:]
		if end {
			parent = "." // a label of the root zone
		}
		if owner == "." || parent != zone {
			continue
		}
		if r.Hash != dns.SHA1 || r.Flags&^1 != 0 {
			unknown = true // RFC 5155 §8.1, §8.2: ignored
			continue
		}
		if len(s.recs) > 0 && (r.Iterations != s.iter || !strings.EqualFold(r.Salt, s.recs[0].Salt)) {
			continue
		}
		if len(s.recs) == 0 {
			s.iter = r.Iterations
			salt, err := hex.DecodeString(r.Salt)
			if r.Salt == "-" || r.Salt == "" {
				salt, err = nil, nil
			}
			if err != nil {
				continue
			}
			s.salt = salt
		}
		s.recs = append(s.recs, r)
		s.owners = append(s.owners, strings.ToUpper(owner[:i-1]))
	}
	if len(s.recs) == 0 {
		if unknown {
			return nil, vInsecure(ErrNSECMissing, "no NSEC3 record of %s with a supported hash algorithm", zone)
		}
		return nil, vBogus(ErrNSECMissing, "no NSEC3 record of %s", zone)
	}
	if int(s.iter) > b.MaxNSEC3Iterations {
		return nil, vInsecure(ErrNSEC3Iterations, "%s: %d NSEC3 iterations, more than %d", zone, s.iter, b.MaxNSEC3Iterations)
	}
	return s, nil
}

// hash returns the NSEC3 hash of name (RFC 5155 §5), counting it against
// the proof's and the resolution's limits.
func (s *vNSEC3Set) hash(name string) (string, error) {
	if h, ok := s.hashes[name]; ok {
		return h, nil
	}
	if s.n++; s.n > MaxNSEC3HashesPerProof {
		return "", s.b.exceed("nsec3_hashes")
	}
	if s.b.Hashes++; s.b.Hashes > s.b.MaxNSEC3Hashes {
		return "", s.b.exceed("nsec3_hashes")
	}
	var buf [256]byte
	n, err := dns.PackDomainName(name, buf[:], 0, nil, false)
	if err != nil {
		return "", vBogus(ErrBogus, "bad name %q", name)
	}
	wire := bytes.ToLower(buf[:n])
	h := sha1.New()
	h.Write(wire)
	h.Write(s.salt)
	sum := h.Sum(nil)
	for range s.iter {
		h.Reset()
		h.Write(sum)
		h.Write(s.salt)
		sum = h.Sum(sum[:0])
	}
	out := vBase32.EncodeToString(sum)
	s.hashes[name] = out
	return out, nil
}

func (s *vNSEC3Set) match(name string) (*dns.NSEC3, error) {
	h, err := s.hash(name)
	if err != nil {
		return nil, err
	}
	for i, o := range s.owners {
		if o == h {
			return s.recs[i], nil
		}
	}
	return nil, nil
}

func (s *vNSEC3Set) cover(name string) (*dns.NSEC3, error) {
	h, err := s.hash(name)
	if err != nil {
		return nil, err
	}
	for i, o := range s.owners {
		nx := strings.ToUpper(s.recs[i].NextDomain)
		if o < nx {
			if o < h && h < nx {
				return s.recs[i], nil
			}
		} else if h > o || h < nx {
			return s.recs[i], nil
		}
	}
	return nil, nil
}

// closestEncloser makes the closest-encloser proof for qname (RFC 5155
// §8.3): the deepest ancestor with a matching NSEC3, and an NSEC3 covering
// the next closer name. exists reports that qname itself matched.
func (s *vNSEC3Set) closestEncloser(qname string) (ce string, cov *dns.NSEC3, exists bool, err error) {
	if !vIsSubDomain(s.zone, qname) {
		return "", nil, false, vBogus(ErrBogus, "%s is outside %s", qname, s.zone)
	}
	name, prev := qname, ""
	for {
		m, err := s.match(name)
		if err != nil {
			return "", nil, false, err
		}
		if m != nil {
			t := m.TypeBitMap
			if vHasType(t, dns.TypeDNAME) || (vHasType(t, dns.TypeNS) && !vHasType(t, dns.TypeSOA)) {
				if prev != "" {
					return "", nil, false, vBogus(ErrBogus, "%s: the closest encloser %s is a delegation or DNAME", qname, name)
				}
			}
			if prev == "" {
				return name, nil, true, nil
			}
			cov, err := s.cover(prev)
			if err != nil {
				return "", nil, false, err
			}
			if cov == nil {
				return "", nil, false, vBogus(ErrNSECMissing, "%s: no NSEC3 covers the next closer name %s", qname, prev)
			}
			return name, cov, false, nil
		}
		if name == s.zone {
			return "", nil, false, vBogus(ErrNSECMissing, "%s: no closest encloser proven", qname)
		}
		prev, name = name, vParent(name)
	}
}

func vParent(name string) string {
	i, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[i:]
}

func (s *vNSEC3Set) nxdomain(qname string) error {
	ce, cov, exists, err := s.closestEncloser(qname)
	if err != nil {
		return err
	}
	if exists {
		return vBogus(ErrBogus, "NXDOMAIN %s: an NSEC3 says the name exists", qname)
	}
	wc := "*." + ce
	if ce == "." {
		wc = "*."
	}
	if m, err := s.match(wc); err != nil {
		return err
	} else if m != nil {
		return vBogus(ErrBogus, "NXDOMAIN %s: the wildcard %s exists", qname, wc)
	}
	if c, err := s.cover(wc); err != nil {
		return err
	} else if c == nil {
		return vBogus(ErrNSECMissing, "NXDOMAIN %s: no NSEC3 denies the wildcard %s", qname, wc)
	}
	if cov.Flags&1 != 0 {
		return vInsecure(ErrOptOut, "NXDOMAIN %s", qname)
	}
	return nil
}

func (s *vNSEC3Set) nodata(qname string, qtype uint16) (bool, error) {
	m, err := s.match(qname)
	if err != nil {
		return false, err
	}
	if m != nil {
		return vTypesDeny(qname, qtype, m.TypeBitMap, qname == s.zone)
	}
	ce, cov, _, err := s.closestEncloser(qname)
	if err != nil {
		return false, err
	}
	if qtype == dns.TypeDS {
		if cov.Flags&1 != 0 {
			// RFC 5155 §8.6: an opt-out span may hide an unsigned delegation.
			return true, vInsecure(ErrOptOut, "NODATA %s DS", qname)
		}
		return false, vBogus(ErrNSECMissing, "NODATA %s DS: no NSEC3 matches", qname)
	}
	wc := "*." + ce
	if ce == "." {
		wc = "*."
	}
	w, err := s.match(wc)
	if err != nil {
		return false, err
	}
	if w == nil {
		if cov.Flags&1 != 0 {
			// An empty non-terminal made only by unsigned delegations in
			// an opt-out span has no NSEC3 of its own (RFC 5155 §7.1).
			return false, vInsecure(ErrOptOut, "NODATA %s %s", qname, dns.Type(qtype))
		}
		return false, vBogus(ErrNSECMissing, "NODATA %s %s: no NSEC3 matches the name or a wildcard", qname, dns.Type(qtype))
	}
	if _, err := vTypesDeny(qname, qtype, w.TypeBitMap, false); err != nil {
		return false, err
	}
	if cov.Flags&1 != 0 {
		// The closest encloser proof rests on an opt-out span: the
		// answer is not authenticated (RFC 5155 §9.2).
		return false, vInsecure(ErrOptOut, "wildcard NODATA %s %s", qname, dns.Type(qtype))
	}
	return false, nil
}
