package server

import (
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/authoritative"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
)

// Local answers the resolver's upstream questions from zones held on this
// node (resolver.LocalAuthority): the zones served and the mirrors (the
// root, RFC 8806; national zones), so that referrals, answers and NXDOMAIN
// for them never need the network.
type Local struct {
	set atomic.Pointer[zone.Set]
}

var _ resolver.LocalAuthority = (*Local)(nil)

// NewLocal returns a Local with no zones.
func NewLocal() *Local {
	l := &Local{}
	l.set.Store(zone.NewSet())
	return l
}

// SetZones replaces the zones answered from.
func (l *Local) SetZones(s *zone.Set) { l.set.Store(s) }

// Zones returns the zones answered from.
func (l *Local) Zones() *zone.Set { return l.set.Load() }

// Answer implements resolver.LocalAuthority: the response of the zone held
// for name, with DNSSEC records, as copies the resolver may keep.
func (l *Local) Answer(name string, qtype uint16) (*dns.Msg, string) {
	res := authoritative.Answer(l.set.Load(), authoritative.Query{Name: name, Type: qtype, DO: true})
	if res.Zone == nil || res.Kind == authoritative.KindRefused {
		return nil, ""
	}
	origin := res.Zone.Origin
	if qtype == dns.TypeDS && strings.EqualFold(origin, dns.Fqdn(name)) {
		return nil, "" // the DS belongs to the parent, which is not held
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Response = true
	m.Authoritative = res.Authoritative
	m.Rcode = res.Rcode
	m.Answer = copyRRs(res.Answer)
	m.Ns = copyRRs(res.Ns)
	m.Extra = copyRRs(res.Extra)
	return m, strings.ToLower(origin)
}

func copyRRs(rrs []dns.RR) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}
