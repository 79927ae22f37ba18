package progress

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logLines decodes the JSON lines of a log.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNilIsSilent(t *testing.T) {
	var log bytes.Buffer
	p := New(Options{Out: &log, Log: slog.New(slog.NewTextHandler(&log, nil)), Quiet: true})
	if p != nil {
		t.Fatalf("New with Quiet = %v, want nil", p)
	}
	if New(Options{Out: &bytes.Buffer{}}) != nil {
		t.Error("New with no terminal and no log is not nil")
	}
	b := p.Start("work", 10, "things")
	b.Add(5)
	b.Set(7)
	b.SetTotal(20)
	b.Finish()
	if log.Len() != 0 {
		t.Errorf("a nil Progress wrote %q", log.String())
	}
}

func TestLogLines(t *testing.T) {
	tests := []struct {
		name      string
		total     int64
		steps     []time.Duration // the clock's moves, one Add(10) after each
		wantLines int             // progress lines, the last "progress done" included
		wantTotal bool
	}{
		{name: "quick work logs nothing", total: 100, steps: []time.Duration{time.Second, time.Second}, wantLines: 0, wantTotal: true},
		{name: "a line per interval and one at the end", total: 100,
			steps: []time.Duration{3 * time.Second, 3 * time.Second, time.Second, 5 * time.Second}, wantLines: 3, wantTotal: true},
		{name: "size not known", total: 0, steps: []time.Duration{6 * time.Second}, wantLines: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, log bytes.Buffer
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			p := New(Options{Out: &out, Log: slog.New(slog.NewJSONHandler(&log, nil))})
			p.now = clock.now
			b := p.Start("zone import", tt.total, "files")
			if b.step > 1 && tt.total > 0 {
				t.Fatalf("step %d for a total of %d", b.step, tt.total)
			}
			if tt.total == 0 {
				b.step = 1
				b.next.Store(1)
			}
			for _, d := range tt.steps {
				clock.advance(d)
				b.Add(10)
			}
			b.Finish()
			b.Add(1) // after Finish: nothing
			if out.Len() != 0 {
				t.Errorf("wrote %q to a writer that is not a terminal", out.String())
			}
			lines := logLines(t, &log)
			if len(lines) != tt.wantLines {
				t.Fatalf("%d log lines, want %d:\n%s", len(lines), tt.wantLines, log.String())
			}
			for i, l := range lines {
				want := "progress"
				if i == len(lines)-1 {
					want = "progress done"
				}
				if l["msg"] != want || l["task"] != "zone import" || l["unit"] != "files" {
					t.Errorf("line %d: %v", i, l)
				}
				if _, ok := l["total"]; ok != tt.wantTotal {
					t.Errorf("line %d: total given %v, want %v: %v", i, ok, tt.wantTotal, l)
				}
				if _, ok := l["rate"].(float64); !ok {
					t.Errorf("line %d: no rate: %v", i, l)
				}
			}
			if len(lines) > 0 && lines[len(lines)-1]["done"] != float64(10*len(tt.steps)) {
				t.Errorf("last line: done %v, want %d", lines[len(lines)-1]["done"], 10*len(tt.steps))
			}
		})
	}
}

// TestTerminalBar draws on a writer taken for a terminal: the bar shows
// once the work has gone on for a while, is cleared at the end, and a bar
// started meanwhile is not drawn; nothing is logged.
func TestTerminalBar(t *testing.T) {
	var out, log bytes.Buffer
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p := &Progress{out: &out, log: slog.New(slog.NewTextHandler(&log, nil)), interval: time.Nanosecond, now: clock.now}
	b := p.Start("export gov.az.", 1000, "records")
	b.Add(10)
	if out.Len() != 0 {
		t.Fatalf("drawn before showAfter: %q", out.String())
	}
	if inner := p.Start("sign gov.az.", 10, "RRsets"); inner != nil {
		t.Error("a second bar was started while the first is on the terminal")
	}
	clock.advance(time.Second)
	b.Add(500)
	if !strings.Contains(out.String(), "export gov.az.") || !strings.Contains(out.String(), "510/1000") {
		t.Errorf("bar: %q", out.String())
	}
	b.Finish()
	if s := out.String(); !strings.HasSuffix(s, "\r") {
		t.Errorf("the bar is not cleared at the end: %q", s)
	}
	if log.Len() != 0 {
		t.Errorf("logged on a terminal: %q", log.String())
	}
	next := p.Start("sign gov.az.", 10, "RRsets")
	if next == nil {
		t.Error("no bar after the first finished")
	}
	next.Finish()
}

// TestConcurrentAdd adds from several goroutines, as parsing on every CPU
// does; with -race it checks the bar's locking.
func TestConcurrentAdd(t *testing.T) {
	var log bytes.Buffer
	p := New(Options{Log: slog.New(slog.NewJSONHandler(&log, nil)), Interval: time.Nanosecond})
	b := p.Start("work", 40_000, "things")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10_000 {
				b.Add(1)
			}
		})
	}
	wg.Wait()
	b.SetTotal(50_000)
	b.Finish()
	lines := logLines(t, &log)
	if len(lines) == 0 || lines[len(lines)-1]["msg"] != "progress done" || lines[len(lines)-1]["done"] != float64(40_000) {
		t.Errorf("last line: %v", lines[len(lines)-1:])
	}
}
