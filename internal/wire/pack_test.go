package wire

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/zonetest"
)

func reply(t testing.TB, name string, qtype uint16, compress bool, answer, ns, extra []dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Response, m.RecursionDesired, m.RecursionAvailable = true, true, true
	m.Id = 0xbeef
	m.Compress = compress
	m.Answer, m.Ns, m.Extra = answer, ns, extra
	return m
}

func withOpt(extra []dns.RR, opts ...dns.EDNS0) []dns.RR {
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(1232)
	o.SetDo()
	o.Option = opts
	return append(extra, o)
}

// samePack packs m with AppendMsg (after prefix) and with PackBuffer,
// each on its own copy, and fails unless both give the same bytes and
// leave their copies alike; want says whether AppendMsg is to pack it.
func samePack(t *testing.T, m *dns.Msg, prefix []byte, want bool) {
	t.Helper()
	a, p := m.Copy(), m.Copy()
	a.Compress, p.Compress = m.Compress, m.Compress
	got, ok := AppendMsg(append([]byte(nil), prefix...), a)
	if ok != want {
		t.Fatalf("packed %v, want %v:\n%v", ok, want, m)
	}
	if !ok {
		if !bytes.Equal(got, prefix) {
			t.Fatalf("declined, and changed the buffer: %x", got)
		}
		return
	}
	exp, err := p.PackBuffer(make([]byte, 0, 512))
	if err != nil {
		t.Fatalf("PackBuffer: %v (AppendMsg packed it)", err)
	}
	if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], exp) {
		t.Fatalf("AppendMsg\n%x\nPackBuffer\n%x\n%v", got[len(prefix):], exp, m)
	}
	if a.String() != p.String() {
		t.Fatalf("the message after AppendMsg\n%v\nafter PackBuffer\n%v", a, p)
	}
}

func TestAppendMsgAsPackBuffer(t *testing.T) {
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61) + "."
	cases := []struct {
		name string
		m    *dns.Msg
	}{
		{"an A answer", reply(t, "www.example.", dns.TypeA, true, zonetest.RRs(t, "www.example. 300 IN A 192.0.2.1", "www.example. 300 IN A 192.0.2.2"), nil, nil)},
		{"uncompressed", reply(t, "www.example.", dns.TypeA, false, zonetest.RRs(t, "www.example. 300 IN A 192.0.2.1"), nil, withOpt(nil))},
		{"mixed case", reply(t, "WwW.ExAmple.", dns.TypeA, true, zonetest.RRs(t, "www.example. 300 IN A 192.0.2.1", "WwW.ExAmple. 300 IN A 192.0.2.2"), nil, nil)},
		{"a CNAME chain", reply(t, "a.example.", dns.TypeAAAA, true, zonetest.RRs(t, "a.example. 60 IN CNAME b.a.example.", "b.a.example. 60 IN CNAME c.other.test.", "c.other.test. 60 IN AAAA 2001:db8::1"), nil, withOpt(nil))},
		{"a referral with glue", reply(t, "www.gov.az.", dns.TypeA, true, nil,
			zonetest.RRs(t, "gov.az. 86400 IN NS ns1.gov.az.", "gov.az. 86400 IN NS ns2.gov.az.", "gov.az. 86400 IN NS ns.outside.test."),
			withOpt(zonetest.RRs(t, "ns1.gov.az. 86400 IN A 192.0.2.53", "ns1.gov.az. 86400 IN AAAA 2001:db8::53", "ns2.gov.az. 86400 IN A 192.0.2.54")))},
		{"NXDOMAIN with SOA", func() *dns.Msg {
			m := reply(t, "nope.example.", dns.TypeA, true, nil, zonetest.RRs(t, "example. 3600 IN SOA ns.example. hostmaster.example. 2026120501 7200 900 1209600 3600"), withOpt(nil))
			m.Rcode = dns.RcodeNameError
			return m
		}()},
		{"MX and PTR", reply(t, "example.", dns.TypeMX, true, zonetest.RRs(t, "example. 300 IN MX 10 mail.example.", "example. 300 IN MX 20 mail.other.", "1.2.0.192.in-addr.arpa. 300 IN PTR mail.example."), nil, nil)},
		{"an extended rcode", func() *dns.Msg {
			m := reply(t, "x.example.", dns.TypeA, true, nil, nil, withOpt(nil))
			m.Rcode = dns.RcodeBadCookie
			return m
		}()},
		{"cookie and local options", reply(t, "x.example.", dns.TypeA, true, nil, nil, withOpt(nil,
			&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708a1a2a3a4a5a6a7a8b1b2b3b4b5b6b7b8"},
			&dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1, 2, 3}}))},
		{"the root", reply(t, ".", dns.TypeNS, true, zonetest.RRs(t, ". 518400 IN NS a.root-servers.net.", ". 518400 IN NS b.root-servers.net."), nil, nil)},
		{"a name of 255 octets", reply(t, long, dns.TypeA, true, zonetest.RRs(t, long+" 1 IN A 192.0.2.1", long+" 1 IN CNAME x."+long[128:]), nil, nil)},
		{"no question", func() *dns.Msg {
			m := reply(t, "x.", dns.TypeA, true, nil, nil, withOpt(nil))
			m.Question = nil
			return m
		}()},
		{"every flag", func() *dns.Msg {
			m := reply(t, "x.example.", dns.TypeA, true, zonetest.RRs(t, "x.example. 1 IN A 192.0.2.1"), nil, nil)
			m.Authoritative, m.Truncated, m.Zero, m.AuthenticatedData, m.CheckingDisabled = true, true, true, true, true
			m.Opcode = dns.OpcodeNotify
			return m
		}()},
		{"empty data", func() *dns.Msg {
			m := reply(t, "x.example.", dns.TypeA, true, nil, nil, nil)
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "x.example.", Rrtype: dns.TypeA, Class: dns.ClassINET}},
				&dns.AAAA{Hdr: dns.RR_Header{Name: "x.example.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET}}}
			return m
		}()},
		{"an A record holding a 16-octet IPv4 address", func() *dns.Msg {
			m := reply(t, "x.example.", dns.TypeA, true, nil, nil, nil)
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "x.example.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.ParseIP("192.0.2.7")}}
			return m
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			samePack(t, c.m, nil, true)
			samePack(t, c.m, []byte("prefix"), true)
		})
	}
}

// What AppendMsg declines, PackBuffer packs (or refuses) as before.
func TestAppendMsgDeclines(t *testing.T) {
	cases := []struct {
		name string
		m    *dns.Msg
	}{
		{"a TXT record", reply(t, "x.example.", dns.TypeTXT, true, zonetest.RRs(t, `x.example. 1 IN TXT "v=spf1 -all"`), nil, nil)},
		{"an RRSIG", reply(t, "x.example.", dns.TypeA, true, zonetest.RRs(t, "x.example. 1 IN A 192.0.2.1",
			"x.example. 1 IN RRSIG A 13 2 1 20270101000000 20261201000000 12345 example. dGVzdA=="), nil, nil)},
		{"an escaped name", reply(t, `a\.b.example.`, dns.TypeA, true, zonetest.RRs(t, `a\.b.example. 1 IN A 192.0.2.1`), nil, nil)},
		{"an extended error option", reply(t, "x.example.", dns.TypeA, true, nil, nil, withOpt(nil, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeStaleAnswer}))},
		{"a name not fully qualified", func() *dns.Msg {
			m := reply(t, "x.example.", dns.TypeA, true, nil, nil, nil)
			m.Answer = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "x.example.", Rrtype: dns.TypeNS, Class: dns.ClassINET}, Ns: "ns.example"}}
			return m
		}()},
		{"two dots", func() *dns.Msg {
			m := reply(t, "x.example.", dns.TypeA, true, nil, nil, nil)
			m.Answer = []dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: "x.example.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: "a..example."}}
			return m
		}()},
		{"an IPv6 address in an A record", func() *dns.Msg {
			m := reply(t, "x.example.", dns.TypeA, true, nil, nil, nil)
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "x.example.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.ParseIP("2001:db8::1")}}
			return m
		}()},
		{"a bad cookie", reply(t, "x.example.", dns.TypeA, true, nil, nil, withOpt(nil, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "zz"}))},
		{"an extended rcode without OPT", func() *dns.Msg {
			m := reply(t, "x.example.", dns.TypeA, true, nil, nil, nil)
			m.Rcode = dns.RcodeBadCookie
			return m
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			samePack(t, c.m, []byte("prefix"), false)
		})
	}
}

// Many names: more than the table holds goes to PackBuffer; fewer, the
// same bytes.
func TestAppendMsgManyNames(t *testing.T) {
	for _, n := range []int{10, 40, 200} {
		m := reply(t, "example.", dns.TypeNS, true, nil, nil, nil)
		for i := range n {
			m.Answer = append(m.Answer, &dns.NS{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60},
				Ns: "ns" + strings.Repeat("x", i%7) + "." + string(rune('a'+i%26)) + ".test" + string(rune('a'+i/26)) + "."})
		}
		m2 := m.Copy()
		m2.Compress = true
		_, ok := AppendMsg(nil, m2)
		samePack(t, m, nil, ok)
		if n <= 40 && !ok {
			t.Fatalf("%d names declined", n)
		}
		if n == 200 && ok {
			t.Fatalf("%d names packed: the table holds %d", n, maxNames)
		}
	}
}

func TestAppendMsgAllocations(t *testing.T) {
	m := reply(t, "www.example.", dns.TypeA, true, zonetest.RRs(t, "www.example. 300 IN A 192.0.2.1", "www.example. 300 IN A 192.0.2.2"),
		zonetest.RRs(t, "example. 300 IN NS ns.example."), withOpt(zonetest.RRs(t, "ns.example. 300 IN A 192.0.2.53")))
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := AppendMsg(buf, m); !ok {
			t.Fatal("declined")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations, want 0", allocs)
	}
}

// FuzzAppendMsg: any message that dns.Msg.Unpack reads packs to the bytes
// PackBuffer gives, or is declined.
func FuzzAppendMsg(f *testing.F) {
	seeds := []*dns.Msg{
		reply(f, "www.example.", dns.TypeA, true, zonetest.RRs(f, "www.example. 300 IN A 192.0.2.1"), zonetest.RRs(f, "example. 300 IN NS ns.example."), withOpt(zonetest.RRs(f, "ns.example. 300 IN AAAA 2001:db8::53"))),
		reply(f, "a.example.", dns.TypeMX, true, zonetest.RRs(f, "a.example. 60 IN CNAME b.a.example.", "b.a.example. 60 IN MX 5 mx.b.a.example."), zonetest.RRs(f, "example. 3600 IN SOA ns.example. h.example. 1 2 3 4 5"), nil),
	}
	for _, m := range seeds {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, b []byte, compress bool) {
		m := new(dns.Msg)
		if m.Unpack(b) != nil {
			return
		}
		m.Compress = compress
		a, p := m.Copy(), m.Copy()
		a.Compress, p.Compress = compress, compress
		got, ok := AppendMsg([]byte{0xff}, a)
		if !ok {
			if len(got) != 1 {
				t.Fatalf("declined, and changed the buffer: %x", got)
			}
			return
		}
		exp, err := p.PackBuffer(make([]byte, 0, 512))
		if err != nil {
			t.Fatalf("PackBuffer: %v (AppendMsg packed it)", err)
		}
		if !bytes.Equal(got[1:], exp) {
			t.Fatalf("AppendMsg\n%x\nPackBuffer\n%x\n%v", got[1:], exp, m)
		}
	})
}
