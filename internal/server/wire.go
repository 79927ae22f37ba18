package server

import "encoding/binary"

// Header bits, in bytes 2 and 3 of a DNS message.
const (
	bitQR = 0x80 // byte 2
	bitRD = 0x01 // byte 2
	bitTC = 0x02 // byte 2
	bitCD = 0x10 // byte 3
	bitAD = 0x20 // byte 3
)

// fastQuery is what the fast path reads from a plain query.
type fastQuery struct {
	nameLen  int    // wire length of the question name at offset 12
	udpSize  uint16 // EDNS payload size, 0 without EDNS
	keyLen   int
	keyBytes [255 + 3]byte // lower-case name, qtype, flags
}

func (q *fastQuery) key() []byte { return q.keyBytes[:q.keyLen] }

// Bits of the key's last byte, the flags: what besides the question changes
// the response.
const (
	keyEDNS       = 1 << iota // the query has an OPT record
	keyDO                     // and it sets DO
	keyMayRecurse             // the client may have names resolved for it: RA is set
	keyRecurse                // and it set RD: names no zone holds, or delegated away, are resolved
	keyCD                     // the query sets CD: a resolved answer that failed validation is given, not SERVFAIL
	keyAD                     // the query sets AD: a validated answer says so without DO (RFC 6840 §5.7)
)

// setClient marks the key with what the client may do: a response cached
// for one client who may recurse is never given to one who may not, nor a
// referral cached for an RD=0 question to the same client's RD=1 question.
func (q *fastQuery) setClient(mayRecurse, rd bool) {
	f := &q.keyBytes[q.keyLen-1]
	*f &^= keyMayRecurse | keyRecurse
	if mayRecurse {
		*f |= keyMayRecurse
		if rd {
			*f |= keyRecurse
		}
	}
}

// parseFast accepts only the common shape of query: one question of class
// IN, no other records except an OPT of version 0 with no options, no name
// compression, nothing after the end. Anything else is left to the full
// parser. The key is the lower-cased name, the type, and whether EDNS and
// DO were present; setClient adds what the client may do. That is all an
// answer from the zones depends on.
func parseFast(in []byte, q *fastQuery) bool {
	if len(in) < 17 || in[2]&0x78 != 0 || // opcode QUERY
		binary.BigEndian.Uint16(in[4:]) != 1 || binary.BigEndian.Uint16(in[6:]) != 0 ||
		binary.BigEndian.Uint16(in[8:]) != 0 {
		return false
	}
	ar := binary.BigEndian.Uint16(in[10:])
	if ar > 1 {
		return false
	}
	off := 12
	k := 0
	for {
		if off >= len(in) {
			return false
		}
		l := int(in[off])
		if l == 0 {
			q.keyBytes[k] = 0
			k++
			off++
			break
		}
		if l > 63 || off+1+l >= len(in) || k+1+l > 254 {
			return false
		}
		q.keyBytes[k] = byte(l)
		for i, c := range in[off+1 : off+1+l] {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			q.keyBytes[k+1+i] = c
		}
		k += 1 + l
		off += 1 + l
	}
	q.nameLen = off - 12
	if off+4 > len(in) || binary.BigEndian.Uint16(in[off+2:]) != 1 { // class IN
		return false
	}
	qtype := binary.BigEndian.Uint16(in[off:])
	switch qtype {
	case 0, 41, 249, 250, 251, 252, 253, 254: // None, OPT, TKEY, TSIG, IXFR, AXFR, MAILB, MAILA
		return false
	}
	q.keyBytes[k], q.keyBytes[k+1] = in[off], in[off+1]
	off += 4
	var flags byte
	q.udpSize = 0
	if ar == 1 {
		// root name, type OPT, class = size, ttl = ext-rcode, version, flags, rdlen 0
		if off+11 != len(in) || in[off] != 0 || binary.BigEndian.Uint16(in[off+1:]) != 41 ||
			in[off+6] != 0 || binary.BigEndian.Uint16(in[off+9:]) != 0 {
			return false
		}
		q.udpSize = max(binary.BigEndian.Uint16(in[off+3:]), 512)
		flags = keyEDNS
		if in[off+7]&0x80 != 0 {
			flags |= keyDO
		}
	} else if off != len(in) {
		return false
	}
	if in[3]&bitCD != 0 {
		flags |= keyCD
	}
	if in[3]&bitAD != 0 {
		flags |= keyAD
	}
	q.keyBytes[k+2] = flags
	q.keyLen = k + 3
	return true
}

// patch turns a cached response into the response to in.
func patch(out, wire, in []byte, nameLen int) []byte {
	out = append(out[:0], wire...)
	out[0], out[1] = in[0], in[1]
	out[2] = out[2]&^bitRD | in[2]&bitRD
	out[3] = out[3]&^bitCD | in[3]&bitCD
	copy(out[12:12+nameLen], in[12:12+nameLen])
	return out
}

// wireLen walks a message's sections as its header counts them and returns
// where the last record ends, or -1 if the message is shorter than that.
// Anything after that point is trailing garbage (FORMERR).
func wireLen(m []byte) int {
	if len(m) < 12 {
		return -1
	}
	off, ok := skipQuestions(m)
	if !ok {
		return -1
	}
	rrs := int(binary.BigEndian.Uint16(m[6:])) + int(binary.BigEndian.Uint16(m[8:])) + int(binary.BigEndian.Uint16(m[10:]))
	for range rrs {
		if off, ok = skipName(m, off); !ok || off+10 > len(m) {
			return -1
		}
		off += 10 + int(binary.BigEndian.Uint16(m[off+8:]))
		if off > len(m) {
			return -1
		}
	}
	return off
}

// skipName returns the offset after the (possibly compressed) name at off
// in message m; ok is false when the name runs past the end or uses a
// reserved label type.
func skipName(m []byte, off int) (int, bool) {
	for off < len(m) {
		l := int(m[off])
		switch {
		case l == 0:
			return off + 1, true
		case l&0xC0 == 0xC0:
			return off + 2, off+2 <= len(m)
		case l&0xC0 != 0:
			return off, false
		}
		off += 1 + l
	}
	return off, false
}

// skipQuestions returns the offset after the question section of m (at
// least 12 bytes long), as its header counts it.
func skipQuestions(m []byte) (int, bool) {
	off := 12
	for range binary.BigEndian.Uint16(m[4:]) {
		var ok bool
		if off, ok = skipName(m, off); !ok || off+4 > len(m) {
			return off, false
		}
		off += 4
	}
	return off, true
}
