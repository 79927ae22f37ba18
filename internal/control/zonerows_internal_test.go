package control

import (
	"fmt"
	"testing"

	"github.com/sovdns/sovdns/zonestore"
)

// TestZoneRowsBounded checks that a status cut to the zones that need
// attention holds a bounded number of rows however many zones pass
// through it, counts them all, and keeps the first in canonical order.
func TestZoneRowsBounded(t *testing.T) {
	const n, limit = 10000, 20
	for _, tt := range []struct {
		name string
		max  int
		rows int // rows returned
		peak int // most rows held at once, at most
	}{
		{"cut", limit, limit, 2*limit + 16},
		{"all kept", -1, n, n},
		{"fewer than max", 2 * n, n, n},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := zoneRows{max: tt.max}
			peak := 0
			for i := n - 1; i >= 0; i-- { // reverse canonical order
				z := ZoneStatus{Zone: fmt.Sprintf("z%05d.example.", i), Kind: zonestore.KindSecondary, State: ZoneCurrent}
				if i%10 == 0 {
					z.State, z.Expired = ZoneExpired, true
				}
				r.add(z)
				peak = max(peak, len(r.rows))
			}
			rows, sum := r.done()
			if peak > tt.peak {
				t.Errorf("held %d rows at once, want at most %d", peak, tt.peak)
			}
			if len(rows) != tt.rows {
				t.Fatalf("%d rows, want %d", len(rows), tt.rows)
			}
			step := 1
			if tt.max == limit {
				step = 10 // only the expired ones
			}
			for i, z := range rows {
				if want := fmt.Sprintf("z%05d.example.", i*step); z.Zone != want {
					t.Fatalf("row %d is %s, want %s", i, z.Zone, want)
				}
			}
			if tt.max < 0 {
				if sum != nil {
					t.Errorf("summary %+v with every zone kept", sum)
				}
				return
			}
			if sum == nil || *sum != (ZoneSummary{Total: n, Expired: n / 10, Attention: n / 10}) {
				t.Errorf("summary %+v", sum)
			}
		})
	}
}
