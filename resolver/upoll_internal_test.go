package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/testaddr"
)

// pollerPair returns a poller's socket connected to a server socket of
// the test's own, and the socket's address as the server sees it.
func pollerPair(t *testing.T) (*upstreamPoller, *udpSocket, *net.UDPConn, netip.AddrPort) {
	t.Helper()
	srv, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(testaddr.IP(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	p, err := newUpstreamPoller(true, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	s, err := openUDP(p, srv.LocalAddr().(*net.UDPAddr).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	sa, err := syscall.Getsockname(s.fd)
	if err != nil {
		t.Fatal(err)
	}
	a := sa.(*syscall.SockaddrInet4)
	return p, s, srv, netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
}

type readResult struct {
	n   int
	err error
}

// waitLooks waits until a watched read has looked at ctx n times: it
// waits in the poller, past its first receive.
func waitLooks(t *testing.T, ctx *lookCounter, n int32, out chan readResult) {
	t.Helper()
	for ctx.looks.Load() < n {
		select {
		case r := <-out:
			t.Fatalf("the read ended before its looks: %d bytes, %v", r.n, r.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// A read that took the datagram its registration reported registers
// again: a datagram that comes while the next read waits wakes it.
func TestUDPSocketWaitsAgain(t *testing.T) {
	_, s, srv, local := pollerPair(t)
	if _, err := srv.WriteToUDPAddrPort([]byte("first"), local); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	s.watch(nil, time.Now().Add(time.Minute), time.Time{})
	if n, _, err := s.read(buf); err != nil || string(buf[:n]) != "first" {
		t.Fatalf("read %q, %v; want the first datagram", buf[:n], err)
	}

	ctx := &lookCounter{Context: context.Background()}
	s.watch(ctx, time.Now().Add(time.Minute), time.Time{})
	out := make(chan readResult, 1)
	go func() {
		n, _, err := s.read(buf)
		out <- readResult{n, err}
	}()
	waitLooks(t, ctx, 1, out)
	if _, err := srv.WriteToUDPAddrPort([]byte("second"), local); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-out:
		if r.err != nil || string(buf[:r.n]) != "second" {
			t.Fatalf("read %q, %v; want the second datagram", buf[:r.n], r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second datagram did not wake the read")
	}
}

// Close from another goroutine ends a read that waits, long before its
// deadline; the read then closes the socket, which leaves the poller.
func TestUDPSocketCloseEndsRead(t *testing.T) {
	for _, watched := range []bool{false, true} {
		t.Run(map[bool]string{false: "no deadline", true: "watched"}[watched], func(t *testing.T) {
			p, s, _, _ := pollerPair(t)
			out := make(chan readResult, 1)
			ctx := &lookCounter{Context: context.Background()}
			if watched {
				s.watch(ctx, time.Now().Add(time.Hour), time.Time{})
			}
			go func() {
				n, _, err := s.read(make([]byte, 512))
				out <- readResult{n, err}
			}()
			if watched {
				waitLooks(t, ctx, 1, out)
			}
			s.Close()
			select {
			case r := <-out:
				if !errors.Is(r.err, os.ErrClosed) {
					t.Fatalf("read ended with %d bytes, %v; want os.ErrClosed", r.n, r.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Close did not end the read")
			}
			if n := p.registered(); n != 0 {
				t.Fatalf("%d sockets registered after Close, want 0", n)
			}
			if _, _, err := s.read(make([]byte, 512)); !errors.Is(err, os.ErrClosed) {
				t.Fatalf("a read after Close: %v, want os.ErrClosed", err)
			}
		})
	}
}

// An event for a socket gone does not wake the socket that took its slot.
func TestUpstreamPollerStaleEvent(t *testing.T) {
	p, a, srv, _ := pollerPair(t)
	slot, gen := a.slot, a.gen
	a.Close()
	b, err := openUDP(p, srv.LocalAddr().(*net.UDPAddr).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.slot != slot || b.gen == gen {
		t.Fatalf("the new socket has slot %d, registration %d; want slot %d again, not registration %d", b.slot, b.gen, slot, gen)
	}
	p.wake(slot, gen)
	select {
	case <-b.ready:
		t.Fatal("an event for the closed socket woke its slot's new one")
	default:
	}
	p.wake(b.slot, b.gen)
	select {
	case <-b.ready:
	default:
		t.Fatal("an event for the socket did not wake it")
	}
}

// The poller's goroutine ends when the poller is closed, and the
// exchanger closes its poller once unreachable.
func TestUpstreamPollerCloses(t *testing.T) {
	p, s, _, _ := pollerPair(t)
	s.Close()
	p.Close()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the poller's goroutine went on after Close")
	}

	x := NewNetExchanger(ExchangeConfig{})
	p, err := x.poller()
	if err != nil {
		t.Fatal(err)
	}
	x = nil
	for deadline := time.Now().Add(10 * time.Second); ; {
		runtime.GC()
		select {
		case <-p.done:
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the poller of an unreachable exchanger was not closed")
		}
	}
}

// Many queries at once, each on its own socket, all get their answers,
// and leave the poller empty. At most 64 wait at once, so that the test
// server's receive buffer holds them all.
func TestExchangeManyAtOnce(t *testing.T) {
	s := startUDP(t, func(q *dns.Msg) [][]byte { return [][]byte{answer(t, q, nil)} })
	exchangeMany(t, NewNetExchanger(ExchangeConfig{}), 500, 64, func(int) netip.AddrPort { return s.addr() })
}

// exchangeMany runs n exchanges through x, width at once, the i-th with
// server(i), fails the test unless each gets an answer with a record,
// and then unless the poller is empty.
func exchangeMany(t *testing.T, x *NetExchanger, n, width int, server func(i int) netip.AddrPort) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	slots := make(chan struct{}, width)
	for i := range n {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r, _, err := x.Exchange(ctx, query("www.example."), server(i), false)
			if err == nil && len(r.Answer) != 1 {
				err = errors.New("no answer record")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	p, _ := x.poller()
	if left := p.registered(); left != 0 {
		t.Fatalf("%d sockets registered after every exchange ended", left)
	}
}

// A query to a port where nothing listens fails at once: the kernel's
// port-unreachable error wakes the read (epoll reports errors whatever a
// socket is registered for) instead of leaving it to its deadline.
func TestExchangeRefusedFailsFast(t *testing.T) {
	// Port 1 of the test's own loopback address: nothing binds it.
	server := netip.AddrPortFrom(testaddr.IP(), 1)
	x := NewNetExchanger(ExchangeConfig{})
	out := make(chan error, 1)
	go func() {
		_, _, err := x.exchangeNoting(context.Background(), time.Now().Add(time.Minute), query("www.example."), server, false, &exchangeNote{})
		out <- err
	}()
	select {
	case err := <-out:
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("err %v, want ECONNREFUSED", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a refused query waited for its deadline")
	}
}
