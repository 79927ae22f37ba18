package dnssec_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// vtZoneNames are the names of the test zone example. and their types
// (RRSIG and NSEC/NSEC3 added by the builders). c.example. and w.example.
// are empty non-terminals; sub.example. is an unsigned delegation and
// sec.example. a signed one.
var vtZoneNames = []struct {
	name  string
	types []uint16
}{
	{"example.", []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeDNSKEY}},
	{"a.example.", []uint16{dns.TypeA}},
	{"b.c.example.", []uint16{dns.TypeA}},
	{"d.example.", []uint16{dns.TypeA}},
	{"sec.example.", []uint16{dns.TypeNS, dns.TypeDS}},
	{"sub.example.", []uint16{dns.TypeNS}},
	{"*.w.example.", []uint16{dns.TypeTXT}},
}

// vtNSECChain builds the zone's NSEC chain (names already in canonical
// order).
func vtNSECChain() []dns.RR {
	var out []dns.RR
	for i, n := range vtZoneNames {
		next := vtZoneNames[(i+1)%len(vtZoneNames)].name
		types := append(slices.Clone(n.types), dns.TypeNSEC)
		if !slices.Equal(n.types, []uint16{dns.TypeNS}) {
			types = append(types, dns.TypeRRSIG)
		}
		slices.Sort(types)
		out = append(out, &dns.NSEC{Hdr: dns.RR_Header{Name: n.name, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 300},
			NextDomain: next, TypeBitMap: types})
	}
	return out
}

// vtNSEC3Chain builds the zone's NSEC3 chain with the given iterations and
// salt. With optOut, the unsigned delegation gets no NSEC3 record and every
// record has the opt-out flag. The names in omit get none either.
func vtNSEC3Chain(iter uint16, salt string, optOut bool, omit ...string) []dns.RR {
	type entry struct {
		hash  string
		types []uint16
	}
	names := map[string][]uint16{"c.example.": nil, "w.example.": nil}
	for _, n := range vtZoneNames {
		if optOut && n.name == "sub.example." {
			continue
		}
		t := slices.Clone(n.types)
		if !slices.Equal(n.types, []uint16{dns.TypeNS}) {
			t = append(t, dns.TypeRRSIG)
		}
		if n.name == "example." {
			t = append(t, dns.TypeNSEC3PARAM)
		}
		slices.Sort(t)
		names[n.name] = t
	}
	for _, n := range omit {
		delete(names, n)
	}
	var es []entry
	for name, t := range names {
		es = append(es, entry{hash: dns.HashName(name, dns.SHA1, iter, salt), types: t})
	}
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.hash, b.hash) })
	var out []dns.RR
	flags := uint8(0)
	if optOut {
		flags = 1
	}
	for i, e := range es {
		out = append(out, &dns.NSEC3{Hdr: dns.RR_Header{Name: strings.ToLower(e.hash) + ".example.", Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 300},
			Hash: dns.SHA1, Flags: flags, Iterations: iter, SaltLength: uint8(len(salt) / 2), Salt: salt,
			HashLength: 20, NextDomain: es[(i+1)%len(es)].hash, TypeBitMap: e.types})
	}
	return out
}

// vtWithout drops the records covering or matching name.
func vtWithout(chain []dns.RR, name string) []dns.RR {
	var out []dns.RR
	for _, rr := range chain {
		switch v := rr.(type) {
		case *dns.NSEC3:
			if v.Cover(name) || v.Match(name) {
				continue
			}
		case *dns.NSEC:
			if strings.EqualFold(v.Hdr.Name, name) {
				continue
			}
		}
		out = append(out, rr)
	}
	return out
}

// vtOnly keeps the NSEC records owned by the given names.
func vtOnly(chain []dns.RR, owners ...string) []dns.RR {
	var out []dns.RR
	for _, rr := range chain {
		if slices.Contains(owners, rr.Header().Name) {
			out = append(out, rr)
		}
	}
	return out
}

func TestDenialProofs(t *testing.T) {
	nsec := vtNSECChain()
	nsec3 := vtNSEC3Chain(0, "", false)
	salted := vtNSEC3Chain(5, "ABCD", false)
	optout := vtNSEC3Chain(0, "", true)
	// c.example. as an empty non-terminal left out of an opt-out chain, as
	// one made only by unsigned delegations may be.
	optoutENT := vtNSEC3Chain(0, "", true, "c.example.")
	tooMany := vtNSEC3Chain(dnssec.DefaultMaxNSEC3Iterations+1, "", false)

	type kind int
	const (
		nxdomain kind = iota
		nodata
		wildcard
	)
	tests := []struct {
		name       string
		kind       kind
		qname      string
		qtype      uint16
		wildcard   string
		rrs        []dns.RR
		want       error
		status     dnssec.SecStatus
		delegation bool
	}{
		// NSEC
		{name: "nsec nxdomain", kind: nxdomain, qname: "x.example.", rrs: vtOnly(nsec, "*.w.example.", "example.")},
		{name: "nsec nxdomain below ent", kind: nxdomain, qname: "x.c.example.", rrs: nsec},
		{name: "nsec nxdomain without wildcard proof", kind: nxdomain, qname: "x.example.", rrs: vtOnly(nsec, "*.w.example."),
			want: dnssec.ErrNSECMissing, status: dnssec.Bogus},
		{name: "nsec nxdomain for an existing name", kind: nxdomain, qname: "a.example.", rrs: nsec, want: dnssec.ErrBogus, status: dnssec.Bogus},
		{name: "nsec nxdomain for an empty non-terminal", kind: nxdomain, qname: "c.example.", rrs: vtOnly(nsec, "a.example.", "*.w.example."),
			want: dnssec.ErrBogus, status: dnssec.Bogus},
		{name: "nsec nxdomain below a delegation", kind: nxdomain, qname: "x.sub.example.", rrs: vtOnly(nsec, "sub.example.", "example."),
			want: dnssec.ErrNSECMissing, status: dnssec.Bogus},
		{name: "nsec nodata", kind: nodata, qname: "a.example.", qtype: dns.TypeTXT, rrs: vtOnly(nsec, "a.example.")},
		{name: "nsec nodata type exists", kind: nodata, qname: "a.example.", qtype: dns.TypeA, rrs: nsec, want: dnssec.ErrBogus, status: dnssec.Bogus},
		{name: "nsec nodata missing", kind: nodata, qname: "a.example.", qtype: dns.TypeTXT, rrs: vtOnly(nsec, "d.example."),
			want: dnssec.ErrNSECMissing, status: dnssec.Bogus},
		{name: "nsec nodata empty non-terminal", kind: nodata, qname: "c.example.", qtype: dns.TypeA, rrs: vtOnly(nsec, "a.example.")},
		{name: "nsec nodata from the parent side", kind: nodata, qname: "sub.example.", qtype: dns.TypeA, rrs: nsec, want: dnssec.ErrBogus, status: dnssec.Bogus},
		{name: "nsec no DS: insecure delegation", kind: nodata, qname: "sub.example.", qtype: dns.TypeDS, rrs: nsec, delegation: true},
		{name: "nsec no DS: not a cut", kind: nodata, qname: "a.example.", qtype: dns.TypeDS, rrs: nsec},
		{name: "nsec DS exists", kind: nodata, qname: "sec.example.", qtype: dns.TypeDS, rrs: nsec, want: dnssec.ErrBogus, status: dnssec.Bogus},
		{name: "nsec wildcard nodata", kind: nodata, qname: "x.w.example.", qtype: dns.TypeMX, rrs: vtOnly(nsec, "sub.example.", "*.w.example.")},
		{name: "nsec wildcard answer", kind: wildcard, qname: "x.w.example.", wildcard: "*.w.example.", rrs: vtOnly(nsec, "*.w.example.")},
		{name: "nsec wildcard answer without proof", kind: wildcard, qname: "x.w.example.", wildcard: "*.w.example.", rrs: vtOnly(nsec, "a.example."),
			want: dnssec.ErrNSECMissing, status: dnssec.Bogus},
		{name: "nsec wildcard answer with a closer encloser", kind: wildcard, qname: "x.c.example.", wildcard: "*.example.", rrs: nsec,
			want: dnssec.ErrNSECMissing, status: dnssec.Bogus},
		// NSEC3
		{name: "nsec3 nxdomain", kind: nxdomain, qname: "x.example.", rrs: nsec3},
		{name: "nsec3 nxdomain salted", kind: nxdomain, qname: "x.y.example.", rrs: salted},
		{name: "nsec3 nxdomain without wildcard proof", kind: nxdomain, qname: "x.example.", rrs: vtWithout(nsec3, "*.example."),
			want: dnssec.ErrNSECMissing, status: dnssec.Bogus},
		{name: "nsec3 nxdomain for an existing name", kind: nxdomain, qname: "a.example.", rrs: nsec3, want: dnssec.ErrBogus, status: dnssec.Bogus},
		{name: "nsec3 nodata", kind: nodata, qname: "a.example.", qtype: dns.TypeTXT, rrs: nsec3},
		{name: "nsec3 nodata empty non-terminal", kind: nodata, qname: "c.example.", qtype: dns.TypeA, rrs: nsec3},
		{name: "nsec3 nodata type exists", kind: nodata, qname: "d.example.", qtype: dns.TypeA, rrs: nsec3, want: dnssec.ErrBogus, status: dnssec.Bogus},
		{name: "nsec3 no DS: insecure delegation", kind: nodata, qname: "sub.example.", qtype: dns.TypeDS, rrs: nsec3, delegation: true},
		{name: "nsec3 opt-out no DS", kind: nodata, qname: "sub.example.", qtype: dns.TypeDS, rrs: optout, delegation: true,
			want: dnssec.ErrOptOut, status: dnssec.Insecure},
		{name: "nsec3 opt-out nxdomain", kind: nxdomain, qname: "x.example.", rrs: optout, want: dnssec.ErrOptOut, status: dnssec.Insecure},
		{name: "nsec3 wildcard nodata", kind: nodata, qname: "x.w.example.", qtype: dns.TypeMX, rrs: nsec3},
		{name: "nsec3 opt-out wildcard nodata", kind: nodata, qname: "x.w.example.", qtype: dns.TypeMX, rrs: optout,
			want: dnssec.ErrOptOut, status: dnssec.Insecure},
		{name: "nsec3 opt-out empty non-terminal without NSEC3", kind: nodata, qname: "c.example.", qtype: dns.TypeA, rrs: optoutENT,
			want: dnssec.ErrOptOut, status: dnssec.Insecure},
		{name: "nsec3 empty non-terminal without NSEC3", kind: nodata, qname: "c.example.", qtype: dns.TypeA,
			rrs: vtNSEC3Chain(0, "", false, "c.example."), want: dnssec.ErrNSECMissing, status: dnssec.Bogus},
		{name: "nsec3 wildcard answer", kind: wildcard, qname: "x.w.example.", wildcard: "*.w.example.", rrs: nsec3},
		{name: "nsec3 wildcard answer without proof", kind: wildcard, qname: "x.w.example.", wildcard: "*.w.example.", rrs: vtWithout(nsec3, "x.w.example."),
			want: dnssec.ErrNSECMissing, status: dnssec.Bogus},
		{name: "nsec3 too many iterations", kind: nxdomain, qname: "x.example.", rrs: tooMany, want: dnssec.ErrNSEC3Iterations, status: dnssec.Insecure},
		{name: "no records", kind: nxdomain, qname: "x.example.", want: dnssec.ErrNSECMissing, status: dnssec.Bogus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dnssec.NewBudget(dnssec.Limits{})
			var err error
			var delegation bool
			switch tt.kind {
			case nxdomain:
				err = dnssec.ProveNXDomain("example.", tt.qname, tt.rrs, b)
			case nodata:
				delegation, err = dnssec.ProveNoData("example.", tt.qname, tt.qtype, tt.rrs, b)
			case wildcard:
				err = dnssec.ProveWildcard("example.", tt.qname, tt.wildcard, tt.rrs, b)
			}
			vtReason(t, err, tt.want, tt.status)
			if delegation != tt.delegation {
				t.Errorf("delegation %v, want %v", delegation, tt.delegation)
			}
			if errors.Is(err, dnssec.ErrNSEC3Iterations) && b.Hashes != 0 {
				t.Errorf("%d hashes computed for a proof over the iteration limit", b.Hashes)
			}
			if code, ok := dnssec.EDE(err); err != nil && errors.Is(err, dnssec.ErrNSEC3Iterations) && (!ok || code != 27) {
				t.Errorf("EDE %d for too many iterations", code)
			}
		})
	}
}

// TestNSEC3HashLimit checks that a proof stops at the resolution's hash
// budget: a name many labels below the zone needs one hash per label.
func TestNSEC3HashLimit(t *testing.T) {
	chain := vtNSEC3Chain(10, "", false)
	deep := strings.Repeat("l.", 20) + "example."
	b := dnssec.NewBudget(dnssec.Limits{MaxNSEC3Hashes: 5})
	err := dnssec.ProveNXDomain("example.", deep, chain, b)
	if !errors.Is(err, dnssec.ErrWorkLimit) || b.Exceeded != "nsec3_hashes" || b.Hashes != 6 {
		t.Fatalf("err %v, %d hashes (%q): want the hash limit after 5", err, b.Hashes, b.Exceeded)
	}
	// The default budget allows it.
	if err := dnssec.ProveNXDomain("example.", deep, chain, dnssec.NewBudget(dnssec.Limits{})); err != nil {
		t.Fatalf("default budget: %v", err)
	}
	// The per-proof cap holds whatever the resolution's budget.
	deeper := strings.Repeat("l.", dnssec.MaxNSEC3HashesPerProof+5) + "example."
	if len(deeper) > 250 {
		deeper = strings.Repeat("l.", 120) + "example."
	}
	b = dnssec.NewBudget(dnssec.Limits{MaxNSEC3Hashes: 10000})
	if err := dnssec.ProveNXDomain("example.", deeper, chain, b); !errors.Is(err, dnssec.ErrWorkLimit) || b.Hashes > dnssec.MaxNSEC3HashesPerProof+1 {
		t.Fatalf("err %v after %d hashes: want the per-proof cap", err, b.Hashes)
	}
}
