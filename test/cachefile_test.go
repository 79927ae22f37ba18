package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestDamagedCacheFile: a resolver cache file that is not a cache means a
// warning and an empty cache, never a failed start; the file is set aside
// and a sound one is written at shutdown.
func TestDamagedCacheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolver-cache.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a cache file\n", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serveOpts{dataDir: dir, config: "resolver:\n  allow: [127.0.0.0/8]\n"})
	if r := exchange(t, "udp", s.dns, newQuery("www.gov.az.", dns.TypeA)); r.Rcode != dns.RcodeSuccess {
		t.Errorf("the demo zone answered %s", dns.RcodeToString[r.Rcode])
	}
	if log := s.log.String(); !strings.Contains(log, "resolver cache file unusable") {
		t.Errorf("no warning about the cache file:\n%s", log)
	}
	if _, err := os.Stat(path + ".bad"); err != nil {
		t.Errorf("the damaged file was not set aside: %v", err)
	}
	s.stop(t)
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 || strings.HasPrefix(string(b), "not a cache") {
		t.Errorf("no sound cache file written at shutdown (err %v, %d bytes)", err, len(b))
	}
}
