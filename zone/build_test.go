package zone_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

const testSig = "20300101000000 20200101000000 12345 example. dGVzdHNpZ25hdHVyZQ=="

func TestBuildErrors(t *testing.T) {
	// The apex constant holds records 0 (SOA), 1 (NS) and 2 (ns1 A); records
	// added by a case start at index 3.
	tests := []struct {
		name      string
		text      string   // zone text; apex is prepended when noApex is false
		noApex    bool     // text is the whole zone
		extra     []dns.RR // records added after the text, as a decoder could produce them
		want      error
		wantIndex int
		wantOwner string
		wantType  uint16
	}{
		{
			name:      "no SOA",
			noApex:    true,
			text:      "$ORIGIN example.\n@ 3600 IN NS ns1.example.net.\n",
			want:      zone.ErrNoSOA,
			wantIndex: -1,
		},
		{
			name:      "second SOA at the apex",
			text:      "@ IN SOA ns1.example. hostmaster.example. 2 7200 900 1209600 300\n",
			want:      zone.ErrMultipleSOA,
			wantIndex: 3,
			wantOwner: "example.",
			wantType:  dns.TypeSOA,
		},
		{
			name:      "identical SOA twice",
			text:      "@ IN SOA ns1.example. hostmaster.example. 1 7200 900 1209600 300\n",
			want:      zone.ErrMultipleSOA,
			wantIndex: 3,
			wantOwner: "example.",
			wantType:  dns.TypeSOA,
		},
		{
			name:      "SOA below the apex",
			text:      "sub IN SOA ns1.example. hostmaster.example. 1 7200 900 1209600 300\n",
			want:      zone.ErrSOANotApex,
			wantIndex: 3,
			wantOwner: "sub.example.",
			wantType:  dns.TypeSOA,
		},
		{
			name:      "no NS at the apex",
			noApex:    true,
			text:      "$ORIGIN example.\n@ 3600 IN SOA ns1.example.net. hostmaster.example. 1 7200 900 1209600 300\nwww 3600 IN A 192.0.2.1\n",
			want:      zone.ErrNoApexNS,
			wantIndex: -1,
		},
		{
			name:      "record outside the zone",
			text:      "www.example.com. IN A 192.0.2.1\n",
			want:      zone.ErrOutOfZone,
			wantIndex: 3,
			wantOwner: "www.example.com.",
			wantType:  dns.TypeA,
		},
		{
			name:      "record at the parent of the origin",
			text:      "www IN A 192.0.2.1\n.  IN TXT \"root\"\n",
			want:      zone.ErrOutOfZone,
			wantIndex: 4,
			wantOwner: ".",
			wantType:  dns.TypeTXT,
		},
		{
			name:      "CNAME next to an A",
			text:      "www IN CNAME host.example.\nwww IN A 192.0.2.1\nhost IN A 192.0.2.2\n",
			want:      zone.ErrCNAMEConflict,
			wantIndex: 4,
			wantOwner: "www.example.",
			wantType:  dns.TypeA,
		},
		{
			name:      "CNAME at the apex",
			text:      "@ IN CNAME example.net.\n",
			want:      zone.ErrCNAMEConflict,
			wantIndex: 0,
			wantOwner: "example.",
			wantType:  dns.TypeSOA,
		},
		{
			name:      "two CNAMEs at a name",
			text:      "www IN CNAME a.example.net.\nwww IN CNAME b.example.net.\n",
			want:      zone.ErrMultipleCNAME,
			wantIndex: 4,
			wantOwner: "www.example.",
			wantType:  dns.TypeCNAME,
		},
		{
			name:      "two DNAMEs at a name",
			text:      "d IN DNAME a.example.net.\nd IN DNAME b.example.net.\n",
			want:      zone.ErrDNAMEConflict,
			wantIndex: 4,
			wantOwner: "d.example.",
			wantType:  dns.TypeDNAME,
		},
		{
			name:      "name below a DNAME",
			text:      "d IN DNAME example.net.\nx.d IN A 192.0.2.1\n",
			want:      zone.ErrBelowDNAME,
			wantIndex: 4,
			wantOwner: "x.d.example.",
			wantType:  dns.TypeA,
		},
		{
			name:      "name two labels below a DNAME",
			text:      "d IN DNAME example.net.\nwww IN A 192.0.2.9\nx.y.d IN TXT \"unreachable\"\n",
			want:      zone.ErrBelowDNAME,
			wantIndex: 5,
			wantOwner: "x.y.d.example.",
			wantType:  dns.TypeTXT,
		},
		{
			name:      "MX at a delegation",
			text:      "sub IN NS ns.example.net.\nsub IN MX 10 mail.example.\n",
			want:      zone.ErrOccluded,
			wantIndex: 4,
			wantOwner: "sub.example.",
			wantType:  dns.TypeMX,
		},
		{
			name:      "TXT below a delegation",
			text:      "sub IN NS ns.sub.example.\nns.sub IN A 192.0.2.10\nx.sub IN TXT \"occluded\"\n",
			want:      zone.ErrOccluded,
			wantIndex: 5,
			wantOwner: "x.sub.example.",
			wantType:  dns.TypeTXT,
		},
		{
			name:      "NS below a delegation",
			text:      "sub IN NS ns.example.net.\nx.sub IN NS ns.example.net.\n",
			want:      zone.ErrOccluded,
			wantIndex: 4,
			wantOwner: "x.sub.example.",
			wantType:  dns.TypeNS,
		},
		{
			name:      "DS at the apex",
			text:      "@ IN DS 12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE1ABD5D6D5B3F2E6B1B2D6E2A\n",
			want:      zone.ErrDSAtApex,
			wantIndex: 3,
			wantOwner: "example.",
			wantType:  dns.TypeDS,
		},
		{
			name:      "TTL above 2^31-1",
			text:      "www 2147483648 IN A 192.0.2.1\n",
			want:      zone.ErrBadTTL,
			wantIndex: 3,
			wantOwner: "www.example.",
			wantType:  dns.TypeA,
		},
		{
			name:      "class CH",
			text:      "www CH TXT \"chaos\"\n",
			want:      zone.ErrBadClass,
			wantIndex: 3,
			wantOwner: "www.example.",
			wantType:  dns.TypeTXT,
		},
		{
			name:      "meta type ANY",
			extra:     []dns.RR{&dns.ANY{Hdr: hdr("www.example.", dns.TypeANY)}},
			want:      zone.ErrBadType,
			wantIndex: 3,
			wantOwner: "www.example.",
			wantType:  dns.TypeANY,
		},
		{
			name:      "meta type OPT",
			extra:     []dns.RR{&dns.OPT{Hdr: hdr("www.example.", dns.TypeOPT)}},
			want:      zone.ErrBadType,
			wantIndex: 3,
			wantOwner: "www.example.",
			wantType:  dns.TypeOPT,
		},
		{
			name:      "NS without rdata",
			text:      "sub IN NS ns.example.net.\n@ IN NS\n",
			want:      zone.ErrNoRdata,
			wantIndex: 4,
			wantOwner: "example.",
			wantType:  dns.TypeNS,
		},
		{
			name:      "A without rdata",
			text:      "www IN A\n",
			want:      zone.ErrNoRdata,
			wantIndex: 3,
			wantOwner: "www.example.",
			wantType:  dns.TypeA,
		},
		{
			name:      "MX without rdata",
			text:      "www IN A 192.0.2.1\n@ 60 IN MX\n",
			want:      zone.ErrNoRdata,
			wantIndex: 4,
			wantOwner: "example.",
			wantType:  dns.TypeMX,
		},
		{
			name:      "RRSIG covering a missing type",
			text:      "www IN A 192.0.2.1\nwww IN TXT \"x\"\nwww IN RRSIG MX 8 2 3600 " + testSig + "\n",
			want:      zone.ErrOrphanRRSIG,
			wantIndex: 5,
			wantOwner: "www.example.",
			wantType:  dns.TypeRRSIG,
		},
		{
			name:      "NS at a wildcard",
			text:      "* IN NS ns.example.net.\n",
			want:      zone.ErrWildcardNS,
			wantIndex: 3,
			wantOwner: "*.example.",
			wantType:  dns.TypeNS,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := tc.text
			if !tc.noApex {
				text = apex + text
			}
			rrs := parseRRs(t, "example.", text)
			rrs = append(rrs, tc.extra...)
			z, err := zone.Build("example.", rrs)
			if err == nil {
				t.Fatal("Build succeeded, want an error")
			}
			if z != nil {
				t.Error("Build returned a zone along with an error")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			// Several records may share the problem: one of them must be
			// the expected record, and every one must point at its record.
			var found bool
			for _, re := range recordErrors(t, err) {
				if !errors.Is(re, tc.want) {
					continue
				}
				if re.Index == tc.wantIndex && re.Owner == tc.wantOwner && re.Type == tc.wantType {
					found = true
				}
				if re.Index >= 0 && re.Index < len(rrs) {
					if h := rrs[re.Index].Header(); !strings.EqualFold(h.Name, re.Owner) || h.Rrtype != re.Type {
						t.Errorf("Index %d points at %s %s, error names %s %s",
							re.Index, h.Name, dns.Type(h.Rrtype), re.Owner, dns.Type(re.Type))
					}
				}
			}
			if !found {
				t.Errorf("no error at index %d for %q %s wraps %v in:\n%v",
					tc.wantIndex, tc.wantOwner, dns.Type(tc.wantType), tc.want, err)
			}
		})
	}
}

// TestBuildErrorsArePositioned checks that an error is positioned: every
// RecordError for a record names that record, and no error of a single record
// is reported as a whole-zone (-1) problem.
func TestBuildErrorsArePositioned(t *testing.T) {
	tests := []struct {
		name       string
		text       string
		wantErrors int
	}{
		{
			name:       "empty non-terminal below a DNAME",
			text:       "d IN DNAME example.net.\na.b.d IN A 192.0.2.1\n",
			wantErrors: 1,
		},
		{
			name:       "CNAME with two other types",
			text:       "www IN CNAME host.example.\nwww IN A 192.0.2.1\nwww IN TXT \"x\"\nhost IN A 192.0.2.2\n",
			wantErrors: 2,
		},
		{
			name:       "occluded data below a cut",
			text:       "sub IN NS ns.example.net.\na.sub IN TXT \"x\"\nb.sub IN MX 10 mail.example.\nc.sub IN AAAA 2001:db8::1\n",
			wantErrors: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rrs := parseRRs(t, "example.", apex+tc.text)
			_, err := zone.Build("example.", rrs)
			if err == nil {
				t.Fatal("Build succeeded, want an error")
			}
			res := recordErrors(t, err)
			if len(res) != tc.wantErrors {
				t.Errorf("%d errors, want %d: %v", len(res), tc.wantErrors, err)
			}
			for _, re := range res {
				if re.Index < 0 || re.Index >= len(rrs) {
					t.Errorf("error %v has Index %d", re, re.Index)
					continue
				}
				if h := rrs[re.Index].Header(); !strings.EqualFold(h.Name, re.Owner) {
					t.Errorf("error %v points at record %d (%s)", re, re.Index, h.Name)
				}
			}
		})
	}
}

func TestBuildTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString(apex)
	for i := range zone.MaxErrors + 20 {
		fmt.Fprintf(&b, "host%d.example.com. IN A 192.0.2.1\n", i)
	}
	_, err := zone.Build("example.", parseRRs(t, "example.", b.String()))
	if !errors.Is(err, zone.ErrTooManyErrors) {
		t.Fatalf("error %v, want ErrTooManyErrors", err)
	}
	all := err.(interface{ Unwrap() []error }).Unwrap()
	if len(all) != zone.MaxErrors+1 {
		t.Errorf("%d errors, want %d", len(all), zone.MaxErrors+1)
	}
	if got := len(recordErrors(t, err)); got != zone.MaxErrors {
		t.Errorf("%d record errors, want %d", got, zone.MaxErrors)
	}
}

func TestRecordErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  *zone.RecordError
		want string
	}{
		{
			name: "record",
			err:  &zone.RecordError{Index: 3, Owner: "www.example.", Type: dns.TypeA, Err: zone.ErrOutOfZone},
			want: "www.example. A: " + zone.ErrOutOfZone.Error(),
		},
		{
			name: "whole zone",
			err:  &zone.RecordError{Index: -1, Err: zone.ErrNoSOA},
			want: zone.ErrNoSOA.Error(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
			if !errors.Is(tc.err, tc.err.Err) {
				t.Error("RecordError does not unwrap to its sentinel")
			}
		})
	}
}

// TestBuildAccepts lists zones that are valid though they look close to an error.
func TestBuildAccepts(t *testing.T) {
	tests := []struct {
		name string
		text string
	}{
		{name: "CNAME with NSEC", text: "www IN CNAME host.example.\nwww IN NSEC host.example. CNAME RRSIG NSEC\nhost IN A 192.0.2.1\n"},
		{name: "CNAME with its RRSIG", text: "www IN CNAME host.example.\nwww IN RRSIG CNAME 8 2 3600 " + testSig + "\nhost IN A 192.0.2.1\n"},
		{name: "glue at and below a cut", text: "sub IN NS ns.sub.example.\nsub IN A 192.0.2.7\nns.sub IN A 192.0.2.8\nns.sub IN AAAA 2001:db8::8\n"},
		{name: "DS and NSEC at a cut", text: "sub IN NS ns.example.net.\nsub IN DS 12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE1ABD5D6D5B3F2E6B1B2D6E2A\nsub IN NSEC www.example. NS DS RRSIG NSEC\n"},
		{name: "DNAME with data at the same name", text: "d IN DNAME example.net.\nd IN A 192.0.2.1\nd IN TXT \"owner data is fine\"\n"},
		{name: "wildcard with CNAME", text: "* IN CNAME www.example.\nwww IN A 192.0.2.1\n"},
		{name: "unknown type with empty rdata", text: "unk IN TYPE65280 \\# 0\n"},
		{name: "zero-valued rdata that is not empty", text: "z IN A 0.0.0.0\nz IN MX 0 .\nz IN TXT \"\"\n"},
		{name: "TTL of 2^31-1", text: "www 2147483647 IN A 192.0.2.1\n"},
		{name: "mixed-case owner names", text: "WWW.Example. IN A 192.0.2.1\nwww IN AAAA 2001:db8::1\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			build(t, "example.", apex+tc.text)
		})
	}
	t.Run("DNAME at the apex", func(t *testing.T) {
		z := build(t, "example.", "$ORIGIN example.\n@ 3600 IN SOA ns.example.net. h.example.net. 1 2 3 4 5\n@ 3600 IN NS ns.example.net.\n@ 3600 IN DNAME example.net.\n")
		if z.Apex.DNAME() != z.Apex {
			t.Errorf("apex DNAME field %v, want the apex", z.Apex.DNAME())
		}
	})
}

func TestBuildCollapsesDuplicates(t *testing.T) {
	var big, bigDup strings.Builder
	for i := range 40 {
		fmt.Fprintf(&big, "big IN TXT \"value %d\"\n", i)
		fmt.Fprintf(&bigDup, "big IN TXT \"value %d\"\n", i)
		if i%3 == 0 {
			fmt.Fprintf(&bigDup, "BIG 60 IN TXT \"value %d\"\n", i)
		}
	}
	tests := []struct {
		name    string
		text    string
		owner   string
		rrtype  uint16
		wantRRs int
		wantLen int // records in the zone, apex included
	}{
		{name: "identical", text: "www IN A 192.0.2.1\nwww IN A 192.0.2.1\n", owner: "www.example.", rrtype: dns.TypeA, wantRRs: 1, wantLen: 4},
		{name: "TTL differs", text: "www 300 IN A 192.0.2.1\nwww 600 IN A 192.0.2.1\n", owner: "www.example.", rrtype: dns.TypeA, wantRRs: 1, wantLen: 4},
		{name: "owner case differs", text: "www IN A 192.0.2.1\nWWW IN A 192.0.2.1\n", owner: "www.example.", rrtype: dns.TypeA, wantRRs: 1, wantLen: 4},
		{name: "name in rdata case differs", text: "@ IN MX 10 Mail.example.\n@ IN MX 10 mail.EXAMPLE.\nmail IN A 192.0.2.25\n", owner: "example.", rrtype: dns.TypeMX, wantRRs: 1, wantLen: 5},
		{name: "distinct rdata kept", text: "www IN A 192.0.2.1\nwww IN A 192.0.2.2\n", owner: "www.example.", rrtype: dns.TypeA, wantRRs: 2, wantLen: 5},
		{name: "TXT case is data", text: "t IN TXT \"ABC\"\nt IN TXT \"abc\"\n", owner: "t.example.", rrtype: dns.TypeTXT, wantRRs: 2, wantLen: 5},
		{name: "large RRset", text: bigDup.String(), owner: "big.example.", rrtype: dns.TypeTXT, wantRRs: 40, wantLen: 43},
		{name: "large RRset TXT case is data", text: big.String() + "big IN TXT \"VALUE 1\"\nbig IN TXT \"value 1\"\n", owner: "big.example.", rrtype: dns.TypeTXT, wantRRs: 41, wantLen: 44},
		{name: "RFC 3597 hex case", text: "unk IN TYPE65280 \\# 4 0A000001\nunk IN TYPE65280 \\# 4 0a000001\n", owner: "unk.example.", rrtype: 65280, wantRRs: 1, wantLen: 4},
		{name: "RRSIG", text: "www IN A 192.0.2.1\nwww IN RRSIG A 8 2 3600 " + testSig + "\nwww IN RRSIG A 8 2 3600 " + testSig + "\n", owner: "www.example.", rrtype: dns.TypeA, wantRRs: 1, wantLen: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := build(t, "example.", apex+tc.text)
			set := node(t, z, tc.owner).Get(tc.rrtype)
			if set == nil {
				t.Fatalf("no %s RRset at %s", dns.Type(tc.rrtype), tc.owner)
			}
			if len(set.RRs()) != tc.wantRRs {
				t.Errorf("%d records in the RRset, want %d", len(set.RRs()), tc.wantRRs)
			}
			if z.Len() != tc.wantLen {
				t.Errorf("Len() = %d, want %d", z.Len(), tc.wantLen)
			}
			if got := len(z.Records()); got != z.Len() {
				t.Errorf("Records() has %d records, Len() says %d", got, z.Len())
			}
		})
	}
}

func TestBuildNormalisesTTL(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		owner   string
		rrtype  uint16
		wantTTL uint32
	}{
		{name: "first wins, higher later", text: "www 300 IN A 192.0.2.1\nwww 600 IN A 192.0.2.2\n", owner: "www.example.", rrtype: dns.TypeA, wantTTL: 300},
		{name: "first wins, lower later", text: "www 600 IN A 192.0.2.1\nwww 300 IN A 192.0.2.2\nwww 60 IN A 192.0.2.3\n", owner: "www.example.", rrtype: dns.TypeA, wantTTL: 600},
		{name: "types are separate", text: "www 600 IN A 192.0.2.1\nwww 60 IN AAAA 2001:db8::1\n", owner: "www.example.", rrtype: dns.TypeAAAA, wantTTL: 60},
		{name: "$TTL default", text: "www IN TXT \"a\"\nwww 5 IN TXT \"b\"\n", owner: "www.example.", rrtype: dns.TypeTXT, wantTTL: 3600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := build(t, "example.", apex+tc.text)
			set := node(t, z, tc.owner).Get(tc.rrtype)
			if set.TTL != tc.wantTTL {
				t.Errorf("RRset TTL %d, want %d", set.TTL, tc.wantTTL)
			}
			for _, rr := range set.RRs() {
				if rr.Header().Ttl != tc.wantTTL {
					t.Errorf("record %v has TTL %d, want %d", rr, rr.Header().Ttl, tc.wantTTL)
				}
			}
		})
	}
}

func TestBuildLowerCasesOwners(t *testing.T) {
	z := build(t, "Example.", apex+"WWW.EXAMPLE. IN A 192.0.2.1\nMiXeD IN TXT \"KeepThisCase\"\n")
	if z.Origin != "example." {
		t.Errorf("Origin %q, want example.", z.Origin)
	}
	for _, rr := range z.Records() {
		if h := rr.Header().Name; h != strings.ToLower(h) {
			t.Errorf("owner %q is not lower-cased", h)
		}
	}
	txt := node(t, z, "mixed.example.").Get(dns.TypeTXT).RRs()[0].(*dns.TXT)
	if txt.Txt[0] != "KeepThisCase" {
		t.Errorf("TXT rdata changed to %q", txt.Txt[0])
	}
}

// TestBuildSharedRecords checks that Build leaves alone records that need no
// change: they may be shared with a zone that is being served.
func TestBuildSharedRecords(t *testing.T) {
	rrs := parseRRs(t, "example.", apex+"www IN A 192.0.2.1\n")
	z1, err := zone.Build("example.", rrs)
	if err != nil {
		t.Fatal(err)
	}
	before := make([]string, len(rrs))
	for i, rr := range rrs {
		before[i] = rr.String()
	}
	z2, err := zone.Build("example.", z1.Records())
	if err != nil {
		t.Fatal(err)
	}
	for i, rr := range rrs {
		if rr.String() != before[i] {
			t.Errorf("record %d changed from %q to %q", i, before[i], rr.String())
		}
	}
	if z1.Len() != z2.Len() || z1.Names() != z2.Names() {
		t.Errorf("rebuild has %d records, %d names; want %d, %d", z2.Len(), z2.Names(), z1.Len(), z1.Names())
	}
}

func TestBuildEmptyNonTerminals(t *testing.T) {
	z := build(t, "example.", apex+"a.b.c IN A 192.0.2.1\nx.b.c IN A 192.0.2.2\n_sip._tcp IN SRV 0 0 5060 sip.example.\nsip IN A 192.0.2.3\n")
	tests := []struct {
		name      string
		empty     bool
		parent    string
		wantNames int // children are checked via their parent's key
	}{
		{name: "example.", empty: false},
		{name: "c.example.", empty: true, parent: "example."},
		{name: "b.c.example.", empty: true, parent: "c.example."},
		{name: "a.b.c.example.", empty: false, parent: "b.c.example."},
		{name: "x.b.c.example.", empty: false, parent: "b.c.example."},
		{name: "_tcp.example.", empty: true, parent: "example."},
		{name: "_sip._tcp.example.", empty: false, parent: "_tcp.example."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := node(t, z, tc.name)
			if n.Name != tc.name {
				t.Errorf("Name %q, want %q", n.Name, tc.name)
			}
			if n.Key != key(t, tc.name) {
				t.Errorf("Key %q, want the wire form of %s", n.Key, tc.name)
			}
			if n.Empty() != tc.empty {
				t.Errorf("Empty() = %v, want %v", n.Empty(), tc.empty)
			}
			if tc.parent != "" {
				pk, _ := zone.ParentKey(n.Key)
				if p := z.Lookup(pk); p == nil || p.Name != tc.parent {
					t.Errorf("parent %v, want %s", p, tc.parent)
				}
			}
		})
	}
	// apex, ns1, c, b.c, a.b.c, x.b.c, _tcp, _sip._tcp, sip
	if got := z.Names(); got != 9 {
		t.Errorf("Names() = %d, want 9", got)
	}
	if got := z.Len(); got != 7 {
		t.Errorf("Len() = %d, want 7", got)
	}
}

func TestBuildNodeFields(t *testing.T) {
	z := build(t, "example.", apex+`
sub        IN NS    ns.sub.example.
sub        IN DS    12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE1ABD5D6D5B3F2E6B1B2D6E2A
ns.sub     IN A     192.0.2.10
a.b.sub    IN AAAA  2001:db8::10
other      IN NS    ns.example.net.
*          IN TXT   "wild"
*.w        IN A     192.0.2.20
d          IN DNAME example.net.
d          IN TXT   "owner of a DNAME"
www        IN A     192.0.2.1
`)
	tests := []struct {
		name     string
		cut      string // Node.Cut's name, "" for nil
		isCut    bool
		dname    string
		wildcard string
	}{
		{name: "example.", wildcard: "*.example."},
		{name: "www.example."},
		{name: "sub.example.", cut: "sub.example.", isCut: true},
		{name: "ns.sub.example.", cut: "sub.example."},
		{name: "b.sub.example.", cut: "sub.example."},
		{name: "a.b.sub.example.", cut: "sub.example."},
		{name: "other.example.", cut: "other.example.", isCut: true},
		{name: "w.example.", wildcard: "*.w.example."},
		{name: "*.w.example."},
		{name: "*.example."},
		{name: "d.example.", dname: "d.example."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := node(t, z, tc.name)
			if got := nameOf(n.Cut()); got != tc.cut {
				t.Errorf("Cut = %q, want %q", got, tc.cut)
			}
			if n.IsCut() != tc.isCut {
				t.Errorf("IsCut() = %v, want %v", n.IsCut(), tc.isCut)
			}
			if got := nameOf(n.DNAME()); got != tc.dname {
				t.Errorf("DNAME = %q, want %q", got, tc.dname)
			}
			if got := nameOf(n.Wildcard()); got != tc.wildcard {
				t.Errorf("Wildcard = %q, want %q", got, tc.wildcard)
			}
		})
	}
	if z.Apex != node(t, z, "example.") {
		t.Error("Apex is not the origin's node")
	}
	if z.SOA == nil || z.Serial() != 1 {
		t.Errorf("SOA %v, want serial 1", z.SOA)
	}
	if z.Key != key(t, "example.") {
		t.Errorf("Key %q", z.Key)
	}
}

func hdr(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: 3600}
}

func nameOf(n *zone.Node) string {
	if n == nil {
		return ""
	}
	return n.Name
}

func TestNodeRRsetOrderAndSigs(t *testing.T) {
	z := build(t, "example.", apex+`
@   IN MX    10 mail.example.
@   IN TXT   "v=spf1 -all"
@   IN AAAA  2001:db8::1
@   IN RRSIG SOA 8 1 3600 `+testSig+`
@   IN RRSIG TXT 8 1 3600 `+testSig+`
mail IN A 192.0.2.25
`)
	apexNode := z.Apex
	var types []uint16
	for _, s := range apexNode.RRsets {
		types = append(types, s.Type)
	}
	want := []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeMX, dns.TypeTXT, dns.TypeAAAA}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Errorf("RRset types %v, want %v (SOA first, then by type)", types, want)
	}
	if apexNode.Get(dns.TypeRRSIG) != nil {
		t.Error("RRSIGs must not form an RRset of their own")
	}
	tests := []struct {
		rrtype   uint16
		wantSigs int
	}{
		{rrtype: dns.TypeSOA, wantSigs: 1},
		{rrtype: dns.TypeTXT, wantSigs: 1},
		{rrtype: dns.TypeNS, wantSigs: 0},
	}
	for _, tc := range tests {
		t.Run(dns.Type(tc.rrtype).String(), func(t *testing.T) {
			if got := len(apexNode.Get(tc.rrtype).Sigs()); got != tc.wantSigs {
				t.Errorf("%d signatures, want %d", got, tc.wantSigs)
			}
		})
	}
	// Records: SOA first, every record once, RRSIGs right after their set.
	recs := z.Records()
	if _, ok := recs[0].(*dns.SOA); !ok {
		t.Errorf("first record %v, want the SOA", recs[0])
	}
	if sig, ok := recs[1].(*dns.RRSIG); !ok || sig.TypeCovered != dns.TypeSOA {
		t.Errorf("second record %v, want the SOA's RRSIG", recs[1])
	}
	if len(recs) != z.Len() || z.Len() != 9 {
		t.Errorf("Records() %d, Len() %d, want 9", len(recs), z.Len())
	}
}

// TestBuildLargeRRset checks that one very large RRset builds in linear
// time and keeps every distinct record.
func TestBuildLargeRRset(t *testing.T) {
	const n = 30000
	rrs := parseRRs(t, "example.", apex)
	for i := range n {
		txt := &dns.TXT{Hdr: hdr("big.example.", dns.TypeTXT), Txt: []string{fmt.Sprintf("record %d", i)}}
		rrs = append(rrs, txt)
		if i%2 == 0 {
			dup := &dns.TXT{Hdr: hdr("BIG.example.", dns.TypeTXT), Txt: []string{fmt.Sprintf("record %d", i)}}
			dup.Hdr.Ttl = 60
			rrs = append(rrs, dup)
		}
	}
	z, err := zone.Build("example.", rrs)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(node(t, z, "big.example.").Get(dns.TypeTXT).RRs()); got != n {
		t.Errorf("%d records, want %d", got, n)
	}
}

// TestBuildKeepsNotItsInput: Build may slice the RRsets of records that
// come together from its input, but the zone it returns keeps none of
// those slices: the caller may reuse the input (the store does, zone after
// zone). Grouped and scattered input, RRSIGs and NSEC3 owners included.
func TestBuildKeepsNotItsInput(t *testing.T) {
	tests := []struct{ name, text string }{
		{name: "grouped", text: `$ORIGIN example.
@ 300 SOA ns h 1 3600 600 86400 300
@ 300 NS ns
@ 300 NS ns2
ns 300 A 192.0.2.1
ns 300 A 192.0.2.2
ns 300 AAAA 2001:db8::1
www 300 TXT "a"
www 300 TXT "b"
`},
		{name: "scattered", text: `$ORIGIN example.
www 300 TXT "a"
@ 300 SOA ns h 1 3600 600 86400 300
ns 300 A 192.0.2.1
@ 300 NS ns
www 300 TXT "b"
ns 300 A 192.0.2.2
@ 300 NS ns2
ns 300 A 192.0.2.1
`},
		{name: "signed, NSEC3", text: `$ORIGIN example.
@ 300 SOA ns h 1 3600 600 86400 300
@ 300 RRSIG SOA 8 1 300 20300101000000 20200101000000 1 example. AAAA
@ 300 NS ns
@ 300 RRSIG NS 8 1 300 20300101000000 20200101000000 1 example. AAAA
ns 300 A 192.0.2.1
ns 300 RRSIG A 8 2 300 20300101000000 20200101000000 1 example. AAAA
0p9mhaveqvm6t7vbl5lop2u3t2rp3tom 300 NSEC3 1 0 0 - 0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TOM A RRSIG
0p9mhaveqvm6t7vbl5lop2u3t2rp3tom 300 RRSIG NSEC3 8 2 300 20300101000000 20200101000000 1 example. AAAA
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rrs := parseRRs(t, "example.", tt.text)
			z, err := zone.Build("example.", rrs)
			if err != nil {
				t.Fatal(err)
			}
			want := z.Records()
			var before []string
			for _, rr := range want {
				before = append(before, rr.String())
			}
			clear(rrs) // as a caller reusing its buffer does
			got := z.Records()
			if len(got) != len(before) || len(got) != z.Len() {
				t.Fatalf("%d records after the input was cleared, %d before, Len %d", len(got), len(before), z.Len())
			}
			for i, rr := range got {
				if rr == nil || rr.String() != before[i] {
					t.Fatalf("record %d is %v after the input was cleared, was %s", i, rr, before[i])
				}
			}
		})
	}
}

// TestRRsetSplit: each RRset's records and its signatures come apart as
// they went in, in a zone built whole and in one made by Apply (which
// signs a set that had none, and adds a second signature to another).
func TestRRsetSplit(t *testing.T) {
	text := apex + `
@   IN TXT   "one"
@   IN TXT   "two"
@   IN RRSIG TXT 8 1 3600 ` + testSig + `
www IN A 192.0.2.1
www IN RRSIG A 8 2 3600 ` + testSig + `
`
	z := build(t, "example.", text)
	check := func(z *zone.Zone, name string, rrtype uint16, wantRRs, wantSigs int) {
		t.Helper()
		set := node(t, z, name).Get(rrtype)
		if set == nil {
			t.Fatalf("%s %s: no RRset", name, dns.TypeToString[rrtype])
		}
		rrs, sigs := set.RRs(), set.Sigs()
		if len(rrs) != wantRRs || len(sigs) != wantSigs {
			t.Fatalf("%s %s: %d records and %d signatures, want %d and %d", name, dns.TypeToString[rrtype], len(rrs), len(sigs), wantRRs, wantSigs)
		}
		for _, rr := range rrs {
			if rr.Header().Rrtype != rrtype {
				t.Errorf("%s %s: record %v among the records", name, dns.TypeToString[rrtype], rr)
			}
		}
		for _, rr := range sigs {
			if sig, ok := rr.(*dns.RRSIG); !ok || sig.TypeCovered != rrtype {
				t.Errorf("%s %s: %v among the signatures", name, dns.TypeToString[rrtype], rr)
			}
		}
		if extra := append(rrs, dns.Copy(rrs[0])); &extra[0] == &rrs[0] {
			t.Errorf("%s %s: appending to the records wrote into the zone", name, dns.TypeToString[rrtype])
		}
	}
	check(z, "example.", dns.TypeTXT, 2, 1)
	check(z, "www.example.", dns.TypeA, 1, 1)
	check(z, "ns1.example.", dns.TypeA, 1, 0)

	sigNS1, err := dns.NewRR("ns1.example. 3600 IN RRSIG A 8 2 3600 " + testSig)
	if err != nil {
		t.Fatal(err)
	}
	sigWWW, err := dns.NewRR("www.example. 3600 IN RRSIG A 13 2 3600 " + testSig)
	if err != nil {
		t.Fatal(err)
	}
	www := node(t, z, "www.example.").Get(dns.TypeA)
	ns1 := node(t, z, "ns1.example.").Get(dns.TypeA)
	changed, err := zone.Apply(z, map[string][]dns.RR{
		key(t, "ns1.example."): append(ns1.RRs(), sigNS1),
		key(t, "www.example."): append(append(www.RRs(), www.Sigs()...), sigWWW),
	})
	if err != nil {
		t.Fatal(err)
	}
	check(changed, "ns1.example.", dns.TypeA, 1, 1)
	check(changed, "www.example.", dns.TypeA, 1, 2)
	check(changed, "example.", dns.TypeTXT, 2, 1)
	check(z, "ns1.example.", dns.TypeA, 1, 0) // the version before is as it was
}

// TestBuildTooManyRRSIGs: more signatures over one RRset than its count
// can hold are refused, not split wrongly.
func TestBuildTooManyRRSIGs(t *testing.T) {
	rrs := parseRRs(t, "example.", apex)
	for i := range 1 << 16 {
		sig, err := dns.NewRR(fmt.Sprintf("ns1.example. 3600 IN RRSIG A 8 2 3600 20300101000000 20200101000000 %d example. AAAA", i))
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, sig)
	}
	_, err := zone.Build("example.", rrs)
	if !errors.Is(err, zone.ErrTooManyRRSIGs) {
		t.Fatalf("Build: %v, want ErrTooManyRRSIGs", err)
	}
}

// TestBuildCollapsesManyDuplicateRRSIGs: among many signatures of one name
// (past the linear check), a repeated one is still kept once.
func TestBuildCollapsesManyDuplicateRRSIGs(t *testing.T) {
	rrs := parseRRs(t, "example.", apex)
	for i := range 40 {
		text := fmt.Sprintf("ns1.example. 3600 IN RRSIG A 8 2 3600 20300101000000 20200101000000 %d example. AAAA", i%30)
		sig, err := dns.NewRR(text)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, sig)
	}
	z, err := zone.Build("example.", rrs)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(node(t, z, "ns1.example.").Get(dns.TypeA).Sigs()); got != 30 {
		t.Errorf("%d signatures kept, want the 30 distinct ones", got)
	}
}
