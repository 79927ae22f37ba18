package testaddr

import (
	"net"
	"net/netip"
	"testing"
)

// TestDistinct: addresses and blocks are never handed out twice, stay in
// 127.0.0.0/8 outside 127.0.0.0/16, and blocks do not overlap the single
// addresses.
func TestDistinct(t *testing.T) {
	loop := netip.MustParsePrefix("127.0.0.0/8")
	fixed := netip.MustParsePrefix("127.0.0.0/16")
	seen := map[netip.Addr]bool{}
	for range 10000 {
		ip := IP()
		if seen[ip] || !loop.Contains(ip) || fixed.Contains(ip) || ip.As4()[3] == 0 || ip.As4()[3] == 255 {
			t.Fatalf("IP() = %v (seen before: %v)", ip, seen[ip])
		}
		seen[ip] = true
	}
	blocks := map[netip.Addr]bool{}
	for range 1000 {
		b := NewBlock()
		first := b.IP(0)
		if blocks[first] || !loop.Contains(first) || fixed.Contains(first) {
			t.Fatalf("NewBlock() = %v (seen before: %v)", first, blocks[first])
		}
		blocks[first] = true
		for host := range 256 {
			if ip := b.IP(byte(host)); seen[ip] {
				t.Fatalf("block %v holds %v, handed out alone", first, ip)
			}
		}
	}
}

func TestRewrite(t *testing.T) {
	b := Block{a: 200, b: 7}
	tests := []struct{ in, want string }{
		{"ns A 127.0.0.2\n", "ns A 127.200.7.2\n"},
		{"a 127.0.0.10 b 127.0.0.54", "a 127.200.7.10 b 127.200.7.54"},
		{"no address", "no address"},
	}
	for _, tt := range tests {
		if got := b.Rewrite(tt.in); got != tt.want {
			t.Errorf("Rewrite(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestPort: the port is below the ephemeral range and free on every
// address given.
func TestPort(t *testing.T) {
	ips := []netip.Addr{IP(), IP(), NewBlock().IP(2)}
	port := Port(t, ips...)
	if lo, hi := portRange(); int(port) < lo || int(port) >= hi {
		t.Errorf("port %d outside [%d, %d)", port, lo, hi)
	}
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip, port).String()
		pc, err := net.ListenPacket("udp", ap)
		if err != nil {
			t.Fatalf("udp %s: %v", ap, err)
		}
		ln, err := net.Listen("tcp", ap)
		if err != nil {
			t.Fatalf("tcp %s: %v", ap, err)
		}
		pc.Close()
		ln.Close()
	}
}
