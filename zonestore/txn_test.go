package zonestore_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/dnssectest"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

func stageChange(c zonestore.Change) func(*zone.Zone) (zonestore.Change, error) {
	return func(*zone.Zone) (zonestore.Change, error) { return c, nil }
}

func addRR(t *testing.T, texts ...string) zonestore.Change {
	var c zonestore.Change
	for _, s := range texts {
		c.Add = append(c.Add, mustRR(t, s))
	}
	return c
}

// TestTransaction stages edits in an editor's transaction and checks that
// nothing changes until the commit, which makes one serial step and one
// journal entry under the editor's name; that other editors get clear
// errors; and that a refused change is not staged.
func TestTransaction(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), "data", "zones.db")
	st := openAt(t, path, zonestore.Options{Now: clk.Now})
	mustImport(t, st, baseZone)
	alice, bob := st.As("unix:alice"), st.As("unix:bob")

	info, err := alice.Begin("example.")
	if err != nil {
		t.Fatal(err)
	}
	if info.Author != "unix:alice" || info.Serial != 5 {
		t.Errorf("Begin: %+v", info)
	}
	if _, err := bob.Begin("example."); !errors.Is(err, zonestore.ErrTxnOpen) || !strings.Contains(err.Error(), "unix:alice") {
		t.Errorf("second Begin: %v, want ErrTxnOpen naming the owner", err)
	}
	if _, err := alice.Stage("example.", stageChange(addRR(t, "new.example. 300 IN A 192.0.2.7"))); err != nil {
		t.Fatal(err)
	}
	if info, err = alice.Stage("example.", stageChange(zonestore.Change{Delete: []zonestore.Deletion{{Name: "www.example.", Type: dns.TypeAAAA}}})); err != nil || info.Changes != 2 {
		t.Fatalf("second Stage: %+v, %v", info, err)
	}
	// A change that does not fit the zone with the staged ones is refused
	// and not staged; so is another editor's.
	if _, err := alice.Stage("example.", stageChange(addRR(t, "new.example. 300 IN CNAME www.example."))); err == nil {
		t.Error("CNAME beside the staged A was staged")
	}
	if _, err := bob.Stage("example.", stageChange(addRR(t, "bob.example. 300 IN A 192.0.2.9"))); !errors.Is(err, zonestore.ErrTxnUser) {
		t.Errorf("another editor's Stage: %v, want ErrTxnUser", err)
	}
	if z := load(t, st, "example."); z.Serial() != 5 || z.Lookup(wireKey(t, "new.example.")) != nil {
		t.Fatal("staging changed the zone")
	}
	removed, added, err := alice.TxnDiff("example.")
	if err != nil {
		t.Fatal(err)
	}
	if got := rrTexts(added); len(got) != 2 || !strings.Contains(got[0], "SOA") || !strings.Contains(got[1], "new.example.") {
		t.Errorf("diff adds %v", got)
	}
	if got := rrTexts(removed); len(got) != 2 || !strings.Contains(got[1], "AAAA") {
		t.Errorf("diff removes %v", got)
	}

	// It survives the process.
	st.Close()
	st = openAt(t, path, zonestore.Options{Now: clk.Now})
	alice = st.As("unix:alice")
	if open, err := st.Txn("example."); err != nil || open == nil || open.Changes != 2 {
		t.Fatalf("after reopening: %+v, %v", open, err)
	}
	if _, err := st.As("unix:bob").Commit("example."); !errors.Is(err, zonestore.ErrTxnUser) {
		t.Errorf("another editor's Commit: %v", err)
	}
	res, err := alice.Commit("example.")
	if err != nil {
		t.Fatal(err)
	}
	if res.Serial != 6 || res.OldSerial != 5 {
		t.Errorf("commit: serial %d -> %d, want 5 -> 6", res.OldSerial, res.Serial)
	}
	z := load(t, st, "example.")
	if z.Lookup(wireKey(t, "new.example.")) == nil || z.Lookup(wireKey(t, "www.example.")).Get(dns.TypeAAAA) != nil {
		t.Error("the committed zone lacks the staged changes")
	}
	h, err := st.History("example.", 10)
	if err != nil {
		t.Fatal(err)
	}
	last := h[len(h)-1]
	if len(h) != 2 || last.Author != "unix:alice" || len(last.Added) != 1 || len(last.Removed) != 1 {
		t.Errorf("journal: %d entries, last by %s adding %d removing %d; want one entry by unix:alice", len(h), last.Author, len(last.Added), len(last.Removed))
	}
	if open, err := st.Txn("example."); err != nil || open != nil {
		t.Errorf("after commit: %+v, %v", open, err)
	}
	if _, err := alice.Commit("example."); !errors.Is(err, zonestore.ErrNoTxn) {
		t.Errorf("commit with none open: %v", err)
	}
}

// TestTransactionAbortAndConflict checks abort (by the owner, or forced)
// and a commit whose staged change no longer applies: refused, with the
// transaction left open.
func TestTransactionAbortAndConflict(t *testing.T) {
	st := openStore(t, zonestore.Options{})
	mustImport(t, st, baseZone)
	alice := st.As("unix:alice")
	if _, err := alice.Begin("example."); err != nil {
		t.Fatal(err)
	}
	del := zonestore.Change{Delete: []zonestore.Deletion{{RR: mustRR(t, "www.example. 3600 IN A 192.0.2.80")}}}
	if _, err := alice.Stage("example.", stageChange(del)); err != nil {
		t.Fatal(err)
	}
	// A dynamic UPDATE is not an editor: it lands at once, and here takes
	// away the record the transaction deletes.
	if _, err := st.As("tsig:ddns.").Update("example.", del); err != nil {
		t.Fatal(err)
	}
	before := export(t, load(t, st, "example."))
	if _, err := alice.Commit("example."); err == nil || !strings.Contains(err.Error(), "still open") {
		t.Errorf("commit of a change that no longer applies: %v", err)
	}
	if export(t, load(t, st, "example.")) != before {
		t.Error("a refused commit changed the zone")
	}
	if _, err := st.As("unix:bob").Abort("example.", false); !errors.Is(err, zonestore.ErrTxnUser) {
		t.Errorf("abort by another editor: %v", err)
	}
	if _, err := st.As("unix:bob").Abort("example.", true); err != nil {
		t.Errorf("forced abort: %v", err)
	}
	if open, _ := st.Txn("example."); open != nil {
		t.Error("the transaction is still open after abort")
	}
}

// TestTransactionSigned commits a transaction on a signed zone: one
// signing of the changed names, verified independently.
func TestTransactionSigned(t *testing.T) {
	clk := newClock()
	st := openStore(t, zonestore.Options{Now: clk.Now})
	mustImport(t, st, baseZone)
	if _, err := st.EnableDNSSEC("example.", nsec3Policy()); err != nil {
		t.Fatal(err)
	}
	ed := st.As("unix:editor")
	if _, err := ed.Begin("example."); err != nil {
		t.Fatal(err)
	}
	for _, c := range []zonestore.Change{
		addRR(t, "a.new.example. 300 IN A 192.0.2.1"),
		addRR(t, "b.new.example. 300 IN TXT \"b\""),
		{Delete: []zonestore.Deletion{{Name: "a.b.c.example."}}},
	} {
		if _, err := ed.Stage("example.", stageChange(c)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ed.Stage("example.", stageChange(addRR(t, "x.example. 300 IN RRSIG A 13 2 300 20300101000000 20200101000000 1 example. AAAA"))); !errors.Is(err, dnssec.ErrManagedData) {
		t.Errorf("staging a signature: %v, want ErrManagedData", err)
	}
	res, err := ed.Commit("example.")
	if err != nil {
		t.Fatal(err)
	}
	z := load(t, st, "example.")
	if z != res.Zone || z.Lookup(wireKey(t, "b.new.example.")) == nil || z.Lookup(wireKey(t, "a.b.c.example.")) != nil {
		t.Fatal("the committed zone lacks the staged changes")
	}
	dnssectest.Verify(t, "example.", z.Records(), clk.Now())
}
