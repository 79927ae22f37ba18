package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/replication"
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

// TestNotifyAndTransferSources: notify_source, per zone or inherited from
// the primary section, allow_notify and transfer_source; the environment
// sets the primary section's notify_source too.
func TestNotifyAndTransferSources(t *testing.T) {
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "sovdns.yaml")
	text := `
tsig_keys:
  - {name: xfr, secret: aGVsbG8tc292ZG5zLXRzaWcta2V5LWEtMzItYnl0ZXM=}
primary:
  notify: ["192.0.2.2"]
  notify_source: [192.0.2.53, "2001:db8::53"]
zones:
  - zone: own.az
    notify_source: "[2001:db8::54]"
  - zone: inherits.az
    notify: ["192.0.2.3"]
secondary:
  - zone: mfa.az
    primaries: ["192.0.2.1"]
    key: xfr
    allow_notify: ["192.0.2.0/28", "key:xfr", "198.51.100.0/24 key:xfr"]
    transfer_source: 192.0.2.54
  - zone: plain.az
    primaries: ["192.0.2.1"]
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	r := c.Repl
	tests := []struct {
		name string
		got  replication.Sources
		want replication.Sources
	}{
		{"primary section", r.Policy("other.az").NotifySource, replication.Sources{V4: a("192.0.2.53"), V6: a("2001:db8::53")}},
		{"a zone's own", r.Policy("own.az").NotifySource, replication.Sources{V6: a("2001:db8::54")}},
		{"a zone without its own", r.Policy("inherits.az").NotifySource, replication.Sources{V4: a("192.0.2.53"), V6: a("2001:db8::53")}},
		{"transfer_source", r.Secondaries[0].TransferSource, replication.Sources{V4: a("192.0.2.54")}},
		{"no transfer_source", r.Secondaries[1].TransferSource, replication.Sources{}},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, tt.got, tt.want)
		}
	}
	if got := r.Policy("own.az").NotifySource.For(a("192.0.2.9")); got.IsValid() {
		t.Errorf("own.az to an IPv4 target: source %s, want the system's choice", got)
	}
	allow := r.Secondaries[0].AllowNotify
	want := replication.ACL{
		{Prefix: netip.MustParsePrefix("192.0.2.0/28")},
		{Any: true, Key: "xfr."},
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Key: "xfr."},
	}
	if !slices.Equal(allow, want) {
		t.Errorf("allow_notify = %+v, want %+v", allow, want)
	}
	if len(r.Secondaries[1].AllowNotify) != 0 {
		t.Errorf("allow_notify by default = %+v, want none", r.Secondaries[1].AllowNotify)
	}

	t.Setenv("SOVDNS_PRIMARY_NOTIFY_SOURCE", "127.0.0.53")
	c, err = Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Repl.Default.NotifySource; got != (replication.Sources{V4: a("127.0.0.53")}) {
		t.Errorf("notify_source from the environment: %+v", got)
	}
}
