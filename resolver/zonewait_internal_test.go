package resolver

import (
	"context"
	"testing"
	"time"
)

// A question that finds a zone's slots taken queues for one when the zone
// answers, and gets the slot the next release frees; when the zone has
// not answered for zoneLive it fails at once; a queued question that no
// release reaches gives up after zoneQueueWait.
func TestZoneWaitsQueue(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	z := newZoneWaits(2)
	ctx := context.Background()
	for i := range 2 {
		if !z.acquire(ctx, "a.", now) {
			t.Fatalf("slot %d refused", i)
		}
	}
	z.answered("a.", now)

	got := make(chan bool, 1)
	go func() { got <- z.acquire(ctx, "a.", now) }()
	waitQueued(t, z, "a.", 1)
	z.release("a.")
	if !<-got {
		t.Fatal("the queued question did not get the freed slot")
	}
	if n := z.z["a."].n; n != 2 {
		t.Fatalf("%d slots taken, want 2", n)
	}

	start := time.Now()
	if z.acquire(ctx, "a.", now) {
		t.Fatal("a slot beyond the bound with nothing released")
	}
	if waited := time.Since(start); waited < zoneQueueWait {
		t.Fatalf("gave up after %v, before zoneQueueWait", waited)
	}

	now = now.Add(zoneLive + time.Millisecond) // the zone fell silent
	z.mu.Lock()
	queuedBefore := z.z["a."].queued
	z.mu.Unlock()
	if z.acquire(ctx, "a.", now) || queuedBefore != 0 {
		t.Fatal("a question for a silent zone got a slot or queued")
	}

	cctx, cancel := context.WithCancel(ctx)
	z.answered("a.", now)
	go func() { got <- z.acquire(cctx, "a.", now) }()
	waitQueued(t, z, "a.", 1)
	cancel()
	if <-got {
		t.Fatal("a cancelled question got a slot")
	}
	z.release("a.")
	z.release("a.")
	if len(z.z) != 0 {
		t.Fatalf("entries left after every release: %v", z.z)
	}
}

func waitQueued(t *testing.T, z *zoneWaits, zone string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		z.mu.Lock()
		e := z.z[zone]
		q := 0
		if e != nil {
			q = e.queued
		}
		z.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d questions queued for %s, want %d", q, zone, n)
		}
		time.Sleep(time.Millisecond)
	}
}
