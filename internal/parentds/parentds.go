// Package parentds asks a zone's parent what it publishes as the zone's
// DS RRset, server by server, for KSK and CSK rollovers that wait for the
// parent (as Knot's DS check does).
//
// The servers asked are, in order of preference: the ones configured for
// the zone (dnssec enable --parent-server); the parent zone itself when
// the same store holds it; or the parent zone's name servers, found
// through a recursive resolver (the node's own, or the ones in
// /etc/resolv.conf), each asked directly without recursion.
package parentds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// Lookup asks a recursive resolver name and qtype, and returns its answer.
type Lookup func(ctx context.Context, name string, qtype uint16) (*dns.Msg, error)

// LocalParent returns, when the store holds the zone's parent, its name
// and the DS RRset it holds for origin.
type LocalParent func(origin string) (string, dnssec.ParentServer, bool)

// Checker asks parent servers for a zone's DS RRset.
type Checker struct {
	// Lookup finds the parent's name servers when none are configured and
	// the store does not hold the parent; nil: Stub over /etc/resolv.conf.
	Lookup Lookup
	// Local reads the parent zone from the store; nil: never.
	Local LocalParent
	// Timeout bounds each query; zero: 3 seconds.
	Timeout time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Port is the port the servers found through Lookup are asked on;
	// zero: 53.
	Port uint16
}

// maxServers bounds the parent servers asked.
const maxServers = 26

// Check asks the parent's servers for origin's DS RRset: servers when
// given (IP or IP:port), or else the local parent or the servers found
// through Lookup. It always returns a view; what failed is in it.
func (c *Checker) Check(ctx context.Context, origin string, servers []string) dnssec.ParentView {
	origin = dns.CanonicalName(origin)
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	v := dnssec.ParentView{Checked: now().UTC()}
	var addrs []netip.AddrPort
	switch {
	case len(servers) > 0:
		for _, s := range servers {
			ap, err := dnssec.ParseServer(s)
			if err != nil {
				v.Err = err.Error()
				return v
			}
			addrs = append(addrs, ap)
		}
	default:
		if c.Local != nil {
			if parent, srv, ok := c.Local(origin); ok {
				v.Parent, v.Servers = parent, []dnssec.ParentServer{srv}
				return v
			}
		}
		parent, found, err := c.discover(ctx, origin)
		if err != nil {
			v.Err = err.Error()
			return v
		}
		v.Parent, addrs = parent, found
	}
	v.Servers = make([]dnssec.ParentServer, len(addrs))
	var wg sync.WaitGroup
	for i, ap := range addrs {
		wg.Go(func() { v.Servers[i] = c.ask(ctx, ap, origin) })
	}
	wg.Wait()
	return v
}

func (c *Checker) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 3 * time.Second
}

// ask asks one parent server for origin's DS RRset, without recursion.
func (c *Checker) ask(ctx context.Context, ap netip.AddrPort, origin string) dnssec.ParentServer {
	srv := dnssec.ParentServer{Server: ap.String()}
	q := new(dns.Msg)
	q.SetQuestion(origin, dns.TypeDS)
	q.RecursionDesired = false
	q.SetEdns0(1232, true)
	r, err := Exchange(ctx, q, ap, c.timeout())
	if err != nil {
		srv.Err = err.Error()
		return srv
	}
	switch {
	case r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError:
		srv.Err = "answered " + dns.RcodeToString[r.Rcode]
		return srv
	case !r.Authoritative:
		srv.Err = "not authoritative for the parent zone (no AA bit)"
		return srv
	}
	for _, rr := range r.Answer {
		if ds, ok := rr.(*dns.DS); ok && strings.EqualFold(ds.Hdr.Name, origin) {
			srv.DS = append(srv.DS, ds)
			srv.TTL = max(srv.TTL, ds.Hdr.Ttl)
		}
	}
	if len(srv.DS) == 0 {
		// No DS: how long a resolver may remember that is the negative
		// TTL (RFC 2308 §5).
		for _, rr := range r.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				srv.TTL = min(soa.Hdr.Ttl, soa.Minttl)
			}
		}
	}
	return srv
}

// Exchange sends q to ap over UDP, and again over TCP if the answer is
// truncated, within timeout for each.
func Exchange(ctx context.Context, q *dns.Msg, ap netip.AddrPort, timeout time.Duration) (*dns.Msg, error) {
	var r *dns.Msg
	for _, network := range []string{"udp", "tcp"} {
		qctx, cancel := context.WithTimeout(ctx, timeout)
		cl := &dns.Client{Net: network, Timeout: timeout}
		var err error
		r, _, err = cl.ExchangeContext(qctx, q, ap.String())
		cancel()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, fmt.Errorf("no answer within %s", timeout)
			}
			return nil, err
		}
		if r.Id != q.Id {
			return nil, errors.New("answer with another ID")
		}
		if !r.Truncated {
			return r, nil
		}
	}
	return r, nil
}

// discover finds the parent zone of origin and the addresses of its
// name servers through c.Lookup.
func (c *Checker) discover(ctx context.Context, origin string) (string, []netip.AddrPort, error) {
	lookup := c.Lookup
	if lookup == nil {
		var err error
		if lookup, err = Stub("/etc/resolv.conf", c.timeout()); err != nil {
			return "", nil, err
		}
	}
	if origin == "." {
		return "", nil, errors.New("the root zone has no parent")
	}
	above := "."
	if i, end := dns.NextLabel(origin, 0); !end && origin[i:] != "" {
		above = origin[i:]
	}
	m, err := lookup(ctx, above, dns.TypeSOA)
	if err != nil {
		return "", nil, fmt.Errorf("find the parent zone of %s: SOA %s: %w", origin, above, err)
	}
	parent := ""
	for _, rr := range append(append([]dns.RR{}, m.Answer...), m.Ns...) {
		if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(soa.Hdr.Name, above) {
			parent = dns.CanonicalName(soa.Hdr.Name)
			break
		}
	}
	if parent == "" {
		return "", nil, fmt.Errorf("find the parent zone of %s: no SOA in the answer for %s (%s)", origin, above, dns.RcodeToString[m.Rcode])
	}
	m, err = lookup(ctx, parent, dns.TypeNS)
	if err != nil {
		return "", nil, fmt.Errorf("find the servers of %s: %w", parent, err)
	}
	var names []string
	for _, rr := range m.Answer {
		if ns, ok := rr.(*dns.NS); ok && strings.EqualFold(ns.Hdr.Name, parent) {
			names = append(names, ns.Ns)
		}
	}
	if len(names) == 0 {
		return "", nil, fmt.Errorf("find the servers of %s: no NS records (%s)", parent, dns.RcodeToString[m.Rcode])
	}
	port := c.Port
	if port == 0 {
		port = 53
	}
	var addrs []netip.AddrPort
	var errs []error
	seen := make(map[netip.AddrPort]bool)
	for _, name := range names {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			m, err := lookup(ctx, name, qt)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", name, dns.TypeToString[qt], err))
				continue
			}
			for _, rr := range m.Answer {
				var ip net.IP
				switch a := rr.(type) {
				case *dns.A:
					ip = a.A
				case *dns.AAAA:
					ip = a.AAAA
				}
				addr, ok := netip.AddrFromSlice(ip)
				if ap := netip.AddrPortFrom(addr.Unmap(), port); ok && !seen[ap] && len(addrs) < maxServers {
					seen[ap] = true
					addrs = append(addrs, ap)
				}
			}
		}
	}
	if len(addrs) == 0 {
		return "", nil, fmt.Errorf("no address for the servers of %s (%s): %w", parent, strings.Join(names, " "), errors.Join(errs...))
	}
	return parent, addrs, nil
}

// Stub returns a Lookup that asks the recursive resolvers named in a
// resolv.conf file, in turn until one answers.
func Stub(path string, timeout time.Duration) (Lookup, error) {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("no resolver to find the parent's servers: %w", err)
	}
	var servers []netip.AddrPort
	for _, s := range cfg.Servers {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		port := uint16(53)
		if p, err := netip.ParseAddrPort(net.JoinHostPort(s, cfg.Port)); err == nil {
			port = p.Port()
		}
		servers = append(servers, netip.AddrPortFrom(ip, port))
	}
	return StubAt(servers, timeout), nil
}

// StubAt returns a Lookup that asks the given recursive resolvers, in
// turn until one answers.
func StubAt(servers []netip.AddrPort, timeout time.Duration) Lookup {
	return func(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
		if len(servers) == 0 {
			return nil, errors.New("no resolver to ask")
		}
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(name), qtype)
		q.SetEdns0(1232, false)
		var errs []error
		for _, ap := range servers {
			r, err := Exchange(ctx, q, ap, timeout)
			if err == nil && (r.Rcode == dns.RcodeSuccess || r.Rcode == dns.RcodeNameError) {
				return r, nil
			}
			if err == nil {
				err = errors.New("answered " + dns.RcodeToString[r.Rcode])
			}
			errs = append(errs, fmt.Errorf("resolver %s: %w", ap, err))
		}
		return nil, errors.Join(errs...)
	}
}
