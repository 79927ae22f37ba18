package zonestore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/dnssectest"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// clock is a settable clock for the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

// checkSigned verifies every signature of z at now against its DNSKEY
// RRset and that every authoritative RRset is signed by a key of each
// given tag.
func checkSigned(t *testing.T, z *zone.Zone, now time.Time, tags ...uint16) {
	t.Helper()
	keys := map[uint16]*dns.DNSKEY{}
	for _, rr := range z.Apex.Get(dns.TypeDNSKEY).RRs() {
		keys[rr.(*dns.DNSKEY).KeyTag()] = rr.(*dns.DNSKEY)
	}
	z.WalkAll(func(_ []byte, n *zone.Node) bool {
		for _, set := range n.RRsets {
			if n.Cut() != nil && !(n.IsCut() && (set.Type == dns.TypeDS || set.Type == dns.TypeNSEC)) {
				continue
			}
			by := map[uint16]bool{}
			for _, rr := range set.Sigs() {
				sig := rr.(*dns.RRSIG)
				k := keys[sig.KeyTag]
				if k == nil {
					t.Errorf("%s %s: signed by %d, not in DNSKEY", n.Name, dns.Type(set.Type), sig.KeyTag)
					continue
				}
				if err := sig.Verify(k, set.RRs()); err != nil || !sig.ValidityPeriod(now) {
					t.Errorf("%s %s: signature by %d: %v (valid now: %v)", n.Name, dns.Type(set.Type), sig.KeyTag, err, sig.ValidityPeriod(now))
				}
				by[sig.KeyTag] = true
			}
			if len(set.Sigs()) == 0 {
				t.Errorf("%s %s: not signed", n.Name, dns.Type(set.Type))
			}
			if set.Type == dns.TypeDNSKEY || set.Type == dns.TypeCDS || set.Type == dns.TypeCDNSKEY {
				continue
			}
			for _, tag := range tags {
				if !by[tag] {
					t.Errorf("%s %s: not signed by %d", n.Name, dns.Type(set.Type), tag)
				}
			}
		}
		return true
	})
}

func dnskeyTags(z *zone.Zone) map[uint16]bool {
	out := map[uint16]bool{}
	for _, rr := range z.Apex.Get(dns.TypeDNSKEY).RRs() {
		out[rr.(*dns.DNSKEY).KeyTag()] = true
	}
	return out
}

func nsec3Policy() dnssec.Policy {
	p := dnssec.DefaultPolicy()
	p.Denial = dnssec.DenialNSEC3
	return p
}

// TestSignedEditsVerify signs a stored zone and edits it, checking each
// version with the independent verifiers, for NSEC and NSEC3.
func TestSignedEditsVerify(t *testing.T) {
	optout := nsec3Policy()
	optout.OptOut = true
	optout.SplitKeys = true
	for name, p := range map[string]dnssec.Policy{"nsec": dnssec.DefaultPolicy(), "nsec3": nsec3Policy(), "nsec3-optout": optout} {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			path := filepath.Join(t.TempDir(), "data", "zones.db")
			s := openAt(t, path, zonestore.Options{Now: clk.Now})
			mustImport(t, s, baseZone)
			res, err := s.EnableDNSSEC("example.", p)
			if err != nil {
				t.Fatal(err)
			}
			if res.Serial != 6 {
				t.Errorf("serial after enabling = %d, want 6", res.Serial)
			}
			z := load(t, s, "example.")
			signed := z
			dnssectest.Verify(t, "example.", z.Records(), clk.Now())

			edits := []zonestore.Change{
				{Add: []dns.RR{mustRR(t, "new.example. 300 IN A 192.0.2.7")}},
				{Add: []dns.RR{mustRR(t, "deep.x.y.example. 300 IN TXT \"ent\"")}},
				{Delete: []zonestore.Deletion{{Name: "www.example.", Type: dns.TypeAAAA}}},
				{Add: []dns.RR{mustRR(t, "www.example. 60 IN A 192.0.2.80")}}, // TTL change
				{Add: []dns.RR{mustRR(t, "child.example. 3600 IN NS ns.child.example."), mustRR(t, "ns.child.example. 3600 IN A 192.0.2.9"),
					mustRR(t, "child.example. 3600 IN DS 12345 13 2 0E4B4C5B4E4C4B5A0E4B4C5B4E4C4B5A0E4B4C5B4E4C4B5A0E4B4C5B4E4C4B5A")}},
				{Delete: []zonestore.Deletion{{Name: "deep.x.y.example."}}},
				{Delete: []zonestore.Deletion{{Name: "sub.example.", Type: dns.TypeNS}, {Name: "ns.sub.example."}}},
			}
			for i, c := range edits {
				clk.Add(time.Minute)
				res, err := s.Update("example.", c)
				if err != nil {
					t.Fatalf("edit %d: %v", i, err)
				}
				z := load(t, s, "example.")
				if z != res.Zone {
					t.Fatalf("edit %d: loaded zone is not the committed one", i)
				}
				dnssectest.Verify(t, "example.", z.Records(), clk.Now())
			}
			// The journal (what IXFR serves) holds every record each edit
			// changed, the chain's and the signatures' included.
			entries, _, err := s.Changes("example.", signed.Serial())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sortedLines(export(t, applyEntries(t, signed, entries))), sortedLines(export(t, load(t, s, "example."))); got != want {
				t.Errorf("journal replayed from the signed zone gives\n%s\nwant\n%s", got, want)
			}
			// What was committed is what a fresh process reads back.
			want := export(t, load(t, s, "example."))
			s.Close()
			s2 := openAt(t, path, zonestore.Options{Now: clk.Now})
			if got := export(t, load(t, s2, "example.")); got != want {
				t.Errorf("zone read back differs from the one committed")
			}
			if strings.Contains(want, "Private") {
				t.Error("export shows private key material")
			}
		})
	}
}

func TestSignedRefusesManagedEdits(t *testing.T) {
	clk := newClock()
	s := openStore(t, zonestore.Options{Now: clk.Now})
	mustImport(t, s, baseZone)
	if _, err := s.EnableDNSSEC("example.", dnssec.DefaultPolicy()); err != nil {
		t.Fatal(err)
	}
	before := export(t, load(t, s, "example."))
	for _, c := range []zonestore.Change{
		{Add: []dns.RR{mustRR(t, "www.example. 60 IN NSEC a.example. A")}},
		{Delete: []zonestore.Deletion{{Name: "example.", Type: dns.TypeDNSKEY}}},
		{Delete: []zonestore.Deletion{{Name: "www.example.", Type: dns.TypeRRSIG}}},
	} {
		if _, err := s.Update("example.", c); !errors.Is(err, dnssec.ErrManagedData) {
			t.Errorf("%v: err = %v, want ErrManagedData", c, err)
		}
	}
	// A change that changes nothing is still no change.
	if _, err := s.Update("example.", zonestore.Change{Add: []dns.RR{mustRR(t, "www.example. 3600 IN A 192.0.2.80")}}); !errors.Is(err, zonestore.ErrNoChange) {
		t.Errorf("no-op edit: err = %v", err)
	}
	if after := export(t, load(t, s, "example.")); after != before {
		t.Error("a refused edit changed the zone")
	}
}

func TestExpiryGuard(t *testing.T) {
	clk := newClock()
	s := openStore(t, zonestore.Options{Now: clk.Now})
	mustImport(t, s, baseZone) // SOA expire 1209600 (14 days)
	p := dnssec.DefaultPolicy()
	p.Validity = dnssec.Duration(10 * 24 * time.Hour)
	p.Refresh = dnssec.Duration(7 * 24 * time.Hour)
	if _, err := s.EnableDNSSEC("example.", p); !errors.Is(err, dnssec.ErrExpiryGuard) {
		t.Fatalf("short refresh: err = %v, want ErrExpiryGuard", err)
	}
	if ok, _ := s.Signed("example."); ok {
		t.Fatal("a refused policy was stored")
	}
	if _, err := s.EnableDNSSEC("example.", dnssec.DefaultPolicy()); err != nil {
		t.Fatal(err)
	}
	before := export(t, load(t, s, "example."))
	// An edit that raises the SOA expire past the refresh window is refused.
	_, err := s.Update("example.", zonestore.Change{Add: []dns.RR{mustRR(t, "example. 3600 IN SOA ns1 hostmaster 100 7200 900 2419200 300")}})
	if !errors.Is(err, dnssec.ErrExpiryGuard) {
		t.Fatalf("SOA expire 28 days: err = %v, want ErrExpiryGuard", err)
	}
	if after := export(t, load(t, s, "example.")); after != before {
		t.Error("a refused edit changed the zone")
	}
	st, err := s.DNSSEC("example.")
	if err != nil {
		t.Fatal(err)
	}
	if st.Guard != "" || st.Left < int64((14*24*time.Hour).Seconds()) {
		t.Errorf("status: guard %q, %d s left", st.Guard, st.Left)
	}
}

func TestMaintainRefreshes(t *testing.T) {
	clk := newClock()
	s := openStore(t, zonestore.Options{Now: clk.Now})
	mustImport(t, s, baseZone)
	p := dnssec.DefaultPolicy()
	if _, err := s.EnableDNSSEC("example.", p); err != nil {
		t.Fatal(err)
	}
	if did, _, err := s.Maintain("example."); err != nil || did {
		t.Fatalf("fresh zone: maintained %v, %v", did, err)
	}
	clk.Add(p.Validity.D() - p.Refresh.D())
	did, res, err := s.Maintain("example.")
	if err != nil || !did {
		t.Fatalf("due zone: maintained %v, %v", did, err)
	}
	if res.Serial != 7 {
		t.Errorf("serial %d, want 7", res.Serial)
	}
	st, err := s.DNSSEC("example.")
	if err != nil {
		t.Fatal(err)
	}
	if st.Left < int64((p.Validity.D() - p.Jitter.D() - time.Minute).Seconds()) {
		t.Errorf("after refresh only %d s left", st.Left)
	}
	checkSigned(t, res.Zone, clk.Now())
	// Unsigned zones are left alone.
	s2 := openStore(t, zonestore.Options{Now: clk.Now})
	mustImport(t, s2, baseZone)
	if did, _, err := s2.Maintain("example."); did || err != nil {
		t.Errorf("unsigned zone: maintained %v, %v", did, err)
	}
}

func TestZSKRollover(t *testing.T) {
	clk := newClock()
	s := openStore(t, zonestore.Options{Now: clk.Now})
	mustImport(t, s, baseZone)
	p := dnssec.DefaultPolicy()
	p.SplitKeys = true
	if _, err := s.EnableDNSSEC("example.", p); err != nil {
		t.Fatal(err)
	}
	tagOf := func(role dnssec.Role, state dnssec.State) uint16 {
		st, err := s.DNSSEC("example.")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range st.Keys {
			if k.Role == role && k.State == state {
				return k.Tag
			}
		}
		return 0
	}
	oldZSK := tagOf(dnssec.RoleZSK, dnssec.StateActive)
	if _, _, err := s.Rollover("example.", dnssec.RoleZSK, false); err != nil {
		t.Fatal(err)
	}
	newZSK := tagOf(dnssec.RoleZSK, dnssec.StatePublished)
	z := load(t, s, "example.")
	if !dnskeyTags(z)[newZSK] || !dnskeyTags(z)[oldZSK] {
		t.Fatal("pre-published ZSK not in DNSKEY next to the old one")
	}
	checkSigned(t, z, clk.Now(), oldZSK)
	if _, _, err := s.Rollover("example.", dnssec.RoleZSK, false); !errors.Is(err, dnssec.ErrRollover) {
		t.Errorf("second rollover: err = %v", err)
	}
	// Before the DNSKEY TTL and propagation delay, nothing moves.
	if did, _, _ := s.Maintain("example."); did {
		t.Error("rollover stepped early")
	}
	clk.Add(time.Hour + p.PropagationDelay.D())
	did, res, err := s.Maintain("example.")
	if err != nil || !did {
		t.Fatalf("maintain: %v %v", did, err)
	}
	checkSigned(t, res.Zone, clk.Now(), newZSK)
	if !dnskeyTags(res.Zone)[oldZSK] || tagOf(dnssec.RoleZSK, dnssec.StateRetired) != oldZSK {
		t.Error("retired ZSK left DNSKEY too early")
	}
	clk.Add(time.Hour + p.PropagationDelay.D()) // largest TTL 3600
	if did, res, err = s.Maintain("example."); err != nil || !did {
		t.Fatalf("maintain: %v %v", did, err)
	}
	if dnskeyTags(res.Zone)[oldZSK] {
		t.Error("old ZSK still in DNSKEY after its signatures left caches")
	}
	checkSigned(t, res.Zone, clk.Now(), newZSK)
}

// parentView is what two parent servers publish: each the DS records of
// the given tags among ds, with a DS TTL of an hour.
func parentView(now time.Time, ds []*dns.DS, tags ...[]uint16) *dnssec.ParentView {
	v := &dnssec.ParentView{Parent: "test.", Checked: now}
	for i, want := range tags {
		srv := dnssec.ParentServer{Server: fmt.Sprintf("192.0.2.%d:53", i+1), TTL: 3600}
		for _, d := range ds {
			if slices.Contains(want, d.KeyTag) {
				srv.DS = append(srv.DS, d)
			}
		}
		v.Servers = append(v.Servers, srv)
	}
	return v
}

// pastSigned returns a store on a clock set 12 hours back (the tests move
// it on; dnssec-verify reads the real one), holding baseZone signed
// under p.
func pastSigned(t *testing.T, p dnssec.Policy) (*clock, *zonestore.Store) {
	t.Helper()
	clk := newClock()
	clk.Add(-12 * time.Hour)
	s := openStore(t, zonestore.Options{Now: clk.Now})
	mustImport(t, s, baseZone)
	if _, err := s.EnableDNSSEC("example.", p); err != nil {
		t.Fatal(err)
	}
	return clk, s
}

// maintainWith records v (nil: nothing new) as what the parent's servers
// publish for example., then has the store take the steps it allows.
func maintainWith(t *testing.T, s *zonestore.Store, v *dnssec.ParentView) {
	t.Helper()
	if v != nil {
		if err := s.SetParentView("example.", *v); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Maintain("example."); err != nil {
		t.Fatal(err)
	}
}

// TestKSKDoubleDSRollover steps a CSK rollover by hand: --continue is
// refused while a parent server lacks the new DS and while caches may
// hold the DNSKEY RRset without the new key; every step verifies.
func TestKSKDoubleDSRollover(t *testing.T) {
	p := dnssec.DefaultPolicy()
	clk, s := pastSigned(t, p)
	ds, err := s.DS("example.", dns.SHA256)
	if err != nil || len(ds) != 1 {
		t.Fatalf("DS = %v, %v", ds, err)
	}
	oldTag := ds[0].KeyTag
	if _, _, err := s.Rollover("example.", dnssec.RoleKSK, true); !errors.Is(err, dnssec.ErrNoRollover) {
		t.Errorf("continue with no rollover: err = %v", err)
	}
	if _, _, err := s.Rollover("example.", dnssec.RoleKSK, false); err != nil {
		t.Fatal(err)
	}
	if servers, wait, err := s.ParentServers("example."); err != nil || !wait || servers != nil {
		t.Errorf("ParentServers = %v %v %v, want none configured and a wait", servers, wait, err)
	}
	ds, _ = s.DS("example.", dns.SHA256)
	if len(ds) != 2 {
		t.Fatalf("during double-DS: %d DS records, want 2", len(ds))
	}
	newTag := ds[0].KeyTag + ds[1].KeyTag - oldTag
	z := load(t, s, "example.")
	if !dnskeyTags(z)[newTag] || len(z.Apex.Get(dns.TypeCDS).RRs()) != 2 {
		t.Error("new CSK must be in DNSKEY and CDS while the parent takes its DS")
	}
	checkSigned(t, z, clk.Now(), oldTag)
	dnssectest.Verify(t, "example.", z.Records(), clk.Now())

	// Refused: the parent was never asked, one server lacks the DS, one
	// gives no answer.
	for _, v := range []*dnssec.ParentView{
		nil,
		parentView(clk.Now(), ds, []uint16{oldTag, newTag}, []uint16{oldTag}),
		func() *dnssec.ParentView {
			v := parentView(clk.Now(), ds, []uint16{oldTag, newTag}, nil)
			v.Servers[1].Err = "no answer within 3s"
			return v
		}(),
	} {
		if _, _, err := s.ContinueRollover("example.", dnssec.RoleKSK, false, v); !errors.Is(err, dnssec.ErrParentDS) {
			t.Errorf("continue, parent %+v: err = %v, want ErrParentDS", v, err)
		}
	}
	if st, _ := s.DNSSEC("example."); len(st.Steps) != 1 || !strings.Contains(st.Steps[0], "1 of 2 servers gave no answer: 192.0.2.2:53 (no answer within 3s)") {
		t.Errorf("status steps %q do not say what the parent servers publish", st.Steps)
	}
	both := parentView(clk.Now(), ds, []uint16{oldTag, newTag}, []uint16{newTag, oldTag})
	if _, _, err := s.ContinueRollover("example.", dnssec.RoleKSK, false, both); !errors.Is(err, dnssec.ErrTooSoon) {
		t.Errorf("continue before the DNSKEY TTL: err = %v, want ErrTooSoon", err)
	}
	clk.Add(time.Hour + p.PropagationDelay.D()) // DNSKEY TTL 3600
	if _, _, err := s.ContinueRollover("example.", dnssec.RoleKSK, false, both); err != nil {
		t.Fatal(err)
	}
	z = load(t, s, "example.")
	if !dnskeyTags(z)[newTag] || !dnskeyTags(z)[oldTag] {
		t.Errorf("after the swap DNSKEY holds %v, want both until the old CSK's signatures leave caches", dnskeyTags(z))
	}
	checkSigned(t, z, clk.Now(), newTag)
	dnssectest.Verify(t, "example.", z.Records(), clk.Now())
	if ds, _ = s.DS("example.", dns.SHA256); len(ds) != 1 || ds[0].KeyTag != newTag {
		t.Errorf("after the swap DS = %v", ds)
	}
	if _, _, err := s.Rollover("example.", dnssec.RoleKSK, true); !errors.Is(err, dnssec.ErrTooSoon) {
		t.Errorf("deleting the old CSK while its signatures may be cached: err = %v", err)
	}
	clk.Add(time.Hour + p.PropagationDelay.D()) // largest TTL 3600
	msg, _, err := s.Rollover("example.", dnssec.RoleKSK, true)
	if err != nil || !strings.Contains(msg, "complete") {
		t.Fatalf("final step: %q %v", msg, err)
	}
	if st, _ := s.DNSSEC("example."); len(st.Keys) != 1 {
		t.Errorf("%d keys after the rollover, want 1", len(st.Keys))
	}
	z = load(t, s, "example.")
	if dnskeyTags(z)[oldTag] {
		t.Error("deleted CSK still in DNSKEY")
	}
	dnssectest.Verify(t, "example.", z.Records(), clk.Now())
}

// TestKSKRolloverFollowsParent: with a split KSK and ZSK, signing
// maintenance takes every step of the KSK rollover from what the parent
// servers publish, and signs the zone only when a step changes it.
func TestKSKRolloverFollowsParent(t *testing.T) {
	p := dnssec.DefaultPolicy()
	p.SplitKeys = true
	clk, s := pastSigned(t, p)
	ds, _ := s.DS("example.", dns.SHA256)
	oldTag := ds[0].KeyTag
	if _, _, err := s.Rollover("example.", dnssec.RoleKSK, false); err != nil {
		t.Fatal(err)
	}
	ds, _ = s.DS("example.", dns.SHA256)
	newTag := ds[0].KeyTag + ds[1].KeyTag - oldTag
	serial := func() uint32 { return load(t, s, "example.").Serial() }
	maintain := func(v *dnssec.ParentView) bool {
		t.Helper()
		before := serial()
		maintainWith(t, s, v)
		return serial() != before
	}
	keyState := func(tag uint16) dnssec.State {
		st, _ := s.DNSSEC("example.")
		for _, k := range st.Keys {
			if k.Tag == tag {
				return k.State
			}
		}
		return "deleted"
	}

	clk.Add(3 * time.Hour)
	if maintain(parentView(clk.Now(), ds, []uint16{oldTag, newTag}, []uint16{oldTag})) || keyState(newTag) != dnssec.StateDSPending {
		t.Fatal("a step was taken while a parent server lacks the new DS")
	}
	seen := clk.Now()
	if maintain(parentView(seen, ds, []uint16{oldTag, newTag}, []uint16{oldTag, newTag})) || keyState(newTag) != dnssec.StateDSPending {
		t.Fatal("the keys were swapped before the DS TTL had passed")
	}
	st, _ := s.DNSSEC("example.")
	if len(st.Rollover) != 1 || st.Rollover[0].Parent || !st.Rollover[0].At.Equal(seen.Add(time.Hour+p.PropagationDelay.D())) {
		t.Errorf("pending step %+v, want timed at the DS TTL and propagation delay after %s", st.Rollover, seen)
	}
	clk.Add(time.Hour + p.PropagationDelay.D())
	if !maintain(parentView(clk.Now(), ds, []uint16{oldTag, newTag}, []uint16{oldTag, newTag})) || keyState(newTag) != dnssec.StateActive {
		t.Fatal("the keys were not swapped once the DS TTL had passed")
	}
	z := load(t, s, "example.")
	if dnskeyTags(z)[oldTag] || !dnskeyTags(z)[newTag] {
		t.Errorf("after the swap DNSKEY holds %v, want the new KSK without the old", dnskeyTags(z))
	}
	dnssectest.Verify(t, "example.", z.Records(), clk.Now())
	if maintain(parentView(clk.Now(), ds, []uint16{oldTag, newTag}, []uint16{newTag})) || keyState(oldTag) != dnssec.StateRetired {
		t.Fatal("the retired KSK was deleted while a parent server still has its DS")
	}
	maintain(parentView(clk.Now(), ds, []uint16{newTag}, []uint16{newTag}))
	if keyState(oldTag) != "deleted" {
		t.Fatal("the retired KSK was kept after the parent withdrew its DS")
	}
	if st, _ := s.DNSSEC("example."); len(st.Rollover) != 0 {
		t.Errorf("steps left after the rollover: %v", st.Steps)
	}
}

// TestDisableWaitsForParent: disabling publishes the RFC 8078 delete
// records in CDS and CDNSKEY and keeps the zone signed (and valid) until
// every parent server has withdrawn the DS and its TTL has passed; then
// maintenance takes it unsigned. Enabling again cancels.
func TestDisableWaitsForParent(t *testing.T) {
	p := dnssec.DefaultPolicy()
	clk, s := pastSigned(t, p)
	ds, _ := s.DS("example.", dns.SHA256)
	tag := ds[0].KeyTag
	msg, _, err := s.DisableDNSSEC("example.", false, nil)
	if err != nil || !strings.Contains(msg, "RFC 8078") {
		t.Fatalf("disable: %q %v", msg, err)
	}
	z := load(t, s, "example.")
	cds, cdnskey := z.Apex.Get(dns.TypeCDS), z.Apex.Get(dns.TypeCDNSKEY)
	if cds == nil || len(cds.RRs()) != 1 || cds.RRs()[0].(*dns.CDS).String() != "example.\t3600\tIN\tCDS\t0 0 0 00" ||
		cdnskey == nil || len(cdnskey.RRs()) != 1 || cdnskey.RRs()[0].(*dns.CDNSKEY).String() != "example.\t3600\tIN\tCDNSKEY\t0 3 0 AA==" {
		t.Fatalf("CDS %v, CDNSKEY %v; want the RFC 8078 delete records", cds, cdnskey)
	}
	checkSigned(t, z, clk.Now(), tag)
	dnssectest.Verify(t, "example.", z.Records(), clk.Now())
	if servers, wait, _ := s.ParentServers("example."); !wait || servers != nil {
		t.Error("a zone being unsigned does not wait for the parent")
	}
	// An edit meanwhile keeps the delete records.
	if _, err := s.Update("example.", zonestore.Change{Add: []dns.RR{mustRR(t, "n.example. 60 IN A 192.0.2.1")}}); err != nil {
		t.Fatal(err)
	}
	if c := load(t, s, "example.").Apex.Get(dns.TypeCDS); c == nil || c.RRs()[0].(*dns.CDS).DigestType != 0 {
		t.Fatal("an edit brought back the CDS of the key")
	}

	signed := func() bool { ok, _ := s.Signed("example."); return ok }
	maintain := func(v *dnssec.ParentView) { t.Helper(); maintainWith(t, s, v) }
	maintain(parentView(clk.Now(), ds, []uint16{tag}, nil))
	if !signed() {
		t.Fatal("unsigned while a parent server still publishes the DS")
	}
	if _, _, err := s.DisableDNSSEC("example.", false, parentView(clk.Now(), ds, []uint16{tag}, nil)); !errors.Is(err, dnssec.ErrParentDS) {
		t.Errorf("disable again with the DS at a parent server: %v", err)
	}
	maintain(parentView(clk.Now(), ds, nil, nil))
	if !signed() {
		t.Fatal("unsigned before the DS TTL had passed")
	}
	if _, _, err := s.DisableDNSSEC("example.", false, nil); !errors.Is(err, dnssec.ErrTooSoon) {
		t.Errorf("disable again before the DS TTL had passed: %v", err)
	}
	if st, _ := s.DNSSEC("example."); len(st.Steps) != 1 || !strings.Contains(st.Steps[0], "goes unsigned at") {
		t.Errorf("steps %q", st.Steps)
	}
	clk.Add(time.Hour + p.PropagationDelay.D())
	maintain(parentView(clk.Now(), ds, nil, nil))
	if signed() {
		t.Fatal("still signed after the parent withdrew the DS and its TTL passed")
	}
	z = load(t, s, "example.")
	if z.Apex.Get(dns.TypeDNSKEY) != nil || z.Apex.Get(dns.TypeCDS) != nil {
		t.Error("unsigned zone keeps DNSKEY or CDS")
	}
	if st, _ := s.DNSSEC("example."); len(st.Keys) != 1 {
		t.Errorf("%d keys kept, want 1", len(st.Keys))
	}

	// Enabling again cancels a disable under way.
	if _, err := s.EnableDNSSEC("example.", p); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.DisableDNSSEC("example.", false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnableDNSSEC("example.", p); err != nil {
		t.Fatal(err)
	}
	z = load(t, s, "example.")
	if c := z.Apex.Get(dns.TypeCDS); c == nil || c.RRs()[0].(*dns.CDS).KeyTag != tag {
		t.Errorf("after enable, CDS %v, want the key's", c)
	}
	if _, wait, _ := s.ParentServers("example."); wait {
		t.Error("enable did not cancel the disable")
	}
}

// TestAlgorithmRollover steps algorithm rollovers (RFC 6781 §4.1.4,
// conservative) with a moved clock and the parent's view: 8 to 13 with a
// KSK and ZSK, 13 to 15 with a CSK. At every step the zone verifies and
// is signed by each algorithm in its DNSKEY RRset, and no step comes
// before caches can have what it needs.
func TestAlgorithmRollover(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to uint8
		split    bool
	}{
		{"8 to 13, KSK and ZSK", dns.RSASHA256, dns.ECDSAP256SHA256, true},
		{"13 to 15, CSK", dns.ECDSAP256SHA256, dns.ED25519, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dnssec.DefaultPolicy()
			p.Algorithm, p.SplitKeys = tc.from, tc.split
			clk, s := pastSigned(t, p)
			oldDS, _ := s.DS("example.", dns.SHA256)
			// algs returns the algorithms in DNSKEY, and checks that every
			// authoritative RRset is signed by each of them (RFC 4035 §2.2)
			// and that the zone verifies.
			algs := func() map[uint8]bool {
				t.Helper()
				z := load(t, s, "example.")
				in := map[uint8]bool{}
				for _, rr := range z.Apex.Get(dns.TypeDNSKEY).RRs() {
					in[rr.(*dns.DNSKEY).Algorithm] = true
				}
				z.WalkAll(func(_ []byte, n *zone.Node) bool {
					for _, set := range n.RRsets {
						if n.Cut() != nil && !(n.IsCut() && (set.Type == dns.TypeDS || set.Type == dns.TypeNSEC)) {
							continue
						}
						by := map[uint8]bool{}
						for _, rr := range set.Sigs() {
							by[rr.(*dns.RRSIG).Algorithm] = true
						}
						for a := range in {
							if !by[a] {
								t.Errorf("%s %s: not signed with algorithm %d of DNSKEY", n.Name, dns.Type(set.Type), a)
							}
						}
					}
					return true
				})
				dnssectest.Verify(t, "example.", z.Records(), clk.Now())
				return in
			}
			maintain := func(v *dnssec.ParentView) { t.Helper(); maintainWith(t, s, v) }

			p.Algorithm = tc.to
			if _, err := s.EnableDNSSEC("example.", p); err != nil {
				t.Fatal(err)
			}
			if a := algs(); len(a) != 1 || !a[tc.from] {
				t.Fatalf("new keys in DNSKEY before their signatures reached caches: %v", a)
			}
			if z := load(t, s, "example."); !hasSigAlg(z, tc.to) {
				t.Fatal("no signatures of the new algorithm")
			}
			if _, err := s.EnableDNSSEC("example.", dnssec.DefaultPolicy()); !errors.Is(err, dnssec.ErrRollover) {
				t.Errorf("another algorithm change during the rollover: %v", err)
			}
			if _, _, err := s.Rollover("example.", dnssec.RoleKSK, false); !errors.Is(err, dnssec.ErrRollover) {
				t.Errorf("a KSK rollover during the algorithm rollover: %v", err)
			}
			clk.Add(30 * time.Minute)
			maintain(nil)
			if a := algs(); a[tc.to] {
				t.Fatal("new keys in DNSKEY before the largest TTL passed")
			}
			clk.Add(time.Hour + p.PropagationDelay.D()) // largest TTL 3600
			maintain(nil)
			if a := algs(); !a[tc.from] || !a[tc.to] {
				t.Fatalf("DNSKEY algorithms %v, want both", a)
			}
			// An edit meanwhile is signed with both algorithms.
			if _, err := s.Update("example.", zonestore.Change{Add: []dns.RR{mustRR(t, "edit.example. 60 IN A 192.0.2.9")}}); err != nil {
				t.Fatal(err)
			}
			algs()
			ds, _ := s.DS("example.", dns.SHA256)
			if len(ds) != 2 {
				t.Fatalf("DS during the rollover: %v, want the old and the new", ds)
			}
			var newTag uint16
			for _, d := range ds {
				if d.Algorithm == tc.to {
					newTag = d.KeyTag
				}
			}
			// The parent has only the old DS: the old keys stay.
			clk.Add(3 * time.Hour)
			maintain(parentView(clk.Now(), ds, []uint16{oldDS[0].KeyTag}, []uint16{oldDS[0].KeyTag}))
			if a := algs(); !a[tc.from] {
				t.Fatal("old keys left DNSKEY while the parent lacks the new DS")
			}
			if _, _, err := s.ContinueRollover("example.", dnssec.RoleKSK, false, nil); !errors.Is(err, dnssec.ErrParentDS) {
				t.Errorf("--continue without the new DS at the parent: %v", err)
			}
			both := parentView(clk.Now(), ds, []uint16{oldDS[0].KeyTag, newTag}, []uint16{newTag, oldDS[0].KeyTag})
			maintain(both)
			if a := algs(); !a[tc.from] {
				t.Fatal("old keys left DNSKEY before the DS TTL passed")
			}
			clk.Add(time.Hour + p.PropagationDelay.D())
			maintain(both)
			if a := algs(); a[tc.from] || !a[tc.to] {
				t.Fatalf("after the DS swap DNSKEY algorithms %v, want only %d", algs(), tc.to)
			}
			if z := load(t, s, "example."); !hasSigAlg(z, tc.from) {
				t.Fatal("old signatures removed with the old keys: caches may still hold the old DNSKEY RRset")
			}
			if ds, _ := s.DS("example.", dns.SHA256); len(ds) != 1 || ds[0].Algorithm != tc.to {
				t.Errorf("DS after the swap: %v", ds)
			}
			clk.Add(time.Hour + p.PropagationDelay.D()) // DNSKEY TTL 3600
			maintain(nil)
			algs()
			z := load(t, s, "example.")
			if hasSigAlg(z, tc.from) {
				t.Fatal("old signatures kept after the old DNSKEY RRset left caches")
			}
			st, _ := s.DNSSEC("example.")
			if st.Policy.AlgorithmFrom != 0 || len(st.Steps) != 0 {
				t.Errorf("after the rollover: from %d, steps %q", st.Policy.AlgorithmFrom, st.Steps)
			}
			for _, k := range st.Keys {
				if k.Algorithm != tc.to || k.State != dnssec.StateActive {
					t.Errorf("key %s %s %s left", k.ID, k.Role, k.State)
				}
			}
			// A new rollover can start.
			if _, _, err := s.Rollover("example.", dnssec.RoleKSK, false); err != nil {
				t.Errorf("KSK rollover after the algorithm rollover: %v", err)
			}
		})
	}
}

// hasSigAlg reports whether any RRset of z is signed with algorithm a.
func hasSigAlg(z *zone.Zone, a uint8) bool {
	found := false
	z.WalkAll(func(_ []byte, n *zone.Node) bool {
		for _, set := range n.RRsets {
			for _, rr := range set.Sigs() {
				if rr.(*dns.RRSIG).Algorithm == a {
					found = true
					return false
				}
			}
		}
		return true
	})
	return found
}

func TestDisableKeepsKeys(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), "data", "zones.db")
	s := openAt(t, path, zonestore.Options{Now: clk.Now})
	mustImport(t, s, baseZone)
	if _, err := s.EnableDNSSEC("example.", dnssec.DefaultPolicy()); err != nil {
		t.Fatal(err)
	}
	ds1, _ := s.DS("example.", dns.SHA256)
	if _, _, err := s.DisableDNSSEC("example.", true, nil); err != nil {
		t.Fatal(err)
	}
	z := load(t, s, "example.")
	if z.Apex.Get(dns.TypeDNSKEY) != nil || z.Apex.Get(dns.TypeSOA).Sigs() != nil || len(z.NSEC3Nodes()) != 0 {
		t.Fatal("disabled zone still holds DNSSEC records")
	}
	if _, _, err := s.DisableDNSSEC("example.", false, nil); !errors.Is(err, zonestore.ErrNotSigned) {
		t.Errorf("disable twice: %v", err)
	}
	// Edits of the unsigned zone do not sign it.
	if _, err := s.Update("example.", zonestore.Change{Add: []dns.RR{mustRR(t, "n.example. 60 IN A 192.0.2.1")}}); err != nil {
		t.Fatal(err)
	}
	if load(t, s, "example.").Apex.Get(dns.TypeDNSKEY) != nil {
		t.Fatal("edit signed a disabled zone")
	}
	if _, err := s.EnableDNSSEC("example.", nsec3Policy()); err != nil {
		t.Fatal(err)
	}
	ds2, _ := s.DS("example.", dns.SHA256)
	if len(ds2) != 1 || ds2[0].String() != ds1[0].String() {
		t.Errorf("re-enabled with other keys: %v, was %v", ds2, ds1)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("database holding private keys has mode %v", fi.Mode().Perm())
	}
}

// TestImportIntoSignedZone: a re-imported file, signed or not, comes out
// signed by the zone's own keys.
func TestImportIntoSignedZone(t *testing.T) {
	clk := newClock()
	s := openStore(t, zonestore.Options{Now: clk.Now})
	mustImport(t, s, baseZone)
	if _, err := s.EnableDNSSEC("example.", nsec3Policy()); err != nil {
		t.Fatal(err)
	}
	exported := export(t, load(t, s, "example."))
	for _, text := range []string{baseZone + "extra IN A 192.0.2.4\n", exported} {
		if _, err := importText(s, text, true); err != nil {
			t.Fatal(err)
		}
		z := load(t, s, "example.")
		dnssectest.Verify(t, "example.", z.Records(), clk.Now())
	}
}

// sortedLines returns text with its lines sorted: a zone's records
// whatever the order within each RRset.
func sortedLines(text string) string {
	lines := strings.Split(text, "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// A policy whose timing is left to sovdns is fitted to the zone when
// signing is enabled: a 14-day SOA EXPIRE with 1-day TTLs signs, and the
// policy stored says what was chosen.
func TestEnableFitsTiming(t *testing.T) {
	clk := newClock()
	s := openStore(t, zonestore.Options{Now: clk.Now})
	mustImport(t, s, "$ORIGIN example.\n$TTL 86400\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\n")
	if _, err := s.EnableDNSSEC("example.", dnssec.DefaultPolicy()); !errors.Is(err, dnssec.ErrExpiryGuard) {
		t.Fatalf("the defaults as given: err = %v, want ErrExpiryGuard", err)
	}
	p := dnssec.DefaultPolicy()
	p.FitTiming = true
	if _, err := s.EnableDNSSEC("example.", p); err != nil {
		t.Fatal(err)
	}
	st, err := s.DNSSEC("example.")
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Policy.Refresh.D(); got != 16*24*time.Hour || st.Policy.Validity.D() != 22*24*time.Hour || !st.Policy.FitTiming {
		t.Fatalf("policy stored: refresh %v validity %v fit %v; want 16 and 22 days, fitted", got, st.Policy.Validity.D(), st.Policy.FitTiming)
	}
}
