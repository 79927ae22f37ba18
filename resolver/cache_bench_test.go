package resolver

import (
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// benchMsg returns a response with a single A record for name.
func benchMsg(name string, i int) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Response = true
	m.Answer = []dns.RR{benchA(name, i)}
	return m
}

func benchA(name string, i int) dns.RR {
	return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600},
		A: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).To4()}
}

func benchNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("host%d.example.com.", i)
	}
	return names
}

// BenchmarkCacheGet measures cache hits from parallel goroutines, each
// walking the same 10k names from its own starting point.
func BenchmarkCacheGet(b *testing.B) {
	const n = 10_000
	c := NewCache(CacheConfig{MaxBytes: 256 << 20})
	names := benchNames(n)
	for i, name := range names {
		if !c.Put(benchMsg(name, i)) {
			b.Fatal("Put refused")
		}
	}
	var seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			i++
			if _, ok := c.Get(names[i%n], dns.TypeA); !ok {
				b.Error("miss")
				return
			}
		}
	})
}

// BenchmarkCachePut measures storing answers for 100k distinct names in a
// cache large enough to hold them all (after the first pass, each Put
// replaces an entry).
func BenchmarkCachePut(b *testing.B) {
	const n = 100_000
	c := NewCache(CacheConfig{MaxBytes: 256 << 20})
	names := benchNames(n)
	msgs := make([]*dns.Msg, n)
	for i, name := range names {
		msgs[i] = benchMsg(name, i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.Put(msgs[i%n])
	}
}

// BenchmarkCacheMemory measures the heap held per cached single-A entry:
// runtime.MemStats around 100k inserts of distinct names, once as message
// entries and once as RRset entries. It reports the measured bytes/entry
// and the cache's own estimate (est-bytes/entry), which MaxBytes bounds.
func BenchmarkCacheMemory(b *testing.B) {
	const n = 100_000
	for _, kind := range []string{"rrset", "msg"} {
		b.Run(kind, func(b *testing.B) {
			var measured, estimated float64
			for b.Loop() {
				c := NewCache(CacheConfig{MaxBytes: 1 << 30})
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				for i := range n {
					name := fmt.Sprintf("host%d.example.com.", i)
					var ok bool
					if kind == "rrset" {
						ok = c.PutRRset([]dns.RR{benchA(name, i)}, RankAnswerAA)
					} else {
						ok = c.Put(benchMsg(name, i))
					}
					if !ok {
						b.Fatal("put refused")
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				s := c.Stats()
				measured = float64(after.HeapAlloc-before.HeapAlloc) / n
				estimated = float64(s.Bytes) / float64(s.Entries)
				runtime.KeepAlive(c)
			}
			b.ReportMetric(measured, "bytes/entry")
			b.ReportMetric(estimated, "est-bytes/entry")
		})
	}
}

// BenchmarkCacheChurnMemory measures the heap held per entry by a full
// cache (64 MiB) after 400k names passed through it, each as a message
// entry and an RRset entry, as a resolver's cold pass leaves it: evictions
// and the shards' maps, grown past what they hold, included. It reports
// the measured bytes/entry and the cache's own estimate (est-bytes/entry).
func BenchmarkCacheChurnMemory(b *testing.B) {
	const n = 400_000
	var measured, estimated float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := NewCache(CacheConfig{MaxBytes: 64 << 20})
		for i := range n {
			name := fmt.Sprintf("h%d.bench-tld.", i)
			c.Put(benchMsg(name, i))
			c.PutRRset([]dns.RR{benchA(name, i)}, RankAnswerAA)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		s := c.Stats()
		if s.Entries == 0 || s.Bytes > 64<<20 {
			b.Fatalf("%d entries, %d bytes", s.Entries, s.Bytes)
		}
		measured = float64(after.HeapAlloc-before.HeapAlloc) / float64(s.Entries)
		estimated = float64(s.Bytes) / float64(s.Entries)
		runtime.KeepAlive(c)
	}
	b.ReportMetric(measured, "bytes/entry")
	b.ReportMetric(estimated, "est-bytes/entry")
}
