package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

// udpSocket is the socket of one upstream query over UDP, made with the
// system calls the exchange needs and no more: socket (non-blocking), bind
// to the drawn source port, connect to the server; then a write and the
// reads, waited for through the runtime's poller. The net package's
// UDPConn adds four calls per query that this path has no use for (a
// socket option, getsockname, getpeername, and a read that finds nothing
// before the answer can have come); on a cache miss these were a tenth of
// the resolver's CPU. The addresses are passed to the kernel from the
// stack and the datagram read without its source (the socket is
// connected), so that a query allocates the socket's file and little else.
type udpSocket struct {
	f  *os.File
	rc syscall.RawConn
	// query is sent by the first read, once the socket waits for its
	// answer: a reply that came between a write and the read's start
	// could otherwise go unnoticed by the edge-triggered poller.
	query []byte
	// The read under way: the buffer it fills, what it got, and the
	// callback the poller runs, made once per socket.
	buf    []byte
	n      int
	trunc  bool
	ioErr  error
	readFn func(fd uintptr) bool
	// ctx, when set by watch, is looked at by read every cancelCheck
	// until final, the read deadline: its end ends the read.
	ctx   context.Context
	final time.Time
}

// cancelCheck is how often a watched read looks at its context. A
// stopping server waits that much longer for a query to a dead server;
// a query whose answer comes sooner never looks.
const cancelCheck = 200 * time.Millisecond

// watch sets the read deadline to final (none if zero), and has read
// look at ctx every cancelCheck until then, ending when ctx ends; a nil
// ctx, no looking.
func (s *udpSocket) watch(ctx context.Context, final time.Time) {
	s.ctx, s.final = ctx, final
	if ctx == nil {
		s.SetReadDeadline(final)
		return
	}
	s.SetReadDeadline(s.nextLook(time.Now()))
}

// nextLook returns when a watched read next looks at its context.
func (s *udpSocket) nextLook(now time.Time) time.Time {
	t := now.Add(cancelCheck)
	if !s.final.IsZero() && s.final.Before(t) {
		return s.final
	}
	return t
}

// openUDP returns a socket connected to server from the local port, 0 for
// the kernel's choice. An address in use is returned as EADDRINUSE, so
// that the caller draws another port.
func openUDP(server netip.AddrPort, port int) (*udpSocket, error) {
	a := server.Addr().Unmap()
	family := syscall.AF_INET
	if !a.Is4() {
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if port != 0 {
		if err := sockaddrCall(syscall.SYS_BIND, fd, netip.AddrPortFrom(unspecified(a), uint16(port))); err != nil {
			syscall.Close(fd)
			return nil, os.NewSyscallError("bind", err)
		}
	}
	if err := sockaddrCall(syscall.SYS_CONNECT, fd, netip.AddrPortFrom(a, server.Port())); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	f := os.NewFile(uintptr(fd), "udp") // non-blocking: polled
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &udpSocket{f: f, rc: rc}
	s.readFn = s.tryRead
	return s, nil
}

// unspecified returns the unspecified address of a's family.
func unspecified(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// sockaddrCall makes the system call trap (bind or connect) on fd with ap
// as the socket address, built on the stack: syscall.Bind and
// syscall.Connect take it as an interface, which allocates. Neither call
// blocks on a UDP socket.
func sockaddrCall(trap uintptr, fd int, ap netip.AddrPort) error {
	var e syscall.Errno
	port := ap.Port()
	if a := ap.Addr(); a.Is4() {
		sa := syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: a.As4()}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		_, _, e = syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	} else {
		sa := syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: a.As16(), Scope_id: zoneID(a)}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		_, _, e = syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	}
	if e != 0 {
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

// Close closes the socket; a read under way returns.
func (s *udpSocket) Close() error { return s.f.Close() }

// SetReadDeadline sets when reads give up, with os.ErrDeadlineExceeded.
func (s *udpSocket) SetReadDeadline(t time.Time) error { return s.f.SetReadDeadline(t) }

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
	s.buf, s.n, s.trunc, s.ioErr = buf, 0, false, nil
	defer func() { s.buf = nil }()
	for {
		err = s.rc.Read(s.readFn)
		if err == nil {
			if s.ioErr != nil {
				return 0, false, os.NewSyscallError("udp", s.ioErr)
			}
			return s.n, s.trunc, nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, false, err
		}
		if s.ctx == nil {
			break
		}
		now := time.Now()
		if !s.final.IsZero() && !now.Before(s.final) {
			break
		}
		if cerr := s.ctx.Err(); cerr != nil {
			return 0, false, cerr
		}
		// A look at the context, not the deadline: the read goes on
		// (it first takes what came meanwhile).
		s.SetReadDeadline(s.nextLook(now))
	}
	if q := s.query; q != nil {
		// The deadline passed before anything was sent: a datagram goes
		// out however late.
		s.query = nil
		var werr error
		if cerr := s.rc.Control(func(fd uintptr) { werr = write(fd, q) }); cerr == nil && werr != nil {
			return 0, false, os.NewSyscallError("write", werr)
		}
	}
	got := false
	if cerr := s.rc.Control(func(fd uintptr) { got = s.recv(fd) == nil }); cerr != nil || !got {
		return 0, false, err
	}
	return s.n, s.trunc, err
}

// tryRead is the poller's callback for read: it sends the query if not
// sent yet, else takes the datagram waiting, and says whether it is done
// (false: nothing yet, wait).
func (s *udpSocket) tryRead(fd uintptr) bool {
	if q := s.query; q != nil {
		s.query = nil
		s.ioErr = write(fd, q)
		return s.ioErr != nil
	}
	s.ioErr = s.recv(fd)
	return s.ioErr != syscall.EAGAIN
}

// recv reads the datagram waiting in the socket, if any, into s.buf,
// without waiting. MSG_TRUNC has the kernel return the datagram's whole
// length, so that one longer than the buffer is known as such.
func (s *udpSocket) recv(fd uintptr) error {
	if len(s.buf) == 0 {
		return syscall.EINVAL
	}
	for {
		r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&s.buf[0])), uintptr(len(s.buf)),
			syscall.MSG_DONTWAIT|syscall.MSG_TRUNC, 0, 0)
		switch e {
		case 0:
			s.n, s.trunc = min(int(r), len(s.buf)), int(r) > len(s.buf)
			return nil
		case syscall.EINTR:
			continue
		default:
			return e
		}
	}
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
