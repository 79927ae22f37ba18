package dnssec

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Sentinels for key operations; test with errors.Is.
var (
	ErrRollover   = errors.New("a rollover of this kind is already under way")
	ErrNoRollover = errors.New("no key rollover is waiting for this step")
	ErrKeyKind    = errors.New("no key of this kind under this policy")
)

// InitialKeys returns the keys a newly signed zone starts with: one active
// CSK, or an active KSK and ZSK.
func InitialKeys(origin string, p Policy, now time.Time) ([]*Key, error) {
	roles := []Role{RoleCSK}
	if p.SplitKeys {
		roles = []Role{RoleKSK, RoleZSK}
	}
	var keys []*Key
	for _, r := range roles {
		k, err := newKey(origin, p, r, StateActive, keys, now)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// newKey generates a key whose tag no other key of the zone uses, so that
// signatures name their key without ambiguity.
func newKey(origin string, p Policy, r Role, st State, have []*Key, now time.Time) (*Key, error) {
	for range 16 {
		k, err := GenerateKey(origin, p, r, st, now)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(have, func(o *Key) bool { return o.Tag() == k.Tag() }) {
			return k, nil
		}
	}
	return nil, errors.New("no free key tag after 16 tries")
}

// signingRole is the role of keys that sign the DNSKEY RRset.
func signingRole(p Policy) Role {
	if p.SplitKeys {
		return RoleKSK
	}
	return RoleCSK
}

// StartRollover begins replacing the zone's key of the given kind (RoleZSK
// or RoleKSK; under a CSK policy RoleKSK rolls the CSK) and returns the new
// key set.
//
// A ZSK rollover uses pre-publication (RFC 6781 §4.1.1.1): the new ZSK is
// published now, signs once the DNSKEY RRset has had time to reach every
// cache, and the old one leaves once its signatures have expired from
// caches; Advance makes those steps as time passes.
//
// A KSK (or CSK) rollover uses double-DS (RFC 6781 §4.1.2): the new key
// is announced in CDS/CDNSKEY and by `dnssec ds` for the parent to publish
// next to the old DS; the operator runs ContinueRollover once the parent
// serves both, which swaps the keys, and once more when the old DS has been
// removed from the parent, which deletes the old key.
func StartRollover(origin string, p Policy, keys []*Key, kind Role, now time.Time) ([]*Key, *Key, error) {
	switch kind {
	case RoleZSK:
		if !p.SplitKeys {
			return nil, nil, fmt.Errorf("%w: the zone signs with one combined key; roll it with ksk", ErrKeyKind)
		}
		for _, k := range keys {
			if k.Role == RoleZSK && k.State != StateActive {
				return nil, nil, fmt.Errorf("%w: ZSK %s is %s", ErrRollover, k.ID(), k.State)
			}
		}
		k, err := newKey(origin, p, RoleZSK, StatePublished, keys, now)
		if err != nil {
			return nil, nil, err
		}
		return append(slices.Clone(keys), k), k, nil
	case RoleKSK, RoleCSK:
		role := signingRole(p)
		for _, k := range keys {
			if k.Role == role && k.State != StateActive {
				return nil, nil, fmt.Errorf("%w: %s %s is %s", ErrRollover, role, k.ID(), k.State)
			}
		}
		k, err := newKey(origin, p, role, StateDSPending, keys, now)
		if err != nil {
			return nil, nil, err
		}
		return append(slices.Clone(keys), k), k, nil
	}
	return nil, nil, fmt.Errorf("%w: %q", ErrKeyKind, kind)
}

// ContinueRollover takes the next operator-confirmed step of a KSK or CSK
// rollover: with a new key waiting for its DS, it becomes the active key
// and the old one is retired (it leaves DNSKEY; its DS may now be removed
// from the parent); with a retired KSK or CSK, the key is deleted.
func ContinueRollover(keys []*Key, now time.Time) ([]*Key, string, error) {
	out := slices.Clone(keys)
	if i := slices.IndexFunc(out, func(k *Key) bool { return k.State == StateDSPending }); i >= 0 {
		nk := *out[i]
		nk.State, nk.Changed = StateActive, now.UTC()
		out[i] = &nk
		for j, k := range out {
			if j != i && k.Role == nk.Role && k.State == StateActive {
				ok := *k
				ok.State, ok.Changed = StateRetired, now.UTC()
				out[j] = &ok
			}
		}
		return out, fmt.Sprintf("%s %s now signs the DNSKEY RRset; remove the DS of the retired key from the parent, then run the rollover's next step", nk.Role, nk.ID()), nil
	}
	if i := slices.IndexFunc(out, func(k *Key) bool { return k.State == StateRetired && k.Role != RoleZSK }); i >= 0 {
		k := out[i]
		return slices.Delete(out, i, i+1), fmt.Sprintf("%s %s deleted; rollover complete", k.Role, k.ID()), nil
	}
	return nil, "", ErrNoRollover
}

// Timing is what the automatic rollover steps wait for.
type Timing struct {
	KeyTTL time.Duration // the DNSKEY RRset's TTL
	MaxTTL time.Duration // the largest TTL in the zone
}

// Advance makes the ZSK rollover steps whose time has come and returns
// the new key set and whether anything changed.
func Advance(p Policy, keys []*Key, t Timing, now time.Time) ([]*Key, bool) {
	out := slices.Clone(keys)
	changed := false
	for i, k := range out {
		if k.Role != RoleZSK || k.State != StatePublished || now.Before(signsAt(p, k, t)) {
			continue
		}
		nk := *k
		nk.State, nk.Changed = StateActive, now.UTC()
		out[i] = &nk
		for j, o := range out {
			if j != i && o.Role == RoleZSK && o.State == StateActive {
				ok := *o
				ok.State, ok.Changed = StateRetired, now.UTC()
				out[j] = &ok
			}
		}
		changed = true
	}
	out = slices.DeleteFunc(out, func(k *Key) bool {
		gone := k.Role == RoleZSK && k.State == StateRetired && !now.Before(removedAt(p, k, t))
		changed = changed || gone
		return gone
	})
	return out, changed
}

// signsAt is when a pre-published ZSK starts signing: once the DNSKEY
// RRset holding it has had time to reach every cache.
func signsAt(p Policy, k *Key, t Timing) time.Time {
	return k.Changed.Add(t.KeyTTL + p.PropagationDelay.D())
}

// removedAt is when a retired ZSK leaves the DNSKEY RRset: once the
// signatures it made have had time to leave every cache.
func removedAt(p Policy, k *Key, t Timing) time.Time {
	return k.Changed.Add(t.MaxTTL + p.PropagationDelay.D())
}

// Step is the next step of an unfinished rollover: the change a key waits
// for.
type Step struct {
	Key   string // the key's ID
	Role  Role
	State State // the key's state now
	// Operator: the step waits for the operator (a KSK or CSK rollover's
	// key rollover ZONE ksk --continue, once the parent's DS is right);
	// otherwise Advance takes it when its time has come.
	Operator bool
	// At is, for a timed step, the time from which Advance takes it; for
	// an operator step, when the key began to wait for it.
	At time.Time
}

// PendingSteps returns the next step of each unfinished rollover, in the
// order of keys: a pre-published ZSK starts signing and a retired ZSK
// leaves DNSKEY (timed, taken by Advance); a KSK or CSK waiting for its DS
// at the parent becomes active, and a retired one is deleted (both taken
// by the operator with ContinueRollover).
func PendingSteps(p Policy, keys []*Key, t Timing) []Step {
	var out []Step
	for _, k := range keys {
		s := Step{Key: k.ID(), Role: k.Role, State: k.State}
		switch {
		case k.State == StatePublished:
			s.At = signsAt(p, k, t)
		case k.State == StateRetired && k.Role == RoleZSK:
			s.At = removedAt(p, k, t)
		case k.State == StateDSPending, k.State == StateRetired:
			s.At, s.Operator = k.Changed, true
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}

// NextSteps describes what each unfinished rollover waits for.
func NextSteps(p Policy, keys []*Key, t Timing) []string {
	var out []string
	for _, s := range PendingSteps(p, keys, t) {
		switch {
		case s.State == StatePublished:
			out = append(out, fmt.Sprintf("ZSK %s starts signing at %s", s.Key, s.At.Format(time.RFC3339)))
		case s.State == StateRetired && s.Role == RoleZSK:
			out = append(out, fmt.Sprintf("ZSK %s is removed at %s", s.Key, s.At.Format(time.RFC3339)))
		case s.State == StateDSPending:
			out = append(out, fmt.Sprintf("%s %s: publish its DS in the parent next to the current one (sovdns dnssec ds), wait for the parent's DS TTL, then run: sovdns key rollover ZONE ksk --continue", s.Role, s.Key))
		case s.State == StateRetired:
			out = append(out, fmt.Sprintf("%s %s: remove its DS from the parent, wait for the parent's DS TTL, then run: sovdns key rollover ZONE ksk --continue", s.Role, s.Key))
		}
	}
	return out
}
