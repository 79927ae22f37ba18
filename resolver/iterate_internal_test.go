package resolver

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestOneLabelBelow(t *testing.T) {
	for _, tc := range []struct{ known, name, want string }{
		{".", "www.example.com.", "com."},
		{"com.", "www.example.com.", "example.com."},
		{"example.com.", "www.example.com.", ""}, // the name itself
		{"www.example.com.", "www.example.com.", ""},
		{"org.", "www.example.com.", ""}, // not above name
		{".", "com.", ""},
		{".", ".", ""},
		{"Example.COM.", "a.b.www.example.com.", "www.example.com."},
		{`a\.b.`, `x.y.a\.b.`, `y.a\.b.`}, // an escaped dot is no label boundary
	} {
		if got := oneLabelBelow(tc.known, tc.name); got != tc.want {
			t.Errorf("oneLabelBelow(%q, %q) = %q, want %q", tc.known, tc.name, got, tc.want)
		}
	}
}

// TestAtOrBelowAsIsSubDomain: atOrBelow answers as dns.IsSubDomain does
// for fully qualified names, letters in either case.
func TestAtOrBelowAsIsSubDomain(t *testing.T) {
	names := []string{".", "com.", "COM.", "example.com.", "www.Example.com.", "xexample.com.", "a.b.www.example.com.",
		`a\.b.`, `b.`, `x.a\.b.`, `x\.a.b.`, `a.b.`, "org.", `\046.com.`, `a\.com.`}
	for _, p := range names {
		for _, c := range names {
			if got, want := atOrBelow(c, p), dns.IsSubDomain(p, c); got != want {
				t.Errorf("atOrBelow(%q, %q) = %v, dns.IsSubDomain says %v", c, p, got, want)
			}
		}
	}
}

// TestAppendAddrsKeepsEachServersList: the addresses of several servers
// are listed one after the other, each as addrsOf gives it, duplicates
// between servers included.
func TestAppendAddrsKeepsEachServersList(t *testing.T) {
	hints, err := ParseHints(strings.NewReader(". NS a.root.test.\n. NS b.root.test.\na.root.test. A 192.0.2.1\nb.root.test. A 192.0.2.1\nb.root.test. A 192.0.2.2\n"), "hints")
	if err != nil {
		t.Fatal(err)
	}
	r := New(Config{RootHints: hints, Island: IslandConfig{Disabled: true}}, nil, NewCache(CacheConfig{MaxBytes: 1 << 20}), nil, nil)
	t.Cleanup(r.Close)
	if got := r.rootNS; len(got) != 2 || got[0] != "a.root.test." || got[1] != "b.root.test." {
		t.Fatalf("root servers %v", got)
	}
	got := r.knownAddrs(".", r.rootNS)
	want := append(r.addrsOf(".", "a.root.test."), r.addrsOf(".", "b.root.test.")...)
	if len(got) != 3 || len(want) != 3 {
		t.Fatalf("addresses %v, want 3 (%v)", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("addresses %v, want %v", got, want)
		}
	}
}
