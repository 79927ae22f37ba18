package cachedb

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sovdns/sovdns/internal/progress"
)

// TestLoadProgress: a load tells how far it has come, reading the file
// and then filling the cache, in either format; the same is loaded as
// without it.
func TestLoadProgress(t *testing.T) {
	const n = 3000
	tests := []struct {
		name string
		path func(t *testing.T) string
	}{
		{name: "current format", path: func(t *testing.T) string { return bigFile(t, n) }},
		{name: "format 1", path: func(t *testing.T) string { return bigFileV1(t, n) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path(t)
			var log bytes.Buffer
			p := progress.New(progress.Options{Log: slog.New(slog.NewJSONHandler(&log, nil)), Interval: time.Nanosecond})
			c := newCache(newClock())
			st, err := LoadProgress(path, c, nil, p)
			if err != nil || st.Entries != n {
				t.Fatalf("LoadProgress: %+v, %v", st, err)
			}
			last := map[string]map[string]any{} // by task
			for line := range strings.Lines(log.String()) {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatal(err)
				}
				if m["msg"] == "progress done" {
					last[m["task"].(string)] = m
				}
			}
			if r := last["read resolver cache"]; r == nil || r["done"] != float64(n) {
				t.Errorf("reading: %v", r)
			}
			if r := last["restore resolver cache"]; r == nil || r["done"] != float64(n) || r["total"] != float64(n) {
				t.Errorf("restoring: %v", r)
			}
		})
	}
}
