package zonestore

import (
	"bufio"
	"fmt"
	"io"

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
			for _, rr := range set.RRs {
				if _, err = fmt.Fprintln(bw, rr.String()); err != nil {
					return false
				}
			}
			for _, rr := range set.Sigs {
				if _, err = fmt.Fprintln(bw, rr.String()); err != nil {
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
