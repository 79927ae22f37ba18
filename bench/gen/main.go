// Command gen writes a benchmark zone and a dnsperf query file with a
// realistic mix: existing names, NXDOMAIN, NODATA and referrals.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

func main() {
	names := flag.Int("names", 100000, "names with address records")
	deleg := flag.Int("delegations", 2000, "delegated child zones")
	queries := flag.Int("queries", 200000, "queries in the query file")
	origin := flag.String("origin", "bench.test.", "zone origin")
	out := flag.String("out", ".", "output directory")
	random := flag.Int("random", 0, "also write random.txt: this many unique random names under the origin, asked once each (a random-subdomain flood)")
	flag.Parse()
	if err := run(*out, *origin, *names, *deleg, *queries); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if *random > 0 {
		if err := randomNames(*out, *origin, *random); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}

// randomNames writes n distinct names of 12 random letters and digits
// directly under origin, type A or AAAA: none exists, so every answer is an
// NXDOMAIN that no response cache has seen.
func randomNames(out, origin string, n int) error {
	f, err := os.Create(filepath.Join(out, "random.txt"))
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	r := rand.New(rand.NewPCG(3, 4))
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	label := make([]byte, 12)
	seen := make(map[string]struct{}, n)
	for len(seen) < n {
		for i := range label {
			label[i] = alphabet[r.IntN(len(alphabet))]
		}
		if _, dup := seen[string(label)]; dup {
			continue
		}
		seen[string(label)] = struct{}{}
		t := "A"
		if len(seen)%4 == 0 {
			t = "AAAA"
		}
		fmt.Fprintf(w, "%s.%s %s\n", label, origin, t)
	}
	return w.Flush()
}

func run(out, origin string, names, deleg, queries int) error {
	zf, err := os.Create(filepath.Join(out, "bench.zone"))
	if err != nil {
		return err
	}
	defer zf.Close()
	w := bufio.NewWriter(zf)
	fmt.Fprintf(w, "$ORIGIN %s\n$TTL 3600\n", origin)
	fmt.Fprintf(w, "@ SOA ns1 hostmaster 1 7200 900 1209600 300\n@ NS ns1\n@ NS ns2\nns1 A 192.0.2.1\nns2 A 192.0.2.2\n@ MX 10 mail\nmail A 192.0.2.3\n")
	for i := range names {
		fmt.Fprintf(w, "host%d A 10.%d.%d.%d\n", i, (i>>16)&255, (i>>8)&255, i&255)
		if i%4 == 0 {
			fmt.Fprintf(w, "host%d AAAA 2001:db8::%x:%x\n", i, i>>16, i&0xffff)
		}
		if i%10 == 0 {
			fmt.Fprintf(w, "host%d TXT \"record %d\"\n", i, i)
		}
	}
	for i := range deleg {
		fmt.Fprintf(w, "sub%d NS ns.sub%d\nsub%d NS ns.example.net.\nns.sub%d A 198.51.100.%d\n", i, i, i, i, i%250+1)
	}
	if err := w.Flush(); err != nil {
		return err
	}

	qf, err := os.Create(filepath.Join(out, "queries.txt"))
	if err != nil {
		return err
	}
	defer qf.Close()
	qw := bufio.NewWriter(qf)
	r := rand.New(rand.NewPCG(1, 2))
	for range queries {
		switch p := r.IntN(100); {
		case p < 70: // existing
			i := r.IntN(names)
			t := "A"
			if i%4 == 0 && r.IntN(2) == 0 {
				t = "AAAA"
			}
			fmt.Fprintf(qw, "host%d.%s %s\n", i, origin, t)
		case p < 80: // NXDOMAIN
			fmt.Fprintf(qw, "nx%d.%s A\n", r.IntN(names), origin)
		case p < 90: // NODATA
			fmt.Fprintf(qw, "host%d.%s MX\n", r.IntN(names), origin)
		default: // referral
			fmt.Fprintf(qw, "www.sub%d.%s A\n", r.IntN(deleg), origin)
		}
	}
	return qw.Flush()
}
