package hostile

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// Malformation is a way of breaking a DNS message that a lenient parser
// lets through.
type Malformation int

// The malformations Malform makes.
const (
	// CountMismatch: ANCOUNT one more than the answer records present (the
	// authority and additional sections are left out, so the count
	// promises a record the message does not hold).
	CountMismatch Malformation = iota
	// OPTInAnswer: an OPT record in the answer section.
	OPTInAnswer
	// TwoOPT: two OPT records in the additional section.
	TwoOPT
	// TSIGNotLast: a TSIG record in the additional section before another
	// record.
	TSIGNotLast
	// TrailingBytes: four bytes after the last record.
	TrailingBytes
	// WrongClass: an answer record of class CH in an answer for class IN.
	WrongClass
)

// Malformations lists every Malformation.
var Malformations = []Malformation{CountMismatch, OPTInAnswer, TwoOPT, TSIGNotLast, TrailingBytes, WrongClass}

func (k Malformation) String() string {
	switch k {
	case CountMismatch:
		return "count-mismatch"
	case OPTInAnswer:
		return "opt-in-answer"
	case TwoOPT:
		return "two-opt"
	case TSIGNotLast:
		return "tsig-not-last"
	case TrailingBytes:
		return "trailing-bytes"
	case WrongClass:
		return "wrong-class"
	}
	return fmt.Sprintf("malformation-%d", int(k))
}

// Malform returns m, a reply, packed and broken as k says. m is not
// changed.
func Malform(m *dns.Msg, k Malformation) ([]byte, error) {
	m = m.Copy()
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	opt.SetUDPSize(1232)
	switch k {
	case CountMismatch:
		m.Ns, m.Extra = nil, nil
		b, err := m.Pack()
		if err != nil {
			return nil, err
		}
		binary.BigEndian.PutUint16(b[6:], binary.BigEndian.Uint16(b[6:])+1)
		return b, nil
	case OPTInAnswer:
		m.Answer = append(m.Answer, opt)
	case TwoOPT:
		m.Extra = append(removeOPT(m.Extra), opt, dns.Copy(opt))
	case TSIGNotLast:
		tsig := &dns.TSIG{Hdr: dns.RR_Header{Name: "key.", Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
			Algorithm: dns.HmacSHA256, TimeSigned: uint64(time.Now().Unix()), Fudge: 300, MAC: "00", MACSize: 1, OrigId: m.Id}
		m.Extra = append([]dns.RR{tsig}, m.Extra...)
		if len(m.Extra) == 1 {
			m.Extra = append(m.Extra, opt)
		}
	case TrailingBytes:
		b, err := m.Pack()
		if err != nil {
			return nil, err
		}
		return append(b, 0, 0, 0, 0), nil
	case WrongClass:
		a := &dns.A{Hdr: dns.RR_Header{Name: "ch.", Rrtype: dns.TypeA, Class: dns.ClassCHAOS, Ttl: 300}, A: []byte{192, 0, 2, 66}}
		if len(m.Question) == 1 {
			a.Hdr.Name = m.Question[0].Name
		}
		m.Answer = append(m.Answer, a)
	default:
		return nil, fmt.Errorf("hostile: unknown malformation %d", int(k))
	}
	return m.Pack()
}

func removeOPT(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// Flood answers q with n copies of forged, each with an ID other than the
// query's (the forger did not guess it), then, after delay, with genuine
// (nil: nothing more). The forged copies are sent as fast as the socket
// takes them. It returns early when ctx ends or a write fails.
func Flood(ctx context.Context, w *Writer, q *Query, n int, forged, genuine *dns.Msg, delay time.Duration) error {
	b, err := forged.Pack()
	if err != nil {
		return fmt.Errorf("hostile: pack: %w", err)
	}
	id := binary.BigEndian.Uint16(q.Raw)
	for i := range n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fake := id + uint16(1+i%65535)
		binary.BigEndian.PutUint16(b, fake)
		if err := w.Raw(b); err != nil {
			return err
		}
	}
	if genuine == nil {
		return nil
	}
	if !Sleep(ctx, delay) {
		return ctx.Err()
	}
	return w.Msg(genuine)
}

// ClientCookie returns the client cookie (8 bytes) of m's COOKIE option,
// or nil without one.
func ClientCookie(m *dns.Msg) []byte {
	opt := m.IsEdns0()
	if opt == nil {
		return nil
	}
	for _, o := range opt.Option {
		if c, ok := o.(*dns.EDNS0_COOKIE); ok {
			if b, err := hex.DecodeString(c.Cookie); err == nil && len(b) >= 8 {
				return b[:8]
			}
		}
	}
	return nil
}

// SetCookie puts a COOKIE option of client and server cookies into m's OPT
// record (adding one if m has none), replacing any other.
func SetCookie(m *dns.Msg, client, server []byte) {
	opt := m.IsEdns0()
	if opt == nil {
		m.SetEdns0(1232, false)
		opt = m.IsEdns0()
	}
	var keep []dns.EDNS0
	for _, o := range opt.Option {
		if o.Option() != dns.EDNS0COOKIE {
			keep = append(keep, o)
		}
	}
	c := hex.EncodeToString(append(append([]byte(nil), client...), server...))
	opt.Option = append(keep, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: c})
}

// MustRR parses one record of master-file text (fully qualified names; TTL
// and class may be left out), for forged answers; it panics on bad text,
// as regexp.MustCompile does.
func MustRR(text string) dns.RR {
	rr, err := dns.NewRR(text)
	if err != nil || rr == nil {
		panic(fmt.Sprintf("hostile.MustRR(%q): %v", text, err))
	}
	return rr
}

// NXNS returns a Handler for the zone z of an NXNSAttack: a name below
// its origin that z does not hold gets a referral of itself to count name
// servers in victim without glue, n1-<label>.<victim> to
// n<count>-<label>.<victim> after the name's first label, so that every
// referral names servers never seen before, each of which a resolver must
// look up at the victim's servers. Other names are answered from z.
func NXNS(z *Zone, victim string, count int) Handler {
	victim = dns.Fqdn(victim)
	return func(_ context.Context, w *Writer, q *Query) {
		if q.Msg == nil || q.Msg.Response {
			return
		}
		name := q.Name()
		if z.exists[name] || !dns.IsSubDomain(z.origin, name) {
			_ = w.Msg(z.Answer(q.Msg))
			return
		}
		m := new(dns.Msg)
		m.SetReply(q.Msg)
		if q.Msg.IsEdns0() != nil {
			m.SetEdns0(1232, false)
		}
		label := dns.SplitDomainName(name)[0]
		for i := 1; i <= count; i++ {
			m.Ns = append(m.Ns, &dns.NS{Hdr: dns.RR_Header{Name: q.Msg.Question[0].Name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600},
				Ns: fmt.Sprintf("n%d-%s.%s", i, label, victim)})
		}
		_ = w.Msg(m)
	}
}
