package resolver

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The exchange's own sockets reach servers over IPv6, and over IPv4 when
// given an IPv4-mapped address; each query comes from a port of the
// ephemeral range.
func TestExchangeSocketFamilies(t *testing.T) {
	for _, tc := range []struct {
		name, listen string
		server       func(netip.AddrPort) netip.AddrPort
	}{
		{"IPv6", "[::1]:0", func(a netip.AddrPort) netip.AddrPort { return a }},
		{"IPv4-mapped", "127.0.0.1:0", func(a netip.AddrPort) netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tc.listen)))
			if err != nil {
				t.Skipf("no %s loopback: %v", tc.name, err)
			}
			defer conn.Close()
			src := make(chan netip.AddrPort, 1)
			go func() {
				buf := make([]byte, 512)
				n, from, err := conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				src <- from
				q := new(dns.Msg)
				if q.Unpack(buf[:n]) != nil {
					return
				}
				conn.WriteToUDPAddrPort(answer(t, q, nil), from)
			}()
			x := NewNetExchanger(ExchangeConfig{})
			server := tc.server(conn.LocalAddr().(*net.UDPAddr).AddrPort())
			r, rtt, err := x.Exchange(exchangeCtx(t), query("www.example."), server, false)
			if err != nil || len(r.Answer) != 1 || rtt <= 0 || rtt > time.Minute {
				t.Fatalf("got %v, %v, %v; want the answer", r, rtt, err)
			}
			from := <-src
			if lo, n := ephemeralPorts(); int(from.Port()) < lo || int(from.Port()) >= lo+n {
				t.Errorf("query from port %d, outside the ephemeral range %d-%d", from.Port(), lo, lo+n-1)
			}
		})
	}
}
