package resolver

import "iter"

// lru is a map of at most max entries which, when full, makes room for a
// new key by evicting the entry used least recently (get, put). It is not
// safe for concurrent use: its owner's lock guards it.
type lru[K comparable, V any] struct {
	max  int
	m    map[K]*lruNode[K, V]
	ring lruNode[K, V] // sentinel: ring.next is the most recently used
}

type lruNode[K comparable, V any] struct {
	key        K
	val        V
	prev, next *lruNode[K, V]
}

// newLRU returns an empty lru of at most size entries (at least one).
func newLRU[K comparable, V any](size int) *lru[K, V] {
	l := &lru[K, V]{max: max(size, 1), m: map[K]*lruNode[K, V]{}}
	l.ring.next, l.ring.prev = &l.ring, &l.ring
	return l
}

func (l *lru[K, V]) unlink(n *lruNode[K, V]) {
	n.prev.next, n.next.prev = n.next, n.prev
}

func (l *lru[K, V]) front(n *lruNode[K, V]) {
	n.prev, n.next = &l.ring, l.ring.next
	l.ring.next.prev = n
	l.ring.next = n
}

// get returns the value of k and marks it used.
func (l *lru[K, V]) get(k K) (V, bool) {
	n, ok := l.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	if l.ring.next != n {
		l.unlink(n)
		l.front(n)
	}
	return n.val, true
}

// put sets the value of k and marks it used, evicting the least recently
// used entry when a new key finds the map full.
func (l *lru[K, V]) put(k K, v V) {
	if n, ok := l.m[k]; ok {
		n.val = v
		if l.ring.next != n {
			l.unlink(n)
			l.front(n)
		}
		return
	}
	var n *lruNode[K, V]
	if len(l.m) >= l.max {
		// The oldest node is reused for the new key.
		n = l.ring.prev
		l.unlink(n)
		delete(l.m, n.key)
		*n = lruNode[K, V]{}
	} else {
		n = &lruNode[K, V]{}
	}
	n.key, n.val = k, v
	l.m[k] = n
	l.front(n)
}

// remove deletes k, reporting whether it was there.
func (l *lru[K, V]) remove(k K) bool {
	n, ok := l.m[k]
	if !ok {
		return false
	}
	l.unlink(n)
	delete(l.m, k)
	return true
}

func (l *lru[K, V]) len() int { return len(l.m) }

// clear removes every entry.
func (l *lru[K, V]) clear() {
	clear(l.m)
	l.ring.next, l.ring.prev = &l.ring, &l.ring
}

// all yields the entries from the most to the least recently used,
// without marking them used. The entry yielded may be removed during the
// iteration; no other may.
func (l *lru[K, V]) all() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for n := l.ring.next; n != &l.ring; {
			next := n.next
			if !yield(n.key, n.val) {
				return
			}
			n = next
		}
	}
}
