package zonestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/zone"
)

// indexTestZone is a small zone at origin with the given serial.
func indexTestZone(t *testing.T, origin string, serial int) *zone.Zone {
	t.Helper()
	www := "www." + origin
	if origin == "." {
		www = "www."
	}
	z, err := zone.Build(origin, []dns.RR{
		mustNewRR(t, fmt.Sprintf("%s 3600 IN SOA ns1.example.net. hostmaster.example.net. %d 7200 900 1209600 300", origin, serial)),
		mustNewRR(t, origin+" 3600 IN NS ns1.example.net."),
		mustNewRR(t, www+" 300 IN A 192.0.2.1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// indexAgrees checks that the zone index is current and describes every
// zone as reading each zone's own bucket does.
func indexAgrees(t *testing.T, s *Store, step string) {
	t.Helper()
	metas := map[string]ZoneMeta{} // from the zones' buckets
	err := s.db.View(func(tx *bolt.Tx) error {
		got, gotUn, ok, err := s.indexedInfos(tx, nil)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("index not current")
		}
		want, wantUn, err := s.scannedInfos(tx, nil)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotUn, wantUn) {
			return fmt.Errorf("index lists\n%+v (unsummarised %v)\nzones are\n%+v (unsummarised %v)", got, gotUn, want, wantUn)
		}
		var signedIx, signed []string
		if _, err := eachIndexed(tx, func(info ZoneInfo, flags byte) error {
			if flags&indexSigned != 0 {
				signedIx = append(signedIx, info.Origin)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, info := range want {
			zb, err := zoneBucket(tx, info.Origin)
			if err != nil {
				return err
			}
			metas[info.Origin] = readMeta(zb)
			if db := zb.Bucket(bucketDNSSEC); db != nil && db.Get(keyPolicy) != nil {
				signed = append(signed, info.Origin)
			}
		}
		if !reflect.DeepEqual(signedIx, signed) {
			return fmt.Errorf("index has %v signed, zones say %v", signedIx, signed)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	for origin, want := range metas {
		if got, err := s.Meta(origin); err != nil || got != want {
			t.Fatalf("%s: Meta(%s) from the index = %+v, %v; the zone's bucket says %+v", step, origin, got, err, want)
		}
	}
	if _, err := s.Meta("nowhere.example."); !errors.Is(err, ErrNoZone) {
		t.Fatalf("%s: Meta of no zone: %v, want ErrNoZone", step, err)
	}
}

// Every kind of change keeps the index equal to what the zones' own
// buckets say, in the same canonical order.
func TestIndexFollowsEveryChange(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := Open(filepath.Join(t.TempDir(), "zones.db"), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tick := func() { now = now.Add(time.Minute) }
	indexAgrees(t, s, "empty")
	steps := []struct {
		name string
		do   func() error
	}{
		{"import", func() error {
			for _, o := range []string{"b.example.", "a.example.", "example.", "z.a.example.", "."} {
				if _, err := s.Import(indexTestZone(t, o, 1), false); err != nil {
					return err
				}
			}
			return nil
		}},
		{"update", func() error {
			_, err := s.Update("a.example.", Change{Add: []dns.RR{mustNewRR(t, "new.a.example. 300 IN A 192.0.2.2")}})
			return err
		}},
		{"replace", func() error { _, err := s.Import(indexTestZone(t, "b.example.", 7), true); return err }},
		{"begin", func() error { _, err := s.Begin("example."); return err }},
		{"stage", func() error {
			_, err := s.Stage("example.", func(*zone.Zone) (Change, error) {
				return Change{Add: []dns.RR{mustNewRR(t, "t.example. 300 IN A 192.0.2.3")}}, nil
			})
			return err
		}},
		{"commit", func() error { _, err := s.Commit("example."); return err }},
		{"begin again", func() error { _, err := s.Begin("."); return err }},
		{"abort", func() error { _, err := s.Abort(".", false); return err }},
		{"transfer in", func() error {
			_, err := s.As("xfr:192.0.2.9").PutTransfer(indexTestZone(t, "sec.example.", 3), "192.0.2.9:53")
			return err
		}},
		{"refreshed", func() error { return s.MarkRefreshed("sec.example.", now.Add(time.Hour)) }},
		{"transfer again", func() error {
			_, err := s.As("xfr:192.0.2.9").PutTransfer(indexTestZone(t, "sec.example.", 4), "192.0.2.10:53")
			return err
		}},
		{"sign", func() error { _, err := s.EnableDNSSEC("b.example.", dnssec.DefaultPolicy()); return err }},
		{"unsign", func() error { _, _, err := s.DisableDNSSEC("b.example.", true, nil); return err }},
		{"sign again", func() error { _, err := s.EnableDNSSEC("a.example.", dnssec.DefaultPolicy()); return err }},
		{"delete", func() error { return s.Delete("z.a.example.") }},
	}
	for _, st := range steps {
		tick()
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		indexAgrees(t, s, st.name)
	}
	infos, err := s.Infos()
	if err != nil {
		t.Fatal(err)
	}
	var origins []string
	for _, in := range infos {
		origins = append(origins, in.Origin)
	}
	if want := []string{".", "example.", "a.example.", "b.example.", "sec.example."}; !reflect.DeepEqual(origins, want) {
		t.Fatalf("zones listed %v, want %v", origins, want)
	}
	if got, err := s.SigningZones(); err != nil || !reflect.DeepEqual(got, []string{"a.example."}) {
		t.Fatalf("SigningZones = %v, %v; want [a.example.]", got, err)
	}
	if got, err := s.Kinds(); err != nil || got["sec.example."] != KindSecondary || got["b.example."] != KindPrimary || len(got) != 5 {
		t.Fatalf("Kinds = %v, %v", got, err)
	}
}

func mustNewRR(t *testing.T, text string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(text)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// openAt opens the store at path, and closes it when the test ends.
func openAt(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A file written since by something that does not keep the index (an
// earlier version, which also has none) is not listed from it: readers
// read each zone, and the next writable open builds it again.
func TestIndexRebuiltAfterForeignWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"a.example.", "b.example."} {
		if _, err := s.Import(indexTestZone(t, o, 1), false); err != nil {
			t.Fatal(err)
		}
	}
	indexAgrees(t, s, "imported")
	// What an earlier version writes: the zone's stamp, no index entry.
	err = s.db.Update(func(tx *bolt.Tx) error {
		zb, err := zoneBucket(tx, "b.example.")
		if err != nil {
			return err
		}
		return zb.Bucket(bucketInfo).Put(keyUpdated, []byte("2030-01-01T00:00:00Z"))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	updated := func(s *Store) time.Time {
		t.Helper()
		infos, err := s.Infos()
		if err != nil || len(infos) != 2 {
			t.Fatalf("Infos = %+v, %v", infos, err)
		}
		return infos[1].Updated
	}
	if got := updated(s); !got.Equal(want) {
		t.Errorf("listed after a foreign write: updated %v, want %v (a stale index was read)", got, want)
	}
	s.Close()

	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := updated(ro); !got.Equal(want) {
		t.Errorf("read-only, with the index not current: updated %v, want %v", got, want)
	}
	ro.Close()

	s = openAt(t, path, Options{})
	indexAgrees(t, s, "reopened")
	if got := updated(s); !got.Equal(want) {
		t.Errorf("rebuilt index: updated %v, want %v", got, want)
	}
}

// A database written before the index existed (no index bucket, no
// marker) opens with every zone indexed.
func TestIndexBuiltForEarlierDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := s.Import(indexTestZone(t, fmt.Sprintf("z%d.example.", i), i+1), false); err != nil {
			t.Fatal(err)
		}
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketIndex); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keyIndexed)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openAt(t, path, Options{})
	indexAgrees(t, s, "reopened")
	err = s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketIndex).Stats().KeyN; n != 50 {
			return fmt.Errorf("index holds %d zones, want 50", n)
		}
		if v := tx.Bucket(bucketMeta).Get(keyIndexed); len(v) != 8 || binary.BigEndian.Uint64(v) != uint64(tx.ID()) {
			return fmt.Errorf("marker %x, transaction %d", v, tx.ID())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A damaged index entry is an error, not a crash or a wrong list.
func TestDecodeIndexRefusesShortEntries(t *testing.T) {
	for _, v := range [][]byte{nil, make([]byte, 49), make([]byte, 51), append(make([]byte, 49), 0, 5, 'a')} {
		if _, _, err := decodeIndex(v); err == nil {
			t.Errorf("decodeIndex(% x) took it", v)
		}
	}
}

// Origins, kinds and sources come back as they went in, an origin longer
// than 255 octets (escapes in presentation form) too.
func TestIndexNamesRoundTrip(t *testing.T) {
	long := strings.Repeat("\\000", 62) + ".example."
	for _, tc := range []struct{ origin, kind, source string }{
		{"example.", KindPrimary, ""},
		{".", KindSecondary, "192.0.2.1:53"},
		{long, KindSecondary, "[2001:db8::1]:53"},
	} {
		v := appendIndexNames(make([]byte, 1+24+24), tc.origin, tc.kind, tc.source)
		info, _, err := decodeIndex(v)
		if err != nil || info.Origin != tc.origin || info.Kind != tc.kind || info.Source != tc.source {
			t.Errorf("%q %q %q came back as %q %q %q, %v", tc.origin, tc.kind, tc.source, info.Origin, info.Kind, info.Source, err)
		}
	}
}
