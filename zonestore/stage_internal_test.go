package zonestore

import (
	"fmt"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/zone"
)

// largeZoneText is a zone of more than largeZone records.
func largeZoneText(origin string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n", origin)
	for i := range largeZone/2 + 10 {
		fmt.Fprintf(&b, "h%d A 10.%d.%d.%d\nh%d TXT \"host %d\"\n", i, i>>16&255, i>>8&255, i&255, i, i)
	}
	return b.String()
}

// buildText builds the zone in text.
func buildText(t *testing.T, text, origin string) *zone.Zone {
	t.Helper()
	p, err := Parse(strings.NewReader(text), origin, origin, nil)
	if err != nil {
		t.Fatal(err)
	}
	z, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// TestStagedWrite: a large zone signed whole has its names written ahead
// a slice per transaction and moved into place; what the file holds then
// reads back as exactly the zone signed, and nothing stays staged.
func TestStagedWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	z := buildText(t, largeZoneText("big.example."), "big.example.")
	if _, err := s.Import(z, false); err != nil {
		t.Fatal(err)
	}
	res, err := s.EnableDNSSEC("big.example.", dnssec.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if res.Records < largeZone {
		t.Fatalf("signed zone of %d records: not large enough to be staged", res.Records)
	}
	staged := true
	_ = s.db.View(func(tx *bolt.Tx) error {
		staged = tx.Bucket(bucketStaging) != nil && tx.Bucket(bucketStaging).Stats().KeyN > 0
		return nil
	})
	if staged {
		t.Error("names left in the staging bucket after the write")
	}
	want := records(res.Zone)
	s.Close()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	back, err := s.Load("big.example.")
	if err != nil {
		t.Fatal(err)
	}
	if got := records(back); !slices.Equal(got, want) {
		t.Errorf("the zone read back differs from the one signed: %d records, want %d", len(got), len(want))
	}
}

func records(z *zone.Zone) []string {
	var out []string
	for _, rr := range z.Records() {
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

// TestStagingLeftOverGoes: names staged by a write that never finished
// (a crash between the staging transactions and the last) are dropped
// when the store opens, and the zone is as it was.
func TestStagingLeftOverGoes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	z := buildText(t, "$ORIGIN small.example.\n@ 3600 SOA ns hm 1 7200 900 1209600 300\n@ 3600 NS ns\nns 3600 A 192.0.2.1\n", "small.example.")
	if _, err := s.Import(z, false); err != nil {
		t.Fatal(err)
	}
	bz := buildText(t, largeZoneText("small.example."), "small.example.")
	if ok, err := s.stageNames(bz, false); err != nil || !ok {
		t.Fatalf("stageNames: %v %v", ok, err)
	}
	s.Close() // as a crash would leave it: staged, never moved
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketStaging) != nil {
			t.Error("the staging bucket survived the open")
		}
		return nil
	})
	if back, err := s.Load("small.example."); err != nil || back.Len() != 3 {
		t.Errorf("zone after the left-over staging: %v records, %v", back, err)
	}
}

// TestWriteCap: the memory limit is set just above the live heap while
// large writes run, shared by writes at once, never raised above a lower
// limit, and given back after the last.
func TestWriteCap(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(orig)
	current := func() int64 { return debug.SetMemoryLimit(-1) }
	c := &core{}
	end1 := c.writeCap()
	capped := current()
	if capped >= orig || capped < writeHeadroom {
		t.Fatalf("during a write the limit is %d (before %d)", capped, orig)
	}
	end2 := c.writeCap()
	end1()
	if current() != capped {
		t.Error("the cap was lifted while a second write runs")
	}
	end2()
	if current() != orig {
		t.Errorf("after the writes the limit is %d, want %d", current(), orig)
	}
	debug.SetMemoryLimit(writeHeadroom / 2)
	end := c.writeCap()
	if current() != writeHeadroom/2 {
		t.Errorf("a lower limit was raised to %d", current())
	}
	end()
	if current() != writeHeadroom/2 {
		t.Errorf("after the write the limit is %d, want %d", current(), writeHeadroom/2)
	}
}
