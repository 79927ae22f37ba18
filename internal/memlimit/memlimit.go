// Package memlimit keeps a server's memory where its caches' configured
// sizes say it should be.
//
// The runtime collects garbage when the heap has grown by GOGC (100%)
// since the last collection, so a heap whose live part is mostly cache
// would reach twice the caches' size before each collection: a resolver
// with a 256 MiB cache would hold over 512 MiB. The keeper makes the
// soft memory limit, not GOGC, what bounds the heap:
//
//   - A cache of N bytes gives its entries EntryShare of N (Entries); the
//     rest is the room the garbage made between two collections takes, so
//     that the cache costs about N bytes of resident memory in all, not N
//     of entries and as much again of garbage.
//   - The runtime's soft memory limit is what the caches cost now (their
//     entries' estimate over EntryShare, at most their configured sizes),
//     plus Slack times everything else the heap holds live (zones,
//     replication state, the persisted cache's writer, buffers: it is
//     measured, so that loading or adding zones raises the limit with
//     them), its room at most MaxRoom while collecting is cheap, plus
//     Floor, plus a share of the caches' unfilled sizes as room for the
//     collector (Limit). The collector works harder as the heap nears the
//     limit and returns memory to the system beyond it, so the process
//     settles near the limit instead of at twice its live heap: a node of
//     many small zones holds their size and some 48 MiB, not twice it.
//   - The runtime's own memory besides the heap (goroutine stacks, its
//     metadata) counts against the runtime's limit but is no room for
//     garbage: it is measured at each Update and added (Overhead).
//     Without it, that memory came out of Floor and Slack, a resolver at
//     rest kept a few MiB of room, and it collected its whole heap every
//     few seconds for nothing: on one CPU, each collection held queries
//     up for milliseconds. The parts of the heap's spans that no object
//     fills are left to Slack and EntryShare, which were calibrated with
//     them.
//   - That share (of the caches' unfilled sizes, and of the live heap's
//     room beyond MaxRoom) follows what collecting costs (Keeper.Update, every
//     Interval): it grows by ShareStep while the collector takes more than
//     GCHigh of the CPU the program uses (a stream of resolver cache
//     misses, a flood of unique names: memory the caches may take anyway
//     buys fewer collections), and shrinks by ShareDecay each Interval
//     while it takes less than GCLow (a node at rest gives the room back).
//     Only collections the heap's growth started, in an Interval the
//     program was Busy, count: a node at rest that the runtime collects
//     every two minutes, or a forced collection after a load, spends
//     nearly all its little CPU collecting, and more room would not have
//     spared it one collection.
//     What a collection cost is weighed against the time since the one
//     before, not against the Interval it ended in (the runtime counts a
//     collection's CPU when it ends): a node of 100,000 zones that
//     collects its 330 MiB every 20 s while it answers queries spends
//     0.4 s of CPU each time, a third of one Interval's CPU but 2 % of
//     one CPU over the 20 s. Room is given only while collecting costs
//     both GCHigh of the program's CPU and GCRate of one CPU: below that,
//     it would buy back little CPU for much resident memory (40 MiB more
//     for that node). The collector then runs more often, until it costs
//     that much or the heap holds less garbage. Marking on processors
//     that were idle took nothing from the program and is not counted: on
//     a node at light load it is most of a collection's CPU.
//   - Once that share has come back to none (the costly collecting is
//     over and its room given back), the heap's free memory is returned
//     to the system, in the first Interval the program is quiet (Keeper.Run;
//     the release holds a processor for 100-200 ms). The runtime's own
//     scavenger returns it only down to 95 % of the limit, and slowly:
//     after a stream of misses, a resolver with a 64 MiB cache held some
//     110 MB at rest for minutes instead of the 90 MB it uses.
//   - The limit comes down to what Update computes a step at a time,
//     the keeper returning each step's pages itself (Keeper.lower): a
//     query never has more than a step to return.
//   - GOGC only spaces the collections while the limit has room: Run sets
//     it to GCPercent. At 100, a resolver whose cache was filling (a
//     start, a stream of misses) collected every 0.1-1.5 s, each
//     collection marking the whole cache, and on one CPU each held its
//     queries for tens of milliseconds (a stream of 5,000 misses a
//     second: 17 collections in 10 s, answers' p99 37-92 ms; at 300, 6
//     collections, p99 8-16 ms, the same peak of resident memory, which
//     the limit bounds).
//
// A GOMEMLIMIT set by the operator is left alone, and so is a GOGC.
package memlimit

import (
	"cmp"
	"context"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// EntryShare is the part of a cache's configured size that its
	// entries, as the cache estimates them, may fill.
	EntryShare = 0.75
	// Slack is how far the heap may exceed what it holds live besides the
	// caches' entries: garbage between collections.
	Slack = 1.25
	// MaxRoom bounds that room (Slack's share of the live heap) while
	// collecting is cheap: a node of many zones holds hundreds of MiB that
	// hardly change, and allocates little between collections (an edit, a
	// transfer), so a quarter of its heap as room bought it no collection
	// that mattered, only resident memory. The room beyond MaxRoom comes
	// back with the share (below) when the collector costs more than
	// GCHigh.
	MaxRoom = 32 << 20
	// ReleaseStep is how much the runtime is made to return to the system
	// at a time when the limit comes down below what it holds (lower),
	// and ReleasePause the pause between two steps; maxReleaseSteps bounds
	// the steps of one Update (the next one goes on).
	// A step of 1 MiB took 1.6 ms of CPU (some 16 madvise calls, each
	// making the kernel flush the pages from every CPU's tables).
	ReleaseStep     = 256 << 10
	ReleasePause    = 2 * time.Millisecond
	maxReleaseSteps = 1024
	// BusyHold is how many times the caches' sizes the process may hold
	// from the system while it is busy (busyLimit): what it holds above
	// the limit goes back past that, and below it waits for a quiet
	// Interval.
	BusyHold = 1.5
	// maxReleaseStalls is how many steps in a row may return nothing
	// before lower leaves the rest to the next Update.
	maxReleaseStalls = 3
	// Floor is room for what comes and goes (queries under way, transfers)
	// and for what the caches and the live heap grow by in an Interval.
	Floor = 16 << 20
	// Interval is how often the limit follows the live heap and the
	// caches: often enough that a cache filling at the rate of a stream
	// of misses (a few MiB a second) stays within Floor of it.
	Interval = time.Second
	// GCHigh and GCLow are the collector's share of the program's CPU
	// above which the room for garbage grows, and below which it shrinks.
	GCHigh = 0.05
	GCLow  = 0.02
	// GCRate is the collector's CPU, as a share of one CPU since the
	// collection before, below which it gets no more room however large
	// its share of the program's CPU.
	GCRate = 0.05
	// ShareStep is how much of the caches' unfilled sizes is added to the
	// room each Interval the collector costs more than GCHigh: one
	// Interval of a costly collector gives all of it.
	ShareStep = 1.0
	// ShareDecay is how much is taken away each Interval it costs less
	// than GCLow: all of it in 20.
	ShareDecay = 0.05
	// GCPercent is the GOGC that Run sets (unless the operator set one):
	// the heap may grow to four times its live part between two
	// collections, within the limit.
	GCPercent = 300
	// Settle is when, after it starts, Run collects once more. A start's
	// own work (every zone's NOTIFY queued, the first checks of the
	// secondaries, the catalog) holds memory in its first seconds that the
	// first collection counts as live; a node at rest may not collect
	// again for two minutes, and a limit set from it would keep that
	// memory as long. The collection waits for an Interval in which the
	// program is quiet: a busy one collects by itself, and a collection
	// forced on one CPU under load held its queries for 100 ms (a
	// resolver restarted into a stream of misses).
	Settle = 10 * time.Second
	// Busy is the CPU the program's own code must use, as a share of one
	// CPU over the Interval, for the collector's cost to count.
	Busy = 0.05
	// Quiet is the process's CPU, as a share of one CPU over an Interval,
	// below which the heap's free memory may be returned: a resolver
	// answering 10,000 cached questions a second uses 5-7 %, one at rest
	// well under 1 %.
	Quiet = 0.01
	// CalmIntervals and CalmGrowth: the heap has stopped growing when the
	// process's resident anonymous memory grew by no more than CalmGrowth
	// over the last CalmIntervals. A stream of 5,000 new names a second
	// into an empty cache grows it by 5-10 MiB a second, in bursts, with
	// a second now and then in which the heap reuses what a collection
	// freed (under 1 MiB); a resolver answering from its cache, or a full
	// cache under the same stream, by a few hundred KiB at most.
	CalmIntervals = 3
	CalmGrowth    = 4 << 20
	// GatherStep is how far the resident memory must move from what it
	// was at the last gathering into huge pages for the next one.
	GatherStep = 8 << 20
)

// HugePager makes the heap eligible for the kernel's transparent huge
// pages or not, and gathers its densely used ranges into huge pages
// (hugepage.Advisor).
type HugePager interface {
	Advise(on bool) error
	// Collapse gathers the dense ranges it has not gathered since
	// Forget, leaves the heap ineligible, and returns how many bytes it
	// gathered.
	Collapse() (int64, error)
	// Forget is told that the heap's free memory may go back to the
	// system, which splits the huge pages it was part of.
	Forget()
}

// Entries returns what the entries of a cache configured to size bytes
// may fill: EntryShare of it.
func Entries(size int64) int64 {
	return int64(float64(size) * EntryShare)
}

// Limit returns the soft memory limit for caches configured to budget
// bytes in all, whose entries hold cached bytes now (their estimate), with
// live bytes of live heap in all, when share (0 to 1) of what the caches
// may still grow by, and of the live heap's room beyond MaxRoom, is the
// collector's room.
func Limit(budget, cached, live int64, share float64) int64 {
	caches := min(budget, int64(float64(cached)/EntryShare))
	other := max(live-cached, 0)
	room := int64(float64(other) * (Slack - 1))
	if room > MaxRoom {
		room = MaxRoom + int64(float64(room-MaxRoom)*share)
	}
	return caches + other + room + Floor + int64(float64(budget-caches)*share)
}

// Follow returns the next share of the caches' unfilled sizes given to the
// collector, after wall seconds in which the collector used gc seconds of
// CPU for the collections the heap's growth started (zero when none ended
// in it: the runtime counts CPU at the end of each) and the program's own
// code user seconds. Collecting is cheap below GCRate of one CPU, whatever
// its share.
func Follow(share, gc, user, wall float64) float64 {
	f := 0.0
	if gc+user > 0 && user >= Busy*wall && gc >= GCRate*wall {
		f = gc / (gc + user)
	}
	switch {
	case f > GCHigh:
		return min(1, share+ShareStep)
	case f < GCLow:
		return max(0, share-ShareDecay)
	}
	return share
}

// Keeper sets the limit.
type Keeper struct {
	// Budget is the caches' configured sizes, in bytes: their entries
	// hold Entries of it.
	Budget int64
	// Cached returns the bytes the caches hold now (their estimate).
	Cached func() int64
	Log    *slog.Logger

	// Share is how much of the caches' unfilled sizes is the collector's
	// room (0 to 1); set before Run, it is the share to start with.
	Share float64
	// HugePages, when set, puts the heap on the kernel's transparent huge
	// pages once the program is busy and its heap has stopped growing
	// (CalmGrowth, CalmIntervals): Update has it gather the heap's dense
	// ranges into them (Collapse: off the listeners' way, in the keeper's
	// goroutine), again once the resident memory has moved by GatherStep,
	// and again when the program is busy after a quiet Interval (whose
	// release of the heap's free memory splits huge pages). Otherwise the
	// heap is ineligible (advised so at the first Update and by each
	// gathering; what the runtime maps later follows the system's
	// setting): a growing heap's every first touch of a huge page would
	// zero 2 MiB in one fault, with the answers queued behind it waiting
	// (a stream of new names into an empty cache had its p99 1.4-1.8
	// times as long), and the kernel's khugepaged would gather ranges the
	// heap uses a single page of, or whose pages it returned.
	HugePages HugePager

	sample   []metrics.Sample
	limit    int64     // set by the last Update; 0: none yet
	gc, user float64   // CPU seconds at the last Update
	auto     uint64    // collections the heap's growth started, by then
	at       time.Time // of the last Update
	// The program's CPU and the time since the last Update at which a
	// collection the heap's growth started had ended.
	spanUser, spanWall float64
	// cpu is the process's CPU seconds (user and system) at cpuAt; quiet:
	// it used less than Quiet of one CPU from the reading before.
	// releaseDue: the share came back to none and the heap's free memory
	// has not been returned since.
	// settleDue: Settle has passed and its collection is not made yet.
	cpu                          float64
	cpuAt                        time.Time
	quiet, releaseDue, settleDue bool
	// hugeAsked: HugePages made the heap ineligible at the first Update.
	hugeAsked bool
	// rss holds the process's resident anonymous memory at the last
	// CalmIntervals+1 Updates at least half an Interval apart, the last
	// at rssAt.
	rss   []int64
	rssAt time.Time
	// gatheredRSS is the resident memory after the last gathering, and
	// eligible whether the last Update found the program busy and the
	// heap calm.
	gatheredRSS int64
	eligible    bool
	// cpuNow reads the process's CPU seconds (processCPU) and rssNow its
	// resident anonymous memory (processRSS); tests set them.
	cpuNow func() (float64, bool)
	rssNow func() (int64, bool)

	// collect runs a collection (runtime.GC), release returns the heap's
	// free memory to the system (debug.FreeOSMemory), tick is the
	// Interval and settle is Settle; tests set them.
	collect, release func()
	tick, settle     time.Duration

	// setLimit sets the runtime's limit (debug.SetMemoryLimit) and pause
	// waits between two steps of lower (time.Sleep); tests set them.
	setLimit func(int64)
	pause    func(time.Duration)
	held     []metrics.Sample // lower's readings
	ballast  []byte           // lower's allocation (a field: on the heap)
	// done is Run's context's: once it ends, lower returns no more.
	done <-chan struct{}
}

// Operator reports whether GOMEMLIMIT is set, in which case Run leaves
// the limit alone.
func Operator() bool { return os.Getenv("GOMEMLIMIT") != "" }

// Update sets the limit from the live heap now, and from what collecting
// cost since the last Update, and returns it.
func (k *Keeper) Update() int64 {
	if k.sample == nil {
		k.sample = []metrics.Sample{{Name: "/gc/heap/live:bytes"},
			{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/user:cpu-seconds"},
			{Name: "/gc/cycles/automatic:gc-cycles"},
			{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/memory/classes/heap/unused:bytes"}, {Name: "/memory/classes/heap/free:bytes"},
			{Name: "/memory/classes/heap/released:bytes"},
			{Name: "/cpu/classes/gc/mark/idle:cpu-seconds"}}
	}
	metrics.Read(k.sample)
	now := time.Now()
	// The runtime's CPU classes move only when a collection ends; the
	// kernel's count of the process's CPU says whether it is quiet now.
	cpuNow := k.cpuNow
	if cpuNow == nil {
		cpuNow = processCPU
	}
	if cpu, ok := cpuNow(); ok {
		k.noteCPU(cpu, now)
	}
	live := sampleInt(k.sample[0])
	if k.sample[1].Value.Kind() == metrics.KindFloat64 && k.sample[2].Value.Kind() == metrics.KindFloat64 &&
		k.sample[3].Value.Kind() == metrics.KindUint64 {
		// Marking on processors that were idle took no CPU from the
		// program: the collector's cost is the rest.
		gc := k.sample[1].Value.Float64()
		if k.sample[9].Value.Kind() == metrics.KindFloat64 {
			gc -= k.sample[9].Value.Float64()
		}
		k.weigh(gc, k.sample[2].Value.Float64(), k.sample[3].Value.Uint64(), now)
	}
	var cached int64
	if k.Cached != nil {
		cached = k.Cached()
	}
	over := overhead(k.sample[4:9])
	l := Floored(Limit(k.Budget, cached, live, k.Share)+over, live, sampleInt(k.sample[6]), over)
	l = Eased(l, k.limit, sampleInt(k.sample[5])+sampleInt(k.sample[6])+over)
	k.limit = l
	total, released := sampleInt(k.sample[4]), sampleInt(k.sample[8])
	k.adviseHuge(now)
	k.lower(k.busyLimit(l, total-released), total, released)
	return l
}

// adviseHuge has HugePages gather the heap into huge pages once the
// program is busy and its resident memory has grown by no more than
// CalmGrowth over CalmIntervals, and again once it moved by GatherStep;
// it makes the heap ineligible at the first Update.
func (k *Keeper) adviseHuge(now time.Time) {
	if k.HugePages == nil {
		return
	}
	rssNow := k.rssNow
	if rssNow == nil {
		rssNow = processRSS
	}
	rss, ok := rssNow()
	// Growth is measured over half an Interval at least: Run's other
	// Updates (Settle's) may come a moment after one.
	if ok && (k.rssAt.IsZero() || now.Sub(k.rssAt) >= cmp.Or(k.tick, Interval)/2) {
		if len(k.rss) > CalmIntervals {
			k.rss = k.rss[1:]
		}
		k.rss = append(k.rss, rss)
		k.rssAt = now
	}
	calm := len(k.rss) > CalmIntervals && k.rss[len(k.rss)-1]-k.rss[0] <= CalmGrowth
	if !k.hugeAsked {
		// Each gathering leaves the heap ineligible again, as it is
		// then; parts the runtime maps later are left to the system's
		// setting (with madvise, small pages).
		k.hugeAsked = true
		if err := k.HugePages.Advise(false); err != nil && k.Log != nil {
			k.Log.Debug("huge pages for the heap", "err", err)
		}
	}
	if k.quiet {
		k.HugePages.Forget()
	}
	// Gather when the program becomes busy with a calm heap, and then
	// once the resident memory has moved by GatherStep: each gathering
	// looks over the whole heap (some 0.3 ms for 130 MB), not to be done
	// every Interval for nothing.
	eligible := ok && !k.quiet && calm
	if eligible && (!k.eligible || abs(rss-k.gatheredRSS) >= GatherStep) {
		n, err := k.HugePages.Collapse()
		if err != nil && k.Log != nil {
			k.Log.Debug("huge pages for the heap: gathering", "err", err)
		}
		if after, ok := rssNow(); ok && n > 0 {
			// What the gathering made resident is no growth of the heap.
			for i := range k.rss {
				k.rss[i] += after - rss
			}
			rss = after
		}
		k.gatheredRSS = rss
	}
	k.eligible = eligible
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// busyLimit returns what the runtime's limit is set to for limit, mapped
// being what the runtime holds from the system: limit, but while the
// program is busy (not quiet) no less than what it holds, up to BusyHold
// times the caches' sizes. Memory goes back to the system in steps that
// each hold a processor (lower): in a virtual machine a step of 256 KiB
// held it for 0.3 ms (1.8 at most), and a resolver answering 10,000
// cached questions a second while it gave back a cold pass's memory had
// its p99 at 0.26 ms, against 0.11 holding it (BENCHMARKS.md). A busy
// node keeps what it holds within BusyHold until a quiet Interval.
func (k *Keeper) busyLimit(limit, mapped int64) int64 {
	if k.quiet {
		return limit
	}
	return max(limit, min(mapped, int64(BusyHold*float64(k.Budget))))
}

// lower sets the runtime's limit to limit, total and released being the
// memory the runtime has mapped and what of its heap it has returned to
// the system, as Update read them: it holds the difference.
// A limit below what the runtime holds makes it return the difference
// before the next span it allocates, all of it at once, in whichever
// goroutine allocates: after each collection of a stream of misses, the
// limit came 6 to 15 MiB below the heap's freed pages, and once a second
// a query returned them, page by page, while every answer on its
// processor waited (a 16 MiB cache under 5,000 new names a second: about
// 30 ms of such returns in 10 s, more than the collections cost). lower
// returns them itself: it lowers the limit ReleaseStep below what is held
// at a time, allocates (the runtime returns that step in this goroutine),
// and pauses ReleasePause before the next step. It stops early when
// steps return nothing (the runtime may not return memory for a while,
// as when its collector is over its CPU limit) or Run is ending, and then
// leaves the limit a step below what is held, for the next Update.
func (k *Keeper) lower(limit, total, released int64) {
	set, pause := k.setLimit, k.pause
	if set == nil {
		set = func(l int64) { debug.SetMemoryLimit(l) }
	}
	if pause == nil {
		pause = time.Sleep
	}
	if k.held == nil {
		k.held = []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	}
	mapped := total - released
	stalled := 0
steps:
	for range maxReleaseSteps {
		if limit >= mapped-ReleaseStep {
			break
		}
		set(mapped - ReleaseStep)
		// A large object is a span of its own: before handing it over,
		// the runtime returns what it holds above the limit.
		k.ballast = make([]byte, 64<<10)
		k.ballast = nil
		metrics.Read(k.held)
		mapped = sampleInt(k.held[0]) - sampleInt(k.held[1])
		if r := sampleInt(k.held[1]); r > released {
			released, stalled = r, 0
		} else if stalled++; stalled == maxReleaseStalls {
			break // the runtime returns nothing now: the next Update goes on
		}
		select {
		case <-k.done:
			break steps
		default:
		}
		pause(ReleasePause)
	}
	// Stopped early, the limit stays a step below what is held: the rest
	// is returned from the next Update on, not by a query.
	set(max(limit, mapped-ReleaseStep))
}

// Eased returns limit, the limit Floored gives, but when it is lower than
// prev, the limit set before, not below what the heap holds now (held:
// its objects, garbage not yet swept included, the room in its spans that
// no object fills, and the runtime's overhead) plus Floor, if prev was
// above that. Lowered below what the heap holds now, the limit starts a
// collection at once whose goal the heap is already past: every goroutine
// that allocates must help mark until it ends. After a resolver's
// validating cold pass, the share coming back to none took the limit from
// 116 MiB to 46 while the heap held 74, and that collection took 101 ms of
// the queries' time on one CPU, 137 ms in all. Eased, the limit comes down
// with the heap: once the heap has grown by Floor, a collection with room
// to run frees its garbage, and the next Update lowers the limit again.
// Free pages do not count: counted, a heap busy near its limit kept the
// limit where it was until the program was quiet (a full cache under a
// stream of misses: 125 MB resident at 16 MiB, against 85).
func Eased(limit, prev, held int64) int64 {
	if limit >= prev {
		return limit
	}
	return max(limit, min(prev, held+Floor))
}

// Floored returns limit, raised when needed to what the heap holds
// besides garbage (live bytes, and unused bytes of its spans that no
// object fills), plus the runtime's overhead, plus Floor: the room the
// collector always has. Limit leaves the heap's unused room to Slack and
// EntryShare, which were calibrated with a cache filling or at rest; a
// full cache under a stream of misses, each new entry evicting an old
// one, leaves its spans full of holes, and the limit fell below what the
// heap held: the runtime then collected without pause, a collection of
// 55 MiB every 0.15-0.3 s for a second and more, and every answer waited
// (a 64 MiB cache, 5,000 new names a second: answers of 100-300 ms).
func Floored(limit, live, unused, over int64) int64 {
	return max(limit, live+unused+over+Floor)
}

// sampleInt is s's value, 0 when it is not an integer.
func sampleInt(s metrics.Sample) int64 {
	if s.Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s.Value.Uint64())
}

// Run keeps the limit until ctx ends, then lifts it; it does nothing when
// the operator set GOMEMLIMIT. It starts with a collection: the live heap
// the runtime knows before is the one of its last collection, which, right
// after zones were loaded, can be a fraction of what they hold, and a
// limit below what is live would make the collector run without pause.
// It collects once more Settle later. It sets GOGC to GCPercent, unless
// the operator set it, and puts it back when it ends.
func (k *Keeper) Run(ctx context.Context) {
	if Operator() {
		return
	}
	if os.Getenv("GOGC") == "" {
		prev := debug.SetGCPercent(GCPercent)
		defer debug.SetGCPercent(prev)
	}
	k.done = ctx.Done()
	collect, tick, settle := k.collect, cmp.Or(k.tick, Interval), cmp.Or(k.settle, Settle)
	if collect == nil {
		collect = runtime.GC
	}
	if k.release == nil {
		k.release = debug.FreeOSMemory
	}
	collect()
	l := k.Update()
	if k.Log != nil {
		k.Log.Info("memory limit follows the live heap and the caches", "limit_mib", l>>20, "caches_mib", k.Budget>>20)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	settled := time.NewTimer(settle)
	defer settled.Stop()
	for {
		select {
		case <-ctx.Done():
			debug.SetMemoryLimit(math.MaxInt64) // no limit
			return
		case <-settled.C:
			k.settleDue = true
			k.Update()
			k.settleOnce(collect)
		case <-t.C:
			k.follow()
			k.settleOnce(collect)
		}
	}
}

// settleOnce makes the collection of Settle once it is due, at the first
// Interval the program is quiet.
func (k *Keeper) settleOnce(collect func()) {
	k.whenQuiet(&k.settleDue, func() {
		collect()
		k.Update()
	})
}

// whenQuiet runs do, and clears *due, when *due is set and the program was
// quiet in the last Interval: work that holds a processor for a long
// while (a collection, a release) is not forced on a busy one.
func (k *Keeper) whenQuiet(due *bool, do func()) {
	if !*due || !k.quiet {
		return
	}
	*due = false
	do()
}

// follow is Run's step each Interval: Update, then released.
func (k *Keeper) follow() {
	before := k.Share
	k.Update()
	k.released(before)
}

// released returns the heap's free memory to the system once the share of
// room has come back to none (from before, the share at the last Update),
// at the first Interval after that in which the program was quiet. The
// release collects and then returns every free page, for 100-200 ms
// during which the processor that does it runs nothing else: with one
// processor, queries wait for it. So it waits for a quiet Interval
// (Quiet: a node answering 10,000 cached questions a second is not quiet;
// one at rest is). A share given again before then cancels it: the room
// is in use.
func (k *Keeper) released(before float64) {
	switch {
	case k.Share > 0:
		k.releaseDue = false
	case before > 0:
		k.releaseDue = true
	}
	k.whenQuiet(&k.releaseDue, func() {
		start := time.Now()
		k.release()
		if k.Log != nil {
			k.Log.Debug("memory the heap does not use returned to the system", "took", time.Since(start))
		}
	})
}

// weigh moves the share after an Interval, given the runtime's counts at
// its end: the CPU seconds of the collector and of the program's code, and
// the collections the heap's growth started.
func (k *Keeper) weigh(gc, user float64, auto uint64, now time.Time) {
	if !k.at.IsZero() {
		wall := now.Sub(k.at).Seconds()
		k.spanUser += user - k.user
		k.spanWall += wall
		if auto != k.auto {
			// Collections ended: what they cost, against the time since
			// the one before.
			k.Share = Follow(k.Share, gc-k.gc, k.spanUser, k.spanWall)
			k.spanUser, k.spanWall = 0, 0
		} else {
			// None the heap's growth started (forced ones cost nothing
			// here: more room would not have spared them).
			k.Share = Follow(k.Share, 0, user-k.user, wall)
		}
	}
	k.gc, k.user, k.auto, k.at = gc, user, auto, now
}

// processCPU returns the CPU seconds (user and system) the kernel counts
// for the process.
func processCPU() (float64, bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), true
}

// processRSS returns the process's resident anonymous memory, from
// /proc/self/statm: resident less shared (file-backed) pages.
func processRSS() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0, false
	}
	resident, err1 := strconv.ParseInt(f[1], 10, 64)
	shared, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (resident - shared) * int64(os.Getpagesize()), true
}

// noteCPU takes the process's CPU seconds at now: the program is quiet
// when it used less than Quiet of one CPU since the reading before.
func (k *Keeper) noteCPU(cpu float64, now time.Time) {
	if !k.cpuAt.IsZero() {
		k.quiet = cpu-k.cpu < Quiet*now.Sub(k.cpuAt).Seconds()
	}
	k.cpu, k.cpuAt = cpu, now
}

// Overhead returns the memory the runtime holds besides its heap, given
// its total (/memory/classes/total) and the heap's parts: its objects
// (/memory/classes/heap/objects), the room in its spans that no object
// fills (/memory/classes/heap/unused), its free pages not yet returned to
// the system (/memory/classes/heap/free) and those returned
// (/memory/classes/heap/released). What is left is goroutine stacks and
// the runtime's metadata: it counts against the runtime's limit, but the
// collector cannot make it smaller.
func Overhead(total, objects, unused, free, released uint64) int64 {
	heap := objects + unused + free + released
	if total <= heap {
		return 0
	}
	return int64(total - heap)
}

// overhead is Overhead of the five samples it names, 0 when one is
// missing.
func overhead(s []metrics.Sample) int64 {
	var v [5]uint64
	for i := range v {
		if i >= len(s) || s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		v[i] = s[i].Value.Uint64()
	}
	return Overhead(v[0], v[1], v[2], v[3], v[4])
}
