package control

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sovdns/sovdns/internal/replication"
	"github.com/sovdns/sovdns/zonestore"
)

// TestZoneRowsBounded checks that a status cut to the zones that need
// attention holds a bounded number of rows however many zones pass
// through it, counts them all, and keeps the first in canonical order,
// whatever the order the zones come in.
func TestZoneRowsBounded(t *testing.T) {
	const n, limit = 10000, 20
	for _, tt := range []struct {
		name    string
		max     int
		reverse bool // the zones in reverse canonical order
		rows    int  // rows returned
		peak    int  // most rows held at once, at most
	}{
		{"cut", limit, false, limit, 2*limit + 16},
		{"cut, reverse", limit, true, limit, 2*limit + 16},
		{"all kept", -1, true, n, n},
		{"fewer than max", 2 * n, false, n, n},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := zoneRows{max: tt.max}
			peak := 0
			for j := range n {
				i := j
				if tt.reverse {
					i = n - 1 - j
				}
				z := ZoneStatus{Zone: fmt.Sprintf("z%05d.example.", i), Kind: zonestore.KindSecondary, State: ZoneCurrent}
				if i%10 == 0 {
					z.State, z.Expired = ZoneExpired, true
				}
				r.add(z)
				peak = max(peak, len(r.rows))
			}
			rows, sum := r.done()
			if peak > tt.peak {
				t.Errorf("held %d rows at once, want at most %d", peak, tt.peak)
			}
			if len(rows) != tt.rows {
				t.Fatalf("%d rows, want %d", len(rows), tt.rows)
			}
			step := 1
			if tt.max == limit {
				step = 10 // only the expired ones
			}
			for i, z := range rows {
				if want := fmt.Sprintf("z%05d.example.", i*step); z.Zone != want {
					t.Fatalf("row %d is %s, want %s", i, z.Zone, want)
				}
			}
			if tt.max < 0 {
				if sum != nil {
					t.Errorf("summary %+v with every zone kept", sum)
				}
				return
			}
			if sum == nil || *sum != (ZoneSummary{Total: n, Expired: n / 10, Attention: n / 10}) {
				t.Errorf("summary %+v", sum)
			}
		})
	}
}

// TestFillZones: the zones of a store and the configured secondaries, as
// a running server (every zone read, the kept copies marked) and as the
// command without one (zones beyond MaxRead not read) describe them.
func TestFillZones(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sovdns.db")
	st, err := zonestore.Open(path, zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Import(buildZone(t, testZone), false); err != nil { // example.org., a primary
		t.Fatal(err)
	}
	for _, origin := range []string{"copy.example.", "mirror.example.", "old.example."} {
		if _, err := st.PutTransfer(buildZone(t, strings.Replace(testZone, "example.org.", origin, 1)), "192.0.2.53"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.MarkRefreshed("old.example.", time.Now().Add(-15*24*time.Hour)); err != nil { // expire: 14 days
		t.Fatal(err)
	}
	secs := []replication.SecondaryZone{
		{Zone: "mirror.example.", Mirror: true},
		{Zone: "missing.example."},
		{Zone: "example.org."}, // a primary of the same name: left alone
	}
	describe := func(st *zonestore.Store, q ZoneQuery) (map[string]string, *Status) {
		t.Helper()
		q.Store, q.Secondaries = st, secs
		var s Status
		if err := FillZones(&s, q, time.Now()); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, z := range s.Zones {
			got[z.Zone] = z.Kind + " " + z.State
		}
		return got, &s
	}

	// The running server: old.example. kept in island mode.
	got, s := describe(st, ZoneQuery{MaxRead: -1, Attention: -1, Kept: map[string]bool{"old.example.": true}})
	want := map[string]string{"example.org.": "primary current", "copy.example.": "secondary current",
		"mirror.example.": "mirror current", "old.example.": "secondary kept", "missing.example.": "secondary missing"}
	if !maps.Equal(got, want) || s.Summary != nil || s.ZonesNotRead != 0 {
		t.Errorf("server: %v (summary %v, not read %d), want %v", got, s.Summary, s.ZonesNotRead, want)
	}
	if _, s = describe(st, ZoneQuery{MaxRead: -1, Attention: 1, Kept: map[string]bool{"old.example.": true}}); len(s.Zones) != 1 ||
		s.Zones[0].Zone != "missing.example." || *s.Summary != (ZoneSummary{Total: 5, Kept: 1, Expired: 0, Attention: 2}) {
		t.Errorf("server, one row: %+v, summary %+v", s.Zones, s.Summary)
	}
	st.Close()

	// No server: a store just opened holds no zone in memory; with more
	// of them than MaxRead none is read, and they are counted.
	if st, err = zonestore.Open(path, zonestore.Options{ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want["old.example."] = "secondary expired"
	for _, tt := range []struct{ maxRead, notRead int }{{2, 4}, {4, 0}} {
		got, s := describe(st, ZoneQuery{MaxRead: tt.maxRead, Attention: -1})
		if !maps.Equal(got, want) || s.ZonesNotRead != tt.notRead {
			t.Errorf("MaxRead %d: %v, %d not read; want %v, %d", tt.maxRead, got, s.ZonesNotRead, want, tt.notRead)
		}
	}
}

// TestZoneListsStreamed: the zone lists read a batch at a time are those
// of the whole list, byte for byte: the API's JSON, the command's
// indented JSON and its table, with zones and without.
func TestZoneListsStreamed(t *testing.T) {
	st := openTestStore(t) // example.org.
	for _, origin := range []string{"copy.example.", "b.example.org.", "example."} {
		if _, err := st.Import(buildZone(t, strings.Replace(testZone, "example.org.", origin, 1)), false); err != nil {
			t.Fatal(err)
		}
	}
	empty, err := zonestore.Open(filepath.Join(t.TempDir(), "empty.db"), zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	for name, st := range map[string]*zonestore.Store{"zones": st, "none": empty} {
		t.Run(name, func(t *testing.T) {
			infos, err := st.Infos()
			if err != nil {
				t.Fatal(err)
			}
			whole, streamed := httptest.NewRecorder(), httptest.NewRecorder()
			writeJSONList(whole, infos)
			writeJSONListFrom(streamed, func(fn func([]zonestore.ZoneInfo) error) error { return st.EachInfoBatch(nil, 1, fn) })
			if whole.Body.String() != streamed.Body.String() {
				t.Errorf("API list\n%s\nwhole\n%s", streamed.Body, whole.Body)
			}
			var want, got bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetIndent("", "  ")
			if err := enc.Encode(infos); err != nil {
				t.Fatal(err)
			}
			if err := (Local{Store: st}).ZoneList(t.Context(), "", true, &got); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("zone list --json\n%s\nwant\n%s", &got, &want)
			}
			want.Reset()
			got.Reset()
			if err := WriteZoneTable(&want, infos); err != nil {
				t.Fatal(err)
			}
			if err := (Local{Store: st}).ZoneList(t.Context(), "", false, &got); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() || !strings.HasPrefix(got.String(), "ZONE") {
				t.Errorf("zone list\n%s\nwant\n%s", &got, &want)
			}
		})
	}
}
