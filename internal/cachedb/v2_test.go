package cachedb

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/resolver"
)

// v2File writes a file as format 2 wrote it: a snapshot of src, then a
// log of one change per value (a put of www.example.com.'s new answer and
// a delete of nx.example.com.), under version 2.
func v2File(t *testing.T, src *resolver.Cache) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	if _, err := Save(path, src, nil); err != nil {
		t.Fatal(err)
	}
	src.Put(msg(t, "www.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"www.example.com. 900 IN A 192.0.2.99"}, nil))
	src.FlushName("nx.example.com.")
	put := resolver.CacheKey{Kind: resolver.RecordMessage, Name: "www.example.com.", Qtype: dns.TypeA}
	rec, ok := src.ExportEntry(put)
	if !ok {
		t.Fatal("no entry for www.example.com.")
	}
	update(t, path, func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(keyVersion, binary.BigEndian.AppendUint32(nil, formatV2)); err != nil {
			return err
		}
		log := tx.Bucket(bucketLog)
		v, err := appendLog(nil, put, rec, false)
		if err != nil {
			return err
		}
		if err := log.Put(binary.BigEndian.AppendUint64(nil, 1), v); err != nil {
			return err
		}
		v, err = appendLog(nil, resolver.CacheKey{Kind: resolver.RecordNXDomain, Name: "nx.example.com."}, resolver.CacheRecord{}, true)
		if err != nil {
			return err
		}
		return log.Put(binary.BigEndian.AppendUint64(nil, 2), v)
	})
	return path
}

// TestFormat2 opens a file written by format 2: Load applies its log, and
// the writer replaces it by a current file without setting it aside.
func TestFormat2(t *testing.T) {
	clk := newClock()
	src := newCache(clk)
	fill(t, src)
	path := v2File(t, src)

	c := newCache(clk)
	st, err := Load(path, c, nil)
	if err != nil || st.Version != formatV2 || st.Entries != 7 || st.Bad != 0 {
		t.Fatalf("Load of format 2: %+v, %v; want 7 entries", st, err)
	}
	if got, want := dump(t, c), dump(t, src); got != want {
		t.Errorf("format 2 loads as\n%s\nwant\n%s", got, want)
	}

	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: 10 * time.Millisecond})
	stop := runWriter(t, w)
	upToDate(t, w)
	c.Put(msg(t, "new.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"new.example.com. 300 IN A 192.0.2.7"}, nil))
	upToDate(t, w)
	stop()
	if _, err := os.Stat(path + ".bad"); err == nil {
		t.Error("the format 2 file was set aside as unusable")
	}
	if n := logLen(t, path); n != 1 {
		t.Errorf("%d changes in the log after the conversion, want 1", n)
	}
	dst := newCache(clk)
	st, err = Load(path, dst, nil)
	if err != nil || st.Version != FormatVersion || st.Entries != 8 || st.Bad != 0 {
		t.Fatalf("Load after the conversion: %+v, %v; want format %d, 8 entries", st, err, FormatVersion)
	}
	if got, want := dump(t, dst), dump(t, c); got != want {
		t.Errorf("the converted file loads as\n%s\nwant\n%s", got, want)
	}
}

// chunkOf builds a chunk of the log holding changes named names (deletes).
func chunkOf(t testing.TB, names ...string) []byte {
	t.Helper()
	b := appendChunk(nil)
	for _, n := range names {
		var err error
		if b, err = appendChange(b, resolver.CacheKey{Kind: resolver.RecordNXDomain, Name: n}, resolver.CacheRecord{}, true); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func TestLogChanges(t *testing.T) {
	single, err := appendLog(nil, resolver.CacheKey{Kind: resolver.RecordNXDomain, Name: "a.example."}, resolver.CacheRecord{}, true)
	if err != nil {
		t.Fatal(err)
	}
	three := chunkOf(t, "a.example.", "b.example.", "c.example.")
	lenAt := func(b []byte, n uint32) []byte { // the first change's length set to n
		b = append([]byte(nil), b...)
		binary.BigEndian.PutUint32(b[5:], n)
		return b
	}
	flipped := append([]byte(nil), three...)
	flipped[len(flipped)-1] ^= 0xff // the last change's name
	tests := []struct {
		name       string
		v          []byte
		good, bad  int // changes that decode, and that do not
		lost       int
		firstNamed string
	}{
		{"one change (format 2)", single, 1, 0, 0, "a.example."},
		{"chunk of three", three, 3, 0, 0, "a.example."},
		{"empty chunk", appendChunk(nil), 0, 0, 0, ""},
		{"cut in a length", three[:len(three)-len(single)-2], 2, 0, 1, "a.example."},
		{"cut in a change", three[:len(three)-1], 2, 0, 1, "a.example."},
		{"length past the end", lenAt(three, 1<<30), 0, 0, 1, ""},
		{"a damaged change", flipped, 2, 1, 0, "a.example."},
		{"too short to be anything", []byte{0, 0, 0}, 0, 1, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var good, bad int
			var names []string
			lost := logChanges(tt.v, func(change []byte) {
				k, _, _, err := decodeLog(change)
				if err != nil {
					bad++
					return
				}
				good++
				names = append(names, k.Name)
			})
			if good != tt.good || bad != tt.bad || lost != tt.lost {
				t.Errorf("%d good, %d bad, %d lost; want %d, %d, %d", good, bad, lost, tt.good, tt.bad, tt.lost)
			}
			if tt.firstNamed != "" && (len(names) == 0 || names[0] != tt.firstNamed) {
				t.Errorf("changes %v, want %s first", names, tt.firstNamed)
			}
		})
	}
}

// FuzzLogChanges feeds arbitrary log values to the reader: no panic, and
// every change it hands out lies within the value.
func FuzzLogChanges(f *testing.F) {
	f.Add(chunkOf(f, "a.example.", "b.example."))
	f.Add(chunkOf(f))
	single, _ := appendLog(nil, resolver.CacheKey{Kind: resolver.RecordNXDomain, Name: "a.example."}, resolver.CacheRecord{}, true)
	f.Add(single)
	f.Fuzz(func(t *testing.T, v []byte) {
		total := 0
		logChanges(v, func(change []byte) {
			total += len(change)
			decodeLog(change) // an error or a change, never a panic
		})
		if total > len(v) {
			t.Fatalf("changes of %d bytes in a value of %d", total, len(v))
		}
	})
}
