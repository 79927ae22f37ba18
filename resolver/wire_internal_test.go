package resolver

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/miekg/dns"
)

// packed returns the wire form of a reply to www.example. A with one
// answer, changed by edit first.
func packed(t testing.TB, edit func(m *dns.Msg)) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	m.Response = true
	a, err := dns.NewRR("www.example. 300 IN A 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	m.Answer = []dns.RR{a}
	m.SetEdns0(1232, true)
	if edit != nil {
		edit(m)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckWire(t *testing.T) {
	opt := func() dns.RR {
		o := new(dns.OPT)
		o.Hdr.Name, o.Hdr.Rrtype = ".", dns.TypeOPT
		o.SetUDPSize(1232)
		return o
	}
	tsig := func() dns.RR {
		return &dns.TSIG{Hdr: dns.RR_Header{Name: "key.", Rrtype: dns.TypeTSIG, Class: dns.ClassANY}, Algorithm: dns.HmacSHA256, MACSize: 0, OrigId: 1}
	}
	ns, _ := dns.NewRR("example. 300 IN NS ns.example.")
	ch, _ := dns.NewRR("www.example. 300 CH TXT \"x\"")
	good := packed(t, nil)
	tests := []struct {
		name string
		wire []byte
		ok   bool
	}{
		{"a plain answer", good, true},
		{"with a TSIG last", packed(t, func(m *dns.Msg) { m.Extra = append(m.Extra, tsig()) }), true},
		{"more answers counted than held", func() []byte {
			b := packed(t, func(m *dns.Msg) { m.Extra = nil })
			binary.BigEndian.PutUint16(b[6:], 5)
			return b
		}(), false},
		{"fewer records counted than held", func() []byte {
			b := packed(t, func(m *dns.Msg) { m.Extra = nil })
			binary.BigEndian.PutUint16(b[6:], 0)
			return b
		}(), false},
		{"a trailing byte", append(packed(t, nil), 0), false},
		{"an OPT in the answer section", packed(t, func(m *dns.Msg) { m.Answer = append(m.Answer, opt()) }), false},
		{"an OPT in the authority section", packed(t, func(m *dns.Msg) { m.Ns = append(m.Ns, opt()) }), false},
		{"two OPT records", packed(t, func(m *dns.Msg) { m.Extra = append(m.Extra, opt()) }), false},
		{"a TSIG before the OPT", packed(t, func(m *dns.Msg) { m.Extra = append([]dns.RR{tsig()}, m.Extra...) }), false},
		{"a TSIG in the answer section", packed(t, func(m *dns.Msg) { m.Answer = append(m.Answer, tsig()) }), false},
		{"a record of class CH", packed(t, func(m *dns.Msg) { m.Ns = []dns.RR{ns, ch} }), false},
		{"two questions", packed(t, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), false},
		{"a record cut short", good[:len(good)-3], false},
		{"shorter than a header", good[:11], false},
		{"a compression pointer forward", func() []byte {
			b := packed(t, func(m *dns.Msg) { m.Extra, m.Compress = nil, true })
			// The answer's owner is a pointer to the question (offset 12);
			// point it past itself.
			i := 12 + len("\x03www\x07example\x00") + 4
			if b[i]&0xC0 != 0xC0 {
				t.Fatalf("no compression pointer at %d", i)
			}
			binary.BigEndian.PutUint16(b[i:], 0xC000|uint16(i+2))
			return b
		}(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkWire(tt.wire)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			if _, perr := parseReply(tt.wire); (perr == nil) != tt.ok {
				t.Fatalf("parseReply: %v", perr)
			}
		})
	}
}

// A truncated answer may be cut anywhere: its header is enough to go on
// over TCP.
func TestParseReplyTruncated(t *testing.T) {
	b := packed(t, func(m *dns.Msg) { m.Truncated = true })
	m, err := parseReply(b[:len(b)-5])
	if err != nil || !m.Truncated {
		t.Fatalf("got %v, %v; want a truncated message", m, err)
	}
	if err := matches(&dns.Msg{MsgHdr: dns.MsgHdr{Id: m.Id}, Question: []dns.Question{{Name: "www.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET}}}, m); err != nil {
		t.Fatalf("the cut answer does not match its query: %v", err)
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add(packed(f, nil))
	f.Add(packed(f, func(m *dns.Msg) { m.Truncated = true }))
	f.Add([]byte{0, 1, 0x84, 0, 0, 1, 0, 5, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseReply(b)
		if err != nil {
			return
		}
		if !m.Truncated {
			// What was accepted packs again, with its counts.
			if _, err := m.Pack(); err != nil {
				t.Skip() // miekg/dns parses some rdata it cannot pack
			}
		}
	})
}
