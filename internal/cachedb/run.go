package cachedb

import (
	"context"
	"log/slog"
	"time"

	"github.com/sovdns/sovdns/resolver"
)

// Run saves c and r's infrastructure table to path every interval, and once
// more when ctx ends, then returns; the caller waits for it before exiting.
// An interval of zero or less saves only at the end. Failed saves are
// logged and counted, and tried again at the next interval. log and m may
// be nil.
func Run(ctx context.Context, path string, interval time.Duration, c *resolver.Cache, r *resolver.Resolver, log *slog.Logger, m *Metrics) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	save := func(final bool) {
		start := time.Now()
		st, err := Save(path, c, r)
		took := time.Since(start)
		m.observeSave(st, took, err)
		switch {
		case err != nil:
			log.Warn("resolver cache not saved", "path", path, "err", err)
		case final:
			log.Info("resolver cache saved", "path", path, "entries", st.Entries, "servers", st.Servers, "bytes", st.Bytes, "took", took)
		default:
			log.Debug("resolver cache saved", "path", path, "entries", st.Entries, "servers", st.Servers, "bytes", st.Bytes, "took", took)
		}
	}
	for {
		select {
		case <-ctx.Done():
			save(true)
			return
		case <-tick:
			save(false)
		}
	}
}
