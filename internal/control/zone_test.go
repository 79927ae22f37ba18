package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

const testZone = `$ORIGIN example.org.
$TTL 3600
@       SOA  ns1 hostmaster 2024010101 7200 900 1209600 300
        NS   ns1
        NS   ns2.example.net.
ns1     A    192.0.2.1
www 300 A    192.0.2.80
        AAAA 2001:db8::80
`

// openTestStore opens a new database holding testZone.
func openTestStore(t *testing.T) *zonestore.Store {
	t.Helper()
	st, err := zonestore.Open(filepath.Join(t.TempDir(), "sovdns.db"), zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Import(buildZone(t, testZone), false); err != nil {
		t.Fatal(err)
	}
	return st
}

func buildZone(t *testing.T, text string) *zone.Zone {
	t.Helper()
	p, err := zonestore.Parse(strings.NewReader(text), "", "test.zone", nil)
	if err != nil {
		t.Fatal(err)
	}
	z, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func rrTexts(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.String()
	}
	return out
}

// TestZoneAPI runs each zone, record, history, DNSSEC and key operation
// through the control socket and checks it against the store.
func TestZoneAPI(t *testing.T) {
	st := openTestStore(t)
	c := serveNode(t, Node{Store: st})
	ctx := t.Context()
	me := UnixAuthor(os.Getuid())

	infos, err := c.Zones(ctx, "")
	if err != nil || len(infos) != 1 || infos[0].Origin != "example.org." || infos[0].Records != 6 {
		t.Fatalf("Zones: %+v %v", infos, err)
	}
	for pattern, want := range map[string]int{"*.org": 1, "EXAMPLE.org.": 1, "*.net": 0, "ex?mple.*": 1} {
		if infos, err := c.Zones(ctx, pattern); err != nil || len(infos) != want {
			t.Errorf("Zones matching %q: %+v %v, want %d", pattern, infos, err, want)
		}
	}
	if _, err := c.Zones(ctx, "[x"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("Zones matching a malformed pattern: %v, want ErrBadRequest", err)
	}
	d, err := c.Zone(ctx, "Example.ORG")
	if err != nil {
		t.Fatal(err)
	}
	soa, err := d.SOARecord()
	if err != nil || soa.Serial != 2024010101 || !slices.Equal(d.Nameservers, []string{"ns1.example.org.", "ns2.example.net."}) {
		t.Errorf("Zone: %+v (SOA %v, %v)", d, soa, err)
	}

	var exported bytes.Buffer
	if err := c.Export(ctx, "example.org", &exported); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	z, _ := st.Load("example.org")
	_ = zonestore.Export(&want, z)
	if exported.String() != want.String() {
		t.Errorf("Export:\n%s\nwant\n%s", &exported, &want)
	}

	t.Run("records", func(t *testing.T) {
		tests := []struct {
			name   string
			owner  string
			rrtype uint16
			want   int
		}{
			{name: "all", want: 6},
			{name: "by name", owner: "www.example.org.", want: 2},
			{name: "by type", rrtype: dns.TypeNS, want: 2},
			{name: "by both", owner: "www.example.org.", rrtype: dns.TypeAAAA, want: 1},
			{name: "none", owner: "nothing.example.org.", want: 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := c.Records(ctx, "example.org", tt.owner, tt.rrtype)
				if err != nil {
					t.Fatal(err)
				}
				local, _ := Local{Store: st}.Records(ctx, "example.org", tt.owner, tt.rrtype)
				if len(got) != tt.want || !slices.Equal(rrTexts(got), rrTexts(local)) {
					t.Errorf("got %q; want %d records, as Local gives: %q", rrTexts(got), tt.want, rrTexts(local))
				}
			})
		}
	})

	t.Run("edit", func(t *testing.T) {
		// A record without a TTL takes its RRset's (300); a new RRset's
		// keeps the one given.
		res, err := c.Edit(ctx, "example.org", Edit{
			Add: []Addition{
				{RR: mustRR(t, "www.example.org. 3600 IN A 192.0.2.81"), InheritTTL: true},
				{RR: mustRR(t, "new.example.org. 3600 IN A 192.0.2.82"), InheritTTL: true},
			},
			Delete: []zonestore.Deletion{{Name: "www.example.org.", Type: dns.TypeAAAA}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Zone != "example.org." || res.OldSerial != 2024010101 || res.Serial != 2024010102 || !res.Bumped || res.Records != 7 || res.OldRecords != 6 {
			t.Errorf("Edit: %+v", res)
		}
		got, _ := st.Load("example.org")
		if set := got.Lookup(mustKey(t, "www.example.org.")).Get(dns.TypeA); set == nil || set.TTL != 300 || len(set.RRs()) != 2 {
			t.Errorf("www A after the edit: %+v", set)
		}
		if set := got.Lookup(mustKey(t, "new.example.org.")).Get(dns.TypeA); set == nil || set.TTL != 3600 {
			t.Errorf("new A after the edit: %+v", set)
		}
	})

	t.Run("history", func(t *testing.T) {
		h, err := c.History(ctx, "example.org", 1)
		if err != nil || len(h) != 1 {
			t.Fatalf("History: %v %v", h, err)
		}
		e := h[0]
		if e.Author != me || e.Op != zonestore.OpEdit || e.FromSerial() != 2024010101 || e.To.Serial != 2024010102 {
			t.Errorf("last entry: %+v; want an edit by %s", e, me)
		}
		if len(e.Removed) != 1 || len(e.Added) != 2 {
			t.Errorf("last entry removed %q, added %q", rrTexts(e.Removed), rrTexts(e.Added))
		}
		all, err := c.History(ctx, "example.org", 0)
		if err != nil || len(all) != 2 || all[0].Op != zonestore.OpCreate || all[0].Author != "sovdns" {
			t.Errorf("whole history: %+v %v", all, err)
		}
	})

	t.Run("import", func(t *testing.T) {
		other := buildZone(t, strings.ReplaceAll(testZone, "example.org.", "example.com."))
		res, err := c.Import(ctx, other, false)
		if err != nil || !res.Created || res.Zone != "example.com." || res.Records != 6 {
			t.Fatalf("Import: %+v %v", res, err)
		}
		res, err = c.Import(ctx, other, true)
		if err != nil || res.Created || !res.Bumped || res.Serial != 2024010102 {
			t.Errorf("Import replace: %+v %v", res, err)
		}
		if err := c.Delete(ctx, "example.com"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Load("example.com"); !errors.Is(err, zonestore.ErrNoZone) {
			t.Errorf("after Delete: %v", err)
		}
	})

	t.Run("dnssec", func(t *testing.T) {
		keys, err := c.GenerateKeys(ctx, "example.org", dnssec.DefaultPolicy())
		if err != nil || len(keys) != 1 || keys[0].Role != dnssec.RoleCSK || !strings.Contains(keys[0].DNSKEY, "DNSKEY") {
			t.Fatalf("GenerateKeys: %+v %v", keys, err)
		}
		res, err := c.EnableDNSSEC(ctx, "example.org", dnssec.DefaultPolicy())
		if err != nil || res.Serial != 2024010103 {
			t.Fatalf("EnableDNSSEC: %+v %v", res, err)
		}
		s, err := c.DNSSEC(ctx, "example.org")
		if err != nil || !s.Signed || len(s.Keys) != 1 || s.Keys[0].ID != keys[0].ID {
			t.Errorf("DNSSEC: %+v %v", s, err)
		}
		ds, err := c.DS(ctx, "example.org", dns.SHA256)
		local, _ := st.DS("example.org", dns.SHA256)
		if err != nil || len(ds) != 1 || ds[0].String() != local[0].String() {
			t.Errorf("DS: %v %v; want %v", ds, err, local)
		}
		msg, res, err := c.Rollover(ctx, "example.org", dnssec.RoleKSK, false, false)
		if err != nil || !strings.Contains(msg, "publish its DS") || res.Serial != 2024010104 {
			t.Errorf("Rollover: %q %+v %v", msg, res, err)
		}
		if msg, res, err := c.DisableDNSSEC(ctx, "example.org", false); err != nil || res.Serial != 2024010105 || !strings.Contains(msg, "RFC 8078") {
			t.Errorf("DisableDNSSEC: %q %+v %v", msg, res, err)
		}
		if signed, _ := st.Signed("example.org"); !signed {
			t.Error("the zone went unsigned before the parent was seen without its DS")
		}
		if _, _, err := c.DisableDNSSEC(ctx, "example.org", false); !errors.Is(err, dnssec.ErrParentDS) {
			t.Errorf("DisableDNSSEC again with the parent not asked: %v, want ErrParentDS", err)
		}
		if _, res, err := c.DisableDNSSEC(ctx, "example.org", true); err != nil || res.Serial != 2024010106 {
			t.Errorf("DisableDNSSEC --force: %+v %v", res, err)
		}
		if signed, _ := st.Signed("example.org"); signed {
			t.Error("the zone is still signed")
		}
	})
}

func mustKey(t *testing.T, name string) string {
	t.Helper()
	k, err := zone.WireKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// api is what Local and Client both offer.
type api interface {
	Zones(context.Context, string) ([]zonestore.ZoneInfo, error)
	Zone(context.Context, string) (ZoneDetail, error)
	Export(context.Context, string, io.Writer) error
	Import(context.Context, *zone.Zone, bool) (Result, error)
	Delete(context.Context, string) error
	Records(context.Context, string, string, uint16) ([]dns.RR, error)
	Edit(context.Context, string, Edit) (Result, error)
	History(context.Context, string, int) ([]zonestore.Entry, error)
	DNSSEC(context.Context, string) (zonestore.DNSSECStatus, error)
	DS(context.Context, string, uint8) ([]*dns.DS, error)
	EnableDNSSEC(context.Context, string, dnssec.Policy) (Result, error)
	DisableDNSSEC(context.Context, string, bool) (string, Result, error)
	GenerateKeys(context.Context, string, dnssec.Policy) ([]NewKey, error)
	Rollover(context.Context, string, dnssec.Role, bool, bool) (string, Result, error)
	Close() error
}

var (
	_ api = Local{}
	_ api = (*Client)(nil)
)

// TestErrorKinds checks that each refused operation comes back from the
// server with the local error's text and matches the same sentinels.
func TestErrorKinds(t *testing.T) {
	st := openTestStore(t)
	if _, err := st.Import(buildZone(t, strings.ReplaceAll(testZone, "example.org.", "signed.example.")), false); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnableDNSSEC("signed.example", dnssec.DefaultPolicy()); err != nil {
		t.Fatal(err)
	}
	secondary := buildZone(t, strings.ReplaceAll(testZone, "example.org.", "copy.example."))
	if _, err := st.PutTransfer(secondary, "192.0.2.53"); err != nil {
		t.Fatal(err)
	}
	existing := buildZone(t, testZone)
	c := serveNode(t, Node{Store: st})
	add := func(s string) Edit { return Edit{Add: []Addition{{RR: mustRR(t, s)}}} }
	del := func(d zonestore.Deletion) Edit { return Edit{Delete: []zonestore.Deletion{d}} }
	badAlgorithm := dnssec.DefaultPolicy()
	badAlgorithm.Algorithm = 5
	badIterations := dnssec.DefaultPolicy()
	badIterations.Denial, badIterations.Iterations = dnssec.DenialNSEC3, 500
	guard := dnssec.DefaultPolicy()
	guard.Validity, guard.Refresh = dnssec.Duration(10*24*time.Hour), dnssec.Duration(7*24*time.Hour)

	tests := []struct {
		name   string
		op     func(ctx context.Context, db api) error
		want   []error
		record bool // a zone.RecordError
	}{
		{name: "no zone", want: []error{zonestore.ErrNoZone}, op: func(ctx context.Context, db api) error {
			_, err := db.Zone(ctx, "nothing.example")
			return err
		}},
		{name: "export of no zone", want: []error{zonestore.ErrNoZone}, op: func(ctx context.Context, db api) error {
			return db.Export(ctx, "nothing.example", io.Discard)
		}},
		{name: "delete of no zone", want: []error{zonestore.ErrNoZone}, op: func(ctx context.Context, db api) error {
			return db.Delete(ctx, "nothing.example")
		}},
		{name: "zone exists", want: []error{zonestore.ErrZoneExists}, op: func(ctx context.Context, db api) error {
			_, err := db.Import(ctx, existing, false)
			return err
		}},
		{name: "record not found", want: []error{zonestore.ErrNotFound}, op: func(ctx context.Context, db api) error {
			_, err := db.Edit(ctx, "example.org", del(zonestore.Deletion{Name: "www.example.org.", RR: mustRR(t, "www.example.org. 0 IN A 192.0.2.99")}))
			return err
		}},
		{name: "no change", want: []error{zonestore.ErrNoChange}, op: func(ctx context.Context, db api) error {
			_, err := db.Edit(ctx, "example.org", add("ns1.example.org. 3600 IN A 192.0.2.1"))
			return err
		}},
		{name: "CNAME conflict", want: []error{zone.ErrCNAMEConflict}, record: true, op: func(ctx context.Context, db api) error {
			_, err := db.Edit(ctx, "example.org", add("www.example.org. 300 IN CNAME ns1.example.org."))
			return err
		}},
		{name: "out of zone", want: []error{zone.ErrOutOfZone}, record: true, op: func(ctx context.Context, db api) error {
			_, err := db.Edit(ctx, "example.org", add("www.example.net. 300 IN A 192.0.2.1"))
			return err
		}},
		{name: "secondary", want: []error{zonestore.ErrSecondary}, op: func(ctx context.Context, db api) error {
			_, err := db.Edit(ctx, "copy.example", add("new.copy.example. 300 IN A 192.0.2.1"))
			return err
		}},
		{name: "managed data", want: []error{dnssec.ErrManagedData}, op: func(ctx context.Context, db api) error {
			_, err := db.Edit(ctx, "signed.example", add("signed.example. 300 IN NSEC www.signed.example. A"))
			return err
		}},
		{name: "not signed", want: []error{zonestore.ErrNotSigned}, op: func(ctx context.Context, db api) error {
			_, err := db.DS(ctx, "example.org", dns.SHA256)
			return err
		}},
		{name: "disable unsigned", want: []error{zonestore.ErrNotSigned}, op: func(ctx context.Context, db api) error {
			_, _, err := db.DisableDNSSEC(ctx, "example.org", false)
			return err
		}},
		{name: "algorithm", want: []error{dnssec.ErrAlgorithm}, op: func(ctx context.Context, db api) error {
			_, err := db.EnableDNSSEC(ctx, "example.org", badAlgorithm)
			return err
		}},
		{name: "policy", want: []error{dnssec.ErrPolicy}, op: func(ctx context.Context, db api) error {
			_, err := db.EnableDNSSEC(ctx, "example.org", badIterations)
			return err
		}},
		{name: "expiry guard", want: []error{dnssec.ErrExpiryGuard}, op: func(ctx context.Context, db api) error {
			_, err := db.EnableDNSSEC(ctx, "example.org", guard)
			return err
		}},
		{name: "keys exist", want: []error{zonestore.ErrKeysExist}, op: func(ctx context.Context, db api) error {
			_, err := db.GenerateKeys(ctx, "signed.example", dnssec.DefaultPolicy())
			return err
		}},
		{name: "no rollover", want: []error{dnssec.ErrNoRollover}, op: func(ctx context.Context, db api) error {
			_, _, err := db.Rollover(ctx, "signed.example", dnssec.RoleZSK, true, false)
			return err
		}},
		{name: "history of no zone", want: []error{zonestore.ErrNoZone}, op: func(ctx context.Context, db api) error {
			_, err := db.History(ctx, "nothing.example", 0)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			localErr := tt.op(ctx, Local{Store: st})
			remoteErr := tt.op(ctx, c)
			if localErr == nil || remoteErr == nil {
				t.Fatalf("local error %v, remote error %v; want both", localErr, remoteErr)
			}
			if localErr.Error() != remoteErr.Error() {
				t.Errorf("messages differ:\n local %s\nremote %s", localErr, remoteErr)
			}
			for _, w := range tt.want {
				if !errors.Is(localErr, w) || !errors.Is(remoteErr, w) {
					t.Errorf("errors.Is(_, %v): local %v, remote %v", w, errors.Is(localErr, w), errors.Is(remoteErr, w))
				}
			}
			var lre, rre *zone.RecordError
			if l, r := errors.As(localErr, &lre), errors.As(remoteErr, &rre); l != tt.record || r != tt.record {
				t.Errorf("errors.As(_, *zone.RecordError): local %v, remote %v; want %v", l, r, tt.record)
			}
			for _, s := range sentinels {
				if errors.Is(localErr, s.err) != errors.Is(remoteErr, s.err) {
					t.Errorf("errors.Is(_, %s): local %v, remote %v", s.kind, errors.Is(localErr, s.err), errors.Is(remoteErr, s.err))
				}
			}
		})
	}
}

// TestAuthorFromPeer: a change through the unix socket is journaled as
// made by the user of the process that connected.
func TestAuthorFromPeer(t *testing.T) {
	st := openTestStore(t)
	c := serveNode(t, Node{Store: st})
	if _, err := c.Edit(t.Context(), "example.org", Edit{Add: []Addition{{RR: mustRR(t, "x.example.org. 60 IN A 192.0.2.9")}}}); err != nil {
		t.Fatal(err)
	}
	h, err := st.History("example.org", 1)
	if err != nil || len(h) != 1 {
		t.Fatalf("History: %v %v", h, err)
	}
	want := fmt.Sprintf("unix:uid=%d", os.Getuid())
	if u, err := user.Current(); err == nil && u.Username != "" {
		want = "unix:" + u.Username
	}
	if h[0].Author != want || UnixAuthor(os.Getuid()) != want {
		t.Errorf("author %q (UnixAuthor %q); want %q", h[0].Author, UnixAuthor(os.Getuid()), want)
	}
}

// serveToken serves node on a loopback TCP port for the tokens given.
func serveToken(t *testing.T, node Node, tokens map[string]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveTCP(ctx, ln, tokens, Handler(node), slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serveTCP: %v", err)
		}
	})
	return ln.Addr().String()
}

// TestTokenAuth: on TCP a request needs a known bearer token, whose name
// is the author of its changes.
func TestTokenAuth(t *testing.T) {
	st := openTestStore(t)
	const secret = "0123456789abcdef-ci"
	addr := serveToken(t, Node{Store: st}, map[string]string{secret: "ci", "fedcba9876543210-ops": "ops"})
	ctx := t.Context()
	tests := []struct {
		name   string
		header string
		status int
	}{
		{name: "no header", status: http.StatusUnauthorized},
		{name: "wrong token", header: "Bearer 0123456789abcdef-cx", status: http.StatusUnauthorized},
		{name: "prefix of a token", header: "Bearer 0123456789abcdef", status: http.StatusUnauthorized},
		{name: "other scheme", header: "Basic " + secret, status: http.StatusUnauthorized},
		{name: "empty token", header: "Bearer ", status: http.StatusUnauthorized},
		{name: "good token", header: "Bearer " + secret, status: http.StatusOK},
		{name: "scheme in lower case", header: "bearer " + secret, status: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/zones", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d; want %d\n%s", resp.StatusCode, tt.status, body)
			}
			if tt.status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	// The client refused, then accepted; changes are the token's.
	_, err := NewTokenClient(addr, "not-a-token-at-all").Zones(ctx, "")
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("a wrong token: %v; want ErrUnauthorized", err)
	}
	c := NewTokenClient(addr, secret)
	if _, err := c.Edit(ctx, "example.org", Edit{Add: []Addition{{RR: mustRR(t, "ci.example.org. 60 IN A 192.0.2.9")}}}); err != nil {
		t.Fatal(err)
	}
	h, err := c.History(ctx, "example.org", 1)
	if err != nil || len(h) != 1 || h[0].Author != "token:ci" {
		t.Errorf("history after a change with the token: %+v %v; want author token:ci", h, err)
	}
}

// TestServeTCPAddress: nothing is served without an address, and only a
// loopback address is served.
func TestServeTCPAddress(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tokens := map[string]string{"0123456789abcdef": "ci"}
	if err := ServeTCP(t.Context(), "", tokens, http.NotFoundHandler(), log); err != nil {
		t.Errorf("no address: %v", err)
	}
	for _, addr := range []string{"192.0.2.1:8053", "0.0.0.0:8053", "[::]:8053", "localhost:8053"} {
		if err := ServeTCP(t.Context(), addr, tokens, http.NotFoundHandler(), log); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("ServeTCP(%s): %v; want a refusal", addr, err)
		}
	}
	if err := ServeTCP(t.Context(), "127.0.0.1:0", nil, http.NotFoundHandler(), log); err == nil {
		t.Error("ServeTCP without tokens served")
	}
}

// TestReload: the reload operation runs the node's Reload, and says so
// when the node has none.
func TestReload(t *testing.T) {
	calls := 0
	c := serveNode(t, Node{Reload: func() (string, error) { calls++; return "reloaded: 1 zone changed", nil }})
	if msg, err := c.Reload(t.Context()); err != nil || msg != "reloaded: 1 zone changed" || calls != 1 {
		t.Errorf("Reload: %q %v (%d calls)", msg, err, calls)
	}
	c = serveNode(t, Node{Reload: func() (string, error) { return "", errors.New("configuration: bad") }})
	if _, err := c.Reload(t.Context()); err == nil || err.Error() != "reload: configuration: bad" {
		t.Errorf("failed Reload: %v", err)
	}
	c = serveNode(t, Node{})
	if _, err := c.Reload(t.Context()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Reload on a node without it: %v", err)
	}
	if _, err := c.Zones(t.Context(), ""); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Zones on a node without a store: %v", err)
	}
}

// TestEditJSON: an edit survives the wire as it was.
func TestEditJSON(t *testing.T) {
	e := Edit{
		Add: []Addition{{RR: mustRR(t, "a.example. 60 IN TXT \"x y\""), InheritTTL: true}, {RR: mustRR(t, "b.example. 60 IN TYPE65280 \\# 2 0102")}},
		Delete: []zonestore.Deletion{{Name: "c.example."}, {Name: "d.example.", Type: dns.TypeAAAA},
			{Name: "e.example.", RR: mustRR(t, "e.example. 0 IN A 192.0.2.1")}, {Name: "f.example.", Type: 65280}},
	}
	b, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Edit
	if err := back.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back) != fmt.Sprint(e) {
		t.Errorf("round trip:\n got %v\nwant %v", back, e)
	}
	var bad Edit
	if err := bad.UnmarshalJSON([]byte(`{"add":[{"rr":"not a record"}]}`)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("a bad record: %v", err)
	}
}
