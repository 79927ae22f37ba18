package resolver

import (
	"errors"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/sovdns/sovdns/internal/uring"
)

// ringLanes send the upstream queries over UDP through io_uring: a
// query's socket is registered with the poller, connected and sends its
// query in one entry into the kernel (three system calls otherwise), and
// the same batch makes the socket for a later query and closes the
// sockets of finished ones. A cache miss then costs three system calls
// (that entry, the answer's read, the client's reply) instead of seven;
// on the virtual machine measured each costs over a microsecond on top
// of its work.
//
// Each lane is one ring under a mutex; a query takes whichever lane is
// free. Where io_uring is missing or refused (before Linux 5.19,
// kernel.io_uring_disabled, a container's seccomp filter), there are no
// lanes and sockets are made with plain system calls (openUDP).
type ringLanes struct {
	lanes []ringLane
	next  atomic.Uint32
}

// ringLane is one ring and what it keeps between batches.
type ringLane struct {
	mu sync.Mutex
	r  *uring.Ring
	// spare holds a socket made ahead for each family (IPv4, IPv6), -1
	// when none.
	spare [2]int
	// closes holds the descriptors of finished sockets, closed by the
	// lane's next batch, or by its timer at most closeDelay later.
	closes   []int
	timer    *time.Timer
	timerSet bool
	// done: the poller was closed; broken: a batch failed part-way, so
	// the lane is not used again (the descriptors it was closing are
	// left open, as whether they were closed is not known).
	done, broken bool
	// What the batch's entries point to, kept in place while it runs.
	sa    syscall.RawSockaddrInet6
	ev    syscall.EpollEvent
	batch [ringBatch]uring.SQE
	res   [ringBatch]int32
}

const (
	// laneCloses is how many closes a lane gathers before it runs them
	// as a batch of their own.
	laneCloses = 8
	// ringBatch: a query's three entries, a spare socket and the closes.
	ringBatch = 4 + laneCloses
	// ringEntries is each ring's size (a power of two).
	ringEntries = 16
	// closeDelay is the longest a finished socket stays open while no
	// query goes out.
	closeDelay = 20 * time.Millisecond
	// maxLanes bounds the rings of a poller.
	maxLanes = 8
)

// sockType is every upstream UDP socket's type.
const sockType = syscall.SOCK_DGRAM | syscall.SOCK_NONBLOCK | syscall.SOCK_CLOEXEC

// newRingLanes makes a lane for each scheduler processor, nil with the
// reason where io_uring cannot do the work.
func newRingLanes() (*ringLanes, error) {
	n := min(max(runtime.GOMAXPROCS(0), 1), maxLanes)
	l := &ringLanes{lanes: make([]ringLane, n)}
	for i := range l.lanes {
		r, err := uring.New(ringEntries)
		if err == nil {
			err = r.Supports(uring.OpSocket, uring.OpConnect, uring.OpSend, uring.OpClose, uring.OpEpollCtl)
			if err != nil {
				r.Close()
			}
		}
		if err != nil {
			l.close()
			return nil, err
		}
		ln := &l.lanes[i]
		ln.r, ln.spare = r, [2]int{-1, -1}
		ln.timer = time.AfterFunc(time.Hour, ln.closeLater)
		ln.timer.Stop()
	}
	return l, nil
}

// lane returns a lane, locked: the first free one from a turning start,
// else the start's.
func (l *ringLanes) lane() *ringLane {
	n := uint32(len(l.lanes))
	start := l.next.Add(1)
	for i := range n {
		ln := &l.lanes[(start+i)%n]
		if ln.mu.TryLock() {
			return ln
		}
	}
	ln := &l.lanes[start%n]
	ln.mu.Lock()
	return ln
}

// start registers s with p, connects it to its server and sends q; the
// socket is the lane's spare for the family or a new one. It returns
// false, with s untouched, when the lane cannot run it (the poller's
// closing, a lane broken): then the caller does it with system calls.
func (l *ringLanes) start(p *upstreamPoller, s *udpSocket, q []byte) (bool, error) {
	ln := l.lane()
	defer ln.mu.Unlock()
	if ln.done || ln.broken {
		return false, nil
	}
	family, fam := syscall.AF_INET, 0
	if !s.server.Addr().Is4() {
		family, fam = syscall.AF_INET6, 1
	}
	fd := ln.spare[fam]
	ln.spare[fam] = -1
	if fd < 0 {
		var err error
		if fd, err = syscall.Socket(family, sockType, syscall.IPPROTO_UDP); err != nil {
			return true, os.NewSyscallError("socket", err)
		}
	}
	s.fd = fd // from here the socket's release closes it
	ln.ev = syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLONESHOT, Fd: s.slot, Pad: int32(s.gen)}
	n := putSockaddr(&ln.sa, s.server)
	b := ln.batch[:0]
	b = append(b,
		uring.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ln.ev),
		uring.Connect(fd, unsafe.Pointer(&ln.sa), n),
		uring.Send(fd, q),
		uring.Socket(family, sockType, syscall.IPPROTO_UDP))
	b[0].Flags, b[1].Flags = uring.Link, uring.Link
	for _, c := range ln.closes {
		b = append(b, uring.Close(c))
	}
	err := ln.r.Run(b, ln.res[:])
	runtime.KeepAlive(q)
	if err != nil {
		ln.broken = true
		return true, err
	}
	ln.closes = ln.closes[:0]
	if r := ln.res[3]; r >= 0 {
		ln.spare[fam] = int(r)
	}
	switch res := ln.res[:3]; {
	case res[0] < 0:
		return true, os.NewSyscallError("epoll_ctl", syscall.Errno(-res[0]))
	case res[1] < 0:
		return true, os.NewSyscallError("connect", syscall.Errno(-res[1]))
	case res[2] < 0:
		s.armed = true
		return true, os.NewSyscallError("write", syscall.Errno(-res[2]))
	}
	s.armed = true
	return true, nil
}

// release has fd closed: by the next batch of a lane, or at once when
// the lanes are closed.
func (l *ringLanes) release(fd int) {
	ln := l.lane()
	defer ln.mu.Unlock()
	if ln.done || ln.broken {
		closeFD(fd)
		return
	}
	ln.closes = append(ln.closes, fd)
	switch {
	case len(ln.closes) >= laneCloses:
		ln.runCloses()
	case !ln.timerSet:
		ln.timerSet = true
		ln.timer.Reset(closeDelay)
	}
}

// closeLater runs the closes no query took along.
func (ln *ringLane) closeLater() {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	ln.timerSet = false
	if !ln.done && !ln.broken {
		ln.runCloses()
	}
}

// runCloses closes the gathered descriptors in one batch.
func (ln *ringLane) runCloses() {
	if len(ln.closes) == 0 {
		return
	}
	b := ln.batch[:0]
	for _, c := range ln.closes {
		b = append(b, uring.Close(c))
	}
	if err := ln.r.Run(b, ln.res[:]); err != nil {
		ln.broken = true
	}
	ln.closes = ln.closes[:0]
}

// close closes every lane's gathered and spare sockets, and its ring.
func (l *ringLanes) close() {
	for i := range l.lanes {
		ln := &l.lanes[i]
		ln.mu.Lock()
		if ln.r != nil && !ln.done {
			ln.done = true
			if ln.timer != nil {
				ln.timer.Stop()
			}
			if !ln.broken {
				for _, c := range ln.closes {
					closeFD(c)
				}
			}
			ln.closes = nil
			for _, fd := range ln.spare {
				if fd >= 0 {
					closeFD(fd)
				}
			}
			ln.r.Close()
		}
		ln.mu.Unlock()
	}
}

// errNotSent is a read of a socket that was never connected and has no
// query to send.
var errNotSent = errors.New("upstream socket: nothing sent")

// putSockaddr writes ap into sa as the kernel's socket address for its
// family, and returns that address's length.
func putSockaddr(sa *syscall.RawSockaddrInet6, ap netip.AddrPort) uintptr {
	port := ap.Port()
	a := ap.Addr()
	if a.Is4() {
		sa4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: a.As4()}
		p := (*[2]byte)(unsafe.Pointer(&sa4.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		return unsafe.Sizeof(*sa4)
	}
	*sa = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: a.As16(), Scope_id: zoneID(a)}
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	return unsafe.Sizeof(*sa)
}
