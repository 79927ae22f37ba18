// Package memlimit keeps the Go runtime's soft memory limit where the
// server's caches, as configured, say its heap should stay.
//
// The runtime collects garbage when the heap has grown by GOGC (100%)
// since the last collection, so a heap whose live part is mostly cache
// would reach twice the caches' size before each collection: a resolver
// with a 256 MiB cache would hold over 512 MiB. With a soft limit the
// collector works harder as the heap nears it, and returns memory to the
// system beyond it, so the process settles near the limit instead.
//
// The limit is Slack times the caches' budget (resolver cache and
// response cache, as configured) and everything else the heap holds live
// (zones, replication state, buffers: it is measured, so that loading or
// adding zones raises the limit with them), plus Floor. It is recomputed
// every Interval. A GOMEMLIMIT set by the operator is left alone.
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
	// Slack is how far the heap may exceed what it holds live: garbage
	// between collections, and the caches' estimates' error.
	Slack = 1.5
	// Floor is room for what comes and goes (queries under way, transfers).
	Floor = 64 << 20
	// Interval is how often the limit follows the live heap.
	Interval = 10 * time.Second
)

// Limit returns the soft memory limit for a caches' budget of budget
// bytes, of which cached bytes are in the heap now, with live bytes of
// live heap in all.
func Limit(budget, cached, live int64) int64 {
	other := max(live-cached, 0)
	return int64(float64(budget+other)*Slack) + Floor
}

// Keeper sets the limit.
type Keeper struct {
	// Budget is the caches' configured size, in bytes.
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
// the operator set GOMEMLIMIT or the budget is zero.
func (k *Keeper) Run(ctx context.Context) {
	if Operator() || k.Budget <= 0 {
		return
	}
	l := k.Update()
	if k.Log != nil {
		k.Log.Info("memory limit set from the caches' budget", "limit_mib", l>>20, "caches_mib", k.Budget>>20)
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
