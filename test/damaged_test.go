package test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"
)

// TestDamagedZoneIsLeftOut: a zone whose stored data no longer decodes is
// not served, and said so in the log; the other zones are served.
func TestDamagedZoneIsLeftOut(t *testing.T) {
	dir := t.TempDir()
	importZone(t, dir, testZone)
	importZone(t, dir, "$ORIGIN broken.test.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\n")

	db, err := bolt.Open(filepath.Join(dir, "sovdns.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		names := tx.Bucket([]byte("zones")).Bucket([]byte("broken.test.")).Bucket([]byte("names"))
		k, v := names.Cursor().Last()
		return names.Put(append([]byte(nil), k...), v[:len(v)-1]) // cut the last byte off
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	s := startServer(t, serveOpts{dataDir: dir, config: "demo_zone: false\n", errorsExpected: true})
	if r := exchange(t, "udp", s.dns, newQuery("broken.test.", dns.TypeSOA)); r.Rcode != dns.RcodeRefused {
		t.Errorf("the damaged zone answered %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if r := exchange(t, "udp", s.dns, newQuery("example.com.", dns.TypeSOA)); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("the intact zone: %v", r)
	}
	if log := s.log.String(); !strings.Contains(log, "zone not served") || !strings.Contains(log, "broken.test.") {
		t.Errorf("the log does not name the zone left out:\n%s", log)
	}
}
