package trustanchor_test

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/dnssectest"
	"github.com/sovdns/sovdns/internal/trustanchor"
)

// fakeZone is an anchored zone's DNSKEY RRset as its servers publish it,
// signed by the given keys.
type fakeZone struct {
	mu      sync.Mutex
	keys    []*dns.DNSKEY
	signers map[*dns.DNSKEY]crypto.Signer
	fail    error
	asked   int
}

func (f *fakeZone) fetch(t *testing.T, now func() time.Time) trustanchor.Fetch {
	return func(_ context.Context, zone string) ([]dns.RR, []*dns.RRSIG, time.Duration, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.asked++
		if f.fail != nil {
			return nil, nil, 0, f.fail
		}
		rrs, sigs := dnssectest.SignKeys(t, f.keys, f.signers, now())
		return rrs, sigs, 2 * 24 * time.Hour, nil
	}
}

func (f *fakeZone) set(keys []*dns.DNSKEY, signers map[*dns.DNSKEY]crypto.Signer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys, f.signers = keys, signers
}

// TestManagerAcrossRestarts: with a moved clock, a new root key is
// trusted after the 30-day hold-down and not before, also when the
// server restarts in between; a key that revokes itself leaves the
// anchors in force, and stays out after a restart although its DS is
// still configured; a failed refresh keeps the anchors.
func TestManagerAcrossRestarts(t *testing.T) {
	const zone = "."
	k1, p1 := dnssectest.KSK(t, zone)
	k2, p2 := dnssectest.KSK(t, zone)
	configured := []dns.RR{k1.ToDS(dns.SHA256)}
	var clockMu sync.Mutex
	clock := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	advance := func(d time.Duration) { clockMu.Lock(); clock = clock.Add(d); clockMu.Unlock() }
	f := &fakeZone{}
	f.set([]*dns.DNSKEY{k1, k2}, map[*dns.DNSKEY]crypto.Signer{k1: p1})
	path := filepath.Join(t.TempDir(), trustanchor.FileName)

	var inForce []dns.RR
	open := func() *trustanchor.Manager {
		t.Helper()
		m, err := trustanchor.Open(trustanchor.Config{Configured: configured, Fetch: f.fetch(t, now),
			Apply: func(rrs []dns.RR) error { inForce = rrs; return nil }, Path: path, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	trusted := func() map[uint16]bool { return dnssectest.AnchorTags(inForce) }
	state := func(m *trustanchor.Manager, k *dns.DNSKEY) dnssec.AnchorState {
		for _, z := range m.Status() {
			for _, ks := range z.Keys {
				if ks.ID == idOf(k) {
					return ks.State
				}
			}
		}
		return "none"
	}

	m := open()
	if err := m.Refresh(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if state(m, k1) != dnssec.AnchorValid || state(m, k2) != dnssec.AnchorAddPend {
		t.Fatalf("states %s %s", state(m, k1), state(m, k2))
	}
	if tr := trusted(); !tr[k1.KeyTag()] || tr[k2.KeyTag()] {
		t.Fatalf("anchors in force %v: want k1 only", tr)
	}
	// Not due again before half the TTL (1 day): nothing is asked.
	asked := f.asked
	advance(time.Hour)
	if err := m.Refresh(t.Context(), false); err != nil || f.asked != asked {
		t.Errorf("asked again %d times an hour later (err %v)", f.asked-asked, err)
	}
	m.Close()

	// Restart 29 days on: k2 is still pending, and pending since the start.
	advance(29 * 24 * time.Hour)
	m = open()
	if err := m.Refresh(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if state(m, k2) != dnssec.AnchorAddPend || trusted()[k2.KeyTag()] {
		t.Fatal("k2 trusted before the hold-down")
	}
	advance(24 * time.Hour)
	if err := m.Refresh(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if state(m, k2) != dnssec.AnchorValid || !trusted()[k2.KeyTag()] {
		t.Fatalf("k2 %s after the hold-down, anchors %v", state(m, k2), trusted())
	}

	// k1 revokes itself.
	r1 := *k1
	r1.Flags |= dns.REVOKE
	f.set([]*dns.DNSKEY{&r1, k2}, map[*dns.DNSKEY]crypto.Signer{&r1: p1, k2: p2})
	advance(2 * 24 * time.Hour)
	if err := m.Refresh(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if state(m, k1) != dnssec.AnchorRevoked || trusted()[k1.KeyTag()] || !trusted()[k2.KeyTag()] {
		t.Fatalf("after the revocation: k1 %s, anchors %v", state(m, k1), trusted())
	}
	m.Close()
	inForce = nil
	m = open()
	defer m.Close()
	if tr := trusted(); tr[k1.KeyTag()] || !tr[k2.KeyTag()] {
		t.Fatalf("after a restart the anchors in force are %v, want k2 only", tr)
	}

	// A refresh that fails keeps the anchors and says why.
	f.mu.Lock()
	f.fail = errors.New("DNSKEY . not authenticated")
	f.mu.Unlock()
	advance(3 * 24 * time.Hour)
	if err := m.Refresh(t.Context(), false); err == nil {
		t.Error("a failed refresh returned no error")
	}
	if tr := trusted(); !tr[k2.KeyTag()] {
		t.Error("a failed refresh changed the anchors")
	}
	if st := m.Status(); len(st) != 1 || st[0].LastError == "" {
		t.Errorf("status %+v: want the refresh error", st)
	}
}

// idOf is the ID status gives k: algorithm-tag without the REVOKE bit.
func idOf(k *dns.DNSKEY) string {
	c := *k
	c.Flags &^= dns.REVOKE
	return fmt.Sprintf("%d-%d", c.Algorithm, c.KeyTag())
}
