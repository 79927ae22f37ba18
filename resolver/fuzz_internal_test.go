package resolver

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// wireNet answers every query with the same bytes, given the query's ID,
// through the parser an upstream answer meets on the network.
type wireNet struct{ b []byte }

func (w wireNet) Exchange(ctx context.Context, m *dns.Msg, s netip.AddrPort, tcp bool) (*dns.Msg, time.Duration, error) {
	b := append([]byte(nil), w.b...)
	if len(b) >= 2 {
		binary.BigEndian.PutUint16(b, m.Id)
	}
	r, err := parseReply(b)
	if err != nil {
		return nil, 0, err
	}
	if err := matches(m, r); err != nil {
		return nil, 0, err
	}
	return r, time.Millisecond, nil
}

// FuzzResolveUpstream feeds mutated upstream answers through the whole
// resolver: the only server of example. (a stub zone) answers every query
// with the fuzzer's bytes. Nothing may panic or hang, and nothing outside
// example. may enter the cache, whatever the answer claims.
func FuzzResolveUpstream(f *testing.F) {
	reply := func(edit func(m *dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("www.example.", dns.TypeA)
		m.Response, m.Authoritative = true, true
		edit(m)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			f.Fatal(err)
		}
		return r
	}
	f.Add(reply(func(m *dns.Msg) { m.Answer = []dns.RR{rr("www.example. 300 A 192.0.2.1")} }))
	f.Add(reply(func(m *dns.Msg) {
		m.Answer = []dns.RR{rr("www.example. 300 A 192.0.2.1")}
		m.Ns = []dns.RR{rr("victim.test. 300 NS ns.attacker.example.")}
		m.Extra = []dns.RR{rr("www.victim.test. 300 A 203.0.113.66"), rr("ns.victim.test. 300 A 203.0.113.66")}
	}))
	f.Add(reply(func(m *dns.Msg) {
		m.Answer = []dns.RR{rr("www.example. 300 CNAME www.victim.test."), rr("www.victim.test. 300 A 203.0.113.66")}
	}))
	f.Add(reply(func(m *dns.Msg) {
		m.Authoritative = false
		m.Ns = []dns.RR{rr("www.example. 300 NS ns.victim.test.")}
		m.Extra = []dns.RR{rr("ns.victim.test. 300 A 127.0.0.1")}
	}))
	f.Add(reply(func(m *dns.Msg) {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{rr("example. 300 SOA ns.example. h.example. 1 2 3 4 300"), rr("test. 300 SOA ns.test. h.test. 1 2 3 4 300")}
	}))
	server := netip.MustParseAddrPort("192.0.2.53:53")
	f.Fuzz(func(t *testing.T, b []byte) {
		cache := NewCache(CacheConfig{MaxBytes: 1 << 20})
		r := New(Config{Stubs: map[string][]netip.AddrPort{"example.": {server}}, QueryTimeout: 20 * time.Millisecond,
			ResolutionTimeout: time.Second, RootHints: []dns.RR{}}, wireNet{b}, cache, nil, nil)
		for _, q := range []uint16{dns.TypeA, dns.TypeNS} {
			res := r.Resolve(context.Background(), "www.example.", q)
			for _, rr := range res.Answer {
				if n := rr.Header().Name; !dns.IsSubDomain("example.", n) {
					t.Fatalf("answer holds %s, from nowhere asked", rr)
				}
			}
		}
		for _, name := range []string{"victim.test.", "www.victim.test.", "ns.victim.test.", "test."} {
			for _, qt := range []uint16{dns.TypeA, dns.TypeNS, dns.TypeSOA} {
				if m, ok := cache.Get(name, qt); ok {
					t.Fatalf("%s %s cached from a server of example.: %v", name, dns.Type(qt), m.Answer)
				}
				if rrs, _, ok := cache.GetRRset(name, qt); ok {
					t.Fatalf("%s %s RRset cached from a server of example.: %v", name, dns.Type(qt), rrs)
				}
			}
		}
	})
}
