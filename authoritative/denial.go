package authoritative

import (
	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// Proofs of non-existence for DNSSEC-signed zones (RFC 4035 §3.1.3, RFC
// 5155 §7.2), added to the authority section when the client set DO.
// They are built from the NSEC or NSEC3 records the zone holds, whoever
// signed it.

// proofKind says what is being proven.
type proofKind uint8

const (
	proofNXDomain     proofKind = iota // no such name, no wildcard
	proofNoData                        // the name exists, not the type
	proofWildcard                      // a wildcard answered: no closer name exists
	proofWildNoData                    // a wildcard matched without the type
	proofNoDS                          // a delegation without DS (insecure)
	proofNoDataAtName                  // NODATA at an existing name, DS included
)

// prove adds the NSEC or NSEC3 records that show what kind claims about
// key (the question name's wire key) in z, whose closest encloser of key
// is ce.
func (a *answerer) prove(z *zone.Zone, kind proofKind, key []byte, ce *zone.Node) {
	if !a.do || !z.Signed() {
		return
	}
	if z.HasNSEC3() {
		a.proveNSEC3(z, kind, key, ce)
		return
	}
	switch kind {
	case proofNoData, proofNoDS, proofNoDataAtName:
		// The NSEC at the name, or for an empty non-terminal the one
		// that covers it.
		a.addNSEC(z.CoveringNSEC(string(key)))
	case proofNXDomain:
		a.addNSEC(z.CoveringNSEC(string(key)))
		a.addNSEC(z.CoveringNSEC(wildcardKey(ce.Key)))
	case proofWildcard:
		a.addNSEC(z.CoveringNSEC(string(key)))
	case proofWildNoData:
		a.addNSEC(z.CoveringNSEC(string(key)))
		a.addNSEC(z.CoveringNSEC(wildcardKey(ce.Key)))
	}
}

func wildcardKey(parent string) string { return "\x01*" + parent }

// addNSEC adds n's NSEC RRset and signatures, once.
func (a *answerer) addNSEC(n *zone.Node) {
	a.addProof(n, dns.TypeNSEC)
}

func (a *answerer) addProof(n *zone.Node, t uint16) {
	if n == nil {
		return
	}
	for _, seen := range a.proofs {
		if seen == n {
			return
		}
	}
	set := n.Get(t)
	if set == nil {
		return
	}
	a.proofs = append(a.proofs, n)
	a.res.Ns = append(a.res.Ns, set.All()...)
}

// proveNSEC3 follows RFC 5155 §7.2.
func (a *answerer) proveNSEC3(z *zone.Zone, kind proofKind, key []byte, ce *zone.Node) {
	param := nsec3Param(z)
	if param == nil {
		return
	}
	hash := func(k string) string {
		return dns.HashName(keyName(k), param.Hash, param.Iterations, param.Salt)
	}
	match := func(k string) bool {
		n, ok := z.FindNSEC3(hash(k))
		if ok {
			a.addProof(n, dns.TypeNSEC3)
		}
		return ok
	}
	cover := func(k string) {
		n, _ := z.FindNSEC3(hash(k))
		a.addProof(n, dns.TypeNSEC3)
	}
	// closestEncloserProof: the closest encloser matches, the next closer
	// name is covered (§7.2.1).
	closestEncloserProof := func(ceKey string) {
		match(ceKey)
		if nc := nextCloser(string(key), ceKey); nc != "" {
			cover(nc)
		}
	}
	switch kind {
	case proofNXDomain:
		closestEncloserProof(ce.Key)
		cover(wildcardKey(ce.Key))
	case proofNoData, proofNoDataAtName:
		if !match(string(key)) {
			// §7.2.4: a DS question at a delegation left out by opt-out.
			closestEncloserProof(provableEncloser(z, string(key), hash))
		}
	case proofNoDS:
		if !match(string(key)) {
			closestEncloserProof(provableEncloser(z, string(key), hash))
		}
	case proofWildcard:
		// §7.2.6: the closest encloser is implied by the wildcard.
		if nc := nextCloser(string(key), ce.Key); nc != "" {
			cover(nc)
		}
	case proofWildNoData:
		closestEncloserProof(ce.Key)
		match(wildcardKey(ce.Key))
	}
}

// provableEncloser returns the nearest ancestor of key that has an NSEC3
// record (with opt-out a delegation may have none).
func provableEncloser(z *zone.Zone, key string, hash func(string) string) string {
	for k := key; ; {
		p, ok := zone.ParentKey(k)
		if !ok || !zone.IsBelow(p, z.Key) {
			return z.Key
		}
		if _, ok := z.FindNSEC3(hash(p)); ok {
			return p
		}
		k = p
	}
}

// nextCloser returns the name one label longer than ce on the way to key,
// or "" when key is ce.
func nextCloser(key, ce string) string {
	if len(key) <= len(ce) {
		return ""
	}
	for {
		p, ok := zone.ParentKey(key)
		if !ok {
			return ""
		}
		if p == ce {
			return key
		}
		key = p
	}
}

func nsec3Param(z *zone.Zone) *dns.NSEC3 {
	first := z.FirstNSEC3()
	if first == nil {
		return nil
	}
	set := first.Get(dns.TypeNSEC3)
	if set == nil {
		return nil
	}
	return set.RRs()[0].(*dns.NSEC3)
}

// keyName turns a wire key into a presentation name for hashing.
func keyName(key string) string {
	name, _, err := dns.UnpackDomainName([]byte(key), 0)
	if err != nil {
		return "."
	}
	return name
}
