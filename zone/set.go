package zone

import (
	"maps"
	"slices"

	"github.com/miekg/dns"
)

// Set is an immutable collection of zones indexed for longest-match lookup.
// Changing it means building a new Set (With, Without) and swapping it.
type Set struct {
	byKey map[string]*Zone
}

// NewSet returns a set holding zs; a later zone with the same origin wins.
func NewSet(zs ...*Zone) *Set {
	s := &Set{byKey: make(map[string]*Zone, len(zs))}
	for _, z := range zs {
		s.byKey[z.Key] = z
	}
	return s
}

// With returns a copy of s in which z replaces any zone with its origin.
func (s *Set) With(z *Zone) *Set {
	n := &Set{byKey: maps.Clone(s.byKey)}
	if n.byKey == nil {
		n.byKey = map[string]*Zone{}
	}
	n.byKey[z.Key] = z
	return n
}

// Without returns a copy of s without the zone at origin (a wire key).
func (s *Set) Without(key string) *Set {
	n := &Set{byKey: maps.Clone(s.byKey)}
	delete(n.byKey, key)
	return n
}

// Len returns the number of zones.
func (s *Set) Len() int { return len(s.byKey) }

// Get returns the zone whose origin is exactly key.
func (s *Set) Get(key string) *Zone { return s.byKey[key] }

// Zones returns the zones ordered by origin in canonical order.
func (s *Set) Zones() []*Zone {
	out := slices.Collect(maps.Values(s.byKey))
	slices.SortFunc(out, func(a, b *Zone) int { return CanonicalCompare(a.Origin, b.Origin) })
	return out
}

// Match returns the zone with the longest origin at or above key (a
// lower-case wire name), or nil. For a DS query the zone whose apex is key
// is skipped when its parent is also held: DS lives on the parent side of a
// cut (RFC 4035 §3.1.4.1). Match does not allocate.
func (s *Set) Match(key []byte, qtype uint16) *Zone {
	var child *Zone
	for first := true; ; first = false {
		if z := s.byKey[string(key)]; z != nil {
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
