package resolver

import (
	"sync"
	"time"
)

// timerPool keeps stopped timers for waits that set one each time (a
// timer is two objects): a stopped timer delivers nothing later (Go
// 1.23's timers), so one can serve the next wait as it is.
type timerPool struct{ p sync.Pool }

// get returns a timer that fires after d.
func (tp *timerPool) get(d time.Duration) *time.Timer {
	if t, ok := tp.p.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

// put stops t and keeps it for another wait.
func (tp *timerPool) put(t *time.Timer) {
	t.Stop()
	tp.p.Put(t)
}
