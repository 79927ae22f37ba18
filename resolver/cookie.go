package resolver

import (
	"bytes"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
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
	c := make([]byte, 0, 8+len(e.server))
	c = append(append(c, e.client[:]...), e.server...)
	j.mu.Unlock()
	opts := opt.Option[:0]
	for _, o := range opt.Option {
		if o.Option() != dns.EDNS0COOKIE {
			opts = append(opts, o)
		}
	}
	opt.Option = append(opts, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(c)})
	return c[:8]
}

type cookieVerdict uint8

const (
	cookieOK      cookieVerdict = iota
	cookieMissing               // none, from a server known to send them
	cookieForged                // not our client cookie, or malformed (RFC 7873 §5.3)
)

// replyCookie returns the server cookie in r's COOKIE option (nil
// without one) and whether the option is forged: another client cookie
// than the one sent, or malformed (RFC 7873 §5.3).
func replyCookie(client []byte, r *dns.Msg) (server []byte, forged bool) {
	opt := r.IsEdns0()
	if opt == nil {
		return nil, false
	}
	for _, o := range opt.Option {
		if c, ok := o.(*dns.EDNS0_COOKIE); ok {
			b, err := hex.DecodeString(c.Cookie)
			if err != nil || len(b) < 16 || len(b) > 40 || !bytes.Equal(b[:8], client) {
				return nil, true
			}
			server = b[8:]
		}
	}
	return server, false
}

// check judges the COOKIE option of reply r from server a to a query that
// sent client (nil: none was sent) and remembers a valid server cookie.
// Over TCP a missing cookie is accepted.
func (j *cookieJar) check(a netip.Addr, client []byte, r *dns.Msg, tcp bool) cookieVerdict {
	if j == nil || client == nil {
		return cookieOK
	}
	got, forged := replyCookie(client, r)
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
		e.server = nil
		return cookieOK
	}
	if !bytes.Equal(e.server, got) {
		e.server = bytes.Clone(got)
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
