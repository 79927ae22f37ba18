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

	"github.com/sovdns/sovdns/internal/gather"
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
	// answers gathers the resolved answers, sent several at a time.
	answers *udpAnswers
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
	u.sys.answers = &udpAnswers{}
	u.sys.answers.init()
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
	n, ok := putSockaddr(&o.sa, a, port, v6)
	o.salen = n
	return ok
}

// putSockaddr writes the socket address of (a, port) into sa, in the
// socket's family, and returns its length: see udpOut.to.
func putSockaddr(sa *[unix.SizeofSockaddrInet6]byte, a netip.Addr, port uint16, v6 bool) (uintptr, bool) {
	var scope uint32
	if z := a.Zone(); z != "" {
		n, err := strconv.ParseUint(z, 10, 32)
		if err != nil || !v6 {
			return 0, false
		}
		scope = uint32(n)
	}
	if v6 {
		sa6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		*sa6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16(), Scope_id: scope}
		p := (*[2]byte)(unsafe.Pointer(&sa6.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		return unix.SizeofSockaddrInet6, true
	}
	if !a.Is4() {
		return 0, false
	}
	sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
	*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
	p := (*[2]byte)(unsafe.Pointer(&sa4.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	return unix.SizeofSockaddrInet4, true
}

// udpAnswers gathers the answers of the resolutions bound for one
// listener's socket (see package gather), and sends them with sendmmsg,
// batchSize in one system call. A sendto a worker made on its own was a
// fifth of a cache miss's system calls.
type udpAnswers struct {
	g       gather.Gather[udpAnswer]
	mmsgOut // the flushing worker's
}

// udpAnswer is an answer waiting: its destination, its bytes, and the
// pooled buffer they are packed in (see Server.replyBufs).
type udpAnswer struct {
	sa    [unix.SizeofSockaddrInet6]byte
	salen uint32
	wire  []byte
	bp    *[]byte
}

// queueAnswer hands wire, packed in bp, to the socket's answers, and
// reports whether it did: the worker that sends it then puts bp back
// and ends the resolution (Server.resolving). False where the socket
// cannot be written to this way (sendTo then writes it).
func (j *udpResolution) queueAnswer(wire []byte, bp *[]byte) bool {
	u := j.conn
	if u.sys.answers == nil || len(wire) == 0 {
		return false
	}
	var a udpAnswer
	n, ok := putSockaddr(&a.sa, j.dst.Addr().Unmap(), j.dst.Port(), u.sys.v6)
	if !ok {
		return false
	}
	a.salen, a.wire, a.bp = uint32(n), wire, bp
	u.sys.answers.add(j.s, u.sys.rc, a)
	return true
}

// add has a sent with the answers that come with it.
func (q *udpAnswers) add(s *Server, rc syscall.RawConn, a udpAnswer) {
	q.g.Add(a, batchSize, func(batch []udpAnswer) { q.sendAll(s, rc, batch) })
}

// sendAll sends batch, at most batchSize answers, in one system call,
// then puts their buffers back and ends their resolutions.
func (q *udpAnswers) sendAll(s *Server, rc syscall.RawConn, batch []udpAnswer) {
	for i := range batch {
		a := &batch[i]
		q.outIov[i].Base = &a.wire[0]
		q.outIov[i].SetLen(len(a.wire))
		q.out[i].Hdr.Name = &a.sa[0]
		q.out[i].Hdr.Namelen = a.salen
	}
	if failed, _ := q.send(rc, len(batch)); failed > 0 {
		s.m.Dropped.WithLabelValues("write_error").Add(float64(failed))
	}
	s.answerBatches.Add(1)
	s.answersBatched.Add(uint64(len(batch)))
	for i := range batch {
		s.replyBufs.Put(batch[i].bp)
		s.resolving.Done()
	}
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
