//go:build linux

package server

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sovdns/sovdns/internal/testaddr"
)

// TestUDPSocketSendTo: a worker's answer goes out through the raw sendto
// to the question's source, from the listener's address, on IPv4 and IPv6
// sockets, and without an allocation.
func TestUDPSocketSendTo(t *testing.T) {
	for _, tc := range []struct {
		name string
		ip   netip.Addr
		v6   bool
	}{
		{"ipv4", testaddr.IP(), false},
		{"ipv6", netip.IPv6Loopback(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			listen := func() *net.UDPConn {
				c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tc.ip, 0)))
				if err != nil {
					t.Skipf("no %s loopback: %v", tc.name, err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			srv, client := listen(), listen()
			sock := newUDPSocket(srv)
			if sock.sys.rc == nil || sock.sys.v6 != tc.v6 {
				t.Fatalf("socket seen as raw %v, IPv6 %v; want raw, IPv6 %v", sock.sys.rc != nil, sock.sys.v6, tc.v6)
			}
			j := &udpResolution{conn: sock, dst: client.LocalAddr().(*net.UDPAddr).AddrPort()}
			if err := j.sendTo([]byte("answer")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := client.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}
			if string(buf[:n]) != "answer" || from.Port() != srv.LocalAddr().(*net.UDPAddr).AddrPort().Port() {
				t.Fatalf("read %q from %v, want %q from %v", buf[:n], from, "answer", srv.LocalAddr())
			}
			answer := []byte("answer")
			allocs := testing.AllocsPerRun(100, func() {
				if err := j.sendTo(answer); err != nil {
					t.Fatal(err)
				}
				if _, _, err := client.ReadFromUDPAddrPort(buf); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > 0 {
				t.Errorf("%.1f allocations a send and read, want none", allocs)
			}
		})
	}
}

// TestUDPSocketSendToFallsBack: a destination the raw sendto does not
// take (IPv6 on an IPv4 socket) is refused with an error, not sent nor
// dropped silently.
func TestUDPSocketSendToFallsBack(t *testing.T) {
	srv, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(testaddr.IP(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	j := &udpResolution{conn: newUDPSocket(srv), dst: netip.AddrPortFrom(netip.IPv6Loopback(), 53)}
	if err := j.sendTo([]byte("answer")); err == nil {
		t.Fatal("an IPv6 destination from an IPv4 socket: no error")
	}
}
