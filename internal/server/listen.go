package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// listenUDP opens n sockets on ap (a fixed port) sharing the port with
// SO_REUSEPORT, so the kernel spreads queries over them.
func listenUDP(ctx context.Context, ap netip.AddrPort, n int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{Control: reusePort}
	var conns []*net.UDPConn
	for range max(n, 1) {
		pc, err := lc.ListenPacket(ctx, "udp", ap.String())
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		c := pc.(*net.UDPConn)
		tuneUDP(c)
		conns = append(conns, c)
	}
	return conns, nil
}

func tuneUDP(c *net.UDPConn) {
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
}

// listenPair binds the UDP sockets and the TCP listener of one address on
// the same port.
//
// A fixed port is probed first (probeFree), then bound by udpSockets UDP
// sockets and a TCP listener sharing it with SO_REUSEPORT.
//
// Port 0 is bound by one UDP socket and one TCP listener, both WITHOUT
// SO_REUSEPORT (listenExclusive). SO_REUSEPORT cannot be used there: on
// Linux, a port-0 bind of a reuseport socket may be given a port already
// held by another reuseport socket of the same user (UDP autobind treats
// such a port as shareable), and a port that a reuseport socket of ours
// holds can later be joined by another process's reuseport socket of the
// same user. Either way two servers would share the port and answer each
// other's queries. A socket without SO_REUSEPORT gets a port no other
// socket holds and keeps any other socket off it until it is closed, so
// the port is the server's alone for its lifetime; the price is a single
// UDP socket, which is what port 0 (tests, ad hoc runs) needs.
func listenPair(ctx context.Context, ap netip.AddrPort, udpSockets int) ([]*net.UDPConn, net.Listener, error) {
	if ap.Port() == 0 {
		return listenExclusive(ctx, ap)
	}
	if err := probeFree(ctx, ap); err != nil {
		return nil, nil, err
	}
	conns, err := listenUDP(ctx, ap, udpSockets)
	if err != nil {
		return nil, nil, fmt.Errorf("listen udp %s: %w", ap, err)
	}
	ln, err := listenTCP(ctx, ap)
	if err != nil {
		for _, c := range conns {
			c.Close()
		}
		return nil, nil, fmt.Errorf("listen tcp %s: %w", ap, err)
	}
	return conns, ln, nil
}

// listenExclusive binds ap's address on a port the kernel picks, with one
// UDP socket and one TCP listener, neither with SO_REUSEPORT (see
// listenPair). The UDP port picked may be held for TCP by someone else;
// then the UDP socket is closed and the kernel asked again, a bounded
// number of times.
func listenExclusive(ctx context.Context, ap netip.AddrPort) ([]*net.UDPConn, net.Listener, error) {
	var lc net.ListenConfig
	const attempts = 16
	for i := 1; ; i++ {
		pc, err := lc.ListenPacket(ctx, "udp", ap.String())
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp %s: %w", ap, err)
		}
		c := pc.(*net.UDPConn)
		tap := netip.AddrPortFrom(ap.Addr(), uint16(c.LocalAddr().(*net.UDPAddr).Port))
		ln, err := lc.Listen(ctx, "tcp", tap.String())
		if err == nil {
			tuneUDP(c)
			return []*net.UDPConn{c}, ln, nil
		}
		c.Close()
		if i == attempts || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("listen tcp %s: %w", tap, err)
		}
	}
}

// probeFree binds ap without SO_REUSEPORT, for UDP and TCP, and lets go.
// Our sockets share their port with SO_REUSEPORT, which would let a second
// server (an old instance left running, say) silently take part of the
// traffic; the probe fails when anything holds the port.
func probeFree(ctx context.Context, ap netip.AddrPort) error {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", ap.String())
	if err != nil {
		return fmt.Errorf("listen udp %s: %w (is another server running on it?)", ap, err)
	}
	pc.Close()
	ln, err := lc.Listen(ctx, "tcp", ap.String())
	if err != nil {
		return fmt.Errorf("listen tcp %s: %w (is another server running on it?)", ap, err)
	}
	return ln.Close()
}

func listenTCP(ctx context.Context, ap netip.AddrPort) (net.Listener, error) {
	lc := net.ListenConfig{Control: reusePort}
	return lc.Listen(ctx, "tcp", ap.String())
}

// serveUDPSimple answers the packets of one socket one at a time, for
// platforms without recvmmsg.
func (s *Server) serveUDPSimple(ctx context.Context, c *net.UDPConn) {
	in := make([]byte, 65535)
	out := make([]byte, 0, 65535)
	sock := newUDPSocket(c)
	for {
		n, src, err := c.ReadFromUDPAddrPort(in)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("udp read failed", "err", err)
			continue
		}
		resp := s.respond(in[:n], out, src, sock, udp)
		if resp == nil {
			continue
		}
		if _, err := c.WriteToUDPAddrPort(resp, src); err != nil && ctx.Err() == nil {
			s.m.Dropped.WithLabelValues("write_error").Inc()
		}
	}
}

// tcpConn is one accepted TCP connection.
type tcpConn struct {
	net.Conn
	src netip.AddrPort
	// idleSince is when the connection began waiting for the next query
	// (Unix nanoseconds), 0 while a query is being read or answered.
	idleSince atomic.Int64
	idle      *atomic.Int64 // the server's count of idle connections
	transport int           // tcp, or dot for DNS over TLS
}

// setIdle records that c waits for a query since t (Unix nanoseconds), or,
// with t 0, that it no longer waits, keeping the count of idle connections.
func (c *tcpConn) setIdle(t int64) {
	old := c.idleSince.Swap(t)
	switch {
	case old == 0 && t != 0:
		c.idle.Add(1)
	case old != 0 && t == 0:
		c.idle.Add(-1)
	}
}

// tcpConns tracks the connections being served, for the limits and for
// evicting idle ones under pressure.
type tcpConns struct {
	mu        sync.Mutex
	all       map[*tcpConn]struct{}
	perClient map[netip.Addr]int
	pressure  bool // three quarters of the slots were taken at the last accept
}

// oldestIdle returns the connection idle the longest, or nil when none is
// idle.
func (t *tcpConns) oldestIdle() *tcpConn {
	var oldest *tcpConn
	var since int64
	for c := range t.all {
		if s := c.idleSince.Load(); s != 0 && (oldest == nil || s < since) {
			oldest, since = c, s
		}
	}
	return oldest
}

// serveTCP accepts connections (RFC 7766) up to the configured limit. When
// every slot is taken, the connection idle the longest is closed to make
// room, as NSD and Knot do, so that a flood of idle connections cannot keep
// real clients out; only when none is idle is the new one closed.
//
// DNS over TLS listeners are served here too (transport dot), ln being a
// TLS listener.
func (s *Server) serveTCP(ctx context.Context, ln net.Listener, transport int) {
	sem := make(chan struct{}, s.cfg.TCPMaxConnections)
	t := &tcpConns{all: map[*tcpConn]struct{}{}, perClient: map[netip.Addr]int{}}
	var wg sync.WaitGroup
	defer func() {
		t.mu.Lock()
		for c := range t.all {
			c.Close()
		}
		t.mu.Unlock()
		wg.Wait()
	}()
	// Under pressure (three quarters of the slots taken) idle connections
	// get a short timeout, so held-open connections cannot keep new
	// clients out for long (RFC 7766 §6.2.3).
	short := min(s.cfg.TCPIdleTimeout, time.Second)
	idle := func() time.Duration {
		if len(sem) >= cap(sem)*3/4 {
			return short
		}
		return s.cfg.TCPIdleTimeout
	}
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("tcp accept failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		c := &tcpConn{Conn: nc, idle: &s.tcpIdle, transport: transport}
		if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
			c.src = ta.AddrPort()
		}
		t.mu.Lock()
		over := t.perClient[c.src.Addr()] >= s.cfg.TCPMaxPerClient
		if !over {
			t.perClient[c.src.Addr()]++
		}
		t.mu.Unlock()
		if over {
			s.m.Dropped.WithLabelValues("tcp_client_limit").Inc()
			nc.Close()
			continue
		}
		if !s.tcpSlot(sem, t) {
			s.m.Dropped.WithLabelValues("tcp_limit").Inc()
			nc.Close()
			t.mu.Lock()
			release(t.perClient, c.src.Addr())
			t.mu.Unlock()
			continue
		}
		// Waiting for its first query, the connection is idle from now:
		// evictable before its goroutine has even started.
		c.setIdle(time.Now().UnixNano())
		t.mu.Lock()
		t.all[c] = struct{}{}
		s.notePressure(t, len(sem) >= cap(sem)*3/4, short)
		t.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, c, idle)
			t.mu.Lock()
			delete(t.all, c)
			release(t.perClient, c.src.Addr())
			t.mu.Unlock()
			<-sem
		}()
	}
}

// tcpSlot takes a connection slot, evicting the connection idle the
// longest when all are taken. It reports false when none could be had.
func (s *Server) tcpSlot(sem chan struct{}, t *tcpConns) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
	}
	t.mu.Lock()
	victim := t.oldestIdle()
	if victim != nil {
		victim.setIdle(0) // not chosen twice
	}
	t.mu.Unlock()
	if victim == nil {
		return false
	}
	victim.Close()
	s.m.Dropped.WithLabelValues("tcp_idle_evicted").Inc()
	// Its goroutine gives the slot back as it returns.
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	select {
	case sem <- struct{}{}:
		return true
	case <-timer.C:
		return false
	}
}

// notePressure shortens the idle timeout of connections already waiting
// when the server comes under pressure, which the timeout they were given
// before did not foresee. Called with t.mu held.
func (s *Server) notePressure(t *tcpConns, now bool, short time.Duration) {
	if now == t.pressure {
		return
	}
	t.pressure = now
	if !now {
		return
	}
	for c := range t.all {
		if since := c.idleSince.Load(); since != 0 {
			_ = c.SetReadDeadline(time.Unix(0, since).Add(short))
		}
	}
}

func release(perClient map[netip.Addr]int, a netip.Addr) {
	if perClient[a]--; perClient[a] <= 0 {
		delete(perClient, a)
	}
}

// serveConn answers the queries of one TCP connection in the order they
// arrive (pipelining), closing it after the idle timeout.
func (s *Server) serveConn(ctx context.Context, c *tcpConn, idle func() time.Duration) {
	defer c.Close()
	defer c.setIdle(0)
	src := c.src
	var hdr [2]byte
	in := make([]byte, 0, 512)
	out := make([]byte, 0, 4096)
	for ctx.Err() == nil {
		now := time.Now()
		_ = c.SetReadDeadline(now.Add(idle()))
		c.setIdle(now.UnixNano())
		if _, err := io.ReadFull(c, hdr[:1]); err != nil {
			return
		}
		c.setIdle(0) // a query is arriving: no longer idle
		if _, err := io.ReadFull(c, hdr[1:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if cap(in) < n {
			in = make([]byte, n)
		}
		in = in[:n]
		if _, err := io.ReadFull(c, in); err != nil {
			return
		}
		if isTransfer(in) {
			if !s.transferTCP(ctx, c, in, src) {
				return
			}
			continue
		}
		resp := s.respond(in, out, src, nil, c.transport)
		if resp == nil {
			return
		}
		if cap(resp) > cap(out) {
			out = resp[:0]
		}
		binary.BigEndian.PutUint16(hdr[:], uint16(len(resp)))
		_ = c.SetWriteDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		if err := c.writeMsg(hdr[:], resp); err != nil {
			return
		}
	}
}
