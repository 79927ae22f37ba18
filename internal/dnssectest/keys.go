package dnssectest

import (
	"crypto"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// KSK makes an ECDSA P-256 key-signing key of zone (SEP set) and its
// private half.
func KSK(t testing.TB, zone string) (*dns.DNSKEY, crypto.Signer) {
	t.Helper()
	k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: dns.ZONE | dns.SEP, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	priv, err := k.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	return k, priv.(crypto.Signer)
}

// SignKeys returns the DNSKEY RRset of keys and its signatures by each of
// signers, valid from an hour before now for 20 days.
func SignKeys(t testing.TB, keys []*dns.DNSKEY, signers map[*dns.DNSKEY]crypto.Signer, now time.Time) ([]dns.RR, []*dns.RRSIG) {
	t.Helper()
	rrs := make([]dns.RR, len(keys))
	for i, k := range keys {
		rrs[i] = k
	}
	var sigs []*dns.RRSIG
	for k, priv := range signers {
		s := &dns.RRSIG{Hdr: dns.RR_Header{Name: k.Hdr.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: k.Hdr.Ttl},
			Algorithm: k.Algorithm, KeyTag: k.KeyTag(), SignerName: k.Hdr.Name,
			Inception: uint32(now.Add(-time.Hour).Unix()), Expiration: uint32(now.Add(20 * 24 * time.Hour).Unix())}
		if err := s.Sign(priv, rrs); err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, s)
	}
	return rrs, sigs
}

// AnchorTags returns the key tags of trust anchors (DS or DNSKEY records).
func AnchorTags(rrs []dns.RR) map[uint16]bool {
	out := map[uint16]bool{}
	for _, rr := range rrs {
		switch a := rr.(type) {
		case *dns.DS:
			out[a.KeyTag] = true
		case *dns.DNSKEY:
			out[a.KeyTag()] = true
		}
	}
	return out
}
