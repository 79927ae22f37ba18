package server

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// bucketTable returns a table of n empty buckets in an anonymous mapping
// of its own, and what unmaps it; a heap slice (and nil) when the mapping
// cannot be made. Outside the heap, the table's pages become resident as
// accounts touch them (a quiet server touches few), and the runtime's
// memory limit, which counts the live heap with room for garbage beside
// it, does not count the whole table as live: in the heap, the default
// table of 8 MiB raised the limit, and so the resident size of a busy
// server, by some 10 MiB. rrlBucket holds no pointers, so the collector
// need not see it.
func bucketTable(n int) ([]rrlBucket, func()) {
	size := n * int(unsafe.Sizeof(rrlBucket{}))
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return make([]rrlBucket, n), nil
	}
	return unsafe.Slice((*rrlBucket)(unsafe.Pointer(unsafe.SliceData(mem))), n), func() { _ = unix.Munmap(mem) }
}
