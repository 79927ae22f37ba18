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
	"github.com/sovdns/sovdns/zonestore"
)

// TestMaintainSigning: the server's maintenance re-signs a zone whose
// signatures are due and exports when the earliest one expires.
func TestMaintainSigning(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().Unix())
	clock := func() time.Time { return time.Unix(now.Load(), 0) }
	st, err := zonestore.Open(filepath.Join(t.TempDir(), "zones.db"), zonestore.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := zonestore.Parse(strings.NewReader("$ORIGIN example.\n@ 3600 SOA ns hm 1 7200 900 1209600 300\n@ 3600 NS ns\nns 3600 A 192.0.2.1\n"), "example.", "t", nil)
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
	pol := dnssec.DefaultPolicy()
	if _, err := st.EnableDNSSEC("example.", pol); err != nil {
		t.Fatal(err)
	}
	// Six days on, the signatures are due for refresh.
	now.Add(int64((pol.Validity.D() - pol.Refresh.D()).Seconds()))
	reg := prometheus.NewRegistry()
	m := newSignerMetrics(reg, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { maintainSigning(ctx, st, m, time.Hour, slog.New(slog.DiscardHandler)); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(m.resigns.WithLabelValues("resigned")) < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
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
