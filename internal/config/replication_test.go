package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"
)

func TestReplicationConfig(t *testing.T) {
	clearEnv(t)
	secretFile := filepath.Join(t.TempDir(), "xfr.key")
	if err := os.WriteFile(secretFile, []byte("c2Vjb25kLXNvdmRucy10c2lnLWtleS1iLTMyLWJ5dGU=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sovdns.yaml")
	text := `
tsig_keys:
  - {name: Editors, secret: aGVsbG8tc292ZG5zLXRzaWcta2V5LWEtMzItYnl0ZXM=}
  - {name: xfr., algorithm: hmac-sha512, secret_file: ` + secretFile + `}
primary:
  allow_transfer: ["192.0.2.0/24 key:xfr", "127.0.0.1"]
  notify: ["192.0.2.2", "192.0.2.3:5300 key:xfr"]
zones:
  - zone: Gov.AZ
    allow_update: ["key:editors"]
secondary:
  - {zone: mfa.az, primaries: ["192.0.2.1", "[2001:db8::1]:5300"], key: xfr}
catalog:
  zone: catalog.sovdns.invalid
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Repl
	if k := r.Keys["editors."]; k.Algorithm != dns.HmacSHA256 || k.Secret == "" {
		t.Errorf("editors key = %+v", k)
	}
	if k := r.Keys["xfr."]; k.Algorithm != dns.HmacSHA512 || k.Secret != "c2Vjb25kLXNvdmRucy10c2lnLWtleS1iLTMyLWJ5dGU=" {
		t.Errorf("xfr key = %+v", k)
	}
	a := netip.MustParseAddr
	def := r.Policy("example.")
	checks := []struct {
		name string
		got  bool
		want bool
	}{
		{"net and key", def.AllowTransfer.Allows(a("192.0.2.9"), "xfr."), true},
		{"net without key", def.AllowTransfer.Allows(a("192.0.2.9"), ""), false},
		{"key from elsewhere", def.AllowTransfer.Allows(a("198.51.100.1"), "xfr."), false},
		{"address alone", def.AllowTransfer.Allows(a("127.0.0.1"), ""), true},
		{"mapped address", def.AllowTransfer.Allows(a("::ffff:127.0.0.1"), ""), true},
		{"no update by default", def.AllowUpdate.Allows(a("127.0.0.1"), "editors."), false},
		{"zone policy replaces", r.Policy("gov.az").AllowTransfer.Allows(a("127.0.0.1"), ""), false},
		{"key from anywhere", r.Policy("GOV.AZ.").AllowUpdate.Allows(a("203.0.113.5"), "editors."), true},
		{"wrong key", r.Policy("gov.az.").AllowUpdate.Allows(a("203.0.113.5"), "xfr."), false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: allowed %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(def.Notify) != 2 || def.Notify[0].Addr.String() != "192.0.2.2:53" || def.Notify[1].Key != "xfr." {
		t.Errorf("notify = %+v", def.Notify)
	}
	if len(r.Secondaries) != 1 || r.Secondaries[0].Zone != "mfa.az." || r.Secondaries[0].Primaries[1].Addr.String() != "[2001:db8::1]:5300" ||
		r.Secondaries[0].Primaries[0].Key != "xfr." {
		t.Errorf("secondaries = %+v", r.Secondaries)
	}
	if r.Catalog != "catalog.sovdns.invalid." {
		t.Errorf("catalog = %q", r.Catalog)
	}
	// The embedded defaults allow nobody anything.
	d, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := d.Repl.Policy("gov.az.")
	if p.AllowTransfer.Allows(a("127.0.0.1"), "") || p.AllowUpdate.Allows(a("127.0.0.1"), "") || len(p.Notify) != 0 {
		t.Errorf("default policy allows something: %+v", p)
	}
}
