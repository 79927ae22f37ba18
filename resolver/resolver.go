package resolver

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/ratelimit"
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

	// ZoneRateLimit bounds the queries sent to the servers of any one zone
	// per second (0: DefaultZoneRateLimit; negative: no limit); questions
	// over it fail with ErrRateLimited, or are answered stale.
	ZoneRateLimit int
	// MaxZoneInFlight bounds the upstream queries waiting on the servers
	// of any one zone at once (0: DefaultMaxZoneInFlight; negative: no
	// limit); questions over it fail at once with ErrZoneBusy (a
	// SERVFAIL with Extended DNS Error 22, No Reachable Authority), or
	// are answered stale. A zone whose servers are all down (infra.go)
	// fails its questions at once too.
	MaxZoneInFlight int
	// UnwantedReplyThreshold is the number of unwanted replies (replies to
	// no question asked) seen while asking the servers of one zone at which
	// the zone is taken to be under a spoofing attack (0:
	// DefaultUnwantedReplyThreshold; negative: no alarm).
	UnwantedReplyThreshold int
	// MaxTargetFetches bounds the name-server names without a known
	// address looked up at once for one zone cut (0: 3), and
	// MaxTargetFailures the lookups of such names that may fail (no
	// address, or an error) per client question before no more are tried
	// (0: 3): a referral naming many servers that do not exist (NXNS)
	// sends a few queries, not one per name.
	MaxTargetFetches  int
	MaxTargetFailures int

	// Stubs sends questions at or below a zone (lower-case, fully
	// qualified) to the given authoritative servers instead of finding
	// them from the root; Forwards sends them, with RD set, to the given
	// recursive resolvers. The deepest zone wins; a stub below a forward
	// zone is used for its names.
	Stubs    map[string][]netip.AddrPort
	Forwards map[string][]netip.AddrPort
	Now      func() time.Time

	// DNSSEC configures validation; the zero value leaves it off.
	DNSSEC DNSSECConfig

	// Serve-stale (RFC 8767), with the cache's StaleWindow: StaleTTL is the
	// TTL of stale answers (0: 30s); a question with a stale answer waits
	// at most ClientTimeout for the resolution (0: until it fails), which
	// goes on in the background; after a failed resolution its stale
	// answer is served without asking upstream for FailureRecheck (0: 30s).
	StaleTTL       time.Duration
	ClientTimeout  time.Duration
	FailureRecheck time.Duration

	// Prefetch refreshes in the background a cached answer asked for in
	// the last tenth of its TTL (prefetch.go), at most MaxPrefetches at
	// once (0: 32).
	Prefetch      bool
	MaxPrefetches int

	// Local answers from zones this node holds (mirrors of the root and
	// of national zones): the resolver asks it before any server of a
	// zone it holds, so those names never need the network. Nil: none.
	Local LocalAuthority

	// National are the suffixes of the national namespace (lower-case,
	// fully qualified): their servers' failures do not count towards
	// island mode, nor are they skipped in it, and SignatureGrace applies
	// to them. The delegations, server addresses and keys that lead to
	// them are kept in the cache apart from the LRU (national.go), at most
	// NationalMaxEntries of them (0: DefaultNationalMaxEntries), and a
	// national name is resolved from the deepest national zone cut known
	// when the servers above it are unreachable.
	National           []string
	NationalMaxEntries int
	// NationalHints are NS records of national zones (at or below a
	// suffix of National) and addresses of the servers they name, in the
	// form of root hints (ParseNationalHints): where resolution of a
	// national name starts when the servers above the national zones are
	// unreachable and no delegation to them is known.
	NationalHints []dns.RR
	// Island configures the detection of isolation.
	Island IslandConfig
	// SignatureGrace: only in island mode and only for names under
	// National, RRSIGs that expired less than this long ago are accepted.
	SignatureGrace time.Duration
	// KeepWarm are questions refreshed before they expire, every
	// KeepWarmInterval (0: 30s).
	KeepWarm         []Question
	KeepWarmInterval time.Duration

	// PersistNow, when set, is called when state that must survive a crash
	// has changed and should be written out at once rather than with the
	// next batch: island mode entered, the national infrastructure changed.
	// It must return at once (it runs on resolution paths); reason says
	// what changed.
	PersistNow func(reason string)
}

// Question is a name and type.
type Question struct {
	Name  string
	Qtype uint16
}

// LocalAuthority answers from zones held on this node. Answer returns the
// response the authoritative server for name would give (with DNSSEC
// records), and the origin of the zone it comes from, or nil when no zone
// held is authoritative for the question (DS at a held zone's apex belongs
// to the parent: nil unless the parent is held).
type LocalAuthority interface {
	Answer(name string, qtype uint16) (*dns.Msg, string)
}

// DNSSECConfig configures DNSSEC validation (RFC 4033-4035).
type DNSSECConfig struct {
	// Validation turns validation on: answers get a security status,
	// bogus ones are refused, upstream queries ask for DNSSEC records.
	Validation bool
	// Anchors are the trust anchors, DS or DNSKEY records (the IANA root
	// anchors are dnssec.RootAnchors; they are not added implicitly). A
	// chain of trust starts at the deepest anchored zone at or above a
	// name; names under no anchor are insecure.
	Anchors []dns.RR
	// NegativeAnchors are zones (lower-case, fully qualified) at and
	// below which nothing is validated: answers are insecure (RFC 7646).
	NegativeAnchors []string
	// Work limits per client question; zero: dnssec.DefaultMaxValidations,
	// dnssec.DefaultMaxNSEC3Hashes, dnssec.DefaultMaxNSEC3Iterations.
	MaxValidations     int
	MaxNSEC3Hashes     int
	MaxNSEC3Iterations int
	// AggressiveNSEC answers NXDOMAIN and NODATA from the validated NSEC
	// and NSEC3 records held in the cache (RFC 8198, aggressive.go).
	AggressiveNSEC bool
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
	if c.ZoneRateLimit == 0 {
		c.ZoneRateLimit = DefaultZoneRateLimit
	}
	if c.MaxZoneInFlight == 0 {
		c.MaxZoneInFlight = DefaultMaxZoneInFlight
	}
	if c.UnwantedReplyThreshold == 0 {
		c.UnwantedReplyThreshold = DefaultUnwantedReplyThreshold
	}
	if c.MaxTargetFetches == 0 {
		c.MaxTargetFetches = 3
	}
	if c.MaxTargetFailures == 0 {
		c.MaxTargetFailures = 3
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.StaleTTL == 0 {
		c.StaleTTL = 30 * time.Second
	}
	if c.FailureRecheck == 0 {
		c.FailureRecheck = 30 * time.Second
	}
	if c.KeepWarmInterval == 0 {
		c.KeepWarmInterval = 30 * time.Second
	}
	c.Island.defaults()
}

// Defaults of the guards against attacks through upstream servers.
const (
	DefaultZoneRateLimit          = 1000
	DefaultUnwantedReplyThreshold = 10000
)

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
	Answer []dns.RR // CNAME chain and final RRset, with their RRSIGs
	Ns     []dns.RR // SOA for negative answers; RRSIGs and NSEC/NSEC3 proofs
	Err    error    // why Rcode is SERVFAIL

	// Stale: the answer comes from expired cache entries (RFC 8767), its
	// TTLs set to Config.StaleTTL, because upstream could not be reached;
	// StaleReason says why it was served stale (a StaleReason* value).
	Stale       bool
	StaleReason string
	// Grace: a signature in the answer had expired and was accepted under
	// Config.SignatureGrace (island mode, national name).
	Grace bool
	// Synthesised: the denial was made from cached NSEC or NSEC3 records
	// (RFC 8198), not asked upstream.
	Synthesised bool

	// Sec is the DNSSEC status of the whole answer, its weakest link
	// (Unchecked when validation is off), and Why the reason when it is not
	// Secure: a *dnssec.ValidationError, which dnssec.EDE maps to an
	// Extended DNS Error. A Bogus or Indeterminate answer keeps its data
	// for clients that set CD; the others must get SERVFAIL.
	Sec dnssec.SecStatus
	Why error
}

// Resolver resolves questions iteratively from the root, with a cache.
type Resolver struct {
	cfg   Config
	ex    Exchanger
	log   *slog.Logger
	cache *Cache
	infra *infra
	stats *Stats
	val   *validator // nil: validation off

	island  *island
	staleSt *staleState
	hints   nationalHints
	rootNS  []string // the root's name servers in the hints, lower-case; read only

	mu     sync.Mutex
	flight map[question]*call
	calls  sync.Pool // of *call that no question waited on

	pfSlots chan struct{} // a slot per prefetch under way (prefetch.go)
	bg      *backgroundWork

	// limiter counts the queries sent to each zone's servers (ZoneRateLimit,
	// as Unbound's ratelimit): a flood through the resolver reaches them at
	// no more than the limit.
	limiter  *ratelimit.PerSecond[string]
	unwanted *unwantedGuard
	waits    *zoneWaits // upstream queries waiting, by zone (MaxZoneInFlight)

	glue glueStore // the parent's glue for name servers (glue.go)
}

// call is a resolution under way (Resolver.flight), which other lookups
// of the same question wait on.
type call struct {
	// done, made by the first lookup that waits (under Resolver.mu), is
	// closed when res is set. Most questions are asked once: their call
	// has no channel, and goes back to the pool.
	done chan struct{}
	res  lookupResult
}

// newCall returns an empty call for the flight map; the caller holds r.mu.
func (r *Resolver) newCall() *call {
	if c, ok := r.calls.Get().(*call); ok {
		return c
	}
	return new(call)
}

// wait returns c's channel, made if need be; the caller holds r.mu.
func (c *call) wait() <-chan struct{} {
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

// end takes c, holding res, out of the flight map under key and wakes the
// lookups that wait on it; a call no lookup waited on goes back to the
// pool.
func (r *Resolver) end(key question, c *call, res lookupResult) {
	r.mu.Lock()
	delete(r.flight, key)
	done := c.done
	if done != nil {
		c.res = res
	} else {
		*c = call{}
		r.calls.Put(c)
	}
	r.mu.Unlock()
	if done != nil {
		close(done)
	}
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
	r := &Resolver{cfg: cfg, ex: ex, log: log, cache: cache, infra: newInfra(cfg.QueryTimeout), stats: stats, flight: map[question]*call{}, bg: newBackgroundWork(),
		island: newIsland(), staleSt: newStaleState(), hints: newNationalHints(cfg.NationalHints),
		limiter: &ratelimit.PerSecond[string]{Rate: cfg.ZoneRateLimit}, waits: newZoneWaits(cfg.MaxZoneInFlight), unwanted: &unwantedGuard{threshold: cfg.UnwantedReplyThreshold, m: map[string]int{}}}
	cache.setNational(cfg.National, cfg.NationalMaxEntries, func() { r.persistNow("national infrastructure changed") })
	if cfg.DNSSEC.Validation {
		r.val = newValidator(cfg.DNSSEC, log)
	}
	r.infra.now = cfg.Now
	r.rootNS = rootNS(cfg.RootHints)
	r.initFreshness()
	return r
}

// Run does the resolver's background work until ctx ends: island-mode
// detection and probes, and the keep-warm refreshes. When ctx ends it
// closes the resolver (Close): the refreshes started by questions are
// cancelled and waited for before it returns.
func (r *Resolver) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.runIsland(ctx) }()
	go func() { defer wg.Done(); r.keepWarm(ctx) }()
	wg.Wait()
	<-ctx.Done()
	r.Close()
}

// Now reads the resolver's clock (Config.Now).
func (r *Resolver) Now() time.Time { return r.cfg.Now() }

// Cache returns the resolver's cache.
func (r *Resolver) Cache() *Cache { return r.cache }

// persistNow asks for the state to be written out at once (Config.PersistNow).
func (r *Resolver) persistNow(reason string) {
	if r.cfg.PersistNow != nil {
		r.cfg.PersistNow(reason)
	}
}

// budget counts the work done for one client question.
type budget struct {
	queries   int
	nsLookups int
	// targetFailures counts the name-server address lookups that failed.
	targetFailures int
	depth          int            // nesting of name-server address lookups
	val            *dnssec.Budget // validation work
	// valLimitCounted: the validation limit hit was counted in Stats.
	valLimitCounted bool
	// trialTaken: the question sent its one trial query of island mode.
	trialTaken bool
	// bogusFrom are the servers, by zone, whose answers failed validation
	// during this question: they are not asked again for it.
	bogusFrom map[zoneServer]bool
	// absent: the question's own entries are known not to be cached
	// (Miss); the first lookup does not look for them.
	absent bool
}

// zoneServer is one server of one zone.
type zoneServer struct {
	zone string
	s    server
}

// excluded reports whether server s of zone is not to be asked again for
// this question.
func (b *budget) excluded(zone string, s server) bool {
	return b.bogusFrom[zoneServer{zone, s}]
}

// resolve answers (name, qtype), following CNAMEs, within the configured
// time and work limits, from the cache or upstream.
func (r *Resolver) resolve(ctx context.Context, name string, qtype uint16, absent bool) (res Result) {
	q := newQuestionCtx(ctx, r.cfg.ResolutionTimeout)
	defer q.end()
	ctx = q
	if o := r.stats.Observer; o != nil {
		defer func() { o.Resolution(time.Since(q.start), res.Err) }()
	}
	b := r.newBudget()
	b.absent = absent
	res, _ = r.follow(name, qtype, func(n string) (lookupResult, bool) {
		return r.lookup(ctx, b, n, qtype), true
	})
	return res
}

// newBudget returns the work budget of one client question.
func (r *Resolver) newBudget() *budget {
	b := &budget{}
	if r.val != nil {
		b.val = dnssec.NewBudget(r.val.limits)
	}
	return b
}

// CacheEpoch returns the cache's count of flushes (Cache.Epoch): an
// encoded copy of an answer from Cached is served while the epoch is
// unchanged and its TTLs last.
func (r *Resolver) CacheEpoch() uint64 { return r.cache.Epoch() }

// CountCacheHit counts a question answered from an encoded copy of an
// answer from Cached, which did not reach the cache, as a cache hit.
func (r *Resolver) CountCacheHit() { r.stats.CacheHits.Add(1) }

// Cached answers (name, qtype) from the cache alone, following CNAMEs
// through it; ok is false if any step is not cached. It never waits, so a
// server can call it on its socket's goroutine.
func (r *Resolver) Cached(name string, qtype uint16) (Result, bool) {
	res, _, ok := r.Lookup(name, qtype)
	return res, ok
}

// Miss is what Lookup saw of a question it could not answer. Given to
// ResolveMiss for the same question, it spares the resolution a second
// look for entries that were not there, unless an entry was stored since
// where they would be. The zero Miss knows nothing.
type Miss struct {
	// absent: the question's name held no entry, fresh or stale, for its
	// type, for CNAME or for NXDOMAIN, when the count of entries stored
	// under names that hash as it does was stored.
	absent bool
	stored uint32
}

// still reports whether m, a Miss for name, still holds: nothing was
// stored since under a name that hashes as name does. A question that waited
// behind others while the same name was resolved finds the answer.
func (m Miss) still(c *Cache, name string) bool {
	return m.absent && c.storedAt(cacheName(name)) == m.stored
}

// Lookup is Cached that, when the cache cannot answer, also returns what
// it saw (Miss) for the resolution that follows.
func (r *Resolver) Lookup(name string, qtype uint16) (Result, Miss, bool) {
	// Read before the entries are looked for: one stored after it
	// changes it.
	miss := Miss{stored: r.cache.storedAt(cacheName(name))}
	first := true
	res, ok := r.follow(name, qtype, func(n string) (lookupResult, bool) {
		lr, ok, absent := r.fromCache(n, qtype, r.val != nil, false)
		if first {
			miss.absent, first = !ok && absent, false
		}
		if lr.refresh {
			r.prefetch(n, qtype)
		}
		return lr, ok
	})
	if !ok {
		return Result{}, miss, false
	}
	return res, Miss{}, true
}

// follow answers name, and the targets of the CNAMEs met on the way, with
// step; ok is false when a step is. A chain that loops or outgrows
// MaxCNAMEChain is a SERVFAIL.
func (r *Resolver) follow(name string, qtype uint16, step func(string) (lookupResult, bool)) (Result, bool) {
	var chain, proofs []dns.RR
	sec, why := dnssec.Secure, error(nil)
	grace, synth := false, false
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
		if chain == nil {
			// The first link's slice itself, clipped, so that a link
			// after it is appended to a copy: nothing writes into a
			// result's slice (its records were shared before too).
			chain = slices.Clip(lr.answer)
		} else {
			chain = append(chain, lr.answer...)
		}
		sec, why = weaker(sec, why, lr.sec, lr.why)
		grace = grace || lr.grace
		synth = synth || lr.synth
		target := cnameTarget(lr.answer, name)
		if target == "" || qtype == dns.TypeCNAME || qtype == dns.TypeANY || hasType(lr.answer, name, qtype) {
			if len(proofs) > 0 {
				lr.ns = append(proofs, lr.ns...)
			}
			grace = grace && sec != dnssec.Bogus && sec != dnssec.Indeterminate
			return Result{Rcode: lr.rcode, Answer: chain, Ns: lr.ns, Sec: sec, Why: why, Grace: grace, Synthesised: synth}, true
		}
		proofs = append(proofs, lr.ns...) // the wildcard proofs of a link
		name = target
	}
	return Result{Rcode: dns.RcodeServerFailure, Answer: chain, Err: ErrCNAMEChain}, true
}

// weaker combines the status of an answer so far with that of one more
// link: the weakest wins (Bogus, then Indeterminate, Insecure, Unchecked,
// Secure), with its reason.
func weaker(a dnssec.SecStatus, aWhy error, b dnssec.SecStatus, bWhy error) (dnssec.SecStatus, error) {
	rank := func(s dnssec.SecStatus) int {
		switch s {
		case dnssec.Secure:
			return 0
		case dnssec.Unchecked:
			return 1
		case dnssec.Insecure:
			return 2
		case dnssec.Indeterminate:
			return 3
		}
		return 4
	}
	if rank(b) > rank(a) || (rank(b) == rank(a) && aWhy == nil) {
		return b, bWhy
	}
	return a, aWhy
}

// fromCache answers one name from the cache: its own RRset, a CNAME, or a
// negative answer, else a denial synthesised from validated NSEC or NSEC3
// records (aggressive.go). With checked, entries stored without validation
// (name server addresses looked up during iteration) do not count. An
// entry due for prefetch is marked refresh. absent reports that the
// name's own entries were not there at all, fresh or stale; with skip,
// known to be so (Miss), they are not looked for.
func (r *Resolver) fromCache(name string, qtype uint16, checked, skip bool) (_ lookupResult, ok, absent bool) {
	absent = true
	if !skip {
		e, ok, seen := r.cache.getMsg(name, qtype, false)
		if ok && !(checked && e.Sec == dnssec.Unchecked) {
			r.stats.CacheHits.Add(1)
			return lookupResult{rcode: e.Rcode, answer: e.Answer, ns: e.Ns, sec: e.Sec, why: e.Why, refresh: r.prefetchDue(e)}, true, false
		}
		absent = !seen
		if qtype != dns.TypeCNAME {
			// A cached CNAME answers any type; the chain goes on from its target.
			e, ok, seen := r.cache.getMsg(name, dns.TypeCNAME, false)
			if ok && e.Kind == MsgAnswer && !(checked && e.Sec == dnssec.Unchecked) {
				r.stats.CacheHits.Add(1)
				return lookupResult{rcode: dns.RcodeSuccess, answer: e.Answer, ns: e.Ns, sec: e.Sec, why: e.Why, refresh: r.prefetchDue(e)}, true, false
			}
			absent = absent && !seen
		}
	}
	if lr, stale, ok := r.synthesise(name, qtype, false); ok && !stale {
		return lr, true, false
	}
	if checked {
		// Below a validated NXDOMAIN nothing exists (RFC 8020, as
		// Unbound's harden-below-nxdomain): a random-subdomain flood under
		// a name proven absent stops here.
		if e, ok := r.cache.NXAbove(name); ok {
			r.stats.CacheHits.Add(1)
			r.stats.BelowNXDomain.Add(1)
			return lookupResult{rcode: dns.RcodeNameError, ns: e.Ns, sec: e.Sec, synth: true}, true, false
		}
	}
	return lookupResult{}, false, absent
}

// lookupResult is the answer for one name: its own records (a CNAME or the
// RRset asked for, with their RRSIGs), or a negative answer (the SOA, its
// RRSIGs and the NSEC or NSEC3 proof in ns).
type lookupResult struct {
	rcode  int
	answer []dns.RR
	ns     []dns.RR // negative answers: the authority records; answers: wildcard proofs
	err    error
	sec    dnssec.SecStatus
	why    error
	synth  bool // a denial synthesised from validated NSEC or NSEC3 records
	// refresh: a cache entry due for prefetch (a client's question only).
	refresh bool

	// What an upstream answer brought, until it is validated and stored.
	msg      *dns.Msg      // the upstream response; nil for results from the cache
	sets     []*rrset      // answers: the in-bailiwick RRsets of the answer section
	negative bool          // NXDOMAIN or NODATA
	maxTTL   time.Duration // negative answers: the signatures' remaining validity
	grace    bool          // validated thanks to the island-mode signature grace
	from     server        // the server that answered (invalid for a zone held here)
	fromCut  string        // the zone it was asked as a server of
	// referral: a NODATA for DS made of a referral from this zone (the
	// parent) to the name itself; its proof has no SOA.
	referral string
}

// rrset is one RRset of an upstream answer with the RRSIGs that cover it,
// and once validated its status.
type rrset struct {
	owner  string // lower-case
	rrtype uint16
	rrs    []dns.RR
	sigs   []*dns.RRSIG
	proof  []dns.RR // NSEC or NSEC3 records and RRSIGs proving a wildcard expansion
	sec    dnssec.SecStatus
	why    error
	maxTTL time.Duration
	seen   map[string]struct{} // a large set's RDATA, for holds
}

// records returns the set's records followed by its RRSIGs: the set's own
// slice when it has none (full, so that an append copies it).
func (s *rrset) records() []dns.RR {
	if len(s.sigs) == 0 {
		return s.rrs[:len(s.rrs):len(s.rrs)]
	}
	out := make([]dns.RR, 0, len(s.rrs)+len(s.sigs))
	out = append(out, s.rrs...)
	for _, sig := range s.sigs {
		out = append(out, sig)
	}
	return out
}

// lookup answers one name from the cache, or resolves it; concurrent
// lookups of the same question share one resolution.
//
// Name-server address lookups (b.depth > 0) are not validated: iteration
// does not depend on them, and their entries are marked Unchecked, which a
// client's question does not take from the cache when validating.
func (r *Resolver) lookup(ctx context.Context, b *budget, name string, qtype uint16) lookupResult {
	validate := r.val != nil && b.depth == 0
	skip := b.absent
	b.absent = false
	if lr, ok, _ := r.fromCache(name, qtype, validate, skip); ok {
		if lr.refresh && b.depth == 0 {
			r.prefetch(name, qtype)
		}
		return lr
	}
	r.stats.CacheMisses.Add(1)
	if b.depth > 0 {
		// Name-server address lookups are not shared: two of them could
		// wait on each other (ns.a.example needs a.example, and back).
		return r.resolveStore(ctx, b, name, qtype, false)
	}
	key := questionKey(name, qtype)
	r.mu.Lock()
	if c, ok := r.flight[key]; ok {
		done := c.wait()
		r.mu.Unlock()
		select {
		case <-done:
			return c.res
		case <-ctx.Done():
			return lookupResult{err: ctx.Err()}
		}
	}
	c := r.newCall()
	r.flight[key] = c
	r.mu.Unlock()

	res := r.resolveStore(ctx, b, name, qtype, validate)
	r.end(key, c, res)
	return res
}

// resolveStore resolves (name, qtype) from upstream, validates the answer
// when asked, and caches it. An answer that fails validation is asked
// again of other servers of the zone that gave it, up to maxBogusRetries
// times, before it is taken as bogus: one server with broken signatures
// does not make the name fail (as Unbound and BIND do).
func (r *Resolver) resolveStore(ctx context.Context, b *budget, name string, qtype uint16, validate bool) lookupResult {
	var bogus lookupResult // the last answer that failed validation
	for try := 0; ; try++ {
		lr := r.iterate(ctx, b, name, qtype)
		if lr.err != nil || lr.msg == nil {
			if try > 0 {
				// No other server gave a usable answer: the one that
				// failed validation stands.
				r.finishValidation(b, name, qtype, &bogus)
				r.store(name, qtype, &bogus)
				return bogus
			}
			return lr
		}
		lr.sec = dnssec.Unchecked
		for _, s := range lr.sets {
			s.sec = dnssec.Unchecked
		}
		if validate {
			r.validate(ctx, b, name, qtype, &lr)
			if lr.sec == dnssec.Bogus && r.retryElsewhere(b, name, &lr, try) {
				bogus = lr
				continue
			}
			r.finishValidation(b, name, qtype, &lr)
		}
		r.store(name, qtype, &lr)
		return lr
	}
}

// maxBogusRetries bounds how many times an answer that failed validation
// is asked again of another server of the same zone, per answer.
const maxBogusRetries = 2

// retryElsewhere decides whether the answer lr to name, which failed
// validation on try try (from 0), is to be asked again of another server:
// the server that gave it is not asked again by this question, is charged
// a round-trip time that puts it behind the zone's servers that work (it
// answered, so it is not counted as failed or down), and the retry is
// counted. Answers from the cache or from zones held here, and questions
// past a validation work limit, are not retried.
func (r *Resolver) retryElsewhere(b *budget, name string, lr *lookupResult, try int) bool {
	if try >= maxBogusRetries || !lr.from.IsValid() || (b.val != nil && b.val.Exceeded != "") {
		return false
	}
	if b.bogusFrom == nil {
		b.bogusFrom = map[zoneServer]bool{}
	}
	b.bogusFrom[zoneServer{lr.fromCut, lr.from}] = true
	r.infra.demote(lr.from, r.penalty())
	r.stats.BogusRetries.Add(1)
	r.log.Debug("answer failed validation, asking another server", "qname", name,
		"server", lr.from.String(), "zone", lr.fromCut, "err", lr.why)
	return true
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
