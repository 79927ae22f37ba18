package zonestore

import (
	"fmt"
	"slices"

	"github.com/miekg/dns"

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

// storeKey is the bbolt key of a name: its canonical key, except for the
// root, whose canonical key is empty, which bbolt does not take. 0x00 0x00
// sorts before every other key and is no other name's key.
func storeKey(ck []byte) []byte {
	if len(ck) == 0 {
		return []byte{0, 0}
	}
	return ck
}
