// Package hostile runs scriptable authoritative DNS servers on loopback
// addresses, for testing a resolver against upstream servers that lie,
// mangle, flood, stall and loop.
//
// A Server listens on one loopback address and port, over UDP and TCP,
// and answers each query with a Go Handler. The Handler gets a Writer that
// sends whatever it is given: parsed messages, raw bytes (malformed
// messages, see Malform), several datagrams for one query (forged-reply
// floods, see Flood), nothing at all (a stall), or, over TCP, a message a
// byte at a time (Trickle). Each Server counts the queries it receives, in
// total, per transport and per name, and keeps a log of their source ports
// and IDs.
//
// A Lab places Servers on the addresses of one testaddr.Block, all on one
// port, so that a resolver whose upstream port is that port reaches each at
// the address its glue names; Zone answers as an authoritative server
// would from master-file text (referrals with glue, CNAMEs, wildcards,
// NODATA and NXDOMAIN), which builds a hierarchy: a root delegating a TLD
// to servers that delegate the zones of a scenario.
//
// Everything is bounded: the queries handled at once, the writes per
// query, the messages per TCP connection, the log, and every wait ends
// when the server closes.
package hostile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/testaddr"
)

// Bounds of a Server.
const (
	// MaxInFlight is the queries a Server handles at once; more are
	// dropped unanswered (Stats.Dropped).
	MaxInFlight = 512
	// MaxWrites is the messages a Handler may send for one query.
	MaxWrites = 1 << 14
	// MaxLog is the queries a Server logs (Log); later ones are counted
	// but not logged.
	MaxLog = 1 << 16
	// MaxNames is the distinct names a Server counts (Count); queries for
	// further names are counted in the totals only.
	MaxNames = 1 << 16
	// maxTCPMessages is the queries read from one TCP connection.
	maxTCPMessages = 64
	// tcpIdle is how long a TCP connection may wait for its next query.
	tcpIdle = 5 * time.Second
)

// Query is one query a Server received.
type Query struct {
	Msg  *dns.Msg // nil when the bytes do not parse as a DNS message
	Raw  []byte
	TCP  bool
	From netip.AddrPort
	At   time.Time
}

// Name returns the question's name in lower case, or "" without one.
func (q *Query) Name() string {
	if q.Msg == nil || len(q.Msg.Question) == 0 {
		return ""
	}
	return strings.ToLower(q.Msg.Question[0].Name)
}

// Type returns the question's type, or 0 without one.
func (q *Query) Type() uint16 {
	if q.Msg == nil || len(q.Msg.Question) == 0 {
		return 0
	}
	return q.Msg.Question[0].Qtype
}

// Handler answers one query through w; writing nothing is a stall. It may
// block (to answer late, or trickle) until ctx ends, which it does when
// the server closes. Handlers of different queries run concurrently.
type Handler func(ctx context.Context, w *Writer, q *Query)

// Writer sends a Handler's answers to the client that asked.
type Writer struct {
	udp    *net.UDPConn   // UDP: the server's socket
	to     netip.AddrPort // UDP: the client
	conn   net.Conn       // TCP: the connection
	writes int
}

// Writes returns how many messages (or stream writes) were sent.
func (w *Writer) Writes() int { return w.writes }

func (w *Writer) count() error {
	if w.writes >= MaxWrites {
		return ErrTooManyWrites
	}
	w.writes++
	return nil
}

// Msg packs m and sends it (Raw).
func (w *Writer) Msg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return fmt.Errorf("hostile: pack: %w", err)
	}
	return w.Raw(b)
}

// Raw sends b as one message: one datagram over UDP, b after its two-byte
// length over TCP.
func (w *Writer) Raw(b []byte) error {
	if err := w.count(); err != nil {
		return err
	}
	if w.conn == nil {
		_, err := w.udp.WriteToUDPAddrPort(b, w.to)
		return err
	}
	out := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(out, uint16(len(b)))
	copy(out[2:], b)
	_, err := w.conn.Write(out)
	return err
}

// Stream writes b as it is on a TCP connection: no length is added.
func (w *Writer) Stream(b []byte) error {
	if w.conn == nil {
		return ErrNotTCP
	}
	if err := w.count(); err != nil {
		return err
	}
	_, err := w.conn.Write(b)
	return err
}

// Trickle sends m over TCP, framed, one byte every interval, until all is
// sent, a write fails (the client gave up) or ctx ends.
func (w *Writer) Trickle(ctx context.Context, m *dns.Msg, every time.Duration) error {
	if w.conn == nil {
		return ErrNotTCP
	}
	b, err := m.Pack()
	if err != nil {
		return fmt.Errorf("hostile: pack: %w", err)
	}
	out := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
	out = append(out, b...)
	for i := range out {
		if i > 0 && !Sleep(ctx, every) {
			return ctx.Err()
		}
		if err := w.Stream(out[i : i+1]); err != nil {
			return err
		}
	}
	return nil
}

// Sleep waits d or until ctx ends, and reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Seen is a logged query.
type Seen struct {
	At    time.Time
	From  netip.AddrPort
	ID    uint16
	Name  string // lower case; "" when the query did not parse
	Qtype uint16
	TCP   bool
}

// Stats are a Server's counts.
type Stats struct {
	Total, UDP, TCP int
	// Dropped: UDP queries not handled because MaxInFlight were.
	Dropped int
}

// Server is a fake authoritative server on one loopback address and port.
type Server struct {
	addr    netip.AddrPort
	handler atomic.Pointer[Handler]
	udp     *net.UDPConn
	tcp     *net.TCPListener
	ctx     context.Context
	cancel  context.CancelFunc
	slots   chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	mu    sync.Mutex
	stats Stats
	names map[string]int
	log   []Seen
	conns map[net.Conn]struct{}
}

// Listen starts a Server on addr, a loopback address, over UDP and TCP.
// Its handlers' context derives from ctx, and ends at Close too.
func Listen(ctx context.Context, addr netip.AddrPort, h Handler) (*Server, error) {
	if !addr.Addr().IsLoopback() {
		return nil, fmt.Errorf("hostile: %s is not a loopback address", addr)
	}
	if h == nil {
		return nil, errors.New("hostile: nil handler")
	}
	s := &Server{addr: addr, slots: make(chan struct{}, MaxInFlight), names: map[string]int{}, conns: map[net.Conn]struct{}{}}
	s.handler.Store(&h)
	var err error
	if s.udp, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr)); err != nil {
		return nil, fmt.Errorf("hostile: %w", err)
	}
	if s.tcp, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr)); err != nil {
		s.udp.Close()
		return nil, fmt.Errorf("hostile: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	return s, nil
}

// Addr returns the server's address.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// SetHandler replaces the handler for the queries that come next.
func (s *Server) SetHandler(h Handler) { s.handler.Store(&h) }

// Close stops the server: its sockets close (testaddr.Release: another
// process may bind the address at once), running handlers see their
// context end, and Close returns once they have.
func (s *Server) Close() {
	s.once.Do(func() {
		s.cancel()
		testaddr.Release(func() {
			s.udp.Close()
			s.tcp.Close()
			s.mu.Lock()
			for c := range s.conns {
				c.Close()
			}
			s.mu.Unlock()
		})
		s.wg.Wait()
	})
}

// Stats returns the server's counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Count returns the queries received for name (any type, either transport).
func (s *Server) Count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.names[strings.ToLower(dns.Fqdn(name))]
}

// CountUnder returns the queries received for names at or below zone.
func (s *Server) CountUnder(zone string) int {
	zone = dns.Fqdn(zone)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for name, c := range s.names {
		if dns.IsSubDomain(zone, name) {
			n += c
		}
	}
	return n
}

// Log returns the queries logged so far, in the order received.
func (s *Server) Log() []Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Seen(nil), s.log...)
}

func (s *Server) record(q *Query) {
	seen := Seen{At: q.At, From: q.From, Name: q.Name(), Qtype: q.Type(), TCP: q.TCP}
	if len(q.Raw) >= 2 {
		seen.ID = binary.BigEndian.Uint16(q.Raw)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Total++
	if q.TCP {
		s.stats.TCP++
	} else {
		s.stats.UDP++
	}
	if _, ok := s.names[seen.Name]; ok || len(s.names) < MaxNames {
		s.names[seen.Name]++
	}
	if len(s.log) < MaxLog {
		s.log = append(s.log, seen)
	}
}

func parseQuery(b []byte, tcp bool, from netip.AddrPort) *Query {
	q := &Query{Raw: b, TCP: tcp, From: from, At: time.Now()}
	m := new(dns.Msg)
	if m.Unpack(b) == nil {
		q.Msg = m
	}
	return q
}

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		q := parseQuery(append([]byte(nil), buf[:n]...), false, from)
		s.record(q)
		select {
		case s.slots <- struct{}{}:
		default:
			s.mu.Lock()
			s.stats.Dropped++
			s.mu.Unlock()
			continue
		}
		h := *s.handler.Load()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.slots }()
			h(s.ctx, &Writer{udp: s.udp, to: from}, q)
		}()
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.AcceptTCP()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serveConn(c)
		}()
	}
}

// serveConn reads up to maxTCPMessages queries from c, handling each in
// turn.
func (s *Server) serveConn(c *net.TCPConn) {
	from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	for range maxTCPMessages {
		c.SetReadDeadline(time.Now().Add(tcpIdle))
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		b := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		q := parseQuery(b, true, from)
		s.record(q)
		(*s.handler.Load())(s.ctx, &Writer{conn: c}, q)
	}
}
