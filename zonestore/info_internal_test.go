package zonestore

import (
	"path/filepath"
	"testing"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"
)

// TestInfoSummary checks that the summary kept with each change describes
// the zone as building it does, in a process that has not built it, and
// that a zone stored without one (an older database) is still described.
func TestInfoSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	z := groupZone(t)
	if _, err := s.Import(z, false); err != nil {
		t.Fatal(err)
	}
	rr, _ := dns.NewRR("a.b.example. 300 IN A 192.0.2.1") // b.example. appears as an empty non-terminal
	if _, err := s.Update("example.", Change{Add: []dns.RR{rr}}); err != nil {
		t.Fatal(err)
	}
	want, err := s.Info("example.") // from the zone in memory
	if err != nil {
		t.Fatal(err)
	}
	if want.Serial != 11 || want.Records != 4 || want.Names != 4 {
		t.Fatalf("Info from memory: %+v", want)
	}
	s.Close()

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Info("example.")
	if err != nil {
		t.Fatal(err)
	}
	if s.cached("example.") != nil {
		t.Error("Info built the zone although a summary was stored")
	}
	if got != want {
		t.Errorf("Info from the summary %+v, want %+v", got, want)
	}
	// As an older database has it: no summary.
	err = s.db.Update(func(tx *bolt.Tx) error {
		zb, err := zoneBucket(tx, "example.")
		if err != nil {
			return err
		}
		return zb.Bucket(bucketInfo).Delete(keySummary)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Info("example."); err != nil || got != want {
		t.Errorf("Info without a summary: %+v, %v; want %+v", got, err, want)
	}
	s.Close()
}
