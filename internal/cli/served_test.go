package cli

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/zone"
)

// TestHoldingCalledOnceZonesAreHeld checks that the scheduler's floor
// (served.holding) is asked for when the first zone is held, by a start's
// zones or by a commit, and not while none is: a resolver alone keeps
// the runtime's processors.
func TestHoldingCalledOnceZonesAreHeld(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	log := slog.New(slog.DiscardHandler)
	p := newServed(server.New(server.Config{}, log, m), server.NewLocal(), nil, m, 1000, log)
	calls := 0
	p.holding = func() { calls++ }

	p.replace(nil)
	if got := p.all.Len(); got != 0 || calls != 0 {
		t.Fatalf("no zones: %d held, holding called %d times, want 0 and 0", got, calls)
	}
	p.committed("a.example.", smallZone(t, "a.example.", 1))
	if got := p.all.Len(); got != 1 || calls != 1 {
		t.Fatalf("a zone committed: %d held, holding called %d times, want 1 and 1", got, calls)
	}
	p.committed("a.example.", nil)
	if got := p.all.Len(); got != 0 || calls != 1 {
		t.Fatalf("the zone deleted: %d held, holding called %d times, want 0 and 1", got, calls)
	}
	p.replace([]*zone.Zone{smallZone(t, "b.example.", 1)})
	if got := p.all.Len(); got != 1 || calls != 2 {
		t.Fatalf("a start's zones: %d held, holding called %d times, want 1 and 2", got, calls)
	}
}
