package zonestore

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/zone"
)

// An editor's transaction on a zone is kept next to the zone, so that it
// survives the commands that make it and a restart of the server:
//
//	zones/<origin>/txn/info       TxnInfo as JSON (author, start, serial)
//	zones/<origin>/txn/<seq>      one staged change (txnStep as JSON), in order
//
// The zone itself does not change until the transaction is committed.
var (
	bucketTxn = []byte("txn")
	keyInfo   = []byte("info")
)

// Sentinels for transactions; test with errors.Is.
var (
	ErrTxnOpen = errors.New("the zone has an open transaction")
	ErrNoTxn   = errors.New("the zone has no open transaction")
	ErrTxnUser = errors.New("the zone's transaction belongs to another editor")
)

// TxnInfo describes an open transaction.
type TxnInfo struct {
	Author  string    `json:"author"`
	Started time.Time `json:"started"`
	// Serial is the zone's serial when the transaction began.
	Serial uint32 `json:"serial"`
	// Changes is how many changes are staged.
	Changes int `json:"changes"`
}

func (t TxnInfo) String() string {
	return fmt.Sprintf("opened by %s at %s (serial %d), %d change(s) staged", t.Author, t.Started.Format(time.RFC3339), t.Serial, t.Changes)
}

// txnStep is a Change in stored form: records in presentation format.
type txnStep struct {
	Add     []string    `json:"add,omitempty"`
	Delete  []txnDelete `json:"delete,omitempty"`
	Lenient bool        `json:"lenient,omitempty"`
}

type txnDelete struct {
	Name string `json:"name"`
	Type uint16 `json:"type,omitempty"`
	RR   string `json:"rr,omitempty"`
}

func stepOf(c Change) txnStep {
	st := txnStep{Lenient: c.Lenient}
	for _, rr := range c.Add {
		st.Add = append(st.Add, rr.String())
	}
	for _, d := range c.Delete {
		td := txnDelete{Name: d.Name, Type: d.Type}
		if d.RR != nil {
			td.RR = d.RR.String()
		}
		st.Delete = append(st.Delete, td)
	}
	return st
}

func (st txnStep) change() (Change, error) {
	c := Change{Lenient: st.Lenient}
	for _, s := range st.Add {
		rr, err := dns.NewRR(s)
		if err != nil || rr == nil {
			return c, fmt.Errorf("%w: staged record %q: %v", ErrCorrupt, s, err)
		}
		c.Add = append(c.Add, rr)
	}
	for _, td := range st.Delete {
		d := Deletion{Name: td.Name, Type: td.Type}
		if td.RR != "" {
			rr, err := dns.NewRR(td.RR)
			if err != nil || rr == nil {
				return c, fmt.Errorf("%w: staged deletion %q: %v", ErrCorrupt, td.RR, err)
			}
			d.RR = rr
		}
		c.Delete = append(c.Delete, d)
	}
	return c, nil
}

// readTxn returns the zone's open transaction and its staged changes, or
// nil when there is none.
func readTxn(tx *bolt.Tx, origin string) (*TxnInfo, []Change, error) {
	zb, err := zoneBucket(tx, origin)
	if err != nil {
		return nil, nil, err
	}
	return txnIn(zb, origin)
}

// txnIn is readTxn from the zone's bucket zb.
func txnIn(zb *bolt.Bucket, origin string) (*TxnInfo, []Change, error) {
	tb := zb.Bucket(bucketTxn)
	if tb == nil {
		return nil, nil, nil
	}
	info := &TxnInfo{}
	if err := json.Unmarshal(tb.Get(keyInfo), info); err != nil {
		return nil, nil, fmt.Errorf("%w: zone %s: transaction: %w", ErrCorrupt, origin, err)
	}
	var steps []Change
	err := tb.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return nil
		}
		var st txnStep
		if err := json.Unmarshal(v, &st); err != nil {
			return fmt.Errorf("%w: zone %s: transaction: %w", ErrCorrupt, origin, err)
		}
		c, err := st.change()
		if err != nil {
			return err
		}
		steps = append(steps, c)
		return nil
	})
	info.Changes = len(steps)
	return info, steps, err
}

// Txn returns the zone's open transaction, or nil.
func (s *Store) Txn(origin string) (*TxnInfo, error) {
	origin = zone.Fqdn(origin)
	var info *TxnInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		info, _, err = readTxn(tx, origin)
		return err
	})
	return info, err
}

// Begin opens a transaction on the zone for the store's author: the
// author's edits (Stage) then wait in it, and Commit applies them all
// together, with one validation, one serial step and one journal entry.
// Only one transaction is open on a zone at a time.
func (s *Store) Begin(origin string) (TxnInfo, error) {
	origin = zone.Fqdn(origin)
	defer s.lockZone(origin)()
	z, err := s.load(origin)
	if err != nil {
		return TxnInfo{}, err
	}
	info := TxnInfo{Author: s.Author(), Started: s.opts.Now().UTC().Truncate(time.Second), Serial: z.Serial()}
	err = s.update(func(tx *bolt.Tx) error {
		if err := checkPrimary(tx, origin); err != nil {
			return err
		}
		open, _, err := readTxn(tx, origin)
		if err != nil {
			return err
		}
		if open != nil {
			return fmt.Errorf("zone %s: %w, %s", origin, ErrTxnOpen, open)
		}
		zb, _ := zoneBucket(tx, origin)
		tb, err := zb.CreateBucket(bucketTxn)
		if err != nil {
			return err
		}
		v, err := json.Marshal(info)
		if err != nil {
			return err
		}
		if err := tb.Put(keyInfo, v); err != nil {
			return err
		}
		return reindex(tx, origin)
	})
	return info, err
}

// ownTxn returns the zone's open transaction and staged changes if the
// store's author owns it.
func (s *Store) ownTxn(tx *bolt.Tx, origin string) (*TxnInfo, []Change, error) {
	info, steps, err := readTxn(tx, origin)
	if err != nil {
		return nil, nil, err
	}
	if info == nil {
		return nil, nil, fmt.Errorf("zone %s: %w (sovdns zone begin %s opens one)", origin, ErrNoTxn, strings.TrimSuffix(origin, "."))
	}
	if info.Author != s.Author() {
		return nil, nil, fmt.Errorf("zone %s: %w: %s", origin, ErrTxnUser, info)
	}
	return info, steps, nil
}

// openTxn returns the zone, its DNSSEC state if signed, and the open
// transaction of the store's author with its staged changes; the zone's
// lock is held.
func (s *Store) openTxn(origin string) (*zone.Zone, *signing, *TxnInfo, []Change, error) {
	z, err := s.load(origin)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	sg, err := s.signingOf(origin)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var info *TxnInfo
	var steps []Change
	err = s.db.View(func(tx *bolt.Tx) error {
		var err error
		info, steps, err = s.ownTxn(tx, origin)
		return err
	})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return z, sg, info, steps, nil
}

// replay makes the version of z that steps leave, each applied in turn,
// and the names they change (nil: every name may differ).
func (s *Store) replay(z *zone.Zone, steps []Change, sg *signing) (*zone.Zone, map[string]bool, bool, error) {
	all := map[string]bool{}
	bumped := false
	cur := z
	for i, c := range steps {
		c, touched, err := touchedBy(cur, c)
		if err != nil {
			return nil, nil, false, fmt.Errorf("change %d: %w", i+1, err)
		}
		next, changed, res, err := s.stage(cur, c, touched, PutResult{}, cur != z, sg)
		if errors.Is(err, ErrNoChange) {
			continue // one change undone by a later one is no error
		}
		if err != nil {
			return nil, nil, false, fmt.Errorf("change %d: %w", i+1, err)
		}
		bumped = bumped || res.Bumped
		cur = next
		if all != nil && changed != nil {
			for k := range changed {
				all[k] = true
			}
		} else {
			all = nil
		}
	}
	return cur, all, bumped, nil
}

// Stage adds a change, made by fn from the zone as the transaction leaves
// it, to the open transaction of the store's author. The whole
// transaction is checked against the zone as it is now; a change that
// would not apply is refused and not staged. It returns the transaction.
func (s *Store) Stage(origin string, fn func(*zone.Zone) (Change, error)) (TxnInfo, error) {
	origin = zone.Fqdn(origin)
	defer s.lockZone(origin)()
	z, sg, info, steps, err := s.openTxn(origin)
	if err != nil {
		return TxnInfo{}, err
	}
	// Checked outside the write transaction: the zone's lock keeps the
	// zone and its transaction as they are.
	staged, _, _, err := s.replay(z, steps, sg)
	if err != nil {
		return TxnInfo{}, fmt.Errorf("zone %s: the staged changes no longer apply (abort the transaction): %w", origin, err)
	}
	c, err := fn(staged)
	if err != nil {
		return TxnInfo{}, err
	}
	c, touched, err := touchedBy(staged, c)
	if err != nil {
		return TxnInfo{}, err
	}
	if _, _, _, err := s.stage(staged, c, touched, PutResult{}, staged != z, sg); err != nil {
		return TxnInfo{}, err
	}
	err = s.update(func(tx *bolt.Tx) error {
		zb, err := zoneBucket(tx, origin)
		if err != nil {
			return err
		}
		tb := zb.Bucket(bucketTxn)
		if tb == nil {
			return fmt.Errorf("zone %s: %w", origin, ErrNoTxn)
		}
		seq, err := tb.NextSequence()
		if err != nil {
			return err
		}
		v, err := json.Marshal(stepOf(c))
		if err != nil {
			return err
		}
		info.Changes++
		return tb.Put(binary.BigEndian.AppendUint64(nil, seq), v)
	})
	if err != nil {
		return TxnInfo{}, err
	}
	return *info, nil
}

// TxnDiff returns what committing the author's open transaction would
// remove from the zone and add to it now, the signer's records aside.
func (s *Store) TxnDiff(origin string) (removed, added []dns.RR, err error) {
	origin = zone.Fqdn(origin)
	defer s.lockZone(origin)()
	z, sg, _, steps, err := s.openTxn(origin)
	if err != nil {
		return nil, nil, err
	}
	staged, changed, _, err := s.replay(z, steps, sg)
	if err != nil {
		return nil, nil, fmt.Errorf("zone %s: the staged changes no longer apply: %w", origin, err)
	}
	if staged == z {
		return nil, nil, nil
	}
	removed, added = diffKeys(z, staged, changed)
	keep := func(rrs []dns.RR) []dns.RR {
		out := rrs[:0]
		for _, rr := range rrs {
			if t := rr.Header().Rrtype; t != dns.TypeRRSIG && !dnssec.Managed(t) {
				out = append(out, rr)
			}
		}
		return out
	}
	removed, added = keep(removed), keep(added)
	byName := func(a, b dns.RR) int {
		if c := zone.CanonicalCompare(a.Header().Name, b.Header().Name); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Header().Rrtype, b.Header().Rrtype); c != 0 {
			return c
		}
		return strings.Compare(a.String(), b.String())
	}
	slices.SortFunc(removed, byName)
	slices.SortFunc(added, byName)
	if z.Serial() != staged.Serial() {
		removed = append([]dns.RR{z.SOA}, removed...)
		added = append([]dns.RR{staged.SOA}, added...)
	}
	return removed, added, nil
}

// Commit applies the author's open transaction to the zone as it is now,
// in one commit (one serial step, one journal entry under the author's
// name), and closes it. If a staged change no longer applies, nothing
// changes and the transaction stays open.
func (s *Store) Commit(origin string) (PutResult, error) {
	origin = zone.Fqdn(origin)
	defer s.lockZone(origin)()
	old, sg, info, steps, err := s.openTxn(origin)
	if err != nil {
		return PutResult{}, err
	}
	res := PutResult{OldSerial: old.Serial(), OldRecords: old.Len()}
	z, changed, bumped, err := s.replay(old, steps, sg)
	if err != nil {
		return res, fmt.Errorf("zone %s: transaction not committed (still open): %w", origin, err)
	}
	closeTxn := func(tx *bolt.Tx) error {
		zb, err := zoneBucket(tx, origin)
		if err != nil {
			return err
		}
		if err := zb.DeleteBucket(bucketTxn); err != nil {
			return err
		}
		return reindex(tx, origin)
	}
	if z == old {
		// Nothing to apply: the transaction closes, the zone stays.
		if err := s.update(closeTxn); err != nil {
			return res, err
		}
		return res, fmt.Errorf("zone %s: %w", origin, ErrNoChange)
	}
	if err := s.As(info.Author).commitEdit(old, z, changed, OpEdit, closeTxn); err != nil {
		return res, err
	}
	res.Zone, res.Serial, res.Records, res.Bumped = z, z.Serial(), z.Len(), bumped
	return res, nil
}

// Abort closes the zone's open transaction and drops its changes. Only
// its author may, unless force is set.
func (s *Store) Abort(origin string, force bool) (TxnInfo, error) {
	origin = zone.Fqdn(origin)
	defer s.lockZone(origin)()
	var info *TxnInfo
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		info, _, err = readTxn(tx, origin)
		if err != nil {
			return err
		}
		if info == nil {
			return fmt.Errorf("zone %s: %w", origin, ErrNoTxn)
		}
		if info.Author != s.Author() && !force {
			return fmt.Errorf("zone %s: %w: %s (force drops it)", origin, ErrTxnUser, info)
		}
		zb, _ := zoneBucket(tx, origin)
		if err := zb.DeleteBucket(bucketTxn); err != nil {
			return err
		}
		return reindex(tx, origin)
	})
	if err != nil {
		return TxnInfo{}, err
	}
	return *info, nil
}

// signingOf returns the zone's DNSSEC state if the signer manages it, or
// nil.
func (s *Store) signingOf(origin string) (*signing, error) {
	sg, err := s.loadSigning(origin)
	if err != nil || sg == nil || sg.Policy == nil {
		return nil, err
	}
	return sg, nil
}
