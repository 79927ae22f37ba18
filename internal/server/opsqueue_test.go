package server

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// blockingOps is a ZoneOps whose UPDATE waits until release is closed, as
// a commit of a large zone would.
type blockingOps struct {
	started chan string // the zone of each UPDATE, as it starts
	release chan struct{}
	updates atomic.Int64
}

func (o *blockingOps) Transfer(context.Context, *dns.Msg, Peer, func(*dns.Msg) error) error {
	return nil
}

func (o *blockingOps) Notify(_ context.Context, req *dns.Msg, _ Peer) *dns.Msg {
	return new(dns.Msg).SetReply(req)
}

func (o *blockingOps) Update(_ context.Context, req *dns.Msg, _ Peer) *dns.Msg {
	o.started <- req.Question[0].Name
	<-o.release
	o.updates.Add(1)
	return new(dns.Msg).SetReply(req)
}

func updateMsg(zone string) *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate(zone)
	rr, _ := dns.NewRR("new." + zone + " 300 IN A 192.0.2.99")
	m.Insert([]dns.RR{rr})
	return m
}

// TestUpdateDoesNotHoldQueries sends an UPDATE that takes as long as the
// test wants over the one UDP socket of a server, and checks that queries
// on that socket are answered meanwhile, that the UPDATE is answered once
// it is done, and that a second zone's UPDATE does not wait for the first.
func TestUpdateDoesNotHoldQueries(t *testing.T) {
	ops := &blockingOps{started: make(chan string, 4), release: make(chan struct{})}
	ts := startServer(t, Config{UDPSockets: 1, Ops: ops}, mustZone(t, testZone, "example.gov."))
	released := false
	defer func() {
		if !released {
			close(ops.release)
		}
	}()

	c, err := net.Dial("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(m *dns.Msg) {
		t.Helper()
		pkt, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
	u := updateMsg("example.gov.")
	send(u)
	select {
	case <-ops.started: // the UPDATE is being applied, and will not finish
	case <-time.After(5 * time.Second):
		t.Fatal("the UPDATE never reached ZoneOps")
	}
	// Queries on the same socket are answered while it runs.
	for i := range 20 {
		r := exchange(t, "udp", ts.udp, query("www.example.gov.", dns.TypeA))
		if len(r.Answer) != 1 {
			t.Fatalf("query %d during the UPDATE: %v", i, r)
		}
	}
	// Another zone's UPDATE starts without waiting for the first.
	other := updateMsg("other.example.")
	other.Id = u.Id + 1
	send(other)
	select {
	case z := <-ops.started:
		if z != "other.example." {
			t.Fatalf("started %s, want other.example.", z)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an UPDATE of another zone waited for the first")
	}
	if n := ops.updates.Load(); n != 0 {
		t.Fatalf("%d UPDATEs finished before release", n)
	}
	close(ops.release)
	released = true
	// Both are answered once applied.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	seen := map[uint16]bool{}
	buf := make([]byte, 4096)
	for len(seen) < 2 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("UPDATE answers: %v (got %v)", err, seen)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if r.Opcode != dns.OpcodeUpdate || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("not an UPDATE answer: %v", r)
		}
		seen[r.Id] = true
	}
	if !seen[u.Id] || !seen[other.Id] {
		t.Errorf("answers for %v, want %d and %d", seen, u.Id, other.Id)
	}
}

// TestOpsQueueFull fills one zone's queue and checks that the next UPDATE
// gets SERVFAIL at once.
func TestOpsQueueFull(t *testing.T) {
	ops := &blockingOps{started: make(chan string, opsQueueDepth+2), release: make(chan struct{})}
	ts := startServer(t, Config{UDPSockets: 1, Ops: ops}, mustZone(t, testZone, "example.gov."))
	defer close(ops.release)
	c, err := net.Dial("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// One running, opsQueueDepth waiting, and one more: refused.
	for i := range opsQueueDepth + 2 {
		m := updateMsg("example.gov.")
		m.Id = uint16(i)
		pkt, _ := m.Pack()
		if _, err := c.Write(pkt); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-ops.started
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no SERVFAIL for a full queue: %v", err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeServerFailure || r.Id != opsQueueDepth+1 {
		t.Fatalf("got %s for id %d, want SERVFAIL for id %d", dns.RcodeToString[r.Rcode], r.Id, opsQueueDepth+1)
	}
	if v := testutil.ToFloat64(ts.m.Dropped.WithLabelValues("ops_queue_full")); v != 1 {
		t.Errorf("ops_queue_full %v, want 1", v)
	}
}
