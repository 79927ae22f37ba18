package zonestore

import (
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// releaseMapped tells the kernel that the pages of the database file
// mapped so far are not needed for now (madvise MADV_DONTNEED): they leave
// the process's resident set and stay in the page cache, from which a
// later read maps them again. Zones are served from memory, never from
// the file, so after reading every zone the mapping would otherwise keep
// the whole file resident for nothing.
func (s *Store) releaseMapped() {
	_ = s.db.View(func(tx *bolt.Tx) error {
		info := s.db.Info()
		if info == nil || info.Data == 0 || tx.Size() <= 0 {
			return nil
		}
		// Under a read transaction the mapping cannot be replaced. The
		// address comes from bbolt as an integer, so the call is made
		// with it as it is.
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, info.Data, uintptr(tx.Size()), unix.MADV_DONTNEED)
		if errno != 0 {
			s.opts.Logger.Debug("madvise of the database mapping failed", "err", errno)
		}
		return nil
	})
}
