package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/authoritative"
	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
)

// reply is the outcome of handling one message.
type reply struct {
	msg       *dns.Msg
	zoneLabel string
	zone      *zone.Zone   // the zone answered from, if any
	chained   []*zone.Zone // other zones the answer drew on
	// open: the answer depends on which zones are held beyond zone and
	// chained (a name no zone holds, or a CNAME chain that left them).
	open      bool
	cacheable bool // the answer depends only on the question, the EDNS/DO flags and what the client may do (fastQuery.setClient)
	recurse   bool // no zone held: to be resolved for this client
	resolved  bool // a resolved answer that may be served again while its TTLs last (rescache.go)
	tsig      *signer
	rrl       rrlAccount // what the response counts against for rate limiting
}

// handle answers a parsed query, whose wire form is in. It never returns nil.
func (s *Server) handle(st *state, req *dns.Msg, in []byte, src netip.AddrPort, tcp bool) reply {
	resp := new(dns.Msg)
	resp.Id = req.Id
	resp.Response = true
	resp.Compress = true
	resp.Opcode = req.Opcode
	resp.RecursionDesired = req.RecursionDesired
	resp.CheckingDisabled = req.CheckingDisabled
	out := reply{msg: resp, zoneLabel: metrics.ZoneNone, rrl: rrlAccount{kind: rrlError}}

	opt, nopt := findOPT(req)
	if nopt > 1 || (opt != nil && opt.Hdr.Name != ".") { // RFC 6891 §6.1.1
		resp.Rcode = dns.RcodeFormatError
		return out
	}
	if req.IsTsig() != nil {
		// Verified here; the response is signed (or, for a request that
		// fails, carries the TSIG error) when it is packed (RFC 8945 §5.2).
		out.tsig = s.verifyTSIG(in, req)
		out.rrl.kind = rrlNone
		if !out.tsig.ok() {
			resp.Rcode = dns.RcodeNotAuth
			resp.Question = req.Question
			return out
		}
	}
	if opt != nil {
		ropt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		ropt.SetUDPSize(s.cfg.EDNSSize)
		if opt.Do() {
			ropt.SetDo()
		}
		resp.Extra = append(resp.Extra, ropt)
		if opt.Version() != 0 {
			// RFC 6891 §6.1.3: BADVERS, no question answered.
			resp.Rcode = dns.RcodeBadVers
			return out
		}
		ok, proved := s.ednsOptions(opt, ropt, src.Addr())
		if !ok {
			resp.Rcode = dns.RcodeFormatError
			return out
		}
		if proved {
			// A valid server cookie proves the address (RFC 7873 §5.3):
			// not a spoofed victim, so never rate limited.
			out.rrl.kind = rrlNone
		}
	}
	if s.special(req, resp, Peer{Addr: src, Key: out.tsig.keyName(), TCP: tcp}) {
		out.rrl.kind = rrlNone
		if len(resp.Question) == 1 {
			if z := st.zones.Match(questionKey(resp.Question[0].Name), 0); z != nil {
				out.zoneLabel = s.m.Zone(z.Origin)
			}
		}
		return out
	}
	if req.Opcode != dns.OpcodeQuery {
		resp.Rcode = dns.RcodeNotImplemented
		return out
	}
	if len(req.Question) != 1 || len(req.Answer) != 0 || len(req.Ns) != 0 {
		resp.Rcode = dns.RcodeFormatError
		return out
	}
	q := req.Question[0]
	resp.Question = req.Question
	// RA says whether recursion is available to this client (as BIND sets
	// it), on answers from the zones too.
	mayRecurse := s.recursionAllowed(src.Addr())
	resp.RecursionAvailable = mayRecurse

	switch q.Qclass {
	case dns.ClassINET:
	case dns.ClassCHAOS:
		s.chaos(resp, q)
		if resp.Rcode == dns.RcodeSuccess && out.rrl.kind != rrlNone {
			out.rrl = newAccount(rrlAnswer, q.Name, q.Qtype)
		}
		return out
	default:
		resp.Rcode = dns.RcodeRefused
		return out
	}
	switch q.Qtype {
	case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY:
		resp.Rcode = dns.RcodeFormatError
		return out
	case dns.TypeMAILA, dns.TypeMAILB:
		resp.Rcode = dns.RcodeRefused
		return out
	}

	res := authoritative.Answer(st.zones, authoritative.Query{Name: q.Name, Type: q.Qtype, DO: opt != nil && opt.Do()})
	resp.Rcode = res.Rcode
	resp.Authoritative = res.Authoritative
	resp.Answer = res.Answer
	resp.Ns = res.Ns
	resp.Extra = append(res.Extra, resp.Extra...)
	if res.Zone != nil {
		out.zoneLabel = s.m.Zone(res.Zone.Origin)
	}
	out.zone, out.chained, out.open = res.Zone, res.Chained, res.Zone == nil || res.LeftZones
	// A name no zone holds, or one delegated away from a zone held, is
	// resolved for a client allowed recursion that asked for it (as BIND
	// does for names below a delegation); others get REFUSED or the referral.
	if (res.Kind == authoritative.KindRefused || res.Kind == authoritative.KindReferral) &&
		req.RecursionDesired && mayRecurse {
		out.recurse = true
		return out
	}
	if res.Kind == authoritative.KindRefused {
		addEDE(resp, dns.ExtendedErrorCodeNotAuthoritative, "")
	}
	if out.rrl.kind != rrlNone {
		out.rrl = accountOf(res, q)
	}
	out.cacheable = out.tsig == nil
	return out
}

// accountOf is what an answer from the zones counts against for rate
// limiting.
func accountOf(res authoritative.Result, q dns.Question) rrlAccount {
	origin := ""
	if res.Zone != nil {
		origin = res.Zone.Origin
	}
	switch res.Kind {
	case authoritative.KindAnswer:
		if res.Wildcard {
			return newAccount(rrlWildcard, origin, q.Qtype)
		}
		return newAccount(rrlAnswer, q.Name, q.Qtype)
	case authoritative.KindNXDomain:
		return newAccount(rrlNXDomain, origin, 0)
	case authoritative.KindNoData:
		return newAccount(rrlNoData, origin, 0)
	case authoritative.KindReferral:
		for _, rr := range res.Ns {
			if rr.Header().Rrtype == dns.TypeNS {
				return newAccount(rrlReferral, rr.Header().Name, 0)
			}
		}
		return newAccount(rrlReferral, origin, 0)
	}
	return rrlAccount{kind: rrlError}
}

func findOPT(m *dns.Msg) (*dns.OPT, int) {
	var opt *dns.OPT
	n := 0
	for _, rr := range m.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt == nil {
				opt = o
			}
			n++
		}
	}
	return opt, n
}

// ednsOptions answers the options of the query: NSID (RFC 5001) and
// COOKIE (RFC 7873); anything else is ignored (RFC 6891 §6.1.2). It
// reports ok false for a malformed cookie, and proved true when the query
// carries a server cookie this node issued to src recently.
func (s *Server) ednsOptions(opt, ropt *dns.OPT, src netip.Addr) (ok, proved bool) {
	for _, o := range opt.Option {
		switch o := o.(type) {
		case *dns.EDNS0_NSID:
			if s.cfg.NSID != "" {
				ropt.Option = append(ropt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: hex.EncodeToString([]byte(s.cfg.NSID))})
			}
		case *dns.EDNS0_COOKIE:
			c, err := hex.DecodeString(o.Cookie)
			if err != nil || (len(c) != 8 && (len(c) < 16 || len(c) > 40)) {
				return false, false
			}
			proved = proved || s.validCookie(c, src)
			ropt.Option = append(ropt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE,
				Cookie: hex.EncodeToString(s.serverCookie(c[:8], src))})
		}
	}
	return true, proved
}

// cookieLifetime is how long a server cookie proves its client's address
// (RFC 9018 §4.3: one hour), with 5 minutes of clock skew the other way.
const (
	cookieLifetime = time.Hour
	cookieSkew     = 5 * time.Minute
)

// validCookie reports whether c, a client cookie followed by a server
// cookie, holds a server cookie this node made for src within its
// lifetime.
func (s *Server) validCookie(c []byte, src netip.Addr) bool {
	if len(c) != 24 || c[8] != 1 {
		return false
	}
	ts := time.Unix(int64(binary.BigEndian.Uint32(c[12:16])), 0)
	now := s.now()
	if ts.Before(now.Add(-cookieLifetime)) || ts.After(now.Add(cookieSkew)) {
		return false
	}
	mac := hmac.New(sha256.New, s.cookieSecret[:])
	mac.Write(c[:16])
	a := src.As16() // as serverCookie hashes it
	mac.Write(a[:])
	var sum [sha256.Size]byte
	return hmac.Equal(mac.Sum(sum[:0])[:8], c[16:24])
}

// serverCookie returns the client cookie followed by a server cookie in
// the RFC 9018 layout (version 1, reserved, timestamp, 8-byte hash). The
// hash is HMAC-SHA256 keyed by the node's secret, over the client cookie,
// the version and timestamp fields, and the client address.
func (s *Server) serverCookie(client []byte, src netip.Addr) []byte {
	out := make([]byte, 0, 24)
	out = append(out, client...)
	out = append(out, 1, 0, 0, 0)
	out = binary.BigEndian.AppendUint32(out, uint32(s.now().Unix()))
	mac := hmac.New(sha256.New, s.cookieSecret[:])
	mac.Write(out)
	a := src.As16()
	mac.Write(a[:])
	return mac.Sum(out)[:24]
}

// chaos answers the CH TXT identity queries when they are configured;
// otherwise it refuses, as a server hiding its version does.
func (s *Server) chaos(resp *dns.Msg, q dns.Question) {
	var text string
	switch strings.ToLower(q.Name) {
	case "version.bind.", "version.server.":
		text = s.cfg.Version
	case "id.server.", "hostname.bind.":
		text = s.cfg.Identity
	}
	if text == "" || (q.Qtype != dns.TypeTXT && q.Qtype != dns.TypeANY) {
		resp.Rcode = dns.RcodeRefused
		return
	}
	resp.Authoritative = true
	resp.Answer = []dns.RR{&dns.TXT{
		Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS},
		Txt: []string{text},
	}}
}

func addEDE(resp *dns.Msg, code uint16, text string) {
	opt := resp.IsEdns0()
	if opt == nil {
		return
	}
	opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: code, ExtraText: text})
}

// formErr builds a FORMERR for a message whose header is readable but whose
// body is not. It echoes ID, opcode and RD, with empty sections.
func formErr(in, out []byte) []byte {
	out = append(out[:0], in[:12]...)
	out[2] = 0x80 | (in[2] & 0x79) // QR, opcode, RD
	out[3] = dns.RcodeFormatError
	for i := 4; i < 12; i++ {
		out[i] = 0
	}
	return out
}

// servFail builds a SERVFAIL from the query's header, for a query whose
// handling failed.
func servFail(in, out []byte) []byte {
	out = formErr(in, out)
	out[3] = dns.RcodeServerFailure
	return out
}

// recursionAllowed reports whether src may have names resolved for it.
func (s *Server) recursionAllowed(src netip.Addr) bool {
	if s.cfg.Resolver == nil {
		return false
	}
	src = src.Unmap()
	for _, p := range s.cfg.RecursionAllow {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// recursive completes r, a reply to a question no zone holds, by resolving
// it; miss is what the cache lookup before it saw.
func (s *Server) recursive(req *dns.Msg, r reply, miss resolver.Miss) reply {
	q := req.Question[0]
	res := s.cfg.Resolver.ResolveMiss(s.baseCtx(), q.Name, q.Qtype, miss)
	if res.Err != nil {
		s.log.Debug("resolution failed", "qname", q.Name, "qtype", dns.Type(q.Qtype), "err", res.Err)
	}
	out := s.recursiveReply(req, r, res)
	// Kept in the response cache only when asked again (and answered from
	// the resolver's cache then): a flood of names asked once, as a
	// random-subdomain attack sends, never enters it.
	out.resolved = false
	return out
}

// recursiveReply fills r, the reply to req, with a resolver's result: RA
// set, AA clear, SERVFAIL with an Extended DNS Error that says why.
//
// DNSSEC (RFC 4035 §3.2, RFC 6840 §5.7, §5.9): a Bogus or Indeterminate
// answer is a SERVFAIL with the EDE of its reason, unless the client set CD,
// which gets the data as it is. AD is set only on Secure answers, and only
// for a client that set DO or AD. RRSIGs and NSEC/NSEC3 proofs go only to
// clients that set DO. An insecure answer whose reason has an EDE of its
// own (unsupported algorithm or digest, too many NSEC3 iterations, RFC
// 9276 §3.2) carries it.
func (s *Server) recursiveReply(req *dns.Msg, r reply, res resolver.Result) reply {
	m := r.msg
	m.RecursionAvailable = true
	m.Authoritative = false
	m.Rcode = res.Rcode
	opt := req.IsEdns0()
	do := opt != nil && opt.Do()
	switch {
	case res.Err != nil:
		m.Rcode = dns.RcodeServerFailure
		code := dns.ExtendedErrorCodeOther
		if c, ok := dnssec.EDE(res.Err); ok {
			code = c
		}
		switch {
		case errors.Is(res.Err, resolver.ErrNoReachableAuthority):
			code = dns.ExtendedErrorCodeNoReachableAuthority
		case errors.Is(res.Err, resolver.ErrLame):
			code = dns.ExtendedErrorCodeNetworkError
		}
		m.Answer, m.Ns = res.Answer, res.Ns
		if !do {
			m.Answer, m.Ns = stripDNSSEC(m.Answer, qtypeOf(req)), stripDNSSEC(m.Ns, 0)
		}
		addEDE(m, code, res.Err.Error())
	case (res.Sec == dnssec.Bogus || res.Sec == dnssec.Indeterminate) && !req.CheckingDisabled:
		m.Rcode = dns.RcodeServerFailure
		code, ok := dnssec.EDE(res.Why)
		if !ok {
			code = dns.ExtendedErrorCodeDNSBogus
		}
		text := ""
		if res.Why != nil {
			text = res.Why.Error()
		}
		addEDE(m, code, text)
		// Why the chain could not be fetched, as for any resolution.
		switch {
		case errors.Is(res.Why, resolver.ErrNoReachableAuthority):
			addEDE(m, dns.ExtendedErrorCodeNoReachableAuthority, "")
		case errors.Is(res.Why, resolver.ErrLame):
			addEDE(m, dns.ExtendedErrorCodeNetworkError, "")
		}
	default:
		m.Answer, m.Ns = res.Answer, res.Ns
		if !do {
			m.Answer, m.Ns = stripDNSSEC(m.Answer, qtypeOf(req)), stripDNSSEC(m.Ns, 0)
		}
		m.AuthenticatedData = res.Sec == dnssec.Secure && (do || req.AuthenticatedData)
		if res.Stale {
			// RFC 8767 §4, RFC 8914 §4.4 and §4.20.
			code := dns.ExtendedErrorCodeStaleAnswer
			if res.Rcode == dns.RcodeNameError {
				code = dns.ExtendedErrorCodeStaleNXDOMAINAnswer
			}
			addEDE(m, code, "upstream unreachable: "+res.StaleReason)
		}
		if res.Grace {
			addEDE(m, dns.ExtendedErrorCodeSignatureExpired, "accepted in island mode within the signature grace")
		}
		if res.Sec == dnssec.Insecure {
			if code, ok := dnssec.EDE(res.Why); ok {
				switch code {
				case dns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm, dns.ExtendedErrorCodeUnsupportedDSDigestType,
					dns.ExtendedErrorCodeUnsupportedNSEC3IterValue:
					addEDE(m, code, "")
				}
			}
		}
	}
	r.cacheable = false
	r.recurse = false
	r.resolved = m.Rcode == res.Rcode && (res.Rcode == dns.RcodeSuccess || res.Rcode == dns.RcodeNameError) &&
		res.Err == nil && !res.Stale && !res.Grace
	r.rrl.kind = rrlNone // for clients allowed recursion, not a reflector's victims
	return r
}

// stripDNSSEC returns rrs without RRSIG, NSEC and NSEC3 records, for a
// client that did not set DO (RFC 4035 §3.2.1), except records of the type
// asked for (qtype). It allocates only when there is something to drop.
func stripDNSSEC(rrs []dns.RR, qtype uint16) []dns.RR {
	drop := func(rr dns.RR) bool {
		switch t := rr.Header().Rrtype; t {
		case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
			return t != qtype
		}
		return false
	}
	for i, rr := range rrs {
		if drop(rr) {
			out := append(make([]dns.RR, 0, len(rrs)), rrs[:i]...)
			for _, rr := range rrs[i+1:] {
				if !drop(rr) {
					out = append(out, rr)
				}
			}
			return out
		}
	}
	return rrs
}

// questionKey is the wire key of a question name, nil when it has none.
func questionKey(name string) []byte {
	k, err := zone.WireKey(name)
	if err != nil {
		return nil
	}
	return []byte(k)
}
