package zonestore

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestEachInfoBatchAsInfos checks that EachInfoBatch describes the zones
// as Infos does, in canonical order, from the index and from the zones'
// own buckets, that an error from its function stops the walk, and that a
// zone indexed without a summary (as an older database has it) is
// described in full.
func TestEachInfoBatchAsInfos(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, origin := range []string{"example.", "b.example.", "a.example.", "example.net."} {
		if _, err := s.Import(indexTestZone(t, origin, i+1), false); err != nil {
			t.Fatal(err)
		}
	}
	each := func(s *Store) []ZoneInfo {
		t.Helper()
		var got []ZoneInfo
		if err := s.EachInfoBatch(nil, 2, func(b []ZoneInfo) error { got = append(got, b...); return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	want, err := s.Infos()
	if err != nil {
		t.Fatal(err)
	}
	if got := each(s); len(want) != 4 || !reflect.DeepEqual(got, want) {
		t.Fatalf("EachInfoBatch\n%+v\nInfos\n%+v", got, want)
	}

	// A write that does not keep the index (as by an earlier version)
	// leaves it behind: the zones' own buckets are read instead.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte("scratch"), []byte{1}) }); err != nil {
		t.Fatal(err)
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		if indexCurrent(tx) {
			return errors.New("the index is still current")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := each(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("EachInfoBatch from the zones' buckets\n%+v\nInfos\n%+v", got, want)
	}

	stop := errors.New("enough")
	calls := 0
	if err := s.EachInfoBatch(nil, 2, func([]ZoneInfo) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("an error from fn: %v after %d calls, want it after 1", err, calls)
	}

	// a.example. stored and indexed without its summary, and not in memory.
	err = s.db.Update(func(tx *bolt.Tx) error {
		zb, err := zoneBucket(tx, "a.example.")
		if err != nil {
			return err
		}
		if err := zb.Bucket(bucketInfo).Delete(keySummary); err != nil {
			return err
		}
		c := tx.Bucket(bucketIndex).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if info, _, err := decodeIndex(v); err == nil && info.Origin == "a.example." {
				v = append([]byte(nil), v...)
				v[0] &^= indexSummarised
				return tx.Bucket(bucketIndex).Put(append([]byte(nil), k...), v)
			}
		}
		return errors.New("a.example. not indexed")
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := each(s); !reflect.DeepEqual(got, want) {
		t.Errorf("with a.example. unsummarised EachInfoBatch\n%+v\nwant\n%+v", got, want)
	}
}

// TestEachInfoBatch checks that the zones come in batches that together
// are Infos, that a zone added between two batches is listed at most
// once and no other zone is lost, and that an error from fn ends it.
func TestEachInfoBatch(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "zones.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, origin := range []string{"example.", "b.example.", "a.example.", "example.net.", "c.example.org."} {
		if _, err := s.Import(indexTestZone(t, origin, i+1), false); err != nil {
			t.Fatal(err)
		}
	}
	want, err := s.Infos()
	if err != nil {
		t.Fatal(err)
	}
	var got []ZoneInfo
	var sizes []int
	added := false
	err = s.EachInfoBatch(nil, 2, func(batch []ZoneInfo) error {
		sizes = append(sizes, len(batch))
		got = append(got, batch...)
		if !added { // fn runs outside the read: the store may be written
			added = true
			_, err := s.Import(indexTestZone(t, "z.example.", 9), false) // sorts after example.'s children
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.Infos()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, info := range got {
		seen[info.Origin]++
	}
	for _, info := range want {
		if seen[info.Origin] != 1 {
			t.Errorf("%s listed %d times", info.Origin, seen[info.Origin])
		}
	}
	if seen["z.example."] > 1 || len(got) > len(after) || !reflect.DeepEqual(sizes[:2], []int{2, 2}) {
		t.Errorf("batches %v of %d zones: %+v", sizes, len(got), got)
	}
	// Without the addition, the batches are Infos.
	got = got[:0]
	if err := s.EachInfoBatch(nil, 2, func(b []ZoneInfo) error { got = append(got, b...); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, after) {
		t.Errorf("EachInfoBatch\n%+v\nInfos\n%+v", got, after)
	}
	// Matching: only the zones under example.
	got = got[:0]
	under := func(o string) bool { return len(o) > len(".example.") && o[len(o)-len(".example."):] == ".example." }
	if err := s.EachInfoBatch(under, 1, func(b []ZoneInfo) error { got = append(got, b...); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Origin != "a.example." || got[2].Origin != "z.example." {
		t.Errorf("matching: %+v", got)
	}
	stop := errors.New("enough")
	calls := 0
	if err := s.EachInfoBatch(nil, 2, func([]ZoneInfo) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("an error from fn: %v after %d calls", err, calls)
	}
}
