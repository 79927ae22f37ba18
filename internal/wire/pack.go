// Package wire packs the DNS messages the servers answer with, without
// the allocations of dns.Msg.PackBuffer: its compression map (a map and
// an entry for each name suffix) and, for options, a copy of their data.
//
// AppendMsg writes exactly the bytes PackBuffer writes, compression
// pointers included, for the messages most answers are: records of the
// common types (A, AAAA, NS, CNAME, PTR, MX, SOA) and an OPT record. It
// declines anything else, and PackBuffer then packs the message and says
// what is wrong with it, so that callers keep one behaviour.
package wire

import (
	"encoding/binary"
	"encoding/hex"
	"slices"

	"github.com/miekg/dns"
)

// maxCompressionOffset is where names stop being remembered for
// compression: a pointer holds 14 bits.
const maxCompressionOffset = 1 << 14

// maxNames bounds the name suffixes a message's table holds; a message
// with more goes to PackBuffer, whose map is the better for it.
const maxNames = 96

// suffix is a name suffix written at off, as dns.Msg.PackBuffer's map
// keys it: in presentation form, spelling kept.
type suffix struct {
	name string
	off  uint16
}

// packer is the message under way and its compression table.
// The message itself is passed along and returned by each method, not
// held: held in the packer, a caller's buffer would escape to the heap.
type packer struct {
	base     int  // where the message starts in its buffer
	compress bool // names are compressed, and remembered for it
	n        int
	names    [maxNames]suffix
}

// AppendMsg appends m's wire form to b, as m.PackBuffer would write it
// (including its one change to m: the OPT record's extended rcode is set
// from m.Rcode). ok is false, with b as it was, for a message it does
// not pack: a record of another type, an option of another kind, a name
// with an escape, one that is not fully qualified or does not pack, or
// more names than its table holds.
func AppendMsg(b []byte, m *dns.Msg) (out []byte, ok bool) {
	if m.Rcode < 0 || m.Rcode > 0xfff || !simple(m) {
		return b, false
	}
	opt := m.IsEdns0()
	if opt == nil && m.Rcode > 0xf {
		return b, false
	}
	start := len(b)
	// A message that could hold no pointer is packed without the table,
	// as PackBuffer packs it without its map.
	p := packer{base: start,
		compress: m.Compress && (len(m.Question) > 1 || len(m.Answer) > 0 || len(m.Ns) > 0 || len(m.Extra) > 0)}
	if opt != nil {
		// As PackBuffer does, first: a message declined gets it there.
		opt.SetExtendedRcode(uint16(m.Rcode))
	}
	out, ok = p.message(slices.Grow(b, 512), m)
	if !ok {
		return b[:start], false
	}
	return out, true
}

// simple reports whether every record of m is of a kind AppendMsg packs.
func simple(m *dns.Msg) bool {
	for _, sec := range [...][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			switch rr := rr.(type) {
			case *dns.A, *dns.AAAA, *dns.NS, *dns.CNAME, *dns.PTR, *dns.MX, *dns.SOA:
			case *dns.OPT:
				for _, o := range rr.Option {
					switch o.(type) {
					case *dns.EDNS0_LOCAL, *dns.EDNS0_COOKIE:
					default:
						return false
					}
				}
			default:
				return false
			}
		}
	}
	return true
}

// HeaderBits returns the header's second 16 bits as m.Pack writes them:
// QR, the opcode, the flags and the low four bits of the rcode.
func HeaderBits(m *dns.Msg) uint16 {
	bits := uint16(m.Opcode)<<11 | uint16(m.Rcode&0xf)
	for _, f := range [...]struct {
		set bool
		bit uint16
	}{
		{m.Response, 1 << 15}, {m.Authoritative, 1 << 10}, {m.Truncated, 1 << 9},
		{m.RecursionDesired, 1 << 8}, {m.RecursionAvailable, 1 << 7}, {m.Zero, 1 << 6},
		{m.AuthenticatedData, 1 << 5}, {m.CheckingDisabled, 1 << 4},
	} {
		if f.set {
			bits |= f.bit
		}
	}
	return bits
}

func (p *packer) message(b []byte, m *dns.Msg) ([]byte, bool) {
	b = binary.BigEndian.AppendUint16(b, m.Id)
	b = binary.BigEndian.AppendUint16(b, HeaderBits(m))
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Question)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Answer)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Ns)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Extra)))
	var ok bool
	for _, q := range m.Question {
		if b, ok = p.name(b, q.Name, p.compress); !ok {
			return b, false
		}
		b = binary.BigEndian.AppendUint16(b, q.Qtype)
		b = binary.BigEndian.AppendUint16(b, q.Qclass)
	}
	for _, sec := range [...][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if b, ok = p.record(b, rr); !ok {
				return b, false
			}
		}
	}
	return b, true
}

// record appends rr: its header, then its data, then the data's length.
func (p *packer) record(b []byte, rr dns.RR) ([]byte, bool) {
	h := rr.Header()
	ok := true
	if b, ok = p.name(b, h.Name, p.compress); !ok {
		return b, false
	}
	b = binary.BigEndian.AppendUint16(b, h.Rrtype)
	b = binary.BigEndian.AppendUint16(b, h.Class)
	b = binary.BigEndian.AppendUint32(b, h.Ttl)
	b = append(b, 0, 0)
	rdata := len(b)
	switch rr := rr.(type) {
	case *dns.A:
		switch len(rr.A) {
		case 4, 16:
			ip4 := rr.A.To4()
			if ip4 == nil {
				return b, false // PackBuffer leaves whatever its buffer held
			}
			b = append(b, ip4...)
		case 0:
		default:
			ok = false
		}
	case *dns.AAAA:
		switch len(rr.AAAA) {
		case 16:
			b = append(b, rr.AAAA...)
		case 0:
		default:
			ok = false
		}
	case *dns.NS:
		b, ok = p.name(b, rr.Ns, p.compress)
	case *dns.CNAME:
		b, ok = p.name(b, rr.Target, p.compress)
	case *dns.PTR:
		b, ok = p.name(b, rr.Ptr, p.compress)
	case *dns.MX:
		b = binary.BigEndian.AppendUint16(b, rr.Preference)
		b, ok = p.name(b, rr.Mx, p.compress)
	case *dns.SOA:
		if b, ok = p.name(b, rr.Ns, p.compress); ok {
			b, ok = p.name(b, rr.Mbox, p.compress)
		}
		for _, v := range [...]uint32{rr.Serial, rr.Refresh, rr.Retry, rr.Expire, rr.Minttl} {
			b = binary.BigEndian.AppendUint32(b, v)
		}
	case *dns.OPT:
		b, ok = appendOptions(b, rr.Option)
	default:
		ok = false
	}
	n := len(b) - rdata
	if !ok || n > 0xffff {
		return b, false
	}
	binary.BigEndian.PutUint16(b[rdata-2:], uint16(n))
	return b, true
}

// appendOptions appends an OPT record's options.
func appendOptions(b []byte, opts []dns.EDNS0) ([]byte, bool) {
	for _, o := range opts {
		at := len(b)
		b = binary.BigEndian.AppendUint16(b, o.Option())
		b = append(b, 0, 0)
		switch o := o.(type) {
		case *dns.EDNS0_LOCAL:
			b = append(b, o.Data...)
		case *dns.EDNS0_COOKIE:
			var err error
			if b, err = hex.AppendDecode(b, []byte(o.Cookie)); err != nil {
				return b, false
			}
		default:
			return b, false
		}
		n := len(b) - at - 4
		if n > 0xffff {
			return b, false
		}
		binary.BigEndian.PutUint16(b[at+2:], uint16(n))
	}
	return b, true
}

// name appends s, a fully qualified name without escapes. When the
// message is compressed, it is compressed against the names before it if
// compress allows, and its suffixes are remembered for the names after
// it, as PackBuffer does: each suffix not seen before, written below
// maxCompressionOffset, is remembered whether or not this name may be
// compressed.
func (p *packer) name(b []byte, s string, compress bool) ([]byte, bool) {
	if s == "" || s[len(s)-1] != '.' || len(s) > 255 {
		return b, false
	}
	if s == "." {
		b = append(b, 0)
		return b, true
	}
	begin := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			return b, false
		case '.':
			label := i - begin
			if label == 0 || label >= 64 {
				return b, false // a leading dot, two dots, or too long: PackBuffer says which
			}
			if p.compress {
				if off, found := p.find(s[begin:]); found {
					if compress {
						b = binary.BigEndian.AppendUint16(b, off|0xc000)
						return b, true
					}
				} else if at := len(b) - p.base; at < maxCompressionOffset {
					if p.n == maxNames {
						return b, false
					}
					p.names[p.n] = suffix{s[begin:], uint16(at)}
					p.n++
				}
			}
			b = append(b, byte(label))
			b = append(b, s[begin:i]...)
			begin = i + 1
		}
	}
	b = append(b, 0)
	return b, true
}

// find returns where the suffix s was written, if it was remembered.
func (p *packer) find(s string) (uint16, bool) {
	for i := range p.n {
		if p.names[i].name == s {
			return p.names[i].off, true
		}
	}
	return 0, false
}
