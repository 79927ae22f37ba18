//go:build linux && !386

package resolver

import (
	"syscall"
	"unsafe"
)

// rawConnect connects fd to the socket address of n bytes at sa.
func rawConnect(fd int, sa unsafe.Pointer, n uintptr) syscall.Errno {
	_, _, e := syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(sa), n)
	return e
}

// rawRecv reads a datagram from the connected socket fd into buf (not
// empty), without its source address.
func rawRecv(fd int, buf []byte, flags int) (uintptr, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), uintptr(flags), 0, 0)
	return r, e
}
