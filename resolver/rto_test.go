package resolver_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
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

// lossyNet loses the first query for one name: while that query waits,
// another question gets its answer from the same server, so the server is
// known to be alive when the query times out.
type lossyNet struct {
	*fakeNet
	lose    string
	r       *resolver.Resolver
	meant   string // the other question, answered meanwhile
	once    sync.Once
	otherOK atomic.Bool
}

func (l *lossyNet) Exchange(ctx context.Context, m *dns.Msg, s netip.AddrPort, tcp bool) (*dns.Msg, time.Duration, error) {
	lost := false
	if strings.EqualFold(m.Question[0].Name, l.lose) {
		l.once.Do(func() { lost = true })
	}
	if !lost {
		return l.fakeNet.Exchange(ctx, m, s, tcp)
	}
	l.fakeNet.mu.Lock()
	l.fakeNet.asked = append(l.fakeNet.asked, s.Addr().String()+" "+m.Question[0].Name+" "+dns.Type(m.Question[0].Qtype).String())
	l.fakeNet.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		res := l.r.Resolve(context.Background(), l.meant, dns.TypeA)
		l.otherOK.Store(res.Rcode == dns.RcodeSuccess)
	}()
	<-done
	<-ctx.Done()
	return nil, 0, ctx.Err()
}

// A query lost by a server that answers other queries meanwhile is sent
// to it again (the zone's only server), at its RTO; the question is
// answered.
func TestLostQueryAskedAgain(t *testing.T) {
	f, hints := hierarchy(t)
	l := &lossyNet{fakeNet: f, lose: "lost.example.com.", meant: "www.example.com."}
	stats := &resolver.Stats{}
	r := resolver.New(resolver.Config{RootHints: hints, QueryTimeout: time.Minute, ResolutionTimeout: 20 * time.Second,
		QNameMinimisation: resolver.QMinOff, Island: resolver.IslandConfig{Disabled: true}},
		l, resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20}), nil, stats)
	defer r.Close()
	l.r = r
	ctx := context.Background()
	if res := r.Resolve(ctx, "ns.example.com.", dns.TypeA); res.Rcode != dns.RcodeSuccess {
		t.Fatalf("ns.example.com.: %s %v", dns.RcodeToString[res.Rcode], res.Err)
	}
	res := r.Resolve(ctx, "lost.example.com.", dns.TypeA)
	if res.Rcode != dns.RcodeNameError {
		t.Fatalf("lost.example.com.: %s %v, want NXDOMAIN after the query was sent again", dns.RcodeToString[res.Rcode], res.Err)
	}
	if !l.otherOK.Load() {
		t.Fatal("the other question was not answered meanwhile: the test shows nothing")
	}
	var asked int
	for _, q := range f.queriesTo(ipEx) {
		if strings.HasPrefix(q, "lost.example.com. ") {
			asked++
		}
	}
	if asked != 2 {
		t.Fatalf("lost.example.com. asked %d times of its server, want 2", asked)
	}
	if stats.RTOTimeouts.Load() != 1 {
		t.Fatalf("RTO timeouts %d, want 1", stats.RTOTimeouts.Load())
	}
}
