package resolver

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// udpSocket is the socket of one upstream query over UDP, made with the
// system calls the exchange needs and no more: socket (non-blocking),
// connect to the server (which draws the source port), registration with the
// exchanger's poller (upstreamPoller); then a write and the reads. The
// addresses are passed to the kernel from the stack and the datagram read
// without its source (the socket is connected). Through io_uring the
// socket is made ahead, and registered, connected and written to in one
// batch as its query goes (ringLanes.start).
//
// One goroutine reads at a time; Close may come from any goroutine, and
// then wakes a read under way, which closes the socket when it returns,
// so that its descriptor is never closed (and given to another socket)
// under a system call.
type udpSocket struct {
	// fd is the socket's descriptor, -1 until it is made.
	fd     int
	p      *upstreamPoller
	server netip.AddrPort
	// slot and gen name the socket in its poller's events, when it has
	// a slot (gen 0: none; a ring lane's socket's events name its
	// descriptor instead).
	slot int32
	gen  uint32
	// ready holds a token when the poller has seen a datagram come (the
	// registration is then used up), or Close was called.
	ready chan struct{}

	// closed: Close was called; reading: a read is under way, which
	// closes the socket. Both change under mu; the read looks at closed
	// without it.
	mu      sync.Mutex
	closed  atomic.Bool
	reading bool

	// The reader's own state:
	// armed: the registration waits for a datagram (not used up).
	armed bool
	// edge: the socket is registered for good (a ring lane's: see
	// edgeEvent), so its registration is never used up.
	edge bool
	// keep: a ring lane registered and connected the socket, which it
	// takes back when the socket is released.
	keep bool
	// query is sent by the next read.
	query []byte
	// deadline is when reads give up; expired, that it has passed.
	deadline time.Time
	expired  bool
	// ctx, when set by watch, is looked at every cancelCheck until
	// deadline: its end ends the read.
	ctx context.Context
	// from, set by watch, is a reading of the clock taken as the query
	// went: the first wait's timer counts from it instead of reading the
	// clock again (zero: it reads it).
	from time.Time
	// The buffer a waiting reader offers the poller (ufill.go), the
	// state of the offer, and the result of the poller's read.
	rbuf   []byte
	rstate atomic.Int32
	rres   int32
	// A query gathered into a lane's batch (ringLanes.start): its bytes,
	// the state and error of its send (sent), and what the batch's
	// entries point to.
	sq     []byte
	sstate atomic.Int32
	serr   error
	ssa    syscall.RawSockaddrInet6
	sev    syscall.EpollEvent
}

// cancelCheck is how often a watched read looks at its context. A
// stopping server waits that much longer for a query to a dead server;
// a query whose answer comes sooner never looks.
const cancelCheck = 200 * time.Millisecond

// watch sets the read deadline to final (none if zero), and has read
// look at ctx every cancelCheck until then, ending when ctx ends; a nil
// ctx, no looking. now, if not zero, is the time the query goes: see from.
func (s *udpSocket) watch(ctx context.Context, final, now time.Time) {
	s.ctx, s.from = ctx, now
	s.SetReadDeadline(final)
}

// open returns a socket for a query to server: through p's rings, one
// that is made and connected when its query is sent (see ringLanes),
// else one connected now (openUDP).
func (p *upstreamPoller) open(server netip.AddrPort) (*udpSocket, error) {
	if p.ring == nil {
		return openUDP(p, server)
	}
	return p.socket(server), nil
}

// openUDP returns a socket connected to server, from a port the kernel
// draws, registered with p.
func openUDP(p *upstreamPoller, server netip.AddrPort) (*udpSocket, error) {
	s := p.socket(server)
	if err := s.connect(); err != nil {
		s.release()
		return nil, err
	}
	return s, nil
}

// socket returns a socket for server, not made yet.
func (p *upstreamPoller) socket(server netip.AddrPort) *udpSocket {
	server = netip.AddrPortFrom(server.Addr().Unmap(), server.Port())
	return &udpSocket{fd: -1, p: p, ready: p.ready(), server: server}
}

// connect makes s's socket, connects it to its server and registers it
// with its poller under a slot of its own, with a system call each.
func (s *udpSocket) connect() error {
	s.p.reserve(s)
	family := syscall.AF_INET
	if !s.server.Addr().Is4() {
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, sockType, syscall.IPPROTO_UDP)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	s.fd = fd
	if err := connectTo(fd, s.server); err != nil {
		return os.NewSyscallError("connect", err)
	}
	if err := s.p.ctl(syscall.EPOLL_CTL_ADD, s); err != nil {
		return err
	}
	s.armed = true
	return nil
}

// connectTo connects fd to ap, the socket address built on the stack:
// syscall.Connect takes it as an interface, which allocates. It does not
// block on a UDP socket.
func connectTo(fd int, ap netip.AddrPort) error {
	var sa syscall.RawSockaddrInet6
	n := putSockaddr(&sa, ap)
	if e := rawConnect(fd, unsafe.Pointer(&sa), n); e != 0 {
		return e
	}
	return nil
}

// zoneID returns the interface index of a scoped IPv6 address, 0 if none.
func zoneID(a netip.Addr) uint32 {
	z := a.Zone()
	if z == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(z); err == nil {
		return uint32(ifi.Index)
	}
	n, _ := strconv.ParseUint(z, 10, 32)
	return uint32(n)
}

// Close closes the socket; a read under way returns os.ErrClosed, and
// closes it on its way out.
func (s *udpSocket) Close() error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return nil
	}
	s.closed.Store(true)
	reading := s.reading
	s.mu.Unlock()
	if reading {
		s.signal()
		return nil
	}
	s.release()
	return nil
}

// release closes the descriptor, once no read uses it: a raw system call,
// as the socket's others (see closeFD).
func (s *udpSocket) release() {
	if s.edge {
		s.p.bind(s.fd, nil)
	} else if s.gen != 0 {
		s.p.remove(s)
	}
	switch {
	case s.fd < 0:
	case s.p.ring != nil:
		s.p.ring.release(s.fd, s.keep, s.server)
	default:
		closeFD(s.fd)
	}
	s.fd = -1
	s.p.readies.Put(s.ready)
}

// signal wakes the read, if one waits, or the next one.
func (s *udpSocket) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// SetReadDeadline sets when reads give up, with os.ErrDeadlineExceeded.
func (s *udpSocket) SetReadDeadline(t time.Time) error {
	s.deadline, s.expired = t, false
	return nil
}

// send has the next read send wire first.
func (s *udpSocket) send(wire []byte) { s.query = wire }

// read waits for the next datagram and reads it into buf, returning its
// length and whether it was longer than buf (trunc: the rest is lost).
// After the deadline it still takes a datagram already waiting in the
// socket, one per call and without waiting, as the goroutine may have
// waited for a CPU longer than the answer took to come: it returns it
// (n > 0) with os.ErrDeadlineExceeded, and the caller bounds how many it
// takes.
func (s *udpSocket) read(buf []byte) (n int, trunc bool, err error) {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return 0, false, os.ErrClosed
	}
	s.reading = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.reading = false
		closed := s.closed.Load()
		s.mu.Unlock()
		if closed {
			s.release()
		}
	}()
	// Right after the query is sent, its answer cannot be there yet: the
	// read waits first (the registration reports a datagram that came
	// before the wait).
	fresh := false
	if q := s.query; q != nil {
		s.query = nil
		if err := s.sendFirst(q); err != nil {
			return 0, false, err
		}
		fresh = true
	} else if s.fd < 0 {
		return 0, false, errNotSent
	}
	for {
		if !fresh {
			n, trunc, err := s.recv(buf)
			switch {
			case err == nil && s.expired:
				return n, trunc, os.ErrDeadlineExceeded
			case err == nil:
				return n, trunc, nil
			case err != syscall.EAGAIN:
				return 0, false, os.NewSyscallError("recvfrom", err)
			case s.expired:
				return 0, false, os.ErrDeadlineExceeded
			}
		}
		fresh = false
		// Close, while the read goes on, leaves a token that ends the
		// wait at once.
		offered := s.offer(buf)
		look, err := s.wait()
		var got bool
		var r int32
		if offered {
			got, r = s.withdraw()
		}
		if got && r == fillBroken {
			return 0, false, errFillBroken // the buffer is lost
		}
		if serr := s.sent(); serr != nil {
			return 0, false, serr
		}
		if err != nil {
			return 0, false, err
		}
		if s.closed.Load() {
			return 0, false, os.ErrClosed
		}
		if got {
			n, trunc, again, err := s.filled(r, buf)
			if !again {
				return n, trunc, err
			}
		}
		if look {
			if err := s.ctx.Err(); err != nil {
				return 0, false, err
			}
		}
	}
}

// sendFirst sends q: on the connected socket, or, for one not yet made,
// through a ring lane that makes, connects and registers it in the same
// batch (or with system calls where the lane cannot).
func (s *udpSocket) sendFirst(q []byte) error {
	if s.fd < 0 {
		if ok, err := s.p.ring.start(s.p, s, q); ok {
			return err
		}
		if err := s.connect(); err != nil {
			return err
		}
	}
	if err := write(uintptr(s.fd), q); err != nil {
		return os.NewSyscallError("write", err)
	}
	return nil
}

// wait waits for a datagram, Close, the deadline (then s.expired) or, for
// a watched read, the next look at its context (look).
func (s *udpSocket) wait() (look bool, err error) {
	if !s.armed {
		if err := s.p.arm(s); err != nil {
			return false, err
		}
		s.armed = true
	}
	until := s.deadline
	var now time.Time
	if s.ctx != nil || !until.IsZero() {
		now, s.from = s.from, time.Time{}
		if now.IsZero() {
			now = time.Now()
		}
	}
	if s.ctx != nil {
		if next := now.Add(cancelCheck); until.IsZero() || next.Before(until) {
			until, look = next, true
		}
	}
	if until.IsZero() {
		<-s.ready
		s.armed = s.edge
		return false, nil
	}
	d := until.Sub(now)
	if d <= 0 {
		s.expired = !look
		return look, nil
	}
	t := s.p.timers.get(d)
	defer s.p.timers.put(t)
	select {
	case <-s.ready:
		s.armed = s.edge
		return false, nil
	case <-t.C:
		s.expired = !look
		return look, nil
	}
}

// recv reads the datagram waiting in the socket, if any, into buf,
// without waiting. MSG_TRUNC has the kernel return the datagram's whole
// length, so that one longer than the buffer is known as such.
func (s *udpSocket) recv(buf []byte) (n int, trunc bool, err error) {
	if len(buf) == 0 {
		return 0, false, syscall.EINVAL
	}
	for {
		r, e := rawRecv(s.fd, buf, syscall.MSG_DONTWAIT|syscall.MSG_TRUNC)
		switch e {
		case 0:
			return min(int(r), len(buf)), int(r) > len(buf), nil
		case syscall.EINTR:
			continue
		default:
			return 0, false, e
		}
	}
}

// closeFD closes a socket's descriptor, with a raw system call: closing a
// UDP socket does not block, and a system call the runtime is told of
// wakes its monitor thread whenever that sleeps, which it does each time
// the resolver goes idle (see internal/server's udpSys).
func closeFD(fd int) {
	syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0)
}

// write sends b on the connected socket fd; it does not block.
func write(fd uintptr, b []byte) error {
	for {
		_, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return e
		}
	}
}
