package cachedb

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/procs"
	"github.com/sovdns/sovdns/resolver"
)

// The write-behind benchmarks run a cache at its capacity (16 MiB, about
// 55,000 single-A entries), as a busy resolver's is, with misses arriving
// at a steady rate: each miss stores a new answer, which evicts the least
// recently used one, long written: the file gets a put per miss (the
// eviction is no change for it). The file is in b.TempDir (set TMPDIR to
// put it on the disk to measure).

const benchCacheBytes = 16 << 20

// benchMissMsg is the answer stored for the i-th miss.
func benchMissMsg(i int) *dns.Msg {
	return answerA(fmt.Sprintf("miss%d.example.net.", i), i)
}

// missLoad stores rate misses a second, in steps of 10 ms, until ctx ends,
// starting from the miss numbered from; it returns how many it stored.
func missLoad(ctx context.Context, c *resolver.Cache, rate, from int) int {
	const step = 10 * time.Millisecond
	per := rate / int(time.Second/step)
	t := time.NewTicker(step)
	defer t.Stop()
	i := from
	for {
		select {
		case <-ctx.Done():
			return i - from
		case <-t.C:
			for range per {
				c.Put(benchMissMsg(i))
				i++
			}
		}
	}
}

// BenchmarkWriteBehind measures what write-behind writes at 1,000 and
// 10,000 misses a second, with the default window: each iteration is one
// second of misses. Reported per second of load: bytes written to the
// file (bbolt's pages and meta pages), fsyncs, batches, and the writer's
// time spent writing.
func BenchmarkWriteBehind(b *testing.B) {
	for _, rate := range []int{1000, 10_000} {
		b.Run(fmt.Sprintf("misses=%d", rate), func(b *testing.B) {
			c := resolver.NewCache(resolver.CacheConfig{MaxBytes: benchCacheBytes, StaleWindow: window})
			fillA(c, 60_000) // past capacity: every new entry evicts one
			path := filepath.Join(b.TempDir(), "resolver-cache.db")
			if _, err := Save(path, c, nil); err != nil {
				b.Fatal(err)
			}
			w := NewWriter(path, c, nil, WriterConfig{WriteBehind: DefaultWriteBehind, Interval: 5 * time.Minute})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { w.Run(ctx); close(done) }()
			for !w.Status().Open {
				time.Sleep(time.Millisecond)
			}
			st0 := w.Status()
			start := time.Now()
			next := 0
			for b.Loop() {
				lctx, lcancel := context.WithTimeout(context.Background(), time.Second)
				next += missLoad(lctx, c, rate, next)
				lcancel()
			}
			cancel() // the final flush writes what is left
			<-done
			secs := time.Since(start).Seconds()
			st := w.Status()
			b.ReportMetric(float64(next)/secs, "misses/s")
			b.ReportMetric(float64(st.Bytes-st0.Bytes)/secs, "bytes/s")
			b.ReportMetric(float64(st.Fsyncs-st0.Fsyncs)/secs, "fsyncs/s")
			b.ReportMetric(float64(st.Batches-st0.Batches)/secs, "batches/s")
			if st.Errors != 0 {
				b.Fatalf("%d write errors: %s", st.Errors, st.LastError)
			}
		})
	}
}

// BenchmarkCacheHitWriteBehind measures cache hits (Get of 10,000 hot
// names, from parallel goroutines) while 10,000 misses a second are
// stored, with write-behind off (no change tracking, no writer) and on
// (tracking and a writer with the default window). Besides ns/op it
// reports the 99th percentile and the maximum of a sample of hits (every
// 32nd).
func BenchmarkCacheHitWriteBehind(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("write-behind=%v", on), func(b *testing.B) {
			c := resolver.NewCache(resolver.CacheConfig{MaxBytes: 256 << 20, StaleWindow: window})
			fillA(c, 10_000)
			names := make([]string, 10_000)
			for i := range names {
				names[i] = fmt.Sprintf("host%d.example.com.", i)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			if on {
				path := filepath.Join(b.TempDir(), "resolver-cache.db")
				w := NewWriter(path, c, nil, WriterConfig{WriteBehind: DefaultWriteBehind, Interval: 5 * time.Minute})
				wg.Add(1)
				go func() { defer wg.Done(); w.Run(ctx) }()
				for !w.Status().Open {
					time.Sleep(time.Millisecond)
				}
			}
			wg.Add(1)
			go func() { defer wg.Done(); missLoad(ctx, c, 10_000, 0) }()

			var mu sync.Mutex
			var samples []time.Duration
			var seed atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				i := int(seed.Add(7919))
				for pb.Next() {
					i++
					if i%32 == 0 {
						t0 := time.Now()
						_, ok := c.Get(names[i%len(names)], dns.TypeA)
						mine = append(mine, time.Since(t0))
						if !ok {
							b.Error("miss")
							return
						}
						continue
					}
					if _, ok := c.Get(names[i%len(names)], dns.TypeA); !ok {
						b.Error("miss")
						return
					}
				}
				mu.Lock()
				samples = append(samples, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			cancel()
			wg.Wait()
			if len(samples) > 0 {
				slices.Sort(samples)
				b.ReportMetric(float64(samples[len(samples)*99/100].Nanoseconds()), "p99-ns")
				b.ReportMetric(float64(samples[len(samples)-1].Nanoseconds()), "max-ns")
			}
		})
	}
}

// BenchmarkWriteBehindLateness measures how late a goroutine that waits
// (as a listener waits for its socket) gets to run while write-behind
// writes 10,000 misses a second, on one scheduler processor (the
// benchmark sets GOMAXPROCS to 1; run it pinned to a CPU, taskset -c 0),
// with the writer's commits and syncs lent a second processor
// (procs.Owner.Lend), without, and with no writer at all (the misses
// stored, nothing written). The waiter sleeps 500 µs at a time;
// reported: the 99th percentile and the maximum of how much later than
// that it ran, and fsyncs per second. Each iteration is one second.
func BenchmarkWriteBehindLateness(b *testing.B) {
	for _, mode := range []string{"none", "unlent", "lent"} {
		b.Run("writer="+mode, func(b *testing.B) {
			prev := runtime.GOMAXPROCS(1)
			defer runtime.GOMAXPROCS(prev)
			c := resolver.NewCache(resolver.CacheConfig{MaxBytes: benchCacheBytes, StaleWindow: window})
			fillA(c, 60_000)
			path := filepath.Join(b.TempDir(), "resolver-cache.db")
			if _, err := Save(path, c, nil); err != nil {
				b.Fatal(err)
			}
			cfg := WriterConfig{WriteBehind: DefaultWriteBehind, Interval: 5 * time.Minute}
			if mode == "lent" {
				cfg.Lend = procs.New(procs.Go{}, "").Lend
			}
			status := func() FileStatus { return FileStatus{} }
			stopWriter := func() {}
			if mode != "none" {
				w := NewWriter(path, c, nil, cfg)
				stopWriter = runWriter(b, w)
				waitFor(b, "the file open", func() bool { return w.Status().Open })
				status = w.Status
			}
			st0 := status()
			var late []time.Duration
			loaded, waited := make(chan struct{}), make(chan struct{})
			go func() { // the waiter, until the load ends
				defer close(waited)
				const nap = 500 * time.Microsecond
				for {
					select {
					case <-loaded:
						return
					default:
					}
					t0 := time.Now()
					time.Sleep(nap) // what is measured: how late it returns
					late = append(late, time.Since(t0)-nap)
				}
			}()
			start := time.Now()
			next := 0
			for b.Loop() {
				lctx, lcancel := context.WithTimeout(context.Background(), time.Second)
				next += missLoad(lctx, c, 10_000, next)
				lcancel()
			}
			secs := time.Since(start).Seconds()
			st := status()
			close(loaded)
			<-waited
			stopWriter()
			if st.Errors != 0 {
				b.Fatalf("%d write errors: %s", st.Errors, st.LastError)
			}
			slices.Sort(late)
			if len(late) > 0 {
				b.ReportMetric(float64(late[len(late)*99/100].Microseconds()), "p99-late-µs")
				b.ReportMetric(float64(late[len(late)-1].Microseconds()), "max-late-µs")
			}
			b.ReportMetric(float64(st.Fsyncs-st0.Fsyncs)/secs, "fsyncs/s")
		})
	}
}

// BenchmarkWriteRound measures one write-behind round of a stream of
// misses, on its own: 10,000 new answers stored in a full cache (2 s of
// 5,000 misses a second), then taken, packed and committed, without the
// pauses a round makes beside the listeners. Reported per change: the
// writer's time, the process's CPU time (user and system: the round's
// work, its writes and syncs, and whatever the runtime did meanwhile) and
// the allocations.
func BenchmarkWriteRound(b *testing.B) {
	const perRound = 10_000
	c := resolver.NewCache(resolver.CacheConfig{MaxBytes: benchCacheBytes, StaleWindow: window})
	fillA(c, 60_000)
	path := filepath.Join(b.TempDir(), "resolver-cache.db")
	if _, err := Save(path, c, nil); err != nil {
		b.Fatal(err)
	}
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: DefaultWriteBehind, CompactLog: 1 << 40})
	w.pace.on = false
	if !w.flush(true, "") {
		b.Fatal("first flush failed")
	}
	defer w.close()
	next := 0
	var took, cpu time.Duration
	var allocs uint64
	var ms runtime.MemStats
	var ru0, ru1 syscall.Rusage
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		for range perRound {
			c.Put(benchMissMsg(next))
			next++
		}
		runtime.ReadMemStats(&ms)
		a0 := ms.Mallocs
		b.StartTimer()
		t0 := time.Now()
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		if !w.flush(false, "") {
			b.Fatal("flush failed")
		}
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		took += time.Since(t0)
		cpu += rusageCPU(&ru1) - rusageCPU(&ru0)
		b.StopTimer()
		runtime.ReadMemStats(&ms)
		allocs += ms.Mallocs - a0
		b.StartTimer()
	}
	changes := float64(b.N * perRound)
	b.ReportMetric(float64(took.Nanoseconds())/changes, "ns/change")
	b.ReportMetric(float64(cpu.Nanoseconds())/changes, "cpu-ns/change")
	b.ReportMetric(float64(allocs)/changes, "allocs/change")
}

// rusageCPU is the user and system time of ru.
func rusageCPU(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
