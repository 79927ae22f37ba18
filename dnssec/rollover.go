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
// next to the old DS, and published in DNSKEY without signing. Once every
// parent server publishes the new DS and the DS TTL has passed, Advance
// (given the parent's view) or the operator (ContinueRollover) swaps the
// keys; the old key is deleted once the parent has withdrawn its DS (and,
// for a CSK, its signatures have left every cache).
func StartRollover(origin string, p Policy, keys []*Key, kind Role, now time.Time) ([]*Key, *Key, error) {
	if p.AlgorithmFrom != 0 {
		return nil, nil, fmt.Errorf("%w: an algorithm rollover from %d", ErrRollover, p.AlgorithmFrom)
	}
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

// ContinueRollover takes the next step of a KSK or CSK rollover at the
// operator's word: with a new key waiting for its DS, it becomes the
// active key and the old one is retired; with a retired KSK or CSK, the
// key is deleted.
//
// Unless force is set, the swap is refused (ErrParentDS) while t.Parent
// does not show every parent server publishing the new DS, and (ErrTooSoon)
// while caches may hold a DNSKEY RRset without the new key; a retired CSK
// is not deleted (ErrTooSoon) while caches may hold its signatures.
func ContinueRollover(p Policy, keys []*Key, t Timing, now time.Time, force bool) ([]*Key, string, error) {
	if p.AlgorithmFrom != 0 {
		return continueAlgorithm(p, keys, t, now, force)
	}
	if i := slices.IndexFunc(keys, func(k *Key) bool { return k.State == StateDSPending }); i >= 0 {
		k := keys[i]
		if !force {
			if !t.Parent.Publishes(k) {
				return nil, "", fmt.Errorf("%w: DS of %s %s: %s (--force to go on anyway)", ErrParentDS, k.Role, k.ID(), t.Parent.Describe(k, false))
			}
			if at := k.Changed.Add(t.KeyTTL + p.PropagationDelay.D()); now.Before(at) {
				return nil, "", fmt.Errorf("%w: %s %s entered DNSKEY at %s; caches may hold the DNSKEY RRset without it until %s (--force to go on anyway)",
					ErrTooSoon, k.Role, k.ID(), k.Changed.Format(time.RFC3339), at.Format(time.RFC3339))
			}
		}
		out := swap(keys, i, now)
		return out, fmt.Sprintf("%s %s now signs; the retired key is deleted once the parent has withdrawn its DS", k.Role, k.ID()), nil
	}
	if i := slices.IndexFunc(keys, func(k *Key) bool { return k.State == StateRetired && k.Role != RoleZSK }); i >= 0 {
		k := keys[i]
		if at := removedAt(p, k, t); k.Role == RoleCSK && !force && now.Before(at) {
			return nil, "", fmt.Errorf("%w: caches may hold signatures of CSK %s until %s (--force to delete it anyway)", ErrTooSoon, k.ID(), at.Format(time.RFC3339))
		}
		return slices.Delete(slices.Clone(keys), i, i+1), fmt.Sprintf("%s %s deleted; rollover complete", k.Role, k.ID()), nil
	}
	return nil, "", ErrNoRollover
}

// swap makes keys[i] the active key of its role and retires the one it
// replaces.
func swap(keys []*Key, i int, now time.Time) []*Key {
	out := slices.Clone(keys)
	nk := *out[i]
	nk.State, nk.Changed, nk.DSSeen = StateActive, now.UTC(), time.Time{}
	out[i] = &nk
	for j, k := range out {
		if j != i && k.Role == nk.Role && k.State == StateActive && k.DNSKEY.Algorithm == nk.DNSKEY.Algorithm {
			ok := *k
			ok.State, ok.Changed = StateRetired, now.UTC()
			out[j] = &ok
		}
	}
	return out
}

// Timing is what the automatic rollover steps wait for.
type Timing struct {
	KeyTTL time.Duration // the DNSKEY RRset's TTL
	MaxTTL time.Duration // the largest TTL in the zone
	// Parent is what the parent's servers publish as the zone's DS; nil
	// when they have not been asked.
	Parent *ParentView
}

// Advance makes the rollover steps whose time has come and returns the
// new key set and whether anything changed (see SameSigning for whether
// the zone must be signed again):
//   - a pre-published ZSK starts signing after the DNSKEY TTL, and the
//     ZSK it replaces leaves DNSKEY after the zone's largest TTL;
//   - with t.Parent set, a KSK or CSK waiting for its DS notes when every
//     parent server publishes it (DSSeen), and replaces the active key
//     once the DS TTL has passed since (and the DNSKEY TTL since it was
//     published); a retired KSK or CSK is deleted once no parent server
//     publishes its DS (a CSK not before its signatures have left caches).
//
// Every wait includes the policy's propagation delay.
func Advance(p Policy, keys []*Key, t Timing, now time.Time) ([]*Key, bool) {
	out := slices.Clone(keys)
	changed := false
	for i := 0; i < len(out); i++ {
		k := out[i]
		switch {
		case k.Role == RoleZSK && k.State == StatePublished && !now.Before(signsAt(p, k, t)):
			out = swap(out, i, now)
			changed = true
		case k.Role != RoleZSK && k.State == StateDSPending && t.Parent != nil:
			if !t.Parent.Publishes(k) {
				if !k.DSSeen.IsZero() && t.Parent.usable() {
					nk := *k
					nk.DSSeen = time.Time{}
					out[i], changed = &nk, true
				}
				continue
			}
			if k.DSSeen.IsZero() {
				nk := *k
				nk.DSSeen = t.Parent.Checked.UTC()
				out[i], changed = &nk, true
				k = &nk
			}
			if !now.Before(swapAt(p, k, t)) {
				out = swap(out, i, now)
				changed = true
			}
		}
	}
	if p.AlgorithmFrom != 0 {
		var moved bool
		out, moved = advanceAlgorithm(p, out, t, now)
		changed = changed || moved
	}
	out = slices.DeleteFunc(out, func(k *Key) bool {
		if k.State == StateOutgoing {
			gone := !now.Before(k.Changed.Add(t.KeyTTL + p.PropagationDelay.D()))
			changed = changed || gone
			return gone
		}
		if k.State != StateRetired {
			return false
		}
		gone := false
		switch k.Role {
		case RoleZSK:
			gone = !now.Before(removedAt(p, k, t))
		case RoleKSK:
			gone = t.Parent.Withdrawn(k)
		case RoleCSK:
			gone = t.Parent.Withdrawn(k) && !now.Before(removedAt(p, k, t))
		}
		changed = changed || gone
		return gone
	})
	return out, changed
}

// SameSigning reports whether two key sets sign a zone alike: the same
// keys in the same states (DSSeen aside).
func SameSigning(a, b []*Key) bool {
	return slices.EqualFunc(a, b, func(x, y *Key) bool { return x.ID() == y.ID() && x.Role == y.Role && x.State == y.State })
}

// WaitsForParent reports whether a step of the zone waits for what the
// parent publishes: a KSK or CSK waiting for its DS, or retired and
// waiting for its DS to be withdrawn; an algorithm rollover; signing
// being turned off.
func WaitsForParent(p Policy, keys []*Key) bool {
	return p.AlgorithmFrom != 0 || !p.Unsigning.IsZero() || slices.ContainsFunc(keys, func(k *Key) bool {
		return k.Role != RoleZSK && (k.State == StateDSPending || k.State == StateRetired)
	})
}

// swapAt is when a KSK or CSK whose DS every parent server publishes
// replaces the active key: once resolvers can no longer hold a DS RRset
// from before (the DS TTL since it was seen) nor a DNSKEY RRset without it.
func swapAt(p Policy, k *Key, t Timing) time.Time {
	a := k.DSSeen.Add(t.Parent.TTL() + p.PropagationDelay.D())
	b := k.Changed.Add(t.KeyTTL + p.PropagationDelay.D())
	if b.After(a) {
		return b
	}
	return a
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
	// Parent: the step waits for the parent's servers to publish the new
	// key's DS or withdraw the retired key's, as signing maintenance sees
	// them (or for key rollover ZONE ksk --continue); otherwise it waits
	// for time, and Advance takes it when it has come.
	Parent bool
	// At is, for a timed step, the time from which Advance takes it; for
	// a step waiting for the parent, when the key began to wait.
	At time.Time
}

// PendingSteps returns the next step of each unfinished rollover, in the
// order of keys: a pre-published ZSK starts signing and a retired ZSK
// leaves DNSKEY (timed); a KSK or CSK waiting for its DS becomes active
// (waiting for the parent, then for the DS TTL) and a retired one is
// deleted once the parent has withdrawn its DS.
func PendingSteps(p Policy, keys []*Key, t Timing) []Step {
	var out []Step
	phase, newKSK := algorithmState(p, keys)
	for _, k := range keys {
		s := Step{Key: k.ID(), Role: k.Role, State: k.State}
		switch {
		case k.State == StateIncoming:
			s.At = k.Changed.Add(t.MaxTTL + p.PropagationDelay.D())
		case k.State == StateOutgoing:
			s.At = k.Changed.Add(t.KeyTTL + p.PropagationDelay.D())
		case p.AlgorithmFrom != 0 && phase == phaseDS && slices.Contains(newKSK, k):
			if !k.DSSeen.IsZero() && t.Parent != nil {
				s.At = algorithmDSAt(p, newKSK, t)
				if s.At.IsZero() {
					s.At = swapAt(p, k, t)
				}
			} else {
				s.At, s.Parent = k.Changed, true
			}
		case k.State == StatePublished:
			s.At = signsAt(p, k, t)
		case k.State == StateRetired && k.Role == RoleZSK:
			s.At = removedAt(p, k, t)
		case k.State == StateDSPending && !k.DSSeen.IsZero() && t.Parent != nil:
			s.At = swapAt(p, k, t)
		case k.State == StateDSPending, k.State == StateRetired:
			s.At, s.Parent = k.Changed, true
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}

// NextSteps describes what each unfinished rollover waits for, with what
// the parent's servers were last seen to publish (t.Parent).
func NextSteps(p Policy, keys []*Key, t Timing) []string {
	var out []string
	byID := make(map[string]*Key, len(keys))
	for _, k := range keys {
		byID[k.ID()] = k
	}
	checked := ""
	if t.Parent != nil && !t.Parent.Checked.IsZero() {
		checked = " (parent last asked at " + t.Parent.Checked.Format(time.RFC3339) + ")"
	}
	if !p.Unsigning.IsZero() {
		if at := UnsignAt(p, t.Parent); !at.IsZero() {
			out = append(out, fmt.Sprintf("signing is being turned off: no parent server publishes a DS since %s; the zone goes unsigned at %s, once the DS TTL has passed",
				p.DSGone.Format(time.RFC3339), at.Format(time.RFC3339)))
		} else {
			out = append(out, fmt.Sprintf("signing is being turned off (since %s): CDS and CDNSKEY ask the parent to delete the DS (RFC 8078); the zone goes unsigned once every parent server has withdrawn it and its TTL has passed: %s%s",
				p.Unsigning.Format(time.RFC3339), t.Parent.DescribeAny(), checked))
		}
	}
	for _, s := range PendingSteps(p, keys, t) {
		k := byID[s.Key]
		switch {
		case s.State == StateIncoming:
			out = append(out, fmt.Sprintf("algorithm rollover %d to %d: %s %s signs already, and enters DNSKEY at %s, once every cached RRset carries its signatures",
				p.AlgorithmFrom, p.Algorithm, s.Role, s.Key, s.At.Format(time.RFC3339)))
		case s.State == StateOutgoing:
			out = append(out, fmt.Sprintf("algorithm rollover %d to %d: %s %s has left DNSKEY; it and its signatures go at %s",
				p.AlgorithmFrom, p.Algorithm, s.Role, s.Key, s.At.Format(time.RFC3339)))
		case s.State == StateActive && s.Parent:
			out = append(out, fmt.Sprintf("algorithm rollover %d to %d: waiting for the parent to publish the DS of %s %s (sovdns dnssec ds ZONE; also in CDS and CDNSKEY): %s%s; the keys of algorithm %d then leave DNSKEY once the DS TTL has passed (or at once: sovdns key rollover ZONE ksk --continue)",
				p.AlgorithmFrom, p.Algorithm, s.Role, s.Key, t.Parent.Describe(k, false), checked, p.AlgorithmFrom))
		case s.State == StateActive:
			out = append(out, fmt.Sprintf("algorithm rollover %d to %d: the DS of %s %s is at every parent server since %s; the keys of algorithm %d leave DNSKEY at %s",
				p.AlgorithmFrom, p.Algorithm, s.Role, s.Key, k.DSSeen.Format(time.RFC3339), p.AlgorithmFrom, s.At.Format(time.RFC3339)))
		case s.State == StatePublished:
			out = append(out, fmt.Sprintf("ZSK %s starts signing at %s", s.Key, s.At.Format(time.RFC3339)))
		case s.State == StateRetired && s.Role == RoleZSK:
			out = append(out, fmt.Sprintf("ZSK %s is removed at %s", s.Key, s.At.Format(time.RFC3339)))
		case s.State == StateDSPending && !s.Parent:
			out = append(out, fmt.Sprintf("%s %s: its DS is at every parent server since %s; it replaces the active key at %s, once the DS TTL has passed",
				s.Role, s.Key, k.DSSeen.Format(time.RFC3339), s.At.Format(time.RFC3339)))
		case s.State == StateDSPending:
			out = append(out, fmt.Sprintf("%s %s: waiting for the parent to publish its DS next to the current one (sovdns dnssec ds ZONE; also in CDS and CDNSKEY): %s%s; it replaces the active key once every parent server has it and the DS TTL has passed (or at once: sovdns key rollover ZONE ksk --continue)",
				s.Role, s.Key, t.Parent.Describe(k, false), checked))
		case s.Role == RoleCSK:
			out = append(out, fmt.Sprintf("CSK %s: retired; it leaves DNSKEY and is deleted once the parent has withdrawn its DS (%s%s), not before %s",
				s.Key, t.Parent.Describe(k, true), checked, removedAt(p, k, t).Format(time.RFC3339)))
		default:
			out = append(out, fmt.Sprintf("%s %s: retired; it is deleted once the parent has withdrawn its DS: %s%s", s.Role, s.Key, t.Parent.Describe(k, true), checked))
		}
	}
	return out
}

// StartAlgorithmRollover begins moving a signed zone from the algorithm
// of cur to that of p (RFC 6781 §4.1.4, the conservative approach): keys
// of the new algorithm are made (a CSK, or a KSK and ZSK, as p says) and
// sign every RRset at once without being in DNSKEY. Advance then steps it:
//  1. once every cached RRset can carry the new signatures (the zone's
//     largest TTL), the new keys enter DNSKEY, and CDS and CDNSKEY offer
//     both algorithms' DS;
//  2. once every parent server publishes the new DS and its TTL has
//     passed (and the DNSKEY TTL since step 1), the old keys leave DNSKEY
//     and CDS, and still sign;
//  3. once no cache can hold a DNSKEY RRset with them (the DNSKEY TTL),
//     the old keys and their signatures go.
//
// It returns the key set and p with the rollover recorded.
func StartAlgorithmRollover(origin string, cur, p Policy, keys []*Key, now time.Time) ([]*Key, Policy, error) {
	switch {
	case cur.AlgorithmFrom != 0:
		return nil, p, fmt.Errorf("%w: an algorithm rollover from %d", ErrRollover, cur.AlgorithmFrom)
	case cur.Algorithm == p.Algorithm:
		return nil, p, fmt.Errorf("%w: the zone already signs with algorithm %d", ErrPolicy, p.Algorithm)
	case !cur.Unsigning.IsZero():
		return nil, p, fmt.Errorf("%w: signing is being turned off (dnssec enable cancels that first)", ErrRollover)
	}
	for _, k := range keys {
		if k.State != StateActive {
			return nil, p, fmt.Errorf("%w: %s %s is %s; let that rollover finish first", ErrRollover, k.Role, k.ID(), k.State)
		}
	}
	out := slices.Clone(keys)
	roles := []Role{RoleCSK}
	if p.SplitKeys {
		roles = []Role{RoleKSK, RoleZSK}
	}
	for _, r := range roles {
		k, err := newKey(origin, p, r, StateIncoming, out, now)
		if err != nil {
			return nil, p, err
		}
		out = append(out, k)
	}
	p.AlgorithmFrom = cur.Algorithm
	return out, p, nil
}

// Settle returns p with a finished algorithm rollover cleared: no key of
// the old algorithm is left.
func (p Policy) Settle(keys []*Key) Policy {
	if p.AlgorithmFrom != 0 && !slices.ContainsFunc(keys, func(k *Key) bool { return k.DNSKEY.Algorithm == p.AlgorithmFrom }) {
		p.AlgorithmFrom = 0
	}
	return p
}

// algorithmPhase is where an algorithm rollover is.
type algorithmPhase int

const (
	phaseSignatures algorithmPhase = iota // new keys sign, not in DNSKEY
	phaseDS                               // both in DNSKEY; waiting for the new DS
	phaseRemoval                          // old keys out of DNSKEY, still signing
)

// algorithmState finds the phase of the algorithm rollover of p, and the
// new keys that sign the DNSKEY RRset (whose DS the parent must publish).
func algorithmState(p Policy, keys []*Key) (algorithmPhase, []*Key) {
	var newKSK []*Key
	phase := phaseRemoval
	for _, k := range keys {
		switch {
		case k.State == StateIncoming:
			return phaseSignatures, nil
		case k.DNSKEY.Algorithm == p.AlgorithmFrom && k.State == StateActive:
			phase = phaseDS
		case k.DNSKEY.Algorithm == p.Algorithm && k.Role != RoleZSK && k.State == StateActive:
			newKSK = append(newKSK, k)
		}
	}
	return phase, newKSK
}

// algorithmDSAt is when, in phase DS, the old keys may leave DNSKEY: the
// DS TTL after every parent server was seen to publish the new DS, and
// the DNSKEY TTL after the new keys entered DNSKEY; zero while a new
// key's DS has not been seen at every server.
func algorithmDSAt(p Policy, newKSK []*Key, t Timing) time.Time {
	var at time.Time
	for _, k := range newKSK {
		if k.DSSeen.IsZero() {
			return time.Time{}
		}
		if s := swapAt(p, k, t); s.After(at) {
			at = s
		}
	}
	return at
}

// advanceAlgorithm takes the algorithm rollover's steps whose time has
// come (see StartAlgorithmRollover).
func advanceAlgorithm(p Policy, keys []*Key, t Timing, now time.Time) ([]*Key, bool) {
	out := keys
	changed := false
	phase, newKSK := algorithmState(p, out)
	switch phase {
	case phaseSignatures:
		for i, k := range out {
			if k.State == StateIncoming && !now.Before(k.Changed.Add(t.MaxTTL+p.PropagationDelay.D())) {
				nk := *k
				nk.State, nk.Changed = StateActive, now.UTC()
				out[i], changed = &nk, true
			}
		}
	case phaseDS:
		if t.Parent == nil {
			return out, false
		}
		for i, k := range out {
			if !slices.Contains(newKSK, k) {
				continue
			}
			seen := t.Parent.Publishes(k)
			switch {
			case seen && k.DSSeen.IsZero():
				nk := *k
				nk.DSSeen = t.Parent.Checked.UTC()
				out[i], changed = &nk, true
			case !seen && !k.DSSeen.IsZero() && t.Parent.usable():
				nk := *k
				nk.DSSeen = time.Time{}
				out[i], changed = &nk, true
			}
		}
		_, newKSK = algorithmState(p, out)
		if at := algorithmDSAt(p, newKSK, t); !at.IsZero() && !now.Before(at) {
			out = retireAlgorithm(p, out, now)
			changed = true
		}
	}
	return out, changed
}

// retireAlgorithm takes the old algorithm's keys out of DNSKEY: they
// still sign (StateOutgoing).
func retireAlgorithm(p Policy, keys []*Key, now time.Time) []*Key {
	out := slices.Clone(keys)
	for i, k := range out {
		if k.DNSKEY.Algorithm == p.AlgorithmFrom && k.State == StateActive {
			nk := *k
			nk.State, nk.Changed = StateOutgoing, now.UTC()
			out[i] = &nk
		}
	}
	return out
}

// continueAlgorithm takes the DS step of an algorithm rollover at the
// operator's word: unless force is set, only once every parent server
// publishes the new DS and the new keys have been in DNSKEY for its TTL.
func continueAlgorithm(p Policy, keys []*Key, t Timing, now time.Time, force bool) ([]*Key, string, error) {
	phase, newKSK := algorithmState(p, keys)
	if phase != phaseDS {
		return nil, "", fmt.Errorf("%w: the algorithm rollover from %d moves on by itself as time passes", ErrNoRollover, p.AlgorithmFrom)
	}
	if !force {
		for _, k := range newKSK {
			if !t.Parent.Publishes(k) {
				return nil, "", fmt.Errorf("%w: DS of %s %s: %s (--force to go on anyway)", ErrParentDS, k.Role, k.ID(), t.Parent.Describe(k, false))
			}
			if at := k.Changed.Add(t.KeyTTL + p.PropagationDelay.D()); now.Before(at) {
				return nil, "", fmt.Errorf("%w: %s %s entered DNSKEY at %s; caches may hold the DNSKEY RRset without it until %s (--force to go on anyway)",
					ErrTooSoon, k.Role, k.ID(), k.Changed.Format(time.RFC3339), at.Format(time.RFC3339))
			}
		}
	}
	return retireAlgorithm(p, keys, now), fmt.Sprintf("the keys of algorithm %d left DNSKEY; they sign until no cache can hold them, then go", p.AlgorithmFrom), nil
}
