package dnssec

// Validation (RFC 4033, 4034, 4035, 6840): the pure checks a validating
// resolver makes, with no I/O. VerifyRRset checks one RRset's signatures
// against a zone's keys, VerifyDNSKEYs authenticates a zone's DNSKEY RRset
// with the DS RRset from its parent or with trust anchors, and
// ProveNXDomain, ProveNoData and ProveWildcard (validate_denial.go) check
// NSEC and NSEC3 proofs. The resolver fetches the records and walks the
// chain of trust; these functions decide.
//
// Every function takes the time to check signatures against and a Budget
// that caps the work one resolution may cause (KeyTrap, CVE-2023-50387, and
// the NSEC3 closest-encloser attack, CVE-2023-50868). The Budget can also
// carry a grace for expired signatures (Budget.Grace), which the caller
// grants by its own policy (the resolver's island mode); by default there
// is none.

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// SecStatus is the security status of validated data (RFC 4035 §4.3).
type SecStatus uint8

// The security statuses.
const (
	// Unchecked: not validated (validation is off).
	Unchecked SecStatus = iota
	// Secure: a chain of signed DNSKEY and DS records leads from a trust
	// anchor to the data.
	Secure
	// Insecure: the data lies outside every trust anchor, below a negative
	// trust anchor, or below a delegation proven unsigned (no DS, only
	// unsupported algorithms or digests, an NSEC3 opt-out span or too many
	// NSEC3 iterations).
	Insecure
	// Bogus: the data should be signed and its signatures or proofs fail.
	Bogus
	// Indeterminate: the records needed to decide could not be obtained
	// (the servers of a zone on the chain did not answer).
	Indeterminate
)

var secStatusNames = [...]string{"unchecked", "secure", "insecure", "bogus", "indeterminate"}

func (s SecStatus) String() string {
	if int(s) < len(secStatusNames) {
		return secStatusNames[s]
	}
	return fmt.Sprintf("SecStatus(%d)", uint8(s))
}

// Why validation did not give Secure; test with errors.Is. Each maps to an
// Extended DNS Error code (RFC 8914) through EDE.
var (
	ErrBogus                = errors.New("DNSSEC bogus")
	ErrSignatureExpired     = errors.New("signature expired")
	ErrSignatureNotYetValid = errors.New("signature not yet valid")
	ErrDNSKEYMissing        = errors.New("no DNSKEY matches")
	ErrRRSIGsMissing        = errors.New("RRSIGs missing")
	ErrNSECMissing          = errors.New("denial of existence not proven")
	ErrUnsupportedAlgorithm = errors.New("unsupported DNSKEY algorithm")
	ErrUnsupportedDigest    = errors.New("unsupported DS digest type")
	ErrNSEC3Iterations      = errors.New("unsupported NSEC3 iterations value")
	ErrWorkLimit            = errors.New("validation work limit exceeded")
	ErrIndeterminate        = errors.New("DNSSEC records could not be obtained")
	ErrBadTrustAnchor       = errors.New("unusable trust anchor")
)

// vEDECodes maps the sentinels to Extended DNS Error codes (RFC 8914 §4).
// A work limit is reported as DNSSEC Bogus: the data did not validate
// within the work allowed, as Unbound and BIND also treat it.
var vEDECodes = []struct {
	err  error
	code uint16
}{
	{ErrSignatureExpired, dns.ExtendedErrorCodeSignatureExpired},
	{ErrSignatureNotYetValid, dns.ExtendedErrorCodeSignatureNotYetValid},
	{ErrDNSKEYMissing, dns.ExtendedErrorCodeDNSKEYMissing},
	{ErrRRSIGsMissing, dns.ExtendedErrorCodeRRSIGsMissing},
	{ErrNSECMissing, dns.ExtendedErrorCodeNSECMissing},
	{ErrUnsupportedAlgorithm, dns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm},
	{ErrUnsupportedDigest, dns.ExtendedErrorCodeUnsupportedDSDigestType},
	{ErrNSEC3Iterations, dns.ExtendedErrorCodeUnsupportedNSEC3IterValue},
	{ErrIndeterminate, dns.ExtendedErrorCodeDNSSECIndeterminate},
	{ErrWorkLimit, dns.ExtendedErrorCodeDNSBogus},
	{ErrBogus, dns.ExtendedErrorCodeDNSBogus},
}

// EDE returns the Extended DNS Error code for a validation error, and
// false for an error that is not one.
func EDE(err error) (uint16, bool) {
	for _, e := range vEDECodes {
		if errors.Is(err, e.err) {
			return e.code, true
		}
	}
	return 0, false
}

// ValidationError is a verdict other than Secure, with its reason.
type ValidationError struct {
	Status SecStatus // Insecure, Bogus or Indeterminate
	Reason error     // one of the sentinels
	Detail string    // what failed, for logs and the EDE's EXTRA-TEXT
	Cause  error     // Indeterminate: why the records could not be fetched
}

func (e *ValidationError) Error() string {
	msg := e.Reason.Error()
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Unwrap returns the reason and, if any, the cause.
func (e *ValidationError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Reason}
	}
	return []error{e.Reason, e.Cause}
}

func vBogus(reason error, format string, args ...any) *ValidationError {
	return &ValidationError{Status: Bogus, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

func vInsecure(reason error, format string, args ...any) *ValidationError {
	return &ValidationError{Status: Insecure, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// StatusOf returns the status an error from this package stands for:
// Secure for nil, the ValidationError's status, Bogus for anything else.
func StatusOf(err error) SecStatus {
	if err == nil {
		return Secure
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Status
	}
	return Bogus
}

// Per-RRset caps. They stop a single RRset from costing more than a few
// signature checks, however many RRSIGs and colliding DNSKEYs it comes
// with (KeyTrap): MaxSigChecksPerRRset signature verifications per RRset
// and attempt, trying at most MaxKeysPerTag keys that share one signature's
// key tag, algorithm and owner. An honest zone needs one verification, two
// during an algorithm or key rollover.
const (
	MaxSigChecksPerRRset = 8
	MaxKeysPerTag        = 4
	// MaxNSEC3HashesPerProof caps the NSEC3 hashes computed for one
	// denial proof. A closest-encloser proof needs one hash per label
	// between the question name and the closest encloser, plus two.
	MaxNSEC3HashesPerProof = 64
)

// Limits bound the validation work of one resolution. Zero fields take
// the defaults.
type Limits struct {
	// MaxValidations caps signature verifications per resolution (the
	// client's question and every DS and DNSKEY fetched for it).
	MaxValidations int
	// MaxNSEC3Hashes caps NSEC3 hash computations per resolution.
	MaxNSEC3Hashes int
	// MaxNSEC3Iterations: NSEC3 records with more iterations are not
	// hashed; the answer they prove is insecure (RFC 9276 §3.2, EDE 27).
	MaxNSEC3Iterations int
}

// The default limits. 50 NSEC3 iterations is the value the open-source
// resolvers converged on after RFC 9276 (PowerDNS Recursor 5.0 lowered its
// default from 150 to 50 "following the general consensus between open
// source vendors"; systemd-resolved uses 100, older Unbound and BIND 150).
// RFC 9276 asks signers for 0 iterations, so honest zones stay far below.
const (
	DefaultMaxValidations     = 64
	DefaultMaxNSEC3Hashes     = 256
	DefaultMaxNSEC3Iterations = 50
)

// Budget counts the validation work of one resolution against its Limits.
// It is not safe for concurrent use: one resolution is one goroutine.
type Budget struct {
	Limits
	Validations int // signature verifications made
	Hashes      int // NSEC3 hashes computed
	// Exceeded names the limit that stopped validation, if one did:
	// "validations", "sig_checks_per_rrset" or "nsec3_hashes".
	Exceeded string

	// Grace, when positive, makes VerifyRRset and VerifyDNSKEYs accept a
	// signature that expired at most Grace ago, when no signature valid at
	// the time verifies (see SigTimeCheckGrace). It relaxes nothing else:
	// the inception, the key and the cryptography are checked as always.
	// The zero value, the default, accepts no expired signature. The
	// caller decides when a grace applies and may change it between calls.
	Grace time.Duration
	// Graced counts the RRsets accepted only thanks to Grace.
	Graced int
}

// NewBudget returns an empty budget under l, with defaults for zero fields.
func NewBudget(l Limits) *Budget {
	if l.MaxValidations <= 0 {
		l.MaxValidations = DefaultMaxValidations
	}
	if l.MaxNSEC3Hashes <= 0 {
		l.MaxNSEC3Hashes = DefaultMaxNSEC3Hashes
	}
	if l.MaxNSEC3Iterations <= 0 {
		l.MaxNSEC3Iterations = DefaultMaxNSEC3Iterations
	}
	return &Budget{Limits: l}
}

func (b *Budget) exceed(which string) *ValidationError {
	b.Exceeded = which
	return vBogus(ErrWorkLimit, "%s", which)
}

// AlgorithmSupported reports whether signatures of DNSKEY algorithm alg
// can be verified: RSA/SHA-1 (5, 7), RSA/SHA-256 (8), RSA/SHA-512 (10),
// ECDSA P-256 (13) and P-384 (14), Ed25519 (15). RFC 8624 §3.1 lists
// these as MUST for validation, except Ed448 (16), which Go lacks.
func AlgorithmSupported(alg uint8) bool {
	switch alg {
	case dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512,
		dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519:
		return true
	}
	return false
}

// DigestSupported reports whether DS digest type d can be checked: SHA-1
// (1), SHA-256 (2), SHA-384 (4). GOST (3) is not (RFC 8624 §3.3).
func DigestSupported(d uint8) bool {
	switch d {
	case dns.SHA1, dns.SHA256, dns.SHA384:
		return true
	}
	return false
}

// ZoneKeys is the authenticated DNSKEY RRset of one zone, reduced to the
// keys that may verify signatures (zone key flag set, protocol 3, not
// revoked), with their key tags computed once.
type ZoneKeys struct {
	Zone string // canonical (lower-case, fully qualified)
	Keys []*dns.DNSKEY
	// Sig is the signature that authenticated the DNSKEY RRset, when
	// VerifyDNSKEYs made these keys; with MaxTTL, it bounds how long they
	// may be cached.
	Sig  *dns.RRSIG
	tags []uint16
}

// NewZoneKeys returns the usable keys of zone among keys.
func NewZoneKeys(zone string, keys []*dns.DNSKEY) *ZoneKeys {
	zk := &ZoneKeys{Zone: vCanonical(zone)}
	for _, k := range keys {
		if vUsableKey(k) {
			zk.Keys = append(zk.Keys, k)
			zk.tags = append(zk.tags, k.KeyTag())
		}
	}
	return zk
}

func vUsableKey(k *dns.DNSKEY) bool {
	return k.Flags&dns.ZONE != 0 && k.Flags&dns.REVOKE == 0 && k.Protocol == 3
}

// SigTimeCheck checks the validity period of sig at now with the serial
// number arithmetic of RFC 4034 §3.1.5 (RFC 1982): the 32-bit times wrap,
// so each is compared with now modulo 2^32.
func SigTimeCheck(sig *dns.RRSIG, now time.Time) error {
	_, err := SigTimeCheckGrace(sig, now, 0)
	return err
}

// SigTimeCheckGrace is SigTimeCheck with a grace period for expired
// signatures: with grace positive, a signature whose expiration lies at
// most grace before now (expiration < now <= expiration + grace) passes,
// and graced reports it. The inception is never relaxed. The comparisons
// are those of RFC 1982 on the 32-bit times, so a grace must stay well
// below 2^31 seconds (68 years); a longer one is cut to it.
func SigTimeCheckGrace(sig *dns.RRSIG, now time.Time, grace time.Duration) (graced bool, err error) {
	t := uint32(now.Unix())
	if int32(t-sig.Inception) < 0 {
		return false, vBogus(ErrSignatureNotYetValid, "RRSIG %s %s by %s/%d valid from %s",
			sig.Hdr.Name, dns.Type(sig.TypeCovered), sig.SignerName, sig.KeyTag, dns.TimeToString(sig.Inception))
	}
	late := -int64(int32(sig.Expiration - t)) // seconds since the expiration
	if late <= 0 {
		return false, nil
	}
	if late <= graceSeconds(grace) {
		return true, nil
	}
	return false, vBogus(ErrSignatureExpired, "RRSIG %s %s by %s/%d expired %s",
		sig.Hdr.Name, dns.Type(sig.TypeCovered), sig.SignerName, sig.KeyTag, dns.TimeToString(sig.Expiration))
}

// graceSeconds is grace in whole seconds, between 0 and 2^31-1.
func graceSeconds(grace time.Duration) int64 {
	return min(max(int64(grace/time.Second), 0), 1<<31-1)
}

// VerifyRRset checks that rrset (the records of one owner, type and
// class, without RRSIGs) carries a signature among sigs, by one of keys,
// valid at now. It returns the signature that verified: its Labels field
// tells a wildcard expansion (Labels < WireLabels(owner)), and its
// Expiration and OrigTtl bound the TTL the RRset may be cached for.
//
// Signatures are tried in order, cheap checks first (type covered,
// signer, labels, validity period) and the cryptography last, within
// MaxSigChecksPerRRset and the budget. The error is the most telling
// failure: a signature that verified but is expired or not yet valid, no
// key for any signature (DNSKEY missing), no signature at all (RRSIGs
// missing), or a signature that does not verify (bogus).
func VerifyRRset(rrset []dns.RR, sigs []*dns.RRSIG, keys *ZoneKeys, now time.Time, b *Budget) (*dns.RRSIG, error) {
	if len(rrset) == 0 {
		return nil, vBogus(ErrBogus, "empty RRset")
	}
	h := rrset[0].Header()
	owner := vCanonical(h.Name)
	what := fmt.Sprintf("%s %s", owner, dns.Type(h.Rrtype))
	if len(sigs) == 0 {
		return nil, vBogus(ErrRRSIGsMissing, "%s", what)
	}
	if keys == nil || len(keys.Keys) == 0 {
		return nil, vBogus(ErrDNSKEYMissing, "%s: no usable DNSKEY", what)
	}
	set := vCanonicalSet(rrset)
	labels := WireLabels(owner)
	var timeErr, cryptoErr error
	keyFound := false
	supported := false
	checks := 0
	// verify checks sig with k within the caps; stop ends the search.
	verify := func(sig *dns.RRSIG, k *dns.DNSKEY) (ok bool, stop error) {
		if checks++; checks > MaxSigChecksPerRRset {
			return false, b.exceed("sig_checks_per_rrset")
		}
		if b.Validations++; b.Validations > b.MaxValidations {
			return false, b.exceed("validations")
		}
		if err := sig.Verify(k, set); err != nil {
			cryptoErr = vBogus(ErrBogus, "%s: RRSIG by %s/%d does not verify: %v", what, sig.SignerName, sig.KeyTag, err)
			return false, nil
		}
		return true, nil
	}
	// Expired signatures within b.Grace, tried only when no signature
	// valid now verifies.
	type candidate struct {
		sig *dns.RRSIG
		key *dns.DNSKEY
	}
	var late []candidate
	for _, sig := range sigs {
		if sig.TypeCovered != h.Rrtype || sig.Hdr.Class != h.Class || !strings.EqualFold(sig.Hdr.Name, owner) {
			continue
		}
		if vCanonical(sig.SignerName) != keys.Zone || !dns.IsSubDomain(keys.Zone, owner) || int(sig.Labels) > labels {
			continue
		}
		if !AlgorithmSupported(sig.Algorithm) {
			continue
		}
		supported = true
		tried := 0
		for i, k := range keys.Keys {
			if keys.tags[i] != sig.KeyTag || k.Algorithm != sig.Algorithm {
				continue
			}
			if tried++; tried > MaxKeysPerTag {
				break
			}
			keyFound = true
			graced, err := SigTimeCheckGrace(sig, now, b.Grace)
			if err != nil {
				timeErr = err
				break // the same signature with another key has the same dates
			}
			if graced {
				late = append(late, candidate{sig, k})
				continue
			}
			ok, stop := verify(sig, k)
			if stop != nil {
				return nil, stop
			}
			if ok {
				return sig, nil
			}
		}
	}
	for _, c := range late {
		ok, stop := verify(c.sig, c.key)
		if stop != nil {
			return nil, stop
		}
		if ok {
			b.Graced++
			return c.sig, nil
		}
	}
	switch {
	case timeErr != nil:
		return nil, timeErr
	case cryptoErr != nil:
		return nil, cryptoErr
	case keyFound:
		return nil, vBogus(ErrBogus, "%s", what)
	case !supported:
		return nil, vBogus(ErrRRSIGsMissing, "%s: no RRSIG by %s with a supported algorithm", what, keys.Zone)
	}
	return nil, vBogus(ErrDNSKEYMissing, "%s: no DNSKEY of %s for its RRSIGs", what, keys.Zone)
}

// VerifyDNSKEYs authenticates the DNSKEY RRset of zone (dnskeys, with its
// RRSIGs sigs): one of its keys must match a DS record of ds (the
// parent's DS RRset, already validated, or DS trust anchors) or equal a
// DNSKEY trust anchor of anchors, and sign the RRset. It returns the zone's
// usable keys.
//
// DS records with an unsupported algorithm or digest type are left out,
// and SHA-1 DS records are left out when the set has a stronger digest
// (RFC 4509 §3). If nothing is left, the zone is insecure (RFC 4035 §5.2):
// the error has Status Insecure and says which was unsupported.
func VerifyDNSKEYs(zone string, dnskeys []dns.RR, sigs []*dns.RRSIG, ds []*dns.DS, anchors []*dns.DNSKEY, now time.Time, b *Budget) (*ZoneKeys, error) {
	zone = vCanonical(zone)
	var all []*dns.DNSKEY
	for _, rr := range dnskeys {
		if k, ok := rr.(*dns.DNSKEY); ok && vCanonical(k.Hdr.Name) == zone {
			all = append(all, k)
		}
	}
	// The usable DS records.
	strong := false
	for _, d := range ds {
		if AlgorithmSupported(d.Algorithm) && (d.DigestType == dns.SHA256 || d.DigestType == dns.SHA384) {
			strong = true
		}
	}
	var use []*dns.DS
	algOK, digestOK := false, false
	for _, d := range ds {
		a, g := AlgorithmSupported(d.Algorithm), DigestSupported(d.DigestType)
		algOK = algOK || a
		digestOK = digestOK || g
		if a && g && !(strong && d.DigestType == dns.SHA1) {
			use = append(use, d)
		}
	}
	var anchorKeys []*dns.DNSKEY
	anchorAlgOK := false
	for _, k := range anchors {
		if AlgorithmSupported(k.Algorithm) {
			anchorKeys = append(anchorKeys, k)
			anchorAlgOK = true
		}
	}
	if len(use) == 0 && len(anchorKeys) == 0 {
		switch {
		case len(ds) == 0 && len(anchors) == 0:
			return nil, vBogus(ErrDNSKEYMissing, "%s: nothing to authenticate its DNSKEY RRset with", zone)
		case len(ds) > 0 && !algOK, len(ds) == 0 && !anchorAlgOK:
			return nil, vInsecure(ErrUnsupportedAlgorithm, "%s: no DS or anchor with a supported algorithm", zone)
		default:
			return nil, vInsecure(ErrUnsupportedDigest, "%s: no DS with a supported digest type", zone)
		}
	}
	if len(all) == 0 {
		return nil, vBogus(ErrDNSKEYMissing, "%s: no DNSKEY records", zone)
	}

	// The keys a DS or an anchor vouches for.
	var trusted []*dns.DNSKEY
	digests := 0
	for _, k := range all {
		if k.Protocol != 3 || k.Flags&dns.ZONE == 0 {
			continue
		}
		tag := uint16(0)
		tagged := false
		for _, d := range use {
			if d.Algorithm != k.Algorithm {
				continue
			}
			if !tagged {
				tag, tagged = k.KeyTag(), true
			}
			if d.KeyTag != tag {
				continue
			}
			if digests++; digests > MaxSigChecksPerRRset*MaxKeysPerTag {
				return nil, b.exceed("sig_checks_per_rrset")
			}
			if got := k.ToDS(d.DigestType); got != nil && strings.EqualFold(got.Digest, d.Digest) {
				trusted = append(trusted, k)
				break
			}
		}
		for _, a := range anchorKeys {
			if a.Flags == k.Flags && a.Algorithm == k.Algorithm && a.Protocol == k.Protocol && vSameKey(a.PublicKey, k.PublicKey) {
				trusted = append(trusted, k)
				break
			}
		}
	}
	if len(trusted) == 0 {
		return nil, vBogus(ErrDNSKEYMissing, "%s: no DNSKEY matches the DS RRset or trust anchor", zone)
	}
	// A revoked key may still sign its own DNSKEY RRset (RFC 5011); keep
	// the zone-key and protocol checks of NewZoneKeys otherwise.
	tk := &ZoneKeys{Zone: zone}
	for _, k := range trusted {
		tk.Keys = append(tk.Keys, k)
		tk.tags = append(tk.tags, k.KeyTag())
	}
	sig, err := VerifyRRset(dnskeys, sigs, tk, now, b)
	if err != nil {
		return nil, err
	}
	zk := NewZoneKeys(zone, all)
	zk.Sig = sig
	return zk, nil
}

func vSameKey(a, b string) bool {
	return strings.ReplaceAll(a, " ", "") == strings.ReplaceAll(b, " ", "")
}

// WireLabels counts the labels of name as the RRSIG Labels field does
// (RFC 4034 §3.1.3): the root and a leading "*" label do not count.
func WireLabels(name string) int {
	n := dns.CountLabel(name)
	if strings.HasPrefix(name, "*.") {
		n--
	}
	return n
}

// WildcardOf returns the wildcard name that sig, having verified an RRset
// owned by owner, says the RRset was expanded from ("*." plus the last
// sig.Labels labels of owner), or "" when there was no expansion.
func WildcardOf(owner string, sig *dns.RRSIG) string {
	n := WireLabels(owner)
	if int(sig.Labels) >= n {
		return ""
	}
	return "*." + vAncestor(vCanonical(owner), int(sig.Labels))
}

// vAncestor returns the ancestor of name with n labels.
func vAncestor(name string, n int) string {
	idx := dns.Split(name)
	if n <= 0 || len(idx) == 0 {
		return "."
	}
	if n >= len(idx) {
		return name
	}
	return name[idx[len(idx)-n]:]
}

// vCanonical returns name fully qualified with ASCII letters lower-cased.
func vCanonical(name string) string {
	return dns.CanonicalName(name)
}

// vCanonicalSet returns rrset with every owner name spelled like the
// first record's, lower-cased; miekg's Verify wants identical owners.
func vCanonicalSet(rrset []dns.RR) []dns.RR {
	owner := vCanonical(rrset[0].Header().Name)
	same := true
	for _, rr := range rrset {
		if rr.Header().Name != owner {
			same = false
			break
		}
	}
	if same {
		return rrset
	}
	out := make([]dns.RR, len(rrset))
	for i, rr := range rrset {
		cp := dns.Copy(rr)
		cp.Header().Name = owner
		out[i] = cp
	}
	return out
}

// MaxTTL is the longest an RRset validated by sig may be cached from now:
// no longer than the signature's original TTL, nor past its expiration
// (RFC 4035 §5.3.3).
func MaxTTL(sig *dns.RRSIG, now time.Time) uint32 {
	return MaxTTLGrace(sig, now, 0)
}

// MaxGraceTTL caps, in seconds, the TTL of an RRset accepted under a
// grace (Budget.Grace): such data is cached briefly, so that it is checked
// again soon, when the grace may no longer apply or fresh signatures may
// be had.
const MaxGraceTTL = 60

// MaxTTLGrace is MaxTTL for an RRset that sig validated under grace: if
// sig has expired, no longer than MaxGraceTTL nor past the end of the
// grace (expiration + grace). It is 0 for a signature expired longer ago.
func MaxTTLGrace(sig *dns.RRSIG, now time.Time, grace time.Duration) uint32 {
	left := int64(int32(sig.Expiration - uint32(now.Unix())))
	if left < 0 {
		left = min(max(left+graceSeconds(grace), 0), MaxGraceTTL)
	}
	return uint32(min(int64(sig.OrigTtl), left))
}
