package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/config"
	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/internal/replication"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zonestore"
)

// statusDataDir makes a data directory holding the primary gov.az. and two
// secondary copies: copy.example. (current) and old.example. (last found
// current 15 days ago, past its 14-day SOA expire), and a configuration
// that makes copy.example. a mirror and also names a secondary of which no
// copy is stored.
func statusDataDir(t *testing.T) (dir, conf string) {
	t.Helper()
	dir = govDataDir(t)
	st, err := zonestore.Open(filepath.Join(dir, "sovdns.db"), zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, origin := range []string{"copy.example.", "old.example."} {
		p, err := zonestore.Parse(strings.NewReader(strings.ReplaceAll(exampleZone, "example.org.", origin)), "", origin, nil)
		if err != nil {
			t.Fatal(err)
		}
		z, err := p.Build()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.PutTransfer(z, "192.0.2.53"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.MarkRefreshed("old.example.", time.Now().Add(-15*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	conf = filepath.Join(t.TempDir(), "sovdns.yml")
	text := fmt.Sprintf(`data_dir: %s
resolver:
  allow: []
secondary:
  - zone: copy.example
    primaries: ["192.0.2.53"]
    mirror: true
  - zone: old.example
    primaries: ["192.0.2.53"]
  - zone: missing.example
    primaries: ["192.0.2.53"]
`, dir)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, conf
}

// statusSecondaries is the secondary zones statusDataDir's configuration
// names, as the running server holds them.
func statusSecondaries(t *testing.T, conf string) []replication.SecondaryZone {
	t.Helper()
	c, err := config.Load(conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.Repl.Secondaries
}

var secondsAgo = regexp.MustCompile(`\b\d+s ago`)

// zoneLine returns the line of the zone table for origin, its columns
// separated by one space and ages in seconds (the test's own) as "Ns ago".
func zoneLine(t *testing.T, out, origin string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, origin+" ") {
			return secondsAgo.ReplaceAllString(strings.Join(strings.Fields(l), " "), "Ns ago")
		}
	}
	t.Errorf("no line for %s in\n%s", origin, out)
	return ""
}

// TestStatusNotRunning: with no server the zones come from the database,
// and the exit status is 3.
func TestStatusNotRunning(t *testing.T) {
	clearEnv(t)
	dir, conf := statusDataDir(t)
	r := run(t, "", "status", "--config", conf)
	if r.code != exitNotRunning || !strings.Contains(r.stderr, "no running sovdns server on data directory "+dir) {
		t.Errorf("exit %d, stderr %q; want %d and no running server", r.code, r.stderr, exitNotRunning)
	}
	for _, want := range []string{
		"server:  NOT RUNNING: zones read from the database " + filepath.Join(dir, "sovdns.db") + "\n",
		"zones:   4, 1 EXPIRED\n",
		"ZONE              KIND       SERIAL      RECORDS  UPDATED  REFRESHED  EXPIRES     STATE\n",
		"resolver:  not known: the server is not running\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output does not contain %q:\n%s", want, r.stdout)
		}
	}
	for origin, want := range map[string]string{
		"gov.az.":          "gov.az. primary 2024010101 8 Ns ago - - current",
		"copy.example.":    "copy.example. mirror 2024010101 13 Ns ago Ns ago in 13d current",
		"old.example.":     "old.example. secondary 2024010101 13 Ns ago 15d ago 24h00m ago EXPIRED",
		"missing.example.": "missing.example. secondary - - - - - missing: configured, no copy stored yet",
	} {
		if got := zoneLine(t, r.stdout, origin); got != want {
			t.Errorf("%s:\n  %s\nwant\n  %s", origin, got, want)
		}
	}

	r = run(t, "", "status", "--config", conf, "--json")
	if r.code != exitNotRunning {
		t.Errorf("--json: exit %d", r.code)
	}
	st := decodeJSON[control.Status](t, r)
	if st.Running || st.Resolver != nil || len(st.Zones) != 4 {
		t.Fatalf("status %s", r.stdout)
	}
	if z := st.Zones[3]; z.Zone != "old.example." || !z.Expired || z.State != control.ZoneExpired || z.Source != "192.0.2.53" {
		t.Errorf("old.example.: %+v", z)
	}
}

// TestStatusRunning: the running server gives the zones, the same as the
// database does, and the resolver's state.
func TestStatusRunning(t *testing.T) {
	clearEnv(t)
	dir, conf := statusDataDir(t)
	offline := decodeJSON[control.Status](t, run(t, "", "status", "--config", conf, "--json"))

	rec := resolver.New(resolver.Config{Island: resolver.IslandConfig{Disabled: true}, National: []string{"example.net."}}, nil,
		resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20}), nil, nil)
	for _, s := range []string{"www.example.org. 300 IN A 192.0.2.1", "example.net. 300 IN NS ns.example.net."} {
		rr, _ := dns.NewRR(s)
		rec.Cache().PutRRset([]dns.RR{rr}, resolver.RankAnswerAA)
	}
	cacheFile := func() control.CacheFileStatus {
		return control.CacheFileStatus{Path: "/d/resolver-cache.db", WriteBehindSeconds: 2, Open: true}
	}
	srv := serveDataDir(t, dir, control.Node{Resolver: rec, Cache: rec.Cache(), CacheFile: cacheFile,
		Replication: &fakeReplication{secs: statusSecondaries(t, conf)}})
	r := mustRun(t, "", "status", "--config", conf)
	for _, want := range []string{
		"server:  running (data directory " + dir + ")\n",
		"cache:           2 entries, ",
		"national infra:  1 entries held apart: ",
		"cache file:      up to date (write-behind 2s), last written - (/d/resolver-cache.db)\n",
		"island mode:     no\n",
		"last probe:      none yet\n",
		"island history:  0 transitions, 0s in island mode in total; foreign failures in a row: 0\n",
		"upstreams:      none asked yet\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output does not contain %q:\n%s", want, r.stdout)
		}
	}
	if got, want := zoneLine(t, r.stdout, "old.example."), "old.example. secondary 2024010101 13 Ns ago 15d ago 24h00m ago EXPIRED"; got != want {
		t.Errorf("old.example.: %s, want %s", got, want)
	}
	online := decodeJSON[control.Status](t, mustRun(t, "", "status", "--config", conf, "--json"))
	if !online.Running || online.Resolver == nil || online.Resolver.Cache.Entries != 2 || online.Resolver.Cache.National != 1 ||
		online.Resolver.CacheFile == nil || online.Resolver.CacheFile.WriteBehindSeconds != 2 {
		t.Errorf("status %+v", online)
	}
	if !reflect.DeepEqual(online.Zones, offline.Zones) {
		t.Errorf("zones from the server:\n%+v\nfrom the database:\n%+v", online.Zones, offline.Zones)
	}
	srv.stop()

	serveDataDir(t, dir, control.Node{})
	if r := mustRun(t, "", "status", "--config", conf); !strings.Contains(r.stdout, "resolver:  off (resolver.allow is empty)\n") {
		t.Errorf("a server that does not resolve:\n%s", r.stdout)
	}
}

func TestStatusWithoutDatabase(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	r := run(t, dir, "status")
	if r.code != exitNotRunning || !strings.Contains(r.stdout, "zones:   none (no zone database at "+filepath.Join(dir, "sovdns.db")+")") {
		t.Errorf("exit %d\n%s", r.code, r.stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "sovdns.db")); err == nil {
		t.Error("status created a database")
	}
}

func TestRelTime(t *testing.T) {
	now := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		t    time.Time
		want string
	}{
		{t: time.Time{}, want: "-"},
		{t: now.Add(-30 * time.Second), want: "30s ago"},
		{t: now.Add(-5 * time.Minute), want: "5m ago"},
		{t: now.Add(-26*time.Hour - 5*time.Minute), want: "26h05m ago"},
		{t: now.Add(14 * 24 * time.Hour), want: "in 14d"},
	} {
		if got := relTime(now, tt.t); got != tt.want {
			t.Errorf("relTime(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 3 << 20: "3.0 MiB"} {
		if got := sizeIEC(n); got != want {
			t.Errorf("sizeIEC(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCacheFileLine(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		f    control.CacheFileStatus
		want string
	}{
		{control.CacheFileStatus{Path: "/d/resolver-cache.db", WriteBehindSeconds: 2, Open: true, LastWrite: now.Add(-3 * time.Second)},
			"up to date (write-behind 2s), last written 3s ago (/d/resolver-cache.db)"},
		{control.CacheFileStatus{Path: "/d/c.db", WriteBehindSeconds: 2, Open: true, PendingEntries: 12, LagSeconds: 1.26},
			"12 changes pending, the oldest 1.3s old (write-behind 2s) (/d/c.db)"},
		{control.CacheFileStatus{Path: "/d/c.db", WriteBehindSeconds: 2, PendingEntries: 5, LagSeconds: 40, Errors: 3, LastError: "disk full"},
			"NOT BEING WRITTEN: 5 changes pending, the oldest 40s old; 3 errors, last: disk full (/d/c.db)"},
		{control.CacheFileStatus{Path: "/d/c.db", LastWrite: now.Add(-2 * time.Minute)},
			"saved whole (write-behind off), last 2m ago (/d/c.db)"},
	} {
		if got := cacheFileLine(tc.f, now); got != tc.want {
			t.Errorf("cacheFileLine(%+v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

// TestStatusManyZones: with many zones, status lists only those that need
// attention and stays one screen.
func TestStatusManyZones(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	st := control.Status{Running: true, Time: now}
	for i := range 10_000 {
		st.Zones = append(st.Zones, control.ZoneStatus{Zone: fmt.Sprintf("z%d.gov.test.", i), Kind: zonestore.KindPrimary,
			Serial: 1, Records: 9, Updated: now, State: control.ZoneCurrent})
	}
	st.Zones[17].Kind, st.Zones[17].State, st.Zones[17].Expired = zonestore.KindSecondary, control.ZoneExpired, true
	st.Zones[4242].State, st.Zones[4242].Error = control.ZoneBroken, "stored zone data is damaged"
	st.Zones[9000].Transaction = &zonestore.TxnInfo{Author: "unix:alice", Started: now, Serial: 1, Changes: 3}
	var b strings.Builder
	if err := printStatus(&b, st, config.Config{DataDir: "/var/lib/sovdns"}, "", now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if lines := strings.Count(out, "\n"); lines > 60 {
		t.Errorf("status printed %d lines for 10,000 zones:\n%s", lines, out)
	}
	for _, want := range []string{"zones:   10000, 1 EXPIRED", "z17.gov.test.", "z4242.gov.test.", "z9000.gov.test.",
		"transaction open on z9000.gov.test.: by unix:alice", "(3 of 10000 zones shown"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "z1.gov.test.") {
		t.Errorf("a current zone is listed:\n%s", out)
	}
}

// TestStatusDNSSEC: status shows each signed zone's policy, keys and
// their states, the earliest signature expiry and the step a rollover
// waits for, from the database and from the running server alike.
func TestStatusDNSSEC(t *testing.T) {
	clearEnv(t)
	dir, conf := statusDataDir(t)
	st, err := zonestore.Open(filepath.Join(dir, "sovdns.db"), zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pol := dnssec.DefaultPolicy()
	pol.SplitKeys = true
	if _, err := st.EnableDNSSEC("gov.az.", pol); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Rollover("gov.az.", dnssec.RoleKSK, false); err != nil {
		t.Fatal(err)
	}
	s, err := st.DNSSEC("gov.az.")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	var ksk, newKSK, zsk string
	for _, k := range s.Keys {
		switch {
		case k.Role == dnssec.RoleZSK:
			zsk = k.ID
		case k.State == dnssec.StateActive:
			ksk = k.ID
		default:
			newKSK = k.ID
		}
	}
	check := func(r result) {
		t.Helper()
		for _, want := range []string{
			fmt.Sprintf("dnssec gov.az.: algorithm 13, KSK+ZSK, nsec; keys: %s ksk active, %s zsk active, %s ksk ds-pending; earliest signature expiry %s (in ",
				ksk, zsk, newKSK, s.FirstExpiry.Format(time.RFC3339)),
			"  next step: ksk " + newKSK + ": waiting for the parent to publish its DS",
		} {
			if !strings.Contains(strings.ReplaceAll(r.stdout, zsk+" zsk active, "+ksk+" ksk active", ksk+" ksk active, "+zsk+" zsk active"), want) {
				t.Errorf("output does not contain %q:\n%s", want, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "dnssec copy.example.") {
			t.Errorf("an unsigned zone has a dnssec line:\n%s", r.stdout)
		}
	}
	check(run(t, "", "status", "--config", conf))
	offline := decodeJSON[control.Status](t, run(t, "", "status", "--config", conf, "--json"))
	if d := offline.Zones[0].DNSSEC; offline.Zones[0].Zone != "gov.az." || d == nil || len(d.Keys) != 3 || !d.FirstExpiry.Equal(s.FirstExpiry) || d.Problem != "" {
		t.Fatalf("gov.az. in JSON: %+v", offline.Zones[0])
	}
	srv := serveDataDir(t, dir, control.Node{})
	check(mustRun(t, "", "status", "--config", conf))
	online := decodeJSON[control.Status](t, mustRun(t, "", "status", "--config", conf, "--json"))
	if !reflect.DeepEqual(online.Zones[0], offline.Zones[0]) {
		t.Errorf("gov.az. from the server:\n%+v\nfrom the database:\n%+v", online.Zones[0], offline.Zones[0])
	}
	srv.stop()
}
