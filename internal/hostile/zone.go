package hostile

import (
	"context"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// Zone is a zone held in memory that answers as its authoritative server
// would: records of the name (following CNAMEs inside the zone), a
// wildcard's records rewritten to the name, a referral (NS records of a
// cut below the origin, with the addresses the zone holds for their
// targets as glue), NODATA or NXDOMAIN with the SOA; REFUSED outside it.
type Zone struct {
	origin string
	soa    dns.RR
	rrs    map[string][]dns.RR // lower-case owner -> records
	exists map[string]bool     // owners and their ancestors within the zone
}

// maxChase bounds the CNAMEs a Zone follows within itself.
const maxChase = 8

// NewZone parses text, master-file records relative to origin, into a
// zone. Records outside origin are refused. Without an SOA at the origin
// one is made up (negative TTL 300).
func NewZone(origin, text string) (*Zone, error) {
	origin = strings.ToLower(dns.Fqdn(origin))
	z := &Zone{origin: origin, rrs: map[string][]dns.RR{}, exists: map[string]bool{origin: true}}
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
	zp.SetDefaultTTL(3600)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		owner := strings.ToLower(rr.Header().Name)
		if !dns.IsSubDomain(origin, owner) {
			return nil, fmt.Errorf("hostile: zone %s: record outside the zone: %s", origin, rr)
		}
		if rr.Header().Rrtype == dns.TypeSOA && owner == origin {
			z.soa = rr
			continue
		}
		z.rrs[owner] = append(z.rrs[owner], rr)
		for n := owner; n != origin; n = parent(n) {
			z.exists[n] = true
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("hostile: zone %s: %w", origin, err)
	}
	if z.soa == nil {
		below := strings.TrimPrefix(origin, ".") // "" for the root
		soa, err := dns.NewRR(fmt.Sprintf("%s 3600 IN SOA ns.%s hostmaster.%s 1 3600 600 86400 300", origin, below, below))
		if err != nil {
			return nil, fmt.Errorf("hostile: zone %s: %w", origin, err)
		}
		z.soa = soa
	}
	return z, nil
}

// Origin returns the zone's origin, lower case and fully qualified.
func (z *Zone) Origin() string { return z.origin }

func parent(name string) string {
	i, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[i:]
}

func (z *Zone) get(name string, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range z.rrs[name] {
		if rr.Header().Rrtype == t {
			out = append(out, rr)
		}
	}
	return out
}

// cut returns the NS records of the topmost zone cut below the origin at
// or above name (for DS, strictly above name).
func (z *Zone) cut(name string, qtype uint16) []dns.RR {
	var chain []string
	for n := name; n != z.origin; n = parent(n) {
		chain = append(chain, n)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		if i == 0 && qtype == dns.TypeDS {
			break
		}
		if ns := z.get(chain[i], dns.TypeNS); len(ns) > 0 {
			return ns
		}
	}
	return nil
}

// glue returns the zone's addresses of the NS records' targets.
func (z *Zone) glue(ns []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range ns {
		target := strings.ToLower(rr.(*dns.NS).Ns)
		out = append(out, z.get(target, dns.TypeA)...)
		out = append(out, z.get(target, dns.TypeAAAA)...)
	}
	return out
}

// lookup returns the records owned by name, or those of the wildcard that
// covers it rewritten to name; ok is false when the name does not exist.
func (z *Zone) lookup(name string) (rrs []dns.RR, ok bool) {
	if z.exists[name] {
		return z.rrs[name], true
	}
	ce := name
	for !z.exists[ce] && ce != z.origin {
		ce = parent(ce)
	}
	wild := z.rrs["*."+ce]
	if len(wild) == 0 {
		return nil, false
	}
	for _, rr := range wild {
		c := dns.Copy(rr)
		c.Header().Name = name
		rrs = append(rrs, c)
	}
	return rrs, true
}

// Answer returns the zone's answer to q.
func (z *Zone) Answer(q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	if q.IsEdns0() != nil {
		m.SetEdns0(1232, false)
	}
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	name, qtype := strings.ToLower(q.Question[0].Name), q.Question[0].Qtype
	if !dns.IsSubDomain(z.origin, name) {
		m.Rcode = dns.RcodeRefused
		return m
	}
	for range maxChase {
		if ns := z.cut(name, qtype); ns != nil {
			if len(m.Answer) == 0 {
				m.Ns = ns
				m.Extra = append(m.Extra, z.glue(ns)...)
			}
			return m
		}
		m.Authoritative = true
		rrs, ok := z.lookup(name)
		if !ok {
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{z.soa}
			return m
		}
		var cname *dns.CNAME
		found := false
		for _, rr := range rrs {
			switch {
			case rr.Header().Rrtype == qtype || qtype == dns.TypeANY:
				m.Answer = append(m.Answer, rr)
				found = true
			case rr.Header().Rrtype == dns.TypeCNAME:
				cname = rr.(*dns.CNAME)
			}
		}
		if found {
			return m
		}
		if cname == nil {
			m.Ns = []dns.RR{z.soa}
			return m
		}
		m.Answer = append(m.Answer, cname)
		name = strings.ToLower(cname.Target)
		if !dns.IsSubDomain(z.origin, name) {
			return m
		}
	}
	return m
}

// Answer returns the answer to q of the deepest of zones that holds its
// name, or REFUSED.
func Answer(q *dns.Msg, zones ...*Zone) *dns.Msg {
	var best *Zone
	if len(q.Question) == 1 {
		for _, z := range zones {
			if dns.IsSubDomain(z.origin, q.Question[0].Name) && (best == nil || dns.CountLabel(z.origin) > dns.CountLabel(best.origin)) {
				best = z
			}
		}
	}
	if best == nil {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Rcode = dns.RcodeRefused
		return m
	}
	return best.Answer(q)
}

// Serve returns a Handler that answers each query from zones (Answer),
// over UDP and TCP alike. What does not parse as a query gets no answer.
func Serve(zones ...*Zone) Handler {
	return func(_ context.Context, w *Writer, q *Query) {
		if q.Msg == nil || q.Msg.Response {
			return
		}
		_ = w.Msg(Answer(q.Msg, zones...))
	}
}
