package resolver

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// Persistence of the cache and of the infrastructure table, so that a
// resolver restarted during an outage still answers what it knew: Export
// and ExportInfra give what is held as plain values, Import and ImportInfra
// put it back. The file format is internal/cachedb's; this side only
// guarantees that whatever is imported is an entry Put or PutRRset could
// have stored.

// RecordKind says what a CacheRecord holds.
type RecordKind uint8

// The kinds of cache record, one for each kind of entry.
const (
	RecordMessage  RecordKind = iota // the answer to (Name, Qtype): an answer, NODATA, or NXDOMAIN after a CNAME chain
	RecordNXDomain                   // NXDOMAIN at Name, for every type (Qtype is 0)
	RecordRRset                      // an RRset of (Name, Qtype), with its RRSIGs, at Rank
)

var recordKindNames = [...]string{"message", "nxdomain", "rrset"}

func (k RecordKind) String() string {
	if int(k) < len(recordKindNames) {
		return recordKindNames[k]
	}
	return fmt.Sprintf("RecordKind(%d)", uint8(k))
}

// CacheRecord is one cache entry in a form that can be written out. Its
// expiry is absolute, so an entry read back later has aged meanwhile, and
// comes back stale (served only by serve-stale) once it has expired.
type CacheRecord struct {
	Kind    RecordKind
	Name    string // owner name, lower-cased and fully qualified
	Qtype   uint16 // 0 for RecordNXDomain
	Expire  time.Time
	Rcode   int     // NOERROR or NXDOMAIN; NOERROR for an RRset
	MsgKind MsgKind // message entries
	Rank    Rank    // RRset entries
	Sec     dnssec.SecStatus

	// Why is the text of the reason the entry is not Secure (empty: none).
	// The reason is an error, which cannot be written out as such; it comes
	// back as an error with the same text that still matches, with
	// errors.Is, the sentinels named in WhyIs, so dnssec.EDE gives the
	// same Extended DNS Error after a reload; and, when WhyStatus is not
	// Unchecked, as a *dnssec.ValidationError of that status, so
	// dnssec.StatusOf still works. Only the sentinels of the dnssec and
	// resolver packages (and context's) are kept: see WhySentinels.
	Why       string
	WhyStatus dnssec.SecStatus
	WhyIs     []string

	// Msg holds the records, packed as a DNS message (compressed, no
	// question) whose answer, authority and additional sections are the
	// entry's: the section counts are the message's. An RRset is all in
	// the answer section.
	Msg []byte

	// National is set by Export on the national infrastructure, which it
	// gives first. It is not part of the entry: Import decides what is
	// national from the cache's own configuration.
	National bool
}

// Limits on what Import accepts.
const (
	maxWhyLen   = 1024 // bytes of a reason's text
	maxWhyIs    = 16   // sentinels named by one reason
	maxRecordRR = 0xffff
)

// Why an imported record was not stored; ImportRecord returns them, wrapped.
var (
	ErrBadRecord        = errors.New("invalid cache record")
	ErrRecordExpired    = errors.New("cache record past its stale window")
	ErrRecordTooLarge   = errors.New("cache record larger than a cache shard")
	ErrRecordSuperseded = errors.New("a fresher entry is cached")
	ErrCacheDisabled    = errors.New("cache disabled")
)

// whySentinels are the errors a reason may wrap that matter to callers
// (dnssec.EDE, the server's choice of Extended DNS Error), by the stable
// name a record uses for them. Names may be added, never changed.
var whySentinels = []struct {
	name string
	err  error
}{
	{"dnssec.bogus", dnssec.ErrBogus},
	{"dnssec.signature_expired", dnssec.ErrSignatureExpired},
	{"dnssec.signature_not_yet_valid", dnssec.ErrSignatureNotYetValid},
	{"dnssec.dnskey_missing", dnssec.ErrDNSKEYMissing},
	{"dnssec.rrsigs_missing", dnssec.ErrRRSIGsMissing},
	{"dnssec.nsec_missing", dnssec.ErrNSECMissing},
	{"dnssec.unsupported_algorithm", dnssec.ErrUnsupportedAlgorithm},
	{"dnssec.unsupported_digest", dnssec.ErrUnsupportedDigest},
	{"dnssec.nsec3_iterations", dnssec.ErrNSEC3Iterations},
	{"dnssec.work_limit", dnssec.ErrWorkLimit},
	{"dnssec.indeterminate", dnssec.ErrIndeterminate},
	{"dnssec.bad_trust_anchor", dnssec.ErrBadTrustAnchor},
	{"dnssec.opt_out", dnssec.ErrOptOut},
	{"resolver.no_reachable_authority", ErrNoReachableAuthority},
	{"resolver.limit", ErrLimit},
	{"resolver.lame", ErrLame},
	{"resolver.cname_chain", ErrCNAMEChain},
	{"resolver.mismatch", ErrMismatch},
	{"context.deadline_exceeded", context.DeadlineExceeded},
	{"context.canceled", context.Canceled},
}

// WhySentinels returns the names CacheRecord.WhyIs may hold.
func WhySentinels() []string {
	out := make([]string, len(whySentinels))
	for i, s := range whySentinels {
		out[i] = s.name
	}
	return out
}

// restoredError is a reason read back from a record: the original text, and
// the sentinels the original wrapped.
type restoredError struct {
	text string
	is   []error
}

func (e *restoredError) Error() string   { return e.text }
func (e *restoredError) Unwrap() []error { return e.is }

// Now returns the time on the cache's clock (CacheConfig.Now).
func (c *Cache) Now() time.Time { return c.now() }

// Capacity returns the most bytes the cache holds: CacheConfig.MaxBytes,
// rounded down to a multiple of the shard count.
func (c *Cache) Capacity() int64 { return c.budget * cacheShards }

// Export calls fn for each entry that can still be served (fresh, or
// expired within the stale window), from the least to the most recently
// used, so that a cache that imports the records in this order, whatever
// its size and however it spreads names over its shards, evicts the least
// recent first, and a reader that has to leave some out can leave out
// the first. It stops at the first error from fn and returns it.
//
// The national infrastructure (national.go) comes first, whatever its
// age, marked National: its NS RRsets, then the rest of it, so that a
// reader keeps it, and an import finds each NS RRset before the addresses
// of the servers it names.
//
// The order across shards is that of each entry's place in its shard's
// LRU, as a fraction of the shard's length: a shard holds the names a
// hash gave it, a sample of all of them, so an entry's place in its shard
// is its place in the whole cache, to within the sample's error. Within
// a shard the order is exact. The merge holds a key hash and a slot
// number per entry (12 bytes), not the entries.
//
// A shard is locked only while its entries are listed, or one is taken,
// never while fn runs, so fn may be slow (write a file) without holding
// up lookups; an entry changed meanwhile is exported as it was when
// taken, and one removed meanwhile is left out.
func (c *Cache) Export(fn func(CacheRecord) error) error {
	now := c.now().UnixNano()
	isNS := func(s *slot) bool { return s.kind == kindRRset && s.qtype == dns.TypeNS }
	passes := []func(sh *cacheShard, list []HeldEntry) []HeldEntry{
		func(sh *cacheShard, list []HeldEntry) []HeldEntry {
			for i := sh.t.slots[natHead].prev; i != natHead; i = sh.t.slots[i].prev {
				if isNS(&sh.t.slots[i]) {
					list = append(list, sh.held(i))
				}
			}
			return list
		},
		func(sh *cacheShard, list []HeldEntry) []HeldEntry {
			for i := sh.t.slots[natHead].prev; i != natHead; i = sh.t.slots[i].prev {
				if !isNS(&sh.t.slots[i]) {
					list = append(list, sh.held(i))
				}
			}
			return list
		},
	}
	var list []HeldEntry
	for _, pass := range passes {
		for i := range c.shards {
			sh := &c.shards[i]
			sh.mu.Lock()
			list = pass(sh, list[:0])
			sh.mu.Unlock()
			// An entry's bytes are never modified once stored.
			for _, h := range list {
				rec, err := h.e.record(h.why, nil, now)
				if err != nil {
					continue // cannot happen: the cache encoded the records
				}
				rec.National = true
				if err := fn(rec); err != nil {
					return err
				}
			}
			clear(list)
		}
	}
	return c.exportLRU(now, fn)
}

// exportLRU is Export's part for the entries in the shards' LRUs: it
// lists each shard's slots, least recent first, then takes them in the
// order of their place in their shard's list, as a fraction of its
// length (a merge of the shards' lists by that fraction).
func (c *Cache) exportLRU(now int64, fn func(CacheRecord) error) error {
	n := int(c.Stats().Entries)
	n += n / 16 // room for those stored while the shards are listed
	hashes, slots := make([]uint64, 0, n), make([]int32, 0, n)
	var starts [cacheShards + 1]int // shard i's slots: [starts[i], starts[i+1])
	for i := range c.shards {
		sh := &c.shards[i]
		starts[i] = len(slots)
		sh.mu.Lock()
		for j := sh.t.slots[lruHead].prev; j != lruHead; j = sh.t.slots[j].prev {
			if now < sh.t.slots[j].expire+c.staleWindow {
				hashes = append(hashes, sh.t.slots[j].hash)
				slots = append(slots, j)
			}
		}
		sh.mu.Unlock()
	}
	starts[cacheShards] = len(slots)
	m := newRankMerge(starts[:])
	for {
		shard, k, ok := m.next()
		if !ok {
			return nil
		}
		sh := &c.shards[shard]
		j := slots[k]
		sh.mu.Lock()
		if int(j) >= len(sh.t.slots) {
			sh.mu.Unlock()
			continue // the shard was flushed meanwhile: its table is shorter
		}
		s := &sh.t.slots[j]
		if s.kind == kindFree || s.hash != hashes[k] || s.protected || now >= s.expire+c.staleWindow {
			sh.mu.Unlock()
			continue // removed, replaced, or moved out of the LRU meanwhile
		}
		h := sh.held(j)
		sh.mu.Unlock()
		rec, err := h.e.record(h.why, nil, now)
		if err != nil {
			continue // cannot happen: the cache encoded the records
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

// rankMerge merges lists laid end to end (list i is [starts[i],
// starts[i+1]) of one index space) by each element's place in its list as
// a fraction of the list's length, (p+1/2)/n; ties go to the lower list.
// It is a heap (container/heap) of the lists with places left.
type rankMerge struct {
	starts []int
	pos    []int   // by list: the next place in it
	lists  []int32 // the heap: lists with places left, by their next fraction
}

func newRankMerge(starts []int) *rankMerge {
	m := &rankMerge{starts: starts, pos: make([]int, len(starts)-1)}
	for i := range m.pos {
		if starts[i+1] > starts[i] {
			m.lists = append(m.lists, int32(i))
		}
	}
	heap.Init(m)
	return m
}

// next returns the next element: its list and its index.
func (m *rankMerge) next() (list, index int, ok bool) {
	if len(m.lists) == 0 {
		return 0, 0, false
	}
	l := m.lists[0]
	index = m.starts[l] + m.pos[l]
	m.pos[l]++
	if m.starts[l]+m.pos[l] == m.starts[l+1] {
		heap.Pop(m)
	} else {
		heap.Fix(m, 0)
	}
	return int(l), index, true
}

func (m *rankMerge) Len() int { return len(m.lists) }

// Less compares the lists' next fractions exactly: (2p+1)/(2n).
func (m *rankMerge) Less(i, j int) bool {
	a, b := m.lists[i], m.lists[j]
	na, nb := m.starts[a+1]-m.starts[a], m.starts[b+1]-m.starts[b]
	x, y := (2*m.pos[a]+1)*nb, (2*m.pos[b]+1)*na
	return x < y || x == y && a < b
}

func (m *rankMerge) Swap(i, j int) { m.lists[i], m.lists[j] = m.lists[j], m.lists[i] }
func (m *rankMerge) Push(x any)    { m.lists = append(m.lists, x.(int32)) }
func (m *rankMerge) Pop() any {
	last := m.lists[len(m.lists)-1]
	m.lists = m.lists[:len(m.lists)-1]
	return last
}

// record returns e, with reason why, as a CacheRecord, its records with
// the TTL left at now. Its Msg is packed into buf's room when it fits
// there, and then shares buf's array; with a nil buf it has its own.
func (e *cacheEntry) record(why error, buf []byte, now int64) (CacheRecord, error) {
	rec := CacheRecord{
		Name:    entryName(e.data),
		Qtype:   e.qtype,
		Expire:  time.Unix(0, e.expire),
		Rcode:   rcodeOf(e.mkind),
		MsgKind: e.mkind,
		Rank:    e.rank,
		Sec:     e.sec,
	}
	switch e.kind {
	case kindNX:
		rec.Kind = RecordNXDomain
	case kindRRset:
		rec.Kind = RecordRRset
	default:
		rec.Kind = RecordMessage
	}
	if why != nil {
		rec.Why = why.Error()
		if len(rec.Why) > maxWhyLen {
			rec.Why = rec.Why[:maxWhyLen]
		}
		var ve *dnssec.ValidationError
		if errors.As(why, &ve) {
			rec.WhyStatus = ve.Status
		}
		for _, s := range whySentinels {
			if errors.Is(why, s.err) {
				rec.WhyIs = append(rec.WhyIs, s.name)
			}
		}
	}
	// An entry's bytes are the cache's own: appendEntryMsg refuses none
	// that decodeRecords would read.
	ttl := ttlLeft(e.expire, now)
	if buf != nil {
		b, ok := appendEntryMsg(buf[:0], e.data, e.nAns, e.nNs, ttl)
		if !ok {
			return CacheRecord{}, fmt.Errorf("%s/%s: %w", rec.Name, dns.Type(e.qtype), errEntryWire)
		}
		rec.Msg = b
		return rec, nil
	}
	var own [512]byte // on the stack: kept apart from buf's path, which the result leaks
	b, ok := appendEntryMsg(own[:0], e.data, e.nAns, e.nNs, ttl)
	if !ok {
		return CacheRecord{}, fmt.Errorf("%s/%s: %w", rec.Name, dns.Type(e.qtype), errEntryWire)
	}
	rec.Msg = bytes.Clone(b)
	return rec, nil
}

// appendEntryMsg appends to b the message that holds an entry's records
// (d, its bytes) in its sections, nAns in the answer, nNs in the
// authority and the rest in the additional section, each of class IN and
// TTL ttl, without a question, and with its header's ID and flags zero:
// what packing the decoded records gives, straight from the entry's
// bytes. Owners, and the names that are the whole data of CNAME, NS and
// PTR records, are compressed against the names written before them (the
// longest suffix of whole labels, within a pointer's reach); other data
// are as the entry holds them, uncompressed. ok is false, with b as it
// was, for bytes that are not an entry's.
func appendEntryMsg(b []byte, d []byte, nAns, nNs uint16, ttl uint32) (_ []byte, ok bool) {
	rec := recordsOf(d)
	base := len(b)
	b = append(b, make([]byte, 12)...)
	var nameRoom [256]byte
	var nameWire, prev []byte // the entry's name and the previous owner, in wire form
	var names ownerTable
	n := 0
	for off := 0; off < len(rec); n++ {
		r, ok := nextRecord(rec, off)
		if !ok {
			return b[:base], false
		}
		owner, mark := prev, r.mark
		if mark == ownerPrev && prev == nil {
			mark = ownerEntry // as decodeRecords reads it: before the first record, the entry's name
		}
		switch mark {
		case ownerEntry:
			if nameWire == nil {
				k, err := dns.PackDomainName(entryName(d), nameRoom[:], 0, nil, false)
				if err != nil {
					return b[:base], false
				}
				nameWire = nameRoom[:k]
			}
			owner = nameWire
		case ownerPrev: // prev
		default:
			owner = rec[r.owner : r.rdata-4]
		}
		prev = owner
		b = names.append(b, base, owner)
		b = binary.BigEndian.AppendUint16(b, r.typ)
		b = binary.BigEndian.AppendUint16(b, dns.ClassINET)
		b = binary.BigEndian.AppendUint32(b, ttl)
		if data := rec[r.rdata:r.next]; nameData(r.typ) && oneName(data) {
			// Compressed, as the packer does for these types (RFC 3597
			// §4): its target is a chain's next owner, a glue record's.
			at := len(b)
			b = names.append(append(b, 0, 0), base, data)
			binary.BigEndian.PutUint16(b[at:], uint16(len(b)-at-2))
		} else {
			b = append(b, rec[r.rdata-2:r.next]...) // rdlen and rdata
		}
		off = r.next
	}
	if n > 0xffff || len(b)-base > dns.MaxMsgSize {
		return b[:base], false
	}
	an := min(int(nAns), n)
	ns := min(int(nAns)+int(nNs), n) - an
	h := b[base:]
	binary.BigEndian.PutUint16(h[6:], uint16(an))
	binary.BigEndian.PutUint16(h[8:], uint16(ns))
	binary.BigEndian.PutUint16(h[10:], uint16(n-an-ns))
	return b, true
}

// nameData reports whether a record of type t holds one name as its data,
// which a message may compress.
func nameData(t uint16) bool {
	return t == dns.TypeCNAME || t == dns.TypeNS || t == dns.TypePTR
}

// oneName reports whether data is exactly one uncompressed name in wire
// form.
func oneName(data []byte) bool {
	for p := 0; p < len(data); p += 1 + int(data[p]) {
		switch {
		case data[p] == 0:
			return p == len(data)-1
		case data[p] > 63:
			return false
		}
	}
	return false
}

// ownerTable is the names a message has written whole, for compression:
// the first few owners and names in data, which for an entry (an answer
// and its chain, a denial's SOA and proofs, a referral's servers) are
// nearly all of them. It holds where they are in the message, not the
// names: a name held would keep the caller's room for it on the heap.
type ownerTable struct {
	at, n [8]int // where each starts in the message, and its length
	count int
}

// maxPointer is the furthest offset a compression pointer reaches.
const maxPointer = 0x3fff

// append appends name (uncompressed wire form) to b, whose message starts
// at base: its longest suffix of whole labels that a name written before
// ends with is a pointer to it.
func (t *ownerTable) append(b []byte, base int, name []byte) []byte {
	for p := 0; p < len(name) && name[p] != 0; p += 1 + int(name[p]) {
		if at, ok := t.find(b[base:], name[p:]); ok {
			b = append(b, name[:p]...)
			return binary.BigEndian.AppendUint16(b, 0xc000|uint16(at))
		}
	}
	if at := len(b) - base; at <= maxPointer && t.count < len(t.at) {
		t.at[t.count], t.n[t.count] = at, len(name)
		t.count++
	}
	return append(b, name...)
}

// find returns where suffix (a name's labels to its end) is in msg, as
// one of the names written or the end of one.
func (t *ownerTable) find(msg, suffix []byte) (int, bool) {
	for i := range t.count {
		w := msg[t.at[i] : t.at[i]+t.n[i]]
		for q := 0; len(w)-q >= len(suffix) && w[q] != 0; q += 1 + int(w[q]) {
			if len(w)-q == len(suffix) && string(w[q:]) == string(suffix) {
				if at := t.at[i] + q; at <= maxPointer {
					return at, true
				}
				return 0, false
			}
		}
	}
	return 0, false
}

// Import stores rec as it was when exported, with its absolute expiry, and
// reports whether it was stored. ImportRecord says why not.
func (c *Cache) Import(rec CacheRecord) bool {
	return c.ImportRecord(rec) == nil
}

// ImportRecord is Import returning why a record was not stored: an error
// wrapping ErrBadRecord when the record is not an entry Put or PutRRset
// could have made (a damaged or forged file), ErrRecordExpired when its
// stale window has passed, ErrRecordTooLarge when it exceeds a shard's
// share of MaxBytes, ErrRecordSuperseded when the cache holds an entry for
// the same key expiring no earlier (or, for an RRset, a fresh one of
// higher rank), or ErrCacheDisabled.
//
// The expiry is lowered, if need be, to what the configuration allows from
// now: MaxTTL, MaxNegativeTTL for negative entries, BogusTTL for Bogus and
// Indeterminate ones, so neither a changed configuration nor a forged file
// can keep an entry longer than a fresh answer would be kept.
func (c *Cache) ImportRecord(rec CacheRecord) error {
	if c.budget <= 0 {
		return ErrCacheDisabled
	}
	if int64(len(rec.Msg)) > c.budget {
		return ErrRecordTooLarge // the wire form is smaller than the entry
	}
	k, s, rrs, why, err := c.entryFrom(rec)
	if err != nil {
		return fmt.Errorf("%w: %s %s/%s: %w", ErrBadRecord, rec.Kind, rec.Name, dns.Type(rec.Qtype), err)
	}
	now := c.now().UnixNano()
	if now >= s.expire+c.staleWindow && (c.nat == nil || !c.nat.infra(k, &s)) {
		return ErrRecordExpired // national infrastructure is kept whatever its age
	}
	life := c.maxTTL
	if k.kind != kindRRset && s.mkind != MsgAnswer {
		life = min(life, c.maxNeg)
	}
	if s.sec == dnssec.Bogus || s.sec == dnssec.Indeterminate {
		life = min(life, BogusTTL)
	}
	s.expire = min(s.expire, now+int64(life))
	data, ok := encodeEntry(k.name, rrs)
	if !ok {
		return fmt.Errorf("%w: %s %s/%s: records do not pack", ErrBadRecord, rec.Kind, rec.Name, dns.Type(rec.Qtype))
	}
	if !c.sizeEntry(&s, data) {
		return ErrRecordTooLarge
	}

	nh := c.nameHash(k.name)
	sh := c.shardFor(k.name)
	sh.mu.Lock()
	if !importable(sh, k, nh, &s, now) {
		sh.mu.Unlock()
		return ErrRecordSuperseded
	}
	c.insert(sh, k, nh, s, data, why, rrs, now)
	sh.mu.Unlock()
	c.afterNational()
	return nil
}

// Touch marks the entry of k, if the cache holds one, as the most
// recently used, without counting a use, and reports whether it holds
// one: a load that imports some records early (cachedb imports NS RRsets
// first) puts each where the file has it. National infrastructure, kept
// apart from the order of use, stays where it is.
func (c *Cache) Touch(k CacheKey) bool {
	key, ok := k.internal()
	if !ok {
		return false
	}
	sh := c.shardFor(key.name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, ok := sh.t.find(c.nameHash(key.name), key.name, key.qtype, key.kind)
	if ok {
		sh.touch(i)
	}
	return ok
}

// importable reports whether e may replace what sh holds under its key:
// not when the entry held expires no earlier, or is a fresh RRset of
// higher rank, or (for a message) an NXDOMAIN for the name expires no
// earlier, which is newer news. Called with sh.mu held.
func importable(sh *cacheShard, k cacheKey, nh uint64, s *slot, now int64) bool {
	if i, ok := sh.t.find(nh, k.name, k.qtype, k.kind); ok {
		old := &sh.t.slots[i]
		if old.expire >= s.expire || (k.kind == kindRRset && now < old.expire && old.rank > s.rank) {
			return false
		}
	}
	if k.kind == kindMsg {
		if i, ok := sh.t.find(nh, k.name, 0, kindNX); ok && sh.t.slots[i].expire >= s.expire {
			return false
		}
	}
	return true
}

// entryFrom checks rec and returns the entry it describes: its key, its
// slot (the expiry rec's, unclamped), its records and its reason.
func (c *Cache) entryFrom(rec CacheRecord) (k cacheKey, e slot, rrs []dns.RR, why error, err error) {
	if len(rec.Name) > MaxNameText || !dnsName(rec.Name) || cacheName(rec.Name) != rec.Name {
		return k, e, nil, nil, errors.New("owner name not in canonical form")
	}
	if rec.Expire.IsZero() || rec.Expire.Unix() <= 0 || rec.Expire.Year() > 2200 {
		return k, e, nil, nil, errors.New("expiry out of range")
	}
	if rec.Sec > dnssec.Indeterminate || rec.WhyStatus > dnssec.Indeterminate {
		return k, e, nil, nil, errors.New("unknown DNSSEC status")
	}
	why, err = restoreWhy(rec)
	if err != nil {
		return k, e, nil, nil, err
	}
	var m dns.Msg
	if err := m.Unpack(rec.Msg); err != nil {
		return k, e, nil, nil, fmt.Errorf("records: %w", err)
	}
	if len(m.Question) != 0 || len(m.Answer)+len(m.Ns)+len(m.Extra) > maxRecordRR {
		return k, e, nil, nil, errors.New("records: bad section counts")
	}
	rrs = append(append(append(make([]dns.RR, 0, len(m.Answer)+len(m.Ns)+len(m.Extra)), m.Answer...), m.Ns...), m.Extra...)
	for _, rr := range rrs {
		h := rr.Header()
		if h.Class != dns.ClassINET || !cacheableType(h.Rrtype) {
			return k, e, nil, nil, fmt.Errorf("record of class %d type %s", h.Class, dns.Type(h.Rrtype))
		}
		if h.Rdlength == 0 {
			return k, e, nil, nil, fmt.Errorf("record %s/%s without data", h.Name, dns.Type(h.Rrtype))
		}
		if cacheName(h.Name) != h.Name {
			return k, e, nil, nil, fmt.Errorf("owner %q not in canonical form", h.Name)
		}
	}
	e = slot{
		expire: rec.Expire.UnixNano(),
		nAns:   uint16(len(m.Answer)),
		nNs:    uint16(len(m.Ns)),
		mkind:  rec.MsgKind,
		rank:   rec.Rank,
		sec:    rec.Sec,
	}
	answer, ns, _ := sections(rrs, e.nAns, e.nNs)

	switch rec.Kind {
	case RecordRRset:
		k = cacheKey{name: rec.Name, qtype: rec.Qtype, kind: kindRRset}
		if rec.Rank > RankValidated || rec.Rcode != dns.RcodeSuccess || rec.MsgKind != MsgAnswer {
			return k, e, nil, nil, errors.New("rrset: bad rank, rcode or message kind")
		}
		if !cacheableType(rec.Qtype) || rec.Qtype == dns.TypeRRSIG {
			return k, e, nil, nil, errors.New("rrset: bad type")
		}
		if len(answer) == 0 || len(answer) != len(rrs) {
			return k, e, nil, nil, errors.New("rrset: records outside the answer section")
		}
		data := false
		for _, rr := range rrs {
			t := rr.Header().Rrtype
			if sig, ok := rr.(*dns.RRSIG); ok {
				t = sig.TypeCovered
			} else {
				data = true
			}
			if rr.Header().Name != rec.Name || t != rec.Qtype {
				return k, e, nil, nil, fmt.Errorf("rrset: record %s/%s does not belong", rr.Header().Name, dns.Type(t))
			}
		}
		if !data {
			return k, e, nil, nil, errors.New("rrset: signatures only")
		}
	case RecordNXDomain:
		k = cacheKey{name: rec.Name, kind: kindNX}
		if rec.Qtype != 0 || rec.Rcode != dns.RcodeNameError || rec.MsgKind != MsgNXDomain || rec.Rank != RankNone {
			return k, e, nil, nil, errors.New("nxdomain: bad type, rcode, kind or rank")
		}
		if len(answer) != 0 || !hasZoneSOA(rec.Name, ns) {
			return k, e, nil, nil, errors.New("nxdomain: no SOA for the name")
		}
	case RecordMessage:
		k = cacheKey{name: rec.Name, qtype: rec.Qtype, kind: kindMsg}
		if !cacheableType(rec.Qtype) || rec.Rank != RankNone {
			return k, e, nil, nil, errors.New("message: bad type or rank")
		}
		if rec.MsgKind == MsgNXDomain && len(answer) == 0 {
			return k, e, nil, nil, errors.New("message: NXDOMAIN for the name itself belongs in an nxdomain record")
		}
		if rec.Rcode != dns.RcodeSuccess && rec.Rcode != dns.RcodeNameError {
			return k, e, nil, nil, errors.New("message: bad rcode")
		}
		kind, _, ok := classifyResponse(rec.Name, rec.Qtype, rec.Rcode, answer, ns)
		if !ok || kind != rec.MsgKind {
			return k, e, nil, nil, fmt.Errorf("message: records make a %s, not a %s", kind, rec.MsgKind)
		}
	default:
		return k, e, nil, nil, fmt.Errorf("unknown kind %d", rec.Kind)
	}
	return k, e, rrs, why, nil
}

// restoreWhy rebuilds the reason of rec (nil when it has none); err says
// what is wrong with the record's reason fields.
func restoreWhy(rec CacheRecord) (why, err error) {
	if rec.Why == "" {
		if rec.WhyStatus != dnssec.Unchecked || len(rec.WhyIs) != 0 {
			return nil, errors.New("reason without text")
		}
		return nil, nil
	}
	if len(rec.Why) > maxWhyLen || len(rec.WhyIs) > maxWhyIs {
		return nil, errors.New("reason too long")
	}
	re := &restoredError{text: rec.Why}
	for _, name := range rec.WhyIs {
		for _, s := range whySentinels {
			if s.name == name {
				re.is = append(re.is, s.err)
				break
			}
		}
		// A name this version does not know is left out: the text stays.
	}
	if rec.WhyStatus == dnssec.Unchecked {
		return re, nil
	}
	return &dnssec.ValidationError{Status: rec.WhyStatus, Reason: re}, nil
}

// dnsName reports whether s is a domain name the dns package can pack.
func dnsName(s string) bool {
	var buf [256]byte
	_, err := dns.PackDomainName(s, buf[:], 0, nil, false)
	return err == nil
}

// ExportInfra returns a copy of the infrastructure table: the smoothed RTT
// of each upstream server known (failed servers with their backoff).
func (r *Resolver) ExportInfra() map[netip.AddrPort]time.Duration {
	r.infra.mu.Lock()
	defer r.infra.mu.Unlock()
	out := make(map[netip.AddrPort]time.Duration, r.infra.hosts.len())
	for s, h := range r.infra.hosts.all() {
		if h.srtt >= 0 {
			out[s] = h.srtt
		}
	}
	return out
}

// ImportInfra adds the servers of m to the infrastructure table and returns
// how many it added. Servers already known keep what was measured since
// start; invalid addresses and RTTs outside (0, maxBackoff] are skipped, and
// no more are added once the table holds maxInfra servers.
func (r *Resolver) ImportInfra(m map[netip.AddrPort]time.Duration) int {
	r.infra.mu.Lock()
	defer r.infra.mu.Unlock()
	n := 0
	for s, rtt := range m {
		if r.infra.hosts.len() >= maxInfra {
			break
		}
		if !s.IsValid() || s.Port() == 0 || rtt <= 0 || rtt > maxBackoff {
			continue
		}
		if _, ok := r.infra.hosts.get(s); ok {
			continue
		}
		r.infra.hosts.put(s, &hostState{srtt: rtt})
		n++
	}
	return n
}
