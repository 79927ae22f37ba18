package dnssec

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// RFC 5011 automated updates of trust anchors: the resolver keeps, for
// each zone with a trust anchor, the key-signing keys it has seen in the
// zone's authenticated DNSKEY RRset, and trusts a new one only after it
// has been seen for the add hold-down time; a key that revokes itself is
// trusted no more.

// AnchorHoldDown is RFC 5011's add hold-down time (§2.4.1): a new key is
// trusted once it has been seen this long (or its RRset's TTL, if longer).
// A revoked key is forgotten this long after its revocation (§2.4.2).
const AnchorHoldDown = 30 * 24 * time.Hour

// AnchorState is a managed key's state (RFC 5011 §4).
type AnchorState string

// The managed key states. Start and Removed are not kept: a key is
// forgotten instead.
const (
	AnchorAddPend AnchorState = "addpend" // seen, not yet trusted (hold-down)
	AnchorValid   AnchorState = "valid"   // trusted, in the zone's DNSKEY RRset
	AnchorMissing AnchorState = "missing" // trusted, absent from the RRset
	AnchorRevoked AnchorState = "revoked" // revoked itself: never trusted again
)

// ManagedKey is a key-signing key of an anchored zone as RFC 5011 tracks
// it. DNSKEY is the key without its REVOKE bit.
type ManagedKey struct {
	DNSKEY    *dns.DNSKEY `json:"-"`
	Text      string      `json:"dnskey"` // DNSKEY in presentation form, for storage
	State     AnchorState `json:"state"`
	FirstSeen time.Time   `json:"first_seen"` // for AddPend: when the hold-down began
	Changed   time.Time   `json:"changed"`    // when State was last set
}

// ID names the key: algorithm and key tag (without the REVOKE bit).
func (k *ManagedKey) ID() string { return fmt.Sprintf("%d-%d", k.DNSKEY.Algorithm, k.DNSKEY.KeyTag()) }

// ManagedZone is the RFC 5011 state of one anchored zone.
type ManagedZone struct {
	Zone        string        `json:"zone"`
	Keys        []*ManagedKey `json:"keys"`
	LastRefresh time.Time     `json:"last_refresh,omitzero"` // last authenticated DNSKEY RRset
	LastError   string        `json:"last_error,omitempty"`  // of the last refresh, if it failed
}

// Decode fills the keys' DNSKEY from their text (after loading).
func (z *ManagedZone) Decode() error {
	for _, k := range z.Keys {
		rr, err := dns.NewRR(k.Text)
		if err != nil {
			return fmt.Errorf("%w: managed key of %s: %w", ErrBadTrustAnchor, z.Zone, err)
		}
		dk, ok := rr.(*dns.DNSKEY)
		if !ok {
			return fmt.Errorf("%w: managed key of %s is not a DNSKEY", ErrBadTrustAnchor, z.Zone)
		}
		k.DNSKEY = dk
	}
	return nil
}

// unrevoked returns k without its REVOKE bit.
func unrevoked(k *dns.DNSKEY) *dns.DNSKEY {
	c := *k
	c.Hdr.Ttl = 0
	c.Flags &^= dns.REVOKE
	return &c
}

// sameKey reports whether a and b are the same key, REVOKE bit aside.
func sameKey(a, b *dns.DNSKEY) bool {
	return a.Algorithm == b.Algorithm && a.Protocol == b.Protocol && a.PublicKey == b.PublicKey &&
		a.Flags&^dns.REVOKE == b.Flags&^dns.REVOKE
}

// anchored reports whether k (REVOKE bit aside) is one of the configured
// anchors, DS or DNSKEY.
func anchored(k *dns.DNSKEY, configured []dns.RR) bool {
	plain := unrevoked(k)
	for _, rr := range configured {
		switch a := rr.(type) {
		case *dns.DS:
			if ds := plain.ToDS(a.DigestType); ds != nil && ds.KeyTag == a.KeyTag && strings.EqualFold(ds.Digest, a.Digest) {
				return true
			}
		case *dns.DNSKEY:
			if sameKey(a, plain) {
				return true
			}
		}
	}
	return false
}

func (z *ManagedZone) find(k *dns.DNSKEY) *ManagedKey {
	for _, m := range z.Keys {
		if sameKey(m.DNSKEY, k) {
			return m
		}
	}
	return nil
}

// trusted reports whether k is a trust anchor of the zone now: a managed
// key valid or missing, or a configured anchor not revoked.
func (z *ManagedZone) trusted(k *dns.DNSKEY, configured []dns.RR) bool {
	if m := z.find(k); m != nil {
		return m.State == AnchorValid || m.State == AnchorMissing
	}
	return anchored(k, configured)
}

// selfSigned reports whether k signs rrs with one of sigs.
func selfSigned(k *dns.DNSKEY, rrs []dns.RR, sigs []*dns.RRSIG) bool {
	for _, s := range sigs {
		if s.KeyTag == k.KeyTag() && s.Algorithm == k.Algorithm && s.Verify(k, rrs) == nil {
			return true
		}
	}
	return false
}

// Update applies an authenticated DNSKEY RRset of the zone (rrs, with its
// signatures sigs and TTL ttl), seen at now, to its managed keys (RFC
// 5011 §4), with configured the zone's configured anchors. It reports
// whether the set of trusted keys changed.
func (z *ManagedZone) Update(configured []dns.RR, rrs []dns.RR, sigs []*dns.RRSIG, ttl time.Duration, now time.Time) bool {
	before := z.trustedIDs(configured)
	now = now.UTC()
	hold := max(AnchorHoldDown, ttl)
	seen := make(map[*ManagedKey]bool)
	for _, rr := range rrs {
		k, ok := rr.(*dns.DNSKEY)
		if !ok || k.Flags&dns.SEP == 0 || k.Protocol != 3 {
			continue
		}
		m := z.find(k)
		if k.Flags&dns.REVOKE != 0 {
			// §2.1: a revocation counts only when the key signs the RRset
			// itself, and only for a key that was a trust anchor.
			if (m != nil && m.State == AnchorRevoked) || !selfSigned(k, rrs, sigs) {
				continue
			}
			if m == nil && anchored(k, configured) {
				m = &ManagedKey{DNSKEY: unrevoked(k), FirstSeen: now}
				z.Keys = append(z.Keys, m)
			}
			if m != nil {
				m.State, m.Changed = AnchorRevoked, now
				seen[m] = true
			}
			continue
		}
		switch {
		case m == nil:
			m = &ManagedKey{DNSKEY: unrevoked(k), State: AnchorAddPend, FirstSeen: now, Changed: now}
			if anchored(k, configured) {
				m.State = AnchorValid
			}
			z.Keys = append(z.Keys, m)
		case m.State == AnchorMissing:
			m.State, m.Changed = AnchorValid, now
		case m.State == AnchorAddPend && !now.Before(m.FirstSeen.Add(hold)):
			m.State, m.Changed = AnchorValid, now
		}
		seen[m] = true
	}
	z.Keys = slices.DeleteFunc(z.Keys, func(m *ManagedKey) bool {
		switch {
		case seen[m]:
			return false
		case m.State == AnchorAddPend:
			return true // §4.4: the hold-down starts again if it comes back
		case m.State == AnchorValid:
			m.State, m.Changed = AnchorMissing, now
		case m.State == AnchorRevoked:
			return !now.Before(m.Changed.Add(AnchorHoldDown)) && !anchored(m.DNSKEY, configured)
		}
		return false
	})
	for _, m := range z.Keys {
		m.Text = m.DNSKEY.String()
	}
	z.LastRefresh, z.LastError = now, ""
	return !slices.Equal(before, z.trustedIDs(configured))
}

func (z *ManagedZone) trustedIDs(configured []dns.RR) []string {
	var out []string
	for _, rr := range z.Anchors(configured) {
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

// Anchors returns the zone's trust anchors now: its configured anchors
// but those of revoked keys, and the managed keys that are valid or
// missing (as DNSKEY records).
func (z *ManagedZone) Anchors(configured []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range configured {
		revoked := false
		for _, m := range z.Keys {
			if m.State == AnchorRevoked && anchored(m.DNSKEY, []dns.RR{rr}) {
				revoked = true
			}
		}
		if !revoked {
			out = append(out, rr)
		}
	}
	for _, m := range z.Keys {
		if (m.State == AnchorValid || m.State == AnchorMissing) && !anchored(m.DNSKEY, configured) {
			k := *m.DNSKEY
			k.Hdr.Name = dns.Fqdn(z.Zone)
			out = append(out, &k)
		}
	}
	return out
}

// RefreshInterval is how long to wait before asking the zone's DNSKEY
// RRset again (RFC 5011 §2.3): half its TTL or of its signatures' time
// left, at most 15 days, at least an hour.
func RefreshInterval(ttl time.Duration, sigs []*dns.RRSIG, now time.Time) time.Duration {
	d := min(ttl/2, 15*24*time.Hour)
	for _, s := range sigs {
		if left := sigTime(s.Expiration, now).Sub(now); left/2 < d {
			d = left / 2
		}
	}
	return max(d, time.Hour)
}
