package audit

import "errors"

// Sentinels of this package; test with errors.Is.
var (
	// ErrNoSuffixes means no national suffix was given: without them
	// nothing can be called foreign.
	ErrNoSuffixes = errors.New("no national suffixes: set resilience.national_suffixes (or give --suffix)")
	// ErrNotNational is a zone whose origin is under none of the national
	// suffixes: everything in it would be foreign.
	ErrNotNational = errors.New("the zone is not under the national suffixes")
)

// Reasons a lookup did not count; they appear in Finding.Reason.
var (
	errLookupLimit = errors.New("lookup limit of the audit reached")
	errTimeLimit   = errors.New("time limit of the audit reached")
)
