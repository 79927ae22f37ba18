package cli

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/internal/hostile"
	"github.com/sovdns/sovdns/internal/parentds"
	"github.com/sovdns/sovdns/internal/testaddr"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zonestore"
)

// parentServer is a parent zone's name server on loopback that publishes
// a settable DS RRset for example.'s child zones.
type parentServer struct {
	srv *hostile.Server
	mu  sync.Mutex
	ds  []dns.RR
	n   atomic.Int64 // DS questions answered
}

func startParent(t *testing.T) *parentServer {
	t.Helper()
	p := &parentServer{}
	srv, err := hostile.Listen(t.Context(), testaddr.AddrPort(t), func(_ context.Context, w *hostile.Writer, q *hostile.Query) {
		if q.Msg == nil {
			return
		}
		r := new(dns.Msg)
		r.SetReply(q.Msg)
		r.Authoritative = true
		p.mu.Lock()
		r.Answer = append(r.Answer, p.ds...)
		p.mu.Unlock()
		if len(r.Answer) == 0 {
			soa, _ := dns.NewRR(". 300 IN SOA a.root. h.root. 1 7200 900 1209600 300")
			r.Ns = []dns.RR{soa}
		}
		p.n.Add(1)
		_ = w.Msg(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	p.srv = srv
	return p
}

// publish makes the server publish the DS of the zone's keys with the
// given tags (TTL 3600).
func (p *parentServer) publish(t *testing.T, st *zonestore.Store, tags ...uint16) {
	t.Helper()
	all, err := st.DS("example.", dns.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ds = nil
	for _, ds := range all {
		for _, tag := range tags {
			if ds.KeyTag == tag {
				ds.Hdr.Ttl = 3600
				p.ds = append(p.ds, ds)
			}
		}
	}
}

// TestMaintainAsksParent: a CSK rollover that waits for the parent is
// taken by signing maintenance alone, as the parent's servers (real
// sockets on loopback) publish the new DS and withdraw the old one; until
// then --continue is refused.
func TestMaintainAsksParent(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().Add(-12 * time.Hour).Unix())
	pol := dnssec.DefaultPolicy()
	st := signedStore(t, &now, pol)
	ns1, ns2 := startParent(t), startParent(t)
	pol.ParentServers = []string{ns1.srv.Addr().String(), ns2.srv.Addr().String()}
	if _, err := st.EnableDNSSEC("example.", pol); err != nil {
		t.Fatal(err)
	}
	ds, _ := st.DS("example.", dns.SHA256)
	oldTag := ds[0].KeyTag
	ns1.publish(t, st, oldTag)
	ns2.publish(t, st, oldTag)
	if _, _, err := st.Rollover("example.", dnssec.RoleKSK, false); err != nil {
		t.Fatal(err)
	}
	ds, _ = st.DS("example.", dns.SHA256)
	newTag := ds[0].KeyTag + ds[1].KeyTag - oldTag

	checker := &parentds.Checker{Timeout: 2 * time.Second, Now: func() time.Time { return time.Unix(now.Load(), 0) }}
	m := newSignerMetrics(prometheus.NewRegistry(), nil)
	run := func() {
		t.Helper()
		asked := ns1.n.Load()
		maintainOnce(t.Context(), st, checker, m, slog.New(slog.DiscardHandler))
		if ns1.n.Load() == asked {
			t.Fatal("the maintenance did not ask the parent")
		}
	}
	state := func(tag uint16) dnssec.State {
		s, err := st.DNSSEC("example.")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range s.Keys {
			if k.Tag == tag {
				return k.State
			}
		}
		return "deleted"
	}
	local := func() (string, error) {
		msg, _, err := control.Local{Store: st, Parent: checker}.Rollover(t.Context(), "example.", dnssec.RoleKSK, true, false)
		return msg, err
	}

	now.Add(7200)
	ns1.publish(t, st, oldTag, newTag)
	run()
	if state(newTag) != dnssec.StateDSPending {
		t.Fatalf("new CSK %s with its DS at one parent server of two", state(newTag))
	}
	if _, err := local(); err == nil || !strings.Contains(err.Error(), "1 of 2 servers lacks it ("+ns2.srv.Addr().String()+")") {
		t.Errorf("--continue with the DS missing at %s: %v", ns2.srv.Addr(), err)
	}
	if got := testutil.ToFloat64(m.rollover.WithLabelValues("example.", "csk", rolloverWaitParent)); got == 0 {
		t.Error("no rollover series waiting for the parent")
	}
	s, _ := st.DNSSEC("example.")
	if s.Parent == nil || len(s.Parent.Servers) != 2 || len(s.Steps) != 1 || !strings.Contains(s.Steps[0], "lacks it") {
		t.Errorf("status: parent %+v, steps %q", s.Parent, s.Steps)
	}

	ns2.publish(t, st, oldTag, newTag)
	run()
	if state(newTag) != dnssec.StateDSPending {
		t.Fatal("the keys were swapped before the DS TTL had passed")
	}
	now.Add(3600 + int64(pol.PropagationDelay.D().Seconds()))
	run()
	if state(newTag) != dnssec.StateActive || state(oldTag) != dnssec.StateRetired {
		t.Fatalf("after the DS TTL: new %s, old %s; want the swap", state(newTag), state(oldTag))
	}

	// The old CSK stays until every parent server has withdrawn its DS
	// and its signatures have left caches.
	ns1.publish(t, st, newTag)
	now.Add(3600 + int64(pol.PropagationDelay.D().Seconds()))
	run()
	if state(oldTag) != dnssec.StateRetired {
		t.Fatal("old CSK deleted while a parent server still publishes its DS")
	}
	ns2.publish(t, st, newTag)
	run()
	if state(oldTag) != "deleted" {
		t.Fatalf("old CSK %s after the parent withdrew its DS", state(oldTag))
	}
	if got := testutil.CollectAndCount(m.rollover); got != 0 {
		t.Errorf("%d rollover series after the rollover", got)
	}
}

// TestParentFoundThroughResolver: with no parent servers configured and
// the parent zone not held here, the node's resolver finds the parent
// zone and its servers (the loopback hierarchy of the audit tests), and
// the parent server, asked without recursion, is seen to publish no DS
// for good.az.; a parent zone held in the store is read instead.
func TestParentFoundThroughResolver(t *testing.T) {
	ln := loopbackAuthority(t)
	rec := resolver.New(resolver.Config{RootHints: ln.hints(t), UpstreamPort: uint16(ln.port), QueryLoopback: true, NoIPv6: true,
		Island: resolver.IslandConfig{Disabled: true}},
		resolver.NewNetExchanger(resolver.ExchangeConfig{}), resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20}), nil, nil)
	var now atomic.Int64
	now.Store(time.Now().Unix())
	st := signedStore(t, &now, dnssec.DefaultPolicy())
	c := parentChecker(st, rec, uint16(ln.port))
	c.Timeout = 2 * time.Second

	v := c.Check(t.Context(), "good.az.", nil)
	want := netip.AddrPortFrom(ln.block.IP(2), uint16(ln.port)).String()
	if v.Err != "" || v.Parent != "az." || len(v.Servers) != 1 || v.Servers[0].Server != want || v.Servers[0].Err != "" || !v.NoDS() {
		t.Fatalf("view %+v, want az.'s server %s with no DS", v, want)
	}
	// Under a name that does not exist the closest zone is the root,
	// which has no DS for it.
	if v = c.Check(t.Context(), "nothing.nowhere.", nil); v.Parent != "." || !v.NoDS() {
		t.Errorf("a child of a name that does not exist: %+v", v)
	}

	// example. is held here: its child's DS is read from it.
	child, _ := st.DS("example.", dns.SHA256)
	importText(t, st, "sub.example.", "$ORIGIN sub.example.\n@ 3600 SOA ns hm 1 7200 900 1209600 300\n@ 3600 NS ns\nns 3600 A 192.0.2.1\n")
	if v = c.Check(t.Context(), "sub.example.", nil); v.Parent != "example." || len(v.Servers) != 1 || !v.NoDS() {
		t.Errorf("local parent without the DS: %+v", v)
	}
	ds := *child[0]
	ds.Hdr.Name = "sub.example."
	if _, err := st.Update("example.", zonestore.Change{Add: []dns.RR{&ds, mustRRText(t, "sub.example. 3600 IN NS ns.sub.example.")}}); err != nil {
		t.Fatal(err)
	}
	if v = c.Check(t.Context(), "sub.example.", nil); v.NoDS() || len(v.Servers) != 1 || len(v.Servers[0].DS) != 1 {
		t.Errorf("local parent with the DS: %+v", v)
	}
}

func mustRRText(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// TestMaintainAsksEveryParent: one run asks the parents of every zone that
// waits for them, and a parent that never answers holds up only its own
// zone's view.
func TestMaintainAsksEveryParent(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().Unix())
	st := signedStore(t, &now, dnssec.DefaultPolicy())
	importText(t, st, "other.", "$ORIGIN other.\n@ 3600 SOA ns hm 1 7200 900 1209600 300\n@ 3600 NS ns\nns 3600 A 192.0.2.1\n")
	ns := startParent(t)
	silent, err := net.ListenPacket("udp", testaddr.AddrPort(t).String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for origin, server := range map[string]string{"example.": ns.srv.Addr().String(), "other.": silent.LocalAddr().String()} {
		pol := dnssec.DefaultPolicy()
		pol.ParentServers = []string{server}
		if _, err := st.EnableDNSSEC(origin, pol); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.Rollover(origin, dnssec.RoleKSK, false); err != nil {
			t.Fatal(err)
		}
	}
	checker := &parentds.Checker{Timeout: 500 * time.Millisecond}
	maintainOnce(t.Context(), st, checker, newSignerMetrics(prometheus.NewRegistry(), nil), slog.New(slog.DiscardHandler))
	if ns.n.Load() == 0 {
		t.Fatal("the answering parent was not asked")
	}
	for origin, wantErr := range map[string]bool{"example.": false, "other.": true} {
		s, err := st.DNSSEC(origin)
		if err != nil || s.Parent == nil || len(s.Parent.Servers) != 1 || (s.Parent.Servers[0].Err != "") != wantErr {
			t.Errorf("%s: parent view %+v (%v), want an error: %v", origin, s.Parent, err, wantErr)
		}
	}
}
