package resolver

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/miekg/dns"
)

//go:embed roothints.zone
var ianaRootHints string

// ErrBadHints says a root-hints file cannot be used.
var ErrBadHints = errors.New("unusable root hints")

// RootHints returns the built-in IANA root hints.
func RootHints() []dns.RR {
	rrs, err := ParseHints(strings.NewReader(ianaRootHints), "built-in root hints")
	if err != nil {
		panic(err) // the embedded file is tested
	}
	return rrs
}

// LoadHints reads a root-hints file: NS records for the root and the
// A/AAAA records of their targets.
func LoadHints(path string) ([]dns.RR, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("root hints: %w", err)
	}
	defer f.Close()
	return ParseHints(f, path)
}

// ParseHints reads root hints in master-file format and checks that there
// is at least one root NS with an address.
func ParseHints(r io.Reader, name string) ([]dns.RR, error) {
	zp := dns.NewZoneParser(r, ".", name)
	zp.SetDefaultTTL(3600000) // hints files often leave TTLs out
	var out []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out = append(out, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHints, err)
	}
	ns := map[string]bool{}
	for _, rr := range out {
		if n, ok := rr.(*dns.NS); ok && n.Hdr.Name == "." {
			ns[strings.ToLower(n.Ns)] = true
		}
	}
	for _, rr := range out {
		switch rr.(type) {
		case *dns.A, *dns.AAAA:
			if ns[strings.ToLower(rr.Header().Name)] {
				return out, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: %s has no root NS record with an address", ErrBadHints, name)
}
