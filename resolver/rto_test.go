package resolver_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/resolver"
)

// A server that answered fast and then stops answering is given up on at
// its retransmission timeout, not at the whole query timeout: the zone's
// other server answers the question. The query timeout here is a minute
// and the resolution timeout 20 s, so without the RTO the question would
// fail.
func TestRTOMovesOnToTheNextServer(t *testing.T) {
	f, hints := hierarchy(t)
	slowZone := f.servers[ipSlow2]
	f.mu.Lock()
	delete(f.dead, ipDead)
	f.servers[ipDead] = slowZone // dead.slow.com answers for now
	f.refuse[ipSlow2] = true     // and ok.slow.com refuses, so dead.slow.com is asked
	f.mu.Unlock()
	h := &hookNet{fakeNet: f, hook: func(q *dns.Msg, s netip.Addr, r *dns.Msg) (*dns.Msg, time.Duration) {
		if s == ipDead {
			return r, time.Millisecond
		}
		return r, 20 * time.Millisecond
	}}
	stats := &resolver.Stats{}
	r := resolver.New(resolver.Config{RootHints: hints, QueryTimeout: time.Minute, ResolutionTimeout: 20 * time.Second},
		h, resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20}), nil, stats)
	defer r.Close()
	ctx := context.Background()
	if res := r.Resolve(ctx, "www.slow.com.", dns.TypeA); res.Rcode != dns.RcodeSuccess || len(res.Answer) != 1 {
		t.Fatalf("while dead.slow.com answers: rcode %s, answer %v, err %v", dns.RcodeToString[res.Rcode], res.Answer, res.Err)
	}
	if len(f.queriesTo(ipDead)) == 0 {
		t.Fatal("dead.slow.com was never asked")
	}

	f.mu.Lock()
	f.dead[ipDead] = true // dead.slow.com, the fastest so far, stops answering
	delete(f.refuse, ipSlow2)
	f.mu.Unlock()
	before := len(f.queriesTo(ipDead))
	res := r.Resolve(ctx, "www.slow.com.", dns.TypeAAAA)
	if res.Err != nil || res.Rcode != dns.RcodeSuccess {
		t.Fatalf("after dead.slow.com stopped: rcode %s, err %v", dns.RcodeToString[res.Rcode], res.Err)
	}
	if len(f.queriesTo(ipDead)) == before {
		t.Fatal("dead.slow.com was not asked first: the test shows nothing")
	}
	if got := stats.RTOTimeouts.Load(); got != 1 {
		t.Fatalf("RTO timeouts %d, want 1", got)
	}
}
