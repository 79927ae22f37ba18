package resolver

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestLRU: a full lru evicts the entry used least recently; get and put
// mark an entry used, remove and clear forget.
func TestLRU(t *testing.T) {
	type op struct {
		do  string // put, get, remove, clear
		key string
		val int
	}
	tests := []struct {
		name string
		size int
		ops  []op
		want []string // keys, most recently used first
	}{
		{"under the bound", 3, []op{{"put", "a", 1}, {"put", "b", 2}}, []string{"b", "a"}},
		{"oldest evicted", 2, []op{{"put", "a", 1}, {"put", "b", 2}, {"put", "c", 3}}, []string{"c", "b"}},
		{"get keeps an entry", 2, []op{{"put", "a", 1}, {"put", "b", 2}, {"get", "a", 0}, {"put", "c", 3}}, []string{"c", "a"}},
		{"update keeps an entry", 2, []op{{"put", "a", 1}, {"put", "b", 2}, {"put", "a", 9}, {"put", "c", 3}}, []string{"c", "a"}},
		{"removed makes room", 2, []op{{"put", "a", 1}, {"put", "b", 2}, {"remove", "a", 0}, {"put", "c", 3}}, []string{"c", "b"}},
		{"cleared", 2, []op{{"put", "a", 1}, {"put", "b", 2}, {"clear", "", 0}, {"put", "c", 3}}, []string{"c"}},
		{"size one", 1, []op{{"put", "a", 1}, {"put", "b", 2}, {"get", "a", 0}}, []string{"b"}},
		{"size zero holds one", 0, []op{{"put", "a", 1}, {"put", "b", 2}}, []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLRU[string, int](tt.size)
			vals := map[string]int{}
			for _, o := range tt.ops {
				switch o.do {
				case "put":
					l.put(o.key, o.val)
					vals[o.key] = o.val
				case "get":
					l.get(o.key)
				case "remove":
					l.remove(o.key)
				case "clear":
					l.clear()
				}
			}
			var got []string
			for k, v := range l.all() {
				got = append(got, k)
				if v != vals[k] {
					t.Errorf("%s = %d, want %d", k, v, vals[k])
				}
			}
			if !slices.Equal(got, tt.want) || l.len() != len(tt.want) {
				t.Errorf("keys %v (len %d), want %v", got, l.len(), tt.want)
			}
			for _, k := range tt.want {
				if _, ok := l.get(k); !ok {
					t.Errorf("get %s: missing", k)
				}
			}
		})
	}
}

// TestLRURemoveWhileIterating: the entry yielded may be removed.
func TestLRURemoveWhileIterating(t *testing.T) {
	l := newLRU[int, int](10)
	for i := range 10 {
		l.put(i, i)
	}
	for k := range l.all() {
		if k%2 == 0 {
			l.remove(k)
		}
	}
	var got []int
	for k := range l.all() {
		got = append(got, k)
	}
	if want := []int{9, 7, 5, 3, 1}; !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
}

// TestSideCachesEvictLRU: the infrastructure, key and failure-recheck
// tables keep the entries in use when full, and forget the one used least
// recently, instead of being emptied.
func TestSideCachesEvictLRU(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name string
		// run fills a table of n entries, uses the first, adds one more,
		// and reports which of the first, the second and the newest are
		// held, and the size.
		run func(n int) (first, second, last bool, size int)
		max int
	}{
		{"infra", func(n int) (bool, bool, bool, int) {
			in := newInfra(time.Second)
			addr := func(i int) server {
				return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 53)
			}
			for i := range n {
				in.observe(addr(i), time.Millisecond)
			}
			in.skip(addr(0)) // used
			in.observe(addr(n), time.Millisecond)
			_, first := in.hosts.get(addr(0))
			_, second := in.hosts.get(addr(1))
			_, last := in.hosts.get(addr(n))
			return first, second, last, in.hosts.len()
		}, maxInfra},
		{"keys", func(n int) (bool, bool, bool, int) {
			c := keyCache{m: newLRU[string, keyEntry](maxKeyEntries)}
			name := func(i int) string { return fmt.Sprintf("z%d.example.", i) }
			for i := range n {
				c.put(name(i), keyEntry{kind: keySecure}, now, time.Hour)
			}
			c.get(name(0), now) // used
			c.put(name(n), keyEntry{kind: keySecure}, now, time.Hour)
			_, first := c.get(name(0), now)
			_, second := c.get(name(1), now)
			_, last := c.get(name(n), now)
			return first, second, last, c.len()
		}, maxKeyEntries},
		{"failures", func(n int) (bool, bool, bool, int) {
			r := &Resolver{cfg: Config{Now: func() time.Time { return now }, FailureRecheck: time.Minute}, staleSt: newStaleState()}
			key := func(i int) question { return questionKey(fmt.Sprintf("n%d.example.", i), 1) }
			for i := range n {
				r.noteOutcome(key(i), true)
			}
			r.recentlyFailed(key(0)) // used
			r.noteOutcome(key(n), true)
			first, second, last := r.recentlyFailed(key(0)), r.recentlyFailed(key(1)), r.recentlyFailed(key(n))
			return first, second, last, r.staleSt.failed.len()
		}, maxRecheck},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, second, last, size := tt.run(tt.max)
			if !first || second || !last || size != tt.max {
				t.Errorf("full table after one more: used-first held %v, least-used held %v, newest held %v, %d entries; want true, false, true, %d",
					first, second, last, size, tt.max)
			}
		})
	}
}
