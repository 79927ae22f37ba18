package zonestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/zone"
)

// The zone index holds what the zone list and the status view show of
// every zone, one short entry per zone, keyed by the zone's canonical key:
// a listing reads a few contiguous pages in canonical order instead of
// each zone's own bucket, which at 100,000 zones is 100,000 pages spread
// across the file.
//
// The index is derived: each zone's info bucket stays the record, and
// every change to what an entry holds rewrites it (reindex) in the same
// transaction. The meta key keyIndexed holds the ID of the last write
// transaction that kept the index, written by every write this code makes
// (update, batch); a file written since by anything else (an older
// version, a tool) no longer matches, and the index is rebuilt at the next
// writable open and not trusted until then (readers fall back to reading
// each zone).
var (
	bucketIndex = []byte("index")
	keyIndexed  = []byte("indexed")
)

// Flags of an index entry.
const (
	indexSummarised = 1 << iota // the entry holds the zone's summary
	indexTxn                    // a transaction is open on the zone
	indexSigned                 // the zone has a signing policy
)

// indexKey is the key of origin's entry.
func indexKey(origin string) ([]byte, error) {
	wk, err := zone.WireKey(origin)
	if err != nil {
		return nil, err
	}
	return storeKey(zone.CanonicalKey(wk)), nil
}

// reindex rewrites the index entry of origin from the zone's bucket, or
// removes it when the zone is gone. Without an index (a read-only store,
// or one not yet built) it does nothing.
func reindex(tx *bolt.Tx, origin string) error {
	ix := tx.Bucket(bucketIndex)
	if ix == nil {
		return nil
	}
	k, err := indexKey(origin)
	if err != nil {
		return fmt.Errorf("index zone %s: %w", origin, err)
	}
	zb, err := zoneBucket(tx, origin)
	if err != nil {
		return ix.Delete(k)
	}
	return ix.Put(k, indexEntry(zb, origin))
}

// indexEntry encodes what the index keeps of the zone at origin, whose
// bucket is zb: flags (1 octet), summary (24, see keySummary; zero when
// there is none), created, updated and refreshed (8 each, Unix seconds, 0
// for none), then appendIndexNames'.
func indexEntry(zb *bolt.Bucket, origin string) []byte {
	ib := zb.Bucket(bucketInfo)
	m := metaIn(ib)
	v := make([]byte, 1, 1+24+24+2+len(origin)+len(m.Kind)+len(m.Source))
	sum := ib.Get(keySummary)
	if len(sum) == 24 {
		v[0] |= indexSummarised
		v = append(v, sum...)
	} else {
		v = append(v, make([]byte, 24)...)
	}
	if zb.Bucket(bucketTxn) != nil {
		v[0] |= indexTxn
	}
	if db := zb.Bucket(bucketDNSSEC); db != nil && db.Get(keyPolicy) != nil {
		v[0] |= indexSigned
	}
	for _, t := range []time.Time{stampIn(ib, keyCreated), m.Updated, m.Refreshed} {
		var sec int64
		if !t.IsZero() {
			sec = t.Unix()
		}
		v = binary.BigEndian.AppendUint64(v, uint64(sec))
	}
	return appendIndexNames(v, origin, m.Kind, m.Source)
}

// appendIndexNames appends the origin (its length in two octets: in
// presentation form with escapes it may be longer than 255), the kind (its
// length in one octet, at most 255 of it) and the source to v.
func appendIndexNames(v []byte, origin, kind, source string) []byte {
	v = binary.BigEndian.AppendUint16(v, uint16(min(len(origin), math.MaxUint16)))
	v = append(v, origin[:min(len(origin), math.MaxUint16)]...)
	v = append(v, byte(min(len(kind), math.MaxUint8)))
	v = append(v, kind[:min(len(kind), math.MaxUint8)]...)
	return append(v, source...)
}

// decodeIndex returns the zone described by an index entry, and its flags.
func decodeIndex(v []byte) (info ZoneInfo, flags byte, err error) {
	const fixed = 1 + 24 + 24
	if len(v) < fixed+3 {
		return info, 0, fmt.Errorf("index entry of %d octets", len(v))
	}
	flags = v[0]
	if flags&indexSummarised != 0 {
		info.Serial = binary.BigEndian.Uint32(v[1:])
		info.SOAExpire = binary.BigEndian.Uint32(v[5:])
		info.Records = int(binary.BigEndian.Uint64(v[9:]))
		info.Names = int(binary.BigEndian.Uint64(v[17:]))
	}
	for i, t := range []*time.Time{&info.Created, &info.Updated, &info.Refreshed} {
		if sec := int64(binary.BigEndian.Uint64(v[25+8*i:])); sec != 0 {
			*t = time.Unix(sec, 0).UTC()
		}
	}
	rest := v[fixed:]
	n := int(binary.BigEndian.Uint16(rest))
	if len(rest) < 2+n+1 {
		return info, 0, fmt.Errorf("index entry cut short")
	}
	info.Origin, rest = string(rest[2:2+n]), rest[2+n:]
	n = int(rest[0])
	if len(rest) < 1+n {
		return info, 0, fmt.Errorf("index entry of %s cut short", info.Origin)
	}
	switch kind := rest[1 : 1+n]; string(kind) {
	case KindPrimary:
		info.Kind = KindPrimary
	case KindSecondary:
		info.Kind = KindSecondary
	default:
		info.Kind = string(kind)
	}
	if src := rest[1+n:]; len(src) > 0 {
		info.Source = string(src)
	}
	return info, flags, nil
}

// indexCurrent reports whether tx has an index kept by every write since
// it was built.
func indexCurrent(tx *bolt.Tx) bool { return indexKeptBy(tx, tx.ID()) }

// indexKeptBy reports whether tx has an index and the last write that
// kept it was the transaction id.
func indexKeptBy(tx *bolt.Tx, id int) bool {
	m := tx.Bucket(bucketMeta)
	if m == nil || tx.Bucket(bucketIndex) == nil {
		return false
	}
	v := m.Get(keyIndexed)
	return len(v) == 8 && binary.BigEndian.Uint64(v) == uint64(id)
}

// markIndexed records, in the write transaction tx, that the index is
// kept by it.
func markIndexed(tx *bolt.Tx) error {
	m := tx.Bucket(bucketMeta)
	if m == nil || tx.Bucket(bucketIndex) == nil {
		return nil
	}
	return m.Put(keyIndexed, binary.BigEndian.AppendUint64(nil, uint64(tx.ID())))
}

// buildIndex makes the index anew from every zone's bucket, in tx, and
// returns the number of zones indexed. The write transaction that made
// tx's state is not this one, so the index is not current until tx
// commits with markIndexed.
func buildIndex(tx *bolt.Tx) (int, error) {
	if tx.Bucket(bucketIndex) != nil {
		if err := tx.DeleteBucket(bucketIndex); err != nil {
			return 0, err
		}
	}
	ix, err := tx.CreateBucket(bucketIndex)
	if err != nil {
		return 0, err
	}
	zs := tx.Bucket(bucketZones)
	if zs == nil {
		return 0, nil
	}
	// Put in key order, into pages packed full: a hundred thousand zones
	// put in the order of the zones bucket took seven seconds.
	type entry struct{ k, v []byte }
	var all []entry
	err = zs.ForEachBucket(func(k []byte) error {
		origin := string(k)
		zb, err := zoneBucket(tx, origin)
		if err != nil {
			return nil // not a whole zone: not listed
		}
		key, err := indexKey(origin)
		if err != nil {
			return nil // not a name: no zone is stored so, and a start is not refused for one
		}
		all = append(all, entry{key, indexEntry(zb, origin)})
		return nil
	})
	if err != nil {
		return 0, err
	}
	slices.SortFunc(all, func(a, b entry) int { return bytes.Compare(a.k, b.k) })
	ix.FillPercent = 1
	for _, e := range all {
		if err := ix.Put(e.k, e.v); err != nil {
			return 0, err
		}
	}
	return len(all), nil
}

// eachIndexed calls fn with every zone the index describes, and its
// flags, in canonical order, until fn returns an error; ok is false when
// tx has no current index (and fn is not called).
func eachIndexed(tx *bolt.Tx, fn func(info ZoneInfo, flags byte) error) (ok bool, err error) {
	return eachIndexedAfter(tx, nil, func(_ []byte, info ZoneInfo, flags byte) error { return fn(info, flags) })
}

// eachIndexedAfter is eachIndexed from the first entry whose key sorts
// after after (nil: from the first), with each entry's key, which is
// valid only during the call.
func eachIndexedAfter(tx *bolt.Tx, after []byte, fn func(key []byte, info ZoneInfo, flags byte) error) (ok bool, err error) {
	if !indexCurrent(tx) {
		return false, nil
	}
	c := tx.Bucket(bucketIndex).Cursor()
	k, v := c.First()
	if after != nil {
		if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
			k, v = c.Next()
		}
	}
	for ; k != nil; k, v = c.Next() {
		info, flags, err := decodeIndex(v)
		if err != nil {
			return true, fmt.Errorf("%w: zone index: %w", ErrCorrupt, err)
		}
		if err := fn(k, info, flags); err != nil {
			return true, err
		}
	}
	return true, nil
}

// indexedInfos is InfosMatching from the index, in canonical order; ok is
// false when tx has no current index.
func (s *Store) indexedInfos(tx *bolt.Tx, match func(origin string) bool) (out []ZoneInfo, unsummarised []int, ok bool, err error) {
	out = []ZoneInfo{}
	ok, err = s.eachIndexedInfo(tx, match, collectInfos(&out, &unsummarised))
	if !ok || err != nil {
		return nil, nil, ok, err
	}
	return out, unsummarised, true, nil
}

// eachIndexedInfo calls emit with the description of each zone that match
// reports true for (nil: every zone), from the index, in canonical order,
// and whether its contents are summarised (else completeInfo fills them
// in); ok is false when tx has no current index, and nothing is emitted.
func (s *Store) eachIndexedInfo(tx *bolt.Tx, match func(origin string) bool, emit infoEmitter) (ok bool, err error) {
	return eachIndexed(tx, func(info ZoneInfo, flags byte) error {
		if match != nil && !match(info.Origin) {
			return nil
		}
		info, summarised, err := s.completeIndexed(tx, info, flags)
		if err != nil {
			return err
		}
		return emit(info, summarised)
	})
}

// completeIndexed adds to info, as the index entry describes it with
// flags, what the index does not hold: the summary of a zone in memory
// (summarised then), and an open transaction.
func (s *Store) completeIndexed(tx *bolt.Tx, info ZoneInfo, flags byte) (ZoneInfo, bool, error) {
	summarised := flags&indexSummarised != 0
	if z := s.cached(info.Origin); z != nil {
		info.Serial, info.SOAExpire, info.Records, info.Names = z.Serial(), z.SOA.Expire, z.Len(), z.Names()
		summarised = true
	}
	if flags&indexTxn != 0 {
		if zb, err := zoneBucket(tx, info.Origin); err == nil {
			if info.Transaction, _, err = txnIn(zb, info.Origin); err != nil {
				return info, false, err
			}
		}
	}
	return info, summarised, nil
}

// errBatchFull ends a read of the index when a batch is full.
var errBatchFull = errors.New("batch full")

// EachInfoBatch calls fn with the descriptions of the zones that match
// reports true for (nil: every zone), as Infos has them, in canonical
// order, up to batch of them at a time. Each batch is read in a
// transaction of its own, and fn is called after it ends: fn may take its
// time (write to a client) without holding the file from its writers, and
// what is held does not grow with the number of zones. A zone added or
// removed meanwhile is listed or not; none is listed twice. fn must not
// keep the slice; an error from it ends the walk and is returned.
func (s *Store) EachInfoBatch(match func(origin string) bool, batch int, fn func([]ZoneInfo) error) error {
	batch = max(batch, 1)
	buf := make([]ZoneInfo, 0, batch)
	var after []byte // the key of the last zone read
	total := 0
	for {
		buf = buf[:0]
		var unsummarised []int
		var ok bool
		err := s.db.View(func(tx *bolt.Tx) error {
			var err error
			ok, err = eachIndexedAfter(tx, after, func(k []byte, info ZoneInfo, flags byte) error {
				if len(buf) == batch {
					return errBatchFull
				}
				after = append(after[:0], k...)
				if match != nil && !match(info.Origin) {
					return nil
				}
				info, summarised, err := s.completeIndexed(tx, info, flags)
				if err != nil {
					return err
				}
				if !summarised {
					unsummarised = append(unsummarised, len(buf))
				}
				buf = append(buf, info)
				return nil
			})
			return err
		})
		full := errors.Is(err, errBatchFull)
		if err != nil && !full {
			return fmt.Errorf("describe zones: %w", err)
		}
		if !ok {
			// No current index (a file written by an earlier version, open
			// read-only): the zones' own buckets, in one read.
			return s.infosAfter(match, after, batch, fn)
		}
		for _, i := range unsummarised {
			if buf[i], err = s.completeInfo(buf[i]); err != nil {
				return err
			}
		}
		total += len(buf)
		if len(buf) > 0 {
			if err := fn(buf); err != nil {
				return err
			}
		}
		if !full {
			s.passed(total)
			return nil
		}
	}
}

// infosAfter is EachInfoBatch from InfosMatching, for the zones whose
// index keys sort after after (nil: all).
func (s *Store) infosAfter(match func(origin string) bool, after []byte, batch int, fn func([]ZoneInfo) error) error {
	infos, err := s.InfosMatching(match)
	if err != nil {
		return err
	}
	if after != nil {
		infos = slices.DeleteFunc(infos, func(info ZoneInfo) bool {
			k, err := indexKey(info.Origin)
			return err == nil && bytes.Compare(k, after) <= 0
		})
	}
	for len(infos) > 0 {
		n := min(batch, len(infos))
		if err := fn(infos[:n]); err != nil {
			return err
		}
		infos = infos[n:]
	}
	return nil
}
