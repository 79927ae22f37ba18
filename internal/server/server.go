// Package server is sovdns's front door: the UDP and TCP listeners, the
// checks every query passes (header, EDNS, opcode, class), the response
// cache, truncation, and the query metrics. It routes questions to the
// authoritative answerer; the resolver joins here later.
package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/internal/dnstap"
	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/internal/ratelimit"
	"github.com/sovdns/sovdns/internal/wire"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
)

// Config is the listener configuration.
type Config struct {
	Listen            []netip.AddrPort
	UDPSockets        int           // sockets per UDP address (SO_REUSEPORT); 0 means one per CPU
	UDPUnbatched      bool          // read and write one datagram per system call
	EDNSSize          uint16        // our UDP payload size; 0 means 1232
	TCPIdleTimeout    time.Duration // 0 means 10s
	TCPMaxConnections int           // 0 means 1024
	TCPMaxPerClient   int           // connections from one address; 0 means 64
	ResponseCache     int64         // bytes of encoded responses kept; 0 disables
	NSID              string        // RFC 5001 identifier; empty: not sent
	Version           string        // CH TXT version.bind; empty: refused
	Identity          string        // CH TXT id.server; empty: refused
	CookieSecret      []byte        // RFC 7873 server secret; empty: random per start

	// Recursion: questions for names outside the zones held, with RD set,
	// from clients in RecursionAllow, go to Resolver. Nil: none.
	Resolver       Recursor
	RecursionAllow []netip.Prefix
	// MaxInFlight bounds the resolutions under way at once, over every
	// transport (0 means 1000). A question beyond it is answered stale
	// when the resolver can, else dropped (UDP) or answered SERVFAIL at
	// once (TCP, TLS, HTTPS).
	MaxInFlight int
	// ClientRateLimit bounds the recursive questions taken from one client
	// address per second (as Unbound's ip-ratelimit); more are dropped and
	// counted. 0: no limit.
	ClientRateLimit int
	// Clock, if set, is the server's clock (tests move it); else time.Now.
	Clock func() time.Time

	// Ops handles zone transfers, NOTIFY and UPDATE; nil refuses them.
	Ops ZoneOps

	// RRL limits the rate of identical responses over UDP; the zero value
	// leaves it off.
	RRL RRLConfig

	// Tap, when set, logs client queries and responses (dnstap).
	Tap *dnstap.Sink

	// Started, when set, is called once Run has bound every listener (as
	// miekg/dns's NotifyStartedFunc).
	Started func()

	// DNS over TLS (RFC 7858) and DNS over HTTPS (RFC 8484) listeners,
	// presenting Certificate (see encrypted.go).
	ListenTLS   []netip.AddrPort
	ListenHTTPS []netip.AddrPort
	Certificate *Certificate
}

// Recursor resolves questions for clients; resolver.Resolver is one.
type Recursor interface {
	// Lookup answers from the cache alone, without waiting; when it
	// cannot, it says what it saw, for ResolveMiss.
	Lookup(name string, qtype uint16) (resolver.Result, resolver.Miss, bool)
	// ResolveMiss resolves a question whose Lookup returned miss.
	ResolveMiss(ctx context.Context, name string, qtype uint16, miss resolver.Miss) resolver.Result
}

// state is one generation of served data. A generation that only
// replaces zones by newer versions of themselves keeps the response cache
// and the wire templates: their entries know the zone versions they came
// from (see cacheEntry.stale).
type state struct {
	zones *zone.Set
	cache *respCache
	wires *wires // negative answers in wire form, by zone
	// gen counts the zones added and removed since cache was made: the
	// answers cached from this state carry it (see respCache.changed).
	gen uint64
}

// Server answers DNS queries over UDP and TCP.
type Server struct {
	cfg          Config
	log          *slog.Logger
	m            *metrics.Metrics
	now          func() time.Time
	cookieSecret [32]byte

	st   atomic.Pointer[state]
	keys atomic.Pointer[map[string]Key] // TSIG keys by canonical name

	// pre-resolved collectors for the hot path
	duration  [numTransports]prometheus.Observer
	truncated [numTransports]prometheus.Counter
	busyCount [numTransports]prometheus.Counter // recursive questions that found no resolution slot

	rrl *rrl // nil: no rate limiting

	tcpIdle atomic.Int64 // TCP connections waiting for a query

	counters       sync.Map // countKey -> prometheus.Counter
	cachedCounters sync.Map // countKey without transport -> *entryCounters

	ops *opsQueue // UPDATE, NOTIFY and transfers that came over UDP

	inFlight  chan struct{}                    // a slot per resolution under way, over any transport
	clients   *ratelimit.PerSecond[netip.Addr] // recursive questions per client (ClientRateLimit)
	resolving sync.WaitGroup                   // the UDP questions being answered by resolution
	workers   *workers                         // the goroutines that answer them
	replyBufs sync.Pool                        // *[]byte of replyBufSize: the replies those goroutines pack
	// answerBatches and answersBatched count the sendmmsg batches of
	// resolved answers (udpAnswers) and the answers they held.
	answerBatches, answersBatched atomic.Uint64
	udpJobs                       sync.Pool    // *udpResolution
	epocher                       cacheEpocher // the Resolver, if it keeps resolved answers apart (rescache.go); else nil
	ctx                           atomic.Pointer[context.Context]

	mu       sync.Mutex
	addrs    []net.Addr
	encAddrs [numTransports][]net.Addr // DoT and DoH listeners
}

// baseCtx is the context of Run, which ends resolutions at shutdown.
func (s *Server) baseCtx() context.Context {
	if c := s.ctx.Load(); c != nil {
		return *c
	}
	return context.TODO() // handling outside Run: tests and fuzzing
}

const (
	udp = 0
	tcp = 1
	dot = 2 // DNS over TLS
	doh = 3 // DNS over HTTPS

	numTransports = 4
)

var transportNames = [numTransports]string{"udp", "tcp", "tls", "https"}

// New returns a server serving no zones yet.
func New(cfg Config, log *slog.Logger, m *metrics.Metrics) *Server {
	if cfg.EDNSSize == 0 {
		cfg.EDNSSize = 1232
	}
	cfg.EDNSSize = max(cfg.EDNSSize, 512)
	if cfg.TCPIdleTimeout == 0 {
		cfg.TCPIdleTimeout = 10 * time.Second
	}
	if cfg.TCPMaxConnections == 0 {
		cfg.TCPMaxConnections = 1024
	}
	if cfg.TCPMaxPerClient == 0 {
		cfg.TCPMaxPerClient = 64
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 1000
	}
	if cfg.UDPSockets == 0 {
		cfg.UDPSockets = runtime.GOMAXPROCS(0)
	}
	now := time.Now
	if cfg.Clock != nil {
		now = cfg.Clock
	}
	s := &Server{cfg: cfg, log: log, m: m, now: now, inFlight: make(chan struct{}, cfg.MaxInFlight), ops: newOpsQueue(),
		clients: &ratelimit.PerSecond[netip.Addr]{Rate: cfg.ClientRateLimit}}
	s.replyBufs.New = func() any { b := make([]byte, 0, replyBufSize); return &b }
	s.udpJobs.New = func() any { return newUDPResolution(s) }
	s.epocher, _ = cfg.Resolver.(cacheEpocher)
	if len(cfg.CookieSecret) > 0 {
		s.cookieSecret = sha256.Sum256(cfg.CookieSecret) // every byte counts
	} else {
		rand.Read(s.cookieSecret[:])
	}
	for i, t := range transportNames {
		if !s.transportOn(i) {
			continue // no series for a transport not served
		}
		s.duration[i] = m.Duration.WithLabelValues(t)
		s.truncated[i] = m.Truncated.WithLabelValues(t)
		s.busyCount[i] = m.RecursionBusy.WithLabelValues(t)
	}
	s.rrl = newRRL(cfg.RRL, func() time.Time { return s.now() }, m.RateLimited)
	s.SetZones(zone.NewSet())
	return s
}

// SetZones publishes a new set of zones; queries already running finish
// with the old one. The response cache starts empty with the new set.
func (s *Server) SetZones(zs *zone.Set) {
	old := s.st.Swap(&state{zones: zs, cache: newRespCache(s.cfg.ResponseCache, func() time.Time { return s.now() }, s.cacheEpoch), wires: &wires{}})
	if old != nil {
		s.m.CacheEntries.Sub(float64(old.cache.entries.Load()))
	}
}

// ResponseCacheBytes returns the size of the entries the response cache
// holds (as it counts them against ResponseCache).
func (s *Server) ResponseCacheBytes() int64 {
	if st := s.st.Load(); st != nil {
		return st.cache.bytes.Load()
	}
	return 0
}

// ResetCounters forgets the query counters resolved so far, and the
// response cache with them, after the metrics' zone labels changed
// (metrics.Metrics.SetPerZone).
func (s *Server) ResetCounters() {
	s.counters.Clear()
	s.cachedCounters.Clear()
	if st := s.st.Load(); st != nil {
		s.SetZones(st.zones)
	}
}

// UpdateZones publishes zs, which holds the same zones as the set being
// served, some of them in newer versions. The response cache is kept: the
// caller marks each version replaced as superseded (zone.Supersede) once
// zs is published, which retires the entries answered from it and no
// other. The cost does not depend on the number of zones.
func (s *Server) UpdateZones(zs *zone.Set) {
	old := s.st.Load()
	s.st.Store(&state{zones: zs, cache: old.cache, wires: old.wires, gen: old.gen})
}

// ChangeZones publishes zs, which holds the zones being served less or
// more the zones whose origins (wire keys) are given. The response cache
// is kept: what is retired are the answers of the zones above each origin
// (whose closest zone changes below them), those of a zone removed (the
// caller marks its version superseded), and those that drew on a name no
// zone held. The cost does not depend on the number of zones.
func (s *Server) ChangeZones(zs *zone.Set, origins ...string) {
	old := s.st.Load()
	if old == nil {
		s.SetZones(zs)
		return
	}
	gen := old.cache.changed(old.gen, origins)
	s.st.Store(&state{zones: zs, cache: old.cache, wires: old.wires, gen: gen})
}

// Zones returns the set being served.
func (s *Server) Zones() *zone.Set { return s.st.Load().zones }

// Addrs returns the addresses bound, once Run has bound them.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.addrs...)
}

// respond turns one query into the bytes of its response, written into out's
// storage; nil means drop the packet.
// conn is the UDP socket the query came in on, for an answer that is sent
// later (recursion); nil for TCP, whose answers are always returned.
func (s *Server) respond(in, out []byte, src netip.AddrPort, conn *udpSocket, transport int) (resp []byte) {
	start := s.now()
	// A link-local client's address has a zone (its interface): the
	// answer goes to it there, while every rule about clients (recursion,
	// rate limits, ACLs) matches the address alone, as netip.Prefix
	// matches no address that has a zone.
	dst := src
	if src.Addr().Zone() != "" {
		src = netip.AddrPortFrom(src.Addr().WithZone(""), src.Port())
	}
	if s.cfg.Tap != nil {
		s.cfg.Tap.ClientQuery(in, src, tapTransport(transport), start)
		defer func() {
			if resp != nil {
				s.cfg.Tap.ClientResponse(resp, src, tapTransport(transport), start, s.now())
			}
		}()
	}
	if len(in) < 12 {
		s.m.Dropped.WithLabelValues("short").Inc()
		return nil
	}
	if in[2]&bitQR != 0 {
		s.m.Dropped.WithLabelValues("response").Inc()
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			s.m.Panics.Inc()
			s.log.Error("query handling panicked", "panic", r, "client", src.Addr())
			resp = servFail(in, out)
		}
	}()
	st := s.st.Load()
	maxSize := 65535
	var fq fastQuery
	fast := parseFast(in, &fq)
	if transport == udp {
		maxSize = 512
		if fq.udpSize != 0 {
			maxSize = int(min(fq.udpSize, s.cfg.EDNSSize))
		}
	}
	if fast {
		fq.setClient(s.recursionAllowed(src.Addr()), in[2]&bitRD != 0)
		if e := st.cache.get(fq.key(), start.UnixNano()); e != nil && len(e.wire) <= maxSize && e.queries[transport] != nil {
			if e.resolved != nil && !s.clients.Allow(src.Addr(), start) {
				s.m.Dropped.WithLabelValues("client_ratelimit").Inc()
				return nil
			}
			if transport == udp && s.rrl != nil {
				switch s.rrl.check(e.rrl, src.Addr()) {
				case rrlDrop:
					return nil
				case rrlSlip:
					return slipped(out, in, fq.nameLen, fq.udpSize != 0, s.cfg.EDNSSize)
				}
			}
			resp = patch(out, e.wire, in, fq.nameLen)
			if e.resolved != nil {
				lowerTTLs(resp, e.ttls(), e.resolved.stored, start)
				s.cacheHit()
			}
			e.queries[transport].Inc()
			s.duration[transport].Observe(s.now().Sub(start).Seconds())
			return resp
		}
		if resp, ok := s.negativeWire(st, in, out, src, transport, &fq, maxSize); ok {
			s.duration[transport].Observe(s.now().Sub(start).Seconds())
			return resp
		}
	}
	resp = s.respondSlow(st, in, out, src, dst, conn, transport, fast, &fq, start)
	s.duration[transport].Observe(s.now().Sub(start).Seconds())
	return resp
}

// respondSlow is respond's way for what its fast paths do not answer; now
// is when the query came.
func (s *Server) respondSlow(st *state, in, out []byte, src, dst netip.AddrPort, conn *udpSocket, transport int, fast bool, fq *fastQuery, now time.Time) []byte {
	if conn != nil {
		if zone, ok := opsZone(in); ok {
			return s.queueOps(zone, in, out, src, dst, conn, fq)
		}
	}
	req := new(dns.Msg)
	if err := req.Unpack(in); err != nil || !countsMatch(in, req) || wireLen(in) != len(in) {
		s.count(transport, metrics.ZoneNone, 0, dns.RcodeFormatError)
		return formErr(in, out)
	}
	if fast {
		// A response that may be cached is built for the lower-cased name,
		// so no client's spelling is kept in it; the question's bytes are
		// put back below, and names compressed against it follow them.
		req.Question[0].Name = strings.ToLower(req.Question[0].Name)
	}
	r := s.handle(st, req, in, src, transport == tcp)
	if r.recurse {
		if !s.clients.Allow(src.Addr(), now) {
			s.m.Dropped.WithLabelValues("client_ratelimit").Inc()
			return nil
		}
		q := req.Question[0]
		res, miss, ok := s.cfg.Resolver.Lookup(q.Name, q.Qtype)
		if ok {
			return s.finish(st, src.Addr(), s.recursiveReply(req, r, res), req, in, out, transport, fast, fq)
		}
		select {
		case s.inFlight <- struct{}{}:
		default:
			busy, ok := s.busy(req, r, transport)
			if !ok {
				s.m.Dropped.WithLabelValues("recursion_busy").Inc()
				return nil
			}
			return s.finish(st, src.Addr(), busy, req, in, out, transport, fast, fq)
		}
		if conn == nil {
			// TCP, TLS, HTTPS: this connection's goroutine waits for the
			// resolution, holding the slot.
			defer func() { <-s.inFlight }()
			return s.finish(st, src.Addr(), s.recursive(req, r, miss), req, in, out, transport, fast, fq)
		}
		// UDP: the socket's loop goes on; the answer is sent when ready.
		j := s.udpJobs.Get().(*udpResolution)
		j.st, j.req, j.r, j.src, j.dst, j.conn, j.transport, j.fast, j.miss = st, req, r, src, dst, conn, transport, fast, miss
		j.in = append(j.in[:0], in...)
		j.fq = *fq
		j.queried = now
		s.resolving.Add(1)
		s.workers.run(j.run)
		return nil
	}
	return s.finish(st, src.Addr(), r, req, in, out, transport, fast, fq)
}

// udpResolution is a UDP question that needs resolving, handed to a
// worker with what answering it takes. Pooled: one per question would be
// three allocations (the query's copy, its key, the closure).
type udpResolution struct {
	s         *Server
	run       func() // j.resolve, bound once
	st        *state
	req       *dns.Msg
	r         reply
	in        []byte // a copy of the query
	fq        fastQuery
	src       netip.AddrPort // the client, without a zone
	dst       netip.AddrPort // where the answer goes: src, with its zone if any
	conn      *udpSocket
	out       udpOut // sendTo's state
	transport int
	fast      bool
	miss      resolver.Miss // what the cache lookup on the socket's goroutine saw
	queried   time.Time
}

func newUDPResolution(s *Server) *udpResolution {
	j := &udpResolution{s: s}
	j.run = j.resolve
	return j
}

// resolve resolves the question, sends the answer and goes back to the
// pool: nothing keeps the query, the reply or the key (the response cache
// and dnstap copy what they keep).
func (j *udpResolution) resolve() {
	s := j.s
	bp := s.replyBufs.Get().(*[]byte)
	wire := s.finish(j.st, j.src.Addr(), s.recursive(j.req, j.r, j.miss), j.req, j.in, (*bp)[:0], j.transport, j.fast, &j.fq)
	s.tapAsync(wire, j.src, j.transport, j.queried)
	<-s.inFlight
	if !j.queueAnswer(wire, bp) {
		if err := j.sendTo(wire); err != nil {
			s.m.Dropped.WithLabelValues("write_error").Inc()
		}
		s.replyBufs.Put(bp)
		s.resolving.Done()
	}
	j.st, j.req, j.r, j.conn = nil, nil, reply{}, nil
	if cap(j.in) > maxKeptQuery {
		j.in = nil
	}
	s.udpJobs.Put(j)
}

// maxKeptQuery bounds the room for a query a pooled udpResolution keeps.
const maxKeptQuery = 512

// replyBufSize is the room of a buffer a resolved UDP reply is packed
// in: the largest EDNS buffer size served, 4096 (a larger reply grows it).
const replyBufSize = 4096

// errBusy is why a recursive question was answered SERVFAIL without
// being resolved.
var errBusy = errors.New("resolver busy: the bound on resolutions under way (resolver.max_in_flight) is reached")

// staleRecursor is a Recursor that can answer from expired cache entries
// at once (resolver.Resolver.Stale).
type staleRecursor interface {
	Stale(name string, qtype uint16) (resolver.Result, bool)
}

// busy answers req, a recursive question that found every resolution slot
// taken, without resolving it: a stale answer when the resolver has one,
// else SERVFAIL. ok is false for a UDP question without a stale answer,
// which is dropped (the client asks again).
func (s *Server) busy(req *dns.Msg, r reply, transport int) (_ reply, ok bool) {
	if c := s.busyCount[transport]; c != nil {
		c.Inc()
	}
	if sr, ok := s.cfg.Resolver.(staleRecursor); ok {
		q := req.Question[0]
		if res, ok := sr.Stale(q.Name, q.Qtype); ok {
			return s.recursiveReply(req, r, res), true
		}
	}
	if transport == udp {
		return r, false
	}
	return s.recursiveReply(req, r, resolver.Result{Rcode: dns.RcodeServerFailure, Err: errBusy}), true
}

// queueOps hands a message that reads or writes the zone store, which came
// in on the UDP socket conn, to the zone's queue (see opsQueue); its answer
// is sent from there. It returns SERVFAIL at once if the queue is full.
func (s *Server) queueOps(zone string, in, out []byte, src, dst netip.AddrPort, conn *udpSocket, fq *fastQuery) []byte {
	in = append([]byte(nil), in...)
	fqc := *fq
	queried := s.now()
	ok := s.ops.submit(zone, func() {
		wire := s.respondSlow(s.st.Load(), in, make([]byte, 0, 4096), src, src, nil, udp, false, &fqc, s.now())
		if wire == nil {
			return
		}
		s.tapAsync(wire, src, udp, queried)
		if _, err := conn.c.WriteToUDPAddrPort(wire, dst); err != nil {
			s.m.Dropped.WithLabelValues("write_error").Inc()
		}
	})
	if !ok {
		s.m.Dropped.WithLabelValues("ops_queue_full").Inc()
		return servFail(in, out)
	}
	return nil
}

// finish packs a reply for the client: truncated to its buffer, the
// question's spelling restored, cached when it may be, counted.
func (s *Server) finish(st *state, src netip.Addr, r reply, req *dns.Msg, in, out []byte, transport int, fast bool, fq *fastQuery) []byte {
	maxSize := 65535
	if transport == udp {
		maxSize = 512
		if opt := req.IsEdns0(); opt != nil {
			maxSize = int(min(max(opt.UDPSize(), 512), s.cfg.EDNSSize))
		}
	}
	qtype := qtypeOf(req)
	if r.tsig != nil {
		return s.finishSigned(r, req, in, out, transport, maxSize)
	}
	if transport == udp && s.rrl != nil {
		switch s.rrl.check(r.rrl, src) {
		case rrlDrop:
			return nil
		case rrlSlip:
			return s.slip(r.msg, in, out)
		}
	}
	wire, err := pack(r.msg, out)
	if err != nil {
		s.log.Error("packing a response failed", "err", err, "qname", questionName(req))
		s.count(transport, r.zoneLabel, qtypeOf(req), dns.RcodeServerFailure)
		return servFail(in, out)
	}
	fits := len(wire) <= maxSize
	if !fits {
		if wire, err = truncate(r.msg, maxSize, out); err != nil {
			return servFail(in, out)
		}
		if r.msg.Truncated {
			s.truncated[transport].Inc()
		}
	}
	if fast && len(r.msg.Question) == 1 && len(wire) >= 12+fq.nameLen {
		copy(wire[12:12+fq.nameLen], in[12:12+fq.nameLen])
	}
	if fits && fast && (r.cacheable || r.resolved && !r.msg.Truncated) {
		var e *cacheEntry
		var ttls []byte
		if r.resolved {
			var room [64]byte // the TTL offsets of 32 records
			var ok bool
			if e, ttls, ok = s.resolvedEntry(wire, room[:0], s.now()); !ok {
				s.count(transport, r.zoneLabel, qtype, r.msg.Rcode)
				return wire
			}
		} else {
			e = new(cacheEntry)
		}
		e.zone, e.rrl, e.gen, e.open = r.zone, r.rrl, st.gen, e.open || r.open
		if r.zone != nil && len(r.chained) > 0 {
			chained := slices.Clone(r.chained)
			e.chained = &chained
		}
		e.queries = s.entryCounters(r.zoneLabel, qtype, r.msg.Rcode)
		st.cache.put(fq.key(), wire, ttls, e)
		s.m.CacheEntries.Set(float64(st.cache.entries.Load()))
	}
	s.count(transport, r.zoneLabel, qtype, r.msg.Rcode)
	return wire
}

// slip packs m as a rate-limited response that slips through: TC set, the
// question and the OPT record kept, nothing else.
func (s *Server) slip(m *dns.Msg, in, out []byte) []byte {
	m.Truncated = true
	m.Authoritative = false
	m.Rcode = dns.RcodeSuccess
	m.Answer, m.Ns = nil, nil
	var keep []dns.RR
	if opt := m.IsEdns0(); opt != nil {
		keep = append(keep, &dns.OPT{Hdr: opt.Hdr})
	}
	m.Extra = keep
	wire, err := pack(m, out)
	if err != nil {
		return servFail(in, out)
	}
	return wire
}

// finishSigned packs a reply to a TSIG-signed request with its TSIG. One
// that does not fit the client's buffer goes with TC and no records.
func (s *Server) finishSigned(r reply, req *dns.Msg, in, out []byte, transport, maxSize int) []byte {
	m := r.msg
	m.Compress = true
	// A TSIG record takes the key name, the algorithm and a MAC: under 200 bytes.
	const tsigRoom = 200
	if transport == udp && m.Len()+tsigRoom > maxSize {
		m.Truncated = true
		m.Answer, m.Ns = nil, nil
		var keep []dns.RR
		for _, rr := range m.Extra {
			if rr.Header().Rrtype == dns.TypeOPT {
				keep = append(keep, rr)
			}
		}
		m.Extra = keep
		s.truncated[transport].Inc()
	}
	wire, err := r.tsig.pack(m)
	if err != nil {
		s.log.Error("signing a response failed", "err", err, "qname", questionName(req))
		s.count(transport, r.zoneLabel, qtypeOf(req), dns.RcodeServerFailure)
		return servFail(in, out)
	}
	s.count(transport, r.zoneLabel, qtypeOf(req), m.Rcode)
	return append(out[:0], wire...)
}

// truncate fits m into size bytes. Whole additional RRsets are dropped
// first, from the end, without TC (RFC 2181 §9), except that a referral
// which loses the glue of a name server inside the delegated zone sets TC
// (RFC 9471). If the answer and authority sections do not fit even alone,
// TC is set and both are emptied, as NSD does: a partial RRset is of no
// use to the client, which retries over TCP. The OPT record always stays.
func truncate(m *dns.Msg, size int, out []byte) ([]byte, error) {
	var opt []dns.RR
	extra := make([]dns.RR, 0, len(m.Extra))
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			opt = append(opt, rr)
		} else {
			extra = append(extra, rr)
		}
	}
	var dropped []dns.RR
	for {
		m.Extra = append(extra, opt...)
		if m.Len() <= size {
			break
		}
		if len(extra) == 0 {
			m.Truncated = true
			m.Answer, m.Ns, m.Extra = nil, nil, opt
			break
		}
		// Drop the last RRset: the trailing records of one owner and type.
		last := extra[len(extra)-1].Header()
		k := len(extra) - 1
		for k > 0 {
			h := extra[k-1].Header()
			if h.Rrtype != last.Rrtype || !strings.EqualFold(h.Name, last.Name) {
				break
			}
			k--
		}
		dropped = append(dropped, extra[k:]...)
		extra = extra[:k]
	}
	if !m.Truncated && referralLostInDomainGlue(m, dropped) {
		m.Truncated = true
	}
	return pack(m, out)
}

// pack packs m into out's array (another if it does not fit): by
// wire.AppendMsg, which makes no compression map, or by PackBuffer for
// what that declines.
func pack(m *dns.Msg, out []byte) ([]byte, error) {
	if b, ok := wire.AppendMsg(out[:0], m); ok {
		return b, nil
	}
	return m.PackBuffer(out[:cap(out)])
}

// referralLostInDomainGlue reports whether m is a referral and dropped
// holds an address of a name server at or below the delegation point.
func referralLostInDomainGlue(m *dns.Msg, dropped []dns.RR) bool {
	if m.Authoritative || len(m.Answer) != 0 || len(dropped) == 0 {
		return false
	}
	for _, rr := range m.Ns {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		for _, d := range dropped {
			if strings.EqualFold(d.Header().Name, ns.Ns) && dns.IsSubDomain(ns.Hdr.Name, ns.Ns) {
				return true
			}
		}
	}
	return false
}

// countsMatch reports whether the header's section counts describe the
// records that were read: the parser tolerates counts larger than the
// message, which a query must not have.
func countsMatch(in []byte, m *dns.Msg) bool {
	return binary.BigEndian.Uint16(in[4:]) == uint16(len(m.Question)) &&
		binary.BigEndian.Uint16(in[6:]) == uint16(len(m.Answer)) &&
		binary.BigEndian.Uint16(in[8:]) == uint16(len(m.Ns)) &&
		binary.BigEndian.Uint16(in[10:]) == uint16(len(m.Extra))
}

func (s *Server) count(transport int, zoneLabel string, qtype uint16, rcode int) {
	k := countKey{zone: zoneLabel, qtype: qtype, rcode: uint16(rcode), transport: uint8(transport)}
	if c, ok := s.counters.Load(k); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := s.m.Queries.WithLabelValues(transportNames[transport], zoneLabel, metrics.QtypeLabel(qtype), metrics.RcodeLabel(rcode))
	s.counters.Store(k, c)
	c.Inc()
}

// entryCounters returns the query counters by transport of cached answers
// of the zone label, type and rcode, which the cached answers share.
func (s *Server) entryCounters(zoneLabel string, qtype uint16, rcode int) *entryCounters {
	k := countKey{zone: zoneLabel, qtype: qtype, rcode: uint16(rcode)}
	if c, ok := s.cachedCounters.Load(k); ok {
		return c.(*entryCounters)
	}
	c := new(entryCounters)
	for t, name := range transportNames {
		if s.transportOn(t) {
			c[t] = s.m.Queries.WithLabelValues(name, zoneLabel, metrics.QtypeLabel(qtype), metrics.RcodeLabel(rcode))
		}
	}
	got, _ := s.cachedCounters.LoadOrStore(k, c)
	return got.(*entryCounters)
}

// countKey names one query counter; Server.counters keeps them resolved, so
// counting a query hashes one small key rather than four label values.
type countKey struct {
	zone      string
	qtype     uint16
	rcode     uint16
	transport uint8
}

func qtypeOf(m *dns.Msg) uint16 {
	if len(m.Question) == 0 {
		return 0
	}
	return m.Question[0].Qtype
}

func questionName(m *dns.Msg) string {
	if len(m.Question) == 0 {
		return ""
	}
	return m.Question[0].Name
}

// Run binds every listener and serves until ctx ends. It returns an error
// at once if a listener cannot be bound.
func (s *Server) Run(ctx context.Context) error {
	if len(s.cfg.Listen) == 0 {
		return errors.New("no listen addresses configured")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx.Store(&ctx)
	s.workers = newWorkers() // before the listeners that use them
	var closers []func()
	var wg sync.WaitGroup
	fail := func(err error) error {
		cancel()
		for _, c := range closers {
			c()
		}
		wg.Wait()
		return err
	}
	enc, err := s.listenEncrypted(ctx, &wg)
	closers = append(closers, enc...)
	if err != nil {
		return fail(err)
	}
	for _, ap := range s.cfg.Listen {
		conns, ln, err := listenPair(ctx, ap, s.cfg.UDPSockets)
		if err != nil {
			return fail(err)
		}
		tap := netip.AddrPortFrom(ap.Addr(), uint16(conns[0].LocalAddr().(*net.UDPAddr).Port))
		s.mu.Lock()
		s.addrs = append(s.addrs, conns[0].LocalAddr(), ln.Addr())
		s.mu.Unlock()
		for _, c := range conns {
			closers = append(closers, func() { c.Close() })
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serveUDP(ctx, c)
			}()
		}
		closers = append(closers, func() { ln.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveTCP(ctx, ln, tcp)
		}()
		s.log.Info("listening", "addr", tap.String(), "udp_sockets", len(conns))
	}
	if s.cfg.Started != nil {
		s.cfg.Started()
	}
	<-ctx.Done()
	for _, c := range closers {
		c()
	}
	wg.Wait()
	s.resolving.Wait() // their context has ended: they finish at once
	s.workers.stop()
	s.ops.wait()
	return nil
}

// tapAsync logs a response sent after respond returned (a resolution, a
// queued zone operation) to a query received at queried.
func (s *Server) tapAsync(wire []byte, src netip.AddrPort, transport int, queried time.Time) {
	if s.cfg.Tap != nil {
		s.cfg.Tap.ClientResponse(wire, src, tapTransport(transport), queried, s.now())
	}
}

// tapTransport maps a transport index to dnstap's.
func tapTransport(transport int) dnstap.Transport {
	switch transport {
	case tcp:
		return dnstap.TCP
	case dot:
		return dnstap.DoT
	case doh:
		return dnstap.DoH
	}
	return dnstap.UDP
}
