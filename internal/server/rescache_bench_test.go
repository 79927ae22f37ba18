package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/resolver"
)

// cachedRecursor answers every question from its "cache": one A record
// for the name asked, TTL 300. Every answer is thus kept in the response
// cache the first time it is asked for.
type cachedRecursor struct{}

func (cachedRecursor) ResolveMiss(context.Context, string, uint16, resolver.Miss) resolver.Result {
	return resolver.Result{Rcode: dns.RcodeServerFailure}
}
func (cachedRecursor) Lookup(name string, _ uint16) (resolver.Result, resolver.Miss, bool) {
	a := &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 1)}
	return resolver.Result{Answer: []dns.RR{a}}, resolver.Miss{}, true
}
func (cachedRecursor) CacheEpoch() uint64 { return 0 }
func (cachedRecursor) CountCacheHit()     {}

// resolvedQueries returns n recursive questions for distinct names, with
// EDNS, as a stub resolver sends them.
func resolvedQueries(tb testing.TB, n int) [][]byte {
	qs := make([][]byte, n)
	for i := range qs {
		m := query(fmt.Sprintf("host%d.example.com.", i), dns.TypeA)
		m.RecursionDesired = true
		m.SetEdns0(1232, false)
		wire, err := m.Pack()
		if err != nil {
			tb.Fatal(err)
		}
		qs[i] = wire
	}
	return qs
}

func newResolvedHandler(tb testing.TB) *Server {
	return newTestHandler(tb, Config{ResponseCache: 256 << 20, Resolver: cachedRecursor{},
		RecursionAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
}

// BenchmarkResolvedCacheMemory reports what one resolved answer kept in
// the response cache costs in live heap and heap objects, and what the
// cache counts it for.
func BenchmarkResolvedCacheMemory(b *testing.B) {
	const names = 20000
	qs := resolvedQueries(b, names)
	src := netip.MustParseAddrPort("127.0.0.1:53000")
	out := make([]byte, 0, 4096)
	var perEntry, objects, counted float64
	for b.Loop() {
		s := newResolvedHandler(b)
		s.respond(qs[0], out, src, nil, udp) // the counters' series
		bytes, objs := heapGrowth(func() {
			for _, q := range qs[1:] {
				if s.respond(q, out, src, nil, udp) == nil {
					b.Fatal("no response")
				}
			}
		})
		c := s.st.Load().cache
		if n := c.entries.Load(); n != names {
			b.Fatalf("%d entries cached, want %d", n, names)
		}
		counted = float64(c.bytes.Load()) / names
		perEntry, objects = float64(bytes)/(names-1), float64(objs)/(names-1)
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perEntry, "B/entry")
	b.ReportMetric(objects, "objects/entry")
	b.ReportMetric(counted, "counted-B/entry")
}

// BenchmarkResolvedHit answers questions from 50,000 resolved answers in
// the response cache, in a random order, so that most of what an answer
// touches is not in the processor's caches: the cost of a cached answer
// when many names are in use.
func BenchmarkResolvedHit(b *testing.B) {
	const names = 50000
	qs := resolvedQueries(b, names)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(qs), func(i, j int) { qs[i], qs[j] = qs[j], qs[i] })
	src := netip.MustParseAddrPort("127.0.0.1:53000")
	out := make([]byte, 0, 4096)
	s := newResolvedHandler(b)
	for _, q := range qs {
		s.respond(q, out, src, nil, udp)
	}
	if n := s.st.Load().cache.entries.Load(); n != names {
		b.Fatalf("%d entries cached, want %d", n, names)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if s.respond(qs[i], out, src, nil, udp) == nil {
			b.Fatal("no response")
		}
		if i++; i == len(qs) {
			i = 0
		}
	}
}
