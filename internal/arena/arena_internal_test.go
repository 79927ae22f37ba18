package arena

import (
	"bytes"
	"testing"
)

// TestArena: values are copies that later cuts never overwrite, the first
// block is small, and blocks grow to Block, not beyond (unless one value
// needs more).
func TestArena(t *testing.T) {
	var a Arena
	src := []byte("value-0")
	v0 := a.Cut(src)
	src[0] = 'X' // the cut is a copy
	if string(v0) != "value-0" {
		t.Fatalf("first value %q", v0)
	}
	if cap(a.block) != First {
		t.Errorf("first block of %d bytes, want %d", cap(a.block), First)
	}
	var vals [][]byte
	for i := range 5000 {
		v := bytes.Repeat([]byte{byte(i)}, 300)
		vals = append(vals, a.Cut(v))
		if cap(a.block) > Block {
			t.Fatalf("block of %d bytes, more than %d", cap(a.block), Block)
		}
	}
	for i, v := range vals {
		if len(v) != 300 || cap(v) != 300 || v[0] != byte(i) || v[299] != byte(i) {
			t.Fatalf("value %d changed: len %d cap %d first %d", i, len(v), cap(v), v[0])
		}
	}
	if cap(a.block) != Block {
		t.Errorf("after 1.5 MB of values the block is %d bytes, want %d", cap(a.block), Block)
	}
	big := a.Cut(make([]byte, 2*Block))
	if len(big) != 2*Block {
		t.Errorf("a value larger than a block: %d bytes", len(big))
	}
	if string(v0) != "value-0" {
		t.Errorf("first value now %q", v0)
	}
}

// TestTake: values come from the slice's room while it lasts, then each
// on its own.
func TestTake(t *testing.T) {
	s := make([]int, 0, 2)
	a, b := Take(&s), Take(&s)
	*a, *b = 1, 2
	c := Take(&s)
	*c = 3
	if len(s) != 2 || s[0] != 1 || s[1] != 2 || &s[0] != a || &s[1] != b {
		t.Fatalf("slice %v: the first two values are not its elements", s)
	}
	if c == a || c == b || *a != 1 || *b != 2 {
		t.Fatal("the value past the room is not a new one")
	}
}
