package resolver

import (
	"errors"
	"sync"
)

// ErrZoneBusy is a question not sent upstream because
// Config.MaxZoneInFlight queries were already waiting on the servers of
// its zone.
var ErrZoneBusy = errors.New("too many queries waiting on the servers of the zone")

// DefaultMaxZoneInFlight is Config.MaxZoneInFlight when zero: a quarter
// of the server's default bound on resolutions under way, so that one
// slow or dead zone can hold at most a quarter of them.
const DefaultMaxZoneInFlight = 250

// zoneWaits counts the upstream queries waiting on the servers of each
// zone (delegation point). A zone whose servers time out or answer slowly
// holds its queries for long; past max of them, more questions for it
// fail at once instead of waiting too, and the resolutions under way stay
// free for the zones that answer. Zones are forgotten when nothing waits
// on them, so the table holds at most the queries under way.
type zoneWaits struct {
	max int // <= 0: no limit
	mu  sync.Mutex
	n   map[string]int
}

func newZoneWaits(max int) *zoneWaits { return &zoneWaits{max: max, n: map[string]int{}} }

// acquire counts one query waiting on the servers of zone, or reports
// false when max are already waiting.
func (z *zoneWaits) acquire(zone string) bool {
	if z.max <= 0 {
		return true
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.n[zone] >= z.max {
		return false
	}
	z.n[zone]++
	return true
}

// release ends a query counted by acquire.
func (z *zoneWaits) release(zone string) {
	if z.max <= 0 {
		return
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.n[zone]--; z.n[zone] <= 0 {
		delete(z.n, zone)
	}
}

// waiting returns the queries waiting on the servers of zone.
func (z *zoneWaits) waiting(zone string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.n[zone]
}
