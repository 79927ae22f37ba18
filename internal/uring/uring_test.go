//go:build linux

package uring

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sovdns/sovdns/internal/testaddr"
)

// newRing returns a ring, or skips where the kernel has no io_uring or
// refuses it: the callers fall back to plain system calls there.
func newRing(t *testing.T) *Ring {
	t.Helper()
	r, err := New(16)
	if err != nil {
		t.Skipf("no io_uring here: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Supports(OpSocket, OpConnect, OpSend, OpClose, OpEpollCtl); err != nil {
		t.Skipf("io_uring without the operations: %v", err)
	}
	return r
}

// One batch makes a socket; the next registers it with an epoll
// instance, connects it and sends a datagram, which the server receives
// from the socket's port; a third closes it.
func TestRunSocketConnectSend(t *testing.T) {
	r := newRing(t)
	srv, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(testaddr.IP(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(epfd)

	res := make([]int32, 4)
	if err := r.Run([]SQE{Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)}, res); err != nil {
		t.Fatal(err)
	}
	fd := int(res[0])
	if fd < 0 {
		t.Fatalf("socket: %v", syscall.Errno(-fd))
	}
	ap := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	sa := &syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: ap.Addr().As4()}
	port := (*[2]byte)(unsafe.Pointer(&sa.Port))
	port[0], port[1] = byte(ap.Port()>>8), byte(ap.Port())
	ev := &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: 7}
	msg := []byte("hello")
	batch := []SQE{
		EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fd, ev),
		Connect(fd, unsafe.Pointer(sa), unsafe.Sizeof(*sa)),
		Send(fd, msg),
	}
	batch[0].Flags, batch[1].Flags = Link, Link
	if err := r.Run(batch, res); err != nil {
		t.Fatal(err)
	}
	if res[0] != 0 || res[1] != 0 || res[2] != int32(len(msg)) {
		t.Fatalf("results %v, want 0, 0, %d", res[:3], len(msg))
	}
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, from, err := srv.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("server read %q, %v", buf[:n], err)
	}
	local, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	if got := local.(*syscall.SockaddrInet4).Port; got != int(from.Port()) {
		t.Fatalf("datagram from port %d, socket bound to %d", from.Port(), got)
	}
	// The registration took: the server's reply is an event.
	if _, err := srv.WriteToUDPAddrPort([]byte("back"), from); err != nil {
		t.Fatal(err)
	}
	evs := make([]syscall.EpollEvent, 1)
	if k, err := syscall.EpollWait(epfd, evs, 10000); err != nil || k != 1 || evs[0].Fd != 7 {
		t.Fatalf("epoll_wait: %d events (%v), fd field %d; want one for 7", k, err, evs[0].Fd)
	}

	if err := r.Run([]SQE{Close(fd)}, res); err != nil || res[0] != 0 {
		t.Fatalf("close: %d, %v", res[0], err)
	}
	if _, err := syscall.Getsockname(fd); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("the descriptor is still open after the close: %v", err)
	}
}

// A failed entry cancels the entries linked after it, and each reports
// its own result; entries not linked still run.
func TestRunLinkFailure(t *testing.T) {
	r := newRing(t)
	res := make([]int32, 3)
	batch := []SQE{Close(1 << 20), {Op: OpNop}, {Op: OpNop}}
	batch[0].Flags = Link
	if err := r.Run(batch, res); err != nil {
		t.Fatal(err)
	}
	if res[0] != -int32(syscall.EBADF) || res[1] != -int32(syscall.ECANCELED) || res[2] != 0 {
		t.Fatalf("results %v, want EBADF, ECANCELED, 0", res)
	}
}

// Batches larger than the ring or its results are refused whole.
func TestRunTooLarge(t *testing.T) {
	r := newRing(t)
	if err := r.Run(make([]SQE, 17), make([]int32, 17)); err == nil {
		t.Fatal("a batch of 17 ran on a ring of 16")
	}
	if err := r.Run(make([]SQE, 2), make([]int32, 1)); err == nil {
		t.Fatal("a batch of 2 ran with room for 1 result")
	}
	// Many batches in turn go round the queues.
	res := make([]int32, 16)
	for i := range 100 {
		if err := r.Run(make([]SQE, 1+i%16), res); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
}

// A send on a socket without room fails with EAGAIN at once, as send(2)
// with MSG_DONTWAIT, instead of waiting for room.
func TestRunSendFull(t *testing.T) {
	r := newRing(t)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	msg := make([]byte, 1024)
	sent := 0
	for ; sent < 1<<16; sent++ {
		if _, err := syscall.Write(fds[0], msg); err != nil {
			break // the peer's queue is full
		}
	}
	res := make([]int32, 1)
	done := make(chan error, 1)
	go func() { done <- r.Run([]SQE{Send(fds[0], msg)}, res) }()
	select {
	case err := <-done:
		if err != nil || res[0] != -int32(syscall.EAGAIN) {
			t.Fatalf("send after %d datagrams: %d, %v; want EAGAIN", sent, res[0], err)
		}
	case <-time.After(10 * time.Second):
		syscall.Close(fds[1])
		t.Fatal("the send waited for room")
	}
}

// A receive finds a waiting datagram, then EAGAIN at once when none is
// left; a connect to AF_UNSPEC disconnects the socket, which gives up
// the port the kernel drew for it, and the next connect draws another.
func TestRunRecvAndDisconnect(t *testing.T) {
	r := newRing(t)
	srv, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(testaddr.IP(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	ap := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	sa := &syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: ap.Addr().As4()}
	port := (*[2]byte)(unsafe.Pointer(&sa.Port))
	port[0], port[1] = byte(ap.Port()>>8), byte(ap.Port())
	unspec := &syscall.RawSockaddrInet4{Family: syscall.AF_UNSPEC}
	res := make([]int32, 3)
	buf := make([]byte, 64)
	localAddr := func() netip.AddrPort {
		t.Helper()
		sa, err := syscall.Getsockname(fd)
		if err != nil {
			t.Fatal(err)
		}
		a := sa.(*syscall.SockaddrInet4)
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	}
	local := func() int { return int(localAddr().Port()) }

	if err := r.Run([]SQE{Connect(fd, unsafe.Pointer(sa), unsafe.Sizeof(*sa))}, res); err != nil || res[0] != 0 {
		t.Fatalf("connect: %d, %v", res[0], err)
	}
	first := local()
	if _, err := srv.WriteToUDPAddrPort([]byte("late"), localAddr()); err != nil {
		t.Fatal(err)
	}
	waitReadable(t, fd)
	if err := r.Run([]SQE{Recv(fd, buf, 0)}, res); err != nil {
		t.Fatal(err)
	}
	if res[0] != 4 || string(buf[:4]) != "late" {
		t.Fatalf("recv: %d, want the datagram", res[0])
	}
	batch := []SQE{Connect(fd, unsafe.Pointer(unspec), unsafe.Sizeof(*unspec)), Recv(fd, buf, 0)}
	batch[0].Flags = Link
	if err := r.Run(batch, res); err != nil {
		t.Fatal(err)
	}
	if res[0] != 0 || res[1] != -int32(syscall.EAGAIN) {
		t.Fatalf("disconnect, then recv: %v, want 0 and EAGAIN", res[:2])
	}
	if p := local(); p != 0 {
		t.Fatalf("bound to port %d after the disconnect, want none", p)
	}
	seen := map[int]bool{first: true}
	for range 20 {
		batch := []SQE{Connect(fd, unsafe.Pointer(sa), unsafe.Sizeof(*sa))}
		if err := r.Run(batch, res); err != nil || res[0] != 0 {
			t.Fatalf("connect again: %d, %v", res[0], err)
		}
		seen[local()] = true
		if err := r.Run([]SQE{Connect(fd, unsafe.Pointer(unspec), unsafe.Sizeof(*unspec))}, res); err != nil || res[0] != 0 {
			t.Fatalf("disconnect: %d, %v", res[0], err)
		}
	}
	if len(seen) < 15 {
		t.Fatalf("21 connects drew %d ports, want new ones", len(seen))
	}
}

// A batch that does not complete within waitLimit (here a receive that
// waits for a datagram that never comes) breaks the ring: Run returns
// ErrBroken instead of waiting for ever, and so does every Run after.
func TestRunBreaksOnWait(t *testing.T) {
	r := newRing(t)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	buf := make([]byte, 16)
	// Without MSG_DONTWAIT the receive waits for a datagram.
	recv := SQE{Op: OpRecv, FD: int32(fds[0]), Addr: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: uint32(len(buf))}
	res := make([]int32, 1)
	start := time.Now()
	if err := r.Run([]SQE{recv}, res); !errors.Is(err, ErrBroken) || !errors.Is(err, syscall.ETIME) {
		t.Fatalf("a batch that cannot complete: %v, want ErrBroken after ETIME", err)
	}
	if d := time.Since(start); d < waitLimit/2 {
		t.Fatalf("gave up after %v, want about %v", d, waitLimit)
	}
	if err := r.Run([]SQE{{Op: OpNop}}, res); !errors.Is(err, ErrBroken) {
		t.Fatalf("a batch on the broken ring: %v, want ErrBroken", err)
	}
	r.Close() // cancels the receive before buf goes
}

// waitReadable waits until fd has a datagram to read, for at most 10 s.
func waitReadable(t *testing.T, fd int) {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, 10000)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n != 1 {
			t.Fatalf("poll: %d, %v; want the socket readable", n, err)
		}
		return
	}
}
