package resolver

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// ErrMalformed is an upstream message that does not hold together: the
// server that sent it failed, whatever records it carries.
var ErrMalformed = errors.New("malformed upstream message")

// checkWire walks an upstream message as it came off the wire and refuses
// what a lenient parser would let through: section counts that promise
// more (or fewer) records than the message holds, bytes after the last
// record, an OPT record outside the additional section or more than once
// (RFC 6891 §6.1.1), a TSIG record that is not the last one (RFC 8945
// §5.1), more than one question, and records of a class other than the
// question's (OPT and TSIG excepted, whose class field means something
// else). It allocates nothing; the records' contents are left to the
// parser, which checks each one against its RDLENGTH.
func checkWire(buf []byte) error {
	if len(buf) < 12 {
		return fmt.Errorf("%w: %d bytes, shorter than a header", ErrMalformed, len(buf))
	}
	qd := int(binary.BigEndian.Uint16(buf[4:]))
	counts := [3]int{
		int(binary.BigEndian.Uint16(buf[6:])),
		int(binary.BigEndian.Uint16(buf[8:])),
		int(binary.BigEndian.Uint16(buf[10:])),
	}
	if qd > 1 {
		return fmt.Errorf("%w: %d questions", ErrMalformed, qd)
	}
	off := 12
	qclass := uint16(dns.ClassINET)
	if qd == 1 {
		end, err := skipName(buf, off)
		if err != nil {
			return fmt.Errorf("%w: question: %w", ErrMalformed, err)
		}
		if end+4 > len(buf) {
			return fmt.Errorf("%w: question cut short", ErrMalformed)
		}
		qclass = binary.BigEndian.Uint16(buf[end+2:])
		off = end + 4
	}
	opts := 0
	for sec, n := range counts {
		for i := range n {
			end, err := skipName(buf, off)
			if err != nil {
				return fmt.Errorf("%w: %s record %d: %w", ErrMalformed, sectionNames[sec], i+1, err)
			}
			if end+10 > len(buf) {
				return fmt.Errorf("%w: %s record %d of %d missing", ErrMalformed, sectionNames[sec], i+1, n)
			}
			typ := binary.BigEndian.Uint16(buf[end:])
			class := binary.BigEndian.Uint16(buf[end+2:])
			rdlen := int(binary.BigEndian.Uint16(buf[end+8:]))
			off = end + 10 + rdlen
			if off > len(buf) {
				return fmt.Errorf("%w: %s record %d runs past the message's end", ErrMalformed, sectionNames[sec], i+1)
			}
			switch typ {
			case dns.TypeOPT:
				if sec != 2 {
					return fmt.Errorf("%w: OPT record in the %s section", ErrMalformed, sectionNames[sec])
				}
				if opts++; opts > 1 {
					return fmt.Errorf("%w: more than one OPT record", ErrMalformed)
				}
			case dns.TypeTSIG:
				if sec != 2 || i != n-1 {
					return fmt.Errorf("%w: TSIG record not the last record", ErrMalformed)
				}
			default:
				if class != qclass {
					return fmt.Errorf("%w: %s record of class %s in an answer for class %s", ErrMalformed,
						sectionNames[sec], dns.Class(class), dns.Class(qclass))
				}
			}
		}
	}
	if off != len(buf) {
		return fmt.Errorf("%w: %d bytes after the last record", ErrMalformed, len(buf)-off)
	}
	return nil
}

var sectionNames = [3]string{"answer", "authority", "additional"}

// skipName returns the offset after the domain name at off: its labels up
// to the root label or a compression pointer. A pointer must point back,
// and a name may have no more than 127 labels; the pointers themselves are
// followed by the parser, which bounds them.
func skipName(buf []byte, off int) (int, error) {
	for labels := 0; ; labels++ {
		if off >= len(buf) {
			return 0, errors.New("name cut short")
		}
		if labels > 127 {
			return 0, errors.New("name of more than 127 labels")
		}
		c := int(buf[off])
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				return off + 1, nil
			}
			off += 1 + c
		case 0xC0:
			if off+2 > len(buf) {
				return 0, errors.New("compression pointer cut short")
			}
			if ptr := int(binary.BigEndian.Uint16(buf[off:]) & 0x3FFF); ptr >= off {
				return 0, errors.New("compression pointer forward")
			}
			return off + 2, nil
		default:
			return 0, errors.New("reserved label type")
		}
	}
}

// parseReply checks an upstream message (checkWire) and parses it. A
// truncated message (TC) may be cut anywhere: only its header is kept,
// which is all a resolver needs to go on over TCP.
func parseReply(buf []byte) (*dns.Msg, error) {
	if len(buf) >= 12 && buf[2]&0x02 != 0 { // TC
		m := new(dns.Msg)
		if err := m.Unpack(buf[:12]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		m.Truncated = true
		if err := checkWire(buf); err == nil {
			if err := m.Unpack(buf); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
			}
		}
		return m, nil
	}
	if err := checkWire(buf); err != nil {
		return nil, err
	}
	if m, ok := unpackReply(buf); ok {
		return m, nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return m, nil
}
