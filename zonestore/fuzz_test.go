package zonestore_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// maxFuzzInput caps the input so each run stays fast.
const maxFuzzInput = 16 << 10

// maxFuzzRecords caps the records checked, so that each run stays fast.
const maxFuzzRecords = 2000

// maxErrorText bounds an error message: input is quoted cut short, so even
// a huge bad token gives a short message.
const maxErrorText = 4 << 10

// FuzzParse feeds arbitrary bytes to Parse and Build. Errors are fine when
// they name a file and line; panics are not. Every record read must read
// back the same from the text the export writes for it, and a zone that
// builds must export, read back and build to the same records.
// testdata/fuzz/FuzzParse holds inputs that once broke one of these.
func FuzzParse(f *testing.F) {
	seeds := []string{
		baseZone,
		apexText,
		apexText + "www IN A 192.0.2.1\nwww IN CNAME x\n",
		apexText + "sub IN NS ns.sub\nns.sub IN A 192.0.2.1\nx.sub IN TXT \"occluded\"\n",
		apexText + "d IN DNAME example.net.\na.b.d IN A 192.0.2.1\n",
		apexText + "unk IN TYPE65280 \\# 4 0A000001\nbad IN TYPE65281 \\# 3 00\n",
		apexText + "* IN NS ns.example.net.\n*.w IN MX 10 mail\n",
		apexText + "$GENERATE 1-5 h$ A 192.0.2.$\n",
		apexText + "$INCLUDE other.zone\n",
		"$ORIGIN example.\n@ 3600 IN SOA ns1 h (\n 1 2 3\n 4 5 )\n",
		"$ORIGIN example.\n@ 3600 IN SOA ns1 h ( 1 2 3 4 5\n",
		"$TTL\n$ORIGIN\n@",
		"@ IN TXT \"unterminated\n",
		"\\000.\\255.example. 0 IN A 192.0.2.1\n",
		"example. 2147483648 CH A 192.0.2.1\n",
		"",
		"\x00\xff(;)\"\\",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput || bytes.Count(bytes.ToUpper(data), []byte("$GENERATE")) > 1 {
			return // $GENERATE lines make up to 65,536 records each: too slow
		}
		p, err := zonestore.Parse(bytes.NewReader(data), "example.", "fuzz.zone", nil)
		if err != nil {
			checkParseError(t, err)
			return
		}
		if len(p.Pos) != len(p.RRs) {
			t.Fatalf("%d positions for %d records", len(p.Pos), len(p.RRs))
		}
		if len(p.RRs) > maxFuzzRecords {
			return
		}
		for i, rr := range p.RRs {
			if p.Pos[i].File != "fuzz.zone" || p.Pos[i].Line < 1 {
				t.Fatalf("record %d (%s) placed at %v", i, rr, p.Pos[i])
			}
			text := zonestore.FormatRecord(rr)
			again, err := zonestore.Parse(strings.NewReader(text+"\n"), "", "record", nil)
			if err != nil {
				t.Fatalf("record %d at %v does not read back from %q: %v", i, p.Pos[i], text, err)
			}
			if len(again.RRs) != 1 || !slices.Equal(wire(t, again.RRs[0]), wire(t, rr)) {
				t.Fatalf("record %d at %v, written %q, reads back as %v", i, p.Pos[i], text, again.RRs)
			}
		}
		z, err := p.Build()
		if err != nil {
			checkParseError(t, err)
			return
		}
		var b bytes.Buffer
		if err := zonestore.Export(&b, z); err != nil {
			t.Fatalf("Export: %v", err)
		}
		p2, err := zonestore.Parse(bytes.NewReader(b.Bytes()), "", "export.zone", nil)
		if err != nil {
			t.Fatalf("re-parse of the export: %v\n%s", err, b.String())
		}
		z2, err := p2.Build()
		if err != nil {
			t.Fatalf("rebuild of the export: %v\n%s", err, b.String())
		}
		if a, b2 := wires(t, z.Records()), wires(t, z2.Records()); !slices.Equal(a, b2) {
			t.Fatalf("the export reads back as other records:\n%s", b.String())
		}
	})
}

// checkParseError fails unless err (or each error it joins) is placed.
func checkParseError(t *testing.T, err error) {
	t.Helper()
	if len(err.Error()) > maxErrorText {
		t.Fatalf("error message of %d bytes: %.200s...", len(err.Error()), err)
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	for _, e := range list {
		var pe *zonestore.ParseError
		if errors.As(e, &pe) {
			if pe.Pos.File != "fuzz.zone" || pe.Pos.Line < 1 {
				t.Fatalf("error placed at %v: %v", pe.Pos, e)
			}
			continue
		}
		if !errors.Is(e, zone.ErrNoSOA) && !errors.Is(e, zone.ErrNoApexNS) && !errors.Is(e, zone.ErrTooManyErrors) {
			t.Fatalf("error without a position: %v", e)
		}
	}
}

// wire is rr's uncompressed wire form.
func wire(t *testing.T, rr dns.RR) []byte {
	t.Helper()
	buf := make([]byte, dns.Len(rr)+512)
	n, err := dns.PackRR(dns.Copy(rr), buf, 0, nil, false)
	if err != nil {
		t.Fatalf("pack %v: %v", rr, err)
	}
	return buf[:n]
}

// wires is the sorted wire forms of rrs.
func wires(t *testing.T, rrs []dns.RR) []string {
	t.Helper()
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = string(wire(t, rr))
	}
	slices.Sort(out)
	return out
}
