package resolver

import (
	"encoding/binary"
	"net"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/arena"
)

// unpackReply parses buf, an upstream message that checkWire has passed,
// into the message m.Unpack makes of it, with far fewer objects: a name
// read before (the question's, pointed at by the records' owners, or a
// suffix of it) is the same string, A, AAAA, NS, CNAME and SOA records of
// each type come from one array, the addresses from one block, and the
// sections from one slice. miekg/dns gives every record a header and a
// string for each name, and each address a slice of its own: on a cache
// miss, its parsing of the upstream answer was a fifth of the resolver's
// allocations. Records of other types go through dns.UnpackRRWithHeader.
// ok is false when the message is anything but what m.Unpack parses
// without an error; the caller then uses m.Unpack, which says why.
func unpackReply(buf []byte) (m *dns.Msg, ok bool) {
	if len(buf) < 12 {
		return nil, false
	}
	qd := int(binary.BigEndian.Uint16(buf[4:]))
	counts := [3]int{
		int(binary.BigEndian.Uint16(buf[6:])),
		int(binary.BigEndian.Uint16(buf[8:])),
		int(binary.BigEndian.Uint16(buf[10:])),
	}
	if qd > 1 || len(buf) == 12 {
		return nil, false // m.Unpack's cases, left to it
	}
	r := &replyParse{buf: buf}
	if !r.count(qd, counts) {
		return nil, false
	}
	r.box = new(replyBox)
	m = &r.box.m
	bits := binary.BigEndian.Uint16(buf[2:])
	m.Id = binary.BigEndian.Uint16(buf)
	m.Response = bits&(1<<15) != 0
	m.Opcode = int(bits>>11) & 0xf
	m.Authoritative = bits&(1<<10) != 0
	m.Truncated = bits&(1<<9) != 0
	m.RecursionDesired = bits&(1<<8) != 0
	m.RecursionAvailable = bits&(1<<7) != 0
	m.Zero = bits&(1<<6) != 0
	m.AuthenticatedData = bits&(1<<5) != 0
	m.CheckingDisabled = bits&(1<<4) != 0
	m.Rcode = int(bits & 0xf)

	off := 12
	if qd == 1 {
		name, next, ok := r.name(buf, off)
		if !ok || next+4 > len(buf) {
			return nil, false
		}
		r.box.q[0] = dns.Question{Name: name, Qtype: binary.BigEndian.Uint16(buf[next:]), Qclass: binary.BigEndian.Uint16(buf[next+2:])}
		m.Question = r.box.q[:1:1]
		off = next + 4
	}
	all := make([]dns.RR, 0, counts[0]+counts[1]+counts[2])
	for range counts[0] + counts[1] + counts[2] {
		rr, next, ok := r.record(off)
		if !ok {
			return nil, false
		}
		all = append(all, rr)
		off = next
	}
	if off != len(buf) {
		return nil, false
	}
	a, b := counts[0], counts[0]+counts[1]
	if counts[0] > 0 {
		m.Answer = all[:a:a]
	}
	if counts[1] > 0 {
		m.Ns = all[a:b:b]
	}
	if counts[2] > 0 {
		m.Extra = all[b:]
	}
	if opt := m.IsEdns0(); opt != nil {
		m.Rcode |= opt.ExtendedRcode()
	}
	return m, true
}

// replyParse is the state of one unpackReply: the names read so far and
// the arrays the records of the common types are taken from.
type replyParse struct {
	buf   []byte
	box   *replyBox
	names [32]nameSeen
	n     int

	a     []dns.A
	aaaa  []dns.AAAA
	ns    []dns.NS
	cname []dns.CNAME
	soa   []dns.SOA
	addrs []byte
}

// replyBox is the message, its question and its OPT record (without
// options), in one allocation.
type replyBox struct {
	m      dns.Msg
	q      [1]dns.Question
	opt    dns.OPT
	optSet bool
}

// nameSeen is a name read at a wire offset, and what reading it there
// took: the offset after it in the stream, the wire octets its labels
// count against 255, the compression pointers followed, and the end of
// the furthest byte read (so that it is reused only within a view of the
// message that reaches that far, as in a record's data).
type nameSeen struct {
	at, next, reach int
	octets, ptrs    int
	name            string
}

// count walks the records' headers (checkWire has checked their extents)
// and makes the arrays and the address block for the common types.
func (r *replyParse) count(qd int, counts [3]int) bool {
	buf := r.buf
	off := 12
	if qd == 1 {
		end, err := skipName(buf, off)
		if err != nil {
			return false
		}
		off = end + 4
	}
	var na, naaaa, nns, ncname, nsoa int
	for _, n := range counts {
		for range n {
			end, err := skipName(buf, off)
			if err != nil || end+10 > len(buf) {
				return false
			}
			rdlen := int(binary.BigEndian.Uint16(buf[end+8:]))
			switch binary.BigEndian.Uint16(buf[end:]) {
			case dns.TypeA:
				na++
			case dns.TypeAAAA:
				naaaa++
			case dns.TypeNS:
				nns++
			case dns.TypeCNAME:
				ncname++
			case dns.TypeSOA:
				nsoa++
			}
			off = end + 10 + rdlen
			if off > len(buf) {
				return false
			}
		}
	}
	if na > 0 {
		r.a = make([]dns.A, 0, na)
	}
	if naaaa > 0 {
		r.aaaa = make([]dns.AAAA, 0, naaaa)
	}
	if nns > 0 {
		r.ns = make([]dns.NS, 0, nns)
	}
	if ncname > 0 {
		r.cname = make([]dns.CNAME, 0, ncname)
	}
	if nsoa > 0 {
		r.soa = make([]dns.SOA, 0, nsoa)
	}
	if n := 4*na + 16*naaaa; n > 0 {
		r.addrs = make([]byte, 0, n)
	}
	return true
}

// record parses the record at off as dns.UnpackRR does, and returns the
// offset after it.
func (r *replyParse) record(off int) (dns.RR, int, bool) {
	buf := r.buf
	owner, next, ok := r.name(buf, off)
	if !ok || next+10 > len(buf) {
		return nil, 0, false
	}
	h := dns.RR_Header{
		Name:     owner,
		Rrtype:   binary.BigEndian.Uint16(buf[next:]),
		Class:    binary.BigEndian.Uint16(buf[next+2:]),
		Ttl:      binary.BigEndian.Uint32(buf[next+4:]),
		Rdlength: binary.BigEndian.Uint16(buf[next+8:]),
	}
	off = next + 10
	end := off + int(h.Rdlength)
	if end > len(buf) {
		return nil, 0, false
	}
	// The record's data is read within the record, as UnpackRR reads it:
	// a name in it may point back anywhere before its end.
	rd := buf[:end]
	switch h.Rrtype {
	case dns.TypeA:
		if h.Rdlength != 0 && h.Rdlength != net.IPv4len {
			return nil, 0, false
		}
		rr := arena.Take(&r.a)
		rr.Hdr = h
		if h.Rdlength != 0 {
			rr.A = r.addr(buf[off:end])
		}
		return rr, end, true
	case dns.TypeAAAA:
		if h.Rdlength != 0 && h.Rdlength != net.IPv6len {
			return nil, 0, false
		}
		rr := arena.Take(&r.aaaa)
		rr.Hdr = h
		if h.Rdlength != 0 {
			rr.AAAA = r.addr(buf[off:end])
		}
		return rr, end, true
	case dns.TypeNS, dns.TypeCNAME:
		var target string
		if h.Rdlength != 0 {
			t, after, ok := r.name(rd, off)
			if !ok || after != end {
				return nil, 0, false
			}
			target = t
		}
		if h.Rrtype == dns.TypeNS {
			rr := arena.Take(&r.ns)
			rr.Hdr, rr.Ns = h, target
			return rr, end, true
		}
		rr := arena.Take(&r.cname)
		rr.Hdr, rr.Target = h, target
		return rr, end, true
	case dns.TypeSOA:
		rr := arena.Take(&r.soa)
		rr.Hdr = h
		if h.Rdlength == 0 {
			return rr, end, true
		}
		ns, after, ok := r.name(rd, off)
		if !ok {
			return nil, 0, false
		}
		mbox, after, ok := r.name(rd, after)
		if !ok || after+20 != end {
			return nil, 0, false // cut short or too long: UnpackRR's to judge
		}
		rr.Ns, rr.Mbox = ns, mbox
		rr.Serial = binary.BigEndian.Uint32(buf[after:])
		rr.Refresh = binary.BigEndian.Uint32(buf[after+4:])
		rr.Retry = binary.BigEndian.Uint32(buf[after+8:])
		rr.Expire = binary.BigEndian.Uint32(buf[after+12:])
		rr.Minttl = binary.BigEndian.Uint32(buf[after+16:])
		return rr, end, true
	}
	if h.Rrtype == dns.TypeOPT && h.Rdlength == 0 {
		// No options: nothing to read. The first is the box's.
		if r.box != nil && !r.box.optSet {
			r.box.opt, r.box.optSet = dns.OPT{Hdr: h}, true
			return &r.box.opt, end, true
		}
		return &dns.OPT{Hdr: h}, end, true
	}
	rr, after, err := dns.UnpackRRWithHeader(h, rd, off)
	if err != nil || after != end {
		return nil, 0, false
	}
	return rr, end, true
}

// addr returns a copy of b cut from the address block.
func (r *replyParse) addr(b []byte) net.IP {
	if len(r.addrs)+len(b) > cap(r.addrs) {
		return append(net.IP(nil), b...) // more than counted: cannot happen after count
	}
	i := len(r.addrs)
	r.addrs = append(r.addrs, b...)
	return net.IP(r.addrs[i:len(r.addrs):len(r.addrs)])
}

// Bounds of a name, as dns.UnpackDomainName has them.
const (
	maxNameOctets   = 255
	maxNamePointers = (maxNameOctets+1)/2 - 2
)

// name reads the name at off in msg (the whole message, or the part up to
// the end of a record's data), as dns.UnpackDomainName reads it: the
// presentation form with its escapes, and the offset after the name in
// the stream. A name, or the rest of a name, read before at the same
// offset is not read again: its string, or a suffix of it, is reused.
func (r *replyParse) name(msg []byte, off int) (name string, next int, ok bool) {
	var buf [4 * maxNameOctets]byte
	// The labels read, each the start of a name that later names may
	// point at: where it is, where its text starts, the octets and
	// pointers before it, and where the stream goes on after it (the end
	// of its run of labels: a pointer or the root label).
	var starts [maxNameOctets / 2]struct{ at, pos, octets, ptrs, next int }
	n, ns, run := 0, 0, 0
	next, reach := -1, 0
	octets, ptrs := 0, 0
	endRun := func(after int) {
		for ; run < ns; run++ {
			starts[run].next = after
		}
	}
	for {
		if off >= len(msg) {
			return "", 0, false
		}
		if seen := r.seen(off, len(msg)); seen != nil {
			if octets+seen.octets >= maxNameOctets || ptrs+seen.ptrs > maxNamePointers {
				return "", 0, false
			}
			if next < 0 {
				next = seen.next
			}
			endRun(seen.next)
			reach = max(reach, seen.reach)
			if n == 0 {
				name = seen.name
			} else {
				name = string(buf[:n]) + seen.name
			}
			octets += seen.octets
			ptrs += seen.ptrs
			break
		}
		c := int(msg[off])
		if c == 0 {
			reach = max(reach, off+1)
			if next < 0 {
				next = off + 1
			}
			endRun(off + 1)
			if n == 0 {
				name = "."
			} else {
				name = string(buf[:n])
			}
			break
		}
		switch c & 0xC0 {
		case 0x00:
			if off+1+c > len(msg) {
				return "", 0, false
			}
			if octets+c+1 >= maxNameOctets {
				return "", 0, false
			}
			starts[ns].at, starts[ns].pos, starts[ns].octets, starts[ns].ptrs = off, n, octets, ptrs
			ns++
			octets += c + 1
			for _, b := range msg[off+1 : off+1+c] {
				switch {
				case b == '.' || b == ' ' || b == '\'' || b == '@' || b == ';' || b == '(' || b == ')' || b == '"' || b == '\\':
					buf[n], buf[n+1] = '\\', b
					n += 2
				case b < ' ' || b > '~':
					buf[n], buf[n+1], buf[n+2], buf[n+3] = '\\', '0'+b/100, '0'+b/10%10, '0'+b%10
					n += 4
				default:
					buf[n] = b
					n++
				}
			}
			buf[n] = '.'
			n++
			off += 1 + c
			reach = max(reach, off)
		case 0xC0:
			if off+1 >= len(msg) {
				return "", 0, false
			}
			if next < 0 {
				next = off + 2
			}
			endRun(off + 2)
			if ptrs++; ptrs > maxNamePointers {
				return "", 0, false
			}
			reach = max(reach, off+2)
			off = (c&0x3F)<<8 | int(msg[off+1])
		default:
			return "", 0, false
		}
	}
	for i := range ns {
		st := starts[i]
		r.remember(nameSeen{
			at: st.at, next: st.next, reach: reach,
			octets: octets - st.octets, ptrs: ptrs - st.ptrs,
			name: name[st.pos:],
		})
	}
	return name, next, true
}

// seen returns the name read before at off, if its reading stayed within
// the first limit bytes.
func (r *replyParse) seen(off, limit int) *nameSeen {
	for i := range r.n {
		if s := &r.names[i]; s.at == off && s.reach <= limit {
			return s
		}
	}
	return nil
}

// remember keeps a name read at an offset, unless one is kept for it.
func (r *replyParse) remember(s nameSeen) {
	for i := range r.n {
		if r.names[i].at == s.at {
			return
		}
	}
	if r.n < len(r.names) {
		r.names[r.n] = s
		r.n++
	}
}
