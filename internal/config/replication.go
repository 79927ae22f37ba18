package config

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/replication"
)

// TSIGKeyConfig is one entry of tsig_keys.
type TSIGKeyConfig struct {
	Name       string `mapstructure:"name"`
	Algorithm  string `mapstructure:"algorithm"`
	Secret     string `mapstructure:"secret"`
	SecretFile string `mapstructure:"secret_file"`
}

// ZonePolicyConfig is the primary section, and one entry of zones (with
// Zone set): who may transfer and update a primary zone, and whom to
// NOTIFY of its changes.
type ZonePolicyConfig struct {
	Zone          string   `mapstructure:"zone"`
	AllowTransfer []string `mapstructure:"allow_transfer"`
	AllowUpdate   []string `mapstructure:"allow_update"`
	Notify        []string `mapstructure:"notify"`
	// NotifySource: the addresses NOTIFYs leave from, at most one IPv4
	// and one IPv6. A zones entry without it takes the primary section's.
	NotifySource []string `mapstructure:"notify_source"`
}

// PrimaryConfig is the primary section: the policy of every primary zone
// without an entry of its own in zones, and the pace of the NOTIFYs sent
// at start.
type PrimaryConfig struct {
	ZonePolicyConfig `mapstructure:",squash"`
	// NotifyStartRate is how many zones a second are notified at start.
	NotifyStartRate int `mapstructure:"notify_start_rate"`
}

// SecondaryConfig is one entry of secondary: a zone copied in from its
// primaries.
type SecondaryConfig struct {
	Zone      string   `mapstructure:"zone"`
	Primaries []string `mapstructure:"primaries"`
	// Key signs SOA queries and transfers, and must sign NOTIFYs.
	Key string `mapstructure:"key"`
	// Catalog: the zone is a catalog (RFC 9432) whose members become
	// secondary zones from the same primaries, with the same key.
	Catalog bool `mapstructure:"catalog"`
	// Mirror: the copy is for this node's resolver only (RFC 8806 local
	// root, national zones): not answered to clients authoritatively.
	Mirror bool `mapstructure:"mirror"`
	// Expire: "soa" (the SOA's expire), a duration, or "never" (keep
	// serving the last copy however old).
	Expire string `mapstructure:"expire"`
	// AllowNotify: who else than the primaries' addresses may NOTIFY the
	// zone (an access list, as allow_transfer).
	AllowNotify []string `mapstructure:"allow_notify"`
	// TransferSource: the addresses SOA queries and transfers leave from,
	// at most one IPv4 and one IPv6.
	TransferSource []string `mapstructure:"transfer_source"`
}

// CatalogConfig is the catalog section: the catalog zone this node
// publishes of its primary zones.
type CatalogConfig struct {
	Zone string `mapstructure:"zone"`
}

// JournalConfig is the journal section.
type JournalConfig struct {
	MaxSizeMB int           `mapstructure:"max_size_mb"`
	MaxAge    time.Duration `mapstructure:"max_age"`
}

// ControlConfig is the control section.
type ControlConfig struct {
	Listen string        `mapstructure:"listen"`
	Tokens []TokenConfig `mapstructure:"tokens"`
}

// TokenConfig is one bearer token of the control API on TCP.
type TokenConfig struct {
	Name       string `mapstructure:"name"`
	Secret     string `mapstructure:"secret"`
	SecretFile string `mapstructure:"secret_file"`
}

// Replication is the validated replication configuration.
type Replication struct {
	Keys        map[string]replication.Key // by canonical name
	Default     replication.Policy
	Zones       map[string]replication.Policy // by zone
	Secondaries []replication.SecondaryZone
	Catalog     string // zone name; empty: none published
	// NotifyStartRate is how many zones a second are notified at start.
	NotifyStartRate int
}

// Policy returns the policy of a primary zone: its own entry in zones, or
// the primary section's.
func (r *Replication) Policy(origin string) replication.Policy {
	if p, ok := r.Zones[strings.ToLower(dns.Fqdn(origin))]; ok {
		return p
	}
	return r.Default
}

// Config is the replication package's view of the configuration.
func (r *Replication) Config() replication.Config {
	return replication.Config{Keys: r.Keys, Policy: r.Policy, Secondaries: r.Secondaries, Catalog: r.Catalog,
		NotifyStartRate: r.NotifyStartRate}
}

var tsigAlgorithms = map[string]string{
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
	"hmac-sha224": dns.HmacSHA224,
	"hmac-sha1":   dns.HmacSHA1,
}

// validateReplication checks the replication sections and fills c.Repl.
func (c *Config) validateReplication(bad func(string, any, string)) {
	r := Replication{Keys: map[string]replication.Key{}, Zones: map[string]replication.Policy{}}
	for i, k := range c.TSIGKeys {
		key := fmt.Sprintf("tsig_keys[%d]", i)
		name := strings.ToLower(dns.Fqdn(strings.TrimSpace(k.Name)))
		if _, ok := dns.IsDomainName(name); !ok || strings.TrimSpace(k.Name) == "" {
			bad(key+".name", k.Name, "must be a domain name, as the key is named on both sides")
			continue
		}
		if _, dup := r.Keys[name]; dup {
			bad(key+".name", k.Name, "names another key already")
			continue
		}
		alg, ok := tsigAlgorithms[strings.ToLower(strings.TrimSuffix(cmpOr(k.Algorithm, "hmac-sha256"), "."))]
		if !ok {
			bad(key+".algorithm", k.Algorithm, "must be hmac-sha256 (the default), hmac-sha384, hmac-sha512, hmac-sha224 or hmac-sha1")
			continue
		}
		secret := strings.TrimSpace(k.Secret)
		if k.SecretFile != "" {
			if secret != "" {
				bad(key+".secret_file", k.SecretFile, "give secret or secret_file, not both")
				continue
			}
			b, err := os.ReadFile(k.SecretFile)
			if err != nil {
				bad(key+".secret_file", k.SecretFile, "must be a readable file holding the base64 secret ("+err.Error()+")")
				continue
			}
			secret = strings.TrimSpace(string(b))
		}
		raw, err := base64.StdEncoding.DecodeString(secret)
		if err != nil || len(raw) < 16 {
			bad(key+".secret", "(hidden)", "must be base64 of at least 16 bytes (e.g. from tsig-keygen or `openssl rand -base64 32`)")
			continue
		}
		r.Keys[name] = replication.Key{Algorithm: alg, Secret: secret}
	}
	r.Default = r.policy("primary", c.Primary.ZonePolicyConfig, bad)
	r.NotifyStartRate = c.Primary.NotifyStartRate
	if r.NotifyStartRate < 1 {
		bad("primary.notify_start_rate", r.NotifyStartRate, "must be 1 or more (zones notified a second at start)")
	}
	for i, z := range c.Zones {
		key := fmt.Sprintf("zones[%d]", i)
		name, ok := zoneName(z.Zone)
		if !ok {
			bad(key+".zone", z.Zone, "must be a domain name")
			continue
		}
		if _, dup := r.Zones[name]; dup {
			bad(key+".zone", z.Zone, "is listed twice")
			continue
		}
		p := r.policy(key, z, bad)
		if len(z.NotifySource) == 0 {
			p.NotifySource = r.Default.NotifySource
		}
		r.Zones[name] = p
	}
	seen := map[string]bool{}
	for i, s := range c.Secondary {
		key := fmt.Sprintf("secondary[%d]", i)
		name, ok := zoneName(s.Zone)
		if !ok {
			bad(key+".zone", s.Zone, "must be a domain name")
			continue
		}
		if seen[name] {
			bad(key+".zone", s.Zone, "is listed twice")
			continue
		}
		seen[name] = true
		if _, primary := r.Zones[name]; primary {
			bad(key+".zone", s.Zone, "is also in zones (a primary zone's policy); a zone is either")
		}
		sec := replication.SecondaryZone{Zone: name, Catalog: s.Catalog, Mirror: s.Mirror}
		switch e := strings.TrimSpace(s.Expire); e {
		case "", "soa":
		case "never":
			sec.Expire = replication.ExpireNever
		default:
			d, err := time.ParseDuration(e)
			if err != nil || d < time.Minute || d > 10*365*24*time.Hour {
				bad(key+".expire", s.Expire, "must be soa, never, or a duration between 1m and 87600h")
			}
			sec.Expire = d
		}
		sec.AllowNotify = r.acl(key+".allow_notify", s.AllowNotify, bad)
		sec.TransferSource = sources(key+".transfer_source", s.TransferSource, bad)
		if s.Mirror && s.Catalog {
			bad(key+".mirror", s.Mirror, "a catalog zone cannot be a mirror")
		}
		if s.Key != "" {
			kn := strings.ToLower(dns.Fqdn(s.Key))
			if _, ok := r.Keys[kn]; !ok {
				bad(key+".key", s.Key, "must name a key in tsig_keys")
			}
			sec.Key = kn
		}
		if len(s.Primaries) == 0 {
			bad(key+".primaries", "", "at least one primary is needed (IP or IP:port)")
		}
		for j, p := range s.Primaries {
			ap, err := parseHostPort(p)
			if err != nil {
				bad(fmt.Sprintf("%s.primaries[%d]", key, j), p, "must be IP or IP:port")
				continue
			}
			sec.Primaries = append(sec.Primaries, replication.Target{Addr: ap, Key: sec.Key})
		}
		r.Secondaries = append(r.Secondaries, sec)
	}
	if c.Catalog.Zone != "" {
		name, ok := zoneName(c.Catalog.Zone)
		if !ok {
			bad("catalog.zone", c.Catalog.Zone, "must be a domain name, e.g. catalog.sovdns.invalid")
		}
		if seen[name] {
			bad("catalog.zone", c.Catalog.Zone, "is a secondary zone here")
		}
		r.Catalog = name
	}
	if c.Journal.MaxSizeMB < 1 || c.Journal.MaxSizeMB > 1<<16 {
		bad("journal.max_size_mb", c.Journal.MaxSizeMB, "must be between 1 and 65536")
	}
	if c.Journal.MaxAge < 0 {
		bad("journal.max_age", c.Journal.MaxAge, "must be 0 (no limit) or a duration such as 2160h")
	}
	if c.Control.Listen != "" {
		ap, err := netip.ParseAddrPort(c.Control.Listen)
		if err != nil || !ap.Addr().IsLoopback() {
			bad("control.listen", c.Control.Listen, "must be a loopback IP:port (the control API is not for the network), or empty")
		}
		if len(c.Control.Tokens) == 0 {
			bad("control.tokens", "", "control.listen needs at least one token")
		}
	}
	c.ControlTokens = map[string]string{}
	for i, t := range c.Control.Tokens {
		key := fmt.Sprintf("control.tokens[%d]", i)
		secret := t.Secret
		if t.SecretFile != "" {
			b, err := os.ReadFile(t.SecretFile)
			if err != nil {
				bad(key+".secret_file", t.SecretFile, "must be a readable file ("+err.Error()+")")
				continue
			}
			secret = strings.TrimSpace(string(b))
		}
		if strings.TrimSpace(t.Name) == "" {
			bad(key+".name", t.Name, "must name the token (it is the author of its changes)")
			continue
		}
		if len(secret) < 16 {
			bad(key+".secret", "(hidden)", "must be at least 16 characters")
			continue
		}
		c.ControlTokens[secret] = t.Name
	}
	c.Repl = r
}

// policy validates one zone policy.
func (r *Replication) policy(key string, z ZonePolicyConfig, bad func(string, any, string)) replication.Policy {
	var p replication.Policy
	p.AllowTransfer = r.acl(key+".allow_transfer", z.AllowTransfer, bad)
	p.AllowUpdate = r.acl(key+".allow_update", z.AllowUpdate, bad)
	p.NotifySource = sources(key+".notify_source", z.NotifySource, bad)
	for i, n := range z.Notify {
		k := fmt.Sprintf("%s.notify[%d]", key, i)
		var t replication.Target
		ok := true
		for _, f := range strings.Fields(n) {
			if name, isKey := strings.CutPrefix(f, "key:"); isKey {
				t.Key = r.keyName(k, name, bad)
				continue
			}
			ap, err := parseHostPort(f)
			if err != nil {
				bad(k, n, "must be IP or IP:port, optionally followed by key:NAME")
				ok = false
				break
			}
			t.Addr = ap
		}
		if ok && !t.Addr.IsValid() {
			bad(k, n, "must name an address")
			ok = false
		}
		if ok {
			p.Notify = append(p.Notify, t)
		}
	}
	return p
}

// acl parses entries: "any", an address or network, "key:NAME", or an
// address or network followed by key:NAME.
func (r *Replication) acl(key string, entries []string, bad func(string, any, string)) replication.ACL {
	var out replication.ACL
	for i, s := range entries {
		k := fmt.Sprintf("%s[%d]", key, i)
		var e replication.ACLEntry
		fields := strings.Fields(s)
		if len(fields) == 0 || len(fields) > 2 {
			bad(k, s, `must be "any", an address or network, "key:NAME", or a network and a key ("10.0.0.0/8 key:xfr")`)
			continue
		}
		ok, where := true, false
		for _, f := range fields {
			if name, isKey := strings.CutPrefix(f, "key:"); isKey {
				e.Key = r.keyName(k, name, bad)
				ok = ok && e.Key != ""
				continue
			}
			where = true
			if f == "any" {
				e.Any = true
				continue
			}
			p, err := netip.ParsePrefix(f)
			if err != nil {
				a, aerr := netip.ParseAddr(f)
				if aerr != nil {
					bad(k, s, "must be an address or network such as 192.0.2.0/24, any, or key:NAME")
					ok = false
					continue
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			e.Prefix = p.Masked()
		}
		if !where {
			e.Any = true // a key alone: from anywhere
		}
		if ok {
			out = append(out, e)
		}
	}
	return out
}

func (r *Replication) keyName(k, name string, bad func(string, any, string)) string {
	n := strings.ToLower(dns.Fqdn(name))
	if _, ok := r.Keys[n]; !ok {
		bad(k, name, "names no key in tsig_keys")
		return ""
	}
	return n
}

// sources reads the source addresses of notify_source or
// transfer_source: addresses of this host without a port (the system picks
// the port), at most one per address family.
func sources(key string, vals []string, bad func(string, any, string)) replication.Sources {
	var out replication.Sources
	for i, v := range vals {
		k := fmt.Sprintf("%s[%d]", key, i)
		a, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(v), "[]"))
		switch {
		case err != nil:
			why := "must be an IP address of this host, such as 192.0.2.53 or 2001:db8::53"
			if _, perr := netip.ParseAddrPort(strings.TrimSpace(v)); perr == nil {
				why = "must be an IP address without a port (the port is the system's choice)"
			}
			bad(k, v, why)
			continue
		case a.IsUnspecified() || a.IsMulticast() || a.Zone() != "":
			bad(k, v, "must be a unicast address of this host (leave the key out for the system's choice)")
			continue
		}
		a = a.Unmap()
		slot := &out.V6
		if a.Is4() {
			slot = &out.V4
		}
		if slot.IsValid() {
			bad(k, v, "gives a second address of the same family: give at most one IPv4 and one IPv6 address")
			continue
		}
		*slot = a
	}
	return out
}

func zoneName(s string) (string, bool) {
	s = strings.TrimSpace(s)
	name := strings.ToLower(dns.Fqdn(s))
	_, ok := dns.IsDomainName(name)
	return name, ok && s != ""
}

// parseHostPort reads IP or IP:port (port 53 when absent).
func parseHostPort(s string) (netip.AddrPort, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, 53), nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
