package zonestore

import "errors"

// Sentinels returned by this package; test with errors.Is.
var (
	ErrLocked         = errors.New("the database is locked by another process (is a sovdns server running on it?)")
	ErrNoZone         = errors.New("no such zone")
	ErrZoneExists     = errors.New("zone already exists")
	ErrSyntax         = errors.New("syntax error")
	ErrIncludeOutside = errors.New("$INCLUDE refused")
	ErrBadVersion     = errors.New("unsupported database format version")
	ErrCorrupt        = errors.New("stored zone data is damaged")
	ErrNotFound       = errors.New("record not found")
	ErrNoChange       = errors.New("the change leaves the zone as it was")
	ErrReadOnly       = errors.New("the store is open read-only")
)
