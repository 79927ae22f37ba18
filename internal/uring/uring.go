//go:build linux

// Package uring runs batches of system calls through one io_uring
// (Linux 5.19 and later for every operation it names): one io_uring_enter
// submits a batch and waits for all of it. It is meant for calls that do
// not block (on non-blocking sockets: socket, connect, send, close,
// epoll_ctl), where a batch costs one entry into the kernel instead of
// one a call; on a virtual machine an entry costs a microsecond or more.
//
// A Ring is not safe for concurrent use: its caller holds it for the
// length of Run.
package uring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Operation codes (enum io_uring_op).
const (
	OpNop      = 0
	OpConnect  = 16
	OpClose    = 19
	OpSend     = 26
	OpRecv     = 27
	OpEpollCtl = 29
	OpSocket   = 45
)

// SQE flags.
const (
	// Link runs the next entry of the batch only if this one succeeds;
	// otherwise it ends with ECANCELED.
	Link = 1 << 2
)

// SQE is one submission entry (struct io_uring_sqe), 64 bytes. The
// helpers below fill the fields each operation reads; UserData is set by
// Run.
type SQE struct {
	Op       uint8
	Flags    uint8
	ioprio   uint16
	FD       int32
	Off      uint64
	Addr     uint64
	Len      uint32
	OpFlags  uint32
	UserData uint64
	bufIndex uint16
	persona  uint16
	fileIdx  int32
	addr3    uint64
	_        uint64
}

// Socket makes a socket, as socket(2); the result is its descriptor.
func Socket(domain, typ, proto int) SQE {
	return SQE{Op: OpSocket, FD: int32(domain), Off: uint64(typ), Len: uint32(proto)}
}

// Connect connects fd to the address at sa (n bytes), as connect(2); an
// address of family AF_UNSPEC disconnects a datagram socket. sa must
// stay in place until Run returns (not on a goroutine's stack).
func Connect(fd int, sa unsafe.Pointer, n uintptr) SQE {
	return SQE{Op: OpConnect, FD: int32(fd), Addr: uint64(uintptr(sa)), Off: uint64(n)}
}

// Send sends b on the connected socket fd, as send(2) with MSG_DONTWAIT:
// the result is the number of bytes sent, or EAGAIN at once where the
// socket has no room (the ring would otherwise wait for it, and Run
// with it).
func Send(fd int, b []byte) SQE {
	return SQE{Op: OpSend, FD: int32(fd), Addr: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))), Len: uint32(len(b)), OpFlags: unix.MSG_DONTWAIT}
}

// Recv reads a datagram from fd into b, as recv(2) with MSG_DONTWAIT and
// flags: EAGAIN at once when none waits.
func Recv(fd int, b []byte, flags int) SQE {
	return SQE{Op: OpRecv, FD: int32(fd), Addr: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))), Len: uint32(len(b)), OpFlags: uint32(flags | unix.MSG_DONTWAIT)}
}

// Close closes fd, as close(2).
func Close(fd int) SQE { return SQE{Op: OpClose, FD: int32(fd)} }

// EpollCtl is epoll_ctl(2) on epfd: op on fd, with the event at ev (read
// when the entry is submitted).
func EpollCtl(epfd, op, fd int, ev *syscall.EpollEvent) SQE {
	return SQE{Op: OpEpollCtl, FD: int32(epfd), Len: uint32(op), Off: uint64(fd), Addr: uint64(uintptr(unsafe.Pointer(ev)))}
}

// cqe is one completion entry (struct io_uring_cqe).
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// params is struct io_uring_params.
type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	_                                                                      [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, _ uint32
		_                                                           uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, _ uint32
		_                                                           uint64
	}
}

// mmap offsets and io_uring_enter, io_uring_register arguments.
const (
	offSQRing       = 0
	offCQRing       = 0x8000000
	offSQEs         = 0x10000000
	enterGetEvents  = 1
	enterExtArg     = 1 << 3
	featExtArg      = 1 << 8
	registerProbe   = 8
	opSupported     = 1
	setupSubmitAll  = 1 << 7
	probeOps        = 256
	probeHeaderSize = 16
)

// Ring is one io_uring instance with its queues mapped.
type Ring struct {
	fd             int
	maps           [3][]byte
	sqTail, cqHead *uint32
	sqHead, cqTail *uint32
	sqMask, cqMask uint32
	sqes           []SQE
	cqes           []cqe
	// broken: a batch failed part-way; the ring is not used again.
	broken bool
	// The wait's limit, passed to io_uring_enter.
	arg getEventsArg
	ts  kernelTimespec
}

// kernelTimespec is struct __kernel_timespec: 64-bit fields on every
// architecture (unix.Timespec has 32-bit ones on 386).
type kernelTimespec struct {
	sec, nsec int64
}

// getEventsArg is struct io_uring_getevents_arg.
type getEventsArg struct {
	sigmask   uint64
	sigmaskSz uint32
	_         uint32
	ts        uint64
}

// waitLimit bounds a batch's wait for its completions: the operations
// run does not block, so one that takes longer means the ring is broken.
const waitLimit = time.Second

// ErrBroken is a batch that did not complete (its entries may still read
// the memory they point to), or one given to a ring where that happened.
var ErrBroken = errors.New("io_uring: ring broken")

// New makes a ring for batches of up to entries operations (a power of
// two). It returns an error wrapping the system's where io_uring is
// missing or refused (kernel.io_uring_disabled, a seccomp filter).
func New(entries uint32) (*Ring, error) {
	var p params
	// Submit all: an entry that fails does not stop the ones after it
	// from being taken (Linux 5.18). No cooperative task running: work
	// the kernel queues for the submitting thread interrupts it, so a
	// batch whose goroutine moved to another thread still completes.
	p.flags = setupSubmitAll
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, os.NewSyscallError("io_uring_setup", e)
	}
	r := &Ring{fd: int(fd), ts: kernelTimespec{sec: int64(waitLimit / time.Second), nsec: int64(waitLimit % time.Second)}}
	r.arg.ts = uint64(uintptr(unsafe.Pointer(&r.ts))) // the ring stays where it is on the heap
	if p.features&featExtArg == 0 {
		r.Close()
		return nil, errors.New("io_uring: no timed waits (before Linux 5.11)")
	}
	sizes := [3]int{int(p.sqOff.array + p.sqEntries*4), int(p.cqOff.cqes + p.cqEntries*uint32(unsafe.Sizeof(cqe{}))), int(p.sqEntries) * int(unsafe.Sizeof(SQE{}))}
	for i, off := range [3]int64{offSQRing, offCQRing, offSQEs} {
		m, err := unix.Mmap(r.fd, off, sizes[i], unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("io_uring: mapping its queues: %w", err)
		}
		r.maps[i] = m
	}
	sq, cq := r.maps[0], r.maps[1]
	r.sqHead = (*uint32)(unsafe.Pointer(&sq[p.sqOff.head]))
	r.sqTail = (*uint32)(unsafe.Pointer(&sq[p.sqOff.tail]))
	r.sqMask = *(*uint32)(unsafe.Pointer(&sq[p.sqOff.ringMask]))
	array := unsafe.Slice((*uint32)(unsafe.Pointer(&sq[p.sqOff.array])), p.sqEntries)
	for i := range array {
		array[i] = uint32(i) // entry i of the queue is SQE i
	}
	r.cqHead = (*uint32)(unsafe.Pointer(&cq[p.cqOff.head]))
	r.cqTail = (*uint32)(unsafe.Pointer(&cq[p.cqOff.tail]))
	r.cqMask = *(*uint32)(unsafe.Pointer(&cq[p.cqOff.ringMask]))
	r.sqes = unsafe.Slice((*SQE)(unsafe.Pointer(&r.maps[2][0])), p.sqEntries)
	r.cqes = unsafe.Slice((*cqe)(unsafe.Pointer(&cq[p.cqOff.cqes])), p.cqEntries)
	return r, nil
}

// Supports returns an error naming the first of ops the kernel does not
// have (IORING_REGISTER_PROBE).
func (r *Ring) Supports(ops ...uint8) error {
	var probe [probeHeaderSize + probeOps*8]byte
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerProbe, uintptr(unsafe.Pointer(&probe[0])), probeOps, 0, 0)
	if e != 0 {
		return os.NewSyscallError("io_uring_register", e)
	}
	last := probe[0]
	for _, op := range ops {
		entry := probe[probeHeaderSize+int(op)*8:]
		if op > last || binary.NativeEndian.Uint16(entry[2:4])&opSupported == 0 {
			return fmt.Errorf("io_uring: operation %d not supported by this kernel", op)
		}
	}
	return nil
}

// Run submits batch and waits until every entry has completed, then
// stores each one's result in res (res[i] for batch[i]: a count or a
// descriptor, or minus an errno). len(batch) must not pass the ring's
// entries, nor len(res). The memory entries point to must stay in place
// until Run returns.
func (r *Ring) Run(batch []SQE, res []int32) error {
	n := uint32(len(batch))
	if n == 0 {
		return nil
	}
	if r.broken {
		return ErrBroken
	}
	if n > uint32(len(r.sqes)) || len(res) < len(batch) {
		return fmt.Errorf("io_uring: a batch of %d for a ring of %d", n, len(r.sqes))
	}
	tail := *r.sqTail
	for i := range batch {
		sqe := &r.sqes[(tail+uint32(i))&r.sqMask]
		*sqe = batch[i]
		sqe.UserData = uint64(i)
	}
	atomic.StoreUint32(r.sqTail, tail+n)
	var until time.Time // set at the first retry
	for tries := 0; ; tries++ {
		e := r.enter(n)
		if r.ready() >= n {
			break
		}
		again := e == 0 || e == syscall.EINTR || e == syscall.EAGAIN || e == syscall.EBUSY
		if again {
			// A signal (the runtime's preemption, every few ms) ends
			// each wait early: the limit is on the whole batch.
			if until.IsZero() {
				until = time.Now().Add(waitLimit)
			} else if time.Now().After(until) {
				again, e = false, syscall.ETIME
			}
		}
		if !again || tries >= maxTries {
			// The entries may not all have run, nor stopped reading
			// the memory they point to: the ring is not used again,
			// and the caller is told not to reuse that memory.
			r.broken = true
			r.drain(res)
			return fmt.Errorf("%w: io_uring_enter: %w", ErrBroken, e)
		}
	}
	r.drain(res)
	return nil
}

// enter submits what the queue holds and waits until n completions are
// there, or waitLimit has passed (ETIME). A raw call: the batch's
// operations do not block, and a call the runtime is told of wakes its
// monitor thread.
func (r *Ring) enter(n uint32) syscall.Errno {
	pending := atomic.LoadUint32(r.sqTail) - atomic.LoadUint32(r.sqHead)
	_, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(pending), uintptr(n),
		enterGetEvents|enterExtArg, uintptr(unsafe.Pointer(&r.arg)), unsafe.Sizeof(r.arg))
	return e
}

// maxTries bounds the entries into the kernel for one batch.
const maxTries = 10000

// ready returns how many completions wait.
func (r *Ring) ready() uint32 { return atomic.LoadUint32(r.cqTail) - *r.cqHead }

// drain takes every waiting completion into res.
func (r *Ring) drain(res []int32) {
	head, tail := *r.cqHead, atomic.LoadUint32(r.cqTail)
	for ; head != tail; head++ {
		c := &r.cqes[head&r.cqMask]
		if c.userData < uint64(len(res)) {
			res[c.userData] = c.res
		}
	}
	atomic.StoreUint32(r.cqHead, head)
}

// Close unmaps the queues and closes the ring.
func (r *Ring) Close() error {
	for i, m := range r.maps {
		if m != nil {
			unix.Munmap(m)
			r.maps[i] = nil
		}
	}
	return syscall.Close(r.fd)
}
