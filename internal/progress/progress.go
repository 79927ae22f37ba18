// Package progress tells how far long work has come: a bar on standard
// error when it is a terminal, else a log line every few seconds. It never
// writes to standard output, which carries the commands' data.
//
// A Progress starts one Bar per piece of work. Both are safe to use when
// nil (they do nothing), so code that takes one needs no checks. Bar.Add
// is cheap (an atomic add and a compare): the clock is read, and the bar
// drawn or the line logged, once per batch of about a thousandth of the
// work.
package progress

import (
	"cmp"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// DefaultInterval is the time between two log lines of one piece of work.
const DefaultInterval = 5 * time.Second

// showAfter is how long work goes on before its bar is drawn: quick work
// draws nothing.
const showAfter = 300 * time.Millisecond

// Bytes is the unit of work counted in bytes: the bar shows them in kB, MB...
const Bytes = "bytes"

// Options says where progress goes.
type Options struct {
	// Out is where the bar is drawn, standard error, when it is a
	// terminal. Never standard output.
	Out io.Writer
	// Log gets a line every Interval when Out is not a terminal; nil
	// logs nothing.
	Log *slog.Logger
	// Interval is the time between two log lines of one piece of work;
	// zero means DefaultInterval.
	Interval time.Duration
	// Quiet turns both off: New returns nil.
	Quiet bool
}

// Progress starts the reports of long work. The zero value is not
// usable; New makes one, and a nil *Progress reports nothing.
type Progress struct {
	out      io.Writer // the terminal, or nil
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time
	busy     atomic.Bool // a bar has the terminal
}

// New returns a Progress that draws bars on o.Out if it is a terminal, and
// else logs to o.Log; nil when o.Quiet is set or there is nowhere to
// report.
func New(o Options) *Progress {
	if o.Quiet {
		return nil
	}
	p := &Progress{log: o.Log, interval: cmp.Or(o.Interval, DefaultInterval), now: time.Now}
	if IsTerminal(o.Out) {
		p.out = o.Out
	}
	if p.out == nil && p.log == nil {
		return nil
	}
	return p
}

// Logging returns a Progress that only logs, as p does when its output is
// not a terminal: for a server's work, whose terminal (if any) shows its
// log. Nil when p is nil or has no log.
func (p *Progress) Logging() *Progress {
	if p == nil || p.log == nil {
		return nil
	}
	return &Progress{log: p.log, interval: p.interval, now: p.now}
}

// IsTerminal reports whether w is a file open on a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// Bar is the report of one piece of work: Add as it goes, Finish at the
// end. A nil *Bar does nothing.
type Bar struct {
	p          *Progress
	task, unit string
	done       atomic.Int64
	next       atomic.Int64 // the count at which to look at the clock again

	mu      sync.Mutex // guards the fields below
	total   int64      // 0: not known
	step    int64
	start   time.Time
	lastLog time.Time
	logged  bool
	term    bool // the bar has the terminal
	bar     *progressbar.ProgressBar
	shown   bool // bar has been drawn
	ended   bool
}

// Start begins the report of work named task (such as "zone import") of
// total units (0 or less: not known yet; see SetTotal), unit naming them
// ("files", "records", Bytes). While one bar is on the terminal, the
// bars started meanwhile (work within that work) are not drawn.
func (p *Progress) Start(task string, total int64, unit string) *Bar {
	if p == nil {
		return nil
	}
	now := p.now()
	b := &Bar{p: p, task: task, unit: unit, start: now, lastLog: now}
	if p.out != nil {
		if !p.busy.CompareAndSwap(false, true) {
			return nil
		}
		b.term = true
	}
	b.setTotal(total)
	if b.term {
		b.bar = b.newBar()
	}
	return b
}

// setTotal sets the work's size and the batch between two looks at the
// clock. Called with b.mu held, or before b is shared.
func (b *Bar) setTotal(total int64) {
	b.total = max(total, 0)
	b.step = 256
	if b.total > 0 {
		b.step = max(b.total/1000, 1)
	}
	b.next.Store(b.done.Load() + b.step)
}

// SetTotal sets the size of work that was not known when it started.
func (b *Bar) SetTotal(total int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended || total == b.total {
		return
	}
	b.setTotal(total)
	if b.term {
		// A new bar: the library's own change of size would draw the
		// bar at once, and a spinner's count does not carry over.
		if b.shown {
			_ = b.bar.Clear()
			b.shown = false
		}
		b.bar = b.newBar()
	}
}

// Add counts n more units done. Safe for concurrent use.
func (b *Bar) Add(n int64) {
	if b == nil || n == 0 {
		return
	}
	if d := b.done.Add(n); d >= b.next.Load() {
		b.update(d)
	}
}

// Set sets the units done, for work that counts them itself. Not to be
// mixed with Add from other goroutines.
func (b *Bar) Set(n int64) {
	if b == nil {
		return
	}
	if old := b.done.Swap(n); n != old && n >= b.next.Load() {
		b.update(n)
	}
}

// update draws the bar or logs a line if it is time to; d units are done.
func (b *Bar) update(d int64) {
	if !b.mu.TryLock() {
		return // another goroutine is at it
	}
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	b.next.Store(d + b.step)
	now := b.p.now()
	if b.term {
		if now.Sub(b.start) < showAfter {
			return
		}
		b.shown = true
		_ = b.bar.Set64(b.clamp(d))
		return
	}
	if b.p.log != nil && now.Sub(b.lastLog) >= b.p.interval {
		b.lastLog, b.logged = now, true
		b.p.log.Info("progress", b.attrs(d, now)...)
	}
}

// clamp keeps d within a known total, as the bar needs.
func (b *Bar) clamp(d int64) int64 {
	if b.total > 0 {
		return min(d, b.total)
	}
	return d
}

// newBar makes the bar, started (its clock runs) but not drawn.
func (b *Bar) newBar() *progressbar.ProgressBar {
	size := b.total
	if size <= 0 {
		size = -1 // a spinner and a count
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(b.p.out),
		progressbar.OptionSetDescription(b.task),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
		// The spinner turns as the count moves; no goroutine of its own.
		progressbar.OptionSetSpinnerChangeInterval(0),
	}
	if b.unit == Bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(b.unit))
	}
	bar := progressbar.NewOptions64(size, opts...)
	bar.StartWithoutRender()
	return bar
}

// attrs are the log line's attributes when d units are done.
func (b *Bar) attrs(d int64, now time.Time) []any {
	elapsed := now.Sub(b.start)
	out := []any{"task", b.task, "done", d}
	if b.total > 0 {
		out = append(out, "total", b.total)
	}
	out = append(out, "unit", b.unit)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(d) / s
		out = append(out, "rate", math.Round(rate*10)/10)
	}
	out = append(out, "elapsed", elapsed.Round(time.Millisecond))
	if b.total > d && rate > 0 {
		out = append(out, "eta", time.Duration(float64(b.total-d)/rate*float64(time.Second)).Round(time.Second))
	}
	return out
}

// Finish ends the report: the bar is cleared from the terminal; when the
// work was logged, a last line says how much was done and how long it
// took. Work shorter than one log interval logs nothing.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	b.ended = true
	if b.term {
		if b.shown {
			_ = b.bar.Finish() // and cleared
		}
		b.p.busy.Store(false)
	}
	if b.logged {
		b.p.log.Info("progress done", b.attrs(b.done.Load(), b.p.now())...)
	}
}
