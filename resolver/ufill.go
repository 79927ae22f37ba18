package resolver

import (
	"fmt"
	"math"
	"os"
	"syscall"

	"github.com/sovdns/sovdns/internal/uring"
)

// The poller reads the answers itself, through a ring of its own (fill),
// for the sockets a ring lane keeps: a reader that waits leaves its
// buffer with its socket (offer), and the poller, taking a socket's event,
// claims the buffer and reads the datagram into it. The reads of one
// epoll_pwait's events go in one entry into the kernel, where each woken
// reader made a recvfrom of its own: one system call less for each
// answer when answers come faster than the poller is woken.
//
// A buffer is the reader's until it is claimed, the poller's until it is
// filled, then the reader's again; the state (udpSocket.rstate) moves
// offered → claimed → filled → idle, the reader withdrawing an offer that
// was not claimed (offered → idle). A reader whose wait ends while its
// buffer is claimed (its deadline, a Close) waits for the fill, which the
// poller's batch completes at once (the reads do not wait). The socket's
// descriptor cannot change meanwhile: it is released only after the read
// returns.
const (
	rsIdle int32 = iota
	rsOffered
	rsClaimed
	rsFilled
)

// fillBroken is a fill whose batch failed part-way: the kernel may still
// write the buffer, which the reader must not use again.
const fillBroken = math.MinInt32

// errFillBroken is the read of a fill whose batch failed.
var errFillBroken = fmt.Errorf("%w: the poller's read", uring.ErrBroken)

// newFill makes the poller's ring, nil where it cannot be made: the
// readers then read with a system call each.
func newFill() *uring.Ring {
	r, err := uring.New(pollBatch)
	if err != nil {
		return nil
	}
	if r.Supports(uring.OpRecv) != nil {
		r.Close()
		return nil
	}
	return r
}

// offer leaves buf with s for the poller to read the next datagram into,
// where it can; it reports whether it did. The reader then withdraws the
// offer once its wait ends, whatever ended it.
func (s *udpSocket) offer(buf []byte) bool {
	p := s.p
	if !s.edge || p.fill == nil || p.fillOff.Load() {
		return false
	}
	s.rbuf = buf
	s.rstate.Store(rsOffered)
	return true
}

// withdraw takes back an offered buffer: got reports whether the poller
// read into it, r the read's result (a length, as recv with MSG_TRUNC
// gives it, minus an errno, or fillBroken).
func (s *udpSocket) withdraw() (got bool, r int32) {
	if s.rstate.CompareAndSwap(rsOffered, rsIdle) {
		s.rbuf = nil
		return false, 0
	}
	for s.rstate.Load() != rsFilled {
		<-s.ready // the fill's token, which comes once the batch is done
	}
	r = s.rres
	s.rbuf = nil
	s.rstate.Store(rsIdle)
	return true, r
}

// filled turns the result of a fill into read's results; again reports
// a fill that found nothing (an event for a datagram already read).
func (s *udpSocket) filled(r int32, buf []byte) (n int, trunc, again bool, err error) {
	switch {
	case r >= 0:
		n, trunc = min(int(r), len(buf)), int(r) > len(buf)
		if s.expired {
			err = os.ErrDeadlineExceeded
		}
		return n, trunc, false, err
	case r == fillBroken:
		return 0, false, false, errFillBroken
	case syscall.Errno(-r) == syscall.EAGAIN || syscall.Errno(-r) == syscall.EINTR:
		return 0, false, true, nil
	default:
		return 0, false, false, os.NewSyscallError("recvfrom", syscall.Errno(-r))
	}
}

// claim takes s's offered buffer, if it has one, into the poller's batch.
// Called by run only.
func (p *upstreamPoller) claim(s *udpSocket) bool {
	if p.fill == nil || len(p.fillSocks) == pollBatch || !s.rstate.CompareAndSwap(rsOffered, rsClaimed) {
		return false
	}
	p.fillBatch = append(p.fillBatch, uring.Recv(s.fd, s.rbuf, syscall.MSG_TRUNC))
	p.fillSocks = append(p.fillSocks, s)
	return true
}

// fillClaimed reads the claimed buffers, in one entry into the kernel,
// and wakes their readers. Called by run only.
func (p *upstreamPoller) fillClaimed() {
	if len(p.fillSocks) == 0 {
		return
	}
	err := p.fill.Run(p.fillBatch, p.fillRes[:len(p.fillBatch)])
	if err != nil {
		p.fillOff.Store(true)
		if p.onErr != nil {
			p.onErr(err)
		}
	}
	for i, s := range p.fillSocks {
		r := p.fillRes[i]
		if err != nil {
			r = fillBroken
		}
		s.rres = r
		s.rstate.Store(rsFilled)
		s.signal()
		p.fillSocks[i] = nil
	}
	p.filled.Add(uint64(len(p.fillSocks)))
	p.fillBatch, p.fillSocks = p.fillBatch[:0], p.fillSocks[:0]
}
