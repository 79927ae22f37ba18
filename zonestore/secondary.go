package zonestore

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/zone"
)

// A zone is a primary (edited here) or a secondary (a copy transferred in
// from its primaries, changed only by PutTransfer):
//
//	zones/<origin>/info/kind        "secondary"; absent for a primary
//	zones/<origin>/info/source      where the copy came from
//	zones/<origin>/info/refreshed   RFC 3339 time the copy was last found current
const (
	KindPrimary   = "primary"
	KindSecondary = "secondary"
)

// Sentinels for secondary zones; test with errors.Is.
var (
	ErrSecondary      = errors.New("the zone is a secondary copy: edit it on its primary")
	ErrNotSecondary   = errors.New("the zone is a primary zone on this node")
	ErrSerialNotNewer = errors.New("the transferred serial is not newer than the stored one (RFC 1982)")
)

// ZoneMeta is a zone's replication state.
type ZoneMeta struct {
	Kind      string    `json:"kind"`
	Source    string    `json:"source,omitempty"`
	Refreshed time.Time `json:"refreshed,omitzero"`
	Updated   time.Time `json:"updated"`
}

func readMeta(zb *bolt.Bucket) ZoneMeta { return metaIn(zb.Bucket(bucketInfo)) }

// metaIn is readMeta from the zone's info bucket ib, which may be nil.
func metaIn(ib *bolt.Bucket) ZoneMeta {
	m := ZoneMeta{Kind: KindPrimary}
	if ib == nil {
		return m
	}
	if k := ib.Get(keyKind); k != nil {
		m.Kind = string(k)
	}
	if src := ib.Get(keySource); len(src) > 0 {
		m.Source = string(src)
	}
	m.Refreshed = stampIn(ib, keyRefreshed)
	m.Updated = stampIn(ib, keyUpdated)
	return m
}

// stampIn returns the time stored under key in ib (RFC 3339), or the zero
// time when there is none or it does not parse.
func stampIn(ib *bolt.Bucket, key []byte) time.Time {
	v := ib.Get(key)
	if len(v) == 0 {
		return time.Time{} // a primary is never refreshed: no error to make
	}
	t, _ := time.Parse(time.RFC3339, string(v))
	return t
}

// checkPrimary refuses a change of a secondary zone.
func checkPrimary(tx *bolt.Tx, origin string) error {
	zb, err := zoneBucket(tx, origin)
	if errors.Is(err, ErrNoZone) {
		return nil
	}
	if err != nil {
		return err
	}
	if readMeta(zb).Kind == KindSecondary {
		return fmt.Errorf("zone %s: %w", origin, ErrSecondary)
	}
	return nil
}

// Meta returns the zone's replication state: from the zone index when it
// is current (a secondary of many zones asks for every zone's at start,
// and the index keeps them on a few pages), else from the zone's bucket.
func (s *Store) Meta(origin string) (ZoneMeta, error) {
	origin = zone.Fqdn(origin)
	var m ZoneMeta
	err := s.db.View(func(tx *bolt.Tx) error {
		if indexCurrent(tx) {
			k, err := indexKey(origin)
			if err != nil {
				return fmt.Errorf("zone %s: %w", origin, ErrNoZone)
			}
			v := tx.Bucket(bucketIndex).Get(k)
			if v == nil {
				return fmt.Errorf("zone %s: %w", origin, ErrNoZone)
			}
			info, _, err := decodeIndex(v)
			if err != nil {
				return fmt.Errorf("%w: zone index: %w", ErrCorrupt, err)
			}
			m = ZoneMeta{Kind: info.Kind, Source: info.Source, Refreshed: info.Refreshed, Updated: info.Updated}
			return nil
		}
		zb, err := zoneBucket(tx, origin)
		if err != nil {
			return err
		}
		m = readMeta(zb)
		s.touchedOne()
		return nil
	})
	return m, err
}

// Kinds returns the kind (KindPrimary, KindSecondary) of every stored
// zone, by origin, read in one transaction: what a start, the catalog and
// the notifier need of every zone, a tenth of what its whole ZoneMeta
// (Meta) costs to hold at a hundred thousand zones.
func (s *Store) Kinds() (map[string]string, error) {
	out := map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		ok, err := eachIndexed(tx, func(info ZoneInfo, _ byte) error {
			out[info.Origin] = info.Kind
			return nil
		})
		if ok {
			return err
		}
		zs := tx.Bucket(bucketZones)
		if zs == nil {
			return nil
		}
		return zs.ForEachBucket(func(k []byte) error {
			zb, err := zoneBucket(tx, string(k))
			if err != nil {
				return nil // not a whole zone: not listed
			}
			kind := KindPrimary
			switch v := zb.Bucket(bucketInfo).Get(keyKind); {
			case v == nil, string(v) == KindPrimary:
			case string(v) == KindSecondary:
				kind = KindSecondary
			default:
				kind = string(v)
			}
			out[string(k)] = kind
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read zone kinds: %w", err)
	}
	s.passed(len(out))
	return out, nil
}

// PutTransfer stores z, transferred in from source, as the new contents of
// a secondary zone, in one transaction, journaled as a transfer. Its serial
// must be newer than the stored copy's (RFC 1982); a primary zone of the
// same name is not replaced.
func (s *Store) PutTransfer(z *zone.Zone, source string) (PutResult, error) {
	return s.putTransfer(z, source, false)
}

// ReplaceTransfer is PutTransfer for a copy transferred whole on an
// operator's request (sovdns zone retransfer): z replaces the stored copy
// whatever the serials. When its serial is not newer, the journal gets a
// summary entry, which no IXFR reaches back across: secondaries of this
// node then take the zone whole.
func (s *Store) ReplaceTransfer(z *zone.Zone, source string) (PutResult, error) {
	return s.putTransfer(z, source, true)
}

// PutTransferChanges is PutTransfer for a version made from base by
// changing only the names with the given wire keys (an incremental
// transfer): if base is the stored version, only those names are written
// and compared for the journal.
func (s *Store) PutTransferChanges(base, z *zone.Zone, changed map[string]bool, source string) (PutResult, error) {
	return s.putTransferFrom(base, z, changed, source, false)
}

func (s *Store) putTransfer(z *zone.Zone, source string, replace bool) (PutResult, error) {
	return s.putTransferFrom(nil, z, nil, source, replace)
}

func (s *Store) putTransferFrom(base, z *zone.Zone, changed map[string]bool, source string, replace bool) (PutResult, error) {
	defer s.lockZone(z.Origin)()
	res := PutResult{Records: z.Len()}
	old, err := s.load(z.Origin)
	switch {
	case errors.Is(err, ErrNoZone) || errors.Is(err, ErrCorrupt):
		old = nil
		res.Created = err != nil && errors.Is(err, ErrNoZone)
	case err != nil:
		return res, err
	}
	now := s.opts.Now()
	err = s.batch(func(tx *bolt.Tx) error {
		if zb, err := zoneBucket(tx, z.Origin); err == nil && readMeta(zb).Kind != KindSecondary {
			return fmt.Errorf("zone %s: %w; delete it before configuring it as a secondary", z.Origin, ErrNotSecondary)
		}
		journalFrom := old
		if old != nil {
			res.OldSerial, res.OldRecords = old.Serial(), old.Len()
			if !SerialLess(old.Serial(), z.Serial()) {
				if !replace {
					return fmt.Errorf("zone %s: serial %d after %d: %w", z.Origin, z.Serial(), old.Serial(), ErrSerialNotNewer)
				}
				journalFrom = nil // no difference sequence leads here
			}
		}
		var zb *bolt.Bucket
		if old != nil {
			// Only the names that changed are written: an IXFR of one
			// record costs one name, not the zone.
			if old != base {
				changed = nil // made from another version: compare it all
			}
			if err := writeVersion(tx, old, z, changed, now); err != nil {
				return err
			}
			var err error
			if zb, err = zoneBucket(tx, z.Origin); err != nil {
				return err
			}
		} else {
			if err := writeZone(tx, z, now, false); err != nil {
				return err
			}
			var err error
			if zb, err = zoneBucket(tx, z.Origin); err != nil {
				return err
			}
		}
		ib := zb.Bucket(bucketInfo)
		stamp := []byte(now.UTC().Format(time.RFC3339))
		for k, v := range map[string][]byte{string(keyKind): []byte(KindSecondary), string(keySource): []byte(source), string(keyRefreshed): stamp} {
			if err := ib.Put([]byte(k), v); err != nil {
				return err
			}
		}
		if err := reindex(tx, z.Origin); err != nil {
			return err
		}
		if journalFrom == nil {
			changed = nil
		}
		return s.journal(tx, journalFrom, z, OpTransfer, now, changed)
	})
	if err != nil {
		return res, fmt.Errorf("store zone %s: %w", z.Origin, err)
	}
	res.Zone, res.Serial = z, z.Serial()
	s.setCached(z.Origin, z)
	s.publish(z.Origin, z)
	if changed == nil {
		releaseMemory(z)
	}
	return res, nil
}

// MarkRefreshed records that a secondary zone was found current at t.
func (s *Store) MarkRefreshed(origin string, t time.Time) error {
	origin = zone.Fqdn(origin)
	err := s.batch(func(tx *bolt.Tx) error {
		zb, err := zoneBucket(tx, origin)
		if err != nil {
			return err
		}
		if err := zb.Bucket(bucketInfo).Put(keyRefreshed, []byte(t.UTC().Format(time.RFC3339))); err != nil {
			return err
		}
		return reindex(tx, origin)
	})
	if err == nil {
		s.touchedOne()
	}
	return err
}
