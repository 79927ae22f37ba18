package server

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

const testZone = `$ORIGIN example.gov.
$TTL 3600
@       SOA ns1 hostmaster 2026010101 7200 900 1209600 300
@       NS  ns1
ns1     A   192.0.2.1
www     A   192.0.2.10
www     AAAA 2001:db8::10
alias   CNAME www
sub     NS  ns.sub
ns.sub  A   192.0.2.53
legacy  DNAME new.example.gov.
y.new   A   192.0.2.77
`

func mustZone(t testing.TB, text, origin string) *zone.Zone {
	t.Helper()
	p, err := zonestore.Parse(strings.NewReader(text), origin, "test.zone", nil)
	if err != nil {
		t.Fatal(err)
	}
	z, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// bigTXTZone adds an RRset too large for 1232 bytes.
func bigTXTZone(t testing.TB) *zone.Zone {
	var b strings.Builder
	b.WriteString(testZone)
	for i := range 40 {
		b.WriteString("big TXT \"" + strings.Repeat("x", 60) + string(rune('a'+i%26)) + hex.EncodeToString([]byte{byte(i)}) + "\"\n")
	}
	return mustZone(t, b.String(), "example.gov.")
}

type testServer struct {
	*Server
	udp, tcp string
	reg      *prometheus.Registry
}

func startServer(t *testing.T, cfg Config, zs ...*zone.Zone) *testServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	if cfg.Listen == nil {
		cfg.Listen = []netipAddrPort{loopback0}
	}
	if cfg.ResponseCache == 0 {
		cfg.ResponseCache = 1 << 20
	}
	s := New(cfg, slog.New(slog.DiscardHandler), m)
	s.SetZones(zone.NewSet(zs...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("server did not stop within 5s")
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for len(s.Addrs()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("server did not bind within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	a := s.Addrs()
	return &testServer{Server: s, udp: a[0].String(), tcp: a[1].String(), reg: reg}
}

func exchange(t *testing.T, net, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 2 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s exchange %s: %v", net, m.Question[0].String(), err)
	}
	return r
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	return m
}

func TestAnswersOverUDPAndTCP(t *testing.T) {
	ts := startServer(t, Config{}, mustZone(t, testZone, "example.gov."))
	for _, proto := range []string{"udp", "tcp"} {
		addr := ts.udp
		if proto == "tcp" {
			addr = ts.tcp
		}
		cases := []struct {
			name   string
			qtype  uint16
			rcode  int
			aa     bool
			answer int
		}{
			{"www.example.gov.", dns.TypeA, dns.RcodeSuccess, true, 1},
			{"WwW.ExAmPlE.gOv.", dns.TypeAAAA, dns.RcodeSuccess, true, 1},
			{"alias.example.gov.", dns.TypeA, dns.RcodeSuccess, true, 2},
			{"nope.example.gov.", dns.TypeA, dns.RcodeNameError, true, 0},
			{"www.sub.example.gov.", dns.TypeA, dns.RcodeSuccess, false, 0},
			{"example.org.", dns.TypeA, dns.RcodeRefused, false, 0},
		}
		for _, tc := range cases {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				// Twice: the second answer comes from the response cache.
				for i := range 2 {
					q := query(tc.name, tc.qtype)
					r := exchange(t, proto, addr, q)
					if r.Rcode != tc.rcode || r.Authoritative != tc.aa || len(r.Answer) != tc.answer {
						t.Fatalf("pass %d: got rcode %s aa %v answers %d, want %s %v %d\n%v", i,
							dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer),
							dns.RcodeToString[tc.rcode], tc.aa, tc.answer, r)
					}
					if r.Question[0].Name != tc.name {
						t.Fatalf("question name %q, want the case preserved: %q", r.Question[0].Name, tc.name)
					}
					if tc.answer > 0 && r.Answer[0].Header().Name != tc.name {
						t.Fatalf("answer owner %q, want %q", r.Answer[0].Header().Name, tc.name)
					}
				}
			})
		}
	}
}

// The response cache must give byte-for-byte the answer the full path
// gives, with the ID, flags and name spelling of each query.
func TestCachedAnswerMatchesFullAnswer(t *testing.T) {
	z := mustZone(t, testZone, "example.gov.")
	cached := startServer(t, Config{}, z)
	uncached := startServer(t, Config{ResponseCache: -1}, z)
	names := []string{"www.example.gov.", "WWW.example.GOV.", "alias.example.gov.", "x.sub.example.gov.", "zz.example.gov.",
		"Y.Legacy.example.gov.", "y.legacy.example.gov."}
	for _, name := range names {
		for _, edns := range []bool{false, true} {
			for _, rd := range []bool{false, true} {
				q := query(name, dns.TypeA)
				q.RecursionDesired = rd
				q.CheckingDisabled = rd
				if edns {
					q.SetEdns0(1232, rd)
				}
				exchange(t, "udp", cached.udp, q) // fill
				q.Id = dns.Id()
				a := exchange(t, "udp", cached.udp, q)
				b := exchange(t, "udp", uncached.udp, q)
				if a.String() != b.String() {
					t.Errorf("%s edns=%v rd=%v: cached answer differs:\n%v\nfull:\n%v", name, edns, rd, a, b)
				}
				if a.Id != q.Id || a.RecursionDesired != rd || a.CheckingDisabled != rd {
					t.Errorf("%s: header not patched: id %d/%d rd %v cd %v", name, a.Id, q.Id, a.RecursionDesired, a.CheckingDisabled)
				}
			}
		}
	}
	if n := testutil.ToFloat64(cached.m.CacheEntries); n == 0 {
		t.Error("the response cache holds no entries")
	}
}

func TestSetZonesReplacesAnswersAndCache(t *testing.T) {
	ts := startServer(t, Config{}, mustZone(t, testZone, "example.gov."))
	q := query("www.example.gov.", dns.TypeA)
	for range 2 {
		if r := exchange(t, "udp", ts.udp, q); r.Answer[0].(*dns.A).A.String() != "192.0.2.10" {
			t.Fatalf("before: %v", r)
		}
	}
	ts.SetZones(zone.NewSet(mustZone(t, strings.Replace(testZone, "192.0.2.10", "192.0.2.11", 1), "example.gov.")))
	if r := exchange(t, "udp", ts.udp, q); r.Answer[0].(*dns.A).A.String() != "192.0.2.11" {
		t.Fatalf("after SetZones the old answer is still served: %v", r)
	}
}

func TestEDNS(t *testing.T) {
	ts := startServer(t, Config{NSID: "node-1"}, mustZone(t, testZone, "example.gov."))
	t.Run("opt echoed with our size and DO", func(t *testing.T) {
		q := query("www.example.gov.", dns.TypeA)
		q.SetEdns0(4096, true)
		r := exchange(t, "udp", ts.udp, q)
		opt := r.IsEdns0()
		if opt == nil || opt.UDPSize() != 1232 || !opt.Do() || opt.Version() != 0 {
			t.Fatalf("OPT = %v", opt)
		}
	})
	t.Run("no opt without edns", func(t *testing.T) {
		r := exchange(t, "udp", ts.udp, query("www.example.gov.", dns.TypeA))
		if r.IsEdns0() != nil {
			t.Fatalf("OPT in a response to a query without EDNS: %v", r)
		}
	})
	t.Run("badvers", func(t *testing.T) {
		q := query("www.example.gov.", dns.TypeA)
		q.SetEdns0(1232, false)
		q.IsEdns0().SetVersion(1)
		r := exchange(t, "udp", ts.udp, q)
		if r.Rcode != dns.RcodeBadVers || len(r.Answer) != 0 || r.IsEdns0() == nil || r.IsEdns0().Version() != 0 {
			t.Fatalf("want BADVERS with an OPT of version 0, got %v", r)
		}
	})
	t.Run("unknown option ignored, nsid answered", func(t *testing.T) {
		q := query("www.example.gov.", dns.TypeA)
		q.SetEdns0(1232, false)
		opt := q.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1, 2, 3}},
			&dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		r := exchange(t, "udp", ts.udp, q)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("%v", r)
		}
		var nsid string
		for _, o := range r.IsEdns0().Option {
			if n, ok := o.(*dns.EDNS0_NSID); ok {
				nsid = n.Nsid
			}
			if o.Option() == 65001 {
				t.Errorf("unknown option echoed")
			}
		}
		if nsid != hex.EncodeToString([]byte("node-1")) {
			t.Fatalf("NSID = %q", nsid)
		}
	})
	t.Run("cookies", func(t *testing.T) {
		q := query("www.example.gov.", dns.TypeA)
		q.SetEdns0(1232, false)
		q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
		r := exchange(t, "udp", ts.udp, q)
		var cookie string
		for _, o := range r.IsEdns0().Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				cookie = c.Cookie
			}
		}
		if len(cookie) != 48 || !strings.HasPrefix(cookie, "0102030405060708") {
			t.Fatalf("cookie = %q, want the client cookie and a 16-byte server cookie", cookie)
		}
		q.IsEdns0().Option[0] = &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102"}
		if r := exchange(t, "udp", ts.udp, q); r.Rcode != dns.RcodeFormatError {
			t.Fatalf("malformed cookie: rcode %s, want FORMERR", dns.RcodeToString[r.Rcode])
		}
	})
}

func TestTruncation(t *testing.T) {
	ts := startServer(t, Config{}, bigTXTZone(t))
	cases := []struct {
		name    string
		bufsize uint16 // 0: no EDNS
		proto   string
		tc      bool
		maxLen  int
	}{
		{"udp no edns", 0, "udp", true, 512},
		{"udp edns 512", 512, "udp", true, 512},
		{"udp edns 4096 capped at 1232", 4096, "udp", true, 1232},
		{"tcp", 0, "tcp", false, 65535},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := query("big.example.gov.", dns.TypeTXT)
			if tc.bufsize != 0 {
				q.SetEdns0(tc.bufsize, false)
			}
			addr := ts.udp
			if tc.proto == "tcp" {
				addr = ts.tcp
			}
			r := exchange(t, tc.proto, addr, q)
			r.Compress = true
			wire, _ := r.Pack()
			if r.Truncated != tc.tc || len(wire) > tc.maxLen {
				t.Fatalf("TC=%v len=%d, want TC=%v len<=%d", r.Truncated, len(wire), tc.tc, tc.maxLen)
			}
			if !tc.tc && len(r.Answer) != 40 {
				t.Fatalf("TCP answer has %d records, want 40", len(r.Answer))
			}
		})
	}
	if v := testutil.ToFloat64(ts.truncated[udp]); v != 3 {
		t.Errorf("truncated counter = %v, want 3", v)
	}
}

func rawUDP(t *testing.T, addr string, pkt []byte) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func TestProtocolErrors(t *testing.T) {
	ts := startServer(t, Config{}, mustZone(t, testZone, "example.gov."))
	good, _ := query("www.example.gov.", dns.TypeA).Pack()

	t.Run("short packet dropped", func(t *testing.T) {
		if r := rawUDP(t, ts.udp, good[:8]); r != nil {
			t.Fatalf("answered a 8-byte packet: %x", r)
		}
	})
	t.Run("response dropped", func(t *testing.T) {
		p := append([]byte(nil), good...)
		p[2] |= 0x80
		if r := rawUDP(t, ts.udp, p); r != nil {
			t.Fatalf("answered a response: %x", r)
		}
	})
	t.Run("counts larger than the message formerr", func(t *testing.T) {
		p := append([]byte(nil), good...)
		p[11] = 3 // ARCOUNT 3, no additional records
		r := rawUDP(t, ts.udp, p)
		m := new(dns.Msg)
		if r == nil || m.Unpack(r) != nil || m.Rcode != dns.RcodeFormatError {
			t.Fatalf("want FORMERR, got %x", r)
		}
	})
	t.Run("trailing bytes formerr", func(t *testing.T) {
		p := append(append([]byte(nil), good...), 0xde, 0xad)
		r := rawUDP(t, ts.udp, p)
		m := new(dns.Msg)
		if r == nil || m.Unpack(r) != nil || m.Rcode != dns.RcodeFormatError {
			t.Fatalf("want FORMERR, got %x", r)
		}
	})
	t.Run("oversize datagram dropped", func(t *testing.T) {
		p := append(append([]byte(nil), good...), make([]byte, 5000)...)
		if r := rawUDP(t, ts.udp, p); r != nil {
			t.Fatalf("answered a %d-byte datagram: %x", len(p), r[:12])
		}
	})
	t.Run("garbage body formerr", func(t *testing.T) {
		p := append([]byte(nil), good[:12]...)
		p = append(p, 0xff, 0xff, 0xff)
		r := rawUDP(t, ts.udp, p)
		m := new(dns.Msg)
		if r == nil || m.Unpack(r) != nil || m.Rcode != dns.RcodeFormatError || m.Id != uint16(p[0])<<8|uint16(p[1]) {
			t.Fatalf("want FORMERR with the query ID, got %x", r)
		}
	})
	for _, op := range []int{dns.OpcodeStatus, dns.OpcodeNotify, dns.OpcodeUpdate, 3} {
		t.Run("opcode "+dns.OpcodeToString[op], func(t *testing.T) {
			q := query("example.gov.", dns.TypeSOA)
			q.Opcode = op
			if r := exchange(t, "udp", ts.udp, q); r.Rcode != dns.RcodeNotImplemented || r.Opcode != op {
				t.Fatalf("rcode %s opcode %d, want NOTIMP", dns.RcodeToString[r.Rcode], r.Opcode)
			}
		})
	}
	refused := []struct {
		name  string
		class uint16
		qtype uint16
	}{
		{"axfr", dns.ClassINET, dns.TypeAXFR},
		{"ixfr", dns.ClassINET, dns.TypeIXFR},
		{"hesiod class", dns.ClassHESIOD, dns.TypeA},
		{"version.bind hidden", dns.ClassCHAOS, dns.TypeTXT},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			q := query("example.gov.", tc.qtype)
			if tc.class == dns.ClassCHAOS {
				q = query("version.bind.", tc.qtype)
			}
			q.Question[0].Qclass = tc.class
			if r := exchange(t, "tcp", ts.tcp, q); r.Rcode != dns.RcodeRefused {
				t.Fatalf("rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
			}
		})
	}
	t.Run("two questions formerr", func(t *testing.T) {
		q := query("example.gov.", dns.TypeSOA)
		q.Question = append(q.Question, q.Question[0])
		if r := exchange(t, "udp", ts.udp, q); r.Rcode != dns.RcodeFormatError {
			t.Fatalf("rcode %s, want FORMERR", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("opt with a non-root owner formerr", func(t *testing.T) {
		q := query("www.example.gov.", dns.TypeA)
		q.SetEdns0(1232, false)
		q.IsEdns0().Hdr.Name = "example.gov."
		if r := exchange(t, "udp", ts.udp, q); r.Rcode != dns.RcodeFormatError {
			t.Fatalf("rcode %s, want FORMERR", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("tsig with an unknown key notauth", func(t *testing.T) {
		q := query("www.example.gov.", dns.TypeA)
		q.SetTsig("unknown-key.", dns.HmacSHA256, 300, time.Now().Unix())
		c := &dns.Client{Timeout: 2 * time.Second, TsigSecret: map[string]string{"unknown-key.": "c2VjcmV0"}}
		r, _, err := c.Exchange(q, ts.udp)
		if r == nil {
			t.Fatalf("no response: %v", err)
		}
		if r.Rcode != dns.RcodeNotAuth || len(r.Answer) != 0 {
			t.Fatalf("rcode %s with %d answers, want NOTAUTH and none", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	})
	t.Run("qtype opt formerr", func(t *testing.T) {
		if r := exchange(t, "udp", ts.udp, query("example.gov.", dns.TypeOPT)); r.Rcode != dns.RcodeFormatError {
			t.Fatalf("rcode %s, want FORMERR", dns.RcodeToString[r.Rcode])
		}
	})
}

func TestChaosIdentity(t *testing.T) {
	ts := startServer(t, Config{Version: "sovdns test", Identity: "ns-test-1"}, mustZone(t, testZone, "example.gov."))
	for name, want := range map[string]string{"version.bind.": "sovdns test", "ID.SERVER.": "ns-test-1"} {
		q := query(name, dns.TypeTXT)
		q.Question[0].Qclass = dns.ClassCHAOS
		r := exchange(t, "udp", ts.udp, q)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != want {
			t.Fatalf("%s: %v", name, r)
		}
	}
}

func TestTCPPipeliningAndIdleTimeout(t *testing.T) {
	ts := startServer(t, Config{TCPIdleTimeout: 300 * time.Millisecond}, mustZone(t, testZone, "example.gov."))
	c, err := dns.Dial("tcp", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	names := []string{"www.example.gov.", "alias.example.gov.", "nope.example.gov.", "ns1.example.gov.", "x.sub.example.gov."}
	ids := map[uint16]string{}
	for i, n := range names {
		q := query(n, dns.TypeA)
		q.Id = uint16(1000 + i) // distinct: two random IDs of five are the same once in 6,500 runs
		ids[q.Id] = n
		if err := c.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
	}
	for range names {
		r, err := c.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		if ids[r.Id] != r.Question[0].Name {
			t.Fatalf("response %d for %s does not match a query (queries not yet answered: %v)", r.Id, r.Question[0].Name, ids)
		}
		delete(ids, r.Id)
	}
	// Idle now: the server must close the connection.
	start := time.Now()
	if _, err := c.ReadMsg(); err == nil {
		t.Fatal("read succeeded on an idle connection")
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("idle connection was not closed by the server")
	}
}

func TestTCPConnectionLimit(t *testing.T) {
	t.Run("per client: the new one is closed", func(t *testing.T) {
		ts := startServer(t, Config{TCPMaxPerClient: 2}, mustZone(t, testZone, "example.gov."))
		conns := openAnswered(t, ts.tcp, 2)
		defer closeAll(conns)
		if servedOn(t, ts.tcp) {
			t.Fatal("a third connection from one client was served with a limit of 2")
		}
		for i, c := range conns {
			if !answers(c) {
				t.Fatalf("connection %d was closed by the per-client limit", i)
			}
		}
	})
	t.Run("total: the oldest idle one is evicted", func(t *testing.T) {
		ts := startServer(t, Config{TCPMaxConnections: 2}, mustZone(t, testZone, "example.gov."))
		conns := openAnswered(t, ts.tcp, 2)
		defer closeAll(conns)
		// The second is used again once both wait, so the first is the one
		// idle longest.
		waitUntil(t, func() bool { return ts.tcpIdle.Load() == 2 })
		if !answers(conns[1]) {
			t.Fatal("second connection not answered")
		}
		waitUntil(t, func() bool { return ts.tcpIdle.Load() == 2 })
		if !servedOn(t, ts.tcp) {
			t.Fatal("a new connection was refused while an idle one held a slot")
		}
		if answers(conns[0]) {
			t.Error("the connection idle the longest was not evicted")
		}
		if v := testutil.ToFloat64(ts.m.Dropped.WithLabelValues("tcp_idle_evicted")); v != 1 {
			t.Errorf("tcp_idle_evicted %v, want 1", v)
		}
	})
	t.Run("total: connections in the middle of a query are kept", func(t *testing.T) {
		ts := startServer(t, Config{TCPMaxConnections: 2}, mustZone(t, testZone, "example.gov."))
		conns := openAnswered(t, ts.tcp, 2)
		defer closeAll(conns)
		q, _ := query("www.example.gov.", dns.TypeA).Pack()
		msg := append([]byte{byte(len(q) >> 8), byte(len(q))}, q...)
		for _, c := range conns { // half a query each: not idle
			if _, err := c.Conn.Write(msg[:5]); err != nil {
				t.Fatal(err)
			}
		}
		// The server has seen the bytes once they no longer count as idle.
		waitUntil(t, func() bool { return ts.tcpIdle.Load() == 0 })
		if servedOn(t, ts.tcp) {
			t.Fatal("a connection in the middle of a query was evicted")
		}
		if v := testutil.ToFloat64(ts.m.Dropped.WithLabelValues("tcp_limit")); v != 1 {
			t.Errorf("tcp_limit %v, want 1", v)
		}
		for i, c := range conns {
			if _, err := c.Conn.Write(msg[5:]); err != nil {
				t.Fatal(err)
			}
			if _, err := c.ReadMsg(); err != nil {
				t.Fatalf("connection %d in the middle of a query was closed: %v", i, err)
			}
		}
	})
}

// TestTCPIdleFlood holds many idle connections from many addresses, more
// than the server's limit, and checks that a real client is still answered.
func TestTCPIdleFlood(t *testing.T) {
	ts := startServer(t, Config{TCPMaxConnections: 64, TCPMaxPerClient: 16}, mustZone(t, testZone, "example.gov."))
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for i := range 300 {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 90, byte(1+i%20))}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", ts.tcp)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, c)
	}
	for i := range 32 {
		r := exchange(t, "tcp", ts.tcp, query("www.example.gov.", dns.TypeA))
		if len(r.Answer) != 1 {
			t.Fatalf("query %d during the flood: %v", i, r)
		}
	}
}

// openAnswered opens n TCP connections to addr, each answering one query.
func openAnswered(t *testing.T, addr string, n int) []*dns.Conn {
	t.Helper()
	var conns []*dns.Conn
	for range n {
		c, err := dns.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if !answers(c) {
			t.Fatal("a new connection was not answered")
		}
	}
	return conns
}

// answers reports whether c answers a query within 2s.
func answers(c *dns.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if err := c.WriteMsg(query("www.example.gov.", dns.TypeA)); err != nil {
		return false
	}
	r, err := c.ReadMsg()
	return err == nil && len(r.Answer) == 1
}

// servedOn reports whether a new connection to addr is answered.
func servedOn(t *testing.T, addr string) bool {
	t.Helper()
	c, err := dns.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return answers(c)
}

func closeAll(conns []*dns.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// waitUntil polls cond for up to 5s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMetricsCountBothPaths(t *testing.T) {
	ts := startServer(t, Config{}, mustZone(t, testZone, "example.gov."))
	for range 3 {
		exchange(t, "udp", ts.udp, query("www.example.gov.", dns.TypeA))
	}
	exchange(t, "tcp", ts.tcp, query("nope.example.gov.", dns.TypeA))
	exchange(t, "udp", ts.udp, query("example.org.", dns.TypeTXT))
	if v := testutil.ToFloat64(ts.m.Queries.WithLabelValues("udp", "example.gov.", "A", "NOERROR")); v != 3 {
		t.Errorf("udp A NOERROR = %v, want 3", v)
	}
	if v := testutil.ToFloat64(ts.m.Queries.WithLabelValues("tcp", "example.gov.", "A", "NXDOMAIN")); v != 1 {
		t.Errorf("tcp A NXDOMAIN = %v, want 1", v)
	}
	if v := testutil.ToFloat64(ts.m.Queries.WithLabelValues("udp", metrics.ZoneNone, "TXT", "REFUSED")); v != 1 {
		t.Errorf("udp TXT REFUSED = %v, want 1", v)
	}
	if n := testutil.CollectAndCount(ts.m.Duration); n != 2 {
		t.Errorf("duration histograms = %d, want 2 (udp, tcp)", n)
	}
}

func TestConcurrentQueriesDuringZoneSwaps(t *testing.T) {
	z1 := mustZone(t, testZone, "example.gov.")
	z2 := mustZone(t, strings.Replace(testZone, "192.0.2.10", "192.0.2.11", 1), "example.gov.")
	ts := startServer(t, Config{}, z1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200 && ctx.Err() == nil; i++ {
			if i%2 == 0 {
				ts.SetZones(zone.NewSet(z2))
			} else {
				ts.SetZones(zone.NewSet(z1))
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &dns.Client{Timeout: time.Second}
			for i := 0; i < 100 && ctx.Err() == nil; i++ {
				r, _, err := c.Exchange(query("www.example.gov.", dns.TypeA), ts.udp)
				if err != nil {
					continue
				}
				if len(r.Answer) != 1 {
					t.Errorf("answer during swap: %v", r)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestUnbatchedUDP(t *testing.T) {
	ts := startServer(t, Config{UDPUnbatched: true, UDPSockets: 1}, mustZone(t, testZone, "example.gov."))
	for range 2 {
		r := exchange(t, "udp", ts.udp, query("www.example.gov.", dns.TypeA))
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("%v", r)
		}
	}
}

// TestTruncationDropsAdditionalFirst: an answer that fits without its
// additional addresses loses those, not the answer, and gets no TC; a
// referral that loses in-domain glue gets TC (RFC 9471).
func TestTruncationDropsAdditionalFirst(t *testing.T) {
	var b strings.Builder
	b.WriteString(testZone)
	for i := range 10 {
		fmt.Fprintf(&b, "big MX %d mx%d\n", i, i)
		for j := range 4 {
			fmt.Fprintf(&b, "mx%d A 192.0.2.%d\nmx%d AAAA 2001:db8::%d:%d\n", i, 10*i+j+1, i, i, j)
		}
	}
	for i := range 12 {
		fmt.Fprintf(&b, "deleg NS ns%d.deleg\nns%d.deleg AAAA 2001:db8:1::%d\nns%d.deleg A 198.51.100.%d\n", i, i, i, i, i)
	}
	ts := startServer(t, Config{}, mustZone(t, b.String(), "example.gov."))

	r := exchange(t, "udp", ts.udp, query("big.example.gov.", dns.TypeMX))
	if r.Truncated || len(r.Answer) != 10 {
		t.Fatalf("MX answer: TC=%v with %d answers, want no TC and 10", r.Truncated, len(r.Answer))
	}
	if len(r.Extra) == 0 || len(r.Extra) >= 80 {
		t.Fatalf("MX answer carries %d additional records, want some but not all 80", len(r.Extra))
	}
	r = exchange(t, "udp", ts.udp, query("www.deleg.example.gov.", dns.TypeA))
	if !r.Truncated || len(r.Ns) != 12 {
		t.Fatalf("referral that lost in-domain glue: TC=%v, %d NS; want TC and 12 NS", r.Truncated, len(r.Ns))
	}
	r = exchange(t, "tcp", ts.tcp, query("www.deleg.example.gov.", dns.TypeA))
	if r.Truncated || len(r.Extra) != 24 {
		t.Fatalf("referral over TCP: TC=%v, %d glue; want all 24", r.Truncated, len(r.Extra))
	}
}

func TestRefusesAPortInUse(t *testing.T) {
	ts := startServer(t, Config{}, mustZone(t, testZone, "example.gov."))
	reg := prometheus.NewRegistry()
	s := New(Config{Listen: []netipAddrPort{netip.MustParseAddrPort(ts.udp)}}, slog.New(slog.DiscardHandler), metrics.New(reg))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "another server") {
		t.Fatalf("a second server on %s: Run = %v, want an address-in-use error", ts.udp, err)
	}
}
