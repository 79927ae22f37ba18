package resolver

// DNSSEC validation in the resolver (RFC 4035 §5). Each answer a client's
// question brings from upstream is validated once, when it arrives, and
// cached with its status; answers from the cache are never validated again.
//
// The chain of trust is walked from the deepest trust anchor at or above
// the zone that signed the data, one label at a time, as Unbound does:
// for each name between a secure zone and the signer, the DS RRset is
// taken from the signed referral of the secure zone that delegates it
// (refds.go), or asked of the secure zone's servers (never the child's).
// An answer that fails validation is asked again of the zone's other
// servers, a few times, before it is declared bogus (resolveStore).
//
// A DS RRset signed by that zone's keys makes the name a secure zone cut,
// whose DNSKEY RRset is fetched and authenticated by it; a proven absence
// of DS is either an unsigned delegation (the NS bit is set: everything
// below is insecure) or no zone cut at all (the walk goes on with the same
// keys). An NXDOMAIN for such a DS whose proof shows the name exists (an
// empty non-terminal some servers deny, or an unsigned delegation) is
// taken for what it proves. What the walk learns about each name
// is kept in a small key cache, so the next question for the same zones
// costs no upstream query and no signature check; the DS and DNSKEY
// answers also go to the message cache, marked secure.
//
// The fetches of the walk bypass the in-flight sharing of lookups, since a
// walk may need the very question being resolved (the DNSKEY RRset of a
// zone, asked by a client). Name-server address lookups are not validated.
//
// In island mode, signatures by national zones (Config.National) that
// expired at most Config.SignatureGrace ago are accepted (graceFor), so
// that national names keep resolving while their signers cannot refresh
// them; only the expiration is relaxed. What rests on such a signature,
// answers and key-cache entries alike, is cached for at most
// dnssec.MaxGraceTTL and never past the end of the grace; key-cache
// entries are no longer used once the grace no longer applies, and the
// answer carries the fact (Result.Grace, counted in Stats.GraceAccepted).

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// validator holds what validation needs across resolutions.
type validator struct {
	// anchors are the trust anchors; SetTrustAnchors replaces them (RFC
	// 5011 updates), so they are read once per validation.
	anchors atomic.Pointer[dnssec.TrustAnchors]
	ntas    []string
	limits  dnssec.Limits
	keys    keyCache
	refDS   refDSStore // what signed referrals said about DS RRsets
}

func newValidator(c DNSSECConfig, log *slog.Logger) *validator {
	a, err := dnssec.NewTrustAnchors(c.Anchors)
	if err != nil {
		log.Error("trust anchors unusable: nothing is validated as secure", "err", err)
		a, _ = dnssec.NewTrustAnchors(nil)
	}
	v := &validator{keys: keyCache{m: newLRU[string, keyEntry](maxKeyEntries)},
		limits: dnssec.Limits{MaxValidations: c.MaxValidations, MaxNSEC3Hashes: c.MaxNSEC3Hashes, MaxNSEC3Iterations: c.MaxNSEC3Iterations}}
	v.anchors.Store(a)
	for _, n := range c.NegativeAnchors {
		v.ntas = append(v.ntas, cacheName(n))
	}
	return v
}

// keyKind is what the chain of trust says about one name.
type keyKind uint8

const (
	keySecure        keyKind = iota // a zone whose DNSKEY RRset is authenticated
	keyInsecure                     // an unsigned zone cut (or unsupported algorithms): insecure at and below
	keyBogus                        // the chain breaks here: bogus at and below
	keyNoCut                        // no zone cut: the walk goes on with the keys above
	keyNoName                       // the name does not exist, so nothing below it is a zone cut
	keyIndeterminate                // the records could not be fetched; never cached
)

type keyEntry struct {
	kind   keyKind
	zone   string // keySecure: the zone
	keys   *dnssec.ZoneKeys
	why    error
	expire int64 // Unix nanoseconds
	// graceUntil, when not zero, is when the grace runs out that a
	// signature this entry rests on (its own or one above it in the chain)
	// was accepted under (Unix nanoseconds).
	graceUntil int64
}

// graceMaxTTL is dnssec.MaxGraceTTL as a duration.
const graceMaxTTL = dnssec.MaxGraceTTL * time.Second

// graceFor is the grace given to expired signatures made by zone:
// Config.SignatureGrace in island mode when zone is national, else none.
// The names a zone signs lie at or below it, so they are national too.
func (r *Resolver) graceFor(zone string) time.Duration {
	if r.cfg.SignatureGrace <= 0 || !r.Island() || !r.national(zone) {
		return 0
	}
	return r.cfg.SignatureGrace
}

// sigCap is how long data verified by sig, under grace, may be cached:
// dnssec.MaxTTLGrace, and at least a second (a cap of 0 would be none).
func sigCap(sig *dns.RRSIG, now time.Time, grace time.Duration) time.Duration {
	return max(time.Duration(dnssec.MaxTTLGrace(sig, now, grace))*time.Second, time.Second)
}

// graceCap bounds the cache TTL of data resting on a grace that runs out
// at until (Unix nanoseconds; 0: no grace): dnssec.MaxGraceTTL and what is
// left of the grace, at least a second. A ttl of 0 (no cap) is capped too.
func graceCap(ttl time.Duration, until int64, now time.Time) time.Duration {
	if until == 0 {
		return ttl
	}
	limit := min(graceMaxTTL, time.Duration(until-now.UnixNano()))
	if ttl <= 0 || ttl > limit {
		ttl = limit
	}
	return max(ttl, time.Second)
}

// earlierGrace combines two grace ends (0: none): the earlier one.
func earlierGrace(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

// verifyRRset is dnssec.VerifyRRset under the grace for the keys' zone.
// It returns how long the RRset may be cached as the signature allows,
// and, for a signature accepted only under the grace, when that grace runs
// out (0 otherwise).
func (r *Resolver) verifyRRset(b *budget, rrset []dns.RR, sigs []*dns.RRSIG, keys *dnssec.ZoneKeys, now time.Time) (*dns.RRSIG, time.Duration, int64, error) {
	var grace time.Duration
	if keys != nil {
		grace = r.graceFor(keys.Zone)
	}
	b.val.Grace = grace
	before := b.val.Graced
	sig, err := dnssec.VerifyRRset(rrset, sigs, keys, now, b.val)
	if err != nil && b.val.Exceeded == "" && rootWildcardSigs(rrset, sigs, keys) {
		// An expansion of the wildcard at the root, which miekg/dns
		// cannot verify (rootwild.go).
		if wsig, werr := verifyRootWildcard(rrset, sigs, keys, now, b.val); werr == nil {
			sig, err = wsig, nil
		}
	}
	b.val.Grace = 0
	if err != nil {
		return nil, 0, 0, err
	}
	ttl := sigCap(sig, now, grace)
	if b.val.Graced == before {
		return sig, ttl, 0, nil
	}
	return sig, ttl, now.Add(ttl).UnixNano(), nil
}

// verifyDNSKEYs is dnssec.VerifyDNSKEYs under the grace for zone, with how
// long the keys may be cached and, if they were accepted only under the
// grace, when it runs out (0 otherwise).
func (r *Resolver) verifyDNSKEYs(b *budget, zone string, rrs []dns.RR, sigs []*dns.RRSIG, ds []*dns.DS, anchors []*dns.DNSKEY, now time.Time) (*dnssec.ZoneKeys, time.Duration, int64, error) {
	grace := r.graceFor(zone)
	b.val.Grace = grace
	before := b.val.Graced
	zk, err := dnssec.VerifyDNSKEYs(zone, rrs, sigs, ds, anchors, now, b.val)
	b.val.Grace = 0
	if err != nil {
		return nil, 0, 0, err
	}
	if b.val.Graced == before {
		return zk, min(minTTL(rrs), sigTTL(sigs, now)), 0, nil
	}
	ttl := min(minTTL(rrs), sigCap(zk.Sig, now, grace))
	return zk, ttl, now.Add(ttl).UnixNano(), nil
}

// maxKeyEntries bounds the key cache; past it the entry used least
// recently is evicted.
const maxKeyEntries = 1 << 14

// keyCache is the chain-of-trust cache: keyEntry by lower-case name.
type keyCache struct {
	mu sync.Mutex
	m  *lru[string, keyEntry]
}

func (c *keyCache) get(name string, now time.Time) (keyEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m.get(name)
	if ok && now.UnixNano() >= e.expire {
		c.m.remove(name)
		return keyEntry{}, false
	}
	return e, ok
}

func (c *keyCache) put(name string, e keyEntry, now time.Time, ttl time.Duration) {
	if e.kind == keyIndeterminate {
		return
	}
	if e.kind == keyBogus {
		ttl = min(ttl, BogusTTL)
	}
	ttl = graceCap(ttl, e.graceUntil, now)
	ttl = min(max(ttl, time.Second), DefaultMaxTTL)
	e.expire = now.Add(ttl).UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m.put(name, e)
}

func (c *keyCache) flush() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.m.len()
	c.m.clear()
	return n
}

// flushName removes the entries of name and the names below it, and
// returns how many it removed.
func (c *keyCache) flushName(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k := range c.m.all() {
		if atOrBelow(k, name) {
			c.m.remove(k)
			n++
		}
	}
	return n
}

func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.len()
}

// statusOf is the status of data under a key entry that is not secure.
func (e keyEntry) status() (dnssec.SecStatus, error) {
	switch e.kind {
	case keySecure:
		return dnssec.Secure, nil
	case keyBogus:
		return dnssec.Bogus, e.why
	case keyIndeterminate:
		return dnssec.Indeterminate, e.why
	}
	return dnssec.Insecure, e.why
}

// entryFor turns a verdict from package dnssec into a key entry.
func entryFor(err error) keyEntry {
	switch dnssec.StatusOf(err) {
	case dnssec.Insecure:
		return keyEntry{kind: keyInsecure, why: err}
	case dnssec.Indeterminate:
		return keyEntry{kind: keyIndeterminate, why: err}
	}
	return keyEntry{kind: keyBogus, why: err}
}

func indeterminate(name string, qtype uint16, err error) keyEntry {
	return keyEntry{kind: keyIndeterminate, why: &dnssec.ValidationError{Status: dnssec.Indeterminate,
		Reason: dnssec.ErrIndeterminate, Detail: fmt.Sprintf("%s %s", name, dns.Type(qtype)), Cause: err}}
}

// SetTrustAnchors replaces the trust anchors (DS or DNSKEY records, as
// Config.Anchors) with rrs, and drops the chains of trust built on the
// old ones and the cached answers that failed validation under them. It
// refuses anchors that are not usable, keeping the old ones.
func (r *Resolver) SetTrustAnchors(rrs []dns.RR) error {
	if r.val == nil {
		return nil
	}
	a, err := dnssec.NewTrustAnchors(rrs)
	if err != nil {
		return err
	}
	r.val.anchors.Store(a)
	r.FlushKeys()
	r.cache.FlushFailed()
	return nil
}

// FlushKeys empties the chain-of-trust cache, the validated DNSKEY and DS
// verdicts by zone (with Cache.Flush, a full restart of validation state:
// sovdns cache flush), and returns how many entries it removed. The DS
// information and the glue kept from referrals go too.
func (r *Resolver) FlushKeys() int {
	r.glue.flushName("")
	if r.val == nil {
		return 0
	}
	r.val.refDS.flush()
	return r.val.keys.flush()
}

// FlushKeysName removes the chain-of-trust entries of name and of the
// names below it (with Cache.FlushName: sovdns cache flush NAME), so the
// keys of those zones are fetched and validated again; it returns how
// many it removed. The DS information and the glue kept from referrals
// for those names go too.
func (r *Resolver) FlushKeysName(name string) int {
	r.glue.flushName(cacheName(name))
	if r.val == nil {
		return 0
	}
	r.val.refDS.flushName(cacheName(name))
	return r.val.keys.flushName(cacheName(name))
}

// KeyEntries is the number of entries in the chain-of-trust cache.
func (r *Resolver) KeyEntries() int {
	if r.val == nil {
		return 0
	}
	return r.val.keys.len()
}

// chainTo walks the chain of trust down to target and returns the entry
// for the deepest zone at or above it: its keys, or why there are none
// (insecure, bogus, indeterminate).
func (r *Resolver) chainTo(ctx context.Context, b *budget, target string) keyEntry {
	v := r.val
	target = cacheName(target)
	az, ds, anchorKeys, ok := v.anchors.Load().Closest(target)
	if !ok {
		return keyEntry{kind: keyInsecure}
	}
	now := r.cfg.Now()
	var cur keyEntry
	found := false
	for n := target; ; n = parentName(n) {
		if e, ok := r.cachedKey(n, now); ok {
			switch e.kind {
			case keyInsecure, keyBogus:
				return e
			case keySecure:
				cur, found = e, true
			}
		}
		if found || n == az || n == "." {
			break
		}
	}
	if !found {
		cur = r.anchorKeys(ctx, b, az, ds, anchorKeys)
		if cur.kind != keySecure {
			return cur
		}
	}
	// An entry rests on the signatures above it too: it carries the
	// earliest end of a grace met on the way down.
	grace := cur.graceUntil
	for pos := cur.zone; pos != target; {
		next := oneLabelBelow(pos, target)
		if next == "" {
			next = target
		}
		e, ok := r.cachedKey(next, now)
		if !ok {
			var ttl time.Duration
			e, ttl = r.delegation(ctx, b, cur, next)
			if e.kind != keyBogus && e.kind != keyIndeterminate {
				e.graceUntil = earlierGrace(e.graceUntil, grace)
			}
			v.keys.put(next, e, now, ttl)
		}
		grace = earlierGrace(grace, e.graceUntil)
		switch e.kind {
		case keySecure:
			cur = e
		case keyNoCut:
		case keyNoName:
			cur.graceUntil = grace
			return cur
		case keyInsecure:
			e.graceUntil = grace
			return e
		default:
			return e
		}
		pos = next
	}
	cur.graceUntil = grace
	return cur
}

// cachedKey returns the key cache's entry for name, unless it rests on a
// grace that no longer applies (island mode is over).
func (r *Resolver) cachedKey(name string, now time.Time) (keyEntry, bool) {
	e, ok := r.val.keys.get(name, now)
	if ok && e.graceUntil != 0 && r.graceFor(name) == 0 {
		return keyEntry{}, false
	}
	return e, ok
}

// anchorKeys authenticates the DNSKEY RRset of an anchored zone with its
// trust anchors.
func (r *Resolver) anchorKeys(ctx context.Context, b *budget, zone string, ds []*dns.DS, keys []*dns.DNSKEY) keyEntry {
	now := r.cfg.Now()
	fk, failed, ferr := r.fetchKeys(ctx, b, zone, ds, keys, now)
	switch {
	case failed != nil:
		e := entryFor(failed)
		r.val.keys.put(zone, e, now, BogusTTL)
		return e
	case ferr != nil:
		return indeterminate(zone, dns.TypeDNSKEY, ferr)
	}
	if !fk.cached {
		r.putMsg(zone, dns.TypeDNSKEY, dns.RcodeSuccess, fk.lr.answer, nil, dnssec.Secure, nil, fk.ttl)
	}
	e := keyEntry{kind: keySecure, zone: zone, keys: fk.zk, graceUntil: fk.grace}
	r.val.keys.put(zone, e, now, fk.ttl)
	return e
}

// fetchedKeys is a DNSKEY RRset fetched and verified (fetchKeys).
type fetchedKeys struct {
	lr     lookupResult
	cached bool
	zk     *dnssec.ZoneKeys
	ttl    time.Duration
	grace  int64
}

// fetchKeys fetches the DNSKEY RRset of zone and verifies it with ds (and
// anchors, for a zone with trust anchors). A set that fresh from upstream
// fails as bogus is asked again of another of the zone's servers
// (retryElsewhere). It returns the verified set; or the verdict on the last
// set judged (failed: no other server to try, or none answered); or, with
// nothing judged, why the set could not be fetched (fetchErr).
func (r *Resolver) fetchKeys(ctx context.Context, b *budget, zone string, ds []*dns.DS, anchors []*dns.DNSKEY, now time.Time) (fk fetchedKeys, failed, fetchErr error) {
	for try := 0; ; try++ {
		lr, cached := r.fetch(ctx, b, zone, dns.TypeDNSKEY)
		if lr.err != nil {
			if failed != nil {
				return fetchedKeys{}, failed, nil // no other server answered
			}
			return fetchedKeys{}, nil, lr.err
		}
		rrs, sigs := splitSet(lr.answer, zone, dns.TypeDNSKEY)
		zk, ttl, grace, err := r.verifyDNSKEYs(b, zone, rrs, sigs, ds, anchors, now)
		if err == nil {
			return fetchedKeys{lr: lr, cached: cached, zk: zk, ttl: ttl, grace: grace}, nil, nil
		}
		failed = err
		if cached || dnssec.StatusOf(err) != dnssec.Bogus || !r.retryElsewhere(b, zone, &lr, try) {
			return fetchedKeys{}, err, nil
		}
	}
}

// delegation finds out what name, just below the secure zone cur, is: a
// secure zone cut (DS signed by cur, DNSKEY matching it), an unsigned one,
// no zone cut, or a name that does not exist. It returns the entry and how
// long it may be cached. What a signed referral from cur to name brought
// (refds.go) is used first; the DS RRset is asked of cur's servers only
// without it, or when it does not validate.
func (r *Resolver) delegation(ctx context.Context, b *budget, cur keyEntry, name string) (keyEntry, time.Duration) {
	now := r.cfg.Now()
	if e, ok := r.val.refDS.get(name, cur.zone, now); ok {
		if ke, ttl, ok := r.delegationFromReferral(ctx, b, cur, name, e, now); ok {
			return ke, ttl
		}
		r.val.refDS.drop(name)
	}
	var failed keyEntry // the verdict on the last server's answer, if bogus
	var failedTTL time.Duration
	for try := 0; ; try++ {
		ke, ttl, lr, bogus := r.delegationFromParent(ctx, b, cur, name, now)
		switch {
		case failed.why != nil && lr.err != nil:
			return failed, failedTTL // no other server answered
		case !bogus || !r.retryElsewhere(b, name, &lr, try):
			return ke, ttl
		}
		failed, failedTTL = ke, ttl
	}
}

// delegationFromParent is delegation from the DS RRset (or its denial)
// that cur's servers give. It also returns the answer it judged, and
// whether that answer, fresh from upstream, failed validation.
func (r *Resolver) delegationFromParent(ctx context.Context, b *budget, cur keyEntry, name string, now time.Time) (keyEntry, time.Duration, lookupResult, bool) {
	lr, cached := r.fetch(ctx, b, name, dns.TypeDS)
	ke, ttl, dsBogus := r.judgeDS(ctx, b, cur, name, lr, cached, now)
	return ke, ttl, lr, dsBogus && !cached
}

// judgeDS finds out from lr, the answer to the DS question for name from
// cur's servers (cached: from the cache), what name is; dsBogus reports
// that the DS RRset or its denial failed validation (not the DNSKEY RRset
// it led to).
func (r *Resolver) judgeDS(ctx context.Context, b *budget, cur keyEntry, name string, lr lookupResult, cached bool, now time.Time) (ke keyEntry, ttl time.Duration, dsBogus bool) {
	if lr.err != nil {
		return indeterminate(name, dns.TypeDS, lr.err), 0, false
	}
	if lr.negative && lr.referral != "" {
		// The parent answered with the referral to name, noted on the way.
		if e, ok := r.val.refDS.get(name, cur.zone, now); ok {
			if ke, ttl, ok := r.delegationFromReferral(ctx, b, cur, name, e, now); ok {
				return ke, ttl, false
			}
			r.val.refDS.drop(name)
		}
		return keyEntry{kind: keyBogus, why: &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrNSECMissing,
			Detail: fmt.Sprintf("referral to %s from the signed zone %s without a valid DS RRset or denial", name, cur.zone)}}, BogusTTL, true
	}
	if lr.negative {
		rcode := lr.rcode
		delegation, maxTTL, grace, err := r.checkNegative(cur, name, dns.TypeDS, rcode, lr.ns, b)
		store := !cached
		if err != nil && rcode == dns.RcodeNameError {
			// An NXDOMAIN for a name on the way down whose proof shows it
			// exists after all: an empty non-terminal (which some servers
			// deny) or an unsigned zone cut. It is taken for what the
			// proof shows, and not cached as an NXDOMAIN.
			if d, m, g, nerr := r.checkNegative(cur, name, dns.TypeDS, dns.RcodeSuccess, lr.ns, b); nerr == nil || dnssec.StatusOf(nerr) == dnssec.Insecure {
				delegation, maxTTL, grace, err, rcode = d, m, g, nerr, dns.RcodeSuccess
				store = false
			}
		}
		ttl = min(minTTL(lr.ns), maxTTL)
		sec := dnssec.StatusOf(err)
		if store && (sec == dnssec.Secure || sec == dnssec.Insecure) {
			r.putMsg(name, dns.TypeDS, rcode, nil, lr.ns, sec, err, graceCap(ttl, earlierGrace(grace, cur.graceUntil), now))
		}
		switch {
		case err != nil:
			return entryFor(err), ttl, sec == dnssec.Bogus
		case rcode == dns.RcodeNameError:
			return keyEntry{kind: keyNoName, graceUntil: grace}, ttl, false
		case delegation:
			return keyEntry{kind: keyInsecure, graceUntil: grace}, ttl, false
		}
		return keyEntry{kind: keyNoCut, graceUntil: grace}, ttl, false
	}
	dsRRs, sigs := splitSet(lr.answer, name, dns.TypeDS)
	if len(dsRRs) == 0 {
		// A CNAME: no zone cut can be here.
		return keyEntry{kind: keyNoCut}, minTTL(lr.answer), false
	}
	_, sigMax, grace, err := r.verifyRRset(b, dsRRs, sigs, cur.keys, now)
	if err != nil {
		return entryFor(err), BogusTTL, dnssec.StatusOf(err) == dnssec.Bogus
	}
	ttl = min(minTTL(dsRRs), sigMax)
	if !cached {
		r.putMsg(name, dns.TypeDS, dns.RcodeSuccess, lr.answer, nil, dnssec.Secure, nil, graceCap(ttl, earlierGrace(grace, cur.graceUntil), now))
	}
	ke, ttl = r.childKeys(ctx, b, cur, name, dsRRs, ttl, grace, now)
	return ke, ttl, false
}

// delegationFromReferral is delegation from what a referral from cur to
// name said (e): its DS RRset, verified with cur's keys, or the proof
// that name is an unsigned delegation. ok is false when it proves neither.
func (r *Resolver) delegationFromReferral(ctx context.Context, b *budget, cur keyEntry, name string, e refDS, now time.Time) (keyEntry, time.Duration, bool) {
	if len(e.ds) > 0 {
		_, sigMax, grace, err := r.verifyRRset(b, e.ds, e.sigs, cur.keys, now)
		if err != nil {
			return keyEntry{}, 0, false
		}
		ttl := min(minTTL(e.ds), sigMax)
		records := make([]dns.RR, 0, len(e.ds)+len(e.sigs))
		records = append(records, e.ds...)
		for _, sig := range e.sigs {
			records = append(records, sig)
		}
		r.putMsg(name, dns.TypeDS, dns.RcodeSuccess, records, nil, dnssec.Secure, nil, graceCap(ttl, earlierGrace(grace, cur.graceUntil), now))
		ke, kttl := r.childKeys(ctx, b, cur, name, e.ds, ttl, grace, now)
		return ke, kttl, true
	}
	delegation, maxTTL, grace, err := r.checkDenial(cur, name, dns.TypeDS, e.proof, b)
	ttl := min(minTTL(e.proof), maxTTL)
	switch {
	case err == nil && delegation:
		return keyEntry{kind: keyInsecure, graceUntil: grace}, ttl, true
	case err != nil && dnssec.StatusOf(err) == dnssec.Insecure:
		e := entryFor(err)
		e.graceUntil = grace
		return e, ttl, true
	}
	return keyEntry{}, 0, false
}

// childKeys fetches the DNSKEY RRset of name, the child of the secure
// zone cur, and authenticates it with name's DS RRset ds, validated for
// ttl (grace: as verifyRRset).
func (r *Resolver) childKeys(ctx context.Context, b *budget, cur keyEntry, name string, dsRRs []dns.RR, ttl time.Duration, grace int64, now time.Time) (keyEntry, time.Duration) {
	ds := make([]*dns.DS, 0, len(dsRRs))
	for _, rr := range dsRRs {
		ds = append(ds, rr.(*dns.DS))
	}
	fk, failed, ferr := r.fetchKeys(ctx, b, name, ds, nil, now)
	switch {
	case failed != nil:
		return entryFor(failed), ttl
	case ferr != nil:
		return indeterminate(name, dns.TypeDNSKEY, ferr), 0
	}
	ttl = min(ttl, fk.ttl)
	grace = earlierGrace(grace, fk.grace)
	if !fk.cached {
		r.putMsg(name, dns.TypeDNSKEY, dns.RcodeSuccess, fk.lr.answer, nil, dnssec.Secure, nil, graceCap(ttl, earlierGrace(grace, cur.graceUntil), now))
	}
	return keyEntry{kind: keySecure, zone: name, keys: fk.zk, graceUntil: grace}, ttl
}

// fetch gets (name, qtype) for the chain of trust: from the cache, or from
// upstream without validation or caching (the caller verifies and stores
// it). cached reports a cache hit.
//
// An expired entry (the DS and DNSKEY answers of the national
// infrastructure are kept past their TTL) serves when upstream cannot be
// reached: at once in island mode when the servers that answer are
// foreign, else when the query fails. Its signatures are verified all the
// same, against the time now: only the TTL has run out.
func (r *Resolver) fetch(ctx context.Context, b *budget, name string, qtype uint16) (lr lookupResult, cached bool) {
	if e, ok := r.cache.Get(name, qtype); ok {
		return fetched(e), true
	}
	stale := func() (lookupResult, bool) {
		e, ok := r.cache.GetStale(name, qtype)
		if !ok || e.Sec == dnssec.Bogus || e.Sec == dnssec.Indeterminate {
			return lookupResult{}, false
		}
		return fetched(e), true
	}
	server := cacheName(name) // the zone that answers: the parent's for DS
	if qtype == dns.TypeDS && server != "." {
		server = parentName(server)
	}
	if r.Island() && r.foreignName(server) {
		if lr, ok := stale(); ok {
			return lr, true
		}
	}
	if lr = r.iterate(ctx, b, name, qtype); lr.err != nil {
		if slr, ok := stale(); ok {
			return slr, true
		}
	}
	return lr, false
}

func fetched(e Message) lookupResult {
	return lookupResult{rcode: e.Rcode, answer: e.Answer, ns: e.Ns, sec: e.Sec, why: e.Why, negative: e.Kind != MsgAnswer}
}

// splitSet returns the records of (owner, t) in rrs and the RRSIGs over
// them.
func splitSet(rrs []dns.RR, owner string, t uint16) ([]dns.RR, []*dns.RRSIG) {
	var data []dns.RR
	var sigs []*dns.RRSIG
	for _, rr := range rrs {
		h := rr.Header()
		if !strings.EqualFold(h.Name, owner) {
			continue
		}
		if sig, ok := rr.(*dns.RRSIG); ok {
			if sig.TypeCovered == t {
				sigs = append(sigs, sig)
			}
		} else if h.Rrtype == t {
			data = append(data, rr)
		}
	}
	return data, sigs
}

// checkNegative validates a negative answer from the secure zone of key
// entry z: its SOA and NSEC/NSEC3 RRsets signed by z's keys, and the proof
// that qname (NXDOMAIN) or its type qtype (NODATA) does not exist. For a DS
// question, delegation tells an unsigned zone cut. maxTTL is the shortest
// remaining validity of the signatures, and grace, if not zero, the end of
// the grace a signature was accepted under.
func (r *Resolver) checkNegative(z keyEntry, qname string, qtype uint16, rcode int, ns []dns.RR, b *budget) (delegation bool, maxTTL time.Duration, grace int64, err error) {
	soaSeen := false
	proof, maxTTL, grace, err := r.verifyProof(z, ns, b, func(s *rrset) bool {
		if s.rrtype == dns.TypeSOA && s.owner == z.zone {
			soaSeen = true
			return true
		}
		return false
	})
	if err != nil {
		return false, 0, 0, err
	}
	if !soaSeen {
		return false, 0, 0, &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrNSECMissing,
			Detail: fmt.Sprintf("negative answer for %s without the SOA of %s", qname, z.zone)}
	}
	if rcode == dns.RcodeNameError {
		err = dnssec.ProveNXDomain(z.zone, qname, proof, b.val)
	} else {
		delegation, err = dnssec.ProveNoData(z.zone, qname, qtype, proof, b.val)
	}
	return delegation, maxTTL, grace, err
}

// checkDenial validates NSEC and NSEC3 records without a SOA (the denial
// of DS in a referral from the secure zone of z): their RRsets signed by
// z's keys, and the proof that qname has no data of type qtype; for DS,
// delegation tells an unsigned zone cut. maxTTL and grace are as for
// checkNegative.
func (r *Resolver) checkDenial(z keyEntry, qname string, qtype uint16, rrs []dns.RR, b *budget) (delegation bool, maxTTL time.Duration, grace int64, err error) {
	proof, maxTTL, grace, err := r.verifyProof(z, rrs, b, nil)
	if err != nil {
		return false, 0, 0, err
	}
	delegation, err = dnssec.ProveNoData(z.zone, qname, qtype, proof, b.val)
	return delegation, maxTTL, grace, err
}

// verifyProof checks with z's keys the signatures of the NSEC and NSEC3
// RRsets of section, and of those other RRsets also wanted (nil: none),
// and returns the NSEC and NSEC3 records, the shortest remaining validity
// of the signatures and the earliest grace one was accepted under.
func (r *Resolver) verifyProof(z keyEntry, section []dns.RR, b *budget, also func(*rrset) bool) (proof []dns.RR, maxTTL time.Duration, grace int64, err error) {
	now := r.cfg.Now()
	maxTTL = DefaultMaxTTL
	for _, s := range collectSets(section, z.zone) {
		denial := s.rrtype == dns.TypeNSEC || s.rrtype == dns.TypeNSEC3
		if !denial && (also == nil || !also(s)) {
			continue
		}
		_, sigMax, g, err := r.verifyRRset(b, s.rrs, s.sigs, z.keys, now)
		if err != nil {
			return nil, 0, 0, err
		}
		maxTTL = min(maxTTL, sigMax)
		grace = earlierGrace(grace, g)
		if denial {
			proof = append(proof, s.rrs...)
		}
	}
	return proof, maxTTL, grace, nil
}

// validate judges what resolveStore got for (name, qtype): every RRset of
// an answer, or the negative answer, and sets the status of the result
// (that of name's own records).
func (r *Resolver) validate(ctx context.Context, b *budget, name string, qtype uint16, lr *lookupResult) {
	if lr.negative {
		lr.sec, lr.why, lr.maxTTL = r.validateNegative(ctx, b, name, qtype, lr)
	} else {
		for i := range lr.sets {
			r.validateSet(ctx, b, lr, i)
		}
		own := cacheName(name)
		lr.sec, lr.why = dnssec.Secure, nil
		lr.ns = nil
		for _, s := range lr.sets {
			if s.owner == own {
				lr.sec, lr.why = weaker(lr.sec, lr.why, s.sec, s.why)
				if d := dnameFor(lr.sets, s); d != nil {
					// The DNAME is part of the answer (RFC 6672 §5.3.1).
					lr.sec, lr.why = weaker(lr.sec, lr.why, d.sec, d.why)
					lr.ns = append(lr.ns, d.proof...)
				}
				lr.ns = append(lr.ns, s.proof...)
			}
		}
	}
}

// finishValidation counts the verdict of the answer to (name, qtype), which
// validate judged, and notes what it rested on.
func (r *Resolver) finishValidation(b *budget, name string, qtype uint16, lr *lookupResult) {
	r.stats.countVerdict(lr.sec, lr.why)
	if lr.grace && (lr.sec == dnssec.Bogus || lr.sec == dnssec.Indeterminate) {
		lr.grace = false // refused all the same: no answer rests on the grace
	}
	if lr.grace {
		r.stats.GraceAccepted.Add(1)
		r.log.Debug("expired signature accepted under the island-mode grace", "qname", name, "qtype", dns.Type(qtype))
	}
	if b.val.Exceeded != "" && !b.valLimitCounted {
		b.valLimitCounted = true
		r.stats.countValidationLimit(b.val.Exceeded)
	}
	if lr.sec == dnssec.Bogus || lr.sec == dnssec.Indeterminate {
		r.log.Debug("validation failed", "qname", name, "qtype", dns.Type(qtype), "status", lr.sec.String(), "err", lr.why)
	}
}

// validateSet judges one RRset of an answer.
func (r *Resolver) validateSet(ctx context.Context, b *budget, lr *lookupResult, i int) {
	v := r.val
	s := lr.sets[i]
	if dnssec.UnderAny(s.owner, v.ntas) {
		s.sec, s.why = dnssec.Insecure, nil
		return
	}
	if _, _, _, ok := v.anchors.Load().Closest(s.owner); !ok {
		s.sec, s.why = dnssec.Insecure, nil
		return
	}
	if s.rrtype == dns.TypeRRSIG {
		// The answer to a question for type RRSIG: signatures are not
		// signed themselves (RFC 4035 §2.2), so there is nothing to
		// validate them with. They are given as they came, never as
		// authenticated data.
		s.sec, s.why = dnssec.Insecure, nil
		return
	}
	if len(s.sigs) == 0 {
		if d := dnameFor(lr.sets[:i], s); d != nil {
			// A CNAME synthesized from a DNAME is as good as the DNAME
			// (RFC 6672 §5.3.1).
			s.sec, s.why, s.maxTTL = d.sec, d.why, d.maxTTL
			return
		}
		ke := r.chainTo(ctx, b, s.owner)
		if ke.kind == keySecure {
			s.sec, s.why = dnssec.Bogus, &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrRRSIGsMissing,
				Detail: fmt.Sprintf("%s %s in the signed zone %s", s.owner, dns.Type(s.rrtype), ke.zone)}
			return
		}
		s.sec, s.why = ke.status()
		s.maxTTL = restOnGrace(lr, s.maxTTL, ke.graceUntil, r.cfg.Now())
		return
	}
	signer := ""
	for _, sig := range s.sigs {
		if n := cacheName(sig.SignerName); dns.IsSubDomain(n, s.owner) {
			signer = n
			break
		}
	}
	if signer == "" {
		s.sec, s.why = dnssec.Bogus, &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrBogus,
			Detail: fmt.Sprintf("%s %s: no RRSIG by a zone above it", s.owner, dns.Type(s.rrtype))}
		return
	}
	ke := r.chainTo(ctx, b, signer)
	if ke.kind != keySecure {
		s.sec, s.why = ke.status()
		s.maxTTL = restOnGrace(lr, s.maxTTL, ke.graceUntil, r.cfg.Now())
		return
	}
	if ke.zone != signer {
		s.sec, s.why = dnssec.Bogus, &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrDNSKEYMissing,
			Detail: fmt.Sprintf("%s %s: signer %s is no secure zone (the chain ends at %s)", s.owner, dns.Type(s.rrtype), signer, ke.zone)}
		return
	}
	now := r.cfg.Now()
	sig, sigMax, grace, err := r.verifyRRset(b, s.rrs, s.sigs, ke.keys, now)
	if err != nil {
		s.sec, s.why = dnssec.StatusOf(err), err
		return
	}
	s.maxTTL = sigMax
	grace = earlierGrace(grace, ke.graceUntil)
	if w := dnssec.WildcardOf(s.owner, sig); w != "" {
		var data, records []dns.RR
		for _, p := range collectSets(lr.msg.Ns, signer) {
			if p.rrtype != dns.TypeNSEC && p.rrtype != dns.TypeNSEC3 {
				continue
			}
			_, _, g, err := r.verifyRRset(b, p.rrs, p.sigs, ke.keys, now)
			if err != nil {
				s.sec, s.why = dnssec.StatusOf(err), err
				return
			}
			grace = earlierGrace(grace, g)
			data = append(data, p.rrs...)
			records = append(records, p.records()...)
		}
		if err := dnssec.ProveWildcard(signer, s.owner, w, data, b.val); err != nil {
			s.sec, s.why = dnssec.StatusOf(err), err
			return
		}
		s.proof = records
	}
	s.sec, s.why = dnssec.Secure, nil
	s.maxTTL = restOnGrace(lr, s.maxTTL, grace, now)
}

// restOnGrace notes in lr that its data rests on a grace running out at
// until (0: no grace) and returns the cache TTL cap maxTTL (0: none)
// bounded accordingly (graceCap).
func restOnGrace(lr *lookupResult, maxTTL time.Duration, until int64, now time.Time) time.Duration {
	if until == 0 {
		return maxTTL
	}
	lr.grace = true
	return graceCap(maxTTL, until, now)
}

// dnameFor returns the DNAME RRset among sets that synthesized the CNAME
// set c, if one did.
func dnameFor(sets []*rrset, c *rrset) *rrset {
	if c.rrtype != dns.TypeCNAME || len(c.rrs) != 1 {
		return nil
	}
	cn := c.rrs[0].(*dns.CNAME)
	for _, d := range sets {
		if d.rrtype != dns.TypeDNAME || len(d.rrs) != 1 || d.owner == c.owner || !dns.IsSubDomain(d.owner, c.owner) {
			continue
		}
		dn := d.rrs[0].(*dns.DNAME)
		prefix := strings.TrimSuffix(c.owner, d.owner)
		if strings.EqualFold(prefix+cacheName(dn.Target), cn.Target) || (dn.Target == "." && strings.EqualFold(prefix, cn.Target)) {
			return d
		}
	}
	return nil
}

// validateNegative judges an NXDOMAIN or NODATA answer for (name, qtype).
func (r *Resolver) validateNegative(ctx context.Context, b *budget, name string, qtype uint16, lr *lookupResult) (dnssec.SecStatus, error, time.Duration) {
	v := r.val
	name = cacheName(name)
	if dnssec.UnderAny(name, v.ntas) {
		return dnssec.Insecure, nil, 0
	}
	if _, _, _, ok := v.anchors.Load().Closest(name); !ok {
		return dnssec.Insecure, nil, 0
	}
	if qtype == dns.TypeRRSIG && lr.rcode == dns.RcodeSuccess {
		// Signatures are not signed: an answer to a question for them is
		// never authenticated, their absence no more than their presence
		// (some servers answer NODATA although the name has RRSIGs).
		return dnssec.Insecure, nil, 0
	}
	var soa dns.RR
	signed := false
	for _, rr := range lr.ns {
		if rr.Header().Rrtype == dns.TypeSOA && soa == nil {
			soa = rr
		}
	}
	if soa == nil && lr.referral != "" && qtype == dns.TypeDS {
		return r.validateReferralDenial(ctx, b, name, lr)
	}
	if soa == nil {
		// Not cacheable either; judge it by the zone of the name.
		ke := r.chainTo(ctx, b, name)
		if ke.kind == keySecure {
			return dnssec.Bogus, &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrNSECMissing,
				Detail: fmt.Sprintf("negative answer for %s without a SOA", name)}, 0
		}
		s, why := ke.status()
		return s, why, restOnGrace(lr, 0, ke.graceUntil, r.cfg.Now())
	}
	zone := cacheName(soa.Header().Name)
	for _, rr := range lr.ns {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == dns.TypeSOA {
			signed = true
		}
	}
	ke := r.chainTo(ctx, b, zone)
	if ke.kind != keySecure {
		s, why := ke.status()
		return s, why, restOnGrace(lr, 0, ke.graceUntil, r.cfg.Now())
	}
	if !signed {
		return dnssec.Bogus, &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrRRSIGsMissing,
			Detail: fmt.Sprintf("negative answer for %s: SOA of the signed zone %s", name, ke.zone)}, 0
	}
	if ke.zone != zone {
		return dnssec.Bogus, &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrDNSKEYMissing,
			Detail: fmt.Sprintf("negative answer for %s: %s is no secure zone (the chain ends at %s)", name, zone, ke.zone)}, 0
	}
	_, maxTTL, grace, err := r.checkNegative(ke, name, qtype, lr.rcode, lr.ns, b)
	if err != nil {
		return dnssec.StatusOf(err), err, 0
	}
	return dnssec.Secure, nil, restOnGrace(lr, maxTTL, earlierGrace(grace, ke.graceUntil), r.cfg.Now())
}

// validateReferralDenial judges a NODATA for the DS of name made of the
// referral to name from its parent (dsFromReferral): secure when the
// parent is a secure zone and the referral's NSEC or NSEC3 records, signed
// by it, prove an unsigned delegation.
func (r *Resolver) validateReferralDenial(ctx context.Context, b *budget, name string, lr *lookupResult) (dnssec.SecStatus, error, time.Duration) {
	ke := r.chainTo(ctx, b, lr.referral)
	if ke.kind != keySecure {
		s, why := ke.status()
		return s, why, restOnGrace(lr, 0, ke.graceUntil, r.cfg.Now())
	}
	if ke.zone != lr.referral {
		return dnssec.Bogus, &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrDNSKEYMissing,
			Detail: fmt.Sprintf("referral to %s: %s is no secure zone (the chain ends at %s)", name, lr.referral, ke.zone)}, 0
	}
	delegation, maxTTL, grace, err := r.checkDenial(ke, name, dns.TypeDS, lr.ns, b)
	switch {
	case err != nil:
		return dnssec.StatusOf(err), err, 0
	case !delegation:
		return dnssec.Bogus, &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrNSECMissing,
			Detail: fmt.Sprintf("referral to %s from %s: the denial of DS proves no zone cut", name, lr.referral)}, 0
	}
	return dnssec.Secure, nil, restOnGrace(lr, maxTTL, earlierGrace(grace, ke.graceUntil), r.cfg.Now())
}

// minTTL is the smallest TTL of rrs (a SOA counting at most its MINIMUM,
// as in a negative answer), or DefaultMaxTTL when there are none.
func minTTL(rrs []dns.RR) time.Duration {
	least := uint32(DefaultMaxTTL / time.Second)
	for _, rr := range rrs {
		t := rr.Header().Ttl
		if soa, ok := rr.(*dns.SOA); ok {
			t = min(t, soa.Minttl)
		}
		least = min(least, t)
	}
	return time.Duration(least) * time.Second
}

// sigTTL is the shortest remaining validity of sigs.
func sigTTL(sigs []*dns.RRSIG, now time.Time) time.Duration {
	least := DefaultMaxTTL
	for _, s := range sigs {
		least = min(least, time.Duration(int64(int32(s.Expiration-uint32(now.Unix()))))*time.Second)
	}
	return max(least, 0)
}
