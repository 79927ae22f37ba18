// Package testaddr hands the servers that tests start addresses that no
// other server can hold: a loopback address of their own, 127.a.b.c, and a
// port found free on it.
//
// Linux routes all of 127.0.0.0/8 to the loopback interface, so any of its
// addresses can be bound without setup. Addresses come from a process-wide
// counter, so no two servers of one test process get the same one, and the
// counter starts at a point derived from the process id, so two test
// processes running at once (the packages of `go test ./...`, or two
// checkouts) are unlikely to meet. The port is picked below the kernel's
// ephemeral range, where no socket is given a port implicitly, and probed
// free for UDP and TCP without SO_REUSEPORT: between the probe and the
// server's bind, only a process binding that very port on that very address
// (or on the wildcard address) could take it.
//
// The addresses stay clear of 127.0.0.0/16, where tests and programs use
// fixed addresses (127.0.0.1, 127.0.1.1 for the host name).
//
// A socket this process closes is not free for another process at once if
// a child process was forked while it was open and has not yet exec'd: the
// child holds a copy until exec closes it. The probe, and Release, which
// tests use to close sockets whose address another process binds next,
// hold syscall.ForkLock for reading, which no fork holds while it runs.
package testaddr

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

const (
	// Single addresses: 127.1.0.1 to 127.127.255.254, last octet 1-254.
	singleCount = 127 * 256 * 254
	// /24 blocks: 127.128.0.0/24 to 127.254.255.0/24.
	blockCount = 127 * 256
)

var (
	singleStart = uint64(os.Getpid()) * 2654435761 % singleCount
	blockStart  = uint64(os.Getpid()) * 40503 % blockCount
	singles     atomic.Uint64
	blocks      atomic.Uint64
)

// IP returns a loopback address no other caller in this process gets.
func IP() netip.Addr {
	i := (singleStart + singles.Add(1) - 1) % singleCount
	a := 1 + i/(256*254)
	rem := i % (256 * 254)
	return netip.AddrFrom4([4]byte{127, byte(a), byte(rem / 254), byte(1 + rem%254)})
}

// Block is a /24 of loopback addresses of its own, for a set of servers
// whose addresses are written into zone data (a simulated hierarchy).
type Block struct {
	a, b byte
}

// NewBlock returns a /24 no other caller in this process gets.
func NewBlock() Block {
	i := (blockStart + blocks.Add(1) - 1) % blockCount
	return Block{a: byte(128 + i/256), b: byte(i % 256)}
}

// IP returns the block's address ending in host.
func (b Block) IP(host byte) netip.Addr { return netip.AddrFrom4([4]byte{127, b.a, b.b, host}) }

// Rewrite replaces every address 127.0.0.N in text with the block's
// address ending in N: zone data written for 127.0.0.0/24 moves into the
// block. Prefixes such as 127.0.0.0/8 must not occur in text.
func (b Block) Rewrite(text string) string {
	return strings.ReplaceAll(text, "127.0.0.", fmt.Sprintf("127.%d.%d.", b.a, b.b))
}

// AddrPort returns a new address of its own (IP) with a port free on it
// (Port).
func AddrPort(t testing.TB) netip.AddrPort {
	t.Helper()
	ip := IP()
	return netip.AddrPortFrom(ip, Port(t, ip))
}

// Port returns a port below the ephemeral range that is free for UDP and
// TCP on every address of ips at the time of the call, probed without
// SO_REUSEPORT. It tries a bounded number of random ports.
func Port(t testing.TB, ips ...netip.Addr) uint16 {
	t.Helper()
	port, err := FreePort(ips...)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// FreePort is Port for programs that are not tests (lab scripts): it
// returns an error where Port fails the test.
func FreePort(ips ...netip.Addr) (uint16, error) {
	lo, hi := portRange()
	var last error
	for range 100 {
		port := uint16(lo + rand.IntN(hi-lo))
		if last = Free(port, ips...); last == nil {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port in [%d, %d) free on %v for UDP and TCP: last: %w", lo, hi, ips, last)
}

// portRange is [lo, hi): ports the kernel never hands out implicitly,
// above the well-known and common service ports.
func portRange() (lo, hi int) {
	lo, hi = 10000, 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	if eph, err := strconv.Atoi(f[0]); err == nil && eph > lo+1000 && eph < hi {
		hi = eph
	}
	return lo, hi
}

// Release runs close, which closes sockets of this process, while no
// child process is being forked: once it returns, no child holds a copy of
// them, and their addresses can be bound by another process at once.
func Release(close func()) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	close()
}

// Free reports, as an error, whether port is not free for UDP and TCP on
// every address of ips, probed as Port does.
func Free(port uint16, ips ...netip.Addr) error {
	if len(ips) == 0 {
		return errors.New("no address to probe")
	}
	// Under ForkLock: no child is forked with a copy of the probes.
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	for _, ip := range ips {
		addr := netip.AddrPortFrom(ip, port).String()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", addr)
		pc.Close()
		if err != nil {
			return err
		}
		ln.Close()
	}
	return nil
}
