package server

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sovdns/sovdns/resolver"
)

// blackhole is a loopback UDP server that reads every query and answers
// none, remembering the names asked.
type blackhole struct {
	conn *net.UDPConn
	mu   sync.Mutex
	seen map[string]bool
}

func startBlackhole(t *testing.T) *blackhole {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(loopback0))
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{conn: c, seen: map[string]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:n]) == nil && len(m.Question) == 1 {
				b.mu.Lock()
				b.seen[strings.ToLower(m.Question[0].Name)] = true
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return b
}

func (b *blackhole) asked(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen[name]
}

func (b *blackhole) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.seen)
}

// TestTCPRecursionBounded: recursive questions over TCP count against
// MaxInFlight as UDP ones do. With the upstream silent, MaxInFlight
// questions wait on it; the others get SERVFAIL (EDE 0, the bound named)
// without a resolution, and the goroutines stay within the connections
// plus a few per resolution under way.
func TestTCPRecursionBounded(t *testing.T) {
	const (
		maxInFlight = 4
		conns       = 60
	)
	up := startBlackhole(t)
	upAddr := up.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	hints, err := resolver.ParseHints(strings.NewReader(". NS a.root.test.\na.root.test. A 127.0.0.1\n"), "hints")
	if err != nil {
		t.Fatal(err)
	}
	rec := resolver.New(resolver.Config{RootHints: hints, UpstreamPort: upAddr.Port(), QueryLoopback: true,
		QueryTimeout: 30 * time.Second, ResolutionTimeout: time.Minute, QNameMinimisation: resolver.QMinOff,
		Island: resolver.IslandConfig{Disabled: true}},
		resolver.NewNetExchanger(resolver.ExchangeConfig{}), resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20}), nil, nil)
	base := runtime.NumGoroutine()
	s := startServer(t, Config{Resolver: rec, MaxInFlight: maxInFlight, TCPMaxPerClient: 2 * conns,
		RecursionAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	listening := runtime.NumGoroutine() - base

	cs := make([]*dns.Conn, conns)
	for i := range cs {
		c, err := dns.Dial("tcp", s.tcp)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs[i] = c
		m := query(fmt.Sprintf("n%d.example.", i), dns.TypeA)
		m.RecursionDesired = true
		m.SetEdns0(1232, false)
		if err := c.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	busy := s.m.RecursionBusy.WithLabelValues("tcp")
	waitUntil(t, func() bool {
		return up.count() == maxInFlight && int(testutil.ToFloat64(busy)) == conns-maxInFlight
	})
	// The goroutines: the listeners', one per connection, and a few per
	// resolution under way; none per question refused.
	if got, limit := runtime.NumGoroutine()-base, listening+conns+3*maxInFlight+8; got > limit {
		t.Errorf("%d goroutines for %d connections, want at most %d", got, conns, limit)
	}
	refused := 0
	for i, c := range cs {
		name := fmt.Sprintf("n%d.example.", i)
		if up.asked(name) {
			continue // waiting on the silent upstream
		}
		r, err := c.ReadMsg()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Rcode != dns.RcodeServerFailure || !r.RecursionAvailable {
			t.Fatalf("%s: rcode %s RA %v, want SERVFAIL with RA", name, dns.RcodeToString[r.Rcode], r.RecursionAvailable)
		}
		var ede *dns.EDNS0_EDE
		if opt := r.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				if e, ok := o.(*dns.EDNS0_EDE); ok {
					ede = e
				}
			}
		}
		if ede == nil || ede.InfoCode != dns.ExtendedErrorCodeOther || !strings.Contains(ede.ExtraText, "max_in_flight") {
			t.Fatalf("%s: EDE %v, want code 0 naming the bound", name, ede)
		}
		refused++
	}
	if refused != conns-maxInFlight {
		t.Errorf("%d questions refused, want %d", refused, conns-maxInFlight)
	}
	if n := len(s.inFlight); n != maxInFlight {
		t.Errorf("%d resolution slots taken, want %d", n, maxInFlight)
	}
}

// TestBusyServesStale: a question that finds every resolution slot taken
// is answered from the resolver's stale entries when it has them, over
// UDP and TCP alike.
func TestBusyServesStale(t *testing.T) {
	a, _ := dns.NewRR("www.example.com. 30 IN A 192.0.2.1")
	rec := &staleOnly{res: resolver.Result{Answer: []dns.RR{a}, Stale: true, StaleReason: resolver.StaleReasonBusy}}
	s := startServer(t, Config{Resolver: rec, MaxInFlight: 1,
		RecursionAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	s.inFlight <- struct{}{} // the one slot, taken
	defer func() { <-s.inFlight }()
	for _, transport := range []string{"udp", "tcp"} {
		addr := s.udp
		if transport == "tcp" {
			addr = s.tcp
		}
		m := query("www.example.com.", dns.TypeA)
		m.RecursionDesired = true
		m.SetEdns0(1232, false)
		r := exchange(t, transport, addr, m)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("%s: rcode %s, %d answers; want the stale answer", transport, dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		var stale bool
		for _, o := range r.IsEdns0().Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok && e.InfoCode == dns.ExtendedErrorCodeStaleAnswer {
				stale = true
			}
		}
		if !stale {
			t.Errorf("%s: no Stale Answer EDE", transport)
		}
	}
	if rec.resolved.Load() {
		t.Error("a question was resolved although no slot was free")
	}
}

// staleOnly is a Recursor whose cache holds only a stale answer.
type staleOnly struct {
	res      resolver.Result
	resolved atomic.Bool
}

func (s *staleOnly) ResolveMiss(context.Context, string, uint16, resolver.Miss) resolver.Result {
	s.resolved.Store(true)
	return resolver.Result{Rcode: dns.RcodeServerFailure}
}
func (s *staleOnly) Lookup(string, uint16) (resolver.Result, resolver.Miss, bool) {
	return resolver.Result{}, resolver.Miss{}, false
}
func (s *staleOnly) Stale(string, uint16) (resolver.Result, bool) { return s.res, true }
