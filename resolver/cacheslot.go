package resolver

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"iter"
	"net"
	"strings"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/wire"
)

// The cache holds nothing the collector has to walk. The collector marks
// every pointer the heap holds each time it runs, and while it marks, on a
// machine of one or two processors, the answers wait: a cache of Go
// records (an entry, its records, their names and addresses, each a
// pointer or several) made a full 64 MiB cache tens of milliseconds of
// marking at every collection, and a stream of misses at a full cache
// collects every second or so.
//
// A shard therefore keeps its entries in a table of slots, structs
// without pointers, found through a map from a 64-bit hash of the key to
// a slot number (a map of integers, which the collector does not scan
// either), and linked into the LRU by slot numbers. An entry's owner name
// and records are one byte slice in the cache's own compact wire form
// (below), held in a slice parallel to the slots: one pointer an entry,
// to memory the collector does not scan. The slice is never modified
// once stored, so a reader copies the slice header under the shard lock
// and decodes the records after releasing it, and the write-behind writer
// may hold it after the entry is gone. The rare reasons a validation
// failed are kept in a map beside the table.

// slot is one entry of a shard: a key's metadata, and links by slot
// number. A free slot is on the shard's free list through next.
type slot struct {
	hash       uint64 // keyHash of the key
	expire     int64  // Unix nanoseconds
	prev, next int32  // the LRU or national ring (sentinels lruHead and natHead)
	chain      int32  // the next slot in its bucket's chain (slotTable); noSlot: none
	size       int32  // the estimate (entrySize), at most a shard's budget
	origTTL    uint32 // seconds it was stored for; 0: unknown
	qtype      uint16
	nAns, nNs  uint16
	kind       cacheEntryKind
	mkind      MsgKind // its rcode follows: NXDOMAIN for MsgNXDomain, else NOERROR
	rank       Rank
	sec        dnssec.SecStatus
	protected  bool // national infrastructure: in the national ring, not the LRU
	why        bool // a reason is held in the shard's whys
}

// kindFree marks a slot on the free list.
const kindFree cacheEntryKind = 0xff

// The sentinels of a shard's two rings, and the slot number of none.
const (
	lruHead = 0
	natHead = 1
	noSlot  = -1
)

// slotTable is a shard's entries. Guarded by the shard's mu.
//
// Its index is a hash table of chains: heads holds, for each bucket (the
// low bits of a key's hash), the first slot of the chain of the slots
// whose keys hash there, linked by their chain fields. There are as many
// buckets as a power of two at least the slots in use, so a chain holds
// one slot on average; a lookup reads a bucket and a slot, and compares
// the slot's full hash before its name. The names' hash is seeded, so
// names chosen to fall in one bucket cannot be made. Four bytes a bucket
// cost some 4-8 bytes an entry, where a Go map of the same keys took
// some 26-30. The buckets double, under the shard's lock, when the slots
// in use come to outnumber them: a pass over the shard's slots, each
// doubling as long as all before it. The one at 65,536 entries (a cache
// of some 2.5 GiB) took 0.2-0.3 ms, up to 0.7 when the new array's pages
// were faulted in; it comes once in the life of the shard's table.
type slotTable struct {
	heads []int32 // by bucket, keyHash & (len(heads)-1): the first slot of its chain; noSlot: none
	slots []slot
	data  [][]byte        // each slot's name and records; nil for a free slot
	whys  map[int32]error // reasons, for the slots whose why is set
	free  int32           // the first free slot; noSlot: none
	n     int             // slots in use, sentinels aside
}

// minBuckets is the size of an empty table's index.
const minBuckets = 8

func (t *slotTable) reset() {
	t.heads = make([]int32, minBuckets)
	for b := range t.heads {
		t.heads[b] = noSlot
	}
	t.slots = append(t.slots[:0], slot{kind: kindFree}, slot{kind: kindFree})
	t.slots[lruHead].prev, t.slots[lruHead].next = lruHead, lruHead
	t.slots[natHead].prev, t.slots[natHead].next = natHead, natHead
	clear(t.data)
	t.data = append(t.data[:0], nil, nil)
	t.whys = nil
	t.free = noSlot
	t.n = 0
}

// keyHash mixes a name's hash with the rest of the key. The keys a miss
// looks up together (colocated) keep the name's hash in their low 32
// bits, which choose the bucket: they share one chain, and the lookups
// after the first find its bucket and slots in the processor's cache. A
// miss looked up its keys (answer, NXDOMAIN, CNAME, NS; then it stores the
// answer and the RRset) in as many random places of a table of hundreds
// of megabytes; the lookups' waits for memory were 4-5 % of a cold
// pass's CPU. Other keys take their buckets from the mixed hash, so
// that a name asked with every type cannot make a chain thousands long.
func keyHash(nameHash uint64, qtype uint16, kind cacheEntryKind) uint64 {
	h := nameHash ^ (uint64(qtype)<<8|uint64(kind)+1)*0x9e3779b97f4a7c15
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	if colocated(qtype, kind) {
		h = h&^nameBits | nameHash&nameBits
	}
	return h
}

// nameBits are the bits of a colocated key's hash that are its name's.
const nameBits = 1<<32 - 1

// colocated reports whether a key shares its name's chain: a name's
// NXDOMAIN and its answers and RRsets for A, AAAA, CNAME and NS (the
// search for the closest zone cut starts with the name's own NS RRset),
// at most nine keys (a bucket is chosen by at most 32 bits: a shard of
// 2^32 buckets would hold a cache of petabytes).
func colocated(qtype uint16, kind cacheEntryKind) bool {
	switch kind {
	case kindNX:
		return true
	case kindMsg, kindRRset:
		switch qtype {
		case dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeNS:
			return true
		}
	}
	return false
}

// nameHash hashes a canonical name with the cache's seed, drawn when the
// cache is made: an attacker who chooses names cannot aim them at one
// chain.
func (c *Cache) nameHash(name string) uint64 { return maphash.String(c.seed, name) }

// bucket returns the bucket of hash h.
func (t *slotTable) bucket(h uint64) int { return int(h & uint64(len(t.heads)-1)) }

// find returns the slot of key (name, qtype, kind), name's hash being nh.
func (t *slotTable) find(nh uint64, name string, qtype uint16, kind cacheEntryKind) (int32, bool) {
	h := keyHash(nh, qtype, kind)
	for i := t.heads[t.bucket(h)]; i != noSlot; {
		s := &t.slots[i]
		if s.hash == h && s.qtype == qtype && s.kind == kind && entryName(t.data[i]) == name {
			return i, true
		}
		i = s.chain
	}
	return noSlot, false
}

// grow doubles the buckets and puts every slot in use in its new chain.
func (t *slotTable) grow() {
	heads := make([]int32, 2*len(t.heads))
	for b := range heads {
		heads[b] = noSlot
	}
	t.heads = heads
	for i := range t.inUse() {
		s := &t.slots[i]
		b := t.bucket(s.hash)
		s.chain, t.heads[b] = t.heads[b], i
	}
}

// add stores s (its hash, kind and qtype set) with data and why in a free
// slot, indexes it and returns its number. The caller links it into a
// ring and has removed any slot of the same key.
func (t *slotTable) add(s slot, data []byte, why error) int32 {
	if t.n >= len(t.heads) {
		t.grow() // before i is taken: grow indexes the slots in use
	}
	i := t.free
	if i != noSlot {
		t.free = t.slots[i].next
	} else {
		i = int32(len(t.slots))
		t.slots = append(t.slots, slot{})
		t.data = append(t.data, nil)
	}
	b := t.bucket(s.hash)
	s.chain, t.heads[b] = t.heads[b], i
	s.why = why != nil
	if s.why {
		if t.whys == nil {
			t.whys = make(map[int32]error)
		}
		t.whys[i] = why
	}
	t.slots[i] = s
	t.data[i] = data
	t.n++
	return i
}

// drop unindexes slot i and frees it; the caller has unlinked it from
// its ring.
func (t *slotTable) drop(i int32) {
	s := &t.slots[i]
	b := t.bucket(s.hash)
	if t.heads[b] == i {
		t.heads[b] = s.chain
	} else {
		for p := t.heads[b]; p != noSlot; p = t.slots[p].chain {
			if t.slots[p].chain == i {
				t.slots[p].chain = s.chain
				break
			}
		}
	}
	if s.why {
		delete(t.whys, i)
	}
	*s = slot{kind: kindFree, next: t.free}
	t.data[i] = nil
	t.free = i
	t.n--
}

// inUse yields the slots in use, sentinels aside, in slot order. The
// loop may remove the slot it is given.
func (t *slotTable) inUse() iter.Seq[int32] {
	return func(yield func(int32) bool) {
		for i := int32(natHead + 1); i < int32(len(t.slots)); i++ {
			if t.slots[i].kind != kindFree && !yield(i) {
				return
			}
		}
	}
}

// link puts slot i at the front of the ring of head.
func (t *slotTable) link(head, i int32) {
	s, h := &t.slots[i], &t.slots[head]
	s.prev, s.next = head, h.next
	t.slots[h.next].prev = i
	h.next = i
}

// unlink takes slot i out of its ring.
func (t *slotTable) unlink(i int32) {
	s := &t.slots[i]
	t.slots[s.prev].next = s.next
	t.slots[s.next].prev = s.prev
	s.prev, s.next = noSlot, noSlot
}

func (t *slotTable) why(i int32) error {
	if !t.slots[i].why {
		return nil
	}
	return t.whys[i]
}

// An entry's bytes are its owner name, as its length and its presentation
// form, then its records. The length is one octet, or, for a name of 255
// characters or more (escapes make a name of 255 octets up to four times
// as long), the octet 0xff and two octets big-endian. Each record is:
//
//	owner   one octet: ownerEntry (the entry's name), ownerPrev (the
//	        previous record's owner), or ownerWire, followed by the owner
//	        in uncompressed, lower-cased wire form
//	type    two octets
//	rdlen   two octets
//	rdata   rdlen octets, uncompressed, as the record was packed
//
// Every record held is of class IN, and the TTL is the entry's: neither
// is kept.
const (
	ownerEntry = iota
	ownerPrev
	ownerWire
)

// entryName returns the name at the start of an entry's bytes, as a
// string sharing them. An entry's bytes are never modified once made, so
// the string may be kept; it keeps them alive.
func entryName(d []byte) string {
	start, n := nameBounds(d)
	return unsafe.String(&d[start], n)
}

// nameBounds returns where an entry's name starts in its bytes, and its
// length.
func nameBounds(d []byte) (start, n int) {
	if d[0] != longName {
		return 1, int(d[0])
	}
	return 3, int(d[1])<<8 | int(d[2])
}

// longName is the length octet of an entry whose name's length follows in
// two octets.
const longName = 0xff

// recordsOf returns the part of an entry's bytes after its name.
func recordsOf(d []byte) []byte {
	start, n := nameBounds(d)
	return d[start+n:]
}

// appendEntryName appends name's length and name, as an entry starts.
func appendEntryName(b []byte, name string) []byte {
	if len(name) < longName {
		b = append(b, byte(len(name)))
	} else {
		b = append(b, longName, byte(len(name)>>8), byte(len(name)))
	}
	return append(b, name...)
}

var errEntryWire = errors.New("cache entry: malformed records")

// encodeEntry returns name and rrs (owners of class IN, the cache may
// hold them: see cacheable) in the form above, in one allocation of its
// size. It reads the records only.
func encodeEntry(name string, rrs []dns.RR) ([]byte, bool) {
	if len(name) > MaxNameText {
		return nil, false
	}
	// Packing a message writes its records' wire form into the buffer
	// only; dns.PackRR would also set each record's Rdlength, a write to
	// records other goroutines may be reading.
	var stack [1024]byte
	m := dns.Msg{Answer: rrs}
	packed, ok := wire.AppendMsg(stack[:0], &m)
	if !ok {
		var err error
		if packed, err = m.Pack(); err != nil { // its own buffer: stack stays on the stack
			return nil, false
		}
	}
	// The compact form is shorter than the packed one: convert it in
	// place, then copy it out after the name.
	r, w := 12, 12
	prev := ""
	for _, rr := range rrs {
		h := rr.Header()
		end := r
		for end < len(packed) && packed[end] != 0 {
			end += 1 + int(packed[end])
		}
		end++ // the root label
		if end+10 > len(packed) {
			return nil, false
		}
		switch {
		case nameIs(h.Name, name):
			packed[w] = ownerEntry
			w++
			prev = name
		case prev != "" && nameIs(h.Name, prev):
			packed[w] = ownerPrev
			w++
		default:
			// The first record's owner moves one octet up for its mark;
			// every record before it saved at least five.
			asciiLowerBytes(packed[r:end])
			copy(packed[w+1:], packed[r:end])
			packed[w] = ownerWire
			w += 1 + end - r
			prev = h.Name
		}
		rdlen := int(binary.BigEndian.Uint16(packed[end+8:]))
		if end+10+rdlen > len(packed) {
			return nil, false
		}
		w += copy(packed[w:], packed[end:end+2])          // type
		w += copy(packed[w:], packed[end+8:end+10+rdlen]) // rdlen and rdata
		r = end + 10 + rdlen
	}
	// The exact size: two octets spare put a short entry in the
	// allocator's next size class (BenchmarkCacheMemory: 155 bytes an
	// entry instead of 139).
	head := 1
	if len(name) >= longName {
		head = 3
	}
	out := appendEntryName(make([]byte, 0, head+len(name)+w-12), name)
	return append(out, packed[12:w]...), true
}

// MaxNameText is the longest presentation form of a name of 255 octets
// or fewer: every octet of a label escaped (\DDD), and the dots. No
// longer name is cached, exported or imported.
const MaxNameText = 4 * 255

// nameIs reports whether owner, a name as a record carries it, is canon
// (canonical: see cacheName), without allocating for the usual names.
func nameIs(owner, canon string) bool {
	if n := len(owner); n > 0 && owner[n-1] == '.' && strings.IndexByte(owner, '\\') < 0 {
		return len(owner) == len(canon) && strings.EqualFold(owner, canon)
	}
	return cacheName(owner) == canon
}

// wireRecord is one record of an entry's bytes, as nextRecord finds it.
type wireRecord struct {
	mark  byte // ownerEntry, ownerPrev or ownerWire
	owner int  // where the owner's wire form starts (ownerWire)
	typ   uint16
	rdata int // where the data starts
	rdlen int
	next  int // where the next record starts
}

// nextRecord parses the record of rec (an entry's records) at off.
func nextRecord(rec []byte, off int) (r wireRecord, ok bool) {
	if off >= len(rec) {
		return r, false
	}
	r.mark = rec[off]
	off++
	switch r.mark {
	case ownerEntry, ownerPrev:
	case ownerWire:
		r.owner = off
		for off < len(rec) && rec[off] != 0 {
			off += 1 + int(rec[off])
		}
		off++ // the root label
	default:
		return r, false
	}
	if off+4 > len(rec) {
		return r, false
	}
	r.typ = binary.BigEndian.Uint16(rec[off:])
	r.rdlen = int(binary.BigEndian.Uint16(rec[off+2:]))
	r.rdata = off + 4
	r.next = r.rdata + r.rdlen
	return r, r.next <= len(rec)
}

// decodeRecords appends the records of an entry's bytes d to dst, each a
// new record with TTL ttl. Their owners share d's bytes when they are the
// entry's name.
func decodeRecords(dst []dns.RR, d []byte, ttl uint32) ([]dns.RR, error) {
	name := entryName(d)
	rec := recordsOf(d)
	prev := name
	for off := 0; off < len(rec); {
		r, ok := nextRecord(rec, off)
		if !ok {
			return dst, errEntryWire
		}
		owner := prev
		switch r.mark {
		case ownerEntry:
			owner = name
		case ownerWire:
			s, _, err := dns.UnpackDomainName(rec, r.owner)
			if err != nil {
				return dst, errEntryWire
			}
			owner = s
		}
		prev = owner
		h := dns.RR_Header{Name: owner, Rrtype: r.typ, Class: dns.ClassINET, Ttl: ttl, Rdlength: uint16(r.rdlen)}
		data := rec[r.rdata:r.next]
		switch {
		case r.typ == dns.TypeA && r.rdlen == net.IPv4len:
			dst = append(dst, boxA(h, data))
		case r.typ == dns.TypeAAAA && r.rdlen == net.IPv6len:
			dst = append(dst, boxAAAA(h, data))
		case r.typ == dns.TypeRRSIG && plainRRSIG(data):
			dst = append(dst, boxRRSIG(h, data))
		default:
			rr, _, err := dns.UnpackRRWithHeader(h, rec[:r.next], r.rdata)
			if err != nil {
				return dst, errEntryWire
			}
			dst = append(dst, rr)
		}
		off = r.next
	}
	return dst, nil
}

// recordsEnd returns the length of the first n records of an entry's
// bytes d, the name included: the bytes of an entry holding those
// records alone.
func recordsEnd(d []byte, n int) (int, bool) {
	start, n0 := nameBounds(d)
	base := start + n0
	rec := d[base:]
	off := 0
	for range n {
		r, ok := nextRecord(rec, off)
		if !ok {
			return 0, false
		}
		off = r.next
	}
	return base + off, true
}

// aBox and aaaaBox are an address record and its address, one
// allocation.
type (
	aBox struct {
		rr   dns.A
		addr [net.IPv4len]byte
	}
	aaaaBox struct {
		rr   dns.AAAA
		addr [net.IPv6len]byte
	}
)

// boxA returns an A record of header h and address addr (4 octets), one
// allocation with its address.
func boxA(h dns.RR_Header, addr []byte) dns.RR {
	b := &aBox{rr: dns.A{Hdr: h}}
	copy(b.addr[:], addr)
	b.rr.A = b.addr[:]
	return &b.rr
}

// rrsigFixed is the length of an RRSIG's data before its signer's name.
const rrsigFixed = 18

// plainRRSIG reports whether d, an RRSIG's data, is one boxRRSIG reads:
// whole, its signer's name uncompressed and of letters, digits, '-', '_'
// and '*' alone (no character its presentation form escapes).
func plainRRSIG(d []byte) bool {
	off := rrsigFixed
	for off < len(d) {
		l := int(d[off])
		if l == 0 {
			return true
		}
		if l > 63 || off+1+l > len(d) {
			return false
		}
		for _, b := range d[off+1 : off+1+l] {
			if !plainByte(b) {
				return false
			}
		}
		off += 1 + l
	}
	return false
}

func plainByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == '*'
}

// boxRRSIG returns the RRSIG of header h and data d, which plainRRSIG
// accepts, as dns.UnpackRRWithHeader would, in two allocations instead of
// six: the record, and the signature's base64 text with the signer's name
// (none for the name when it ends the owner's, as a zone's name ends the
// names it signs: it shares the owner's bytes).
func boxRRSIG(h dns.RR_Header, d []byte) dns.RR {
	var name [256]byte
	n, off := 0, rrsigFixed
	for l := int(d[off]); l != 0; l = int(d[off]) {
		n += copy(name[n:], d[off+1:off+1+l])
		name[n] = '.'
		n++
		off += 1 + l
	}
	if n == 0 {
		name[0], n = '.', 1
	}
	sig := d[off+1:]
	signer := ""
	// Compared where it is: the name is copied only if it is kept.
	if o := h.Name; strings.HasSuffix(o, unsafe.String(&name[0], n)) && (len(o) == n || n == 1 || o[len(o)-n-1] == '.' && !escapedDot(o, len(o)-n-1)) {
		signer = o[len(o)-n:]
	}
	b64 := base64.StdEncoding.EncodedLen(len(sig))
	room := b64
	if signer == "" {
		room += n
	}
	var text string
	if room > 0 {
		buf := make([]byte, room)
		base64.StdEncoding.Encode(buf, sig)
		if signer == "" {
			copy(buf[b64:], name[:n])
			signer = unsafe.String(&buf[b64], n)
		}
		if b64 > 0 {
			text = unsafe.String(&buf[0], b64)
		}
	}
	return &dns.RRSIG{Hdr: h,
		TypeCovered: binary.BigEndian.Uint16(d),
		Algorithm:   d[2],
		Labels:      d[3],
		OrigTtl:     binary.BigEndian.Uint32(d[4:]),
		Expiration:  binary.BigEndian.Uint32(d[8:]),
		Inception:   binary.BigEndian.Uint32(d[12:]),
		KeyTag:      binary.BigEndian.Uint16(d[16:]),
		SignerName:  signer,
		Signature:   text}
}

// escapedDot reports whether the '.' at i in name, a presentation form, is
// escaped: preceded by an odd number of backslashes.
func escapedDot(name string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && name[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// boxAAAA is boxA for an AAAA record (16 octets).
func boxAAAA(h dns.RR_Header, addr []byte) dns.RR {
	b := &aaaaBox{rr: dns.AAAA{Hdr: h}}
	copy(b.addr[:], addr)
	b.rr.AAAA = b.addr[:]
	return &b.rr
}
