// Package ratelimit counts events per key in the current second, the way
// Unbound's ratelimit and ip-ratelimit do: cheap, exact within a second,
// and bounded in the keys it remembers.
package ratelimit

import (
	"sync"
	"time"
)

// MaxKeys bounds the keys a PerSecond remembers; its table is emptied past
// it (the counts it held start again from zero).
const MaxKeys = 1 << 16

// PerSecond allows at most Rate events per key in each second of the clock.
// The zero value, or a Rate of zero or less, allows everything. It is safe
// for concurrent use.
type PerSecond[K comparable] struct {
	Rate int
	mu   sync.Mutex
	m    map[K]*window
}

type window struct {
	sec   int64
	count int
}

// Allow reports whether one more event for key may happen at now, and
// counts it if so.
func (l *PerSecond[K]) Allow(key K, now time.Time) bool {
	if l.Rate <= 0 {
		return true
	}
	sec := now.Unix()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.m[key]
	if w == nil {
		if l.m == nil || len(l.m) >= MaxKeys {
			l.m = map[K]*window{}
		}
		w = &window{sec: sec}
		l.m[key] = w
	}
	if w.sec != sec {
		w.sec, w.count = sec, 0
	}
	if w.count >= l.Rate {
		return false
	}
	w.count++
	return true
}
