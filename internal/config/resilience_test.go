package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/replication"
)

func TestResilienceDefaults(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	ss := c.Resolver.ServeStale
	if ss.MaxStale != 72*time.Hour || ss.StaleTTL != 30*time.Second || ss.ClientTimeout != 400*time.Millisecond || ss.FailureRecheck != 30*time.Second {
		t.Errorf("serve_stale defaults %+v", ss)
	}
	if !c.Resolver.Persist.Enabled || !c.Resilience.Island.Enabled || !c.Resilience.Island.KeepCopies {
		t.Errorf("persist %+v island %+v", c.Resolver.Persist, c.Resilience.Island)
	}
}

func TestResilienceParsed(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.yml")
	text := `resilience:
  national_suffixes: [AZ, gov.az.]
  island:
    probes: ["192.0.2.1", "[2001:db8::1]:5353"]
  keep_warm:
    - mail.example.com
    - _sip._tls.example.com srv txt
secondary:
  - zone: .
    primaries: ["192.0.2.1"]
    mirror: true
    expire: never
  - zone: gov.az
    primaries: ["192.0.2.2"]
    expire: 240h
`
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Resilience
	if len(r.National) != 2 || r.National[0] != "az." || r.National[1] != "gov.az." {
		t.Errorf("national %v", r.National)
	}
	if len(r.ProbeAddrs) != 2 || r.ProbeAddrs[0].Port() != 53 || r.ProbeAddrs[1].Port() != 5353 {
		t.Errorf("probes %v", r.ProbeAddrs)
	}
	if len(r.WarmNames) != 2 || len(r.WarmNames[0].Types) != 2 || r.WarmNames[1].Types[0] != dns.TypeSRV || r.WarmNames[1].Types[1] != dns.TypeTXT {
		t.Errorf("keep_warm %+v", r.WarmNames)
	}
	secs := c.Repl.Secondaries
	if len(secs) != 2 || !secs[0].Mirror || secs[0].Expire != replication.ExpireNever || secs[1].Mirror || secs[1].Expire != 240*time.Hour {
		t.Errorf("secondaries %+v", secs)
	}
}
