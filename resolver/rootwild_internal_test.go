package resolver

import (
	"crypto"
	"crypto/rand"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// TestWildcardSignedData: the signed data built here for a wildcard
// expansion is miekg/dns's for wildcards below the root (a signature made
// by miekg/dns verifies with it, for each kind of algorithm), and, for the
// wildcard at the root, which miekg/dns can neither sign nor verify,
// verifyRootWildcard accepts a good signature and refuses a damaged one.
func TestWildcardSignedData(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		alg  uint8
		bits int
	}{
		{"Ed25519", dns.ED25519, 256},
		{"ECDSA P-256", dns.ECDSAP256SHA256, 256},
		{"ECDSA P-384", dns.ECDSAP384SHA384, 384},
		{"RSA/SHA-256", dns.RSASHA256, 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, zone := range []string{"example.", "."} {
				k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
					Flags: dns.ZONE, Protocol: 3, Algorithm: tc.alg}
				priv, err := k.Generate(tc.bits)
				if err != nil {
					t.Fatal(err)
				}
				wildcard := "*." + zone
				if zone == "." {
					wildcard = "*."
				}
				rrs := []dns.RR{
					&dns.MX{Hdr: dns.RR_Header{Name: wildcard, Rrtype: dns.TypeMX, Class: dns.ClassINET, Ttl: 300}, Preference: 10, Mx: "Mail.Example."},
					&dns.MX{Hdr: dns.RR_Header{Name: wildcard, Rrtype: dns.TypeMX, Class: dns.ClassINET, Ttl: 300}, Preference: 5, Mx: "a.example."},
				}
				sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: wildcard, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 300},
					TypeCovered: dns.TypeMX, Algorithm: tc.alg, Labels: uint8(dnssec.WireLabels(zone)), OrigTtl: 300,
					Inception: uint32(now.Add(-time.Hour).Unix()), Expiration: uint32(now.Add(time.Hour).Unix()),
					KeyTag: k.KeyTag(), SignerName: zone}
				expanded := make([]dns.RR, len(rrs))
				for i, rr := range rrs {
					expanded[i] = dns.Copy(rr)
					expanded[i].Header().Name = "Host.Sub." + zone
					if zone == "." {
						expanded[i].Header().Name = "Host.Sub."
					}
				}
				if zone != "." {
					if err := sig.Sign(priv.(crypto.Signer), rrs); err != nil {
						t.Fatal(err)
					}
					data, err := wildcardSignedData(expanded, sig, wildcard)
					if err != nil {
						t.Fatal(err)
					}
					if err := verifySignedData(k, sig, data); err != nil {
						t.Fatalf("miekg/dns's signature does not verify over the data built here: %v", err)
					}
					continue
				}
				// The root: miekg/dns fails on "*.", which is the fault
				// worked around.
				if err := dns.Copy(sig).(*dns.RRSIG).Sign(priv.(crypto.Signer), rrs); err == nil {
					t.Log("miekg/dns signed an RRset of *. (the fault may be fixed upstream)")
				}
				signRootWildcard(t, sig, priv.(crypto.Signer), rrs)
				if err := sig.Verify(k, expanded); err == nil {
					t.Log("miekg/dns verified an expansion of *. (the fault may be fixed upstream)")
				}
				keys := dnssec.NewZoneKeys(".", []*dns.DNSKEY{k})
				b := dnssec.NewBudget(dnssec.Limits{})
				for _, set := range [][]dns.RR{expanded, rrs} {
					s := dns.Copy(sig).(*dns.RRSIG)
					s.Hdr.Name = set[0].Header().Name // as it comes: the name asked for
					if _, err := verifyRootWildcard(set, []*dns.RRSIG{s}, keys, now, b); err != nil {
						t.Fatalf("%s: %v", set[0].Header().Name, err)
					}
				}
				sig.Hdr.Name = expanded[0].Header().Name
				bad := dns.Copy(sig).(*dns.RRSIG)
				bad.OrigTtl++
				if _, err := verifyRootWildcard(expanded, []*dns.RRSIG{bad}, keys, now, b); dnssec.StatusOf(err) != dnssec.Bogus {
					t.Fatalf("a signature over other data: %v, want bogus", err)
				}
				if _, err := verifyRootWildcard(expanded, []*dns.RRSIG{sig}, keys, now.Add(2*time.Hour), b); err == nil {
					t.Fatal("an expired signature verified")
				}
			}
		})
	}
}

// signRootWildcard signs rrs, owned by "*.", into sig with priv.
func signRootWildcard(t testing.TB, sig *dns.RRSIG, priv crypto.Signer, rrs []dns.RR) {
	t.Helper()
	data, err := wildcardSignedData(rrs, sig, "*.")
	if err != nil {
		t.Fatal(err)
	}
	var h crypto.Hash
	switch sig.Algorithm {
	case dns.ECDSAP256SHA256, dns.RSASHA256:
		h = crypto.SHA256
	case dns.ECDSAP384SHA384:
		h = crypto.SHA384
	}
	msg := data
	if h != 0 {
		msg = digest(h, data)
	}
	out, err := priv.Sign(rand.Reader, msg, h)
	if err != nil {
		t.Fatal(err)
	}
	if sig.Algorithm == dns.ECDSAP256SHA256 || sig.Algorithm == dns.ECDSAP384SHA384 {
		out = ecdsaRaw(t, out, sig.Algorithm)
	}
	sig.Signature = base64.StdEncoding.EncodeToString(out)
}

// ecdsaRaw turns an ASN.1 ECDSA signature into DNSSEC's r || s.
func ecdsaRaw(t testing.TB, der []byte, alg uint8) []byte {
	t.Helper()
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		t.Fatal(err)
	}
	size := 32
	if alg == dns.ECDSAP384SHA384 {
		size = 48
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out
}
