package zonestore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

func openJournaled(t *testing.T, opts zonestore.Options) *zonestore.Store {
	t.Helper()
	st, err := zonestore.Open(filepath.Join(t.TempDir(), "sovdns.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func rrTexts(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = strings.Join(strings.Fields(rr.String()), " ")
	}
	slices.Sort(out)
	return out
}

func TestJournalRecordsEveryChange(t *testing.T) {
	st := openJournaled(t, zonestore.Options{})
	if _, err := st.As("unix:alice").Import(buildText(t, baseZone), false); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		author  string
		change  zonestore.Change
		removed []string
		added   []string
	}{
		{"unix:alice", zonestore.Change{Add: []dns.RR{mustRR(t, "new.example. 300 IN A 192.0.2.9")}},
			nil, []string{"new.example. 300 IN A 192.0.2.9"}},
		{"tsig:editor.", zonestore.Change{Delete: []zonestore.Deletion{{Name: "www.example.", Type: dns.TypeAAAA}}},
			[]string{"www.example. 3600 IN AAAA 2001:db8::80"}, nil},
		// A TTL change re-adds the whole RRset with the new TTL.
		{"token:ci", zonestore.Change{Add: []dns.RR{mustRR(t, "www.example. 60 IN A 192.0.2.80")}},
			[]string{"www.example. 3600 IN A 192.0.2.80", "www.example. 3600 IN A 192.0.2.81"},
			[]string{"www.example. 60 IN A 192.0.2.80", "www.example. 60 IN A 192.0.2.81"}},
	}
	for _, s := range steps {
		if _, err := st.As(s.author).Update("example.", s.change); err != nil {
			t.Fatal(err)
		}
	}
	h, err := st.History("example.", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1+len(steps) {
		t.Fatalf("history has %d entries, want %d", len(h), 1+len(steps))
	}
	if h[0].Op != zonestore.OpCreate || !h[0].Summary || h[0].From != nil || h[0].To.Serial != 5 || h[0].Author != "unix:alice" {
		t.Errorf("first entry = %+v, want the creation at serial 5 by unix:alice", h[0])
	}
	for i, s := range steps {
		e := h[i+1]
		if e.Op != zonestore.OpEdit || e.Author != s.author || e.Summary {
			t.Errorf("entry %d: op %q author %q summary %v", i+1, e.Op, e.Author, e.Summary)
		}
		if e.From.Serial != uint32(5+i) || e.To.Serial != uint32(6+i) {
			t.Errorf("entry %d: serial %d -> %d, want %d -> %d", i+1, e.From.Serial, e.To.Serial, 5+i, 6+i)
		}
		if got := rrTexts(e.Removed); !slices.Equal(got, s.removed) && !(len(got) == 0 && len(s.removed) == 0) {
			t.Errorf("entry %d removed %q, want %q", i+1, got, s.removed)
		}
		if got := rrTexts(e.Added); !slices.Equal(got, s.added) && !(len(got) == 0 && len(s.added) == 0) {
			t.Errorf("entry %d added %q, want %q", i+1, got, s.added)
		}
	}
	// The last two only.
	last, err := st.History("example.", 2)
	if err != nil || len(last) != 2 || last[1].Seq != h[len(h)-1].Seq || last[0].Seq != h[len(h)-2].Seq {
		t.Fatalf("History(2) = %d entries, %v", len(last), err)
	}
	// A refused edit journals nothing.
	if _, err := st.Update("example.", zonestore.Change{Delete: []zonestore.Deletion{{Name: "nope.example."}}}); !errors.Is(err, zonestore.ErrNotFound) {
		t.Fatalf("delete of a missing name: %v", err)
	}
	if again, _ := st.History("example.", 0); len(again) != len(h) {
		t.Errorf("a refused edit was journaled: %d entries, want %d", len(again), len(h))
	}
}

func TestJournalJSONRoundTrip(t *testing.T) {
	st := openJournaled(t, zonestore.Options{})
	if _, err := st.Import(buildText(t, baseZone), false); err != nil {
		t.Fatal(err)
	}
	if _, err := st.As("unix:bob").Update("example.", zonestore.Change{Add: []dns.RR{mustRR(t, "x.example. 300 IN TXT \"a b\"")}}); err != nil {
		t.Fatal(err)
	}
	h, err := st.History("example.", 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back []zonestore.Entry
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != len(h) {
		t.Fatalf("%d entries back, want %d", len(back), len(h))
	}
	for i := range h {
		if back[i].Author != h[i].Author || back[i].FromSerial() != h[i].FromSerial() || back[i].To.Serial != h[i].To.Serial ||
			!slices.Equal(rrTexts(back[i].Added), rrTexts(h[i].Added)) || !back[i].Time.Equal(h[i].Time.Truncate(time.Nanosecond)) {
			t.Errorf("entry %d: %+v came back as %+v", i, h[i], back[i])
		}
	}
	if !strings.Contains(string(b), `"author":"unix:bob"`) || !strings.Contains(string(b), `x.example.\t300\tIN\tTXT\t\"a b\"`) {
		t.Errorf("JSON lacks the author or the record: %s", b)
	}
}

// applyEntries replays journal entries on a zone, as an IXFR client does.
func applyEntries(t *testing.T, z *zone.Zone, entries []zonestore.Entry) *zone.Zone {
	t.Helper()
	rrs := z.Records()
	for _, e := range entries {
		keep := rrs[:0:0]
		for _, rr := range rrs {
			if rr.Header().Rrtype == dns.TypeSOA {
				continue
			}
			gone := false
			for _, d := range e.Removed {
				if d.Header().Ttl == rr.Header().Ttl && dns.IsDuplicate(d, rr) {
					gone = true
				}
			}
			if !gone {
				keep = append(keep, rr)
			}
		}
		rrs = append(append(keep, e.Added...), e.To)
	}
	out, err := zone.Build(z.Origin, rrs)
	if err != nil {
		t.Fatalf("replayed zone does not build: %v", err)
	}
	return out
}

func TestChangesReplayToTheCurrentZone(t *testing.T) {
	st := openJournaled(t, zonestore.Options{})
	if _, err := st.Import(buildText(t, baseZone), false); err != nil {
		t.Fatal(err)
	}
	first, _ := st.Load("example.")
	for i := range 6 {
		c := zonestore.Change{Add: []dns.RR{mustRR(t, fmt.Sprintf("h%d.example. 300 IN A 192.0.2.%d", i, i+1))}}
		if i%2 == 1 {
			c.Delete = []zonestore.Deletion{{Name: fmt.Sprintf("h%d.example.", i-1)}}
		}
		if _, err := st.Update("example.", c); err != nil {
			t.Fatal(err)
		}
	}
	cur, _ := st.Load("example.")
	for _, from := range []uint32{5, 7, 10} {
		entries, z, err := st.Changes("example.", from)
		if err != nil {
			t.Fatalf("Changes(%d): %v", from, err)
		}
		if z.Serial() != cur.Serial() || len(entries) != int(cur.Serial()-from) {
			t.Fatalf("Changes(%d): %d entries to serial %d", from, len(entries), z.Serial())
		}
		if from == 5 {
			got := applyEntries(t, first, entries)
			if export(t, got) != export(t, cur) {
				t.Errorf("replaying from 5 gives\n%s\nwant\n%s", export(t, got), export(t, cur))
			}
		}
	}
	if entries, _, err := st.Changes("example.", cur.Serial()); err != nil || len(entries) != 0 {
		t.Errorf("Changes(current) = %d entries, %v; want none", len(entries), err)
	}
	for _, from := range []uint32{4, 3000} {
		if _, _, err := st.Changes("example.", from); !errors.Is(err, zonestore.ErrNoJournal) {
			t.Errorf("Changes(%d): %v, want ErrNoJournal", from, err)
		}
	}
}

func TestJournalBounds(t *testing.T) {
	// 8 KiB: entries of a few hundred bytes; an entry over 2 KiB is a summary.
	st := openJournaled(t, zonestore.Options{JournalMaxBytes: 8 << 10})
	if _, err := st.Import(buildText(t, baseZone), false); err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		c := zonestore.Change{Add: []dns.RR{mustRR(t, fmt.Sprintf("n%d.example. 300 IN A 192.0.2.%d", i, i))}}
		if _, err := st.Update("example.", c); err != nil {
			t.Fatal(err)
		}
	}
	h, err := st.History("example.", 0)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, e := range h {
		b, _ := json.Marshal(e)
		total += len(b) / 3 // JSON is bulkier than the stored form
	}
	if len(h) >= 61 || len(h) < 5 {
		t.Fatalf("journal kept %d of 61 entries; want it trimmed to its 8 KiB", len(h))
	}
	if h[len(h)-1].To.Serial != 65 {
		t.Errorf("newest entry is serial %d, want 65", h[len(h)-1].To.Serial)
	}
	// Trimmed entries are gone for IXFR too.
	if _, _, err := st.Changes("example.", 5); !errors.Is(err, zonestore.ErrNoJournal) {
		t.Errorf("Changes from a trimmed serial: %v, want ErrNoJournal", err)
	}
	if _, _, err := st.Changes("example.", h[0].From.Serial); err != nil {
		t.Errorf("Changes from the oldest kept serial: %v", err)
	}
	// A change bigger than a quarter of the bound is kept as a summary.
	var big []dns.RR
	for i := range 100 {
		big = append(big, mustRR(t, fmt.Sprintf("big%d.example. 300 IN TXT \"%s\"", i, strings.Repeat("x", 40))))
	}
	if _, err := st.Update("example.", zonestore.Change{Add: big}); err != nil {
		t.Fatal(err)
	}
	h, _ = st.History("example.", 1)
	if !h[0].Summary || h[0].AddedCount != 100 || len(h[0].Added) != 0 {
		t.Errorf("large change: summary %v, %d added counted, %d kept", h[0].Summary, h[0].AddedCount, len(h[0].Added))
	}
	if _, _, err := st.Changes("example.", h[0].From.Serial); !errors.Is(err, zonestore.ErrNoJournal) {
		t.Errorf("IXFR across a summary: %v, want ErrNoJournal", err)
	}
}

func TestJournalMaxAge(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st := openJournaled(t, zonestore.Options{JournalMaxAge: 24 * time.Hour, Now: clock})
	if _, err := st.Import(buildText(t, baseZone), false); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		now = now.Add(10 * time.Hour)
		if _, err := st.Update("example.", zonestore.Change{Add: []dns.RR{mustRR(t, fmt.Sprintf("t%d.example. 300 IN A 192.0.2.1", i))}}); err != nil {
			t.Fatal(err)
		}
	}
	// Entries at 0h, 10h, 20h, 30h: at 30h the 0h one is past 24h.
	h, _ := st.History("example.", 0)
	if len(h) != 3 || h[0].To.Serial != 6 {
		t.Errorf("kept %d entries starting at serial %d; want 3 from serial 6", len(h), h[0].To.Serial)
	}
}

func TestSecondaryZones(t *testing.T) {
	st := openJournaled(t, zonestore.Options{})
	z5 := buildText(t, baseZone)
	if _, err := st.As("xfr:192.0.2.1").PutTransfer(z5, "192.0.2.1:53"); err != nil {
		t.Fatal(err)
	}
	m, err := st.Meta("example.")
	if err != nil || m.Kind != zonestore.KindSecondary || m.Source != "192.0.2.1:53" || m.Refreshed.IsZero() {
		t.Fatalf("Meta = %+v, %v", m, err)
	}
	if _, err := st.Update("example.", zonestore.Change{Add: []dns.RR{mustRR(t, "x.example. 1 IN A 192.0.2.1")}}); !errors.Is(err, zonestore.ErrSecondary) {
		t.Errorf("edit of a secondary: %v, want ErrSecondary", err)
	}
	if _, err := st.Import(z5, true); !errors.Is(err, zonestore.ErrSecondary) {
		t.Errorf("import over a secondary: %v, want ErrSecondary", err)
	}
	if _, err := st.PutTransfer(z5, "x"); !errors.Is(err, zonestore.ErrSerialNotNewer) {
		t.Errorf("same serial again: %v, want ErrSerialNotNewer", err)
	}
	z6 := buildText(t, strings.Replace(baseZone, "hostmaster 5", "hostmaster 6", 1)+"extra IN A 192.0.2.7\n")
	if _, err := st.PutTransfer(z6, "192.0.2.1:53"); err != nil {
		t.Fatal(err)
	}
	entries, _, err := st.Changes("example.", 5)
	if err != nil || len(entries) != 1 || entries[0].Op != zonestore.OpTransfer || len(entries[0].Added) != 1 {
		t.Fatalf("Changes after a transfer: %+v, %v", entries, err)
	}
	info, _ := st.Info("example.")
	if info.Kind != zonestore.KindSecondary || info.Serial != 6 {
		t.Errorf("Info = %+v", info)
	}
	// A primary zone is never replaced by a transfer.
	p, err := zonestore.Parse(strings.NewReader(strings.ReplaceAll(baseZone, "example.", "example.org.")), "example.org.", "org.zone", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Import(other, false); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutTransfer(other, "x"); !errors.Is(err, zonestore.ErrNotSecondary) {
		t.Errorf("transfer over a primary: %v, want ErrNotSecondary", err)
	}
}

// Kinds lists every stored zone with its kind, primaries and secondaries.
func TestKinds(t *testing.T) {
	st := openJournaled(t, zonestore.Options{})
	if got, err := st.Kinds(); err != nil || len(got) != 0 {
		t.Fatalf("Kinds of an empty store = %v, %v", got, err)
	}
	if _, err := st.Import(buildText(t, baseZone), false); err != nil {
		t.Fatal(err)
	}
	other, err := zone.Build("example.org.", []dns.RR{
		mustRR(t, "example.org. 3600 IN SOA ns1.example.org. hostmaster.example.org. 1 7200 900 1209600 300"),
		mustRR(t, "example.org. 3600 IN NS ns1.example.net."),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.As("xfr:192.0.2.1").PutTransfer(other, "192.0.2.1:53"); err != nil {
		t.Fatal(err)
	}
	got, err := st.Kinds()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"example.": zonestore.KindPrimary, "example.org.": zonestore.KindSecondary}
	if !maps.Equal(got, want) {
		t.Fatalf("Kinds = %v, want %v", got, want)
	}
}
