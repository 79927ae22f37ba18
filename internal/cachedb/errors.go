package cachedb

import "errors"

// Sentinels returned by this package; test with errors.Is. Any error from
// Load means the file was not used: the cache is left as it was.
var (
	ErrLocked     = errors.New("the cache file is locked by another process")
	ErrBadVersion = errors.New("unsupported cache file format version")
	ErrCorrupt    = errors.New("the cache file is damaged")
)
