package zone

import (
	"hash/maphash"
	"maps"
)

// cowMap is a persistent map from string keys: a new version made by an
// edit shares every shard it does not touch with the version it came
// from, so a change of k keys costs O(k · shard size) however large the
// map, and readers of the old version are never disturbed. Lookups stay
// plain Go map lookups (one hash to pick the shard).
//
// A cowMap is read-only once published; edit returns an editor for the
// next version.
type cowMap[V any] struct {
	seed   maphash.Seed
	shards []map[string]V
	n      int
}

// shardTarget is the number of keys per shard the map aims at: small
// enough that cloning one shard is cheap, large enough that the shard
// table stays small.
const shardTarget = 128

func newCowMap[V any](size int) cowMap[V] {
	m := cowMap[V]{seed: maphash.MakeSeed(), shards: make([]map[string]V, shardCount(size))}
	per := (size + len(m.shards) - 1) / len(m.shards)
	for i := range m.shards {
		m.shards[i] = make(map[string]V, per)
	}
	return m
}

// shardCount is the power of two that gives about shardTarget keys each.
func shardCount(size int) int {
	n := 1
	for n*shardTarget < size {
		n <<= 1
	}
	return n
}

func (m *cowMap[V]) shard(k string) int {
	return int(maphash.String(m.seed, k) & uint64(len(m.shards)-1))
}

func (m *cowMap[V]) get(k string) (v V, ok bool) {
	if len(m.shards) == 0 {
		return v, false
	}
	v, ok = m.shards[m.shard(k)][k]
	return v, ok
}

// getBytes is get for a key held in a byte slice; it does not allocate.
func (m *cowMap[V]) getBytes(k []byte) (v V, ok bool) {
	if len(m.shards) == 0 {
		return v, false
	}
	i := int(maphash.Bytes(m.seed, k) & uint64(len(m.shards)-1))
	v, ok = m.shards[i][string(k)]
	return v, ok
}

func (m *cowMap[V]) len() int { return m.n }

// all calls fn for every entry, in no particular order, until fn returns
// false.
func (m *cowMap[V]) all(fn func(k string, v V) bool) {
	for _, sh := range m.shards {
		for k, v := range sh {
			if !fn(k, v) {
				return
			}
		}
	}
}

// cowEditor makes the next version of a cowMap. Shards are cloned on
// their first write; the version edited from is left as it was.
type cowEditor[V any] struct {
	m     cowMap[V]
	owned []bool
}

func (m cowMap[V]) edit() *cowEditor[V] {
	if len(m.shards) == 0 {
		m = newCowMap[V](0)
		return &cowEditor[V]{m: m, owned: []bool{true}}
	}
	e := &cowEditor[V]{m: m, owned: make([]bool, len(m.shards))}
	e.m.shards = append([]map[string]V(nil), m.shards...)
	return e
}

// newCowEditor is an editor of a new map sized for size keys, whose shards
// it owns from the start (nothing is cloned on the first write).
func newCowEditor[V any](size int) *cowEditor[V] {
	m := newCowMap[V](size)
	owned := make([]bool, len(m.shards))
	for i := range owned {
		owned[i] = true
	}
	return &cowEditor[V]{m: m, owned: owned}
}

func (e *cowEditor[V]) get(k string) (V, bool) { return e.m.get(k) }

func (e *cowEditor[V]) writable(k string) map[string]V {
	i := e.m.shard(k)
	if !e.owned[i] {
		e.m.shards[i] = maps.Clone(e.m.shards[i])
		if e.m.shards[i] == nil {
			e.m.shards[i] = make(map[string]V)
		}
		e.owned[i] = true
	}
	return e.m.shards[i]
}

func (e *cowEditor[V]) set(k string, v V) {
	sh := e.writable(k)
	if _, ok := sh[k]; !ok {
		e.m.n++
	}
	sh[k] = v
}

func (e *cowEditor[V]) del(k string) {
	if _, ok := e.m.get(k); !ok {
		return
	}
	delete(e.writable(k), k)
	e.m.n--
}

// done returns the new version. A map that has grown well past its shard
// table is spread over a larger one (a full copy, made once per doubling).
func (e *cowEditor[V]) done() cowMap[V] {
	if len(e.m.shards)*shardTarget*4 < e.m.n {
		g := cowMap[V]{seed: e.m.seed, shards: make([]map[string]V, shardCount(e.m.n)), n: e.m.n}
		for i := range g.shards {
			g.shards[i] = make(map[string]V, shardTarget)
		}
		e.m.all(func(k string, v V) bool {
			g.shards[g.shard(k)][k] = v
			return true
		})
		return g
	}
	m := e.m
	e.m = cowMap[V]{}
	return m
}
