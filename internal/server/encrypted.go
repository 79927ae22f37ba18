package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// DNS over TLS (RFC 7858) and DNS over HTTPS (RFC 8484) listeners. Their
// queries take the path of TCP's: Server.respond with the client's address,
// so the same access lists, limits and caches apply, and no response is
// truncated. Only the transport label of the metrics differs.
//
// DNS over TLS is RFC 7766 framing inside TLS: the TCP listener's accept
// loop and connection handling serve it, with its limits (tcp.*) and idle
// timeout, the TLS handshake counting as idle time. DNS over HTTPS is
// net/http over TLS (HTTP/2, or HTTP/1.1 for a client without it).

// dohMaxStreams bounds the HTTP/2 streams open at once on one DoH
// connection.
const dohMaxStreams = 100

// listenEncrypted binds the DNS over TLS and DNS over HTTPS listeners and
// serves them until ctx ends, under wg. It returns the functions that
// close them: those bound so far when it fails.
func (s *Server) listenEncrypted(ctx context.Context, wg *sync.WaitGroup) ([]func(), error) {
	if len(s.cfg.ListenTLS)+len(s.cfg.ListenHTTPS) == 0 {
		return nil, nil
	}
	if s.cfg.Certificate == nil {
		return nil, errors.New("listen_tls and listen_https need a certificate (tls.cert_file, tls.key_file)")
	}
	var closers []func()
	// No SO_REUSEPORT: one listener per address, and a port held by
	// anything else is an error.
	var lc net.ListenConfig
	for _, ap := range s.cfg.ListenTLS {
		ln, err := lc.Listen(ctx, "tcp", ap.String())
		if err != nil {
			return closers, fmt.Errorf("listen_tls %s: %w", ap, err)
		}
		closers = append(closers, func() { ln.Close() })
		s.noteEncrypted(dot, ln.Addr())
		tln := tls.NewListener(ln, s.cfg.Certificate.tlsConfig("dot"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveTCP(ctx, tln, dot)
		}()
		s.log.Info("listening for DNS over TLS", "addr", ln.Addr().String())
	}
	for _, ap := range s.cfg.ListenHTTPS {
		ln, err := lc.Listen(ctx, "tcp", ap.String())
		if err != nil {
			return closers, fmt.Errorf("listen_https %s: %w", ap, err)
		}
		s.noteEncrypted(doh, ln.Addr())
		hs := s.newDoHServer(ctx)
		closers = append(closers, func() {
			// Requests under way finish (resolutions end with ctx);
			// what is left after a moment is cut.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := hs.Shutdown(sctx); err != nil {
				hs.Close()
			}
			ln.Close() // if Serve never ran
		})
		lim := &limitListener{Listener: ln, s: s, per: map[netip.Addr]int{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.ServeTLS(lim, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) && ctx.Err() == nil {
				s.log.Error("DNS over HTTPS listener failed", "addr", ln.Addr().String(), "err", err)
			}
		}()
		s.log.Info("listening for DNS over HTTPS", "addr", ln.Addr().String(), "path", dohPath)
	}
	return closers, nil
}

// noteEncrypted records a bound DoT or DoH address.
func (s *Server) noteEncrypted(transport int, a net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.encAddrs[transport] = append(s.encAddrs[transport], a)
}

// TLSAddrs returns the DNS over TLS addresses bound, once Run has bound
// them.
func (s *Server) TLSAddrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.encAddrs[dot]...)
}

// HTTPSAddrs returns the DNS over HTTPS addresses bound, once Run has
// bound them.
func (s *Server) HTTPSAddrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.encAddrs[doh]...)
}

// transportOn reports whether the server has listeners of transport; the
// metric series of the DoT and DoH transports exist only if so.
func (s *Server) transportOn(transport int) bool {
	switch transport {
	case dot:
		return len(s.cfg.ListenTLS) > 0
	case doh:
		return len(s.cfg.ListenHTTPS) > 0
	}
	return true
}

// writeMsg writes one length-prefixed message. Over TLS, prefix and
// message go in one record, as RFC 7858 §3.4 asks.
func (c *tcpConn) writeMsg(hdr, msg []byte) error {
	if c.transport == tcp {
		bufs := net.Buffers{hdr, msg}
		_, err := bufs.WriteTo(c)
		return err
	}
	b := make([]byte, 0, len(hdr)+len(msg))
	_, err := c.Write(append(append(b, hdr...), msg...))
	return err
}

// newDoHServer returns the HTTP server of one DoH listener.
func (s *Server) newDoHServer(ctx context.Context) *http.Server {
	idle := s.cfg.TCPIdleTimeout
	h := &dohHandler{s: s, slots: make(chan struct{}, s.cfg.TCPMaxConnections)}
	return &http.Server{
		Handler:   h,
		TLSConfig: s.cfg.Certificate.tlsConfig("h2", "http/1.1"),
		// The TLS handshake and the request's headers must come within
		// the idle timeout, as must a POST's body.
		ReadHeaderTimeout: idle,
		ReadTimeout:       idle,
		IdleTimeout:       idle,
		MaxHeaderBytes:    dohMaxHeaderBytes,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: dohMaxStreams,
			MaxReadFrameSize:     1 << 16,
		},
		// Failed handshakes and broken clients: not the server's errors.
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
}

// limitListener bounds the connections of a DoH listener as serveTCP
// bounds TCP's: tcp.max_connections in all and
// tcp.max_connections_per_client from one address. A connection over
// either limit is closed at once and counted as dropped.
type limitListener struct {
	net.Listener
	s *Server

	mu  sync.Mutex
	n   int
	per map[netip.Addr]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var a netip.Addr
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			a = ta.AddrPort().Addr().Unmap()
		}
		reason := ""
		l.mu.Lock()
		switch {
		case l.n >= l.s.cfg.TCPMaxConnections:
			reason = "tcp_limit"
		case l.per[a] >= l.s.cfg.TCPMaxPerClient:
			reason = "tcp_client_limit"
		default:
			l.n++
			l.per[a]++
		}
		l.mu.Unlock()
		if reason != "" {
			l.s.m.Dropped.WithLabelValues(reason).Inc()
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, release: sync.OnceFunc(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.n--
			release(l.per, a)
		})}, nil
	}
}

// limitedConn gives its slot back when closed.
type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
