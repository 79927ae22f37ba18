package cachedb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/zonetest"
	"github.com/sovdns/sovdns/resolver"
)

// clock is a cache clock that moves only when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const window = 24 * time.Hour

func newCache(clk *clock) *resolver.Cache {
	return resolver.NewCache(resolver.CacheConfig{MaxBytes: 64 << 20, StaleWindow: window, Now: clk.Now})
}

func newResolver(c *resolver.Cache) *resolver.Resolver {
	return resolver.New(resolver.Config{}, nil, c, nil, nil)
}

func msg(t testing.TB, qname string, qtype uint16, rcode int, answer, ns []string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.Response = true
	m.Rcode = rcode
	m.Answer = zonetest.RRs(t, answer...)
	m.Ns = zonetest.RRs(t, ns...)
	return m
}

const soa = "example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300"

// fill stores entries of every kind: a signed answer, NODATA, NXDOMAIN, a
// bogus answer, and the infrastructure RRsets (NS, glue, DNSKEY, DS).
func fill(t testing.TB, c *resolver.Cache) {
	t.Helper()
	bogus := &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrSignatureExpired, Detail: "bad.example.com. A"}
	for _, p := range []struct {
		m   *dns.Msg
		sec dnssec.SecStatus
		why error
	}{
		{m: msg(t, "www.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"www.example.com. 300 IN A 192.0.2.1",
			"www.example.com. 300 IN RRSIG A 13 3 300 20250401000000 20250301000000 12345 example.com. AAAA"}, nil), sec: dnssec.Secure},
		{m: msg(t, "www.example.com.", dns.TypeAAAA, dns.RcodeSuccess, nil, []string{soa})},
		{m: msg(t, "nx.example.com.", dns.TypeA, dns.RcodeNameError, nil, []string{soa})},
		{m: msg(t, "bad.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"bad.example.com. 300 IN A 192.0.2.66"}, nil),
			sec: dnssec.Bogus, why: bogus},
	} {
		if !c.PutValidated(p.m, p.sec, p.why, 0) {
			t.Fatalf("PutValidated(%s) refused", p.m.Question[0].Name)
		}
	}
	for _, p := range []struct {
		rrs  []string
		rank resolver.Rank
	}{
		{rrs: []string{"example.com. 3600 IN NS ns1.example.com."}, rank: resolver.RankAuthority},
		{rrs: []string{"ns1.example.com. 3600 IN A 192.0.2.53"}, rank: resolver.RankGlue},
		{rrs: []string{"example.com. 3600 IN DNSKEY 257 3 13 AAAA"}, rank: resolver.RankValidated},
		{rrs: []string{"example.com. 3600 IN DS 12345 13 2 ABCDEF"}, rank: resolver.RankAnswerAA},
	} {
		if !c.PutRRset(zonetest.RRs(t, p.rrs...), p.rank) {
			t.Fatalf("PutRRset(%v) refused", p.rrs)
		}
	}
}

var servers = map[netip.AddrPort]time.Duration{
	netip.MustParseAddrPort("192.0.2.53:53"):     20 * time.Millisecond,
	netip.MustParseAddrPort("[2001:db8::53]:53"): 2 * time.Second,
}

func dump(t testing.TB, c *resolver.Cache) string {
	t.Helper()
	var sb strings.Builder
	if err := c.Dump(&sb); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// saved writes a file from a filled cache and returns its path and clock.
func saved(t testing.TB) (string, *clock, *resolver.Cache) {
	t.Helper()
	clk := newClock()
	c := newCache(clk)
	fill(t, c)
	r := newResolver(c)
	r.ImportInfra(servers)
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	if _, err := Save(path, c, r); err != nil {
		t.Fatalf("Save: %v", err)
	}
	return path, clk, c
}

func TestSaveLoad(t *testing.T) {
	path, clk, src := saved(t)
	clk.Advance(10 * time.Second)

	dst := newCache(clk)
	r := newResolver(dst)
	st, err := Load(path, dst, r)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Stats{Entries: 8, Servers: 2, SavedAt: clk.Now().Add(-10 * time.Second)}
	if st.Entries != want.Entries || st.Servers != want.Servers || st.Stale != 0 || st.Bad != 0 || st.Dropped != 0 || !st.SavedAt.Equal(want.SavedAt) {
		t.Errorf("Load stats %+v, want %+v", st, want)
	}
	if got, want := dump(t, dst), dump(t, src); got != want {
		t.Errorf("loaded cache dumps as\n%s\nwant\n%s", got, want)
	}
	if got := r.ExportInfra(); len(got) != 2 || got[netip.MustParseAddrPort("192.0.2.53:53")] != 20*time.Millisecond {
		t.Errorf("infrastructure %v, want %v", got, servers)
	}
	m, ok := dst.Get("bad.example.com.", dns.TypeA)
	if !ok || m.Sec != dnssec.Bogus {
		t.Fatalf("bogus entry: ok %v sec %v", ok, m.Sec)
	}
	if code, ok := dnssec.EDE(m.Why); !ok || code != dns.ExtendedErrorCodeSignatureExpired {
		t.Errorf("bogus entry's reason %v maps to EDE %d %v, want Signature Expired", m.Why, code, ok)
	}

	// A second save replaces the file, and leaves no temporary file.
	if _, err := Save(path, dst, r); err != nil {
		t.Fatal(err)
	}
	if names, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*")); len(names) != 1 {
		t.Errorf("directory holds %v, want the cache file alone", names)
	}
}

func TestLoadMissing(t *testing.T) {
	c := newCache(newClock())
	st, err := Load(filepath.Join(t.TempDir(), "none.db"), c, nil)
	if err != nil || st != (Stats{}) {
		t.Errorf("Load of a missing file: %+v, %v; want nothing and no error", st, err)
	}
}

// TestLoadStale moves the clock past every TTL, then past the stale window.
func TestLoadStale(t *testing.T) {
	path, clk, _ := saved(t)
	clk.Advance(2 * time.Hour) // every TTL has passed, the window has not
	c := newCache(clk)
	st, err := Load(path, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 8 || st.Stale != 8 {
		t.Errorf("loaded %d entries, %d stale; want 8 and 8", st.Entries, st.Stale)
	}
	if _, ok := c.Get("www.example.com.", dns.TypeA); ok {
		t.Error("Get answered an expired entry")
	}
	if m, ok := c.GetStale("www.example.com.", dns.TypeA); !ok || !m.Stale || len(m.Answer) != 2 {
		t.Errorf("GetStale: ok %v stale %v answer %v", ok, m.Stale, m.Answer)
	}
	if _, _, stale, ok := c.GetRRsetStale("example.com.", dns.TypeNS); !ok || !stale {
		t.Errorf("NS RRset: ok %v stale %v, want a stale RRset", ok, stale)
	}

	clk.Advance(window)
	c = newCache(clk)
	st, err = Load(path, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 0 || st.Dropped != 8 || c.Stats().Entries != 0 {
		t.Errorf("past the window: loaded %d, dropped %d, cache holds %d; want 0, 8, 0", st.Entries, st.Dropped, c.Stats().Entries)
	}
}

// TestLoadDamaged checks that a file that cannot be trusted is refused as a
// whole, without a panic, and leaves the cache empty.
func TestLoadDamaged(t *testing.T) {
	tests := []struct {
		name   string
		v1     bool // damage a format 1 file, else a file of the current format
		damage func(t *testing.T, path string)
		want   error
	}{
		{name: "random bytes", want: ErrCorrupt, damage: func(t *testing.T, path string) {
			b := make([]byte, 64<<10)
			for i := range b {
				b[i] = byte(rand.N(256))
			}
			writeFile(t, path, b)
		}},
		{name: "empty file", want: ErrCorrupt, damage: func(t *testing.T, path string) { writeFile(t, path, nil) }},
		{name: "text file", want: ErrCorrupt, damage: func(t *testing.T, path string) {
			writeFile(t, path, bytes.Repeat([]byte("not a database\n"), 1000))
		}},
		{name: "truncated", want: ErrCorrupt, damage: truncateHalf},
		{name: "format 1 truncated", v1: true, want: ErrCorrupt, damage: truncateHalf},
		{name: "format 1 one byte changed", v1: true, want: ErrCorrupt, damage: func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x20
			writeFile(t, path, b)
		}},
		{name: "format 1 trailer cut off", v1: true, want: ErrCorrupt, damage: func(t *testing.T, path string) {
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, info.Size()-int64(trailerLen)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "format 1 truncated and sealed again", v1: true, want: ErrCorrupt, damage: func(t *testing.T, path string) {
			truncateHalf(t, path)
			if err := seal(path); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "wrong version", want: ErrBadVersion, damage: func(t *testing.T, path string) {
			update(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(keyVersion, binary.BigEndian.AppendUint32(nil, FormatVersion+1))
			})
		}},
		{name: "format 1 wrong version", v1: true, want: ErrBadVersion, damage: func(t *testing.T, path string) {
			update(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(keyVersion, binary.BigEndian.AppendUint32(nil, formatV1+7))
			})
		}},
		{name: "another application's database", want: ErrCorrupt, damage: func(t *testing.T, path string) {
			update(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketMeta) })
		}},
		{name: "records bucket missing", want: ErrCorrupt, damage: func(t *testing.T, path string) {
			update(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketCache) })
		}},
		{name: "format 1 records bucket missing", v1: true, want: ErrCorrupt, damage: func(t *testing.T, path string) {
			update(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketCache) })
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := bigFile(t, 3000)
			if tc.v1 {
				path = bigFileV1(t, 3000)
			}
			tc.damage(t, path)
			c := newCache(newClock())
			st, err := Load(path, c, nil)
			if !errors.Is(err, tc.want) {
				t.Errorf("Load: %v, want %v", err, tc.want)
			}
			if st != (Stats{}) || c.Stats().Entries != 0 {
				t.Errorf("Load of a damaged file: stats %+v, %d entries in the cache; want none", st, c.Stats().Entries)
			}
		})
	}
}

func truncateHalf(t *testing.T, path string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, info.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// TestLoadScribbled overwrites bytes at random places in a file (a format
// 1 file is sealed again, so that bbolt and the cache meet the damage):
// Load must never panic, and must either refuse the file or load sound
// entries only.
func TestLoadScribbled(t *testing.T) {
	for _, v1 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v1=%v", v1), func(t *testing.T) {
			clean := bigFile(t, 3000)
			if v1 {
				clean = bigFileV1(t, 3000)
				info, err := os.Stat(clean)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(clean, info.Size()-int64(trailerLen)); err != nil {
					t.Fatal(err)
				}
			}
			orig, err := os.ReadFile(clean)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			refused, bad := 0, 0
			for i := range 100 {
				b := bytes.Clone(orig)
				for range 1 + rng.IntN(20) {
					off := rng.IntN(len(b) - 64)
					for j := range 1 + rng.IntN(64) {
						b[off+j] = byte(rng.Uint32())
					}
				}
				path := filepath.Join(t.TempDir(), fmt.Sprintf("scribbled-%d.db", i))
				writeFile(t, path, b)
				if v1 {
					if err := seal(path); err != nil {
						t.Fatal(err)
					}
				}
				c := newCache(newClock())
				st, err := Load(path, c, nil)
				if err != nil {
					refused++
				}
				bad += st.Bad
				if err != nil && c.Stats().Entries != 0 {
					t.Errorf("scribble %d: Load failed (%v) but left %d entries", i, err, c.Stats().Entries)
				}
				if err == nil && int64(st.Entries) != c.Stats().Entries {
					t.Errorf("scribble %d: %d entries loaded, the cache holds %d", i, st.Entries, c.Stats().Entries)
				}
			}
			t.Logf("100 scribbled files: %d refused, %d bad records skipped in the others", refused, bad)
		})
	}
}

// TestLoadBadRecords adds damaged and forged records to a sound file: they
// are skipped and counted, the rest loads.
func TestLoadBadRecords(t *testing.T) {
	path, clk, _ := saved(t)
	forged := resolver.CacheRecord{Kind: resolver.RecordRRset, Name: "example.org.", Qtype: dns.TypeNS,
		Rank: resolver.RankAnswerAA, Expire: clk.Now().Add(time.Hour)}
	m := &dns.Msg{Answer: zonetest.RRs(t, "www.example.com. 3600 IN NS ns.attacker.example.")} // owner is not the key's
	forged.Msg, _ = m.Pack()
	v, err := appendRecord(nil, forged)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := appendValue(nil, forged)
	if err != nil {
		t.Fatal(err)
	}
	update(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCache)
		if err := b.Put(binary.BigEndian.AppendUint64(nil, 1000), v2); err != nil { // sound framing and checksum, refused by the cache
			return err
		}
		bad := bytes.Clone(v2)
		bad[len(bad)-1] ^= 1 // checksum mismatch
		if err := b.Put(binary.BigEndian.AppendUint64(nil, 1001), bad); err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, 1002), []byte{1, 2, 3})
	})
	c := newCache(clk)
	st, err := Load(path, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 8 || st.Bad != 3 {
		t.Errorf("loaded %d entries with %d bad, want 8 and 3", st.Entries, st.Bad)
	}

	// The same in a format 1 file, where records sit under sequence numbers.
	pathV1 := v1Path(t)
	saveV1(t, pathV1, c, nil)
	update(t, pathV1, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCache)
		if err := b.Put(binary.BigEndian.AppendUint64(nil, 1000), []byte{1, 2, 3}); err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, 1001), v)
	})
	c = newCache(clk)
	st, err = Load(pathV1, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 8 || st.Bad != 2 || st.Version != formatV1 {
		t.Errorf("format 1: loaded %d entries with %d bad (version %d), want 8 and 2 (version 1)", st.Entries, st.Bad, st.Version)
	}
	if _, _, ok := c.GetRRset("example.org.", dns.TypeNS); ok {
		t.Error("the forged RRset was loaded")
	}
}

func TestLoadLocked(t *testing.T) {
	path, clk, _ := saved(t)
	// NoFreelistSync: opening for writing must not change the file.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, err = Load(path, newCache(clk), nil)
	if !errors.Is(err, ErrLocked) {
		t.Errorf("Load of a locked file: %v, want ErrLocked", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Load waited %v for the lock", took)
	}
}

// TestLoadCapacity loads a file into a cache smaller than the one saved.
func TestLoadCapacity(t *testing.T) {
	path := bigFile(t, 3000)
	c := resolver.NewCache(resolver.CacheConfig{MaxBytes: 256 << 10, Now: newClock().Now})
	st, err := Load(path, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries+st.Dropped != 3000 || st.Dropped == 0 {
		t.Errorf("loaded %d, dropped %d of 3000; want some dropped", st.Entries, st.Dropped)
	}
	if s := c.Stats(); s.Bytes > c.Capacity() {
		t.Errorf("cache holds %d bytes, over its capacity %d", s.Bytes, c.Capacity())
	}
}

func TestSaveFails(t *testing.T) {
	c := newCache(newClock())
	fill(t, c)
	if _, err := Save(filepath.Join(t.TempDir(), "no", "such", "dir", "cache.db"), c, nil); err == nil {
		t.Error("Save into a missing directory succeeded")
	}
}

// TestLoadRemovesTemps checks that Load clears the temporary files of a
// save interrupted by a crash.
func TestLoadRemovesTemps(t *testing.T) {
	path, clk, _ := saved(t)
	dir := filepath.Dir(path)
	left := filepath.Join(dir, filepath.Base(path)+".tmp-12345")
	other := filepath.Join(dir, "other.db.tmp-1")
	writeFile(t, left, []byte("half a file"))
	writeFile(t, other, []byte("someone else's"))
	if _, err := Load(path, newCache(clk), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the interrupted save's file is still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another file was removed: %v", err)
	}
}

// runWriter runs w until the returned stop is called, which waits for it.
func runWriter(t testing.TB, w *Writer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// TestWriterSaves is the writer without write-behind: whole saves every
// interval and at the end.
func TestWriterSaves(t *testing.T) {
	clk := newClock()
	c := newCache(clk)
	fill(t, c)
	r := newResolver(c)
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)

	t.Run("saves every interval", func(t *testing.T) {
		stop := runWriter(t, NewWriter(path, c, r, WriterConfig{Interval: 10 * time.Millisecond, Metrics: m}))
		waitFor(t, "two saves", func() bool { return testutil.ToFloat64(m.Saves.WithLabelValues("ok")) >= 2 })
		stop()
		if n := testutil.ToFloat64(m.Saves.WithLabelValues("ok")); n < 3 {
			t.Errorf("%v saves, want at least two periodic ones and the final one", n)
		}
	})
	t.Run("saves when ctx ends", func(t *testing.T) {
		os.Remove(path)
		stop := runWriter(t, NewWriter(path, c, r, WriterConfig{Interval: time.Hour, Metrics: m}))
		c.Put(msg(t, "late.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"late.example.com. 300 IN A 192.0.2.9"}, nil))
		stop()
		dst := newCache(clk)
		st, err := Load(path, dst, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := dst.Get("late.example.com.", dns.TypeA); !ok || st.Entries != 9 {
			t.Errorf("the file saved at the end holds %d entries (want 9, the last one included)", st.Entries)
		}
		if got := testutil.ToFloat64(m.SavedEntries); got != 9 {
			t.Errorf("saved entries gauge %v, want 9", got)
		}
		if got := testutil.ToFloat64(m.LastSave); got != float64(clk.Now().Unix()) {
			t.Errorf("last save timestamp %v, want %v", got, clk.Now().Unix())
		}
	})
	t.Run("a failed save is counted", func(t *testing.T) {
		w := NewWriter(filepath.Join(t.TempDir(), "missing", "cache.db"), c, r, WriterConfig{Metrics: m})
		runWriter(t, w)()
		if n := testutil.ToFloat64(m.Saves.WithLabelValues("error")); n != 1 {
			t.Errorf("%v failed saves counted, want 1", n)
		}
		if st := w.Status(); st.Errors != 1 || st.LastError == "" {
			t.Errorf("status %+v, want one error", st)
		}
	})
}

// waitFor polls cond until it holds, for at most 10 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMetricsPassPromlint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.ObserveLoad(Stats{Entries: 3, Bad: 1}, nil)
	m.ObserveLoad(Stats{}, ErrCorrupt)
	m.observeSave(Stats{Entries: 3, SavedAt: time.Unix(1, 0)}, time.Millisecond, nil)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	if len(families) != 14 {
		t.Errorf("%d metric families, want 14", len(families))
	}
	if got := testutil.ToFloat64(m.LoadErrors.WithLabelValues("record")); got != 1 {
		t.Errorf("record load errors %v, want 1", got)
	}
	var nilMetrics *Metrics
	nilMetrics.ObserveLoad(Stats{}, nil) // must not panic
}

// TestLoadWithoutNationalCount loads a snapshot written before
// meta/national (the previous version's, shard by shard) into a cache
// that holds a part of it: it reads the first capacity bytes, as that
// version did, and so keeps the national records that lead the file.
func TestLoadWithoutNationalCount(t *testing.T) {
	clk := newClock()
	national := func(c *resolver.Cache) {
		resolver.New(resolver.Config{National: []string{"example.net."}, Island: resolver.IslandConfig{Disabled: true}}, nil, c, nil, nil)
	}
	c := newCache(clk)
	national(c)
	if !c.PutRRset(zonetest.RRs(t, "example.net. 300 IN NS ns.example.net."), resolver.RankAuthority) {
		t.Fatal("PutRRset refused")
	}
	fillA(c, 20000)
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	if _, err := Save(path, c, nil); err != nil {
		t.Fatal(err)
	}
	update(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyNational) })

	small := resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20, StaleWindow: window, Now: clk.Now})
	national(small)
	st, err := Load(path, small, nil)
	if err != nil || st.Entries == 0 || st.Dropped == 0 {
		t.Fatalf("Load: %+v, %v; want some entries loaded and some dropped", st, err)
	}
	if _, _, ok := small.GetRRset("example.net.", dns.TypeNS); !ok {
		t.Error("the national NS RRset, first in the file, was not loaded")
	}
}

// longName is a name of 255 octets whose presentation form is longer:
// three labels of 63 escaped octets, and one of 61.
var longName = strings.Repeat(strings.Repeat(`\000`, 63)+".", 3) + strings.Repeat(`\255`, 61) + "."

// TestSaveLoadLongName saves and loads an answer whose owner name is
// longer than 255 characters in presentation form.
func TestSaveLoadLongName(t *testing.T) {
	clk := newClock()
	c := newCache(clk)
	if !c.Put(answerA(longName, 7)) {
		t.Fatal("Put refused the name")
	}
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	if st, err := Save(path, c, nil); err != nil || st.Entries != 1 {
		t.Fatalf("Save: %+v, %v; want the one entry", st, err)
	}
	dst := newCache(clk)
	if st, err := Load(path, dst, nil); err != nil || st.Entries != 1 {
		t.Fatalf("Load: %+v, %v; want the one entry", st, err)
	}
	got, ok := dst.Get(longName, dns.TypeA)
	if !ok || len(got.Answer) != 1 || got.Answer[0].(*dns.A).A.String() != "10.0.0.7" {
		t.Fatalf("Get after Load: %v, %v", got.Answer, ok)
	}
}

// FuzzDecodeRecord feeds arbitrary values to the decoder and the cache: no
// panic, and what decodes encodes back to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	c := newCache(newClock())
	fill(f, c)
	c.Put(answerA(longName, 1))
	if err := c.Export(func(rec resolver.CacheRecord) error {
		v, err := appendRecord(nil, rec)
		f.Add(v)
		return err
	}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := appendRecord(nil, rec)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding gives %x, %v; want %x", again, err, b)
		}
		c := newCache(newClock())
		c.Import(rec)
		if err := c.Dump(new(strings.Builder)); err != nil {
			t.Fatal(err)
		}
	})
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// update changes the file at path with fn, then seals a format 1 file
// again: the file is damaged in a way its checksum cannot tell.
func update(t testing.TB, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	v1, err := isV1(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if !v1 {
		return
	}
	if err := seal(path); err != nil {
		t.Fatal(err)
	}
}

// fillA stores n answers of one A record each, as a busy resolver holds.
func fillA(c *resolver.Cache, n int) {
	for i := range n {
		c.Put(hostA(i))
	}
}

// hostA is the answer fillA stores for host<i>.example.com.: one A record.
func hostA(i int) *dns.Msg {
	return answerA(fmt.Sprintf("host%d.example.com.", i), i)
}

// answerA is an answer for name holding one A record, 10.x.y.z from i.
func answerA(name string, i int) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Response = true
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600},
		A: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).To4()}}
	return m
}

// bigFile saves n single-A entries and returns the file's path.
func bigFile(t testing.TB, n int) string {
	t.Helper()
	c := newCache(newClock())
	fillA(c, n)
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	if _, err := Save(path, c, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

// bigFileV1 is bigFile in format 1.
func bigFileV1(t testing.TB, n int) string {
	t.Helper()
	c := newCache(newClock())
	fillA(c, n)
	path := v1Path(t)
	saveV1(t, path, c, nil)
	return path
}

// BenchmarkSave100k writes a file of 100k single-A entries.
func BenchmarkSave100k(b *testing.B) {
	c := resolver.NewCache(resolver.CacheConfig{MaxBytes: 256 << 20})
	fillA(c, 100_000)
	path := filepath.Join(b.TempDir(), "resolver-cache.db")
	b.ReportAllocs()
	var st Stats
	for b.Loop() {
		var err error
		if st, err = Save(path, c, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Bytes), "file-bytes")
}

// BenchmarkLoad100k reads a file of 100k single-A entries into an empty
// cache.
func BenchmarkLoad100k(b *testing.B) {
	c := resolver.NewCache(resolver.CacheConfig{MaxBytes: 256 << 20})
	fillA(c, 100_000)
	path := filepath.Join(b.TempDir(), "resolver-cache.db")
	if _, err := Save(path, c, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		dst := resolver.NewCache(resolver.CacheConfig{MaxBytes: 256 << 20})
		st, err := Load(path, dst, nil)
		if err != nil || st.Entries != 100_000 {
			b.Fatalf("Load: %d entries, %v", st.Entries, err)
		}
	}
}

// TestLoadSmallerKeepsRecent loads a file into a cache that holds a
// fraction of it: the cache must keep what it would have kept had it seen
// the uses before the save itself (the entries used last, as far as each
// of its shards can hold them), whichever of the saving cache's shards
// held them.
func TestLoadSmallerKeepsRecent(t *testing.T) {
	const n = 20000
	clk := newClock()
	national := func(c *resolver.Cache) {
		resolver.New(resolver.Config{National: []string{"example.net."}, Island: resolver.IslandConfig{Disabled: true}}, nil, c, nil, nil)
	}
	c := newCache(clk)
	national(c)
	// The national infrastructure, stored first, used never again: kept
	// all the same.
	for _, rr := range []string{"example.net. 300 IN NS ns.example.net.", "ns.example.net. 300 IN A 192.0.2.53"} {
		if !c.PutRRset(zonetest.RRs(t, rr), resolver.RankAuthority) {
			t.Fatalf("PutRRset(%s) refused", rr)
		}
	}
	fillA(c, n)
	small := func() *resolver.Cache {
		c := resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20, StaleWindow: window, Now: clk.Now})
		national(c)
		return c
	}
	// Use every entry once, in an order unrelated to names and shards.
	// The small cache sees the same uses: what it keeps is the aim.
	ideal := small()
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	for _, i := range order {
		if _, ok := c.Get(fmt.Sprintf("host%d.example.com.", i), dns.TypeA); !ok {
			t.Fatalf("host%d not cached", i)
		}
		ideal.Put(hostA(i))
	}
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	if _, err := Save(path, c, nil); err != nil {
		t.Fatal(err)
	}

	loaded := small()
	st, err := Load(path, loaded, nil)
	if err != nil {
		t.Fatal(err)
	}
	owners := func(c *resolver.Cache) map[string]bool {
		m := make(map[string]bool)
		for line := range strings.Lines(dump(t, c)) {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "host") {
				m[f[0]] = true
			}
		}
		return m
	}
	want, got := owners(ideal), owners(loaded)
	for _, k := range []struct {
		name  string
		qtype uint16
	}{{"example.net.", dns.TypeNS}, {"ns.example.net.", dns.TypeA}} {
		if _, _, ok := loaded.GetRRset(k.name, k.qtype); !ok {
			t.Errorf("national %s/%s not loaded", k.name, dns.Type(k.qtype))
		}
	}
	both, kept := 0, len(got)
	for name := range got {
		if want[name] {
			both++
		}
	}
	aim := int(ideal.Stats().Entries)
	if st.Dropped == 0 || aim == 0 || aim > n/2 {
		t.Fatalf("the cache keeps %d of %d (the load dropped %d): the test needs one that holds some, not all", aim, n, st.Dropped)
	}
	t.Logf("kept %d, %d of them among the %d the cache keeps after the uses themselves", kept, both, aim)
	if both < aim*9/10 {
		t.Errorf("kept %d of the %d entries the cache keeps after the uses themselves", both, aim)
	}
}
