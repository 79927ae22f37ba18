package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// Tests of what makes replication interoperate with other servers as they
// are usually configured: the source addresses of NOTIFYs, SOA queries and
// transfers (notify_source, transfer_source), NOTIFY over TCP when UDP
// gets no answer, allow_notify, checks and transfers on request, and
// checks before expiry.

// listenBoth listens on ip, UDP and TCP on one port the system picks
// (never one in use: no SO_REUSEPORT), and keeps both.
func listenBoth(t *testing.T, ip string) (net.PacketConn, net.Listener) {
	t.Helper()
	var err error
	for range 20 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", net.JoinHostPort(ip, "0")); err != nil {
			t.Fatal(err)
		}
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", ln.Addr().String()); err == nil {
			return pc, ln
		}
		ln.Close()
	}
	t.Fatalf("no port on %s free for both UDP and TCP: %v", ip, err)
	return nil, nil
}

// serveDNS serves h on pc and ln until the test ends.
func serveDNS(t *testing.T, pc net.PacketConn, ln net.Listener, h dns.Handler, tsig map[string]string) {
	t.Helper()
	servers := []*dns.Server{{PacketConn: pc, Handler: h, TsigSecret: tsig}, {Listener: ln, Handler: h, TsigSecret: tsig}}
	var wg sync.WaitGroup
	for _, s := range servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.ActivateAndServe()
		}()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("a test server did not start")
		}
	}
	t.Cleanup(func() {
		for _, s := range servers {
			_ = s.Shutdown()
		}
		wg.Wait()
	})
}

// received is one message a test server got: over which transport, from
// which address, of which type.
type received struct {
	transport string
	from      netip.Addr
	qtype     string // the question's type; "NOTIFY" for a NOTIFY
}

// recorder keeps what a test server received.
type recorder struct {
	mu  sync.Mutex
	got []received
}

func (r *recorder) add(w dns.ResponseWriter, req *dns.Msg) {
	ap, _ := netip.ParseAddrPort(w.RemoteAddr().String())
	rec := received{transport: w.RemoteAddr().Network(), from: ap.Addr().Unmap()}
	switch {
	case req.Opcode == dns.OpcodeNotify:
		rec.qtype = "NOTIFY"
	case len(req.Question) == 1:
		rec.qtype = dns.TypeToString[req.Question[0].Qtype]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rec)
}

func (r *recorder) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) count(transport string) int {
	n := 0
	for _, g := range r.all() {
		if g.transport == transport {
			n++
		}
	}
	return n
}

// notifyTarget is a secondary that receives NOTIFYs on 127.0.0.1 over UDP
// and TCP; over UDP it answers, stays silent or answers truncated.
type notifyTarget struct {
	recorder
	addr netip.AddrPort
}

const (
	udpAnswer = iota
	udpIgnore
	udpTruncate
)

func startNotifyTarget(t *testing.T, udp int, answerTCP bool) *notifyTarget {
	t.Helper()
	pc, ln := listenBoth(t, "127.0.0.1")
	nt := &notifyTarget{addr: netip.MustParseAddrPort(ln.Addr().String())}
	serveDNS(t, pc, ln, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		nt.add(w, req)
		tcp := w.RemoteAddr().Network() == "tcp"
		if (!tcp && udp == udpIgnore) || (tcp && !answerTCP) {
			return
		}
		m := new(dns.Msg)
		m.SetReply(req)
		m.Truncated = !tcp && udp == udpTruncate
		_ = w.WriteMsg(m)
	}), nil)
	return nt
}

// TestNotifySourceAndTCP: NOTIFYs leave from notify_source over UDP and,
// when UDP gets no answer after its tries or a truncated one, over TCP.
func TestNotifySourceAndTCP(t *testing.T) {
	src := netip.MustParseAddr("127.0.0.7")
	tests := []struct {
		name      string
		udp       int
		answerTCP bool
		source    netip.Addr
		udpSent   int
		tcpSent   int
		acked     float64
		retry     float64
		givenUp   float64
	}{
		{name: "answered over UDP", udp: udpAnswer, source: src, udpSent: 1, acked: 1},
		{name: "no source set", udp: udpAnswer, udpSent: 1, acked: 1},
		{name: "UDP ignored: TCP after the tries", udp: udpIgnore, answerTCP: true, source: src, udpSent: 3, tcpSent: 1, acked: 1, retry: 3},
		{name: "truncated: TCP at once", udp: udpTruncate, answerTCP: true, source: src, udpSent: 1, tcpSent: 1, acked: 1, retry: 1},
		{name: "no answer at all: given up after TCP", udp: udpIgnore, source: src, udpSent: 3, tcpSent: 1, retry: 3, givenUp: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startNotifyTarget(t, tc.udp, tc.answerTCP)
			h := newPrimaryHarness(t, Config{Policy: func(string) Policy {
				return Policy{Notify: []Target{{Addr: f.addr}}, NotifySource: Sources{V4: tc.source}}
			}}, primaryZone)
			fastNotifier(h.node.notifier)
			h.node.notifier.tries = 3
			h.start(true)
			waitFor(t, 10*time.Second, "the notification to end", func() bool {
				return f.count("udp") > 0 && h.node.notifier.pending() == 0
			})
			if got := f.count("udp"); got != tc.udpSent {
				t.Errorf("%d NOTIFYs over UDP, want %d", got, tc.udpSent)
			}
			if got := f.count("tcp"); got != tc.tcpSent {
				t.Errorf("%d NOTIFYs over TCP, want %d", got, tc.tcpSent)
			}
			want := tc.source
			if !want.IsValid() {
				want = netip.MustParseAddr("127.0.0.1")
			}
			for _, r := range f.all() {
				if r.from != want || r.qtype != "NOTIFY" {
					t.Errorf("%s over %s from %s, want a NOTIFY from %s", r.qtype, r.transport, r.from, want)
				}
			}
			for result, want := range map[string]float64{notifyAcked: tc.acked, notifyRetry: tc.retry, notifyGivenUp: tc.givenUp} {
				if got := testutil.ToFloat64(h.m.NotifySent.WithLabelValues("example.", result)); got != want {
					t.Errorf("notify_sent_total{example.,%s} = %v, want %v", result, got, want)
				}
			}
		})
	}
}

// TestNotifySourceNotHere: a notify_source this host does not have drops
// the notification at once, without retries.
func TestNotifySourceNotHere(t *testing.T) {
	f := startNotifyTarget(t, udpAnswer, true)
	var logs bytes.Buffer
	var mu sync.Mutex
	h := newPrimaryHarness(t, Config{Policy: func(string) Policy {
		return Policy{Notify: []Target{{Addr: f.addr}}, NotifySource: Sources{V4: netip.MustParseAddr("192.0.2.77")}}
	}}, primaryZone)
	h.node.log = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	fastNotifier(h.node.notifier)
	h.start(true)
	waitFor(t, 10*time.Second, "the warning", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "notify_source 192.0.2.77 is not an address of this host")
	})
	waitIdle(t, h.node.notifier)
	if got := len(f.all()); got != 0 {
		t.Errorf("%d messages reached the target", got)
	}
	if got := testutil.ToFloat64(h.m.NotifySent.WithLabelValues("example.", notifyRetry)); got != 0 {
		t.Errorf("%v retries of a NOTIFY that cannot leave", got)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// TestNotifyRcode checks who may NOTIFY a secondary zone with allow_notify.
func TestNotifyRcode(t *testing.T) {
	pfx := netip.MustParsePrefix
	primary := []Target{{Addr: netip.MustParseAddrPort("127.0.0.2:53")}}
	tests := []struct {
		name  string
		key   string // the zone's
		allow ACL
		from  string
		peer  string // the key that signed the NOTIFY
		want  int
	}{
		{name: "primary, no allow_notify", from: "127.0.0.2", want: dns.RcodeSuccess},
		{name: "another address, no allow_notify", from: "127.0.0.3", want: dns.RcodeRefused},
		{name: "another address in allow_notify", allow: ACL{{Prefix: pfx("127.0.0.0/29")}}, from: "127.0.0.3", want: dns.RcodeSuccess},
		{name: "mapped IPv6 in allow_notify", allow: ACL{{Prefix: pfx("127.0.0.3/32")}}, from: "::ffff:127.0.0.3", want: dns.RcodeSuccess},
		{name: "outside allow_notify", allow: ACL{{Prefix: pfx("127.0.0.0/30")}}, from: "127.0.0.9", want: dns.RcodeRefused},
		{name: "allowed address needs the zone's key", key: testKey, allow: ACL{{Prefix: pfx("127.0.0.3/32")}}, from: "127.0.0.3", want: dns.RcodeNotAuth},
		{name: "allowed address with the zone's key", key: testKey, allow: ACL{{Prefix: pfx("127.0.0.3/32")}}, from: "127.0.0.3", peer: testKey, want: dns.RcodeSuccess},
		{name: "an entry's own key", key: testKey, allow: ACL{{Prefix: pfx("127.0.0.3/32"), Key: "notify."}}, from: "127.0.0.3", peer: "Notify", want: dns.RcodeSuccess},
		{name: "an entry's key is required", allow: ACL{{Prefix: pfx("127.0.0.3/32"), Key: "notify."}}, from: "127.0.0.3", want: dns.RcodeNotAuth},
		{name: "a key from anywhere", allow: ACL{{Any: true, Key: "notify."}}, from: "198.51.100.7", peer: "notify.", want: dns.RcodeSuccess},
		{name: "a key from anywhere, unsigned", allow: ACL{{Any: true, Key: "notify."}}, from: "198.51.100.7", want: dns.RcodeNotAuth},
		{name: "primary with the wrong key", key: testKey, from: "127.0.0.2", peer: "other.", want: dns.RcodeNotAuth},
		{name: "primary with the wrong key, admitted by an entry's key", key: testKey, allow: ACL{{Any: true, Key: "other."}}, from: "127.0.0.2", peer: "other.", want: dns.RcodeSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &SecondaryZone{Zone: testOrigin, Primaries: primary, Key: tt.key, AllowNotify: tt.allow}
			if got := notifyRcode(cfg, netip.MustParseAddr(tt.from), tt.peer); got != tt.want {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[got], dns.RcodeToString[tt.want])
			}
		})
	}
}

// sourcePrimary is a primary on its own loopback address that serves one
// zone (SOA over UDP and TCP, AXFR) and records where queries come from.
type sourcePrimary struct {
	recorder
	addr netip.AddrPort
	mu   sync.Mutex
	z    *zone.Zone
}

func startSourcePrimary(t *testing.T, ip string, z *zone.Zone) *sourcePrimary {
	t.Helper()
	pc, ln := listenBoth(t, ip)
	p := &sourcePrimary{addr: netip.MustParseAddrPort(ln.Addr().String()), z: z}
	serveDNS(t, pc, ln, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		p.add(w, req)
		p.mu.Lock()
		z := p.z
		p.mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		switch {
		case len(req.Question) != 1:
			m.Rcode = dns.RcodeFormatError
		case req.Question[0].Qtype == dns.TypeSOA:
			m.Answer = []dns.RR{z.SOA}
		case req.Question[0].Qtype == dns.TypeAXFR || req.Question[0].Qtype == dns.TypeIXFR:
			m.Answer = append(z.Records(), z.SOA)
		default:
			m.Rcode = dns.RcodeRefused
		}
		_ = w.WriteMsg(m)
	}), nil)
	return p
}

// TestTransferSource: SOA queries and transfers leave from
// transfer_source.
func TestTransferSource(t *testing.T) {
	v1 := buildZone(t, testOrigin, zoneText(1))
	p := startSourcePrimary(t, "127.0.0.1", v1)
	src := netip.MustParseAddr("127.0.0.9")
	tn := newTestNode(t, Config{Secondaries: []SecondaryZone{{Zone: testOrigin, Primaries: []Target{{Addr: p.addr}},
		TransferSource: Sources{V4: src, V6: netip.MustParseAddr("::1")}}}})
	tn.run(t)
	waitFor(t, 10*time.Second, "the first transfer", func() bool { return tn.serial(testOrigin) == 1 })
	got := p.all()
	var types []string
	for _, r := range got {
		types = append(types, r.qtype)
		if r.from != src {
			t.Errorf("%s over %s from %s, want from %s", r.qtype, r.transport, r.from, src)
		}
	}
	if !slices.Contains(types, "SOA") || !slices.Contains(types, "AXFR") {
		t.Errorf("the primary saw %v, want an SOA query and an AXFR", types)
	}
}

// TestRefreshOnRequest: Node.Refresh checks a zone at once and says what
// it did; with retransfer the zone comes whole whatever the serials. Zones
// that are not secondaries are refused with ErrNotSecondary.
func TestRefreshOnRequest(t *testing.T) {
	v1 := buildZone(t, testOrigin, zoneText(1))
	v2 := buildZone(t, testOrigin, zoneText(2, "a A 192.0.2.50"))
	v2b := buildZone(t, testOrigin, zoneText(2, "b A 192.0.2.51"))
	f := newFakePrimary(t, testKey)
	f.set(testOrigin, &fakeZone{versions: []*zone.Zone{v1}})
	sz := SecondaryZone{Zone: testOrigin, Primaries: []Target{{Addr: f.addr, Key: testKey}}, Key: testKey}
	tn := newTestNode(t, Config{Secondaries: []SecondaryZone{sz}})
	ctx := t.Context()
	if _, err := tn.n.Refresh(ctx, testOrigin, false); !errors.Is(err, errNotRunning) {
		t.Errorf("Refresh before the node runs: %v, want %v", err, errNotRunning)
	}
	tn.run(t)
	waitFor(t, 10*time.Second, "the first transfer", func() bool { return tn.serial(testOrigin) == 1 })

	addr := f.addr.String()
	steps := []struct {
		name       string
		primary    *fakeZone // set before the request; nil: as it is
		retransfer bool
		want       RefreshResult
		wantZone   *zone.Zone
	}{
		{name: "current", want: RefreshResult{Primary: addr, PrimarySerial: 1, OldSerial: 1, Serial: 1}, wantZone: v1},
		{name: "newer: IXFR", primary: &fakeZone{versions: []*zone.Zone{v1, v2}},
			want: RefreshResult{Primary: addr, PrimarySerial: 2, OldSerial: 1, Serial: 2, Transfer: "IXFR"}, wantZone: v2},
		{name: "same serial, other contents: refresh keeps the copy", primary: &fakeZone{versions: []*zone.Zone{v2b}},
			want: RefreshResult{Primary: addr, PrimarySerial: 2, OldSerial: 2, Serial: 2}, wantZone: v2},
		{name: "same serial, other contents: retransfer takes it", retransfer: true,
			want: RefreshResult{Primary: addr, PrimarySerial: 2, OldSerial: 2, Serial: 2, Transfer: "AXFR"}, wantZone: v2b},
		{name: "older serial: retransfer takes it", primary: &fakeZone{versions: []*zone.Zone{v1}}, retransfer: true,
			want: RefreshResult{Primary: addr, PrimarySerial: 1, OldSerial: 2, Serial: 1, Transfer: "AXFR"}, wantZone: v1},
	}
	for _, st := range steps {
		if st.primary != nil {
			f.set(testOrigin, st.primary)
		}
		res, err := tn.n.Refresh(ctx, "EXAMPLE.org", st.retransfer)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		st.want.Zone = testOrigin
		if res != st.want {
			t.Errorf("%s: %+v, want %+v", st.name, res, st.want)
		}
		z, err := tn.store.Load(testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(zoneStrings(z), zoneStrings(st.wantZone)) {
			t.Errorf("%s: the stored copy is not the expected version", st.name)
		}
	}
	// After a retransfer to an older serial the journal no longer leads
	// to the copy: secondaries of this node get it whole.
	if _, _, err := tn.store.Changes(testOrigin, 2); !errors.Is(err, zonestore.ErrNoJournal) {
		t.Errorf("Changes from serial 2 after the retransfer: %v, want ErrNoJournal", err)
	}

	// A primary that refuses: the error says so.
	f.setRefused(true)
	if _, err := tn.n.Refresh(ctx, testOrigin, false); err == nil || !strings.Contains(err.Error(), "REFUSED") {
		t.Errorf("Refresh with the primary refusing: %v", err)
	}
	if _, err := tn.n.Refresh(ctx, testOrigin, true); err == nil {
		t.Errorf("Retransfer with the primary refusing succeeded")
	}

	// Zones that are not secondaries here.
	primaryText := "$ORIGIN primary.test.\n$TTL 300\n@ SOA ns1 h 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n"
	if _, err := tn.store.Import(buildZone(t, "primary.test.", primaryText), false); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"primary.test": "a primary zone", "absent.test": "no such zone"} {
		_, err := tn.n.Refresh(ctx, name, false)
		if !errors.Is(err, ErrNotSecondary) || !strings.Contains(err.Error(), want) {
			t.Errorf("Refresh(%s): %v, want ErrNotSecondary saying %q", name, err, want)
		}
	}
}

// TestNextCheckOf: REFRESH and RETRY are shortened to fit the expire time
// (configured, or the SOA's), and left alone when they fit.
func TestNextCheckOf(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		soa    [3]uint32 // refresh, retry, expire
		expire time.Duration
		ok     bool
		want   time.Duration
	}{
		{name: "timers that fit", soa: [3]uint32{3600, 600, 86400}, ok: true, want: time.Hour},
		{name: "configured expire shorter than refresh", soa: [3]uint32{3600, 600, 86400}, expire: time.Minute, ok: true, want: 20 * time.Second},
		{name: "configured expire shorter than retry", soa: [3]uint32{3600, 600, 86400}, expire: time.Minute, want: 10 * time.Second},
		{name: "SOA expire shorter than its refresh", soa: [3]uint32{7200, 3600, 600}, ok: true, want: 200 * time.Second},
		{name: "expire never", soa: [3]uint32{7200, 3600, 600}, expire: ExpireNever, ok: true, want: 2 * time.Hour},
		{name: "long configured expire", soa: [3]uint32{3600, 600, 600}, expire: 30 * 24 * time.Hour, want: 10 * time.Minute},
	}
	s := newSecondaries(&Node{log: slog.New(slog.DiscardHandler)})
	s.jitter = func(time.Duration) time.Duration { return 0 }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &worker{origin: testOrigin}
			w.cfg.Store(&SecondaryZone{Zone: testOrigin, Expire: tt.expire})
			st := zoneState{soa: &dns.SOA{Refresh: tt.soa[0], Retry: tt.soa[1], Expire: tt.soa[2]}, refreshed: now}
			if got := s.nextCheckOf(w, &st, tt.ok, now).Sub(now); got != tt.want {
				t.Errorf("next check in %v, want %v", got, tt.want)
			}
		})
	}
}

// shortExpireNode runs a node with testOrigin as a secondary of f, the
// expire time configured to expire (shorter than the SOA's refresh of an
// hour), logging to the returned writer.
func shortExpireNode(t *testing.T, st *zonestore.Store, f *fakePrimary, expire time.Duration) (*Node, *lockedWriter, chan string) {
	t.Helper()
	logs := &lockedWriter{w: new(bytes.Buffer), mu: new(sync.Mutex)}
	sz := SecondaryZone{Zone: testOrigin, Primaries: []Target{{Addr: f.addr}}, Expire: expire}
	n := New(st, Config{Secondaries: []SecondaryZone{sz}}, func() *zone.Set { return zone.NewSet() },
		slog.New(slog.NewTextHandler(logs, nil)), metrics.New(prometheus.NewRegistry()))
	calls := make(chan string, 10)
	n.OnExpire(func(origin string, serve bool) { calls <- fmt.Sprintf("%s %v", origin, serve) })
	n.secondary.jitter = func(time.Duration) time.Duration { return 0 }
	n.secondary.t.minExpire, n.secondary.t.minRefresh, n.secondary.t.minRetry = time.Second, 100*time.Millisecond, 100*time.Millisecond
	n.secondary.t.soaTimeout = 500 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return n, logs, calls
}

// TestShortExpireChecksFirst: with an expire time shorter than the SOA's
// refresh, checks still come before expiry, so a zone whose primary
// answers never expires, and one whose primary stops answering expires
// after failed checks, which the log counts.
func TestShortExpireChecksFirst(t *testing.T) {
	v1 := buildZone(t, testOrigin, zoneText(1))
	f := newFakePrimary(t, "")
	f.set(testOrigin, &fakeZone{versions: []*zone.Zone{v1}})
	st, err := zonestore.Open(filepath.Join(t.TempDir(), "sovdns.db"), zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const expire = 3 * time.Second
	_, logs, calls := shortExpireNode(t, st, f, expire)
	waitFor(t, 10*time.Second, "the first transfer", func() bool {
		z, err := st.Load(testOrigin)
		return err == nil && z.Serial() == 1
	})
	// Past two expire times with the primary answering: checks every
	// second, no expiry.
	start := f.count("SOA")
	waitFor(t, 4*expire, "checks past twice the expire time", func() bool { return f.count("SOA") >= start+6 })
	select {
	case c := <-calls:
		t.Fatalf("OnExpire(%s) while the primary answers every check", c)
	default:
	}
	f.setRefused(true)
	select {
	case c := <-calls:
		if c != testOrigin+" false" {
			t.Fatalf("OnExpire(%s), want %s false", c, testOrigin)
		}
	case <-time.After(4 * expire):
		t.Fatalf("no expiry with the primary refusing\n%s", logs)
	}
	text := logs.String()
	for _, want := range []string{"no check succeeded within its expire time", "expire_from=config", "last_error=", "REFUSED", "checked more often than its SOA timers say"} {
		if !strings.Contains(text, want) {
			t.Errorf("the log lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "failed_checks=0") {
		t.Errorf("expired with no failed check:\n%s", text)
	}
}

// TestExpiredCopyCheckedFirst: a copy found past its expire time at start
// is checked before it is withdrawn: a primary that answers keeps it
// served without a gap.
func TestExpiredCopyCheckedFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sovdns.db")
	old := storeExpiredCopy(t, path, time.Now().Add(-2*time.Minute))
	f := newFakePrimary(t, "")
	f.set(testOrigin, &fakeZone{versions: []*zone.Zone{old}})
	st, err := zonestore.Open(path, zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n, _, calls := shortExpireNode(t, st, f, 0)
	waitFor(t, 10*time.Second, "the check at start", func() bool {
		m, err := st.Meta(testOrigin)
		return err == nil && time.Since(m.Refreshed) < time.Minute
	})
	select {
	case c := <-calls:
		t.Errorf("OnExpire(%s): the copy was withdrawn though its primary answered", c)
	default:
	}
	if n.KeptZones()[testOrigin] {
		t.Error("Kept: the copy is current")
	}
}

// TestKeptInIsland: a copy kept past expiry by HoldExpiry reports Kept
// until the hold ends.
func TestKeptInIsland(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sovdns.db")
	old := storeExpiredCopy(t, path, time.Now().Add(-2*time.Minute))
	f := newFakePrimary(t, "")
	f.set(testOrigin, &fakeZone{versions: []*zone.Zone{old}})
	f.setRefused(true)
	st, err := zonestore.Open(path, zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sz := SecondaryZone{Zone: testOrigin, Primaries: []Target{{Addr: f.addr}}}
	n := New(st, Config{Secondaries: []SecondaryZone{sz}}, func() *zone.Set { return zone.NewSet() },
		slog.New(slog.DiscardHandler), metrics.New(prometheus.NewRegistry()))
	calls := make(chan string, 10)
	n.OnExpire(func(origin string, serve bool) { calls <- fmt.Sprintf("%s %v", origin, serve) })
	var hold atomic.Bool
	hold.Store(true)
	n.HoldExpiry(hold.Load)
	n.secondary.jitter = func(time.Duration) time.Duration { return 0 }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 10*time.Second, "the copy kept", func() bool { return n.KeptZones()[testOrigin] })
	if kept := n.KeptZones(); len(kept) != 1 || !kept[testOrigin] {
		t.Errorf("KeptZones = %v, want %s alone", kept, testOrigin)
	}
	hold.Store(false)
	select {
	case c := <-calls:
		if c != testOrigin+" false" {
			t.Fatalf("OnExpire(%s), want %s false", c, testOrigin)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the copy was not withdrawn once the hold ended")
	}
	if len(n.KeptZones()) != 0 {
		t.Errorf("Kept after the copy was withdrawn (KeptZones %v)", n.KeptZones())
	}
}

// TestNotifyFromAllowNotify: a NOTIFY from an address of allow_notify
// (not a primary's) has the zone checked at once.
func TestNotifyFromAllowNotify(t *testing.T) {
	v1 := buildZone(t, testOrigin, zoneText(1))
	v2 := buildZone(t, testOrigin, zoneText(2, "a A 192.0.2.50"))
	f := newFakePrimary(t, "")
	f.set(testOrigin, &fakeZone{versions: []*zone.Zone{v1}})
	sz := SecondaryZone{Zone: testOrigin, Primaries: []Target{{Addr: f.addr}},
		AllowNotify: ACL{{Prefix: netip.MustParsePrefix("127.0.0.200/32")}}}
	tn := newTestNode(t, Config{Secondaries: []SecondaryZone{sz}})
	tn.run(t)
	waitFor(t, 10*time.Second, "the first transfer", func() bool { return tn.serial(testOrigin) == 1 })
	f.update(testOrigin, v2)
	req := new(dns.Msg)
	req.SetNotify(testOrigin)
	if r := tn.n.Notify(t.Context(), req, server.Peer{Addr: netip.MustParseAddrPort("127.0.0.201:53")}); r.Rcode != dns.RcodeRefused {
		t.Errorf("NOTIFY from outside allow_notify: %s", dns.RcodeToString[r.Rcode])
	}
	if r := tn.n.Notify(t.Context(), req, server.Peer{Addr: netip.MustParseAddrPort("127.0.0.200:53")}); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("NOTIFY from allow_notify: %s", dns.RcodeToString[r.Rcode])
	}
	waitFor(t, 10*time.Second, "the IXFR after NOTIFY", func() bool { return tn.serial(testOrigin) == 2 })
}

// TestCatalogMembersInherit: members of a consumed catalog take its
// allow_notify and transfer_source, as they take its primaries and key.
func TestCatalogMembersInherit(t *testing.T) {
	cat := SecondaryZone{Zone: "catalog.test.", Catalog: true, Primaries: []Target{{Addr: netip.MustParseAddrPort("127.0.0.2:53")}},
		Key: testKey, AllowNotify: ACL{{Prefix: netip.MustParsePrefix("127.0.0.3/32")}},
		TransferSource: Sources{V4: netip.MustParseAddr("127.0.0.4")}}
	s := newSecondaries(&Node{})
	s.members["catalog.test."] = map[string]string{"member.test.": "id1"}
	d := s.desired(&Config{Secondaries: []SecondaryZone{cat}})
	m, ok := d["member.test."]
	if !ok {
		t.Fatalf("the member is not a secondary zone: %+v", d)
	}
	if !slices.Equal(m.AllowNotify, cat.AllowNotify) || m.TransferSource != cat.TransferSource || m.Key != testKey ||
		!slices.Equal(m.Primaries, cat.Primaries) {
		t.Errorf("member %+v, want the catalog's primaries, key, allow_notify and transfer_source", m)
	}
}
