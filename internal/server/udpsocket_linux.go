//go:build linux

package server

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpSys is how a worker writes to a listener's socket on Linux: one
// sendto made as a raw system call, on a non-blocking socket, so it
// cannot block. A system call the runtime is told of instead (the net
// package's) wakes its monitor thread whenever that sleeps, which it does
// each time the server goes idle: with a resolver answering a stream of
// misses on one CPU, the monitor switched threads tens of thousands of
// times a second, a fifth of the CPU. rc is nil where the socket could
// not be looked at: written through the net package then.
type udpSys struct {
	rc syscall.RawConn
	v6 bool // an AF_INET6 socket: IPv4 destinations are written mapped
}

func newUDPSocket(c *net.UDPConn) *udpSocket {
	u := &udpSocket{c: c}
	rc, err := c.SyscallConn()
	if err != nil {
		return u
	}
	domain, derr := 0, error(nil)
	if err := rc.Control(func(fd uintptr) {
		domain, derr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil || derr != nil {
		return u
	}
	switch domain {
	case unix.AF_INET:
	case unix.AF_INET6:
		u.sys.v6 = true
	default:
		return u
	}
	u.sys.rc = rc
	return u
}

// udpOut is a worker's sendto under way: the destination, the datagram,
// the result, and the poller's callback, made once per worker (a closure
// per answer would be a heap object each).
type udpOut struct {
	sa    [unix.SizeofSockaddrInet6]byte // a sockaddr_in or sockaddr_in6
	salen uintptr
	wire  []byte
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

// sendTo writes wire to the question's source.
func (j *udpResolution) sendTo(wire []byte) error {
	u := j.conn
	o := &j.out
	if u.sys.rc == nil || len(wire) == 0 || !o.to(j.dst.Addr().Unmap(), j.dst.Port(), u.sys.v6) {
		_, err := u.c.WriteToUDPAddrPort(wire, j.dst)
		return err
	}
	if o.fn == nil {
		o.fn = o.try
	}
	o.wire, o.errno = wire, 0
	err := u.sys.rc.Write(o.fn)
	o.wire = nil
	if err != nil {
		return err
	}
	if o.errno != 0 {
		return os.NewSyscallError("sendto", o.errno)
	}
	return nil
}

// to sets the destination, in the socket's family; false for an address
// it cannot take (IPv6 on an IPv4 socket, a zone named by an interface's
// name rather than its index).
func (o *udpOut) to(a netip.Addr, port uint16, v6 bool) bool {
	var scope uint32
	if z := a.Zone(); z != "" {
		n, err := strconv.ParseUint(z, 10, 32)
		if err != nil || !v6 {
			return false
		}
		scope = uint32(n)
	}
	if v6 {
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&o.sa))
		*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16(), Scope_id: scope}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		o.salen = unix.SizeofSockaddrInet6
		return true
	}
	if !a.Is4() {
		return false
	}
	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&o.sa))
	*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	o.salen = unix.SizeofSockaddrInet4
	return true
}

// try is the poller's callback: false when the socket's buffer is full.
func (o *udpOut) try(fd uintptr) bool {
	for {
		_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(o.wire))), uintptr(len(o.wire)),
			0, uintptr(unsafe.Pointer(&o.sa)), o.salen)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		o.errno = e
		return true
	}
}
