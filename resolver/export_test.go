package resolver

import "github.com/miekg/dns"

// SetIslandForTest puts the resolver in island mode (on) or takes it out,
// as the probes would.
func (r *Resolver) SetIslandForTest(on bool) {
	if on {
		r.enterIsland("test")
	} else {
		r.leaveIsland("test")
	}
}

// IslandTicksForTest is the number of probe-timer ticks the island loop
// has handled.
func (r *Resolver) IslandTicksForTest() uint64 { return r.island.ticks.Load() }

// WildcardSignedDataForTest is the data an RRSIG over rrset, expanded
// from wildcard, signs (what the tests sign RRsets of "*." with, which
// miekg/dns cannot sign).
func WildcardSignedDataForTest(rrset []dns.RR, sig *dns.RRSIG, wildcard string) ([]byte, error) {
	return wildcardSignedData(rrset, sig, wildcard)
}

// BackgroundForTest is the number of background goroutines (stale
// refreshes, prefetches, trials) running.
func (r *Resolver) BackgroundForTest() int64 { return r.bg.running.Load() }
