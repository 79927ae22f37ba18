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
type packer struct {
	b        []byte // the message from base on
	base     int
	compress bool // names are compressed, and remembered for it
	n        int
	names    [maxNames]suffix
}

// off returns the offset in the message of the next octet.
func (p *packer) off() int { return len(p.b) - p.base }

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
	p := packer{base: start, b: slices.Grow(b, 512),
		compress: m.Compress && (len(m.Question) > 1 || len(m.Answer) > 0 || len(m.Ns) > 0 || len(m.Extra) > 0)}
	if opt != nil {
		// As PackBuffer does, first: a message declined gets it there.
		opt.SetExtendedRcode(uint16(m.Rcode))
	}
	if !p.message(m) {
		return b[:start], false
	}
	return p.b, true
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

func (p *packer) message(m *dns.Msg) bool {
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
	p.b = binary.BigEndian.AppendUint16(p.b, m.Id)
	p.b = binary.BigEndian.AppendUint16(p.b, bits)
	p.b = binary.BigEndian.AppendUint16(p.b, uint16(len(m.Question)))
	p.b = binary.BigEndian.AppendUint16(p.b, uint16(len(m.Answer)))
	p.b = binary.BigEndian.AppendUint16(p.b, uint16(len(m.Ns)))
	p.b = binary.BigEndian.AppendUint16(p.b, uint16(len(m.Extra)))
	for _, q := range m.Question {
		if !p.name(q.Name, p.compress) {
			return false
		}
		p.b = binary.BigEndian.AppendUint16(p.b, q.Qtype)
		p.b = binary.BigEndian.AppendUint16(p.b, q.Qclass)
	}
	for _, sec := range [...][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if !p.record(rr) {
				return false
			}
		}
	}
	return true
}

// record appends rr: its header, then its data, then the data's length.
func (p *packer) record(rr dns.RR) bool {
	h := rr.Header()
	if !p.name(h.Name, p.compress) {
		return false
	}
	p.b = binary.BigEndian.AppendUint16(p.b, h.Rrtype)
	p.b = binary.BigEndian.AppendUint16(p.b, h.Class)
	p.b = binary.BigEndian.AppendUint32(p.b, h.Ttl)
	p.b = append(p.b, 0, 0)
	rdata := len(p.b)
	ok := true
	switch rr := rr.(type) {
	case *dns.A:
		switch len(rr.A) {
		case 4, 16:
			ip4 := rr.A.To4()
			if ip4 == nil {
				return false // PackBuffer leaves whatever its buffer held
			}
			p.b = append(p.b, ip4...)
		case 0:
		default:
			ok = false
		}
	case *dns.AAAA:
		switch len(rr.AAAA) {
		case 16:
			p.b = append(p.b, rr.AAAA...)
		case 0:
		default:
			ok = false
		}
	case *dns.NS:
		ok = p.name(rr.Ns, p.compress)
	case *dns.CNAME:
		ok = p.name(rr.Target, p.compress)
	case *dns.PTR:
		ok = p.name(rr.Ptr, p.compress)
	case *dns.MX:
		p.b = binary.BigEndian.AppendUint16(p.b, rr.Preference)
		ok = p.name(rr.Mx, p.compress)
	case *dns.SOA:
		ok = p.name(rr.Ns, p.compress) && p.name(rr.Mbox, p.compress)
		for _, v := range [...]uint32{rr.Serial, rr.Refresh, rr.Retry, rr.Expire, rr.Minttl} {
			p.b = binary.BigEndian.AppendUint32(p.b, v)
		}
	case *dns.OPT:
		ok = p.options(rr.Option)
	default:
		ok = false
	}
	n := len(p.b) - rdata
	if !ok || n > 0xffff {
		return false
	}
	binary.BigEndian.PutUint16(p.b[rdata-2:], uint16(n))
	return true
}

// options appends an OPT record's options.
func (p *packer) options(opts []dns.EDNS0) bool {
	for _, o := range opts {
		at := len(p.b)
		p.b = binary.BigEndian.AppendUint16(p.b, o.Option())
		p.b = append(p.b, 0, 0)
		switch o := o.(type) {
		case *dns.EDNS0_LOCAL:
			p.b = append(p.b, o.Data...)
		case *dns.EDNS0_COOKIE:
			var err error
			if p.b, err = hex.AppendDecode(p.b, []byte(o.Cookie)); err != nil {
				return false
			}
		default:
			return false
		}
		n := len(p.b) - at - 4
		if n > 0xffff {
			return false
		}
		binary.BigEndian.PutUint16(p.b[at+2:], uint16(n))
	}
	return true
}

// name appends s, a fully qualified name without escapes. When the
// message is compressed, it is compressed against the names before it if
// compress allows, and its suffixes are remembered for the names after
// it, as PackBuffer does: each suffix not seen before, written below
// maxCompressionOffset, is remembered whether or not this name may be
// compressed.
func (p *packer) name(s string, compress bool) bool {
	if s == "" || s[len(s)-1] != '.' || len(s) > 255 {
		return false
	}
	if s == "." {
		p.b = append(p.b, 0)
		return true
	}
	begin := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			return false
		case '.':
			label := i - begin
			if label == 0 || label >= 64 {
				return false // a leading dot, two dots, or too long: PackBuffer says which
			}
			if p.compress {
				if off, found := p.find(s[begin:]); found {
					if compress {
						p.b = binary.BigEndian.AppendUint16(p.b, off|0xc000)
						return true
					}
				} else if at := p.off(); at < maxCompressionOffset {
					if p.n == maxNames {
						return false
					}
					p.names[p.n] = suffix{s[begin:], uint16(at)}
					p.n++
				}
			}
			p.b = append(p.b, byte(label))
			p.b = append(p.b, s[begin:i]...)
			begin = i + 1
		}
	}
	p.b = append(p.b, 0)
	return true
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
