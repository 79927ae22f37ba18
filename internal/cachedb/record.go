package cachedb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/resolver"
)

// A cache record is encoded as, in order (integers big-endian):
//
//	kind       1 byte  resolver.RecordKind
//	qtype      2 bytes
//	expire     8 bytes Unix nanoseconds
//	rcode      2 bytes
//	msg kind   1 byte
//	rank       1 byte
//	sec        1 byte
//	why status 1 byte
//	name       1-byte length, then the bytes; a name of more than 255
//	           characters (escapes in its presentation form): a zero
//	           byte, a 2-byte length, then the bytes (no name is empty,
//	           so the records of earlier versions read the same)
//	why        2-byte length, then the bytes
//	why is     1-byte count, then each name as a 1-byte length and the bytes
//	msg        the rest: the records, as a packed DNS message
//
// Decoding checks only the framing; resolver.Cache.Import checks the rest.

const recordFixed = 1 + 2 + 8 + 2 + 1 + 1 + 1 + 1

var errRecord = errors.New("bad record framing")

// appendRecord appends the encoding of rec to b.
func appendRecord(b []byte, rec resolver.CacheRecord) ([]byte, error) {
	if len(rec.Name) > 0xffff || len(rec.Why) > 0xffff || len(rec.WhyIs) > 0xff || rec.Rcode < 0 || rec.Rcode > 0xffff {
		return b, fmt.Errorf("record %s: field too long", rec.Name)
	}
	b = append(b, byte(rec.Kind))
	b = binary.BigEndian.AppendUint16(b, rec.Qtype)
	b = binary.BigEndian.AppendUint64(b, uint64(rec.Expire.UnixNano()))
	b = binary.BigEndian.AppendUint16(b, uint16(rec.Rcode))
	b = append(b, byte(rec.MsgKind), byte(rec.Rank), byte(rec.Sec), byte(rec.WhyStatus))
	if len(rec.Name) > 0xff {
		b = binary.BigEndian.AppendUint16(append(b, 0), uint16(len(rec.Name)))
	} else {
		b = append(b, byte(len(rec.Name)))
	}
	b = append(b, rec.Name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rec.Why)))
	b = append(b, rec.Why...)
	b = append(b, byte(len(rec.WhyIs)))
	for _, s := range rec.WhyIs {
		if len(s) > 0xff {
			return b, fmt.Errorf("record %s: field too long", rec.Name)
		}
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	return append(b, rec.Msg...), nil
}

// decodeRecord decodes b. The record shares no memory with b, which may be
// a bbolt page.
func decodeRecord(b []byte) (resolver.CacheRecord, error) {
	if len(b) < recordFixed {
		return resolver.CacheRecord{}, errRecord
	}
	rec := resolver.CacheRecord{
		Kind:      resolver.RecordKind(b[0]),
		Qtype:     binary.BigEndian.Uint16(b[1:]),
		Expire:    time.Unix(0, int64(binary.BigEndian.Uint64(b[3:]))),
		Rcode:     int(binary.BigEndian.Uint16(b[11:])),
		MsgKind:   resolver.MsgKind(b[13]),
		Rank:      resolver.Rank(b[14]),
		Sec:       dnssec.SecStatus(b[15]),
		WhyStatus: dnssec.SecStatus(b[16]),
	}
	d := decoder{b: b[recordFixed:]}
	n := int(d.uint8())
	if n == 0 {
		// The long form is for long names only: one encoding a record.
		if n = int(d.uint16()); n <= 0xff {
			return resolver.CacheRecord{}, errRecord
		}
	}
	rec.Name = string(d.bytes(n))
	rec.Why = string(d.bytes(int(d.uint16())))
	if n := int(d.uint8()); n > 0 {
		rec.WhyIs = make([]string, 0, min(n, 32))
		for range n {
			rec.WhyIs = append(rec.WhyIs, string(d.bytes(int(d.uint8()))))
		}
	}
	if d.bad {
		return resolver.CacheRecord{}, errRecord
	}
	rec.Msg = append([]byte(nil), d.b...)
	return rec, nil
}

// decoder reads from b; a read past its end sets bad and yields zeros.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) bytes(n int) []byte {
	if d.bad || n > len(d.b) {
		d.bad = true
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) uint8() uint8 {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) uint16() uint16 {
	if b := d.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

// appendKey appends the key of an entry in the cache bucket (formats 2 and 3): its
// kind, type and owner name.
func appendKey(b []byte, k resolver.CacheKey) []byte {
	b = append(b, byte(k.Kind))
	b = binary.BigEndian.AppendUint16(b, k.Qtype)
	return append(b, k.Name...)
}

// decodeKey decodes a key of the cache bucket; the name is a copy.
func decodeKey(b []byte) (resolver.CacheKey, bool) {
	if len(b) < 3 || len(b) > 3+resolver.MaxNameText {
		return resolver.CacheKey{}, false
	}
	return resolver.CacheKey{Kind: resolver.RecordKind(b[0]), Qtype: binary.BigEndian.Uint16(b[1:]), Name: string(b[3:])}, true
}

// keyOf returns the key of rec.
func keyOf(rec resolver.CacheRecord) resolver.CacheKey {
	return resolver.CacheKey{Kind: rec.Kind, Name: rec.Name, Qtype: rec.Qtype}
}

// appendValue appends a value of the cache bucket (formats 2 and 3): the record's
// CRC-32C, then the record.
func appendValue(b []byte, rec resolver.CacheRecord) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b, err := appendRecord(b, rec)
	if err != nil {
		return b[:start], err
	}
	binary.BigEndian.PutUint32(b[start:], crc32.Checksum(b[start+4:], castagnoli))
	return b, nil
}

// decodeValue checks the checksum of a value of the cache bucket and
// decodes its record.
func decodeValue(v []byte) (resolver.CacheRecord, error) {
	if len(v) < 4 || crc32.Checksum(v[4:], castagnoli) != binary.BigEndian.Uint32(v) {
		return resolver.CacheRecord{}, errChecksum
	}
	return decodeRecord(v[4:])
}

var errChecksum = errors.New("record checksum mismatch")

// appendLog appends a value of the log bucket: a put of rec, or when
// deleted is set a delete of its key.
func appendLog(b []byte, k resolver.CacheKey, rec resolver.CacheRecord, deleted bool) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	if deleted {
		b = append(b, logDelete)
		b = appendKey(b, k)
	} else {
		b = append(b, logPut)
		var err error
		if b, err = appendRecord(b, rec); err != nil {
			return b[:start], err
		}
	}
	binary.BigEndian.PutUint32(b[start:], crc32.Checksum(b[start+4:], castagnoli))
	return b, nil
}

// appendChunk begins a log value of format 3 that carries several changes
// (see schema.go); appendChange then adds each.
func appendChunk(b []byte) []byte {
	return append(b, 0, 0, 0, 0, logChunk)
}

// appendChange adds a change (a put of rec, or a delete of k) to the chunk
// that b ends with: its length, then the change as appendLog encodes it.
func appendChange(b []byte, k resolver.CacheKey, rec resolver.CacheRecord, deleted bool) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b, err := appendLog(b, k, rec, deleted)
	if err != nil {
		return b[:start], err
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b, nil
}

// logChanges calls fn with each change a value of the log bucket holds:
// the value itself (formats 2 and 3), or each change of a chunk (format 3).
// It returns how many changes a damaged chunk lost past its damage (the
// rest of the chunk, counted as one); each change carries its own checksum,
// checked by decodeLog.
func logChanges(v []byte, fn func(change []byte)) (lost int) {
	if len(v) < 5 || v[4] != logChunk || binary.BigEndian.Uint32(v) != 0 {
		fn(v)
		return 0
	}
	for rest := v[5:]; len(rest) > 0; {
		if len(rest) < 4 {
			return 1
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return 1
		}
		fn(rest[4 : 4+n])
		rest = rest[4+n:]
	}
	return 0
}

// decodeLog checks and decodes one change of the log: the key changed,
// and its record unless the change is a delete.
func decodeLog(v []byte) (k resolver.CacheKey, rec resolver.CacheRecord, deleted bool, err error) {
	if len(v) < 5 || crc32.Checksum(v[4:], castagnoli) != binary.BigEndian.Uint32(v) {
		return k, rec, false, errChecksum
	}
	switch v[4] {
	case logDelete:
		k, ok := decodeKey(v[5:])
		if !ok {
			return k, rec, false, errRecord
		}
		return k, rec, true, nil
	case logPut:
		rec, err := decodeRecord(v[5:])
		if err != nil {
			return k, rec, false, err
		}
		return keyOf(rec), rec, false, nil
	}
	return k, rec, false, errRecord
}
