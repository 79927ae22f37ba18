package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Config bounds and directs resolution.
type Config struct {
	RootHints          []dns.RR      // root NS and their addresses; nil: the IANA hints
	UpstreamPort       uint16        // 0: 53
	QueryTimeout       time.Duration // per upstream query; 0: 1s
	ResolutionTimeout  time.Duration // per client question; 0: 8s
	MaxReferrals       int           // per name looked up; 0: 30
	MaxUpstreamQueries int           // per client question; 0: 64
	MaxCNAMEChain      int           // 0: 16
	MaxNSLookups       int           // name-server names resolved per client question; 0: 16
	NoIPv4, NoIPv6     bool          // never query upstream servers over IPv4, IPv6
	QueryLoopback      bool          // allow upstream addresses in 127.0.0.0/8 and ::1
	NoPrivate          bool          // never query private (RFC 1918, RFC 4193) or link-local addresses
	QNameMinimisation  QMin          // RFC 9156; the zero value is relaxed
	Use0x20            bool          // randomise the case of upstream query names and require it echoed

	// Stubs sends questions at or below a zone (lower-case, fully
	// qualified) to the given authoritative servers instead of finding
	// them from the root; Forwards sends them, with RD set, to the given
	// recursive resolvers. The deepest zone wins; a stub below a forward
	// zone is used for its names.
	Stubs    map[string][]netip.AddrPort
	Forwards map[string][]netip.AddrPort
	Now      func() time.Time
}

func (c *Config) defaults() {
	if c.RootHints == nil {
		c.RootHints = RootHints()
	}
	if c.UpstreamPort == 0 {
		c.UpstreamPort = 53
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = time.Second
	}
	if c.ResolutionTimeout == 0 {
		c.ResolutionTimeout = 8 * time.Second
	}
	if c.MaxReferrals == 0 {
		c.MaxReferrals = 30
	}
	if c.MaxUpstreamQueries == 0 {
		c.MaxUpstreamQueries = 64
	}
	if c.MaxCNAMEChain == 0 {
		c.MaxCNAMEChain = 16
	}
	if c.MaxNSLookups == 0 {
		c.MaxNSLookups = 16
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// QMin is a QNAME minimisation mode (RFC 9156).
type QMin uint8

// The QNAME minimisation modes.
const (
	// QMinRelaxed sends each zone's servers only one label more than the
	// zone, and the full name once a server answers NXDOMAIN for a
	// minimised name or fails (some servers deny empty non-terminals).
	QMinRelaxed QMin = iota
	// QMinStrict believes an NXDOMAIN for a minimised name: nothing below
	// it exists (RFC 8020).
	QMinStrict
	// QMinOff sends the full name to every server.
	QMinOff
)

// maxMinimise is how many extra minimised queries one name may take
// before the full name is sent (RFC 9156 §2.3, MAX_MINIMISE_COUNT).
const maxMinimise = 10

// Sentinels for why a resolution failed; the server maps them to Extended
// DNS Errors.
var (
	ErrNoReachableAuthority = errors.New("no reachable authority")
	ErrLimit                = errors.New("resolution limit reached")
	ErrLame                 = errors.New("no server gave a usable answer")
	ErrCNAMEChain           = errors.New("CNAME chain too long or looping")
)

// Result is the answer to a client's question.
type Result struct {
	Rcode  int
	Answer []dns.RR // CNAME chain and final RRset
	Ns     []dns.RR // SOA for negative answers
	Err    error    // why Rcode is SERVFAIL
}

// Resolver resolves questions iteratively from the root, with a cache.
type Resolver struct {
	cfg   Config
	ex    Exchanger
	log   *slog.Logger
	cache *Cache
	infra *infra
	stats *Stats

	mu     sync.Mutex
	flight map[string]*call
}

type call struct {
	done chan struct{}
	res  lookupResult
}

// New returns a resolver; log and stats may be nil.
func New(cfg Config, ex Exchanger, cache *Cache, log *slog.Logger, stats *Stats) *Resolver {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if stats == nil {
		stats = &Stats{}
	}
	return &Resolver{cfg: cfg, ex: ex, log: log, cache: cache, infra: newInfra(), stats: stats, flight: map[string]*call{}}
}

// Cache returns the resolver's cache.
func (r *Resolver) Cache() *Cache { return r.cache }

// budget counts the work done for one client question.
type budget struct {
	queries   int
	nsLookups int
	depth     int // nesting of name-server address lookups
}

// Resolve answers (name, qtype), following CNAMEs, within the configured
// time and work limits.
func (r *Resolver) Resolve(ctx context.Context, name string, qtype uint16) (res Result) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ResolutionTimeout)
	defer cancel()
	if o := r.stats.Observer; o != nil {
		start := r.cfg.Now()
		defer func() { o.Resolution(r.cfg.Now().Sub(start), res.Err) }()
	}
	b := &budget{}
	res, _ = r.follow(name, qtype, func(n string) (lookupResult, bool) {
		return r.lookup(ctx, b, n, qtype), true
	})
	return res
}

// Cached answers (name, qtype) from the cache alone, following CNAMEs
// through it; ok is false if any step is not cached. It never waits, so a
// server can call it on its socket's goroutine.
func (r *Resolver) Cached(name string, qtype uint16) (Result, bool) {
	return r.follow(name, qtype, func(n string) (lookupResult, bool) { return r.fromCache(n, qtype) })
}

// follow answers name, and the targets of the CNAMEs met on the way, with
// step; ok is false when a step is. A chain that loops or outgrows
// MaxCNAMEChain is a SERVFAIL.
func (r *Resolver) follow(name string, qtype uint16, step func(string) (lookupResult, bool)) (Result, bool) {
	var chain []dns.RR
	seen := map[string]bool{}
	name = dns.Fqdn(name)
	for range r.cfg.MaxCNAMEChain + 1 {
		key := strings.ToLower(name)
		if seen[key] {
			break
		}
		seen[key] = true
		lr, ok := step(name)
		if !ok {
			return Result{}, false
		}
		if lr.err != nil {
			return Result{Rcode: dns.RcodeServerFailure, Answer: chain, Err: lr.err}, true
		}
		chain = append(chain, lr.answer...)
		target := cnameTarget(lr.answer, name)
		if target == "" || qtype == dns.TypeCNAME || qtype == dns.TypeANY || hasType(lr.answer, name, qtype) {
			return Result{Rcode: lr.rcode, Answer: chain, Ns: lr.ns}, true
		}
		name = target
	}
	return Result{Rcode: dns.RcodeServerFailure, Answer: chain, Err: ErrCNAMEChain}, true
}

// fromCache answers one name from the cache: its own RRset, a CNAME, or a
// negative answer.
func (r *Resolver) fromCache(name string, qtype uint16) (lookupResult, bool) {
	if e, ok := r.cache.Get(name, qtype); ok {
		r.stats.CacheHits.Add(1)
		return lookupResult{rcode: e.Rcode, answer: e.Answer, ns: e.Ns}, true
	}
	if qtype != dns.TypeCNAME {
		// A cached CNAME answers any type; the chain goes on from its target.
		if e, ok := r.cache.Get(name, dns.TypeCNAME); ok && e.Kind == MsgAnswer {
			r.stats.CacheHits.Add(1)
			return lookupResult{rcode: dns.RcodeSuccess, answer: e.Answer}, true
		}
	}
	return lookupResult{}, false
}

// lookupResult is the answer for one name: its own records (a CNAME or the
// RRset asked for), or a negative answer.
type lookupResult struct {
	rcode  int
	answer []dns.RR
	ns     []dns.RR
	err    error
}

// lookup answers one name from the cache, or resolves it; concurrent
// lookups of the same question share one resolution.
func (r *Resolver) lookup(ctx context.Context, b *budget, name string, qtype uint16) lookupResult {
	if lr, ok := r.fromCache(name, qtype); ok {
		return lr
	}
	r.stats.CacheMisses.Add(1)
	if b.depth > 0 {
		// Name-server address lookups are not shared: two of them could
		// wait on each other (ns.a.example needs a.example, and back).
		return r.iterate(ctx, b, name, qtype)
	}
	key := fmt.Sprintf("%s/%d", strings.ToLower(name), qtype)
	r.mu.Lock()
	if c, ok := r.flight[key]; ok {
		r.mu.Unlock()
		select {
		case <-c.done:
			return c.res
		case <-ctx.Done():
			return lookupResult{err: ctx.Err()}
		}
	}
	c := &call{done: make(chan struct{})}
	r.flight[key] = c
	r.mu.Unlock()

	c.res = r.iterate(ctx, b, name, qtype)
	r.mu.Lock()
	delete(r.flight, key)
	r.mu.Unlock()
	close(c.done)
	return c.res
}

func cnameTarget(rrs []dns.RR, name string) string {
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, name) {
			return c.Target
		}
	}
	return ""
}

func hasType(rrs []dns.RR, name string, qtype uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == qtype && strings.EqualFold(rr.Header().Name, name) {
			return true
		}
	}
	return false
}

// server is one upstream address.
type server = netip.AddrPort
