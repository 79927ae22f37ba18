// Command zones fills a zone database with many small institution zones
// (SOA, two NS, MX, A, AAAA, TXT and a CNAME: 9 records each), named
// z0.gov.test. to zN-1.gov.test., for measuring a node that holds a
// registry's worth of zones. It writes the database directly, one zone
// per transaction, and the names of the zones to names.txt.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sovdns/sovdns/zonestore"
)

func main() {
	n := flag.Int("n", 10000, "number of zones")
	dir := flag.String("dir", "zones-data", "data directory (the database is sovdns.db in it)")
	flag.Parse()
	if err := run(*dir, *n); err != nil {
		fmt.Fprintln(os.Stderr, "zones:", err)
		os.Exit(1)
	}
}

func run(dir string, n int) error {
	st, err := zonestore.Open(filepath.Join(dir, "sovdns.db"), zonestore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	names, err := os.Create(filepath.Join(dir, "names.txt"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(names)
	for i := range n {
		origin := fmt.Sprintf("z%d.gov.test.", i)
		text := fmt.Sprintf(`@ 3600 IN SOA ns1.gov.test. hostmaster.gov.test. 1 7200 900 1209600 300
@ 3600 IN NS ns1.gov.test.
@ 3600 IN NS ns2.gov.test.
@ 3600 IN MX 10 mail
@ 3600 IN TXT "v=spf1 mx -all"
www 3600 IN A 192.0.2.%d
www 3600 IN AAAA 2001:db8::%x
mail 3600 IN A 192.0.2.%d
portal 3600 IN CNAME www
`, i%250+1, i%65535+1, (i+7)%250+1)
		p, err := zonestore.Parse(strings.NewReader(text), origin, origin+"zone", nil)
		if err != nil {
			return err
		}
		z, err := p.Build()
		if err != nil {
			return err
		}
		if _, err := st.Import(z, false); err != nil {
			return err
		}
		fmt.Fprintln(w, origin)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return names.Close()
}
