package test

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// daemon is another DNS server (NSD, Knot DNS) a test runs, in its own
// process group so that stopping it reaches its children too.
type daemon struct {
	name string
	log  *logBuffer
	pid  int
	done chan struct{} // closed when the process has exited
}

// startDaemon starts bin with args, its output in the daemon's log.
func startDaemon(t *testing.T, bin string, args ...string) *daemon {
	t.Helper()
	d := &daemon{name: bin, log: newLogBuffer(), done: make(chan struct{})}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = d.log, d.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	d.pid = cmd.Process.Pid
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	return d
}

// stop sends SIGTERM to the process group, SIGKILL after stopTimeout,
// and waits until every process of the group has exited: NSD's and Knot's
// children hold the sockets too, and may outlive the main process a
// little, which would keep the next server off the address.
func (d *daemon) stop() {
	_ = syscall.Kill(-d.pid, syscall.SIGTERM)
	deadline := time.Now().Add(stopTimeout)
	select {
	case <-d.done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-d.pid, syscall.SIGKILL)
		<-d.done
	}
	killed := false
	for groupAlive(d.pid) {
		if !killed && time.Now().After(deadline) {
			_ = syscall.Kill(-d.pid, syscall.SIGKILL)
			killed = true
		}
		if time.Now().After(deadline.Add(stopTimeout)) {
			return // beyond SIGKILL: nothing more to do
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// groupAlive reports whether a process of the process group pgid is alive
// (a zombie has closed its files already and does not count).
func groupAlive(pgid int) bool {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, e := range dirs {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...: comm may hold anything, so
		// the fields are read after its closing parenthesis.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			return true
		}
	}
	return false
}

// waitSOA polls addr, bounded in tries and time, until it answers zone's
// SOA with AA (any answer at all when anyAnswer is set). It reports false
// if the daemon exits or never answers so.
func (d *daemon) waitSOA(t *testing.T, addr, zone string, anyAnswer bool) bool {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(startTimeout)
	for attempt := 0; attempt < 100 && time.Now().Before(deadline); attempt++ {
		select {
		case <-d.done:
			return false
		default:
		}
		r, _, err := c.ExchangeContext(t.Context(), newQuery(zone, dns.TypeSOA), addr)
		if err == nil && (anyAnswer || r.Authoritative && r.Rcode == dns.RcodeSuccess) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
