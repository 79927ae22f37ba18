package zonestore_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/dnssectest"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

func smallZone(t testing.TB, origin string, serial int) *zone.Zone {
	t.Helper()
	text := fmt.Sprintf("@ 3600 IN SOA ns1 hostmaster %d 7200 900 1209600 300\n@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.1\nwww 300 IN A 192.0.2.2\n", serial)
	p, err := zonestore.Parse(strings.NewReader(text), origin, origin+"zone", nil)
	if err != nil {
		t.Fatal(err)
	}
	z, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// TestImportMany imports thousands of zones in batches and checks that
// each zone is refused or committed alone, that a signed zone is signed,
// and that a fresh process reads them all back.
func TestImportMany(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), "zones.db")
	st := openAt(t, path, zonestore.Options{Now: clk.Now})
	mustImport(t, st, baseZone)
	if _, err := st.EnableDNSSEC("example.", dnssec.DefaultPolicy()); err != nil {
		t.Fatal(err)
	}
	var zs []*zone.Zone
	for i := range 2500 { // more than one batch
		zs = append(zs, smallZone(t, fmt.Sprintf("z%d.test.", i), 1))
	}
	zs = append(zs, smallZone(t, "z7.test.", 2)) // given twice
	zs = append(zs, buildText(t, baseZone))      // exists: refused without replace
	var progress []int
	res := st.ImportMany(zs, false, func(n int) { progress = append(progress, n) })
	if !slices.Equal(progress, []int{2000, len(zs)}) {
		t.Errorf("progress %v, want two batches", progress)
	}
	for i, r := range res[:2500] {
		if r.Err != nil || !r.Result.Created || r.Result.Serial != 1 {
			t.Fatalf("zone %d: %+v", i, r)
		}
	}
	if err := res[2500].Err; !errors.Is(err, zonestore.ErrDuplicateZone) {
		t.Errorf("a zone given twice: %v", err)
	}
	if err := res[2501].Err; !errors.Is(err, zonestore.ErrZoneExists) {
		t.Errorf("an existing zone without replace: %v", err)
	}

	// With replace: the signed zone is signed, a changed zone written.
	changed := smallZone(t, "z3.test.", 5)
	res = st.ImportMany([]*zone.Zone{changed, buildText(t, strings.Replace(baseZone, " 5 7200", " 50 7200", 1))}, true, nil)
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Origin, r.Err)
		}
	}
	signed := load(t, st, "example.")
	if signed.Serial() != 50 || !signed.Signed() {
		t.Errorf("the signed zone after a replacing import: serial %d, signed %v", signed.Serial(), signed.Signed())
	}
	dnssectest.Verify(t, "example.", signed.Records(), clk.Now())

	st.Close()
	st2 := openAt(t, path, zonestore.Options{Now: clk.Now})
	names, err := st2.List()
	if err != nil || len(names) != 2501 {
		t.Fatalf("%d zones read back, %v", len(names), err)
	}
	if z := load(t, st2, "z3.test."); z.Serial() != 5 {
		t.Errorf("z3.test. read back with serial %d", z.Serial())
	}
	h, err := st2.History("z2499.test.", 5)
	if err != nil || len(h) != 1 || h[0].Op != zonestore.OpCreate {
		t.Errorf("journal of an imported zone: %+v, %v", h, err)
	}
}
