package zonestore

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// Export writes z as a canonical master file: a header comment, $ORIGIN,
// then every record with an absolute owner name, in canonical order with
// the SOA first. Parsing the output gives back the same zone.
func Export(w io.Writer, z *zone.Zone) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "; zone %s serial %d, %d records\n$ORIGIN %s\n", z.Origin, z.Serial(), z.Len(), z.Origin)
	var err error
	z.WalkAll(func(_ []byte, n *zone.Node) bool {
		for _, set := range n.RRsets {
			for _, rr := range set.All() {
				if _, err = fmt.Fprintln(bw, FormatRecord(rr)); err != nil {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("export %s: %w", z.Origin, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export %s: %w", z.Origin, err)
	}
	return nil
}

// FormatRecord writes rr as one line of a master file, which Parse reads
// back as the same record. Data that the type's own format cannot hold is
// written in the RFC 3597 generic form, `\# LENGTH HEX`: NULL data, which
// has no presentation format, and a list of types that names type 0 or
// 65535 (written "None" and "Reserved", which the parser does not read).
func FormatRecord(rr dns.RR) string {
	switch v := rr.(type) {
	case *dns.NULL:
		return genericForm(&v.Hdr, []byte(v.Data))
	case *dns.RRSIG:
		if unnamed(v.TypeCovered) {
			return packedForm(rr)
		}
	case *dns.SIG:
		if unnamed(v.TypeCovered) {
			return packedForm(rr)
		}
	case *dns.NSEC:
		if slices.ContainsFunc(v.TypeBitMap, unnamed) {
			return packedForm(rr)
		}
	case *dns.NSEC3:
		if slices.ContainsFunc(v.TypeBitMap, unnamed) {
			return packedForm(rr)
		}
	case *dns.CSYNC:
		if slices.ContainsFunc(v.TypeBitMap, unnamed) {
			return packedForm(rr)
		}
	case *dns.NXT:
		if slices.ContainsFunc(v.TypeBitMap, unnamed) {
			return packedForm(rr)
		}
	}
	return rr.String()
}

// unnamed reports whether the parser cannot read the name the printer
// gives type t.
func unnamed(t uint16) bool { return t == dns.TypeNone || t == dns.TypeReserved }

// packedForm writes rr in RFC 3597 form, from its wire form.
func packedForm(rr dns.RR) string {
	rr = dns.Copy(rr) // packing writes the length into the record
	buf := make([]byte, dns.Len(rr)+512)
	end, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return rr.String() // not a record the store holds
	}
	rdlen := int(rr.Header().Rdlength)
	return genericForm(rr.Header(), buf[end-rdlen:end])
}

// genericForm writes a record with the given rdata in RFC 3597 form.
func genericForm(h *dns.RR_Header, rdata []byte) string {
	s := h.String() + `\# ` + strconv.Itoa(len(rdata))
	if len(rdata) > 0 {
		s += " " + hex.EncodeToString(rdata)
	}
	return s
}
