package cachedb

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/resolver"
)

// saveV1 writes the file at path as Save did in format 1 (before
// write-behind): records under sequence numbers in the order Export gives
// them, the counts in meta, and the checksum trailer. Files of that format
// are still on disk where sovdns was upgraded; Load must read them, and
// the writer convert them.
func saveV1(t testing.TB, path string, c *resolver.Cache, r *resolver.Resolver) {
	t.Helper()
	tmp := path + ".v1-writing"
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{NoSync: true, NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var seq, servers uint64
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketCache, bucketInfra} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		b := tx.Bucket(bucketCache)
		b.FillPercent = 1
		if err := c.Export(func(rec resolver.CacheRecord) error {
			v, err := appendRecord(nil, rec)
			if err != nil {
				return nil
			}
			seq++
			return b.Put(binary.BigEndian.AppendUint64(nil, seq), v)
		}); err != nil {
			return err
		}
		if r != nil {
			for s, rtt := range r.ExportInfra() {
				k, _ := s.MarshalBinary()
				if err := tx.Bucket(bucketInfra).Put(k, binary.BigEndian.AppendUint64(nil, uint64(rtt))); err != nil {
					return err
				}
				servers++
			}
		}
		island := byte(0)
		if r != nil && r.Island() {
			island = 1
		}
		meta := tx.Bucket(bucketMeta)
		for _, kv := range [][2][]byte{
			{keyVersion, binary.BigEndian.AppendUint32(nil, formatV1)},
			{keySavedAt, binary.BigEndian.AppendUint64(nil, uint64(c.Now().UnixNano()))},
			{keyEntries, binary.BigEndian.AppendUint64(nil, seq)},
			{keyServers, binary.BigEndian.AppendUint64(nil, servers)},
			{keyIsland, {island}},
		} {
			if err := meta.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	if err := db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(tmp, size); err != nil {
		t.Fatal(err)
	}
	if err := seal(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// v1Path returns a path for a format 1 file in a new temporary directory.
func v1Path(t testing.TB) string { return filepath.Join(t.TempDir(), "resolver-cache.db") }

// seal appends the format 1 trailer to the file at path, replacing a trailer already
// there, and syncs the file.
func seal(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	size, _, err := trailer(f)
	if err != nil {
		return err
	}
	sum, err := checksum(f, size)
	if err != nil {
		return err
	}
	t := make([]byte, 0, trailerLen)
	t = append(t, trailerMagic...)
	t = binary.BigEndian.AppendUint64(t, uint64(size))
	t = binary.BigEndian.AppendUint32(t, sum)
	if err := f.Truncate(size); err != nil {
		return err
	}
	if _, err := f.WriteAt(t, size); err != nil {
		return err
	}
	return f.Sync()
}
