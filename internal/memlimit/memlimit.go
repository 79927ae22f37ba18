// Package memlimit keeps a server's memory where its caches' configured
// sizes say it should be.
//
// The runtime collects garbage when the heap has grown by GOGC (100%)
// since the last collection, so a heap whose live part is mostly cache
// would reach twice the caches' size before each collection: a resolver
// with a 256 MiB cache would hold over 512 MiB. Two things keep it to
// what is configured:
//
//   - A cache of N bytes gives its entries EntryShare of N (Entries); the
//     rest is the room the garbage made between two collections takes, so
//     that the cache costs about N bytes of resident memory in all, not N
//     of entries and as much again of garbage.
//   - The runtime's soft memory limit is what the caches cost now (their
//     entries' estimate over EntryShare, at most their configured sizes:
//     an empty cache reserves nothing), plus Slack times everything else
//     the heap holds live (zones, replication state, the persisted
//     cache's writer, buffers: it is measured, so that loading or adding
//     zones raises the limit with them), plus Floor, the room for what
//     grows between two updates. The collector works harder as the heap
//     nears the limit and returns memory to the system beyond it, so the
//     process settles near the limit instead of at twice its live heap:
//     a node of many small zones holds about 1.25 times their size, not
//     2. It is recomputed every Interval. A GOMEMLIMIT set by the
//     operator is left alone.
package memlimit

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	// EntryShare is the part of a cache's configured size that its
	// entries, as the cache estimates them, may fill.
	EntryShare = 0.75
	// Slack is how far the heap may exceed what it holds live besides the
	// caches' entries: garbage between collections.
	Slack = 1.25
	// Floor is room for what comes and goes (queries under way, transfers)
	// and for what the caches and the live heap grow by in an Interval.
	Floor = 16 << 20
	// Interval is how often the limit follows the live heap and the
	// caches: often enough that a cache filling at the rate of a stream
	// of misses (a few MiB a second) stays within Floor of it.
	Interval = time.Second
)

// Entries returns what the entries of a cache configured to size bytes
// may fill: EntryShare of it.
func Entries(size int64) int64 {
	return int64(float64(size) * EntryShare)
}

// Limit returns the soft memory limit for caches configured to budget
// bytes in all, whose entries hold cached bytes now (their estimate), with
// live bytes of live heap in all.
func Limit(budget, cached, live int64) int64 {
	caches := min(budget, int64(float64(cached)/EntryShare))
	other := max(live-cached, 0)
	return caches + int64(float64(other)*Slack) + Floor
}

// Keeper sets the limit.
type Keeper struct {
	// Budget is the caches' configured sizes, in bytes: their entries
	// hold Entries of it.
	Budget int64
	// Cached returns the bytes the caches hold now (their estimate).
	Cached func() int64
	Log    *slog.Logger

	sample []metrics.Sample
}

// Operator reports whether GOMEMLIMIT is set, in which case Run leaves
// the limit alone.
func Operator() bool { return os.Getenv("GOMEMLIMIT") != "" }

// Update sets the limit from the live heap now and returns it.
func (k *Keeper) Update() int64 {
	if k.sample == nil {
		k.sample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	}
	metrics.Read(k.sample)
	var live int64
	if k.sample[0].Value.Kind() == metrics.KindUint64 {
		live = int64(k.sample[0].Value.Uint64())
	}
	var cached int64
	if k.Cached != nil {
		cached = k.Cached()
	}
	l := Limit(k.Budget, cached, live)
	debug.SetMemoryLimit(l)
	return l
}

// Run keeps the limit until ctx ends, then lifts it; it does nothing when
// the operator set GOMEMLIMIT.
func (k *Keeper) Run(ctx context.Context) {
	if Operator() {
		return
	}
	l := k.Update()
	if k.Log != nil {
		k.Log.Info("memory limit follows the live heap and the caches", "limit_mib", l>>20, "caches_mib", k.Budget>>20)
	}
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			debug.SetMemoryLimit(math.MaxInt64) // no limit
			return
		case <-t.C:
			k.Update()
		}
	}
}
