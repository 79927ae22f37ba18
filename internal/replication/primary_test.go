package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// The keys the tests sign with.
const (
	keyXfr      = "xfr.key."
	keyUpd      = "upd.key."
	keyOther    = "other.key."
	secretXfr   = "c2VjcmV0LWZvci16b25lLXRyYW5zZmVycy0xMjM0NTY="
	secretUpd   = "c2VjcmV0LWZvci1keW5hbWljLXVwZGF0ZXMtNjU0MzI="
	secretOther = "c29tZS1vdGhlci1zZWNyZXQtbm90LWFsbG93ZWQtMDA="
)

func primaryTestKeys() map[string]Key {
	return map[string]Key{
		keyXfr:   {Algorithm: dns.HmacSHA256, Secret: secretXfr},
		keyUpd:   {Algorithm: dns.HmacSHA256, Secret: secretUpd},
		keyOther: {Algorithm: dns.HmacSHA256, Secret: secretOther},
	}
}

// primaryZone is the zone most tests serve.
const primaryZone = `$ORIGIN example.
$TTL 3600
@       SOA   ns1 hostmaster 1 7200 900 1209600 300
@       NS    ns1
@       NS    ns2
@       MX    10 mail
ns1     A     192.0.2.1
ns2     A     192.0.2.2
mail    A     192.0.2.25
www     A     192.0.2.10
www     A     192.0.2.11
www     AAAA  2001:db8::10
alias   CNAME www
sub     NS    ns.sub
ns.sub  A     192.0.2.53
txt     TXT   "one"
`

// primaryHarness is a zone store, the node replicating it and, when started, a
// server on 127.0.0.1 handing it transfers, NOTIFY and UPDATE.
type primaryHarness struct {
	t     *testing.T
	store *zonestore.Store
	node  *Node
	srv   *server.Server
	reg   *prometheus.Registry
	m     *metrics.Metrics
	addr  string // the server's address, once started
}

// newPrimaryHarness opens a store in a temporary directory holding zones (zone
// text, origin from its $ORIGIN) and builds the node with cfg.
func newPrimaryHarness(t *testing.T, cfg Config, zones ...string) *primaryHarness {
	t.Helper()
	st, err := zonestore.Open(t.TempDir()+"/zones.db", zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &primaryHarness{t: t, store: st, reg: prometheus.NewRegistry()}
	h.m = metrics.New(h.reg)
	log := slog.New(slog.DiscardHandler)
	h.srv = server.New(server.Config{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}, UDPSockets: 1}, log, h.m)
	if cfg.Keys == nil {
		cfg.Keys = primaryTestKeys()
	}
	h.srv.SetKeys(cfg.Keys)
	for _, text := range zones {
		h.importZone(text)
	}
	all, err := st.LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	h.srv.SetZones(zone.NewSet(all...))
	h.node = New(st, cfg, h.srv.Zones, log, h.m)
	h.srv.SetOps(h.node)
	st.Subscribe(func(origin string, z *zone.Zone) {
		cur := h.srv.Zones()
		if z == nil {
			key, _ := zone.WireKey(origin)
			h.srv.SetZones(cur.Without(key))
		} else {
			h.srv.SetZones(cur.With(z))
		}
		h.node.Committed(origin, z)
	})
	return h
}

func (h *primaryHarness) importZone(text string) *zone.Zone {
	h.t.Helper()
	origin := "example."
	if _, rest, ok := strings.Cut(text, "$ORIGIN "); ok {
		origin, _, _ = strings.Cut(rest, "\n")
	}
	p, err := zonestore.Parse(strings.NewReader(text), origin, "test.zone", nil)
	if err != nil {
		h.t.Fatal(err)
	}
	z, err := p.Build()
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.store.Import(z, false); err != nil {
		h.t.Fatal(err)
	}
	return z
}

// start runs the server (and with node true the node: NOTIFYs) until the
// test ends.
func (h *primaryHarness) start(node bool) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := h.srv.Run(ctx); err != nil {
			h.t.Errorf("server: %v", err)
		}
	}()
	if node {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.node.Run(ctx)
		}()
	}
	h.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	for range 200 {
		if addrs := h.srv.Addrs(); len(addrs) > 0 {
			h.addr = addrs[0].String()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatal("the server did not listen within 2s")
}

// edit commits c to the zone at origin.
func (h *primaryHarness) edit(origin string, c zonestore.Change) uint32 {
	h.t.Helper()
	res, err := h.store.Update(origin, c)
	if err != nil {
		h.t.Fatalf("edit %s: %v", origin, err)
	}
	return res.Serial
}

func rrOf(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("NewRR(%q): %v", s, err)
	}
	return rr
}

func rrsOf(t testing.TB, ss ...string) []dns.RR {
	t.Helper()
	out := make([]dns.RR, len(ss))
	for i, s := range ss {
		out[i] = rrOf(t, s)
	}
	return out
}

// xfrIn runs an AXFR or IXFR (serial: the client's) over TCP,
// signed with key unless it is empty, and returns the records of each
// message, or the error.
func xfrIn(t *testing.T, addr, origin string, qtype uint16, serial uint32, key string) ([][]dns.RR, error) {
	t.Helper()
	m := new(dns.Msg)
	if qtype == dns.TypeIXFR {
		m.SetIxfr(origin, serial, "ns1."+origin, "hostmaster."+origin)
	} else {
		m.SetAxfr(origin)
	}
	tr := &dns.Transfer{DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second}
	if key != "" {
		k := primaryTestKeys()[key]
		m.SetTsig(key, k.Algorithm, 300, time.Now().Unix())
		tr.TsigSecret = map[string]string{key: k.Secret}
	}
	ch, err := tr.In(m, addr)
	if err != nil {
		return nil, err
	}
	var msgs [][]dns.RR
	for env := range ch {
		if env.Error != nil {
			return msgs, env.Error
		}
		msgs = append(msgs, env.RR)
	}
	return msgs, nil
}

// xfrRcode is the response code of a transfer that failed with err, as
// miekg/dns reports it: ErrAuth for any NOTAUTH response with a TSIG.
func xfrRcode(err error) int {
	var rcode int
	switch {
	case err == nil:
		return dns.RcodeSuccess
	case errors.Is(err, dns.ErrAuth):
		return dns.RcodeNotAuth
	}
	if _, scanErr := fmt.Sscanf(err.Error(), "dns: bad xfr rcode: %d", &rcode); scanErr != nil {
		return -1
	}
	return rcode
}

// waitCounter waits up to 2s for c to reach want: the server counts a
// transfer once its last message is written, as the client reads it.
func waitCounter(t *testing.T, c prometheus.Collector, want float64) {
	t.Helper()
	var got float64
	for range 200 {
		if got = testutil.ToFloat64(c); got == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("counter is %v, want %v", got, want)
}

func flattenMsgs(msgs [][]dns.RR) []dns.RR {
	var out []dns.RR
	for _, m := range msgs {
		out = append(out, m...)
	}
	return out
}

// rrTexts returns rrs in presentation form, in order.
func rrTexts(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.String()
	}
	return out
}

// sortedRRTexts returns rrs in presentation form, sorted.
func sortedRRTexts(rrs []dns.RR) []string {
	out := rrTexts(rrs)
	slices.Sort(out)
	return out
}

// query sends m over network to the primaryHarness's server.
func (h *primaryHarness) query(network string, m *dns.Msg, key string) (*dns.Msg, error) {
	h.t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	if key != "" {
		k := primaryTestKeys()[key]
		m.SetTsig(key, k.Algorithm, 300, time.Now().Unix())
		c.TsigSecret = map[string]string{key: k.Secret}
	}
	ctx, cancel := context.WithTimeout(h.t.Context(), 4*time.Second)
	defer cancel()
	r, _, err := c.ExchangeContext(ctx, m, h.addr)
	return r, err
}

func loopbackACL(key string) ACL {
	return ACL{{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Key: key}}
}

func TestTransferAccess(t *testing.T) {
	h := newPrimaryHarness(t, Config{Policy: func(origin string) Policy {
		switch origin {
		case "example.":
			return Policy{AllowTransfer: loopbackACL(keyXfr)}
		case "open.example.":
			return Policy{AllowTransfer: ACL{{Any: true}}}
		}
		return Policy{} // refuses everyone
	}}, primaryZone,
		"$ORIGIN open.example.\n$TTL 300\n@ SOA ns1 h 7 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n",
		"$ORIGIN closed.example.\n$TTL 300\n@ SOA ns1 h 7 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n")
	h.start(false)

	tests := []struct {
		name   string
		origin string
		qtype  uint16
		key    string
		// wantRcode is the response code of a failure; 0: success.
		wantRcode int
	}{
		{name: "AXFR with the key", origin: "example.", qtype: dns.TypeAXFR, key: keyXfr},
		{name: "IXFR with the key", origin: "example.", qtype: dns.TypeIXFR, key: keyXfr},
		{name: "AXFR unsigned where a key is needed", origin: "example.", qtype: dns.TypeAXFR, wantRcode: dns.RcodeRefused},
		{name: "AXFR with another key", origin: "example.", qtype: dns.TypeAXFR, key: keyOther, wantRcode: dns.RcodeRefused},
		{name: "AXFR unsigned from anywhere", origin: "open.example.", qtype: dns.TypeAXFR},
		{name: "AXFR signed from anywhere", origin: "open.example.", qtype: dns.TypeAXFR, key: keyOther},
		{name: "AXFR of a zone whose list is empty", origin: "closed.example.", qtype: dns.TypeAXFR, key: keyXfr, wantRcode: dns.RcodeRefused},
		{name: "AXFR of a zone not held", origin: "other.test.", qtype: dns.TypeAXFR, key: keyXfr, wantRcode: dns.RcodeNotAuth},
		{name: "AXFR of a name that is not an apex", origin: "www.example.", qtype: dns.TypeAXFR, key: keyXfr, wantRcode: dns.RcodeNotAuth},
		{name: "IXFR of a zone not held", origin: "other.test.", qtype: dns.TypeIXFR, key: keyXfr, wantRcode: dns.RcodeNotAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := xfrIn(t, h.addr, tc.origin, tc.qtype, 1, tc.key)
			if tc.wantRcode == 0 {
				if err != nil {
					t.Fatalf("transfer: %v", err)
				}
				if len(msgs) == 0 || len(msgs[0]) == 0 {
					t.Fatal("no records")
				}
				return
			}
			if got := xfrRcode(err); got != tc.wantRcode {
				t.Fatalf("error %v, want %s", err, dns.RcodeToString[tc.wantRcode])
			}
		})
	}
	if got := testutil.ToFloat64(h.m.TransfersOut.WithLabelValues("example.", "AXFR", "refused")); got != 2 {
		t.Errorf("transfers_out_total{example.,AXFR,refused} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(h.m.TransfersOut.WithLabelValues("none", "AXFR", "notauth")); got != 2 {
		t.Errorf("transfers_out_total{none,AXFR,notauth} = %v, want 2", got)
	}
}

func TestAXFRContents(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("signed=%v", signed), func(t *testing.T) {
			h := newPrimaryHarness(t, Config{Policy: func(string) Policy { return Policy{AllowTransfer: loopbackACL(keyXfr)} }}, primaryZone)
			if signed {
				if _, err := h.store.EnableDNSSEC("example.", dnssec.DefaultPolicy()); err != nil {
					t.Fatal(err)
				}
			}
			h.start(false)
			z, err := h.store.Load("example.")
			if err != nil {
				t.Fatal(err)
			}
			if z.Signed() != signed {
				t.Fatalf("zone signed: %v", z.Signed())
			}
			msgs, err := xfrIn(t, h.addr, "example.", dns.TypeAXFR, 0, keyXfr)
			if err != nil {
				t.Fatal(err)
			}
			got := flattenMsgs(msgs)
			if len(got) < 2 || got[0].String() != z.SOA.String() || got[len(got)-1].String() != z.SOA.String() {
				t.Fatalf("the transfer does not begin and end with the SOA:\n%s", strings.Join(rrTexts(got), "\n"))
			}
			// Every record once, the SOA twice; signatures, NSEC and DNSKEY
			// included.
			want := sortedRRTexts(append(z.Records(), z.SOA))
			if g := sortedRRTexts(got); !slices.Equal(g, want) {
				t.Errorf("transferred:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
			}
			waitCounter(t, h.m.TransfersOut.WithLabelValues("example.", "AXFR", "ok"), 1)
		})
	}
}

// TestIXFRSignedApplies: the incremental answer for a signed zone, applied
// to the client's copy, gives the zone as served, signatures and NSEC
// chain included.
func TestIXFRSignedApplies(t *testing.T) {
	h := newPrimaryHarness(t, Config{Policy: func(string) Policy { return Policy{AllowTransfer: loopbackACL(keyXfr)} }}, primaryZone)
	if _, err := h.store.EnableDNSSEC("example.", dnssec.DefaultPolicy()); err != nil {
		t.Fatal(err)
	}
	old, _ := h.store.Load("example.")
	h.edit("example.", zonestore.Change{Add: rrsOf(t, "new.example. 300 IN A 192.0.2.77")})
	h.edit("example.", zonestore.Change{Delete: []zonestore.Deletion{{Name: "txt.example."}}})
	cur, _ := h.store.Load("example.")
	h.start(false)
	msgs, err := xfrIn(t, h.addr, "example.", dns.TypeIXFR, old.Serial(), keyXfr)
	if err != nil {
		t.Fatal(err)
	}
	rrs := flattenMsgs(msgs)
	// Apply: SOA (new), then per change the old SOA, deletions, the new
	// SOA, additions; the new SOA closes.
	have := map[string]bool{}
	for _, rr := range old.Records() {
		if rr.Header().Rrtype != dns.TypeSOA {
			have[rr.String()] = true
		}
	}
	adding := true // the first SOA starts deletions
	for _, rr := range rrs[1 : len(rrs)-1] {
		if _, ok := rr.(*dns.SOA); ok {
			adding = !adding
			continue
		}
		if adding {
			have[rr.String()] = true
		} else if !have[rr.String()] {
			t.Errorf("the IXFR deletes %s, which the old copy does not hold", rr)
		} else {
			delete(have, rr.String())
		}
	}
	var want []string
	for _, rr := range cur.Records() {
		if rr.Header().Rrtype != dns.TypeSOA {
			want = append(want, rr.String())
		}
	}
	var got []string
	for s := range have {
		got = append(got, s)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the old copy with the IXFR applied:\n%s\nwant the zone served:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestAXFRLargeZone transfers a zone too large for one message: it comes
// in several, each within the message size, and whole.
func TestAXFRLargeZone(t *testing.T) {
	var b strings.Builder
	b.WriteString(primaryZone)
	for i := range 3000 {
		fmt.Fprintf(&b, "host%04d A 198.51.100.%d\nhost%04d TXT \"%s\"\n", i, i%250, i, strings.Repeat("t", 40))
	}
	h := newPrimaryHarness(t, Config{Policy: func(string) Policy { return Policy{AllowTransfer: loopbackACL("")} }}, b.String())
	h.start(false)
	z, _ := h.store.Load("example.")
	msgs, err := xfrIn(t, h.addr, "example.", dns.TypeAXFR, 0, keyXfr)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 10 {
		t.Errorf("%d messages, want at least 10", len(msgs))
	}
	for i, m := range msgs {
		size := 0
		for _, rr := range m {
			size += dns.Len(rr)
		}
		if size > 16384 {
			t.Errorf("message %d holds %d bytes of records, more than 16 KiB", i, size)
		}
	}
	if got, want := len(flattenMsgs(msgs)), z.Len()+1; got != want {
		t.Errorf("%d records transferred, want %d", got, want)
	}
}

// TestIXFR edits a zone several times and checks each incremental answer
// against the edits, and the fallbacks.
func TestIXFR(t *testing.T) {
	h := newPrimaryHarness(t, Config{Policy: func(string) Policy { return Policy{AllowTransfer: loopbackACL(keyXfr)} }}, primaryZone)
	h.start(false)
	s2 := h.edit("example.", zonestore.Change{Add: rrsOf(t, "new.example. 300 IN A 192.0.2.77")})
	s3 := h.edit("example.", zonestore.Change{Delete: []zonestore.Deletion{{Name: "www.example.", Type: dns.TypeAAAA}}})
	s4 := h.edit("example.", zonestore.Change{
		Add:    rrsOf(t, `txt.example. 3600 IN TXT "two"`),
		Delete: []zonestore.Deletion{{RR: rrOf(t, `txt.example. 3600 IN TXT "one"`)}},
	})
	if s2 != 2 || s3 != 3 || s4 != 4 {
		t.Fatalf("serials %d %d %d, want 2 3 4", s2, s3, s4)
	}
	soa := func(serial uint32) string {
		return fmt.Sprintf("example.\t3600\tIN\tSOA\tns1.example. hostmaster.example. %d 7200 900 1209600 300", serial)
	}
	tests := []struct {
		name   string
		serial uint32
		tcp    bool
		want   []string // records of the answer, in order
		kind   string
	}{
		{name: "from the first serial", serial: 1, tcp: true, kind: outIXFR, want: []string{
			soa(4),
			soa(1), soa(2), "new.example.\t300\tIN\tA\t192.0.2.77",
			soa(2), "www.example.\t3600\tIN\tAAAA\t2001:db8::10", soa(3),
			soa(3), "txt.example.\t3600\tIN\tTXT\t\"one\"", soa(4), "txt.example.\t3600\tIN\tTXT\t\"two\"",
			soa(4),
		}},
		{name: "from the last change but one", serial: 3, tcp: true, kind: outIXFR, want: []string{
			soa(4), soa(3), "txt.example.\t3600\tIN\tTXT\t\"one\"", soa(4), "txt.example.\t3600\tIN\tTXT\t\"two\"", soa(4),
		}},
		{name: "current", serial: 4, tcp: true, kind: outCurrent, want: []string{soa(4)}},
		{name: "newer than ours", serial: 9, tcp: true, kind: outCurrent, want: []string{soa(4)}},
		{name: "over UDP, small enough", serial: 3, kind: outIXFR, want: []string{
			soa(4), soa(3), "txt.example.\t3600\tIN\tTXT\t\"one\"", soa(4), "txt.example.\t3600\tIN\tTXT\t\"two\"", soa(4),
		}},
		{name: "over UDP, current", serial: 4, kind: outCurrent, want: []string{soa(4)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []dns.RR
			if tc.tcp {
				msgs, err := xfrIn(t, h.addr, "example.", dns.TypeIXFR, tc.serial, keyXfr)
				if err != nil {
					t.Fatal(err)
				}
				got = flattenMsgs(msgs)
			} else {
				m := new(dns.Msg)
				m.SetIxfr("example.", tc.serial, "ns1.example.", "hostmaster.example.")
				r, err := h.query("udp", m, keyXfr)
				if err != nil {
					t.Fatal(err)
				}
				if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
					t.Fatalf("rcode %s, AA %v", dns.RcodeToString[r.Rcode], r.Authoritative)
				}
				got = r.Answer
			}
			if g := rrTexts(got); !slices.Equal(g, tc.want) {
				t.Errorf("answer:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}

	// A serial the journal does not reach: the whole zone, as AXFR sends it.
	// Serial 0 is older than the zone's creation, which the journal keeps
	// as a summary only.
	msgs, err := xfrIn(t, h.addr, "example.", dns.TypeIXFR, 0, keyXfr)
	if err != nil {
		t.Fatal(err)
	}
	z, _ := h.store.Load("example.")
	got := flattenMsgs(msgs)
	if want := sortedRRTexts(append(z.Records(), z.SOA)); !slices.Equal(sortedRRTexts(got), want) {
		t.Errorf("fallback answer:\n%s\nwant the zone:\n%s", strings.Join(rrTexts(got), "\n"), strings.Join(want, "\n"))
	}
	waitCounter(t, h.m.TransfersOut.WithLabelValues("example.", outFallback, "ok"), 1)
}

// TestIXFRUDPTooLarge: an incremental answer that does not fit a datagram
// is the current SOA alone, and over TCP the whole answer comes.
func TestIXFRUDPTooLarge(t *testing.T) {
	h := newPrimaryHarness(t, Config{Policy: func(string) Policy { return Policy{AllowTransfer: ACL{{Any: true}}} }}, primaryZone)
	h.start(false)
	var add []dns.RR
	for i := range 40 {
		add = append(add, rrOf(t, fmt.Sprintf("bulk%02d.example. 300 IN TXT \"%s\"", i, strings.Repeat("b", 60))))
	}
	serial := h.edit("example.", zonestore.Change{Add: add})
	m := new(dns.Msg)
	m.SetIxfr("example.", 1, "ns1.example.", "hostmaster.example.")
	r, err := h.query("udp", m, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != serial || r.Truncated {
		t.Fatalf("answer %v (TC %v), want the SOA of serial %d alone", r.Answer, r.Truncated, serial)
	}
	msgs, err := xfrIn(t, h.addr, "example.", dns.TypeIXFR, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(flattenMsgs(msgs)); got != 40+4 {
		t.Errorf("%d records over TCP, want 44", got)
	}
}

// TestTransferErrors checks malformed transfer questions.
func TestTransferErrors(t *testing.T) {
	h := newPrimaryHarness(t, Config{Policy: func(string) Policy { return Policy{AllowTransfer: ACL{{Any: true}}} }}, primaryZone)
	tests := []struct {
		name  string
		req   func() *dns.Msg
		tcp   bool
		rcode int
	}{
		{name: "IXFR without the client's SOA", tcp: true, rcode: dns.RcodeFormatError, req: func() *dns.Msg {
			m := new(dns.Msg)
			m.SetQuestion("example.", dns.TypeIXFR)
			return m
		}},
		{name: "AXFR over UDP", rcode: dns.RcodeRefused, req: func() *dns.Msg {
			m := new(dns.Msg)
			m.SetAxfr("example.")
			return m
		}},
		{name: "two questions", tcp: true, rcode: dns.RcodeFormatError, req: func() *dns.Msg {
			m := new(dns.Msg)
			m.SetAxfr("example.")
			m.Question = append(m.Question, m.Question[0])
			return m
		}},
		{name: "class CH", tcp: true, rcode: dns.RcodeNotAuth, req: func() *dns.Msg {
			m := new(dns.Msg)
			m.SetAxfr("example.")
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []*dns.Msg
			err := h.node.Transfer(t.Context(), tc.req(), server.Peer{Addr: netip.MustParseAddrPort("127.0.0.1:5353"), TCP: tc.tcp},
				func(m *dns.Msg) error { got = append(got, m); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Rcode != tc.rcode {
				t.Fatalf("got %d messages (%v), want one %s", len(got), got, dns.RcodeToString[tc.rcode])
			}
		})
	}
}

// TestTransferEndsWithSender: an error from send ends the transfer.
func TestTransferEndsWithSender(t *testing.T) {
	var b strings.Builder
	b.WriteString(primaryZone)
	for i := range 2000 {
		fmt.Fprintf(&b, "h%04d A 198.51.100.1\n", i)
	}
	h := newPrimaryHarness(t, Config{Policy: func(string) Policy { return Policy{AllowTransfer: ACL{{Any: true}}} }}, b.String())
	m := new(dns.Msg)
	m.SetAxfr("example.")
	errGone := errors.New("connection gone")
	calls := 0
	err := h.node.Transfer(t.Context(), m, server.Peer{Addr: netip.MustParseAddrPort("127.0.0.1:5353"), TCP: true},
		func(*dns.Msg) error { calls++; return errGone })
	if !errors.Is(err, errGone) || calls != 1 {
		t.Errorf("err %v after %d messages, want %v after 1", err, calls, errGone)
	}
	if got := testutil.ToFloat64(h.m.TransfersOut.WithLabelValues("example.", "AXFR", "failed")); got != 1 {
		t.Errorf("transfers_out_total{example.,AXFR,failed} = %v, want 1", got)
	}
}

// TestTransferOfSecondary: a secondary copy is transferred onwards, by
// AXFR and by IXFR from its journal.
func TestTransferOfSecondary(t *testing.T) {
	h := newPrimaryHarness(t, Config{Policy: func(string) Policy { return Policy{AllowTransfer: loopbackACL(keyXfr)} }})
	put := func(text string) {
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
	head := "$ORIGIN sec.example.\n@ 3600 SOA ns1 h %d 3600 600 86400 300\n@ 3600 NS ns1\nns1 3600 A 192.0.2.1\n"
	put(fmt.Sprintf(head, 10))
	put(fmt.Sprintf(head, 11) + "www 3600 A 192.0.2.80\n")
	h.start(false)
	msgs, err := xfrIn(t, h.addr, "sec.example.", dns.TypeAXFR, 0, keyXfr)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(flattenMsgs(msgs)); got != 5 {
		t.Errorf("AXFR: %d records, want 5", got)
	}
	msgs, err = xfrIn(t, h.addr, "sec.example.", dns.TypeIXFR, 10, keyXfr)
	if err != nil {
		t.Fatal(err)
	}
	got := rrTexts(flattenMsgs(msgs))
	if len(got) != 5 || !strings.Contains(got[1], " 10 ") || !strings.Contains(got[2], " 11 ") || got[3] != "www.sec.example.\t3600\tIN\tA\t192.0.2.80" {
		t.Errorf("IXFR:\n%s", strings.Join(got, "\n"))
	}
}
