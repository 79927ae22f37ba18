package zone

import (
	"bytes"
	"slices"

	"github.com/miekg/dns"
)

// Set is an immutable collection of zones indexed for longest-match lookup.
// Changing it means building a new Set (With, Without) and swapping it.
//
// The set is a persistent map: With and Without share everything they do
// not change with the set they came from, so replacing one zone costs the
// same however many zones the set holds.
type Set struct {
	byKey cowMap[*Zone]
}

// NewSet returns a set holding zs; a later zone with the same origin wins.
func NewSet(zs ...*Zone) *Set {
	e := newCowEditor[*Zone](len(zs))
	for _, z := range zs {
		e.set(z.Key, z)
	}
	return &Set{byKey: e.done()}
}

// With returns a copy of s in which z replaces any zone with its origin.
func (s *Set) With(z *Zone) *Set {
	e := s.byKey.edit()
	e.set(z.Key, z)
	return &Set{byKey: e.done()}
}

// Without returns a copy of s without the zone at origin (a wire key).
func (s *Set) Without(key string) *Set {
	if _, ok := s.byKey.get(key); !ok {
		return s
	}
	e := s.byKey.edit()
	e.del(key)
	return &Set{byKey: e.done()}
}

// Len returns the number of zones.
func (s *Set) Len() int { return s.byKey.len() }

// Get returns the zone whose origin is exactly key.
func (s *Set) Get(key string) *Zone {
	z, _ := s.byKey.get(key)
	return z
}

// Each calls fn for every zone, in no particular order, until fn returns
// false.
func (s *Set) Each(fn func(*Zone) bool) {
	s.byKey.all(func(_ string, z *Zone) bool { return fn(z) })
}

// Zones returns the zones ordered by origin in canonical order.
func (s *Set) Zones() []*Zone {
	out := make([]*Zone, 0, s.Len())
	s.Each(func(z *Zone) bool { out = append(out, z); return true })
	slices.SortFunc(out, func(a, b *Zone) int { return bytes.Compare(a.Apex.CanonicalKey(), b.Apex.CanonicalKey()) })
	return out
}

// Match returns the zone with the longest origin at or above key (a
// lower-case wire name), or nil. For a DS query the zone whose apex is key
// is skipped when its parent is also held: DS lives on the parent side of a
// cut (RFC 4035 §3.1.4.1). Match does not allocate.
func (s *Set) Match(key []byte, qtype uint16) *Zone {
	var child *Zone
	for first := true; ; first = false {
		if z, _ := s.byKey.getBytes(key); z != nil {
			if !first || qtype != dns.TypeDS {
				return z
			}
			child = z // a DS at this apex: prefer an enclosing zone if held
		}
		if len(key) <= 1 {
			return child
		}
		key = key[1+int(key[0]):]
	}
}
