package zonestore_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/zonetest"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// writeBigZone writes a zone of SOA, NS and n data records, each at its own
// name, cycling through A, AAAA, MX and TXT.
func writeBigZone(tb testing.TB, path string, n int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprint(w, "$ORIGIN example.\n$TTL 3600\n@ IN SOA ns1.example.net. hostmaster.example. 1 7200 900 1209600 300\n@ IN NS ns1.example.net.\n")
	for i := range n {
		switch i % 4 {
		case 0:
			fmt.Fprintf(w, "h%d IN A 192.0.2.%d\n", i, i%254+1)
		case 1:
			fmt.Fprintf(w, "h%d IN AAAA 2001:db8::%x\n", i, i%65535+1)
		case 2:
			fmt.Fprintf(w, "h%d IN MX 10 h%d\n", i, i-2)
		case 3:
			fmt.Fprintf(w, "h%d IN TXT \"record %d\"\n", i, i)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkImport1M times the whole import path for a zone of a million
// records: parse the master file, build the zone, commit it to a new store.
func BenchmarkImport1M(b *testing.B) {
	if testing.Short() {
		b.Skip("a million records take a while; not in -short mode")
	}
	const records = 1_000_000
	dir := b.TempDir()
	src := filepath.Join(dir, "big.zone")
	writeBigZone(b, src, records)

	var parse, build, store time.Duration
	i := 0
	for b.Loop() {
		t0 := time.Now()
		p, err := zonestore.ParseFile(src, "example.")
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		z, err := p.Build()
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		db := filepath.Join(dir, fmt.Sprintf("store%d.db", i))
		s, err := zonestore.Open(db, zonestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Import(z, false); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		parse, build, store = parse+t1.Sub(t0), build+t2.Sub(t1), store+t3.Sub(t2)
		if z.Len() != records+2 {
			b.Fatalf("%d records in the zone", z.Len())
		}
		b.StopTimer()
		os.Remove(db)
		i++
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(float64(records+2)*n/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(parse.Seconds()/n, "parse-s/op")
	b.ReportMetric(build.Seconds()/n, "build-s/op")
	b.ReportMetric(store.Seconds()/n, "import-s/op")
}

// bigZoneOf builds the zone writeBigZone writes, of n data records.
func bigZoneOf(b *testing.B, n int) *zone.Zone {
	b.Helper()
	src := filepath.Join(b.TempDir(), "big.zone")
	writeBigZone(b, src, n)
	p, err := zonestore.ParseFile(src, "example.")
	if err != nil {
		b.Fatal(err)
	}
	z, err := p.Build()
	if err != nil {
		b.Fatal(err)
	}
	return z
}

// bigStore opens a new store holding bigZoneOf(n), closed at the end.
func bigStore(b *testing.B, n int) *zonestore.Store {
	b.Helper()
	s, err := zonestore.Open(filepath.Join(b.TempDir(), "store.db"), zonestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if _, err := s.Import(bigZoneOf(b, n), false); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkEdit100k times one live edit of a 100,002-record zone: the
// change applied and validated at the touched names, the new version made,
// the touched names and the journal entry committed (fsync included), as a
// `record add` or an UPDATE does.
func BenchmarkEdit100k(b *testing.B) {
	s := bigStore(b, 100_000)
	i := 0
	for b.Loop() {
		rr := mustRR(b, fmt.Sprintf("edit%d.example. 300 IN A 192.0.2.1", i))
		if _, err := s.As("bench").Update("example.", zonestore.Change{Add: []dns.RR{rr}}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	h, err := s.History("example.", 1)
	if err != nil || len(h) != 1 || len(h[0].Added) != 1 {
		b.Fatalf("last journal entry: %+v, %v", h, err)
	}
}

// BenchmarkEditSigned times one live edit of a zone signed with NSEC3
// (100,000 and 1,000,000 data records, one per name): the change checked,
// the changed RRsets and the NSEC3 records around the new name signed, the
// changed names and the journal entry committed, fsync included.
func BenchmarkEditSigned(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			if n > 100_000 && testing.Short() {
				b.Skip("a million signed records take a while; not in -short mode")
			}
			s := bigStore(b, n)
			pol := dnssec.DefaultPolicy()
			pol.Denial = dnssec.DenialNSEC3
			if _, err := s.EnableDNSSEC("example.", pol); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				rr := mustRR(b, fmt.Sprintf("edit%d.example. 300 IN A 192.0.2.1", i))
				if _, err := s.As("bench").Update("example.", zonestore.Change{Add: []dns.RR{rr}}); err != nil {
					b.Fatal(err)
				}
				i++
			}
			h, err := s.History("example.", 1)
			// The A record, the new NSEC3 record, the predecessor's NSEC3
			// record and the RRSIGs of those three and of the SOA.
			if err != nil || len(h) != 1 || len(h[0].Added) != 7 {
				b.Fatalf("last journal entry: %d records added, %v", len(h[0].Added), err)
			}
		})
	}
}

// BenchmarkSignZone100k times signing a 100,002-record zone with NSEC3
// from scratch in the store (dnssec enable): the signatures, the chain, the
// signed zone written and journaled.
func BenchmarkSignZone100k(b *testing.B) {
	dir := b.TempDir()
	z := bigZoneOf(b, 100_000)
	pol := dnssec.DefaultPolicy()
	pol.Denial = dnssec.DenialNSEC3
	i := 0
	for b.Loop() {
		b.StopTimer()
		s, err := zonestore.Open(filepath.Join(dir, fmt.Sprintf("store%d.db", i)), zonestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Import(z, false); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.EnableDNSSEC("example.", pol); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		i++
		b.StartTimer()
	}
}

// BenchmarkImportManySmall imports 2,000 small zones (one batch) into a new
// store per iteration: the bulk import's write path at registry scale. Its
// bytes per operation hold the cost of a small zone's values near its size.
func BenchmarkImportManySmall(b *testing.B) {
	zs := make([]*zone.Zone, 2000)
	for i := range zs {
		zs[i] = smallZone(b, fmt.Sprintf("z%d.test.", i), 1)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		st, err := zonestore.Open(filepath.Join(b.TempDir(), "zones.db"), zonestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, r := range st.ImportMany(zs, false, nil) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		b.StopTimer()
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(zs)), "ns/zone")
}

// institutionZone builds the i-th institution zone (zonetest.Institution).
func institutionZone(tb testing.TB, i int) *zone.Zone {
	tb.Helper()
	origin := fmt.Sprintf("z%d.gov.test.", i)
	text := zonetest.Institution(i)
	p, err := zonestore.Parse(strings.NewReader(text), origin, origin+"zone", nil)
	if err != nil {
		tb.Fatal(err)
	}
	z, err := p.Build()
	if err != nil {
		tb.Fatal(err)
	}
	return z
}

// BenchmarkLoadedZoneMemory reports the live heap and the heap objects a
// small zone costs once read from the store, as a starting server reads
// every zone (what a node of 100,000 such zones holds), and what reading
// it allocated in all (what the collector has to take back).
func BenchmarkLoadedZoneMemory(b *testing.B) {
	const zones = 2000
	path := filepath.Join(b.TempDir(), "zones.db")
	st, err := zonestore.Open(path, zonestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	zs := make([]*zone.Zone, zones)
	for i := range zs {
		zs[i] = institutionZone(b, i)
	}
	for _, r := range st.ImportMany(zs, false, nil) {
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	zs = nil
	var perZone, objects, made float64
	var kept [][]*zone.Zone // every pass's zones: none is collected while the next is measured
	for b.Loop() {
		st, err := zonestore.Open(path, zonestore.Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		held, err := st.LoadAll()
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perZone = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / zones
		objects = float64(int64(after.HeapObjects)-int64(before.HeapObjects)) / zones
		made = float64(after.TotalAlloc-before.TotalAlloc) / zones
		kept = append(kept, held)
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(perZone, "B/zone")
	b.ReportMetric(objects, "objects/zone")
	b.ReportMetric(made, "allocated-B/zone")
}
