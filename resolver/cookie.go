package resolver

import (
	"bytes"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"net/netip"
	"sync"

	"github.com/miekg/dns"
)

// cookieJar holds the DNS cookies (RFC 7873) of the upstream servers: the
// client cookie sent to each, derived from a secret drawn at start and the
// server's address (so that servers cannot link this resolver's queries to
// one another, §4.1), and the last server cookie each sent.
//
// A server that once answered with a valid server cookie is known to
// support them: a later UDP reply of its without one is not believed (the
// question goes again over TCP, which an off-path forger cannot reach), and
// a reply carrying another client cookie is a forgery.
type cookieJar struct {
	secret [32]byte
	mu     sync.Mutex
	m      map[netip.Addr]*serverCookie
}

type serverCookie struct {
	client [8]byte
	server []byte // nil until the server sends one
	// opt is the COOKIE option sent to the server (client then server
	// cookie, as they are on the wire), made when first sent after a
	// change and shared by the queries from then on: it is never
	// modified, only replaced.
	opt *dns.EDNS0_LOCAL
}

// maxCookieServers bounds the servers remembered; the jar is emptied past it.
const maxCookieServers = 1 << 16

func newCookieJar() *cookieJar {
	j := &cookieJar{m: map[netip.Addr]*serverCookie{}}
	crand.Read(j.secret[:])
	return j
}

func (j *cookieJar) entry(a netip.Addr) *serverCookie {
	if e := j.m[a]; e != nil {
		return e
	}
	if len(j.m) >= maxCookieServers {
		clear(j.m)
	}
	mac := hmac.New(sha256.New, j.secret[:])
	b, _ := a.MarshalBinary()
	mac.Write(b)
	e := &serverCookie{}
	copy(e.client[:], mac.Sum(nil))
	j.m[a] = e
	return e
}

// prepare puts the COOKIE option for server a into m's OPT record (none
// without one) and returns the client cookie sent.
func (j *cookieJar) prepare(m *dns.Msg, a netip.Addr) []byte {
	opt := m.IsEdns0()
	if opt == nil {
		return nil
	}
	j.mu.Lock()
	e := j.entry(a)
	if e.opt == nil {
		c := make([]byte, 0, 8+len(e.server))
		c = append(append(c, e.client[:]...), e.server...)
		// Sent as the bytes they are: miekg/dns's EDNS0_COOKIE holds
		// them in hex, which costs an encoding here and a decoding in
		// every query's packing.
		e.opt = &dns.EDNS0_LOCAL{Code: dns.EDNS0COOKIE, Data: c}
	}
	o := e.opt
	j.mu.Unlock()
	opts := opt.Option[:0]
	for _, x := range opt.Option {
		if x.Option() != dns.EDNS0COOKIE {
			opts = append(opts, x)
		}
	}
	opt.Option = append(opts, o)
	return o.Data[:8:8]
}

type cookieVerdict uint8

const (
	cookieOK      cookieVerdict = iota
	cookieMissing               // none, from a server known to send them
	cookieForged                // not our client cookie, or malformed (RFC 7873 §5.3)
)

// replyCookie returns the server cookie in r's COOKIE option (nil
// without one), decoded into buf, and whether the option is forged:
// another client cookie than the one sent, or malformed (RFC 7873 §5.3).
func replyCookie(client []byte, r *dns.Msg, buf *[40]byte) (server []byte, forged bool) {
	opt := r.IsEdns0()
	if opt == nil {
		return nil, false
	}
	for _, o := range opt.Option {
		if c, ok := o.(*dns.EDNS0_COOKIE); ok {
			n, ok := unhex(buf[:], c.Cookie)
			if !ok || n < 16 || !bytes.Equal(buf[:8], client) {
				return nil, true
			}
			server = buf[8:n]
		}
	}
	return server, false
}

// unhex decodes the hex string s into dst; ok is false when s is not hex
// or does not fit.
func unhex(dst []byte, s string) (n int, ok bool) {
	if len(s)%2 != 0 || len(s)/2 > len(dst) {
		return 0, false
	}
	for i := 0; i < len(s); i += 2 {
		hi, ok1 := hexDigit(s[i])
		lo, ok2 := hexDigit(s[i+1])
		if !ok1 || !ok2 {
			return 0, false
		}
		dst[i/2] = hi<<4 | lo
	}
	return len(s) / 2, true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// check judges the COOKIE option of reply r from server a to a query that
// sent client (nil: none was sent) and remembers a valid server cookie.
// Over TCP a missing cookie is accepted.
func (j *cookieJar) check(a netip.Addr, client []byte, r *dns.Msg, tcp bool) cookieVerdict {
	if j == nil || client == nil {
		return cookieOK
	}
	var buf [40]byte
	got, forged := replyCookie(client, r, &buf)
	if forged {
		return cookieForged
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	e := j.entry(a)
	if got == nil {
		if e.server != nil && !tcp {
			return cookieMissing
		}
		// Over TCP the answer is the server's own: it no longer sends
		// cookies, and its UDP answers are believed again without.
		if e.server != nil {
			e.server, e.opt = nil, nil
		}
		return cookieOK
	}
	if !bytes.Equal(e.server, got) {
		e.server, e.opt = bytes.Clone(got), nil
	}
	return cookieOK
}

// sendsCookies reports whether server a is known to send server cookies.
func (j *cookieJar) sendsCookies(a netip.Addr) bool {
	if j == nil {
		return false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	e := j.m[a]
	return e != nil && e.server != nil
}
