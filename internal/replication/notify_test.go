package replication

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// notifyRecord is one NOTIFY a fakeSecondary received.
type notifyRecord struct {
	zone   string
	serial uint32 // from the SOA in the answer section; 0 without
	key    string // the TSIG key that signed it, verified; empty: unsigned
	badSig bool
}

// fakeSecondary receives NOTIFYs on 127.0.0.1 over UDP (over TCP it closes
// every connection). It leaves the
// first drop of them unanswered, and answers the others with rcode.
type fakeSecondary struct {
	addr netip.AddrPort

	mu    sync.Mutex
	got   []notifyRecord
	drop  int
	rcode int
}

func startFakeSecondary(t *testing.T, drop int) *fakeSecondary {
	t.Helper()
	// The UDP port is held for TCP too, where connections are closed at
	// once: the NOTIFY's move to TCP fails there, and no other process can
	// take the port.
	var pc net.PacketConn
	var tl net.Listener
	for try := 0; ; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if tl, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if try == 10 {
			t.Fatalf("no port free for UDP and TCP: %v", err)
		}
	}
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { tl.Close() })
	f := &fakeSecondary{addr: netip.MustParseAddrPort(pc.LocalAddr().String()), drop: drop}
	secrets := map[string]string{}
	for name, k := range primaryTestKeys() {
		secrets[name] = k.Secret
	}
	ready := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, TsigSecret: secrets, NotifyStartedFunc: func() { close(ready) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			rec := notifyRecord{}
			if len(r.Question) == 1 {
				rec.zone = r.Question[0].Name
			}
			if len(r.Answer) == 1 {
				if soa, ok := r.Answer[0].(*dns.SOA); ok {
					rec.serial = soa.Serial
				}
			}
			if ts := r.IsTsig(); ts != nil {
				rec.key = ts.Hdr.Name
				rec.badSig = w.TsigStatus() != nil
			}
			f.mu.Lock()
			f.got = append(f.got, rec)
			drop := len(f.got) <= f.drop
			rcode := f.rcode
			f.mu.Unlock()
			if drop || r.Opcode != dns.OpcodeNotify {
				return
			}
			m := new(dns.Msg)
			m.SetRcode(r, rcode)
			if ts := r.IsTsig(); ts != nil && !rec.badSig {
				m.SetTsig(ts.Hdr.Name, ts.Algorithm, 300, time.Now().Unix())
			}
			_ = w.WriteMsg(m)
		})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ActivateAndServe()
	}()
	select {
	case <-ready:
	case <-time.After(2 * time.Second):
		t.Fatal("the fake secondary did not start")
	}
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return f
}

func (f *fakeSecondary) records() []notifyRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]notifyRecord(nil), f.got...)
}

// waitFor waits up to 5s for the fake secondary to have received a
// NOTIFY that ok accepts.
func (f *fakeSecondary) waitFor(t *testing.T, what string, ok func(notifyRecord) bool) notifyRecord {
	t.Helper()
	for range 500 {
		for _, r := range f.records() {
			if ok(r) {
				return r
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no NOTIFY %s within 5s; received %+v", what, f.records())
	return notifyRecord{}
}

// pending returns the number of notifications not yet done.
func (nt *notifier) pending() int {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	return len(nt.jobs)
}

// waitIdle waits up to 5s until no notification is pending.
func waitIdle(t *testing.T, nt *notifier) {
	t.Helper()
	for range 500 {
		if nt.pending() == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d notifications still pending after 5s", nt.pending())
}

// fastNotifier shortens the notifier's delays for tests.
func fastNotifier(nt *notifier) {
	nt.startup = 0
	nt.backoff = 20 * time.Millisecond
	nt.timeout = 200 * time.Millisecond
}

func TestNotifyOnStartAndCommit(t *testing.T) {
	signed := startFakeSecondary(t, 0)
	plain := startFakeSecondary(t, 0)
	h := newPrimaryHarness(t, Config{Policy: func(origin string) Policy {
		return Policy{Notify: []Target{{Addr: signed.addr, Key: keyXfr}, {Addr: plain.addr}}}
	}}, primaryZone)
	fastNotifier(h.node.notifier)
	h.start(true)

	for _, f := range []*fakeSecondary{signed, plain} {
		f.waitFor(t, "of serial 1 at start", func(r notifyRecord) bool { return r.zone == "example." && r.serial == 1 })
	}
	serial := h.edit("example.", zonestore.Change{Add: rrsOf(t, "new.example. 300 IN A 192.0.2.50")})
	r := signed.waitFor(t, "of the edit", func(r notifyRecord) bool { return r.serial == serial })
	if r.key != keyXfr || r.badSig {
		t.Errorf("NOTIFY to the signed target: key %q, bad signature %v; want signed with %s", r.key, r.badSig, keyXfr)
	}
	if r := plain.waitFor(t, "of the edit", func(r notifyRecord) bool { return r.serial == serial }); r.key != "" {
		t.Errorf("NOTIFY to the unsigned target signed with %s", r.key)
	}
	waitIdle(t, h.node.notifier)
	if got := testutil.ToFloat64(h.m.NotifySent.WithLabelValues("example.", notifyAcked)); got != 4 {
		t.Errorf("notify_sent_total{example.,acked} = %v, want 4", got)
	}
}

func TestNotifyRetries(t *testing.T) {
	tests := []struct {
		name    string
		drop    int
		rcode   int
		tries   int
		acked   float64
		retry   float64
		givenUp float64
	}{
		{name: "acknowledged at the third try", drop: 2, tries: 5, acked: 1, retry: 2},
		// Two retries over UDP, then the move to TCP (closed at once).
		{name: "never acknowledged", drop: 100, tries: 3, retry: 3, givenUp: 1},
		{name: "refused every time", drop: 0, rcode: dns.RcodeRefused, tries: 3, retry: 2, givenUp: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeSecondary(t, tc.drop)
			f.mu.Lock() // the fake already serves
			f.rcode = tc.rcode
			f.mu.Unlock()
			h := newPrimaryHarness(t, Config{Policy: func(string) Policy {
				return Policy{Notify: []Target{{Addr: f.addr}}}
			}}, primaryZone)
			fastNotifier(h.node.notifier)
			h.node.notifier.tries = tc.tries
			h.start(true)
			f.waitFor(t, "at start", func(r notifyRecord) bool { return r.zone == "example." })
			waitIdle(t, h.node.notifier)
			if got := len(f.records()); got != tc.drop+1 && got != tc.tries {
				t.Errorf("%d NOTIFYs received", got)
			}
			for result, want := range map[string]float64{notifyAcked: tc.acked, notifyRetry: tc.retry, notifyGivenUp: tc.givenUp} {
				if got := testutil.ToFloat64(h.m.NotifySent.WithLabelValues("example.", result)); got != want {
					t.Errorf("notify_sent_total{example.,%s} = %v, want %v", result, got, want)
				}
			}
		})
	}
}

// TestNotifyNewerReplaces: a change replaces the notification pending for
// the same zone and target, and the target hears of the newest serial.
func TestNotifyNewerReplaces(t *testing.T) {
	f := startFakeSecondary(t, 3)
	h := newPrimaryHarness(t, Config{Policy: func(string) Policy {
		return Policy{Notify: []Target{{Addr: f.addr}}}
	}}, primaryZone)
	nt := h.node.notifier
	fastNotifier(nt)
	var last uint32
	for i := range 3 {
		last = h.edit("example.", zonestore.Change{Add: rrsOf(t, fmt.Sprintf("n%d.example. 300 IN A 192.0.2.%d", i, i+1))})
	}
	if got := nt.pending(); got != 1 {
		t.Fatalf("%d notifications pending for one zone and target, want 1", got)
	}
	h.start(true)
	f.waitFor(t, "of the last serial, acknowledged", func(r notifyRecord) bool { return r.serial == last })
	waitIdle(t, nt)
	recs := f.records()
	if got := recs[len(recs)-1].serial; got != last {
		t.Errorf("the last NOTIFY has serial %d, want %d", got, last)
	}
	for _, r := range recs {
		if r.serial != last {
			t.Errorf("a NOTIFY of serial %d was sent; only %d was due", r.serial, last)
		}
	}
}

// TestNotifyQueueBounded: changed returns at once, whatever the queue
// holds, and drops what does not fit.
// TestNotifyCoalesces: changes of many zones, several times each, leave
// one pending notification per zone and target, and none is dropped.
func TestNotifyCoalesces(t *testing.T) {
	targets := []Target{{Addr: netip.MustParseAddrPort("127.0.0.1:9")}, {Addr: netip.MustParseAddrPort("127.0.0.1:10")}}
	h := newPrimaryHarness(t, Config{Policy: func(string) Policy { return Policy{Notify: targets} }})
	nt := h.node.notifier
	for serial := range uint32(3) {
		for i := range 20_000 {
			nt.changed(fmt.Sprintf("z%d.example.", i), serial+1)
		}
	}
	if got := nt.pending(); got != 40_000 {
		t.Errorf("%d notifications pending, want 40,000", got)
	}
	if got := testutil.ToFloat64(h.m.NotifyPending); got != 40_000 {
		t.Errorf("sovdns_notify_pending = %v, want 40,000", got)
	}
	if got := testutil.ToFloat64(h.m.NotifySent.WithLabelValues("z7.example.", notifyGivenUp)); got != 0 {
		t.Errorf("%v notifications of z7.example. given up", got)
	}
	nt.mu.Lock()
	j := nt.jobs[notifyKey{origin: "z7.example.", addr: targets[1].Addr}]
	nt.mu.Unlock()
	if j == nil || j.serial != 3 {
		t.Errorf("z7.example.'s pending notification: %+v, want serial 3", j)
	}
}

// TestNotifyAllAtStart: at start every primary zone is notified, the
// catalog zone first and the others spread at the configured rate; each
// reaches the secondary.
func TestNotifyAllAtStart(t *testing.T) {
	sec := startFakeSecondary(t, 0)
	h := newPrimaryHarness(t, Config{Catalog: "zzz-catalog.test.", NotifyStartRate: 100, Policy: func(string) Policy {
		return Policy{Notify: []Target{{Addr: sec.addr}}}
	}})
	var zs []*zone.Zone
	for _, name := range []string{"zzz-catalog.test.", "a.test.", "b.test.", "c.test."} {
		p, err := zonestore.Parse(strings.NewReader("@ 3600 SOA ns1 hostmaster 1 7200 900 1209600 300\n@ 3600 NS ns1\nns1 3600 A 192.0.2.1\n"), name, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		z, err := p.Build()
		if err != nil {
			t.Fatal(err)
		}
		zs = append(zs, z)
	}
	for _, r := range h.store.ImportMany(zs, false, nil) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	nt := h.node.notifier
	start := time.Now().Add(time.Hour) // nothing is sent: only the schedule is looked at
	nt.notifyAll(start)
	nt.mu.Lock()
	due := map[string]time.Time{}
	for k, j := range nt.jobs {
		due[k.origin] = j.due
	}
	nt.mu.Unlock()
	if !due["zzz-catalog.test."].Equal(start) {
		t.Errorf("the catalog zone is due %v after start, want first", due["zzz-catalog.test."].Sub(start))
	}
	step := time.Second / 100
	for i, name := range []string{"a.test.", "b.test.", "c.test."} {
		if got, want := due[name].Sub(start), catalogLead+time.Duration(i)*step; got != want {
			t.Errorf("%s due %v after start, want %v", name, got, want)
		}
	}

	// Run for real: each zone's NOTIFY arrives.
	nt.mu.Lock()
	clear(nt.jobs)
	nt.sched = nil
	nt.mu.Unlock()
	fastNotifier(nt)
	h.start(true)
	for _, name := range []string{"zzz-catalog.test.", "a.test.", "b.test.", "c.test."} {
		sec.waitFor(t, "of "+name, func(r notifyRecord) bool { return r.zone == name })
	}
}

// TestNotifyNotForSecondaries: a secondary copy's changes are not notified
// onwards, at start or after a transfer.
func TestNotifyNotForSecondaries(t *testing.T) {
	f := startFakeSecondary(t, 0)
	h := newPrimaryHarness(t, Config{Policy: func(string) Policy {
		return Policy{Notify: []Target{{Addr: f.addr}}}
	}}, primaryZone)
	put := func(serial int) {
		text := fmt.Sprintf("$ORIGIN sec.example.\n$TTL 300\n@ SOA ns1 h %d 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n", serial)
		p, err := zonestore.Parse(strings.NewReader(text), "sec.example.", "sec.zone", nil)
		if err != nil {
			t.Fatal(err)
		}
		z, err := p.Build()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.store.PutTransfer(z, "192.0.2.200:53"); err != nil {
			t.Fatal(err)
		}
	}
	put(7)
	fastNotifier(h.node.notifier)
	h.start(true)
	put(8)
	serial := h.edit("example.", zonestore.Change{Add: rrsOf(t, "new.example. 300 IN A 192.0.2.50")})
	f.waitFor(t, "of the primary zone", func(r notifyRecord) bool { return r.serial == serial })
	waitIdle(t, h.node.notifier)
	for _, r := range f.records() {
		if r.zone != "example." {
			t.Errorf("NOTIFY sent for %s", r.zone)
		}
	}
}

// TestNotifyManyTargets: more targets than attempts allowed at once are
// all notified, each as a slot frees.
func TestNotifyManyTargets(t *testing.T) {
	var fakes []*fakeSecondary
	var targets []Target
	for range 6 {
		f := startFakeSecondary(t, 1) // the first try of each goes unanswered
		fakes = append(fakes, f)
		targets = append(targets, Target{Addr: f.addr})
	}
	h := newPrimaryHarness(t, Config{Policy: func(string) Policy { return Policy{Notify: targets} }}, primaryZone)
	fastNotifier(h.node.notifier)
	h.node.notifier.timeout = 50 * time.Millisecond
	h.node.notifier.parallel = 2
	h.start(true)
	for _, f := range fakes {
		f.waitFor(t, "at start", func(r notifyRecord) bool { return r.serial == 1 })
	}
	waitIdle(t, h.node.notifier)
	waitCounter(t, h.m.NotifySent.WithLabelValues("example.", notifyAcked), 6)
}
