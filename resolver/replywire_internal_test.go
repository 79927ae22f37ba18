package resolver

import (
	"reflect"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// replies returns upstream messages of the kinds a resolver gets, packed
// with compression as servers send them.
func replies(t testing.TB) [][]byte {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	var out [][]byte
	add := func(m *dns.Msg, compress bool) {
		m.Compress = compress
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	q := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Id = 0x1234
		m.Response, m.Authoritative = true, true
		return m
	}

	m := q("h1.bench-tld.", dns.TypeA) // the benchmark's answer
	m.Answer = []dns.RR{rr("h1.bench-tld. 86400 IN A 10.0.0.1")}
	m.Ns = []dns.RR{rr("bench-tld. 86400 IN NS a.root.test.")}
	m.Extra = []dns.RR{rr("a.root.test. 86400 IN A 127.0.0.2")}
	m.SetEdns0(1232, true)
	add(m, true)
	add(m, false)

	m = q("www.Example.COM.", dns.TypeA) // a referral with glue of both families
	m.Authoritative = false
	m.Ns = []dns.RR{rr("example.com. 172800 IN NS ns1.example.com."), rr("example.com. 172800 IN NS ns2.example.net.")}
	m.Extra = []dns.RR{rr("ns1.example.com. 172800 IN A 192.0.2.1"), rr("ns1.example.com. 172800 IN AAAA 2001:db8::1")}
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	opt.SetUDPSize(1232)
	opt.Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708a1a2a3a4a5a6a7a8"}}
	m.Extra = append(m.Extra, opt)
	add(m, true)

	m = q("nx.example.", dns.TypeAAAA) // NXDOMAIN, signed
	m.Rcode = dns.RcodeNameError
	m.Ns = []dns.RR{
		rr("example. 3600 IN SOA ns.example. hostmaster.example. 2026120501 7200 900 1209600 300"),
		rr("example. 3600 IN RRSIG SOA 13 1 3600 20270101000000 20261201000000 12345 example. dGVzdA=="),
		rr("example. 300 IN NSEC a.example. NS SOA RRSIG NSEC DNSKEY"),
	}
	add(m, true)

	m = q("www.example.", dns.TypeA) // a CNAME chain
	m.Answer = []dns.RR{rr("www.example. 300 IN CNAME web.example."), rr("web.example. 300 IN CNAME host.cdn.example."), rr("host.cdn.example. 60 IN A 198.51.100.7")}
	add(m, true)

	m = q(`a\.b\032c\\d.\065\255x.example.`, dns.TypeTXT) // escapes
	m.Answer = []dns.RR{rr(`a\.b\032c\\d.\065\255x.example. 60 IN TXT "x"`), rr(`a\.b\032c\\d.\065\255x.example. 60 IN CNAME q\;\(\).example.`)}
	add(m, true)

	m = q("example.", dns.TypeNS) // no data; upper-case owners; an extended rcode
	m.Ns = []dns.RR{rr("EXAMPLE. 60 IN SOA NS.example. h. 1 2 3 4 5")}
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetExtendedRcode(dns.RcodeBadVers)
	m.Extra = []dns.RR{o}
	add(m, true)

	m = q("e.", dns.TypeA) // records without data
	m.Answer = []dns.RR{
		&dns.A{Hdr: dns.RR_Header{Name: "e.", Rrtype: dns.TypeA, Class: dns.ClassINET}},
		&dns.NS{Hdr: dns.RR_Header{Name: "e.", Rrtype: dns.TypeNS, Class: dns.ClassINET}},
		&dns.AAAA{Hdr: dns.RR_Header{Name: "e.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET}},
	}
	add(m, false)

	long := strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 61) + "." // 255 octets
	m = q(long, dns.TypeA)
	m.Answer = []dns.RR{rr(long + " 60 IN CNAME " + long)}
	add(m, true)

	m = q(".", dns.TypeNS) // the root
	m.Answer = []dns.RR{rr(". 518400 IN NS a.root-servers.net."), rr(". 518400 IN NS b.root-servers.net.")}
	m.Extra = []dns.RR{rr("a.root-servers.net. 518400 IN A 198.41.0.4"), rr("b.root-servers.net. 518400 IN AAAA 2001:500:200::b")}
	add(m, true)

	m = q("x.", dns.TypeA) // header only, no question
	m.Question = nil
	m.Rcode = dns.RcodeRefused
	add(m, false)
	return out
}

// TestUnpackReplyAsUnpack: unpackReply gives what m.Unpack gives, for
// each message and for each message cut anywhere or with a byte changed;
// when it declines, parseReply's m.Unpack takes the message.
func TestUnpackReplyAsUnpack(t *testing.T) {
	for i, b := range replies(t) {
		if _, ok := unpackReply(b); !ok && len(b) > 12 {
			t.Errorf("message %d: not parsed", i)
		}
		checkUnpackReply(t, b)
		for n := range len(b) {
			checkUnpackReply(t, b[:n])
		}
		for j := range len(b) {
			for _, x := range []byte{0, 1, 0x3f, 0xc0, 0xff, b[j] ^ 0x20} {
				c := append([]byte(nil), b...)
				c[j] = x
				checkUnpackReply(t, c)
			}
		}
	}
}

func checkUnpackReply(t *testing.T, b []byte) {
	t.Helper()
	got, ok := unpackReply(b)
	want := new(dns.Msg)
	err := want.Unpack(b)
	if !ok {
		if got != nil {
			t.Fatalf("%x: declined, with a message", b)
		}
		return
	}
	if err != nil {
		t.Fatalf("%x: parsed where m.Unpack fails: %v\n%v", b, err, got)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%x: parsed\n%v\nwant\n%v", b, got, want)
	}
}

func TestUnpackReplyAllocations(t *testing.T) {
	b := replies(t)[0] // the benchmark's answer: A, NS, glue A, OPT
	ours := testing.AllocsPerRun(200, func() {
		if _, ok := unpackReply(b); !ok {
			t.Fatal("not parsed")
		}
	})
	theirs := testing.AllocsPerRun(200, func() {
		if err := new(dns.Msg).Unpack(b); err != nil {
			t.Fatal(err)
		}
	})
	// The message, its question and records' slices, two names (the
	// question's and the server's), an array each of A and NS records,
	// the address block, and the OPT record.
	if ours > 9 {
		t.Fatalf("%v allocations, want at most 9 (m.Unpack: %v)", ours, theirs)
	}
	t.Logf("%v allocations; m.Unpack %v", ours, theirs)
}

// FuzzUnpackReply: whatever checkWire lets through, unpackReply parses as
// m.Unpack does, or leaves to it.
func FuzzUnpackReply(f *testing.F) {
	for _, b := range replies(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkUnpackReply(t, b)
		if checkWire(b) == nil {
			if _, ok := unpackReply(b); !ok {
				want := new(dns.Msg)
				if want.Unpack(b) == nil && len(b) > 12 {
					// Declining is safe, not wrong; what it declines
					// is then parsed by m.Unpack.
					t.Logf("declined a message m.Unpack parses: %x", b)
				}
			}
		}
	})
}
