package resolver

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkNetExchangeUDP is one upstream query over UDP to a responder on
// loopback that answers every query at once: a fresh random-port socket,
// the send, the wait in the poller, the read and its checks, the close.
func BenchmarkNetExchangeUDP(b *testing.B) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var q dns.Msg
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			r := new(dns.Msg)
			r.SetReply(&q)
			r.Authoritative = true
			r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(10, 0, 0, 1)}}
			if o := q.IsEdns0(); o != nil {
				r.SetEdns0(1232, o.Do())
			}
			out, _ := r.Pack()
			pc.WriteTo(out, addr)
		}
	}()
	server := netip.MustParseAddrPort(pc.LocalAddr().String())
	x := NewNetExchanger(ExchangeConfig{})
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	m.SetEdns0(1232, true)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if _, _, err := x.Exchange(ctx, m, server, false); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}
