package zonestore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sovdns/sovdns/zonestore"
)

// TestReplaceTransfer: a copy transferred whole on request replaces the
// stored one whatever the serials; an equal or older serial breaks the
// journal's chain (no IXFR leads to it), a newer one is journaled as any
// transfer. A primary zone is never replaced.
func TestReplaceTransfer(t *testing.T) {
	serial := func(n string, extra string) string {
		return strings.Replace(baseZone, "hostmaster 5", "hostmaster "+n, 1) + extra
	}
	tests := []struct {
		name      string
		text      string
		from      uint32 // Changes from this serial afterwards
		chainLeft bool   // Changes from "from" still works
	}{
		{name: "same serial, other contents", text: serial("5", "other IN A 192.0.2.8\n"), from: 4},
		{name: "older serial", text: serial("3", ""), from: 5},
		{name: "newer serial", text: serial("9", "newer IN A 192.0.2.9\n"), from: 5, chainLeft: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openJournaled(t, zonestore.Options{})
			z4 := buildText(t, serial("4", ""))
			if _, err := st.PutTransfer(z4, "192.0.2.1:53"); err != nil {
				t.Fatal(err)
			}
			if _, err := st.PutTransfer(buildText(t, baseZone), "192.0.2.1:53"); err != nil {
				t.Fatal(err)
			}
			z := buildText(t, tt.text)
			res, err := st.ReplaceTransfer(z, "192.0.2.2:53")
			if err != nil {
				t.Fatal(err)
			}
			if res.OldSerial != 5 || res.Serial != z.Serial() {
				t.Errorf("serial %d -> %d, want 5 -> %d", res.OldSerial, res.Serial, z.Serial())
			}
			got, err := st.Load("example.")
			if err != nil || got.Len() != z.Len() || got.Serial() != z.Serial() {
				t.Fatalf("stored %v records at serial %v (%v), want %d at %d", got.Len(), got.Serial(), err, z.Len(), z.Serial())
			}
			if m, _ := st.Meta("example."); m.Source != "192.0.2.2:53" || m.Kind != zonestore.KindSecondary {
				t.Errorf("meta %+v", m)
			}
			_, _, err = st.Changes("example.", tt.from)
			if tt.chainLeft && err != nil {
				t.Errorf("Changes from %d: %v", tt.from, err)
			}
			if !tt.chainLeft && !errors.Is(err, zonestore.ErrNoJournal) {
				t.Errorf("Changes from %d: %v, want ErrNoJournal", tt.from, err)
			}
		})
	}
	st := openJournaled(t, zonestore.Options{})
	if _, err := st.Import(buildText(t, baseZone), false); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReplaceTransfer(buildText(t, baseZone), "x"); !errors.Is(err, zonestore.ErrNotSecondary) {
		t.Errorf("replace of a primary zone: %v, want ErrNotSecondary", err)
	}
}
