package test

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// withEDNS adds an OPT record to m.
func withEDNS(m *dns.Msg, size uint16, do bool) *dns.Msg {
	m.SetEdns0(size, do)
	return m
}

// TestTruncation asks for an RRset of about 3 kB: over UDP it does not fit
// 512 bytes (no EDNS, or EDNS 512) nor the server's 1232, so it comes back
// with TC; over TCP it comes whole.
func TestTruncation(t *testing.T) {
	t.Parallel()
	s := zoneServer(t, "")
	tests := []struct {
		name    string
		network string
		msg     *dns.Msg
		maxSize int // the response must fit this; 0: no TC expected
	}{
		{name: "UDP without EDNS", network: "udp", msg: newQuery("big.example.com.", dns.TypeTXT), maxSize: 512},
		{name: "UDP EDNS 512", network: "udp", msg: withEDNS(newQuery("big.example.com.", dns.TypeTXT), 512, false), maxSize: 512},
		{name: "UDP EDNS 4096 above our 1232", network: "udp", msg: withEDNS(newQuery("big.example.com.", dns.TypeTXT), 4096, false), maxSize: 1232},
		{name: "UDP EDNS 4096 DO", network: "udp", msg: withEDNS(newQuery("big.example.com.", dns.TypeTXT), 4096, true), maxSize: 1232},
		{name: "TCP", network: "tcp", msg: newQuery("big.example.com.", dns.TypeTXT)},
		{name: "TCP EDNS 512", network: "tcp", msg: withEDNS(newQuery("big.example.com.", dns.TypeTXT), 512, false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r *dns.Msg
			var size int
			if tt.network == "udp" {
				r, size = exchangeUDPSize(t, s.dns, tt.msg)
			} else {
				r = exchange(t, tt.network, s.dns, tt.msg)
			}
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
				t.Fatalf("rcode %s AA %v\n%v", dns.RcodeToString[r.Rcode], r.Authoritative, r)
			}
			if tt.maxSize == 0 {
				if r.Truncated || len(r.Answer) != 30 {
					t.Errorf("TC %v with %d answers; want all 30 records", r.Truncated, len(r.Answer))
				}
				return
			}
			if !r.Truncated {
				t.Errorf("TC clear with %d answers (%d bytes); want TC", len(r.Answer), size)
			}
			if size > tt.maxSize {
				t.Errorf("response of %d bytes; the limit is %d", size, tt.maxSize)
			}
			if len(r.Answer) >= 30 {
				t.Errorf("a truncated response holds all %d records", len(r.Answer))
			}
			if (tt.msg.IsEdns0() != nil) != (r.IsEdns0() != nil) {
				t.Errorf("query EDNS %v, response EDNS %v: the OPT must be echoed, truncated or not", tt.msg.IsEdns0() != nil, r.IsEdns0() != nil)
			}
		})
	}
}

func TestEDNS(t *testing.T) {
	t.Parallel()
	plain := zoneServer(t, "")
	ident := zoneServer(t, "identity:\n  nsid: e2e-node-1\n  version: sovdns-e2e\n  id: e2e.example\n")

	t.Run("OPT echoed", func(t *testing.T) {
		r := exchange(t, "udp", plain.dns, withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, true))
		opt := r.IsEdns0()
		if opt == nil || opt.Version() != 0 || !opt.Do() || opt.UDPSize() != 1232 {
			t.Errorf("OPT %v; want version 0, DO echoed, size 1232", opt)
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("%v", r)
		}
	})
	t.Run("BADVERS", func(t *testing.T) {
		q := withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false)
		q.IsEdns0().SetVersion(1)
		for _, network := range []string{"udp", "tcp"} {
			r := exchange(t, network, plain.dns, q)
			if r.Rcode != dns.RcodeBadVers {
				t.Errorf("%s: rcode %s; want BADVERS", network, dns.RcodeToString[r.Rcode])
			}
			if opt := r.IsEdns0(); opt == nil || opt.Version() != 0 {
				t.Errorf("%s: OPT %v; want one of version 0", network, opt)
			}
			if len(r.Answer) != 0 {
				t.Errorf("%s: BADVERS with answers: %v", network, r.Answer)
			}
		}
	})
	nsidQuery := func() *dns.Msg {
		q := withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false)
		opt := q.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		return q
	}
	t.Run("NSID configured", func(t *testing.T) {
		r := exchange(t, "udp", ident.dns, nsidQuery())
		var got []string
		for _, o := range r.IsEdns0().Option {
			if n, ok := o.(*dns.EDNS0_NSID); ok {
				got = append(got, n.Nsid)
			}
		}
		if want := hex.EncodeToString([]byte("e2e-node-1")); !slices.Equal(got, []string{want}) {
			t.Errorf("NSID options %q; want [%q]", got, want)
		}
	})
	t.Run("NSID not configured", func(t *testing.T) {
		r := exchange(t, "udp", plain.dns, nsidQuery())
		for _, o := range r.IsEdns0().Option {
			if _, ok := o.(*dns.EDNS0_NSID); ok {
				t.Errorf("NSID %v sent, none configured", o)
			}
		}
	})
	chaos := func(name string) *dns.Msg {
		q := newQuery(name, dns.TypeTXT)
		q.Question[0].Qclass = dns.ClassCHAOS
		return q
	}
	t.Run("version.bind refused by default", func(t *testing.T) {
		for _, name := range []string{"version.bind.", "version.server.", "id.server.", "hostname.bind."} {
			r := exchange(t, "udp", plain.dns, chaos(name))
			if r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
				t.Errorf("CH TXT %s: rcode %s, %d answers; want REFUSED", name, dns.RcodeToString[r.Rcode], len(r.Answer))
			}
		}
	})
	t.Run("version.bind configured", func(t *testing.T) {
		for name, want := range map[string]string{"version.bind.": "sovdns-e2e", "VERSION.SERVER.": "sovdns-e2e", "id.server.": "e2e.example"} {
			r := exchange(t, "udp", ident.dns, chaos(name))
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Fatalf("CH TXT %s: %v", name, r)
			}
			txt, ok := r.Answer[0].(*dns.TXT)
			if !ok || txt.Hdr.Class != dns.ClassCHAOS || !slices.Equal(txt.Txt, []string{want}) || txt.Hdr.Name != name {
				t.Errorf("CH TXT %s: answer %v; want %s CH TXT %q", name, r.Answer[0], name, want)
			}
		}
	})
	t.Run("other class refused", func(t *testing.T) {
		q := newQuery("www.example.com.", dns.TypeA)
		q.Question[0].Qclass = dns.ClassHESIOD
		if r := exchange(t, "udp", plain.dns, q); r.Rcode != dns.RcodeRefused {
			t.Errorf("class HS: rcode %s; want REFUSED", dns.RcodeToString[r.Rcode])
		}
	})
}

func TestProtocolErrors(t *testing.T) {
	t.Parallel()
	s := zoneServer(t, "")

	t.Run("FORMERR on a malformed packet", func(t *testing.T) {
		// A header announcing one question, then half a name.
		pkt := []byte{0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'w', 'w', 7, 'e', 'x', 'a'}
		resp := rawUDP(t, s.dns, pkt)
		if len(resp) < 12 {
			t.Fatalf("response of %d bytes", len(resp))
		}
		if id := binary.BigEndian.Uint16(resp); id != 0xbeef {
			t.Errorf("ID %#x; want 0xbeef", id)
		}
		if resp[2]&0x80 == 0 {
			t.Error("QR clear")
		}
		if resp[2]&0x01 == 0 {
			t.Error("RD not copied")
		}
		if rcode := resp[3] & 0x0f; rcode != dns.RcodeFormatError {
			t.Errorf("rcode %s; want FORMERR", dns.RcodeToString[int(rcode)])
		}
	})
	t.Run("response packets are dropped", func(t *testing.T) {
		q := newQuery("www.example.com.", dns.TypeA)
		q.Response = true
		wire, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("udp", s.dns)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(wire); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 512)
		if n, err := c.Read(buf); err == nil {
			t.Errorf("a response (QR set) was answered with %d bytes; it must be dropped", n)
		}
	})
	// STATUS is not implemented; a NOTIFY for a zone that is no secondary
	// here is NOTAUTH (RFC 1996 leaves it to the server), and an UPDATE
	// nobody is allowed (the default) REFUSED.
	for name, tt := range map[string]struct{ opcode, rcode int }{
		"STATUS": {dns.OpcodeStatus, dns.RcodeNotImplemented},
		"NOTIFY": {dns.OpcodeNotify, dns.RcodeNotAuth},
		"UPDATE": {dns.OpcodeUpdate, dns.RcodeRefused},
	} {
		t.Run("opcode "+name, func(t *testing.T) {
			q := newQuery("example.com.", dns.TypeSOA)
			q.Opcode = tt.opcode
			r := exchange(t, "udp", s.dns, q)
			if r.Rcode != tt.rcode || r.Opcode != tt.opcode || len(r.Answer) != 0 {
				t.Errorf("rcode %s opcode %d; want %s with the opcode echoed\n%v", dns.RcodeToString[r.Rcode], r.Opcode, dns.RcodeToString[tt.rcode], r)
			}
		})
	}
	t.Run("REFUSED out of zone", func(t *testing.T) {
		for _, name := range []string{"www.example.net.", "com.", "."} {
			r := exchange(t, "udp", s.dns, newQuery(name, dns.TypeA))
			if r.Rcode != dns.RcodeRefused || r.Authoritative || len(r.Answer)+len(r.Ns) != 0 {
				t.Errorf("%s: rcode %s AA %v; want REFUSED, no data\n%v", name, dns.RcodeToString[r.Rcode], r.Authoritative, r)
			}
		}
	})
	t.Run("zone transfer refused", func(t *testing.T) {
		r := exchange(t, "tcp", s.dns, newQuery("example.com.", dns.TypeAXFR))
		if r.Rcode != dns.RcodeRefused {
			t.Errorf("AXFR: rcode %s; want REFUSED", dns.RcodeToString[r.Rcode])
		}
	})
}

// exchangeUDPSize sends m over UDP and returns the response and its size
// on the wire.
func exchangeUDPSize(t *testing.T, addr string, m *dns.Msg) (*dns.Msg, int) {
	t.Helper()
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	resp := rawUDP(t, addr, wire)
	r := new(dns.Msg)
	if err := r.Unpack(resp); err != nil {
		t.Fatalf("unpack a response of %d bytes: %v", len(resp), err)
	}
	if r.Id != m.Id {
		t.Fatalf("response ID %d, query ID %d", r.Id, m.Id)
	}
	return r, len(resp)
}

// rawUDP sends pkt to addr and returns the reply.
func rawUDP(t *testing.T, addr string, pkt []byte) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(queryTimeout))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no reply to the raw packet: %v", err)
	}
	return buf[:n]
}

func TestTCP(t *testing.T) {
	t.Parallel()
	s := zoneServer(t, "tcp:\n  idle_timeout: 1s\n")

	t.Run("pipelining", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", s.dns, queryTimeout)
		if err != nil {
			t.Fatal(err)
		}
		co := &dns.Conn{Conn: conn}
		defer co.Close()
		_ = co.SetDeadline(time.Now().Add(5 * time.Second))
		names := []string{"www.example.com.", "mail.example.com.", "ns1.example.com.", "nope.example.com.", "x.wild.example.com.", "big.example.com."}
		sent := map[uint16]string{}
		// Every query is written before any response is read.
		for i, name := range names {
			qtype := dns.TypeA
			if name == "big.example.com." {
				qtype = dns.TypeTXT
			}
			q := newQuery(name, qtype)
			q.Id = uint16(1000 + i)
			if err := co.WriteMsg(q); err != nil {
				t.Fatalf("write query %d: %v", i, err)
			}
			sent[q.Id] = name
		}
		for range names {
			r, err := co.ReadMsg()
			if err != nil {
				t.Fatalf("read: %v (answered %d of %d)", err, len(names)-len(sent), len(names))
			}
			name, ok := sent[r.Id]
			if !ok {
				t.Fatalf("response with unknown or repeated ID %d", r.Id)
			}
			delete(sent, r.Id)
			if len(r.Question) != 1 || r.Question[0].Name != name {
				t.Errorf("ID %d: question %v; want %s", r.Id, r.Question, name)
			}
			wantRcode := dns.RcodeSuccess
			if name == "nope.example.com." {
				wantRcode = dns.RcodeNameError
			}
			if r.Rcode != wantRcode || (wantRcode == dns.RcodeSuccess && len(r.Answer) == 0) || r.Truncated {
				t.Errorf("%s: %v", name, r)
			}
		}
	})

	t.Run("idle timeout", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", s.dns, queryTimeout)
		if err != nil {
			t.Fatal(err)
		}
		co := &dns.Conn{Conn: conn}
		defer co.Close()
		_ = co.SetDeadline(time.Now().Add(8 * time.Second))
		if err := co.WriteMsg(newQuery("www.example.com.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
		if _, err := co.ReadMsg(); err != nil {
			t.Fatalf("first response: %v", err)
		}
		idle := time.Now()
		_, err = co.ReadMsg()
		elapsed := time.Since(idle)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("the connection was still open after %v; idle_timeout is 1s", elapsed)
		case err == nil:
			t.Fatal("an unasked response arrived")
		case !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset"):
			t.Logf("connection ended with %v", err)
		}
		if elapsed < 700*time.Millisecond || elapsed > 4*time.Second {
			t.Errorf("closed after %v idle; want about 1s", elapsed)
		}
	})
}
