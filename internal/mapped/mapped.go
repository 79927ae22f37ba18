// Package mapped gives back the pages of a bbolt file that a process has
// mapped: they leave its resident set and stay in the page cache, from
// which a later read maps them again.
//
// A bbolt file is read through a shared, read-only mapping, and every page
// a transaction reads stays in the process's resident memory until the
// kernel needs it. For files that are served from memory (the zone store)
// or only written to (the resolver's persisted cache), those pages are
// resident for nothing: after a pass over every zone, or a batch of cache
// changes spread over the whole tree, the whole file would be.
package mapped

import (
	bolt "go.etcd.io/bbolt"
)

// Release tells the kernel that the pages of db's file mapped so far are
// not needed for now. It holds a read transaction meanwhile, so that the
// mapping cannot be replaced under it. It does nothing where the system
// has no such call.
func Release(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		info := db.Info()
		if info == nil || info.Data == 0 || tx.Size() <= 0 {
			return nil
		}
		return release(info.Data, tx.Size())
	})
}

// Resident returns how much of the file at path this process's mappings
// hold resident, in bytes (Linux: /proc/self/smaps), or an error wrapping
// errors.ErrUnsupported elsewhere.
func Resident(path string) (int64, error) { return resident(path) }
