package zonestore_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// rrsetTexts returns the records of one RRset as "rdata ttl" strings, sorted.
func rrsetTexts(z *zone.Zone, owner string, rrtype uint16) []string {
	k, err := zone.WireKey(owner)
	if err != nil {
		return nil
	}
	n := z.Lookup(k)
	if n == nil {
		return nil
	}
	set := n.Get(rrtype)
	if set == nil {
		return nil
	}
	var out []string
	for _, rr := range set.RRs() {
		out = append(out, strings.TrimPrefix(rr.String(), rr.Header().String())+" "+strconv.FormatUint(uint64(rr.Header().Ttl), 10))
	}
	slices.Sort(out)
	return out
}

func TestUpdate(t *testing.T) {
	type rrset struct {
		owner  string
		rrtype uint16
		want   []string // "rdata ttl", sorted; nil: the RRset must not exist
	}
	tests := []struct {
		name       string
		add        []string
		del        []zonestore.Deletion
		delRR      []string // deletions of single records
		wantErr    error    // nil: the change must succeed
		wantSerial uint32
		wantBumped bool
		sets       []rrset
		wantNames  int // 0: not checked
	}{
		{
			name:       "add a record at a new name",
			add:        []string{"new.example. 300 IN A 192.0.2.9"},
			wantSerial: 6, wantBumped: true,
			sets: []rrset{{owner: "new.example.", rrtype: dns.TypeA, want: []string{"192.0.2.9 300"}}},
		},
		{
			name:       "add a record below new empty non-terminals",
			add:        []string{"x.y.z.example. 300 IN TXT \"deep\""},
			wantSerial: 6, wantBumped: true,
			sets:      []rrset{{owner: "x.y.z.example.", rrtype: dns.TypeTXT, want: []string{"\"deep\" 300"}}},
			wantNames: 16,
		},
		{
			name:       "add to an RRset sets its TTL",
			add:        []string{"www.example. 60 IN A 192.0.2.82"},
			wantSerial: 6, wantBumped: true,
			sets: []rrset{
				{owner: "www.example.", rrtype: dns.TypeA, want: []string{"192.0.2.80 60", "192.0.2.81 60", "192.0.2.82 60"}},
				{owner: "www.example.", rrtype: dns.TypeAAAA, want: []string{"2001:db8::80 3600"}},
			},
		},
		{
			name:       "re-adding a record with a new TTL changes the TTL",
			add:        []string{"www.example. 60 IN A 192.0.2.80"},
			wantSerial: 6, wantBumped: true,
			sets: []rrset{{owner: "www.example.", rrtype: dns.TypeA, want: []string{"192.0.2.80 60", "192.0.2.81 60"}}},
		},
		{
			name:    "re-adding an identical record",
			add:     []string{"www.example. 3600 IN A 192.0.2.80"},
			wantErr: zonestore.ErrNoChange,
		},
		{
			name:    "deleting and re-adding a record",
			delRR:   []string{"www.example. 3600 IN A 192.0.2.80"},
			add:     []string{"www.example. 3600 IN A 192.0.2.80"},
			wantErr: zonestore.ErrNoChange,
		},
		{
			name:       "delete one record",
			delRR:      []string{"www.example. 3600 IN A 192.0.2.80"},
			wantSerial: 6, wantBumped: true,
			sets: []rrset{{owner: "www.example.", rrtype: dns.TypeA, want: []string{"192.0.2.81 3600"}}},
		},
		{
			name:       "delete one record whatever its TTL and case",
			delRR:      []string{"WWW.Example. 1 IN A 192.0.2.80"},
			wantSerial: 6, wantBumped: true,
			sets: []rrset{{owner: "www.example.", rrtype: dns.TypeA, want: []string{"192.0.2.81 3600"}}},
		},
		{
			name:       "delete an RRset",
			del:        []zonestore.Deletion{{Name: "www.example.", Type: dns.TypeA}},
			wantSerial: 6, wantBumped: true,
			sets: []rrset{
				{owner: "www.example.", rrtype: dns.TypeA},
				{owner: "www.example.", rrtype: dns.TypeAAAA, want: []string{"2001:db8::80 3600"}},
			},
		},
		{
			name:       "delete an RRset, name in another case",
			del:        []zonestore.Deletion{{Name: "WWW.EXAMPLE.", Type: dns.TypeAAAA}},
			wantSerial: 6, wantBumped: true,
			sets: []rrset{{owner: "www.example.", rrtype: dns.TypeAAAA}},
		},
		{
			name:       "delete an RRset, name not fully qualified",
			del:        []zonestore.Deletion{{Name: "www.example", Type: dns.TypeAAAA}},
			wantSerial: 6, wantBumped: true,
			sets: []rrset{{owner: "www.example.", rrtype: dns.TypeAAAA}},
		},
		{
			name:       "delete a whole name",
			del:        []zonestore.Deletion{{Name: "www.example."}},
			wantSerial: 6, wantBumped: true,
			sets: []rrset{
				{owner: "www.example.", rrtype: dns.TypeA},
				{owner: "www.example.", rrtype: dns.TypeAAAA},
			},
			wantNames: 12,
		},
		{
			name:       "delete a name below empty non-terminals",
			del:        []zonestore.Deletion{{Name: "a.b.c.example."}},
			wantSerial: 6, wantBumped: true,
			wantNames: 10,
		},
		{
			name:       "replace an RRset",
			del:        []zonestore.Deletion{{Name: "www.example.", Type: dns.TypeA}},
			add:        []string{"www.example. 120 IN A 192.0.2.99"},
			wantSerial: 6, wantBumped: true,
			sets: []rrset{{owner: "www.example.", rrtype: dns.TypeA, want: []string{"192.0.2.99 120"}}},
		},
		{
			name:       "new SOA with a higher serial",
			add:        []string{"example. 3600 IN SOA ns1.example. hostmaster.example. 100 7200 900 1209600 60"},
			wantSerial: 100,
			sets: []rrset{{owner: "example.", rrtype: dns.TypeSOA,
				want: []string{"ns1.example. hostmaster.example. 100 7200 900 1209600 60 3600"}}},
		},
		{
			name:       "new SOA with a lower serial is bumped",
			add:        []string{"example. 3600 IN SOA ns1.example. hostmaster.example. 1 7200 900 1209600 60"},
			wantSerial: 6, wantBumped: true,
			sets: []rrset{{owner: "example.", rrtype: dns.TypeSOA,
				want: []string{"ns1.example. hostmaster.example. 6 7200 900 1209600 60 3600"}}},
		},
		{
			name:    "delete a missing record",
			delRR:   []string{"www.example. 3600 IN A 192.0.2.200"},
			wantErr: zonestore.ErrNotFound,
		},
		{
			name:    "delete a missing RRset",
			del:     []zonestore.Deletion{{Name: "www.example.", Type: dns.TypeMX}},
			wantErr: zonestore.ErrNotFound,
		},
		{
			name:    "delete a missing name",
			del:     []zonestore.Deletion{{Name: "nope.example."}},
			wantErr: zonestore.ErrNotFound,
		},
		{
			name:    "one of two deletions misses",
			del:     []zonestore.Deletion{{Name: "www.example.", Type: dns.TypeA}, {Name: "nope.example."}},
			wantErr: zonestore.ErrNotFound,
		},
		{
			name:    "delete an empty non-terminal",
			del:     []zonestore.Deletion{{Name: "b.c.example."}},
			wantErr: zonestore.ErrNotFound,
		},
		{
			name:    "CNAME next to data",
			add:     []string{"www.example. 3600 IN CNAME mail.example."},
			wantErr: zone.ErrCNAMEConflict,
		},
		{
			name:    "data next to a CNAME",
			add:     []string{"alias.example. 3600 IN TXT \"x\""},
			wantErr: zone.ErrCNAMEConflict,
		},
		{
			name:    "delete the apex NS",
			del:     []zonestore.Deletion{{Name: "example.", Type: dns.TypeNS}},
			wantErr: zone.ErrNoApexNS,
		},
		{
			name:    "delete every apex record",
			del:     []zonestore.Deletion{{Name: "example."}},
			wantErr: zone.ErrNoApexNS,
		},
		{
			name:    "delete the SOA",
			del:     []zonestore.Deletion{{Name: "example.", Type: dns.TypeSOA}},
			wantErr: zone.ErrNoSOA,
		},
		{
			name:    "delete the SOA record",
			delRR:   []string{"example. 3600 IN SOA ns1.example. hostmaster.example. 5 7200 900 1209600 300"},
			wantErr: zone.ErrNoSOA,
		},
		{
			name:    "add outside the zone",
			add:     []string{"www.example.com. 3600 IN A 192.0.2.1"},
			wantErr: zone.ErrOutOfZone,
		},
		{
			name:    "add below a delegation",
			add:     []string{"x.sub.example. 3600 IN TXT \"occluded\""},
			wantErr: zone.ErrOccluded,
		},
		{
			name:    "good and bad in one change",
			add:     []string{"fine.example. 3600 IN A 192.0.2.1", "alias.example. 3600 IN A 192.0.2.2"},
			wantErr: zone.ErrCNAMEConflict,
		},
		{
			name:    "empty change",
			wantErr: zonestore.ErrNoChange,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, zonestore.Options{})
			mustImport(t, s, baseZone)
			before := export(t, load(t, s, "example."))
			var published int
			s.Subscribe(func(string, *zone.Zone) { published++ })

			var c zonestore.Change
			for _, a := range tc.add {
				c.Add = append(c.Add, mustRR(t, a))
			}
			c.Delete = append(c.Delete, tc.del...)
			for _, d := range tc.delRR {
				c.Delete = append(c.Delete, zonestore.Deletion{RR: mustRR(t, d)})
			}
			res, err := s.Update("example.", c)

			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				if published != 0 {
					t.Error("a refused change was published")
				}
				checkUnchanged(t, s, before)
				return
			}
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if res.Serial != tc.wantSerial || res.Bumped != tc.wantBumped || res.OldSerial != 5 {
				t.Errorf("serial %d bumped %v (old %d), want %d, %v", res.Serial, res.Bumped, res.OldSerial, tc.wantSerial, tc.wantBumped)
			}
			if published != 1 {
				t.Errorf("published %d times, want once", published)
			}
			z := load(t, s, "example.")
			if res.Zone != z || res.Records != z.Len() {
				t.Errorf("result zone %p (%d records), loaded %p (%d)", res.Zone, res.Records, z, z.Len())
			}
			for _, set := range tc.sets {
				if got := rrsetTexts(z, set.owner, set.rrtype); !slices.Equal(got, set.want) {
					t.Errorf("%s %s = %q, want %q", set.owner, dns.Type(set.rrtype), got, set.want)
				}
			}
			if tc.wantNames != 0 && z.Names() != tc.wantNames {
				t.Errorf("%d names, want %d", z.Names(), tc.wantNames)
			}
			// What was committed is what the cache holds.
			want := export(t, z)
			path := s.Path()
			s.Close()
			s2 := openAt(t, path, zonestore.Options{})
			z2 := load(t, s2, "example.")
			if got := export(t, z2); got != want {
				t.Errorf("stored zone differs from the committed one:\n%s\nvs\n%s", got, want)
			}
			if z2.Names() != z.Names() {
				t.Errorf("stored zone has %d names, committed %d", z2.Names(), z.Names())
			}
		})
	}
}

// checkUnchanged checks that the zone, both cached and on disk, still
// exports as before.
func checkUnchanged(t *testing.T, s *zonestore.Store, before string) {
	t.Helper()
	if after := export(t, load(t, s, "example.")); after != before {
		t.Errorf("zone changed:\n%s\nvs\n%s", before, after)
	}
	path := s.Path()
	s.Close()
	s2 := openAt(t, path, zonestore.Options{})
	if after := export(t, load(t, s2, "example.")); after != before {
		t.Errorf("stored zone changed:\n%s\nvs\n%s", before, after)
	}
}

func TestUpdateMissingZone(t *testing.T) {
	s := openStore(t, zonestore.Options{})
	_, err := s.Update("example.", zonestore.Change{Add: []dns.RR{mustRR(t, "www.example. 60 IN A 192.0.2.1")}})
	if !errors.Is(err, zonestore.ErrNoZone) {
		t.Errorf("error %v, want ErrNoZone", err)
	}
}

func TestUpdateSerialDatePolicy(t *testing.T) {
	s := openStore(t, zonestore.Options{SerialPolicy: zonestore.SerialDate, Now: fixedClock(t, "2024-03-01T12:00:00Z")})
	mustImport(t, s, baseZone)
	for i, want := range []uint32{2024030100, 2024030101, 2024030102} {
		rr := mustRR(t, "h"+strconv.Itoa(i)+".example. 60 IN A 192.0.2.1")
		res, err := s.Update("example.", zonestore.Change{Add: []dns.RR{rr}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Serial != want {
			t.Errorf("update %d: serial %d, want %d", i, res.Serial, want)
		}
	}
}

func TestUpdateDeletesCoveringSigs(t *testing.T) {
	s := openStore(t, zonestore.Options{})
	mustImport(t, s, baseZone+"signed IN A 192.0.2.7\nsigned IN TXT \"t\"\nsigned IN RRSIG A 8 2 3600 20300101000000 20200101000000 12345 example. dGVzdA==\nsigned IN RRSIG TXT 8 2 3600 20300101000000 20200101000000 12345 example. dGVzdA==\n")
	res, err := s.Update("example.", zonestore.Change{Delete: []zonestore.Deletion{{Name: "signed.example.", Type: dns.TypeA}}})
	if err != nil {
		t.Fatalf("deleting a signed RRset: %v", err)
	}
	n := res.Zone.Lookup(wireKey(t, "signed.example."))
	if n == nil || n.Get(dns.TypeA) != nil || n.Get(dns.TypeTXT) == nil || len(n.Get(dns.TypeTXT).Sigs()) != 1 {
		t.Errorf("after deleting signed A: node %+v", n)
	}
}

// TestUpdateLeavesCallerRecords checks that Update does not rewrite records
// of the zone being served, which readers may hold.
func TestUpdateLeavesServedRecords(t *testing.T) {
	s := openStore(t, zonestore.Options{})
	mustImport(t, s, baseZone)
	old := load(t, s, "example.")
	oldText := recordTexts(old)
	if _, err := s.Update("example.", zonestore.Change{Add: []dns.RR{mustRR(t, "www.example. 5 IN A 192.0.2.82")}}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recordTexts(old), oldText) {
		t.Error("Update changed records of the previous zone")
	}
}

func TestDeletionString(t *testing.T) {
	tests := []struct {
		d    zonestore.Deletion
		want string
	}{
		{d: zonestore.Deletion{Name: "www.example."}, want: "www.example. (all records)"},
		{d: zonestore.Deletion{Name: "www.example.", Type: dns.TypeA}, want: "www.example. A"},
		{d: zonestore.Deletion{RR: &dns.A{Hdr: dns.RR_Header{Name: "www.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, 1}}}, want: "www.example. A 192.0.2.1"},
	}
	for _, tc := range tests {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}
