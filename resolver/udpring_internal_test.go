package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/sovdns/sovdns/internal/uring"
)

// ringPoller returns a poller that sends through io_uring, or skips
// where the kernel refuses it (the plain path is then the one tested).
func ringPoller(t *testing.T) *upstreamPoller {
	t.Helper()
	p, err := newUpstreamPoller(true, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if p.ring == nil {
		t.Skipf("no io_uring here: %v", p.ringErr)
	}
	return p
}

// inode returns the inode of the socket fd, 0 if fd is not open.
func inode(fd int) uint64 {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return 0
	}
	return st.Ino
}

// Queries over IPv4 and IPv6 in turn, many at once, through the rings
// and through system calls, all get their answers from the ports the
// kernel draws, and leave no socket registered.
func TestExchangeRingAndPlain(t *testing.T) {
	script := func(q *dns.Msg) [][]byte { return [][]byte{answer(t, q, nil)} }
	servers := []netip.AddrPort{startUDP(t, script).addr()}
	if v6, err := startUDPAt(t, netip.MustParseAddrPort("[::1]:0"), script); err == nil {
		servers = append(servers, v6.addr())
	} else {
		t.Logf("IPv4 only: %v", err)
	}
	for _, noRing := range []bool{false, true} {
		t.Run(map[bool]string{false: "io_uring", true: "system calls"}[noRing], func(t *testing.T) {
			x := NewNetExchanger(ExchangeConfig{NoRing: noRing})
			path, why := x.UDPPath()
			switch {
			case noRing && (path != "system calls" || why != nil):
				t.Fatalf("NoRing: path %q, %v", path, why)
			case !noRing && path != "io_uring":
				t.Skipf("no io_uring here: %v", why)
			}
			exchangeMany(t, x, 200, 32, func(i int) netip.AddrPort { return servers[i%len(servers)] })
		})
	}
}

// lanesRan returns a channel that holds a token once any of p's lanes
// has run a batch that took back or closed finished sockets.
func lanesRan(p *upstreamPoller) chan struct{} {
	c := make(chan struct{}, 1)
	for i := range p.ring.lanes {
		ln := &p.ring.lanes[i]
		ln.mu.Lock()
		ln.ran = func() {
			select {
			case c <- struct{}{}:
			default:
			}
		}
		ln.mu.Unlock()
	}
	return c
}

// waitLanes waits until cond holds, looking again after each batch of
// p's lanes that took back or closed sockets (ran, from lanesRan), and
// fails with msg after 10 s.
func waitLanes(t *testing.T, ran chan struct{}, cond func() bool, msg string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-ran:
		case <-timeout:
			t.Fatal(msg)
		}
	}
}

// idleOf returns the IPv4 sockets p's lanes keep.
func idleOf(p *upstreamPoller) []int {
	var fds []int
	for i := range p.ring.lanes {
		ln := &p.ring.lanes[i]
		ln.mu.Lock()
		fds = append(fds, ln.idle[0]...)
		ln.mu.Unlock()
	}
	return fds
}

// ringQuery sends a query on a socket through p's lanes and reads the
// first datagram that comes back; the socket is left open.
func ringQuery(t *testing.T, p *upstreamPoller, server netip.AddrPort) *udpSocket {
	t.Helper()
	sock, err := p.open(server)
	if err != nil {
		t.Fatal(err)
	}
	if sock.fd >= 0 {
		t.Fatalf("a socket through the rings has descriptor %d before its query", sock.fd)
	}
	q := query("www.example.")
	wire, _ := q.Pack()
	sock.send(wire)
	sock.watch(nil, time.Now().Add(10*time.Second), time.Time{})
	buf := make([]byte, 512)
	n, _, err := sock.read(buf)
	if err != nil {
		t.Fatal(err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil || r.Id != q.Id {
		t.Fatalf("read %d bytes (%v), not the answer", n, err)
	}
	return sock
}

// Through a lane, a socket is made, connected and registered as its
// query goes. Once closed, it is taken back within closeDelay, without
// another query: disconnected, it holds no port; the next query uses it
// again, from a port drawn afresh. The poller's Close closes the sockets
// kept and the spares.
func TestRingLaneSocketLife(t *testing.T) {
	p := ringPoller(t)
	// One lane, so that every query and release goes through it.
	(&ringLanes{lanes: p.ring.lanes[1:]}).close()
	p.ring.lanes = p.ring.lanes[:1]
	s := startUDP(t, func(q *dns.Msg) [][]byte { return [][]byte{answer(t, q, nil)} })
	sock := ringQuery(t, p, s.addr())
	fd, ino := sock.fd, inode(sock.fd)
	if ino == 0 {
		t.Fatalf("the socket's descriptor %d is not open after its answer", fd)
	}
	first := localAddr(t, sock).Port()
	ran := lanesRan(p)
	sock.Close()
	if p.registered() != 0 {
		t.Fatal("the closed socket is still registered")
	}
	waitLanes(t, ran, func() bool { return slices.Contains(idleOf(p), fd) }, "the socket was not taken back within 10 s of its Close")
	if inode(fd) != ino {
		t.Fatal("the socket kept is not the one closed")
	}
	if sa, err := syscall.Getsockname(fd); err != nil || sa.(*syscall.SockaddrInet4).Port != 0 {
		t.Fatalf("the socket kept is bound to %v (%v), want no port", sa, err)
	}
	if _, err := syscall.Getpeername(fd); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("the socket kept is still connected: %v", err)
	}

	ports := map[uint16]bool{first: true}
	for range 10 {
		again := ringQuery(t, p, s.addr())
		if again.fd != fd || inode(fd) != ino {
			t.Fatalf("the next query went on descriptor %d, not the socket kept (%d)", again.fd, fd)
		}
		ports[localAddr(t, again).Port()] = true
		again.Close()
		waitLanes(t, ran, func() bool { return slices.Contains(idleOf(p), fd) }, "the socket was not taken back again")
	}
	if len(ports) < 8 {
		t.Fatalf("11 queries on one socket came from %d ports, want a new one each time", len(ports))
	}

	var spares []int
	for i := range p.ring.lanes {
		if fd := p.ring.lanes[i].spare[0]; fd >= 0 {
			spares = append(spares, fd)
		}
	}
	open := map[int]uint64{fd: ino}
	for _, fd := range spares {
		open[fd] = inode(fd)
	}
	p.Close()
	for fd, ino := range open {
		if inode(fd) == ino {
			t.Fatalf("descriptor %d is still open after the poller's Close", fd)
		}
	}
}

// A socket with a datagram still waiting when its query ends (a second
// answer) is not kept: it is closed.
func TestRingLaneClosesWhatIsNotEmpty(t *testing.T) {
	p := ringPoller(t)
	s := startUDP(t, func(q *dns.Msg) [][]byte {
		a := answer(t, q, nil)
		return [][]byte{a, a}
	})
	sock := ringQuery(t, p, s.addr())
	fd, ino := sock.fd, inode(sock.fd)
	// The second answer waits in the socket: wait until it is there.
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, 10000)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n != 1 {
			t.Fatalf("the second answer did not come: %d, %v", n, err)
		}
		break
	}
	ran := lanesRan(p)
	sock.Close()
	waitLanes(t, ran, func() bool { return inode(fd) != ino }, "the socket with a datagram waiting was not closed")
	if slices.Contains(idleOf(p), fd) {
		t.Fatal("the socket with a datagram waiting was kept")
	}
}

// A query the lane cannot connect or send fails with the system call's
// error, and its socket leaves the poller; nothing goes on the wire.
func TestRingLaneErrors(t *testing.T) {
	p := ringPoller(t)
	s := startUDP(t, func(q *dns.Msg) [][]byte { return [][]byte{answer(t, q, nil)} })
	for _, tc := range []struct {
		name   string
		server netip.AddrPort
		size   int
		want   string
	}{
		// A link-local address needs an interface: connect refuses it.
		{"connect", netip.MustParseAddrPort("[fe80::1]:53"), 40, "connect"},
		// A datagram over 65,507 bytes cannot be sent.
		{"send", s.addr(), 70000, "write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock, err := p.open(tc.server)
			if err != nil {
				t.Fatal(err)
			}
			sock.send(make([]byte, tc.size))
			sock.watch(nil, time.Now().Add(10*time.Second), time.Time{})
			_, _, err = sock.read(make([]byte, 512))
			if errors.Is(err, syscall.EAFNOSUPPORT) {
				t.Skipf("no IPv6: %v", err)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("read: %v, want a %s error", err, tc.want)
			}
			if sock.fd < 0 {
				t.Fatal("the failed socket has no descriptor to close")
			}
			sock.Close()
			if n := p.registered(); n != 0 {
				t.Fatalf("%d sockets registered after the failed one's Close", n)
			}
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) != 0 {
		t.Fatalf("the server received %d queries, want none", len(s.seen))
	}
}

// With its lanes closed, a poller still sends, with system calls.
func TestRingLanesClosedFallBack(t *testing.T) {
	p := ringPoller(t)
	p.ring.close()
	s := startUDP(t, func(q *dns.Msg) [][]byte { return [][]byte{answer(t, q, nil)} })
	sock, err := p.open(s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	wire, _ := query("www.example.").Pack()
	sock.send(wire)
	sock.watch(context.Background(), time.Now().Add(10*time.Second), time.Time{})
	if _, _, err := sock.read(make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	if inode(sock.fd) == 0 {
		t.Fatal("the socket has no open descriptor")
	}
}

// An event for a descriptor registered for good wakes the socket bound
// to it now, and none while it is bound to none.
func TestUpstreamPollerBoundEvents(t *testing.T) {
	p, err := newUpstreamPoller(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a := &udpSocket{ready: p.ready()}
	b := &udpSocket{ready: p.ready()}
	const fd = 300
	ev := edgeEvent(fd)
	woken := func(s *udpSocket) bool {
		select {
		case <-s.ready:
			return true
		default:
			return false
		}
	}
	p.wake(ev.Fd, uint32(ev.Pad))
	p.bind(fd, a)
	p.wake(ev.Fd, uint32(ev.Pad))
	if !woken(a) {
		t.Fatal("the event did not wake the socket bound to its descriptor")
	}
	p.bind(fd, nil)
	p.wake(ev.Fd, uint32(ev.Pad))
	if woken(a) {
		t.Fatal("an event woke a socket no longer bound")
	}
	p.bind(fd, b)
	p.wake(ev.Fd, uint32(ev.Pad))
	if woken(a) || !woken(b) {
		t.Fatal("the event did not go to the socket bound now")
	}
}

// A lane that fails says so once, through ExchangeConfig.OnRingError,
// and its queries then go with system calls.
func TestRingLaneFailureReported(t *testing.T) {
	var got []error
	x := NewNetExchanger(ExchangeConfig{OnRingError: func(err error) { got = append(got, err) }})
	if path, why := x.UDPPath(); path != "io_uring" {
		t.Skipf("no io_uring here: %v", why)
	}
	p, _ := x.poller()
	for i := range p.ring.lanes {
		ln := &p.ring.lanes[i]
		ln.mu.Lock()
		ln.fail(fmt.Errorf("lane %d: %w", i, uring.ErrBroken))
		ln.mu.Unlock()
	}
	if len(got) != len(p.ring.lanes) || !errors.Is(got[0], uring.ErrBroken) {
		t.Fatalf("told of %v, want each of %d lanes' errors", got, len(p.ring.lanes))
	}
	s := startUDP(t, func(q *dns.Msg) [][]byte { return [][]byte{answer(t, q, nil)} })
	exchangeMany(t, x, 20, 4, func(int) netip.AddrPort { return s.addr() })
	if len(got) != len(p.ring.lanes) {
		t.Fatalf("told of %d failures after the queries, want %d", len(got), len(p.ring.lanes))
	}
	for i := range p.ring.lanes {
		if k := len(p.ring.lanes[i].idle[0]); k != 0 {
			t.Fatalf("a broken lane kept %d sockets", k)
		}
	}
}

// Queries started together share batches (ringLanes.start): each reader,
// the one that sent the batch or one that joined it, gets its own
// outcome, an answer or its query's error (connect, write); with the
// lanes closed, a query that joined a batch is sent with system calls
// by its reader.
func TestRingLanesGather(t *testing.T) {
	srv := startUDP(t, func(q *dns.Msg) [][]byte { return [][]byte{answer(t, q, nil)} })
	type query struct {
		server netip.AddrPort
		size   int
		want   string // "": the answer
	}
	good := query{srv.addr(), 0, ""}
	kinds := []query{good, good, good,
		{netip.MustParseAddrPort("[fe80::1]:53"), 40, "connect"}, // a link-local address needs an interface
		{srv.addr(), 70000, "write"},                             // over 65,507 bytes
	}
	run := func(t *testing.T, p *upstreamPoller, n int) {
		var wg sync.WaitGroup
		for i := range n {
			q := kinds[i%len(kinds)]
			wg.Go(func() {
				sock, err := p.open(q.server)
				if err != nil {
					t.Error(err)
					return
				}
				defer sock.Close()
				wire := make([]byte, q.size)
				m := dnsQuery(i)
				if q.size == 0 {
					wire, _ = m.Pack()
				}
				sock.send(wire)
				sock.watch(context.Background(), time.Now().Add(10*time.Second), time.Time{})
				buf := make([]byte, 512)
				n, _, err := sock.read(buf)
				switch {
				case errors.Is(err, syscall.EAFNOSUPPORT) && q.want == "connect":
				case q.want != "":
					if err == nil || !strings.Contains(err.Error(), q.want) {
						t.Errorf("query %d: %v, want a %s error", i, err, q.want)
					}
				case err != nil:
					t.Errorf("query %d: %v", i, err)
				default:
					r := new(dns.Msg)
					if err := r.Unpack(buf[:n]); err != nil || r.Id != m.Id {
						t.Errorf("query %d: read %d bytes that are not its answer (%v)", i, n, err)
					}
				}
			})
		}
		wg.Wait()
	}
	t.Run("lanes", func(t *testing.T) {
		p := ringPoller(t)
		for round := 0; ; round++ {
			run(t, p, 200)
			if b, q := p.ring.batches.Load(), p.ring.gathered.Load(); b < q || round == 20 {
				t.Logf("%d queries in %d batches", q, b)
				if b == q {
					t.Fatal("no batch held more than one query in 20 rounds")
				}
				break
			}
		}
	})
	t.Run("lanes closed", func(t *testing.T) {
		p := ringPoller(t)
		p.ring.close()
		run(t, p, 100)
		if b, q := p.ring.batches.Load(), p.ring.gathered.Load(); b == q {
			t.Logf("%d queries in %d batches: none joined another's", q, b)
		}
	})
}

// dnsQuery is the query for name i.
func dnsQuery(i int) *dns.Msg {
	return query(fmt.Sprintf("n%d.example.", i))
}
