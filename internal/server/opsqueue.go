package server

import (
	"encoding/binary"
	"strings"
	"sync"
)

// The messages that read or write the zone store (dynamic UPDATE, NOTIFY,
// and IXFR over UDP) are never handled on a UDP socket's loop, where a
// commit of a large zone would hold up every query behind it. They are
// queued, one first-in first-out queue per zone (named by the message's
// question: the zone section of an UPDATE), and each queue has a worker
// that answers them while the socket goes on answering queries: the
// messages waiting when it looks (up to opsGroup) are handled at once, and
// the store commits their changes together.
// Zones do not wait for each other. A full queue, or too many zones with
// work at once, gets SERVFAIL at once: the listener never blocks.

// opsQueueDepth bounds the messages waiting for one zone, and opsZones the
// zones with work waiting at once.
const (
	opsQueueDepth = 256
	opsZones      = 64
)

type opsQueue struct {
	mu     sync.Mutex
	queues map[string]chan func()
	wg     sync.WaitGroup
}

func newOpsQueue() *opsQueue { return &opsQueue{queues: map[string]chan func(){}} }

// submit queues fn behind the other work for zone, and reports false when
// it cannot be queued.
func (q *opsQueue) submit(zone string, fn func()) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	ch, ok := q.queues[zone]
	if !ok {
		if len(q.queues) >= opsZones {
			return false
		}
		ch = make(chan func(), opsQueueDepth)
		q.queues[zone] = ch
		q.wg.Add(1)
		go q.work(zone, ch)
	}
	select {
	case ch <- fn:
		return true
	default:
		return false
	}
}

// opsGroup bounds the messages of one zone handled at once: those that
// arrived together are handled together, so that the store commits their
// changes as one group (one transaction, one fsync).
const opsGroup = 32

// work runs the queue of one zone until it is empty, then retires it.
func (q *opsQueue) work(zone string, ch chan func()) {
	defer q.wg.Done()
	var group sync.WaitGroup
	for {
		select {
		case fn := <-ch:
			group.Go(fn)
		more:
			for range opsGroup - 1 {
				select {
				case fn := <-ch:
					group.Go(fn)
				default:
					break more
				}
			}
			group.Wait()
			continue
		default:
		}
		q.mu.Lock()
		if len(ch) == 0 {
			delete(q.queues, zone)
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
	}
}

// wait returns once every queued message has been answered.
func (q *opsQueue) wait() { q.wg.Wait() }

// opsZone reports whether the message in is one for the ops queue (UPDATE,
// NOTIFY, or an IXFR or AXFR question) and, if so, the lower-case question
// name that names its queue.
func opsZone(in []byte) (string, bool) {
	if len(in) < 12 || binary.BigEndian.Uint16(in[4:]) < 1 {
		return "", false
	}
	opcode := in[2] >> 3 & 0xf
	switch opcode {
	case 4, 5: // NOTIFY, UPDATE
	case 0:
		if !isTransfer(in) {
			return "", false
		}
	default:
		return "", false
	}
	var b strings.Builder
	for off := 12; off < len(in); {
		l := int(in[off])
		if l == 0 {
			return strings.ToLower(b.String()), true
		}
		if l > 63 || off+1+l > len(in) {
			return "", true // malformed: one queue for all such
		}
		b.Write(in[off+1 : off+1+l])
		b.WriteByte('.')
		off += 1 + l
	}
	return "", true
}
