package resolver

import (
	"errors"
	"fmt"
	"sync"
)

// ErrRateLimited is a question not sent upstream because the servers of
// its zone were sent Config.ZoneRateLimit queries in the last second.
var ErrRateLimited = errors.New("upstream query rate limit")

// maxGuardZones bounds the zones the unwanted-reply guard remembers; its
// table is emptied past it (the counts it held start again).
const maxGuardZones = 1 << 16

// sendAllowed counts one query to the servers of zone against the
// per-zone limit, or returns why it may not be sent.
func (r *Resolver) sendAllowed(zone string) error {
	if r.limiter.Rate <= 0 {
		return nil // no limit: no clock to read
	}
	if r.limiter.Allow(zone, r.cfg.Now()) {
		return nil
	}
	r.stats.ZoneRateLimited.Add(1)
	return fmt.Errorf("%w: more than %d queries a second to the servers of %s", ErrRateLimited, r.cfg.ZoneRateLimit, zone)
}

// unwantedGuard counts the unwanted replies (replies to no question asked)
// that arrived while the servers of each zone were being asked. Each one
// is a forgery that found the open port; a zone whose count reaches the
// threshold is under a spoofing attack, and what the cache holds for it
// may already be forged (as Unbound's unwanted-reply-threshold, but for the
// zone attacked rather than the whole cache).
type unwantedGuard struct {
	threshold int // 0: no alarm
	mu        sync.Mutex
	m         map[string]int
}

// errSpoofing is the answer to an exchange that raised the alarm: it
// came amid the forgeries and is not believed either.
var errSpoofing = errors.New("unwanted replies reached the threshold: answer not believed")

// noteUnwanted counts n unwanted replies seen while asking server s about
// a name of zone, and raises the alarm when the zone's count reaches the
// threshold: logged, counted, and every cache entry at or below the zone
// dropped. It reports whether it raised the alarm.
func (r *Resolver) noteUnwanted(zone string, s server, n int) bool {
	r.stats.UnwantedReplies.Add(uint64(n))
	g := r.unwanted
	if g.threshold <= 0 {
		return false
	}
	g.mu.Lock()
	if len(g.m) >= maxGuardZones {
		clear(g.m)
	}
	g.m[zone] += n
	alarm := g.m[zone] >= g.threshold
	if alarm {
		delete(g.m, zone)
	}
	g.mu.Unlock()
	if !alarm {
		return false
	}
	r.stats.UnwantedAlarms.Add(1)
	dropped := r.cache.FlushName(zone)
	r.glue.flushName(zone)
	if r.val != nil {
		r.val.refDS.flushName(zone)
	}
	r.log.Warn("unwanted replies: possible spoofing attack, cache entries of the zone dropped",
		"zone", zone, "server", s.String(), "threshold", g.threshold, "entries_dropped", dropped)
	return true
}
