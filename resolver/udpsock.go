package resolver

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"
)

// udpSocket is the socket of one upstream query over UDP, made with the
// system calls the exchange needs and no more: socket (non-blocking), bind
// to the drawn source port, connect to the server; then a write and the
// reads, waited for through the runtime's poller. The net package's
// UDPConn adds four calls per query that this path has no use for (a
// socket option, getsockname, getpeername, and a read that finds nothing
// before the answer can have come); on a cache miss these were a tenth of
// the resolver's CPU.
type udpSocket struct {
	f  *os.File
	rc syscall.RawConn
	// query is sent by the first read, once the socket waits for its
	// answer: a reply that came between a write and the read's start
	// could otherwise go unnoticed by the edge-triggered poller.
	query []byte
}

// openUDP returns a socket connected to server from the local port, 0 for
// the kernel's choice. An address in use is returned as EADDRINUSE, so
// that the caller draws another port.
func openUDP(server netip.AddrPort, port int) (*udpSocket, error) {
	a := server.Addr().Unmap()
	family := syscall.AF_INET
	var local, remote syscall.Sockaddr
	if a.Is4() {
		local = &syscall.SockaddrInet4{Port: port}
		remote = &syscall.SockaddrInet4{Port: int(server.Port()), Addr: a.As4()}
	} else {
		family = syscall.AF_INET6
		local = &syscall.SockaddrInet6{Port: port}
		remote = &syscall.SockaddrInet6{Port: int(server.Port()), Addr: a.As16(), ZoneId: zoneID(a)}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if port != 0 {
		if err := syscall.Bind(fd, local); err != nil {
			syscall.Close(fd)
			return nil, os.NewSyscallError("bind", err)
		}
	}
	if err := syscall.Connect(fd, remote); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	f := os.NewFile(uintptr(fd), "udp "+server.String()) // non-blocking: polled
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &udpSocket{f: f, rc: rc}, nil
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
// length and the receive flags (MSG_TRUNC: it was longer than buf). After
// the deadline it still takes a datagram already waiting in the socket,
// one per call and without waiting, as the goroutine may have waited for
// a CPU longer than the answer took to come: it returns it (n > 0) with
// os.ErrDeadlineExceeded, and the caller bounds how many it takes.
func (s *udpSocket) read(buf []byte) (n, flags int, err error) {
	var ioErr error
	err = s.rc.Read(func(fd uintptr) bool {
		if q := s.query; q != nil {
			s.query = nil
			_, ioErr = syscall.Write(int(fd), q)
			return ioErr != nil
		}
		for {
			n, _, flags, _, ioErr = syscall.Recvmsg(int(fd), buf, nil, syscall.MSG_DONTWAIT)
			if ioErr != syscall.EINTR {
				return ioErr != syscall.EAGAIN
			}
		}
	})
	if err == nil {
		if ioErr != nil {
			return 0, 0, os.NewSyscallError("udp", ioErr)
		}
		return n, flags, nil
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, 0, err
	}
	if q := s.query; q != nil {
		// The deadline passed before anything was sent: a datagram goes
		// out however late.
		s.query = nil
		if cerr := s.rc.Control(func(fd uintptr) { _, ioErr = syscall.Write(int(fd), q) }); cerr == nil && ioErr != nil {
			return 0, 0, os.NewSyscallError("write", ioErr)
		}
	}
	got := false
	if cerr := s.rc.Control(func(fd uintptr) {
		var rerr error
		n, _, flags, _, rerr = syscall.Recvmsg(int(fd), buf, nil, syscall.MSG_DONTWAIT)
		got = rerr == nil
	}); cerr != nil || !got {
		return 0, 0, err
	}
	return n, flags, err
}
