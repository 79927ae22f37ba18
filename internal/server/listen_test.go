package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/internal/testaddr"
	"github.com/sovdns/sovdns/zone"
)

// TestPortZeroIsExclusive starts many servers on 127.0.0.1:0 at once,
// beside many SO_REUSEPORT sockets of the same user on kernel-picked ports
// (what other servers binding port 0 with SO_REUSEPORT hold): every server
// gets a port of its own, answers its own queries over UDP and TCP, and no
// SO_REUSEPORT socket can join its port afterwards.
func TestPortZeroIsExclusive(t *testing.T) {
	ctx := t.Context()
	// The neighbours. Linux's UDP autobind may hand a port-0 reuseport
	// socket one of these ports; with them around a server that bound port
	// 0 with SO_REUSEPORT would share a neighbour's port now and then.
	const neighbours = 1000
	held := map[int]bool{}
	rlc := net.ListenConfig{Control: reusePort}
	for range neighbours {
		pc, err := rlc.ListenPacket(ctx, "udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		held[pc.LocalAddr().(*net.UDPAddr).Port] = true
	}

	const servers = 16
	type running struct {
		s    *Server
		name string // the one name the server holds
		done chan error
	}
	runCtx, cancel := context.WithCancel(ctx)
	all := make([]*running, servers)
	for i := range all {
		name := fmt.Sprintf("s%02d.test.", i)
		z := mustZone(t, fmt.Sprintf("$ORIGIN %s\n@ 300 SOA ns h 1 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n@ 300 TXT %q\n", name, name), name)
		s := New(Config{Listen: []netip.AddrPort{loopback0}, UDPSockets: 4, ResponseCache: 1 << 20},
			slog.New(slog.DiscardHandler), metrics.New(prometheus.NewRegistry()))
		s.SetZones(zone.NewSet(z))
		all[i] = &running{s: s, name: name, done: make(chan error, 1)}
	}
	// All at once: the binds race each other.
	for _, r := range all {
		go func() { r.done <- r.s.Run(runCtx) }()
	}
	t.Cleanup(func() {
		cancel()
		for _, r := range all {
			select {
			case err := <-r.done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("a server did not stop within 10s")
			}
		}
	})

	ports := map[int]string{}
	for _, r := range all {
		deadline := time.Now().Add(10 * time.Second)
		for len(r.s.Addrs()) < 2 {
			select {
			case err := <-r.done:
				t.Fatalf("%s: Run returned before listening: %v", r.name, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not listening within 10s", r.name)
			}
			time.Sleep(5 * time.Millisecond)
		}
		a := r.s.Addrs()
		udp, tcp := a[0].(*net.UDPAddr), a[1].(*net.TCPAddr)
		if udp.Port != tcp.Port {
			t.Errorf("%s: UDP port %d, TCP port %d", r.name, udp.Port, tcp.Port)
		}
		if other, ok := ports[udp.Port]; ok {
			t.Errorf("%s and %s both on port %d", r.name, other, udp.Port)
		}
		ports[udp.Port] = r.name
		if held[udp.Port] {
			t.Errorf("%s on port %d, which a reuseport socket of this process holds", r.name, udp.Port)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, r := range all {
		port := r.s.Addrs()[0].(*net.UDPAddr).Port
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		tests := []struct {
			network string
			queries int
		}{
			{"udp", 8}, // each from a new source port: a shared port would spread them
			{"tcp", 2},
		}
		for _, tt := range tests {
			for range tt.queries {
				c := &dns.Client{Net: tt.network, Timeout: 5 * time.Second}
				resp, _, err := c.ExchangeContext(ctx, query(r.name, dns.TypeTXT), addr)
				if err != nil {
					t.Fatalf("%s TXT over %s to %s: %v", r.name, tt.network, addr, err)
				}
				if resp.Rcode != dns.RcodeSuccess || !resp.Authoritative || len(resp.Answer) != 1 ||
					resp.Answer[0].(*dns.TXT).Txt[0] != r.name {
					t.Fatalf("%s TXT over %s to %s: answered by another server?\n%v", r.name, tt.network, addr, resp)
				}
			}
		}
		// Nobody joins the port, not even with SO_REUSEPORT.
		for _, network := range []string{"udp", "tcp"} {
			var err error
			if network == "udp" {
				var pc net.PacketConn
				if pc, err = rlc.ListenPacket(ctx, network, addr); err == nil {
					pc.Close()
				}
			} else {
				var ln net.Listener
				if ln, err = rlc.Listen(ctx, network, addr); err == nil {
					ln.Close()
				}
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("%s: a reuseport %s socket bound to %s: %v; want EADDRINUSE", r.name, network, addr, err)
			}
		}
	}
}

// TestFixedPort: a fixed port is probed and then bound by the configured
// number of UDP sockets sharing it with SO_REUSEPORT (the production
// setup); the probe refuses a port that anything else holds.
func TestFixedPort(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name   string
		holder string // "": nothing holds the port; else the network of a socket that does
	}{
		{name: "free"},
		{name: "held for UDP", holder: "udp"},
		{name: "held for TCP", holder: "tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ap := testaddr.AddrPort(t)
			switch tt.holder {
			case "udp":
				pc, err := net.ListenPacket("udp", ap.String())
				if err != nil {
					t.Fatal(err)
				}
				defer pc.Close()
			case "tcp":
				ln, err := net.Listen("tcp", ap.String())
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
			}
			conns, ln, err := listenPair(ctx, ap, 3)
			if tt.holder != "" {
				if err == nil {
					ln.Close()
					for _, c := range conns {
						c.Close()
					}
					t.Fatalf("bound %s, which a %s socket holds", ap, tt.holder)
				}
				if !strings.Contains(err.Error(), "is another server running on it?") {
					t.Errorf("error %q does not suggest another server", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			for _, c := range conns {
				defer c.Close()
			}
			if len(conns) != 3 {
				t.Errorf("%d UDP sockets, want 3", len(conns))
			}
			for _, c := range conns {
				if got := c.LocalAddr().(*net.UDPAddr).AddrPort(); got != ap {
					t.Errorf("UDP socket on %s, want %s", got, ap)
				}
			}
			if got := ln.Addr().(*net.TCPAddr).AddrPort(); got != ap {
				t.Errorf("TCP listener on %s, want %s", got, ap)
			}
		})
	}
}
