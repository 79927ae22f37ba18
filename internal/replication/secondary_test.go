package replication

import (
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

const (
	testOrigin = "example.org."
	testKey    = "xfr."
	testSecret = "c292ZG5zLXRlc3Qta2V5LTAxMjM0NTY3ODlhYmNkZWY="
)

// zoneText returns a version of the test zone: serial, and changes to the
// base records (extra lines; "-owner TYPE" removes that RRset).
func zoneText(serial uint32, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 300\n@ SOA ns1 hostmaster %d 3600 600 86400 300\n@ NS ns1\n@ NS ns2\nns1 A 192.0.2.1\nns2 A 192.0.2.2\n", testOrigin, serial)
	removed := map[string]bool{}
	for _, e := range extra {
		if r, ok := strings.CutPrefix(e, "-"); ok {
			removed[r] = true
		}
	}
	if !removed["www A"] {
		b.WriteString("www A 192.0.2.10\n")
	}
	// Enough records for a transfer of several messages.
	for i := range 200 {
		if !removed[fmt.Sprintf("t%03d TXT", i)] {
			fmt.Fprintf(&b, "t%03d TXT \"record %d of the bulk\"\n", i, i)
		}
	}
	for _, e := range extra {
		if !strings.HasPrefix(e, "-") {
			b.WriteString(e + "\n")
		}
	}
	return b.String()
}

func parseRRs(t *testing.T, origin, text string) []dns.RR {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
	zp.SetDefaultTTL(300)
	var out []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out = append(out, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("zone text: %v", err)
	}
	return out
}

func buildZone(t *testing.T, origin, text string) *zone.Zone {
	t.Helper()
	z, err := zone.Build(origin, parseRRs(t, origin, text))
	if err != nil {
		t.Fatalf("build %s: %v", origin, err)
	}
	return z
}

// cloneZone returns a copy of z that shares no record with it, for a
// store that writes into the records it is given while the fake primary
// sends the originals.
func cloneZone(t *testing.T, z *zone.Zone) *zone.Zone {
	t.Helper()
	var rrs []dns.RR
	for _, rr := range z.Records() {
		rrs = append(rrs, dns.Copy(rr))
	}
	c, err := zone.Build(z.Origin, rrs)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// zoneStrings returns z's records in presentation form, sorted.
func zoneStrings(z *zone.Zone) []string {
	var out []string
	for _, rr := range z.Records() {
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

// fakePrimary is a primary server on 127.0.0.1 (UDP and TCP, one port)
// that answers SOA queries, AXFR and IXFR from fixed versions of its zones.
type fakePrimary struct {
	t      *testing.T
	addr   netip.AddrPort
	key    string // TSIG key required of every query; empty: none
	secret string

	mu       sync.Mutex
	zones    map[string]*fakeZone
	unsigned bool           // answer signed queries without signing
	refused  bool           // REFUSED to everything
	queries  map[string]int // by type
	byZone   map[string]int // by type and name: "SOA example.org."
}

// fakeZone is one zone of a fakePrimary.
type fakeZone struct {
	versions []*zone.Zone // in order; the last is current
	// noIXFR: IXFR is answered with the whole zone (AXFR-style);
	// refuseIXFR: with NOTIMP.
	noIXFR, refuseIXFR bool
	// axfr, when set, is sent for AXFR (and AXFR-style IXFR) instead of
	// the current version; ixfr likewise for IXFR.
	axfr, ixfr []dns.RR
	// breakAfter > 0: the transfer stops after that many messages and the
	// connection is closed.
	breakAfter int
}

func newFakePrimary(t *testing.T, key string) *fakePrimary {
	t.Helper()
	f := &fakePrimary{t: t, key: key, zones: map[string]*fakeZone{}, queries: map[string]int{}, byZone: map[string]int{}}
	if key != "" {
		f.secret = testSecret
	}
	var (
		ln  net.Listener
		pc  net.PacketConn
		err error
	)
	for range 20 {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", ln.Addr().String()); err == nil {
			break
		}
		ln.Close()
	}
	if err != nil {
		t.Fatalf("no port free for both UDP and TCP: %v", err)
	}
	f.addr = netip.MustParseAddrPort(ln.Addr().String())
	var tsig map[string]string
	if key != "" {
		tsig = map[string]string{key: f.secret}
	}
	h := dns.HandlerFunc(f.serve)
	servers := []*dns.Server{
		{Listener: ln, Handler: h, TsigSecret: tsig},
		{PacketConn: pc, Handler: h, TsigSecret: tsig},
	}
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
			t.Fatal("fake primary did not start")
		}
	}
	t.Cleanup(func() {
		for _, s := range servers {
			_ = s.Shutdown()
		}
		wg.Wait()
	})
	return f
}

// set makes versions the history of zone origin, the last current.
func (f *fakePrimary) set(origin string, fz *fakeZone) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.zones[origin] = fz
}

// update adds a version of origin, now current.
func (f *fakePrimary) update(origin string, z *zone.Zone) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fz := f.zones[origin]
	fz.versions = append(fz.versions, z)
}

func (f *fakePrimary) setUnsigned(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unsigned = v
}

func (f *fakePrimary) setRefused(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refused = v
}

func (f *fakePrimary) count(qtype string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[qtype]
}

// countFor is the number of queries of type qtype for the name origin.
func (f *fakePrimary) countFor(qtype, origin string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byZone[qtype+" "+origin]
}

func (f *fakePrimary) serve(w dns.ResponseWriter, req *dns.Msg) {
	f.mu.Lock()
	defer f.mu.Unlock()
	reply := func(rcode int, answer []dns.RR) *dns.Msg {
		r := new(dns.Msg)
		r.SetReply(req)
		r.Authoritative = true
		r.Rcode = rcode
		r.Answer = answer
		if t := req.IsTsig(); t != nil && !f.unsigned {
			r.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
		}
		return r
	}
	if len(req.Question) != 1 {
		_ = w.WriteMsg(reply(dns.RcodeFormatError, nil))
		return
	}
	q := req.Question[0]
	f.queries[dns.TypeToString[q.Qtype]]++
	f.byZone[dns.TypeToString[q.Qtype]+" "+strings.ToLower(q.Name)]++
	if f.key != "" && (req.IsTsig() == nil || w.TsigStatus() != nil) {
		r := new(dns.Msg)
		r.SetRcode(req, dns.RcodeNotAuth)
		_ = w.WriteMsg(r)
		return
	}
	fz := f.zones[strings.ToLower(q.Name)]
	if f.refused || fz == nil {
		_ = w.WriteMsg(reply(dns.RcodeRefused, nil))
		return
	}
	cur := fz.versions[len(fz.versions)-1]
	var stream []dns.RR
	switch q.Qtype {
	case dns.TypeSOA:
		_ = w.WriteMsg(reply(dns.RcodeSuccess, []dns.RR{cur.SOA}))
		return
	case dns.TypeAXFR:
		stream = fz.axfrStream(cur)
	case dns.TypeIXFR:
		if fz.refuseIXFR {
			_ = w.WriteMsg(reply(dns.RcodeNotImplemented, nil))
			return
		}
		var from uint32
		if len(req.Ns) == 1 {
			if soa, ok := req.Ns[0].(*dns.SOA); ok {
				from = soa.Serial
			}
		}
		stream = fz.ixfrStream(cur, from)
	default:
		_ = w.WriteMsg(reply(dns.RcodeRefused, nil))
		return
	}
	for i := 0; len(stream) > 0; i++ {
		if fz.breakAfter > 0 && i == fz.breakAfter {
			_ = w.Close()
			return
		}
		n := min(len(stream), 40)
		if err := w.WriteMsg(reply(dns.RcodeSuccess, stream[:n])); err != nil {
			return
		}
		w.TsigTimersOnly(true)
		stream = stream[n:]
	}
}

func (fz *fakeZone) axfrStream(cur *zone.Zone) []dns.RR {
	if fz.axfr != nil {
		return fz.axfr
	}
	rrs := cur.Records()
	return append(rrs, cur.SOA)
}

func (fz *fakeZone) ixfrStream(cur *zone.Zone, from uint32) []dns.RR {
	if fz.ixfr != nil {
		return fz.ixfr
	}
	if from == cur.Serial() {
		return []dns.RR{cur.SOA}
	}
	start := -1
	for i, v := range fz.versions {
		if v.Serial() == from {
			start = i
		}
	}
	if fz.noIXFR || start < 0 {
		return fz.axfrStream(cur)
	}
	out := []dns.RR{cur.SOA}
	for i := start; i+1 < len(fz.versions); i++ {
		removed, added := zonestore.Diff(fz.versions[i], fz.versions[i+1])
		out = append(out, fz.versions[i].SOA)
		out = append(out, removed...)
		out = append(out, fz.versions[i+1].SOA)
		out = append(out, added...)
	}
	return append(out, cur.SOA)
}

// testNode is a replication node on a fresh store, wired as serve wires it.
type testNode struct {
	n      *Node
	store  *zonestore.Store
	m      *metrics.Metrics
	reg    *prometheus.Registry
	served sync.Map // origin → serial last published, 0 when deleted
	mu     sync.Mutex
	expiry []string // "origin false|true" calls of OnExpire
}

func newTestNode(t *testing.T, cfg Config) *testNode {
	t.Helper()
	st, err := zonestore.Open(filepath.Join(t.TempDir(), "sovdns.db"), zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if cfg.Keys == nil {
		cfg.Keys = map[string]Key{testKey: {Algorithm: dns.HmacSHA256, Secret: testSecret}}
	}
	reg := prometheus.NewRegistry()
	tn := &testNode{store: st, m: metrics.New(reg), reg: reg}
	tn.n = New(st, cfg, func() *zone.Set { return zone.NewSet() }, testLogger(t), tn.m)
	tn.n.OnExpire(func(origin string, serve bool) {
		tn.mu.Lock()
		defer tn.mu.Unlock()
		tn.expiry = append(tn.expiry, fmt.Sprintf("%s %v", origin, serve))
	})
	st.Subscribe(func(origin string, z *zone.Zone) {
		if z == nil {
			tn.served.Store(origin, uint32(0))
		} else {
			tn.served.Store(origin, z.Serial())
		}
		tn.n.Committed(origin, z)
	})
	s := tn.n.secondary
	s.jitter = func(time.Duration) time.Duration { return 0 }
	s.t.soaTimeout = time.Second
	s.t.xfrRead = 2 * time.Second
	return tn
}

func (tn *testNode) expiries() []string {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return slices.Clone(tn.expiry)
}

// testLogger logs to the test's output with -v, and nowhere otherwise.
func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// run runs the node until the test ends.
func (tn *testNode) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tn.n.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the node did not stop within 10s")
		}
	})
}

// serial returns the stored serial of origin, 0 when there is none.
func (tn *testNode) serial(origin string) uint32 {
	z, err := tn.store.Load(origin)
	if err != nil {
		return 0
	}
	return z.Serial()
}

// waitFor polls cond every 20ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for i := 0; i < 10000 && time.Now().Before(deadline); i++ {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// TestRefresh runs one refresh of a secondary zone against a fake
// primary: what is stored afterwards, and by which kind of transfer.
func TestRefresh(t *testing.T) {
	v1text := zoneText(1)
	v2text := zoneText(2, "-www A", "-t000 TXT", "www A 192.0.2.20", "new A 192.0.2.30")
	v3text := zoneText(3, "-www A", "-t000 TXT", "-t001 TXT", "www A 192.0.2.20", "new 600 A 192.0.2.30", "@ MX 10 mail", "mail A 192.0.2.25")
	v1 := buildZone(t, testOrigin, v1text)
	v2 := buildZone(t, testOrigin, v2text)
	v3 := buildZone(t, testOrigin, v3text)
	// v2big differs from v1 by more than one message of IXFR.
	var gone []string
	for i := range 100 {
		gone = append(gone, fmt.Sprintf("-t%03d TXT", i))
	}
	v2big := buildZone(t, testOrigin, zoneText(2, gone...))
	// stream returns text as an AXFR stream: records, then the SOA again.
	stream := func(text string) []dns.RR {
		rrs := parseRRs(t, testOrigin, text)
		return append(rrs, rrs[0])
	}
	tests := []struct {
		name     string
		stored   *zone.Zone // the copy before the refresh; nil: none
		zone     func() *fakeZone
		key      string // the secondary's and the primary's
		unsigned bool   // the primary does not sign its answers
		wrongKey bool   // the secondary signs with another secret
		wantErr  error  // nil: success; errAny: any error
		want     *zone.Zone
		wantXfr  map[string]float64 // "IXFR success" → count
	}{
		{
			name:    "AXFR into an empty store",
			zone:    func() *fakeZone { return &fakeZone{versions: []*zone.Zone{v1}} },
			want:    v1,
			wantXfr: map[string]float64{"AXFR success": 1},
		},
		{
			name:    "AXFR with TSIG",
			zone:    func() *fakeZone { return &fakeZone{versions: []*zone.Zone{v1}} },
			key:     testKey,
			want:    v1,
			wantXfr: map[string]float64{"AXFR success": 1},
		},
		{
			name:    "IXFR incremental over two changes",
			stored:  v1,
			zone:    func() *fakeZone { return &fakeZone{versions: []*zone.Zone{v1, v2, v3}} },
			want:    v3,
			wantXfr: map[string]float64{"IXFR success": 1},
		},
		{
			name:    "IXFR incremental with TSIG",
			stored:  v2,
			zone:    func() *fakeZone { return &fakeZone{versions: []*zone.Zone{v1, v2, v3}} },
			key:     testKey,
			want:    v3,
			wantXfr: map[string]float64{"IXFR success": 1},
		},
		{
			name:    "IXFR answered AXFR-style",
			stored:  v1,
			zone:    func() *fakeZone { return &fakeZone{versions: []*zone.Zone{v1, v3}, noIXFR: true} },
			want:    v3,
			wantXfr: map[string]float64{"IXFR success": 1},
		},
		{
			name:    "IXFR not implemented: AXFR",
			stored:  v1,
			zone:    func() *fakeZone { return &fakeZone{versions: []*zone.Zone{v1, v2}, refuseIXFR: true} },
			want:    v2,
			wantXfr: map[string]float64{"IXFR failed": 1, "AXFR success": 1},
		},
		{
			name:   "IXFR deleting a record the copy lacks: AXFR",
			stored: v1,
			zone: func() *fakeZone {
				return &fakeZone{versions: []*zone.Zone{v1, v2}, ixfr: parseRRs(t, testOrigin, fmt.Sprintf(
					"$ORIGIN %s\n$TTL 300\n@ SOA ns1 hostmaster 2 3600 600 86400 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\nnothere A 192.0.2.99\n"+
						"@ SOA ns1 hostmaster 2 3600 600 86400 300\n@ SOA ns1 hostmaster 2 3600 600 86400 300\n", testOrigin))}
			},
			want:    v2,
			wantXfr: map[string]float64{"IXFR failed": 1, "AXFR success": 1},
		},
		{
			name:   "IXFR from another serial: AXFR",
			stored: v1,
			zone: func() *fakeZone {
				return &fakeZone{versions: []*zone.Zone{v1, v2}, ixfr: parseRRs(t, testOrigin, fmt.Sprintf(
					"$ORIGIN %s\n$TTL 300\n@ SOA ns1 hostmaster 2 3600 600 86400 300\n@ SOA ns1 hostmaster 7 3600 600 86400 300\n"+
						"@ SOA ns1 hostmaster 2 3600 600 86400 300\n@ SOA ns1 hostmaster 2 3600 600 86400 300\n", testOrigin))}
			},
			want:    v2,
			wantXfr: map[string]float64{"IXFR failed": 1, "AXFR success": 1},
		},
		{
			name:   "up to date: no transfer",
			stored: v2,
			zone:   func() *fakeZone { return &fakeZone{versions: []*zone.Zone{v1, v2}} },
			want:   v2,
		},
		{
			name:   "primary behind (RFC 1982): the copy stays",
			stored: v3,
			zone:   func() *fakeZone { return &fakeZone{versions: []*zone.Zone{v2}} },
			want:   v3,
		},
		{
			name:    "AXFR breaking off midway leaves nothing",
			zone:    func() *fakeZone { return &fakeZone{versions: []*zone.Zone{v1}, breakAfter: 2} },
			wantErr: errAny,
		},
		{
			name:    "IXFR and AXFR breaking off midway: the old copy stays",
			stored:  v1,
			zone:    func() *fakeZone { return &fakeZone{versions: []*zone.Zone{v1, v2big}, breakAfter: 1} },
			wantErr: errAny,
			want:    v1,
			wantXfr: map[string]float64{"IXFR failed": 1, "AXFR failed": 1},
		},
		{
			name:   "record outside the zone: the old copy stays",
			stored: v1,
			zone: func() *fakeZone {
				return &fakeZone{versions: []*zone.Zone{v1, v2}, refuseIXFR: true, axfr: stream(v2text + "www.example.net. A 192.0.2.66\n")}
			},
			wantErr: errInvalidZone,
			want:    v1,
			wantXfr: map[string]float64{"IXFR failed": 1, "AXFR invalid": 1},
		},
		{
			name: "no NS at the apex: nothing stored",
			zone: func() *fakeZone {
				return &fakeZone{versions: []*zone.Zone{v1}, axfr: stream(fmt.Sprintf("$ORIGIN %s\n@ SOA ns1 hostmaster 1 3600 600 86400 300\nns1 A 192.0.2.1\n", testOrigin))}
			},
			wantErr: errInvalidZone,
			wantXfr: map[string]float64{"AXFR invalid": 1},
		},
		{
			name:   "transfer of an older serial than announced",
			stored: v1,
			zone: func() *fakeZone {
				return &fakeZone{versions: []*zone.Zone{v1, v2}, refuseIXFR: true, axfr: stream(v1text)}
			},
			wantErr: errInvalidZone,
			want:    v1,
		},
		{
			name: "SOA of another zone",
			zone: func() *fakeZone {
				return &fakeZone{versions: []*zone.Zone{v1}, axfr: stream("$ORIGIN example.com.\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\n")}
			},
			wantErr: errInvalidZone,
		},
		{
			name: "AXFR not ending with its SOA",
			zone: func() *fakeZone {
				rrs := parseRRs(t, testOrigin, v1text)
				return &fakeZone{versions: []*zone.Zone{v1}, axfr: append(rrs, parseRRs(t, testOrigin, zoneText(9))[0])}
			},
			wantErr: errBadTransfer,
		},
		{
			name:     "unsigned answers to signed queries",
			zone:     func() *fakeZone { return &fakeZone{versions: []*zone.Zone{v1}} },
			key:      testKey,
			unsigned: true,
			wantErr:  errAny,
		},
		{
			name:     "wrong TSIG secret",
			zone:     func() *fakeZone { return &fakeZone{versions: []*zone.Zone{v1}} },
			key:      testKey,
			wrongKey: true,
			wantErr:  errAny,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePrimary(t, tt.key)
			f.set(testOrigin, tt.zone())
			f.setUnsigned(tt.unsigned)
			cfg := Config{}
			if tt.wrongKey {
				cfg.Keys = map[string]Key{testKey: {Algorithm: dns.HmacSHA256, Secret: "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC0wMTIzNDU="}}
			}
			tn := newTestNode(t, cfg)
			if tt.stored != nil {
				if _, err := tn.store.PutTransfer(cloneZone(t, tt.stored), "seed"); err != nil {
					t.Fatal(err)
				}
			}
			sz := SecondaryZone{Zone: testOrigin, Primaries: []Target{{Addr: f.addr, Key: tt.key}}, Key: tt.key}
			w := &worker{origin: testOrigin, idx: -1}
			w.cfg.Store(&sz)
			var st zoneState
			err := tn.n.secondary.refresh(t.Context(), w, &st)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("refresh: %v", err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("refresh succeeded; want an error (%v)", tt.wantErr)
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("refresh: %v; want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				// What is served is what was there before.
				v, _ := tn.served.Load(testOrigin)
				var before any
				if tt.stored != nil {
					before = tt.stored.Serial()
				}
				if v != before {
					t.Errorf("served serial %v after a failed refresh, want %v", v, before)
				}
			}
			got, lerr := tn.store.Load(testOrigin)
			switch {
			case tt.want == nil && lerr == nil:
				t.Errorf("a zone of serial %d was stored; want none", got.Serial())
			case tt.want != nil && lerr != nil:
				t.Errorf("nothing stored: %v", lerr)
			case tt.want != nil && !slices.Equal(zoneStrings(got), zoneStrings(tt.want)):
				t.Errorf("stored zone (serial %d) differs from serial %d:\n got %s\nwant %s", got.Serial(), tt.want.Serial(),
					strings.Join(zoneStrings(got), "\n     "), strings.Join(zoneStrings(tt.want), "\n     "))
			}
			for _, typ := range []string{"AXFR", "IXFR"} {
				for _, res := range []string{xfrSuccess, xfrFailed, xfrInvalid} {
					k := typ + " " + res
					if tt.wantXfr == nil && tt.wantErr != nil {
						continue // not checked
					}
					if got := testutil.ToFloat64(tn.m.TransfersIn.WithLabelValues(testOrigin, typ, res)); got != tt.wantXfr[k] {
						t.Errorf("transfers_in_total{type=%s,result=%s} = %v, want %v", typ, res, got, tt.wantXfr[k])
					}
				}
			}
			if tt.wantErr == nil && tt.want != nil {
				if m, err := tn.store.Meta(testOrigin); err != nil || m.Refreshed.IsZero() || m.Kind != zonestore.KindSecondary {
					t.Errorf("meta after a successful refresh: %+v, %v", m, err)
				}
			}
		})
	}
}

// errAny stands for any error in the tables.
var errAny = errors.New("any error")

// TestRefreshSecondPrimary: a primary that refuses is passed over for the
// next one.
func TestRefreshSecondPrimary(t *testing.T) {
	v1 := buildZone(t, testOrigin, zoneText(1))
	bad, good := newFakePrimary(t, ""), newFakePrimary(t, "")
	bad.set(testOrigin, &fakeZone{versions: []*zone.Zone{v1}})
	bad.setRefused(true)
	good.set(testOrigin, &fakeZone{versions: []*zone.Zone{v1}})
	tn := newTestNode(t, Config{})
	sz := SecondaryZone{Zone: testOrigin, Primaries: []Target{{Addr: bad.addr}, {Addr: good.addr}}}
	w := &worker{origin: testOrigin}
	w.cfg.Store(&sz)
	if err := tn.n.secondary.refresh(t.Context(), w, &zoneState{}); err != nil {
		t.Fatal(err)
	}
	if tn.serial(testOrigin) != 1 {
		t.Errorf("stored serial %d, want 1", tn.serial(testOrigin))
	}
	if m, _ := tn.store.Meta(testOrigin); m.Source != good.addr.String() {
		t.Errorf("source %q, want %s", m.Source, good.addr)
	}
}

// TestRefreshPrimaryZoneHere: a secondary zone whose name is a primary
// zone in the store is never overwritten.
func TestRefreshPrimaryZoneHere(t *testing.T) {
	v1 := buildZone(t, testOrigin, zoneText(1))
	f := newFakePrimary(t, "")
	f.set(testOrigin, &fakeZone{versions: []*zone.Zone{buildZone(t, testOrigin, zoneText(5))}})
	tn := newTestNode(t, Config{})
	if _, err := tn.store.Import(v1, false); err != nil {
		t.Fatal(err)
	}
	sz := SecondaryZone{Zone: testOrigin, Primaries: []Target{{Addr: f.addr}}}
	w := &worker{origin: testOrigin}
	w.cfg.Store(&sz)
	err := tn.n.secondary.refresh(t.Context(), w, &zoneState{})
	if !errors.Is(err, errPrimaryHere) {
		t.Fatalf("refresh: %v; want %v", err, errPrimaryHere)
	}
	if tn.serial(testOrigin) != 1 || f.count("AXFR")+f.count("IXFR") != 0 {
		t.Errorf("serial %d, transfers %d", tn.serial(testOrigin), f.count("AXFR")+f.count("IXFR"))
	}
}

// TestAssemble checks the interpretation of transfer streams.
func TestAssemble(t *testing.T) {
	cur := buildZone(t, testOrigin, "$ORIGIN example.org.\n@ 300 SOA ns1 h 1 3600 600 86400 300\n@ 300 NS ns1\nns1 300 A 192.0.2.1\na 300 A 192.0.2.7\nb 300 TXT x\n")
	soa := func(serial int) string {
		return fmt.Sprintf("@ 300 SOA ns1 h %d 3600 600 86400 300", serial)
	}
	tests := []struct {
		name    string
		qtype   uint16
		stream  []string
		want    []string // the zone's records apart from the SOA; nil with wantErr
		wantErr error
	}{
		{
			name:   "incremental, two sequences",
			qtype:  dns.TypeIXFR,
			stream: []string{soa(3), soa(1), "a 300 A 192.0.2.7", soa(2), "a 300 A 192.0.2.8", soa(2), "b 300 TXT x", soa(3), "c 300 TXT y", soa(3)},
			want:   []string{"@ 300 NS ns1", "ns1 300 A 192.0.2.1", "a 300 A 192.0.2.8", "c 300 TXT y"},
		},
		{
			name:   "incremental, a TTL change of a shared RRset",
			qtype:  dns.TypeIXFR,
			stream: []string{soa(2), soa(1), soa(2), "ns1 600 A 192.0.2.1", "ns1 600 A 192.0.2.11", soa(2)},
			want:   []string{"@ 300 NS ns1", "ns1 600 A 192.0.2.1", "ns1 600 A 192.0.2.11", "a 300 A 192.0.2.7", "b 300 TXT x"},
		},
		{
			name:   "incremental, a record added then deleted",
			qtype:  dns.TypeIXFR,
			stream: []string{soa(3), soa(1), soa(2), "d 300 A 192.0.2.9", soa(2), "d 300 A 192.0.2.9", soa(3), soa(3)},
			want:   []string{"@ 300 NS ns1", "ns1 300 A 192.0.2.1", "a 300 A 192.0.2.7", "b 300 TXT x"},
		},
		{
			name:    "incremental, sequence from a wrong serial",
			qtype:   dns.TypeIXFR,
			stream:  []string{soa(3), soa(2), soa(3), soa(3)},
			wantErr: errIXFRNotUsable,
		},
		{
			name:    "incremental, deletes what is not there",
			qtype:   dns.TypeIXFR,
			stream:  []string{soa(2), soa(1), "zz 300 A 192.0.2.1", soa(2), soa(2)},
			wantErr: errIXFRNotUsable,
		},
		{
			name:    "incremental, ends early",
			qtype:   dns.TypeIXFR,
			stream:  []string{soa(3), soa(1), soa(2), "d 300 A 192.0.2.9", soa(2), soa(3)},
			wantErr: errBadTransfer,
		},
		{
			name:    "incremental, another zone's SOA between the differences",
			qtype:   dns.TypeIXFR,
			stream:  []string{soa(2), soa(1), "example.net. 300 SOA ns1 h 2 3600 600 86400 300", "c 300 TXT y", soa(2)},
			wantErr: errBadTransfer,
		},
		{
			name:    "incremental, adds outside the zone",
			qtype:   dns.TypeIXFR,
			stream:  []string{soa(2), soa(1), soa(2), "x.example.net. 300 A 192.0.2.1", soa(2)},
			wantErr: errInvalidZone,
		},
		{
			name:    "the SOA alone",
			qtype:   dns.TypeIXFR,
			stream:  []string{soa(5)},
			wantErr: errIXFRNotUsable,
		},
		{
			name:   "AXFR-style IXFR",
			qtype:  dns.TypeIXFR,
			stream: []string{soa(4), "@ 300 NS ns1", "ns1 300 A 192.0.2.1", soa(4)},
			want:   []string{"@ 300 NS ns1", "ns1 300 A 192.0.2.1"},
		},
		{
			name:    "AXFR, first record not an SOA",
			qtype:   dns.TypeAXFR,
			stream:  []string{"@ 300 NS ns1", soa(4)},
			wantErr: errBadTransfer,
		},
		{
			name:    "AXFR, a second SOA inside",
			qtype:   dns.TypeAXFR,
			stream:  []string{soa(4), "@ 300 NS ns1", soa(4), "ns1 300 A 192.0.2.1", soa(4)},
			wantErr: errInvalidZone,
		},
		{
			name:    "AXFR, class CH",
			qtype:   dns.TypeAXFR,
			stream:  []string{soa(4), "@ 300 NS ns1", "x 300 CH TXT y", soa(4)},
			wantErr: errInvalidZone,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rrs := parseRRs(t, testOrigin, "$ORIGIN example.org.\n"+strings.Join(tt.stream, "\n")+"\n")
			before := zoneStrings(cur)
			z, changed, err := assemble(testOrigin, cur, rrs, tt.qtype)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("assemble: %v; want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			first := rrs[0].(*dns.SOA)
			want := buildZone(t, testOrigin, "$ORIGIN example.org.\n"+soa(int(first.Serial))+"\n"+strings.Join(tt.want, "\n")+"\n")
			if !slices.Equal(zoneStrings(z), zoneStrings(want)) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(zoneStrings(z), "\n  "), strings.Join(zoneStrings(want), "\n  "))
			}
			if !slices.Equal(zoneStrings(cur), before) {
				t.Errorf("the current zone was changed")
			}
			// An incremental reply names every name it changed: the
			// store writes and journals those alone.
			if changed != nil {
				for _, rr := range append(z.Records(), cur.Records()...) {
					k, _ := zone.WireKey(rr.Header().Name)
					n, o := z.LookupAny(k), cur.LookupAny(k)
					if !changed[strings.ToLower(k)] && (n == nil || o == nil || !slices.Equal(nodeStrings(n), nodeStrings(o))) {
						t.Errorf("%s changed but is not named", rr.Header().Name)
					}
				}
			}
		})
	}
}

// nodeStrings renders a node's records and signatures, sorted.
func nodeStrings(n *zone.Node) []string {
	var out []string
	for _, set := range n.RRsets {
		for _, rr := range set.RRs() {
			out = append(out, rr.String())
		}
		for _, rr := range set.Sigs() {
			out = append(out, rr.String())
		}
	}
	slices.Sort(out)
	return out
}

// TestNotify checks who may NOTIFY a secondary zone.
func TestNotify(t *testing.T) {
	primary := netip.MustParseAddrPort("127.0.0.2:53")
	tests := []struct {
		name      string
		zone      string
		key       string // the zone's key
		from      string
		peerKey   string
		wantRcode int
		wantKick  bool
		wantLabel string
		// notRunning: the zone is configured, its worker not started.
		notRunning bool
	}{
		{name: "from the primary", zone: testOrigin, from: "127.0.0.2:40000", wantRcode: dns.RcodeSuccess, wantKick: true, wantLabel: notifyAccepted},
		{name: "from the primary, mapped IPv6", zone: testOrigin, from: "[::ffff:127.0.0.2]:40000", wantRcode: dns.RcodeSuccess, wantKick: true, wantLabel: notifyAccepted},
		{name: "signed by the primary", zone: testOrigin, key: testKey, from: "127.0.0.2:40000", peerKey: testKey, wantRcode: dns.RcodeSuccess, wantKick: true, wantLabel: notifyAccepted},
		{name: "unsigned when a key is required", zone: testOrigin, key: testKey, from: "127.0.0.2:40000", wantRcode: dns.RcodeNotAuth, wantLabel: notifyRefused},
		{name: "another key", zone: testOrigin, key: testKey, from: "127.0.0.2:40000", peerKey: "other.", wantRcode: dns.RcodeNotAuth, wantLabel: notifyRefused},
		{name: "from elsewhere", zone: testOrigin, from: "127.0.0.3:53", wantRcode: dns.RcodeRefused, wantLabel: notifyRefused},
		{name: "from elsewhere, signed", zone: testOrigin, key: testKey, from: "127.0.0.3:53", peerKey: testKey, wantRcode: dns.RcodeRefused, wantLabel: notifyRefused},
		{name: "not a secondary zone", zone: "example.com.", from: "127.0.0.2:40000", wantRcode: dns.RcodeNotAuth, wantLabel: notifyNotSecondary},
		{name: "configured, before the node runs", zone: testOrigin, from: "127.0.0.2:40000", notRunning: true, wantRcode: dns.RcodeSuccess, wantLabel: notifyAccepted},
		{name: "configured, before the node runs, from elsewhere", zone: testOrigin, from: "127.0.0.9:53", notRunning: true, wantRcode: dns.RcodeRefused, wantLabel: notifyRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sz := SecondaryZone{Zone: testOrigin, Primaries: []Target{{Addr: primary, Key: tt.key}}, Key: tt.key}
			w := &worker{origin: testOrigin, idx: -1, done: make(chan struct{})}
			w.cfg.Store(&sz)
			var tn *testNode
			if tt.notRunning {
				tn = newTestNode(t, Config{Secondaries: []SecondaryZone{sz}})
			} else {
				tn = newTestNode(t, Config{})
				tn.n.secondary.workers[testOrigin] = w
			}
			req := new(dns.Msg)
			req.SetNotify(tt.zone)
			r := tn.n.Notify(t.Context(), req, server.Peer{Addr: netip.MustParseAddrPort(tt.from), Key: tt.peerKey})
			if r.Rcode != tt.wantRcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.wantRcode])
			}
			if r.Opcode != dns.OpcodeNotify || r.Id != req.Id || len(r.Question) != 1 {
				t.Errorf("reply header: %v", r)
			}
			if r.Authoritative != (tt.wantRcode == dns.RcodeSuccess) {
				t.Errorf("AA %v", r.Authoritative)
			}
			tn.n.secondary.mu.Lock()
			kicked := w.kicked && w.idx == 0
			tn.n.secondary.mu.Unlock()
			if kicked != tt.wantKick {
				t.Errorf("check triggered: %v, want %v", kicked, tt.wantKick)
			}
			label := testOrigin
			if tt.wantLabel == notifyNotSecondary {
				label = metrics.ZoneNone
			}
			if got := testutil.ToFloat64(tn.m.NotifyRecv.WithLabelValues(label, tt.wantLabel)); got != 1 {
				t.Errorf("notify_received_total{zone=%s,result=%s} = %v, want 1", label, tt.wantLabel, got)
			}
		})
	}
}

// TestNextCheck checks the timers taken from the SOA and their bounds.
func TestNextCheck(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	soa := func(refresh, retry, expire uint32) *dns.SOA {
		return &dns.SOA{Refresh: refresh, Retry: retry, Expire: expire}
	}
	tests := []struct {
		name     string
		st       zoneState
		ok       bool
		want     time.Duration
		expireIn time.Duration // from refreshed; 0: not checked
	}{
		{name: "refresh after a success", st: zoneState{soa: soa(3600, 600, 86400)}, ok: true, want: time.Hour, expireIn: 24 * time.Hour},
		{name: "retry after a failure", st: zoneState{soa: soa(3600, 600, 86400)}, want: 10 * time.Minute},
		{name: "tiny refresh is raised", st: zoneState{soa: soa(0, 0, 0)}, ok: true, want: 2 * time.Second, expireIn: 10 * time.Second},
		{name: "huge refresh is lowered", st: zoneState{soa: soa(1<<31, 1<<31, 1<<31)}, ok: true, want: 7 * 24 * time.Hour},
		{name: "huge retry is lowered", st: zoneState{soa: soa(1<<31, 1<<31, 1<<31)}, want: 24 * time.Hour},
		{name: "no copy: first retry", st: zoneState{failures: 1}, want: 5 * time.Second},
		{name: "no copy: backoff doubles", st: zoneState{failures: 3}, want: 20 * time.Second},
		{name: "no copy: backoff is bounded", st: zoneState{failures: 40}, want: 5 * time.Minute},
	}
	s := newSecondaries(&Node{})
	s.jitter = func(time.Duration) time.Duration { return 0 }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.nextCheck(&tt.st, tt.ok, now).Sub(now); got != tt.want {
				t.Errorf("next check in %v, want %v", got, tt.want)
			}
			if tt.expireIn != 0 {
				tt.st.refreshed = now
				if at, ok := s.expireAt(&worker{}, &tt.st); !ok || at.Sub(now) != tt.expireIn {
					t.Errorf("expires in %v (%v), want %v", at.Sub(now), ok, tt.expireIn)
				}
			}
		})
	}
	// The configured expiry overrides the SOA's.
	for _, c := range []struct {
		expire time.Duration
		want   time.Duration
		ok     bool
	}{{0, 24 * time.Hour, true}, {72 * time.Hour, 72 * time.Hour, true}, {ExpireNever, 0, false}} {
		w := &worker{}
		w.cfg.Store(&SecondaryZone{Expire: c.expire})
		st := zoneState{soa: soa(3600, 600, 86400), refreshed: now}
		at, ok := s.expireAt(w, &st)
		if ok != c.ok || (ok && at.Sub(now) != c.want) {
			t.Errorf("expire %v: expires in %v (%v), want %v (%v)", c.expire, at.Sub(now), ok, c.want, c.ok)
		}
	}
	s.jitter = randomJitter
	st := zoneState{soa: soa(1000, 100, 10000)}
	for range 100 {
		d := s.nextCheck(&st, true, now).Sub(now)
		if d > 1000*time.Second || d < 900*time.Second {
			t.Fatalf("jittered refresh %v outside [900s, 1000s]", d)
		}
	}
}

// TestSecondaryRuns runs a node with a secondary zone: the first
// transfer, NOTIFY-triggered IXFRs, expiry while the primary refuses and
// recovery, and the end of refreshes when the zone is unconfigured.
func TestSecondaryRuns(t *testing.T) {
	// short has refresh 1s, retry 1s, expire 3s; the others the SOA
	// timers of zoneText (an hour and more).
	short := func(serial uint32, extra ...string) *zone.Zone {
		text := strings.Replace(zoneText(serial, extra...), fmt.Sprintf("%d 3600 600 86400 300", serial), fmt.Sprintf("%d 1 1 3 300", serial), 1)
		return buildZone(t, testOrigin, text)
	}
	f := newFakePrimary(t, testKey)
	f.set(testOrigin, &fakeZone{versions: []*zone.Zone{buildZone(t, testOrigin, zoneText(1))}})
	sz := SecondaryZone{Zone: testOrigin, Primaries: []Target{{Addr: f.addr, Key: testKey}}, Key: testKey}
	tn := newTestNode(t, Config{Secondaries: []SecondaryZone{sz}})
	s := tn.n.secondary
	s.t.minRefresh, s.t.minRetry, s.t.minExpire = 200*time.Millisecond, 200*time.Millisecond, time.Second
	s.t.startSpread = 0
	tn.run(t)
	waitFor(t, 10*time.Second, "the first transfer", func() bool { return tn.serial(testOrigin) == 1 })

	// Only the NOTIFY can bring serial 2 before the hour is up.
	f.update(testOrigin, buildZone(t, testOrigin, zoneText(2, "a A 192.0.2.50")))
	req := new(dns.Msg)
	req.SetNotify(testOrigin)
	if r := tn.n.Notify(t.Context(), req, server.Peer{Addr: netip.AddrPortFrom(f.addr.Addr(), 999), Key: testKey}); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("NOTIFY: %v", r)
	}
	waitFor(t, 10*time.Second, "the IXFR after NOTIFY", func() bool { return tn.serial(testOrigin) == 2 })
	// Counted just after the commit: the count may trail the serial.
	waitFor(t, 10*time.Second, "the IXFR counted", func() bool {
		return testutil.ToFloat64(tn.m.TransfersIn.WithLabelValues(testOrigin, "IXFR", xfrSuccess)) >= 1
	})
	if got := testutil.ToFloat64(tn.m.TransfersIn.WithLabelValues(testOrigin, "IXFR", xfrSuccess)); got != 1 {
		t.Errorf("IXFR successes %v, want 1", got)
	}
	if got := testutil.ToFloat64(tn.m.LastRefresh.WithLabelValues(testOrigin)); got < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last refresh metric %v", got)
	}

	// Short timers, then the primary refuses: the zone expires, is kept,
	// and is served again once the primary answers.
	f.update(testOrigin, short(3))
	if r := tn.n.Notify(t.Context(), req, server.Peer{Addr: f.addr, Key: testKey}); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("NOTIFY: %v", r)
	}
	waitFor(t, 10*time.Second, "serial 3", func() bool { return tn.serial(testOrigin) == 3 })
	f.setRefused(true)
	waitFor(t, 15*time.Second, "expiry", func() bool { return slices.Contains(tn.expiries(), testOrigin+" false") })
	if got := testutil.ToFloat64(tn.m.ZoneExpired.WithLabelValues(testOrigin)); got != 1 {
		t.Errorf("secondary_expired = %v, want 1", got)
	}
	if tn.serial(testOrigin) != 3 {
		t.Errorf("the expired zone's data was not kept: serial %d", tn.serial(testOrigin))
	}
	f.setRefused(false)
	waitFor(t, 15*time.Second, "serving again", func() bool { return slices.Contains(tn.expiries(), testOrigin+" true") })
	if got := testutil.ToFloat64(tn.m.ZoneExpired.WithLabelValues(testOrigin)); got != 0 {
		t.Errorf("secondary_expired = %v, want 0", got)
	}

	// Unconfigured: no more refreshes, the copy stays. Another zone with
	// the same short timers, on the same primary, takes its place in the
	// configuration: its refreshes show that refreshing goes on, and that
	// the zone would have been refreshed several times meanwhile.
	const other = "other.example."
	f.set(other, &fakeZone{versions: []*zone.Zone{buildZone(t, other, "$ORIGIN other.example.\n@ 300 SOA ns h 1 1 1 3 300\n@ 300 NS ns\nns 300 A 192.0.2.1\n")}})
	tn.n.Reconfigure(Config{Keys: tn.n.config().Keys,
		Secondaries: []SecondaryZone{{Zone: other, Primaries: []Target{{Addr: f.addr, Key: testKey}}, Key: testKey}}})
	waitFor(t, 10*time.Second, "the worker to stop", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.workers[testOrigin] == nil
	})
	before, otherBefore := f.countFor("SOA", testOrigin), f.countFor("SOA", other)
	waitFor(t, 20*time.Second, "three refreshes of the other zone", func() bool { return f.countFor("SOA", other) >= otherBefore+3 })
	if after := f.countFor("SOA", testOrigin); after != before {
		t.Errorf("%d SOA queries after the zone was unconfigured, while the zone configured in its place had %d", after-before, f.countFor("SOA", other)-otherBefore)
	}
	if tn.serial(testOrigin) != 3 {
		t.Errorf("the unconfigured zone's copy is gone")
	}
	if r := tn.n.Notify(t.Context(), req, server.Peer{Addr: f.addr, Key: testKey}); r.Rcode != dns.RcodeNotAuth {
		t.Errorf("NOTIFY for an unconfigured zone: %s", dns.RcodeToString[r.Rcode])
	}
}

// TestExpiryAcrossRestart: a copy last refreshed longer ago than its
// expire time is not served after a restart until a primary answers.
func TestExpiryAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sovdns.db")
	// Stored two minutes ago; expire 60s, retry 1s.
	then := time.Now().Add(-2 * time.Minute)
	old := storeExpiredCopy(t, path, then)

	f := newFakePrimary(t, "")
	f.set(testOrigin, &fakeZone{versions: []*zone.Zone{old}})
	f.setRefused(true)
	st, err := zonestore.Open(path, zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := metrics.New(prometheus.NewRegistry())
	sz := SecondaryZone{Zone: testOrigin, Primaries: []Target{{Addr: f.addr}}}
	n := New(st, Config{Secondaries: []SecondaryZone{sz}}, func() *zone.Set { return zone.NewSet() }, slog.New(slog.DiscardHandler), m)
	calls := make(chan string, 10)
	n.OnExpire(func(origin string, serve bool) { calls <- fmt.Sprintf("%s %v", origin, serve) })
	n.secondary.jitter = func(time.Duration) time.Duration { return 0 }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case c := <-calls:
		if c != testOrigin+" false" {
			t.Fatalf("OnExpire(%s), want %s false", c, testOrigin)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the expired copy was not withdrawn")
	}
	if got := testutil.ToFloat64(m.LastRefresh.WithLabelValues(testOrigin)); got != float64(then.Unix()) {
		t.Errorf("last refresh metric %v, want the stored time %d", got, then.Unix())
	}
	f.setRefused(false)
	select {
	case c := <-calls:
		if c != testOrigin+" true" {
			t.Fatalf("OnExpire(%s), want %s true", c, testOrigin)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the copy was not served again after the primary answered")
	}
	if m, err := st.Meta(testOrigin); err != nil || time.Since(m.Refreshed) > time.Minute {
		t.Errorf("the refresh time was not stored: %+v, %v", m, err)
	}
}

// gathered returns the value of the gauge name{zone} gathered from reg
// (the series without a zone label when zone is empty), and whether there
// is one.
func gathered(t *testing.T, reg prometheus.Gatherer, name, zone string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			z := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "zone" {
					z = l.GetValue()
				}
			}
			if z == zone {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// TestSecondaryExpiryMetrics: the expiry time of each secondary copy, and
// the earliest of the node, is its last refresh plus the expire in effect
// (the SOA's, or the configured one), follows a new SOA expire and a
// reconfigured expire, and is absent for a copy that never expires. The
// series per zone go with their zone and while per-zone series are off.
func TestSecondaryExpiryMetrics(t *testing.T) {
	const (
		expiryName   = "sovdns_secondary_expiry_timestamp_seconds"
		refreshName  = "sovdns_secondary_last_refresh_timestamp_seconds"
		earliestName = "sovdns_secondary_earliest_expiry_timestamp_seconds"
		other, never = "other.example.", "never.example."
	)
	withExpire := func(origin string, serial, expire uint32) *zone.Zone {
		return buildZone(t, origin, fmt.Sprintf("$ORIGIN %s\n@ 300 SOA ns h %d 3600 600 %d 300\n@ 300 NS ns\nns 300 A 192.0.2.1\n", origin, serial, expire))
	}
	f := newFakePrimary(t, "")
	for _, origin := range []string{testOrigin, other, never} {
		f.set(origin, &fakeZone{versions: []*zone.Zone{withExpire(origin, 1, 86400)}})
	}
	primaries := []Target{{Addr: f.addr}}
	tn := newTestNode(t, Config{Secondaries: []SecondaryZone{
		{Zone: testOrigin, Primaries: primaries}, // the SOA's expire, a day
		{Zone: other, Primaries: primaries, Expire: 72 * time.Hour},
		{Zone: never, Primaries: primaries, Expire: ExpireNever},
	}})
	tn.n.secondary.t.startSpread = 0
	tn.run(t)
	keys := tn.n.config().Keys

	// expiryIs: origin's expiry series is its last refresh plus expire.
	expiryIs := func(origin string, expire time.Duration) func() bool {
		return func() bool {
			e, ok := gathered(t, tn.reg, expiryName, origin)
			r, rok := gathered(t, tn.reg, refreshName, origin)
			return ok && rok && e == r+expire.Seconds()
		}
	}
	// earliestIs: the node-wide earliest is origin's expiry.
	earliestIs := func(origin string) func() bool {
		return func() bool {
			e, ok := gathered(t, tn.reg, expiryName, origin)
			n, nok := gathered(t, tn.reg, earliestName, "")
			return ok && nok && n == e
		}
	}
	notify := func(origin string) {
		t.Helper()
		req := new(dns.Msg)
		req.SetNotify(origin)
		if r := tn.n.Notify(t.Context(), req, server.Peer{Addr: f.addr}); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("NOTIFY %s: %s", origin, dns.RcodeToString[r.Rcode])
		}
	}

	waitFor(t, 10*time.Second, "expiry of "+testOrigin+": refresh + the SOA's expire", expiryIs(testOrigin, 24*time.Hour))
	waitFor(t, 10*time.Second, "expiry of "+other+": refresh + the configured expire", expiryIs(other, 72*time.Hour))
	waitFor(t, 10*time.Second, "the earliest: "+testOrigin+"'s", earliestIs(testOrigin))
	waitFor(t, 10*time.Second, never+" refreshed", func() bool { _, ok := gathered(t, tn.reg, refreshName, never); return ok })
	if e, ok := gathered(t, tn.reg, expiryName, never); ok {
		t.Errorf("a copy that never expires has an expiry time: %v", e)
	}

	// A new SOA expire comes with the transfer.
	f.update(testOrigin, withExpire(testOrigin, 2, 4*86400))
	notify(testOrigin)
	waitFor(t, 10*time.Second, "expiry of "+testOrigin+" after the SOA's expire grew to 4 days", expiryIs(testOrigin, 96*time.Hour))
	waitFor(t, 10*time.Second, "the earliest: "+other+"'s", earliestIs(other))

	// A configured expire applies at once, without a refresh.
	refreshed, _ := gathered(t, tn.reg, refreshName, testOrigin)
	tn.n.Reconfigure(Config{Keys: keys, Secondaries: []SecondaryZone{
		{Zone: testOrigin, Primaries: primaries, Expire: 12 * time.Hour},
		{Zone: other, Primaries: primaries, Expire: ExpireNever},
		{Zone: never, Primaries: primaries, Expire: ExpireNever},
	}})
	waitFor(t, 10*time.Second, "expiry of "+testOrigin+" after expire was configured to 12h", expiryIs(testOrigin, 12*time.Hour))
	if r, _ := gathered(t, tn.reg, refreshName, testOrigin); r != refreshed {
		t.Errorf("last refresh moved from %v to %v: the expiry followed a refresh, not the configuration", refreshed, r)
	}
	waitFor(t, 10*time.Second, other+"'s expiry gone (configured never to expire)", func() bool {
		_, ok := gathered(t, tn.reg, expiryName, other)
		return !ok
	})
	waitFor(t, 10*time.Second, "the earliest: "+testOrigin+"'s", earliestIs(testOrigin))

	// Per-zone series off: only the node-wide earliest, kept current.
	tn.m.SetPerZone(false)
	before := time.Now().Unix()
	notify(testOrigin)
	waitFor(t, 10*time.Second, "the earliest after a refresh with per-zone series off", func() bool {
		n, ok := gathered(t, tn.reg, earliestName, "")
		return ok && n >= float64(before)+(12*time.Hour).Seconds()
	})
	if n := testutil.CollectAndCount(tn.m.SecondaryExpiry); n != 0 {
		t.Errorf("%d expiry series per zone while per-zone series are off", n)
	}

	// Per-zone series on again, then the zone unconfigured: its series
	// goes, and with no copy left that expires, the earliest too.
	tn.m.SetPerZone(true)
	notify(testOrigin)
	waitFor(t, 10*time.Second, "expiry of "+testOrigin+" per zone again", expiryIs(testOrigin, 12*time.Hour))
	tn.n.Reconfigure(Config{Keys: keys, Secondaries: []SecondaryZone{
		{Zone: other, Primaries: primaries, Expire: ExpireNever},
		{Zone: never, Primaries: primaries, Expire: ExpireNever},
	}})
	waitFor(t, 10*time.Second, testOrigin+"'s expiry gone with the zone", func() bool {
		_, ok := gathered(t, tn.reg, expiryName, testOrigin)
		return !ok
	})
	if n, ok := gathered(t, tn.reg, earliestName, ""); ok {
		t.Errorf("earliest expiry %v with no copy that expires", n)
	}
}

// TestReconfigureAddsZone: a secondary zone added by Reconfigure is
// transferred at once, and one whose primaries change follows them.
func TestReconfigureAddsZone(t *testing.T) {
	v1 := buildZone(t, testOrigin, zoneText(1))
	v2 := buildZone(t, testOrigin, zoneText(2, "a A 192.0.2.50"))
	f1, f2 := newFakePrimary(t, ""), newFakePrimary(t, "")
	f1.set(testOrigin, &fakeZone{versions: []*zone.Zone{v1}})
	f2.set(testOrigin, &fakeZone{versions: []*zone.Zone{v1, v2}})
	tn := newTestNode(t, Config{})
	tn.run(t)
	keys := tn.n.config().Keys
	tn.n.Reconfigure(Config{Keys: keys, Secondaries: []SecondaryZone{{Zone: testOrigin, Primaries: []Target{{Addr: f1.addr}}}}})
	waitFor(t, 10*time.Second, "the added zone", func() bool { return tn.serial(testOrigin) == 1 })

	tn.n.Reconfigure(Config{Keys: keys, Secondaries: []SecondaryZone{{Zone: testOrigin, Primaries: []Target{{Addr: f2.addr}}}}})
	req := new(dns.Msg)
	req.SetNotify(testOrigin)
	// Only the new primary has serial 2; a NOTIFY has it checked.
	waitFor(t, 10*time.Second, "serial 2 from the new primary", func() bool {
		tn.n.Notify(t.Context(), req, server.Peer{Addr: f2.addr})
		return tn.serial(testOrigin) == 2
	})
	if m, _ := tn.store.Meta(testOrigin); m.Source != f2.addr.String() {
		t.Errorf("source %q, want %s", m.Source, f2.addr)
	}
	if r := tn.n.Notify(t.Context(), req, server.Peer{Addr: netip.MustParseAddrPort("127.0.0.9:53")}); r.Rcode != dns.RcodeRefused {
		t.Errorf("NOTIFY from elsewhere: %s", dns.RcodeToString[r.Rcode])
	}
}
