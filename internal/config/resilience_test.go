package config

import (
	"os"
	"path/filepath"
	"strings"
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
	if is := c.Resilience.Island; is.TrialWait != 25*time.Millisecond || is.ProbeInterval != 5*time.Second {
		t.Errorf("island defaults %+v, want trial_wait 25ms and probe_interval 5s", is)
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

func TestNationalHints(t *testing.T) {
	dir := t.TempDir()
	hints := filepath.Join(dir, "az.hints")
	if err := os.WriteFile(hints, []byte("az. NS ns1.nic.az.\nns1.nic.az. A 192.0.2.53\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(t *testing.T, resilience string) (Config, error) {
		t.Helper()
		f := filepath.Join(t.TempDir(), "c.yml")
		if err := os.WriteFile(f, []byte("resilience:\n"+resilience), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(f, nil)
	}
	c, err := load(t, "  national_suffixes: [az.]\n  national_hints:\n    - "+hints+"\n    - \"az. NS ns2.nic.az.\"\n    - \"ns2.nic.az. AAAA 2001:db8::53\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.Resilience.HintRRs); got != 4 {
		t.Errorf("%d hint records, want 4: %v", got, c.Resilience.HintRRs)
	}
	for _, tc := range []struct{ text, want string }{
		{"  national_suffixes: [az.]\n  national_hints: [/no/such/file]\n", "resilience.national_hints[0]"},
		{"  national_hints: [\"" + hints + "\"]\n", "needs resilience.national_suffixes"},
		{"  national_suffixes: [gov.az.]\n  national_hints: [\"" + hints + "\"]\n", "under no national suffix"},
		{"  national_suffixes: [az.]\n  national_hints: [\"az. NS ns1.nic.az.\"]\n", "no address"},
		{"  national_suffixes: [az.]\n  national_hints: [\"az. MX 10 mail.az.\"]\n", "only NS, A and AAAA"},
	} {
		if _, err := load(t, tc.text); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.text, err, tc.want)
		}
	}
}
