package resolver

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"hash/maphash"
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

// Size estimate of an entry, in bytes: what its slot costs (the slot, its
// bytes' slice header, its place in the index, and the room the three
// keep to grow into), entryOverhead, plus its bytes rounded up as the
// allocator rounds them (entrySize). Calibrated with BenchmarkCacheMemory
// (runtime.MemStats around 100k single-A entries: 139 bytes an entry, the
// estimate 162) and BenchmarkCacheChurnMemory (a cache kept full while
// several times its capacity of names pass through it, as a message and
// an RRset entry each, the slot tables and indexes grown past what they
// hold: 140 bytes, the estimate 162). The estimate errs high by a sixth,
// on the safe side of MaxBytes. (With a Go map for the index, an entry
// cost 160 and 167 bytes; as Go records, 251 and 285.)
const entryOverhead = 130

// The denial index (aggressive.go) keeps its records as Go records, and
// estimates them as the cache did before it held its entries in wire
// form: objectOverhead for the entry and its map slot, and for each record
// rrOverhead (its interface value, struct, header and rdata's Go headers)
// and its wire length.
const (
	objectOverhead = 184
	rrOverhead     = 72
)

// objectSize is the estimate of what name and rrs cost as Go records.
func objectSize(name string, rrs []dns.RR) int64 {
	n := int64(objectOverhead + len(name))
	for _, rr := range rrs {
		n += int64(dns.Len(rr) + rrOverhead)
	}
	return n
}

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
	seed        maphash.Seed               // of the shards' index hashes (nameHash)
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

// cacheShard holds the entries whose owner name hashes to it, in a table
// of slots (cacheslot.go). Every field is guarded by mu.
type cacheShard struct {
	mu    sync.Mutex
	t     slotTable
	bytes int64 // of the entries in the LRU ring, bounded by the budget
	// The national infrastructure entries are in a ring of their own
	// (natHead), kept apart from the LRU: never evicted, never expired
	// (national.go).
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

// cacheEntry is an entry as read out of its shard: its bytes (which hold
// its name: the key follows) and what its record, a dump or the national
// bookkeeping take from its slot, in 48 bytes with one pointer. The
// write-behind sets keep entries so (writebehind.go); they are the most
// the collector has to walk of what the cache keeps.
type cacheEntry struct {
	data      []byte
	expire    int64
	qtype     uint16
	nAns, nNs uint16
	kind      cacheEntryKind
	mkind     MsgKind
	rank      Rank
	sec       dnssec.SecStatus
	protected bool
	gone      bool // removed: the bytes only name it
}

// entry returns slot i as a cacheEntry.
func (sh *cacheShard) entry(i int32) cacheEntry {
	s := &sh.t.slots[i]
	return cacheEntry{data: sh.t.data[i], expire: s.expire, qtype: s.qtype, nAns: s.nAns, nNs: s.nNs,
		kind: s.kind, mkind: s.mkind, rank: s.rank, sec: s.sec, protected: s.protected}
}

// key returns e's key; its name shares e's bytes.
func (e *cacheEntry) key() cacheKey {
	return cacheKey{name: entryName(e.data), qtype: e.qtype, kind: e.kind}
}

// records returns e's records, each with TTL ttl.
func (e *cacheEntry) records(ttl uint32) []dns.RR {
	rrs, _ := decodeRecords(make([]dns.RR, 0, int(e.nAns)+int(e.nNs)+1), e.data, ttl)
	return rrs
}

// rcodeOf returns the response code of a message entry of kind k: only
// NOERROR and NXDOMAIN answers are stored (put), and the one is stored as
// MsgNXDomain.
func rcodeOf(k MsgKind) int {
	if k == MsgNXDomain {
		return dns.RcodeNameError
	}
	return dns.RcodeSuccess
}

// sections cuts an entry's records into its sections, of nAns and nNs
// records and the rest.
func sections(rrs []dns.RR, nAns, nNs uint16) (answer, ns, extra []dns.RR) {
	a, n := min(int(nAns), len(rrs)), min(int(nAns)+int(nNs), len(rrs))
	return rrs[:a:a], rrs[a:n:n], rrs[n:]
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
		seed:        maphash.MakeSeed(),
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
		c.shards[i].t.reset()
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
	_, _, ok := c.put(m, dnssec.Unchecked, nil, 0, c.now().UnixNano())
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
	_, _, ok := c.putValidated(m, sec, why, maxTTL, c.now().UnixNano())
	return ok
}

// PutValidatedWithRRset is PutValidated, and then PutRRset at rank of the
// answer's first n records, an RRset, when they are the records of
// set (the same count, owners and types): the two entries then share
// one copy of the RRset's records. Otherwise the RRset is stored from
// set, as PutRRset stores it.
func (c *Cache) PutValidatedWithRRset(m *dns.Msg, sec dnssec.SecStatus, why error, maxTTL time.Duration, set []dns.RR, rank Rank) {
	now := c.now().UnixNano() // one reading for both entries
	answer, data, _ := c.putValidated(m, sec, why, maxTTL, now)
	if n := len(set); n > 0 && data != nil && len(answer) >= n && sameHeaders(answer[:n], set) {
		owner, typ, ok := rrsetKey(answer[:n])
		if !ok {
			return
		}
		if end, ok := recordsEnd(data, n); ok && owner == entryName(data) {
			c.storeRRset(owner, typ, answer[:n:n], data[:end:end], rank, now)
			return
		}
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

func (c *Cache) putValidated(m *dns.Msg, sec dnssec.SecStatus, why error, maxTTL time.Duration, now int64) ([]dns.RR, []byte, bool) {
	if sec == dnssec.Bogus || sec == dnssec.Indeterminate {
		if maxTTL <= 0 || maxTTL > BogusTTL {
			maxTTL = BogusTTL
		}
	}
	return c.put(m, sec, why, maxTTL, now)
}

// put stores m, as of now (Unix nanoseconds), and returns the records of
// its answer section it stored (m's own, not copies) and the stored
// entry's bytes.
func (c *Cache) put(m *dns.Msg, sec dnssec.SecStatus, why error, maxTTL time.Duration, now int64) (answer []dns.RR, data []byte, ok bool) {
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

	rrs := appendCacheable(make([]dns.RR, 0, len(m.Answer)+len(m.Ns)+len(m.Extra)), m.Answer)
	nAns := len(rrs)
	rrs = appendCacheable(rrs, m.Ns)
	nNs := len(rrs) - nAns
	rrs = appendCacheable(rrs, m.Extra)
	if len(rrs) > 0xffff {
		return nil, nil, false
	}
	answer, ns := rrs[:nAns:nAns], rrs[nAns:nAns+nNs:nAns+nNs]

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
	data, ok = encodeEntry(name, rrs)
	if !ok {
		return nil, nil, false
	}
	s := slot{
		expire:  now + int64(ttl),
		origTTL: uint32(ttl / time.Second),
		nAns:    uint16(nAns),
		nNs:     uint16(nNs),
		mkind:   kind,
		sec:     sec,
	}
	k := cacheKey{name: name, qtype: q.Qtype, kind: kindMsg}
	if kind == MsgNXDomain && nAns == 0 {
		k = cacheKey{name: name, kind: kindNX}
	}
	if !c.sizeEntry(&s, data) {
		return nil, nil, false
	}
	if sec == dnssec.Secure && kind != MsgAnswer && c.denials.on.Load() {
		c.denials.add(canonicalCopies(ns), s.expire, now) // aggressive.go
	}
	nh := c.nameHash(name)
	sh := c.shardFor(name)
	sh.mu.Lock()
	if kind != MsgNXDomain {
		if old, ok := sh.t.find(nh, name, 0, kindNX); ok {
			sh.remove(old)
		}
	}
	c.insert(sh, k, nh, s, data, why, rrs, now)
	sh.mu.Unlock()
	c.afterNational()

	if kind == MsgNXDomain && nAns > 0 && end != name && sec == dnssec.Unchecked {
		c.putDerivedNX(end, ns, now)
	}
	return answer, data, true
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
	data, ok := encodeEntry(name, ns)
	if !ok {
		return
	}
	s := slot{expire: now + int64(ttl), nNs: uint16(len(ns)), mkind: MsgNXDomain}
	if !c.sizeEntry(&s, data) {
		return
	}
	nh := c.nameHash(name)
	sh := c.shardFor(name)
	sh.mu.Lock()
	c.insert(sh, cacheKey{name: name, kind: kindNX}, nh, s, data, nil, ns, now)
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
	nh := c.nameHash(name)
	now := c.now().UnixNano()

	sh.mu.Lock()
	found, stale := int32(noSlot), int32(noSlot)
	for _, k := range [...]struct {
		qtype uint16
		kind  cacheEntryKind
	}{{qtype, kindMsg}, {0, kindNX}} {
		i, ok := sh.t.find(nh, name, k.qtype, k.kind)
		if !ok {
			continue
		}
		s := &sh.t.slots[i]
		if now < s.expire {
			found = i
			break
		}
		if now < s.expire+c.staleWindow || s.protected {
			if stale == noSlot {
				stale = i
			}
			continue
		}
		sh.evictSlot(i)
		sh.expired++
	}
	isStale := false
	if found == noSlot && allowStale && stale != noSlot {
		found, isStale = stale, true
	}
	switch {
	case found == noSlot:
		if !allowStale {
			sh.misses++
		}
	case isStale:
		sh.staleHits++
	default:
		sh.hits++
	}
	if found == noSlot {
		sh.mu.Unlock()
		return Message{}, false, stale != noSlot
	}
	sh.touch(found)
	s, data, why := sh.t.slots[found], sh.t.data[found], sh.t.why(found)
	sh.mu.Unlock()

	ttl := ttlLeft(s.expire, now)
	out, err := decodeRecords(make([]dns.RR, 0, int(s.nAns)+int(s.nNs)+2), data, ttl)
	if err != nil {
		return Message{}, false, true // cannot happen: the cache encoded them
	}
	answer, ns, extra := sections(out, s.nAns, s.nNs)
	msg := Message{
		Kind:    s.mkind,
		Rcode:   rcodeOf(s.mkind),
		Answer:  answer,
		Ns:      ns,
		Extra:   extra,
		TTL:     ttl,
		Stale:   isStale,
		Sec:     s.sec,
		Why:     why,
		OrigTTL: s.origTTL,
	}
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
		nh := c.nameHash(anc)
		sh.mu.Lock()
		i, ok := sh.t.find(nh, anc, 0, kindNX)
		if !ok || now >= sh.t.slots[i].expire || sh.t.slots[i].sec != dnssec.Secure {
			sh.mu.Unlock()
			continue
		}
		sh.touch(i)
		s, data := sh.t.slots[i], sh.t.data[i]
		sh.mu.Unlock()
		ttl := ttlLeft(s.expire, now)
		out, err := decodeRecords(nil, data, ttl)
		if err != nil {
			continue
		}
		answer, ns, extra := sections(out, s.nAns, s.nNs)
		return Message{Kind: MsgNXDomain, Rcode: dns.RcodeNameError, Answer: answer, Ns: ns, Extra: extra,
			TTL: ttl, Sec: s.sec, OrigTTL: s.origTTL}, true
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
	data, ok := encodeEntry(owner, rrs)
	if !ok {
		return false
	}
	return c.storeRRset(owner, typ, rrs, data, rank, c.now().UnixNano())
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
		t := h.Rrtype
		if sig, ok := rr.(*dns.RRSIG); ok {
			t = sig.TypeCovered
		} else {
			data = true
		}
		if owner == "" {
			owner, typ = cacheName(h.Name), t
		} else if t != typ || !nameIs(h.Name, owner) {
			return "", 0, false
		}
	}
	return owner, typ, data && cacheableType(typ)
}

// storeRRset stores the RRset of (owner, typ), rrs, whose bytes are data,
// as of now (Unix nanoseconds).
func (c *Cache) storeRRset(owner string, typ uint16, rrs []dns.RR, data []byte, rank Rank, now int64) bool {
	ttl, ok := c.ttlOf(rrs, false)
	if !ok {
		return false
	}
	s := slot{expire: now + int64(ttl), nAns: uint16(len(rrs)), rank: rank}
	if !c.sizeEntry(&s, data) {
		return false
	}
	nh := c.nameHash(owner)
	sh := c.shardFor(owner)
	sh.mu.Lock()
	if i, ok := sh.t.find(nh, owner, typ, kindRRset); ok && now < sh.t.slots[i].expire {
		old := &sh.t.slots[i]
		if rank < old.rank {
			sh.mu.Unlock()
			return false
		}
		if ghostRule(typ, rank) && s.expire > old.expire {
			s.expire = old.expire
		}
	}
	c.insert(sh, cacheKey{name: owner, qtype: typ, kind: kindRRset}, nh, s, data, nil, rrs, now)
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
	nh := c.nameHash(name)
	now := c.now().UnixNano()
	sh.mu.Lock()
	i, ok := sh.t.find(nh, name, qtype, kindRRset)
	stale := false
	if ok {
		s := &sh.t.slots[i]
		switch {
		case now < s.expire:
		case now < s.expire+c.staleWindow || s.protected:
			stale = true
			ok = allowStale
		default:
			sh.evictSlot(i)
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
	sh.touch(i)
	s, data := sh.t.slots[i], sh.t.data[i]
	sh.mu.Unlock()
	out, err := decodeRecords(make([]dns.RR, 0, s.nAns), data, ttlLeft(s.expire, now))
	if err != nil {
		return nil, RankNone, false, false // cannot happen: the cache encoded them
	}
	return out, s.rank, stale, true
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
		s.Entries += int64(sh.t.n)
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
		for j := sh.t.slots[natHead].next; j != natHead; j = sh.t.slots[j].next {
			kept++
		}
		sh.t.reset()
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
		for j := range sh.t.inUse() {
			if s := &sh.t.slots[j]; s.sec == dnssec.Bogus || s.sec == dnssec.Indeterminate {
				sh.remove(j)
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
		for j := range sh.t.inUse() {
			if atOrBelow(entryName(sh.t.data[j]), name) {
				sh.remove(j)
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
	all, now := c.dumpEntries()
	bw := bufio.NewWriter(w)
	for _, e := range all {
		ttl := ttlLeft(e.expire, now)
		state := fmt.Sprintf("ttl=%d", ttl)
		if now >= e.expire {
			state = fmt.Sprintf("stale expired=%ds", (now-e.expire)/int64(time.Second))
		}
		if e.protected {
			state += " national"
		}
		name, rcode := entryName(e.data), dns.RcodeToString[rcodeOf(e.mkind)]
		switch e.kind {
		case kindRRset:
			fmt.Fprintf(bw, "; rrset %s %s rank=%s %s\n", name, dns.Type(e.qtype), e.rank, state)
		case kindNX:
			fmt.Fprintf(bw, "; msg %s * %s %s %s%s\n", name, e.mkind, rcode, state, secNote(e.sec))
		default:
			fmt.Fprintf(bw, "; msg %s %s %s %s %s%s\n", name, dns.Type(e.qtype), e.mkind, rcode, state, secNote(e.sec))
		}
		answer, ns, extra := sections(e.records(ttl), e.nAns, e.nNs)
		if e.kind == kindRRset {
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
	all, now := c.dumpEntries()
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, e := range all {
		ttl := ttlLeft(e.expire, now)
		d := DumpEntry{Kind: "message", Name: entryName(e.data), Type: dns.Type(e.qtype).String(), TTL: ttl, National: e.protected}
		if now >= e.expire {
			d.Stale, d.ExpiredSeconds = true, (now-e.expire)/int64(time.Second)
		}
		if e.sec != dnssec.Unchecked {
			d.DNSSEC = e.sec.String()
		}
		answer, ns, extra := sections(e.records(ttl), e.nAns, e.nNs)
		switch e.kind {
		case kindRRset:
			d.Kind, d.Rank = "rrset", e.rank.String()
			d.Records = rrStrings(answer)
		default:
			if e.kind == kindNX {
				d.Type = "*"
			}
			d.Result, d.Rcode = e.mkind.String(), dns.RcodeToString[rcodeOf(e.mkind)]
			d.Answer, d.Authority, d.Additional = rrStrings(answer), rrStrings(ns), rrStrings(extra)
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

// dumpEntries returns the entries a dump shows, sorted, and the time it
// was taken at (Unix nanoseconds).
func (c *Cache) dumpEntries() (all []cacheEntry, now int64) {
	now = c.now().UnixNano()
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for j := range sh.t.inUse() {
			if s := &sh.t.slots[j]; now < s.expire+c.staleWindow || s.protected {
				all = append(all, sh.entry(j))
			}
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(all, func(a, b cacheEntry) int {
		if r := compareCanonical(entryName(a.data), entryName(b.data)); r != 0 {
			return r
		}
		if r := cmp.Compare(dumpOrder(a.kind), dumpOrder(b.kind)); r != 0 {
			return r
		}
		return cmp.Compare(a.qtype, b.qtype)
	})
	return all, now
}

// rrStrings is rrs in presentation format; nil when empty.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
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
	for _, rr := range rrs {
		rr.Header().Ttl = ttl
		w.WriteString(rr.String() + "\n")
	}
}

// insert stores an entry of key k (name's hash nh) in sh: its slot s
// (without hash, kind or qtype: insert sets them), its bytes, its reason
// and its records (for the national bookkeeping), replacing an entry of
// the same key, then evicts from the LRU end until the shard is within
// its budget. Entries past their stale window are dropped first as they
// are met. National infrastructure goes to the shard's national ring
// instead, outside the budget (national.go); the caller calls
// afterNational once it has released sh.mu. Called with sh.mu held.
func (c *Cache) insert(sh *cacheShard, k cacheKey, nh uint64, s slot, data []byte, why error, rrs []dns.RR, now int64) {
	var old []byte
	wasNational := false
	if i, ok := sh.t.find(nh, k.name, k.qtype, k.kind); ok {
		old, wasNational = sh.t.data[i], sh.t.slots[i].protected
		sh.remove(i)
	}
	s.hash, s.kind, s.qtype = keyHash(nh, k.qtype, k.kind), k.kind, k.qtype
	s.protected = c.nat != nil && c.nat.keep(k, &s, rrs, data, old, wasNational)
	i := sh.t.add(s, data, why)
	c.storedSlot(k.name).Add(1)
	sh.changed(i)
	if s.protected {
		sh.pushNational(i)
		return
	}
	sh.t.link(lruHead, i)
	sh.bytes += int64(s.size)
	c.evict(sh, i, now)
}

// evict removes entries from the LRU end of sh until it is within its
// budget, sparing keep. Called with sh.mu held.
func (c *Cache) evict(sh *cacheShard, keep int32, now int64) {
	for sh.bytes > c.budget {
		victim := sh.t.slots[lruHead].prev
		if victim == keep || victim == lruHead {
			break // cannot happen: keep's size <= budget
		}
		expired := now >= sh.t.slots[victim].expire+c.staleWindow
		sh.evictSlot(victim)
		if expired {
			sh.expired++
		} else {
			sh.evictions++
		}
	}
}

// touch marks slot i as the most recently used entry of its shard.
// National infrastructure is not in the LRU: it stays where it is.
func (sh *cacheShard) touch(i int32) {
	if sh.t.slots[lruHead].next == i || sh.t.slots[i].protected {
		return
	}
	sh.t.unlink(i)
	sh.t.link(lruHead, i)
}

// remove unlinks slot i and frees it. Readers that copied its bytes
// before may still read them: they are never modified.
func (sh *cacheShard) remove(i int32) {
	sh.removed(i)
	sh.free(i)
}

// evictSlot is remove for an entry that leaves to make room, or is past
// its stale window: a copy of the cache that holds it as it is (see
// evicted) keeps it.
func (sh *cacheShard) evictSlot(i int32) {
	sh.evicted(i)
	sh.free(i)
}

// free unlinks slot i and frees it, once the caller has recorded the
// removal for the write-behind copy (or found nothing to record).
func (sh *cacheShard) free(i int32) {
	s := &sh.t.slots[i]
	sh.t.unlink(i)
	if s.protected {
		sh.natBytes -= int64(s.size)
		sh.natSet.dropped(s, sh.t.data[i])
	} else {
		sh.bytes -= int64(s.size)
	}
	sh.t.drop(i)
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
// chain ends in. end is the last name of the chain. Owners are compared
// without case, name and end are canonical.
func classifyResponse(name string, qtype uint16, rcode int, answer, ns []dns.RR) (kind MsgKind, end string, ok bool) {
	end = name
	if qtype != dns.TypeCNAME {
	chain:
		for range maxCacheChain {
			for _, rr := range answer {
				if cn, isCNAME := rr.(*dns.CNAME); isCNAME && nameIs(rr.Header().Name, end) {
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
		if h.Rrtype == qtype && nameIs(h.Name, end) {
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

// appendCacheable appends to dst the records of src that may be cached
// (class IN, not a meta type): the records themselves, which the cache
// reads only.
func appendCacheable(dst, src []dns.RR) []dns.RR {
	for _, rr := range src {
		if cacheable(rr) {
			dst = append(dst, rr)
		}
	}
	return dst
}

// copyRR returns a deep copy of rr, as dns.Copy does; an A or AAAA
// record is one allocation with its address.
func copyRR(rr dns.RR) dns.RR {
	switch r := rr.(type) {
	case *dns.A:
		if len(r.A) == net.IPv4len {
			return boxA(r.Hdr, r.A)
		}
	case *dns.AAAA:
		if len(r.AAAA) == net.IPv6len {
			return boxAAAA(r.Hdr, r.AAAA)
		}
	}
	return dns.Copy(rr)
}

// canonicalCopies returns copies of rrs with their owners lower-cased.
func canonicalCopies(rrs []dns.RR) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		cp := copyRR(rr)
		cp.Header().Name = cacheName(rr.Header().Name)
		out[i] = cp
	}
	return out
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

// entrySize is the estimate of what an entry of data's bytes costs: its
// bytes, rounded up to the allocator's size class, and entryOverhead.
func entrySize(data []byte) int64 {
	n := len(data)
	switch {
	case n <= 16:
		n = (n + 7) &^ 7
	case n <= 128:
		n = (n + 15) &^ 15
	default:
		n += n / 8
	}
	return int64(entryOverhead + n)
}

// sizeEntry sets s's size estimate for an entry of data's bytes, and
// reports whether the entry fits in a shard's budget.
func (c *Cache) sizeEntry(s *slot, data []byte) bool {
	n := entrySize(data)
	if n > c.budget || n > math.MaxInt32 {
		return false
	}
	s.size = int32(n)
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
