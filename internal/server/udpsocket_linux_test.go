//go:build linux

package server

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/testaddr"
	"github.com/sovdns/sovdns/resolver"
)

// TestUDPSocketSendTo: a worker's answer goes out through the raw sendto
// to the question's source, from the listener's address, on IPv4 and IPv6
// sockets, and without an allocation.
func TestUDPSocketSendTo(t *testing.T) {
	for _, tc := range []struct {
		name string
		ip   netip.Addr
		v6   bool
	}{
		{"ipv4", testaddr.IP(), false},
		{"ipv6", netip.IPv6Loopback(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			listen := func() *net.UDPConn {
				c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tc.ip, 0)))
				if err != nil {
					t.Skipf("no %s loopback: %v", tc.name, err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			srv, client := listen(), listen()
			sock := newUDPSocket(srv)
			if sock.sys.rc == nil || sock.sys.v6 != tc.v6 {
				t.Fatalf("socket seen as raw %v, IPv6 %v; want raw, IPv6 %v", sock.sys.rc != nil, sock.sys.v6, tc.v6)
			}
			j := &udpResolution{conn: sock, dst: client.LocalAddr().(*net.UDPAddr).AddrPort()}
			if err := j.sendTo([]byte("answer")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := client.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}
			if string(buf[:n]) != "answer" || from.Port() != srv.LocalAddr().(*net.UDPAddr).AddrPort().Port() {
				t.Fatalf("read %q from %v, want %q from %v", buf[:n], from, "answer", srv.LocalAddr())
			}
			answer := []byte("answer")
			allocs := testing.AllocsPerRun(100, func() {
				if err := j.sendTo(answer); err != nil {
					t.Fatal(err)
				}
				if _, _, err := client.ReadFromUDPAddrPort(buf); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > 0 {
				t.Errorf("%.1f allocations a send and read, want none", allocs)
			}
		})
	}
}

// TestUDPSocketSendToFallsBack: a destination the raw sendto does not
// take (IPv6 on an IPv4 socket) is refused with an error, not sent nor
// dropped silently.
func TestUDPSocketSendToFallsBack(t *testing.T) {
	srv, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(testaddr.IP(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	j := &udpResolution{conn: newUDPSocket(srv), dst: netip.AddrPortFrom(netip.IPv6Loopback(), 53)}
	if err := j.sendTo([]byte("answer")); err == nil {
		t.Fatal("an IPv6 destination from an IPv4 socket: no error")
	}
}

// gate is a Recursor whose resolutions all wait until it opens, then
// answer each name with an A record: their answers are ready together.
type gate struct {
	open    chan struct{}
	waiting atomic.Int64
}

func (g *gate) Lookup(string, uint16) (resolver.Result, resolver.Miss, bool) {
	return resolver.Result{}, resolver.Miss{}, false
}

func (g *gate) ResolveMiss(ctx context.Context, name string, _ uint16, _ resolver.Miss) resolver.Result {
	g.waiting.Add(1)
	select {
	case <-g.open:
	case <-ctx.Done():
		return resolver.Result{Rcode: dns.RcodeServerFailure, Err: ctx.Err()}
	}
	a, _ := dns.NewRR(name + " 60 IN A 192.0.2.1")
	return resolver.Result{Answer: []dns.RR{a}}
}

// TestUDPAnswersBatched: the answers of resolutions that end together go
// out through the socket's answers (udpAnswers), in sendmmsg batches,
// each to its own client, whole: as many sent as there were questions,
// each client's its own.
func TestUDPAnswersBatched(t *testing.T) {
	const n = 96
	g := &gate{open: make(chan struct{})}
	s := startServer(t, Config{Resolver: g, MaxInFlight: 2 * n,
		RecursionAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	clients := make([]*net.UDPConn, n)
	ids := make([]uint16, n)
	for i := range clients {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(testaddr.IP(), 0)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		clients[i] = c
		m := query(fmt.Sprintf("n%d.example.", i), dns.TypeA)
		m.RecursionDesired = true
		ids[i] = m.Id
		wire, _ := m.Pack()
		if _, err := c.WriteToUDPAddrPort(wire, netip.MustParseAddrPort(s.udp)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return g.waiting.Load() == n })
	close(g.open)
	buf := make([]byte, 512)
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:k]); err != nil || r.Id != ids[i] || len(r.Answer) != 1 ||
			r.Answer[0].Header().Name != fmt.Sprintf("n%d.example.", i) {
			t.Fatalf("client %d: %v, %v; want its own answer", i, r, err)
		}
	}
	// The counts follow the sends.
	waitUntil(t, func() bool { return s.answersBatched.Load() >= n })
	batches, answers := s.answerBatches.Load(), s.answersBatched.Load()
	t.Logf("%d answers in %d batches", answers, batches)
	if answers != n || batches == 0 || batches > n {
		t.Fatalf("%d answers in %d batches, want the %d answers", answers, batches, n)
	}
}
