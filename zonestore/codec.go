package zonestore

import (
	"fmt"
	"slices"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/arena"
	"github.com/sovdns/sovdns/zone"
)

// encodeNode appends the node's records in uncompressed wire form. shared
// says the records may belong to a zone being served: then they are packed
// without being written to (dns.PackRR sets each record's Rdlength, a data
// race with readers); a zone not yet published takes the faster way.
func encodeNode(buf []byte, n *zone.Node, shared bool) ([]byte, error) {
	var err error
	for _, set := range n.RRsets {
		if shared {
			buf, err = appendShared(buf, set.All())
		} else {
			buf, err = appendFresh(buf, set.All())
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func appendFresh(buf []byte, rrs []dns.RR) ([]byte, error) {
	for _, rr := range rrs {
		off := len(buf)
		buf = slices.Grow(buf, dns.Len(rr)+16)
		end, err := dns.PackRR(rr, buf[:cap(buf)], off, nil, false)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", rr.Header().Name, err)
		}
		buf = buf[:end]
	}
	return buf, nil
}

// appendShared packs rrs as the answer section of a message, whose packing
// does not write into the records, and cuts the 12-byte header off.
func appendShared(buf []byte, rrs []dns.RR) ([]byte, error) {
	if len(rrs) == 0 {
		return buf, nil
	}
	m := dns.Msg{Answer: rrs}
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", rrs[0].Header().Name, err)
	}
	return append(buf, wire[12:]...), nil
}

// decodeRRs appends the records encoded in v to rrs. v is only valid inside
// the bbolt transaction, and UnpackRR copies what it keeps.
func decodeRRs(rrs []dns.RR, v []byte) ([]dns.RR, error) {
	for off := 0; off < len(v); {
		rr, next, err := dns.UnpackRR(v, off)
		if err != nil {
			return rrs, err
		}
		if next <= off {
			return rrs, fmt.Errorf("record at offset %d does not advance", off)
		}
		rrs = append(rrs, rr)
		off = next
	}
	return rrs, nil
}

// names interns the names of records read from the file, so that the
// records hold one string for each: every record of a name its owner's,
// and a name in a record's data (a server, a mailbox, a target, a
// signer) the string of the same name read before, in this zone or in an
// earlier one of the same pass. The small zones a registry holds by the
// thousand name the same servers and mailbox, and their MX and CNAME
// targets are names of their own: 6 of their 13 names' strings, and as
// many heap objects. A signed zone's signatures name its origin each.
//
// It also moves the addresses of A and AAAA records, which UnpackRR gives
// a slice each, into shared blocks: one heap object for many.
type names struct {
	m     map[string]string
	addrs arena.Arena // the addresses' blocks
}

// maxNames bounds what names keeps: it starts again when full.
const maxNames = 4096

func (n *names) intern(s string) string {
	if v, ok := n.m[s]; ok {
		return v
	}
	if n.m == nil || len(n.m) >= maxNames {
		n.m = make(map[string]string, 64)
	}
	n.m[s] = s
	return s
}

// node interns the names of rrs, the records of one name, freshly decoded
// (no one else holds them yet).
func (n *names) node(rrs []dns.RR) {
	owner := ""
	for i, rr := range rrs {
		h := rr.Header()
		switch {
		case i == 0:
			owner = n.intern(h.Name)
			h.Name = owner
		case h.Name == owner:
			h.Name = owner
		}
		switch r := rr.(type) {
		case *dns.A:
			r.A = n.addrs.Cut(r.A)
		case *dns.AAAA:
			r.AAAA = n.addrs.Cut(r.AAAA)
		case *dns.NS:
			r.Ns = n.intern(r.Ns)
		case *dns.SOA:
			r.Ns, r.Mbox = n.intern(r.Ns), n.intern(r.Mbox)
		case *dns.MX:
			r.Mx = n.intern(r.Mx)
		case *dns.CNAME:
			r.Target = n.intern(r.Target)
		case *dns.DNAME:
			r.Target = n.intern(r.Target)
		case *dns.SRV:
			r.Target = n.intern(r.Target)
		case *dns.PTR:
			r.Ptr = n.intern(r.Ptr)
		case *dns.RRSIG:
			r.SignerName = n.intern(r.SignerName)
		}
	}
}

// storeKey is the bbolt key of a name: its canonical key, except for the
// root, whose canonical key is empty, which bbolt does not take. 0x00 0x00
// sorts before every other key and is no other name's key.
func storeKey(ck []byte) []byte {
	if len(ck) == 0 {
		return []byte{0, 0}
	}
	return ck
}
