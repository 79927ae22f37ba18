package resolver

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Stats counts what the resolver does; the metrics layer reads it.
type Stats struct {
	CacheHits       atomic.Uint64
	CacheMisses     atomic.Uint64
	LimitHits       atomic.Uint64
	UpstreamUDP     atomic.Uint64 // queries sent
	UpstreamTCP     atomic.Uint64
	UpstreamTimeout atomic.Uint64
	UpstreamError   atomic.Uint64 // network errors other than timeouts, and mismatched answers
	UpstreamRcode   [24]atomic.Uint64
}

func (s *Stats) countUpstream(tcp bool, resp *dns.Msg, err error) {
	if tcp {
		s.UpstreamTCP.Add(1)
	} else {
		s.UpstreamUDP.Add(1)
	}
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)):
		s.UpstreamTimeout.Add(1)
	case err != nil:
		s.UpstreamError.Add(1)
	case resp.Rcode >= 0 && resp.Rcode < len(s.UpstreamRcode):
		s.UpstreamRcode[resp.Rcode].Add(1)
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
