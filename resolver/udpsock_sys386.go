//go:build linux && 386

package resolver

import (
	"runtime"
	"syscall"
	"unsafe"
)

// On 386 the socket calls go through socketcall(2), with their arguments
// in memory; these are its call numbers (linux/net.h). The addresses in
// the argument arrays stay valid: nothing between taking them and the
// system call can move a stack (syscall.RawSyscall does not grow it), and
// the objects are kept alive until the call returns.
const (
	socketcallConnect  = 3
	socketcallRecvfrom = 12
)

// rawConnect connects fd to the socket address of n bytes at sa.
func rawConnect(fd int, sa unsafe.Pointer, n uintptr) syscall.Errno {
	args := [3]uintptr{uintptr(fd), uintptr(sa), n}
	_, _, e := syscall.RawSyscall(syscall.SYS_SOCKETCALL, socketcallConnect, uintptr(unsafe.Pointer(&args)), 0)
	runtime.KeepAlive(sa)
	return e
}

// rawRecv reads a datagram from the connected socket fd into buf (not
// empty), without its source address.
func rawRecv(fd int, buf []byte, flags int) (uintptr, syscall.Errno) {
	args := [6]uintptr{uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), uintptr(flags), 0, 0}
	r, _, e := syscall.RawSyscall(syscall.SYS_SOCKETCALL, socketcallRecvfrom, uintptr(unsafe.Pointer(&args)), 0)
	runtime.KeepAlive(buf)
	return r, e
}
