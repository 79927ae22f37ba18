package dnssec

import (
	"crypto"
	"encoding/json"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/dnssectest"
)

func revoked(k *dns.DNSKEY) *dns.DNSKEY {
	c := *k
	c.Flags |= dns.REVOKE
	return &c
}

func stateOf(z *ManagedZone, k *dns.DNSKEY) AnchorState {
	if m := z.find(k); m != nil {
		return m.State
	}
	return "forgotten"
}

// TestManagedKeys walks RFC 5011's states: a configured key becomes a
// valid managed key, a new key waits the add hold-down, a key that
// revokes itself (and only then) stops being an anchor, a key that
// disappears is missing and still trusted, and the state survives a
// round trip through JSON.
func TestManagedKeys(t *testing.T) {
	const zone = "gov.example."
	k1, p1 := dnssectest.KSK(t, zone)
	k2, p2 := dnssectest.KSK(t, zone)
	k3, p3 := dnssectest.KSK(t, zone)
	configured := []dns.RR{k1.ToDS(dns.SHA256)}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	z := &ManagedZone{Zone: zone}
	update := func(keys []*dns.DNSKEY, signers map[*dns.DNSKEY]crypto.Signer) bool {
		t.Helper()
		rrs, sigs := dnssectest.SignKeys(t, keys, signers, now)
		return z.Update(configured, rrs, sigs, time.Hour, now)
	}
	anchorTags := func() map[uint16]bool { return dnssectest.AnchorTags(z.Anchors(configured)) }

	if update([]*dns.DNSKEY{k1, k2}, map[*dns.DNSKEY]crypto.Signer{k1: p1}) {
		t.Error("the trusted keys changed at the first refresh")
	}
	if stateOf(z, k1) != AnchorValid || stateOf(z, k2) != AnchorAddPend {
		t.Fatalf("states %s %s, want valid addpend", stateOf(z, k1), stateOf(z, k2))
	}
	now = now.Add(AnchorHoldDown - time.Hour)
	if update([]*dns.DNSKEY{k1, k2}, map[*dns.DNSKEY]crypto.Signer{k1: p1}) || stateOf(z, k2) != AnchorAddPend {
		t.Fatal("new key trusted before the hold-down")
	}
	// k3 shows up, goes, and comes back: its hold-down starts again.
	update([]*dns.DNSKEY{k1, k2, k3}, map[*dns.DNSKEY]crypto.Signer{k1: p1})
	first := z.find(k3).FirstSeen
	now = now.Add(time.Hour)
	if !update([]*dns.DNSKEY{k1, k2}, map[*dns.DNSKEY]crypto.Signer{k1: p1}) || stateOf(z, k2) != AnchorValid {
		t.Fatalf("k2 %s after the hold-down, want valid and a change", stateOf(z, k2))
	}
	if stateOf(z, k3) != "forgotten" {
		t.Errorf("a pending key that left the RRset is %s, want forgotten", stateOf(z, k3))
	}
	now = now.Add(time.Hour)
	update([]*dns.DNSKEY{k1, k2, k3}, map[*dns.DNSKEY]crypto.Signer{k1: p1})
	if !z.find(k3).FirstSeen.After(first) {
		t.Error("the hold-down of a key that came back did not start again")
	}
	if tags := anchorTags(); !tags[k1.KeyTag()] || !tags[k2.KeyTag()] || tags[k3.KeyTag()] {
		t.Errorf("anchors %v, want k1 (configured) and k2", tags)
	}

	// A revoked k1 that does not sign the RRset itself is no revocation.
	update([]*dns.DNSKEY{revoked(k1), k2}, map[*dns.DNSKEY]crypto.Signer{k2: p2})
	if stateOf(z, k1) == AnchorRevoked {
		t.Fatal("a revocation without the key's own signature was taken")
	}
	r1 := revoked(k1)
	if !update([]*dns.DNSKEY{r1, k2, k3}, map[*dns.DNSKEY]crypto.Signer{r1: p1, k2: p2}) || stateOf(z, k1) != AnchorRevoked {
		t.Fatalf("k1 %s after revoking itself, want revoked and a change", stateOf(z, k1))
	}
	if tags := anchorTags(); tags[k1.KeyTag()] || !tags[k2.KeyTag()] {
		t.Errorf("anchors %v after the revocation, want k2 only", tags)
	}

	// k2 leaves the RRset: missing, still trusted.
	now = now.Add(time.Hour)
	update([]*dns.DNSKEY{k3}, map[*dns.DNSKEY]crypto.Signer{k3: p3})
	if stateOf(z, k2) != AnchorMissing || !anchorTags()[k2.KeyTag()] {
		t.Errorf("k2 %s, want missing and trusted", stateOf(z, k2))
	}

	b, err := json.Marshal(z)
	if err != nil {
		t.Fatal(err)
	}
	var back ManagedZone
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Decode(); err != nil {
		t.Fatal(err)
	}
	if stateOf(&back, k1) != AnchorRevoked || stateOf(&back, k2) != AnchorMissing || stateOf(&back, k3) != AnchorAddPend {
		t.Errorf("after a round trip: %s %s %s", stateOf(&back, k1), stateOf(&back, k2), stateOf(&back, k3))
	}
}

func TestRefreshInterval(t *testing.T) {
	now := time.Now()
	sig := func(left time.Duration) []*dns.RRSIG {
		return []*dns.RRSIG{{Expiration: uint32(now.Add(left).Unix())}}
	}
	for _, c := range []struct {
		ttl  time.Duration
		sigs []*dns.RRSIG
		want time.Duration
	}{
		{48 * time.Hour, sig(20 * 24 * time.Hour), 24 * time.Hour},
		{60 * 24 * time.Hour, sig(60 * 24 * time.Hour), 15 * 24 * time.Hour},
		{time.Hour, nil, time.Hour},
		{48 * time.Hour, sig(10 * time.Hour), 5 * time.Hour},
	} {
		if got := RefreshInterval(c.ttl, c.sigs, now).Round(time.Minute); got != c.want {
			t.Errorf("RefreshInterval(%s, %v) = %s, want %s", c.ttl, c.sigs, got, c.want)
		}
	}
}
