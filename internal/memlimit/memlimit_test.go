package memlimit

import (
	"context"
	"math"
	"runtime/debug"
	"testing"
)

func TestLimit(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name                 string
		budget, cached, live int64
		want                 int64
	}{
		{"empty caches", 128 * mib, 0, 40 * mib, 50*mib + Floor},
		{"caches filling", 128 * mib, 48 * mib, 88 * mib, 64*mib + 50*mib + Floor},
		{"full caches", 128 * mib, 96 * mib, 136 * mib, 128*mib + 50*mib + Floor},
		{"zones loaded, caches half full", 128 * mib, 48 * mib, 548 * mib, 64*mib + 625*mib + Floor},
		{"estimate above live", 128 * mib, 200 * mib, 100 * mib, 128*mib + Floor},
		{"no caches", 0, 0, 40 * mib, 50*mib + Floor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Limit(tt.budget, tt.cached, tt.live); got != tt.want {
				t.Errorf("Limit(%d, %d, %d) = %d MiB, want %d MiB", tt.budget>>20, tt.cached>>20, tt.live>>20, got>>20, tt.want>>20)
			}
		})
	}
}

func TestEntries(t *testing.T) {
	if got, want := Entries(64<<20), int64(48<<20); got != want {
		t.Errorf("Entries(64 MiB) = %d, want %d", got, want)
	}
	if Entries(0) != 0 {
		t.Errorf("Entries(0) = %d", Entries(0))
	}
}

// Update sets the runtime's limit to what Limit gives for the live heap.
func TestUpdateSetsTheLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	k := &Keeper{Budget: 128 << 20, Cached: func() int64 { return 96 << 20 }} // full
	got := k.Update()
	if got < 128<<20+Floor {
		t.Fatalf("limit %d below the full caches' sizes", got)
	}
	if now := debug.SetMemoryLimit(-1); now != got {
		t.Fatalf("runtime limit %d, Update returned %d", now, got)
	}
}

// Run lifts the limit when its context ends.
func TestRunLiftsTheLimit(t *testing.T) {
	if Operator() {
		t.Skip("GOMEMLIMIT is set")
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	(&Keeper{Budget: 128 << 20}).Run(ctx)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("limit %d after Run ended, want none (%d)", got, int64(math.MaxInt64))
	}
}
