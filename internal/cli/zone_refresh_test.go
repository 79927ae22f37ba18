package cli

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/internal/replication"
)

// fakeReplication answers refresh and retransfer requests with fixed
// results, and says which zones are kept past expiry.
type fakeReplication struct {
	mu   sync.Mutex
	asks []string // "zone refresh|retransfer"
	kept map[string]bool
	secs []replication.SecondaryZone // configured
}

func (f *fakeReplication) Refresh(_ context.Context, origin string, retransfer bool) (replication.RefreshResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	what := "refresh"
	if retransfer {
		what = "retransfer"
	}
	f.asks = append(f.asks, origin+" "+what)
	switch {
	case origin == "gov.az" || origin == "gov.az.":
		return replication.RefreshResult{}, fmt.Errorf("zone gov.az.: %w: it is a primary zone here", replication.ErrNotSecondary)
	case origin == "down.example":
		return replication.RefreshResult{Zone: "down.example.", OldSerial: 7, Serial: 7},
			fmt.Errorf("zone down.example.: SOA query to 192.0.2.53:53: i/o timeout")
	case retransfer:
		return replication.RefreshResult{Zone: "copy.example.", Primary: "192.0.2.53:53", PrimarySerial: 5, OldSerial: 5, Serial: 5, Transfer: "AXFR"}, nil
	}
	return replication.RefreshResult{Zone: "copy.example.", Primary: "192.0.2.53:53", PrimarySerial: 6, OldSerial: 5, Serial: 6, Transfer: "IXFR"}, nil
}

func (f *fakeReplication) NotifyPending() int { return 0 }

func (f *fakeReplication) Secondaries() []replication.SecondaryZone { return f.secs }

func (f *fakeReplication) KeptZones() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.kept)
}

// TestZoneRefresh: sovdns zone refresh and retransfer ask the running
// server and print what it did; errors name the zone and why.
func TestZoneRefresh(t *testing.T) {
	clearEnv(t)
	dir := govDataDir(t)
	expectFail(t, dir, 1, "no running sovdns server on data directory "+dir, "zone", "refresh", "copy.example")
	expectFail(t, dir, 1, "no running sovdns server", "zone", "retransfer", "copy.example")

	f := &fakeReplication{}
	serveDataDir(t, dir, control.Node{Replication: f})
	tests := []struct {
		args []string
		code int
		want string // in stdout, or in stderr when code is not 0
	}{
		{args: []string{"zone", "refresh", "copy.example"}, want: "zone copy.example.: serial 5 -> 6 by IXFR from 192.0.2.53:53\n"},
		{args: []string{"zone", "retransfer", "copy.example"}, want: "zone copy.example.: serial 5 -> 5 by AXFR from 192.0.2.53:53\n"},
		{args: []string{"zone", "refresh", "copy.example", "--json"}, want: `"transfer": "IXFR"`},
		{args: []string{"zone", "refresh", "gov.az"}, code: 1, want: "zone gov.az.: not a secondary zone of this server: it is a primary zone here"},
		{args: []string{"zone", "refresh", "down.example"}, code: 1, want: "SOA query to 192.0.2.53:53: i/o timeout"},
	}
	for _, tt := range tests {
		r := run(t, dir, tt.args...)
		out := r.stdout
		if tt.code != 0 {
			out = r.stderr
		}
		if r.code != tt.code || !strings.Contains(out, tt.want) {
			t.Errorf("sovdns %s: exit %d\nstdout: %s\nstderr: %s\nwant exit %d and %q",
				strings.Join(tt.args, " "), r.code, r.stdout, r.stderr, tt.code, tt.want)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []string{"copy.example refresh", "copy.example retransfer", "copy.example refresh", "gov.az refresh", "down.example refresh"}; strings.Join(f.asks, ",") != strings.Join(want, ",") {
		t.Errorf("the server was asked %q, want %q", f.asks, want)
	}
}

func TestDescribeRefresh(t *testing.T) {
	for _, tt := range []struct {
		res  replication.RefreshResult
		want string
	}{
		{replication.RefreshResult{Zone: "a.", Primary: "192.0.2.1:53", PrimarySerial: 4, OldSerial: 4, Serial: 4},
			"zone a.: current at serial 4 (primary 192.0.2.1:53 has 4); nothing transferred"},
		{replication.RefreshResult{Zone: "a.", Primary: "192.0.2.1:53", PrimarySerial: 4, Serial: 4, Transfer: "AXFR"},
			"zone a.: serial 4 transferred by AXFR from 192.0.2.1:53 (there was no copy)"},
		{replication.RefreshResult{Zone: "a.", Primary: "192.0.2.1:53", PrimarySerial: 5, OldSerial: 4, Serial: 5, Transfer: "IXFR"},
			"zone a.: serial 4 -> 5 by IXFR from 192.0.2.1:53"},
	} {
		if got := describeRefresh(tt.res, "x."); got != tt.want {
			t.Errorf("%+v:\n got %s\nwant %s", tt.res, got, tt.want)
		}
	}
}

// TestStatusKept: a copy past expiry that the server keeps serving in
// island mode is labelled so, not EXPIRED.
func TestStatusKept(t *testing.T) {
	clearEnv(t)
	dir, conf := statusDataDir(t)
	serveDataDir(t, dir, control.Node{Replication: &fakeReplication{kept: map[string]bool{"old.example.": true},
		secs: statusSecondaries(t, conf)}})
	r := mustRun(t, "", "status", "--config", conf)
	if got, want := zoneLine(t, r.stdout, "old.example."), "old.example. secondary 2024010101 13 Ns ago 15d ago 24h00m ago kept (expired, island mode)"; got != want {
		t.Errorf("old.example.:\n  %s\nwant\n  %s", got, want)
	}
	if want := "zones:   4, 1 past expiry, kept and served (island mode)\n"; !strings.Contains(r.stdout, want) {
		t.Errorf("output does not contain %q:\n%s", want, r.stdout)
	}
	st := decodeJSON[control.Status](t, mustRun(t, "", "status", "--config", conf, "--json"))
	for _, z := range st.Zones {
		if z.Zone == "old.example." && (!z.Kept || !z.Expired || z.State != control.ZoneKept) {
			t.Errorf("old.example.: %+v", z)
		}
		if z.Zone != "old.example." && z.Kept {
			t.Errorf("%s kept: %+v", z.Zone, z)
		}
	}
}
