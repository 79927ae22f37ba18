package dnssec

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/dnssectest"
	"github.com/sovdns/sovdns/zone"
)

const testZone = `$ORIGIN example.az.
$TTL 3600
@        SOA   ns1 hostmaster 2026010101 7200 900 1209600 300
@        NS    ns1
@        NS    ns2.other.net.
@        MX    10 mail
@        TXT   "v=spf1 -all"
ns1      A     192.0.2.1
mail     A     192.0.2.25
www      A     192.0.2.10
www      AAAA  2001:db8::10
*.wild   TXT   "wildcard"
a.b.c    A     192.0.2.30
alias    CNAME www
sub      NS    ns.sub
sub      DS    12345 13 2 0E4B4C5B4E4C4B5A0E4B4C5B4E4C4B5A0E4B4C5B4E4C4B5A0E4B4C5B4E4C4B5A
ns.sub   A     192.0.2.53
ins      NS    ns.ins
ns.ins   A     192.0.2.54
ins2     NS    ns.other.net.
x.y.ins3 NS    ns.other.net.
`

func buildZone(t testing.TB, text string) *zone.Zone {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), "example.az.", "test")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	z, err := zone.Build("example.az.", rrs)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// t0 is the signing time of the tests. dnssec-verify checks signatures
// against the real clock, so it is now.
var t0 = time.Now().UTC().Truncate(time.Second)

func signWith(t testing.TB, p Policy, prev *zone.Zone, keys []*Key, now time.Time, z *zone.Zone) Output {
	t.Helper()
	out, err := Sign(Input{Zone: z, Prev: prev, Keys: keys, Policy: p, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// verifyAll checks every RRSIG against the zone's DNSKEY RRset.
func verifyAll(t *testing.T, z *zone.Zone, now time.Time) {
	t.Helper()
	keys := map[uint16]*dns.DNSKEY{}
	for _, rr := range z.Apex.Get(dns.TypeDNSKEY).RRs() {
		k := rr.(*dns.DNSKEY)
		keys[k.KeyTag()] = k
	}
	n := 0
	z.WalkAll(func(_ []byte, node *zone.Node) bool {
		for _, set := range node.RRsets {
			if node.Cut() != nil && !(node.IsCut() && (set.Type == dns.TypeDS || set.Type == dns.TypeNSEC)) {
				if len(set.Sigs()) != 0 {
					t.Errorf("%s %s: signed below a cut", node.Name, dns.Type(set.Type))
				}
				continue
			}
			if len(set.Sigs()) == 0 {
				t.Errorf("%s %s: no signature", node.Name, dns.Type(set.Type))
			}
			for _, rr := range set.Sigs() {
				sig := rr.(*dns.RRSIG)
				k := keys[sig.KeyTag]
				if k == nil {
					t.Errorf("%s: signed by unknown key %d", node.Name, sig.KeyTag)
					continue
				}
				if err := sig.Verify(k, set.RRs()); err != nil {
					t.Errorf("%s %s: %v", node.Name, dns.Type(set.Type), err)
				}
				if !sig.ValidityPeriod(now) {
					t.Errorf("%s %s: signature not valid now", node.Name, dns.Type(set.Type))
				}
				n++
			}
		}
		return true
	})
	if n == 0 {
		t.Fatal("no signatures")
	}
}

func externalVerify(t *testing.T, z *zone.Zone, now time.Time) {
	t.Helper()
	dnssectest.Verify(t, z.Origin, z.Records(), now)
}

// TestVerifiersCatchDamage makes sure the verifiers used above can fail:
// one byte of one signature changed is reported by each.
func TestVerifiersCatchDamage(t *testing.T) {
	z := buildZone(t, testZone)
	p := DefaultPolicy()
	keys, err := InitialKeys(z.Origin, p, t0)
	if err != nil {
		t.Fatal(err)
	}
	rrs := signWith(t, p, nil, keys, t0, z).Zone.Records()
	for i, rr := range rrs {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == dns.TypeA {
			c := dns.Copy(sig).(*dns.RRSIG)
			c.Signature = "A" + c.Signature[1:]
			if c.Signature == sig.Signature {
				c.Signature = "B" + c.Signature[1:]
			}
			rrs[i] = c
			break
		}
	}
	ran, complaints := dnssectest.Run(t, z.Origin, rrs, t0)
	if len(complaints) != ran {
		t.Errorf("%d verifiers ran, %d found the damaged signature", ran, len(complaints))
	}
}

func TestSignVerifies(t *testing.T) {
	nsec3 := DefaultPolicy()
	nsec3.Denial = DenialNSEC3
	optout := nsec3
	optout.OptOut = true
	optout.SplitKeys = true
	optout.Algorithm = dns.ED25519
	rsa := nsec3
	rsa.Algorithm = dns.RSASHA256
	rsa.SplitKeys = true
	rsa.Salt = "aabbccdd"
	rsa.Iterations = 5
	split := DefaultPolicy()
	split.SplitKeys = true
	tests := []struct {
		name string
		p    Policy
	}{
		{"nsec-csk-13", DefaultPolicy()},
		{"nsec-split-13", split},
		{"nsec3-csk-13", nsec3},
		{"nsec3-optout-split-15", optout},
		{"nsec3-salt-split-8", rsa},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := buildZone(t, testZone)
			keys, err := InitialKeys(z.Origin, tc.p, t0)
			if err != nil {
				t.Fatal(err)
			}
			out := signWith(t, tc.p, nil, keys, t0, z)
			if out.Kept != 0 || out.Made == 0 {
				t.Fatalf("made %d kept %d", out.Made, out.Kept)
			}
			if !out.Zone.Signed() {
				t.Fatal("signed zone does not report Signed")
			}
			verifyAll(t, out.Zone, t0)
			externalVerify(t, out.Zone, t0)
			// The unsigned data comes back out unchanged.
			if got, want := len(Strip(out.Zone)), len(Strip(z)); got != want {
				t.Errorf("stripped: %d records, want %d", got, want)
			}
		})
	}
}

func TestSignKeepsSignatures(t *testing.T) {
	p := DefaultPolicy()
	p.Denial = DenialNSEC3
	z := buildZone(t, testZone)
	keys, err := InitialKeys(z.Origin, p, t0)
	if err != nil {
		t.Fatal(err)
	}
	first := signWith(t, p, nil, keys, t0, z)

	// Nothing changed, an hour later: every signature is kept.
	again := signWith(t, p, first.Zone, keys, t0.Add(time.Hour), z)
	if again.Made != 0 || again.Kept != first.Made {
		t.Errorf("re-sign unchanged: made %d kept %d, want 0 and %d", again.Made, again.Kept, first.Made)
	}

	// One new name: its RRset, the NSEC3 records around its hash and the
	// SOA... the rest is kept.
	z2 := buildZone(t, testZone+"new A 192.0.2.99\n")
	edit := signWith(t, p, first.Zone, keys, t0.Add(time.Hour), z2)
	if edit.Made == 0 || edit.Made > 4 {
		t.Errorf("after adding one name: made %d signatures, want 1..4", edit.Made)
	}
	verifyAll(t, edit.Zone, t0.Add(time.Hour))
	externalVerify(t, edit.Zone, t0.Add(time.Hour))

	// Past the refresh point every signature is made again.
	late := t0.Add(time.Hour + p.Validity.D() - p.Refresh.D() + time.Second) // the edit signed at t0+1h
	refreshed := signWith(t, p, edit.Zone, keys, late, z2)
	if refreshed.Kept != 0 {
		t.Errorf("after the refresh point: kept %d signatures", refreshed.Kept)
	}
	if left := refreshed.Earliest.Sub(late); left < p.Validity.D()-p.Jitter.D()-time.Second || left > p.Validity.D() {
		t.Errorf("earliest expiry %s after signing, want within the jitter of %s", left, p.Validity.D())
	}
	if got := Earliest(refreshed.Zone, late); !got.Equal(refreshed.Earliest) {
		t.Errorf("Earliest = %s, Sign said %s", got, refreshed.Earliest)
	}
}

func TestSignRefusesManagedRecords(t *testing.T) {
	z := buildZone(t, testZone+"@ DNSKEY 257 3 13 kXKkvWU3vGYfTJGl3qBd4qhiWp5aRs7YtkCJxD2d+t7KXqwahww5IgJtxJT2yFItlggazyfXqJEVOmMJ3qT0tQ==\n")
	p := DefaultPolicy()
	keys, err := InitialKeys(z.Origin, p, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sign(Input{Zone: z, Keys: keys, Policy: p, Now: t0}); err == nil || !strings.Contains(err.Error(), "maintained by the signer") {
		t.Fatalf("err = %v", err)
	}
}

func TestSignNeedsKeys(t *testing.T) {
	z := buildZone(t, testZone)
	p := DefaultPolicy()
	p.SplitKeys = true
	keys, err := InitialKeys(z.Origin, p, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sign(Input{Zone: z, Keys: keys[:1], Policy: p, Now: t0}); err == nil {
		t.Fatal("signed with a KSK only")
	}
}

func TestKeyRoundTrip(t *testing.T) {
	for _, alg := range []uint8{dns.ECDSAP256SHA256, dns.ED25519, dns.RSASHA256} {
		p := DefaultPolicy()
		p.Algorithm = alg
		k, err := GenerateKey("example.az.", p, RoleKSK, StateActive, t0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := MarshalKey(k)
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalKey(b)
		if err != nil {
			t.Fatal(err)
		}
		if back.Tag() != k.Tag() || back.Role != k.Role || back.State != k.State || !back.Created.Equal(k.Created) {
			t.Errorf("alg %d: round trip changed the key: %+v", alg, back)
		}
		// The key read back signs what the original verifies.
		rrs := []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "x.example.az.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, 1}}}
		sig := &dns.RRSIG{Algorithm: alg, KeyTag: k.Tag(), SignerName: "example.az.", Inception: 1, Expiration: 1 << 31}
		if err := sig.Sign(back.Private, rrs); err != nil {
			t.Fatal(err)
		}
		if err := sig.Verify(k.DNSKEY, rrs); err != nil {
			t.Errorf("alg %d: %v", alg, err)
		}
	}
	for _, bad := range []string{"", "{}", `{"dnskey":"x. 1 IN A 1.2.3.4"}`} {
		if _, err := UnmarshalKey([]byte(bad)); err == nil {
			t.Errorf("UnmarshalKey(%q) accepted", bad)
		}
	}
}
