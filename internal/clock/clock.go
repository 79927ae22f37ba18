// Package clock gives the node its time: the system clock, or, for
// recorded-scenario test suites, a clock read from a file in libfaketime's
// format (libfaketime itself cannot reach Go programs, which do not call
// the C library for the time).
package clock

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// recheck is how often the file is looked at for a change.
const recheck = 100 * time.Millisecond

// FakeTimeFile is a clock that starts at the time written in a file and
// runs at the speed of the system clock from there; when the file changes
// it starts again from the new time.
type FakeTimeFile struct {
	path string
	sys  func() time.Time

	mu        sync.Mutex
	base      time.Time // the time in the file
	started   time.Time // system time when base was read
	mtime     time.Time
	lastCheck time.Time
}

// NewFakeTimeFile reads path, which holds "@YYYY-MM-DD HH:MM:SS" (UTC; the
// "@" is optional). sys is the real clock (nil: time.Now).
func NewFakeTimeFile(path string, sys func() time.Time) (*FakeTimeFile, error) {
	if sys == nil {
		sys = time.Now
	}
	f := &FakeTimeFile{path: path, sys: sys}
	if err := f.reload(sys()); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *FakeTimeFile) reload(now time.Time) error {
	st, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("fake time file: %w", err)
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("fake time file: %w", err)
	}
	t, err := Parse(string(b))
	if err != nil {
		return fmt.Errorf("fake time file %s: %w", f.path, err)
	}
	f.base, f.started, f.mtime, f.lastCheck = t, now, st.ModTime(), now
	return nil
}

// Parse reads libfaketime's absolute form, "@YYYY-MM-DD HH:MM:SS".
func Parse(s string) (time.Time, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "@")
	t, err := time.Parse(time.DateTime, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want @YYYY-MM-DD HH:MM:SS, got %q", s)
	}
	return t, nil
}

// Now returns the fake time. A file that has become unreadable leaves the
// clock running from the last good reading.
func (f *FakeTimeFile) Now() time.Time {
	now := f.sys()
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Sub(f.lastCheck) >= recheck {
		f.lastCheck = now
		if st, err := os.Stat(f.path); err == nil && !st.ModTime().Equal(f.mtime) {
			_ = f.reload(now)
		}
	}
	return f.base.Add(now.Sub(f.started))
}

// Step is a clock that moves only when told to, for tests. Its zero value
// reads the zero time.
type Step struct {
	mu sync.Mutex
	t  time.Time
}

// NewStep returns a Step clock reading t.
func NewStep(t time.Time) *Step { return &Step{t: t} }

// Now reads the clock.
func (c *Step) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d.
func (c *Step) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
