// Package clock gives the node its time: the system clock, or, for
// recorded-scenario test suites, a clock read from a file in libfaketime's
// format (libfaketime itself cannot reach Go programs, which do not call
// the C library for the time).
package clock

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// racyWindow bounds the coarseness of file modification times: a file
// read less than this long after its last change might be rewritten with
// the same size and modification time, which only its contents tell.
const racyWindow = 2 * time.Second

// FakeTimeFile is a clock that starts at the time written in a file and
// runs at the speed of the system clock from there; when the file changes
// it starts again from the new time. Each reading of the clock looks at
// the file (one stat: its modification time, size and identity), so a
// question that follows a change of the file sees the new time.
type FakeTimeFile struct {
	path string
	sys  func() time.Time

	mu      sync.Mutex
	base    time.Time   // the time in the file
	started time.Time   // system time when base was read
	stat    os.FileInfo // the file as it was read
	content []byte      // what it held
	// racy: the file was read so soon after it changed that a rewrite
	// with the same size and modification time could follow unseen by a
	// stat; its contents are compared until that is no longer so.
	racy bool
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
	f.base, f.started, f.stat, f.content = t, now, st, b
	// File times come from the real clock, whatever sys is.
	f.racy = time.Since(st.ModTime()) < racyWindow
	return nil
}

// changed reports whether the file, now described by st, may differ from
// what was read.
func (f *FakeTimeFile) changed(st os.FileInfo) bool {
	if !st.ModTime().Equal(f.stat.ModTime()) || st.Size() != f.stat.Size() || !os.SameFile(st, f.stat) {
		return true
	}
	if !f.racy {
		return false
	}
	old := time.Since(st.ModTime()) >= racyWindow
	b, err := os.ReadFile(f.path)
	if err != nil {
		return false
	}
	if !bytes.Equal(b, f.content) {
		return true
	}
	if old {
		// Any later change gives the file a later modification time.
		f.racy = false
	}
	return false
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

// Now returns the fake time. A file that has become unreadable (or holds
// no valid time) leaves the clock running from the last good reading.
func (f *FakeTimeFile) Now() time.Time {
	now := f.sys()
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, err := os.Stat(f.path); err == nil && f.changed(st) {
		_ = f.reload(now)
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
