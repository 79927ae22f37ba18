package zonestore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/zone"
)

// Every commit that changes a zone appends one entry to the zone's journal,
// in the same transaction:
//
//	zones/<origin>/journal/<seq>   seq: 8 bytes big-endian, from the bucket's sequence
//	zones/<origin>/info/journal    total bytes of the journal's values, 8 bytes big-endian
//
// An entry holds the SOA before and after, the records removed and added
// (SOA aside, signatures included, as IXFR sends them), the time, the
// author and the operation. The journal is what IXFR (RFC 1995) is built
// from and what `zone history` shows. It is bounded by Options.JournalMaxBytes
// and JournalMaxAge: the oldest entries go first, the newest always stays.
// A change too large to keep whole (more than a quarter of the bound), and
// a zone's creation, are kept as a summary without records, which an IXFR
// cannot cross.
var (
	bucketJournal = []byte("journal")
	keyJournal    = []byte("journal")
	keyKind       = []byte("kind")
	keyRefreshed  = []byte("refreshed")
	keySource     = []byte("source")
)

// Default journal bounds.
const (
	DefaultJournalMaxBytes = 16 << 20
	DefaultJournalMaxAge   = 90 * 24 * time.Hour
)

// Operations named in journal entries.
const (
	OpCreate        = "create"
	OpImport        = "import"
	OpEdit          = "edit"
	OpDNSSECEnable  = "dnssec-enable"
	OpDNSSECDisable = "dnssec-disable"
	OpRollover      = "rollover"
	OpMaintain      = "resign"
	OpTransfer      = "transfer"
)

// ErrNoJournal means the journal does not reach back to the serial asked
// for: a transfer must send the whole zone.
var ErrNoJournal = errors.New("the journal does not reach back to that serial")

// Entry is one committed change of a zone.
type Entry struct {
	Seq     uint64
	Time    time.Time
	Author  string
	Op      string
	From    *dns.SOA // nil for a zone's creation
	To      *dns.SOA
	Removed []dns.RR // SOA aside; empty in a summary
	Added   []dns.RR
	// Summary: the records were not kept, only their numbers.
	Summary      bool
	RemovedCount int
	AddedCount   int
}

// FromSerial is the serial before the change, 0 for a creation.
func (e *Entry) FromSerial() uint32 {
	if e.From == nil {
		return 0
	}
	return e.From.Serial
}

// entryJSON is an Entry as the control API and `zone history --json` show it.
type entryJSON struct {
	Seq          uint64    `json:"seq"`
	Time         time.Time `json:"time"`
	Author       string    `json:"author"`
	Op           string    `json:"op"`
	From         uint32    `json:"from_serial"`
	To           uint32    `json:"to_serial"`
	FromSOA      string    `json:"from_soa,omitempty"`
	ToSOA        string    `json:"to_soa"`
	Summary      bool      `json:"summary,omitempty"`
	RemovedCount int       `json:"removed_count"`
	AddedCount   int       `json:"added_count"`
	Removed      []string  `json:"removed"`
	Added        []string  `json:"added"`
}

// MarshalJSON writes the entry with its records in master-file form.
func (e Entry) MarshalJSON() ([]byte, error) {
	j := entryJSON{Seq: e.Seq, Time: e.Time.UTC(), Author: e.Author, Op: e.Op, From: e.FromSerial(),
		Summary: e.Summary, RemovedCount: e.RemovedCount, AddedCount: e.AddedCount,
		Removed: rrStrings(e.Removed), Added: rrStrings(e.Added)}
	if e.From != nil {
		j.FromSOA = e.From.String()
	}
	if e.To != nil {
		j.To, j.ToSOA = e.To.Serial, e.To.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var j entryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = Entry{Seq: j.Seq, Time: j.Time, Author: j.Author, Op: j.Op, Summary: j.Summary,
		RemovedCount: j.RemovedCount, AddedCount: j.AddedCount}
	var err error
	soa := func(s string) (*dns.SOA, error) {
		if s == "" {
			return nil, nil
		}
		rr, err := dns.NewRR(s)
		if err != nil {
			return nil, err
		}
		if soa, ok := rr.(*dns.SOA); ok {
			return soa, nil
		}
		return nil, fmt.Errorf("not an SOA: %q", s)
	}
	if e.From, err = soa(j.FromSOA); err != nil {
		return err
	}
	if e.To, err = soa(j.ToSOA); err != nil {
		return err
	}
	if e.Removed, err = parseRRStrings(j.Removed); err != nil {
		return err
	}
	e.Added, err = parseRRStrings(j.Added)
	return err
}

func rrStrings(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.String()
	}
	return out
}

func parseRRStrings(ss []string) ([]dns.RR, error) {
	out := make([]dns.RR, 0, len(ss))
	for _, s := range ss {
		rr, err := dns.NewRR(s)
		if err != nil {
			return nil, err
		}
		out = append(out, rr)
	}
	return out, nil
}

// Diff returns the records of old that z no longer has and those z added,
// SOA aside, signatures and NSEC3 records included. A record whose TTL
// changed is removed and added again.
func Diff(old, z *zone.Zone) (removed, added []dns.RR) {
	if old == nil {
		z.WalkAll(func(_ []byte, n *zone.Node) bool {
			added = appendNode(added, n, nil)
			return true
		})
		return nil, added
	}
	z.WalkAll(func(_ []byte, n *zone.Node) bool {
		o := old.LookupAny(n.Key)
		if o == nil {
			added = appendNode(added, n, nil)
			return true
		}
		if !sameNode(o, n) {
			added = appendNode(added, n, o)
			removed = appendNode(removed, o, n)
		}
		return true
	})
	old.WalkAll(func(_ []byte, o *zone.Node) bool {
		if z.LookupAny(o.Key) == nil {
			removed = appendNode(removed, o, nil)
		}
		return true
	})
	return removed, added
}

// diffKeys is Diff for a change that touched only the names with the
// given keys (the owners of NSEC3 records included): it compares those
// names alone.
func diffKeys(old, z *zone.Zone, keys map[string]bool) (removed, added []dns.RR) {
	for k := range keys {
		o, n := old.LookupAny(k), z.LookupAny(k)
		switch {
		case o == nil && n == nil:
		case o == nil:
			added = appendNode(added, n, nil)
		case n == nil:
			removed = appendNode(removed, o, nil)
		case !sameNode(o, n):
			added = appendNode(added, n, o)
			removed = appendNode(removed, o, n)
		}
	}
	return removed, added
}

// appendNode appends n's records (SOA aside) that other, if any, does not
// hold.
func appendNode(out []dns.RR, n, other *zone.Node) []dns.RR {
	for i := range n.RRsets {
		set := &n.RRsets[i]
		var os *zone.RRset
		if other != nil {
			os = other.Get(set.Type)
		}
		for _, rr := range set.All() {
			if rr.Header().Rrtype == dns.TypeSOA {
				continue
			}
			if os != nil && containsRecord(os.All(), rr) {
				continue
			}
			out = append(out, rr)
		}
	}
	return out
}

func containsRecord(rrs []dns.RR, rr dns.RR) bool {
	for _, x := range rrs {
		if x.Header().Ttl == rr.Header().Ttl && dns.IsDuplicate(x, rr) {
			return true
		}
	}
	return false
}

// journal appends the change from old (nil for a new zone) to z to the
// zone's journal and trims it to its bounds. touched, when not nil, holds
// the keys of every name the change can have altered.
func (s *Store) journal(tx *bolt.Tx, old, z *zone.Zone, op string, now time.Time, touched map[string]bool) error {
	zb, err := zoneBucket(tx, z.Origin)
	if err != nil {
		return err
	}
	jb, err := zb.CreateBucketIfNotExists(bucketJournal)
	if err != nil {
		return err
	}
	e := Entry{Time: now, Author: s.Author(), Op: op, To: z.SOA}
	if old == nil {
		e.Summary, e.AddedCount = true, z.Len()
	} else {
		e.From = old.SOA
		if touched != nil {
			e.Removed, e.Added = diffKeys(old, z, touched)
		} else {
			e.Removed, e.Added = Diff(old, z)
		}
		e.RemovedCount, e.AddedCount = len(e.Removed), len(e.Added)
	}
	maxBytes := s.journalMaxBytes()
	if wireSize(e.Removed)+wireSize(e.Added) > maxBytes/4 {
		// Too large to keep whole, as encoding it would show: found
		// without the copy (a whole zone signed is several times its size).
		e.Summary, e.Removed, e.Added = true, nil, nil
	}
	val, err := encodeEntry(&e)
	if err != nil {
		return err
	}
	if len(val) > maxBytes/4 {
		e.Summary, e.Removed, e.Added = true, nil, nil
		if val, err = encodeEntry(&e); err != nil {
			return err
		}
	}
	seq, err := jb.NextSequence()
	if err != nil {
		return err
	}
	if err := jb.Put(binary.BigEndian.AppendUint64(nil, seq), val); err != nil {
		return err
	}
	ib := zb.Bucket(bucketInfo)
	total := uint64(len(val))
	if v := ib.Get(keyJournal); len(v) == 8 {
		total += binary.BigEndian.Uint64(v)
	}
	// Trim from the oldest; the newest entry always stays.
	cutoff := time.Time{}
	if age := s.opts.JournalMaxAge; age > 0 {
		cutoff = now.Add(-age)
	}
	c := jb.Cursor()
	for k, v := c.First(); k != nil && binary.BigEndian.Uint64(k) != seq; k, v = c.First() {
		if total <= uint64(maxBytes) && !entryTime(v).Before(cutoff) {
			break
		}
		total -= min(total, uint64(len(v)))
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return ib.Put(keyJournal, binary.BigEndian.AppendUint64(nil, total))
}

// wireSize returns the uncompressed wire size of rrs: no more than their
// encoding in a journal entry takes.
func wireSize(rrs []dns.RR) int {
	n := 0
	for _, rr := range rrs {
		n += dns.Len(rr)
	}
	return n
}

func (s *Store) journalMaxBytes() int {
	if s.opts.JournalMaxBytes > 0 {
		return s.opts.JournalMaxBytes
	}
	return DefaultJournalMaxBytes
}

// Entry encoding: version 1, flags (1: summary), time (unix ns, 8 bytes),
// author and op (2-byte length each), removed and added counts (4 bytes
// each), then the records in uncompressed wire form: the From SOA (when
// flag 2), the To SOA, the removed records, the added records.
const (
	entryVersion = 1
	flagSummary  = 1
	flagFrom     = 2
)

func encodeEntry(e *Entry) ([]byte, error) {
	buf := []byte{entryVersion, 0}
	if e.Summary {
		buf[1] |= flagSummary
	}
	if e.From != nil {
		buf[1] |= flagFrom
	}
	buf = binary.BigEndian.AppendUint64(buf, uint64(e.Time.UnixNano()))
	for _, s := range []string{e.Author, e.Op} {
		if len(s) > 1024 {
			s = s[:1024]
		}
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(e.RemovedCount))
	buf = binary.BigEndian.AppendUint32(buf, uint32(e.AddedCount))
	var rrs []dns.RR
	if e.From != nil {
		rrs = append(rrs, e.From)
	}
	rrs = append(rrs, e.To)
	rrs = append(rrs, e.Removed...)
	rrs = append(rrs, e.Added...)
	return appendShared(buf, rrs)
}

func entryTime(v []byte) time.Time {
	if len(v) < 10 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[2:10])))
}

func decodeEntry(seq uint64, v []byte) (*Entry, error) {
	bad := func(what string) (*Entry, error) {
		return nil, fmt.Errorf("%w: journal entry %d: %s", ErrCorrupt, seq, what)
	}
	if len(v) < 10 || v[0] != entryVersion {
		return bad("unknown format")
	}
	e := &Entry{Seq: seq, Summary: v[1]&flagSummary != 0, Time: entryTime(v)}
	off := 10
	for _, dst := range []*string{&e.Author, &e.Op} {
		if len(v) < off+2 {
			return bad("short")
		}
		n := int(binary.BigEndian.Uint16(v[off:]))
		off += 2
		if len(v) < off+n {
			return bad("short")
		}
		*dst = string(v[off : off+n])
		off += n
	}
	if len(v) < off+8 {
		return bad("short")
	}
	e.RemovedCount = int(binary.BigEndian.Uint32(v[off:]))
	e.AddedCount = int(binary.BigEndian.Uint32(v[off+4:]))
	off += 8
	rrs, err := decodeRRs(nil, v[off:], nil)
	if err != nil {
		return bad(err.Error())
	}
	soa := func() *dns.SOA {
		if len(rrs) == 0 {
			return nil
		}
		s, ok := rrs[0].(*dns.SOA)
		if ok {
			rrs = rrs[1:]
		}
		return s
	}
	if v[1]&flagFrom != 0 {
		if e.From = soa(); e.From == nil {
			return bad("no SOA")
		}
	}
	if e.To = soa(); e.To == nil {
		return bad("no SOA")
	}
	if !e.Summary {
		if len(rrs) != e.RemovedCount+e.AddedCount {
			return bad("record count")
		}
		e.Removed, e.Added = rrs[:e.RemovedCount:e.RemovedCount], rrs[e.RemovedCount:]
	}
	return e, nil
}

// History returns the zone's last limit journal entries (all when limit is
// 0 or less), oldest first.
func (s *Store) History(origin string, limit int) ([]Entry, error) {
	origin = zone.Fqdn(origin)
	var out []Entry
	err := s.db.View(func(tx *bolt.Tx) error {
		zb, err := zoneBucket(tx, origin)
		if err != nil {
			return err
		}
		jb := zb.Bucket(bucketJournal)
		if jb == nil {
			return nil
		}
		c := jb.Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			e, err := decodeEntry(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			out = append(out, *e)
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// Changes returns the journal entries that lead from serial from to the
// zone's current contents, oldest first, with those contents, for an IXFR.
// It returns ErrNoJournal when the journal does not reach back to from
// without a gap, and no entries when from is the current serial.
func (s *Store) Changes(origin string, from uint32) ([]Entry, *zone.Zone, error) {
	origin = zone.Fqdn(origin)
	defer s.lockZone(origin)()
	z, err := s.load(origin)
	if err != nil {
		return nil, nil, err
	}
	if z.Serial() == from {
		return nil, z, nil
	}
	var chain []Entry
	err = s.db.View(func(tx *bolt.Tx) error {
		zb, err := zoneBucket(tx, origin)
		if err != nil {
			return err
		}
		jb := zb.Bucket(bucketJournal)
		if jb == nil {
			return ErrNoJournal
		}
		want := z.Serial()
		c := jb.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			e, err := decodeEntry(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			if e.Summary || e.From == nil || e.To.Serial != want {
				return ErrNoJournal
			}
			chain = append(chain, *e)
			if e.From.Serial == from {
				return nil
			}
			want = e.From.Serial
		}
		return ErrNoJournal
	})
	if err != nil {
		return nil, nil, fmt.Errorf("zone %s from serial %d: %w", origin, from, err)
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain, z, nil
}
