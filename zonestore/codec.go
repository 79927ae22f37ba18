package zonestore

import (
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/arena"
	"github.com/sovdns/sovdns/zone"
)

// encodeNode appends the node's records in uncompressed wire form. shared
// says the records may belong to a zone being served: then they are packed
// without being written to (dns.PackRR sets each record's Rdlength, a data
// race with readers); a zone not yet published takes the faster way.
func encodeNode(buf []byte, n *zone.Node, shared bool) ([]byte, error) {
	var err error
	for _, set := range n.RRsets {
		if shared {
			buf, err = appendShared(buf, set.All())
		} else {
			buf, err = appendFresh(buf, set.All())
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func appendFresh(buf []byte, rrs []dns.RR) ([]byte, error) {
	for _, rr := range rrs {
		off := len(buf)
		buf = slices.Grow(buf, dns.Len(rr)+16)
		end, err := dns.PackRR(rr, buf[:cap(buf)], off, nil, false)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", rr.Header().Name, err)
		}
		buf = buf[:end]
	}
	return buf, nil
}

// appendShared packs rrs as the answer section of a message, whose packing
// does not write into the records, and cuts the 12-byte header off.
func appendShared(buf []byte, rrs []dns.RR) ([]byte, error) {
	if len(rrs) == 0 {
		return buf, nil
	}
	m := dns.Msg{Answer: rrs}
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", rrs[0].Header().Name, err)
	}
	return append(buf, wire[12:]...), nil
}

// decodeRRs appends the records encoded in v to rrs. v is only valid inside
// the bbolt transaction, and what the records keep is copied. With in, the
// names the records hold are interned in it and their addresses cut from
// its blocks (see names); without, each record has its own.
func decodeRRs(rrs []dns.RR, v []byte, in *names) ([]dns.RR, error) {
	for off := 0; off < len(v); {
		var rr dns.RR
		var next int
		var err error
		if in != nil {
			rr, next, err = in.decode(v, off)
		} else {
			rr, next, err = dns.UnpackRR(v, off)
		}
		if err != nil {
			return rrs, err
		}
		if next <= off {
			return rrs, fmt.Errorf("record at offset %d does not advance", off)
		}
		rrs = append(rrs, rr)
		off = next
	}
	return rrs, nil
}

// names interns the names of records read from the file, so that the
// records hold one string for each: every record of a name its owner's,
// and a name in a record's data (a server, a mailbox, a target, a
// signer) the string of the same name read before, in this zone or in an
// earlier one of the same pass. The small zones a registry holds by the
// thousand name the same servers and mailbox, and their MX and CNAME
// targets are names of their own: 6 of their 13 names' strings, and as
// many heap objects. A signed zone's signatures name its origin each.
//
// It also moves the addresses of A and AAAA records into shared blocks:
// one heap object for many.
//
// The records of the types most zones are made of (A, AAAA, NS, CNAME,
// MX, SOA and a few more) are decoded here, their names looked up in
// presentation form made on the stack: a name read before costs no
// allocation, and a record only its own object. UnpackRR would give each
// record a header and a string for every name it holds, and each address
// a slice, of which interning keeps one in three: at a start that reads
// 100,000 zones, millions of small objects that die beside the ones that
// live, and leave the holes between them that the heap keeps.
type names struct {
	m     map[string]string
	addrs arena.Arena // the addresses' blocks
	// slab is room for the records of the zone being read, counted
	// before (count, reserve): its records of each common type come from
	// one allocation, which lives as long as the zone does.
	slab slab
	want [slabTypes]int
}

// slab holds a zone's records of the types most zones are made of, each
// type in one array: a zone of 18 records is then 7 objects, not 18, and
// its records are not rounded up each to the allocator's next size (an A
// record takes 56 bytes in an array, 64 on its own).
type slab struct {
	a     []dns.A
	aaaa  []dns.AAAA
	ns    []dns.NS
	cname []dns.CNAME
	mx    []dns.MX
	soa   []dns.SOA
	txt   []dns.TXT
}

// The types a slab holds, as indexes of names.want.
const (
	slabA = iota
	slabAAAA
	slabNS
	slabCNAME
	slabMX
	slabSOA
	slabTXT
	slabTypes
)

// slabType returns the index of a record of type t with rdlength bytes of
// data in names.want, or -1 when a slab does not hold it.
func slabType(t, rdlength uint16) int {
	switch t {
	case dns.TypeA:
		if rdlength == net.IPv4len {
			return slabA
		}
	case dns.TypeAAAA:
		if rdlength == net.IPv6len {
			return slabAAAA
		}
	case dns.TypeNS:
		return slabNS
	case dns.TypeCNAME:
		return slabCNAME
	case dns.TypeMX:
		return slabMX
	case dns.TypeSOA:
		return slabSOA
	case dns.TypeTXT:
		return slabTXT
	}
	return -1
}

// count adds the records encoded in v to those the next reserve makes
// room for. It reads only their headers, and stops at anything it does
// not read (decode then reads or refuses it).
func (n *names) count(v []byte) {
	for off := 0; off < len(v); {
		for { // the owner name
			if off >= len(v) {
				return
			}
			l := int(v[off])
			if l&0xc0 == 0xc0 {
				off += 2
				break
			}
			off += 1 + l
			if l == 0 {
				break
			}
		}
		if off+10 > len(v) {
			return
		}
		t, rdlength := binary.BigEndian.Uint16(v[off:]), binary.BigEndian.Uint16(v[off+8:])
		if i := slabType(t, rdlength); i >= 0 {
			n.want[i]++
		}
		off += 10 + int(rdlength)
	}
}

// reserve makes the room that count counted, for the zone read next.
func (n *names) reserve() {
	w := &n.want
	n.slab = slab{a: room[dns.A](w[slabA]), aaaa: room[dns.AAAA](w[slabAAAA]), ns: room[dns.NS](w[slabNS]),
		cname: room[dns.CNAME](w[slabCNAME]), mx: room[dns.MX](w[slabMX]), soa: room[dns.SOA](w[slabSOA]),
		txt: room[dns.TXT](w[slabTXT])}
	*w = [slabTypes]int{}
}

func room[T any](n int) []T {
	if n == 0 {
		return nil
	}
	return make([]T, 0, n)
}

// maxNames bounds what names keeps: it starts again when full.
const maxNames = 4096

func (n *names) intern(s string) string {
	if v, ok := n.m[s]; ok {
		return v
	}
	n.keep(s)
	return s
}

// keep adds s to the names kept.
func (n *names) keep(s string) {
	if n.m == nil {
		n.m = make(map[string]string, 64)
	} else if len(n.m) >= maxNames {
		clear(n.m) // keeps the table's room for the next
	}
	n.m[s] = s
}

// name returns the presentation form of the uncompressed name at off in
// msg, interned, and the offset after it. ok is false for a name it does
// not read (a compression pointer, a label with a byte that presentation
// form escapes, a name longer than the protocol allows, or one cut
// short): UnpackRR reads those, or tells what is wrong with them.
func (n *names) name(msg []byte, off int) (s string, next int, ok bool) {
	var buf [256]byte
	k, wire := 0, 0
	for {
		if off >= len(msg) {
			return "", 0, false
		}
		l := int(msg[off])
		off++
		wire += 1 + l
		if wire > 255 {
			return "", 0, false
		}
		if l == 0 {
			break
		}
		if l&0xc0 != 0 || off+l > len(msg) {
			return "", 0, false
		}
		for _, c := range msg[off : off+l] {
			if !plainByte(c) {
				return "", 0, false
			}
		}
		k += copy(buf[k:], msg[off:off+l])
		buf[k] = '.'
		k++
		off += l
	}
	if k == 0 {
		return ".", off, true
	}
	if v, ok := n.m[string(buf[:k])]; ok { // no allocation for the lookup
		return v, off, true
	}
	s = string(buf[:k])
	n.keep(s)
	return s, off, true
}

// plainByte reports whether c stands for itself in a name's presentation form
// as UnpackDomainName writes it (which escapes the others).
func plainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '*'
}

// decode returns the record at off in msg, as dns.UnpackRR would, and the
// offset after it.
func (n *names) decode(msg []byte, off int) (dns.RR, int, error) {
	owner, h0, ok := n.name(msg, off)
	if !ok || h0+10 > len(msg) {
		return n.unpack(msg, off)
	}
	h := dns.RR_Header{Name: owner, Rrtype: binary.BigEndian.Uint16(msg[h0:]),
		Class: binary.BigEndian.Uint16(msg[h0+2:]), Ttl: binary.BigEndian.Uint32(msg[h0+4:]),
		Rdlength: binary.BigEndian.Uint16(msg[h0+8:])}
	rd := h0 + 10
	end := rd + int(h.Rdlength)
	if end > len(msg) {
		return n.unpack(msg, off)
	}
	// A name in the data: ok, and the data ends where it does.
	target := func(at int) (string, bool) {
		s, next, ok := n.name(msg, at)
		return s, ok && next == end
	}
	switch h.Rrtype {
	case dns.TypeA:
		if h.Rdlength == net.IPv4len {
			r := arena.Take(&n.slab.a)
			*r = dns.A{Hdr: h, A: n.addrs.Cut(msg[rd:end])}
			return r, end, nil
		}
	case dns.TypeAAAA:
		if h.Rdlength == net.IPv6len {
			r := arena.Take(&n.slab.aaaa)
			*r = dns.AAAA{Hdr: h, AAAA: n.addrs.Cut(msg[rd:end])}
			return r, end, nil
		}
	case dns.TypeNS:
		if t, ok := target(rd); ok {
			r := arena.Take(&n.slab.ns)
			*r = dns.NS{Hdr: h, Ns: t}
			return r, end, nil
		}
	case dns.TypeCNAME:
		if t, ok := target(rd); ok {
			r := arena.Take(&n.slab.cname)
			*r = dns.CNAME{Hdr: h, Target: t}
			return r, end, nil
		}
	case dns.TypePTR:
		if t, ok := target(rd); ok {
			return &dns.PTR{Hdr: h, Ptr: t}, end, nil
		}
	case dns.TypeDNAME:
		if t, ok := target(rd); ok {
			return &dns.DNAME{Hdr: h, Target: t}, end, nil
		}
	case dns.TypeMX:
		if h.Rdlength > 2 {
			if t, ok := target(rd + 2); ok {
				r := arena.Take(&n.slab.mx)
				*r = dns.MX{Hdr: h, Preference: binary.BigEndian.Uint16(msg[rd:]), Mx: t}
				return r, end, nil
			}
		}
	case dns.TypeSOA:
		if ns, at, ok := n.name(msg, rd); ok && at < end {
			if mbox, at, ok := n.name(msg, at); ok && at+20 == end {
				u := func(i int) uint32 { return binary.BigEndian.Uint32(msg[at+4*i:]) }
				r := arena.Take(&n.slab.soa)
				*r = dns.SOA{Hdr: h, Ns: ns, Mbox: mbox, Serial: u(0), Refresh: u(1), Retry: u(2),
					Expire: u(3), Minttl: u(4)}
				return r, end, nil
			}
		}
	}
	if h.Rrtype == dns.TypeTXT && end > rd {
		if txt, ok := plainTxt(msg[rd:end]); ok {
			r := arena.Take(&n.slab.txt)
			*r = dns.TXT{Hdr: h, Txt: txt}
			return r, end, nil
		}
	}
	rr, next, err := dns.UnpackRRWithHeader(h, msg[:end], rd) // as UnpackRR cuts it
	if err != nil {
		return nil, next, err
	}
	n.data(rr)
	return rr, next, nil
}

// plainTxt returns the character-strings of a TXT record's data as
// UnpackRR does, when none has a byte that it escapes: one string for all
// their bytes, cut in parts. ok is false otherwise, and for data cut
// short.
func plainTxt(rd []byte) (txt []string, ok bool) {
	strs, size := 0, 0
	for off := 0; off < len(rd); {
		l := int(rd[off])
		off++
		if off+l > len(rd) {
			return nil, false
		}
		for _, c := range rd[off : off+l] {
			if c == '"' || c == '\\' || c < ' ' || c > '~' {
				return nil, false
			}
		}
		strs++
		size += l
		off += l
	}
	all := make([]byte, 0, size)
	for off := 0; off < len(rd); off += 1 + int(rd[off]) {
		all = append(all, rd[off+1:off+1+int(rd[off])]...)
	}
	data := unsafe.String(unsafe.SliceData(all), len(all)) // all is not written again
	txt = make([]string, strs)
	at := 0
	for i, off := 0, 0; off < len(rd); i, off = i+1, off+1+int(rd[off]) {
		txt[i] = data[at : at+int(rd[off])]
		at += int(rd[off])
	}
	return txt, true
}

// unpack is decode by dns.UnpackRR, for what decode does not read itself.
func (n *names) unpack(msg []byte, off int) (dns.RR, int, error) {
	rr, next, err := dns.UnpackRR(msg, off)
	if err != nil {
		return nil, next, err
	}
	h := rr.Header()
	h.Name = n.intern(h.Name)
	n.data(rr)
	return rr, next, nil
}

// data interns the names in rr's data and moves its address into the
// shared blocks.
func (n *names) data(rr dns.RR) {
	switch r := rr.(type) {
	case *dns.A:
		if len(r.A) > 0 {
			r.A = n.addrs.Cut(r.A)
		}
	case *dns.AAAA:
		if len(r.AAAA) > 0 {
			r.AAAA = n.addrs.Cut(r.AAAA)
		}
	case *dns.NS:
		r.Ns = n.intern(r.Ns)
	case *dns.SOA:
		r.Ns, r.Mbox = n.intern(r.Ns), n.intern(r.Mbox)
	case *dns.MX:
		r.Mx = n.intern(r.Mx)
	case *dns.CNAME:
		r.Target = n.intern(r.Target)
	case *dns.DNAME:
		r.Target = n.intern(r.Target)
	case *dns.SRV:
		r.Target = n.intern(r.Target)
	case *dns.PTR:
		r.Ptr = n.intern(r.Ptr)
	case *dns.RRSIG:
		r.SignerName = n.intern(r.SignerName)
	}
}

// storeKey is the bbolt key of a name: its canonical key, except for the
// root, whose canonical key is empty, which bbolt does not take. 0x00 0x00
// sorts before every other key and is no other name's key.
func storeKey(ck []byte) []byte {
	if len(ck) == 0 {
		return []byte{0, 0}
	}
	return ck
}
