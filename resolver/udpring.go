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

	"github.com/sovdns/sovdns/internal/gather"
	"github.com/sovdns/sovdns/internal/uring"
)

// ringLanes send the upstream queries over UDP through io_uring: a
// query's socket is registered with the poller, connected and sends its
// query in one entry into the kernel (three system calls otherwise), and
// the queries that go out together share that entry (start). The same
// batch makes sockets for later queries, and takes back the sockets
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
	// g gathers the queries that go out together (start).
	g gather.Gather[*udpSocket]
	// batches and gathered count the batches send ran and the queries
	// they held.
	batches, gathered atomic.Uint64
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
	// ran, if set (by tests), is called after each batch that took back
	// or closed finished sockets, with mu held.
	ran func()
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
	// maxGather bounds the queries a batch sends.
	maxGather = 16
	// ringBatch: three entries for each query, a spare socket for each
	// family, two entries for each socket taken back and one for each
	// closed.
	ringBatch = 3*maxGather + 2 + 2*lanePending
	// ringEntries is each ring's size (a power of two).
	ringEntries = 128
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

// start sends q on s, through a lane: registered with p, connected to its
// server and sent, on a socket taken back before, else the lane's spare,
// else a new one. The queries that go out together share one batch (see
// package gather), maxGather at most. For a query whose goroutine sent
// the batches start returns the outcome; for one that joined another's
// it returns (true, nil) at once, and the query's reader learns the
// outcome from s.sent before it reads. It returns false, with s
// untouched, when the lanes cannot run the query (the poller's closing, a
// lane broken): then the caller does it with system calls (as s.sent
// does for a query that joined a batch).
func (l *ringLanes) start(p *upstreamPoller, s *udpSocket, q []byte) (bool, error) {
	s.sq = q
	s.edge, s.armed = true, true
	s.sstate.Store(ssQueued)
	if !l.g.Add(s, maxGather, func(batch []*udpSocket) { l.send(p, batch) }) {
		return true, nil
	}
	st := s.sstate.Swap(ssNone)
	if st == ssSyscalls {
		s.edge, s.armed = false, false
		return false, nil
	}
	return true, s.serr
}

// send sends the gathered queries of socks in one batch, with the
// entries that take back and close the lane's finished sockets, and
// tells each query's reader the outcome (finish). Called by one
// goroutine at a time (the gathering's flushing).
func (l *ringLanes) send(p *upstreamPoller, socks []*udpSocket) {
	l.batches.Add(1)
	l.gathered.Add(uint64(len(socks)))
	ln := l.lane()
	defer ln.mu.Unlock()
	if ln.done || ln.broken {
		for _, s := range socks {
			finish(s, ssSyscalls)
		}
		return
	}
	var at [maxGather]int // each query's first entry; -1: failed before
	var fresh [maxGather]bool
	var used [2]bool
	b := ln.batch[:0]
	for i, s := range socks {
		af, fam := family(s.server)
		used[fam] = true
		fd, isFresh := -1, true
		if k := len(ln.idle[fam]); k > 0 {
			fd, ln.idle[fam] = ln.idle[fam][k-1], ln.idle[fam][:k-1]
			isFresh = false
		} else if fd = ln.spare[fam]; fd >= 0 {
			ln.spare[fam] = -1
		} else {
			var err error
			if fd, err = syscall.Socket(af, sockType, syscall.IPPROTO_UDP); err != nil {
				s.serr, at[i] = os.NewSyscallError("socket", err), -1
				continue
			}
		}
		// From here the socket's release takes it back or closes it,
		// and its datagrams' events wake it.
		s.fd = fd
		p.bind(fd, s)
		at[i], fresh[i] = len(b), isFresh
		if isFresh {
			// Registered for good: a socket taken back keeps it.
			s.sev = edgeEvent(fd)
			b = append(b, uring.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &s.sev))
			b[len(b)-1].Flags = uring.Link
		}
		n := putSockaddr(&s.ssa, s.server)
		c := len(b)
		b = append(b, uring.Connect(fd, unsafe.Pointer(&s.ssa), n), uring.Send(fd, s.sq))
		b[c].Flags = uring.Link
	}
	spares := [2]int{-1, -1}
	for fam, af := range [2]int{syscall.AF_INET, syscall.AF_INET6} {
		if used[fam] && len(ln.idle[fam]) == 0 && ln.spare[fam] < 0 {
			spares[fam] = len(b)
			b = append(b, uring.Socket(af, sockType, syscall.IPPROTO_UDP))
		}
	}
	b, pending := ln.appendPending(b)
	if err := ln.r.Run(b, ln.res[:]); err != nil {
		ln.fail(err)
		for i, s := range socks {
			if at[i] >= 0 {
				s.serr = err
			}
			finish(s, ssSent)
		}
		return
	}
	for fam, j := range spares {
		if j >= 0 && ln.res[j] >= 0 {
			ln.spare[fam] = int(ln.res[j])
		}
	}
	ln.settle(pending)
	for i, s := range socks {
		if j := at[i]; j >= 0 {
			if fresh[i] {
				if r := ln.res[j]; r < 0 {
					s.serr = os.NewSyscallError("epoll_ctl", syscall.Errno(-r))
				}
				j++
			}
			switch {
			case s.serr != nil:
			case ln.res[j] < 0:
				s.serr = os.NewSyscallError("connect", syscall.Errno(-ln.res[j]))
			default:
				s.keep = true
				if r := ln.res[j+1]; r < 0 {
					s.serr = os.NewSyscallError("write", syscall.Errno(-r))
				}
			}
		}
		finish(s, ssSent)
	}
}

// The send states of a query that goes through the lanes
// (udpSocket.sstate).
const (
	ssNone     int32 = iota
	ssQueued         // gathered, not sent yet
	ssWaited         // gathered, and its reader waits for the outcome
	ssSent           // sent, or failed (serr)
	ssSyscalls       // the lanes could not take it: its reader sends it
)

// finish gives s its outcome, st, and wakes its reader if it waits for
// it, or has to act on it (a failure, a send left to it).
func finish(s *udpSocket, st int32) {
	wake := s.serr != nil || st == ssSyscalls
	if s.sstate.Swap(st) == ssWaited || wake {
		s.signal()
	}
}

// sent waits, for a query that joined another's batch (ringLanes.start),
// until the batch has run, and returns the send's error; a query the
// lanes could not take it sends with system calls. The reader calls it
// after each wait, before it reads or returns: the socket's descriptor
// and the query's bytes are the batch's until then.
func (s *udpSocket) sent() error {
	for {
		switch s.sstate.Load() {
		case ssNone:
			return nil
		case ssQueued:
			if s.sstate.CompareAndSwap(ssQueued, ssWaited) {
				<-s.ready
			}
		case ssWaited:
			<-s.ready // finish's token; another's (a Close's) is seen as closed
		case ssSent:
			s.sstate.Store(ssNone)
			return s.serr
		case ssSyscalls:
			s.sstate.Store(ssNone)
			s.edge, s.armed = false, false
			if err := s.connect(); err != nil {
				return err
			}
			if err := write(uintptr(s.fd), s.sq); err != nil {
				return os.NewSyscallError("write", err)
			}
			return nil
		}
	}
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
	if ln.ran != nil {
		ln.ran()
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
