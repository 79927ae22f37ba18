package dnssec_test

import (
	"crypto"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/zonetest"
)

// vtNow is the validation time of the tests; signatures made by vtSign are
// valid from an hour before to a day after.
var vtNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type vtKey struct {
	rr   *dns.DNSKEY
	priv crypto.Signer
}

// vtNewKey makes an ECDSA P-256 key for zone (a KSK when ksk is set).
func vtNewKey(t testing.TB, zone string, ksk bool) vtKey {
	t.Helper()
	k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: dns.ZONE, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	if ksk {
		k.Flags |= dns.SEP
	}
	priv, err := k.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	return vtKey{rr: k, priv: priv.(crypto.Signer)}
}

// vtSign signs rrset with k, valid from inception to expiration.
func vtSign(t testing.TB, k vtKey, rrset []dns.RR, inception, expiration time.Time) *dns.RRSIG {
	t.Helper()
	h := rrset[0].Header()
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: h.Ttl},
		TypeCovered: h.Rrtype, Algorithm: k.rr.Algorithm, Labels: uint8(dnssec.WireLabels(h.Name)),
		OrigTtl: h.Ttl, Expiration: uint32(expiration.Unix()), Inception: uint32(inception.Unix()),
		KeyTag: k.rr.KeyTag(), SignerName: k.rr.Hdr.Name}
	if err := sig.Sign(k.priv, rrset); err != nil {
		t.Fatal(err)
	}
	return sig
}

func vtSignNow(t testing.TB, k vtKey, rrset []dns.RR) *dns.RRSIG {
	t.Helper()
	return vtSign(t, k, rrset, vtNow.Add(-time.Hour), vtNow.Add(24*time.Hour))
}

func vtReason(t *testing.T, err error, want error, status dnssec.SecStatus) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("err %v, want success", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("err %v, want %v", err, want)
	}
	if got := dnssec.StatusOf(err); got != status {
		t.Fatalf("status %v, want %v (%v)", got, status, err)
	}
}

func TestVerifyRRset(t *testing.T) {
	zsk := vtNewKey(t, "example.", false)
	other := vtNewKey(t, "example.", false)
	keys := dnssec.NewZoneKeys("example.", []*dns.DNSKEY{zsk.rr})
	set := zonetest.RRs(t, "www.example. 300 IN A 192.0.2.1", "www.example. 300 IN A 192.0.2.2")
	good := vtSignNow(t, zsk, set)
	expired := vtSign(t, zsk, set, vtNow.Add(-48*time.Hour), vtNow.Add(-time.Hour))
	future := vtSign(t, zsk, set, vtNow.Add(time.Hour), vtNow.Add(48*time.Hour))
	byOther := vtSignNow(t, other, set)
	unsupported := dns.Copy(good).(*dns.RRSIG)
	unsupported.Algorithm = 253
	tampered := zonetest.RRs(t, "www.example. 300 IN A 192.0.2.1", "www.example. 300 IN A 192.0.2.3")
	wildSet := zonetest.RRs(t, "*.w.example. 300 IN TXT \"w\"")
	wildSig := vtSignNow(t, zsk, wildSet)
	expanded := zonetest.RRs(t, "x.w.example. 300 IN TXT \"w\"")
	wildSig.Hdr.Name = "x.w.example."

	tests := []struct {
		name   string
		rrset  []dns.RR
		sigs   []*dns.RRSIG
		want   error
		status dnssec.SecStatus
	}{
		{name: "good", rrset: set, sigs: []*dns.RRSIG{good}},
		{name: "good after a bad one", rrset: set, sigs: []*dns.RRSIG{byOther, expired, good}},
		{name: "expired", rrset: set, sigs: []*dns.RRSIG{expired}, want: dnssec.ErrSignatureExpired, status: dnssec.Bogus},
		{name: "not yet valid", rrset: set, sigs: []*dns.RRSIG{future}, want: dnssec.ErrSignatureNotYetValid, status: dnssec.Bogus},
		{name: "wrong key", rrset: set, sigs: []*dns.RRSIG{byOther}, want: dnssec.ErrDNSKEYMissing, status: dnssec.Bogus},
		{name: "missing", rrset: set, want: dnssec.ErrRRSIGsMissing, status: dnssec.Bogus},
		{name: "unsupported algorithm only", rrset: set, sigs: []*dns.RRSIG{unsupported}, want: dnssec.ErrRRSIGsMissing, status: dnssec.Bogus},
		{name: "tampered data", rrset: tampered, sigs: []*dns.RRSIG{good}, want: dnssec.ErrBogus, status: dnssec.Bogus},
		{name: "wildcard expansion", rrset: expanded, sigs: []*dns.RRSIG{wildSig}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig, err := dnssec.VerifyRRset(tt.rrset, tt.sigs, keys, vtNow, dnssec.NewBudget(dnssec.Limits{}))
			vtReason(t, err, tt.want, tt.status)
			if err == nil && sig == nil {
				t.Fatal("no signature returned")
			}
		})
	}
	if w := dnssec.WildcardOf("x.w.example.", wildSig); w != "*.w.example." {
		t.Errorf("WildcardOf = %q", w)
	}
	if w := dnssec.WildcardOf("www.example.", good); w != "" {
		t.Errorf("WildcardOf(no expansion) = %q", w)
	}
	if ttl := dnssec.MaxTTL(good, vtNow.Add(24*time.Hour-100*time.Second)); ttl != 100 {
		t.Errorf("MaxTTL near expiry = %d, want 100", ttl)
	}
}

// TestSigTimeSerialArithmetic checks the RFC 4034 §3.1.5 comparison across
// the wrap of the 32-bit time in 2106.
func TestSigTimeSerialArithmetic(t *testing.T) {
	wrap := time.Unix(1<<32, 0)
	sig := &dns.RRSIG{Inception: uint32(wrap.Add(-time.Hour).Unix()), Expiration: uint32(wrap.Add(time.Hour).Unix())}
	if sig.Expiration > sig.Inception {
		t.Fatal("the test's times do not wrap")
	}
	for _, tc := range []struct {
		now  time.Time
		want error
	}{
		{now: wrap, want: nil},
		{now: wrap.Add(-30 * time.Minute), want: nil},
		{now: wrap.Add(-2 * time.Hour), want: dnssec.ErrSignatureNotYetValid},
		{now: wrap.Add(2 * time.Hour), want: dnssec.ErrSignatureExpired},
	} {
		err := dnssec.SigTimeCheck(sig, tc.now)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("at %v: %v, want %v", tc.now.Sub(wrap), err, tc.want)
		}
	}
}

// vtCollidingKeys returns n DNSKEYs of zone, algorithm 13, whose public
// keys are random-looking bytes adjusted so that every key tag is tag.
func vtCollidingKeys(zone string, tag uint16, n int) []*dns.DNSKEY {
	var out []*dns.DNSKEY
	for i := range n {
		pub := make([]byte, 64)
		for j := range pub {
			pub[j] = byte(i*31 + j*7 + 1)
		}
		k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
			Flags: dns.ZONE, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
		// The tag sums the RDATA's 16-bit words; the last two bytes form
		// the last word, so choose them to reach tag.
		wire := append([]byte{byte(k.Flags >> 8), byte(k.Flags), 3, k.Algorithm}, pub...)
		sum := 0
		for j, v := range wire[:len(wire)-2] {
			if j&1 == 0 {
				sum += int(v) << 8
			} else {
				sum += int(v)
			}
		}
		for x := range 1 << 16 {
			s := sum + x
			if uint16((s+(s>>16))&0xffff) == tag {
				pub[62], pub[63] = byte(x>>8), byte(x)
				break
			}
		}
		k.PublicKey = base64.StdEncoding.EncodeToString(pub)
		out = append(out, k)
	}
	return out
}

// TestKeyTrapStopsAtCap feeds VerifyRRset a DNSKEY set of many keys with
// one key tag and an RRset with many signatures naming that tag, none of
// which verifies: the work must stop at the per-RRset cap.
func TestKeyTrapStopsAtCap(t *testing.T) {
	keys := vtCollidingKeys("example.", 4242, 40)
	for _, k := range keys {
		if k.KeyTag() != 4242 {
			t.Fatalf("crafted key has tag %d", k.KeyTag())
		}
	}
	zk := dnssec.NewZoneKeys("example.", keys)
	set := zonetest.RRs(t, "www.example. 300 IN A 192.0.2.1")
	var sigs []*dns.RRSIG
	for i := range 40 {
		sigs = append(sigs, &dns.RRSIG{Hdr: dns.RR_Header{Name: "www.example.", Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 300},
			TypeCovered: dns.TypeA, Algorithm: dns.ECDSAP256SHA256, Labels: 2, OrigTtl: 300,
			Expiration: uint32(vtNow.Add(time.Hour).Unix()), Inception: uint32(vtNow.Add(-time.Hour).Unix()),
			KeyTag: 4242, SignerName: "example.",
			Signature: base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune('a'+i%26)), 64)))})
	}
	b := dnssec.NewBudget(dnssec.Limits{})
	start := time.Now()
	_, err := dnssec.VerifyRRset(set, sigs, zk, vtNow, b)
	if !errors.Is(err, dnssec.ErrWorkLimit) || dnssec.StatusOf(err) != dnssec.Bogus {
		t.Fatalf("err %v, want a work limit (bogus)", err)
	}
	if b.Validations > dnssec.MaxSigChecksPerRRset || b.Exceeded != "sig_checks_per_rrset" {
		t.Fatalf("%d verifications (limit %q), want at most %d", b.Validations, b.Exceeded, dnssec.MaxSigChecksPerRRset)
	}
	if code, _ := dnssec.EDE(err); code != dns.ExtendedErrorCodeDNSBogus {
		t.Errorf("EDE %d", code)
	}
	t.Logf("stopped after %d verifications in %v", b.Validations, time.Since(start))

	// The resolution-wide budget stops earlier when it is smaller.
	b = dnssec.NewBudget(dnssec.Limits{MaxValidations: 3})
	if _, err := dnssec.VerifyRRset(set, sigs, zk, vtNow, b); !errors.Is(err, dnssec.ErrWorkLimit) || b.Exceeded != "validations" || b.Validations != 4 {
		t.Fatalf("err %v after %d verifications (%q), want the validations limit", err, b.Validations, b.Exceeded)
	}
}

func TestVerifyDNSKEYs(t *testing.T) {
	ksk := vtNewKey(t, "gov.az.", true)
	zsk := vtNewKey(t, "gov.az.", false)
	set := []dns.RR{ksk.rr, zsk.rr}
	bySKS := vtSignNow(t, ksk, set)
	byZSK := vtSignNow(t, zsk, set)
	ds := ksk.rr.ToDS(dns.SHA256)
	sha1DS := ksk.rr.ToDS(dns.SHA1)
	bad := dns.Copy(ds).(*dns.DS)
	bad.Digest = strings.Repeat("00", 32)
	unsupAlg := dns.Copy(ds).(*dns.DS)
	unsupAlg.Algorithm = 253
	gost := dns.Copy(ds).(*dns.DS)
	gost.DigestType = 3
	anchorKey := dns.Copy(ksk.rr).(*dns.DNSKEY)
	tests := []struct {
		name    string
		sigs    []*dns.RRSIG
		ds      []*dns.DS
		anchors []*dns.DNSKEY
		want    error
		status  dnssec.SecStatus
	}{
		{name: "DS SHA-256", sigs: []*dns.RRSIG{bySKS}, ds: []*dns.DS{ds}},
		{name: "DS SHA-1", sigs: []*dns.RRSIG{bySKS}, ds: []*dns.DS{sha1DS}},
		{name: "DNSKEY anchor", sigs: []*dns.RRSIG{bySKS}, anchors: []*dns.DNSKEY{anchorKey}},
		{name: "DS mismatch", sigs: []*dns.RRSIG{bySKS}, ds: []*dns.DS{bad}, want: dnssec.ErrDNSKEYMissing, status: dnssec.Bogus},
		// A SHA-1 DS that matches does not help when a SHA-256 DS is
		// present and does not (RFC 4509 §3).
		{name: "SHA-1 ignored beside SHA-256", sigs: []*dns.RRSIG{bySKS}, ds: []*dns.DS{bad, sha1DS}, want: dnssec.ErrDNSKEYMissing, status: dnssec.Bogus},
		{name: "signed by the ZSK only", sigs: []*dns.RRSIG{byZSK}, ds: []*dns.DS{ds}, want: dnssec.ErrDNSKEYMissing, status: dnssec.Bogus},
		{name: "unsigned", ds: []*dns.DS{ds}, want: dnssec.ErrRRSIGsMissing, status: dnssec.Bogus},
		{name: "unsupported algorithm", sigs: []*dns.RRSIG{bySKS}, ds: []*dns.DS{unsupAlg}, want: dnssec.ErrUnsupportedAlgorithm, status: dnssec.Insecure},
		{name: "unsupported digest", sigs: []*dns.RRSIG{bySKS}, ds: []*dns.DS{gost}, want: dnssec.ErrUnsupportedDigest, status: dnssec.Insecure},
		{name: "supported beside unsupported", sigs: []*dns.RRSIG{bySKS}, ds: []*dns.DS{gost, ds}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			zk, err := dnssec.VerifyDNSKEYs("gov.az.", set, tt.sigs, tt.ds, tt.anchors, vtNow, dnssec.NewBudget(dnssec.Limits{}))
			vtReason(t, err, tt.want, tt.status)
			if err == nil && len(zk.Keys) != 2 {
				t.Fatalf("%d keys, want 2", len(zk.Keys))
			}
		})
	}
}

func TestEDECodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code uint16
	}{
		{dnssec.ErrBogus, 6}, {dnssec.ErrSignatureExpired, 7}, {dnssec.ErrSignatureNotYetValid, 8},
		{dnssec.ErrDNSKEYMissing, 9}, {dnssec.ErrRRSIGsMissing, 10}, {dnssec.ErrNSECMissing, 12},
		{dnssec.ErrUnsupportedAlgorithm, 1}, {dnssec.ErrUnsupportedDigest, 2}, {dnssec.ErrNSEC3Iterations, 27},
		{dnssec.ErrIndeterminate, 5}, {dnssec.ErrWorkLimit, 6},
	} {
		if got, ok := dnssec.EDE(&dnssec.ValidationError{Status: dnssec.Bogus, Reason: tc.err}); !ok || got != tc.code {
			t.Errorf("EDE(%v) = %d, %v; want %d", tc.err, got, ok, tc.code)
		}
	}
	if _, ok := dnssec.EDE(errors.New("other")); ok {
		t.Error("EDE of a foreign error")
	}
}
