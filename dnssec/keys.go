package dnssec

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Role is what a key signs.
type Role string

// The key roles.
const (
	RoleCSK Role = "csk" // combined: signs everything
	RoleKSK Role = "ksk" // signs the DNSKEY, CDS and CDNSKEY RRsets
	RoleZSK Role = "zsk" // signs everything else
)

// State is where a key is in its life.
type State string

// The key states. A rollover moves keys through them.
const (
	// StateDSPending: a new KSK or CSK whose DS the parent should publish
	// next to the current one (the first step of a double-DS rollover). It
	// is in CDS and CDNSKEY, and in DNSKEY without signing, so that every
	// cached DNSKEY RRset holds it before it signs.
	StateDSPending State = "ds-pending"
	// StatePublished: in DNSKEY, not yet signing (a pre-published ZSK).
	StatePublished State = "published"
	// StateActive: in DNSKEY and signing.
	StateActive State = "active"
	// StateRetired: no longer signing. A retired ZSK or CSK stays in
	// DNSKEY until the signatures it made over the zone's data have left
	// every cache (a CSK until it is deleted); a retired KSK has left
	// DNSKEY. A retired KSK or CSK waits for its DS to be withdrawn from
	// the parent.
	StateRetired State = "retired"
	// StateIncoming: a key of the new algorithm in an algorithm rollover
	// (RFC 6781 §4.1.4): it signs, and is not yet in DNSKEY, until
	// every cached RRset carries its signatures.
	StateIncoming State = "incoming"
	// StateOutgoing: a key of the old algorithm at the end of an
	// algorithm rollover: it has left DNSKEY and still signs, until no
	// cache can hold a DNSKEY RRset with it.
	StateOutgoing State = "outgoing"
)

// Key is one DNSSEC key of a zone, with its private half.
type Key struct {
	DNSKEY  *dns.DNSKEY
	Private crypto.Signer
	Role    Role
	State   State
	Created time.Time
	Changed time.Time // when State was last set
	// DSSeen: for a key waiting for its DS, when every parent server was
	// first seen to publish it; zero while they do not.
	DSSeen time.Time
}

// Tag returns the key tag.
func (k *Key) Tag() uint16 { return k.DNSKEY.KeyTag() }

// ID names the key within its zone: algorithm and key tag.
func (k *Key) ID() string { return fmt.Sprintf("%d-%d", k.DNSKEY.Algorithm, k.Tag()) }

// Published reports whether the key belongs in the DNSKEY RRset.
func (k *Key) Published() bool {
	switch k.State {
	case StateDSPending, StatePublished, StateActive:
		return true
	case StateRetired:
		return k.Role != RoleKSK
	}
	return false
}

// SignsKeys reports whether the key signs the apex key RRsets.
func (k *Key) SignsKeys() bool { return k.signs() && k.Role != RoleZSK }

// SignsZone reports whether the key signs the zone's other RRsets.
func (k *Key) SignsZone() bool { return k.signs() && k.Role != RoleKSK }

func (k *Key) signs() bool {
	return k.State == StateActive || k.State == StateIncoming || k.State == StateOutgoing
}

// InParent reports whether the key's DS belongs in the parent (and the
// key in CDS and CDNSKEY).
func (k *Key) InParent() bool {
	return k.Role != RoleZSK && (k.State == StateActive || k.State == StateDSPending)
}

// DS returns the key's DS record with a SHA-256 digest.
func (k *Key) DS() *dns.DS { return k.DNSKEY.ToDS(dns.SHA256) }

// ErrKeyData: a stored key cannot be read back.
var ErrKeyData = errors.New("unreadable key")

// GenerateKey makes a new key for origin.
func GenerateKey(origin string, p Policy, role Role, state State, now time.Time) (*Key, error) {
	flags := uint16(dns.ZONE)
	if role != RoleZSK {
		flags |= dns.SEP
	}
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: dns.Fqdn(strings.ToLower(origin)), Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET},
		Flags:     flags,
		Protocol:  3,
		Algorithm: p.Algorithm,
	}
	bits := 256
	switch p.Algorithm {
	case dns.ED25519:
		bits = 256
	case dns.RSASHA256:
		bits = p.RSABits
		if bits == 0 {
			bits = 2048
		}
	case dns.ECDSAP256SHA256:
	default:
		return nil, fmt.Errorf("%w: %d", ErrAlgorithm, p.Algorithm)
	}
	// A key whose tag is 0 is one miekg/dns will not sign with (it takes 0
	// for "no key"): about one key in 65,536. Such a key is made again.
	var priv crypto.PrivateKey
	var err error
	for try := 0; ; try++ {
		priv, err = k.Generate(bits)
		if err != nil {
			return nil, fmt.Errorf("generate %s key: %w", role, err)
		}
		if k.KeyTag() != 0 {
			break
		}
		if try == 8 {
			return nil, fmt.Errorf("generate %s key: key tag 0 every time", role)
		}
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("generate %s key: %T is not a signer", role, priv)
	}
	return &Key{DNSKEY: k, Private: signer, Role: role, State: state, Created: now.UTC(), Changed: now.UTC()}, nil
}

// storedKey is a key at rest. The private key is in the BIND private-key
// format, which dnssec-keygen and ldns-keygen also write.
type storedKey struct {
	DNSKEY  string    `json:"dnskey"`
	Private string    `json:"private"`
	Role    Role      `json:"role"`
	State   State     `json:"state"`
	Created time.Time `json:"created"`
	Changed time.Time `json:"changed"`
	DSSeen  time.Time `json:"ds_seen,omitzero"`
}

// MarshalKey encodes k, private key included, for storage.
func MarshalKey(k *Key) ([]byte, error) {
	return json.Marshal(storedKey{
		DNSKEY:  k.DNSKEY.String(),
		Private: k.DNSKEY.PrivateKeyString(k.Private),
		Role:    k.Role,
		State:   k.State,
		Created: k.Created,
		Changed: k.Changed,
		DSSeen:  k.DSSeen,
	})
}

// UnmarshalKey decodes a key written by MarshalKey.
func UnmarshalKey(b []byte) (*Key, error) {
	var sk storedKey
	if err := json.Unmarshal(b, &sk); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyData, err)
	}
	rr, err := dns.NewRR(sk.DNSKEY)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyData, err)
	}
	k, ok := rr.(*dns.DNSKEY)
	if !ok {
		return nil, fmt.Errorf("%w: not a DNSKEY", ErrKeyData)
	}
	priv, err := k.NewPrivateKey(sk.Private)
	if err != nil {
		return nil, fmt.Errorf("%w: key %d: %w", ErrKeyData, k.KeyTag(), err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: key %d is not a signer", ErrKeyData, k.KeyTag())
	}
	switch sk.Role {
	case RoleCSK, RoleKSK, RoleZSK:
	default:
		return nil, fmt.Errorf("%w: key %d: role %q", ErrKeyData, k.KeyTag(), sk.Role)
	}
	switch sk.State {
	case StateDSPending, StatePublished, StateActive, StateRetired, StateIncoming, StateOutgoing:
	default:
		return nil, fmt.Errorf("%w: key %d: state %q", ErrKeyData, k.KeyTag(), sk.State)
	}
	return &Key{DNSKEY: k, Private: signer, Role: sk.Role, State: sk.State, Created: sk.Created, Changed: sk.Changed, DSSeen: sk.DSSeen}, nil
}
