package server

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/zone"
)

func newTestHandler(t testing.TB, cfg Config) *Server {
	s := New(cfg, slog.New(slog.DiscardHandler), metrics.New(prometheus.NewRegistry()))
	s.SetZones(zone.NewSet(bigTXTZone(t)))
	return s
}

func seedQueries() [][]byte {
	var out [][]byte
	add := func(m *dns.Msg) {
		b, err := m.Pack()
		if err == nil {
			out = append(out, b)
		}
	}
	for _, n := range []string{"www.example.gov.", "alias.example.gov.", "x.sub.example.gov.", "nope.example.gov.", "big.example.gov.", "example.org."} {
		for _, t := range []uint16{dns.TypeA, dns.TypeTXT, dns.TypeANY, dns.TypeNS, dns.TypeAXFR} {
			add(query(n, t))
			m := query(n, t)
			m.SetEdns0(1232, true)
			add(m)
		}
	}
	m := query("www.example.gov.", dns.TypeA)
	m.SetEdns0(512, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
		&dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	add(m)
	out = append(out, []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1}) // pointer loop
	out = append(out, []byte{0, 1, 0x28, 0, 0, 1, 0, 0, 0, 0, 0, 0})                      // UPDATE header only
	return out
}

// FuzzRespond feeds arbitrary bytes to the query path: it must never panic,
// and whatever it answers must be a well-formed message with the query's ID.
func FuzzRespond(f *testing.F) {
	for _, s := range seedQueries() {
		f.Add(s, false)
		f.Add(s, true)
	}
	s := newTestHandler(f, Config{ResponseCache: 1 << 20})
	src := netip.MustParseAddrPort("127.0.0.1:53000")
	f.Fuzz(func(t *testing.T, in []byte, overTCP bool) {
		transport := udp
		if overTCP {
			transport = tcp
		}
		out := make([]byte, 0, 4096)
		resp := s.respond(in, out, src, nil, transport)
		if testutil.ToFloat64(s.m.Panics) != 0 {
			t.Fatalf("query handling panicked on %x", in)
		}
		if resp == nil {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(resp); err != nil {
			t.Fatalf("response to %x does not parse: %v", in, err)
		}
		if len(in) >= 2 && m.Id != uint16(in[0])<<8|uint16(in[1]) {
			t.Fatalf("response ID %d does not match the query", m.Id)
		}
		if !m.Response {
			t.Fatal("QR not set")
		}
		if transport == udp && len(resp) > int(s.cfg.EDNSSize) {
			t.Fatalf("UDP response of %d bytes exceeds %d", len(resp), s.cfg.EDNSSize)
		}
	})
}

func benchRespond(b *testing.B, cacheBytes int64, m *dns.Msg) {
	s := newTestHandler(b, Config{ResponseCache: cacheBytes})
	in, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 0, 4096)
	src := netip.MustParseAddrPort("127.0.0.1:53000")
	s.respond(in, out, src, nil, udp)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if s.respond(in, out, src, nil, udp) == nil {
			b.Fatal("no response")
		}
	}
}

// BenchmarkRespond measures the per-query work after the socket read: the
// cached path and the full path (parse, look up, build, pack).
func BenchmarkRespond(b *testing.B) {
	cases := []struct {
		name string
		msg  *dns.Msg
	}{
		{"exact", query("www.example.gov.", dns.TypeA)},
		{"cname", query("alias.example.gov.", dns.TypeA)},
		{"nxdomain", query("nope.example.gov.", dns.TypeA)},
		{"referral", query("x.sub.example.gov.", dns.TypeA)},
	}
	for _, tc := range cases {
		b.Run("cached/"+tc.name, func(b *testing.B) { benchRespond(b, 1<<20, tc.msg) })
		b.Run("full/"+tc.name, func(b *testing.B) { benchRespond(b, -1, tc.msg) })
	}
}
