package zonestore

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// maxRecordWire bounds the wire form of one record: its owner, the fixed
// fields and at most 65,535 octets of data.
const maxRecordWire = zone.MaxNameWire + 10 + 0xFFFF

// checker validates records as they are read. Its buffers are reused from
// one record to the next.
type checker struct {
	buf, again []byte
	zero       map[uint16]zeroRR // a record without data, per type
}

// check validates rr and returns it as the store will give it back: packed
// to the wire and unpacked again, so that every name and string is in the
// one spelling the store reads back (and the export writes).
//
// The parser accepts data that cannot be stored (bad hex or base64 is only
// decoded when the record is packed; a TXT record may hold any number of
// strings) and reads data in the RFC 3597 generic form of a known type as
// far as the type's format goes, ignoring what is left. Both are refused
// here.
func (c *checker) check(rr dns.RR) (dns.RR, error) {
	h := rr.Header()
	// The parser sets Rdlength only when it reads a known type's data from
	// the generic form: it is then the length the \# form gave.
	generic := int(h.Rdlength)
	if _, ok := rr.(*dns.RFC3597); ok {
		generic = 0
	}
	sortTypeBitMap(rr)
	wire, err := c.pack(rr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", ownerText(h), typeName(h.Rrtype), err)
	}
	if (h.Rdlength == 0 || c.isZero(rr)) && !emptyAllowed(rr) {
		return nil, fmt.Errorf("%s %s: the record has no data", ownerText(h), typeName(h.Rrtype))
	}
	if rdlen := int(h.Rdlength); generic != 0 && rdlen != generic {
		return nil, fmt.Errorf("%s %s: the generic data (\\# %d) does not match the %s format: the %s data read from it is %d octets",
			ownerText(h), typeName(h.Rrtype), generic, typeName(h.Rrtype), typeName(h.Rrtype), rdlen)
	}
	if generic == 0 && plain(rr) {
		return rr, nil // as the store gives it back
	}
	if err := incomplete(rr); err != nil {
		return nil, fmt.Errorf("%s %s: %w", ownerText(h), typeName(h.Rrtype), err)
	}
	out, end, err := dns.UnpackRR(wire, 0)
	if err == nil && end != len(wire) {
		err = fmt.Errorf("%d octets left over", len(wire)-end)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: the data does not read back from its wire form: %w", ownerText(h), typeName(h.Rrtype), err)
	}
	if cap(c.again) < len(wire) {
		c.again = make([]byte, len(wire))
	}
	n, err := dns.PackRR(out, c.again[:len(wire)], 0, nil, false)
	if err != nil || !bytes.Equal(c.again[:n], wire) {
		return nil, fmt.Errorf("%s %s: the data does not read back the same from its wire form", ownerText(h), typeName(h.Rrtype))
	}
	if generic != 0 || !commonType(h.Rrtype) {
		// The export writes the record in the type's own format: it must
		// read back as the same data. Data read from the generic form may
		// have stopped short of the type's format (an MX without its
		// name); the parser lets some data of the rarer types through
		// that their format cannot hold (an SVCB "mandatory" key that
		// lists key 0), or reads a newline as data.
		if err := c.readsBack(out, wire); err != nil {
			if generic != 0 {
				return nil, fmt.Errorf("%s %s: the generic data (\\# %d) does not hold a whole %s record: it reads as %s",
					ownerText(h), typeName(h.Rrtype), generic, typeName(h.Rrtype), quoteInput(FormatRecord(out)))
			}
			return nil, fmt.Errorf("%s %s: %w", ownerText(h), typeName(h.Rrtype), err)
		}
	}
	return out, nil
}

// readsBack checks that rr, written as the export writes it, reads back as
// the same wire data.
func (c *checker) readsBack(rr dns.RR, wire []byte) error {
	text := FormatRecord(rr)
	zp := dns.NewZoneParser(strings.NewReader(text), "", "")
	back, ok := zp.Next()
	if !ok {
		err := zp.Err()
		if err == nil {
			err = errors.New("no record")
		}
		return fmt.Errorf("the data is not valid %s data: written out as %s it does not read back: %w",
			typeName(rr.Header().Rrtype), quoteInput(text), err)
	}
	if cap(c.again) < len(wire) {
		c.again = make([]byte, len(wire))
	}
	n, err := dns.PackRR(back, c.again[:len(wire)], 0, nil, false)
	if err != nil || !bytes.Equal(c.again[:n], wire) {
		return fmt.Errorf("the data is not valid %s data: written out as %s it reads back as other data",
			typeName(rr.Header().Rrtype), quoteInput(text))
	}
	return nil
}

// plain reports whether rr, read from its presentation form, is already as
// the wire form reads back: a type of the bulk of large zones whose names
// need no escapes (zone.PlainName) and whose strings are printable ASCII
// without backslashes. This spares the common records a round trip.
func plain(rr dns.RR) bool {
	if !zone.PlainName(rr.Header().Name) {
		return false
	}
	switch v := rr.(type) {
	case *dns.A, *dns.AAAA:
		return true
	case *dns.NS:
		return zone.PlainName(v.Ns)
	case *dns.CNAME:
		return zone.PlainName(v.Target)
	case *dns.PTR:
		return zone.PlainName(v.Ptr)
	case *dns.MX:
		return zone.PlainName(v.Mx)
	case *dns.SRV:
		return zone.PlainName(v.Target)
	case *dns.SOA:
		return zone.PlainName(v.Ns) && zone.PlainName(v.Mbox)
	case *dns.TXT:
		for _, s := range v.Txt {
			for i := 0; i < len(s); i++ {
				if c := s[i]; c < ' ' || c > '~' || c == '\\' || c == '"' {
					return false
				}
			}
		}
		return true
	}
	return false
}

// commonType reports whether t is one of the types that make up the bulk
// of large zones, whose formats the parser and the export are known to
// agree on (FuzzParse checks it); other types are written and read back
// as they are parsed.
func commonType(t uint16) bool {
	switch t {
	case dns.TypeA, dns.TypeAAAA, dns.TypeNS, dns.TypeCNAME, dns.TypePTR, dns.TypeMX, dns.TypeTXT,
		dns.TypeSOA, dns.TypeSRV, dns.TypeDS, dns.TypeDNSKEY, dns.TypeRRSIG, dns.TypeNSEC,
		dns.TypeNSEC3, dns.TypeNSEC3PARAM:
		return true
	}
	return false
}

// isZero reports whether rr has no data at all: the parser gives such a
// record for a type at the end of the input (the form dynamic update uses
// for deletions), and some types pack it as a few zero octets. It is called
// after rr is packed, with its Rdlength set.
func (c *checker) isZero(rr dns.RR) bool {
	h := rr.Header()
	z, ok := c.zero[h.Rrtype]
	if !ok {
		if newRR, known := dns.TypeToRR[h.Rrtype]; known {
			z.rr, z.len = newRR(), -1
			*z.rr.Header() = dns.RR_Header{Name: ".", Rrtype: h.Rrtype, Class: h.Class}
			buf := make([]byte, 512)
			if _, err := dns.PackRR(z.rr, buf, 0, nil, false); err == nil {
				z.len = int(z.rr.Header().Rdlength)
			}
		}
		if c.zero == nil {
			c.zero = make(map[uint16]zeroRR)
		}
		c.zero[h.Rrtype] = z
	}
	if z.rr == nil || int(h.Rdlength) != z.len {
		return false // the comparison only where the lengths agree
	}
	*z.rr.Header() = *h
	return dns.IsDuplicate(z.rr, rr)
}

// zeroRR is a record of a type without data, and the length of its data
// in wire form (-1 when it does not pack).
type zeroRR struct {
	rr  dns.RR
	len int
}

// sortTypeBitMap puts the type list of an NSEC, NSEC3 or CSYNC record in
// ascending order without repeats, as its wire form (a bitmap) has it: the
// master-file form may list the types in any order (RFC 4034 §4.2), which
// the packer does not accept.
func sortTypeBitMap(rr dns.RR) {
	var types *[]uint16
	switch r := rr.(type) {
	case *dns.NSEC:
		types = &r.TypeBitMap
	case *dns.NSEC3:
		types = &r.TypeBitMap
	case *dns.CSYNC:
		types = &r.TypeBitMap
	default:
		return
	}
	slices.Sort(*types)
	*types = slices.Compact(*types)
}

// pack returns rr in wire form, in a buffer reused by the next call. The
// buffer starts small (most records are) and grows to the largest record
// the first time one does not fit.
func (c *checker) pack(rr dns.RR) ([]byte, error) {
	if c.buf == nil {
		c.buf = make([]byte, 1024)
	}
	end, err := dns.PackRR(rr, c.buf, 0, nil, false)
	if errors.Is(err, dns.ErrBuf) && len(c.buf) < 2*maxRecordWire {
		c.buf = make([]byte, 2*maxRecordWire)
		end, err = dns.PackRR(rr, c.buf, 0, nil, false)
	}
	if err != nil {
		if errors.Is(err, dns.ErrBuf) || dns.Len(rr)-dns.Len(rr.Header()) > 0xFFFF {
			return nil, errTooLong
		}
		return nil, fmt.Errorf("bad data: %w", err)
	}
	return c.buf[:end], nil
}

// incomplete catches data the parser takes for complete when it is not.
func incomplete(rr dns.RR) error {
	if v, ok := rr.(*dns.HIP); ok && v.PublicKeyLength == 0 {
		// The parser reads the end of the line as a public key of
		// nothing (base64 decoding skips newlines).
		return errors.New("the public key is missing")
	}
	return nil
}

// emptyAllowed reports whether rr's type may have no data at all (as
// zone.Build allows): a type the parser does not know, NULL and APL.
func emptyAllowed(rr dns.RR) bool {
	switch rr.(type) {
	case *dns.RFC3597, *dns.NULL, *dns.APL:
		return true
	}
	return false
}

var errTooLong = errors.New("the data is longer than 65,535 octets (RFC 1035 §3.2.1)")

// ownerText is a record's owner as the master file format writes it.
func ownerText(h *dns.RR_Header) string {
	s, _, _ := strings.Cut(h.String(), "\t")
	return s
}

// CheckRecord makes of one record read on its own (by the CLI's record
// add, a control API request) the checks Parse makes of each record of a
// file: its data encodes to the wire and reads back the same, at most
// 65,535 octets, generic data of its type's length. It returns the record
// as the store will give it back.
func CheckRecord(rr dns.RR) (dns.RR, error) {
	var c checker
	return c.check(rr)
}
