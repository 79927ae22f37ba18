package zonestore

import "github.com/sovdns/sovdns/internal/mapped"

// releaseMapped gives back the pages of the database file mapped so far
// (mapped.Release). Zones are served from memory, never from the file, so
// after reading every zone the mapping would otherwise keep the whole file
// resident for nothing.
func (s *Store) releaseMapped() {
	if err := mapped.Release(s.db); err != nil {
		s.opts.Logger.Debug("database mapping not released", "err", err)
	}
}
