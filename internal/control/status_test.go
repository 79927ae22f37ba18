package control

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/audit"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zonestore"
)

// serveHTTP serves the API of node on a loopback httptest server and
// returns a client for it.
func serveHTTP(t *testing.T, node Node) *Client {
	t.Helper()
	srv := httptest.NewServer(Handler(node))
	t.Cleanup(srv.Close)
	c := NewTokenClient(strings.TrimPrefix(srv.URL, "http://"), "unused")
	t.Cleanup(func() { c.Close() })
	return c
}

// fakeRecursor answers CNAME questions from a table, NODATA (with the SOA
// of zone) otherwise, and reports a fixed health.
type fakeRecursor struct {
	cnames map[string]string // name -> target
	zone   string
	health resolver.Health
	asked  []string
}

func (f *fakeRecursor) Resolve(_ context.Context, name string, qtype uint16) resolver.Result {
	f.asked = append(f.asked, name+" "+dns.TypeToString[qtype])
	if t, ok := f.cnames[name]; ok && qtype == dns.TypeCNAME {
		return resolver.Result{Answer: []dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: t}}}
	}
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: f.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Ns: "ns1." + f.zone, Mbox: "h." + f.zone}
	if qtype == dns.TypeNS && name == f.zone {
		return resolver.Result{Answer: []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: f.zone, Rrtype: dns.TypeNS, Class: dns.ClassINET}, Ns: "ns1." + f.zone}}}
	}
	return resolver.Result{Ns: []dns.RR{soa}}
}

func (f *fakeRecursor) Health() resolver.Health { return f.health }

const govZone = `$ORIGIN gov.az.
$TTL 3600
@       SOA  ns1 hostmaster 2024010101 7200 900 1209600 300
        NS   ns1
        NS   ns.cloudflare.com.
ns1     A    192.0.2.1
www     CNAME cdn.example.com.
portal  CNAME web.good.az.
intra   CNAME www.good.az.
`

func TestStatusAPI(t *testing.T) {
	st := openTestStore(t) // example.org., a primary
	if _, err := st.PutTransfer(buildZone(t, strings.Replace(testZone, "example.org.", "copy.example.", 1)), "192.0.2.53"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutTransfer(buildZone(t, strings.Replace(testZone, "example.org.", "old.example.", 1)), "192.0.2.54"); err != nil {
		t.Fatal(err)
	}
	// old.example. was last found current 15 days ago; its SOA expire is 14 days.
	refreshed := time.Now().Add(-15 * 24 * time.Hour).Truncate(time.Second).UTC()
	if err := st.MarkRefreshed("old.example.", refreshed); err != nil {
		t.Fatal(err)
	}
	cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20})
	rr, _ := dns.NewRR("www.example.org. 300 IN A 192.0.2.1")
	cache.PutRRset([]dns.RR{rr}, resolver.RankAnswerAA)
	since := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	rec := &fakeRecursor{health: resolver.Health{Island: true, IslandSince: since, IslandSeconds: 3600, Transitions: 1,
		LastProbe: since, LastProbeOK: false, ForeignFailures: 7, Servers: []resolver.ServerHealth{
			{Addr: netip.MustParseAddrPort("192.0.2.9:53"), SRTT: 1500 * time.Millisecond, Failing: true},
			{Addr: netip.MustParseAddrPort("192.0.2.8:53"), SRTT: 12 * time.Millisecond},
		}}}
	c := serveHTTP(t, Node{Store: st, Cache: cache, Resolver: rec})
	body, err := c.Do(t.Context(), "GET", "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var s Status
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if !s.Running || time.Since(s.Time) > time.Minute || len(s.Zones) != 3 {
		t.Fatalf("status %s", body)
	}
	byZone := map[string]ZoneStatus{}
	for _, z := range s.Zones {
		byZone[z.Zone] = z
	}
	if z := byZone["example.org."]; z.Kind != zonestore.KindPrimary || z.Serial != 2024010101 || z.Records != 6 ||
		z.State != ZoneCurrent || z.Expired || !z.ExpiresAt.IsZero() || z.SOAExpire != 1209600 {
		t.Errorf("primary: %+v", z)
	}
	if z := byZone["copy.example."]; z.Kind != zonestore.KindSecondary || z.Source != "192.0.2.53" || z.State != ZoneCurrent ||
		z.Expired || time.Until(z.ExpiresAt) < 13*24*time.Hour || z.Refreshed.IsZero() {
		t.Errorf("current secondary: %+v", z)
	}
	if z := byZone["old.example."]; z.State != ZoneExpired || !z.Expired || !z.Refreshed.Equal(refreshed) ||
		!z.ExpiresAt.Equal(refreshed.Add(1209600*time.Second)) {
		t.Errorf("expired secondary: %+v", z)
	}
	r := s.Resolver
	if r == nil || r.Cache.Entries != 1 || r.Cache.Bytes == 0 {
		t.Fatalf("resolver status %s", body)
	}
	if r.Island != (IslandStatus{Active: true, Since: since, SecondsTotal: 3600, Transitions: 1, LastProbe: since, ForeignFailures: 7}) {
		t.Errorf("island %+v", r.Island)
	}
	if len(r.Upstreams) != 2 || r.Upstreams[0] != (UpstreamStatus{Addr: "192.0.2.9:53", SRTTMillis: 1500, Failing: true}) {
		t.Errorf("upstreams %+v", r.Upstreams)
	}
	for _, k := range []string{`"server_running": true`, `"stale_hits": 0`, `"national_infra_entries": 0`, `"foreign_failures": 7`, `"srtt_ms": 12`, `"soa_expire": 1209600`} {
		if !strings.Contains(string(body), k) {
			t.Errorf("status JSON has no %s: %s", k, body)
		}
	}
	if s.Summary != nil {
		t.Errorf("a summary without attention=: %+v", s.Summary)
	}

	// Cut to the zones that need attention: all three fit in 3; in 2, only
	// the expired copy is listed, and every zone is counted.
	for _, tt := range []struct {
		attention string
		zones     []string
	}{
		{"3", []string{"copy.example.", "old.example.", "example.org."}}, // canonical order
		{"2", []string{"old.example."}},
		{"0", []string{}},
	} {
		body, err := c.Do(t.Context(), "GET", "/v1/status?attention="+tt.attention)
		if err != nil {
			t.Fatal(err)
		}
		var s Status
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, z := range s.Zones {
			got = append(got, z.Zone)
		}
		if !slices.Equal(got, tt.zones) && !(len(got) == 0 && len(tt.zones) == 0) {
			t.Errorf("attention=%s: zones %v, want %v", tt.attention, got, tt.zones)
		}
		if s.Summary == nil || *s.Summary != (ZoneSummary{Total: 3, Expired: 1, Attention: 1}) {
			t.Errorf("attention=%s: summary %+v", tt.attention, s.Summary)
		}
	}
	if _, err := c.Do(t.Context(), "GET", "/v1/status?attention=many"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("attention=many: %v, want ErrBadRequest", err)
	}
}

// TestStatusWithoutResolver: a node that does not resolve, including one
// given a nil *resolver.Resolver, has no resolver status.
func TestStatusWithoutResolver(t *testing.T) {
	for _, node := range []Node{{}, {Resolver: (*resolver.Resolver)(nil)}} {
		c := serveHTTP(t, node)
		body, err := c.Do(t.Context(), "GET", "/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		var s Status
		if err := json.Unmarshal(body, &s); err != nil || s.Resolver != nil || s.Zones == nil || len(s.Zones) != 0 {
			t.Errorf("status %s (%v)", body, err)
		}
	}
}

// TestResolverHealth: a real resolver's health reaches the status.
func TestResolverHealth(t *testing.T) {
	rec := resolver.New(resolver.Config{Island: resolver.IslandConfig{Disabled: true}}, nil,
		resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20}), nil, nil)
	c := serveHTTP(t, Node{Resolver: rec, Cache: rec.Cache()})
	body, err := c.Do(t.Context(), "GET", "/v1/status")
	if err != nil || !strings.Contains(string(body), `"island": {`) || !strings.Contains(string(body), `"active": false`) {
		t.Errorf("status: %v %s", err, body)
	}
}

func TestAuditAPI(t *testing.T) {
	st := openTestStore(t)
	if _, err := st.Import(buildZone(t, govZone), false); err != nil {
		t.Fatal(err)
	}
	rec := &fakeRecursor{zone: "good.az.", cnames: map[string]string{"web.good.az.": "x.akamai.net."}}
	c := serveHTTP(t, Node{Store: st, Resolver: rec})
	ctx := t.Context()

	body, err := c.Do(ctx, "GET", "/v1/audit/deps?zone=gov.az&suffix=az&timeout=30s")
	if err != nil {
		t.Fatal(err)
	}
	var rep audit.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.Name+" "+f.Type+" "+f.Target+": "+f.Why())
	}
	want := []string{
		"gov.az. NS ns.cloudflare.com.: outside the national suffixes",
		"portal.gov.az. CNAME web.good.az.: via web.good.az. CNAME x.akamai.net.",
		"www.gov.az. CNAME cdn.example.com.: outside the national suffixes",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !rep.Resolver || rep.Foreign != 3 || rep.Lookups == 0 || len(rec.asked) != rep.Lookups {
		t.Errorf("report %+v, asked %v", rep, rec.asked)
	}

	t.Run("without a resolver", func(t *testing.T) {
		c := serveHTTP(t, Node{Store: st, Resolver: (*resolver.Resolver)(nil)})
		body, err := c.Do(ctx, "GET", "/v1/audit/deps?zone=gov.az.&suffix=az.")
		if err != nil {
			t.Fatal(err)
		}
		var rep audit.Report
		if err := json.Unmarshal(body, &rep); err != nil || rep.Resolver || rep.Foreign != 2 || rep.Unchecked != 2 {
			t.Errorf("report %s (%v)", body, err)
		}
	})

	for _, tt := range []struct {
		name, path string
		want       error
	}{
		{name: "no suffix", path: "/v1/audit/deps?zone=gov.az", want: ErrBadRequest},
		{name: "zone outside the suffixes", path: "/v1/audit/deps?zone=example.org&suffix=az", want: ErrBadRequest},
		{name: "no zone parameter", path: "/v1/audit/deps?suffix=az", want: ErrBadRequest},
		{name: "bad timeout", path: "/v1/audit/deps?zone=gov.az&suffix=az&timeout=forever", want: ErrBadRequest},
		{name: "timeout too long", path: "/v1/audit/deps?zone=gov.az&suffix=az&timeout=1h", want: ErrBadRequest},
		{name: "unknown zone", path: "/v1/audit/deps?zone=nowhere.az&suffix=az", want: zonestore.ErrNoZone},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Do(ctx, "GET", tt.path); !errors.Is(err, tt.want) {
				t.Errorf("%s: %v, want %v", tt.path, err, tt.want)
			}
		})
	}
	if _, err := serveHTTP(t, Node{}).Do(ctx, "GET", "/v1/audit/deps?zone=gov.az&suffix=az"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("without a store: %v, want ErrUnavailable", err)
	}
}
