package dnssec_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

func TestRootAnchors(t *testing.T) {
	rrs := dnssec.RootAnchors()
	want := map[uint16]string{
		20326: "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
		38696: "683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
	}
	if len(rrs) != len(want) {
		t.Fatalf("%d root anchors", len(rrs))
	}
	for _, rr := range rrs {
		ds, ok := rr.(*dns.DS)
		if !ok || ds.Hdr.Name != "." || ds.Algorithm != 8 || ds.DigestType != 2 || !strings.EqualFold(ds.Digest, want[ds.KeyTag]) {
			t.Errorf("unexpected root anchor %v", rr)
		}
	}
}

func TestTrustAnchors(t *testing.T) {
	gov, err := dnssec.ParseAnchor("gov.az. IN DS 12345 13 2 " + strings.Repeat("AB", 32))
	if err != nil {
		t.Fatal(err)
	}
	key, err := dnssec.ParseAnchor("mfa.gov.az. 3600 IN DNSKEY 257 3 13 " + "mQ5OHx8bNAPOGa5BNUqSZWdsjnNaygIcLhKvsU1kX0/9l3aTf5sXH7QSjLBLzlEmWzg6xLJHxqXX8oYTDbh0xw==")
	if err != nil {
		t.Fatal(err)
	}
	a, err := dnssec.NewTrustAnchors(append(dnssec.RootAnchors(), gov, key))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, zone string }{
		{"www.gov.az.", "gov.az."}, {"GOV.AZ.", "gov.az."}, {"x.mfa.gov.az.", "mfa.gov.az."},
		{"az.", "."}, {"example.com.", "."}, {".", "."},
	} {
		zone, _, _, ok := a.Closest(tc.name)
		if !ok || zone != tc.zone {
			t.Errorf("Closest(%s) = %q, %v; want %s", tc.name, zone, ok, tc.zone)
		}
	}
	if got := a.Zones(); !slices.Equal(got, []string{".", "gov.az.", "mfa.gov.az."}) {
		t.Errorf("Zones() = %v", got)
	}
	pinned, _ := dnssec.NewTrustAnchors([]dns.RR{gov})
	if _, _, _, ok := pinned.Closest("example.com."); ok {
		t.Error("a pinned anchor covers names outside its zone")
	}

	for _, bad := range []string{
		"gov.az. IN A 192.0.2.1",
		"gov.az. IN DNSKEY 256 2 13 mQ5OHx8bNAPOGa5BNUqSZWdsjnNaygIcLhKvsU1kX0/9l3aTf5sXH7QSjLBLzlEmWzg6xLJHxqXX8oYTDbh0xw==",
		"gov.az. IN DS 12345 13 2 ZZ",
		"",
	} {
		if _, err := dnssec.ParseAnchor(bad); !errors.Is(err, dnssec.ErrBadTrustAnchor) {
			t.Errorf("ParseAnchor(%q) = %v, want ErrBadTrustAnchor", bad, err)
		}
	}

	path := filepath.Join(t.TempDir(), "anchors")
	text := "; the national anchors\n\ngov.az. IN DS 12345 13 2 " + strings.Repeat("AB", 32) + "\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	rrs, err := dnssec.LoadAnchors(path)
	if err != nil || len(rrs) != 1 {
		t.Fatalf("LoadAnchors = %v, %v", rrs, err)
	}
	if err := os.WriteFile(path, []byte("gov.az. IN NS ns1.gov.az.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dnssec.LoadAnchors(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadAnchors(NS record) = %v, want an error naming the file", err)
	}
	if !dnssec.UnderAny("www.Test.Gov.az.", []string{"test.gov.az."}) || dnssec.UnderAny("gov.az.", []string{"test.gov.az."}) {
		t.Error("UnderAny")
	}
}
