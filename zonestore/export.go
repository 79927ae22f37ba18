package zonestore

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
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
			for _, rrs := range [2][]dns.RR{set.RRs, set.Sigs} {
				for _, rr := range rrs {
					if _, err = fmt.Fprintln(bw, FormatRecord(rr)); err != nil {
						return false
					}
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
// back as the same record. A type with no presentation format of its own
// (NULL) is written in the RFC 3597 generic form, `\# LENGTH HEX`.
func FormatRecord(rr dns.RR) string {
	if n, ok := rr.(*dns.NULL); ok {
		return genericForm(&n.Hdr, []byte(n.Data))
	}
	return rr.String()
}

// genericForm writes a record with the given rdata in RFC 3597 form.
func genericForm(h *dns.RR_Header, rdata []byte) string {
	s := h.String() + `\# ` + strconv.Itoa(len(rdata))
	if len(rdata) > 0 {
		s += " " + hex.EncodeToString(rdata)
	}
	return s
}
