package dnssec

import (
	"testing"

	"github.com/miekg/dns"
)

// TestCanonicalOrder checks vCompare against the example of RFC 4034
// §6.1, with case and escapes, and that it allocates nothing for names
// without escapes (miekg/dns copies a name with escapes to pack it).
func TestCanonicalOrder(t *testing.T) {
	ordered := []string{
		"example.",
		"a.example.",
		"yljkjljk.a.example.",
		"Z.a.example.",
		`zABC.a.EXAMPLE.`,
		"z.example.",
		`\001.z.example.`,
		"*.z.example.",
		`\200.z.example.`,
	}
	for i, a := range ordered {
		for j, b := range ordered {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := vCompare(a, b); got != want {
				t.Errorf("vCompare(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
	if got := vCompare("WWW.Example.", "www.example."); got != 0 {
		t.Errorf("case: %d", got)
	}
	if n := testing.AllocsPerRun(100, func() { vCompare("yljkjljk.a.example.", "Z.a.example.") }); n != 0 {
		t.Errorf("%v allocations per comparison", n)
	}
}

func TestIsSubDomain(t *testing.T) {
	for _, tc := range []struct {
		parent, child string
	}{
		{".", "."}, {".", "a.example."}, {"example.", "example."}, {"example.", "A.Example."}, {"EXAMPLE.", "a.example."},
		{"example.", "xexample."}, {"a.example.", "example."}, {"b.example.", "a.example."}, {`a\.b.example.`, `x.a\.b.example.`},
		{"b.example.", `a\.b.example.`}, {"example.", "example.org."},
	} {
		if got, want := vIsSubDomain(tc.parent, tc.child), dns.IsSubDomain(tc.parent, tc.child); got != want {
			t.Errorf("vIsSubDomain(%q, %q) = %v, want %v", tc.parent, tc.child, got, want)
		}
	}
}
