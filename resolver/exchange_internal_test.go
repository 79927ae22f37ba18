package resolver

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/testaddr"
)

// udpServer is a UDP server on a loopback address of its own that answers
// each query with what script returns: datagrams sent in order.
type udpServer struct {
	conn *net.UDPConn
	mu   sync.Mutex
	seen []netip.AddrPort // the source of every query
	ids  []uint16
}

func startUDP(t *testing.T, script func(q *dns.Msg) [][]byte) *udpServer {
	t.Helper()
	s, err := startUDPAt(t, netip.AddrPortFrom(testaddr.IP(), 0), script)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startUDPAt is startUDP on the address given, an error if it cannot
// listen there.
func startUDPAt(t *testing.T, at netip.AddrPort, script func(q *dns.Msg) [][]byte) (*udpServer, error) {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(at))
	if err != nil {
		return nil, err
	}
	s := &udpServer{conn: conn}
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, src, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			s.mu.Lock()
			s.seen = append(s.seen, src)
			s.ids = append(s.ids, q.Id)
			s.mu.Unlock()
			for _, d := range script(q) {
				conn.WriteToUDPAddrPort(d, src)
			}
		}
	}()
	return s, nil
}

func (s *udpServer) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// answer is the wire form of a reply to q with one A record, edited.
func answer(t *testing.T, q *dns.Msg, edit func(r *dns.Msg)) []byte {
	r := new(dns.Msg)
	r.SetReply(q)
	a, _ := dns.NewRR(q.Question[0].Name + " 300 IN A 192.0.2.1")
	r.Answer = []dns.RR{a}
	if edit != nil {
		edit(r)
	}
	b, err := r.Pack()
	if err != nil {
		t.Error(err)
	}
	return b
}

func query(name string) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.SetEdns0(1232, true)
	return m
}

func exchangeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Replies with another ID or another question are unwanted: counted, and
// the exchange waits on for the real answer.
func TestExchangeUnwanted(t *testing.T) {
	s := startUDP(t, func(q *dns.Msg) [][]byte {
		var out [][]byte
		for i := range 20 {
			out = append(out, answer(t, q, func(r *dns.Msg) {
				r.Id = q.Id + uint16(i) + 1
				r.Answer[0].(*dns.A).A = net.IPv4(203, 0, 113, 66)
			}))
		}
		out = append(out, answer(t, q, func(r *dns.Msg) { r.Question[0].Name = "other.example." }))
		out = append(out, []byte{1, 2, 3})
		return append(out, answer(t, q, nil))
	})
	tap := &recordingTap{}
	x := NewNetExchanger(ExchangeConfig{Tap: tap})
	var note exchangeNote
	r, _, err := x.exchangeNoting(exchangeCtx(t), time.Time{}, query("www.example."), s.addr(), false, &note)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Answer[0].(*dns.A).A.String(); got != "192.0.2.1" {
		t.Fatalf("answer %s, want the genuine 192.0.2.1", got)
	}
	if note.unwanted != 22 {
		t.Fatalf("%d unwanted replies counted, want 22", note.unwanted)
	}
	// The tap saw the query and the answer taken, not the forgeries.
	if len(tap.queries) != 1 || len(tap.responses) != 1 {
		t.Fatalf("tap: %d queries, %d responses; want 1 and 1", len(tap.queries), len(tap.responses))
	}
	var got dns.Msg
	if err := got.Unpack(tap.responses[0]); err != nil || got.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("tap response %v (%v), want the genuine answer", &got, err)
	}
}

// recordingTap keeps copies of what it is given.
type recordingTap struct{ queries, responses [][]byte }

func (r *recordingTap) UpstreamQuery(wire []byte, _ netip.AddrPort, _ bool, _ time.Time) {
	r.queries = append(r.queries, bytes.Clone(wire))
}

func (r *recordingTap) UpstreamResponse(wire []byte, _ netip.AddrPort, _ bool, _, _ time.Time) {
	r.responses = append(r.responses, bytes.Clone(wire))
}

func TestExchangeMalformed(t *testing.T) {
	tests := []struct {
		name  string
		reply func(q *dns.Msg) []byte
	}{
		{"ANCOUNT 5, one record", func(q *dns.Msg) []byte {
			b := answer(t, q, nil)
			binary.BigEndian.PutUint16(b[6:], 5)
			return b
		}},
		{"a datagram longer than read", func(q *dns.Msg) []byte {
			return answer(t, q, func(r *dns.Msg) {
				for i := range 600 { // 600 A records: about 9,600 bytes
					a, _ := dns.NewRR(fmt.Sprintf("%s 300 IN A 192.0.2.%d", q.Question[0].Name, i%250))
					r.Answer = append(r.Answer, a)
				}
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startUDP(t, func(q *dns.Msg) [][]byte { return [][]byte{tt.reply(q)} })
			_, _, err := NewNetExchanger(ExchangeConfig{}).Exchange(exchangeCtx(t), query("www.example."), s.addr(), false)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

// Source ports and IDs are drawn at random for every query: over a few
// hundred queries nearly all differ, the ports spread over the ephemeral
// range and do not follow one another.
func TestExchangePortsAndIDs(t *testing.T) {
	s := startUDP(t, func(q *dns.Msg) [][]byte { return [][]byte{answer(t, q, nil)} })
	x := NewNetExchanger(ExchangeConfig{})
	const n = 400
	for range n {
		if _, _, err := x.Exchange(exchangeCtx(t), query("www.example."), s.addr(), false); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ports, ids := map[uint16]bool{}, map[uint16]bool{}
	portLo, portN := ephemeralPorts()
	lo, hi, steps := uint16(65535), uint16(0), 0
	for i, src := range s.seen {
		p := src.Port()
		ports[p], ids[s.ids[i]] = true, true
		lo, hi = min(lo, p), max(hi, p)
		if i > 0 && (p == s.seen[i-1].Port()+1 || p == s.seen[i-1].Port()) {
			steps++
		}
		if int(p) < portLo || int(p) >= portLo+portN {
			t.Errorf("source port %d outside the ephemeral range %d-%d", p, portLo, portLo+portN-1)
		}
	}
	// Birthday bound: 400 draws from 65,536 IDs repeat about once, from
	// 28,232 ports about three times.
	if len(ids) < n-10 || len(ports) < n-20 {
		t.Errorf("%d distinct IDs and %d distinct ports in %d queries", len(ids), len(ports), n)
	}
	if int(hi-lo) < portN/2 || steps > 3 {
		t.Errorf("ports %d-%d over %d queries, %d sequential steps", lo, hi, n, steps)
	}
}

// cookieReply is a reply to q whose COOKIE option holds client and the
// server cookie given in hex (no option when server is empty).
func cookieReply(t *testing.T, q *dns.Msg, client []byte, server string) []byte {
	return answer(t, q, func(r *dns.Msg) {
		o := new(dns.OPT)
		o.Hdr.Name, o.Hdr.Rrtype = ".", dns.TypeOPT
		o.SetUDPSize(1232)
		if server != "" {
			o.Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(client) + server}}
		}
		r.Extra = []dns.RR{o}
	})
}

func clientCookie(q *dns.Msg) (client []byte, server string) {
	for _, o := range q.IsEdns0().Option {
		if c, ok := o.(*dns.EDNS0_COOKIE); ok {
			b, _ := hex.DecodeString(c.Cookie)
			return b[:8], hex.EncodeToString(b[8:])
		}
	}
	return nil, ""
}

func TestExchangeCookies(t *testing.T) {
	const sc = "0102030405060708a1a2a3a4a5a6a7a8"
	var mu sync.Mutex
	mode := "cookie"
	var gotServer []string
	s := startUDP(t, func(q *dns.Msg) [][]byte {
		client, server := clientCookie(q)
		mu.Lock()
		defer mu.Unlock()
		gotServer = append(gotServer, server)
		if client == nil {
			return [][]byte{answer(t, q, nil)}
		}
		switch mode {
		case "forged first":
			forged := append([]byte(nil), client...)
			forged[0] ^= 0xFF
			return [][]byte{cookieReply(t, q, forged, sc), cookieReply(t, q, client, sc)}
		case "none":
			return [][]byte{cookieReply(t, q, client, "")}
		case "malformed forgeries first":
			// With trailing bytes: one with another client cookie, one
			// with none from a server known to send one.
			forged := append([]byte(nil), client...)
			forged[0] ^= 0xFF
			return [][]byte{append(cookieReply(t, q, forged, sc), 0, 0, 0, 0),
				append(cookieReply(t, q, client, ""), 0, 0), cookieReply(t, q, client, sc)}
		}
		return [][]byte{cookieReply(t, q, client, sc)}
	})
	x := NewNetExchanger(ExchangeConfig{Cookies: true})
	ex := func() (*dns.Msg, exchangeNote, error) {
		var note exchangeNote
		r, _, err := x.exchangeNoting(exchangeCtx(t), time.Time{}, query("www.example."), s.addr(), false, &note)
		return r, note, err
	}
	if _, _, err := ex(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ex(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(gotServer) != 2 || gotServer[0] != "" || gotServer[1] != sc {
		t.Errorf("server cookies sent %q, want none then %s", gotServer, sc)
	}
	mode = "forged first"
	mu.Unlock()
	if _, note, err := ex(); err != nil || note.unwanted != 1 {
		t.Errorf("a reply with another client cookie: err %v, %d unwanted, want the next reply and 1 unwanted", err, note.unwanted)
	}
	mu.Lock()
	mode = "malformed forgeries first"
	mu.Unlock()
	if _, note, err := ex(); err != nil || note.unwanted != 2 {
		t.Errorf("malformed replies that are not the server's: err %v, %d unwanted, want the genuine reply and 2 unwanted", err, note.unwanted)
	}
	mu.Lock()
	mode = "none"
	mu.Unlock()
	if _, _, err := ex(); !errors.Is(err, errCookieMissing) {
		t.Errorf("a UDP reply without the cookie its server sends: %v, want errCookieMissing", err)
	}
}

// floodNet answers from a one-record zone, each answer preceded by
// unwanted replies, as a forger who found the source port would cause.
type floodNet struct{ perQuery int }

func (f floodNet) Exchange(ctx context.Context, m *dns.Msg, s netip.AddrPort, tcp bool) (*dns.Msg, time.Duration, error) {
	return f.exchangeNoting(ctx, time.Time{}, m, s, tcp, &exchangeNote{})
}

func (f floodNet) exchangeNoting(ctx context.Context, _ time.Time, m *dns.Msg, s netip.AddrPort, tcp bool, note *exchangeNote) (*dns.Msg, time.Duration, error) {
	note.unwanted += f.perQuery
	r := new(dns.Msg)
	r.SetReply(m)
	r.Authoritative = true
	a, _ := dns.NewRR(m.Question[0].Name + " 300 IN A 192.0.2.1")
	r.Answer = []dns.RR{a}
	return r, time.Millisecond, nil
}

// At the threshold of unwanted replies for a zone, the alarm is raised and
// what the cache held for the zone is dropped.
func TestUnwantedAlarm(t *testing.T) {
	stats := &Stats{}
	cache := NewCache(CacheConfig{MaxBytes: 1 << 20})
	server := netip.MustParseAddrPort("192.0.2.53:53")
	r := New(Config{Stubs: map[string][]netip.AddrPort{"example.": {server}}, RootHints: []dns.RR{}, UnwantedReplyThreshold: 25},
		floodNet{perQuery: 10}, cache, nil, stats)
	ctx := context.Background()
	for i, name := range []string{"a.example.", "b.example."} {
		if res := r.Resolve(ctx, name, dns.TypeA); res.Rcode != dns.RcodeSuccess {
			t.Fatalf("%s: %s %v", name, dns.RcodeToString[res.Rcode], res.Err)
		}
		if _, ok := cache.Get(name, dns.TypeA); !ok {
			t.Fatalf("%s not cached", name)
		}
		if got := stats.UnwantedReplies.Load(); got != uint64(10*(i+1)) {
			t.Fatalf("%d unwanted replies counted, want %d", got, 10*(i+1))
		}
	}
	if stats.UnwantedAlarms.Load() != 0 {
		t.Fatal("alarm raised below the threshold")
	}
	// 30 unwanted: over 25. The answer that came with them is not
	// believed either.
	if res := r.Resolve(ctx, "c.example.", dns.TypeA); res.Rcode != dns.RcodeServerFailure {
		t.Errorf("c.example.: %s, want SERVFAIL", dns.RcodeToString[res.Rcode])
	}
	if got := stats.UnwantedAlarms.Load(); got != 1 {
		t.Fatalf("%d alarms, want 1", got)
	}
	for _, name := range []string{"a.example.", "b.example.", "c.example."} {
		if _, ok := cache.Get(name, dns.TypeA); ok {
			t.Errorf("%s still cached after the alarm", name)
		}
	}
}

// sizedAnswer is the wire form of a reply to q, without TC, that is
// exactly size bytes long: a TXT record padded to it.
func sizedAnswer(t *testing.T, q *dns.Msg, size int) []byte {
	t.Helper()
	r := new(dns.Msg)
	r.SetReply(q)
	txt := &dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: []string{""}}
	r.Answer = []dns.RR{txt}
	base, err := r.Pack()
	if err != nil {
		t.Fatal(err)
	}
	extra := size - len(base) // each string of n bytes takes n+1
	txt.Txt = nil
	extra++ // the empty string goes
	for extra > 0 {
		n := min(extra-1, 255)
		if extra-(n+1) == 1 { // leave no single byte, which no string fills
			n--
		}
		txt.Txt = append(txt.Txt, string(bytes.Repeat([]byte{'x'}, n)))
		extra -= n + 1
	}
	b, err := r.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != size {
		t.Fatalf("built %d bytes, want %d", len(b), size)
	}
	return b
}

// TestExchangeLargeUDP: a server that ignores the EDNS buffer size of 1232
// bytes and sends a longer datagram, without TC, is read whole and its
// answer taken, up to maxDatagram bytes; a longer one is refused, not
// parsed in part.
func TestExchangeLargeUDP(t *testing.T) {
	for _, tc := range []struct {
		size int
		ok   bool
	}{
		{1233, true},
		{1600, true},
		{4096, true},
		{maxDatagram, true},
		{maxDatagram + 1, false},
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			s := startUDP(t, func(q *dns.Msg) [][]byte { return [][]byte{sizedAnswer(t, q, tc.size)} })
			tap := &recordingTap{}
			q := query("big.example.")
			q.Question[0].Qtype = dns.TypeTXT
			r, _, err := NewNetExchanger(ExchangeConfig{Tap: tap}).Exchange(exchangeCtx(t), q, s.addr(), false)
			if !tc.ok {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("got %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Truncated || len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeTXT {
				t.Fatalf("answer %v", r)
			}
			if len(tap.responses) != 1 || len(tap.responses[0]) != tc.size {
				t.Fatalf("the tap saw %d responses, want one of %d bytes", len(tap.responses), tc.size)
			}
		})
	}
}

// An answer that is already in the socket when the read deadline has
// passed (the resolver's goroutine waited for a CPU meanwhile) is taken,
// not counted as a loss; with nothing waiting, the timeout stands. A
// datagram that is not the answer is skipped for the one after it, and
// one of more than maxDatagram bytes is refused as before.
func TestReadUDPAfterDeadline(t *testing.T) {
	q := query("late.example.")
	q.Id = 4321
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	answer := func(id uint16) []byte {
		r := new(dns.Msg)
		r.SetReply(q)
		r.Id = id
		r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "late.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
		b, err := r.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name    string
		waiting [][]byte
		ok      bool
	}{
		{"the answer waiting", [][]byte{answer(4321)}, true},
		{"a forgery, then the answer", [][]byte{answer(1), answer(4321)}, true},
		{"nothing waiting", nil, false},
		{"only a forgery", [][]byte{answer(1)}, false},
		{"a datagram too long", [][]byte{append(answer(4321), make([]byte, maxDatagram)...)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			server := netip.MustParseAddrPort(srv.LocalAddr().String())
			x := NewNetExchanger(ExchangeConfig{})
			p, err := x.poller()
			if err != nil {
				t.Fatal(err)
			}
			conn, err := openUDP(p, server)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			local := localAddr(t, conn)
			for _, d := range tc.waiting {
				if _, err := srv.WriteToUDPAddrPort(d, local); err != nil {
					t.Fatal(err)
				}
			}
			// Loopback delivers a datagram into conn's receive queue
			// before the write returns.
			conn.SetReadDeadline(time.Now().Add(-time.Second))
			note := &exchangeNote{}
			r, _, err := x.readUDP(conn, wire, q, server, nil, make([]byte, maxDatagram), note)
			if tc.ok {
				if err != nil || r == nil || len(r.Answer) != 1 {
					t.Fatalf("got %v, %v; want the waiting answer", r, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %v, want an error", r)
			}
		})
	}
}

// localAddr returns the address a socket is bound to.
func localAddr(t *testing.T, s *udpSocket) netip.AddrPort {
	t.Helper()
	sa, err := syscall.Getsockname(s.fd)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		t.Fatalf("bound to %v", sa)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(a.Port))
}

// A query's context ends its wait: the read looks at the context every
// cancelCheck (or, prompt, is ended at once), and returns the context's
// error; the deadline, far off, plays no part.
func TestExchangeEndsWithItsContext(t *testing.T) {
	for _, prompt := range []bool{false, true} {
		t.Run(fmt.Sprintf("prompt=%v", prompt), func(t *testing.T) {
			s := startUDP(t, func(*dns.Msg) [][]byte { return nil }) // never answers
			x := NewNetExchanger(ExchangeConfig{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type result struct{ err error }
			out := make(chan result, 1)
			go func() {
				note := exchangeNote{prompt: prompt}
				_, _, err := x.exchangeNoting(ctx, time.Now().Add(time.Minute), query("www.example."), s.addr(), false, &note)
				out <- result{err}
			}()
			for seen := 0; seen == 0; {
				select {
				case r := <-out:
					t.Fatalf("the exchange ended before its context: %v", r.err)
				case <-time.After(time.Millisecond):
				}
				s.mu.Lock()
				seen = len(s.seen)
				s.mu.Unlock()
			}
			cancel()
			select {
			case r := <-out:
				if !errors.Is(r.err, context.Canceled) {
					t.Fatalf("err %v, want context.Canceled", r.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the exchange went on after its context ended")
			}
		})
	}
}

// A watched read's looks at its context do not end it: an answer that
// comes after the read has looked twice is taken. The server answers once
// the context has been asked for its error twice (each look asks it once).
func TestExchangeLooksDoNotEndTheWait(t *testing.T) {
	ctx := &lookCounter{Context: context.Background()}
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	s := startUDP(t, func(q *dns.Msg) [][]byte {
		<-release // a slow server
		return [][]byte{answer(t, q, nil)}
	})
	t.Cleanup(free) // runs before the server's cleanup, which waits on its goroutine
	type result struct {
		r   *dns.Msg
		err error
	}
	out := make(chan result, 1)
	go func() {
		x := NewNetExchanger(ExchangeConfig{})
		r, _, err := x.exchangeNoting(ctx, time.Now().Add(time.Minute), query("www.example."), s.addr(), false, &exchangeNote{})
		out <- result{r, err}
	}()
	for ctx.looks.Load() < 2 {
		select {
		case r := <-out:
			t.Fatalf("the exchange ended before the answer: %v %v", r.r, r.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	free()
	select {
	case r := <-out:
		if r.err != nil || len(r.r.Answer) != 1 {
			t.Fatalf("answer %v, err %v; want one record", r.r, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no answer after the server sent it")
	}
}

// lookCounter counts how often its error is asked for.
type lookCounter struct {
	context.Context
	looks atomic.Int32
}

func (c *lookCounter) Err() error {
	c.looks.Add(1)
	return c.Context.Err()
}

// ephemeralPorts returns the kernel's ephemeral port range: the ports it
// gives sockets that ask for none, which servers on this host therefore
// do not bind (ip_local_port_range; Linux's default when unreadable).
func ephemeralPorts() (lo, n int) {
	lo, hi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && l >= 1024 && h > l && h <= 65535 {
				lo, hi = l, h
			}
		}
	}
	return lo, hi - lo + 1
}
