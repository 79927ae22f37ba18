package resolver

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/uring"
)

// Exchanger sends one query to one server and returns its answer. The
// network one is NetExchanger; tests script their own.
type Exchanger interface {
	Exchange(ctx context.Context, m *dns.Msg, server netip.AddrPort, tcp bool) (*dns.Msg, time.Duration, error)
}

// notingExchanger is an Exchanger that also tells what it saw on the way
// to the answer; the resolver uses it when the Exchanger has it.
type notingExchanger interface {
	// exchangeNoting gives up at deadline, or at ctx's if it is sooner.
	exchangeNoting(ctx context.Context, deadline time.Time, m *dns.Msg, server netip.AddrPort, tcp bool, note *exchangeNote) (*dns.Msg, time.Duration, error)
}

// exchangeNote is what one exchange saw besides its answer.
type exchangeNote struct {
	// unwanted counts the replies that answered no question asked: a wrong
	// ID, a wrong question, a client cookie that is not ours. Each is a
	// forgery that guessed the source port (or a very confused server).
	unwanted int
	// keep, set by the caller: a UDP query whose deadline passes keeps
	// its socket, handed back in late, so that its answer can still be
	// waited for while other servers are asked (parallel tries).
	keep bool
	// prompt, set by the caller: the context's end (another server's
	// answer came first) ends a UDP query at once, not at the read's
	// next look at it.
	prompt bool
	// start, set by the caller: a reading of the clock taken just
	// before, the query's start (its RTT and its read's first wait count
	// from it); zero: read here.
	start time.Time
	late  *lateQuery
}

// ErrMismatch is an answer that does not answer the query asked.
var ErrMismatch = errors.New("answer does not match the query")

// errCookieMissing is a reply over UDP without a valid server cookie from a
// server known to send one: not believed; the question goes again over TCP.
var errCookieMissing = errors.New("no server cookie from a server that sends cookies")

// ExchangeConfig configures a NetExchanger.
type ExchangeConfig struct {
	// Cookies sends DNS cookies (RFC 7873) to upstream servers and refuses
	// UDP answers without the right one from servers known to send them.
	Cookies bool
	// Tap, if set, is given every query sent and every answer taken.
	Tap Tap
	// NoRing sends UDP queries with a system call each, not through
	// io_uring (ringLanes), even where the kernel has it.
	NoRing bool
	// OnRingError, if set, is told when a ring fails (an entry into the
	// kernel refused, or a batch not done within a second): the queries
	// it would have sent then go with a system call each. It must not
	// wait.
	OnRingError func(error)
}

// Tap is told of the messages exchanged with upstream servers (dnstap).
// Its methods must not keep wire, nor wait.
type Tap interface {
	UpstreamQuery(wire []byte, server netip.AddrPort, tcp bool, at time.Time)
	UpstreamResponse(wire []byte, server netip.AddrPort, tcp bool, queried, at time.Time)
}

// NetExchanger queries over UDP or TCP.
//
// Every UDP query goes from a socket of its own for the query's length
// (through io_uring a socket is then disconnected, which gives up its
// port, emptied and kept for a later query: ringLanes), on a source port
// the kernel draws when the socket is connected: Linux picks it at random
// within its ephemeral port range, from its own random number generator
// (RFC 6056 §3.3.1; TestExchangePortsAndIDs holds the spread), with a
// query ID drawn from crypto/rand (RFC 5452 §9.2, §10). The socket is
// connected, so only datagrams from the server's address and port reach
// it; among those, a reply with another ID, another question or another
// client cookie is unwanted: it is counted (see exchangeNote) and the
// exchange goes on waiting for the real answer until its deadline. What
// arrives is judged whole by checkWire before it is parsed.
type NetExchanger struct {
	cookies *cookieJar // nil: no cookies
	tap     Tap        // nil: none
	bufs    sync.Pool  // *[]byte of maxDatagram+queryRoom bytes
	// poll waits for the UDP answers; made with the first query (a
	// failure is tried again at the next).
	pollMu sync.Mutex
	poll   atomic.Pointer[upstreamPoller]
	noRing bool
	onRing func(error)
}

// maxDatagram is the largest UDP answer taken: well above the 1232 bytes
// asked for (EDNS), so that servers which ignore the buffer size still
// work, and small enough that a thousand queries waiting at once do not
// hold 64 KiB each. A longer datagram is refused whole (its end is known
// to be missing), never parsed in part.
const maxDatagram = 8192

// NewNetExchanger returns an exchanger for the network.
func NewNetExchanger(cfg ExchangeConfig) *NetExchanger {
	x := &NetExchanger{bufs: sync.Pool{New: func() any { b := make([]byte, maxDatagram+queryRoom); return &b }}}
	x.tap, x.noRing, x.onRing = cfg.Tap, cfg.NoRing, cfg.OnRingError
	if cfg.Cookies {
		x.cookies = newCookieJar()
	}
	return x
}

// Exchange implements Exchanger.
func (x *NetExchanger) Exchange(ctx context.Context, m *dns.Msg, server netip.AddrPort, tcp bool) (*dns.Msg, time.Duration, error) {
	return x.exchangeNoting(ctx, time.Time{}, m, server, tcp, &exchangeNote{})
}

func (x *NetExchanger) exchangeNoting(ctx context.Context, deadline time.Time, m *dns.Msg, server netip.AddrPort, tcp bool, note *exchangeNote) (*dns.Msg, time.Duration, error) {
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	var rnd [2]byte
	crand.Read(rnd[:])
	m.Id = binary.BigEndian.Uint16(rnd[:])
	var client []byte
	if x.cookies != nil {
		client = x.cookies.prepare(m, server.Addr())
	}
	// The buffer holds the answer read, then the query: maxDatagram
	// bytes and queryRoom.
	bp := x.bufs.Get().(*[]byte)
	// lost: a ring that broke under the query may still read the query
	// from the buffer, which is then not used again.
	lost := false
	defer func() {
		if !lost {
			x.bufs.Put(bp)
		}
	}()
	buf := (*bp)[:maxDatagram:maxDatagram]
	wire, ok := appendQuery((*bp)[maxDatagram:maxDatagram], m)
	if !ok {
		var err error
		if wire, err = m.Pack(); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", server, err)
		}
	}
	var conn interface {
		Close() error
		SetReadDeadline(time.Time) error
	}
	var tconn net.Conn
	var uconn *udpSocket
	var err error
	if tcp {
		d := net.Dialer{Deadline: deadline}
		tconn, err = d.DialContext(ctx, "tcp", server.String())
		conn = tconn
	} else {
		uconn, err = x.dialUDP(server)
		conn = uconn
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", server, err)
	}
	kept := false // the socket goes on in note.late
	defer func() {
		if !kept {
			conn.Close()
		}
	}()
	// A cancelled context ends a read under way, so that a stopping server
	// does not wait on dead upstreams. Over UDP the read itself looks at
	// the context every cancelCheck (udpSocket.watch), unless the caller
	// needs the end at once (note.prompt): a context.AfterFunc per query
	// cost a tenth of a cache miss's allocations, and the answers of
	// nearly all queries come before the first look.
	stop := func() bool { return true }
	if tcp || note.prompt {
		stop = context.AfterFunc(ctx, func() { conn.Close() })
	}
	start := note.start
	if start.IsZero() {
		start = time.Now()
	}
	switch {
	case tcp:
		if !deadline.IsZero() {
			tconn.SetDeadline(deadline)
		}
	case note.prompt:
		uconn.watch(nil, deadline, start) // a datagram is sent at once, however late
	default:
		uconn.watch(ctx, deadline, start)
	}
	if x.tap != nil {
		x.tap.UpstreamQuery(wire, server, tcp, start)
	}
	var r *dns.Msg
	var raw []byte
	if tcp {
		r, raw, err = x.readTCP(tconn, wire, m, server, client)
	} else {
		r, raw, err = x.readUDP(uconn, wire, m, server, client, buf, note)
		uconn.send(nil) // sent: the buffer goes back to the pool
		lost = errors.Is(err, uring.ErrBroken)
	}
	rtt := time.Since(start)
	if x.tap != nil && err == nil {
		x.tap.UpstreamResponse(raw, server, tcp, start, start.Add(rtt))
	}
	if !stop() {
		err = ctx.Err() // the socket was closed under the read
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		} else if note.keep && !tcp && errors.Is(err, os.ErrDeadlineExceeded) {
			kept = true
			note.late = &lateQuery{x: x, conn: uconn, m: m, server: server, client: client, start: start}
		}
		return nil, rtt, fmt.Errorf("%s: %w", server, err)
	}
	return r, rtt, nil
}

// lateQuery is a UDP query whose wait ran out, its socket kept open: its
// answer may still come while other servers are asked.
type lateQuery struct {
	x      *NetExchanger
	conn   *udpSocket
	m      *dns.Msg
	server netip.AddrPort
	client []byte
	start  time.Time // when the query went
}

// wait waits for the answer until deadline, or until ctx ends, then
// closes the socket. The RTT is counted from when the query went.
func (q *lateQuery) wait(ctx context.Context, deadline time.Time, note *exchangeNote) (*dns.Msg, time.Duration, error) {
	defer q.conn.Close()
	stop := context.AfterFunc(ctx, func() { q.conn.Close() })
	defer stop()
	q.conn.watch(nil, deadline, time.Time{})
	bp := q.x.bufs.Get().(*[]byte)
	defer q.x.bufs.Put(bp)
	r, raw, err := q.x.readUDP(q.conn, nil, q.m, q.server, q.client, (*bp)[:maxDatagram:maxDatagram], note)
	rtt := time.Since(q.start)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, rtt, fmt.Errorf("%s: %w", q.server, err)
	}
	if q.x.tap != nil {
		q.x.tap.UpstreamResponse(raw, q.server, false, q.start, q.start.Add(rtt))
	}
	return r, rtt, nil
}

// dialUDP returns a UDP socket for server, connected (now, or as its
// query is sent), from a source port the kernel draws at random within
// its ephemeral range when it connects. Drawing the port here
// and binding it first, as Unbound does, gives the same spread at the cost
// of a system call more per query (3 % of a cache miss's CPU).
func (x *NetExchanger) dialUDP(server netip.AddrPort) (*udpSocket, error) {
	p, err := x.poller()
	if err != nil {
		return nil, err
	}
	return p.open(server)
}

// poller returns the exchanger's poller, made the first time. It is
// closed when the exchanger is no longer reachable.
func (x *NetExchanger) poller() (*upstreamPoller, error) {
	if p := x.poll.Load(); p != nil {
		return p, nil
	}
	x.pollMu.Lock()
	defer x.pollMu.Unlock()
	if p := x.poll.Load(); p != nil {
		return p, nil
	}
	p, err := newUpstreamPoller(!x.noRing, x.onRing)
	if err != nil {
		return nil, err
	}
	x.poll.Store(p)
	runtime.AddCleanup(x, func(p *upstreamPoller) { p.Close() }, p)
	return p, nil
}

// UDPPath names how UDP queries are sent: "io_uring", or "system calls"
// with why not through io_uring (nil when ExchangeConfig.NoRing says so).
func (x *NetExchanger) UDPPath() (string, error) {
	p, err := x.poller()
	if err != nil {
		return "", err
	}
	if p.ring != nil {
		return "io_uring", nil
	}
	return "system calls", p.ringErr
}

// readUDP sends the query and reads until the answer comes, which it
// returns parsed and as it came (in buf).
func (x *NetExchanger) readUDP(conn *udpSocket, wire []byte, m *dns.Msg, server netip.AddrPort, client, buf []byte, note *exchangeNote) (*dns.Msg, []byte, error) {
	conn.send(wire)
	late := 0
	for {
		n, trunc, err := conn.read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) && n > 0 {
			// The answer may be waiting in the socket while this
			// goroutine waited for a CPU (a busy resolver on one core):
			// the deadline is not taken for a loss before what has
			// arrived is read (read takes one such datagram per call).
			if late++; late > maxLateReads {
				return nil, nil, err
			}
			err = nil
		}
		if err != nil {
			return nil, nil, err
		}
		pkt := buf[:n]
		if n < 12 || binary.BigEndian.Uint16(pkt) != m.Id || pkt[2]&0x80 == 0 {
			note.unwanted++
			continue
		}
		if trunc {
			return nil, nil, fmt.Errorf("%w: a datagram of more than %d bytes", ErrMalformed, maxDatagram)
		}
		r, err := parseReply(pkt)
		if err != nil {
			if x.notTheServers(server.Addr(), m, client, pkt) {
				note.unwanted++
				continue
			}
			return nil, nil, err
		}
		if matches(m, r) != nil {
			note.unwanted++
			continue
		}
		switch x.cookies.check(server.Addr(), client, r, false) {
		case cookieForged:
			note.unwanted++
			continue
		case cookieMissing:
			return nil, nil, errCookieMissing
		}
		return r, pkt, nil
	}
}

// maxLateReads bounds the datagrams read after the deadline, when the
// first ones are not the answer.
const maxLateReads = 8

// notTheServers reports whether a malformed datagram with the query's ID
// shows, read leniently, that the server did not send it: another
// question, another client cookie, or no cookie (or nothing readable)
// from a server known to send one. Such a datagram is a forgery, and the
// real answer is still awaited; otherwise the server answered badly.
func (x *NetExchanger) notTheServers(a netip.Addr, m *dns.Msg, client, pkt []byte) bool {
	known := x.cookies != nil && client != nil && x.cookies.sendsCookies(a)
	lax := new(dns.Msg)
	if lax.Unpack(pkt) != nil {
		return known
	}
	if matches(m, lax) != nil {
		return true
	}
	if x.cookies == nil || client == nil {
		return false
	}
	var buf [40]byte
	sc, forged := replyCookie(client, lax, &buf)
	return forged || (sc == nil && known)
}

// readTCP sends the query and reads the answer, which it returns parsed
// and as it came.
func (x *NetExchanger) readTCP(conn net.Conn, wire []byte, m *dns.Msg, server netip.AddrPort, client []byte) (*dns.Msg, []byte, error) {
	out := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(out, uint16(len(wire)))
	copy(out[2:], wire)
	if _, err := conn.Write(out); err != nil {
		return nil, nil, err
	}
	var hdr [2]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, nil, err
	}
	r, err := parseReply(buf)
	if err != nil {
		return nil, nil, err
	}
	if err := matches(m, r); err != nil {
		return nil, nil, err
	}
	if x.cookies.check(server.Addr(), client, r, true) == cookieForged {
		return nil, nil, fmt.Errorf("%w: not our client cookie", ErrMismatch)
	}
	return r, buf, nil
}

func matches(q, r *dns.Msg) error {
	if !r.Response || r.Id != q.Id || len(q.Question) != 1 {
		return ErrMismatch
	}
	if len(r.Question) == 0 && r.Truncated {
		return nil // cut before its question: goes on over TCP
	}
	if len(r.Question) != 1 {
		return ErrMismatch
	}
	a, b := r.Question[0], q.Question[0]
	if a.Qtype != b.Qtype || a.Qclass != b.Qclass || !strings.EqualFold(a.Name, b.Name) {
		return ErrMismatch
	}
	return nil
}
