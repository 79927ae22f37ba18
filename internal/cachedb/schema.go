package cachedb

// The layout of a cache file. Every bucket and key is named here.
//
//	meta/version   FormatVersion, 4 bytes big-endian
//	meta/saved_at  when the file was written, Unix nanoseconds, 8 bytes big-endian
//	meta/entries   records in cache/, 8 bytes big-endian
//	meta/servers   records in infra/, 8 bytes big-endian
//	cache/<seq>    one cache entry (see record.go); seq counts from 1, 8 bytes
//	               big-endian, in the order Cache.Export gave the entries
//	infra/<addr>   a server's smoothed RTT in nanoseconds, 8 bytes big-endian;
//	               the key is netip.AddrPort's binary form
var (
	bucketMeta  = []byte("meta")
	bucketCache = []byte("cache")
	bucketInfra = []byte("infra")

	keyVersion = []byte("version")
	keySavedAt = []byte("saved_at")
	keyEntries = []byte("entries")
	keyServers = []byte("servers")
	keyIsland  = []byte("island") // 1: the resolver was in island mode when saved
)

// FormatVersion is the version of the file layout and record encoding this
// build writes and reads. A file of another version is not read (the cache
// starts empty) and is replaced by the next save.
const FormatVersion uint32 = 1
