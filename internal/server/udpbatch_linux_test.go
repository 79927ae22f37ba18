//go:build linux

package server

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestUDPBatchAllocatesNothing checks that a batch's receive and send, the
// loop every UDP query and answer goes through, make no heap object: a
// node answering from its caches would otherwise collect garbage every
// few seconds for its socket calls alone.
func TestUDPBatchAllocatesNothing(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	rc, err := srv.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	to := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	from := cli.LocalAddr().(*net.UDPAddr).AddrPort()
	b := newUDPBatch()
	query := []byte("a query of some bytes")
	reply := make([]byte, 64)
	round := func() {
		if _, err := cli.WriteToUDPAddrPort(query, to); err != nil {
			t.Fatal(err)
		}
		n, err := b.recv(rc)
		if err != nil || n != 1 || int(b.in[0].Len) != len(query) {
			t.Fatalf("recv: %d datagrams (first %d bytes), %v; want 1 of %d", n, b.in[0].Len, err, len(query))
		}
		if src := sockaddrAddrPort(&b.names[0]); src != from {
			t.Fatalf("datagram from %v, want %v", src, from)
		}
		out := append(b.outBufs[0][:0], b.bufs[0][:b.in[0].Len]...)
		b.outIov[0].Base = &out[0]
		b.outIov[0].SetLen(len(out))
		b.out[0].Hdr.Name = b.in[0].Hdr.Name
		b.out[0].Hdr.Namelen = b.in[0].Hdr.Namelen
		if failed, err := b.send(rc, 1); err != nil || failed != 0 {
			t.Fatalf("send: %d failed, %v", failed, err)
		}
		cli.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, addr, err := cli.ReadFromUDPAddrPort(reply)
		if err != nil || string(reply[:n]) != string(query) || addr != netip.AddrPortFrom(to.Addr(), to.Port()) {
			t.Fatalf("reply %q from %v, %v; want the query echoed from %v", reply[:n], addr, err, to)
		}
	}
	round() // the poller's registration and the first deadline are set up once
	if a := testing.AllocsPerRun(200, round); a != 0 {
		t.Errorf("%.1f allocations per query and answer, want 0", a)
	}
}
