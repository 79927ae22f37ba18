package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

func TestCommonLabelsAndAncestor(t *testing.T) {
	for _, tc := range [][2]string{
		{"a.example.", "b.example."}, {"a.example.", "example."}, {"x.y.example.", "z.y.example."}, {".", "a."},
		{"example.", "example."}, {"a.b.", "a.c."}, {`a\.b.example.`, "b.example."}, {"ab.example.", "b.example."},
	} {
		if got, want := commonLabels(tc[0], tc[1]), dns.CompareDomainName(tc[0], tc[1]); got != want {
			t.Errorf("commonLabels(%q, %q) = %d, want %d", tc[0], tc[1], got, want)
		}
	}
	for _, tc := range []struct {
		name   string
		labels int
		want   string
	}{{"a.b.example.", 0, "."}, {"a.b.example.", 1, "example."}, {"a.b.example.", 2, "b.example."}, {"a.b.example.", 3, "a.b.example."},
		{"a.b.example.", 5, "a.b.example."}, {".", 0, "."}} {
		if got := ancestorOf(tc.name, tc.labels); got != tc.want {
			t.Errorf("ancestorOf(%q, %d) = %q, want %q", tc.name, tc.labels, got, tc.want)
		}
	}
}

// TestCanonicalKey: the keys sort as RFC 4034 §6.1 orders the names.
func TestCanonicalKey(t *testing.T) {
	ordered := []string{"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", `zABC.a.EXAMPLE.`,
		"z.example.", `\001.z.example.`, "*.z.example.", `\200.z.example.`}
	for i := 1; i < len(ordered); i++ {
		if a, b := canonicalKey(ordered[i-1]), canonicalKey(ordered[i]); a >= b {
			t.Errorf("key of %q not below that of %q", ordered[i-1], ordered[i])
		}
	}
	if canonicalKey(`\000.example.`) >= canonicalKey(`\000\000.example.`) || canonicalKey("a.example.") >= canonicalKey(`a\000.example.`) {
		t.Error("a label sorts after a longer one it is a prefix of")
	}
}
