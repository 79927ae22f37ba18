package dnssec

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Denial is how a signed zone proves that names and types do not exist.
type Denial string

// The denial-of-existence methods.
const (
	DenialNSEC  Denial = "nsec"  // RFC 4034 §4
	DenialNSEC3 Denial = "nsec3" // RFC 5155, hashed names
)

// Policy is how one zone is signed. The zero value is not usable; start
// from DefaultPolicy.
type Policy struct {
	Algorithm uint8 `json:"algorithm"` // 13 (ECDSA P-256), 15 (Ed25519) or 8 (RSA/SHA-256)
	// SplitKeys signs with a key-signing key for the DNSKEY RRset and a
	// zone-signing key for the rest; otherwise one combined key (CSK)
	// signs everything.
	SplitKeys bool   `json:"split_keys"`
	RSABits   int    `json:"rsa_bits,omitempty"` // for algorithm 8; 0: 2048
	Denial    Denial `json:"denial"`
	// NSEC3 parameters. RFC 9276 §3.1: no extra iterations and no salt,
	// which is the default.
	Iterations uint16 `json:"nsec3_iterations"`
	Salt       string `json:"nsec3_salt"` // hex; empty for none
	OptOut     bool   `json:"nsec3_opt_out"`

	// Validity is how long a new signature is valid for, from its
	// inception (which is InceptionOffset before signing, for clock skew).
	Validity        Duration `json:"validity"`
	InceptionOffset Duration `json:"inception_offset"`
	// Refresh: a signature with less than this left is made again.
	Refresh Duration `json:"refresh"`
	// Jitter: each new signature expires up to this much earlier than
	// Validity says, at random, so that they come due for refresh spread
	// over time rather than all at once.
	Jitter Duration `json:"jitter"`
	// PropagationDelay is how long a change takes to reach every secondary
	// and be seen everywhere: it is added to every rollover wait.
	PropagationDelay Duration `json:"propagation_delay"`
	// FitTiming: Refresh and Validity were not chosen by the operator, and
	// are raised as the zone needs when signing is enabled (Fit).
	FitTiming bool `json:"fit_timing,omitempty"`
	// ParentServers are the parent zone's name servers (IP or IP:port)
	// that a KSK or CSK rollover asks for the zone's DS. Empty: the
	// parent zone held in the same store, or else the parent's NS found
	// through a resolver.
	ParentServers []string `json:"parent_servers,omitempty"`
	// Unsigning is when signing was asked to be turned off; zero while
	// it is not. Meanwhile the zone stays signed, with CDS and CDNSKEY
	// holding the RFC 8078 delete records that ask the parent to remove
	// the DS, until every parent server has withdrawn it (DSGone: when
	// that was first seen) and its TTL has passed.
	Unsigning time.Time `json:"unsigning,omitzero"`
	DSGone    time.Time `json:"ds_gone,omitzero"`
	// AlgorithmFrom is, during an algorithm rollover, the algorithm the
	// zone is leaving (its keys sign until the rollover ends); zero
	// otherwise.
	AlgorithmFrom uint8 `json:"algorithm_rollover_from,omitempty"`
}

// Duration is a time.Duration that reads and writes as "336h0m0s" in JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// ParseDuration reads a Go duration, or a number of days written "14d".
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != days {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, nil
}

// MaintenanceInterval is how often a running server looks for signatures
// due for refresh and rollover steps due. The refresh window must cover it.
const MaintenanceInterval = time.Hour

const day = 24 * time.Hour

// DefaultPolicy returns the policy a zone gets unless told otherwise:
// ECDSA P-256 with one combined key, NSEC, signatures valid for 21 days
// and refreshed when 15 are left.
func DefaultPolicy() Policy {
	return Policy{
		Algorithm:        dns.ECDSAP256SHA256,
		Denial:           DenialNSEC,
		Validity:         Duration(21 * day),
		InceptionOffset:  Duration(time.Hour),
		Refresh:          Duration(15 * day),
		Jitter:           Duration(12 * time.Hour),
		PropagationDelay: Duration(time.Hour),
	}
}

// Sentinels for refused policies; test with errors.Is.
var (
	ErrAlgorithm = errors.New("unsupported algorithm (use 13, 15 or 8)")
	ErrPolicy    = errors.New("invalid DNSSEC policy")
	// ErrExpiryGuard: the signatures would not outlive what a secondary
	// may serve them for.
	ErrExpiryGuard = errors.New("signatures would expire while secondaries may still serve them")
)

// ParseServer reads a name server's address: an IP address, with or
// without a port (53 when none is given).
func ParseServer(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	ip, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address or IP:port", s)
	}
	return netip.AddrPortFrom(ip, 53), nil
}

// Check validates the policy on its own.
func (p Policy) Check() error {
	switch p.Algorithm {
	case dns.ECDSAP256SHA256, dns.ED25519:
	case dns.RSASHA256:
		if p.RSABits != 0 && (p.RSABits < 2048 || p.RSABits > 4096) {
			return fmt.Errorf("%w: rsa_bits %d is outside 2048..4096", ErrPolicy, p.RSABits)
		}
	default:
		return fmt.Errorf("%w: %d", ErrAlgorithm, p.Algorithm)
	}
	switch p.Denial {
	case DenialNSEC:
		if p.OptOut || p.Iterations != 0 || p.Salt != "" {
			return fmt.Errorf("%w: NSEC3 parameters given with denial nsec", ErrPolicy)
		}
	case DenialNSEC3:
		// RFC 9276 §3.1 asks for 0; validators treat more than 100 (some
		// 50) as insecure, which would make the zone unverifiable.
		if p.Iterations > 50 {
			return fmt.Errorf("%w: nsec3 iterations %d (RFC 9276: use 0; validators give up above 50-150)", ErrPolicy, p.Iterations)
		}
		if len(p.Salt) > 2*255 || len(p.Salt)%2 != 0 || strings.Trim(strings.ToLower(p.Salt), "0123456789abcdef") != "" {
			return fmt.Errorf("%w: nsec3 salt %q is not hex of at most 255 bytes", ErrPolicy, p.Salt)
		}
	default:
		return fmt.Errorf("%w: denial %q (use nsec or nsec3)", ErrPolicy, p.Denial)
	}
	for _, a := range p.ParentServers {
		if _, err := ParseServer(a); err != nil {
			return fmt.Errorf("%w: parent server: %w", ErrPolicy, err)
		}
	}
	if p.Validity <= 0 || p.Refresh <= 0 || p.Jitter < 0 || p.InceptionOffset < 0 || p.PropagationDelay < 0 {
		return fmt.Errorf("%w: validity and refresh must be positive, jitter, inception offset and propagation delay not negative", ErrPolicy)
	}
	if p.Refresh.D()+p.Jitter.D()+MaintenanceInterval >= p.Validity.D() {
		return fmt.Errorf("%w: validity %s must exceed refresh %s + jitter %s + %s, or every signature is due at once",
			ErrPolicy, p.Validity.D(), p.Refresh.D(), p.Jitter.D(), MaintenanceInterval)
	}
	return nil
}

// CheckZone applies the expiry guard for a zone with the given SOA and
// largest TTL: a secondary keeps serving a copy until SOA EXPIRE after
// its last refresh, and a resolver keeps an answer for its TTL, so every
// signature must still have that long to live when it is refreshed.
func (p Policy) CheckZone(soa *dns.SOA, maxTTL uint32) error {
	if err := p.Check(); err != nil {
		return err
	}
	need := guardNeed(soa, maxTTL)
	if p.Refresh.D() < need {
		fit := p.Fit(soa, maxTTL)
		return fmt.Errorf("%w: refresh %s is less than SOA expire %ds + largest TTL %ds + %s; raise refresh to at least %s (e.g. --refresh %s --validity %s), or give neither to have them chosen, or lower the SOA expire",
			ErrExpiryGuard, p.Refresh.D(), soa.Expire, maxTTL, MaintenanceInterval, need, days(fit.Refresh.D()), days(fit.Validity.D()))
	}
	return nil
}

// guardNeed is the least refresh window the expiry guard accepts.
func guardNeed(soa *dns.SOA, maxTTL uint32) time.Duration {
	return time.Duration(soa.Expire)*time.Second + time.Duration(maxTTL)*time.Second + MaintenanceInterval
}

// Fit returns p with Refresh raised, if the expiry guard needs it, to the
// guard's minimum for a zone with soa and maxTTL rounded up to whole days,
// and Validity raised to keep its margin over Refresh (at least
// DefaultPolicy's 6 days). A policy the guard accepts comes back as it is.
func (p Policy) Fit(soa *dns.SOA, maxTTL uint32) Policy {
	need := guardNeed(soa, maxTTL)
	if p.Refresh.D() >= need {
		return p
	}
	def := DefaultPolicy()
	margin := max(p.Validity.D()-p.Refresh.D(), def.Validity.D()-def.Refresh.D())
	refresh := (need + day - 1) / day * day
	p.Refresh = Duration(refresh)
	p.Validity = Duration(max(p.Validity.D(), refresh+margin))
	return p
}

// days writes d as whole days ("45d") when it is a multiple of a day.
func days(d time.Duration) string {
	if d > 0 && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}
