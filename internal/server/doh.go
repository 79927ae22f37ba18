package server

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

const (
	dohPath        = "/dns-query"
	dohContentType = "application/dns-message"
	// dohMaxHeaderBytes leaves room for a GET of the largest query, whose
	// base64url form is a third longer than the message.
	dohMaxHeaderBytes = 96 << 10
)

// dohHandler answers DNS over HTTPS requests (RFC 8484): GET with the
// query in the dns parameter, base64url without padding, or POST with the
// query as an application/dns-message body.
type dohHandler struct {
	s *Server
	// slots bounds the requests answered at once on the listener, as
	// tcp.max_connections bounds the queries TCP answers at once; more
	// wait for a slot.
	slots chan struct{}
}

func (h *dohHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != dohPath {
		http.NotFound(w, r)
		return
	}
	var msg []byte
	switch r.Method {
	case http.MethodGet:
		v, ok := r.URL.Query()["dns"]
		if !ok || len(v) != 1 {
			h.bad(w, http.StatusBadRequest, "one dns parameter is needed")
			return
		}
		// RFC 8484 §4.1 asks for no padding; a padded query is taken too.
		var err error
		if msg, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(v[0], "=")); err != nil {
			h.bad(w, http.StatusBadRequest, "the dns parameter is not base64url")
			return
		}
	case http.MethodPost:
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != dohContentType {
			h.bad(w, http.StatusUnsupportedMediaType, "the content type must be "+dohContentType)
			return
		}
		msg, err = io.ReadAll(http.MaxBytesReader(w, r.Body, 65535))
		if err != nil {
			if mbe := new(http.MaxBytesError); errors.As(err, &mbe) {
				h.bad(w, http.StatusRequestEntityTooLarge, "a DNS message is at most 65535 bytes")
				return
			}
			h.bad(w, http.StatusBadRequest, "the body could not be read")
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		h.bad(w, http.StatusMethodNotAllowed, "only GET and POST")
		return
	}
	if len(msg) < 12 || msg[2]&bitQR != 0 {
		h.bad(w, http.StatusBadRequest, "not a DNS query")
		return
	}
	src, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		h.bad(w, http.StatusBadRequest, "unknown client address")
		return
	}
	select {
	case h.slots <- struct{}{}:
	case <-r.Context().Done(): // the client gave up, or the server stops
		http.Error(w, "query not answered", http.StatusServiceUnavailable)
		return
	}
	resp := h.s.respond(msg, make([]byte, 0, 4096), netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), nil, doh)
	<-h.slots
	if resp == nil {
		// Declined (the client's recursion rate limit): what a stream
		// transport would answer by closing the connection.
		http.Error(w, "query not answered", http.StatusServiceUnavailable)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", dohContentType)
	hd.Set("Content-Length", strconv.Itoa(len(resp)))
	hd.Set("Cache-Control", "max-age="+strconv.FormatUint(uint64(cacheLifetime(resp)), 10))
	// The answer may have taken a resolution: the client has the idle
	// timeout from now to take it, as over TCP.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(h.s.cfg.TCPIdleTimeout))
	_, _ = w.Write(resp)
}

// bad answers a request that carries no DNS query, counting it.
func (h *dohHandler) bad(w http.ResponseWriter, code int, why string) {
	h.s.m.Dropped.WithLabelValues("https_bad_request").Inc()
	http.Error(w, why, code)
}

// cacheLifetime is the freshness lifetime of a DoH response (RFC 8484
// §5.1): the smallest TTL of the answer section; without answers, that of
// the SOA record in the authority section, bounded by its MINIMUM field
// (RFC 2308 §5); 0 for anything else (errors, referrals) and for a message
// that cannot be read.
func cacheLifetime(m []byte) uint32 {
	if len(m) < 12 {
		return 0
	}
	off, ok := skipQuestions(m)
	if !ok {
		return 0
	}
	answers, authority := int(binary.BigEndian.Uint16(m[6:])), int(binary.BigEndian.Uint16(m[8:]))
	var lifetime uint32
	found := false
	for i := range answers + authority {
		if off, ok = skipName(m, off); !ok || off+10 > len(m) {
			return 0
		}
		rrtype := binary.BigEndian.Uint16(m[off:])
		ttl := binary.BigEndian.Uint32(m[off+4:])
		rdlen := int(binary.BigEndian.Uint16(m[off+8:]))
		off += 10
		if off+rdlen > len(m) {
			return 0
		}
		switch {
		case i < answers:
		case answers > 0:
			return lifetime // the answer section decides
		case rrtype == dns.TypeSOA && rdlen >= 20:
			ttl = min(ttl, binary.BigEndian.Uint32(m[off+rdlen-4:]))
		default:
			off += rdlen
			continue
		}
		if !found || ttl < lifetime {
			lifetime, found = ttl, true
		}
		off += rdlen
	}
	// A TTL with the top bit set counts as 0 (RFC 2181 §8).
	if lifetime > 1<<31-1 {
		return 0
	}
	return lifetime
}
