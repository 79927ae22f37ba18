package zonestore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// TestZonesChangeIndependently holds an edit of one zone in the middle of
// its commit and checks that edits, imports and signing of another zone
// go ahead meanwhile, and that the held edit lands afterwards.
func TestZonesChangeIndependently(t *testing.T) {
	s := openStore(t, zonestore.Options{})
	mustImport(t, s, baseZone)
	p, err := zonestore.Parse(strings.NewReader("@ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300\n@ 3600 IN NS ns.example.net.\n"), "other.", "other.zone", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(other, false); err != nil {
		t.Fatal(err)
	}

	inside, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		_, err := s.UpdateFunc("example.", func(*zone.Zone) (zonestore.Change, error) {
			close(inside)
			<-release
			return zonestore.Change{Add: []dns.RR{mustRR(t, "held.example. 300 IN A 192.0.2.1")}}, nil
		})
		held <- err
	}()
	<-inside

	done := make(chan error, 1)
	go func() {
		if _, err := s.Update("other.", zonestore.Change{Add: []dns.RR{mustRR(t, "www.other. 300 IN A 192.0.2.2")}}); err != nil {
			done <- err
			return
		}
		_, err := s.EnableDNSSEC("other.", dnssec.DefaultPolicy())
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("changes of other. waited for the held edit of example.")
	}
	select {
	case err := <-held:
		t.Fatalf("the held edit finished before it was let go: %v", err)
	default:
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	z := load(t, s, "example.")
	if z.Lookup(wireKey(t, "held.example.")) == nil {
		t.Error("the held edit is not in the zone")
	}
}
