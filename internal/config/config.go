// Package config loads sovdns's one typed Config from the embedded defaults,
// an optional YAML file, SOVDNS_* environment variables and flags, with
// viper, and validates it. Viper is used only while loading.
package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/miekg/dns"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/sovdns/sovdns/configs"
	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zonestore"
)

// EnvPrefix starts every environment variable read.
const EnvPrefix = "SOVDNS"

// Config is the whole configuration.
type Config struct {
	DataDir         string          `mapstructure:"data_dir"`
	DemoZone        bool            `mapstructure:"demo_zone"`
	SerialPolicy    string          `mapstructure:"serial_policy"`
	Listen          []string        `mapstructure:"listen"`
	ListenTLS       []string        `mapstructure:"listen_tls"`
	ListenHTTPS     []string        `mapstructure:"listen_https"`
	TLS             TLSConfig       `mapstructure:"tls"`
	UDPSockets      int             `mapstructure:"udp_sockets"`
	UDPBatch        bool            `mapstructure:"udp_batch"`
	EDNSUDPSize     int             `mapstructure:"edns_udp_size"`
	TCP             TCPConfig       `mapstructure:"tcp"`
	ResponseCacheMB int             `mapstructure:"response_cache_mb"`
	RateLimit       RateLimitConfig `mapstructure:"rate_limit"`
	Identity        IdentityConfig  `mapstructure:"identity"`
	Metrics         MetricsConfig   `mapstructure:"metrics"`
	Log             LogConfig       `mapstructure:"log"`
	Resolver        ResolverConfig  `mapstructure:"resolver"`
	TestFaketime    bool            `mapstructure:"test_faketime"`

	TSIGKeys   []TSIGKeyConfig    `mapstructure:"tsig_keys"`
	Primary    PrimaryConfig      `mapstructure:"primary"`
	Zones      []ZonePolicyConfig `mapstructure:"zones"`
	Secondary  []SecondaryConfig  `mapstructure:"secondary"`
	Catalog    CatalogConfig      `mapstructure:"catalog"`
	Journal    JournalConfig      `mapstructure:"journal"`
	Control    ControlConfig      `mapstructure:"control"`
	Resilience ResilienceConfig   `mapstructure:"resilience"`
	Dnstap     DnstapConfig       `mapstructure:"dnstap"`

	// Derived by Validate.
	Repl          Replication            `mapstructure:"-"`
	ControlTokens map[string]string      `mapstructure:"-"` // secret -> name
	ListenAddrs   []netip.AddrPort       `mapstructure:"-"`
	TLSAddrs      []netip.AddrPort       `mapstructure:"-"` // listen_tls
	HTTPSAddrs    []netip.AddrPort       `mapstructure:"-"` // listen_https
	CookieSecret  []byte                 `mapstructure:"-"`
	Serial        zonestore.SerialPolicy `mapstructure:"-"`
}

// DnstapConfig is the dnstap section: DNS messages logged in the dnstap
// format to a collector's unix socket or to a file (off when both are
// empty).
type DnstapConfig struct {
	Socket            string `mapstructure:"socket"`
	File              string `mapstructure:"file"`
	Identity          string `mapstructure:"identity"`
	ClientQueries     bool   `mapstructure:"client_queries"`
	ClientResponses   bool   `mapstructure:"client_responses"`
	ResolverQueries   bool   `mapstructure:"resolver_queries"`
	ResolverResponses bool   `mapstructure:"resolver_responses"`
	QueueSize         int    `mapstructure:"queue_size"`
}

// Enabled reports whether dnstap logging is configured.
func (d DnstapConfig) Enabled() bool { return d.Socket != "" || d.File != "" }

// TCPConfig is the tcp section.
type TCPConfig struct {
	IdleTimeout    time.Duration `mapstructure:"idle_timeout"`
	MaxConnections int           `mapstructure:"max_connections"`
	MaxPerClient   int           `mapstructure:"max_connections_per_client"`
}

// RateLimitConfig is the rate_limit section: response rate limiting over
// UDP.
type RateLimitConfig struct {
	ResponsesPerSecond int      `mapstructure:"responses_per_second"`
	ErrorsPerSecond    int      `mapstructure:"errors_per_second"`
	Slip               int      `mapstructure:"slip"`
	IPv4Prefix         int      `mapstructure:"ipv4_prefix"`
	IPv6Prefix         int      `mapstructure:"ipv6_prefix"`
	Exempt             []string `mapstructure:"exempt"`
	LogOnly            bool     `mapstructure:"log_only"`
	TableSize          int      `mapstructure:"table_size"`

	// Derived by Validate.
	ExemptPrefixes []netip.Prefix `mapstructure:"-"`
}

// validate checks the section and fills its derived fields.
func (r *RateLimitConfig) validate(bad func(string, any, string)) {
	if r.ResponsesPerSecond < 0 || r.ResponsesPerSecond > 1_000_000 {
		bad("rate_limit.responses_per_second", r.ResponsesPerSecond, "must be between 0 (off) and 1000000")
	}
	if r.ErrorsPerSecond < 0 || r.ErrorsPerSecond > 1_000_000 {
		bad("rate_limit.errors_per_second", r.ErrorsPerSecond, "must be between 0 (as responses_per_second) and 1000000")
	}
	if r.Slip < 0 || r.Slip > 10 {
		bad("rate_limit.slip", r.Slip, "must be between 0 (drop every limited response) and 10")
	}
	if r.IPv4Prefix < 8 || r.IPv4Prefix > 32 {
		bad("rate_limit.ipv4_prefix", r.IPv4Prefix, "must be between 8 and 32")
	}
	if r.IPv6Prefix < 16 || r.IPv6Prefix > 128 {
		bad("rate_limit.ipv6_prefix", r.IPv6Prefix, "must be between 16 and 128")
	}
	if r.TableSize < 1024 || r.TableSize > 1<<26 {
		bad("rate_limit.table_size", r.TableSize, "must be between 1024 and 67108864")
	}
	r.ExemptPrefixes = r.ExemptPrefixes[:0]
	for i, e := range r.Exempt {
		p, err := parsePrefixOrAddr(e)
		if err != nil {
			bad(fmt.Sprintf("rate_limit.exempt[%d]", i), e, "must be an address or a prefix (192.0.2.0/24, 2001:db8::/32)")
			continue
		}
		r.ExemptPrefixes = append(r.ExemptPrefixes, p)
	}
}

// parsePrefixOrAddr reads a prefix, or an address as a prefix of itself.
func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// IdentityConfig is the identity section.
type IdentityConfig struct {
	NSID         string `mapstructure:"nsid"`
	Version      string `mapstructure:"version"`
	ID           string `mapstructure:"id"`
	CookieSecret string `mapstructure:"cookie_secret"`
}

// ResolverConfig is the resolver section.
type ResolverConfig struct {
	Allow              []string         `mapstructure:"allow"`
	RootHints          string           `mapstructure:"root_hints"`
	UpstreamPort       int              `mapstructure:"upstream_port"`
	QueryTimeout       time.Duration    `mapstructure:"query_timeout"`
	ResolutionTimeout  time.Duration    `mapstructure:"resolution_timeout"`
	MaxReferrals       int              `mapstructure:"max_referrals"`
	MaxUpstreamQueries int              `mapstructure:"max_upstream_queries"`
	MaxCNAMEChain      int              `mapstructure:"max_cname_chain"`
	MaxNSLookups       int              `mapstructure:"max_ns_lookups"`
	MaxInFlight        int              `mapstructure:"max_in_flight"`
	MaxZoneInFlight    int              `mapstructure:"max_zone_in_flight"`
	CacheMB            int              `mapstructure:"cache_mb"`
	MinTTL             time.Duration    `mapstructure:"min_ttl"`
	MaxTTL             time.Duration    `mapstructure:"max_ttl"`
	MaxNegativeTTL     time.Duration    `mapstructure:"max_negative_ttl"`
	UpstreamIPv4       bool             `mapstructure:"upstream_ipv4"`
	UpstreamIPv6       bool             `mapstructure:"upstream_ipv6"`
	QueryLoopback      bool             `mapstructure:"query_loopback"`
	QueryPrivate       bool             `mapstructure:"query_private"`
	QNameMinimisation  string           `mapstructure:"qname_minimisation"`
	Use0x20            bool             `mapstructure:"use_0x20"`
	Cookies            bool             `mapstructure:"cookies"`
	ZoneRateLimit      int              `mapstructure:"zone_ratelimit"`
	ClientRateLimit    int              `mapstructure:"client_ratelimit"`
	UnwantedReplies    int              `mapstructure:"unwanted_reply_threshold"`
	Stub               []ZoneServers    `mapstructure:"stub"`
	Forward            []ZoneServers    `mapstructure:"forward"`
	DNSSEC             DNSSECConfig     `mapstructure:"dnssec"`
	ServeStale         ServeStaleConfig `mapstructure:"serve_stale"`
	Persist            PersistConfig    `mapstructure:"persist"`
	Prefetch           bool             `mapstructure:"prefetch"`
	HugePages          bool             `mapstructure:"huge_pages"`
	IOURing            bool             `mapstructure:"io_uring"`

	// Derived by Validate.
	AllowPrefixes []netip.Prefix              `mapstructure:"-"`
	Stubs         map[string][]netip.AddrPort `mapstructure:"-"`
	Forwards      map[string][]netip.AddrPort `mapstructure:"-"`
}

// DNSSECConfig is the resolver.dnssec section: DNSSEC validation.
type DNSSECConfig struct {
	Validation           bool     `mapstructure:"validation"`
	BuiltinRootAnchors   bool     `mapstructure:"builtin_root_anchors"`
	TrustAnchorUpdates   bool     `mapstructure:"trust_anchor_updates"`
	TrustAnchors         []string `mapstructure:"trust_anchors"`
	TrustAnchorFiles     []string `mapstructure:"trust_anchor_files"`
	NegativeTrustAnchors []string `mapstructure:"negative_trust_anchors"`
	MaxValidations       int      `mapstructure:"max_validations"`
	MaxNSEC3Hashes       int      `mapstructure:"max_nsec3_hashes"`
	MaxNSEC3Iterations   int      `mapstructure:"max_nsec3_iterations"`
	AggressiveNSEC       bool     `mapstructure:"aggressive_nsec"`

	// Derived by Validate: every trust anchor (built-in, inline, from
	// files) and the negative trust anchors as canonical names.
	Anchors []dns.RR `mapstructure:"-"`
	NTAs    []string `mapstructure:"-"`
}

// Resolver returns the resolver's view of the section.
func (d DNSSECConfig) Resolver() resolver.DNSSECConfig {
	return resolver.DNSSECConfig{
		Validation:         d.Validation,
		Anchors:            d.Anchors,
		NegativeAnchors:    d.NTAs,
		MaxValidations:     d.MaxValidations,
		MaxNSEC3Hashes:     d.MaxNSEC3Hashes,
		MaxNSEC3Iterations: d.MaxNSEC3Iterations,
		AggressiveNSEC:     d.AggressiveNSEC,
	}
}

// validate checks the section and fills its derived fields.
func (d *DNSSECConfig) validate(bad func(string, any, string)) {
	d.Anchors, d.NTAs = nil, nil
	if d.BuiltinRootAnchors {
		d.Anchors = append(d.Anchors, dnssec.RootAnchors()...)
	}
	for i, a := range d.TrustAnchors {
		rr, err := dnssec.ParseAnchor(a)
		if err != nil {
			bad(fmt.Sprintf("resolver.dnssec.trust_anchors[%d]", i), a, "must be one DS or DNSKEY record in master-file format with a fully qualified owner, e.g. \"gov.az. IN DS 12345 13 2 <hex>\" ("+err.Error()+")")
			continue
		}
		d.Anchors = append(d.Anchors, rr)
	}
	for i, f := range d.TrustAnchorFiles {
		rrs, err := dnssec.LoadAnchors(f)
		if err != nil {
			bad(fmt.Sprintf("resolver.dnssec.trust_anchor_files[%d]", i), f, "must be a readable file of DS or DNSKEY records ("+err.Error()+")")
			continue
		}
		d.Anchors = append(d.Anchors, rrs...)
	}
	for i, n := range d.NegativeTrustAnchors {
		name := strings.ToLower(dns.Fqdn(strings.TrimSpace(n)))
		if _, ok := dns.IsDomainName(name); !ok || strings.TrimSpace(n) == "" {
			bad(fmt.Sprintf("resolver.dnssec.negative_trust_anchors[%d]", i), n, "must be a domain name")
			continue
		}
		d.NTAs = append(d.NTAs, name)
	}
	if d.MaxValidations < 1 || d.MaxValidations > 10000 {
		bad("resolver.dnssec.max_validations", d.MaxValidations, "must be between 1 and 10000")
	}
	if d.MaxNSEC3Hashes < 1 || d.MaxNSEC3Hashes > 100000 {
		bad("resolver.dnssec.max_nsec3_hashes", d.MaxNSEC3Hashes, "must be between 1 and 100000")
	}
	if d.MaxNSEC3Iterations < 1 || d.MaxNSEC3Iterations > 2500 {
		bad("resolver.dnssec.max_nsec3_iterations", d.MaxNSEC3Iterations, "must be between 1 and 2500 (RFC 9276 advises keeping it low)")
	}
}

// ZoneServers is one entry of resolver.stub or resolver.forward.
type ZoneServers struct {
	Zone    string   `mapstructure:"zone"`
	Servers []string `mapstructure:"servers"`
}

// MetricsConfig is the metrics section.
type MetricsConfig struct {
	Listen        string `mapstructure:"listen"`
	ZoneSeriesMax int    `mapstructure:"zone_series_max"`
	Pprof         bool   `mapstructure:"pprof"`
}

// LogConfig is the log section.
type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// FlagKeys maps command-line flag names to configuration keys; Load binds
// those of them that flags defines.
var FlagKeys = map[string]string{
	"data-dir":       "data_dir",
	"listen":         "listen",
	"metrics-listen": "metrics.listen",
	"log-level":      "log.level",
	"log-format":     "log.format",
	"demo-zone":      "demo_zone",
	"serial-policy":  "serial_policy",
}

// Load builds the configuration: the embedded defaults, then file (if not
// empty), then the environment, then the flags that were set.
func Load(file string, flags *pflag.FlagSet) (Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(configs.DefaultYAML)); err != nil {
		return Config{}, fmt.Errorf("built-in defaults: %w", err)
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.MergeInConfig(); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", file, err)
		}
		if err := checkSections(file); err != nil {
			return Config{}, err
		}
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	// An empty variable counts: SOVDNS_RESOLVER_ALLOW= turns recursion off,
	// SOVDNS_METRICS_LISTEN= turns metrics off.
	v.AllowEmptyEnv(true)
	if flags != nil {
		for name, key := range FlagKeys {
			if f := flags.Lookup(name); f != nil {
				if err := v.BindPFlag(key, f); err != nil {
					return Config{}, fmt.Errorf("flag --%s: %w", name, err)
				}
			}
		}
	}
	var c Config
	var md mapstructure.Metadata
	err := v.Unmarshal(&c, func(dc *mapstructure.DecoderConfig) {
		dc.Metadata = &md
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			stringToDurationHook,
			mapstructure.StringToSliceHookFunc(","),
		)
	})
	if err == nil && len(md.Unused) > 0 {
		// Unknown keys are collected here rather than with ErrorUnused,
		// whose message names a Go type and not the keys' full paths.
		slices.Sort(md.Unused)
		var errs []error
		for _, key := range md.Unused {
			errs = append(errs, fmt.Errorf("%s: unknown key (value %q)", key, fmt.Sprint(v.Get(key))))
		}
		err = errors.Join(errs...)
	}
	if err != nil {
		where := "configuration"
		if file != "" {
			where = file
		}
		return Config{}, fmt.Errorf("%s: %w", where, decodeErrors(err))
	}
	if err := c.Validate(); err != nil {
		if file != "" {
			return Config{}, fmt.Errorf("%s: %w", file, err)
		}
		return Config{}, err
	}
	return c, nil
}

// Validate checks every value and fills the derived fields. Each problem
// names the key and the value.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key string, val any, why string) {
		errs = append(errs, fmt.Errorf("%s: invalid value %q: %s", key, fmt.Sprint(val), why))
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", c.DataDir, "must name a directory")
	}
	if p, err := zonestore.ParseSerialPolicy(c.SerialPolicy); err != nil {
		bad("serial_policy", c.SerialPolicy, `must be "increment" or "date"`)
	} else {
		c.Serial = p
	}
	if len(c.Listen) == 0 {
		bad("listen", "", "at least one address is needed")
	}
	c.ListenAddrs = c.ListenAddrs[:0]
	for i, l := range c.Listen {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(l))
		if err != nil {
			bad(fmt.Sprintf("listen[%d]", i), l, "must be IP:port, with IPv6 as [addr]:port")
			continue
		}
		c.ListenAddrs = append(c.ListenAddrs, ap)
	}
	c.validateEncrypted(bad)
	if c.UDPSockets < 0 || c.UDPSockets > 256 {
		bad("udp_sockets", c.UDPSockets, "must be between 0 and 256")
	}
	if c.EDNSUDPSize < 512 || c.EDNSUDPSize > 4096 {
		bad("edns_udp_size", c.EDNSUDPSize, "must be between 512 and 4096")
	}
	if c.TCP.IdleTimeout < 100*time.Millisecond || c.TCP.IdleTimeout > 10*time.Minute {
		bad("tcp.idle_timeout", c.TCP.IdleTimeout, "must be between 100ms and 10m, with a unit (10s)")
	}
	if c.TCP.MaxConnections < 1 || c.TCP.MaxConnections > 1<<20 {
		bad("tcp.max_connections", c.TCP.MaxConnections, "must be between 1 and 1048576")
	}
	if c.TCP.MaxPerClient < 1 || c.TCP.MaxPerClient > c.TCP.MaxConnections {
		bad("tcp.max_connections_per_client", c.TCP.MaxPerClient, "must be between 1 and tcp.max_connections")
	}
	if c.ResponseCacheMB < 0 || c.ResponseCacheMB > 1<<16 {
		bad("response_cache_mb", c.ResponseCacheMB, "must be between 0 and 65536")
	}
	c.RateLimit.validate(bad)
	c.Resolver.AllowPrefixes = c.Resolver.AllowPrefixes[:0]
	for i, a := range c.Resolver.Allow {
		a = strings.TrimSpace(a)
		p, err := netip.ParsePrefix(a)
		if err != nil {
			ip, ierr := netip.ParseAddr(a)
			if ierr != nil {
				bad(fmt.Sprintf("resolver.allow[%d]", i), a, "must be a network such as 192.0.2.0/24 or an address")
				continue
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		c.Resolver.AllowPrefixes = append(c.Resolver.AllowPrefixes, p.Masked())
	}
	r := &c.Resolver
	if r.UpstreamPort < 1 || r.UpstreamPort > 65535 {
		bad("resolver.upstream_port", r.UpstreamPort, "must be between 1 and 65535")
	}
	if r.QueryTimeout < 10*time.Millisecond || r.QueryTimeout > time.Minute {
		bad("resolver.query_timeout", r.QueryTimeout, "must be between 10ms and 1m, with a unit")
	}
	if r.ResolutionTimeout < r.QueryTimeout || r.ResolutionTimeout > 5*time.Minute {
		bad("resolver.resolution_timeout", r.ResolutionTimeout, "must be at least resolver.query_timeout and at most 5m")
	}
	for key, v := range map[string]int{"resolver.max_referrals": r.MaxReferrals, "resolver.max_upstream_queries": r.MaxUpstreamQueries,
		"resolver.max_cname_chain": r.MaxCNAMEChain, "resolver.max_ns_lookups": r.MaxNSLookups, "resolver.max_in_flight": r.MaxInFlight} {
		if v < 1 || v > 100000 {
			bad(key, v, "must be between 1 and 100000")
		}
	}
	for key, v := range map[string]int{"resolver.zone_ratelimit": r.ZoneRateLimit, "resolver.client_ratelimit": r.ClientRateLimit,
		"resolver.unwanted_reply_threshold": r.UnwantedReplies, "resolver.max_zone_in_flight": r.MaxZoneInFlight} {
		if v < 0 || v > 100_000_000 {
			bad(key, v, "must be between 0 (off) and 100000000")
		}
	}
	switch r.QNameMinimisation {
	case "relaxed", "strict", "off":
	default:
		bad("resolver.qname_minimisation", r.QNameMinimisation, "must be relaxed, strict or off")
	}
	r.DNSSEC.validate(bad)
	r.ServeStale.validate(bad)
	r.Persist.validate(bad)
	c.Resilience.validate(bad)
	if c.Dnstap.Socket != "" && c.Dnstap.File != "" {
		bad("dnstap.file", c.Dnstap.File, "dnstap.socket and dnstap.file cannot both be set: choose one")
	}
	if c.Dnstap.QueueSize < 1 || c.Dnstap.QueueSize > 1<<20 {
		bad("dnstap.queue_size", c.Dnstap.QueueSize, "must be between 1 and 1048576")
	}
	r.Stubs = zoneServers("resolver.stub", r.Stub, bad)
	r.Forwards = zoneServers("resolver.forward", r.Forward, bad)
	if !r.UpstreamIPv4 && !r.UpstreamIPv6 {
		bad("resolver.upstream_ipv4", r.UpstreamIPv4, "resolver.upstream_ipv4 and resolver.upstream_ipv6 cannot both be false")
	}
	if r.MinTTL < 0 || r.MinTTL > time.Hour {
		bad("resolver.min_ttl", r.MinTTL, "must be between 0s and 1h")
	}
	if r.MaxTTL < time.Second || r.MaxTTL < r.MinTTL || r.MaxTTL > 7*24*time.Hour {
		bad("resolver.max_ttl", r.MaxTTL, "must be between resolver.min_ttl (and 1s) and 168h")
	}
	if r.MaxNegativeTTL < time.Second || r.MaxNegativeTTL > 24*time.Hour {
		bad("resolver.max_negative_ttl", r.MaxNegativeTTL, "must be between 1s and 24h")
	}
	if r.CacheMB < 0 || r.CacheMB > 1<<20 {
		bad("resolver.cache_mb", r.CacheMB, "must be between 0 and 1048576")
	}
	if len(c.Identity.NSID) > 128 {
		bad("identity.nsid", c.Identity.NSID, "must be at most 128 bytes")
	}
	for key, s := range map[string]string{"identity.version": c.Identity.Version, "identity.id": c.Identity.ID} {
		if len(s) > 255 {
			bad(key, s, "must be at most 255 bytes")
		}
	}
	if s := c.Identity.CookieSecret; s != "" {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) < 16 {
			bad("identity.cookie_secret", "(hidden)", "must be at least 16 bytes in hex")
		}
		c.CookieSecret = b
	}
	if c.Metrics.Listen != "" {
		if _, err := netip.ParseAddrPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen", c.Metrics.Listen, "must be IP:port, or empty to disable")
		}
	}
	if c.Metrics.ZoneSeriesMax < 0 {
		bad("metrics.zone_series_max", fmt.Sprint(c.Metrics.ZoneSeriesMax), "must be 0 or more")
	}
	if _, err := ParseLevel(c.Log.Level); err != nil {
		bad("log.level", c.Log.Level, "must be debug, info, warn or error")
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", c.Log.Format, "must be text or json")
	}
	c.validateReplication(bad)
	return errors.Join(errs...)
}

// stringToDurationHook parses durations such as "10s"; unlike mapstructure's
// own hook, its error keeps the value so the message can name it.
func stringToDurationHook(f, t reflect.Type, data any) (any, error) {
	if f.Kind() != reflect.String || t != reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	d, err := time.ParseDuration(data.(string))
	if err != nil {
		return nil, fmt.Errorf("invalid value %q: must be a duration such as 10s or 1m30s", data)
	}
	return d, nil
}

// decodeErrors rewrites mapstructure's errors, which name the key but not
// the value, as "key: invalid value "v": reason", like Validate's.
func decodeErrors(err error) error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		de, ok := e.(*mapstructure.DecodeError)
		if !ok {
			// Drop wrappers such as "decoding failed due to...", keep the rest.
			if u := errors.Unwrap(e); u != nil && errors.As(e, new(*mapstructure.DecodeError)) {
				walk(u)
			} else {
				out = append(out, e)
			}
			return
		}
		inner := de.Unwrap()
		var pe *mapstructure.ParseError
		var ue *mapstructure.UnconvertibleTypeError
		switch {
		case errors.As(inner, &pe):
			out = append(out, fmt.Errorf("%s: invalid value %q: must be of type %s", de.Name(), fmt.Sprint(pe.Value), pe.Expected.Type()))
		case errors.As(inner, &ue):
			out = append(out, fmt.Errorf("%s: invalid value %q: must be of type %s", de.Name(), fmt.Sprint(ue.Value), ue.Expected.Type()))
		default:
			out = append(out, fmt.Errorf("%s: %w", de.Name(), inner))
		}
	}
	walk(err)
	return errors.Join(out...)
}

// DBPath is the zone database's file.
func (c *Config) DBPath() string { return filepath.Join(c.DataDir, "sovdns.db") }

// ParseLevel reads a log level name.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// checkSections refuses a plain value where the file should have a section
// (tcp: 5), which the merge with the defaults would drop without a word.
func checkSections(file string) error {
	fv := viper.New()
	fv.SetConfigFile(file)
	if err := fv.ReadInConfig(); err != nil {
		return fmt.Errorf("config file %s: %w", file, err)
	}
	var errs []error
	for _, section := range []string{"tcp", "tls", "identity", "metrics", "log", "resolver", "resolver.dnssec", "resolver.serve_stale", "resolver.persist", "resilience", "resilience.island", "primary", "catalog", "journal", "control"} {
		if val := fv.Get(section); val != nil {
			if _, ok := val.(map[string]any); !ok {
				errs = append(errs, fmt.Errorf("%s: invalid value %q: must be a section of keys (see configs/sovdns.yaml)", section, fmt.Sprint(val)))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %w", file, errors.Join(errs...))
	}
	return nil
}

// zoneServers reads resolver.stub or resolver.forward: a zone name and its
// servers, each IP or IP:port (port 53 by default).
func zoneServers(key string, list []ZoneServers, bad func(string, any, string)) map[string][]netip.AddrPort {
	out := map[string][]netip.AddrPort{}
	for i, zs := range list {
		k := fmt.Sprintf("%s[%d]", key, i)
		zone := strings.ToLower(dns.Fqdn(strings.TrimSpace(zs.Zone)))
		if _, ok := dns.IsDomainName(zone); !ok || zs.Zone == "" {
			bad(k+".zone", zs.Zone, "must be a domain name")
			continue
		}
		if _, dup := out[zone]; dup {
			bad(k+".zone", zs.Zone, "is listed twice")
			continue
		}
		if len(zs.Servers) == 0 {
			bad(k+".servers", "", "at least one server is needed")
			continue
		}
		for j, s := range zs.Servers {
			s = strings.TrimSpace(s)
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					bad(fmt.Sprintf("%s.servers[%d]", k, j), s, "must be IP or IP:port, with IPv6 as [addr]:port")
					continue
				}
				ap = netip.AddrPortFrom(a, 53)
			}
			out[zone] = append(out[zone], ap)
		}
	}
	return out
}
