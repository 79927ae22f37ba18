package resolver

import (
	"fmt"
	"io"
	"strings"

	"github.com/miekg/dns"
)

// Resolution of national names without the servers above them: when the
// root (or any foreign zone above a national suffix) is unreachable, in
// island mode or because every server of it is failing, a national name is
// resolved from the deepest national zone cut known (the NS RRsets kept in
// the cache's national store, expired or not), or else from the national
// hints. A resolution that started above the national namespace and found
// its servers unreachable goes on from there too.

// nationalHints are Config.NationalHints, by zone and by server name.
type nationalHints struct {
	ns    map[string][]string // zone -> its name servers (lower-case)
	addrs map[string][]dns.RR // name server -> its A and AAAA records
}

func newNationalHints(rrs []dns.RR) nationalHints {
	h := nationalHints{ns: map[string][]string{}, addrs: map[string][]dns.RR{}}
	for _, rr := range rrs {
		name := cacheName(rr.Header().Name)
		switch v := rr.(type) {
		case *dns.NS:
			h.ns[name] = append(h.ns[name], cacheName(v.Ns))
		case *dns.A, *dns.AAAA:
			h.addrs[name] = append(h.addrs[name], rr)
		}
	}
	return h
}

// ParseNationalHints reads national hints in master-file format (name is
// for error messages): NS records of national zones and A or AAAA records
// of their servers, as root hints are; TTLs may be left out. Only NS, A
// and AAAA records are accepted. CheckNationalHints checks the whole set.
func ParseNationalHints(r io.Reader, name string) ([]dns.RR, error) {
	zp := dns.NewZoneParser(r, ".", name)
	zp.SetDefaultTTL(3600000)
	var out []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		switch rr.(type) {
		case *dns.NS, *dns.A, *dns.AAAA:
		default:
			return nil, fmt.Errorf("%w: %s: %s record %s: only NS, A and AAAA records belong in hints",
				ErrBadHints, name, dns.Type(rr.Header().Rrtype), rr.Header().Name)
		}
		out = append(out, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHints, err)
	}
	return out, nil
}

// CheckNationalHints checks a set of national hints: every NS record owned
// by a name at or below one of the national suffixes (lower-case, fully
// qualified), every address owned by a server an NS record names, and
// each zone with at least one server with an address.
func CheckNationalHints(rrs []dns.RR, national []string) error {
	h := newNationalHints(rrs)
	if len(h.ns) == 0 {
		return fmt.Errorf("%w: no NS record", ErrBadHints)
	}
	servers := map[string]bool{}
	for zone, ns := range h.ns {
		under := false
		for _, s := range national {
			if atOrBelow(zone, cacheName(s)) {
				under = true
			}
		}
		if !under {
			return fmt.Errorf("%w: NS records of %s, which is under no national suffix (%s)", ErrBadHints, zone, strings.Join(national, " "))
		}
		reachable := false
		for _, n := range ns {
			servers[n] = true
			if len(h.addrs[n]) > 0 {
				reachable = true
			}
		}
		if !reachable {
			return fmt.Errorf("%w: no address for any name server of %s", ErrBadHints, zone)
		}
	}
	for n := range h.addrs {
		if !servers[n] {
			return fmt.Errorf("%w: address of %s, which no NS record names", ErrBadHints, n)
		}
	}
	return nil
}

// nationalSuffix returns the national suffix name (canonical) is at or
// below, the deepest if several, or "".
func (r *Resolver) nationalSuffix(name string) string {
	best := ""
	for _, s := range r.cfg.National {
		if atOrBelow(name, s) && len(s) > len(best) {
			best = s
		}
	}
	return best
}

// nationalCut returns the deepest national zone cut at or above name
// (strictly above for DS) that is known: a stub zone, an NS RRset in the
// cache (expired or not), or a zone of the national hints. ok is false
// when name is not national or nothing is known.
func (r *Resolver) nationalCut(name string, qtype uint16) (string, []string, bool) {
	zone := cacheName(name)
	if qtype == dns.TypeDS && zone != "." {
		zone = parentName(zone)
	}
	suffix := r.nationalSuffix(zone)
	if suffix == "" {
		return "", nil, false
	}
	for z := zone; ; z = parentName(z) {
		if _, ok := r.cfg.Stubs[z]; ok {
			return z, nil, true
		}
		if rrs, _, _, ok := r.cache.GetRRsetStale(z, dns.TypeNS); ok {
			if ns := nsTargets(rrs); len(ns) > 0 {
				return z, ns, true
			}
		}
		if ns := r.hints.ns[z]; len(ns) > 0 {
			return z, ns, true
		}
		if z == suffix {
			return "", nil, false
		}
	}
}

// unreachable reports whether the servers of cut are not to be counted
// on now: island mode, or every address known for them is failing.
func (r *Resolver) unreachable(cut string, nsNames []string) bool {
	if r.islandBars(cut) {
		return true
	}
	addrs := r.knownAddrs(cut, nsNames)
	if len(addrs) == 0 {
		return false
	}
	pen := r.penalty()
	r.infra.mu.Lock()
	defer r.infra.mu.Unlock()
	for _, s := range addrs {
		if r.infra.rtt(s) < pen {
			return false
		}
	}
	return true
}

// nationalFirst is the cut to start resolving name at, given the closest
// cut found from the cache: that one, unless name is national, cut is
// foreign and unreachable, and a national cut below it is known.
func (r *Resolver) nationalFirst(name string, qtype uint16, cut string, nsNames []string) (string, []string) {
	if len(r.cfg.National) == 0 || !r.foreign(cut) || !r.national(name) || !r.unreachable(cut, nsNames) {
		return cut, nsNames
	}
	if nc, ns, ok := r.nationalCut(name, qtype); ok && nc != cut && atOrBelow(nc, cut) {
		r.stats.NationalCutStarts.Add(1)
		return nc, ns
	}
	return cut, nsNames
}

// nationalFallback is where a resolution of name goes on when the
// servers of cut, a foreign zone, failed: the deepest national cut known
// below cut, if name is national.
func (r *Resolver) nationalFallback(name string, qtype uint16, cut string) (string, []string, bool) {
	if len(r.cfg.National) == 0 || !r.foreign(cut) || !r.national(name) {
		return "", nil, false
	}
	nc, ns, ok := r.nationalCut(name, qtype)
	if !ok || nc == cut || !atOrBelow(nc, cut) {
		return "", nil, false
	}
	r.stats.NationalCutStarts.Add(1)
	return nc, ns, true
}

// nationalAddrs returns the addresses of the name server ns of the
// national zone cut known without a query when none is fresh in the
// cache: expired ones (kept in the national store), else the hints'.
func (r *Resolver) nationalAddrs(cut, ns string) []server {
	if !r.national(cut) {
		return nil
	}
	var out []server
	for _, t := range [2]uint16{dns.TypeA, dns.TypeAAAA} {
		if rrs, _, _, ok := r.cache.GetRRsetStale(ns, t); ok {
			for _, rr := range rrs {
				if s, ok := r.upstreamAddr(rr); ok {
					out = append(out, s)
				}
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, rr := range r.hints.addrs[ns] {
		if s, ok := r.upstreamAddr(rr); ok {
			out = append(out, s)
		}
	}
	return out
}
