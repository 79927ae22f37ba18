package config

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/resolver"
)

// ServeStaleConfig is the resolver.serve_stale section (RFC 8767).
type ServeStaleConfig struct {
	MaxStale       time.Duration `mapstructure:"max_stale"`
	StaleTTL       time.Duration `mapstructure:"stale_ttl"`
	ClientTimeout  time.Duration `mapstructure:"client_timeout"`
	FailureRecheck time.Duration `mapstructure:"failure_recheck"`
}

// PersistConfig is the resolver.persist section: the cache on disk.
type PersistConfig struct {
	Enabled     bool          `mapstructure:"enabled"`
	Interval    time.Duration `mapstructure:"interval"`
	WriteBehind time.Duration `mapstructure:"write_behind"`
}

// ResilienceConfig is the resilience section: what keeps the node
// answering while the outside world is unreachable.
type ResilienceConfig struct {
	NationalSuffixes []string      `mapstructure:"national_suffixes"`
	NationalHints    []string      `mapstructure:"national_hints"`
	SignatureGrace   time.Duration `mapstructure:"signature_grace"`
	Island           IslandConfig  `mapstructure:"island"`
	KeepWarm         []string      `mapstructure:"keep_warm"`
	KeepWarmInterval time.Duration `mapstructure:"keep_warm_interval"`
	AuditInterval    time.Duration `mapstructure:"audit_interval"`

	// Derived by Validate.
	National   []string         `mapstructure:"-"` // lower-case, fully qualified
	HintRRs    []dns.RR         `mapstructure:"-"` // national_hints, files read
	WarmNames  []WarmName       `mapstructure:"-"`
	ProbeAddrs []netip.AddrPort `mapstructure:"-"`
}

// IslandConfig is the resilience.island section.
type IslandConfig struct {
	Enabled       bool          `mapstructure:"enabled"`
	Failures      int           `mapstructure:"failures"`
	Probes        []string      `mapstructure:"probes"`
	ProbeInterval time.Duration `mapstructure:"probe_interval"`
	TrialWait     time.Duration `mapstructure:"trial_wait"`
	KeepCopies    bool          `mapstructure:"keep_copies"`
}

// WarmName is one entry of resilience.keep_warm.
type WarmName struct {
	Name  string // fully qualified
	Types []uint16
}

func (s *ServeStaleConfig) validate(bad func(string, any, string)) {
	if s.MaxStale < 0 || s.MaxStale > 30*24*time.Hour {
		bad("resolver.serve_stale.max_stale", s.MaxStale, "must be between 0s (off) and 720h")
	}
	if s.StaleTTL < time.Second || s.StaleTTL > time.Hour {
		bad("resolver.serve_stale.stale_ttl", s.StaleTTL, "must be between 1s and 1h (RFC 8767 suggests 30s)")
	}
	if s.ClientTimeout < 0 || s.ClientTimeout > 10*time.Second {
		bad("resolver.serve_stale.client_timeout", s.ClientTimeout, "must be between 0s (off) and 10s")
	}
	if s.FailureRecheck < time.Second || s.FailureRecheck > time.Hour {
		bad("resolver.serve_stale.failure_recheck", s.FailureRecheck, "must be between 1s and 1h (RFC 8767 suggests 30s)")
	}
}

func (p *PersistConfig) validate(bad func(string, any, string)) {
	if p.Interval < 10*time.Second || p.Interval > 24*time.Hour {
		bad("resolver.persist.interval", p.Interval, "must be between 10s and 24h")
	}
	if p.WriteBehind != 0 && (p.WriteBehind < 100*time.Millisecond || p.WriteBehind > time.Minute) {
		bad("resolver.persist.write_behind", p.WriteBehind, "must be 0s (off: saved every interval) or between 100ms and 1m")
	}
}

func (r *ResilienceConfig) validate(bad func(string, any, string)) {
	r.National = r.National[:0]
	for i, s := range r.NationalSuffixes {
		n, ok := zoneName(s)
		if !ok {
			bad(fmt.Sprintf("resilience.national_suffixes[%d]", i), s, "must be a domain name, e.g. az.")
			continue
		}
		r.National = append(r.National, n)
	}
	r.validateHints(bad)
	if r.SignatureGrace < 0 || r.SignatureGrace > 30*24*time.Hour {
		bad("resilience.signature_grace", r.SignatureGrace, "must be between 0s (off) and 720h")
	}
	is := &r.Island
	if is.Failures < 1 || is.Failures > 1000 {
		bad("resilience.island.failures", is.Failures, "must be between 1 and 1000")
	}
	if is.ProbeInterval < time.Second || is.ProbeInterval > time.Hour {
		bad("resilience.island.probe_interval", is.ProbeInterval, "must be between 1s and 1h")
	}
	if is.TrialWait < time.Millisecond || is.TrialWait > time.Second {
		bad("resilience.island.trial_wait", is.TrialWait, "must be between 1ms and 1s")
	}
	r.ProbeAddrs = r.ProbeAddrs[:0]
	for i, p := range is.Probes {
		ap, err := parseHostPort(p)
		if err != nil {
			bad(fmt.Sprintf("resilience.island.probes[%d]", i), p, "must be IP or IP:port, with IPv6 as [addr]:port")
			continue
		}
		r.ProbeAddrs = append(r.ProbeAddrs, ap)
	}
	r.WarmNames = r.WarmNames[:0]
	for i, w := range r.KeepWarm {
		k := fmt.Sprintf("resilience.keep_warm[%d]", i)
		f := strings.Fields(w)
		if len(f) == 0 {
			bad(k, w, "must be a name, optionally followed by types (\"mail.example.com A AAAA\")")
			continue
		}
		name, ok := zoneName(f[0])
		if !ok {
			bad(k, w, "must start with a domain name")
			continue
		}
		wn := WarmName{Name: name}
		for _, t := range f[1:] {
			typ, ok := dns.StringToType[strings.ToUpper(t)]
			if !ok || typ == dns.TypeANY || typ == dns.TypeAXFR || typ == dns.TypeIXFR || typ == dns.TypeOPT {
				bad(k, w, "has an unknown or meta type "+t)
				continue
			}
			wn.Types = append(wn.Types, typ)
		}
		if len(wn.Types) == 0 {
			wn.Types = []uint16{dns.TypeA, dns.TypeAAAA}
		}
		r.WarmNames = append(r.WarmNames, wn)
	}
	if len(r.KeepWarm) > 10000 {
		bad("resilience.keep_warm", len(r.KeepWarm), "must have at most 10000 names")
	}
	if r.KeepWarmInterval < time.Second || r.KeepWarmInterval > time.Hour {
		bad("resilience.keep_warm_interval", r.KeepWarmInterval, "must be between 1s and 1h")
	}
	if r.AuditInterval != 0 && (r.AuditInterval < time.Minute || r.AuditInterval > 7*24*time.Hour) {
		bad("resilience.audit_interval", r.AuditInterval, "must be 0s (off) or between 1m and 168h")
	}
}

// validateHints reads resilience.national_hints: each entry a file of
// hints, or a record of them ("az. NS a.nic.az."); an entry that names an
// existing file is one, an entry with a blank in it a record.
func (r *ResilienceConfig) validateHints(bad func(string, any, string)) {
	r.HintRRs = nil
	for i, h := range r.NationalHints {
		key := fmt.Sprintf("resilience.national_hints[%d]", i)
		h = strings.TrimSpace(h)
		var rrs []dns.RR
		var err error
		if info, serr := os.Stat(h); serr == nil && info.Mode().IsRegular() {
			var text []byte
			if text, err = os.ReadFile(h); err == nil {
				rrs, err = resolver.ParseNationalHints(bytes.NewReader(text), h)
			}
		} else if strings.ContainsAny(h, " \t") {
			rrs, err = resolver.ParseNationalHints(strings.NewReader(h), key)
		} else {
			bad(key, h, "must be a readable hints file, or an NS, A or AAAA record such as \"az. NS ns1.nic.az.\"")
			continue
		}
		if err != nil {
			bad(key, h, err.Error())
			continue
		}
		r.HintRRs = append(r.HintRRs, rrs...)
	}
	if len(r.NationalHints) == 0 {
		return
	}
	if len(r.National) == 0 {
		bad("resilience.national_hints", strings.Join(r.NationalHints, ", "), "needs resilience.national_suffixes")
		return
	}
	if len(r.HintRRs) > 0 {
		if err := resolver.CheckNationalHints(r.HintRRs, r.National); err != nil {
			bad("resilience.national_hints", strings.Join(r.NationalHints, ", "), err.Error())
		}
	}
}
