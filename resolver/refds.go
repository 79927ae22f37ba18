package resolver

// The DS RRset of a zone cut is held by the parent, which sends it, with
// its RRSIGs, in every signed referral to the child; when there is none it
// sends the NSEC or NSEC3 records proving its absence instead (RFC 4035
// §3.1.4). The validator uses what a referral brought before asking the
// parent for the DS RRset again (as Unbound does), which spares a query
// per zone cut, and matters with parent servers that answer the DS
// question with the referral itself.

import (
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxRefDSEntries bounds the referral DS store; it is emptied past it.
const maxRefDSEntries = 1 << 14

// refDS is what one referral said about the DS RRset of the zone it
// delegates to. The records are the referral's own; nothing here is
// trusted before the validator checks it with the keys of parent.
type refDS struct {
	parent string   // the zone that sent the referral (lower-case)
	ds     []dns.RR // the DS RRset, or none
	sigs   []*dns.RRSIG
	proof  []dns.RR // without DS: NSEC or NSEC3 records and their RRSIGs
	expire int64    // Unix nanoseconds
}

// refDSStore holds the DS information of the referrals seen, by the
// lower-case name of the child zone.
type refDSStore struct {
	mu sync.Mutex
	m  map[string]refDS
}

// note keeps what the referral resp, from a server of zone cut to the
// zone child, says about child's DS RRset: its DS RRset with its RRSIGs,
// or its denial. A referral with neither (from an unsigned zone) changes
// nothing.
func (st *refDSStore) note(cut, child string, resp *dns.Msg, now time.Time) {
	var e refDS
	for _, s := range collectSets(resp.Ns, cut) {
		switch {
		case s.rrtype == dns.TypeDS && s.owner == child && len(s.sigs) > 0:
			e.ds, e.sigs = s.rrs, s.sigs
		case (s.rrtype == dns.TypeNSEC || s.rrtype == dns.TypeNSEC3) && len(s.sigs) > 0:
			e.proof = append(e.proof, s.records()...)
		}
	}
	var rrs []dns.RR
	switch {
	case len(e.ds) > 0:
		e.proof = nil
		rrs = e.ds
	case len(e.proof) > 0:
		rrs = e.proof
	default:
		return
	}
	e.parent = strings.ToLower(cut)
	ttl := min(minTTL(rrs), DefaultMaxTTL)
	if ttl <= 0 {
		return
	}
	e.expire = now.Add(ttl).UnixNano()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.m == nil || len(st.m) >= maxRefDSEntries {
		st.m = map[string]refDS{}
	}
	st.m[child] = e
}

// get returns what a referral from parent said about child's DS RRset,
// unless it has expired.
func (st *refDSStore) get(child, parent string, now time.Time) (refDS, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := st.m[child]
	if !ok {
		return refDS{}, false
	}
	if now.UnixNano() >= e.expire {
		delete(st.m, child)
		return refDS{}, false
	}
	return e, e.parent == parent
}

// drop forgets what referrals said about child (it did not validate).
func (st *refDSStore) drop(child string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, child)
}

func (st *refDSStore) flush() {
	st.mu.Lock()
	defer st.mu.Unlock()
	clear(st.m)
}

// flushName forgets what referrals said about name and the names below it.
func (st *refDSStore) flushName(name string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for k := range st.m {
		if atOrBelow(k, name) {
			delete(st.m, k)
		}
	}
}
