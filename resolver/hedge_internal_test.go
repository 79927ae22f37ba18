package resolver

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/testaddr"
)

// delayedServer is an authoritative server on a loopback address of its
// own that answers every A question of its zone with one record, after
// the delay its function gives for the name (negative: never).
type delayedServer struct {
	conn  *net.UDPConn
	mu    sync.Mutex
	asked map[string]int
}

func startDelayed(t *testing.T, delay func(name string) time.Duration) *delayedServer {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(testaddr.IP(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	s := &delayedServer{conn: conn, asked: map[string]int{}}
	var wg sync.WaitGroup
	t.Cleanup(func() { conn.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, src, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil || len(q.Question) != 1 {
				continue
			}
			name := strings.ToLower(q.Question[0].Name)
			s.mu.Lock()
			s.asked[name]++
			s.mu.Unlock()
			d := delay(name)
			if d < 0 {
				continue
			}
			r := new(dns.Msg)
			r.SetReply(q)
			r.Authoritative = true
			r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 7)}}
			wire, err := r.Pack()
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(d) // the server's own slowness, not a wait of the test
				conn.WriteToUDPAddrPort(wire, src)
			}()
		}
	}()
	return s
}

func (s *delayedServer) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (s *delayedServer) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked[name]
}

// Parallel tries: when the fastest server of a zone does not answer
// within its RTO, the next one is asked, and the first server's answer,
// coming later, is still taken: it is not asked again, and the question
// does not wait for the second server's timeout.
func TestLateAnswerTaken(t *testing.T) {
	const slowName = "late.slow.example."
	fast := startDelayed(t, func(name string) time.Duration {
		if name == slowName {
			return 150 * time.Millisecond // beyond its RTO, 50 ms once primed
		}
		return 0
	})
	silent := startDelayed(t, func(string) time.Duration { return -1 })
	stats := &Stats{}
	r := New(Config{
		Stubs:             map[string][]netip.AddrPort{"slow.example.": {fast.addr(), silent.addr()}},
		RootHints:         []dns.RR{},
		QueryTimeout:      3 * time.Second,
		ResolutionTimeout: 10 * time.Second,
		QNameMinimisation: QMinOff,
		Island:            IslandConfig{Disabled: true},
	}, NewNetExchanger(ExchangeConfig{}), NewCache(CacheConfig{MaxBytes: 1 << 20}), nil, stats)
	defer r.Close()
	ctx := context.Background()
	// The fast server answers a few names at once: it ranks first, its
	// RTO at the floor; the silent one, asked first by chance, falls back.
	for _, name := range []string{"p1.slow.example.", "p2.slow.example.", "p3.slow.example.", "p4.slow.example."} {
		if res := r.Resolve(ctx, name, dns.TypeA); res.Rcode != dns.RcodeSuccess {
			t.Fatalf("%s: %s %v", name, dns.RcodeToString[res.Rcode], res.Err)
		}
	}
	if rto, _ := r.infra.timeout(fast.addr()); rto != minRTO {
		t.Fatalf("the fast server's RTO is %v after its answers, want %v: the test shows nothing", rto, minRTO)
	}
	res := r.Resolve(ctx, slowName, dns.TypeA)
	if res.Rcode != dns.RcodeSuccess || len(res.Answer) != 1 {
		t.Fatalf("%s: %s %v %v", slowName, dns.RcodeToString[res.Rcode], res.Answer, res.Err)
	}
	if n := silent.count(slowName); n != 1 {
		t.Errorf("the second server was asked %d times, want once (after the first's RTO)", n)
	}
	if n := fast.count(slowName); n != 1 {
		t.Errorf("the first server was asked %d times, want once: its late answer was not taken", n)
	}
	if n := stats.LateAnswers.Load(); n != 1 {
		t.Errorf("late answers %d, want 1", n)
	}
	if n := stats.RTOTimeouts.Load(); n < 1 {
		t.Errorf("RTO timeouts %d: the first server's RTO did not pass", n)
	}
}
