package hostile

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testZone = `$ORIGIN example.test.
@        NS     ns1
@        NS     ns.other.test.
ns1      A      127.0.0.2
www      A      192.0.2.1
alias    CNAME  www
out      CNAME  www.elsewhere.test.
*.wild   TXT    "wild"
a.b.ent  A      192.0.2.7
sub      NS     ns.sub
sub      NS     ns1
ns.sub   A      127.0.0.3
`

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, false)
	return m
}

func rrs(section []dns.RR) []string {
	var out []string
	for _, rr := range section {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, strings.Join(strings.Fields(rr.String()), " "))
		}
	}
	slices.Sort(out)
	return out
}

func TestHostileZoneAnswer(t *testing.T) {
	z, err := NewZone("example.test.", testZone)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		aa     bool
		answer []string
		ns     []string
		extra  []string
	}{
		{name: "answer", qname: "www.example.test.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"www.example.test. 3600 IN A 192.0.2.1"}},
		{name: "case is ignored", qname: "WwW.Example.TEST.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"www.example.test. 3600 IN A 192.0.2.1"}},
		{name: "CNAME followed in the zone", qname: "alias.example.test.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"alias.example.test. 3600 IN CNAME www.example.test.", "www.example.test. 3600 IN A 192.0.2.1"}},
		{name: "CNAME out of the zone", qname: "out.example.test.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"out.example.test. 3600 IN CNAME www.elsewhere.test."}},
		{name: "wildcard", qname: "x.wild.example.test.", qtype: dns.TypeTXT, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"x.wild.example.test. 3600 IN TXT \"wild\""}},
		{name: "empty non-terminal", qname: "b.ent.example.test.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			ns: []string{"example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300"}},
		{name: "NODATA", qname: "www.example.test.", qtype: dns.TypeAAAA, rcode: dns.RcodeSuccess, aa: true,
			ns: []string{"example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300"}},
		{name: "NXDOMAIN", qname: "nope.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			ns: []string{"example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300"}},
		{name: "referral with glue", qname: "a.b.sub.example.test.", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			ns:    []string{"sub.example.test. 3600 IN NS ns.sub.example.test.", "sub.example.test. 3600 IN NS ns1.example.test."},
			extra: []string{"ns.sub.example.test. 3600 IN A 127.0.0.3", "ns1.example.test. 3600 IN A 127.0.0.2"}},
		{name: "DS at the cut from the parent side", qname: "sub.example.test.", qtype: dns.TypeDS, rcode: dns.RcodeSuccess, aa: true,
			ns: []string{"example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300"}},
		{name: "outside the zone", qname: "www.other.test.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := z.Answer(query(tt.qname, tt.qtype))
			if m.Rcode != tt.rcode || m.Authoritative != tt.aa {
				t.Errorf("rcode %s AA %v, want %s AA %v", dns.RcodeToString[m.Rcode], m.Authoritative, dns.RcodeToString[tt.rcode], tt.aa)
			}
			for _, s := range []struct {
				name      string
				got, want []string
			}{{"answer", rrs(m.Answer), tt.answer}, {"authority", rrs(m.Ns), tt.ns}, {"additional", rrs(m.Extra), tt.extra}} {
				want := slices.Clone(s.want)
				slices.Sort(want)
				if !slices.Equal(s.got, want) {
					t.Errorf("%s:\n got %q\nwant %q", s.name, s.got, want)
				}
			}
		})
	}
	root, err := NewZone(".", "@ NS a.root.test.\ntest. NS ns.test.\nns.test. A 127.0.0.3\n")
	if err != nil {
		t.Fatal(err)
	}
	if m := root.Answer(query("www.example.test.", dns.TypeA)); len(m.Ns) != 1 || len(m.Extra) != 2 {
		t.Errorf("root referral: %v", m)
	}
	if m := root.Answer(query("nope.", dns.TypeA)); m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
		t.Errorf("root NXDOMAIN: %v", m)
	}
	if _, err := NewZone("example.test.", "www.other.test. A 192.0.2.1"); err == nil {
		t.Error("a record outside the zone was accepted")
	}
}

func TestHostileMalform(t *testing.T) {
	reply := new(dns.Msg)
	reply.SetReply(query("www.example.test.", dns.TypeA))
	reply.Answer = []dns.RR{MustRR("www.example.test. 300 IN A 192.0.2.1")}
	reply.SetEdns0(1232, false)
	good, err := reply.Pack()
	if err != nil {
		t.Fatal(err)
	}
	count := func(b []byte, typ uint16, class uint16) (n int) {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatalf("unpack: %v", err)
		}
		for _, rr := range slices.Concat(m.Answer, m.Ns, m.Extra) {
			if rr.Header().Rrtype == typ && (class == 0 || rr.Header().Class == class) {
				n++
			}
		}
		return n
	}
	for _, k := range Malformations {
		t.Run(k.String(), func(t *testing.T) {
			b, err := Malform(reply, k)
			if err != nil {
				t.Fatal(err)
			}
			switch k {
			case CountMismatch:
				// miekg/dns is lenient: the records present unpack.
				m := new(dns.Msg)
				if ancount := binary.BigEndian.Uint16(b[6:]); m.Unpack(b) != nil || int(ancount) != len(m.Answer)+1 {
					t.Errorf("ANCOUNT %d with %d answer records", ancount, len(m.Answer))
				}
			case OPTInAnswer:
				m := new(dns.Msg)
				if err := m.Unpack(b); err != nil || m.Answer[len(m.Answer)-1].Header().Rrtype != dns.TypeOPT {
					t.Errorf("no OPT in the answer section (%v)", err)
				}
			case TwoOPT:
				if n := count(b, dns.TypeOPT, 0); n != 2 {
					t.Errorf("%d OPT records", n)
				}
			case TSIGNotLast:
				m := new(dns.Msg)
				if err := m.Unpack(b); err != nil || len(m.Extra) < 2 || m.Extra[0].Header().Rrtype != dns.TypeTSIG {
					t.Errorf("no TSIG before another record (%v): %v", err, m.Extra)
				}
			case TrailingBytes:
				if len(b) != len(good)+4 || !bytes.Equal(b[:len(good)], good) {
					t.Errorf("%d bytes, want %d", len(b), len(good)+4)
				}
			case WrongClass:
				if n := count(b, dns.TypeA, dns.ClassCHAOS); n != 1 {
					t.Errorf("%d CH records", n)
				}
			}
		})
	}
	if len(reply.Extra) != 1 || len(reply.Answer) != 1 {
		t.Errorf("Malform changed its argument: %v", reply)
	}
}

// newLab starts a lab on hosts 2 and 3 that the test closes.
func newLab(t *testing.T) *Lab {
	t.Helper()
	l, err := NewLab(t.Context(), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func TestHostileServer(t *testing.T) {
	l := newLab(t)
	z, err := l.Zone("example.test.", testZone)
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Serve(2, Serve(z))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(t.Context(), netip.MustParseAddrPort("192.0.2.1:53"), Serve(z)); err == nil {
		t.Error("a server listened on a non-loopback address")
	}
	addr := s.Addr().String()
	var ids []uint16
	for _, network := range []string{"udp", "tcp", "udp"} {
		q := query("www.example.test.", dns.TypeA)
		ids = append(ids, q.Id)
		r, _, err := (&dns.Client{Net: network}).Exchange(q, addr)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) != 1 || !r.Authoritative {
			t.Fatalf("%s: %v", network, r)
		}
	}
	q := query("sub.example.test.", dns.TypeNS)
	r, err := dns.Exchange(q, addr)
	if err != nil {
		t.Fatal(err)
	}
	if want := l.IP(3).String(); len(r.Extra) < 2 || !strings.Contains(r.String(), want) {
		t.Errorf("glue not moved into the lab's block (%s): %v", want, r)
	}
	if st := s.Stats(); st != (Stats{Total: 4, UDP: 3, TCP: 1}) {
		t.Errorf("stats %+v", st)
	}
	if n := s.Count("WWW.example.test"); n != 3 {
		t.Errorf("Count(www) = %d, want 3", n)
	}
	if n := s.CountUnder("example.test."); n != 4 {
		t.Errorf("CountUnder(example.test.) = %d, want 4", n)
	}
	log := s.Log()
	if len(log) != 4 {
		t.Fatalf("%d queries logged", len(log))
	}
	for i, id := range ids {
		if log[i].ID != id || log[i].From.Port() == 0 || log[i].TCP != (i == 1) {
			t.Errorf("log[%d] = %+v, want ID %d, a source port, TCP %v", i, log[i], id, i == 1)
		}
	}
}

func TestHostileFloodAndStall(t *testing.T) {
	l := newLab(t)
	const n = 50
	s, err := l.Serve(2, func(ctx context.Context, w *Writer, q *Query) {
		switch q.Name() {
		case "flood.test.":
			forged := new(dns.Msg)
			forged.SetReply(q.Msg)
			forged.Answer = []dns.RR{MustRR("flood.test. 300 IN A 192.0.2.66")}
			genuine := new(dns.Msg)
			genuine.SetReply(q.Msg)
			genuine.Answer = []dns.RR{MustRR("flood.test. 300 IN A 192.0.2.1")}
			_ = Flood(ctx, w, q, n, forged, genuine, 20*time.Millisecond)
		case "stall.test.":
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := query("flood.test.", dns.TypeA)
	b, _ := q.Pack()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65535)
	wrong := 0
	for {
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d forged replies: %v", wrong, err)
		}
		if binary.BigEndian.Uint16(buf) != q.Id {
			wrong++
			continue
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:k]); err != nil || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
			t.Fatalf("genuine reply: %v %v", m, err)
		}
		break
	}
	if wrong != n {
		t.Errorf("%d forged replies before the genuine one, want %d", wrong, n)
	}

	b, _ = query("stall.test.", dns.TypeA).Pack()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(buf); err == nil {
		t.Error("the stalling server answered")
	}
}

func TestHostileTrickle(t *testing.T) {
	l := newLab(t)
	const every = 20 * time.Millisecond
	s, err := l.Serve(2, func(ctx context.Context, w *Writer, q *Query) {
		m := new(dns.Msg)
		m.SetReply(q.Msg)
		if !q.TCP {
			m.Truncated = true
			_ = w.Msg(m)
			if err := w.Trickle(ctx, m, every); !errors.Is(err, ErrNotTCP) {
				t.Errorf("Trickle over UDP: %v", err)
			}
			return
		}
		_ = w.Trickle(ctx, m, every)
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := dns.Exchange(query("t.test.", dns.TypeA), s.Addr().String())
	if err != nil || !r.Truncated {
		t.Fatalf("UDP: %v %v", r, err)
	}
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := query("t.test.", dns.TypeA).Pack()
	if _, err := c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(b)))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var l2 [2]byte
	if _, err := io.ReadFull(c, l2[:]); err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, binary.BigEndian.Uint16(l2[:]))
	if _, err := io.ReadFull(c, msg); err != nil {
		t.Fatal(err)
	}
	if el, min := time.Since(start), time.Duration(len(msg))*every; el < min {
		t.Errorf("%d bytes in %v; a byte every %v takes at least %v", len(msg)+2, el, every, min)
	}
	if err := new(dns.Msg).Unpack(msg); err != nil {
		t.Errorf("trickled message: %v", err)
	}
}

func TestHostileNXNS(t *testing.T) {
	l := newLab(t)
	z, err := l.Zone("attack.test.", "$ORIGIN attack.test.\n@ NS ns\nns A 127.0.0.2\n")
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Serve(2, NXNS(z, "victim.test", 5))
	if err != nil {
		t.Fatal(err)
	}
	r, err := dns.Exchange(query("q1.attack.test.", dns.TypeA), s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"q1.attack.test. 3600 IN NS n1-q1.victim.test.", "q1.attack.test. 3600 IN NS n2-q1.victim.test.",
		"q1.attack.test. 3600 IN NS n3-q1.victim.test.", "q1.attack.test. 3600 IN NS n4-q1.victim.test.", "q1.attack.test. 3600 IN NS n5-q1.victim.test."}
	if got := rrs(r.Ns); len(r.Answer) != 0 || len(rrs(r.Extra)) != 0 || !slices.Equal(got, want) {
		t.Errorf("referral: %v", r)
	}
	if r, err := dns.Exchange(query("ns.attack.test.", dns.TypeA), s.Addr().String()); err != nil || len(r.Answer) != 1 {
		t.Errorf("the zone's own name: %v %v", r, err)
	}
}
