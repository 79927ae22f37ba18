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
// query in one entry into the kernel (three system calls otherwise). The
// same batch makes sockets for later queries, and takes back the sockets
// of finished ones: each is disconnected (a connect to AF_UNSPEC, which
// gives up the source port the kernel drew for it, as a close does) and
// emptied, then kept for a later query, which connects it again and so
// gets a port drawn afresh. Only a socket found empty (the receive that
// empties it finds nothing, not even an error) is kept; any other is
// closed. A kept socket saves the making and closing of one (5-6 µs of
// the kernel's work on the virtual machine measured), and the batch the
// entries into the kernel (over a microsecond each there).
//
// Each lane is one ring under a mutex; a query takes whichever lane is
// free. Where io_uring is missing or refused (before Linux 5.19,
// kernel.io_uring_disabled, a container's seccomp filter), there are no
// lanes and sockets are made and closed with plain system calls
// (openUDP).
type ringLanes struct {
	lanes []ringLane
	next  atomic.Uint32
}

// ringLane is one ring and what it keeps between batches.
type ringLane struct {
	mu sync.Mutex
	r  *uring.Ring
	// idle holds, for each family (IPv4, IPv6), sockets taken back:
	// unconnected, empty, still registered with the poller for good
	// (edgeEvent), bound to no socket.
	idle [2][]int
	// spare holds a socket made ahead for each family, not yet
	// registered, -1 when none.
	spare [2]int
	// backs holds finished sockets to take back, closes those to close:
	// run with the lane's next batch, or by its timer at most
	// closeDelay later.
	backs    []takeBack
	closes   []int
	timer    *time.Timer
	timerSet bool
	// done: the poller was closed; broken: a batch failed part-way, so
	// the lane is not used again (the descriptors it was taking back or
	// closing are left open, as what became of them is not known).
	done, broken bool
	onErr        func(error)
	// What the batch's entries point to, kept in place while it runs.
	sa      syscall.RawSockaddrInet6
	unspec  syscall.RawSockaddrInet4
	ev      syscall.EpollEvent
	scratch [1]byte
	batch   [ringBatch]uring.SQE
	res     [ringBatch]int32
}

// takeBack is a finished socket to take back.
type takeBack struct {
	fd  int
	fam int
}

const (
	// lanePending is how many finished sockets a lane gathers before it
	// runs them in a batch of their own.
	lanePending = 8
	// ringBatch: a query's three entries, a spare socket, two entries
	// for each socket taken back and one for each closed.
	ringBatch = 4 + 2*lanePending
	// ringEntries is each ring's size (a power of two).
	ringEntries = 32
	// closeDelay is the longest a finished socket stays as it is while
	// no query goes out.
	closeDelay = 20 * time.Millisecond
	// maxIdle bounds the sockets a lane keeps for each family; more are
	// closed.
	maxIdle = 256
	// maxLanes bounds the rings of a poller.
	maxLanes = 8
)

// sockType is every upstream UDP socket's type.
const sockType = syscall.SOCK_DGRAM | syscall.SOCK_NONBLOCK | syscall.SOCK_CLOEXEC

// newRingLanes makes a lane for each scheduler processor, nil with the
// reason where io_uring cannot do the work. onErr, if not nil, is told of
// each lane that fails.
func newRingLanes(onErr func(error)) (*ringLanes, error) {
	n := min(max(runtime.GOMAXPROCS(0), 1), maxLanes)
	l := &ringLanes{lanes: make([]ringLane, n)}
	for i := range l.lanes {
		r, err := uring.New(ringEntries)
		if err == nil {
			err = r.Supports(uring.OpSocket, uring.OpConnect, uring.OpSend, uring.OpRecv, uring.OpClose, uring.OpEpollCtl)
			if err != nil {
				r.Close()
			}
		}
		if err != nil {
			l.close()
			return nil, err
		}
		ln := &l.lanes[i]
		ln.r, ln.spare, ln.onErr = r, [2]int{-1, -1}, onErr
		ln.unspec.Family = syscall.AF_UNSPEC
		ln.timer = time.AfterFunc(time.Hour, ln.runLater)
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

// family returns the socket family of ap's address, and its index in a
// lane's idle and spare.
func family(ap netip.AddrPort) (int, int) {
	if ap.Addr().Is4() {
		return syscall.AF_INET, 0
	}
	return syscall.AF_INET6, 1
}

// start registers s with p, connects it to its server and sends q, on a
// socket taken back before, else the lane's spare, else a new one. It
// returns false, with s untouched, when the lane cannot run it (the
// poller's closing, a lane broken): then the caller does it with system
// calls.
func (l *ringLanes) start(p *upstreamPoller, s *udpSocket, q []byte) (bool, error) {
	ln := l.lane()
	defer ln.mu.Unlock()
	if ln.done || ln.broken {
		return false, nil
	}
	af, fam := family(s.server)
	fd, fresh := -1, true
	if k := len(ln.idle[fam]); k > 0 {
		fd, ln.idle[fam] = ln.idle[fam][k-1], ln.idle[fam][:k-1]
		fresh = false
	} else if fd = ln.spare[fam]; fd >= 0 {
		ln.spare[fam] = -1
	} else {
		var err error
		if fd, err = syscall.Socket(af, sockType, syscall.IPPROTO_UDP); err != nil {
			return true, os.NewSyscallError("socket", err)
		}
	}
	// From here the socket's release takes it back or closes it, and
	// its datagrams' events wake it.
	s.fd, s.edge = fd, true
	p.bind(fd, s)
	n := putSockaddr(&ln.sa, s.server)
	b := ln.batch[:0]
	if fresh {
		// Registered for good: a socket taken back keeps it.
		ln.ev = edgeEvent(fd)
		b = append(b, uring.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ln.ev))
		b[0].Flags = uring.Link
	}
	q0 := len(b)
	b = append(b, uring.Connect(fd, unsafe.Pointer(&ln.sa), n), uring.Send(fd, q))
	b[q0].Flags = uring.Link
	spare := -1
	if len(ln.idle[fam]) == 0 && ln.spare[fam] < 0 {
		spare = len(b)
		b = append(b, uring.Socket(af, sockType, syscall.IPPROTO_UDP))
	}
	b, pending := ln.appendPending(b)
	err := ln.r.Run(b, ln.res[:])
	runtime.KeepAlive(q)
	if err != nil {
		ln.fail(err)
		return true, err
	}
	if spare >= 0 && ln.res[spare] >= 0 {
		ln.spare[fam] = int(ln.res[spare])
	}
	ln.settle(pending)
	if fresh && ln.res[0] < 0 {
		return true, os.NewSyscallError("epoll_ctl", syscall.Errno(-ln.res[0]))
	}
	if r := ln.res[q0]; r < 0 {
		return true, os.NewSyscallError("connect", syscall.Errno(-r))
	}
	s.armed, s.keep = true, true
	if r := ln.res[q0+1]; r < 0 {
		return true, os.NewSyscallError("write", syscall.Errno(-r))
	}
	return true, nil
}

// appendPending appends to b the entries that take back and close the
// finished sockets, and returns where they start.
func (ln *ringLane) appendPending(b []uring.SQE) ([]uring.SQE, int) {
	at := len(b)
	for _, t := range ln.backs {
		b = append(b,
			uring.Connect(t.fd, unsafe.Pointer(&ln.unspec), unsafe.Sizeof(ln.unspec)),
			uring.Recv(t.fd, ln.scratch[:], 0))
		b[len(b)-2].Flags = uring.Link
	}
	for _, fd := range ln.closes {
		b = append(b, uring.Close(fd))
	}
	return b, at
}

// settle reads the results of the entries appendPending made (from
// res[at]): a socket disconnected and found empty is kept, any other is
// closed by a later batch.
func (ln *ringLane) settle(at int) {
	backs := ln.backs
	ln.backs, ln.closes = ln.backs[:0], ln.closes[:0]
	for i, t := range backs {
		disc, recv := ln.res[at+2*i], ln.res[at+2*i+1]
		if disc == 0 && recv == -int32(syscall.EAGAIN) && len(ln.idle[t.fam]) < maxIdle {
			ln.idle[t.fam] = append(ln.idle[t.fam], t.fd)
		} else {
			ln.closes = append(ln.closes, t.fd)
		}
	}
	if len(ln.closes) > 0 {
		ln.later()
	}
}

// later has the timer run what is pending, if it is not set to.
func (ln *ringLane) later() {
	if !ln.timerSet {
		ln.timerSet = true
		ln.timer.Reset(closeDelay)
	}
}

// release has a finished socket taken back (keep: its query's batch
// registered and connected it) or closed: by a lane's next batch, or at
// once when the lanes are closed.
func (l *ringLanes) release(fd int, keep bool, server netip.AddrPort) {
	ln := l.lane()
	defer ln.mu.Unlock()
	if ln.done || ln.broken {
		closeFD(fd)
		return
	}
	if keep {
		_, fam := family(server)
		ln.backs = append(ln.backs, takeBack{fd, fam})
	} else {
		ln.closes = append(ln.closes, fd)
	}
	if len(ln.backs)+len(ln.closes) >= lanePending {
		ln.runPending()
	} else {
		ln.later()
	}
}

// fail marks the lane broken after err, and says so: its queries go
// with system calls from then on.
func (ln *ringLane) fail(err error) {
	ln.broken = true
	if ln.onErr != nil {
		ln.onErr(err)
	}
}

// runLater runs what no query took along.
func (ln *ringLane) runLater() {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	ln.timerSet = false
	if !ln.done && !ln.broken {
		ln.runPending()
	}
}

// runPending takes back and closes the finished sockets in one batch.
func (ln *ringLane) runPending() {
	if len(ln.backs)+len(ln.closes) == 0 {
		return
	}
	b, at := ln.appendPending(ln.batch[:0])
	if err := ln.r.Run(b, ln.res[:]); err != nil {
		ln.fail(err)
		return
	}
	ln.settle(at)
}

// close closes every lane's sockets, and its ring.
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
				for _, t := range ln.backs {
					closeFD(t.fd)
				}
				for _, fd := range ln.closes {
					closeFD(fd)
				}
			}
			ln.backs, ln.closes = nil, nil
			for fam, idle := range ln.idle {
				for _, fd := range idle {
					closeFD(fd)
				}
				ln.idle[fam] = nil
			}
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
