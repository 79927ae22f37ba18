package resolver

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/cpu"

	"github.com/sovdns/sovdns/dnssec"
)

// Defaults applied by NewCache to zero fields of CacheConfig. They match
// Unbound's cache-max-ttl and cache-max-negative-ttl.
const (
	DefaultMaxTTL         = 24 * time.Hour
	DefaultMaxNegativeTTL = time.Hour
)

// cacheShards is the number of shards. Each has its own lock, LRU list and
// byte budget (MaxBytes/cacheShards); the shard of an entry is chosen by the
// FNV-1a hash of its owner name, so every entry for one name shares a shard.
const cacheShards = 256

// Size estimate of an entry, in bytes. The estimate is meant to follow the
// memory the entry really holds, so that MaxBytes bounds the heap and not
// only the wire data:
//
//	size = entryOverhead + len(owner name) + Σ (dns.Len(rr) + rrOverhead)
//
// entryOverhead covers the entry struct (key, LRU links, expiry, section
// counts, the RR slice header) and its slot in the shard's map; rrOverhead
// covers, for each record, its interface value in the slice, the record
// struct with its header and the rdata's Go headers (a net.IP slice header,
// a string header); dns.Len adds the record's wire length, which stands for
// the owner name and rdata bytes. The two constants were calibrated with
// BenchmarkCacheMemory (runtime.MemStats around 100k single-A entries,
// 267 bytes of heap per entry) and BenchmarkCacheChurnMemory (a cache kept
// full while several times its capacity of names pass through it, as a
// message and an RRset entry each, the shards' maps grown past
// their entries: 308 bytes); the estimate gives 315 and 307. Since an
// entry is one allocation with its first records' slots, and an address
// record one with its address (newEntry, copyRR), BenchmarkCacheMemory
// measures 251 bytes: the estimate errs high by a quarter there, on the
// safe side of MaxBytes, and the memory keeper's shares (internal/memlimit)
// were calibrated with it as it is.
const (
	entryOverhead = 184
	rrOverhead    = 72
)

// maxCacheChain bounds the CNAME links followed when classifying a message.
const maxCacheChain = 16

// CacheConfig configures a Cache. Zero values get the defaults documented on
// each field.
type CacheConfig struct {
	// MaxBytes bounds the estimated size of all entries. It is split evenly
	// across the shards, and an entry larger than one shard's share is never
	// stored. Zero (or less) disables the cache: nothing is stored.
	MaxBytes int64
	// MinTTL raises shorter TTLs; MaxTTL (default DefaultMaxTTL) lowers
	// longer ones. MaxTTL wins when MinTTL is larger.
	MinTTL, MaxTTL time.Duration
	// MaxNegativeTTL caps the TTL of NXDOMAIN and NODATA entries, after
	// MinTTL and MaxTTL (default DefaultMaxNegativeTTL).
	MaxNegativeTTL time.Duration
	// StaleWindow is how long an expired entry is kept for serve-stale
	// (RFC 8767): GetStale and GetRRsetStale return it during that time.
	// Zero means expired entries are not kept.
	StaleWindow time.Duration
	// Now is the clock (nil means time.Now). Tests replace it.
	Now func() time.Time
}

// CacheStats are the cache's counters, as plain numbers (in JSON, as the
// control API and sovdns cache stats --json give them, with snake_case
// names).
type CacheStats struct {
	Hits        uint64 `json:"hits"`         // Get and GetStale calls answered with fresh data
	Misses      uint64 `json:"misses"`       // Get calls that found no fresh message entry
	StaleHits   uint64 `json:"stale_hits"`   // GetStale calls answered with expired data
	RRsetHits   uint64 `json:"rrset_hits"`   // GetRRset and GetRRsetStale calls that found an RRset
	RRsetMisses uint64 `json:"rrset_misses"` // GetRRset and GetRRsetStale calls that found none
	Evictions   uint64 `json:"evictions"`    // entries removed to stay within MaxBytes
	Expired     uint64 `json:"expired"`      // entries removed because their stale window had passed
	Entries     int64  `json:"entries"`      // entries held now (including stale ones)
	Bytes       int64  `json:"bytes"`        // estimated size of the entries held now
	// National counts the national infrastructure entries held apart from
	// the LRU (included in Entries and Bytes); see national.go.
	National int64 `json:"national"`
}

// Rank orders RRsets by how much they are trusted, as Unbound's rrset_trust
// does (util/data/packed_rrset.h, after RFC 2181 §5.4.1): a higher rank
// replaces a lower one, never the reverse while the cached RRset is fresh.
// The resolver chooses the rank from the section and the AA bit of the
// response the RRset came from.
//
// RankGlue takes the place of Unbound's rrset_trust_glue (which Unbound
// gives to glue from zone data, and ranks referral glue as additional data):
// here it is for name-server addresses taken from a delegation, so that a
// non-authoritative answer cannot displace them but an authoritative one can.
type Rank uint8

// The ranks, from least to most trusted.
const (
	RankNone            Rank = iota
	RankAdditional           // additional section of a non-authoritative response
	RankAuthority            // authority section of a non-authoritative response
	RankAdditionalAA         // additional section of an authoritative response
	RankAnswerNonAuthAA      // answer section of an authoritative response, but outside the server's authority (a CNAME target)
	RankAnswer               // answer section of a non-authoritative response
	RankGlue                 // name-server addresses from a delegation
	RankAuthorityAA          // authority section of an authoritative response
	RankAnswerAA             // answer section of an authoritative response
	RankValidated            // validated by DNSSEC
)

var rankNames = [...]string{"none", "additional", "authority", "additional-aa",
	"answer-nonauth-aa", "answer", "glue", "authority-aa", "answer-aa", "validated"}

func (r Rank) String() string {
	if int(r) < len(rankNames) {
		return rankNames[r]
	}
	return fmt.Sprintf("Rank(%d)", uint8(r))
}

// MsgKind classifies a cached message.
type MsgKind uint8

// The kinds of message entry (RFC 2308 §1 and §2).
const (
	MsgAnswer   MsgKind = iota // data of the type asked for, possibly after a CNAME chain
	MsgNoData                  // the name exists but has no data of the type asked for
	MsgNXDomain                // the name does not exist
)

var msgKindNames = [...]string{"answer", "nodata", "nxdomain"}

func (k MsgKind) String() string {
	if int(k) < len(msgKindNames) {
		return msgKindNames[k]
	}
	return fmt.Sprintf("MsgKind(%d)", uint8(k))
}

// Message is a cached answer to a question, returned by Get and GetStale.
// Its records are copies that belong to the caller; every record's TTL is
// the entry's remaining TTL.
type Message struct {
	Kind   MsgKind
	Rcode  int
	Answer []dns.RR
	Ns     []dns.RR
	Extra  []dns.RR
	TTL    uint32 // remaining seconds, rounded down; 0 when Stale
	Stale  bool   // expired, within the stale window: the caller sets the TTL it serves (RFC 8767 §4)
	// Sec is the DNSSEC status the entry was stored with (Unchecked when
	// it was not validated), and Why the reason when it is not Secure.
	Sec dnssec.SecStatus
	Why error
	// OrigTTL is the TTL the entry was stored with, in seconds (0 when
	// unknown: restored from a file); prefetch compares TTL with it.
	OrigTTL uint32
}

// Cache is the resolver's cache of answers to questions (message entries)
// and of RRsets used for resolution (name servers and their addresses, later
// DNSKEY and DS). It is safe for concurrent use.
//
// Entries are keyed by lower-cased owner name, type and class IN. A message
// entry answers one question; an NXDOMAIN entry answers every type at its
// name. RRset entries live apart from message entries, under the same name
// and type, and carry a Rank.
//
// Everything stored is a copy of what was given, and everything returned is
// a copy of what is stored, with TTLs set to the time left: callers may
// modify what they get. Owner names are stored lower-cased, so the spelling
// one upstream used (0x20 randomisation included) never reaches a client.
//
// The cache is bounded by bytes, not by entry count: it is split into
// shards, each with its own mutex, LRU list and share of MaxBytes, and a
// lookup locks only the shard of its name. Expiry times are kept as Unix
// time read from the clock, so that entries can be persisted and reloaded.
//
// The national infrastructure (the delegations, server addresses and keys
// leading to the national zones, when the resolver built on the cache has
// national suffixes) is held apart from the LRU, outside MaxBytes, and
// kept past its TTL and stale window: see national.go.
type Cache struct {
	now         func() time.Time
	minTTL      time.Duration
	maxTTL      time.Duration
	maxNeg      time.Duration
	staleWindow int64        // nanoseconds
	budget      int64        // bytes per shard
	nat         *nationalSet // nil: nothing is kept apart (setNational)
	shards      [cacheShards]cacheShard
	stored      [storedSlots]atomic.Uint32 // see storedSlot
	denials     *denialIndex               // validated NSEC and NSEC3 records (aggressive.go)
	// epoch counts the flushes (Flush, FlushName): answers encoded from
	// the cache before one are not to be served again (Epoch).
	epoch atomic.Uint64
	// wbFilling is made by TrackChanges and then only read (ChangesFilling).
	wbOnce    sync.Once
	wbFilling chan struct{}
}

// Epoch returns the count of flushes so far. A copy of an answer taken
// from the cache, such as the server's encoded responses, is good while
// the epoch is the one it was taken in (and its TTLs last): a flush
// removes entries before their TTLs run out.
func (c *Cache) Epoch() uint64 { return c.epoch.Load() }

// cacheShard holds the entries whose owner name hashes to it. Every field is
// guarded by mu.
type cacheShard struct {
	mu    sync.Mutex
	m     map[cacheKey]*cacheEntry
	lru   cacheEntry // sentinel of the LRU ring: lru.next is the most recently used
	bytes int64      // of the entries in the LRU ring, bounded by the budget
	// nat is the sentinel of the ring of national infrastructure entries,
	// kept apart from the LRU: never evicted, never expired (national.go).
	nat      cacheEntry
	natBytes int64
	natSet   *nationalSet
	wb       shardChanges // the changes a write-behind file is to get: see writebehind.go

	hits, misses, staleHits uint64
	rrsetHits, rrsetMisses  uint64
	evictions, expired      uint64
	_                       cpu.CacheLinePad // keep neighbouring shards' locks off one cache line
}

type cacheEntryKind uint8

const (
	kindMsg   cacheEntryKind = iota // the answer to (name, type)
	kindNX                          // NXDOMAIN at name, for every type (type 0 in the key)
	kindRRset                       // an RRset of (name, type)
)

type cacheKey struct {
	name  string // lower-cased, fully qualified
	qtype uint16
	kind  cacheEntryKind
}

// cacheEntry is one cached message or RRset. Its records and fields other than
// the LRU links are never modified after it is stored, so a reader may copy
// them after releasing the shard lock. The fields are laid out to fill 96
// bytes, a size class of the runtime's allocator: most entries are single
// small RRsets, and the struct is a third of what one costs. With the
// slots of its first records (newEntry) it fills 112, 128 or 160, size
// classes too.
type cacheEntry struct {
	key        cacheKey
	prev, next *cacheEntry
	expire     int64    // Unix nanoseconds
	rrs        []dns.RR // answer, then authority, then additional
	why        *reason  // why it is not Secure; nil for most entries
	size       int32    // the estimate (entrySize), at most a shard's budget
	origTTL    uint32   // seconds it was stored for; 0: unknown
	nAns, nNs  uint16
	mkind      MsgKind // its rcode follows: NXDOMAIN for MsgNXDomain, else NOERROR
	rank       Rank
	sec        dnssec.SecStatus
	protected  bool // national infrastructure: in the shard's nat ring, not the LRU
}

// reason holds an entry's why, the error that made it Bogus or
// Indeterminate, behind one pointer: the many entries with none do not
// carry an interface's two words.
type reason struct{ err error }

// newReason returns err as a reason, nil for nil.
func newReason(err error) *reason {
	if err == nil {
		return nil
	}
	return &reason{err: err}
}

// error returns the error held, nil for a nil reason.
func (r *reason) error() error {
	if r == nil {
		return nil
	}
	return r.err
}

// rcode returns the response code of a message entry: only NOERROR and
// NXDOMAIN answers are stored (put), and the one is stored as MsgNXDomain.
func (e *cacheEntry) rcode() int {
	if e.mkind == MsgNXDomain {
		return dns.RcodeNameError
	}
	return dns.RcodeSuccess
}

func (e *cacheEntry) sections() (answer, ns, extra []dns.RR) {
	a, n := int(e.nAns), int(e.nAns)+int(e.nNs)
	return e.rrs[:a:a], e.rrs[a:n:n], e.rrs[n:]
}

// NewCache returns an empty cache configured by cfg.
func NewCache(cfg CacheConfig) *Cache {
	c := &Cache{
		now:         cfg.Now,
		minTTL:      max(cfg.MinTTL, 0),
		maxTTL:      cfg.MaxTTL,
		maxNeg:      cfg.MaxNegativeTTL,
		staleWindow: int64(max(cfg.StaleWindow, 0)),
		budget:      max(cfg.MaxBytes, 0) / cacheShards,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.maxTTL <= 0 {
		c.maxTTL = DefaultMaxTTL
	}
	if c.maxNeg <= 0 {
		c.maxNeg = DefaultMaxNegativeTTL
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.m = make(map[cacheKey]*cacheEntry)
		sh.lru.next, sh.lru.prev = &sh.lru, &sh.lru
		sh.nat.next, sh.nat.prev = &sh.nat, &sh.nat
	}
	c.denials = newDenialIndex(c)
	return c
}

// Put stores m, a complete response to its one question, and reports
// whether it was stored. The response is classified by RFC 2308: an answer
// (following any CNAME chain from the question name), NODATA or NXDOMAIN.
//
// What is never stored:
//   - a response with TC set: it is incomplete, and RFC 2181 §9 says to
//     discard it and ask again over TCP;
//   - rcodes other than NOERROR and NXDOMAIN. SERVFAIL, REFUSED and FORMERR
//     say something about the server that sent them and the query it got
//     (its health, its policy, its EDNS support), not about the name: RFC
//     2308 §7 allows caching server failures only against the tuple of
//     name, type, class and server address, for at most five minutes, so
//     they belong in the per-server infrastructure cache, where one broken
//     server cannot turn a name into a failure for every client;
//   - negative answers without a SOA at or above the name, which RFC 2308 §5
//     says not to cache (nothing bounds how long they could loop between
//     caches);
//   - questions of a class other than IN, or of a meta type (ANY, AXFR,
//     IXFR, OPT, TSIG, ...);
//   - records of a class other than IN, and OPT, TSIG and TKEY records,
//     which are dropped from the stored copy;
//   - entries whose TTL is zero after the clamps, and entries larger than
//     one shard's share of MaxBytes.
//
// The entry's TTL is the smallest TTL of its records (for the SOA of a
// negative answer, the smaller of its TTL and its MINIMUM, RFC 2308 §5),
// raised to MinTTL and lowered to MaxTTL; a negative entry is further
// capped by MaxNegativeTTL. A TTL with the top bit set counts as zero (RFC
// 2181 §8).
//
// An NXDOMAIN for the question name is stored for the name alone and answers
// every type. An NXDOMAIN at the end of a CNAME chain is stored for the
// question (the chain depends on the type asked), and a name-only NXDOMAIN
// entry is derived for the last name of the chain from the authority
// section. Storing an answer or NODATA for a name removes a cached NXDOMAIN
// for it.
func (c *Cache) Put(m *dns.Msg) bool {
	_, _, ok := c.put(m, dnssec.Unchecked, nil, 0, false)
	return ok
}

// BogusTTL caps how long a Bogus or Indeterminate entry is kept, as
// Unbound's val-bogus-ttl does: long enough to spare the servers a storm of
// retries, short enough for a repaired zone to validate soon.
const BogusTTL = 60 * time.Second

// PutValidated is Put for a response the validator has judged: the entry
// keeps sec and why, and its TTL is capped by maxTTL when that is positive
// (the signatures' remaining validity, RFC 4035 §5.3.3) and by BogusTTL
// for Bogus and Indeterminate entries.
func (c *Cache) PutValidated(m *dns.Msg, sec dnssec.SecStatus, why error, maxTTL time.Duration) bool {
	_, _, ok := c.putValidated(m, sec, why, maxTTL, false)
	return ok
}

// PutValidatedWithRRset is PutValidated, and then PutRRset at rank of the
// answer's first n records, an RRset, when they are the records of
// set (the same count, owners and types): the two entries then share
// one copy of the RRset's records, and one allocation. Otherwise the
// RRset is stored from set, as PutRRset stores it.
func (c *Cache) PutValidatedWithRRset(m *dns.Msg, sec dnssec.SecStatus, why error, maxTTL time.Duration, set []dns.RR, rank Rank) {
	answer, spare, _ := c.putValidated(m, sec, why, maxTTL, len(set) > 0)
	if n := len(set); n > 0 && len(answer) >= n && sameHeaders(answer[:n], set) {
		// The answer's copies: lower-cased, and never modified once
		// stored. A stored answer came with its spare entry.
		if owner, typ, ok := rrsetKey(answer[:n]); ok && c.budget > 0 {
			c.storeRRset(spare, owner, typ, answer[:n:n], rank)
		}
		return
	}
	c.PutRRset(set, rank)
}

// sameHeaders reports whether a and b hold records of the same owners
// (without case) and types, in order.
func sameHeaders(a, b []dns.RR) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		ha, hb := a[i].Header(), b[i].Header()
		if ha.Rrtype != hb.Rrtype || ha.Class != hb.Class || !strings.EqualFold(ha.Name, hb.Name) {
			return false
		}
	}
	return true
}

func (c *Cache) putValidated(m *dns.Msg, sec dnssec.SecStatus, why error, maxTTL time.Duration, pair bool) ([]dns.RR, *cacheEntry, bool) {
	if sec == dnssec.Bogus || sec == dnssec.Indeterminate {
		if maxTTL <= 0 || maxTTL > BogusTTL {
			maxTTL = BogusTTL
		}
	}
	return c.put(m, sec, why, maxTTL, pair)
}

// put stores m and returns the stored copy of its answer section, which
// the caller must not modify. With pair, the entry is made with a spare
// one in the same allocation, returned for the answer's RRset
// (PutValidatedWithRRset).
func (c *Cache) put(m *dns.Msg, sec dnssec.SecStatus, why error, maxTTL time.Duration, pair bool) (answer []dns.RR, spare *cacheEntry, ok bool) {
	if m == nil || len(m.Question) != 1 || m.Truncated || c.budget <= 0 {
		return nil, nil, false
	}
	if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
		return nil, nil, false
	}
	q := m.Question[0]
	if q.Qclass != dns.ClassINET || !cacheableType(q.Qtype) {
		return nil, nil, false
	}
	name := cacheName(q.Name)

	n := countCacheable(m.Answer) + countCacheable(m.Ns) + countCacheable(m.Extra)
	var e *cacheEntry
	var rrs []dns.RR
	if pair {
		e, spare, rrs = newEntryPair(n)
	} else {
		e, rrs = newEntry(n)
	}
	rrs = appendCacheable(rrs, m.Answer)
	nAns := len(rrs)
	rrs = appendCacheable(rrs, m.Ns)
	nNs := len(rrs) - nAns
	rrs = appendCacheable(rrs, m.Extra)
	if len(rrs) > 0xffff {
		return nil, nil, false
	}
	answer, ns := rrs[:nAns], rrs[nAns:nAns+nNs]

	kind, end, ok := classifyResponse(name, q.Qtype, m.Rcode, answer, ns)
	if !ok {
		return nil, nil, false
	}
	ttl, ok := c.ttlOf(rrs, kind != MsgAnswer)
	if !ok {
		return nil, nil, false
	}
	if maxTTL > 0 && ttl > maxTTL {
		ttl = maxTTL.Truncate(time.Second)
		if ttl <= 0 {
			return nil, nil, false
		}
	}
	now := c.now().UnixNano()
	*e = cacheEntry{
		key:     cacheKey{name: name, qtype: q.Qtype, kind: kindMsg},
		expire:  now + int64(ttl),
		origTTL: uint32(ttl / time.Second),
		rrs:     rrs,
		nAns:    uint16(nAns),
		nNs:     uint16(nNs),
		mkind:   kind,
		sec:     sec,
		why:     newReason(why),
	}
	if kind == MsgNXDomain && nAns == 0 {
		e.key = cacheKey{name: name, kind: kindNX}
	}
	if !c.sizeEntry(e, e.key.name, rrs) {
		return nil, nil, false
	}
	if sec == dnssec.Secure && kind != MsgAnswer {
		c.denials.add(ns, e.expire, now) // aggressive.go
	}
	sh := c.shardFor(name)
	sh.mu.Lock()
	if kind != MsgNXDomain {
		if old, ok := sh.m[cacheKey{name: name, kind: kindNX}]; ok {
			sh.remove(old)
		}
	}
	c.insert(sh, e, now)
	sh.mu.Unlock()
	c.afterNational()

	if kind == MsgNXDomain && nAns > 0 && end != name && sec == dnssec.Unchecked {
		c.putDerivedNX(end, rrs[nAns:nAns+nNs], now)
	}
	return answer, spare, true
}

// putDerivedNX stores a name-only NXDOMAIN entry for the name at the end of a
// CNAME chain, from the authority section of the chained response.
func (c *Cache) putDerivedNX(name string, ns []dns.RR, now int64) {
	if !hasZoneSOA(name, ns) {
		return
	}
	ttl, ok := c.ttlOf(ns, true)
	if !ok {
		return
	}
	rrs := slices.Clone(ns) // the records are shared with the chained entry, and both are read-only
	e := &cacheEntry{
		key:    cacheKey{name: name, kind: kindNX},
		expire: now + int64(ttl),
		rrs:    rrs,
		nNs:    uint16(len(rrs)),
		mkind:  MsgNXDomain,
	}
	if !c.sizeEntry(e, name, rrs) {
		return
	}
	sh := c.shardFor(name)
	sh.mu.Lock()
	c.insert(sh, e, now)
	sh.mu.Unlock()
}

// Get returns the fresh message entry answering (name, qtype, IN): the entry
// for that type, or else an NXDOMAIN entry for the name. Expired entries are
// left to GetStale.
func (c *Cache) Get(name string, qtype uint16) (Message, bool) {
	m, ok, _ := c.getMsg(name, qtype, false)
	return m, ok
}

// GetStale is Get for serve-stale (RFC 8767): it returns a fresh entry if
// there is one, else an entry that expired less than StaleWindow ago (or
// national infrastructure, whatever its age), with Stale set and every TTL
// zero. A miss is not counted, since the Get before
// it was.
func (c *Cache) GetStale(name string, qtype uint16) (Message, bool) {
	m, ok, _ := c.getMsg(name, qtype, true)
	return m, ok
}

// getMsg is Get, or with allowStale GetStale; seen reports whether the
// name held an entry for qtype or an NXDOMAIN, fresh or within its stale
// window, whichever was returned.
func (c *Cache) getMsg(name string, qtype uint16, allowStale bool) (_ Message, ok, seen bool) {
	name = cacheName(name)
	sh := c.shardFor(name)
	now := c.now().UnixNano()
	typed := cacheKey{name: name, qtype: qtype, kind: kindMsg}
	nx := cacheKey{name: name, kind: kindNX}

	sh.mu.Lock()
	var found, stale *cacheEntry
	for _, k := range [...]cacheKey{typed, nx} {
		e, ok := sh.m[k]
		if !ok {
			continue
		}
		if now < e.expire {
			found = e
			break
		}
		if now < e.expire+c.staleWindow || e.protected {
			if stale == nil {
				stale = e
			}
			continue
		}
		sh.remove(e)
		sh.expired++
	}
	isStale := false
	if found == nil && allowStale && stale != nil {
		found, isStale = stale, true
	}
	switch {
	case found == nil:
		if !allowStale {
			sh.misses++
		}
	case isStale:
		sh.staleHits++
	default:
		sh.hits++
	}
	if found != nil {
		sh.touch(found)
	}
	sh.mu.Unlock()

	if found == nil {
		return Message{}, false, stale != nil
	}
	ttl := ttlLeft(found.expire, now)
	out := copyWithTTL(found.rrs, ttl)
	a, n := int(found.nAns), int(found.nAns)+int(found.nNs)
	msg := Message{
		Kind:   found.mkind,
		Rcode:  found.rcode(),
		Answer: out[:a:a],
		Ns:     out[a:n:n],
		Extra:  out[n:],
		TTL:    ttl,
		Stale:  isStale,
		Sec:    found.sec,
		Why:    found.why.error(),
	}
	msg.OrigTTL = found.origTTL
	return msg, true, true
}

// NXAbove returns a fresh, validated (Secure) NXDOMAIN entry for a name
// strictly above name and below the root, the closest one: nothing exists
// below a name that does not exist (RFC 8020), so it answers for name too.
func (c *Cache) NXAbove(name string) (Message, bool) {
	name = cacheName(name)
	now := c.now().UnixNano()
	for off, end := dns.NextLabel(name, 0); !end; off, end = dns.NextLabel(name, off) {
		anc := name[off:]
		sh := c.shardFor(anc)
		sh.mu.Lock()
		e, ok := sh.m[cacheKey{name: anc, kind: kindNX}]
		if ok && now < e.expire && e.sec == dnssec.Secure {
			sh.touch(e)
			ttl := ttlLeft(e.expire, now)
			out := copyWithTTL(e.rrs, ttl)
			sh.mu.Unlock()
			a, n := int(e.nAns), int(e.nAns)+int(e.nNs)
			return Message{Kind: MsgNXDomain, Rcode: dns.RcodeNameError, Answer: out[:a:a], Ns: out[a:n:n], Extra: out[n:],
				TTL: ttl, Sec: e.sec, OrigTTL: e.origTTL}, true
		}
		sh.mu.Unlock()
	}
	return Message{}, false
}

// PutRRset stores one RRset, with the RRSIGs that cover it if any, and
// reports whether it was stored. All records must share owner name, type
// (RRSIGs by the type they cover) and class IN. The TTL rules are Put's.
//
// Against a fresh cached RRset of the same name and type, a lower rank is
// refused; an equal or higher rank replaces it, except that a replacement of
// an NS RRset, or of name-server addresses (A or AAAA) at glue rank or
// below, keeps the cached expiry when its own is later. That is the defence
// against "ghost domain names" (Jiang et al., NDSS 2012): a delegation
// removed by its parent must not be kept alive by the child's servers
// refreshing its TTL. Unbound applies it to replacements of equal trust
// (services/cache/rrset.c, need_to_update_rrset); here it holds at any rank,
// so only a new referral from the parent, once the cached delegation
// expires, can bring a fresh TTL. An expired cached RRset is always
// replaced.
func (c *Cache) PutRRset(rrs []dns.RR, rank Rank) bool {
	owner, typ, ok := rrsetKey(rrs)
	if !ok || c.budget <= 0 {
		return false
	}
	e, stored := newEntry(len(rrs))
	return c.storeRRset(e, owner, typ, appendCacheable(stored, rrs), rank)
}

// rrsetKey returns the owner (lower-cased) and type of rrs, an RRset the
// cache may hold: class IN, one owner and one type (RRSIGs by the type
// they cover), at least one data record, of a cacheable type.
func rrsetKey(rrs []dns.RR) (owner string, typ uint16, ok bool) {
	if len(rrs) == 0 || len(rrs) > 0xffff {
		return "", 0, false
	}
	data := false
	for _, rr := range rrs {
		h := rr.Header()
		if h.Class != dns.ClassINET || !cacheableType(h.Rrtype) {
			return "", 0, false
		}
		name := cacheName(h.Name)
		t := h.Rrtype
		if sig, ok := rr.(*dns.RRSIG); ok {
			t = sig.TypeCovered
		} else {
			data = true
		}
		if owner == "" {
			owner, typ = name, t
		} else if name != owner || t != typ {
			return "", 0, false
		}
	}
	return owner, typ, data && cacheableType(typ)
}

// storeRRset stores the RRset of (owner, typ), the cache's own copy, in
// e, a new entry.
func (c *Cache) storeRRset(e *cacheEntry, owner string, typ uint16, stored []dns.RR, rank Rank) bool {
	ttl, ok := c.ttlOf(stored, false)
	if !ok {
		return false
	}
	now := c.now().UnixNano()
	*e = cacheEntry{
		key:    cacheKey{name: owner, qtype: typ, kind: kindRRset},
		expire: now + int64(ttl),
		rrs:    stored,
		nAns:   uint16(len(stored)),
		rank:   rank,
	}
	if !c.sizeEntry(e, owner, stored) {
		return false
	}
	sh := c.shardFor(owner)
	sh.mu.Lock()
	if old, ok := sh.m[e.key]; ok && now < old.expire {
		if rank < old.rank {
			sh.mu.Unlock()
			return false
		}
		if ghostRule(typ, rank) && e.expire > old.expire {
			e.expire = old.expire
		}
	}
	c.insert(sh, e, now)
	sh.mu.Unlock()
	c.afterNational()
	return true
}

// ghostRule reports whether an RRset of type typ stored at rank may not
// extend the TTL of the fresh RRset it replaces (the ghost-domain rule).
func ghostRule(typ uint16, rank Rank) bool {
	switch typ {
	case dns.TypeNS:
		return true
	case dns.TypeA, dns.TypeAAAA:
		return rank <= RankGlue
	}
	return false
}

// GetRRset returns the fresh cached RRset of (name, qtype, IN), with its
// RRSIGs if any, and its rank. The records are copies that belong to the
// caller, with their TTLs set to the time left.
func (c *Cache) GetRRset(name string, qtype uint16) ([]dns.RR, Rank, bool) {
	rrs, rank, _, ok := c.getRRset(name, qtype, false)
	return rrs, rank, ok
}

// GetRRsetStale is GetRRset for serve-stale: it also returns an RRset that
// expired less than StaleWindow ago (or national infrastructure, whatever
// its age), with stale set and TTLs zero.
func (c *Cache) GetRRsetStale(name string, qtype uint16) (rrs []dns.RR, rank Rank, stale, ok bool) {
	return c.getRRset(name, qtype, true)
}

func (c *Cache) getRRset(name string, qtype uint16, allowStale bool) ([]dns.RR, Rank, bool, bool) {
	name = cacheName(name)
	sh := c.shardFor(name)
	now := c.now().UnixNano()
	sh.mu.Lock()
	e, ok := sh.m[cacheKey{name: name, qtype: qtype, kind: kindRRset}]
	stale := false
	if ok {
		switch {
		case now < e.expire:
		case now < e.expire+c.staleWindow || e.protected:
			stale = true
			ok = allowStale
		default:
			sh.remove(e)
			sh.expired++
			ok = false
		}
	}
	if !ok {
		sh.rrsetMisses++
		sh.mu.Unlock()
		return nil, RankNone, false, false
	}
	sh.rrsetHits++
	sh.touch(e)
	sh.mu.Unlock()
	return copyWithTTL(e.rrs, ttlLeft(e.expire, now)), e.rank, stale, true
}

// Stats returns the counters, summed over the shards.
func (c *Cache) Stats() CacheStats {
	var s CacheStats
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		s.Hits += sh.hits
		s.Misses += sh.misses
		s.StaleHits += sh.staleHits
		s.RRsetHits += sh.rrsetHits
		s.RRsetMisses += sh.rrsetMisses
		s.Evictions += sh.evictions
		s.Expired += sh.expired
		s.Entries += int64(len(sh.m))
		s.Bytes += sh.bytes + sh.natBytes
		sh.mu.Unlock()
	}
	if c.nat != nil {
		s.National = c.nat.total.Load()
	}
	return s
}

// Flush removes every entry. The counters other than Entries and Bytes are
// kept.
func (c *Cache) Flush() {
	defer c.epoch.Add(1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		kept := int64(0)
		for e := sh.nat.next; e != &sh.nat; e = e.next {
			kept++
		}
		clear(sh.m)
		sh.lru.next, sh.lru.prev = &sh.lru, &sh.lru
		sh.nat.next, sh.nat.prev = &sh.nat, &sh.nat
		sh.bytes, sh.natBytes = 0, 0
		sh.changedAll()
		sh.mu.Unlock()
		if c.nat != nil && kept > 0 {
			c.nat.total.Add(-kept)
		}
	}
	if c.nat != nil {
		c.nat.forgetTargets()
	}
	c.denials.flush()
}

// FlushFailed removes the answers that failed validation (bogus or
// indeterminate), which other trust anchors may judge otherwise, and
// returns how many it removed.
func (c *Cache) FlushFailed() int {
	defer c.epoch.Add(1)
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for _, e := range sh.m {
			if e.sec == dnssec.Bogus || e.sec == dnssec.Indeterminate {
				sh.remove(e)
				n++
			}
		}
		sh.mu.Unlock()
	}
	c.afterNational()
	return n
}

// FlushName removes every entry, of any kind, whose owner name is name or a
// name below it, and returns how many it removed.
func (c *Cache) FlushName(name string) int {
	defer c.epoch.Add(1)
	name = cacheName(name)
	c.denials.flushName(name)
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			if atOrBelow(k.name, name) {
				sh.remove(e)
				n++
			}
		}
		sh.mu.Unlock()
	}
	c.afterNational()
	return n
}

// Dump writes every entry that can still be served, in presentation format
// with remaining TTLs, sorted by owner name in canonical order (RFC 4034
// §6.1), then messages before RRsets, then by type. Each entry starts with
// a comment line saying what it is; entries in their stale window are marked
// stale and shown with TTL 0, national infrastructure (kept past it) is
// marked national.
func (c *Cache) Dump(w io.Writer) error {
	all, national, now := c.dumpEntries()
	bw := bufio.NewWriter(w)
	for _, e := range all {
		ttl := ttlLeft(e.expire, now)
		state := fmt.Sprintf("ttl=%d", ttl)
		if now >= e.expire {
			state = fmt.Sprintf("stale expired=%ds", (now-e.expire)/int64(time.Second))
		}
		if national[e] {
			state += " national"
		}
		switch e.key.kind {
		case kindRRset:
			fmt.Fprintf(bw, "; rrset %s %s rank=%s %s\n", e.key.name, dns.Type(e.key.qtype), e.rank, state)
		case kindNX:
			fmt.Fprintf(bw, "; msg %s * %s %s %s%s\n", e.key.name, e.mkind, dns.RcodeToString[e.rcode()], state, secNote(e.sec))
		default:
			fmt.Fprintf(bw, "; msg %s %s %s %s %s%s\n", e.key.name, dns.Type(e.key.qtype), e.mkind, dns.RcodeToString[e.rcode()], state, secNote(e.sec))
		}
		answer, ns, extra := e.sections()
		if e.key.kind == kindRRset {
			dumpRRs(bw, "", answer, ttl)
			continue
		}
		dumpRRs(bw, ";; answer", answer, ttl)
		dumpRRs(bw, ";; authority", ns, ttl)
		dumpRRs(bw, ";; additional", extra, ttl)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("cache dump: %w", err)
	}
	return nil
}

// DumpEntry is one entry of the cache as DumpJSON writes it.
type DumpEntry struct {
	// Kind is "rrset" (an RRset kept for iteration and validation) or
	// "message" (a whole answer to a question).
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Type is the type of the RRset or of the question; "*" for an
	// NXDOMAIN, which answers every type.
	Type string `json:"type"`
	// Result (answer, nodata, nxdomain) and Rcode are a message's.
	Result string `json:"result,omitempty"`
	Rcode  string `json:"rcode,omitempty"`
	// Rank is an RRset's trust (as in the text dump's rank=).
	Rank string `json:"rank,omitempty"`
	// DNSSEC is the validation status (secure, insecure, bogus,
	// indeterminate); empty when the entry was not validated.
	DNSSEC string `json:"dnssec,omitempty"`
	// TTL is the seconds left; 0 for an entry in its stale window, which
	// expired ExpiredSeconds ago.
	TTL            uint32 `json:"ttl"`
	Stale          bool   `json:"stale"`
	ExpiredSeconds int64  `json:"expired_seconds,omitempty"`
	// National is set for national infrastructure, kept past its stale
	// window.
	National bool `json:"national"`
	// Records are an RRset's records; Answer, Authority and Additional a
	// message's sections. Each record is in presentation format with the
	// TTL left.
	Records    []string `json:"records,omitempty"`
	Answer     []string `json:"answer,omitempty"`
	Authority  []string `json:"authority,omitempty"`
	Additional []string `json:"additional,omitempty"`
}

// DumpJSON writes the entries Dump writes, in the same order, as JSON
// Lines: one DumpEntry object per line, so that a large cache is written
// (and read) an entry at a time.
func (c *Cache) DumpJSON(w io.Writer) error {
	all, national, now := c.dumpEntries()
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, e := range all {
		ttl := ttlLeft(e.expire, now)
		d := DumpEntry{Kind: "message", Name: e.key.name, Type: dns.Type(e.key.qtype).String(), TTL: ttl, National: national[e]}
		if now >= e.expire {
			d.Stale, d.ExpiredSeconds = true, (now-e.expire)/int64(time.Second)
		}
		if e.sec != dnssec.Unchecked {
			d.DNSSEC = e.sec.String()
		}
		answer, ns, extra := e.sections()
		switch e.key.kind {
		case kindRRset:
			d.Kind, d.Rank = "rrset", e.rank.String()
			d.Records = rrStrings(answer, ttl)
		default:
			if e.key.kind == kindNX {
				d.Type = "*"
			}
			d.Result, d.Rcode = e.mkind.String(), dns.RcodeToString[e.rcode()]
			d.Answer, d.Authority, d.Additional = rrStrings(answer, ttl), rrStrings(ns, ttl), rrStrings(extra, ttl)
		}
		if err := enc.Encode(d); err != nil {
			return fmt.Errorf("cache dump: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("cache dump: %w", err)
	}
	return nil
}

// dumpEntries returns the entries a dump shows, sorted, with the national
// ones marked, and the time it was taken at (Unix nanoseconds).
func (c *Cache) dumpEntries() (all []*cacheEntry, national map[*cacheEntry]bool, now int64) {
	now = c.now().UnixNano()
	national = map[*cacheEntry]bool{} // read under the lock: regroup moves entries
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for _, e := range sh.m {
			if now < e.expire+c.staleWindow || e.protected {
				all = append(all, e)
			}
			if e.protected {
				national[e] = true
			}
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(all, func(a, b *cacheEntry) int {
		if r := compareCanonical(a.key.name, b.key.name); r != 0 {
			return r
		}
		if r := cmp.Compare(dumpOrder(a.key.kind), dumpOrder(b.key.kind)); r != 0 {
			return r
		}
		return cmp.Compare(a.key.qtype, b.key.qtype)
	})
	return all, national, now
}

// rrStrings is rrs in presentation format with TTL ttl; nil when empty.
func rrStrings(rrs []dns.RR, ttl uint32) []string {
	var out []string
	for _, rr := range copyWithTTL(rrs, ttl) {
		out = append(out, rr.String())
	}
	return out
}

// secNote is the DNSSEC status in a dump line, empty when not validated.
func secNote(s dnssec.SecStatus) string {
	if s == dnssec.Unchecked {
		return ""
	}
	return " " + s.String()
}

// dumpOrder puts messages (NXDOMAIN included) before RRsets in a dump.
func dumpOrder(k cacheEntryKind) int {
	if k == kindRRset {
		return 1
	}
	return 0
}

func dumpRRs(w *bufio.Writer, title string, rrs []dns.RR, ttl uint32) {
	if len(rrs) == 0 {
		return
	}
	if title != "" {
		w.WriteString(title + "\n")
	}
	for _, rr := range copyWithTTL(rrs, ttl) {
		w.WriteString(rr.String() + "\n")
	}
}

// insert adds e to sh, replacing an entry of the same key, then evicts from
// the LRU end until the shard is within its budget. Entries past their stale
// window are dropped first as they are met. National infrastructure goes to
// the shard's national ring instead, outside the budget (national.go); the
// caller calls afterNational once it has released sh.mu. Called with sh.mu
// held.
func (c *Cache) insert(sh *cacheShard, e *cacheEntry, now int64) {
	old, had := sh.m[e.key]
	if had {
		sh.remove(old)
	}
	sh.m[e.key] = e
	c.storedSlot(e.key.name).Add(1)
	sh.changed(e.key, e)
	if c.nat != nil && c.nat.keep(e, old) {
		sh.pushNational(e)
		return
	}
	sh.pushFront(e)
	sh.bytes += int64(e.size)
	c.evict(sh, e, now)
}

// evict removes entries from the LRU end of sh until it is within its
// budget, sparing keep. Called with sh.mu held.
func (c *Cache) evict(sh *cacheShard, keep *cacheEntry, now int64) {
	for sh.bytes > c.budget {
		victim := sh.lru.prev
		if victim == keep || victim == &sh.lru {
			break // cannot happen: keep.size <= budget
		}
		sh.remove(victim)
		if now >= victim.expire+c.staleWindow {
			sh.expired++
		} else {
			sh.evictions++
		}
	}
}

func (sh *cacheShard) pushFront(e *cacheEntry) {
	e.prev = &sh.lru
	e.next = sh.lru.next
	e.next.prev = e
	sh.lru.next = e
}

// touch marks e as the most recently used entry of its shard. National
// infrastructure is not in the LRU: it stays where it is.
func (sh *cacheShard) touch(e *cacheEntry) {
	if sh.lru.next == e || e.protected {
		return
	}
	e.prev.next = e.next
	e.next.prev = e.prev
	sh.pushFront(e)
}

// remove unlinks e and deletes it from the map. Readers that copied e's
// pointer before may still read its records, which are never modified.
func (sh *cacheShard) remove(e *cacheEntry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
	delete(sh.m, e.key)
	sh.changed(e.key, nil)
	if e.protected {
		sh.natBytes -= int64(e.size)
		sh.natSet.dropped(e)
		return
	}
	sh.bytes -= int64(e.size)
}

// storedSlots is how many counts of stored entries the cache keeps, each
// for the names that hash to it (Miss): at 45,000 entries stored a
// second, a count moves about every 90 ms.
const storedSlots = 4096

// storedSlot returns the count of entries stored under names that hash as
// name does (name as cacheName makes it).
func (c *Cache) storedSlot(name string) *atomic.Uint32 {
	return &c.stored[(shardHash(name)>>8)%storedSlots]
}

// storedAt returns the count of entries stored under names that hash as
// name does: it moves whenever an entry that name's lookups could find is
// stored.
func (c *Cache) storedAt(name string) uint32 {
	return c.storedSlot(name).Load()
}

func (c *Cache) shardFor(name string) *cacheShard {
	return &c.shards[shardHash(name)%cacheShards]
}

// shardHash is the FNV-1a hash of name.
func shardHash(name string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	return h
}

// ttlOf returns the TTL of an entry holding rrs: the smallest record TTL,
// clamped. For a negative entry, the SOA counts as min(TTL, MINIMUM) and the
// result is capped by MaxNegativeTTL. ok is false when the TTL is zero.
func (c *Cache) ttlOf(rrs []dns.RR, negative bool) (time.Duration, bool) {
	least := uint32(1<<31 - 1)
	for _, rr := range rrs {
		t := rr.Header().Ttl
		if soa, ok := rr.(*dns.SOA); ok && negative {
			t = min(t, soa.Minttl)
		}
		if t > 1<<31-1 {
			t = 0 // RFC 2181 §8
		}
		least = min(least, t)
	}
	ttl := time.Duration(least) * time.Second
	ttl = min(max(ttl, c.minTTL), c.maxTTL)
	if negative {
		ttl = min(ttl, c.maxNeg)
	}
	return ttl, ttl > 0
}

// classifyResponse decides what a response to (name, qtype) says, per RFC 2308: it
// follows the CNAME chain from name through answer and looks at what the
// chain ends in. end is the last name of the chain.
func classifyResponse(name string, qtype uint16, rcode int, answer, ns []dns.RR) (kind MsgKind, end string, ok bool) {
	end = name
	if qtype != dns.TypeCNAME {
	chain:
		for range maxCacheChain {
			for _, rr := range answer {
				if cn, isCNAME := rr.(*dns.CNAME); isCNAME && rr.Header().Name == end {
					end = cacheName(cn.Target)
					continue chain
				}
			}
			break
		}
	}
	if rcode == dns.RcodeNameError {
		return MsgNXDomain, end, hasZoneSOA(end, ns)
	}
	for _, rr := range answer {
		h := rr.Header()
		if h.Rrtype == qtype && h.Name == end {
			return MsgAnswer, end, true
		}
	}
	return MsgNoData, end, hasZoneSOA(end, ns)
}

// hasZoneSOA reports whether ns holds a SOA owned by name or one of its
// ancestors: the SOA of the zone that denies name.
func hasZoneSOA(name string, ns []dns.RR) bool {
	for _, rr := range ns {
		if _, ok := rr.(*dns.SOA); ok && atOrBelow(name, rr.Header().Name) {
			return true
		}
	}
	return false
}

// cacheableType reports whether records or questions of type t may be
// cached: not meta types (OPT, TKEY, TSIG, IXFR, AXFR, MAILB, MAILA, ANY).
func cacheableType(t uint16) bool {
	switch t {
	case dns.TypeNone, dns.TypeOPT, dns.TypeTKEY, dns.TypeTSIG, dns.TypeIXFR,
		dns.TypeAXFR, dns.TypeMAILB, dns.TypeMAILA, dns.TypeANY:
		return false
	}
	return true
}

// cacheable reports whether the cache may hold rr: class IN, not a meta
// type.
func cacheable(rr dns.RR) bool {
	h := rr.Header()
	return h.Class == dns.ClassINET && cacheableType(h.Rrtype)
}

// countCacheable returns how many records of rrs the cache may hold.
func countCacheable(rrs []dns.RR) int {
	n := 0
	for _, rr := range rrs {
		if cacheable(rr) {
			n++
		}
	}
	return n
}

// appendCacheable appends to dst a copy of each record of src that may be
// cached (class IN, not a meta type), with its owner name lower-cased.
func appendCacheable(dst, src []dns.RR) []dns.RR {
	for _, rr := range src {
		if !cacheable(rr) {
			continue
		}
		cp := copyRR(rr)
		cp.Header().Name = cacheName(rr.Header().Name)
		dst = append(dst, cp)
	}
	return dst
}

// The collector marks every object the cache holds each time it runs, and
// on one CPU the answers wait meanwhile: a cache of 100,000 names was some
// 640,000 objects, and its marking held a stream of misses up for tens of
// milliseconds. An entry and its first records' slots are therefore one
// object (newEntry), an answer's entry and its RRset's another
// (newEntryPair), and an address record and its address a third (copyRR):
// a name's answer and RRset are 2 objects where there were 5.
type (
	entryBox1 struct {
		e  cacheEntry
		rr [1]dns.RR
	}
	entryBox2 struct {
		e  cacheEntry
		rr [2]dns.RR
	}
	entryBox4 struct {
		e  cacheEntry
		rr [4]dns.RR
	}
	pairBox0 struct{ e, spare cacheEntry }
	pairBox1 struct {
		e, spare cacheEntry
		rr       [1]dns.RR
	}
	pairBox2 struct {
		e, spare cacheEntry
		rr       [2]dns.RR
	}
	pairBox4 struct {
		e, spare cacheEntry
		rr       [4]dns.RR
	}
	aBox struct {
		rr   dns.A
		addr [net.IPv4len]byte
	}
	aaaaBox struct {
		rr   dns.AAAA
		addr [net.IPv6len]byte
	}
)

// newEntry returns a new entry and an empty slice with room for n
// records, which the entry holds in the same allocation when n is at most
// 4.
func newEntry(n int) (*cacheEntry, []dns.RR) {
	switch {
	case n <= 1:
		b := new(entryBox1)
		return &b.e, b.rr[:0]
	case n == 2:
		b := new(entryBox2)
		return &b.e, b.rr[:0]
	case n <= 4:
		b := new(entryBox4)
		return &b.e, b.rr[:0:n]
	}
	return new(cacheEntry), make([]dns.RR, 0, n)
}

// newEntryPair is newEntry with a spare entry in the same allocation, for
// the RRset that shares the answer's records (PutValidatedWithRRset). The
// allocation lives while either entry, or the records' slots, do: an
// entry evicted or replaced while the other stays, or a spare never
// stored (the answer's RRset was not stored: a fresher one of higher rank
// was held, or the answer's records were not the RRset's), costs its 96
// bytes until the other goes.
func newEntryPair(n int) (e, spare *cacheEntry, rrs []dns.RR) {
	switch {
	case n <= 1:
		b := new(pairBox1)
		return &b.e, &b.spare, b.rr[:0]
	case n == 2:
		b := new(pairBox2)
		return &b.e, &b.spare, b.rr[:0]
	case n <= 4:
		b := new(pairBox4)
		return &b.e, &b.spare, b.rr[:0:n]
	}
	b := new(pairBox0)
	return &b.e, &b.spare, make([]dns.RR, 0, n)
}

// copyRR returns a deep copy of rr, as dns.Copy does; an A or AAAA
// record is one allocation with its address.
func copyRR(rr dns.RR) dns.RR {
	switch r := rr.(type) {
	case *dns.A:
		if len(r.A) == net.IPv4len {
			b := &aBox{rr: *r}
			copy(b.addr[:], r.A)
			b.rr.A = b.addr[:]
			return &b.rr
		}
	case *dns.AAAA:
		if len(r.AAAA) == net.IPv6len {
			b := &aaaaBox{rr: *r}
			copy(b.addr[:], r.AAAA)
			b.rr.AAAA = b.addr[:]
			return &b.rr
		}
	}
	return dns.Copy(rr)
}

// copyWithTTL returns copies of rrs, each with its TTL set to ttl.
func copyWithTTL(rrs []dns.RR, ttl uint32) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		cp := copyRR(rr)
		cp.Header().Ttl = ttl
		out[i] = cp
	}
	return out
}

// ttlLeft returns the whole seconds left until expire, or 0 once it has
// passed.
func ttlLeft(expire, now int64) uint32 {
	if now >= expire {
		return 0
	}
	return uint32((expire - now) / int64(time.Second))
}

func entrySize(name string, rrs []dns.RR) int64 {
	n := int64(entryOverhead + len(name))
	for _, rr := range rrs {
		n += int64(dns.Len(rr) + rrOverhead)
	}
	return n
}

// sizeEntry sets e's size estimate for a name and records, and reports
// whether the entry fits in a shard's budget.
func (c *Cache) sizeEntry(e *cacheEntry, name string, rrs []dns.RR) bool {
	n := entrySize(name, rrs)
	if n > c.budget || n > math.MaxInt32 {
		return false
	}
	e.size = int32(n)
	return true
}

// cacheName returns name fully qualified with its ASCII letters
// lower-cased. A name with escapes is packed and unpacked first, so that
// "\065" and "a" give the same key.
func cacheName(name string) string {
	if strings.IndexByte(name, '\\') >= 0 {
		var buf [256]byte
		if n, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false); err == nil {
			asciiLowerBytes(buf[:n])
			if s, _, err := dns.UnpackDomainName(buf[:n], 0); err == nil {
				return s
			}
		}
	}
	return asciiLower(dns.Fqdn(name))
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			asciiLowerBytes(b[i:])
			return string(b)
		}
	}
	return s
}

// asciiLowerBytes lower-cases ASCII letters in place. On a wire-format name the
// length octets (at most 63) are never letters.
func asciiLowerBytes(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// atOrBelow reports whether child is ancestor or a name below it, as
// dns.IsSubDomain does for fully qualified names, without allocating:
// letters compared without case, a dot escaped inside a label no label
// boundary.
func atOrBelow(child, ancestor string) bool {
	if ancestor == "." || strings.EqualFold(child, ancestor) {
		return true
	}
	i := len(child) - len(ancestor) - 1 // where the dot before ancestor would be
	if i < 0 || child[i] != '.' || !strings.EqualFold(child[i+1:], ancestor) {
		return false
	}
	backslashes := 0
	for j := i - 1; j >= 0 && child[j] == '\\'; j-- {
		backslashes++
	}
	return backslashes%2 == 0
}

// compareCanonical orders canonical names as RFC 4034 §6.1 does, comparing
// labels from the root down; labels are compared in their presentation
// form, which matches the wire order except around escapes.
func compareCanonical(a, b string) int {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if r := strings.Compare(la[i], lb[j]); r != 0 {
			return r
		}
	}
	return cmp.Compare(len(la), len(lb))
}
