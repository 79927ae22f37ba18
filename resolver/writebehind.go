package resolver

import (
	"time"
	"unsafe"
)

// Change tracking for a write-behind copy of the cache (internal/cachedb):
// once TrackChanges is called, every entry stored, replaced, removed or
// flushed is recorded as the key that changed, in a bounded set per shard,
// under the shard lock the change already holds (an entry evicted for
// room, or past its stale window, only when its key has a change not yet
// taken: see evicted). Nothing else is done on the query path: no I/O, no
// channel, no allocation once the set has grown. The set holds, for each
// key, the entry stored last (its slot and its bytes, which are never
// modified; no bytes: removed). The writer takes the sets with TakeChanges
// and exports each entry so held with ExportHeld, without looking the key
// up again; a later change to the same key is recorded again, so the
// writer always ends with the latest state.
//
// A set that reaches FillingChanges signals the writer (ChangesFilling),
// so that under a stream of misses the sets are taken about as they fill,
// not only at the writer's interval, and stay small (their maps keep the
// room they grew to while changes keep coming, and give it back once they
// slow down: see quietSet). A set that would grow past maxShardChanges all the
// same (the writer busy writing the whole file anew, say) is dropped and
// its shard marked lost: TakeChanges then hands over every key the shard
// holds and names the shard, so the writer can rewrite it whole and delete
// what it holds of it that the cache no longer does. Memory stays bounded
// however fast the cache changes.

// maxShardChanges bounds the keys recorded per shard between two
// TakeChanges (256 shards: at most 262,144 keys in all).
const maxShardChanges = 1024

// FillingChanges is the size of a shard's set that signals ChangesFilling:
// a quarter of maxShardChanges. A writer that takes the sets when signalled
// takes about Shards times this many keys at a time.
const FillingChanges = maxShardChanges / 4

// quietSet is how much smaller than the room its map has (room) a set
// must be when taken for the map to be made anew at the set's size: a map
// keeps the room it grew to, and 256 of them grown by a stream of misses
// held some 5 MiB for good, a tenth of a 64 MiB cache, after the stream
// ended. A set taken at a quarter of that room or less, at rest none at
// all, is a shard whose changes have slowed down.
const quietSet = 4

// minRoom is the room below which a set's map is kept whatever its size:
// a map's first group holds eight keys.
const minRoom = 8

// shardChanges is what a shard records for the writer; guarded by the
// shard's mu. keys is nil until TrackChanges. A set is keyed by the hash
// of the entry's key (slot.hash): two keys of one hash in one set, which
// the 64-bit hash all but rules out, mark the shard lost, so that nothing
// is missed.
type shardChanges struct {
	keys map[uint64]cacheEntry
	whys map[uint64]error // the reasons of the entries held that have one
	// room is the most keys the map has held since it was made: about
	// the room it has.
	room    int
	since   int64         // wall clock, Unix nanoseconds, of the oldest change not taken; 0: none
	lost    bool          // changes were not all recorded: the whole shard is to be rewritten
	filling chan struct{} // the cache's ChangesFilling, signalled when keys reaches FillingChanges
}

// held returns slot i, with its reason, as a HeldEntry.
func (sh *cacheShard) held(i int32) HeldEntry {
	return HeldEntry{sh.entry(i), sh.t.why(i)}
}

// changed records that slot i was stored. Called with sh.mu held.
func (sh *cacheShard) changed(i int32) {
	if sh.wb.keys != nil {
		sh.wb.record(sh.t.slots[i].hash, sh.entry(i), sh.t.why(i))
	}
}

// removed records that slot i is being removed. Called with sh.mu held.
func (sh *cacheShard) removed(i int32) {
	if sh.wb.keys != nil {
		e := sh.entry(i)
		e.gone = true
		sh.wb.record(sh.t.slots[i].hash, e, nil)
	}
}

// evicted records that slot i leaves the cache to make room, or past its
// stale window, only when its key has a change not yet taken: then a
// copy may hold another entry of the key, or none, and is to delete it.
// Otherwise the copy holds the entry as the slot does, and keeps it: an
// entry the cache lost for room is still good, and reading the copy back
// (cachedb) fills the cache in the order it was written, so that what
// was written last is kept; one past its stale window is not read back.
// At a full cache each new name evicts one, and a stream of new names
// would otherwise write two changes a name, its put and a deletion.
// Called with sh.mu held.
func (sh *cacheShard) evicted(i int32) {
	w := &sh.wb
	if w.keys == nil || w.lost {
		return
	}
	kh := sh.t.slots[i].hash
	if _, ok := w.keys[kh]; ok {
		sh.removed(i)
	}
}

// record records e, the entry the key of hash kh holds now, with its
// reason.
func (w *shardChanges) record(kh uint64, e cacheEntry, why error) {
	if w.since == 0 {
		w.since = time.Now().UnixNano()
	}
	if w.lost {
		return
	}
	old, had := w.keys[kh]
	if len(w.keys) >= maxShardChanges || had && old.key() != e.key() {
		w.lost = true
		clear(w.keys)
		clear(w.whys)
		return
	}
	w.keys[kh] = e
	switch {
	case why != nil:
		if w.whys == nil {
			w.whys = make(map[uint64]error)
		}
		w.whys[kh] = why
	case len(w.whys) > 0:
		delete(w.whys, kh)
	}
	if len(w.keys) == FillingChanges {
		select {
		case w.filling <- struct{}{}:
		default: // already signalled, not yet taken
		}
	}
}

// empty starts the set anew once taken. Its map is kept, emptied, while
// changes keep coming; it is made anew, at the size changes are taken at,
// after it grew while the writer was busy (a whole file written anew), and
// at the set's size once the shard has gone quiet (quietSet). Called with
// the shard's mu held.
func (w *shardChanges) empty() {
	n := len(w.keys)
	switch {
	case w.lost || n > 2*FillingChanges:
		w.keys, w.room = make(map[uint64]cacheEntry, FillingChanges), FillingChanges
	case w.room > minRoom && n*quietSet <= w.room:
		w.keys, w.room = make(map[uint64]cacheEntry, n), n
	case n > 0:
		clear(w.keys)
		w.room = max(w.room, n)
	}
	w.whys = nil
	w.since, w.lost = 0, false
}

// changedAll records that every entry of sh may have changed (Flush).
// Called with sh.mu held.
func (sh *cacheShard) changedAll() {
	w := &sh.wb
	if w.keys == nil {
		return
	}
	if w.since == 0 {
		w.since = time.Now().UnixNano()
	}
	w.lost = true
	clear(w.keys)
	clear(w.whys)
}

// CacheKey names one cache entry, as a CacheRecord's Kind, Name and Qtype
// do.
type CacheKey struct {
	Kind  RecordKind
	Name  string // lower-cased, fully qualified
	Qtype uint16 // 0 for RecordNXDomain
}

func (k cacheKey) export() CacheKey {
	out := CacheKey{Name: k.name, Qtype: k.qtype}
	switch k.kind {
	case kindNX:
		out.Kind = RecordNXDomain
	case kindRRset:
		out.Kind = RecordRRset
	default:
		out.Kind = RecordMessage
	}
	return out
}

func (k CacheKey) internal() (cacheKey, bool) {
	out := cacheKey{name: k.Name, qtype: k.Qtype}
	switch k.Kind {
	case RecordMessage:
		out.kind = kindMsg
	case RecordNXDomain:
		out.kind = kindNX
	case RecordRRset:
		out.kind = kindRRset
	default:
		return cacheKey{}, false
	}
	return out, true
}

// CacheChanges are the changes handed over by TakeChanges.
type CacheChanges struct {
	// Keys are the entries stored, replaced or removed since the last
	// TakeChanges, each once; ExportEntry says what each is now.
	Keys []CacheKey
	// Held are, for each of Keys, the entry it held when taken, which
	// ExportHeld exports as ExportEntry would have then, without looking
	// the key up.
	Held []HeldEntry
	// Lost are the shards (see ShardOf) whose changes were not all
	// recorded: every key they hold is in Keys, and whatever a copy holds
	// of them that ExportEntry no longer finds is to be deleted.
	Lost []int
	// Oldest is when the oldest of these changes was made (wall clock);
	// zero when there is none.
	Oldest time.Time
}

// TrackChanges starts recording changes for TakeChanges. Entries stored
// before it are not recorded. Calling it again does nothing.
func (c *Cache) TrackChanges() {
	c.wbOnce.Do(func() { c.wbFilling = make(chan struct{}, 1) })
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		if sh.wb.keys == nil {
			sh.wb.keys = make(map[uint64]cacheEntry)
			sh.wb.filling = c.wbFilling
		}
		sh.mu.Unlock()
	}
}

// ChangesFilling is signalled when a shard's set of changes is a quarter full,
// for the writer to take them before its interval ends. It is nil (never
// ready) before TrackChanges.
func (c *Cache) ChangesFilling() <-chan struct{} {
	return c.wbFilling
}

// Tracking reports whether TrackChanges was called.
func (c *Cache) Tracking() bool {
	sh := &c.shards[0]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.wb.keys != nil
}

// TakeChanges returns the changes recorded since the last call, appending
// the keys to dst[:0], and starts recording anew. Each shard is locked
// only while its keys are copied.
func (c *Cache) TakeChanges(dst []CacheKey) CacheChanges {
	return c.TakeChangesInto(CacheChanges{Keys: dst})
}

// TakeChangesInto is TakeChanges appending to dst.Keys[:0] and
// dst.Held[:0].
func (c *Cache) TakeChangesInto(dst CacheChanges) CacheChanges {
	return c.TakeChangesPaced(dst, nil)
}

// TakeChangesPaced is TakeChangesInto calling between, when not nil,
// after each shard (its lock released): a writer that shares a processor
// with the listeners pauses there. A round of a stream of misses takes
// tens of thousands of keys, 10-15 ms of CPU in one piece otherwise.
func (c *Cache) TakeChangesPaced(dst CacheChanges, between func()) CacheChanges {
	out := CacheChanges{Keys: dst.Keys[:0], Held: dst.Held[:0]}
	oldest := int64(0)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		w := &sh.wb
		if w.since != 0 {
			if oldest == 0 || w.since < oldest {
				oldest = w.since
			}
			if w.lost {
				out.Lost = append(out.Lost, i)
				for j := range sh.t.inUse() {
					h := sh.held(j)
					out.Keys = append(out.Keys, h.e.key().export())
					out.Held = append(out.Held, h)
				}
			} else {
				for kh, e := range w.keys {
					out.Keys = append(out.Keys, e.key().export())
					out.Held = append(out.Held, HeldEntry{e, w.whys[kh]})
				}
			}
		}
		if w.keys != nil {
			w.empty()
		}
		sh.mu.Unlock()
		if between != nil {
			between()
		}
	}
	if oldest != 0 {
		out.Oldest = time.Unix(0, oldest)
	}
	return out
}

// HeldEntry is the entry a key held when its change was taken (see
// CacheChanges.Held).
type HeldEntry struct {
	e   cacheEntry
	why error
}

// ExportHeld returns the record of h, as ExportEntry returned it for h's
// key when h was taken: false for an entry removed, or past its stale
// window (national infrastructure is exported whatever its age). It does
// not look the key up: a lookup's cost was mostly its miss in the
// processor's caches, the entry having been stored a while before.
func (c *Cache) ExportHeld(h HeldEntry) (CacheRecord, bool) {
	return c.ExportHeldInto(h, nil, c.now())
}

// ExportHeldInto is ExportHeld as of the time at, with the record's Msg
// packed into buf's room when it fits (sharing buf's array): a writer
// that copies each record out before the next is spared an allocation
// per record, and one that exports many at once reads the clock once
// for them.
func (c *Cache) ExportHeldInto(h HeldEntry, buf []byte, at time.Time) (CacheRecord, bool) {
	e := &h.e
	if e.gone || e.data == nil {
		return CacheRecord{}, false
	}
	now := at.UnixNano()
	if now >= e.expire+c.staleWindow {
		// Whether it is kept apart changes under the lock (regroup),
		// while it is stored: as it is now, if it still is.
		k := e.key()
		sh := c.shardFor(k.name)
		sh.mu.Lock()
		i, ok := sh.t.find(c.nameHash(k.name), k.name, k.qtype, k.kind)
		national := ok && unsafe.SliceData(sh.t.data[i]) == unsafe.SliceData(e.data) && sh.t.slots[i].protected
		sh.mu.Unlock()
		if !national {
			return CacheRecord{}, false
		}
	}
	// An entry's bytes are never modified once stored.
	rec, err := e.record(h.why, buf, now)
	if err != nil {
		return CacheRecord{}, false
	}
	return rec, true
}

// PendingChanges returns how many changes are recorded and not yet taken
// (for a lost shard, the entries it holds), and when the oldest of them was
// made (zero: none).
func (c *Cache) PendingChanges() (n int, oldest time.Time) {
	old := int64(0)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		w := &sh.wb
		if w.since != 0 {
			if old == 0 || w.since < old {
				old = w.since
			}
			if w.lost {
				n += max(sh.t.n, 1)
			} else {
				n += len(w.keys)
			}
		}
		sh.mu.Unlock()
	}
	if old != 0 {
		oldest = time.Unix(0, old)
	}
	return n, oldest
}

// ShardOf returns the shard that holds the entries of name (lower-cased,
// fully qualified), as CacheChanges.Lost names them.
func (c *Cache) ShardOf(name string) int {
	return int(shardHash(name) % cacheShards)
}

// Shards is the number of shards ShardOf chooses from.
const Shards = cacheShards

// ExportEntry returns the entry of k as a CacheRecord, if the cache holds
// one that Export would give: one that can still be served (fresh, or
// expired within the stale window), or national infrastructure, whatever
// its age. It does not count as a use of the entry. The shard is locked
// only while the entry is looked up; the record is built after.
func (c *Cache) ExportEntry(k CacheKey) (CacheRecord, bool) {
	key, ok := k.internal()
	if !ok {
		return CacheRecord{}, false
	}
	h, ok := c.lookupServable(key)
	if !ok {
		return CacheRecord{}, false
	}
	// An entry's bytes are never modified once stored.
	rec, err := h.e.record(h.why, nil, c.now().UnixNano())
	if err != nil {
		return CacheRecord{}, false
	}
	return rec, true
}

// HoldsEntry reports whether ExportEntry would find an entry of k, without
// building its record.
func (c *Cache) HoldsEntry(k CacheKey) bool {
	key, ok := k.internal()
	if !ok {
		return false
	}
	_, ok = c.lookupServable(key)
	return ok
}

func (c *Cache) lookupServable(key cacheKey) (HeldEntry, bool) {
	sh := c.shardFor(key.name)
	now := c.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, ok := sh.t.find(c.nameHash(key.name), key.name, key.qtype, key.kind)
	// National infrastructure is kept (and exported) whatever its age.
	if !ok || now >= sh.t.slots[i].expire+c.staleWindow && !sh.t.slots[i].protected {
		return HeldEntry{}, false
	}
	return sh.held(i), true
}

// MarkAllChanged records every entry as changed, as Flush does without
// removing anything: the next TakeChanges hands over every key and names
// every shard lost. A writer that could not write what it took calls it
// when it can no longer keep the keys itself.
func (c *Cache) MarkAllChanged() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.changedAll()
		sh.mu.Unlock()
	}
}
