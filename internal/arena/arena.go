// Package arena hands out copies of byte strings from shared blocks, for
// values that must stay valid together for a while (the keys and values
// bbolt keeps until a transaction commits, the addresses of the records
// read in one pass): one allocation per block rather than one or more per
// string, and no outgrown buffers left alive. Take does the same for
// values of one type, from a slice sized beforehand.
package arena

// Arena cuts copies from blocks that are never reallocated (a growing
// buffer would leave every outgrown copy alive as long as the copies cut
// from it). The blocks start small and double up to Block, so that a few
// hundred bytes cost about their size, not a whole block. The zero value
// is ready for use; an Arena is not safe for concurrent use.
type Arena struct {
	block []byte
	next  int // the size of the next block
}

// First and Block are the sizes of an arena's first block and of its
// largest.
const (
	First = 1 << 10
	Block = 1 << 20
)

// Cut returns a copy of b, capped at its end so that an append to it
// copies it, that stays valid as long as it is referenced.
func (a *Arena) Cut(b []byte) []byte {
	if len(b) > cap(a.block)-len(a.block) {
		if a.next == 0 {
			a.next = First
		}
		a.block = make([]byte, 0, max(a.next, len(b)))
		a.next = min(2*a.next, Block)
	}
	start := len(a.block)
	a.block = append(a.block, b...)
	return a.block[start:len(a.block):len(a.block)]
}

// Take returns the next unused element of s, a slice made with room for
// the values counted beforehand, so that they share one allocation; past
// its capacity (more values than counted), a new value of its own.
func Take[T any](s *[]T) *T {
	if len(*s) == cap(*s) {
		return new(T)
	}
	*s = (*s)[:len(*s)+1]
	return &(*s)[len(*s)-1]
}
