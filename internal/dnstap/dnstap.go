// Package dnstap logs DNS messages in the dnstap format (dnstap.info) to a
// Frame Streams unix socket (a dnstap collector such as `dnstap -u` or
// fstrm_capture) or to a file that `dnstap-read` reads: the queries and
// responses of clients, and the resolver's queries and responses upstream,
// each kind switched on or off.
//
// Logging never holds up the code that logs: a message is copied into a
// bounded queue with a send that does not wait, and encoded and written
// by a goroutine of its own; what does not fit is dropped and counted.
package dnstap

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	dt "github.com/dnstap/golang-dnstap"
	"google.golang.org/protobuf/proto"
)

// Config configures a Sink.
type Config struct {
	// Socket is the path of a unix socket a collector listens on; File a
	// file written from its start. Exactly one is set.
	Socket string
	File   string
	// Identity and Version are sent with every message (the server's name
	// and software version); empty: not sent.
	Identity, Version string
	// What is logged.
	ClientQueries, ClientResponses     bool
	ResolverQueries, ResolverResponses bool
	// QueueSize bounds the messages waiting to be written (0: 8192).
	QueueSize int
}

// Transport is how a message travelled.
type Transport uint8

// The transports.
const (
	UDP Transport = iota
	TCP
	DoT
	DoH
)

var protocols = [...]dt.SocketProtocol{UDP: dt.SocketProtocol_UDP, TCP: dt.SocketProtocol_TCP, DoT: dt.SocketProtocol_DOT, DoH: dt.SocketProtocol_DOH}

// Sink queues messages and writes them out. Its methods may be called
// from any goroutine; a nil *Sink logs nothing.
type Sink struct {
	cfg   Config
	out   dt.Output
	queue chan event
	log   *slog.Logger

	sent, dropped atomic.Uint64
	done          chan struct{}
	closeOnce     sync.Once
}

type event struct {
	typ        dt.Message_Type
	transport  Transport
	peer       netip.AddrPort // the client, or the upstream server
	query      []byte
	resp       []byte
	qt, rt     time.Time
	isResponse bool
}

// New opens the output and starts the writer. Close stops it.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var out dt.Output
	switch {
	case cfg.Socket != "" && cfg.File != "":
		return nil, errors.New("dnstap: a socket and a file: choose one")
	case cfg.Socket != "":
		o, err := dt.NewFrameStreamSockOutput(&net.UnixAddr{Name: cfg.Socket, Net: "unix"})
		if err != nil {
			return nil, fmt.Errorf("dnstap socket %s: %w", cfg.Socket, err)
		}
		o.SetTimeout(2 * time.Second)
		o.SetFlushTimeout(time.Second)
		o.SetRetryInterval(5 * time.Second)
		o.SetLogger(logger{log})
		out = o
	case cfg.File != "":
		o, err := dt.NewFrameStreamOutputFromFilename(cfg.File)
		if err != nil {
			return nil, fmt.Errorf("dnstap file %s: %w", cfg.File, err)
		}
		o.SetLogger(logger{log})
		out = o
	default:
		return nil, errors.New("dnstap: neither a socket nor a file")
	}
	return newSink(cfg, out, log), nil
}

func newSink(cfg Config, out dt.Output, log *slog.Logger) *Sink {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 8192
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{cfg: cfg, out: out, queue: make(chan event, cfg.QueueSize), log: log, done: make(chan struct{})}
	go out.RunOutputLoop()
	go s.run()
	return s
}

// logger adapts slog to the library's Printf logger.
type logger struct{ l *slog.Logger }

func (l logger) Printf(format string, v ...any) { l.l.Warn("dnstap: " + fmt.Sprintf(format, v...)) }

// Sent and Dropped count the messages handed to the output and those
// dropped because the queue was full.
func (s *Sink) Sent() uint64    { return s.sent.Load() }
func (s *Sink) Dropped() uint64 { return s.dropped.Load() }

// Close writes out what is queued and closes the output.
func (s *Sink) Close() {
	if s == nil {
		return
	}
	s.closeOnce.Do(func() {
		close(s.queue)
		<-s.done
		s.out.Close()
	})
}

func (s *Sink) enqueue(e event) {
	select {
	case s.queue <- e:
	default:
		s.dropped.Add(1)
	}
}

// ClientQuery logs a query from client, received at.
func (s *Sink) ClientQuery(wire []byte, client netip.AddrPort, tr Transport, at time.Time) {
	if s == nil || !s.cfg.ClientQueries {
		return
	}
	s.enqueue(event{typ: dt.Message_CLIENT_QUERY, transport: tr, peer: client, query: clone(wire), qt: at})
}

// ClientResponse logs the response sent to client at, to a query received
// at queried.
func (s *Sink) ClientResponse(wire []byte, client netip.AddrPort, tr Transport, queried, at time.Time) {
	if s == nil || !s.cfg.ClientResponses {
		return
	}
	s.enqueue(event{typ: dt.Message_CLIENT_RESPONSE, transport: tr, peer: client, resp: clone(wire), qt: queried, rt: at, isResponse: true})
}

// UpstreamQuery logs a query the resolver sent to server at.
func (s *Sink) UpstreamQuery(wire []byte, server netip.AddrPort, tcp bool, at time.Time) {
	if s == nil || !s.cfg.ResolverQueries {
		return
	}
	s.enqueue(event{typ: dt.Message_RESOLVER_QUERY, transport: transportOf(tcp), peer: server, query: clone(wire), qt: at})
}

// UpstreamResponse logs a response the resolver got from server at, to a
// query sent at queried.
func (s *Sink) UpstreamResponse(wire []byte, server netip.AddrPort, tcp bool, queried, at time.Time) {
	if s == nil || !s.cfg.ResolverResponses {
		return
	}
	s.enqueue(event{typ: dt.Message_RESOLVER_RESPONSE, transport: transportOf(tcp), peer: server, resp: clone(wire), qt: queried, rt: at, isResponse: true})
}

func transportOf(tcp bool) Transport {
	if tcp {
		return TCP
	}
	return UDP
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// run encodes queued messages and hands them to the output, until Close.
func (s *Sink) run() {
	defer close(s.done)
	ch := s.out.GetOutputChannel()
	for e := range s.queue {
		b, err := proto.Marshal(s.message(e))
		if err != nil {
			s.dropped.Add(1)
			continue
		}
		ch <- b
		s.sent.Add(1)
	}
}

func (s *Sink) message(e event) *dt.Dnstap {
	typ := dt.Dnstap_MESSAGE
	fam := dt.SocketFamily_INET
	addr := e.peer.Addr().Unmap()
	if addr.Is6() {
		fam = dt.SocketFamily_INET6
	}
	proto := protocols[e.transport]
	m := &dt.Message{Type: &e.typ, SocketFamily: &fam, SocketProtocol: &proto}
	ip, port := addr.AsSlice(), uint32(e.peer.Port())
	switch e.typ {
	case dt.Message_CLIENT_QUERY, dt.Message_CLIENT_RESPONSE:
		m.QueryAddress, m.QueryPort = ip, &port
	default: // the upstream server answers
		m.ResponseAddress, m.ResponsePort = ip, &port
	}
	if !e.qt.IsZero() {
		sec, nsec := uint64(e.qt.Unix()), uint32(e.qt.Nanosecond())
		m.QueryTimeSec, m.QueryTimeNsec = &sec, &nsec
	}
	if e.isResponse {
		sec, nsec := uint64(e.rt.Unix()), uint32(e.rt.Nanosecond())
		m.ResponseTimeSec, m.ResponseTimeNsec = &sec, &nsec
		m.ResponseMessage = e.resp
	} else {
		m.QueryMessage = e.query
	}
	d := &dt.Dnstap{Type: &typ, Message: m}
	if s.cfg.Identity != "" {
		d.Identity = []byte(s.cfg.Identity)
	}
	if s.cfg.Version != "" {
		d.Version = []byte(s.cfg.Version)
	}
	return d
}
