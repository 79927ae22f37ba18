package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/sovdns/sovdns/zonestore"
)

// clearEnv hides any SOVDNS_* variable of the environment the tests run in,
// so that only what a test sets is seen. Viper treats empty as unset.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, EnvPrefix+"_") {
			t.Setenv(k, "")
		}
	}
}

// serveFlags defines the flags that sovdns serve defines, unset.
func serveFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.String("data-dir", "", "")
	fs.StringSlice("listen", nil, "")
	fs.String("metrics-listen", "", "")
	fs.String("log-level", "", "")
	fs.String("log-format", "", "")
	fs.Bool("demo-zone", true, "")
	fs.String("serial-policy", "", "")
	return fs
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	c, err := Load("", nil)
	if err != nil {
		t.Fatalf("Load(defaults): %v", err)
	}
	want := Config{
		DataDir:         "sovdns-data",
		DemoZone:        true,
		SerialPolicy:    "increment",
		Listen:          []string{"127.0.0.1:5300"},
		UDPBatch:        true,
		EDNSUDPSize:     1232,
		TCP:             TCPConfig{IdleTimeout: 10 * time.Second, MaxConnections: 1024, MaxPerClient: 64},
		ResponseCacheMB: 64,
		Metrics:         MetricsConfig{Listen: "127.0.0.1:9353", ZoneSeriesMax: 1000},
		Log:             LogConfig{Level: "info", Format: "text"},
		ListenAddrs:     []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5300")},
		Serial:          zonestore.SerialIncrement,
	}
	if !equalConfig(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if got := c.DBPath(); got != filepath.Join("sovdns-data", "sovdns.db") {
		t.Errorf("DBPath() = %q", got)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(defaults) = %v", err)
	}

	// The shipped file is the defaults: loading it changes nothing.
	fromFile, err := Load(filepath.Join("..", "..", "configs", "sovdns.yaml"), nil)
	if err != nil {
		t.Fatalf("Load(configs/sovdns.yaml): %v", err)
	}
	if !equalConfig(fromFile, c) {
		t.Errorf("configs/sovdns.yaml differs from the built-in defaults:\n got %+v\nwant %+v", fromFile, c)
	}
}

func equalConfig(a, b Config) bool {
	return a.DataDir == b.DataDir && a.DemoZone == b.DemoZone && a.SerialPolicy == b.SerialPolicy &&
		slices.Equal(a.Listen, b.Listen) && a.UDPSockets == b.UDPSockets && a.EDNSUDPSize == b.EDNSUDPSize &&
		a.TCP == b.TCP && a.ResponseCacheMB == b.ResponseCacheMB && a.Identity == b.Identity &&
		a.Metrics == b.Metrics && a.Log == b.Log && slices.Equal(a.ListenAddrs, b.ListenAddrs) &&
		slices.Equal(a.CookieSecret, b.CookieSecret) && a.Serial == b.Serial
}

func TestGoodFile(t *testing.T) {
	clearEnv(t)
	c, err := Load(filepath.Join("testdata", "good.yml"), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{
		DataDir:         "/var/lib/sovdns",
		DemoZone:        false,
		SerialPolicy:    "date",
		Listen:          []string{"127.0.0.1:53", "[::1]:53"},
		UDPSockets:      4,
		UDPBatch:        true,
		EDNSUDPSize:     1400,
		TCP:             TCPConfig{IdleTimeout: 5 * time.Second, MaxConnections: 100, MaxPerClient: 64},
		ResponseCacheMB: 8,
		Identity: IdentityConfig{NSID: "node-1", Version: "sovdns test", ID: "node-1.example",
			CookieSecret: "000102030405060708090a0b0c0d0e0f"},
		Metrics:      MetricsConfig{Listen: "", ZoneSeriesMax: 1000},
		Log:          LogConfig{Level: "debug", Format: "json"},
		ListenAddrs:  []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:53"), netip.MustParseAddrPort("[::1]:53")},
		CookieSecret: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		Serial:       zonestore.SerialDate,
	}
	if !equalConfig(c, want) {
		t.Errorf("good.yml:\n got %+v\nwant %+v", c, want)
	}
}

// TestBadFiles loads every testdata/*.bad.yml. Each error must name the
// key and the offending value, so an operator can find the line.
func TestBadFiles(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		file string
		want []string // substrings of the error
	}{
		{file: "listen_not_ip.bad.yml", want: []string{`listen[0]: invalid value "localhost:53"`}},
		{file: "listen_no_port.bad.yml", want: []string{`listen[0]: invalid value "127.0.0.1"`}},
		{file: "listen_empty.bad.yml", want: []string{`listen: invalid value ""`, "at least one address"}},
		{file: "tls_no_cert.bad.yml", want: []string{`tls.cert_file: invalid value ""`, "tls.key_file"}},
		{file: "listen_https_clash.bad.yml", want: []string{`listen_https[0]: invalid value "127.0.0.1:5300"`, "listen[0]"}},
		{file: "idle_timeout_syntax.bad.yml", want: []string{`tcp.idle_timeout: invalid value "soon"`, "duration"}},
		{file: "idle_timeout_range.bad.yml", want: []string{`tcp.idle_timeout: invalid value "20m0s"`}},
		{file: "idle_timeout_no_unit.bad.yml", want: []string{`tcp.idle_timeout: invalid value "5ns"`, "with a unit"}},
		{file: "section_scalar.bad.yml", want: []string{`tcp: invalid value "5"`, "section"}},
		{file: "forward_server.bad.yml", want: []string{`resolver.forward[0].servers[0]: invalid value "bogus"`}},
		{file: "qname_minimisation.bad.yml", want: []string{`resolver.qname_minimisation: invalid value "maybe"`}},
		{file: "unknown_key.bad.yml", want: []string{`colour: unknown key (value "blue")`}},
		{file: "unknown_nested_key.bad.yml", want: []string{`tcp.idle: unknown key (value "5s")`}},
		{file: "edns_udp_size_small.bad.yml", want: []string{`edns_udp_size: invalid value "100"`, "between 512 and 4096"}},
		{file: "edns_udp_size_type.bad.yml", want: []string{`edns_udp_size: invalid value "big"`}},
		{file: "metrics_listen.bad.yml", want: []string{`metrics.listen: invalid value "localhost"`}},
		{file: "zone_series_max.bad.yml", want: []string{`metrics.zone_series_max: invalid value "-1"`}},
		{file: "notify_start_rate.bad.yml", want: []string{`primary.notify_start_rate: invalid value "0"`}},
		{file: "log_level.bad.yml", want: []string{`log.level: invalid value "loud"`}},
		{file: "log_format.bad.yml", want: []string{`log.format: invalid value "xml"`}},
		{file: "serial_policy.bad.yml", want: []string{`serial_policy: invalid value "random"`}},
		{file: "udp_sockets.bad.yml", want: []string{`udp_sockets: invalid value "1000"`}},
		{file: "max_connections.bad.yml", want: []string{`tcp.max_connections: invalid value "0"`}},
		{file: "response_cache.bad.yml", want: []string{`response_cache_mb: invalid value "-1"`}},
		{file: "rrl_exempt.bad.yml", want: []string{`rate_limit.exempt[0]: invalid value "192.0.2.0/33"`}},
		{file: "rrl_slip.bad.yml", want: []string{`rate_limit.slip: invalid value "50"`}},
		// The secret itself is never echoed.
		{file: "cookie_secret.bad.yml", want: []string{`identity.cookie_secret: invalid value "(hidden)"`}},
		{file: "nsid_type.bad.yml", want: []string{`identity.nsid: invalid value "[1 2]"`}},
		{file: "data_dir.bad.yml", want: []string{`data_dir: invalid value ""`}},
		{file: "yaml_syntax.bad.yml", want: []string{"yaml_syntax.bad.yml"}},
		{file: "dnssec_trust_anchor.bad.yml", want: []string{`resolver.dnssec.trust_anchors[0]: invalid value "gov.az. IN A 192.0.2.1"`}},
		{file: "dnssec_nsec3_iterations.bad.yml", want: []string{`resolver.dnssec.max_nsec3_iterations: invalid value "0"`}},
		{file: "dnssec_max_validations.bad.yml", want: []string{`resolver.dnssec.max_validations: invalid value "100001"`}},
		{file: "dnssec_unknown_key.bad.yml", want: []string{`resolver.dnssec.validate: unknown key (value "yes")`}},
		{file: "dnssec_nta.bad.yml", want: []string{`resolver.dnssec.negative_trust_anchors[0]: invalid value "bad..name"`}},
		{file: "dnssec_anchor_file.bad.yml", want: []string{`resolver.dnssec.trust_anchor_files[0]: invalid value "/nonexistent/sovdns-anchors"`}},
		{file: "dnssec_section_scalar.bad.yml", want: []string{`resolver.dnssec: invalid value "5"`, "section"}},
		{file: "dnssec_validation_type.bad.yml", want: []string{`resolver.dnssec.validation: invalid value "maybe"`}},
		// The secret itself is never echoed.
		{file: "tsig_secret.bad.yml", want: []string{`tsig_keys[0].secret: invalid value "(hidden)"`, "base64"}},
		{file: "tsig_algorithm.bad.yml", want: []string{`tsig_keys[0].algorithm: invalid value "hmac-md5"`}},
		{file: "acl_unknown_key.bad.yml", want: []string{`primary.allow_transfer[0]: invalid value "nokey"`, "tsig_keys"}},
		{file: "acl_address.bad.yml", want: []string{`zones[0].allow_update[0]: invalid value "somewhere"`}},
		{file: "notify_target.bad.yml", want: []string{`primary.notify[0]: invalid value "ns2.example.net"`}},
		{file: "notify_source_port.bad.yml", want: []string{`primary.notify_source[0]: invalid value "192.0.2.53:53"`, "without a port"}},
		{file: "notify_source_family.bad.yml", want: []string{`zones[0].notify_source[1]: invalid value "192.0.2.2"`, "one IPv4"}},
		{file: "allow_notify.bad.yml", want: []string{`secondary[0].allow_notify[0]: invalid value "ns1.example.net"`}},
		{file: "allow_notify_key.bad.yml", want: []string{`secondary[0].allow_notify[0]: invalid value "nokey"`, "tsig_keys"}},
		{file: "transfer_source.bad.yml", want: []string{`secondary[0].transfer_source[0]: invalid value "0.0.0.0"`, "unicast"}},
		{file: "secondary_no_primaries.bad.yml", want: []string{`secondary[0].primaries: invalid value ""`}},
		{file: "stale_ttl.bad.yml", want: []string{`resolver.serve_stale.stale_ttl: invalid value "0s"`}},
		{file: "national_suffix.bad.yml", want: []string{`resilience.national_suffixes[0]: invalid value "bad..name"`}},
		{file: "keep_warm.bad.yml", want: []string{`resilience.keep_warm[0]: invalid value "www.example.com AXFR"`, "AXFR"}},
		{file: "island_probe.bad.yml", want: []string{`resilience.island.probes[0]: invalid value "a.root-servers.net"`}},
		{file: "island_trial_wait.bad.yml", want: []string{`resilience.island.trial_wait: invalid value "2s"`}},
		{file: "secondary_expire.bad.yml", want: []string{`secondary[0].expire: invalid value "sometimes"`, "never"}},
		{file: "control_listen.bad.yml", want: []string{`control.listen: invalid value "0.0.0.0:8053"`, "loopback"}},
		{file: "several.bad.yml", want: []string{`listen[0]: invalid value "::1:53"`, `edns_udp_size: invalid value "5000"`}},
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.bad.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("testdata has %d .bad.yml files, the table %d: every file needs a row", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", tt.file), nil)
			if err == nil {
				t.Fatalf("Load(%s) succeeded; want an error", tt.file)
			}
			for _, w := range append(tt.want, tt.file) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%s) error\n%v\ndoes not contain %q", tt.file, err, w)
				}
			}
			if strings.Contains(err.Error(), "abcd") {
				t.Errorf("the error reveals the cookie secret: %v", err)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	clearEnv(t)
	_, err := Load(filepath.Join(t.TempDir(), "nope.yml"), nil)
	if err == nil || !strings.Contains(err.Error(), "nope.yml") {
		t.Errorf("Load(missing file) = %v; want an error naming the file", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	clearEnv(t)
	t.Setenv("SOVDNS_LISTEN", "127.0.0.1:5301,[::1]:5301")
	t.Setenv("SOVDNS_TCP_IDLE_TIMEOUT", "3s")
	t.Setenv("SOVDNS_IDENTITY_NSID", "from-env")
	t.Setenv("SOVDNS_DEMO_ZONE", "false")
	// The environment wins over the file, which sets all four.
	c, err := Load(filepath.Join("testdata", "good.yml"), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	wantAddrs := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5301"), netip.MustParseAddrPort("[::1]:5301")}
	if !slices.Equal(c.ListenAddrs, wantAddrs) {
		t.Errorf("ListenAddrs = %v; want %v", c.ListenAddrs, wantAddrs)
	}
	if c.TCP.IdleTimeout != 3*time.Second {
		t.Errorf("TCP.IdleTimeout = %v; want 3s", c.TCP.IdleTimeout)
	}
	if c.Identity.NSID != "from-env" {
		t.Errorf("Identity.NSID = %q; want from-env", c.Identity.NSID)
	}
	if c.DemoZone {
		t.Error("DemoZone = true; want false from SOVDNS_DEMO_ZONE")
	}
	// Keys the environment does not set keep the file's values.
	if c.EDNSUDPSize != 1400 {
		t.Errorf("EDNSUDPSize = %d; want the file's 1400", c.EDNSUDPSize)
	}
}

func TestEnvBadValue(t *testing.T) {
	tests := []struct {
		key, value string
		want       string
	}{
		{key: "SOVDNS_TCP_IDLE_TIMEOUT", value: "forever", want: `tcp.idle_timeout: invalid value "forever"`},
		{key: "SOVDNS_EDNS_UDP_SIZE", value: "100", want: `edns_udp_size: invalid value "100"`},
		{key: "SOVDNS_LISTEN", value: "127.0.0.1:5301,nowhere", want: `listen[1]: invalid value "nowhere"`},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(tt.key, tt.value)
			_, err := Load("", nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load with %s=%s: %v; want an error containing %q", tt.key, tt.value, err, tt.want)
			}
		})
	}
}

func TestFlagsOverrideEnv(t *testing.T) {
	clearEnv(t)
	t.Setenv("SOVDNS_LISTEN", "127.0.0.1:5301")
	t.Setenv("SOVDNS_DATA_DIR", "/from/env")
	t.Setenv("SOVDNS_METRICS_LISTEN", "127.0.0.1:9000")
	fs := serveFlags()
	if err := fs.Parse([]string{"--listen", "127.0.0.1:5302", "--listen", "127.0.0.1:5303", "--data-dir", "/from/flag"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(filepath.Join("testdata", "good.yml"), fs)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	wantAddrs := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5302"), netip.MustParseAddrPort("127.0.0.1:5303")}
	if !slices.Equal(c.ListenAddrs, wantAddrs) {
		t.Errorf("ListenAddrs = %v; want the flags' %v", c.ListenAddrs, wantAddrs)
	}
	if c.DataDir != "/from/flag" {
		t.Errorf("DataDir = %q; want the flag's /from/flag", c.DataDir)
	}
	// A flag that was not given leaves the environment's value alone.
	if c.Metrics.Listen != "127.0.0.1:9000" {
		t.Errorf("Metrics.Listen = %q; want the environment's 127.0.0.1:9000", c.Metrics.Listen)
	}
	// An unset flag's default does not override the file either.
	if c.DemoZone {
		t.Error("DemoZone = true: the --demo-zone default overrode the file's false")
	}
}

func TestFlagBadValue(t *testing.T) {
	clearEnv(t)
	fs := serveFlags()
	if err := fs.Parse([]string{"--metrics-listen", "localhost:9153"}); err != nil {
		t.Fatal(err)
	}
	_, err := Load("", fs)
	if err == nil || !strings.Contains(err.Error(), `metrics.listen: invalid value "localhost:9153"`) {
		t.Errorf("Load(--metrics-listen localhost:9153) = %v; want an error naming the key and value", err)
	}
}

func TestValidateZero(t *testing.T) {
	var c Config
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate(Config{}) succeeded")
	}
	for _, key := range []string{"data_dir", "listen", "edns_udp_size", "tcp.idle_timeout", "tcp.max_connections", "log.level", "log.format"} {
		if !strings.Contains(err.Error(), key+": invalid value") {
			t.Errorf("Validate(Config{}) does not report %s:\n%v", key, err)
		}
	}
}

func TestParseLevel(t *testing.T) {
	for _, s := range []string{"debug", "info", "warn", "error", "INFO"} {
		if _, err := ParseLevel(s); err != nil {
			t.Errorf("ParseLevel(%q) = %v", s, err)
		}
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Error(`ParseLevel("loud") succeeded`)
	}
}

func TestStubAndForwardZones(t *testing.T) {
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "zones.yml")
	text := "resolver:\n  stub:\n    - zone: Gov.AZ\n      servers: [192.0.2.53, \"198.51.100.53:5353\"]\n  forward:\n    - zone: .\n      servers: [\"[2001:db8::53]:53\"]\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.Resolver.Stubs["gov.az."]); got != "[192.0.2.53:53 198.51.100.53:5353]" {
		t.Errorf("stub gov.az. = %s", got)
	}
	if got := fmt.Sprint(c.Resolver.Forwards["."]); got != "[[2001:db8::53]:53]" {
		t.Errorf("forward . = %s", got)
	}
}

func TestEmptyEnvironmentValues(t *testing.T) {
	clearEnv(t)
	t.Setenv("SOVDNS_RESOLVER_ALLOW", "")
	t.Setenv("SOVDNS_METRICS_LISTEN", "")
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Resolver.AllowPrefixes) != 0 || c.Metrics.Listen != "" {
		t.Errorf("allow %v, metrics %q: want both empty", c.Resolver.AllowPrefixes, c.Metrics.Listen)
	}
}

func TestDNSSECSection(t *testing.T) {
	clearEnv(t)
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Resolver.DNSSEC
	if !d.Validation || !d.BuiltinRootAnchors || len(d.Anchors) != 2 || d.MaxValidations != 64 || d.MaxNSEC3Hashes != 256 || d.MaxNSEC3Iterations != 50 {
		t.Errorf("defaults: %+v", d)
	}
	if !d.AggressiveNSEC || !d.Resolver().AggressiveNSEC || !c.Resolver.Prefetch || !c.Resolver.HugePages || !c.Resolver.IOURing {
		t.Errorf("aggressive_nsec %v, prefetch %v, huge_pages %v, io_uring %v: all on by default", d.AggressiveNSEC, c.Resolver.Prefetch, c.Resolver.HugePages, c.Resolver.IOURing)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "anchors")
	if err := os.WriteFile(file, []byte("; national\nmfa.gov.az. IN DS 1 13 2 "+strings.Repeat("cd", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dnssec.yml")
	text := "resolver:\n  dnssec:\n    builtin_root_anchors: false\n" +
		"    trust_anchors: [\"gov.az. IN DS 12345 13 2 " + strings.Repeat("AB", 32) + "\"]\n" +
		"    trust_anchor_files: [" + fmt.Sprintf("%q", file) + "]\n" +
		"    negative_trust_anchors: [Broken.Example]\n    max_nsec3_iterations: 100\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc := c.Resolver.DNSSEC.Resolver()
	var owners []string
	for _, rr := range rc.Anchors {
		owners = append(owners, rr.Header().Name)
	}
	if !rc.Validation || !slices.Equal(owners, []string{"gov.az.", "mfa.gov.az."}) ||
		!slices.Equal(rc.NegativeAnchors, []string{"broken.example."}) || rc.MaxNSEC3Iterations != 100 {
		t.Errorf("resolver view: %+v (anchors %v)", rc, owners)
	}
	t.Setenv("SOVDNS_RESOLVER_DNSSEC_VALIDATION", "false")
	if c, err = Load("", nil); err != nil || c.Resolver.DNSSEC.Validation {
		t.Errorf("SOVDNS_RESOLVER_DNSSEC_VALIDATION=false: %v, validation %v", err, c.Resolver.DNSSEC.Validation)
	}
	t.Setenv("SOVDNS_RESOLVER_DNSSEC_AGGRESSIVE_NSEC", "false")
	t.Setenv("SOVDNS_RESOLVER_PREFETCH", "false")
	t.Setenv("SOVDNS_RESOLVER_HUGE_PAGES", "false")
	t.Setenv("SOVDNS_RESOLVER_IO_URING", "false")
	if c, err = Load("", nil); err != nil || c.Resolver.DNSSEC.AggressiveNSEC || c.Resolver.Prefetch || c.Resolver.HugePages || c.Resolver.IOURing {
		t.Errorf("switched off: %v, aggressive_nsec %v, prefetch %v, huge_pages %v, io_uring %v", err, c.Resolver.DNSSEC.AggressiveNSEC, c.Resolver.Prefetch, c.Resolver.HugePages, c.Resolver.IOURing)
	}
}
