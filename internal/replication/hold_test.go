package replication

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// storeExpiredCopy stores a secondary copy of testOrigin, refreshed at
// then, with SOA expire 60s and retry 1s, in a new database at path, and
// returns it.
func storeExpiredCopy(t *testing.T, path string, then time.Time) *zone.Zone {
	t.Helper()
	st, err := zonestore.Open(path, zonestore.Options{Now: func() time.Time { return then }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := buildZone(t, testOrigin, strings.Replace(zoneText(1), "1 3600 600 86400 300", "1 3600 1 60 300", 1))
	if _, err := st.PutTransfer(cloneZone(t, old), "seed"); err != nil {
		t.Fatal(err)
	}
	return old
}

// TestExpiryHeldOrNever: a copy past its expire time is kept while
// HoldExpiry says the node is cut off, and withdrawn once it no longer
// does; a copy configured with expire never is never withdrawn.
func TestExpiryHeldOrNever(t *testing.T) {
	for _, tc := range []struct {
		name   string
		expire time.Duration
		hold   bool
	}{
		{name: "held in island mode", hold: true},
		{name: "expire never", expire: ExpireNever},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "sovdns.db")
			old := storeExpiredCopy(t, path, time.Now().Add(-2*time.Minute))
			f := newFakePrimary(t, "")
			f.set(testOrigin, &fakeZone{versions: []*zone.Zone{old}})
			f.setRefused(true)
			st, err := zonestore.Open(path, zonestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			sz := SecondaryZone{Zone: testOrigin, Primaries: []Target{{Addr: f.addr}}, Expire: tc.expire}
			n := New(st, Config{Secondaries: []SecondaryZone{sz}}, func() *zone.Set { return zone.NewSet() },
				slog.New(slog.DiscardHandler), metrics.New(prometheus.NewRegistry()))
			calls := make(chan string, 10)
			n.OnExpire(func(origin string, serve bool) { calls <- fmt.Sprintf("%s %v", origin, serve) })
			var hold atomic.Bool
			hold.Store(tc.hold)
			n.HoldExpiry(hold.Load)
			n.secondary.jitter = func(time.Duration) time.Duration { return 0 }
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { defer close(done); n.Run(ctx) }()
			defer func() { cancel(); <-done }()
			// The positive sign: three refreshes tried and refused, the
			// first at start. The expiry is looked at before each.
			waitFor(t, 20*time.Second, "three refreshes", func() bool { return f.countFor("SOA", testOrigin) >= 3 })
			select {
			case c := <-calls:
				t.Fatalf("OnExpire(%s): the copy was withdrawn", c)
			default:
			}
			if !tc.hold {
				return
			}
			hold.Store(false) // back in touch: the expiry applies
			select {
			case c := <-calls:
				if c != testOrigin+" false" {
					t.Fatalf("OnExpire(%s), want %s false", c, testOrigin)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the expired copy was not withdrawn once the hold ended")
			}
		})
	}
}
