//go:build linux

package server

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one recvmmsg/sendmmsg call moves at most.
const batchSize = 32

// udpInSize bounds a query read over UDP; a longer datagram is dropped.
const udpInSize = 4096

// udpBatch holds the pre-allocated state of one socket's batched I/O: the
// message headers, iovecs, source addresses and buffers, reused for every
// call so the loop allocates nothing. That includes the callbacks handed
// to the poller, made once with the batch: a closure made per call, and
// the results it sets, would each be a heap object per datagram at low
// rates, and a node answering from its caches would collect garbage
// every few seconds for nothing else.
type udpBatch struct {
	in      [batchSize]unix.Mmsghdr
	inIov   [batchSize]unix.Iovec
	names   [batchSize]unix.RawSockaddrInet6
	bufs    [batchSize][]byte
	outBufs [batchSize][]byte
	mmsgOut

	// The recv under way: the count read and the error.
	n      int
	errno  syscall.Errno
	recvFn func(fd uintptr) bool
}

func newUDPBatch() *udpBatch {
	b := &udpBatch{}
	for i := range batchSize {
		b.bufs[i] = make([]byte, udpInSize)
		b.outBufs[i] = make([]byte, 0, udpInSize)
		b.inIov[i].Base = &b.bufs[i][0]
		b.in[i].Hdr.Iov = &b.inIov[i]
		b.in[i].Hdr.Iovlen = 1
		b.in[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	b.recvFn = b.tryRecv
	b.mmsgOut.init()
	return b
}

// mmsgOut sends prepared datagrams, batchSize at most, with sendmmsg:
// out[i] names the destination, outIov[i] the bytes. It is made once,
// with the callback it hands the poller.
type mmsgOut struct {
	out    [batchSize]unix.Mmsghdr
	outIov [batchSize]unix.Iovec
	// The send under way: the datagrams sent so far, the number to send,
	// the last call's count and error.
	sent, k int
	n       int
	errno   syscall.Errno
	sendFn  func(fd uintptr) bool
}

func (m *mmsgOut) init() {
	for i := range batchSize {
		m.out[i].Hdr.Iov = &m.outIov[i]
		m.out[i].Hdr.Iovlen = 1
	}
	m.sendFn = m.trySend
}

// serveUDP answers the datagrams of one socket in this goroutine, reading
// and writing up to batchSize at a time with recvmmsg and sendmmsg.
// Authoritative answers never block, so no goroutine is spawned per query.
func (s *Server) serveUDP(ctx context.Context, c *net.UDPConn) {
	rc, err := c.SyscallConn()
	if err != nil || s.cfg.UDPUnbatched {
		s.serveUDPSimple(ctx, c)
		return
	}
	b := newUDPBatch()
	sock := newUDPSocket(c)
	for {
		n, err := b.recv(rc)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("udp read failed", "err", err)
			continue
		}
		k := 0
		for i := range n {
			if b.in[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
				s.m.Dropped.WithLabelValues("oversize").Inc()
				continue
			}
			src := sockaddrAddrPort(&b.names[i])
			resp := s.respond(b.bufs[i][:b.in[i].Len], b.outBufs[i], src, sock, udp)
			if resp == nil {
				continue
			}
			b.outIov[k].Base = &resp[0]
			b.outIov[k].SetLen(len(resp))
			b.out[k].Hdr.Name = b.in[i].Hdr.Name
			b.out[k].Hdr.Namelen = b.in[i].Hdr.Namelen
			k++
		}
		if failed, err := b.send(rc, k); ctx.Err() == nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if failed > 0 {
				s.m.Dropped.WithLabelValues("write_error").Add(float64(failed))
			}
		}
	}
}

// recvmmsg and sendmmsg are made as raw system calls: the socket is
// non-blocking, so neither can block, and a raw call does not hand the
// goroutine's processor to another thread when it takes longer than the
// scheduler's 20 µs (a batch of 32 on loopback takes about 100 µs), which
// under load made the server switch threads thousands of times a second.
// EINTR is retried at once; EAGAIN waits for the poller.

func (b *udpBatch) recv(rc syscall.RawConn) (int, error) {
	for i := range batchSize {
		b.in[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.inIov[i].SetLen(udpInSize)
		b.in[i].Len = 0
		b.in[i].Hdr.Flags = 0
	}
	b.n, b.errno = 0, 0
	if err := rc.Read(b.recvFn); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return 0, b.errno
	}
	return b.n, nil
}

// tryRecv is the poller's callback for recv: false when nothing waits.
func (b *udpBatch) tryRecv(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.in[0])), batchSize, 0, 0, 0)
	for e == unix.EINTR {
		r, _, e = unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.in[0])), batchSize, 0, 0, 0)
	}
	if e == unix.EAGAIN {
		return false
	}
	b.n, b.errno = int(r), e
	return true
}

// send writes the first k prepared datagrams. One the kernel refuses is
// skipped, so that one bad destination cannot stall the others: failed
// counts them. err is the socket's (closed), which ends the send with
// the datagrams not sent counted as failed.
func (m *mmsgOut) send(rc syscall.RawConn, k int) (failed int, err error) {
	m.k = k
	for m.sent = 0; m.sent < k; {
		m.n, m.errno = 0, 0
		if err := rc.Write(m.sendFn); err != nil {
			return failed + k - m.sent, err
		}
		if m.errno != 0 {
			failed++
			m.n = 1 // skip the datagram that failed
		}
		m.sent += m.n
	}
	return failed, nil
}

// trySend is the poller's callback for send: false when the socket's
// buffer is full.
func (m *mmsgOut) trySend(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.out[m.sent])), uintptr(m.k-m.sent), 0, 0, 0)
	for e == unix.EINTR {
		r, _, e = unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.out[m.sent])), uintptr(m.k-m.sent), 0, 0, 0)
	}
	if e == unix.EAGAIN {
		return false
	}
	m.n, m.errno = int(r), e
	return true
}

// sockaddrAddrPort reads the address and port of a sockaddr_in or
// sockaddr_in6, a scoped (link-local) IPv6 address with its interface's
// index as its zone.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	raw := (*[unix.SizeofSockaddrInet6]byte)(unsafe.Pointer(sa))
	port := binary.BigEndian.Uint16(raw[2:4])
	switch binary.NativeEndian.Uint16(raw[:2]) {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[4:8])), port)
	case unix.AF_INET6:
		a := netip.AddrFrom16(sa.Addr).Unmap()
		if sa.Scope_id != 0 && a.Is6() {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, port)
	}
	return netip.AddrPort{}
}
