package zonestore

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// encodeNode appends the node's records in uncompressed wire form.
func encodeNode(buf []byte, n *zone.Node) ([]byte, error) {
	var err error
	for _, set := range n.RRsets {
		if buf, err = appendRRs(buf, set.RRs); err != nil {
			return nil, err
		}
		if buf, err = appendRRs(buf, set.Sigs); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func appendRRs(buf []byte, rrs []dns.RR) ([]byte, error) {
	if len(rrs) == 0 {
		return buf, nil
	}
	// Packed as the answer section of a message, whose packing does not
	// write into the records (dns.PackRR sets Rdlength, and these records
	// may be shared with a zone being served); the 12-byte header is cut.
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

func sortCanonical(names []string) {
	keys := make(map[string][]byte, len(names))
	for _, n := range names {
		k, _ := zone.WireKey(n)
		keys[n] = zone.CanonicalKey(k)
	}
	slices.SortFunc(names, func(a, b string) int { return bytes.Compare(keys[a], keys[b]) })
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
