package server

import (
	"encoding/hex"
	"net"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sovdns/sovdns/internal/clock"
)

func TestRRLBuckets(t *testing.T) {
	a := netip.MustParseAddr
	www := newAccount(rrlAnswer, "www.example.gov.", dns.TypeA)
	wwwUpper := newAccount(rrlAnswer, "WWW.Example.GOV.", dns.TypeA)
	wwwAAAA := newAccount(rrlAnswer, "www.example.gov.", dns.TypeAAAA)
	nx := newAccount(rrlNXDomain, "example.gov.", 0)
	type burst struct {
		acct rrlAccount
		src  string
		n    int
	}
	tests := []struct {
		name      string
		cfg       RRLConfig
		bursts    []burst // sent in order, at the same instant
		advance   time.Duration
		after     burst // sent after advance
		send      int   // whole responses in all
		slip      int
		drop      int
		logOnly   int
		afterSend int // whole responses among after
	}{
		{name: "over the rate: slip every second", cfg: RRLConfig{ResponsesPerSecond: 10, Slip: 2},
			bursts: []burst{{www, "192.0.2.1", 30}}, send: 10, slip: 10, drop: 10},
		{name: "one /24 is one client", cfg: RRLConfig{ResponsesPerSecond: 10, Slip: 2},
			bursts: []burst{{www, "192.0.2.1", 10}, {www, "192.0.2.200", 10}}, send: 10, slip: 5, drop: 5},
		{name: "another /24 is another client", cfg: RRLConfig{ResponsesPerSecond: 10, Slip: 2},
			bursts: []burst{{www, "192.0.2.1", 20}, {www, "198.51.100.1", 10}}, send: 20, slip: 5, drop: 5},
		{name: "one /56 is one client", cfg: RRLConfig{ResponsesPerSecond: 5},
			bursts: []burst{{www, "2001:db8:0:ff::1", 5}, {www, "2001:db8:0:1::2", 5}}, send: 5, drop: 5},
		{name: "another /56 is another client", cfg: RRLConfig{ResponsesPerSecond: 5},
			bursts: []burst{{www, "2001:db8:0:ff::1", 5}, {www, "2001:db8:0:100::2", 5}}, send: 10},
		{name: "IPv4-mapped is IPv4", cfg: RRLConfig{ResponsesPerSecond: 5},
			bursts: []burst{{www, "192.0.2.1", 5}, {www, "::ffff:192.0.2.9", 5}}, send: 5, drop: 5},
		{name: "name case does not matter", cfg: RRLConfig{ResponsesPerSecond: 5},
			bursts: []burst{{www, "192.0.2.1", 5}, {wwwUpper, "192.0.2.1", 5}}, send: 5, drop: 5},
		{name: "types are counted apart", cfg: RRLConfig{ResponsesPerSecond: 5},
			bursts: []burst{{www, "192.0.2.1", 5}, {wwwAAAA, "192.0.2.1", 5}}, send: 10},
		{name: "errors at their own rate", cfg: RRLConfig{ResponsesPerSecond: 50, ErrorsPerSecond: 5},
			bursts: []burst{{nx, "192.0.2.1", 10}, {www, "192.0.2.1", 10}}, send: 15, drop: 5},
		{name: "slip 1 truncates all", cfg: RRLConfig{ResponsesPerSecond: 5, Slip: 1},
			bursts: []burst{{www, "192.0.2.1", 15}}, send: 5, slip: 10},
		{name: "exempt", cfg: RRLConfig{ResponsesPerSecond: 5, Exempt: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/28")}},
			bursts: []burst{{www, "192.0.2.1", 20}, {www, "192.0.2.100", 20}}, send: 25, drop: 15},
		{name: "log only", cfg: RRLConfig{ResponsesPerSecond: 5, LogOnly: true},
			bursts: []burst{{www, "192.0.2.1", 20}}, send: 20, logOnly: 15},
		{name: "not limited kind", cfg: RRLConfig{ResponsesPerSecond: 1},
			bursts: []burst{{rrlAccount{kind: rrlNone}, "192.0.2.1", 20}}, send: 20},
		{name: "refill over time", cfg: RRLConfig{ResponsesPerSecond: 10},
			bursts: []burst{{www, "192.0.2.1", 20}}, send: 10, drop: 10,
			advance: 500 * time.Millisecond, after: burst{www, "192.0.2.1", 10}, afterSend: 5},
		{name: "refill is capped at one second", cfg: RRLConfig{ResponsesPerSecond: 10},
			bursts: []burst{{www, "192.0.2.1", 10}}, send: 10,
			advance: time.Hour, after: burst{www, "192.0.2.1", 20}, afterSend: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewStep(time.Unix(1_800_000_000, 0))
			vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"kind", "action"})
			l := newRRL(tt.cfg, clk.Now, vec)
			var got [3]int
			var logged int
			for _, b := range tt.bursts {
				for range b.n {
					got[l.check(b.acct, a(b.src))]++
				}
			}
			for _, k := range rrlKindNames[1:] {
				logged += int(testutil.ToFloat64(vec.WithLabelValues(k, "log_only")))
			}
			if got[rrlSend] != tt.send || got[rrlSlip] != tt.slip || got[rrlDrop] != tt.drop || logged != tt.logOnly {
				t.Fatalf("send %d slip %d drop %d log-only %d; want %d %d %d %d",
					got[rrlSend], got[rrlSlip], got[rrlDrop], logged, tt.send, tt.slip, tt.drop, tt.logOnly)
			}
			if tt.advance > 0 {
				clk.Advance(tt.advance)
				n := 0
				for range tt.after.n {
					if l.check(tt.after.acct, a(tt.after.src)) == rrlSend {
						n++
					}
				}
				if n != tt.afterSend {
					t.Fatalf("after %v: %d whole responses, want %d", tt.advance, n, tt.afterSend)
				}
			}
		})
	}
	if newRRL(RRLConfig{}, time.Now, nil) != nil {
		t.Error("a zero rate must turn rate limiting off")
	}
}

func TestAccountOf(t *testing.T) {
	z := mustZone(t, testZone+"*.apps A 192.0.2.80\n", "example.gov.")
	ts := startServer(t, Config{}, z)
	tests := []struct {
		qname string
		qtype uint16
		want  rrlAccount
	}{
		{"www.example.gov.", dns.TypeA, newAccount(rrlAnswer, "www.example.gov.", dns.TypeA)},
		{"x.apps.example.gov.", dns.TypeA, newAccount(rrlWildcard, "example.gov.", dns.TypeA)},
		{"y.apps.example.gov.", dns.TypeA, newAccount(rrlWildcard, "example.gov.", dns.TypeA)},
		{"nope.example.gov.", dns.TypeA, newAccount(rrlNXDomain, "example.gov.", 0)},
		{"other.example.gov.", dns.TypeMX, newAccount(rrlNXDomain, "example.gov.", 0)},
		{"www.example.gov.", dns.TypeMX, newAccount(rrlNoData, "example.gov.", 0)},
		{"x.sub.example.gov.", dns.TypeA, newAccount(rrlReferral, "sub.example.gov.", 0)},
		{"www.example.org.", dns.TypeA, rrlAccount{kind: rrlError}},
	}
	for _, tt := range tests {
		m := query(tt.qname, tt.qtype)
		in, _ := m.Pack()
		r := ts.handle(ts.st.Load(), m, in, netip.MustParseAddrPort("192.0.2.1:53"), false)
		if r.rrl != tt.want {
			t.Errorf("%s %s: account %+v, want %+v", tt.qname, dns.Type(tt.qtype), r.rrl, tt.want)
		}
	}
}

// udpFlood sends n copies of m (each with its own ID) from src to addr as
// fast as it can, and reads the responses into the returned channel until
// stop is closed.
func udpFlood(t *testing.T, src, addr string, m *dns.Msg, n int, stop <-chan struct{}) <-chan *dns.Msg {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	to := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr))
	out := make(chan *dns.Msg, n)
	go func() {
		<-stop
		c.Close()
	}()
	go func() {
		buf := make([]byte, 65535)
		for {
			k, _, err := c.ReadFromUDP(buf)
			if err != nil {
				close(out)
				return
			}
			r := new(dns.Msg)
			if r.Unpack(buf[:k]) == nil {
				out <- r
			}
		}
	}()
	for i := range n {
		m.Id = uint16(i)
		pkt, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteToUDP(pkt, to); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestRRLOverUDP floods a real server from one address and checks that a
// client in another network, a client with a valid cookie, and TCP lose
// nothing meanwhile.
func TestRRLOverUDP(t *testing.T) {
	ts := startServer(t, Config{RRL: RRLConfig{ResponsesPerSecond: 20, Slip: 2}}, mustZone(t, testZone, "example.gov."))
	const flood = 400
	stop := make(chan struct{})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()
	for _, edns := range []bool{false, true} {
		q := query("www.example.gov.", dns.TypeA)
		if edns {
			q.SetEdns0(1232, false)
		}
		src := "127.0.70.1"
		if edns {
			src = "127.0.71.1"
		}
		before := testutil.ToFloat64(ts.m.Queries.WithLabelValues("udp", "example.gov.", "A", "NOERROR"))
		slipBefore := testutil.ToFloat64(ts.m.RateLimited.WithLabelValues("answer", "slip"))
		dropBefore := testutil.ToFloat64(ts.m.RateLimited.WithLabelValues("answer", "drop"))
		stopOne := make(chan struct{})
		got := udpFlood(t, src, ts.udp, q, flood, stopOne)
		// Every query has been handled once the counters add up.
		var whole, slip, drop float64
		deadline := time.Now().Add(10 * time.Second)
		for {
			whole = testutil.ToFloat64(ts.m.Queries.WithLabelValues("udp", "example.gov.", "A", "NOERROR")) - before
			slip = testutil.ToFloat64(ts.m.RateLimited.WithLabelValues("answer", "slip")) - slipBefore
			drop = testutil.ToFloat64(ts.m.RateLimited.WithLabelValues("answer", "drop")) - dropBefore
			if whole+slip+drop >= flood {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("EDNS %v: after 10s, %v whole + %v slipped + %v dropped of %d", edns, whole, slip, drop, flood)
			}
			time.Sleep(5 * time.Millisecond)
		}
		var rWhole, rTC int
		timeout := time.After(10 * time.Second)
		for rWhole+rTC < int(whole+slip) {
			select {
			case r := <-got:
				if r.Truncated {
					if len(r.Answer) != 0 || len(r.Question) != 1 || r.Rcode != dns.RcodeSuccess || (r.IsEdns0() != nil) != edns {
						t.Errorf("a slipped response must be TC with the question alone (and OPT for EDNS):\n%v", r)
					}
					rTC++
				} else {
					rWhole++
				}
			case <-timeout:
				t.Fatalf("EDNS %v: received %d whole and %d truncated, the server sent %v and %v", edns, rWhole, rTC, whole, slip)
			}
		}
		close(stopOne)
		t.Logf("EDNS %v: %d queries: %d whole, %d truncated, %v dropped", edns, flood, rWhole, rTC, drop)
		if rWhole < 20 || rWhole > flood/4 {
			t.Errorf("EDNS %v: %d whole answers of %d at 20/s", edns, rWhole, flood)
		}
		if d := rTC - int(drop); d < -1 || d > 1 {
			t.Errorf("EDNS %v: %d truncated and %v dropped, want one in two slipped", edns, rTC, drop)
		}
	}

	// Meanwhile the bucket of 127.0.70.0/24 is empty; others lose nothing
	// (below their own rate).
	for range 15 {
		other := exchangeFromAddr(t, "udp", "127.0.72.1", ts.udp, query("www.example.gov.", dns.TypeA))
		if other.Truncated || len(other.Answer) != 1 {
			t.Fatalf("a client in another network was limited:\n%v", other)
		}
	}
	for range 30 {
		r := exchangeFromAddr(t, "tcp", "127.0.70.1", ts.tcp, query("www.example.gov.", dns.TypeA))
		if r.Truncated || len(r.Answer) != 1 {
			t.Fatalf("TCP was limited:\n%v", r)
		}
	}
	// A client with a server cookie from this server has proved its
	// address: its queries are never limited, even from the flooded network.
	cookie := askCookie(t, "127.0.70.1", ts.udp)
	for i := range 60 {
		q := query("www.example.gov.", dns.TypeA)
		q.SetEdns0(1232, false)
		q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: cookie})
		r := exchangeFromAddr(t, "udp", "127.0.70.1", ts.udp, q)
		if r.Truncated || len(r.Answer) != 1 {
			t.Fatalf("query %d with a valid cookie was limited:\n%v", i, r)
		}
	}
	// A forged server cookie proves nothing.
	forged := cookie[:16] + "01000000" + cookie[24:32] + "0000000000000000"
	limited := 0
	for range 20 {
		q := query("www.example.gov.", dns.TypeA)
		q.SetEdns0(1232, false)
		q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: forged})
		r, err := exchangeFromAddrErr("udp", "127.0.70.1", ts.udp, q, 200*time.Millisecond)
		if err != nil || r.Truncated {
			limited++
		}
	}
	if limited == 0 {
		t.Error("queries with a forged server cookie were never limited")
	}
}

// askCookie gets a server cookie for src and returns the whole cookie
// (client and server parts) in hex.
func askCookie(t *testing.T, src, addr string) string {
	t.Helper()
	q := query("www.example.gov.", dns.TypeA)
	q.SetEdns0(1232, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	// The first try may be limited (the network is flooded): a limited
	// response without a cookie is retried.
	for range 50 {
		r, err := exchangeFromAddrErr("udp", src, addr, q, 200*time.Millisecond)
		if err != nil {
			continue
		}
		if opt := r.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				if c, ok := o.(*dns.EDNS0_COOKIE); ok {
					if b, err := hex.DecodeString(c.Cookie); err == nil && len(b) == 24 {
						return c.Cookie
					}
				}
			}
		}
	}
	t.Fatal("no server cookie in 50 tries")
	return ""
}

func exchangeFromAddr(t *testing.T, network, src, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	r, err := exchangeFromAddrErr(network, src, addr, m, 2*time.Second)
	if err != nil {
		t.Fatalf("%s exchange from %s: %v", network, src, err)
	}
	return r
}

func exchangeFromAddrErr(network, src, addr string, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	var local net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
	if network == "tcp" {
		local = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c := &dns.Client{Net: network, Timeout: timeout, Dialer: &net.Dialer{Timeout: timeout, LocalAddr: local}}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

func BenchmarkRRLCheck(b *testing.B) {
	l := newRRL(RRLConfig{ResponsesPerSecond: 100, Slip: 2}, time.Now, nil)
	acct := newAccount(rrlAnswer, "www.example.gov.", dns.TypeA)
	src := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		l.check(acct, src)
	}
}

// TestRRLTableOutsideHeap: on Linux the table of buckets is not in the
// heap (the memory limit, which follows the live heap, does not count it),
// the limiter works from it, and the limiter is collected once unused
// (the table's cleanup, which unmaps it, runs with that).
func TestRRLTableOutsideHeap(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the table is mapped on Linux only")
	}
	const size = 1 << 20 // buckets: 32 MiB
	live := func() uint64 {
		runtime.GC()
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	before := live()
	l := newRRL(RRLConfig{ResponsesPerSecond: 5, TableSize: size}, time.Now, nil)
	src := netip.MustParseAddr("192.0.2.1")
	acct := newAccount(rrlAnswer, "www.example.gov.", dns.TypeA)
	for range 5 {
		if got := l.check(acct, src); got != rrlSend {
			t.Fatalf("within the rate: %v", got)
		}
	}
	if got := l.check(acct, src); got != rrlDrop {
		t.Fatalf("over the rate: %v, want a drop", got)
	}
	if after := live(); after > before+4<<20 {
		t.Errorf("the live heap grew by %d MiB with a table of %d MiB", (after-before)>>20, size*int(unsafe.Sizeof(rrlBucket{}))>>20)
	}
	unmapped := make(chan struct{})
	runtime.AddCleanup(l, func(c chan struct{}) { close(c) }, unmapped)
	runtime.KeepAlive(l)
	l = nil
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		select {
		case <-unmapped:
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the limiter was never collected")
		}
	}
}
