package hostile

import "errors"

var (
	// ErrTooManyWrites is a Handler's write beyond MaxWrites for one query.
	ErrTooManyWrites = errors.New("hostile: too many writes for one query")
	// ErrNotTCP is a stream write (Stream, Trickle) on a UDP query.
	ErrNotTCP = errors.New("hostile: stream write on a UDP query")
)
