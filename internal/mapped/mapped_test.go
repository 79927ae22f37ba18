package mapped

import (
	"encoding/binary"
	"path/filepath"
	"runtime"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// residentKiB is Resident of path, in KiB.
func residentKiB(t *testing.T, path string) int {
	t.Helper()
	n, err := Resident(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(n >> 10)
}

// TestReleaseUnmapsReadPages: after every page of a file of 8 MiB was
// read, its mapping holds most of them resident; Release gives them back,
// and what it gave back is read again unchanged.
func TestReleaseUnmapsReadPages(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("madvise is used on Linux only")
	}
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n, size = 2048, 4096
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := range n {
			k := binary.BigEndian.AppendUint32(nil, uint32(i))
			val := make([]byte, size) // bbolt keeps it until the commit
			copy(val, k)
			if err := b.Put(k, val); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	readAll := func() {
		t.Helper()
		if err := db.View(func(tx *bolt.Tx) error {
			i := 0
			return tx.Bucket([]byte("b")).ForEach(func(k, v []byte) error {
				if len(v) != size || binary.BigEndian.Uint32(v) != uint32(i) {
					t.Fatalf("value %d read back wrong", i)
				}
				i++
				return nil
			})
		}); err != nil {
			t.Fatal(err)
		}
	}
	readAll()
	before := residentKiB(t, path)
	if before < n*size/1024/2 {
		t.Fatalf("after reading every page, %d KiB of the file are resident: the check sees nothing", before)
	}
	if err := Release(db); err != nil {
		t.Fatal(err)
	}
	if after := residentKiB(t, path); after > before/8 {
		t.Errorf("after Release, %d KiB of the file are resident (%d before)", after, before)
	}
	readAll()
}
