package dnssec_test

import (
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/zonetest"
)

// TestSigTimeCheckGrace checks the grace for expired signatures at its
// edges, and across the wrap of the 32-bit time in 2106 (RFC 1982).
func TestSigTimeCheckGrace(t *testing.T) {
	base := vtNow
	wrap := time.Unix(1<<32, 0)
	sigAt := func(inception, expiration time.Time) *dns.RRSIG {
		return &dns.RRSIG{Inception: uint32(inception.Unix()), Expiration: uint32(expiration.Unix())}
	}
	normal := sigAt(base.Add(-30*24*time.Hour), base)
	// Expires an hour before the wrap; checked after it, when the 32-bit
	// now is smaller than the expiration.
	beforeWrap := sigAt(wrap.Add(-30*24*time.Hour), wrap.Add(-time.Hour))
	// Valid from an hour before the wrap, expires an hour after.
	acrossWrap := sigAt(wrap.Add(-time.Hour), wrap.Add(time.Hour))
	const maxSerial = 1<<31 - 1 // seconds: the farthest RFC 1982 can tell apart

	tests := []struct {
		name   string
		sig    *dns.RRSIG
		now    time.Time
		grace  time.Duration
		graced bool
		want   error
	}{
		{name: "valid, no grace", sig: normal, now: base.Add(-time.Hour)},
		{name: "at the expiration", sig: normal, now: base, grace: time.Hour},
		{name: "expired, no grace", sig: normal, now: base.Add(time.Second), want: dnssec.ErrSignatureExpired},
		{name: "expired, negative grace", sig: normal, now: base.Add(time.Second), grace: -time.Hour, want: dnssec.ErrSignatureExpired},
		{name: "a second after the expiration", sig: normal, now: base.Add(time.Second), grace: time.Hour, graced: true},
		{name: "at the end of the grace", sig: normal, now: base.Add(time.Hour), grace: time.Hour, graced: true},
		{name: "a second past the grace", sig: normal, now: base.Add(time.Hour + time.Second), grace: time.Hour, want: dnssec.ErrSignatureExpired},
		{name: "grace under a second", sig: normal, now: base.Add(time.Second), grace: 999 * time.Millisecond, want: dnssec.ErrSignatureExpired},
		{name: "not yet valid, with grace", sig: sigAt(base.Add(time.Hour), base.Add(2*time.Hour)), now: base, grace: 72 * time.Hour,
			want: dnssec.ErrSignatureNotYetValid},
		{name: "not yet valid and expired, with grace", sig: sigAt(base.Add(time.Hour), base.Add(-time.Hour)), now: base,
			grace: 72 * time.Hour, want: dnssec.ErrSignatureNotYetValid},
		{name: "expired before the wrap, graced after it", sig: beforeWrap, now: wrap.Add(time.Hour), grace: 3 * time.Hour, graced: true},
		{name: "expired before the wrap, past the grace after it", sig: beforeWrap, now: wrap.Add(3 * time.Hour), grace: time.Hour,
			want: dnssec.ErrSignatureExpired},
		{name: "across the wrap, valid", sig: acrossWrap, now: wrap.Add(30 * time.Minute), grace: time.Hour},
		{name: "across the wrap, graced", sig: acrossWrap, now: wrap.Add(90 * time.Minute), grace: time.Hour, graced: true},
		{name: "across the wrap, past the grace", sig: acrossWrap, now: wrap.Add(3 * time.Hour), grace: time.Hour,
			want: dnssec.ErrSignatureExpired},
		// A grace past 2^31-1 seconds is cut to it: 2^31 seconds after the
		// expiration, serial arithmetic cannot tell past from future. (The
		// inception is kept near now, after the expiration, so that only
		// the expiration is in question.)
		{name: "longest grace", sig: sigAt(base.Add((maxSerial-3600)*time.Second), base), now: base.Add(maxSerial * time.Second),
			grace: 200 * 365 * 24 * time.Hour, graced: true},
		{name: "beyond the longest grace", sig: sigAt(base.Add((maxSerial-3600)*time.Second), base), now: base.Add((maxSerial + 1) * time.Second),
			grace: 200 * 365 * 24 * time.Hour, want: dnssec.ErrSignatureExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			graced, err := dnssec.SigTimeCheckGrace(tt.sig, tt.now, tt.grace)
			if graced != tt.graced || (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("graced %v err %v; want graced %v err %v", graced, err, tt.graced, tt.want)
			}
			if tt.grace == 0 {
				// Without a grace, SigTimeCheck says the same.
				if err2 := dnssec.SigTimeCheck(tt.sig, tt.now); !errors.Is(err2, tt.want) {
					t.Errorf("SigTimeCheck: %v, want %v", err2, tt.want)
				}
			}
		})
	}
}

// TestVerifyRRsetGrace: the grace relaxes the expiration only, and only
// when no signature valid now verifies.
func TestVerifyRRsetGrace(t *testing.T) {
	zsk := vtNewKey(t, "example.", false)
	keys := dnssec.NewZoneKeys("example.", []*dns.DNSKEY{zsk.rr})
	set := zonetest.RRs(t, "www.example. 300 IN A 192.0.2.1")
	good := vtSignNow(t, zsk, set)
	expired := vtSign(t, zsk, set, vtNow.Add(-30*24*time.Hour), vtNow.Add(-time.Hour))
	longExpired := vtSign(t, zsk, set, vtNow.Add(-30*24*time.Hour), vtNow.Add(-100*time.Hour))
	future := vtSign(t, zsk, set, vtNow.Add(time.Hour), vtNow.Add(48*time.Hour))
	forged := dns.Copy(expired).(*dns.RRSIG)
	forged.Signature = good.Signature
	other := vtNewKey(t, "example.", false)
	byOther := vtSign(t, other, set, vtNow.Add(-30*24*time.Hour), vtNow.Add(-time.Hour))
	byOther.KeyTag = zsk.rr.KeyTag() // a key tag collision: only the cryptography tells

	tests := []struct {
		name   string
		sigs   []*dns.RRSIG
		grace  time.Duration
		want   *dns.RRSIG
		err    error
		graced int
	}{
		{name: "expired, no grace", sigs: []*dns.RRSIG{expired}, err: dnssec.ErrSignatureExpired},
		{name: "expired, within the grace", sigs: []*dns.RRSIG{expired}, grace: 72 * time.Hour, want: expired, graced: 1},
		{name: "expired, beyond the grace", sigs: []*dns.RRSIG{longExpired}, grace: 72 * time.Hour, err: dnssec.ErrSignatureExpired},
		{name: "a valid signature first", sigs: []*dns.RRSIG{expired, good}, grace: 72 * time.Hour, want: good},
		{name: "expired, does not verify", sigs: []*dns.RRSIG{forged}, grace: 72 * time.Hour, err: dnssec.ErrBogus},
		{name: "expired, by another key", sigs: []*dns.RRSIG{byOther}, grace: 72 * time.Hour, err: dnssec.ErrBogus},
		{name: "not yet valid", sigs: []*dns.RRSIG{future}, grace: 72 * time.Hour, err: dnssec.ErrSignatureNotYetValid},
		{name: "one graced among bad ones", sigs: []*dns.RRSIG{forged, longExpired, expired}, grace: 72 * time.Hour, want: expired, graced: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dnssec.NewBudget(dnssec.Limits{})
			b.Grace = tt.grace
			sig, err := dnssec.VerifyRRset(set, tt.sigs, keys, vtNow, b)
			if sig != tt.want || (tt.err == nil) != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Fatalf("sig %v err %v; want %v, %v", sig, err, tt.want, tt.err)
			}
			if err != nil && dnssec.StatusOf(err) != dnssec.Bogus {
				t.Errorf("status %v, want bogus", dnssec.StatusOf(err))
			}
			if b.Graced != tt.graced {
				t.Errorf("Graced %d, want %d", b.Graced, tt.graced)
			}
		})
	}
}

func TestVerifyDNSKEYsGrace(t *testing.T) {
	ksk := vtNewKey(t, "example.", true)
	zsk := vtNewKey(t, "example.", false)
	set := []dns.RR{ksk.rr, zsk.rr}
	ds := []*dns.DS{ksk.rr.ToDS(dns.SHA256)}
	expired := vtSign(t, ksk, set, vtNow.Add(-30*24*time.Hour), vtNow.Add(-time.Hour))

	if _, err := dnssec.VerifyDNSKEYs("example.", set, []*dns.RRSIG{expired}, ds, nil, vtNow, dnssec.NewBudget(dnssec.Limits{})); !errors.Is(err, dnssec.ErrSignatureExpired) {
		t.Fatalf("no grace: %v, want expired", err)
	}
	b := dnssec.NewBudget(dnssec.Limits{})
	b.Grace = 72 * time.Hour
	zk, err := dnssec.VerifyDNSKEYs("example.", set, []*dns.RRSIG{expired}, ds, nil, vtNow, b)
	if err != nil || b.Graced != 1 || zk.Sig != expired || len(zk.Keys) != 2 {
		t.Fatalf("grace: keys %v err %v graced %d", zk, err, b.Graced)
	}
}

// TestMaxTTLGrace: data accepted under the grace is cached for at most
// MaxGraceTTL, never past the grace.
func TestMaxTTLGrace(t *testing.T) {
	sig := &dns.RRSIG{OrigTtl: 300, Inception: uint32(vtNow.Add(-30 * 24 * time.Hour).Unix()), Expiration: uint32(vtNow.Unix())}
	short := &dns.RRSIG{OrigTtl: 10, Inception: sig.Inception, Expiration: sig.Expiration}
	tests := []struct {
		name  string
		sig   *dns.RRSIG
		now   time.Time
		grace time.Duration
		want  uint32
	}{
		{name: "valid: as MaxTTL", sig: sig, now: vtNow.Add(-100 * time.Second), grace: time.Hour, want: 100},
		{name: "valid, far from expiring", sig: sig, now: vtNow.Add(-24 * time.Hour), grace: time.Hour, want: 300},
		{name: "expired, no grace", sig: sig, now: vtNow.Add(time.Second), want: 0},
		{name: "graced: MaxGraceTTL", sig: sig, now: vtNow.Add(time.Hour), grace: 72 * time.Hour, want: dnssec.MaxGraceTTL},
		{name: "graced: the rest of the grace", sig: sig, now: vtNow.Add(time.Hour), grace: time.Hour + 30*time.Second, want: 30},
		{name: "graced: the original TTL", sig: short, now: vtNow.Add(time.Hour), grace: 72 * time.Hour, want: 10},
		{name: "at the end of the grace", sig: sig, now: vtNow.Add(time.Hour), grace: time.Hour, want: 0},
		{name: "past the grace", sig: sig, now: vtNow.Add(2 * time.Hour), grace: time.Hour, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dnssec.MaxTTLGrace(tt.sig, tt.now, tt.grace); got != tt.want {
				t.Errorf("MaxTTLGrace = %d, want %d", got, tt.want)
			}
			if tt.grace == 0 {
				if got := dnssec.MaxTTL(tt.sig, tt.now); got != tt.want {
					t.Errorf("MaxTTL = %d, want %d", got, tt.want)
				}
			}
		})
	}
}
