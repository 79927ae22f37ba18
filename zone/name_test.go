package zone_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// rfc4034Order is the example of RFC 4034 §6.1, in canonical order.
var rfc4034Order = []string{
	"example.",
	"a.example.",
	"yljkjljk.a.example.",
	"Z.a.example.",
	"zABC.a.EXAMPLE.",
	"z.example.",
	`\001.z.example.`,
	"*.z.example.",
	`\200.z.example.`,
}

func TestWireKey(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "root", in: ".", want: "\x00"},
		{name: "lower-cased", in: "WWW.Example.", want: "\x03www\x07example\x00"},
		{name: "not qualified", in: "www.example", want: "\x03www\x07example\x00"},
		{name: "escaped dot stays in the label", in: `a\.b.example.`, want: "\x03a.b\x07example\x00"},
		{name: "decimal escape", in: `\065\000.example.`, want: "\x02a\x00\x07example\x00"},
		{name: "non-ASCII byte kept", in: `\200.example.`, want: "\x01\xc8\x07example\x00"},
		{name: "label of 64 octets", in: strings.Repeat("a", 64) + ".example.", wantErr: true},
		{name: "name of 257 octets", in: strings.Repeat(strings.Repeat("a", 63)+".", 4), wantErr: true},
		{name: "name of 256 octets", in: strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 62) + ".", wantErr: true},
		{name: "name of 255 octets", in: strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 61) + ".",
			want: strings.Repeat("\x3f"+strings.Repeat("a", 63), 3) + "\x3d" + strings.Repeat("a", 61) + "\x00"},
		{name: "empty label", in: "a..example.", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := zone.WireKey(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("WireKey(%q) = %q, want an error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("WireKey(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("WireKey(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestLowerWire(t *testing.T) {
	b := []byte("\x03WwW\x07ExAmPlE\x00\x01@\x01[")
	zone.LowerWire(b)
	if want := "\x03www\x07example\x00\x01@\x01["; string(b) != want {
		t.Errorf("LowerWire = %q, want %q", b, want)
	}
}

func TestNameHelpers(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantParent string // "" when there is none
		wantLabels int
	}{
		{name: "root", in: ".", wantParent: "", wantLabels: 0},
		{name: "tld", in: "example.", wantParent: ".", wantLabels: 1},
		{name: "deep", in: "a.b.c.example.", wantParent: "b.c.example.", wantLabels: 4},
		{name: "wildcard", in: "*.example.", wantParent: "example.", wantLabels: 2},
		{name: "escaped dot", in: `a\.b.example.`, wantParent: "example.", wantLabels: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := key(t, tc.in)
			p, ok := zone.ParentKey(k)
			if ok != (tc.wantParent != "") {
				t.Fatalf("ParentKey ok = %v", ok)
			}
			if ok && p != key(t, tc.wantParent) {
				t.Errorf("ParentKey = %q, want %q", p, key(t, tc.wantParent))
			}
			if got := zone.LabelCount(k); got != tc.wantLabels {
				t.Errorf("LabelCount = %d, want %d", got, tc.wantLabels)
			}
			if got := dns.CountLabel(tc.in); got != tc.wantLabels {
				t.Errorf("test is inconsistent: dns.CountLabel = %d", got)
			}
		})
	}
}

func TestIsBelow(t *testing.T) {
	tests := []struct {
		name     string
		key      string
		ancestor string
		want     bool
	}{
		{name: "itself", key: "example.", ancestor: "example.", want: true},
		{name: "child", key: "www.example.", ancestor: "example.", want: true},
		{name: "grandchild", key: "a.b.example.", ancestor: "example.", want: true},
		{name: "everything is below the root", key: "a.example.", ancestor: ".", want: true},
		{name: "parent", key: "example.", ancestor: "www.example.", want: false},
		{name: "sibling", key: "example.net.", ancestor: "example.", want: false},
		{name: "suffix that is not a label boundary", key: "badexample.", ancestor: "example.", want: false},
		{name: "escaped dot is not a boundary", key: `a\.example.`, ancestor: "example.", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := zone.IsBelow(key(t, tc.key), key(t, tc.ancestor)); got != tc.want {
				t.Errorf("IsBelow(%s, %s) = %v, want %v", tc.key, tc.ancestor, got, tc.want)
			}
		})
	}
}

func TestFqdn(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: "Example", want: "example."},
		{in: "WWW.example.", want: "www.example."},
		{in: "", want: "."},
		{in: ".", want: "."},
		// Names are octets: only A-Z fold (RFC 4343), and a name that
		// needs escapes takes the spelling the wire form reads as.
		{in: "X\xc9Y.example.", want: "x\\201y.example."},
		{in: "Caf\xc3\xa9.Example", want: "caf\\195\\169.example."},
		{in: "CAF\\195\\169.example.", want: "caf\\195\\169.example."},
		{in: "\\067af\xc3\xa9.example.", want: "caf\\195\\169.example."},
		{in: "bad\xff.example.", want: "bad\\255.example."},
		{in: "A\\.B@c.example.", want: "a\\.b\\@c.example."},
		{in: "\\000.example.", want: "\\000.example."},
		{in: "a..b", want: "a..b."}, // not a name: only lower-cased
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := zone.Fqdn(tc.in); got != tc.want {
				t.Errorf("Fqdn(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestCanonicalOrderRFC4034 sorts the RFC 4034 §6.1 example from shuffled
// input, with both CanonicalCompare and the CanonicalKey encoding.
func TestCanonicalOrderRFC4034(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		names := slices.Clone(rfc4034Order)
		r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		byCompare := slices.Clone(names)
		slices.SortFunc(byCompare, zone.CanonicalCompare)
		if !slices.Equal(byCompare, rfc4034Order) {
			t.Fatalf("shuffle %d: CanonicalCompare order\n%q\nwant\n%q", i, byCompare, rfc4034Order)
		}
		byKey := slices.Clone(names)
		slices.SortFunc(byKey, func(a, b string) int {
			return bytes.Compare(zone.CanonicalKey(key(t, a)), zone.CanonicalKey(key(t, b)))
		})
		if !slices.Equal(byKey, rfc4034Order) {
			t.Fatalf("shuffle %d: CanonicalKey order\n%q\nwant\n%q", i, byKey, rfc4034Order)
		}
	}
}

func TestCanonicalCompare(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int
	}{
		{name: "equal ignoring case", a: "WWW.Example.", b: "www.example.", want: 0},
		{name: "escaped letter equals the letter", a: `\065.example.`, b: "a.example.", want: 0},
		{name: "escaped upper-case letter folds", a: `\087ww.example.`, b: "www.example.", want: 0},
		{name: "unqualified equals qualified", a: "www.example", b: "www.example.", want: 0},
		{name: "parent before child", a: "example.", b: "a.example.", want: -1},
		{name: "root first", a: ".", b: "example.", want: -1},
		{name: "labels compared from the root", a: "z.a.example.", b: "a.b.example.", want: -1},
		{name: "shorter label first", a: "a.example.", b: "aa.example.", want: -1},
		{name: "zero octet sorts first", a: `\000.example.`, b: "a.example.", want: -1},
		{name: "label before the same label plus a zero octet", a: "a.example.", b: `a\000.example.`, want: -1},
		{name: "zero octet before one", a: `a\000.example.`, b: `a\001.example.`, want: -1},
		{name: "child of a before a plus zero", a: `\000.a.example.`, b: `a\000.example.`, want: -1},
		{name: "descendant of a before a plus zero", a: `zzz.a.example.`, b: `a\000.example.`, want: -1},
		{name: "two zero octets after one", a: `a\000.example.`, b: `a\000\000.example.`, want: -1},
		{name: "high octet after letters", a: "z.example.", b: `\255.example.`, want: -1},
		{name: "upper-case letters fold before comparing", a: "Z.example.", b: "_.example.", want: 1},
		{name: "label bytes compare unsigned", a: `\127.example.`, b: `\128.example.`, want: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := zone.CanonicalCompare(tc.a, tc.b); got != tc.want {
				t.Errorf("CanonicalCompare(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			if got := zone.CanonicalCompare(tc.b, tc.a); got != -tc.want {
				t.Errorf("CanonicalCompare(%s, %s) = %d, want %d", tc.b, tc.a, got, -tc.want)
			}
		})
	}
}

func TestCanonicalKey(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "root", in: ".", want: ""},
		{name: "one label", in: "Example.", want: "example\x00\x00"},
		{name: "reversed labels", in: "www.example.", want: "example\x00\x00www\x00\x00"},
		{name: "zero octet escaped", in: `a\000.example.`, want: "example\x00\x00a\x00\x01\x00\x00"},
		{name: "escaped upper-case letter lowered", in: `\065\066.example.`, want: "example\x00\x00ab\x00\x00"},
		{name: "escaped dot kept in its label", in: `a\.b.example.`, want: "example\x00\x00a.b\x00\x00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(zone.CanonicalKey(key(t, tc.in))); got != tc.want {
				t.Errorf("CanonicalKey(%s) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	t.Run("mixed-case wire input", func(t *testing.T) {
		if got := string(zone.CanonicalKey("\x03WWW\x07EXAMPLE\x00")); got != "example\x00\x00www\x00\x00" {
			t.Errorf("CanonicalKey does not lower-case: %q", got)
		}
	})
	t.Run("127 labels", func(t *testing.T) {
		name := strings.Repeat("a.", 127)
		k := key(t, name)
		if got, want := len(zone.CanonicalKey(k)), 127*3; got != want {
			t.Errorf("len = %d, want %d", got, want)
		}
	})
}

func TestWireKeyErrorWraps(t *testing.T) {
	_, err := zone.WireKey(strings.Repeat("a", 64) + ".")
	if err == nil {
		t.Fatal("no error")
	}
	if errors.Unwrap(err) == nil {
		t.Errorf("error %v does not wrap the cause", err)
	}
}

// TestSortCanonical: SortCanonical gives the order CanonicalCompare does.
func TestSortCanonical(t *testing.T) {
	names := []string{"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.",
		"z.example.", "\\001.z.example.", "*.z.example.", "\\200.z.example.", ".", "b.", "a.b.", "xn--bcher-kva.example."}
	for i := range 20 {
		names = append(names, fmt.Sprintf("z%d.gov.test.", i*37%101))
	}
	want := slices.Clone(names)
	slices.SortStableFunc(want, zone.CanonicalCompare)
	got := slices.Clone(names)
	zone.SortCanonical(got)
	for i := range want {
		if zone.CanonicalCompare(got[i], want[i]) != 0 {
			t.Fatalf("SortCanonical: %q\nwant (CanonicalCompare) %q", got, want)
		}
	}
	if m := zone.SortedCanonical(map[string]int{"b.": 1, "a.b.": 2, ".": 3}); !slices.Equal(m, []string{".", "b.", "a.b."}) {
		t.Errorf("SortedCanonical: %q", m)
	}
}
