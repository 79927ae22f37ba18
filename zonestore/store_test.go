package zonestore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// openStore opens a store in a fresh directory and closes it at cleanup.
func openStore(t testing.TB, opts zonestore.Options) *zonestore.Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "data", "zones.db"), opts)
}

func openAt(t testing.TB, path string, opts zonestore.Options) *zonestore.Store {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 200 * time.Millisecond
	}
	s, err := zonestore.Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// importText parses, builds and imports zone text, as the CLI does.
func importText(s *zonestore.Store, text string, replace bool) (zonestore.PutResult, error) {
	p, err := zonestore.Parse(strings.NewReader(text), "example.", "test.zone", nil)
	if err != nil {
		return zonestore.PutResult{}, err
	}
	z, err := p.Build()
	if err != nil {
		return zonestore.PutResult{}, err
	}
	return s.Import(z, replace)
}

func mustImport(t testing.TB, s *zonestore.Store, text string) zonestore.PutResult {
	t.Helper()
	res, err := importText(s, text, false)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return res
}

func load(t testing.TB, s *zonestore.Store, origin string) *zone.Zone {
	t.Helper()
	z, err := s.Load(origin)
	if err != nil {
		t.Fatalf("Load(%s): %v", origin, err)
	}
	return z
}

func TestImportExportRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		file string // under testdata, or "" for text
		text string
	}{
		{name: "base zone", text: baseZone},
		{name: "parser example", file: "parse/example.zone"},
		{name: "escapes and odd types", text: apexText + `
$TTL 300
a\.b        IN TXT   "dot \"quoted\" \\ backslash" "tab\tx" "\200\255"
\000.nul    IN A     192.0.2.1
UPPER       IN TXT   "MiXeD CaSe"
_sip._udp   IN SRV   10 60 5060 sip.example.
sip         IN AAAA  2001:db8::5
caa         IN CAA   0 issue "ca.example.net"
sshfp       IN SSHFP 1 1 123456789ABCDEF67890123456789ABCDEF67890
d           IN DNAME example.net.
loc         IN TYPE65280 \# 0
signed      IN A     192.0.2.7
signed      IN RRSIG A 8 2 300 20300101000000 20200101000000 12345 example. dGVzdHNpZ25hdHVyZQ==
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var z *zone.Zone
			if tc.file != "" {
				p, err := zonestore.ParseFile(filepath.Join("testdata", tc.file), "")
				if err != nil {
					t.Fatal(err)
				}
				if z, err = p.Build(); err != nil {
					t.Fatal(err)
				}
			} else {
				z = buildText(t, tc.text)
			}
			s := openStore(t, zonestore.Options{})
			if _, err := s.Import(z, false); err != nil {
				t.Fatal(err)
			}
			out1 := export(t, load(t, s, z.Origin))

			// Re-parse the export: the same records, TTLs included.
			p, err := zonestore.Parse(strings.NewReader(out1), "", "export.zone", nil)
			if err != nil {
				t.Fatalf("re-parse export: %v\n%s", err, out1)
			}
			z2, err := p.Build()
			if err != nil {
				t.Fatalf("rebuild export: %v", err)
			}
			a, b := recordTexts(z), recordTexts(z2)
			if !slices.Equal(a, b) {
				t.Errorf("records differ after export and re-parse:\n%s\nvs\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
			}

			// Import the re-parsed zone into a second store: byte-identical export.
			s2 := openStore(t, zonestore.Options{})
			if _, err := s2.Import(z2, false); err != nil {
				t.Fatal(err)
			}
			if out2 := export(t, load(t, s2, z.Origin)); out2 != out1 {
				t.Errorf("export of the re-import differs:\n%s\nvs\n%s", out1, out2)
			}
			// And from disk, not the cache.
			path := s2.Path()
			s2.Close()
			s3 := openAt(t, path, zonestore.Options{})
			if out3 := export(t, load(t, s3, z.Origin)); out3 != out1 {
				t.Errorf("export after reopening differs:\n%s\nvs\n%s", out1, out3)
			}
		})
	}
}

// recordTexts renders a zone's records, TTL included, in zone order.
func recordTexts(z *zone.Zone) []string {
	var out []string
	for _, rr := range z.Records() {
		out = append(out, rr.String())
	}
	return out
}

func TestExportFormat(t *testing.T) {
	z := buildText(t, apexText+"www 300 IN A 192.0.2.1\n")
	want := "; zone example. serial 1, 3 records\n$ORIGIN example.\n" +
		"example.\t3600\tIN\tSOA\tns1.example. hostmaster.example. 1 7200 900 1209600 300\n" +
		"example.\t3600\tIN\tNS\tns.example.net.\n" +
		"www.example.\t300\tIN\tA\t192.0.2.1\n"
	if got := export(t, z); got != want {
		t.Errorf("Export:\n%q\nwant\n%q", got, want)
	}
	if err := zonestore.Export(failWriter{}, z); err == nil {
		t.Error("Export to a failing writer succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestImportInvalidLeavesStoreAlone(t *testing.T) {
	bad := []struct {
		name string
		text string
	}{
		{name: "validation error", text: strings.Replace(baseZone, "alias   IN CNAME www", "alias IN CNAME www\nalias IN A 192.0.2.1", 1)},
		{name: "syntax error", text: baseZone + "broken IN A 192.0.2.999\n"},
		{name: "no SOA", text: "$ORIGIN example.\n@ 3600 IN NS ns1.example.net.\n"},
	}
	for _, tc := range bad {
		t.Run(tc.name+" over an existing zone", func(t *testing.T) {
			s := openStore(t, zonestore.Options{})
			mustImport(t, s, baseZone)
			before := export(t, load(t, s, "example."))
			infoBefore, err := s.Info("example.")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := importText(s, tc.text, true); err == nil {
				t.Fatal("import of an invalid zone succeeded")
			}
			if after := export(t, load(t, s, "example.")); after != before {
				t.Errorf("zone changed:\n%s\nvs\n%s", before, after)
			}
			// Not only the cache: the file too.
			path := s.Path()
			s.Close()
			s2 := openAt(t, path, zonestore.Options{})
			if after := export(t, load(t, s2, "example.")); after != before {
				t.Errorf("stored zone changed:\n%s\nvs\n%s", before, after)
			}
			infoAfter, err := s2.Info("example.")
			if err != nil {
				t.Fatal(err)
			}
			if infoAfter != infoBefore {
				t.Errorf("info changed from %+v to %+v", infoBefore, infoAfter)
			}
		})
		t.Run(tc.name+" as a new zone", func(t *testing.T) {
			s := openStore(t, zonestore.Options{})
			if _, err := importText(s, tc.text, false); err == nil {
				t.Fatal("import of an invalid zone succeeded")
			}
			if names, err := s.List(); err != nil || len(names) != 0 {
				t.Errorf("List = %v, %v; want nothing", names, err)
			}
			if _, err := s.Load("example."); !errors.Is(err, zonestore.ErrNoZone) {
				t.Errorf("Load: %v, want ErrNoZone", err)
			}
		})
	}
}

func TestImportExisting(t *testing.T) {
	s := openStore(t, zonestore.Options{})
	mustImport(t, s, baseZone)
	_, err := importText(s, strings.Replace(baseZone, " 5 7200", " 6 7200", 1), false)
	if !errors.Is(err, zonestore.ErrZoneExists) {
		t.Fatalf("error %v, want ErrZoneExists", err)
	}
	if z := load(t, s, "example."); z.Serial() != 5 {
		t.Errorf("serial %d after a refused import, want 5", z.Serial())
	}
}

func TestImportReplaceSerial(t *testing.T) {
	tests := []struct {
		name       string
		policy     zonestore.SerialPolicy
		oldSerial  uint32
		newSerial  uint32
		wantSerial uint32
		wantBumped bool
	}{
		{name: "increasing kept", policy: zonestore.SerialIncrement, oldSerial: 5, newSerial: 9, wantSerial: 9},
		{name: "equal bumped", policy: zonestore.SerialIncrement, oldSerial: 5, newSerial: 5, wantSerial: 6, wantBumped: true},
		{name: "lower bumped", policy: zonestore.SerialIncrement, oldSerial: 5, newSerial: 3, wantSerial: 6, wantBumped: true},
		{name: "wrapped forward kept", policy: zonestore.SerialIncrement, oldSerial: 4294967290, newSerial: 3, wantSerial: 3},
		{name: "more than 2^31 ahead bumped", policy: zonestore.SerialIncrement, oldSerial: 1, newSerial: 1<<31 + 2, wantSerial: 2, wantBumped: true},
		{name: "increment wraps past zero", policy: zonestore.SerialIncrement, oldSerial: 4294967295, newSerial: 4294967295, wantSerial: 0, wantBumped: true},
		{name: "date policy", policy: zonestore.SerialDate, oldSerial: 5, newSerial: 5, wantSerial: 2024030100, wantBumped: true},
		{name: "date policy same day", policy: zonestore.SerialDate, oldSerial: 2024030107, newSerial: 2024030107, wantSerial: 2024030108, wantBumped: true},
		{name: "date policy newer serial kept", policy: zonestore.SerialDate, oldSerial: 5, newSerial: 7, wantSerial: 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, zonestore.Options{SerialPolicy: tc.policy, Now: fixedClock(t, "2024-03-01T12:00:00Z")})
			withSerial := func(n uint32) string {
				return strings.Replace(baseZone, " 5 7200", fmt.Sprintf(" %d 7200", n), 1)
			}
			mustImport(t, s, withSerial(tc.oldSerial))
			res, err := importText(s, withSerial(tc.newSerial), true)
			if err != nil {
				t.Fatal(err)
			}
			if res.Serial != tc.wantSerial || res.Bumped != tc.wantBumped || res.OldSerial != tc.oldSerial {
				t.Errorf("result serial %d bumped %v old %d; want %d, %v, %d",
					res.Serial, res.Bumped, res.OldSerial, tc.wantSerial, tc.wantBumped, tc.oldSerial)
			}
			if res.Created {
				t.Error("Created set for a replacement")
			}
			if got := load(t, s, "example.").Serial(); got != tc.wantSerial {
				t.Errorf("stored serial %d, want %d", got, tc.wantSerial)
			}
			if res.Zone == nil || res.Zone.Serial() != tc.wantSerial {
				t.Errorf("result zone %v", res.Zone)
			}
		})
	}
}

func TestImportResult(t *testing.T) {
	s := openStore(t, zonestore.Options{})
	res := mustImport(t, s, baseZone)
	z := load(t, s, "example.")
	if !res.Created || res.Records != z.Len() || res.Serial != 5 || res.OldSerial != 0 || res.Bumped || res.Zone != z {
		t.Errorf("first import result %+v", res)
	}
	res, err := importText(s, apexText, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || res.OldRecords != z.Len() || res.Records != 2 {
		t.Errorf("replacing import result %+v", res)
	}
	// The replacement removes names the new zone does not have.
	z2 := load(t, s, "example.")
	if z2.Lookup(wireKey(t, "www.example.")) != nil || z2.Names() != 1 {
		t.Errorf("old names survive a replacement: %d names", z2.Names())
	}
}

func TestDataPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	s := openAt(t, path, zonestore.Options{})
	mustImport(t, s, baseZone)
	other := strings.ReplaceAll(apexText, "example.", "example.net.")
	p, err := zonestore.Parse(strings.NewReader(other), "", "net.zone", nil)
	if err != nil {
		t.Fatal(err)
	}
	zn, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(zn, false); err != nil {
		t.Fatal(err)
	}
	want := export(t, load(t, s, "example."))
	wantNames := load(t, s, "example.").Names()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openAt(t, path, zonestore.Options{})
	if got := export(t, load(t, s2, "example.")); got != want {
		t.Errorf("after reopening:\n%s\nwant\n%s", got, want)
	}
	if got := load(t, s2, "Example").Names(); got != wantNames {
		t.Errorf("%d names after reopening, want %d (empty non-terminals derived)", got, wantNames)
	}
	names, err := s2.List()
	if err != nil || !slices.Equal(names, []string{"example.", "example.net."}) {
		t.Errorf("List = %v, %v", names, err)
	}
	all, err := s2.LoadAll()
	if err != nil || len(all) != 2 || all[0].Origin != "example." || all[1].Origin != "example.net." {
		t.Errorf("LoadAll = %v, %v", all, err)
	}
}

func TestInfo(t *testing.T) {
	now := "2024-03-01T12:00:00Z"
	clock := func() time.Time { ts, _ := time.Parse(time.RFC3339, now); return ts }
	s := openStore(t, zonestore.Options{Now: clock})
	mustImport(t, s, baseZone)
	info, err := s.Info("EXAMPLE")
	if err != nil {
		t.Fatal(err)
	}
	z := load(t, s, "example.")
	created := clock()
	want := zonestore.ZoneInfo{Origin: "example.", Serial: 5, Records: z.Len(), Names: z.Names(), Created: created, Updated: created}
	if !info.Created.Equal(want.Created) || !info.Updated.Equal(want.Updated) ||
		info.Origin != want.Origin || info.Serial != want.Serial || info.Records != want.Records || info.Names != want.Names {
		t.Errorf("Info = %+v, want %+v", info, want)
	}

	now = "2024-03-02T08:30:00Z"
	if _, err := s.Update("example.", zonestore.Change{Add: []dns.RR{mustRR(t, "new.example. 300 IN A 192.0.2.9")}}); err != nil {
		t.Fatal(err)
	}
	info, err = s.Info("example.")
	if err != nil {
		t.Fatal(err)
	}
	if !info.Created.Equal(created) || !info.Updated.Equal(clock()) || info.Serial != 6 {
		t.Errorf("after an update Info = %+v", info)
	}

	now = "2024-03-03T00:00:00Z"
	if _, err := importText(s, baseZone, true); err != nil {
		t.Fatal(err)
	}
	info, _ = s.Info("example.")
	if !info.Created.Equal(created) || !info.Updated.Equal(clock()) {
		t.Errorf("a replacing import must keep Created: %+v", info)
	}
	if _, err := s.Info("example.org."); !errors.Is(err, zonestore.ErrNoZone) {
		t.Errorf("Info of a missing zone: %v", err)
	}
}

func TestDelete(t *testing.T) {
	s := openStore(t, zonestore.Options{})
	mustImport(t, s, baseZone)
	if err := s.Delete("Example"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("example."); !errors.Is(err, zonestore.ErrNoZone) {
		t.Errorf("Load after Delete: %v", err)
	}
	if err := s.Delete("example."); !errors.Is(err, zonestore.ErrNoZone) {
		t.Errorf("second Delete: %v, want ErrNoZone", err)
	}
	if names, _ := s.List(); len(names) != 0 {
		t.Errorf("List after Delete: %v", names)
	}
	// The origin can be imported afresh.
	if res := mustImport(t, s, baseZone); !res.Created {
		t.Error("import after Delete did not create the zone")
	}
}

func TestSubscribe(t *testing.T) {
	s := openStore(t, zonestore.Options{})
	type event struct {
		origin string
		serial uint32 // 0 for a deletion
	}
	var got []event
	s.Subscribe(func(origin string, z *zone.Zone) {
		e := event{origin: origin}
		if z != nil {
			e.serial = z.Serial()
		}
		got = append(got, e)
	})
	mustImport(t, s, baseZone)
	if _, err := s.Update("example.", zonestore.Change{Add: []dns.RR{mustRR(t, "x.example. 60 IN A 192.0.2.1")}}); err != nil {
		t.Fatal(err)
	}
	// Refused changes and imports publish nothing.
	if _, err := s.Update("example.", zonestore.Change{Delete: []zonestore.Deletion{{Name: "nope.example.", Type: dns.TypeA}}}); err == nil {
		t.Fatal("update deleting a missing name succeeded")
	}
	if _, err := importText(s, baseZone, false); err == nil {
		t.Fatal("import over an existing zone succeeded")
	}
	if _, err := importText(s, baseZone, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("example."); err != nil {
		t.Fatal(err)
	}
	want := []event{{"example.", 5}, {"example.", 6}, {"example.", 7}, {"example.", 0}}
	if !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	s := openAt(t, path, zonestore.Options{})
	start := time.Now()
	s2, err := zonestore.Open(path, zonestore.Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatal("second Open succeeded")
	}
	if !errors.Is(err, zonestore.ErrLocked) {
		t.Errorf("error %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3 := openAt(t, path, zonestore.Options{})
	if s3.Path() != path {
		t.Errorf("Path() = %q", s3.Path())
	}
}

func TestOpenBadVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	s := openAt(t, path, zonestore.Options{})
	mustImport(t, s, baseZone)
	s.Close()

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("version"), []byte("2"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	for _, ro := range []bool{false, true} {
		t.Run(fmt.Sprintf("read-only=%v", ro), func(t *testing.T) {
			s, err := zonestore.Open(path, zonestore.Options{Timeout: time.Second, ReadOnly: ro})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, zonestore.ErrBadVersion) {
				t.Errorf("error %v, want ErrBadVersion", err)
			}
		})
	}
	// The refusal must release the file.
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("file still locked after a refused Open: %v", err)
	}
	db.Close()
}

func TestOpenVersionWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	openAt(t, path, zonestore.Options{}).Close()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket([]byte("meta"))
		if m == nil {
			return errors.New("no meta bucket")
		}
		if v := string(m.Get([]byte("version"))); v != zonestore.FormatVersion {
			return fmt.Errorf("version %q, want %q", v, zonestore.FormatVersion)
		}
		if tx.Bucket([]byte("zones")) == nil {
			return errors.New("no zones bucket")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	s := openAt(t, path, zonestore.Options{})
	mustImport(t, s, baseZone)
	want := export(t, load(t, s, "example."))
	s.Close()

	ro := openAt(t, path, zonestore.Options{ReadOnly: true})
	if got := export(t, load(t, ro, "example.")); got != want {
		t.Errorf("read-only Load:\n%s", got)
	}
	if _, err := importText(ro, baseZone, true); !errors.Is(err, zonestore.ErrReadOnly) {
		t.Errorf("Import: %v, want ErrReadOnly", err)
	}
	if _, err := ro.Update("example.", zonestore.Change{Add: []dns.RR{mustRR(t, "x.example. 60 IN A 192.0.2.1")}}); !errors.Is(err, zonestore.ErrReadOnly) {
		t.Errorf("Update: %v, want ErrReadOnly", err)
	}
	if err := ro.Delete("example."); !errors.Is(err, zonestore.ErrReadOnly) {
		t.Errorf("Delete: %v, want ErrReadOnly", err)
	}
	if got := export(t, load(t, ro, "example.")); got != want {
		t.Error("read-only store changed")
	}
}

func TestOpenReadOnlyMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none", "zones.db")
	if s, err := zonestore.Open(path, zonestore.Options{ReadOnly: true, Timeout: 100 * time.Millisecond}); err == nil {
		s.Close()
		t.Fatal("read-only Open of a missing file succeeded")
	}
	if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
		t.Errorf("read-only Open created the directory: %v", err)
	}
}

func TestCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	s := openAt(t, path, zonestore.Options{})
	mustImport(t, s, baseZone)
	s.Close()

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		nb := tx.Bucket([]byte("zones")).Bucket([]byte("example.")).Bucket([]byte("names"))
		return nb.Put(zone.CanonicalKey(wireKey(t, "www.example.")), []byte{0xde, 0xad, 0xbe, 0xef})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s2 := openAt(t, path, zonestore.Options{})
	if _, err := s2.Load("example."); !errors.Is(err, zonestore.ErrCorrupt) {
		t.Fatalf("Load: %v, want ErrCorrupt", err)
	}
	if _, err := importText(s2, baseZone, false); !errors.Is(err, zonestore.ErrZoneExists) {
		t.Errorf("import without replace over a damaged zone: %v, want ErrZoneExists", err)
	}
	res, err := importText(s2, baseZone, true)
	if err != nil {
		t.Fatalf("replacing a damaged zone: %v", err)
	}
	if res.Created || res.Serial != 5 {
		t.Errorf("result %+v", res)
	}
	if z := load(t, s2, "example."); z.Lookup(wireKey(t, "www.example.")) == nil {
		t.Error("replacement did not restore www")
	}
}

// TestConcurrentUse runs readers against a writer, for the race detector.
func TestConcurrentUse(t *testing.T) {
	s := openStore(t, zonestore.Options{})
	mustImport(t, s, baseZone)
	var mu sync.Mutex
	var published int
	s.Subscribe(func(string, *zone.Zone) { mu.Lock(); published++; mu.Unlock() })
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				z, err := s.Load("example.")
				if err != nil {
					t.Error(err)
					return
				}
				_ = z.Records()
				if _, err := s.Info("example."); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.List(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	adds := make([]dns.RR, 20)
	for i := range adds {
		adds[i] = mustRR(t, fmt.Sprintf("h%d.example. 60 IN A 192.0.2.%d", i, i+1))
	}
	wg.Go(func() {
		for _, rr := range adds {
			if _, err := s.Update("example.", zonestore.Change{Add: []dns.RR{rr}}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	if published != 20 {
		t.Errorf("%d commits published, want 20", published)
	}
	if got := load(t, s, "example.").Serial(); got != 25 {
		t.Errorf("serial %d after 20 updates from 5, want 25", got)
	}
}

func TestRootZone(t *testing.T) {
	s, err := zonestore.Open(filepath.Join(t.TempDir(), "root.db"), zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := zonestore.Parse(strings.NewReader("$TTL 86400\n. SOA a.root.test. h.root.test. 1 2 3 4 86400\n. NS a.root.test.\na.root.test. A 192.0.2.1\naz. NS ns.nic.az.\nns.nic.az. A 192.0.2.2\n"), ".", "root.zone", nil)
	if err != nil {
		t.Fatal(err)
	}
	z, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(z, false); err != nil {
		t.Fatalf("import the root zone: %v", err)
	}
	rr, _ := dns.NewRR(". 86400 IN NS b.root.test.")
	if _, err := s.Update(".", zonestore.Change{Add: []dns.RR{rr}}); err != nil {
		t.Fatalf("edit the root zone: %v", err)
	}
	s.Close()
	s2, err := zonestore.Open(s.Path(), zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	back, err := s2.Load(".")
	if err != nil {
		t.Fatal(err)
	}
	if back.Len() != 6 || len(back.Apex.Get(dns.TypeNS).RRs()) != 2 {
		t.Fatalf("root zone read back with %d records", back.Len())
	}
}

// TestImportReplaceReadsBack replaces a zone by one that differs in a few
// names (written as a difference) and checks that a fresh process reads
// the replacement, exactly.
func TestImportReplaceReadsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	s := openAt(t, path, zonestore.Options{})
	mustImport(t, s, baseZone)
	next := strings.Replace(baseZone, " 5 7200", " 9 7200", 1)
	next = strings.Replace(next, "mail    IN A    192.0.2.25\n", "", 1)
	next = strings.Replace(next, "www     IN A    192.0.2.81", "www     IN A    192.0.2.82", 1)
	next += "added   IN TXT  \"new\"\n"
	if _, err := importText(s, next, true); err != nil {
		t.Fatal(err)
	}
	want := export(t, buildText(t, next))
	if got := export(t, load(t, s, "example.")); got != want {
		t.Fatalf("served after the replacement:\n%s\nwant\n%s", got, want)
	}
	s.Close()
	s2 := openAt(t, path, zonestore.Options{})
	if got := export(t, load(t, s2, "example.")); got != want {
		t.Errorf("read back after the replacement:\n%s\nwant\n%s", got, want)
	}
}
