package dnssec

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ParentView is what the parent zone's name servers were seen to publish
// as the zone's DS RRset at one moment. A KSK or CSK rollover moves on
// only when every server agrees (see Advance and ContinueRollover).
type ParentView struct {
	Parent  string    // the parent zone, when known
	Checked time.Time // when the servers were asked
	Servers []ParentServer
	// Err, when set, is why no server could be asked at all (the parent
	// or its servers could not be found).
	Err string
}

// ParentServer is one parent server's answer.
type ParentServer struct {
	Server string    // the address asked, or "zone X held here"
	DS     []*dns.DS // the DS RRset it serves; empty for none
	TTL    uint32    // the RRset's TTL (or the negative TTL of a NODATA)
	Err    string    // why it gave no usable answer; then DS means nothing
}

// Sentinels for rollover steps the parent is not ready for; test with
// errors.Is.
var (
	// ErrParentDS: the parent's servers do not (all) publish what the
	// step needs.
	ErrParentDS = errors.New("the parent does not publish the DS this step needs")
	// ErrTooSoon: caches may still hold records the step would break.
	ErrTooSoon = errors.New("too soon for this step")
)

// matches reports whether ds is a DS of k.
func matches(ds *dns.DS, k *Key) bool {
	if ds.KeyTag != k.Tag() || ds.Algorithm != k.DNSKEY.Algorithm {
		return false
	}
	want := k.DNSKEY.ToDS(ds.DigestType)
	return want != nil && strings.EqualFold(want.Digest, ds.Digest)
}

// usable reports whether the view holds an answer from every server.
func (v *ParentView) usable() bool {
	if v == nil || v.Err != "" || len(v.Servers) == 0 {
		return false
	}
	for _, s := range v.Servers {
		if s.Err != "" {
			return false
		}
	}
	return true
}

// Publishes reports whether every parent server publishes a DS of k.
func (v *ParentView) Publishes(k *Key) bool {
	if !v.usable() {
		return false
	}
	for _, s := range v.Servers {
		if !hasDS(s.DS, k) {
			return false
		}
	}
	return true
}

// Withdrawn reports whether no parent server publishes a DS of k any more.
func (v *ParentView) Withdrawn(k *Key) bool {
	if !v.usable() {
		return false
	}
	for _, s := range v.Servers {
		if hasDS(s.DS, k) {
			return false
		}
	}
	return true
}

func hasDS(set []*dns.DS, k *Key) bool {
	for _, ds := range set {
		if matches(ds, k) {
			return true
		}
	}
	return false
}

// NoDS reports whether no parent server publishes any DS for the zone.
func (v *ParentView) NoDS() bool {
	if !v.usable() {
		return false
	}
	for _, s := range v.Servers {
		if len(s.DS) > 0 {
			return false
		}
	}
	return true
}

// NoteWithdrawal returns p, a policy whose signing is being turned off,
// with DSGone set to when every parent server was first seen to publish
// no DS for the zone (v), or cleared when they answer with one again.
func NoteWithdrawal(p Policy, v *ParentView) Policy {
	switch {
	case v.NoDS() && p.DSGone.IsZero():
		p.DSGone = v.Checked.UTC()
	case v.usable() && !v.NoDS():
		p.DSGone = time.Time{}
	}
	return p
}

// UnsignAt is when a zone whose signing is being turned off (p.Unsigning)
// may go unsigned: once no resolver can hold a DS RRset from the parent,
// the DS TTL after every parent server was first seen without one
// (p.DSGone); zero while that has not been seen.
func UnsignAt(p Policy, v *ParentView) time.Time {
	if p.DSGone.IsZero() {
		return time.Time{}
	}
	return p.DSGone.Add(v.TTL() + p.PropagationDelay.D())
}

// TTL is the largest DS TTL the servers gave: how long a resolver may
// keep the DS RRset it saw before the change.
func (v *ParentView) TTL() time.Duration {
	var m uint32
	if v != nil {
		for _, s := range v.Servers {
			m = max(m, s.TTL)
		}
	}
	return time.Duration(m) * time.Second
}

// Describe says, for the DS of k, what each server publishes: the ones
// that lack it (or, withdrawn set, still have it) and the ones that gave
// no answer.
func (v *ParentView) Describe(k *Key, withdrawn bool) string {
	return v.describe(func(s ParentServer) bool { return hasDS(s.DS, k) }, withdrawn)
}

// DescribeAny says which servers still publish a DS for the zone, and
// which gave no answer.
func (v *ParentView) DescribeAny() string {
	return v.describe(func(s ParentServer) bool { return len(s.DS) > 0 }, true)
}

func (v *ParentView) describe(has func(ParentServer) bool, withdrawn bool) string {
	if v == nil {
		return "the parent's servers have not been asked yet"
	}
	if v.Err != "" {
		return "the parent's servers could not be asked: " + v.Err
	}
	if len(v.Servers) == 0 {
		return "no parent server is known"
	}
	var wrong, failed []string
	for _, s := range v.Servers {
		switch {
		case s.Err != "":
			failed = append(failed, s.Server+" ("+s.Err+")")
		case has(s) == withdrawn:
			wrong = append(wrong, s.Server)
		}
	}
	var parts []string
	if len(wrong) > 0 {
		verb := "lacks"
		if withdrawn {
			verb = "still publishes"
		}
		parts = append(parts, fmt.Sprintf("%d of %d servers %s it (%s)", len(wrong), len(v.Servers), verb, strings.Join(wrong, ", ")))
	}
	if len(failed) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d servers gave no answer: %s", len(failed), len(v.Servers), strings.Join(failed, "; ")))
	}
	if len(parts) == 0 {
		if withdrawn {
			return fmt.Sprintf("withdrawn at all %d servers", len(v.Servers))
		}
		return fmt.Sprintf("published at all %d servers", len(v.Servers))
	}
	return strings.Join(parts, "; ")
}
