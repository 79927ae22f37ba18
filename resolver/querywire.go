package resolver

import (
	crand "crypto/rand"
	"encoding/binary"
	"slices"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/wire"
)

// upstreamQuery is a query to an upstream server and what it holds, in
// one object: its question, its OPT record and room for one option (the
// cookie). dns.Msg's SetQuestion and SetEdns0 make four objects, and the
// cookie a fifth.
type upstreamQuery struct {
	m     dns.Msg
	q     [1]dns.Question
	extra [1]dns.RR
	opt   dns.OPT
	opts  [1]dns.EDNS0
	id    [2]byte // drawn into here, an object already made
}

// newUpstreamQuery returns a query for (name, qtype, IN) with EDNS: a
// buffer of udpSize bytes and DO as asked. Its ID is drawn from
// crypto/rand, and the network's exchanger draws another for each time it
// is sent; no flag is set.
func newUpstreamQuery(name string, qtype uint16, udpSize uint16, do bool) *dns.Msg {
	u := &upstreamQuery{}
	crand.Read(u.id[:])
	u.m.Id = binary.BigEndian.Uint16(u.id[:])
	u.q[0] = dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}
	u.m.Question = u.q[:]
	u.opt.Hdr = dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}
	u.opt.SetUDPSize(udpSize)
	if do {
		u.opt.SetDo()
	}
	u.opt.Option = u.opts[:0]
	u.extra[0] = &u.opt
	u.m.Extra = u.extra[:]
	return &u.m
}

// queryRoom is the room kept for an upstream query in each of the
// exchanger's buffers: a question of the longest name, and an OPT record
// with a cookie of the longest kind, fit with room to spare.
const queryRoom = 512

// appendQuery appends to b the wire form of m, a query of the kind the
// resolver sends: one question, no answer or authority records, and in the
// additional section at most an OPT record whose options are raw bytes
// (dns.EDNS0_LOCAL, as the cookie jar makes them). The bytes are those
// m.Pack gives, without its allocations (a compression map, a copy of each
// option's data, the message's buffer). ok is false for any other message,
// and for a name that does not pack: m.Pack is for those, and says why.
func appendQuery(b []byte, m *dns.Msg) (out []byte, ok bool) {
	if len(m.Question) != 1 || len(m.Answer) != 0 || len(m.Ns) != 0 || len(m.Extra) > 1 || m.Rcode != 0 {
		return b, false
	}
	var opt *dns.OPT
	optLen := 0
	if len(m.Extra) == 1 {
		o, isOpt := m.Extra[0].(*dns.OPT)
		if !isOpt || o.Hdr.Name != "." || o.Hdr.Rrtype != dns.TypeOPT {
			return b, false
		}
		for _, e := range o.Option {
			l, isLocal := e.(*dns.EDNS0_LOCAL)
			if !isLocal || len(l.Data) > 0xffff {
				return b, false
			}
			optLen += 4 + len(l.Data)
		}
		if optLen > 0xffff {
			return b, false
		}
		opt = o
	}
	q := m.Question[0]
	start := len(b)
	// A name's wire form is at most its presentation form and one octet
	// (the root label's length).
	need := 12 + len(q.Name) + 1 + 4
	if opt != nil {
		need += 11 + optLen
	}
	b = slices.Grow(b, need)[:start+need]
	h := b[start:]

	binary.BigEndian.PutUint16(h[0:], m.Id)
	binary.BigEndian.PutUint16(h[2:], wire.HeaderBits(m))
	binary.BigEndian.PutUint16(h[4:], 1)
	binary.BigEndian.PutUint16(h[6:], 0)
	binary.BigEndian.PutUint16(h[8:], 0)
	binary.BigEndian.PutUint16(h[10:], uint16(len(m.Extra)))
	off, err := dns.PackDomainName(q.Name, h, 12, nil, false)
	if err != nil || off-12 > 255 || off+4 > len(h) {
		return b[:start], false
	}
	binary.BigEndian.PutUint16(h[off:], q.Qtype)
	binary.BigEndian.PutUint16(h[off+2:], q.Qclass)
	off += 4
	if opt != nil {
		h[off] = 0 // the root
		binary.BigEndian.PutUint16(h[off+1:], dns.TypeOPT)
		binary.BigEndian.PutUint16(h[off+3:], opt.Hdr.Class)
		// m.Pack sets the extended rcode, the TTL's high octet, from
		// m.Rcode, which is 0 here.
		binary.BigEndian.PutUint32(h[off+5:], opt.Hdr.Ttl&0x00ffffff)
		binary.BigEndian.PutUint16(h[off+9:], uint16(optLen))
		off += 11
		for _, e := range opt.Option {
			l := e.(*dns.EDNS0_LOCAL)
			binary.BigEndian.PutUint16(h[off:], l.Code)
			binary.BigEndian.PutUint16(h[off+2:], uint16(len(l.Data)))
			off += 4 + copy(h[off+4:], l.Data)
		}
	}
	return b[:start+off], true
}
