//go:build !linux

package zonestore

// releaseMapped does nothing where madvise is not used.
func (s *Store) releaseMapped() {}
