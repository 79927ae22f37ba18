package resolver

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// sentQuery builds a query as queryKeep does, with a cookie as the jar
// prepares it when cookie is set.
func sentQuery(name string, qtype uint16, rd, cd, do bool, cookie bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0xbeef
	m.RecursionDesired = rd
	m.SetEdns0(1232, do)
	m.CheckingDisabled = cd
	if cookie {
		j := newCookieJar()
		j.prepare(m, netip.MustParseAddr("192.0.2.1"))
	}
	return m
}

func TestAppendQueryAsPack(t *testing.T) {
	long := strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 61) + "." // 255 octets
	withServer := sentQuery("example.", dns.TypeA, false, false, true, true)
	opt := withServer.IsEdns0()
	opt.Option[0].(*dns.EDNS0_LOCAL).Data = append(opt.Option[0].(*dns.EDNS0_LOCAL).Data, bytes.Repeat([]byte{7}, 32)...)
	noEDNS := new(dns.Msg)
	noEDNS.SetQuestion("example.org.", dns.TypeNS)
	twoOptions := sentQuery("a.example.", dns.TypeAAAA, true, true, true, true)
	twoOptions.IsEdns0().Option = append(twoOptions.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: 65001, Data: nil})
	flags := sentQuery("x.", dns.TypeTXT, true, true, false, false)
	flags.Opcode, flags.AuthenticatedData, flags.Zero, flags.Authoritative = dns.OpcodeNotify, true, true, true
	extRcode := sentQuery("x.", dns.TypeA, false, false, true, false)
	extRcode.IsEdns0().Hdr.Ttl |= 0x7f000000 // m.Pack clears the extended rcode of a query

	for _, tc := range []struct {
		name string
		m    *dns.Msg
	}{
		{"plain", sentQuery("h1.bench-tld.", dns.TypeA, false, false, true, false)},
		{"cookie", sentQuery("h1.bench-tld.", dns.TypeA, false, false, true, true)},
		{"server cookie", withServer},
		{"0x20", sentQuery("WwW.ExAmPlE.CoM.", dns.TypeA, false, false, true, true)},
		{"forwarder", sentQuery("example.com.", dns.TypeMX, true, true, true, true)},
		{"no DO", sentQuery("example.com.", dns.TypeDS, false, false, false, false)},
		{"root", sentQuery(".", dns.TypeNS, false, false, true, true)},
		{"escapes", sentQuery(`a\.b\032c\\d.\065\255x.`, dns.TypeA, false, false, true, false)},
		{"255 octets", sentQuery(long, dns.TypeA, false, false, true, true)},
		{"no EDNS", noEDNS},
		{"two options", twoOptions},
		{"flags", flags},
		{"extended rcode bits", extRcode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := appendQuery([]byte("prefix"), tc.m)
			if !ok {
				t.Fatal("not packed")
			}
			want, err := tc.m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[6:], want) {
				t.Fatalf("packed\n%x\nwant\n%x", got, want)
			}
		})
	}
}

// TestAppendQueryLeavesTheRest: what appendQuery does not pack, or cannot,
// is left to m.Pack, with b as it was.
func TestAppendQueryLeavesTheRest(t *testing.T) {
	two := sentQuery("a.", dns.TypeA, false, false, true, false)
	two.Question = append(two.Question, two.Question[0])
	answer := sentQuery("a.", dns.TypeA, false, false, true, false)
	answer.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "a.", Rrtype: dns.TypeA, Class: dns.ClassINET}}}
	hexCookie := sentQuery("a.", dns.TypeA, false, false, true, false)
	hexCookie.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}}
	notOPT := sentQuery("a.", dns.TypeA, false, false, false, false)
	notOPT.Extra = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "a.", Rrtype: dns.TypeTXT, Class: dns.ClassINET}}}
	rcode := sentQuery("a.", dns.TypeA, false, false, true, false)
	rcode.Rcode = dns.RcodeBadVers
	for _, tc := range []struct {
		name    string
		m       *dns.Msg
		packErr bool // m.Pack fails too
	}{
		{"two questions", two, false},
		{"an answer", answer, false},
		{"a hex cookie", hexCookie, false},
		{"not an OPT", notOPT, false},
		{"an rcode", rcode, false},
		{"not fully qualified", sentQuery("a.b", dns.TypeA, false, false, true, false), true},
		{"label of 64", sentQuery(strings.Repeat("a", 64)+".", dns.TypeA, false, false, true, false), true},
		// m.Pack packs a name longer than 255 octets; appendQuery leaves
		// it to m.Pack, so that it goes out as before.
		{"name of 257", sentQuery(strings.Repeat(strings.Repeat("a", 63)+".", 4), dns.TypeA, false, false, true, false), false},
		{"empty label", sentQuery("a..b.", dns.TypeA, false, false, true, false), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte("prefix")
			got, ok := appendQuery(b, tc.m)
			if ok {
				t.Fatalf("packed %x", got)
			}
			if string(got) != "prefix" {
				t.Fatalf("b changed: %q", got)
			}
			if _, err := tc.m.Pack(); (err != nil) != tc.packErr {
				t.Fatalf("m.Pack: %v", err)
			}
		})
	}
}

func TestAppendQueryAllocatesNothing(t *testing.T) {
	m := sentQuery("h12345.bench-tld.", dns.TypeA, false, false, true, true)
	buf := make([]byte, 0, queryRoom)
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := appendQuery(buf, m); !ok {
			t.Fatal("not packed")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per query, want 0", n)
	}
}

// FuzzAppendQuery: for any name, type and flags, appendQuery gives m.Pack's
// bytes, or leaves the query to m.Pack when that fails.
func FuzzAppendQuery(f *testing.F) {
	f.Add("h1.bench-tld.", uint16(dns.TypeA), uint16(0x0110), true, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(`\000.\..x\\.`, uint16(dns.TypeNS), uint16(0), false, []byte(nil))
	f.Add(".", uint16(0), uint16(0xffff), true, bytes.Repeat([]byte{9}, 40))
	f.Fuzz(func(t *testing.T, name string, qtype, bits uint16, edns bool, cookie []byte) {
		m := new(dns.Msg)
		m.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}
		m.Id = bits ^ 0x5a5a
		m.Opcode = int(bits>>11) & 0xf
		m.RecursionDesired, m.CheckingDisabled, m.AuthenticatedData = bits&1 != 0, bits&2 != 0, bits&4 != 0
		if edns {
			m.SetEdns0(uint16(bits|512), bits&8 != 0)
			if len(cookie) > 0 {
				m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_LOCAL{Code: dns.EDNS0COOKIE, Data: cookie}}
			}
		}
		got, ok := appendQuery(nil, m)
		want, err := m.Pack()
		if !ok {
			if err == nil && len(got) == 0 {
				// Left to m.Pack though it packs: only a name that
				// PackDomainName refuses on its own, or longer than 255
				// octets, may be.
				if n, perr := dns.PackDomainName(name, make([]byte, 2048), 0, nil, false); perr == nil && n <= 255 {
					t.Fatalf("not packed, though m.Pack packs %x", want)
				}
			}
			return
		}
		if err != nil {
			t.Fatalf("packed %x where m.Pack fails: %v", got, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("packed\n%x\nwant\n%x", got, want)
		}
	})
}

// TestNewUpstreamQuery: the query is the one SetQuestion and SetEdns0
// make, in one object with its cookie.
func TestNewUpstreamQuery(t *testing.T) {
	for _, do := range []bool{false, true} {
		m := newUpstreamQuery("WwW.example.", dns.TypeAAAA, 1232, do)
		m.RecursionDesired = false
		want := new(dns.Msg)
		want.SetQuestion("WwW.example.", dns.TypeAAAA)
		want.RecursionDesired = false
		want.SetEdns0(1232, do)
		want.Id = m.Id
		got, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		w, _ := want.Pack()
		if !bytes.Equal(got, w) {
			t.Fatalf("DO %v: packed\n%x\nwant\n%x", do, got, w)
		}
	}
	ids := map[uint16]bool{}
	for range 20 {
		ids[newUpstreamQuery("a.", dns.TypeA, 1232, true).Id] = true
	}
	if len(ids) < 15 {
		t.Fatalf("%d IDs in 20 queries", len(ids))
	}
	j := newCookieJar()
	a := netip.MustParseAddr("192.0.2.1")
	j.prepare(newUpstreamQuery("a.", dns.TypeA, 1232, true), a) // the server's entry
	if n := testing.AllocsPerRun(100, func() {
		m := newUpstreamQuery("h1.bench-tld.", dns.TypeA, 1232, true)
		j.prepare(m, a)
		if len(m.IsEdns0().Option) != 1 {
			t.Fatal("no cookie")
		}
	}); n != 1 {
		t.Fatalf("%v allocations for a query and its cookie, want 1", n)
	}
}
