package parentds_test

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/parentds"
	"github.com/sovdns/sovdns/internal/testaddr"
)

// fakeServer is a name server on a loopback address of its own, over UDP
// and TCP, answering from a table of records; it counts the questions.
type fakeServer struct {
	addr netip.AddrPort
	mu   sync.Mutex
	rrs  []dns.RR // answers, by owner and type
	aa   bool
	tc   bool // truncate UDP answers
	asks int
}

func startFake(t *testing.T, aa bool, rrs ...string) *fakeServer {
	t.Helper()
	f := &fakeServer{aa: aa}
	for _, s := range rrs {
		f.rrs = append(f.rrs, mustRR(s))
	}
	ip := testaddr.IP()
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	f.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	ln, err := net.Listen("tcp", f.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: f}, {Listener: ln, Handler: f}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return f
}

func (f *fakeServer) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asks++
	r := new(dns.Msg)
	r.SetReply(q)
	r.Authoritative = f.aa
	qq := q.Question[0]
	for _, rr := range f.rrs {
		if strings.EqualFold(rr.Header().Name, qq.Name) && rr.Header().Rrtype == qq.Qtype {
			r.Answer = append(r.Answer, rr)
		}
	}
	if len(r.Answer) == 0 {
		r.Ns = []dns.RR{mustRR("example. 300 IN SOA ns1.example. h.example. 1 7200 900 1209600 120")}
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp && f.tc && len(r.Answer) > 0 {
		r.Answer, r.Truncated = nil, true
	}
	_ = w.WriteMsg(r)
}

func (f *fakeServer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asks
}

func (f *fakeServer) set(rrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rrs = nil
	for _, s := range rrs {
		f.rrs = append(f.rrs, mustRR(s))
	}
}

// testKey is a CSK of child.example. and its DS.
func testKey(t *testing.T) (*dnssec.Key, string) {
	t.Helper()
	k, err := dnssec.GenerateKey("child.example.", dnssec.DefaultPolicy(), dnssec.RoleCSK, dnssec.StateDSPending, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ds := k.DS()
	ds.Hdr.Ttl = 3600
	return k, ds.String()
}

// TestCheckServers asks configured servers: one publishes the DS, one
// does not (NODATA: its negative TTL counts), one answers without AA, one
// only over TCP, one not at all.
func TestCheckServers(t *testing.T) {
	k, ds := testKey(t)
	has := startFake(t, true, ds)
	lacks := startFake(t, true)
	lame := startFake(t, false, ds)
	tcp := startFake(t, true, ds)
	tcp.mu.Lock()
	tcp.tc = true
	tcp.mu.Unlock()
	silent, err := net.ListenPacket("udp", netip.AddrPortFrom(testaddr.IP(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	c := &parentds.Checker{Timeout: 300 * time.Millisecond}
	v := c.Check(t.Context(), "child.example", []string{has.addr.String(), tcp.addr.String()})
	if !v.Publishes(k) || v.Withdrawn(k) || v.TTL() != time.Hour {
		t.Errorf("both servers publish the DS: view %+v, publishes %v, TTL %s", v, v.Publishes(k), v.TTL())
	}
	if n := tcp.count(); n != 2 {
		t.Errorf("the truncating server was asked %d times, want UDP then TCP", n)
	}

	v = c.Check(t.Context(), "child.example.", []string{has.addr.String(), lacks.addr.String()})
	if v.Publishes(k) || v.Withdrawn(k) || v.Servers[1].Err != "" || v.Servers[1].TTL != 120 {
		t.Errorf("one server lacks the DS: %+v", v)
	}
	if d := v.Describe(k, false); !strings.Contains(d, "1 of 2 servers lacks it ("+lacks.addr.String()+")") {
		t.Errorf("Describe = %q", d)
	}
	if v = c.Check(t.Context(), "child.example.", []string{lacks.addr.String()}); !v.Withdrawn(k) {
		t.Errorf("the only server lacks the DS, yet not withdrawn: %+v", v)
	}

	for _, bad := range []string{lame.addr.String(), silent.LocalAddr().String()} {
		v = c.Check(t.Context(), "child.example.", []string{has.addr.String(), bad})
		if v.Publishes(k) || v.Withdrawn(k) || v.Servers[1].Err == "" {
			t.Errorf("server %s: %+v, want an error and neither published nor withdrawn", bad, v)
		}
	}
	if v = c.Check(t.Context(), "child.example.", []string{"not-an-address"}); v.Err == "" || v.Publishes(k) {
		t.Errorf("bad server address: %+v", v)
	}
}

// TestCheckFindsParent finds the parent zone and its servers through a
// resolver, then asks each server (not the resolver) for the DS.
func TestCheckFindsParent(t *testing.T) {
	k, ds := testKey(t)
	ns1 := startFake(t, true, ds)
	resolver := startFake(t, false,
		"example. 300 IN SOA ns1.example. h.example. 1 7200 900 1209600 120",
		"example. 300 IN NS ns1.example.",
		"ns1.example. 300 IN A "+ns1.addr.Addr().String(),
		ds, // a resolver answers DS too: it must not be asked for it
	)
	c := &parentds.Checker{Lookup: parentds.StubAt([]netip.AddrPort{resolver.addr}, time.Second), Port: ns1.addr.Port(), Timeout: time.Second}
	v := c.Check(t.Context(), "child.example.", nil)
	if v.Err != "" || v.Parent != "example." || len(v.Servers) != 1 || v.Servers[0].Server != ns1.addr.String() || !v.Publishes(k) {
		t.Fatalf("view %+v", v)
	}
	if ns1.count() == 0 {
		t.Error("the parent server was not asked")
	}
	ns1.set()
	if v = c.Check(t.Context(), "child.example.", nil); !v.Withdrawn(k) {
		t.Errorf("DS withdrawn at the only parent server: %+v", v)
	}

	// A resolver that knows no parent zone.
	empty := startFake(t, false)
	empty.set()
	c.Lookup = parentds.StubAt([]netip.AddrPort{empty.addr}, time.Second)
	if v = c.Check(t.Context(), "child.other.", nil); v.Err == "" {
		t.Errorf("no parent found, yet no error: %+v", v)
	}

	// The store holds the parent: it is read, nothing is asked.
	asked := resolver.count()
	c.Lookup = parentds.StubAt([]netip.AddrPort{resolver.addr}, time.Second)
	c.Local = func(origin string) (string, dnssec.ParentServer, bool) {
		return "example.", dnssec.ParentServer{Server: "zone example. held here", DS: []*dns.DS{mustRR(ds).(*dns.DS)}, TTL: 3600}, true
	}
	if v = c.Check(t.Context(), "child.example.", nil); !v.Publishes(k) || resolver.count() != asked {
		t.Errorf("local parent: %+v, resolver asked %d times", v, resolver.count()-asked)
	}
}

func mustRR(s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}
