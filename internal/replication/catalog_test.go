package replication

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

const testCatalog = "catalog.test."

// catalogText is a catalog zone of serial listing members ("id member").
func catalogText(serial uint32, members ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 0\n@ SOA invalid. invalid. %d 3600 600 2419200 0\n@ NS invalid.\nversion TXT \"2\"\n", testCatalog, serial)
	for _, m := range members {
		id, name, _ := strings.Cut(m, " ")
		fmt.Fprintf(&b, "%s.zones PTR %s\n", id, name)
	}
	return b.String()
}

// TestCatalogMembers checks what a consumer reads from a catalog zone.
func TestCatalogMembers(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		want     map[string]string
		wantDups []string
		wantErr  bool
	}{
		{
			name: "two members",
			text: catalogText(1, "m1 a.test.", "m2 B.Test."),
			want: map[string]string{"a.test.": "m1", "b.test.": "m2"},
		},
		{
			name: "no members",
			text: catalogText(1),
			want: map[string]string{},
		},
		{
			name: "properties and custom properties are ignored",
			text: catalogText(1, "m1 a.test.") + "group.m1.zones TXT \"g\"\ncoo.m1.zones PTR other.catalog.\nserial.ext TXT \"x\"\nx.y.zones TXT \"deep\"\n",
			want: map[string]string{"a.test.": "m1"},
		},
		{
			name:     "a member listed twice",
			text:     catalogText(1, "m1 a.test.", "m2 a.test."),
			want:     map[string]string{"a.test.": "m1"},
			wantDups: []string{"a.test."},
		},
		{
			name:    "no version",
			text:    strings.Replace(catalogText(1, "m1 a.test."), "version TXT \"2\"\n", "", 1),
			wantErr: true,
		},
		{
			name:    "version 1",
			text:    strings.Replace(catalogText(1, "m1 a.test."), "version TXT \"2\"", "version TXT \"1\"", 1),
			wantErr: true,
		},
		{
			name:    "two versions",
			text:    catalogText(1, "m1 a.test.") + "version TXT \"3\"\n",
			wantErr: true,
		},
		{
			name:    "two PTRs at a member node",
			text:    catalogText(1, "m1 a.test.", "m1 b.test."),
			wantErr: true,
		},
		{
			name:    "two PTRs in a coo property",
			text:    catalogText(1, "m1 a.test.") + "coo.m1.zones PTR c1.test.\ncoo.m1.zones PTR c2.test.\n",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := buildZone(t, testCatalog, tt.text)
			got, dups, err := catalogMembers(z)
			if tt.wantErr {
				if !errors.Is(err, errBrokenCatalog) {
					t.Fatalf("err %v, want %v", err, errBrokenCatalog)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("members %v, want %v", got, tt.want)
			}
			if !slices.Equal(dups, tt.wantDups) {
				t.Errorf("duplicates %v, want %v", dups, tt.wantDups)
			}
		})
	}
}

// TestMemberIDs: ids are stable, distinct and valid labels.
func TestMemberIDs(t *testing.T) {
	a := memberIDs([]string{"a.test.", "b.test.", "C.test"})
	b := memberIDs([]string{"c.test.", "a.test."})
	if a["a.test."] != b["a.test."] || a["c.test."] != b["c.test."] {
		t.Errorf("ids change with the other members: %v, %v", a, b)
	}
	if len(a) != 3 || a["a.test."] == a["b.test."] || len(a["a.test."]) != 16 {
		t.Errorf("ids %v", a)
	}
	z, err := buildCatalog(testCatalog, 7, a)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := catalogMembers(z)
	if err != nil || !maps.Equal(got, a) {
		t.Errorf("the built catalog reads back as %v, %v; want %v", got, err, a)
	}
}

// TestCatalogProducer: the catalog lists the primary zones and follows
// their creation and deletion, not their edits.
func TestCatalogProducer(t *testing.T) {
	tn := newTestNode(t, Config{Catalog: testCatalog})
	for _, o := range []string{"a.test.", "b.test."} {
		if _, err := tn.store.Import(buildZone(t, o, fmt.Sprintf("$ORIGIN %s\n@ 300 SOA ns h 1 1 1 1 1\n@ 300 NS ns\nns 300 A 192.0.2.1\n", o)), false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tn.store.PutTransfer(buildZone(t, "sec.test.", "$ORIGIN sec.test.\n@ 300 SOA ns h 1 1 1 1 1\n@ 300 NS ns\nns 300 A 192.0.2.1\n"), "192.0.2.53:53"); err != nil {
		t.Fatal(err)
	}
	tn.run(t)
	members := func() map[string]string {
		z, err := tn.store.Load(testCatalog)
		if err != nil {
			return nil
		}
		m, _, err := catalogMembers(z)
		if err != nil {
			t.Fatalf("the published catalog is broken: %v", err)
		}
		return m
	}
	waitFor(t, 10*time.Second, "the catalog", func() bool { return len(members()) == 2 })
	if got, want := members(), memberIDs([]string{"a.test.", "b.test."}); !maps.Equal(got, want) {
		t.Errorf("members %v, want %v", got, want)
	}
	h, err := tn.store.History(testCatalog, 1)
	if err != nil || len(h) != 1 || h[0].Author != catalogAuthor {
		t.Errorf("history %+v, %v; want an entry by %q", h, err, catalogAuthor)
	}
	if m, _ := tn.store.Meta(testCatalog); m.Kind != zonestore.KindPrimary {
		t.Errorf("the catalog is a %s zone", m.Kind)
	}

	if _, err := tn.store.Import(buildZone(t, "c.test.", "$ORIGIN c.test.\n@ 300 SOA ns h 1 1 1 1 1\n@ 300 NS ns\nns 300 A 192.0.2.1\n"), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "c.test in the catalog", func() bool { return len(members()) == 3 })
	// A new member is one edit of the catalog: its PTR, and nothing else.
	h, err = tn.store.History(testCatalog, 1)
	if err != nil || len(h) != 1 || h[0].Summary || len(h[0].Removed) != 0 || len(h[0].Added) != 1 ||
		h[0].Added[0].(*dns.PTR).Ptr != "c.test." || h[0].Op != zonestore.OpEdit {
		t.Errorf("the catalog's last change %+v, %v; want one PTR to c.test. added by an edit", h, err)
	}
	if err := tn.store.Delete("a.test."); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a.test out of the catalog", func() bool { _, ok := members()["a.test."]; return !ok })
	if h, err := tn.store.History(testCatalog, 1); err != nil || len(h) != 1 || len(h[0].Added) != 0 ||
		len(h[0].Removed) != 1 || h[0].Removed[0].(*dns.PTR).Ptr != "a.test." {
		t.Errorf("the catalog's last change %+v, %v; want one PTR to a.test. removed", h, err)
	}
	if got, want := members(), memberIDs([]string{"b.test.", "c.test."}); !maps.Equal(got, want) {
		t.Errorf("members %v, want %v", got, want)
	}
	serial := tn.serial(testCatalog)
	if _, err := tn.store.Update("b.test.", zonestore.Change{Add: parseRRs(t, "b.test.", "www.b.test. 300 A 192.0.2.80")}); err != nil {
		t.Fatal(err)
	}
	// The producer hears of commits in order and handles them one at a
	// time: once a zone created after the edit is in the catalog, whatever
	// the edit made the producer do is done. Only that creation may have
	// changed the catalog, by one version.
	if _, err := tn.store.Import(buildZone(t, "d.test.", "$ORIGIN d.test.\n@ 300 SOA ns h 1 1 1 1 1\n@ 300 NS ns\nns 300 A 192.0.2.1\n"), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "d.test in the catalog", func() bool { _, ok := members()["d.test."]; return ok })
	if got, want := members(), memberIDs([]string{"b.test.", "c.test.", "d.test."}); !maps.Equal(got, want) {
		t.Errorf("members %v, want %v", got, want)
	}
	if got := tn.serial(testCatalog); got != serial+1 {
		t.Errorf("catalog serial %d → %d after an edit of a member and one new zone; want %d: the edit changed the catalog", serial, got, serial+1)
	}
	serial = tn.serial(testCatalog)

	// Another catalog name: the old catalog stays, and is no member.
	const next = "next.catalog.test."
	tn.n.Reconfigure(Config{Catalog: next, Keys: tn.n.config().Keys})
	waitFor(t, 10*time.Second, "the new catalog", func() bool { return tn.serial(next) != 0 })
	z, err := tn.store.Load(next)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := catalogMembers(z); err != nil || !maps.Equal(got, memberIDs([]string{"b.test.", "c.test.", "d.test."})) {
		t.Errorf("members of the new catalog %v, %v", got, err)
	}
	if tn.serial(testCatalog) != serial {
		t.Errorf("the old catalog changed")
	}
}

// TestCatalogConsumer: the members of a consumed catalog become secondary
// zones; removed members are deleted, reset members transferred afresh,
// and a broken catalog changes nothing.
func TestCatalogConsumer(t *testing.T) {
	member := func(o string, serial uint32) *zone.Zone {
		return buildZone(t, o, fmt.Sprintf("$ORIGIN %s\n@ 300 SOA ns h %d 3600 600 86400 300\n@ 300 NS ns\nns 300 A 192.0.2.1\n", o, serial))
	}
	f := newFakePrimary(t, testKey)
	f.set(testCatalog, &fakeZone{versions: []*zone.Zone{buildZone(t, testCatalog, catalogText(1, "m1 a.test.", "m2 b.test.", "m3 mine.test."))}})
	for _, o := range []string{"a.test.", "b.test.", "c.test.", "mine.test."} {
		f.set(o, &fakeZone{versions: []*zone.Zone{member(o, 10)}})
	}
	cat := SecondaryZone{Zone: testCatalog, Primaries: []Target{{Addr: f.addr, Key: testKey}}, Key: testKey, Catalog: true}
	tn := newTestNode(t, Config{Secondaries: []SecondaryZone{cat}})
	// mine.test is a primary zone here: the catalog does not replace it.
	if _, err := tn.store.Import(member("mine.test.", 1), false); err != nil {
		t.Fatal(err)
	}
	tn.n.secondary.t.startSpread = 0
	tn.run(t)
	waitFor(t, 10*time.Second, "the members", func() bool { return tn.serial("a.test.") == 10 && tn.serial("b.test.") == 10 })
	if m, err := tn.store.Meta("a.test."); err != nil || m.Kind != zonestore.KindSecondary || m.Source != f.addr.String() {
		t.Errorf("a.test meta %+v, %v", m, err)
	}
	if tn.serial("mine.test.") != 1 {
		t.Errorf("the primary zone mine.test was replaced")
	}
	// A member answers NOTIFY from the catalog's primaries, with its key.
	req := new(dns.Msg)
	req.SetNotify("a.test.")
	if r := tn.n.Notify(t.Context(), req, server.Peer{Addr: netip.AddrPortFrom(f.addr.Addr(), 1053), Key: testKey}); r.Rcode != dns.RcodeSuccess {
		t.Errorf("NOTIFY for a member: %s", dns.RcodeToString[r.Rcode])
	}

	notify := func() {
		t.Helper()
		req := new(dns.Msg)
		req.SetNotify(testCatalog)
		if r := tn.n.Notify(t.Context(), req, server.Peer{Addr: f.addr, Key: testKey}); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("NOTIFY for the catalog: %s", dns.RcodeToString[r.Rcode])
		}
	}
	// A broken catalog (two PTRs at one member node) is refused.
	f.update(testCatalog, buildZone(t, testCatalog, catalogText(2, "m1 a.test.", "m1 c.test.", "m2 b.test.")))
	notify()
	waitFor(t, 10*time.Second, "the broken catalog refused", func() bool {
		return invalidTransfers(tn, testCatalog) > 0
	})
	if tn.serial(testCatalog) != 1 || tn.serial("c.test.") != 0 {
		t.Fatalf("the broken catalog was applied: catalog serial %d, c.test serial %d", tn.serial(testCatalog), tn.serial("c.test."))
	}

	// b.test removed, a.test reset (new id), c.test added.
	f.update(testCatalog, buildZone(t, testCatalog, catalogText(3, "m9 a.test.", "m3 c.test.")))
	f.update("a.test.", member("a.test.", 5)) // a reset member may go back in serial
	notify()
	waitFor(t, 10*time.Second, "the catalog change", func() bool {
		return tn.serial(testCatalog) == 3 && tn.serial("b.test.") == 0 && tn.serial("c.test.") == 10 && tn.serial("a.test.") == 5
	})
	if v, _ := tn.served.Load("b.test."); v != uint32(0) {
		t.Errorf("the removed member is still served (serial %v)", v)
	}
	if r := tn.n.Notify(t.Context(), func() *dns.Msg { m := new(dns.Msg); m.SetNotify("b.test."); return m }(),
		server.Peer{Addr: f.addr, Key: testKey}); r.Rcode != dns.RcodeNotAuth {
		t.Errorf("NOTIFY for a removed member: %s", dns.RcodeToString[r.Rcode])
	}
}

// invalidTransfers counts the transfers of origin refused as invalid.
func invalidTransfers(tn *testNode, origin string) float64 {
	return testutil.ToFloat64(tn.m.TransfersIn.WithLabelValues(origin, "AXFR", xfrInvalid)) +
		testutil.ToFloat64(tn.m.TransfersIn.WithLabelValues(origin, "IXFR", xfrInvalid))
}

// memberIDs gives each member its unique id (see newID), in canonical
// order of the members.
func memberIDs(members []string) map[string]string {
	sorted := slices.Clone(members)
	zone.SortCanonical(sorted)
	ids := make(map[string]string, len(sorted))
	used := make(map[string]bool, len(sorted))
	for _, m := range sorted {
		ids[zone.Fqdn(m)] = newID(m, used)
	}
	return ids
}

// changedKeys gives the wire keys of the names whose records differ
// between a and b, as an incremental transfer reports them.
func changedKeys(t *testing.T, a, b *zone.Zone) map[string]bool {
	t.Helper()
	removed, added := zonestore.Diff(a, b)
	keys := map[string]bool{}
	for _, rr := range slices.Concat(removed, added) {
		k, err := zone.WireKey(rr.Header().Name)
		if err != nil {
			t.Fatal(err)
		}
		keys[k] = true
	}
	return keys
}

// TestCatalogChanges checks what a consumer reads from the names an
// incremental transfer of a catalog changed.
func TestCatalogChanges(t *testing.T) {
	base := []string{"m1 a.test.", "m2 b.test."}
	tests := []struct {
		name                   string
		next                   []string
		extra                  string // lines added to the new version
		wantRemoved, wantAdded map[string]string
		wantErr                bool
	}{
		{name: "member added", next: []string{"m1 a.test.", "m2 b.test.", "m3 c.test."},
			wantRemoved: map[string]string{}, wantAdded: map[string]string{"m3": "c.test."}},
		{name: "member removed", next: []string{"m1 a.test."},
			wantRemoved: map[string]string{"m2": "b.test."}, wantAdded: map[string]string{}},
		{name: "member reset", next: []string{"m1 a.test.", "m9 b.test."},
			wantRemoved: map[string]string{"m2": "b.test."}, wantAdded: map[string]string{"m9": "b.test."}},
		{name: "entry renamed", next: []string{"m1 a.test.", "m2 c.test."},
			wantRemoved: map[string]string{"m2": "b.test."}, wantAdded: map[string]string{"m2": "c.test."}},
		{name: "property only", next: base, extra: "group.m1.zones TXT \"x\"\n",
			wantRemoved: map[string]string{}, wantAdded: map[string]string{}},
		{name: "two PTRs at a changed member node", next: []string{"m1 a.test.", "m2 b.test.", "m3 c.test.", "m3 d.test."}, wantErr: true},
		{name: "two coo PTRs", next: base, extra: "coo.m1.zones PTR x.test.\ncoo.m1.zones PTR y.test.\n", wantErr: true},
		{name: "version changed", next: base, extra: "version TXT \"1\"\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := buildZone(t, testCatalog, catalogText(1, base...))
			z := buildZone(t, testCatalog, catalogText(2, tt.next...)+tt.extra)
			changed := changedKeys(t, cur, z)
			removed, added, err := catalogChanges(cur, z, changed)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error; removed %v, added %v", removed, added)
				}
				if !errors.Is(err, errBrokenCatalog) {
					t.Errorf("error %v is not errBrokenCatalog", err)
				}
				// The whole reading agrees.
				if _, _, err := catalogMembers(z); err == nil {
					t.Errorf("catalogMembers accepts what catalogChanges refuses")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(removed, tt.wantRemoved) || !maps.Equal(added, tt.wantAdded) {
				t.Errorf("removed %v added %v, want %v and %v", removed, added, tt.wantRemoved, tt.wantAdded)
			}
		})
	}
}

// TestApplyCatalogChanges: the members held for a catalog follow an
// incremental transfer without a reading of the whole catalog, except
// when a changed entry names a member listed under another id too.
func TestApplyCatalogChanges(t *testing.T) {
	tests := []struct {
		name      string
		cur, next []string
		wantDone  bool
		want      map[string]string
	}{
		{name: "added and removed", cur: []string{"m1 a.test.", "m2 b.test."}, next: []string{"m1 a.test.", "m3 c.test."},
			wantDone: true, want: map[string]string{"a.test.": "m1", "c.test.": "m3"}},
		{name: "reset", cur: []string{"m1 a.test."}, next: []string{"m9 a.test."},
			wantDone: true, want: map[string]string{"a.test.": "m9"}},
		{name: "a new entry for a member already listed", cur: []string{"m1 a.test."}, next: []string{"m1 a.test.", "m2 a.test."},
			want: map[string]string{"a.test.": "m1"}},
		{name: "a listed twice loses its first entry", cur: []string{"m1 a.test.", "m2 a.test."}, next: []string{"m2 a.test."},
			want: map[string]string{"a.test.": "m1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat := SecondaryZone{Zone: testCatalog, Primaries: []Target{{Addr: netip.MustParseAddrPort("127.0.0.2:53")}}, Catalog: true}
			tn := newTestNode(t, Config{Secondaries: []SecondaryZone{cat}})
			s := tn.n.secondary
			cur := buildZone(t, testCatalog, catalogText(1, tt.cur...))
			members, dups, err := catalogMembers(cur)
			if err != nil {
				t.Fatal(err)
			}
			s.members[testCatalog] = members
			s.dups[testCatalog] = setOf(dups)
			z := buildZone(t, testCatalog, catalogText(2, tt.next...))
			done := s.applyCatalogChanges(testCatalog, cur, z, changedKeys(t, cur, z))
			if done != tt.wantDone {
				t.Fatalf("applied incrementally: %v, want %v", done, tt.wantDone)
			}
			if !maps.Equal(s.members[testCatalog], tt.want) {
				t.Errorf("members %v, want %v", s.members[testCatalog], tt.want)
			}
			if done {
				// The same as a reading of the whole catalog.
				whole, _, err := catalogMembers(z)
				if err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(whole, s.members[testCatalog]) {
					t.Errorf("members %v; the whole catalog lists %v", s.members[testCatalog], whole)
				}
			}
		})
	}
}
