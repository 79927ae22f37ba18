package ratelimit

import (
	"testing"
	"time"
)

func TestPerSecond(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		rate int
		at   []time.Duration // offsets from t0, all for one key
		want []bool
	}{
		{"off", 0, []time.Duration{0, 0, 0}, []bool{true, true, true}},
		{"two a second", 2, []time.Duration{0, 100 * time.Millisecond, 900 * time.Millisecond}, []bool{true, true, false}},
		{"next second starts afresh", 1, []time.Duration{0, 500 * time.Millisecond, time.Second}, []bool{true, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &PerSecond[string]{Rate: tt.rate}
			for i, d := range tt.at {
				if got := l.Allow("zone.", t0.Add(d)); got != tt.want[i] {
					t.Errorf("event %d at +%v: allowed %v, want %v", i, d, got, tt.want[i])
				}
			}
		})
	}
}

func TestPerSecondKeysApart(t *testing.T) {
	l := &PerSecond[string]{Rate: 1}
	now := time.Unix(1_700_000_000, 0)
	if !l.Allow("a.", now) || !l.Allow("b.", now) {
		t.Fatal("a first event of each key was refused")
	}
	if l.Allow("a.", now) {
		t.Fatal("a second event of a key within its second was allowed")
	}
}

func TestPerSecondBounded(t *testing.T) {
	l := &PerSecond[int]{Rate: 1}
	now := time.Unix(1_700_000_000, 0)
	for k := range MaxKeys + 10 {
		l.Allow(k, now)
	}
	if n := len(l.m); n > MaxKeys {
		t.Fatalf("%d keys remembered, more than %d", n, MaxKeys)
	}
}
