package server

import (
	"log/slog"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/resolver"
)

// TestSockaddrAddrPort reads the addresses recvmmsg gives: a link-local
// IPv6 client keeps its interface's index as its zone.
func TestSockaddrAddrPort(t *testing.T) {
	v4 := func(a [4]byte, port uint16) unix.RawSockaddrInet6 {
		var sa unix.RawSockaddrInet6
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		in.Family, in.Addr = unix.AF_INET, a
		p := (*[2]byte)(unsafe.Pointer(&in.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		return sa
	}
	v6 := func(a string, port uint16, scope uint32) unix.RawSockaddrInet6 {
		sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: netip.MustParseAddr(a).As16(), Scope_id: scope}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		return sa
	}
	for _, tc := range []struct {
		name string
		sa   unix.RawSockaddrInet6
		want string
	}{
		{"ipv4", v4([4]byte{192, 0, 2, 1}, 5353), "192.0.2.1:5353"},
		{"ipv6", v6("2001:db8::1", 53, 0), "[2001:db8::1]:53"},
		{"v4-mapped", v6("::ffff:192.0.2.7", 53, 0), "192.0.2.7:53"},
		{"link-local", v6("fe80::1", 1053, 3), "[fe80::1%3]:1053"},
		{"unknown family", unix.RawSockaddrInet6{Family: unix.AF_UNIX}, "invalid AddrPort"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sockaddrAddrPort(&tc.sa).String(); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestUDPOutScope: the raw sendto takes a zone given as an interface's
// index, and leaves one given by name to the net package.
func TestUDPOutScope(t *testing.T) {
	for _, tc := range []struct {
		addr  string
		v6    bool
		ok    bool
		scope uint32
	}{
		{"fe80::1%3", true, true, 3},
		{"2001:db8::1", true, true, 0},
		{"fe80::1%eth0", true, false, 0},
		{"fe80::1%3", false, false, 0},
		{"192.0.2.1", false, true, 0},
	} {
		var o udpOut
		ok := o.to(netip.MustParseAddr(tc.addr), 53, tc.v6)
		if ok != tc.ok {
			t.Errorf("%s (IPv6 socket %v): %v, want %v", tc.addr, tc.v6, ok, tc.ok)
			continue
		}
		if ok && tc.v6 {
			if sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&o.sa)); sa.Scope_id != tc.scope {
				t.Errorf("%s: scope %d, want %d", tc.addr, sa.Scope_id, tc.scope)
			}
		}
	}
}

// TestZonedClientRecursion: a link-local client in the networks allowed
// recursion is allowed it, whatever its zone, and the answer is for it.
func TestZonedClientRecursion(t *testing.T) {
	a, _ := dns.NewRR("www.example.com. 300 IN A 192.0.2.1")
	rec := &countingRecursor{res: resolver.Result{Answer: []dns.RR{a}}}
	s := New(Config{Resolver: rec, RecursionAllow: []netip.Prefix{netip.MustParsePrefix("fe80::/10")}},
		slog.New(slog.DiscardHandler), metrics.New(prometheus.NewRegistry()))
	for _, src := range []string{"[fe80::1%3]:5353", "[fe80::1%lo]:5353", "[fe80::1]:5353"} {
		q := new(dns.Msg)
		q.SetQuestion("www.example.com.", dns.TypeA)
		in, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		wire := s.respond(in, make([]byte, 0, 512), netip.MustParseAddrPort(src), nil, tcp)
		r := new(dns.Msg)
		if err := r.Unpack(wire); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if r.Rcode != dns.RcodeSuccess || !r.RecursionAvailable || len(r.Answer) != 1 {
			t.Errorf("%s: %s, RA %v, %d answers; want the resolver's answer", src, dns.RcodeToString[r.Rcode], r.RecursionAvailable, len(r.Answer))
		}
	}
	if n := rec.resolves.Load() + rec.cached.Load() + rec.hits.Load(); n != 3 {
		t.Errorf("%d answers from the resolver, want 3", n)
	}
}
