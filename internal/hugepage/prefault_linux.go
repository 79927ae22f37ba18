package hugepage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Prefaulter faults in the memory the runtime maps as the heap grows,
// before the program first writes to it (Step, Run): in one system call a
// chunk at a time, instead of a fault for each page in whichever
// goroutine first writes to it (often a listener's). On the virtual
// machine measured, a fault of a 4 KiB page cost 10-14 µs, populating one
// 0.5-0.9 µs, and the program's first write to a populated page still
// some 5 µs there (the host maps the guest's page tables again); elsewhere
// that write costs nothing. The zero value is ready; it is not safe for
// concurrent use.
type Prefaulter struct {
	// next is where the heap's writable memory ended at the last Step
	// (0: not found yet); Step populates from there.
	next uintptr
	// unsupported: the kernel refused MADV_POPULATE_WRITE (before 5.14).
	unsupported bool
}

// Step populates the heap's memory mapped for writing since the last Step,
// PrefaultChunk at a time from where that memory ended, at most
// PrefaultMax bytes in all (madvise MADV_POPULATE_WRITE: the kernel faults
// each page in as a write would, without writing to it, so the memory
// still reads as the zeroes the runtime takes freshly mapped memory to
// hold). It stops at the first chunk not yet mapped for writing (the
// runtime reserves the heap's arenas without access). It returns how many
// bytes it populated. The first Step only finds where the heap ends.
func (p *Prefaulter) Step() (int64, error) {
	if p.unsupported {
		return 0, nil
	}
	if p.next == 0 {
		if err := populateSupported(); err != nil {
			p.unsupported = true
			return 0, err
		}
		return 0, p.locate()
	}
	page := uintptr(os.Getpagesize())
	var n int64
	for n < PrefaultMax {
		// Whether the chunk is mapped yet, from its last page: a raw
		// call that fails at once when it is not, as it does at nearly
		// every look (a call the runtime is told of wakes its monitor
		// thread, which then polls every 20 µs for a while: dear on a
		// virtual machine; the listeners' calls are raw too).
		if _, _, errno := unix.RawSyscall(unix.SYS_MADVISE, p.next+PrefaultChunk-page, page, unix.MADV_POPULATE_WRITE); errno != 0 {
			// ENOMEM (not mapped) or EINVAL (mapped without access):
			// not the heap's yet.
			return n, nil
		}
		// The chunk, 0.3-3 ms in the kernel: a call the runtime is
		// told of, so that the processor goes to the listeners'
		// goroutines meanwhile.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, p.next, PrefaultChunk, unix.MADV_POPULATE_WRITE); errno != 0 {
			return n, nil
		}
		p.next += PrefaultChunk
		n += PrefaultChunk
	}
	return n, nil
}

// locate moves next to where the heap's highest writable mapping ends, if
// that is beyond next: the runtime rarely starts a new arena elsewhere,
// and Step would wait for the end of the old one for ever.
func (p *Prefaulter) locate() error {
	regions, err := heap()
	if err != nil {
		return err
	}
	for _, r := range regions {
		if end := r.end &^ (PrefaultChunk - 1); end > p.next {
			p.next = end
		}
	}
	return nil
}

// Run calls Step at once, then every PrefaultFast while the heap grows;
// once it has not grown for PrefaultIdle, after PrefaultSlow, and after
// twice as long each time Step finds nothing, up to PrefaultIdle; until
// ctx ends. A slow Step that finds nothing looks for the heap's end again
// (locate), at most once every PrefaultLocate. log, when not nil, has what
// each stretch of growth populated and any error.
func (p *Prefaulter) Run(ctx context.Context, log *slog.Logger) {
	t := time.NewTimer(0)
	defer t.Stop()
	wait := PrefaultSlow
	var idle time.Duration
	var grown int64
	var located time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := p.Step()
		fast := wait == PrefaultFast
		if n == 0 && err == nil && !fast && time.Since(located) >= PrefaultLocate {
			located = time.Now()
			err = p.locate()
		}
		if err != nil {
			if log != nil {
				log.Debug("heap memory not faulted in ahead", "err", err)
			}
			if p.unsupported {
				return
			}
		}
		switch {
		case n > 0:
			wait, idle, grown = PrefaultFast, 0, grown+n
		case fast:
			if idle += PrefaultFast; idle >= PrefaultIdle {
				if log != nil {
					log.Debug("heap memory faulted in ahead", "bytes", grown)
				}
				wait, grown = PrefaultSlow, 0
			}
		default:
			wait = min(2*wait, PrefaultIdle)
		}
		t.Reset(wait)
	}
}

// populateSupported returns an error where the kernel has no
// MADV_POPULATE_WRITE (before Linux 5.14): it is tried on a page of its
// own, as on the heap EINVAL also means a range without access.
func populateSupported() error {
	b, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return fmt.Errorf("huge pages: populating memory: %w", err)
	}
	defer unix.Munmap(b)
	if err := unix.Madvise(b, unix.MADV_POPULATE_WRITE); err != nil {
		return fmt.Errorf("huge pages: populating memory: %w", err)
	}
	return nil
}
