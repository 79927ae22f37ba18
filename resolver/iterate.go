package resolver

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// maxAddrDepth bounds nested name-server address lookups (the address of
// a server of a zone whose servers' addresses must be looked up, ...).
const maxAddrDepth = 4

// step is what one upstream answer means for the name being looked up.
type step int

const (
	stepAnswer   step = iota // records for the name (or its CNAME)
	stepNegative             // NXDOMAIN or NODATA, with the SOA
	stepReferral             // a delegation further down
	stepLame                 // not usable: ask another server
)

// iterate resolves one name from the closest delegation known, following
// referrals down. With QNAME minimisation each zone's servers are asked only
// for the next label below the zone (type A, RFC 9156 §2.1) until the name
// is reached or a server's answer calls for the full name.
func (r *Resolver) iterate(ctx context.Context, b *budget, name string, qtype uint16) lookupResult {
	if zone, servers := r.forwardZone(name, qtype); zone != "" {
		return r.forward(ctx, b, zone, servers, name, qtype)
	}
	cut, nsNames := r.closestCut(name, qtype)
	known := cut // the deepest name known to lie at or above name's zone cut
	if r.cfg.QNameMinimisation == QMinOff || qtype == dns.TypeDS {
		known = name
	}
	minimised := 0
	fellBack := false
	for range r.cfg.MaxReferrals + maxMinimise + 1 {
		qname, qt := name, qtype
		if next := oneLabelBelow(known, name); next != "" && minimised < maxMinimise {
			qname, qt = next, dns.TypeA
			minimised++
		}
		resp, kind, from, err := r.askZone(ctx, b, cut, nsNames, qname, qt)
		if err != nil && !fellBack && ctx.Err() == nil {
			// The servers of a foreign zone above a national name failed:
			// on from the national zone cut known below it.
			if nc, ns, ok := r.nationalFallback(name, qtype, cut); ok {
				fellBack = true
				cut, nsNames, known = nc, ns, nc
				if r.cfg.QNameMinimisation == QMinOff || qtype == dns.TypeDS {
					known = name
				}
				continue
			}
		}
		if qname != name {
			switch {
			case err != nil:
				known = name // relaxed and strict alike: the full name next
			case kind == stepReferral:
				cut, nsNames = r.storeReferral(cut, qname, resp)
				known = cut
			case kind == stepNegative && resp.Rcode == dns.RcodeNameError:
				if r.cfg.QNameMinimisation == QMinStrict {
					// Nothing exists below a name that does not exist; its
					// proof (the NSEC covering it and the wildcard) holds for
					// the full name too.
					return negativeResult(resp, cut)
				}
				known = name
			default: // the name exists and is no zone cut: one label more
				known = qname
			}
			continue
		}
		if err != nil {
			return lookupResult{err: err}
		}
		switch kind {
		case stepAnswer:
			lr := answerResult(cut, name, qtype, resp)
			lr.from, lr.fromCut = from, cut
			return lr
		case stepNegative:
			lr := negativeResult(resp, cut)
			lr.from, lr.fromCut = from, cut
			return lr
		case stepReferral:
			if qtype == dns.TypeDS && referralZone(resp, cut, name) == cacheName(name) {
				// The parent answered the DS question with the delegation
				// itself: the DS RRset, or the proof of its absence, is in
				// the referral. Only the parent holds it; the child's
				// servers are not asked.
				r.storeReferral(cut, name, resp)
				lr := dsFromReferral(cut, name, resp)
				lr.from, lr.fromCut = from, cut
				return lr
			}
			cut, nsNames = r.storeReferral(cut, name, resp)
			known = cut
			if r.cfg.QNameMinimisation == QMinOff {
				known = name
			}
		}
	}
	r.stats.Limits[LimitReferrals].Add(1)
	return lookupResult{err: fmt.Errorf("%w: more than %d referrals for %s", ErrLimit, r.cfg.MaxReferrals, name)}
}

// oneLabelBelow returns the name made of known and the next label of name
// below it, or "" when that would be name itself (or known is not above
// name).
func oneLabelBelow(known, name string) string {
	below := dns.CountLabel(name) - dns.CountLabel(known) // labels of name below known
	if below <= 1 || !atOrBelow(name, known) {
		return ""
	}
	// The start of the label below-1 labels from name's first.
	off := 0
	for range below - 1 {
		off, _ = dns.NextLabel(name, off)
	}
	return name[off:]
}

// closestCut returns the deepest zone at or above name (strictly above for
// DS, which the parent side answers) whose NS set is cached, or the root.
func (r *Resolver) closestCut(name string, qtype uint16) (string, []string) {
	zone := strings.ToLower(dns.Fqdn(name))
	if qtype == dns.TypeDS && zone != "." {
		zone = parentName(zone)
	}
	for {
		if _, ok := r.cfg.Stubs[zone]; ok {
			return zone, nil // knownAddrs gives the stub's servers
		}
		if zone == "." {
			return r.nationalFirst(name, qtype, ".", r.rootNS)
		}
		if ns, ok := r.infraRRset(zone, dns.TypeNS); ok && len(ns) > 0 {
			if targets := nsTargets(ns); r.reachable(zone, targets) {
				return r.nationalFirst(name, qtype, zone, targets)
			}
			// Every server of the zone is inside it and none has an
			// address left (the glue expired before the NS RRset): the
			// parent's referral brings them again.
		}
		zone = parentName(zone)
	}
}

// reachable reports whether the servers nsNames of zone can be asked: one
// has an address known, or is outside the zone, so that its address can
// be looked up.
func (r *Resolver) reachable(zone string, nsNames []string) bool {
	for _, n := range nsNames {
		if !dns.IsSubDomain(zone, n) || len(r.addrsOf(zone, n)) > 0 {
			return true
		}
	}
	return false
}

func parentName(name string) string {
	i, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[i:]
}

// rootNS returns the names of the root's servers in hints, lower-case.
func rootNS(hints []dns.RR) []string {
	var out []string
	for _, rr := range hints {
		if ns, ok := rr.(*dns.NS); ok && ns.Hdr.Name == "." {
			out = append(out, strings.ToLower(ns.Ns))
		}
	}
	return out
}

func nsTargets(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if ns, ok := rr.(*dns.NS); ok {
			out = append(out, strings.ToLower(ns.Ns))
		}
	}
	return out
}

// askZone asks the servers of zone cut about name until one gives a usable
// answer, in order of their round-trip times, and returns it with the
// server that gave it (none for an answer from a zone held here).
func (r *Resolver) askZone(ctx context.Context, b *budget, cut string, nsNames []string, name string, qtype uint16) (*dns.Msg, step, server, error) {
	if r.cfg.Local != nil {
		// A zone held here at or below cut answers for its servers.
		if m, origin := r.cfg.Local.Answer(name, qtype); m != nil && atOrBelow(origin, cut) {
			if kind := classifyStep(m, origin, name, qtype); kind != stepLame {
				r.stats.LocalAnswers.Add(1)
				return m, kind, server{}, nil
			}
		}
	}
	foreign := !r.cfg.Island.Disabled && r.foreign(cut)
	addrs := r.knownAddrs(cut, nsNames)
	// In island mode a question sends at most one trial query to a
	// foreign server, when one may go out now, and waits for it briefly;
	// or waits as briefly for the trial another question just sent.
	var trial chan struct{} // the trial this question sends, until sent
	if foreign && r.island.active.Load() {
		if len(addrs) == 0 || b.trialTaken {
			return nil, 0, server{}, islandErr(cut)
		}
		if trial = r.trialSlot(); trial != nil {
			b.trialTaken = true
			defer func() {
				if trial != nil { // the slot was taken but no trial sent
					close(trial)
				}
			}()
		} else if !r.awaitTrial(ctx) {
			// Another question's trial went out just now; it did not
			// end island mode in time.
			b.trialTaken = true
			return nil, 0, server{}, islandErr(cut)
		}
	}
	resolved := false
	var lastErr error
	var h *hedge // the queries still waited for after their RTO
	defer func() {
		if h != nil {
			h.stop()
		}
	}()
	// lame takes note of a server's answer that does not answer: the
	// server goes to the back.
	lame := func(s server, resp *dns.Msg) {
		lastErr = fmt.Errorf("%s: %w (rcode %s)", s, ErrLame, dns.RcodeToString[resp.Rcode])
		r.infra.failed(s, r.penalty())
	}
	for {
		order := r.infra.order(addrs)
		for round := 0; len(order) > 0 && round < tryRounds; round++ {
			var again []server // the servers that did not answer: asked once more
			for i, s := range order {
				if ctx.Err() != nil {
					return nil, 0, server{}, fmt.Errorf("%w: %w", ErrNoReachableAuthority, ctx.Err())
				}
				if b.excluded(cut, s) {
					continue // its answer failed validation for this question
				}
				if trial == nil && r.infra.skip(s) {
					r.stats.DownSkips.Add(1)
					r.observeUpstream(cut, false)
					lastErr = fmt.Errorf("%s: %w", s, errServerDown)
					continue
				}
				if b.queries++; b.queries > r.cfg.MaxUpstreamQueries {
					r.stats.Limits[LimitUpstreamQueries].Add(1)
					return nil, 0, server{}, fmt.Errorf("%w: more than %d upstream queries", ErrLimit, r.cfg.MaxUpstreamQueries)
				}
				var resp *dns.Msg
				var err error
				switch {
				case trial != nil:
					over := trial
					trial = nil
					if resp, err = r.trialQuery(ctx, over, cut, s, name, qtype); err != nil {
						return nil, 0, server{}, fmt.Errorf("%w: trial query to %s: %w", islandErr(cut), s, err)
					}
				case foreign && r.island.active.Load():
					// Island mode began while this question waited on a
					// foreign server: it waits on no other.
					return nil, 0, server{}, islandErr(cut)
				case foreign && lastErr != nil && r.awaitProbeThenIsland(ctx):
					return nil, 0, server{}, islandErr(cut)
				default:
					if foreign {
						r.noteForeignAsk()
					}
					more := r.othersLeft(b, cut, order[i+1:]) || r.retryable(b, s, round)
					resp, err = r.queryWith(ctx, &h, cut, s, name, qtype, false, more)
					if err != nil && h != nil {
						if a, ok := h.answer(ctx, false); ok {
							s, resp, err = a.s, a.resp, nil // an earlier server's, late
						}
					}
					if errors.Is(err, ErrRateLimited) {
						return nil, 0, server{}, err // no other server of the zone either
					}
					if errors.Is(err, ErrZoneBusy) {
						return nil, 0, server{}, fmt.Errorf("%w for %s: %w", ErrNoReachableAuthority, cut, err)
					}
					if !errors.Is(err, context.Canceled) {
						r.observeUpstream(cut, err == nil)
					}
				}
				if err != nil {
					lastErr = err
					if errors.Is(err, errLost) && r.retryable(b, s, round) {
						again = append(again, s)
					}
					continue
				}
				if kind := classifyStep(resp, cut, name, qtype); kind != stepLame {
					return resp, kind, s, nil
				}
				lame(s, resp)
			}
			order = again
		}
		// Every server was asked: the answers still awaited may come.
		for h != nil {
			a, ok := h.answer(ctx, true)
			if !ok {
				break
			}
			r.observeUpstream(cut, true)
			if kind := classifyStep(a.resp, cut, name, qtype); kind != stepLame {
				return a.resp, kind, a.s, nil
			}
			lame(a.s, a.resp)
		}
		if resolved || (foreign && r.island.active.Load()) {
			break
		}
		// The servers whose addresses we knew failed, or there were none:
		// look up the addresses of the others.
		resolved = true
		more := r.resolveAddrs(ctx, b, cut, nsNames, addrs)
		if len(more) == 0 {
			break
		}
		addrs = more
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no address for any server of %s", cut)
	}
	return nil, 0, server{}, fmt.Errorf("%w for %s: %w", ErrNoReachableAuthority, cut, lastErr)
}

// errNoAnswer is an upstream query that got no answer in its time;
// errLost one whose server answered other queries meanwhile: it is alive,
// and lost this query or its answer (as a busy server drops part of a
// burst).
var (
	errNoAnswer = errors.New("no answer")
	errLost     = fmt.Errorf("%w, but answers to others", errNoAnswer)
)

// tryRounds is how many times one question may ask a server of a zone
// that lost its query (errLost: it is sent again, as Unbound and BIND
// do), within MaxUpstreamQueries and the resolution's time. A server
// silent since the query went is not asked again by the question, so that
// an outage is met at once; nor is one that answered uselessly.
const tryRounds = 3

// retryable reports whether server s may be asked again by this question
// after round if it loses the query: a later round is left, so is the
// budget of upstream queries, and s has answered before.
func (r *Resolver) retryable(b *budget, s server, round int) bool {
	return round+1 < tryRounds && b.queries < r.cfg.MaxUpstreamQueries && r.infra.hasAnswered(s)
}

// othersLeft reports whether this question may still ask one of rest,
// servers of zone: one neither excluded nor down, within the budget of
// upstream queries.
func (r *Resolver) othersLeft(b *budget, zone string, rest []server) bool {
	if b.queries >= r.cfg.MaxUpstreamQueries {
		return false
	}
	for _, s := range rest {
		if !b.excluded(zone, s) && !r.infra.down(s) {
			return true
		}
	}
	return false
}

// knownAddrs returns the addresses of nsNames that are known without a
// query: root hints, or cached glue and answers.
func (r *Resolver) knownAddrs(cut string, nsNames []string) []server {
	if stub, ok := r.cfg.Stubs[cut]; ok {
		return stub
	}
	var out []server
	for _, n := range nsNames {
		out = r.appendAddrs(out, cut, n)
	}
	return out
}

// upstreamAddr returns the server at the address of an A or AAAA record,
// if it may be queried.
func (r *Resolver) upstreamAddr(rr dns.RR) (server, bool) {
	var a netip.Addr
	switch v := rr.(type) {
	case *dns.A:
		a, _ = netip.AddrFromSlice(v.A.To4())
	case *dns.AAAA:
		a, _ = netip.AddrFromSlice(v.AAAA)
	default:
		return server{}, false
	}
	if a = a.Unmap(); !r.usable(a) {
		return server{}, false
	}
	return netip.AddrPortFrom(a, r.cfg.UpstreamPort), true
}

func (r *Resolver) addrsOf(cut, ns string) []server { return r.appendAddrs(nil, cut, ns) }

// appendAddrs appends the addresses of ns, a server of cut, to dst.
func (r *Resolver) appendAddrs(dst []server, cut, ns string) []server {
	start := len(dst)
	out := dst
	add := func(rr dns.RR) {
		if s, ok := r.upstreamAddr(rr); ok {
			out = append(out, s)
		}
	}
	if cut == "." {
		for _, rr := range r.cfg.RootHints {
			if strings.EqualFold(rr.Header().Name, ns) {
				add(rr)
			}
		}
		if len(out) > start {
			return out
		}
	}
	for _, t := range [2]uint16{dns.TypeA, dns.TypeAAAA} {
		if rrs, ok := r.infraRRset(ns, t); ok {
			for _, rr := range rrs {
				add(rr)
			}
		}
	}
	// The parent's glue as well, where the child's own addresses took its
	// place in the cache (glue.go); compared with this server's only.
	out = append(out[:start], r.glue.add(out[start:], cacheName(ns), r.cfg.Now(), r.island.active.Load())...)
	if len(out) == start {
		out = append(out, r.nationalAddrs(cut, ns)...)
	}
	return out
}

// islandErr is why the foreign servers of cut are not asked.
func islandErr(cut string) error {
	return fmt.Errorf("%w for %s: island mode, foreign servers are not asked", ErrNoReachableAuthority, cut)
}

// resolveAddrs looks up the addresses of the name servers that have none
// known, skipping those inside the zone itself (without glue they cannot
// be reached), within the limits on such lookups: at most
// MaxTargetFetches names, in random order (a referral cannot choose which
// of its names are looked up), no AAAA after an NXDOMAIN for A, and none
// at all once MaxTargetFailures lookups of this question have failed. A
// referral naming a hundred servers in someone else's zone (NXNS) thus
// sends that zone a few queries, not a hundred.
func (r *Resolver) resolveAddrs(ctx context.Context, b *budget, cut string, nsNames []string, known []server) []server {
	if b.depth >= maxAddrDepth {
		return nil
	}
	var todo []string
	for _, n := range nsNames {
		if len(r.addrsOf(cut, n)) > 0 || dns.IsSubDomain(cut, n) {
			continue
		}
		todo = append(todo, n)
	}
	rand.Shuffle(len(todo), func(i, j int) { todo[i], todo[j] = todo[j], todo[i] })
	if len(todo) > r.cfg.MaxTargetFetches {
		r.stats.TargetsSkipped.Add(uint64(len(todo) - r.cfg.MaxTargetFetches))
		todo = todo[:r.cfg.MaxTargetFetches]
	}
	var out []server
	for i, n := range todo {
		if b.targetFailures >= r.cfg.MaxTargetFailures {
			r.stats.TargetsSkipped.Add(uint64(len(todo) - i))
			break
		}
		if b.nsLookups++; b.nsLookups > r.cfg.MaxNSLookups {
			r.stats.Limits[LimitNSLookups].Add(1)
			break
		}
		found := len(out)
		for _, t := range r.addrTypes() {
			b.depth++
			lr := r.lookup(ctx, b, n, t)
			b.depth--
			if lr.err != nil || lr.rcode == dns.RcodeNameError {
				break // no such name, or its zone failed: no other type either
			}
			for _, rr := range lr.answer {
				if s, ok := r.upstreamAddr(rr); ok {
					out = append(out, s)
				}
			}
		}
		if len(out) == found {
			b.targetFailures++
		}
		if len(out) > 0 {
			return out // enough to go on; the rest only if these fail
		}
	}
	return out
}

// query sends one question to one server of zone: EDNS with a 1232-byte
// buffer, again without EDNS if the server does not understand it, and
// over TCP if the UDP answer is truncated or lacks the server cookie the
// server is known to send (a BADCOOKIE answer is retried once with the
// server's new cookie first). Each message sent counts against the
// zone's rate limit; the question counts against the zone's
// MaxZoneInFlight while it waits.
//
// A query over UDP is waited on the server's retransmission timeout
// (infra.go) when another server is left to ask (more), the whole
// QueryTimeout otherwise; over TCP, with its handshake, always the whole
// QueryTimeout. A timeout backs off the server's RTO, and counts as a
// failure of the server, only if it answered nothing meanwhile.
func (r *Resolver) query(ctx context.Context, zone string, s server, name string, qtype uint16, rd, more bool) (*dns.Msg, error) {
	return r.queryKeep(ctx, zone, s, name, qtype, rd, more, nil, false)
}

// queryWith is query for one of the servers of a zone that a question
// asks in turn: in the context of *h, the queries of the zone waited for
// late, once there is one (see queryKeep).
func (r *Resolver) queryWith(ctx context.Context, h **hedge, zone string, s server, name string, qtype uint16, rd, more bool) (*dns.Msg, error) {
	if *h == nil {
		return r.queryKeep(ctx, zone, s, name, qtype, rd, more, h, false)
	}
	qctx, done, own := (*h).queryCtx()
	defer done()
	return r.queryKeep(qctx, zone, s, name, qtype, rd, more, h, own)
}

// queryKeep is query; with h, a first query over UDP whose RTO passes
// goes on being waited for in *h (parallel tries, hedge.go), made then
// if need be (ctx is then the question's). With prompt, the end of ctx
// (a late answer came first) ends a query under way at once
// (exchangeNote.prompt).
func (r *Resolver) queryKeep(ctx context.Context, zone string, s server, name string, qtype uint16, rd, more bool, h **hedge, prompt bool) (*dns.Msg, error) {
	qname := name
	if r.cfg.Use0x20 {
		qname = randomCase(name)
	}
	// DO: the answers carry their RRSIGs and denial proofs, which the
	// validator checks and clients that set DO get (RFC 4035 §4.1). A
	// validating resolver asks its forwarders with CD, to validate itself
	// what they would have refused (RFC 6840 §5.9).
	m := newUpstreamQuery(qname, qtype, 1232, true)
	m.RecursionDesired = rd
	m.CheckingDisabled = rd && r.val != nil
	// One reading of the clock for each query sent: its zone's slot,
	// its deadline, its RTT's start and its answer's time come from it.
	now := time.Now()
	if !r.waits.acquire(ctx, zone, now) {
		if err := ctx.Err(); err != nil {
			return nil, err // the question ended, or another answer came while it waited
		}
		r.stats.ZoneBusy.Add(1)
		return nil, fmt.Errorf("%w: %d already waiting on the servers of %s", ErrZoneBusy, r.cfg.MaxZoneInFlight, zone)
	}
	defer r.waits.release(zone)
	tcp, badCookie := false, false
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			now = time.Now()
		}
		if err := r.sendAllowed(zone); err != nil {
			return nil, err
		}
		rto, answers := r.infra.timeout(s)
		wait := r.cfg.QueryTimeout
		if more && !tcp {
			wait = rto
		}
		keep := h != nil && wait < r.cfg.QueryTimeout && attempt == 0
		resp, rtt, timedOut, late, err := r.exchange(ctx, now, wait, zone, m, s, tcp, keep, prompt)
		if err != nil && errors.Is(ctx.Err(), context.Canceled) {
			// The question ended, or another server's answer came
			// first: nothing is learnt of this one.
			r.stats.countSent(tcp)
			if late != nil {
				late.conn.Close()
			}
			return nil, err
		}
		r.stats.countUpstream(tcp, resp, err)
		if errors.Is(err, errCookieMissing) && !tcp {
			tcp = true
			continue
		}
		if err != nil {
			charge := true
			if timedOut {
				charge = r.infra.timedOut(s, answers)
				if wait < r.cfg.QueryTimeout {
					r.stats.RTOTimeouts.Add(1)
				}
				if charge {
					err = fmt.Errorf("%s: %w in %v: %w", s, errNoAnswer, wait, err)
				} else {
					err = fmt.Errorf("%s: %w in %v: %w", s, errLost, wait, err)
				}
			}
			if charge {
				r.infra.failed(s, r.penalty())
			}
			if late != nil {
				if *h == nil {
					*h = newHedge(r, ctx, zone)
				}
				(*h).add(s, late)
			}
			return nil, err
		}
		r.infra.observe(s, rtt)
		r.waits.answered(zone, now.Add(rtt))
		if o := r.stats.Observer; o != nil {
			o.UpstreamRTT(rtt)
		}
		switch {
		case m.Question[0].Name != name && len(resp.Question) > 0 && resp.Question[0].Name != m.Question[0].Name:
			// 0x20: the answer must echo our spelling (Exchange compared it
			// case-insensitively). A server that does not preserve case is
			// asked again with the name as it came.
			r.stats.UpstreamError.Add(1)
			m.Question[0].Name = name
		case resp.Truncated && !tcp:
			tcp = true
		case resp.Rcode == dns.RcodeBadCookie && m.IsEdns0() != nil:
			// The answer brought the server's new cookie (RFC 7873 §5.3):
			// once more with it, then over TCP.
			if badCookie {
				tcp = true
			}
			badCookie = true
		case resp.Rcode == dns.RcodeFormatError && m.IsEdns0() != nil:
			m.Extra = nil
		default:
			return resp, nil
		}
	}
	return nil, errors.New("no usable answer after retries")
}

// exchange sends m to server s of zone, waiting up to wait from now (a
// reading of the clock just taken), and counts the unwanted replies that
// came meanwhile against the zone; an answer that came with the reply
// that raised the spoofing alarm is not believed.
func (r *Resolver) exchange(ctx context.Context, now time.Time, wait time.Duration, zone string, m *dns.Msg, s server, tcp, keep, prompt bool) (resp *dns.Msg, rtt time.Duration, timedOut bool, late *lateQuery, err error) {
	nx, ok := r.ex.(notingExchanger)
	if !ok {
		qctx := newQuestionCtx(ctx, wait)
		defer qctx.end()
		resp, rtt, err = r.ex.Exchange(qctx, m, s, tcp)
		return resp, rtt, err != nil && ctx.Err() == nil && errors.Is(qctx.Err(), context.DeadlineExceeded), nil, err
	}
	// The network's exchanger takes the wait as a deadline of its socket,
	// not as a context of its own with a timer.
	note := exchangeNote{keep: keep, prompt: prompt, start: now}
	deadline := now.Add(wait)
	if x, isNet := nx.(*NetExchanger); isNet {
		// Called on its type, the note stays on this goroutine's stack.
		resp, rtt, err = x.exchangeNoting(ctx, deadline, m, s, tcp, &note)
	} else {
		n := note // escapes, through the interface
		resp, rtt, err = nx.exchangeNoting(ctx, deadline, m, s, tcp, &n)
		note = n
	}
	timedOut = err != nil && ctx.Err() == nil && !time.Now().Before(deadline)
	if note.unwanted > 0 && r.noteUnwanted(zone, s, note.unwanted) && err == nil {
		return nil, rtt, false, nil, fmt.Errorf("%s: %w", s, errSpoofing)
	}
	if !timedOut && note.late != nil {
		note.late.conn.Close()
		note.late = nil
	}
	return resp, rtt, timedOut, note.late, err
}

// classifyStep says what resp, from a server of zone cut, means for name.
func classifyStep(resp *dns.Msg, cut, name string, qtype uint16) step {
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return stepLame
	}
	if !dns.IsSubDomain(cut, name) {
		return stepLame
	}
	for _, rr := range resp.Answer {
		h := rr.Header()
		if strings.EqualFold(h.Name, name) && (h.Rrtype == qtype || h.Rrtype == dns.TypeCNAME || qtype == dns.TypeANY) {
			return stepAnswer
		}
	}
	if resp.Rcode == dns.RcodeNameError {
		return stepNegative
	}
	if zone := referralZone(resp, cut, name); zone != "" {
		return stepReferral
	}
	upward := false
	for _, rr := range resp.Ns {
		h := rr.Header()
		if h.Rrtype == dns.TypeSOA && dns.IsSubDomain(cut, h.Name) {
			return stepNegative // NODATA
		}
		if h.Rrtype == dns.TypeNS && !dns.IsSubDomain(cut, h.Name) {
			upward = true
		}
	}
	if resp.Authoritative && !upward {
		return stepNegative
	}
	// An upward or sideways referral (with the AA bit or without), or
	// nothing at all: the server is lame for the zone.
	return stepLame
}

// referralZone returns the child zone a referral delegates to: NS records
// in authority for a name strictly below cut and at or above name.
func referralZone(resp *dns.Msg, cut, name string) string {
	for _, rr := range resp.Ns {
		if ns, ok := rr.(*dns.NS); ok {
			z := ns.Hdr.Name
			if !strings.EqualFold(z, cut) && dns.IsSubDomain(cut, z) && dns.IsSubDomain(z, name) {
				return strings.ToLower(z)
			}
		}
	}
	return ""
}

// answerResult is the lookup result of an answer from a server of zone
// cut to (name, qtype): the in-bailiwick RRsets of the answer section,
// with their RRSIGs, and the records owned by name, each CNAME synthesised
// from a DNAME preceded by that DNAME (RFC 6672 §5.3.1). For qtype RRSIG
// the signatures owned by name are the answer, an RRset of their own.
// Nothing is cached until it is validated.
func answerResult(cut, name string, qtype uint16, resp *dns.Msg) lookupResult {
	lr := lookupResult{rcode: dns.RcodeSuccess, msg: resp, sets: collectSets(resp.Answer, cut)}
	own := cacheName(name)
	if qtype == dns.TypeRRSIG {
		if s := sigsOwnedBy(resp.Answer, cut, own); s != nil {
			lr.sets = append(lr.sets, s)
		}
	}
	for _, s := range lr.sets {
		if s.owner != own {
			continue
		}
		if d := dnameFor(lr.sets, s); d != nil {
			lr.answer = append(lr.answer, d.records()...)
		}
		lr.answer = append(lr.answer, s.records()...)
	}
	return lr
}

// sigsOwnedBy returns the RRSIG records of section owned by own (inside
// cut) as one set of type RRSIG, or nil when there are none.
func sigsOwnedBy(section []dns.RR, cut, own string) *rrset {
	var s *rrset
	for _, rr := range section {
		sig, ok := rr.(*dns.RRSIG)
		if !ok || sig.Hdr.Class != dns.ClassINET || cacheName(sig.Hdr.Name) != own || !dns.IsSubDomain(cut, own) {
			continue
		}
		if s == nil {
			s = &rrset{owner: own, rrtype: dns.TypeRRSIG}
		}
		if !containsRR(s.rrs, rr) {
			s.rrs = append(s.rrs, rr)
		}
	}
	return s
}

// containsRR reports whether rrs holds a record equal to rr but for the
// TTL and the case of the owner name.
func containsRR(rrs []dns.RR, rr dns.RR) bool {
	for _, x := range rrs {
		if dns.IsDuplicate(x, rr) {
			return true
		}
	}
	return false
}

// dsFromReferral is the result of a DS question that the parent zone cut
// answered with the delegation to name itself: the DS RRset of the
// referral, with its RRSIGs, as an answer; else a NODATA whose proof is
// the referral's NSEC or NSEC3 records (there is no SOA; validateNegative
// checks them against the keys of cut).
func dsFromReferral(cut, name string, resp *dns.Msg) lookupResult {
	own := cacheName(name)
	var ds []dns.RR
	for _, s := range collectSets(resp.Ns, cut) {
		if s.owner == own && s.rrtype == dns.TypeDS {
			ds = s.records()
		}
	}
	if len(ds) > 0 {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeDS)
		m.Response, m.Authoritative = true, true
		m.Answer = ds
		return answerResult(cut, name, dns.TypeDS, m)
	}
	return lookupResult{rcode: dns.RcodeSuccess, negative: true, msg: resp, ns: denialRecords(resp.Ns, cut), referral: cut}
}

// denialRecords returns the NSEC and NSEC3 records of section inside cut
// and the RRSIGs over them.
func denialRecords(section []dns.RR, cut string) []dns.RR {
	var out []dns.RR
	for _, s := range collectSets(section, cut) {
		if s.rrtype == dns.TypeNSEC || s.rrtype == dns.TypeNSEC3 {
			out = append(out, s.records()...)
		}
	}
	return out
}

// collectSets groups the records of section that lie inside cut
// (bailiwick) into RRsets, in order of appearance, and gives each the
// RRSIGs that cover it; RRSIGs that cover no set are dropped, and so are
// records and RRSIGs sent twice.
func collectSets(section []dns.RR, cut string) []*rrset {
	type key struct {
		owner string
		t     uint16
	}
	var out []*rrset
	idx := map[key]*rrset{}
	var sigs []*dns.RRSIG
	var buf []byte // for holds
	for _, rr := range section {
		h := rr.Header()
		if h.Class != dns.ClassINET || !atOrBelow(h.Name, cut) {
			continue // out of bailiwick: not believed
		}
		if sig, ok := rr.(*dns.RRSIG); ok {
			sigs = append(sigs, sig)
			continue
		}
		k := key{cacheName(h.Name), h.Rrtype}
		s := idx[k]
		if s == nil {
			if out == nil {
				// The first set, the slice of sets and room for the
				// set's first record in one allocation: most answers
				// are one set, often of one record.
				f := &firstSet{}
				f.set = rrset{owner: k.owner, rrtype: k.t, rrs: f.rr[:0:1]}
				f.ptr[0] = &f.set
				s, out = &f.set, f.ptr[:1:1]
			} else {
				s = &rrset{owner: k.owner, rrtype: k.t}
				out = append(out, s)
			}
			idx[k] = s
		}
		if !s.holds(rr, &buf) { // a record sent twice is one record
			s.rrs = append(s.rrs, rr)
		}
	}
	for _, sig := range sigs {
		if s := idx[key{cacheName(sig.Hdr.Name), sig.TypeCovered}]; s != nil && !containsSig(s.sigs, sig) {
			s.sigs = append(s.sigs, sig)
		}
	}
	return out
}

// firstSet is collectSets' first set, with the slice that lists it and
// room for its first record.
type firstSet struct {
	ptr [1]*rrset
	set rrset
	rr  [1]dns.RR
}

// holdsScan is the size up to which holds compares a record with each of
// the set's; beyond it, the set's RDATA are indexed, so that a huge
// RRset costs no quadratic time.
const holdsScan = 16

// holds reports whether the set has a record equal to rr but for the TTL;
// buf is scratch space, allocated when first needed.
func (s *rrset) holds(rr dns.RR, buf *[]byte) bool {
	if s.seen == nil {
		if len(s.rrs) < holdsScan {
			return containsRR(s.rrs, rr)
		}
		s.seen = make(map[string]struct{}, 2*len(s.rrs))
		for _, x := range s.rrs {
			s.seen[rdataKey(x, buf)] = struct{}{}
		}
	}
	k := rdataKey(rr, buf)
	if _, dup := s.seen[k]; dup {
		return true
	}
	s.seen[k] = struct{}{}
	return false
}

// rdataKey is the RDATA of rr as it is sent, or its text when it cannot
// be packed.
func rdataKey(rr dns.RR, buf *[]byte) string {
	if *buf == nil {
		*buf = make([]byte, dns.MaxMsgSize)
	}
	n, err := dns.PackRR(rr, *buf, 0, nil, false)
	if err != nil {
		return rr.String()
	}
	start := rdataStart((*buf)[:n])
	if start < 0 {
		return rr.String()
	}
	return string((*buf)[start:n])
}

func containsSig(sigs []*dns.RRSIG, sig *dns.RRSIG) bool {
	for _, x := range sigs {
		if dns.IsDuplicate(x, sig) {
			return true
		}
	}
	return false
}

// negativeResult is the lookup result of an NXDOMAIN or NODATA answer from
// a server of zone cut.
func negativeResult(resp *dns.Msg, cut string) lookupResult {
	return lookupResult{rcode: resp.Rcode, negative: true, msg: resp, ns: negativeAuthority(resp, cut)}
}

// negativeAuthority returns what a negative answer's authority section
// proves with: the SOA of the zone that answers (inside cut), and that
// zone's NSEC and NSEC3 records, with the RRSIGs covering them.
func negativeAuthority(resp *dns.Msg, cut string) []dns.RR {
	var soa dns.RR
	for _, rr := range resp.Ns {
		if rr.Header().Rrtype == dns.TypeSOA && rr.Header().Class == dns.ClassINET && dns.IsSubDomain(cut, rr.Header().Name) {
			soa = rr
			break
		}
	}
	if soa == nil {
		return nil
	}
	zone := soa.Header().Name
	out := []dns.RR{soa}
	for _, rr := range resp.Ns {
		h := rr.Header()
		if h.Class != dns.ClassINET || !dns.IsSubDomain(zone, h.Name) {
			continue
		}
		if containsRR(out, rr) {
			continue // sent twice
		}
		switch v := rr.(type) {
		case *dns.NSEC, *dns.NSEC3:
			out = append(out, rr)
		case *dns.RRSIG:
			switch v.TypeCovered {
			case dns.TypeNSEC, dns.TypeNSEC3:
				out = append(out, rr)
			case dns.TypeSOA:
				if strings.EqualFold(h.Name, zone) {
					out = append(out, rr)
				}
			}
		}
	}
	return out
}

// store caches what resolveStore got: each RRset of an answer as the
// answer to its own name and type (and name-server addresses and NS sets
// for iteration), or the negative answer, with their DNSSEC status.
func (r *Resolver) store(name string, qtype uint16, lr *lookupResult) {
	if lr.negative {
		if len(lr.ns) > 0 {
			r.putMsg(name, qtype, lr.rcode, nil, lr.ns, lr.sec, lr.why, lr.maxTTL)
		}
		return
	}
	for _, s := range lr.sets {
		records, sec, why := s.records(), s.sec, s.why
		if d := dnameFor(lr.sets, s); d != nil {
			// The CNAME is kept with the DNAME it was synthesised from,
			// which a cached answer gives too.
			records = append(d.records(), records...)
			sec, why = weaker(sec, why, d.sec, d.why)
		}
		m := answerMsg(s.owner, s.rrtype, dns.RcodeSuccess, records, s.proof)
		if s.rrtype == dns.TypeA || s.rrtype == dns.TypeAAAA || s.rrtype == dns.TypeNS {
			// Also an RRset for iteration (name servers and their
			// addresses), from the same copy of the records.
			r.cache.PutValidatedWithRRset(m, sec, why, s.maxTTL, s.rrs, rankFor(lr.msg.Authoritative))
		} else {
			r.cache.PutValidated(m, sec, why, s.maxTTL)
		}
	}
}

// storeReferral caches the delegation and its glue and returns the child
// zone and its name servers.
func (r *Resolver) storeReferral(cut, name string, resp *dns.Msg) (string, []string) {
	zone := referralZone(resp, cut, name)
	var ns []dns.RR
	for _, rr := range resp.Ns {
		if n, ok := rr.(*dns.NS); ok && strings.EqualFold(n.Hdr.Name, zone) {
			ns = append(ns, rr)
		}
	}
	r.cache.PutRRset(ns, RankAuthority)
	if r.val != nil && zone != "" {
		r.val.refDS.note(cut, zone, resp, r.cfg.Now())
	}
	// Glue is believed only for names inside the zone that sent it.
	glue := map[string][]dns.RR{}
	for _, rr := range resp.Extra {
		switch rr.(type) {
		case *dns.A, *dns.AAAA:
			h := rr.Header()
			if dns.IsSubDomain(cut, h.Name) {
				k := fmt.Sprintf("%s/%d", strings.ToLower(h.Name), h.Rrtype)
				glue[k] = append(glue[k], rr)
			}
		}
	}
	now := r.cfg.Now()
	for _, rrs := range glue {
		r.cache.PutRRset(rrs, RankGlue)
		var addrs []server
		for _, rr := range rrs {
			if s, ok := r.upstreamAddr(rr); ok {
				addrs = append(addrs, s)
			}
		}
		r.glue.put(cacheName(rrs[0].Header().Name), addrs, now, minTTL(rrs))
	}
	return zone, nsTargets(ns)
}

// putMsg caches the answer to (name, qtype) with its DNSSEC status.
func (r *Resolver) putMsg(name string, qtype uint16, rcode int, answer, ns []dns.RR, sec dnssec.SecStatus, why error, maxTTL time.Duration) {
	r.cache.PutValidated(answerMsg(name, qtype, rcode, answer, ns), sec, why, maxTTL)
}

// answerMsg returns the response to (name, qtype) with rcode and the
// sections given, as the cache takes it.
func answerMsg(name string, qtype uint16, rcode int, answer, ns []dns.RR) *dns.Msg {
	// The message and its question in one allocation.
	box := &struct {
		m dns.Msg
		q [1]dns.Question
	}{q: [1]dns.Question{{Name: dns.Fqdn(name), Qtype: qtype, Qclass: dns.ClassINET}}}
	m := &box.m
	m.Question = box.q[:]
	m.Response = true
	m.Rcode = rcode
	m.Answer, m.Ns = answer, ns
	return m
}

func rankFor(authoritative bool) Rank {
	if authoritative {
		return RankAnswerAA
	}
	return RankAnswer
}

// penalty is the RTT charged to a server that timed out or answered
// uselessly: longer than any server that works, and than an untried one.
func (r *Resolver) penalty() time.Duration {
	return max(2*r.cfg.QueryTimeout, 4*unknownRTT)
}

// usable reports whether an upstream address may be queried: of an enabled
// family, never unspecified, multicast or broadcast, loopback only when
// allowed (a delegation to 127.0.0.1 must not turn the resolver on its own
// host), private and link-local unless refused.
func (r *Resolver) usable(a netip.Addr) bool {
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return false
	case a.Is4() && r.cfg.NoIPv4, a.Is6() && r.cfg.NoIPv6:
		return false
	case a.IsLoopback():
		return r.cfg.QueryLoopback
	case a.IsPrivate() || a.IsLinkLocalUnicast():
		return !r.cfg.NoPrivate
	}
	return true
}

// addrTypes lists the address types to look up for name servers.
func (r *Resolver) addrTypes() []uint16 {
	switch {
	case r.cfg.NoIPv6:
		return []uint16{dns.TypeA}
	case r.cfg.NoIPv4:
		return []uint16{dns.TypeAAAA}
	}
	return []uint16{dns.TypeA, dns.TypeAAAA}
}

// forwardZone returns the deepest forward zone at or above name, unless a
// stub zone below it is closer.
func (r *Resolver) forwardZone(name string, qtype uint16) (string, []server) {
	if len(r.cfg.Forwards) == 0 {
		return "", nil
	}
	zone := strings.ToLower(dns.Fqdn(name))
	if qtype == dns.TypeDS && zone != "." {
		zone = parentName(zone)
	}
	for {
		if _, ok := r.cfg.Stubs[zone]; ok {
			return "", nil
		}
		if fw, ok := r.cfg.Forwards[zone]; ok {
			return zone, fw
		}
		if zone == "." {
			return "", nil
		}
		zone = parentName(zone)
	}
}

// forward asks the recursive resolvers of a forward zone, in order of their
// round-trip times, and caches what they answer.
func (r *Resolver) forward(ctx context.Context, b *budget, zone string, servers []server, name string, qtype uint16) lookupResult {
	var lastErr error
	var h *hedge // the queries still waited for after their RTO
	defer func() {
		if h != nil {
			h.stop()
		}
	}()
	// use returns the lookup result of a forwarder's answer, or takes
	// note that it does not answer.
	use := func(s server, resp *dns.Msg) (lookupResult, bool) {
		switch classifyStep(resp, ".", name, qtype) {
		case stepAnswer:
			lr := answerResult(".", name, qtype, resp)
			lr.from, lr.fromCut = s, zone
			return lr, true
		case stepNegative:
			lr := negativeResult(resp, ".")
			lr.from, lr.fromCut = s, zone
			return lr, true
		}
		r.infra.failed(s, r.penalty())
		lastErr = fmt.Errorf("%s: %w (rcode %s)", s, ErrLame, dns.RcodeToString[resp.Rcode])
		return lookupResult{}, false
	}
	order := r.infra.order(servers)
	for round := 0; len(order) > 0 && round < tryRounds; round++ {
		var again []server // the servers that did not answer: asked once more
		for i, s := range order {
			if b.excluded(zone, s) {
				continue // its answer failed validation for this question
			}
			if r.infra.skip(s) {
				r.stats.DownSkips.Add(1)
				lastErr = fmt.Errorf("%s: %w", s, errServerDown)
				continue
			}
			if b.queries++; b.queries > r.cfg.MaxUpstreamQueries {
				r.stats.Limits[LimitUpstreamQueries].Add(1)
				return lookupResult{err: fmt.Errorf("%w: more than %d upstream queries", ErrLimit, r.cfg.MaxUpstreamQueries)}
			}
			more := r.othersLeft(b, zone, order[i+1:]) || r.retryable(b, s, round)
			resp, err := r.queryWith(ctx, &h, zone, s, name, qtype, true, more)
			if err != nil && h != nil {
				if a, ok := h.answer(ctx, false); ok {
					s, resp, err = a.s, a.resp, nil // an earlier forwarder's, late
				}
			}
			if errors.Is(err, ErrRateLimited) {
				return lookupResult{err: err}
			}
			if errors.Is(err, ErrZoneBusy) {
				return lookupResult{err: fmt.Errorf("%w: forwarders of %s: %w", ErrNoReachableAuthority, zone, err)}
			}
			if err != nil {
				lastErr = err
				if errors.Is(err, errLost) && r.retryable(b, s, round) {
					again = append(again, s)
				}
				continue
			}
			if lr, ok := use(s, resp); ok {
				return lr
			}
		}
		order = again
	}
	// Every forwarder was asked: the answers still awaited may come.
	for h != nil {
		a, ok := h.answer(ctx, true)
		if !ok {
			break
		}
		if lr, ok := use(a.s, a.resp); ok {
			return lr
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no forwarder configured")
	}
	return lookupResult{err: fmt.Errorf("%w: forwarders of %s: %w", ErrNoReachableAuthority, zone, lastErr)}
}

// randomCase flips the case of each letter of name at random (draft-vixie-
// dnsext-dns0x20), adding entropy an off-path spoofer must guess.
func randomCase(name string) string {
	b := []byte(name)
	var rnd [32]byte // 256 bits: one per byte of any name up to 256 bytes
	crand.Read(rnd[:])
	for i, c := range b {
		bit := rnd[i/8%32] >> (i % 8) & 1
		if bit == 1 {
			switch {
			case c >= 'a' && c <= 'z':
				b[i] = c - 'a' + 'A'
			case c >= 'A' && c <= 'Z':
				b[i] = c - 'A' + 'a'
			}
		}
	}
	return string(b)
}
