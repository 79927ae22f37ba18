package dnssec

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// rootAnchorText is the root zone's key-signing keys as DS records, from
// IANA's root-anchors.xml (https://data.iana.org/root-anchors/): KSK-2017
// (tag 20326) and KSK-2024 (tag 38696), RSA/SHA-256, SHA-256 digests.
const rootAnchorText = `. IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D
. IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16
`

// RootAnchors returns the built-in root trust anchors (IANA's root KSKs as
// DS records).
func RootAnchors() []dns.RR {
	rrs, err := ParseAnchors(strings.NewReader(rootAnchorText), "built-in root anchors")
	if err != nil {
		panic(err) // the constant is tested
	}
	return rrs
}

// TrustAnchors holds trust anchors, DS or DNSKEY records, by zone. A
// validator starts each chain of trust at the deepest anchored zone at or
// above the name (so a pinned anchor for a national zone validates it
// without the root). It is read-only once built.
type TrustAnchors struct {
	ds   map[string][]*dns.DS
	keys map[string][]*dns.DNSKEY
}

// NewTrustAnchors returns the anchors rrs (DS or DNSKEY records).
func NewTrustAnchors(rrs []dns.RR) (*TrustAnchors, error) {
	a := &TrustAnchors{ds: map[string][]*dns.DS{}, keys: map[string][]*dns.DNSKEY{}}
	for _, rr := range rrs {
		zone := vCanonical(rr.Header().Name)
		switch v := rr.(type) {
		case *dns.DS:
			a.ds[zone] = append(a.ds[zone], v)
		case *dns.DNSKEY:
			if v.Flags&dns.ZONE == 0 || v.Protocol != 3 {
				return nil, fmt.Errorf("%w: %s: not a zone key (flags %d, protocol %d)", ErrBadTrustAnchor, zone, v.Flags, v.Protocol)
			}
			a.keys[zone] = append(a.keys[zone], v)
		default:
			return nil, fmt.Errorf("%w: %s: a trust anchor is a DS or DNSKEY record, not %s", ErrBadTrustAnchor, zone, dns.Type(rr.Header().Rrtype))
		}
	}
	return a, nil
}

// Closest returns the deepest anchored zone at or above name and its
// anchors; ok is false when no anchor covers name.
func (a *TrustAnchors) Closest(name string) (zone string, ds []*dns.DS, keys []*dns.DNSKEY, ok bool) {
	if a == nil {
		return "", nil, nil, false
	}
	zone = vCanonical(name)
	for {
		ds, keys = a.ds[zone], a.keys[zone]
		if len(ds) > 0 || len(keys) > 0 {
			return zone, ds, keys, true
		}
		if zone == "." {
			return "", nil, nil, false
		}
		zone = vParent(zone)
	}
}

// Zones lists the anchored zones, sorted.
func (a *TrustAnchors) Zones() []string {
	var out []string
	for z := range a.ds {
		out = append(out, z)
	}
	for z := range a.keys {
		if _, ok := a.ds[z]; !ok {
			out = append(out, z)
		}
	}
	slices.Sort(out)
	return out
}

// ParseAnchor reads one trust anchor in master-file format, a DS or
// DNSKEY record ("gov.az. IN DS 12345 13 2 ABCD..."); the owner must be
// fully qualified.
func ParseAnchor(s string) (dns.RR, error) {
	rrs, err := ParseAnchors(strings.NewReader(s), "trust anchor")
	if err != nil {
		return nil, err
	}
	if len(rrs) != 1 {
		return nil, fmt.Errorf("%w: %q: want one DS or DNSKEY record, found %d", ErrBadTrustAnchor, s, len(rrs))
	}
	return rrs[0], nil
}

// ParseAnchors reads trust anchors in master-file format, one DS or
// DNSKEY record per line (comments and blank lines allowed, as in
// Unbound's trust-anchor-file). name labels errors.
func ParseAnchors(r io.Reader, name string) ([]dns.RR, error) {
	zp := dns.NewZoneParser(r, ".", name)
	zp.SetDefaultTTL(3600)
	var out []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		switch v := rr.(type) {
		case *dns.DS:
			if v.Hdr.Class != dns.ClassINET {
				return nil, fmt.Errorf("%w: %s: class must be IN", ErrBadTrustAnchor, name)
			}
			d, err := hex.DecodeString(v.Digest)
			if want := vDigestLen[v.DigestType]; err != nil || (want != 0 && len(d) != want) {
				return nil, fmt.Errorf("%w: %s: %s DS digest %q is not %d bytes of hex", ErrBadTrustAnchor, name, v.Hdr.Name, v.Digest, want)
			}
		case *dns.DNSKEY:
			if v.Flags&dns.ZONE == 0 || v.Protocol != 3 {
				return nil, fmt.Errorf("%w: %s: %s DNSKEY is not a zone key", ErrBadTrustAnchor, name, v.Hdr.Name)
			}
		default:
			return nil, fmt.Errorf("%w: %s: %s %s: only DS and DNSKEY records can be trust anchors",
				ErrBadTrustAnchor, name, rr.Header().Name, dns.Type(rr.Header().Rrtype))
		}
		out = append(out, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadTrustAnchor, err)
	}
	return out, nil
}

var vDigestLen = map[uint8]int{dns.SHA1: 20, dns.SHA256: 32, dns.SHA384: 48}

// LoadAnchors reads a trust-anchor file (see ParseAnchors).
func LoadAnchors(path string) ([]dns.RR, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trust anchors: %w", err)
	}
	defer f.Close()
	rrs, err := ParseAnchors(f, path)
	if err != nil {
		return nil, err
	}
	if len(rrs) == 0 {
		return nil, fmt.Errorf("%w: %s holds no DS or DNSKEY record", ErrBadTrustAnchor, path)
	}
	return rrs, nil
}

// UnderAny reports whether name is one of zones or below one (for
// negative trust anchors). zones are canonical names.
func UnderAny(name string, zones []string) bool {
	name = vCanonical(name)
	for _, z := range zones {
		if dns.IsSubDomain(z, name) {
			return true
		}
	}
	return false
}
