package zonestore

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/zone"
)

// batchRecords bounds the records one transaction of ImportMany writes:
// a batch is committed (one fsync) when it holds this many, or batchZones
// zones.
const (
	batchRecords = 200_000
	batchZones   = 2_000
)

// ImportMany imports zones as Import does each, in batched transactions
// (one fsync per batch rather than per zone). Each zone lands whole or
// not at all, and a zone that cannot be imported (it exists and replace
// is not set, it is a secondary, two files name it) is refused alone: the
// others go on. The results are in the order of zs; done, if not nil, is
// called after each batch with the number of zones handled so far.
func (s *Store) ImportMany(zs []*zone.Zone, replace bool, done func(n int)) []BatchResult {
	out := make([]BatchResult, len(zs))
	seen := map[string]int{}
	for i, z := range zs {
		out[i].Origin = z.Origin
		if j, ok := seen[z.Origin]; ok {
			out[i].Err = fmt.Errorf("zone %s: %w (also in the zone at position %d)", z.Origin, ErrDuplicateZone, j+1)
			continue
		}
		seen[z.Origin] = i
	}
	start := 0
	for start < len(zs) {
		end, records := start, 0
		for end < len(zs) && end-start < batchZones && (records < batchRecords || end == start) {
			records += zs[end].Len()
			end++
		}
		s.importBatch(zs[start:end], out[start:end], replace)
		if done != nil {
			done(end)
		}
		start = end
	}
	total := 0
	for _, z := range zs {
		total += z.Len()
	}
	if total >= largeZone {
		s.releaseSoon(true)
	}
	return out
}

// BatchResult is what ImportMany did with one zone.
type BatchResult struct {
	Origin string
	Result PutResult
	Err    error
}

// ErrDuplicateZone is a zone given twice to ImportMany.
var ErrDuplicateZone = errors.New("the zone is given more than once")

// importBatch imports one batch in one transaction; res[i] is zs[i]'s.
// A zone the signer manages is imported on its own afterwards (Import),
// since it is signed first.
func (s *Store) importBatch(zs []*zone.Zone, res []BatchResult, replace bool) {
	// Every zone of the batch is locked for its change, in canonical order.
	origins := make([]string, 0, len(zs))
	for i, z := range zs {
		if res[i].Err == nil {
			origins = append(origins, z.Origin)
		}
	}
	zone.SortCanonical(origins)
	s.zones.RLock()
	locks := make([]*sync.Mutex, 0, len(origins))
	for _, o := range origins {
		l := s.zoneMutex(o)
		l.Lock()
		locks = append(locks, l)
	}
	defer func() {
		for _, l := range slices.Backward(locks) {
			l.Unlock()
		}
		s.zones.RUnlock()
	}()

	type plan struct {
		i   int
		z   *zone.Zone
		old *zone.Zone
	}
	var plans []plan
	var signed []int
	now := s.opts.Now()
	for i, z := range zs {
		if res[i].Err != nil {
			continue
		}
		old, err := s.load(z.Origin)
		switch {
		case errors.Is(err, ErrNoZone):
			old = nil
		case err != nil && !errors.Is(err, ErrCorrupt):
			res[i].Err = err
			continue
		case !replace:
			res[i].Err = fmt.Errorf("zone %s: %w (use replace to overwrite it)", z.Origin, ErrZoneExists)
			continue
		}
		if sg, err := s.signingOf(z.Origin); err != nil && !errors.Is(err, ErrNoZone) {
			res[i].Err = err
			continue
		} else if sg != nil {
			signed = append(signed, i)
			continue
		}
		r := PutResult{Records: z.Len(), Created: old == nil}
		if old != nil {
			r.OldSerial, r.OldRecords = old.Serial(), old.Len()
			if !SerialLess(old.Serial(), z.Serial()) {
				if z, err = withSerial(z, NextSerial(old.Serial(), s.opts.SerialPolicy, now)); err != nil {
					res[i].Err = err
					continue
				}
				r.Bumped = true
			}
		}
		res[i].Result = r
		plans = append(plans, plan{i: i, z: z, old: old})
	}
	if len(plans) > 0 {
		err := s.update(func(tx *bolt.Tx) error {
			for _, p := range plans {
				// Checked before anything of the zone is written: a
				// refused zone leaves the transaction as it was.
				if zb, err := zoneBucket(tx, p.z.Origin); err == nil && readMeta(zb).Kind == KindSecondary {
					res[p.i].Err = fmt.Errorf("zone %s: %w", p.z.Origin, ErrSecondary)
					continue
				}
				op := OpImport
				if p.old == nil {
					op = OpCreate
				}
				if err := s.writeImport(tx, p.old, p.z, now, false); err != nil {
					return fmt.Errorf("zone %s: %w", p.z.Origin, err)
				}
				if err := s.journal(tx, p.old, p.z, op, now, nil); err != nil {
					return fmt.Errorf("zone %s: %w", p.z.Origin, err)
				}
			}
			return nil
		})
		for _, p := range plans {
			switch {
			case err != nil && res[p.i].Err == nil:
				res[p.i].Err = fmt.Errorf("store zone %s: %w", p.z.Origin, err)
			case res[p.i].Err == nil:
				res[p.i].Result.Zone, res[p.i].Result.Serial = p.z, p.z.Serial()
				s.setCached(p.z.Origin, p.z)
				s.publish(p.z.Origin, p.z)
			}
		}
	}
	for _, i := range signed {
		// Import takes the zone's lock: this batch's is let go for it.
		res[i].Result, res[i].Err = s.importLocked(zs[i], replace)
	}
}
