package zonestore

import (
	"runtime/debug"
	"testing"
)

// TestGCTight: the collector's target is lowered while signings are under
// way, by nested or overlapping ones alike, never raised above a lower
// setting, and given back when the last one ends.
func TestGCTight(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	c := &core{}
	current := func() int { v := debug.SetGCPercent(-1); debug.SetGCPercent(v); return v }

	end1 := c.gcTight()
	if got := current(); got != signingGCPercent {
		t.Fatalf("during a signing GOGC = %d, want %d", got, signingGCPercent)
	}
	end2 := c.gcTight()
	end1()
	if got := current(); got != signingGCPercent {
		t.Fatalf("while a second signing runs GOGC = %d, want %d", got, signingGCPercent)
	}
	end2()
	if got := current(); got != 100 {
		t.Fatalf("after the signings GOGC = %d, want 100", got)
	}

	debug.SetGCPercent(20)
	end := c.gcTight()
	if got := current(); got != 20 {
		t.Errorf("a lower GOGC (20) was raised to %d", got)
	}
	end()
	if got := current(); got != 20 {
		t.Errorf("after the signing GOGC = %d, want 20", got)
	}
}
