package zonestore_test

import (
	"bytes"
	"testing"

	"github.com/sovdns/sovdns/zonestore"
)

// maxFuzzInput caps the input so each run stays fast.
const maxFuzzInput = 16 << 10

// FuzzParse feeds arbitrary bytes to Parse and Build: errors are fine,
// panics are not. When a zone builds, it must export and read back.
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
		if len(data) > maxFuzzInput {
			return
		}
		p, err := zonestore.Parse(bytes.NewReader(data), "example.", "fuzz.zone", nil)
		if err != nil {
			return
		}
		if len(p.Pos) != len(p.RRs) {
			t.Fatalf("%d positions for %d records", len(p.Pos), len(p.RRs))
		}
		z, err := p.Build()
		if err != nil {
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
		if z2.Len() != z.Len() {
			t.Fatalf("export holds %d records, zone %d", z2.Len(), z.Len())
		}
	})
}
