package replication

import (
	"context"
	"errors"
	"fmt"

	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// Operator requests on secondary zones: sovdns zone refresh and sovdns
// zone retransfer, through the control API.

// ErrNotSecondary is a refresh or retransfer asked of a zone that is not a
// secondary zone this node keeps current (a primary zone, a zone it does
// not hold, or a secondary copy no longer configured).
var ErrNotSecondary = errors.New("not a secondary zone of this server")

// errNotRunning is a request made before the secondaries run, or after.
var errNotRunning = errors.New("the replication of secondary zones is not running")

// RefreshResult is what a check of a secondary zone found and did.
type RefreshResult struct {
	Zone string `json:"zone"`
	// Primary is the primary that answered (IP:port), and PrimarySerial
	// its serial; empty and 0 when none did.
	Primary       string `json:"primary,omitempty"`
	PrimarySerial uint32 `json:"primary_serial"`
	// OldSerial is the copy's serial before the check (0: there was none),
	// Serial after it.
	OldSerial uint32 `json:"old_serial"`
	Serial    uint32 `json:"serial"`
	// Transfer is how the copy was brought in ("IXFR" or "AXFR"); empty
	// when it was current already.
	Transfer string `json:"transfer,omitempty"`
}

// Refresh checks the secondary zone at origin now, as a NOTIFY would have
// it checked: the primaries' SOA, then a transfer if the serial is newer.
// With retransfer it takes the whole zone by AXFR instead, whatever the
// serials, and replaces the copy. It waits for the outcome (or for ctx);
// the check is made by the zone's worker, in turn with the others, and
// counts as any other check (a success makes an expired copy current).
func (n *Node) Refresh(ctx context.Context, origin string, retransfer bool) (RefreshResult, error) {
	return n.secondary.request(ctx, zone.Fqdn(origin), retransfer)
}

// KeptZones returns the secondary zones that are past their expire time
// and kept, and served, because the node is cut off (HoldExpiry), as a
// set (empty unless the node is in island mode).
func (n *Node) KeptZones() map[string]bool {
	s := n.secondary
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := map[string]bool{}
	for origin, w := range s.workers {
		if w.kept.Load() {
			kept[origin] = true
		}
	}
	return kept
}

// request hands a check of origin to its worker and waits for the answer.
func (s *secondaries) request(ctx context.Context, origin string, retransfer bool) (RefreshResult, error) {
	s.mu.Lock()
	w := s.workers[origin]
	running := s.ctx != nil
	s.mu.Unlock()
	if w == nil {
		if !running {
			if _, ok := s.desired(s.n.config())[origin]; ok {
				return RefreshResult{}, fmt.Errorf("zone %s: %w", origin, errNotRunning)
			}
		}
		return RefreshResult{}, s.notSecondary(origin)
	}
	rq := checkRequest{retransfer: retransfer, reply: make(chan checkReply, 1)}
	stopped := fmt.Errorf("zone %s: %w: it stopped being refreshed (reconfigured, or the server is stopping)", origin, errNotRunning)
	s.mu.Lock()
	if w.removed {
		s.mu.Unlock()
		return RefreshResult{}, stopped
	}
	w.reqs = append(w.reqs, rq)
	s.kickLocked(w)
	s.mu.Unlock()
	select {
	case r := <-rq.reply:
		if r.err != nil {
			return r.res, fmt.Errorf("zone %s: %w", origin, r.err)
		}
		return r.res, nil
	case <-w.done:
		return RefreshResult{}, stopped
	case <-ctx.Done():
		return RefreshResult{}, ctx.Err()
	}
}

// notSecondary says why origin, which has no worker, is not a secondary
// zone kept current here.
func (s *secondaries) notSecondary(origin string) error {
	m, err := s.n.store.Meta(origin)
	switch {
	case errors.Is(err, zonestore.ErrNoZone):
		return fmt.Errorf("zone %s: %w: no such zone is stored or configured here (%w)", origin, ErrNotSecondary, err)
	case err != nil:
		return fmt.Errorf("zone %s: %w", origin, err)
	case m.Kind != zonestore.KindSecondary:
		return fmt.Errorf("zone %s: %w: it is a primary zone here, edited on this node", origin, ErrNotSecondary)
	}
	return fmt.Errorf("zone %s: %w: it is stored as a secondary copy but no longer configured, so it has no primaries to ask; "+
		"configure it under secondary (or in a catalog), or delete it with sovdns zone delete", origin, ErrNotSecondary)
}
