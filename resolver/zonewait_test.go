package resolver_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
)

// Two servers of dead.com. that never answer (no zone behind their
// addresses in fakeNet).
var (
	ipDeadZ1 = netip.MustParseAddr("192.0.2.60")
	ipDeadZ2 = netip.MustParseAddr("192.0.2.61")
)

// deadZoneNet is the test hierarchy with dead.com. delegated to two
// servers that never answer.
func deadZoneNet(t *testing.T) (*waitNet, []dns.RR) {
	f, hints := hierarchy(t)
	f.servers[ipCom] = zone.NewSet(mustZone(t, "com.", `@ SOA a.gtld h 1 2 3 4 900
@ NS a.gtld
a.gtld A 192.0.2.5
example NS ns.example
ns.example A 192.0.2.6
dead NS ns1.dead
dead NS ns2.dead
ns1.dead A 192.0.2.60
ns2.dead A 192.0.2.61
`))
	return &waitNet{fakeNet: f, watch: map[netip.Addr]bool{ipDeadZ1: true, ipDeadZ2: true}}, hints
}

// waitNet is a fakeNet that counts the queries waiting at once on the
// watched servers.
type waitNet struct {
	*fakeNet
	watch map[netip.Addr]bool

	mu            sync.Mutex
	waiting, most int
	sent          int
}

func (w *waitNet) Exchange(ctx context.Context, m *dns.Msg, s netip.AddrPort, tcp bool) (*dns.Msg, time.Duration, error) {
	if w.watch[s.Addr()] {
		w.mu.Lock()
		w.waiting++
		w.sent++
		w.most = max(w.most, w.waiting)
		w.mu.Unlock()
		defer func() {
			w.mu.Lock()
			w.waiting--
			w.mu.Unlock()
		}()
	}
	return w.fakeNet.Exchange(ctx, m, s, tcp)
}

func (w *waitNet) state() (waiting, most, sent int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.waiting, w.most, w.sent
}

// TestDeadZoneBounded: a flood of questions for names of a zone whose
// servers never answer holds at most MaxZoneInFlight of the server's
// resolution slots (modelled here as the server holds them: a question
// that finds none free is dropped); the others fail at once with No
// Reachable Authority, and the questions for a zone that answers are
// still answered.
func TestDeadZoneBounded(t *testing.T) {
	const (
		slots   = 10 // the server's bound on resolutions under way
		perZone = 4
		flood   = 40
	)
	w, hints := deadZoneNet(t)
	r := resolver.New(resolver.Config{RootHints: hints, QueryTimeout: time.Minute, ResolutionTimeout: 2 * time.Minute,
		MaxZoneInFlight: perZone, ZoneRateLimit: -1, Island: resolver.IslandConfig{Disabled: true}},
		w, resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20}), nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // ends the questions waiting on the dead zone

	inFlight := make(chan struct{}, slots)
	ask := func(name string) (resolver.Result, bool) {
		select {
		case inFlight <- struct{}{}:
		default:
			return resolver.Result{}, false // dropped: no slot
		}
		defer func() { <-inFlight }()
		return r.Resolve(ctx, name, dns.TypeA), true
	}
	// The delegations to example.com. and dead.com. are cached first.
	if res, _ := ask("www.example.com."); res.Rcode != dns.RcodeSuccess {
		t.Fatalf("www.example.com.: %s %v", dns.RcodeToString[res.Rcode], res.Err)
	}

	var mu sync.Mutex
	finished, busy := 0, 0
	floodOne := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, ok := ask(fmt.Sprintf("n%d.dead.com.", i))
			mu.Lock()
			defer mu.Unlock()
			if ctx.Err() != nil {
				return // released at the end
			}
			finished++
			if ok && errors.Is(res.Err, resolver.ErrZoneBusy) && errors.Is(res.Err, resolver.ErrNoReachableAuthority) {
				busy++
			}
		}()
	}
	for i := range flood {
		floodOne(i)
	}
	waitFor(t, "the flood to settle", func() bool {
		waiting, _, _ := w.state()
		mu.Lock()
		defer mu.Unlock()
		return waiting == perZone && finished == flood-perZone
	})
	if busy == 0 {
		t.Error("no question of the flood failed for the per-zone bound")
	}

	// The flood goes on (its questions fail at once for the bound, while
	// the waiting ones hold their slots); between them, uncached names of
	// the healthy zone are answered.
	answered := 0
	const healthy = 100
	for i := range healthy {
		for j := range 2 {
			res, ok := ask(fmt.Sprintf("n%d.dead.com.", flood+2*i+j))
			if !ok || !errors.Is(res.Err, resolver.ErrZoneBusy) {
				t.Fatalf("a question for the dead zone over the bound: taken %v, %v; want ErrZoneBusy at once", ok, res.Err)
			}
		}
		res, ok := ask(fmt.Sprintf("h%d.example.com.", i))
		if ok && res.Rcode == dns.RcodeNameError {
			answered++
		}
	}
	if answered*100 < healthy*95 {
		t.Errorf("%d of %d questions for the live zone answered during the flood, want at least 95%%", answered, healthy)
	}
	if _, most, _ := w.state(); most > perZone {
		t.Errorf("%d queries waited on the dead zone at once, want at most %d", most, perZone)
	}
}

// TestDeadZoneHeldDown: once every server of a zone is down, its
// questions fail at once without a query (No Reachable Authority), one
// with a stale answer gets it, and the other zones are answered.
func TestDeadZoneHeldDown(t *testing.T) {
	w, hints := deadZoneNet(t)
	clk := &stepClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20, StaleWindow: time.Hour, Now: clk.Now})
	r := resolver.New(resolver.Config{RootHints: hints, QueryTimeout: 5 * time.Millisecond, ResolutionTimeout: time.Second,
		Now: clk.Now, Island: resolver.IslandConfig{Disabled: true}}, w, cache, nil, nil)
	ctx := context.Background()
	// An answer from dead.com., cached and then expired.
	m := new(dns.Msg)
	m.SetQuestion("www.dead.com.", dns.TypeA)
	m.Response, m.Authoritative = true, true
	m.Answer = []dns.RR{mustRR(t, "www.dead.com. 60 IN A 198.51.100.99")}
	cache.Put(m)
	clk.Advance(2 * time.Minute)

	// Each question times out on both servers: five in a row and they
	// are down.
	for i := 0; ; i++ {
		res := r.Resolve(ctx, fmt.Sprintf("n%d.dead.com.", i), dns.TypeA)
		if !errors.Is(res.Err, resolver.ErrNoReachableAuthority) {
			t.Fatalf("n%d.dead.com.: %s %v, want no reachable authority", i, dns.RcodeToString[res.Rcode], res.Err)
		}
		if strings.Contains(res.Err.Error(), "server down") {
			break
		}
		if i > 10 {
			t.Fatal("the servers of dead.com. were never held down")
		}
	}
	_, _, before := w.state()
	for i := range 20 {
		res := r.Resolve(ctx, fmt.Sprintf("m%d.dead.com.", i), dns.TypeA)
		if res.Rcode != dns.RcodeServerFailure || !errors.Is(res.Err, resolver.ErrNoReachableAuthority) {
			t.Fatalf("m%d.dead.com.: %s %v, want SERVFAIL, no reachable authority", i, dns.RcodeToString[res.Rcode], res.Err)
		}
	}
	if res := r.Resolve(ctx, "www.dead.com.", dns.TypeA); !res.Stale || len(res.Answer) != 1 {
		t.Errorf("www.dead.com.: stale %v, %d answers (%s %v); want the stale answer", res.Stale, len(res.Answer), dns.RcodeToString[res.Rcode], res.Err)
	}
	if _, _, after := w.state(); after != before {
		t.Errorf("%d queries sent to the servers held down, want none", after-before)
	}
	if res := r.Resolve(ctx, "www.example.com.", dns.TypeA); res.Rcode != dns.RcodeSuccess {
		t.Errorf("www.example.com.: %s %v", dns.RcodeToString[res.Rcode], res.Err)
	}
}
