package resolver

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sovdns/sovdns/internal/uring"
)

// upstreamPoller waits for the answers to the exchanger's UDP queries
// with an epoll instance of its own, itself waited for by the runtime's
// poller. Each query's socket is registered for its answer alone (read
// readiness, one event at a time): the runtime's poller would register it
// for writing too, look at its flags (fcntl), attach a finalizer, and take
// it out again before closing it, where closing a socket drops it from an
// epoll instance anyway. Those two system calls, and the wake-ups for a
// socket that has become writable, were about a tenth of a cache miss's
// CPU; a socket here costs socket, connect, one epoll_ctl, the query's
// write, the answer's read and close. Through io_uring (ringLanes) a
// socket is kept from query to query and registered once, for every
// datagram (edge-triggered), its events naming its descriptor (bind):
// a query costs a connect and a write in one entry into the kernel, and
// the answer's read, which this poller makes for a reader that waits,
// the reads of all the events one epoll_pwait returns in one entry
// (ufill.go).
//
// One goroutine (run) takes the instance's events, and wakes the reader
// of each socket named, until the poller is closed: the exchanger closes
// it once unreachable.
type upstreamPoller struct {
	epfd int
	f    *os.File // epfd, for the runtime's poller
	rc   syscall.RawConn
	// ring sends the queries, nil where io_uring cannot (ringErr says
	// why).
	ring    *ringLanes
	ringErr error
	onErr   func(error)
	// fill reads the answers of the ring lanes' sockets for their
	// readers (ufill.go), nil where there is no ring; fillOff: it broke,
	// and no reader offers its buffer any more. The batch's slices are
	// run's alone; filled counts the datagrams it read.
	fill      *uring.Ring
	fillOff   atomic.Bool
	fillBatch []uring.SQE
	fillRes   [pollBatch]int32
	fillSocks []*udpSocket
	filled    atomic.Uint64
	// timers serves the reads' waits; readies holds the wake-up channels
	// of closed sockets.
	timers  timerPool
	readies sync.Pool

	mu    sync.Mutex
	socks []*udpSocket  // by slot; nil: free
	byFD  []*udpSocket  // by descriptor, the sockets registered for good
	gens  []uint32      // by slot: its registrations so far
	free  []int32       // free slots
	done  chan struct{} // closed when run returns
}

// newUpstreamPoller makes the epoll instance, and the rings that send the
// queries when ring is set and the kernel lets it (onErr: see
// ExchangeConfig.OnRingError).
func newUpstreamPoller(ring bool, onErr func(error)) (*upstreamPoller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(epfd), "upstream-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &upstreamPoller{epfd: epfd, f: f, rc: rc, onErr: onErr, done: make(chan struct{})}
	if ring {
		p.ring, p.ringErr = newRingLanes(onErr)
		if p.ring != nil {
			p.fill = newFill()
		}
	}
	go p.run()
	return p, nil
}

// Close closes the epoll instance: run returns, and no socket may be
// added.
func (p *upstreamPoller) Close() error {
	err := p.f.Close()
	if p.ring != nil {
		p.ring.close()
	}
	return err
}

// reserve gives s a slot, which names it in the poller's events.
func (p *upstreamPoller) reserve(s *udpSocket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var slot int32
	if k := len(p.free); k > 0 {
		slot, p.free = p.free[k-1], p.free[:k-1]
	} else {
		slot = int32(len(p.socks))
		p.socks = append(p.socks, nil)
		p.gens = append(p.gens, 0)
	}
	p.gens[slot]++
	p.socks[slot] = s
	s.slot, s.gen = slot, p.gens[slot]
}

// arm registers s again for its next datagram, after an event: each
// registration gives one.
func (p *upstreamPoller) arm(s *udpSocket) error { return p.ctl(syscall.EPOLL_CTL_MOD, s) }

// ctl adds or modifies s's registration; the event names s by its slot
// and the slot's registration count, so that an event for a socket gone
// does not wake the one that took its slot.
func (p *upstreamPoller) ctl(op int, s *udpSocket) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLONESHOT, Fd: s.slot, Pad: int32(s.gen)}
	for {
		_, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(p.epfd), uintptr(op), uintptr(s.fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return os.NewSyscallError("epoll_ctl", e)
		}
	}
}

// remove forgets s; its socket is closed after (which drops it from the
// epoll instance) or was never added.
func (p *upstreamPoller) remove(s *udpSocket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if int(s.slot) < len(p.socks) && p.socks[s.slot] == s {
		p.socks[s.slot] = nil
		p.free = append(p.free, s.slot)
	}
}

// registered returns how many sockets are registered.
func (p *upstreamPoller) registered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.socks) - len(p.free)
	for _, s := range p.byFD {
		if s != nil {
			n++
		}
	}
	return n
}

// pollBatch is how many events run takes per system call.
const pollBatch = 64

// run takes the epoll instance's events, without waiting in the kernel:
// the runtime's poller wakes it when there are some. It returns once the
// instance is closed.
func (p *upstreamPoller) run() {
	defer close(p.done)
	if p.fill != nil {
		defer p.fill.Close()
	}
	var ev [pollBatch]syscall.EpollEvent
	p.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&ev[0])), pollBatch, 0, 0, 0)
			if e == syscall.EINTR {
				continue
			}
			if e != 0 {
				return true // closed
			}
			n := int(r)
			for i := range n {
				p.wake(ev[i].Fd, uint32(ev[i].Pad))
			}
			p.fillClaimed()
			if n < pollBatch {
				return false // wait for more
			}
		}
	})
}

// wake wakes the reader of the socket an event names: the one in slot,
// if the event is for the socket there now; or, for a negative slot, the
// one that uses descriptor -1-slot now (a socket a ring lane keeps,
// registered once for good: see bind), whose buffer, if offered, is
// claimed instead, to be filled (fillClaimed) before its reader wakes.
func (p *upstreamPoller) wake(slot int32, gen uint32) {
	p.mu.Lock()
	var s *udpSocket
	switch {
	case slot < 0:
		if fd := int(-1 - slot); fd < len(p.byFD) {
			s = p.byFD[fd]
		}
	case int(slot) < len(p.socks) && p.gens[slot] == gen:
		s = p.socks[slot]
	}
	p.mu.Unlock()
	if s != nil && (slot >= 0 || !p.claim(s)) {
		s.signal()
	}
}

// bind has the events of descriptor fd, registered for good, wake s
// (nil: no one).
func (p *upstreamPoller) bind(fd int, s *udpSocket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fd >= len(p.byFD) {
		if s == nil {
			return
		}
		p.byFD = append(p.byFD, make([]*udpSocket, fd+1-len(p.byFD))...)
	}
	p.byFD[fd] = s
}

// edgeEvent is the registration, for good, of a socket a ring lane keeps:
// every datagram that comes is an event, which names the descriptor.
func edgeEvent(fd int) syscall.EpollEvent {
	return syscall.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(-1 - fd)}
}

// ready returns a wake-up channel for a socket, empty: one a closed
// socket had, or a new one. A token sent to the closed socket after it
// was taken (an event for it already read, a Close just after its read
// ended) can still reach the new socket, whose read then only finds
// nothing to read and waits again.
func (p *upstreamPoller) ready() chan struct{} {
	if c, ok := p.readies.Get().(chan struct{}); ok {
		select {
		case <-c:
		default:
		}
		return c
	}
	return make(chan struct{}, 1)
}
