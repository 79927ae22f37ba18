package resolver_test

import (
	"context"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/resolver"
)

// TestFlushKeys: the validator keeps its verdicts on the zones' keys apart
// from the cache, so flushing the cache alone validates again from them
// without asking for a DNSKEY; FlushKeys empties them, and the keys are
// fetched again. FlushKeysName forgets a zone and those below it only.
func TestFlushKeys(t *testing.T) {
	n := signedHierarchy(t)
	r := n.resolver(t, resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{n.rootDS}})
	// resolve resolves www.gov.az. and returns the DNSKEY queries it sent.
	resolve := func(t *testing.T) int {
		t.Helper()
		before := n.f.count()
		res := r.Resolve(context.Background(), "www.gov.az.", dns.TypeA)
		if res.Err != nil || res.Sec != dnssec.Secure {
			t.Fatalf("www.gov.az.: sec %v err %v why %v", res.Sec, res.Err, res.Why)
		}
		n.f.mu.Lock()
		defer n.f.mu.Unlock()
		dnskeys := 0
		for _, q := range n.f.asked[before:] {
			if strings.HasSuffix(q, " DNSKEY") {
				dnskeys++
			}
		}
		return dnskeys
	}
	if got := resolve(t); got == 0 {
		t.Fatal("no DNSKEY asked for at the first resolution")
	}
	held := r.KeyEntries()
	if held < 3 {
		t.Fatalf("%d key cache entries after a secure answer under ., az. and gov.az., want 3 or more", held)
	}

	tests := []struct {
		name        string
		flush       func() int // returns the key entries it removed
		wantRemoved int        // -1: all held
		wantDNSKEY  bool       // the next resolution asks for keys
	}{
		{name: "cache only", flush: func() int { r.Cache().Flush(); return 0 }, wantRemoved: 0},
		{name: "one zone", flush: func() int { r.Cache().FlushName("gov.az."); return r.FlushKeysName("GOV.az") }, wantRemoved: 1, wantDNSKEY: true},
		{name: "everything", flush: func() int { r.Cache().Flush(); return r.FlushKeys() }, wantRemoved: -1, wantDNSKEY: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			held := r.KeyEntries()
			removed := tt.flush()
			want := tt.wantRemoved
			if want < 0 {
				want = held
			}
			if removed != want || r.KeyEntries() != held-removed {
				t.Errorf("removed %d key entries of %d, %d left; want %d removed", removed, held, r.KeyEntries(), want)
			}
			if got := resolve(t); (got > 0) != tt.wantDNSKEY {
				t.Errorf("%d DNSKEY queries after the flush, want some: %v", got, tt.wantDNSKEY)
			}
		})
	}
}
