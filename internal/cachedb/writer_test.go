package cachedb

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/internal/mapped"
	"github.com/sovdns/sovdns/internal/zonetest"
	"github.com/sovdns/sovdns/resolver"
)

// upToDate waits until the writer has the file open and nothing pending:
// every change made before the call is committed to the file.
func upToDate(t testing.TB, w *Writer) FileStatus {
	t.Helper()
	var st FileStatus
	waitFor(t, "the file up to date", func() bool {
		st = w.Status()
		return st.Open && st.Pending == 0 && st.Lag == 0
	})
	return st
}

// crashImage copies the file at path, as a crash at this moment would
// leave it (the writer holds the file locked: it is copied, not opened).
func crashImage(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "image.db")
	writeFile(t, img, b)
	return img
}

// fileKeys lists the keys of the entries the file at path (a copy of it)
// holds: its snapshot with its log applied.
func fileKeys(t testing.TB, path string) map[resolver.CacheKey]bool {
	t.Helper()
	data, err := read(crashImage(t, path), 1<<40, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if data.bad != 0 {
		t.Errorf("%d bad records in the file", data.bad)
	}
	out := map[resolver.CacheKey]bool{}
	for _, rec := range data.records {
		out[keyOf(rec)] = true
	}
	return out
}

// logLen is the number of changes in the log of the file at path.
func logLen(t testing.TB, path string) int {
	t.Helper()
	db, err := bolt.Open(crashImage(t, path), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLog).ForEach(func(_, v []byte) error {
			if lost := logChanges(v, func([]byte) { n++ }); lost != 0 {
				t.Errorf("a damaged chunk in the log")
			}
			return nil
		})
	})
	return n
}

// TestWriteBehind runs a writer beside a cache that changes: the file
// follows, puts and deletes, while the writer still runs (the file is read
// through a copy, as a crash would leave it).
func TestWriteBehind(t *testing.T) {
	clk := newClock()
	c := newCache(clk)
	r := newResolver(c)
	r.ImportInfra(servers)
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	w := NewWriter(path, c, r, WriterConfig{WriteBehind: 20 * time.Millisecond, Interval: time.Hour, Metrics: m})
	stop := runWriter(t, w)

	fill(t, c)
	upToDate(t, w)
	check := func(what string) {
		t.Helper()
		img := crashImage(t, path)
		dst := newCache(clk)
		r2 := newResolver(dst)
		st, err := Load(img, dst, r2)
		if err != nil {
			t.Fatalf("%s: Load: %v", what, err)
		}
		if got, want := dump(t, dst), dump(t, c); got != want {
			t.Errorf("%s: the file loads as\n%s\nwant\n%s", what, got, want)
		}
		if st.Version != FormatVersion || st.Servers != 2 {
			t.Errorf("%s: version %d, %d servers; want %d, 2", what, st.Version, st.Servers, FormatVersion)
		}
	}
	check("filled")

	// Removals: a name flushed, an entry replaced.
	if n := c.FlushName("nx.example.com."); n != 1 {
		t.Fatalf("FlushName removed %d", n)
	}
	c.Put(msg(t, "www.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"www.example.com. 600 IN A 192.0.2.99"}, nil))
	upToDate(t, w)
	check("after a removal and a replacement")
	if fileKeys(t, path)[resolver.CacheKey{Kind: resolver.RecordNXDomain, Name: "nx.example.com."}] {
		t.Error("the flushed entry is still in the file")
	}

	// Island state: written with the next batch.
	r.RestoreIsland()
	waitFor(t, "the island state in the file", func() bool {
		st, err := Load(crashImage(t, path), newCache(clk), nil)
		return err == nil && st.Island
	})

	if n := logLen(t, path); n == 0 {
		t.Error("the changes are not in the log")
	}

	// Everything flushed: the file is written anew, empty.
	c.Flush()
	upToDate(t, w)
	if keys := fileKeys(t, path); len(keys) != 0 {
		t.Errorf("after Flush the file holds %d entries", len(keys))
	}
	stop()

	if got := testutil.ToFloat64(m.Batches); got < 3 {
		t.Errorf("%v batches counted", got)
	}
	if got := testutil.ToFloat64(m.Fsyncs); got != 2*testutil.ToFloat64(m.Batches) {
		t.Errorf("%v fsyncs for %v batches", got, testutil.ToFloat64(m.Batches))
	}
	if got := testutil.ToFloat64(m.Changes.WithLabelValues("delete")); got < 1 {
		t.Errorf("%v deletes counted, want at least 1 (the flushed name)", got)
	}
	if got := testutil.ToFloat64(m.Saves.WithLabelValues("ok")); got != 2 {
		t.Errorf("%v whole saves, want 2 (at start, after Flush)", got)
	}
	if got := testutil.ToFloat64(m.WrittenBytes); got < 4096 {
		t.Errorf("%v bytes written counted", got)
	}
	if st := w.Status(); st.Open || st.Errors != 0 {
		t.Errorf("after Run: %+v", st)
	}
}

// TestWriteBehindBatches writes more changes than one batch holds, and
// more than one shard records: several transactions, nothing lost.
func TestWriteBehindBatches(t *testing.T) {
	clk := newClock()
	c := newCache(clk)
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: time.Hour, Trigger: NewTrigger()})
	stop := runWriter(t, w)
	// The first round (the snapshot, then the meta keys) over.
	waitFor(t, "the first batch", func() bool { st := w.Status(); return st.Open && st.Batches >= 1 })
	// More than a shard records between two takes land in some shards;
	// the writer may take some of them early (ChangesFilling).
	const n = 3*batchEntries + 500
	fillA(c, n)
	w.cfg.Trigger.Pull("test")
	st := upToDate(t, w)
	if st.Batches < 4 {
		t.Errorf("%d batches for %d changes, want at least 4", st.Batches, n)
	}
	stop()
	if keys := fileKeys(t, path); len(keys) != n {
		t.Errorf("the file holds %d entries, want %d", len(keys), n)
	}
	dst := newCache(clk)
	if st, err := Load(path, dst, nil); err != nil || st.Entries != n {
		t.Errorf("Load: %d entries, %v", st.Entries, err)
	}
}

// TestWriteBehindFilling: with a long window and no trigger, a shard whose
// set of changes is filling (a quarter of its bound) is written at once.
func TestWriteBehindFilling(t *testing.T) {
	c := newCache(newClock())
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: time.Hour})
	runWriter(t, w)
	waitFor(t, "the first batch", func() bool { st := w.Status(); return st.Open && st.Batches >= 1 })
	n := 0
	for i := 0; n < resolver.FillingChanges; i++ {
		if m := hostA(i); c.ShardOf(m.Question[0].Name) == 5 {
			c.Put(m)
			n++
		}
	}
	upToDate(t, w)
	if keys := fileKeys(t, path); len(keys) != n {
		t.Errorf("the file holds %d entries, want %d", len(keys), n)
	}
}

// TestWriteBehindCompaction: every interval, a file whose log holds changes
// is written anew from the cache: the log is emptied, and entries past
// their stale window leave the file, though the cache has not met them.
func TestWriteBehindCompaction(t *testing.T) {
	clk := newClock()
	c := newCache(clk)
	fill(t, c)
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: 10 * time.Millisecond, Interval: 50 * time.Millisecond, Metrics: m})
	runWriter(t, w)
	upToDate(t, w)
	if keys := fileKeys(t, path); len(keys) != 8 {
		t.Fatalf("the file holds %d entries, want 8", len(keys))
	}
	clk.Advance(window + 2*time.Hour)
	c.Put(msg(t, "new.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"new.example.com. 300 IN A 192.0.2.7"}, nil))
	waitFor(t, "the file written anew", func() bool {
		keys := fileKeys(t, path)
		return len(keys) == 1 && keys[resolver.CacheKey{Kind: resolver.RecordMessage, Name: "new.example.com.", Qtype: dns.TypeA}]
	})
	if n := logLen(t, path); n != 0 {
		t.Errorf("%d changes left in the log of a new snapshot", n)
	}
}

// TestWriterOpens covers what the writer finds at start: the file of the
// entries loaded (entries not loaded are deleted), a format 1 file
// (converted, kept as .v1), a damaged file (set aside as .bad).
func TestWriterOpens(t *testing.T) {
	clk := newClock()

	t.Run("format 1 converted", func(t *testing.T) {
		src := newCache(clk)
		fill(t, src)
		r := newResolver(src)
		r.ImportInfra(servers)
		path := v1Path(t)
		saveV1(t, path, src, r)
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c := newCache(clk)
		r2 := newResolver(c)
		st, err := Load(path, c, r2)
		if err != nil || st.Version != formatV1 || st.Entries != 8 || st.Servers != 2 {
			t.Fatalf("Load of format 1: %+v, %v", st, err)
		}
		reg := prometheus.NewRegistry()
		m := NewMetrics(reg)
		w := NewWriter(path, c, r2, WriterConfig{WriteBehind: 10 * time.Millisecond, Metrics: m})
		stop := runWriter(t, w)
		waitFor(t, "the file open", func() bool { return w.Status().Open })
		c.Put(msg(t, "new.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"new.example.com. 300 IN A 192.0.2.7"}, nil))
		upToDate(t, w)
		stop()
		kept, err := os.ReadFile(path + backupSuffix)
		if err != nil || !bytes.Equal(kept, orig) {
			t.Errorf("the format 1 file is not kept as it was: %v", err)
		}
		if v1, err := isV1(path); err != nil || v1 {
			t.Errorf("the file is still format 1: %v", err)
		}
		dst := newCache(clk)
		st, err = Load(path, dst, newResolver(dst))
		if err != nil || st.Version != FormatVersion || st.Entries != 9 || st.Servers != 2 {
			t.Errorf("Load after the conversion: %+v, %v", st, err)
		}
		if got, want := dump(t, dst), dump(t, c); got != want {
			t.Errorf("converted file loads as\n%s\nwant\n%s", got, want)
		}
		if got := testutil.ToFloat64(m.Saves.WithLabelValues("ok")); got != 1 {
			t.Errorf("%v whole saves, want 1 (the conversion)", got)
		}
	})

	t.Run("entries not loaded are deleted", func(t *testing.T) {
		path, _, _ := saved(t)
		clk := newClock()
		clk.Advance(2 * window) // every entry past its window: none loaded
		c := newCache(clk)
		if st, err := Load(path, c, nil); err != nil || st.Entries != 0 {
			t.Fatalf("Load: %+v, %v", st, err)
		}
		w := NewWriter(path, c, nil, WriterConfig{WriteBehind: time.Hour})
		stop := runWriter(t, w)
		waitFor(t, "the file open", func() bool { return w.Status().Open })
		stop()
		if keys := fileKeys(t, path); len(keys) != 0 {
			t.Errorf("the file still holds %d entries the cache did not load", len(keys))
		}
	})

	t.Run("damaged file set aside", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "resolver-cache.db")
		writeFile(t, path, bytes.Repeat([]byte("not a database\n"), 1000))
		c := newCache(clk)
		fill(t, c)
		w := NewWriter(path, c, nil, WriterConfig{WriteBehind: time.Hour})
		stop := runWriter(t, w)
		waitFor(t, "the file open", func() bool { return w.Status().Open })
		stop()
		if _, err := os.Stat(path + ".bad"); err != nil {
			t.Errorf("the damaged file was not set aside: %v", err)
		}
		if keys := fileKeys(t, path); len(keys) != 8 {
			t.Errorf("the new file holds %d entries, want 8", len(keys))
		}
	})

	t.Run("directory missing, then there", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "later")
		path := filepath.Join(dir, "resolver-cache.db")
		c := newCache(clk)
		trig := NewTrigger()
		w := NewWriter(path, c, nil, WriterConfig{WriteBehind: 10 * time.Millisecond, Trigger: trig})
		runWriter(t, w)
		fill(t, c)
		waitFor(t, "an error", func() bool { return w.Status().Errors > 0 })
		if st := w.Status(); st.Open || st.Pending != 8 || st.Lag <= 0 || st.LastError == "" {
			t.Errorf("status while the file cannot be opened: %+v", st)
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		trig.Pull("test") // sooner than the retry
		upToDate(t, w)
		if keys := fileKeys(t, path); len(keys) != 8 {
			t.Errorf("the file holds %d entries, want 8", len(keys))
		}
		if st := w.Status(); st.LastError != "" {
			t.Errorf("the error is still reported after a write: %+v", st)
		}
	})
}

// TestWriteBehindTrigger: with a long window, a pull writes at once.
func TestWriteBehindTrigger(t *testing.T) {
	c := newCache(newClock())
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	trig := NewTrigger()
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: time.Hour, Trigger: trig})
	runWriter(t, w)
	waitFor(t, "the file open", func() bool { return w.Status().Open })
	fill(t, c)
	trig.Pull("island mode entered")
	trig.Pull("again") // never blocks
	upToDate(t, w)
	if keys := fileKeys(t, path); len(keys) != 8 {
		t.Errorf("the file holds %d entries, want 8", len(keys))
	}
}

// The SIGKILL test runs a writer in a child process (this test binary,
// run with crashChildEnv set), kills it with SIGKILL while it writes, and
// loads what it left.
const crashChildEnv = "SOVDNS_CACHEDB_CRASH_CHILD"

// TestCrashChild is the child of TestWriteBehindSIGKILL: it stores an entry
// every 200µs and, every time the writer is up to date, prints how many
// entries the file holds for sure. It never returns by itself.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("run by TestWriteBehindSIGKILL")
	}
	c := resolver.NewCache(resolver.CacheConfig{MaxBytes: 256 << 20, StaleWindow: window})
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: 5 * time.Millisecond})
	go w.Run(context.Background())
	out := bufio.NewWriter(os.Stdout)
	i := 0
	for {
		for range 50 {
			name := fmt.Sprintf("host%d.example.com.", i)
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			m.Response = true
			a, _ := dns.NewRR(name + " 3600 IN A 10.0.0.1")
			m.Answer = []dns.RR{a}
			c.Put(m)
			i++
			time.Sleep(200 * time.Microsecond)
		}
		// Everything up to i is in the file once nothing is pending.
		for st := w.Status(); !st.Open || st.Pending != 0; st = w.Status() {
			time.Sleep(time.Millisecond)
		}
		fmt.Fprintf(out, "written %d\n", i)
		out.Flush()
	}
}

// TestWriteBehindSIGKILL kills a process writing the file at several
// moments: the file always loads, and holds at least what the process had
// reported written.
func TestWriteBehindSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for run := range 4 {
		t.Run(strconv.Itoa(run), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "resolver-cache.db")
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			sc := bufio.NewScanner(stdout)
			want := 0
			reports := 0
			lines := make(chan string)
			go func() {
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			deadline := time.After(30 * time.Second)
			// Kill after a different number of reports each run, so the
			// kill falls at different moments of the writer's cycle.
			for reports < 5+3*run {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatal("the child ended")
					}
					if n, ok := strings.CutPrefix(l, "written "); ok {
						want, _ = strconv.Atoi(n)
						reports++
					}
				case <-deadline:
					t.Fatal("timed out waiting for the child's reports")
				}
			}
			// The child goes on storing and writing meanwhile: the kill
			// lands in the middle of its work, at a different point each run.
			time.Sleep(time.Duration(run) * 3 * time.Millisecond)
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			c := resolver.NewCache(resolver.CacheConfig{MaxBytes: 256 << 20, StaleWindow: window})
			st, err := Load(path, c, nil)
			if err != nil {
				t.Fatalf("Load after SIGKILL: %v", err)
			}
			if st.Entries < want || st.Bad != 0 {
				t.Errorf("after SIGKILL: %d entries loaded (%d bad), the child had reported %d written", st.Entries, st.Bad, want)
			}
			for i := range want {
				if _, ok := c.Get(fmt.Sprintf("host%d.example.com.", i), dns.TypeA); !ok {
					t.Fatalf("host%d, reported written, is not in the file", i)
				}
			}
			t.Logf("killed after %d reports: %d entries reported, %d in the file", reports, want, st.Entries)
		})
	}
}

// TestWriterMeta checks the meta keys of a written file.
func TestWriterMeta(t *testing.T) {
	clk := newClock()
	c := newCache(clk)
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: 10 * time.Millisecond})
	stop := runWriter(t, w)
	fill(t, c)
	upToDate(t, w)
	stop()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyVersion); binary.BigEndian.Uint32(v) != FormatVersion {
			t.Errorf("version %x", v)
		}
		if v := meta.Get(keySavedAt); int64(binary.BigEndian.Uint64(v)) != clk.Now().UnixNano() {
			t.Errorf("saved_at %x", v)
		}
		return nil
	})
}

// TestLoadLog: the log is applied to the snapshot in order (a put replaces,
// a delete removes), and a damaged change is skipped and counted.
func TestLoadLog(t *testing.T) {
	clk := newClock()
	c := newCache(clk)
	fill(t, c)
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: 10 * time.Millisecond})
	stop := runWriter(t, w)
	upToDate(t, w) // the snapshot holds the 8 entries
	c.Put(msg(t, "www.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"www.example.com. 900 IN A 192.0.2.99"}, nil))
	c.FlushName("nx.example.com.")
	c.Put(msg(t, "late.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"late.example.com. 300 IN A 192.0.2.9"}, nil))
	upToDate(t, w)
	stop()
	if n := logLen(t, path); n != 3 {
		t.Fatalf("%d changes in the log, want 3", n)
	}
	dst := newCache(clk)
	if st, err := Load(path, dst, nil); err != nil || st.Entries != 8 || st.Bad != 0 {
		t.Fatalf("Load: %+v, %v", st, err)
	}
	if got, want := dump(t, dst), dump(t, c); got != want {
		t.Errorf("the file loads as\n%s\nwant\n%s", got, want)
	}

	// The change that stored late.example.com. damaged: skipped, the
	// others applied.
	update(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLog)
		cur := b.Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			v = bytes.Clone(v)
			found := false
			logChanges(v, func(change []byte) {
				if key, _, _, err := decodeLog(change); err == nil && key.Name == "late.example.com." {
					change[len(change)-1] ^= 0xff // change is within v
					found = true
				}
			})
			if found {
				return b.Put(bytes.Clone(k), v)
			}
		}
		return fmt.Errorf("no change for late.example.com. in the log")
	})
	dst = newCache(clk)
	st, err := Load(path, dst, nil)
	if err != nil || st.Entries != 7 || st.Bad != 1 {
		t.Errorf("Load with a damaged change: %+v, %v; want 7 entries, 1 bad", st, err)
	}
	if _, ok := dst.Get("late.example.com.", dns.TypeA); ok {
		t.Error("the damaged change was applied")
	}
	if m, ok := dst.Get("www.example.com.", dns.TypeA); !ok || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.99" {
		t.Errorf("the replacement in the log was not applied: %v", m.Answer)
	}
}

// TestLoadNationalOrder: the log has its changes in the order they were
// written, here the address of a national name server before the NS RRset
// that names it; both come back past their stale window, as national
// infrastructure does.
func TestLoadNationalOrder(t *testing.T) {
	clk := newClock()
	national := func(c *resolver.Cache) *resolver.Resolver {
		return resolver.New(resolver.Config{National: []string{"example.net."}, Island: resolver.IslandConfig{Disabled: true}}, nil, c, nil, nil)
	}
	c := newCache(clk)
	national(c)
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: 10 * time.Millisecond})
	stop := runWriter(t, w)
	upToDate(t, w)
	if !c.PutRRset(zonetest.RRs(t, "ns.example.net. 300 IN A 192.0.2.53"), resolver.RankGlue) {
		t.Fatal("PutRRset A refused")
	}
	upToDate(t, w)
	if !c.PutRRset(zonetest.RRs(t, "example.net. 300 IN NS ns.example.net."), resolver.RankAuthority) {
		t.Fatal("PutRRset NS refused")
	}
	upToDate(t, w)
	stop()
	if n := logLen(t, path); n < 2 {
		t.Fatalf("%d changes in the log, want the A and the NS RRsets", n)
	}

	clk.Advance(2 * window)
	dst := newCache(clk)
	national(dst)
	st, err := Load(path, dst, nil)
	if err != nil || st.Entries != 2 {
		t.Errorf("Load: %+v, %v; want both RRsets", st, err)
	}
	if _, _, stale, ok := dst.GetRRsetStale("ns.example.net.", dns.TypeA); !ok || !stale {
		t.Error("the national name server's address was not loaded")
	}
}

// TestWriterReleasesMapping: a batch written leaves none of the file's
// pages mapped resident, whatever the process read of it before.
func TestWriterReleasesMapping(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the mapping is released on Linux only")
	}
	clk := newClock()
	c := newCache(clk)
	fillA(c, 20000)
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	// The batches are written here, not by Run: the writer's status says
	// the file is open and up to date before the batch that opened it has
	// ended, and its release could then come between this test's read of
	// the file and its count of the pages resident.
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: time.Hour, Trigger: NewTrigger()})
	defer w.close()
	if !w.flush(true, "start") {
		t.Fatalf("first batch not written: %s", w.Status().LastError)
	}
	// Every page of the file read, as a pass over the tree does.
	if err := w.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			return b.ForEach(func(_, _ []byte) error { return nil })
		})
	}); err != nil {
		t.Fatal(err)
	}
	read, err := mapped.Resident(path)
	if err != nil {
		t.Fatal(err)
	}
	if read < 1<<20 {
		t.Fatalf("%d bytes of the file resident after reading all of it: the check sees nothing", read)
	}
	batches := w.Status().Batches
	c.Put(msg(t, "new.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"new.example.com. 300 IN A 192.0.2.7"}, nil))
	if !w.flush(true, "test") {
		t.Fatalf("next batch not written: %s", w.Status().LastError)
	}
	if got := w.Status().Batches; got != batches+1 {
		t.Fatalf("%d batches after one change, want %d", got, batches+1)
	}
	n, err := mapped.Resident(path)
	if err != nil {
		t.Fatal(err)
	}
	if n >= read/8 {
		t.Errorf("%d of %d bytes still resident after a batch", n, read)
	}
}

// TestCompactionOfWhatIsDead: a log of new entries (a cache filling) is
// not folded into a new snapshot however long it grows; once what it
// holds that the cache no longer needs (entries replaced since) outweighs
// the rest, it is, and the file then holds each entry once.
func TestCompactionOfWhatIsDead(t *testing.T) {
	clk := newClock()
	c := newCache(clk)
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: time.Hour, Trigger: NewTrigger(), CompactLog: 256 << 10})
	defer w.close()
	if !w.flush(true, "start") {
		t.Fatalf("first batch not written: %s", w.Status().LastError)
	}
	saves := w.Status().Saves

	// Filling: 4,000 new entries in 8 batches, a log past CompactLog
	// and past the snapshot's size (below compactForce times them).
	const n = 4000
	for b := range 8 {
		for i := range 500 {
			c.Put(hostA(b*500 + i))
		}
		if !w.flush(true, "test") {
			t.Fatalf("batch not written: %s", w.Status().LastError)
		}
	}
	if w.logBytes <= 256<<10 || w.logBytes <= w.snapBytes {
		t.Fatalf("log of %d bytes, snapshot %d: the check sees nothing", w.logBytes, w.snapBytes)
	}
	if got := w.Status().Saves; got != saves {
		t.Fatalf("%d snapshots written while the cache filled, want none", got-saves)
	}
	if got := logLen(t, path); got != n {
		t.Fatalf("%d changes in the log, want %d", got, n)
	}

	// Each entry replaced (a new address): after one round, half of what
	// the file holds is dead, as much as is live; after two, two thirds.
	for round := 1; ; round++ {
		for i := range n {
			c.Put(answerA(fmt.Sprintf("host%d.example.com.", i), i+round*7919))
		}
		if !w.flush(true, "test") {
			t.Fatalf("batch not written: %s", w.Status().LastError)
		}
		if w.Status().Saves > saves {
			if round != 2 {
				t.Fatalf("a new snapshot after %d rounds replacing every entry, want 2", round)
			}
			break
		}
		if round == 2 {
			t.Fatalf("no new snapshot after %d rounds replacing every entry (log %d bytes)", round, w.logBytes)
		}
	}
	if got := logLen(t, path); got != 0 {
		t.Errorf("%d changes left in the log of the new snapshot", got)
	}
	if keys := fileKeys(t, path); len(keys) != n {
		t.Errorf("the new snapshot holds %d entries, want %d", len(keys), n)
	}
}

// TestWriterGivesBackRoom: the arrays a round of many changes grew are
// kept while changes keep coming, and let go after a round that needed
// far less (at rest, none); what changes after is written as before.
func TestWriterGivesBackRoom(t *testing.T) {
	c := newCache(newClock())
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: time.Hour})
	t.Cleanup(w.close)
	if !w.flush(true, "start") {
		t.Fatal("the file did not open")
	}
	n := 0
	put := func(k int) {
		for range k {
			c.Put(hostA(n))
			n++
		}
	}
	steps := []struct {
		puts int
		kept bool // the arrays are kept for the next round
	}{
		{3 * minKeptKeys, true},
		{2 * minKeptKeys, true}, // still a stream
		{maxKeptKeys, true},     // the sets taken as they fill
		{maxKeptKeys / 2, true},
		// A stream's rounds come uneven: one of the few changes made
		// while the last was written does not let the room go.
		{minKeptKeys, true},
		{maxKeptKeys / 2, true},
		{minKeptKeys, true},
		{minKeptKeys, true},
		{minKeptKeys, true},
		{maxKeptKeys / 3, true},
		// At rest, the room is let go after quietRounds rounds.
		{0, true},
		{0, true},
		{0, true},
		{0, false},
		{10, true}, // a small array is kept
		{0, true},
		{0, true},
		{0, true},
		{0, true},
	}
	for i, st := range steps {
		put(st.puts)
		if !w.flush(true, "test") {
			t.Fatalf("step %d: the round failed", i)
		}
		if kept := w.keys != nil; kept != st.kept || (w.held != nil) != st.kept {
			t.Errorf("step %d: arrays kept %v (keys %d, held %d), want %v", i, kept, cap(w.keys), cap(w.held), st.kept)
		}
	}
	if keys := fileKeys(t, path); len(keys) != n {
		t.Errorf("the file holds %d entries, want %d", len(keys), n)
	}
}

// TestWriteBehindChurn streams new names through a full cache, a round
// at a time: each new name evicts an old one, and the file takes one
// change a name, its put, never the eviction (an entry evicted before it
// was written is deleted instead, as the file may hold an earlier entry
// of its key). Read back into a cache of the same size, the file gives
// the names stored last.
func TestWriteBehindChurn(t *testing.T) {
	clk := newClock()
	small := func() *resolver.Cache {
		return resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20, StaleWindow: window, Now: clk.Now})
	}
	c := small()
	path := filepath.Join(t.TempDir(), "resolver-cache.db")
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	w := NewWriter(path, c, nil, WriterConfig{WriteBehind: time.Hour, Trigger: NewTrigger(), Metrics: m})
	stop := runWriter(t, w)
	waitFor(t, "the first batch", func() bool { st := w.Status(); return st.Open && st.Batches >= 1 })
	puts := func() float64 { return testutil.ToFloat64(m.Changes.WithLabelValues("put")) }
	deletes := func() float64 { return testutil.ToFloat64(m.Changes.WithLabelValues("delete")) }

	// Rounds of names, each written before the next: the cache holds
	// about two rounds' worth, so from the third on every name stored
	// evicts one written rounds before.
	const round = 2000
	next := 0
	write := func(n int) {
		t.Helper()
		for range n {
			c.Put(hostA(next))
			next++
		}
		w.cfg.Trigger.Pull("test")
		upToDate(t, w)
	}
	for range 3 {
		write(round)
	}
	held := c.Stats().Entries
	if held >= 3*round || held < round {
		t.Fatalf("the cache holds %d entries of %d: not full, or too small for the test", held, 3*round)
	}
	p0, d0, ev0 := puts(), deletes(), c.Stats().Evictions
	for range 4 {
		write(round)
	}
	if ev := c.Stats().Evictions - ev0; ev < 3*round {
		t.Fatalf("%d evictions over %d names stored", ev, 4*round)
	}
	if got := puts() - p0; got != 4*round {
		t.Errorf("%v puts for %d names", got, 4*round)
	}
	if got := deletes() - d0; got != 0 {
		t.Errorf("%v deletions for names evicted after they were written", got)
	}

	// Evicted before they were written: deletions. NS RRsets stored last,
	// in the same round: the load imports them first (the national
	// bookkeeping needs them before the addresses they name), and they
	// keep their place as the most recent all the same.
	first := next
	for range 3 * round {
		c.Put(hostA(next))
		next++
	}
	var zones []resolver.CacheKey
	for i := range 64 {
		z := fmt.Sprintf("zone%d.example.", i)
		if !c.PutRRset(zonetest.RRs(t, z+" 3600 IN NS ns."+z), resolver.RankAuthority) {
			t.Fatalf("PutRRset %s refused", z)
		}
		zones = append(zones, resolver.CacheKey{Kind: resolver.RecordRRset, Name: z, Qtype: dns.TypeNS})
	}
	write(0)
	if got := deletes() - d0; got == 0 {
		t.Error("no deletion for names evicted before they were written")
	}
	stop()

	dst := small()
	st, err := Load(path, dst, nil)
	if err != nil || st.Bad != 0 {
		t.Fatalf("Load: %+v, %v", st, err)
	}
	if n := int(dst.Stats().Entries); st.Entries != n || st.Dropped == 0 || n < int(held)*9/10 {
		t.Errorf("Load: %d entries, %d dropped; the cache holds %d (%d before), and the file more", st.Entries, st.Dropped, n, held)
	}
	kept := 0
	for i := first; i < next; i++ {
		name := hostA(i).Question[0].Name
		if _, ok := c.Get(name, dns.TypeA); !ok {
			continue
		}
		kept++
		if _, ok := dst.Get(name, dns.TypeA); !ok {
			t.Errorf("%s, of the last names, not loaded", name)
		}
	}
	if kept == 0 {
		t.Error("the cache kept none of the last names")
	}
	for _, k := range zones {
		if !c.HoldsEntry(k) {
			t.Fatalf("%s evicted before the load", k.Name)
		}
		if !dst.HoldsEntry(k) {
			t.Errorf("%s NS, written last, not loaded", k.Name)
		}
	}
}
