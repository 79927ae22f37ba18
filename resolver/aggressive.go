package resolver

// Aggressive use of the DNSSEC-validated cache (RFC 8198). The NSEC and
// NSEC3 records of every negative answer the validator found Secure are
// kept in an index, by zone: NSEC records in canonical order of their
// owner names, NSEC3 records in order of their hashes. A question the
// cache cannot answer is then answered NXDOMAIN or NODATA without asking
// upstream when the records held prove it, as Unbound (aggressive-nsec),
// BIND (synth-from-dnssec) and Knot Resolver do: names never asked for in
// a range already known, during an outage as at any time, and a flood of
// random names under one zone costs the servers one query per range, not
// one per name.
//
// The rules of RFC 8198 §5:
//   - only Secure records from validated denial proofs, with the SOA (and
//     its RRSIGs) of the zone that sent them;
//   - the proof must be complete, checked with the validator's own code
//     (dnssec.ProveNXDomain, dnssec.ProveNoData): for NXDOMAIN an NSEC
//     covering the name and one covering the wildcard at its closest
//     encloser; for NSEC3, the closest encloser matched, the next closer
//     name and the wildcard covered, without opt-out;
//   - a wildcard that exists, or that no record held denies, stops an
//     NXDOMAIN (a NODATA from a wildcard lacking the type is given);
//   - nothing is said about names below a zone cut: an NSEC whose owner is
//     a delegation (NS without SOA) or a DNAME above the name denies
//     nothing under it, and NSEC at a delegation speaks only for DS;
//   - the TTL is the smallest of what is left of the records used and the
//     SOA's MINIMUM;
//   - the answer is Secure: AD for clients that ask, the proof records and
//     their RRSIGs for clients that set DO;
//   - nothing under a negative trust anchor.
//
// Records past their TTL are never used for a fresh answer. They are kept
// for the cache's stale window and answer, through serve-stale (stale.go),
// only when a question cannot be resolved (upstream failed, or island
// mode for a foreign name): a stale NXDOMAIN carries EDE 19, a stale
// NODATA EDE 3, like any other stale answer.
//
// The index belongs to the cache: it is filled as Secure negative answers
// are stored (PutValidated), rebuilt from a cache restored from its file
// (IndexDenials), flushed with the cache (Flush, FlushName), and bounded
// to a sixteenth of the cache's MaxBytes, by the same size estimate as the
// cache's entries. The resolver turns it on (Config.DNSSEC.AggressiveNSEC).

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// denialShare is the part of the cache's MaxBytes the denial index may
// take: a sixteenth (4 MiB of the default 64).
const denialShare = 16

// denialIndex holds validated NSEC and NSEC3 records by zone.
type denialIndex struct {
	c        *Cache // the clock and the stale window
	on       atomic.Bool
	maxBytes int64
	records  atomic.Int64 // records held, for the metrics

	mu    sync.RWMutex
	zones map[string]*denialZone // by zone apex, lower-case
	bytes int64
	seq   uint64
}

// denialZone is what the index holds of one zone.
type denialZone struct {
	soa    []dns.RR // the SOA and its RRSIGs
	soaExp int64    // Unix nanoseconds
	soaSz  int64
	nsec   []*denialRec // by canonicalKey of the owner
	nsec3  []*denialRec // by hash (the owner's first label, upper-case)
	n3iter uint16       // the NSEC3 parameters of nsec3
	n3salt string       // hex, upper-case; "" for none
}

// denialRec is one NSEC or NSEC3 record with its RRSIGs.
type denialRec struct {
	key    string
	rr     dns.RR // *dns.NSEC or *dns.NSEC3, owner lower-case
	sigs   []dns.RR
	expire int64 // Unix nanoseconds
	size   int64
	used   atomic.Int64 // when last stored or used in a synthesis (Unix nanoseconds)
	seq    uint64       // order of insertion, the tie-break of evictions
	dead   bool         // evicted; set with the index's lock held
}

func newDenialIndex(c *Cache) *denialIndex {
	return &denialIndex{c: c, maxBytes: c.budget * cacheShards / denialShare, zones: map[string]*denialZone{}}
}

// records returns the record and its RRSIGs.
func (d *denialRec) records() []dns.RR {
	return append([]dns.RR{d.rr}, d.sigs...)
}

// usable reports whether what expires at expire may be used now: fresh,
// or with stale within the cache's stale window.
func (x *denialIndex) usable(expire, now int64, stale bool) bool {
	return now < expire || (stale && now < expire+x.c.staleWindow)
}

// add indexes the denial records of ns, the authority section of a Secure
// negative answer stored until expire: the zone's SOA with its RRSIGs,
// and its NSEC or NSEC3 records with theirs. Owner names are lower-case;
// the records are the index's own (copies), never modified.
func (x *denialIndex) add(ns []dns.RR, expire, now int64) {
	if !x.on.Load() || x.maxBytes <= 0 || now >= expire+x.c.staleWindow {
		return
	}
	zone := ""
	for _, rr := range ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			zone = rr.Header().Name
			break
		}
	}
	if zone == "" {
		return
	}
	var soa []dns.RR
	var nsec, nsec3 []*denialRec
	sigsOf := func(owner string, t uint16) []dns.RR {
		var out []dns.RR
		for _, rr := range ns {
			if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == t && s.Hdr.Name == owner && cacheName(s.SignerName) == zone {
				out = append(out, rr)
			}
		}
		return out
	}
	for _, rr := range ns {
		h := rr.Header()
		switch v := rr.(type) {
		case *dns.SOA:
			if h.Name == zone && soa == nil {
				soa = append([]dns.RR{rr}, sigsOf(zone, dns.TypeSOA)...)
			}
		case *dns.NSEC:
			if dns.IsSubDomain(zone, h.Name) {
				if sigs := sigsOf(h.Name, dns.TypeNSEC); len(sigs) > 0 {
					nsec = append(nsec, &denialRec{key: canonicalKey(h.Name), rr: rr, sigs: sigs, expire: expire})
				}
			}
		case *dns.NSEC3:
			label, parent, ok := strings.Cut(h.Name, ".")
			if ok && (parent == zone || (parent == "" && zone == ".")) && v.Hash == dns.SHA1 {
				if sigs := sigsOf(h.Name, dns.TypeNSEC3); len(sigs) > 0 {
					nsec3 = append(nsec3, &denialRec{key: strings.ToUpper(label), rr: rr, sigs: sigs, expire: expire})
				}
			}
		}
	}
	if len(soa) < 2 || len(nsec)+len(nsec3) == 0 {
		return // an unsigned SOA, or nothing to index
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	z := x.zones[zone]
	if z == nil {
		z = &denialZone{}
		x.zones[zone] = z
	}
	x.bytes -= z.soaSz
	z.soa, z.soaExp, z.soaSz = soa, expire, objectSize(zone, soa)
	x.bytes += z.soaSz
	for _, d := range nsec {
		d.size = objectSize(d.key, d.records())
		d.used.Store(now)
		z.nsec = x.insert(z.nsec, d)
	}
	if len(nsec3) > 0 {
		n := nsec3[0].rr.(*dns.NSEC3)
		iter, salt := n.Iterations, normSalt(n.Salt)
		if len(z.nsec3) > 0 && (iter != z.n3iter || salt != z.n3salt) {
			// The zone changed its NSEC3 parameters: the old chain is gone.
			for _, d := range z.nsec3 {
				x.bytes -= d.size
				x.records.Add(-1)
			}
			z.nsec3 = nil
		}
		z.n3iter, z.n3salt = iter, salt
		for _, d := range nsec3 {
			n := d.rr.(*dns.NSEC3)
			if n.Iterations != iter || normSalt(n.Salt) != salt {
				continue
			}
			d.size = objectSize(d.key, d.records())
			d.used.Store(now)
			z.nsec3 = x.insert(z.nsec3, d)
		}
	}
	if x.bytes > x.maxBytes {
		x.evict(now)
	}
}

// insert puts d into recs, sorted by key, in place of a record with the
// same key. Called with x.mu held.
func (x *denialIndex) insert(recs []*denialRec, d *denialRec) []*denialRec {
	i, found := slices.BinarySearchFunc(recs, d.key, func(e *denialRec, k string) int { return strings.Compare(e.key, k) })
	x.bytes += d.size
	x.seq++
	d.seq = x.seq
	if found {
		x.bytes -= recs[i].size
		recs[i] = d
		return recs
	}
	x.records.Add(1)
	return slices.Insert(recs, i, d)
}

// evict makes room: records past their stale window go first, then
// those least recently used, down to three quarters of the budget, so
// that the next eviction is some insertions away. Called with x.mu held.
func (x *denialIndex) evict(now int64) {
	var live []*denialRec
	need := x.bytes - x.maxBytes*3/4
	for _, z := range x.zones {
		for _, recs := range [2][]*denialRec{z.nsec, z.nsec3} {
			for _, d := range recs {
				if x.usable(d.expire, now, true) {
					live = append(live, d)
				} else {
					d.dead = true
					need -= d.size
				}
			}
		}
	}
	if need > 0 {
		slices.SortFunc(live, func(a, b *denialRec) int {
			return cmp.Or(cmp.Compare(a.used.Load(), b.used.Load()), cmp.Compare(a.seq, b.seq))
		})
		for _, d := range live {
			if need <= 0 {
				break
			}
			d.dead = true
			need -= d.size
		}
	}
	for name, z := range x.zones {
		drop := func(recs []*denialRec) []*denialRec {
			return slices.DeleteFunc(recs, func(d *denialRec) bool {
				if d.dead {
					x.bytes -= d.size
					x.records.Add(-1)
				}
				return d.dead
			})
		}
		z.nsec, z.nsec3 = drop(z.nsec), drop(z.nsec3)
		if len(z.nsec)+len(z.nsec3) == 0 {
			x.bytes -= z.soaSz
			delete(x.zones, name)
		}
	}
}

// flush forgets everything.
func (x *denialIndex) flush() {
	x.mu.Lock()
	clear(x.zones)
	x.bytes = 0
	x.records.Store(0)
	x.mu.Unlock()
}

// flushName forgets what could speak for name and the names below it:
// the zones at or below it, and the deepest zone above it.
func (x *denialIndex) flushName(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	drop := func(zone string) {
		z := x.zones[zone]
		x.bytes -= z.soaSz
		for _, recs := range [2][]*denialRec{z.nsec, z.nsec3} {
			for _, d := range recs {
				x.bytes -= d.size
				x.records.Add(-1)
			}
		}
		delete(x.zones, zone)
	}
	for zone := range x.zones {
		if atOrBelow(zone, name) {
			drop(zone)
		}
	}
	for n := name; n != "."; {
		n = parentName(n)
		if _, ok := x.zones[n]; ok {
			drop(n)
			break
		}
	}
}

// IndexDenials indexes the denial records of the Secure negative answers
// the cache holds, fresh or stale: after a restore from the cache file,
// so that the aggressive use of NSEC goes on where it was. It returns how
// many records the index holds. It does nothing unless the resolver turned
// the index on.
func (c *Cache) IndexDenials() int {
	if !c.denials.on.Load() {
		return 0
	}
	type neg struct {
		ns     []dns.RR
		expire int64
	}
	var negs []neg
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for i := range sh.t.inUse() {
			if s := &sh.t.slots[i]; s.kind != kindRRset && s.sec == dnssec.Secure && s.mkind != MsgAnswer {
				e := sh.entry(i)
				_, ns, _ := sections(e.records(0), e.nAns, e.nNs)
				negs = append(negs, neg{ns, e.expire})
			}
		}
		sh.mu.Unlock()
	}
	// The oldest first, so that newer records replace them.
	slices.SortFunc(negs, func(a, b neg) int { return cmp.Compare(a.expire, b.expire) })
	now := c.now().UnixNano()
	for _, n := range negs {
		c.denials.add(n.ns, n.expire, now)
	}
	return int(c.denials.records.Load())
}

// DenialRecords is how many NSEC and NSEC3 records the aggressive-NSEC
// index holds.
func (c *Cache) DenialRecords() int64 { return c.denials.records.Load() }

// normSalt is an NSEC3 salt as dns.HashName takes it: hex, upper-case,
// empty for none.
func normSalt(s string) string {
	if s == "-" {
		return ""
	}
	return strings.ToUpper(s)
}

// canonicalKey returns a string whose byte order is the canonical order
// of names (RFC 4034 §6.1): the labels from the root down, each lower-
// cased, a zero octet in a label written 0x00 0x01 and the end of a label
// 0x00 0x00, so that a label sorts before the labels it is a prefix of.
func canonicalKey(name string) string {
	var buf [256]byte
	n, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false)
	if err != nil {
		return name
	}
	var starts [128]int
	k := 0
	for off := 0; off < n && buf[off] != 0; off += int(buf[off]) + 1 {
		starts[k] = off
		k++
	}
	out := make([]byte, 0, n+2*k)
	for i := k - 1; i >= 0; i-- {
		s := starts[i]
		for _, c := range buf[s+1 : s+1+int(buf[s])] {
			switch {
			case c == 0:
				out = append(out, 0, 1)
			case 'A' <= c && c <= 'Z':
				out = append(out, c+'a'-'A')
			default:
				out = append(out, c)
			}
		}
		out = append(out, 0, 0)
	}
	return string(out)
}

// before returns the record of recs with the greatest key at or before
// key, or the last one (the end of the chain wraps to the apex); nil when
// recs is empty.
func before(recs []*denialRec, key string) *denialRec {
	if len(recs) == 0 {
		return nil
	}
	i, found := slices.BinarySearchFunc(recs, key, func(e *denialRec, k string) int { return strings.Compare(e.key, k) })
	if found {
		return recs[i]
	}
	if i == 0 {
		return recs[len(recs)-1]
	}
	return recs[i-1]
}

// matching returns the record of recs whose key is key, or nil.
func matching(recs []*denialRec, key string) *denialRec {
	i, found := slices.BinarySearchFunc(recs, key, func(e *denialRec, k string) int { return strings.Compare(e.key, k) })
	if found {
		return recs[i]
	}
	return nil
}

// ancestorOf returns the ancestor of name (or name) with labels labels.
func ancestorOf(name string, labels int) string {
	off := 0
	for drop := dns.CountLabel(name) - labels; drop > 0; drop-- {
		var end bool
		if off, end = dns.NextLabel(name, off); end {
			return "."
		}
	}
	if labels <= 0 {
		return "."
	}
	return name[off:]
}

// commonLabels counts the labels two canonical names share from the root
// (dns.CompareDomainName, without allocating for names without escapes).
func commonLabels(a, b string) int {
	if strings.IndexByte(a, '\\') >= 0 || strings.IndexByte(b, '\\') >= 0 {
		return dns.CompareDomainName(a, b)
	}
	if a == "." || b == "." {
		return 0
	}
	a, b = a[:len(a)-1], b[:len(b)-1]
	n := 0
	for {
		i, j := strings.LastIndexByte(a, '.'), strings.LastIndexByte(b, '.')
		if a[i+1:] != b[j+1:] {
			return n
		}
		n++
		if i < 0 || j < 0 {
			return n
		}
		a, b = a[:i], b[:j]
	}
}

// closestEncloser is the closest encloser of qname that an NSEC (owner,
// next) covering it implies: the deeper of its common ancestors with the
// two names.
func closestEncloser(qname, owner, next string) string {
	return ancestorOf(qname, max(commonLabels(qname, owner), commonLabels(qname, next)))
}

// wildcardAt is the wildcard name at ce.
func wildcardAt(ce string) string {
	if ce == "." {
		return "*."
	}
	return "*." + ce
}

// synthesis is a denial made from the index: the rcode (NXDOMAIN or
// NOERROR for NODATA), the records used, and whether any was stale.
type synthesis struct {
	rcode int
	recs  []*denialRec
	nsec3 bool
	stale bool
}

// synthesise answers (name, qtype) NXDOMAIN or NODATA from the denial
// index, when aggressive NSEC is on and the records held prove it; with
// stale, records expired within the stale window may be used (the result
// is then stale, its TTLs 0). ok is false when there is no such proof.
func (r *Resolver) synthesise(name string, qtype uint16, stale bool) (lr lookupResult, isStale, ok bool) {
	if r.val == nil || !r.cfg.DNSSEC.AggressiveNSEC || !cacheableType(qtype) {
		return lookupResult{}, false, false
	}
	x := r.cache.denials
	if x.records.Load() == 0 {
		return lookupResult{}, false, false
	}
	qname := cacheName(name)
	if dnssec.UnderAny(qname, r.val.ntas) {
		return lookupResult{}, false, false
	}
	now := r.cache.now().UnixNano()
	start := qname
	if qtype == dns.TypeDS && qname != "." {
		start = parentName(qname) // the parent side answers for DS
	}

	x.mu.RLock()
	defer x.mu.RUnlock()
	zone, z := "", (*denialZone)(nil)
	for n := start; ; n = parentName(n) {
		if z = x.zones[n]; z != nil {
			zone = n
			break
		}
		if n == "." {
			return lookupResult{}, false, false
		}
	}
	if !x.usable(z.soaExp, now, stale) {
		return lookupResult{}, false, false
	}
	b := dnssec.NewBudget(r.val.limits)
	s, ok := x.proveNSEC(z, zone, qname, qtype, now, stale, b)
	if !ok {
		s, ok = x.proveNSEC3(z, zone, qname, qtype, now, stale, b)
	}
	if !ok {
		return lookupResult{}, false, false
	}
	s.stale = s.stale || now >= z.soaExp

	// TTL: what is left of the records used and of the SOA, at most the
	// SOA's MINIMUM (RFC 8198 §5.4, RFC 9077); 0 for a stale answer.
	least := z.soaExp
	for _, d := range s.recs {
		least = min(least, d.expire)
	}
	ttl := ttlLeft(least, now)
	if soa, ok := z.soa[0].(*dns.SOA); ok {
		ttl = min(ttl, soa.Minttl)
	}
	ns := copyWithTTL(z.soa, ttl)
	for _, d := range s.recs {
		ns = append(ns, copyWithTTL(d.records(), ttl)...)
		if d.used.Load() < now-int64(time.Second) {
			d.used.Store(now) // at most once a second: the line is shared
		}
	}
	lr = lookupResult{rcode: s.rcode, ns: ns, sec: dnssec.Secure, synth: true}
	if !s.stale {
		r.countSynth(s.rcode, s.nsec3)
	}
	return lr, s.stale, true
}

// proveNSEC makes the synthesis from the NSEC records of zone z. Called
// with x.mu read-locked.
func (x *denialIndex) proveNSEC(z *denialZone, zone, qname string, qtype uint16, now int64, stale bool, b *dnssec.Budget) (synthesis, bool) {
	p := before(z.nsec, canonicalKey(qname))
	if p == nil || !x.usable(p.expire, now, stale) {
		return synthesis{}, false
	}
	s := synthesis{recs: []*denialRec{p}, stale: now >= p.expire}
	n := p.rr.(*dns.NSEC)
	owner, next := n.Hdr.Name, cacheName(n.NextDomain)
	nodata := func(rrs ...dns.RR) (synthesis, bool) {
		if _, err := dnssec.ProveNoData(zone, qname, qtype, rrs, b); err != nil {
			return synthesis{}, false
		}
		s.rcode = dns.RcodeSuccess
		return s, true
	}
	if owner == qname {
		return nodata(n) // the name exists: its types say what it lacks
	}
	if owner != zone && atOrBelow(qname, owner) &&
		(slices.Contains(n.TypeBitMap, dns.TypeDNAME) || (slices.Contains(n.TypeBitMap, dns.TypeNS) && !slices.Contains(n.TypeBitMap, dns.TypeSOA))) {
		return synthesis{}, false // below a delegation or a DNAME: another zone's names
	}
	if next != qname && atOrBelow(next, qname) {
		return nodata(n) // an empty non-terminal
	}
	wc := wildcardAt(closestEncloser(qname, owner, next))
	w := before(z.nsec, canonicalKey(wc))
	if w == nil || !x.usable(w.expire, now, stale) {
		return synthesis{}, false
	}
	rrs := []dns.RR{n}
	if w != p {
		s.recs = append(s.recs, w)
		s.stale = s.stale || now >= w.expire
		rrs = append(rrs, w.rr)
	}
	if w.rr.Header().Name == wc {
		// The wildcard exists: it answers qname, NODATA only if it lacks
		// the type (a positive wildcard answer is not synthesised here).
		return nodata(rrs...)
	}
	if err := dnssec.ProveNXDomain(zone, qname, rrs, b); err != nil {
		return synthesis{}, false
	}
	s.rcode = dns.RcodeNameError
	return s, true
}

// proveNSEC3 makes the synthesis from the NSEC3 records of zone z: the
// record matching qname (NODATA), or the closest encloser proof (RFC 5155
// §8.3) with the wildcard's record. Called with x.mu read-locked.
func (x *denialIndex) proveNSEC3(z *denialZone, zone, qname string, qtype uint16, now int64, stale bool, b *dnssec.Budget) (synthesis, bool) {
	if len(z.nsec3) == 0 || !dns.IsSubDomain(zone, qname) {
		return synthesis{}, false
	}
	s := synthesis{nsec3: true}
	var rrs []dns.RR
	use := func(d *denialRec) bool {
		if d == nil || !x.usable(d.expire, now, stale) {
			return false
		}
		if !slices.Contains(s.recs, d) {
			s.recs = append(s.recs, d)
			rrs = append(rrs, d.rr)
		}
		s.stale = s.stale || now >= d.expire
		return true
	}
	hashes := 0
	hash := func(name string) (string, bool) {
		if hashes++; hashes > dnssec.MaxNSEC3HashesPerProof {
			return "", false
		}
		if b.Hashes++; b.Hashes > b.MaxNSEC3Hashes {
			return "", false
		}
		h := dns.HashName(name, dns.SHA1, z.n3iter, z.n3salt)
		return h, h != ""
	}
	cover := func(h string) *denialRec {
		d := before(z.nsec3, h)
		if d == nil {
			return nil
		}
		n := d.rr.(*dns.NSEC3)
		owner, nx := d.key, strings.ToUpper(n.NextDomain)
		if owner < nx {
			if owner < h && h < nx {
				return d
			}
		} else if h > owner || h < nx {
			return d
		}
		return nil
	}
	nodata := func() (synthesis, bool) {
		if _, err := dnssec.ProveNoData(zone, qname, qtype, rrs, b); err != nil {
			return synthesis{}, false
		}
		s.rcode = dns.RcodeSuccess
		return s, true
	}
	hq, ok := hash(qname)
	if !ok {
		return synthesis{}, false
	}
	if m := matching(z.nsec3, hq); m != nil {
		if !use(m) {
			return synthesis{}, false
		}
		return nodata()
	}
	if qname == zone {
		return synthesis{}, false
	}
	// The closest encloser: the deepest ancestor with a record.
	nc, ce := qname, parentName(qname)
	for {
		h, ok := hash(ce)
		if !ok {
			return synthesis{}, false
		}
		if m := matching(z.nsec3, h); m != nil {
			if !use(m) {
				return synthesis{}, false
			}
			break
		}
		if ce == zone {
			return synthesis{}, false
		}
		nc, ce = ce, parentName(ce)
	}
	hn, ok := hash(nc)
	if !ok || !use(cover(hn)) {
		return synthesis{}, false
	}
	wc := wildcardAt(ce)
	hw, ok := hash(wc)
	if !ok {
		return synthesis{}, false
	}
	if m := matching(z.nsec3, hw); m != nil {
		if !use(m) {
			return synthesis{}, false
		}
		return nodata() // a wildcard without the type
	}
	if !use(cover(hw)) {
		return synthesis{}, false
	}
	if err := dnssec.ProveNXDomain(zone, qname, rrs, b); err != nil {
		return synthesis{}, false // opt-out included: insecure, not synthesised
	}
	s.rcode = dns.RcodeNameError
	return s, true
}

// countSynth counts one synthesised answer.
func (r *Resolver) countSynth(rcode int, nsec3 bool) {
	i := 0
	if rcode != dns.RcodeNameError {
		i = 2
	}
	if nsec3 {
		i++
	}
	r.stats.AggressiveAnswers[i].Add(1)
}

// countSynthResult counts a synthesised answer served stale.
func (r *Resolver) countSynthResult(res Result) {
	r.countSynth(res.Rcode, slices.ContainsFunc(res.Ns, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeNSEC3 }))
}
