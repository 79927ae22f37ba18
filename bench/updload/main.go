// Command updload measures dynamic UPDATE (RFC 2136) on one server: the
// latency of single UPDATEs sent one after another, the rate of UPDATEs
// from parallel clients, and meanwhile the latency of queries sent to the
// same server at a steady rate. Every UPDATE adds one A record at a name
// of its own. Loopback only; every loop is bounded in count and time.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

func main() {
	server := flag.String("server", "127.0.0.1:53", "server address (loopback)")
	zone := flag.String("zone", "bench.test.", "zone to update")
	prefix := flag.String("prefix", "upd", "label prefix of the names added (one run's names must be new)")
	single := flag.Int("single", 100, "UPDATEs sent one after another")
	parallel := flag.Int("parallel", 16, "parallel clients")
	total := flag.Int("total", 400, "UPDATEs sent by the parallel clients together")
	qrate := flag.Int("qrate", 500, "queries per second sent meanwhile")
	qname := flag.String("qname", "", "name asked meanwhile (default: the zone's SOA)")
	idle := flag.Duration("idle", 3*time.Second, "queries alone first, for the latency without UPDATEs")
	probeFor := flag.Duration("probe", 0, "only send queries, for this long, and print their latency (run beside another updload process)")
	flag.Parse()
	ap, err := netip.ParseAddrPort(*server)
	if err != nil || !ap.Addr().IsLoopback() {
		fmt.Fprintln(os.Stderr, "updload: -server must be a loopback address:port")
		os.Exit(2)
	}
	if *qname == "" {
		*qname = *zone
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if *probeFor > 0 {
		p := startProbe(ctx, *server, *qname, *qrate)
		time.Sleep(*probeFor)
		q := p.stop()
		fmt.Printf("query_p50_ms %.2f query_p99_ms %.2f queries %d lost %d\n", ms(q.pct(50)), ms(q.pct(99)), len(q.lat), q.lost)
		return
	}

	base := startProbe(ctx, *server, *qname, *qrate)
	time.Sleep(*idle)
	b := base.stop()
	probe := startProbe(ctx, *server, *qname, *qrate)
	lat, err := sequential(ctx, *server, *zone, *prefix, *single)
	if err != nil {
		fmt.Fprintln(os.Stderr, "updload:", err)
		os.Exit(1)
	}
	start := time.Now()
	n, err := concurrent(ctx, *server, *zone, *prefix, *parallel, *total)
	elapsed := time.Since(start)
	if err != nil {
		fmt.Fprintln(os.Stderr, "updload:", err)
		os.Exit(1)
	}
	q := probe.stop()
	slices.Sort(lat)
	fmt.Printf("single_median_ms %.2f single_p90_ms %.2f parallel_updates_per_s %.0f query_p50_ms %.2f query_p99_ms %.2f queries %d lost %d idle_query_p99_ms %.2f\n",
		ms(lat[len(lat)/2]), ms(lat[len(lat)*9/10]), float64(n)/elapsed.Seconds(),
		ms(q.pct(50)), ms(q.pct(99)), len(q.lat), q.lost+b.lost, ms(b.pct(99)))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func update(zone, name string) *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate(zone)
	rr, _ := dns.NewRR(name + " 300 IN A 192.0.2.1")
	m.Insert([]dns.RR{rr})
	return m
}

func send(ctx context.Context, c *dns.Client, server string, m *dns.Msg) error {
	r, _, err := c.ExchangeContext(ctx, m, server)
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("UPDATE answered %s", dns.RcodeToString[r.Rcode])
	}
	return nil
}

func sequential(ctx context.Context, server, zone, prefix string, n int) ([]time.Duration, error) {
	c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
	var out []time.Duration
	for i := range n {
		t0 := time.Now()
		if err := send(ctx, c, server, update(zone, fmt.Sprintf("%s-s%d.%s", prefix, i, zone))); err != nil {
			return nil, fmt.Errorf("single UPDATE %d: %w", i, err)
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

func concurrent(ctx context.Context, server, zone, prefix string, clients, total int) (int, error) {
	var next atomic.Int64
	var done atomic.Int64
	var first error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: 30 * time.Second}
			for {
				i := next.Add(1) - 1
				if i >= int64(total) || ctx.Err() != nil {
					return
				}
				if err := send(ctx, c, server, update(zone, fmt.Sprintf("%s-p%d.%s", prefix, i, zone))); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return int(done.Load()), first
}

type probeResult struct {
	lat  []time.Duration
	lost int
}

func (p probeResult) pct(x int) time.Duration {
	if len(p.lat) == 0 {
		return 0
	}
	return p.lat[min(len(p.lat)-1, len(p.lat)*x/100)]
}

type probe struct {
	cancel context.CancelFunc
	done   chan probeResult
}

// startProbe asks qname SOA at rate per second, each with a 2 s timeout,
// until stopped.
func startProbe(ctx context.Context, server, qname string, rate int) *probe {
	ctx, cancel := context.WithCancel(ctx)
	p := &probe{cancel: cancel, done: make(chan probeResult, 1)}
	go func() {
		var mu sync.Mutex
		var res probeResult
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
		defer tick.Stop()
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-tick.C:
			}
			wg.Go(func() {
				m := new(dns.Msg)
				m.SetQuestion(qname, dns.TypeSOA)
				t0 := time.Now()
				_, _, err := c.Exchange(m, server)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					res.lost++
					return
				}
				res.lat = append(res.lat, time.Since(t0))
			})
		}
		wg.Wait()
		slices.Sort(res.lat)
		p.done <- res
	}()
	return p
}

func (p *probe) stop() probeResult {
	p.cancel()
	return <-p.done
}
