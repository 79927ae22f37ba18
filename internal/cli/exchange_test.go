package cli

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/internal/config"
	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/resolver"
)

// A ring that fails is logged as a warning and counted in
// sovdns_resolver_upstream_ring_failures_total.
func TestExchangeConfigRingFailure(t *testing.T) {
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	stats := &resolver.Stats{}
	metrics.RegisterResolver(reg, stats, resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20}))
	var out bytes.Buffer
	xc := exchangeConfig(c.Resolver, nil, stats, slog.New(slog.NewTextHandler(&out, nil)))
	if xc.NoRing != !c.Resolver.IOURing {
		t.Errorf("NoRing %v with io_uring %v", xc.NoRing, c.Resolver.IOURing)
	}
	const name = "sovdns_resolver_upstream_ring_failures_total"
	count := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		t.Fatalf("%s not registered", name)
		return 0
	}
	if n := count(); n != 0 {
		t.Fatalf("%s %v before any failure", name, n)
	}
	xc.OnRingError(errors.New("io_uring_enter: EBADF"))
	xc.OnRingError(errors.New("a batch not done within 1s"))
	if n := count(); n != 2 {
		t.Errorf("%s %v after two failures, want 2", name, n)
	}
	if log := out.String(); strings.Count(log, "level=WARN") != 2 || !strings.Contains(log, "EBADF") {
		t.Errorf("log:\n%s", log)
	}
}
