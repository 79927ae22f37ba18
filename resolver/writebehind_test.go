package resolver

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/miekg/dns"
)

// taken returns the keys of TakeChanges, sorted, and the lost shards.
func taken(c *Cache) ([]CacheKey, []int) {
	ch := c.TakeChanges(nil)
	slices.SortFunc(ch.Keys, func(a, b CacheKey) int {
		if a.Name != b.Name {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		return int(a.Kind) - int(b.Kind)
	})
	return ch.Keys, ch.Lost
}

func TestTrackChanges(t *testing.T) {
	c, clock := newTestCache(t, CacheConfig{StaleWindow: time.Hour})
	c.Put(benchMsg("before.example.com.", 1))
	if keys, lost := taken(c); len(keys) != 0 || lost != nil {
		t.Fatalf("changes before TrackChanges: %v %v", keys, lost)
	}
	if c.Tracking() {
		t.Fatal("Tracking before TrackChanges")
	}
	c.TrackChanges()
	c.TrackChanges() // a second call changes nothing
	if n, oldest := c.PendingChanges(); n != 0 || !oldest.IsZero() {
		t.Fatalf("pending %d since %v, want none", n, oldest)
	}

	start := time.Now()
	for range 3 {
		c.Put(benchMsg("www.example.com.", 2)) // one key, however often it changes
	}
	c.PutRRset([]dns.RR{benchA("ns.example.com.", 3)}, RankGlue)
	if n, oldest := c.PendingChanges(); n != 2 || oldest.Before(start) {
		t.Errorf("pending %d since %v, want 2 since %v", n, oldest, start)
	}
	ch := c.TakeChanges(nil)
	if len(ch.Keys) != 2 || ch.Oldest.Before(start) || ch.Lost != nil {
		t.Errorf("TakeChanges = %+v, want the two keys", ch)
	}
	want := []CacheKey{{Kind: RecordRRset, Name: "ns.example.com.", Qtype: dns.TypeA}, {Kind: RecordMessage, Name: "www.example.com.", Qtype: dns.TypeA}}
	for _, k := range want {
		if !slices.Contains(ch.Keys, k) {
			t.Errorf("%v not among %v", k, ch.Keys)
		}
		rec, ok := c.ExportEntry(k)
		if !ok || rec.Name != k.Name || rec.Kind != k.Kind || !c.HoldsEntry(k) {
			t.Errorf("ExportEntry(%v) = %+v, %v", k, rec, ok)
		}
	}
	if keys, _ := taken(c); len(keys) != 0 {
		t.Errorf("changes taken twice: %v", keys)
	}

	// An entry past its stale window is removed when met. Written
	// already, it is no change: a copy keeps it, and does not read it
	// back. One not yet past it is still exported.
	clock.Advance(90 * time.Minute)
	if _, ok := c.ExportEntry(want[1]); !ok {
		t.Error("an entry within its stale window is not exported")
	}
	c.Put(benchMsg("new.example.com.", 6))
	clock.Advance(2 * time.Hour)
	if _, ok := c.ExportEntry(want[1]); ok || c.HoldsEntry(want[1]) {
		t.Error("an entry past its stale window is exported")
	}
	for _, name := range []string{"www.example.com.", "new.example.com."} {
		if _, ok := c.GetStale(name, dns.TypeA); ok {
			t.Fatalf("%s served past its stale window", name)
		}
	}
	// Not yet written, it is: a copy may hold an earlier entry of its key.
	newKey := CacheKey{Kind: RecordMessage, Name: "new.example.com.", Qtype: dns.TypeA}
	ch = c.TakeChanges(nil)
	if len(ch.Keys) != 1 || ch.Keys[0] != newKey {
		t.Errorf("after the expiry: %v, want %v", ch.Keys, newKey)
	} else if _, ok := c.ExportHeld(ch.Held[0]); ok {
		t.Error("the entry removed past its stale window is exported")
	}
	if st := c.Stats(); st.Expired != 2 {
		t.Errorf("%d entries expired, want 2", st.Expired)
	}
	if _, ok := c.ExportEntry(CacheKey{Kind: 9, Name: "x."}); ok {
		t.Error("ExportEntry of an unknown kind")
	}

	// Flush: every shard lost, nothing held.
	c.Put(benchMsg("a.example.com.", 4))
	c.Flush()
	keys, lost := taken(c)
	if len(keys) != 0 || len(lost) != Shards {
		t.Errorf("after Flush: %d keys, %d lost shards; want 0 and %d", len(keys), len(lost), Shards)
	}
	c.Put(benchMsg("b.example.com.", 5))
	c.MarkAllChanged()
	keys, lost = taken(c)
	if len(keys) != 1 || len(lost) != Shards {
		t.Errorf("after MarkAllChanged: %d keys, %d lost shards; want 1 and %d", len(keys), len(lost), Shards)
	}
}

// TestTrackChangesBounded changes more entries of one shard than it records:
// the shard is handed over whole, and memory stays bounded.
func TestTrackChangesBounded(t *testing.T) {
	c, _ := newTestCache(t, CacheConfig{MaxBytes: 256 << 20})
	c.TrackChanges()
	var names []string
	for i := 0; len(names) < maxShardChanges+100; i++ {
		name := fmt.Sprintf("h%d.example.", i)
		if c.ShardOf(name) == 7 {
			names = append(names, name)
		}
	}
	for i, name := range names {
		c.Put(benchMsg(name, i))
	}
	if got := len(c.shards[7].wb.keys); got > maxShardChanges {
		t.Errorf("%d keys recorded, more than %d", got, maxShardChanges)
	}
	c.Put(benchMsg("other.example.net.", 1))
	ch := c.TakeChanges(nil)
	if !slices.Equal(ch.Lost, []int{7}) || len(ch.Keys) != len(names)+1 {
		t.Errorf("lost %v with %d keys, want shard 7 with %d", ch.Lost, len(ch.Keys), len(names)+1)
	}
	if n, _ := c.PendingChanges(); n != 0 {
		t.Errorf("%d pending after TakeChanges", n)
	}
}

// TestChangesFilling: the writer's signal comes once a shard's set is a
// quarter full, not before, and again after the sets were taken and filled anew.
func TestChangesFilling(t *testing.T) {
	c, _ := newTestCache(t, CacheConfig{MaxBytes: 256 << 20})
	if c.ChangesFilling() != nil {
		t.Fatal("a signal before TrackChanges")
	}
	c.TrackChanges()
	var names []string
	for i := 0; len(names) < FillingChanges; i++ {
		if name := fmt.Sprintf("h%d.example.", i); c.ShardOf(name) == 3 {
			names = append(names, name)
		}
	}
	signalled := func() bool {
		select {
		case <-c.ChangesFilling():
			return true
		default:
			return false
		}
	}
	for round := range 2 {
		for i, name := range names[:FillingChanges-1] {
			c.Put(benchMsg(name, i+round))
		}
		if n, _ := c.PendingChanges(); n != FillingChanges-1 {
			t.Fatalf("round %d: %d changes pending, want %d", round, n, FillingChanges-1)
		}
		if signalled() {
			t.Fatalf("round %d: signalled at %d changes, below %d", round, FillingChanges-1, FillingChanges)
		}
		c.Put(benchMsg(names[FillingChanges-1], round))
		if !signalled() {
			t.Fatalf("round %d: not signalled at %d changes", round, FillingChanges)
		}
		c.TakeChanges(nil)
	}
}

// BenchmarkCacheGetTracking is BenchmarkCacheGet with change tracking on.
func BenchmarkCacheGetTracking(b *testing.B) {
	c := NewCache(CacheConfig{MaxBytes: 256 << 20})
	c.TrackChanges()
	names := benchNames(10_000)
	for i, name := range names {
		c.Put(benchMsg(name, i))
	}
	c.TakeChanges(nil)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, ok := c.Get(names[i%len(names)], dns.TypeA); !ok {
				b.Error("miss")
				return
			}
		}
	})
}

// TestExportEntryNational: national infrastructure, kept whatever its age,
// is exported whatever its age, as Export does; so the file keeps it.
func TestExportEntryNational(t *testing.T) {
	c, clock := newTestCache(t, CacheConfig{StaleWindow: time.Hour})
	New(Config{National: []string{"example.net."}, Island: IslandConfig{Disabled: true}}, nil, c, nil, nil)
	c.TrackChanges()
	ns, err := dns.NewRR("example.net. 300 IN NS ns.example.net.")
	if err != nil {
		t.Fatal(err)
	}
	if !c.PutRRset([]dns.RR{ns}, RankAnswerAA) {
		t.Fatal("PutRRset refused")
	}
	c.Put(benchMsg("www.example.org.", 1))
	keys, _ := taken(c)
	if len(keys) != 2 {
		t.Fatalf("changes %v, want the NS RRset and the answer", keys)
	}
	clock.Advance(48 * time.Hour)
	nsKey := CacheKey{Kind: RecordRRset, Name: "example.net.", Qtype: dns.TypeNS}
	if _, ok := c.ExportEntry(nsKey); !ok || !c.HoldsEntry(nsKey) {
		t.Error("national infrastructure past its stale window is not exported")
	}
	if c.HoldsEntry(CacheKey{Kind: RecordMessage, Name: "www.example.org.", Qtype: dns.TypeA}) {
		t.Error("an answer past its stale window is exported")
	}
}

// The entry each change holds exports as ExportEntry exported its key
// when the changes were taken: the entry stored last, none once removed,
// none past its stale window.
func TestExportHeld(t *testing.T) {
	c, clock := newTestCache(t, CacheConfig{StaleWindow: time.Hour})
	c.TrackChanges()
	c.Put(benchMsg("kept.example.com.", 1))
	c.Put(benchMsg("replaced.example.com.", 1))
	c.Put(benchMsg("replaced.example.com.", 2)) // the second one is held
	c.Put(benchMsg("gone.example.com.", 1))
	c.FlushName("gone.example.com.")
	ch := c.TakeChanges(nil)
	if len(ch.Held) != len(ch.Keys) {
		t.Fatalf("%d held for %d keys", len(ch.Held), len(ch.Keys))
	}
	byName := map[string]HeldEntry{}
	for i, k := range ch.Keys {
		byName[k.Name] = ch.Held[i]
		want, wantOK := c.ExportEntry(k)
		got, ok := c.ExportHeld(ch.Held[i])
		if ok != wantOK || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%v: ExportHeld %v %v, ExportEntry %v %v", k, got, ok, want, wantOK)
		}
		// Into a buffer: the same record, packed in the buffer's room.
		buf := make([]byte, 0, 4096)
		into, ok := c.ExportHeldInto(ch.Held[i], buf, c.Now())
		if ok != wantOK || fmt.Sprint(into) != fmt.Sprint(want) {
			t.Errorf("%v: ExportHeldInto %v %v, ExportEntry %v %v", k, into, ok, want, wantOK)
		}
		if ok && &into.Msg[0] != &buf[:1][0] {
			t.Errorf("%v: ExportHeldInto packed the record outside the buffer", k)
		}
	}
	if _, ok := c.ExportHeld(byName["gone.example.com."]); ok {
		t.Error("an entry removed exported")
	}
	rec, ok := c.ExportHeld(byName["replaced.example.com."])
	if !ok || len(rec.Msg) == 0 {
		t.Fatal("the entry stored last not exported")
	}
	if want, _ := c.ExportEntry(ch.Keys[slices.IndexFunc(ch.Keys, func(k CacheKey) bool { return k.Name == "replaced.example.com." })]); !slices.Equal(rec.Msg, want.Msg) {
		t.Error("the held entry is not the one stored last")
	}
	clock.Advance(48 * time.Hour) // past the TTL and the stale window
	if _, ok := c.ExportHeld(byName["kept.example.com."]); ok {
		t.Error("an entry past its stale window exported")
	}
}

// TestChangeSetsGiveBackRoom: a shard's set keeps its map while changes
// keep coming, and makes it anew, small, once they slow down; what is
// recorded after is taken as before.
func TestChangeSetsGiveBackRoom(t *testing.T) {
	c, _ := newTestCache(t, CacheConfig{MaxBytes: 256 << 20})
	c.TrackChanges()
	var names []string
	for i := 0; len(names) < FillingChanges; i++ {
		if name := fmt.Sprintf("h%d.example.", i); c.ShardOf(name) == 5 {
			names = append(names, name)
		}
	}
	w := &c.shards[5].wb
	mapOf := func() uintptr { return reflect.ValueOf(w.keys).Pointer() }
	steps := []struct {
		puts     int  // changes before the take
		kept     bool // the map after the take is the one before
		wantRoom int
	}{
		{FillingChanges, true, FillingChanges},
		{FillingChanges / 2, true, FillingChanges},      // still a stream
		{FillingChanges / 4, false, FillingChanges / 4}, // slowed down
		{0, false, 0}, // at rest
		{0, true, 0},
		{3, true, 3}, // a small map is kept
		{0, true, 3},
	}
	for i, st := range steps {
		for j, name := range names[:st.puts] {
			c.Put(benchMsg(name, i*1000+j))
		}
		before := mapOf()
		ch := c.TakeChanges(nil)
		if len(ch.Keys) != st.puts {
			t.Fatalf("step %d: %d keys taken, want %d", i, len(ch.Keys), st.puts)
		}
		if kept := mapOf() == before; kept != st.kept || w.room != st.wantRoom {
			t.Errorf("step %d: map kept %v with room %d, want %v and %d", i, kept, w.room, st.kept, st.wantRoom)
		}
		if len(w.keys) != 0 {
			t.Errorf("step %d: %d keys left after the take", i, len(w.keys))
		}
	}
	c.Put(benchMsg(names[0], 1))
	if keys, _ := taken(c); len(keys) != 1 || keys[0].Name != names[0] {
		t.Errorf("after the map was made anew: %v taken", keys)
	}
}

// TestTakeChangesPaced: the function given is called after each shard,
// its lock released (a Put to the shard just taken goes through), and
// the changes are taken all the same.
func TestTakeChangesPaced(t *testing.T) {
	c, _ := newTestCache(t, CacheConfig{})
	c.TrackChanges()
	const n = 2000
	for i := range n {
		c.Put(benchMsg(fmt.Sprintf("h%d.example.com.", i), 1))
	}
	// A name in each shard, to store while that shard is between takes.
	inShard := make([]string, Shards)
	for i, found := 0, 0; found < Shards; i++ {
		name := fmt.Sprintf("late%d.example.com.", i)
		if s := c.ShardOf(name); inShard[s] == "" {
			inShard[s] = name
			found++
		}
	}
	calls := 0
	ch := c.TakeChangesPaced(CacheChanges{}, func() {
		name := inShard[calls]
		calls++
		stored := make(chan struct{})
		go func() { c.Put(benchMsg(name, 1)); close(stored) }()
		select {
		case <-stored:
		case <-time.After(10 * time.Second):
			t.Fatalf("a store to shard %d did not go through: its lock is held", calls-1)
		}
	})
	if calls != Shards {
		t.Errorf("called %d times, want once a shard (%d)", calls, Shards)
	}
	if len(ch.Keys) != n {
		t.Errorf("%d changes taken, want %d", len(ch.Keys), n)
	}
	// The stores made between shards are changes of the next take.
	if next := c.TakeChanges(nil); len(next.Keys) != Shards {
		t.Errorf("%d changes after the paced take, want the %d made during it", len(next.Keys), Shards)
	}
}

// TestChangeSetCollision: two keys of one hash in a set (which a 64-bit
// hash all but rules out) mark the shard lost, so that the writer
// rewrites it whole instead of missing a change.
func TestChangeSetCollision(t *testing.T) {
	w := shardChanges{keys: map[uint64]cacheEntry{}}
	a, _ := encodeEntry("a.example.", nil)
	b, _ := encodeEntry("b.example.", nil)
	w.record(7, cacheEntry{data: a, kind: kindMsg, qtype: dns.TypeA}, nil)
	w.record(7, cacheEntry{data: a, kind: kindMsg, qtype: dns.TypeA, gone: true}, nil) // the same key again
	if w.lost || len(w.keys) != 1 || !w.keys[7].gone {
		t.Fatalf("the same key: lost %v, %d keys", w.lost, len(w.keys))
	}
	w.record(7, cacheEntry{data: b, kind: kindMsg, qtype: dns.TypeA}, nil)
	if !w.lost || len(w.keys) != 0 {
		t.Fatalf("another key of the same hash: lost %v, %d keys", w.lost, len(w.keys))
	}
}

// A set's entry holds one pointer and fills 48 bytes.
var _ [48 - unsafe.Sizeof(cacheEntry{})]struct{}

// TestTouch: a touched entry is the most recently used of its shard, and
// outlives those stored after it but before the touch; no hit is counted.
func TestTouch(t *testing.T) {
	c, _ := newTestCache(t, CacheConfig{MaxBytes: Shards * 1024})
	var names []string
	for i := 0; len(names) < 8; i++ {
		if name := fmt.Sprintf("h%d.example.", i); c.ShardOf(name) == 3 {
			names = append(names, name)
		}
	}
	key := func(name string) CacheKey { return CacheKey{Kind: RecordMessage, Name: name, Qtype: dns.TypeA} }
	held := 0
	for i, name := range names {
		c.Put(benchMsg(name, i))
		if !c.HoldsEntry(key(names[0])) {
			break
		}
		held = i + 1
	}
	if held < 3 || held+2 > len(names) {
		t.Fatalf("the shard holds %d entries: the test needs it full with a few", held)
	}
	// The shard holds names[1:held+1] now, names[1] the least recent.
	hits := c.Stats().Hits
	if !c.Touch(key(names[1])) {
		t.Fatalf("Touch(%s) found nothing", names[1])
	}
	if c.Touch(key("absent.example.")) || c.Touch(CacheKey{Kind: 9, Name: names[2]}) {
		t.Error("Touch found an entry the cache does not hold")
	}
	c.Put(benchMsg(names[held+1], held+1))
	if !c.HoldsEntry(key(names[1])) || c.HoldsEntry(key(names[2])) {
		t.Errorf("after the touch, %s (touched) held %v, %s held %v: want the touched one kept, the next evicted",
			names[1], c.HoldsEntry(key(names[1])), names[2], c.HoldsEntry(key(names[2])))
	}
	if c.Stats().Hits != hits {
		t.Error("Touch counted a hit")
	}
}
