package resolver

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fillPoller returns a poller whose answers its own ring reads, or skips
// where the kernel has no io_uring.
func fillPoller(t *testing.T) *upstreamPoller {
	t.Helper()
	p, err := newUpstreamPoller(true, func(err error) { t.Errorf("a ring failed: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if p.fill == nil {
		t.Skipf("no io_uring here: %v", p.ringErr)
	}
	return p
}

// The poller reads the answers of the sockets the lanes keep into their
// readers' buffers: the exchanges get their answers, most of them read
// by the poller, none lost, over IPv4 and IPv6.
func TestPollerFillsReads(t *testing.T) {
	p := fillPoller(t)
	script := func(q *dns.Msg) [][]byte { return [][]byte{answer(t, q, nil)} }
	servers := []netip.AddrPort{startUDP(t, script).addr()}
	if v6, err := startUDPAt(t, netip.MustParseAddrPort("[::1]:0"), script); err == nil {
		servers = append(servers, v6.addr())
	}
	const n = 200
	for i := range n {
		sock := ringQuery(t, p, servers[i%len(servers)])
		sock.Close()
	}
	got := p.filled.Load()
	t.Logf("%d of %d answers read by the poller", got, n)
	if got == 0 {
		t.Fatal("the poller read no answer: every reader read its own")
	}
	if p.fillOff.Load() {
		t.Fatal("the poller's ring broke")
	}
}

// A datagram longer than the reader's buffer is reported truncated, as a
// reader's own recv reports it.
func TestPollerFillTruncated(t *testing.T) {
	p := fillPoller(t)
	big := make([]byte, 900)
	srv := startUDP(t, func(q *dns.Msg) [][]byte {
		b := answer(t, q, nil)
		return [][]byte{append(b, big...)}
	})
	for i := 0; p.filled.Load() == 0; i++ {
		if i == 100 {
			t.Fatal("the poller read none of 100 answers")
		}
		sock, err := p.open(srv.addr())
		if err != nil {
			t.Fatal(err)
		}
		q := query("www.example.")
		wire, _ := q.Pack()
		sock.send(wire)
		sock.watch(nil, time.Now().Add(10*time.Second), time.Time{})
		buf := make([]byte, 512)
		n, trunc, err := sock.read(buf)
		sock.Close()
		if err != nil || n != len(buf) || !trunc {
			t.Fatalf("read %d bytes, truncated %v, %v; want %d, truncated", n, trunc, err, len(buf))
		}
	}
}

// Readers whose deadlines end as their answers come, on sockets used
// again and again: each read returns the answer or the deadline, and a
// buffer given back is never written after (the race detector watches
// the offer's handover; the reads check what they got). The deadlines
// run from none left to about a round trip; where the machine is slower
// than that, a round with deadlines twice as long follows, until both
// ends have been seen: reads past their deadline, and answers the poller
// read.
func TestPollerFillDeadlines(t *testing.T) {
	p := fillPoller(t)
	srv := startUDP(t, func(q *dns.Msg) [][]byte { return [][]byte{answer(t, q, nil)} })
	var answered, expired, filled atomic.Int64
	step := 25 * time.Microsecond
	for round := 0; answered.Load() == 0 || expired.Load() == 0 || filled.Load() == 0; round++ {
		if round == 12 {
			t.Fatalf("after %d rounds: %d answered, %d past their deadline, %d read by the poller", round, answered.Load(), expired.Load(), filled.Load())
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for i := range 60 {
					sock, err := p.open(srv.addr())
					if err != nil {
						t.Error(err)
						return
					}
					q := query("www.example.")
					wire, _ := q.Pack()
					sock.send(wire)
					sock.watch(context.Background(), time.Now().Add(time.Duration(i%8)*step), time.Time{})
					buf := make([]byte, 512)
					before := p.filled.Load()
					n, _, err := sock.read(buf)
					switch {
					case err == nil || errors.Is(err, os.ErrDeadlineExceeded) && n > 0:
						// The server's answer, whole: this query's, or,
						// rarely, a late one to an earlier query from
						// the port this socket drew again (which the
						// exchange counts as unwanted).
						r := new(dns.Msg)
						if uerr := r.Unpack(buf[:n]); uerr != nil || !r.Response || len(r.Answer) != 1 {
							t.Errorf("read %d bytes that are not an answer: %v", n, uerr)
						}
						answered.Add(1)
						if p.filled.Load() > before {
							filled.Add(1)
						}
					case errors.Is(err, os.ErrDeadlineExceeded):
						expired.Add(1)
					default:
						t.Errorf("read: %v", err)
					}
					sock.Close()
				}
			})
		}
		wg.Wait()
		t.Logf("deadlines up to %v: %d answered so far, %d past their deadline, %d read by the poller", 7*step, answered.Load(), expired.Load(), filled.Load())
		step *= 2
	}
}

// A reader whose buffer the poller has claimed waits for the fill,
// whatever wakes it meanwhile (a stale token, a Close's), and then takes
// the fill's result; an offer not claimed is withdrawn at once.
func TestWithdrawWaitsForFill(t *testing.T) {
	s := &udpSocket{ready: make(chan struct{}, 1)}
	s.rstate.Store(rsOffered)
	if got, _ := s.withdraw(); got || s.rstate.Load() != rsIdle {
		t.Fatalf("an offer not claimed: got %v, state %d", got, s.rstate.Load())
	}

	s.rstate.Store(rsClaimed)
	s.signal() // a token that is not the fill's
	type result struct {
		got bool
		r   int32
	}
	done := make(chan result, 1)
	go func() {
		got, r := s.withdraw()
		done <- result{got, r}
	}()
	for len(s.ready) != 0 {
		runtime.Gosched() // until the reader has taken the stale token
	}
	s.rres = 42
	s.rstate.Store(rsFilled)
	s.signal()
	if res := <-done; !res.got || res.r != 42 {
		t.Fatalf("withdraw = %v, %d; want the fill's 42", res.got, res.r)
	}
	if s.rstate.Load() != rsIdle {
		t.Fatalf("state %d after the fill was taken", s.rstate.Load())
	}
}
