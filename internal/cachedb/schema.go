package cachedb

// The layout of a cache file (format 3). Every bucket and key is named here.
//
//	meta/version   FormatVersion, 4 bytes big-endian
//	meta/saved_at  when the file was last written (by a whole save or by a
//	               write-behind batch), on the cache's clock, Unix
//	               nanoseconds, 8 bytes big-endian
//	meta/island    1 byte: 1 when the resolver was in island mode then
//	meta/national  how many of cache/'s first records are the national
//	               infrastructure, 8 bytes big-endian (absent from the
//	               snapshots of earlier versions, which listed the rest
//	               shard by shard)
//	cache/<seq>    one cache entry of the snapshot: seq counts from 1, 8
//	               bytes big-endian, in the order Cache.Export gave the
//	               entries (the national infrastructure, then the rest
//	               from the least recently used); the value is the
//	               CRC-32C of the record (4 bytes big-endian) and the
//	               record (see record.go)
//	log/<seq>      changes made after cache/ was written: seq counts from
//	               1, 8 bytes big-endian. The value is a chunk of changes:
//	               4 zero bytes, the op logChunk (1 byte), then each change
//	               as its length (4 bytes big-endian) and the change. A
//	               change is the CRC-32C of the rest (4 bytes big-endian),
//	               an op (1 byte: logPut, logDelete), then for a put the
//	               record, for a delete the entry's key: its kind (1 byte),
//	               type (2 bytes big-endian) and owner name (the rest)
//	infra/<addr>   a server's smoothed RTT in nanoseconds, 8 bytes big-endian;
//	               the key is netip.AddrPort's binary form
//
// cache/ is a snapshot, written whole by Save; the write-behind (see
// writer.go) appends each batch of changes to log/ in one bbolt
// transaction, in chunks of up to chunkBytes (one bbolt key per chunk, not
// per change: a put in a B+tree costs a search and a node's growth), so
// each batch writes about the bytes of its records, not the B+tree pages
// of random keys all over the file. bbolt's copy-on-write
// commits leave either the previous state or the new one after a crash,
// at any moment. Load applies the log to the snapshot in order. The writer
// writes a new snapshot (a new file, renamed over this one) at start, when
// the records of the file the cache no longer needs outweigh those it does
// (Writer.dueCompaction), and every resolver.persist.interval, so the file
// stays within about twice what the cache holds. The per-record
// checksums stand for the sealed trailer of format 1 (see seal.go): they
// catch a record damaged on disk, which is then skipped on its own.
//
// Format 2 (written by earlier versions) is format 3 with one change per
// log value (the change itself, no chunk). Load reads it; the writer, which
// writes a snapshot at start, converts it.
//
// Format 1 (written by earlier versions) was rewritten whole at each save,
// with records under sequence numbers (cache/<seq>, 8 bytes, in the order
// Cache.Export gave them), meta/entries and meta/servers counts, and a
// checksum trailer over the whole file. Load still reads it; the first
// write converts it, keeping the old file beside it as <path>.v1.
var (
	bucketMeta  = []byte("meta")
	bucketCache = []byte("cache")
	bucketInfra = []byte("infra")
	bucketLog   = []byte("log")

	keyVersion = []byte("version")
	keySavedAt = []byte("saved_at")
	keyEntries = []byte("entries") // format 1 only
	keyServers = []byte("servers") // format 1 only
	keyIsland  = []byte("island")  // 1: the resolver was in island mode when written
	// How many of cache/'s first records are the national infrastructure;
	// the rest are in order of use. Written by every snapshot since it
	// was added, absent from those before.
	keyNational = []byte("national")
)

// FormatVersion is the version of the file layout and record encoding this
// build writes. It reads this version, formatV2 and formatV1; a file of
// another version is not read (the cache starts empty, the file is set
// aside).
const FormatVersion uint32 = 3

// formatV2 is the version of the files of earlier versions with one change
// per log value.
const formatV2 uint32 = 2

// formatV1 is the version of the sealed files of earlier versions.
const formatV1 uint32 = 1

// The ops of the log.
const (
	logPut    byte = 1
	logDelete byte = 2
	logChunk  byte = 3 // a log value of several changes (format 3)
)

// chunkBytes bounds a chunk of the log (it may exceed it by one change):
// about 20 changes, and one chunk to a 4 KiB page, where bbolt writes it
// from its pool of page buffers (a value larger than a page costs a buffer
// of its own at every commit).
const chunkBytes = 3 << 10

// backupSuffix names the copy of a format 1 file kept when it is converted.
const backupSuffix = ".v1"
