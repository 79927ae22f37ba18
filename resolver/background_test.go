package resolver_test

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/resolver"
)

// TestCloseEndsBackgroundWork: a stale refresh and a prefetch that wait
// on servers that never answer are cancelled when the resolver stops
// (Run returns), which waits for them; after that none is started.
func TestCloseEndsBackgroundWork(t *testing.T) {
	f, hints := hierarchy(t)
	r, clk := staleResolver(t, f, hints, func(c *resolver.Config) {
		c.Island.Disabled = true
		c.ClientTimeout = time.Millisecond
		c.QueryTimeout = time.Minute
		c.ResolutionTimeout = 2 * time.Minute
		c.Prefetch = true
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan struct{})
	go func() { defer close(stopped); r.Run(ctx) }()

	resolveOK(t, r, "www.example.com.", dns.TypeA)
	resolveOK(t, r, "www.gov.az.", dns.TypeA)
	// www.gov.az. in the last tenth of its TTL, its server silent: the
	// question is answered from the cache and prefetched, the prefetch
	// waits.
	clk.Advance(3300 * time.Second)
	f.cut(true, ipGov)
	if res, ok := r.Cached("www.gov.az.", dns.TypeA); !ok || res.Stale {
		t.Fatalf("www.gov.az.: cached %v stale %v, want a fresh answer", ok, res.Stale)
	}
	// www.example.com. expired, its server silent: answered stale after
	// the client timeout, the refresh waits.
	clk.Advance(2 * time.Hour)
	f.cut(true, ipEx)
	if res := resolveOK(t, r, "www.example.com.", dns.TypeA); res.StaleReason != resolver.StaleReasonTimeout {
		t.Fatalf("www.example.com.: reason %q, want %q", res.StaleReason, resolver.StaleReasonTimeout)
	}
	waitFor(t, "the refresh and the prefetch to wait upstream", func() bool { return r.BackgroundForTest() == 2 })

	cancel()
	<-stopped // Run returns once the background work has ended
	if n := r.BackgroundForTest(); n != 0 {
		t.Fatalf("%d background goroutines after Run returned, want none", n)
	}
	if got := r.Stats().Prefetches[1].Load(); got != 1 {
		t.Errorf("%d prefetches failed, want the one cancelled", got)
	}

	// Closed: questions are still answered, with no background work.
	n := f.count()
	if res := resolveOK(t, r, "www.example.com.", dns.TypeA); !res.Stale {
		t.Errorf("after close: stale %v, want the stale answer", res.Stale)
	}
	r.Close() // again: no effect
	if got := r.BackgroundForTest(); got != 0 || f.count() != n {
		t.Errorf("after close: %d background goroutines, %d upstream queries; want none", got, f.count()-n)
	}
}
