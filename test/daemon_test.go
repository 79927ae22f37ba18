package test

import (
	"os/exec"
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
// and waits for the exit.
func (d *daemon) stop() {
	_ = syscall.Kill(-d.pid, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-d.pid, syscall.SIGKILL)
		<-d.done
	}
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
