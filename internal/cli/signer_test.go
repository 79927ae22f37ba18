package cli

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/zonestore"
)

// TestMaintainSigning: the server's maintenance re-signs a zone whose
// signatures are due and exports when the earliest one expires.
func TestMaintainSigning(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().Unix())
	pol := dnssec.DefaultPolicy()
	st := signedStore(t, &now, pol)
	// Six days on, the signatures are due for refresh.
	now.Add(int64((pol.Validity.D() - pol.Refresh.D()).Seconds()))
	reg := prometheus.NewRegistry()
	m := newSignerMetrics(reg, nil)
	maintainOnce(t.Context(), st, nil, m, slog.New(slog.DiscardHandler))
	if got := testutil.ToFloat64(m.resigns.WithLabelValues("resigned")); got != 1 {
		t.Fatalf("re-signed %v times, want 1", got)
	}
	s, err := st.DNSSEC("example.")
	if err != nil {
		t.Fatal(err)
	}
	if s.Left < int64((pol.Validity.D() - pol.Jitter.D() - time.Minute).Seconds()) {
		t.Errorf("after maintenance %d s left", s.Left)
	}
	if got := testutil.ToFloat64(m.expiry.WithLabelValues("example.")); got != float64(s.FirstExpiry.Unix()) {
		t.Errorf("expiry gauge %v, status says %d", got, s.FirstExpiry.Unix())
	}
}

// TestMaintainSigningRollover: the maintenance exports when the next step
// of each rollover under way can be taken: a pre-published ZSK's start
// (timed), a new KSK's wait for the operator since it began; zone "all"
// while per-zone series are off; and after a step, the step after it.
func TestMaintainSigningRollover(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().Unix())
	pol := dnssec.DefaultPolicy()
	pol.SplitKeys = true
	st := signedStore(t, &now, pol)
	node := metrics.New(prometheus.NewRegistry())
	m := newSignerMetrics(prometheus.NewRegistry(), node)
	// runOnce runs the maintenance once over every zone.
	runOnce := func() {
		t.Helper()
		m.earliest.Set(0)
		maintainOnce(t.Context(), st, nil, m, slog.New(slog.DiscardHandler))
		if testutil.ToFloat64(m.earliest) == 0 {
			t.Fatal("the maintenance run exported no signature expiry")
		}
	}
	keyOf := func(role dnssec.Role, state dnssec.State) zonestore.KeyInfo {
		t.Helper()
		s, err := st.DNSSEC("example.")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range s.Keys {
			if k.Role == role && k.State == state {
				return k
			}
		}
		t.Fatalf("no %s %s key", state, role)
		return zonestore.KeyInfo{}
	}
	check := func(zone string, want map[[2]string]time.Time) {
		t.Helper()
		if n := testutil.CollectAndCount(m.rollover); n != len(want) {
			t.Errorf("%d rollover series, want %d", n, len(want))
		}
		for k, at := range want {
			if got := testutil.ToFloat64(m.rollover.WithLabelValues(zone, k[0], k[1])); got != float64(at.Unix()) {
				t.Errorf("rollover{zone=%s,role=%s,waiting=%s} = %v, want %d", zone, k[0], k[1], got, at.Unix())
			}
		}
	}

	runOnce()
	check("example.", nil) // no rollover under way

	if _, _, err := st.Rollover("example.", dnssec.RoleZSK, false); err != nil {
		t.Fatal(err)
	}
	now.Add(600)
	if _, _, err := st.Rollover("example.", dnssec.RoleKSK, false); err != nil {
		t.Fatal(err)
	}
	zsk, ksk := keyOf(dnssec.RoleZSK, dnssec.StatePublished), keyOf(dnssec.RoleKSK, dnssec.StateDSPending)
	// The ZSK signs once the DNSKEY RRset (TTL 3600) has reached every
	// cache and secondary; the KSK waits for the parent since it began.
	signs := zsk.Changed.Add(time.Hour + pol.PropagationDelay.D())
	runOnce()
	check("example.", map[[2]string]time.Time{{"zsk", "time"}: signs, {"ksk", "parent"}: ksk.Changed})

	node.SetPerZone(false)
	if n := testutil.CollectAndCount(m.rollover); n != 0 {
		t.Errorf("%d rollover series kept after per-zone series were turned off", n)
	}
	runOnce()
	check(metrics.ZoneAll, map[[2]string]time.Time{{"zsk", "time"}: signs, {"ksk", "parent"}: ksk.Changed})
	node.SetPerZone(true)

	// Past its time the step is taken: next, the old ZSK leaves DNSKEY
	// once its signatures (largest TTL 3600) have left the caches.
	now.Store(signs.Unix())
	runOnce()
	old := keyOf(dnssec.RoleZSK, dnssec.StateRetired)
	check("example.", map[[2]string]time.Time{{"zsk", "time"}: old.Changed.Add(time.Hour + pol.PropagationDelay.D()), {"ksk", "parent"}: ksk.Changed})
}

// signedStore returns a store on a clock read from now, holding the zone
// example. signed under pol.
func signedStore(t *testing.T, now *atomic.Int64, pol dnssec.Policy) *zonestore.Store {
	t.Helper()
	clock := func() time.Time { return time.Unix(now.Load(), 0) }
	st, err := zonestore.Open(filepath.Join(t.TempDir(), "zones.db"), zonestore.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	importText(t, st, "example.", "$ORIGIN example.\n@ 3600 SOA ns hm 1 7200 900 1209600 300\n@ 3600 NS ns\nns 3600 A 192.0.2.1\n")
	if _, err := st.EnableDNSSEC("example.", pol); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestSignerMetricsFollowCommits: the expiry and rollover series of a
// zone appear when it is signed and rolled and go when signing is turned
// off, without a maintenance run.
func TestSignerMetricsFollowCommits(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().Unix())
	pol := dnssec.DefaultPolicy()
	st := signedStore(t, &now, pol)
	m := newSignerMetrics(prometheus.NewRegistry(), nil)
	st.Subscribe(m.committed)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); m.watchCommits(ctx, st) }()
	defer func() { cancel(); <-done }()

	// waitFor polls, bounded, until cond holds.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("not seen within 10 s: %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The zone was signed before the subscription: a policy change re-signs it.
	if _, err := st.EnableDNSSEC("example.", pol); err != nil {
		t.Fatal(err)
	}
	waitFor("expiry series after a re-signing", func() bool {
		s, _ := st.DNSSEC("example.")
		return testutil.ToFloat64(m.expiry.WithLabelValues("example.")) == float64(s.FirstExpiry.Unix()) &&
			testutil.ToFloat64(m.earliest) == float64(s.FirstExpiry.Unix())
	})
	if _, _, err := st.Rollover("example.", dnssec.RoleKSK, false); err != nil {
		t.Fatal(err)
	}
	waitFor("rollover series after a rollover started", func() bool { return testutil.CollectAndCount(m.rollover) == 1 })
	if _, _, err := st.DisableDNSSEC("example.", true, nil); err != nil {
		t.Fatal(err)
	}
	waitFor("no series after signing was turned off", func() bool {
		return testutil.CollectAndCount(m.expiry) == 0 && testutil.CollectAndCount(m.rollover) == 0 && testutil.ToFloat64(m.earliest) == 0
	})
	// A signed zone deleted (its commit carries no zone) loses its series.
	if _, err := st.EnableDNSSEC("example.", pol); err != nil {
		t.Fatal(err)
	}
	waitFor("expiry series after signing again", func() bool { return testutil.CollectAndCount(m.expiry) == 1 })
	if err := st.Delete("example."); err != nil {
		t.Fatal(err)
	}
	waitFor("no series after the zone was deleted", func() bool { return testutil.CollectAndCount(m.expiry) == 0 })
}

// importText stores the zone origin from text.
func importText(t *testing.T, st *zonestore.Store, origin, text string) {
	t.Helper()
	p, err := zonestore.Parse(strings.NewReader(text), origin, "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	z, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Import(z, false); err != nil {
		t.Fatal(err)
	}
}
