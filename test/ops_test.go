package test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestDatabaseHeldByServer runs the editor's commands on the data
// directory of a running server, which holds the database: they reach it
// through its control socket at once, and a second server on the same
// directory is refused.
func TestDatabaseHeldByServer(t *testing.T) {
	t.Parallel()
	s := zoneServer(t, "")
	dd := []string{"--data-dir", s.dataDir}
	tests := []struct {
		name string
		args []string
	}{
		{name: "zone list", args: []string{"zone", "list"}},
		{name: "zone export", args: []string{"zone", "export", "example.com"}},
		{name: "record add", args: []string{"record", "add", "example.com", "extra A 192.0.2.200"}},
		{name: "record delete", args: []string{"record", "delete", "example.com", "old"}},
	}
	for _, tt := range tests {
		r := runCLI(t, fastExit(), append(tt.args, dd...)...) // the time taken is the command's, not the race detector's exit delay
		if r.code != 0 {
			t.Errorf("sovdns %s: exit %d while a server holds the database\nstderr: %s", strings.Join(tt.args, " "), r.code, r.stderr)
		}
		if r.elapsed > 5*time.Second {
			t.Errorf("sovdns %s took %v; want a few seconds at most", strings.Join(tt.args, " "), r.elapsed)
		}
	}
	t.Run("second server", func(t *testing.T) {
		r := runCLI(t, nil, "serve", "--data-dir", s.dataDir, "--listen", "127.0.0.1:0", "--metrics-listen", "")
		if r.code == 0 || !strings.Contains(r.stderr, "another sovdns server") {
			t.Errorf("a second server on the same data directory: exit %d\nstderr: %s", r.code, r.stderr)
		}
	})
	// The server was not disturbed, and serves the edits.
	if r := exchange(t, "udp", s.dns, newQuery("www.example.com.", dns.TypeA)); len(r.Answer) != 1 {
		t.Errorf("www.example.com A: %v", r)
	}
	if r := exchange(t, "udp", s.dns, newQuery("extra.example.com.", dns.TypeA)); len(r.Answer) != 1 {
		t.Errorf("the record added is not served: %v", r)
	}
	if r := exchange(t, "udp", s.dns, newQuery("old.example.com.", dns.TypeA)); r.Rcode != dns.RcodeNameError {
		t.Errorf("the name deleted is still served: %v", r)
	}
}

// TestDefaultStart runs serve with no configuration file: the built-in
// defaults, which load the demo zone into an empty database.
func TestDefaultStart(t *testing.T) {
	t.Parallel()
	s := startServer(t, serveOpts{})
	r := exchange(t, "udp", s.dns, newQuery("www.gov.az.", dns.TypeA))
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		t.Fatalf("www.gov.az A: %v", r)
	}
	wantRRs(t, "answer", r.Answer, "www.gov.az. 3600 IN A 192.0.2.10")
	if !strings.Contains(s.log.String(), "loaded the demo zone") {
		t.Errorf("the log does not mention the demo zone:\n%s", s.log)
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "sovdns.db")); err != nil {
		t.Errorf("no database in the data directory: %v", err)
	}
}

// TestDemoZoneOnlyIntoEmptyDatabase restarts a server whose database
// already holds a zone: the demo zone is not added to it.
func TestDemoZoneOnlyIntoEmptyDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	importZone(t, dir, testZone)
	s := startServer(t, serveOpts{dataDir: dir})
	if r := exchange(t, "udp", s.dns, newQuery("www.gov.az.", dns.TypeA)); r.Rcode != dns.RcodeRefused {
		t.Errorf("www.gov.az A: rcode %s; want REFUSED, the database held a zone", dns.RcodeToString[r.Rcode])
	}
}

func TestInvalidConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		env    []string
		want   []string
	}{
		{name: "bad listen address", config: "listen: [\"localhost:5300\"]\n", want: []string{"listen[0]", `"localhost:5300"`}},
		{name: "bad duration", config: "tcp:\n  idle_timeout: soon\n", want: []string{"tcp.idle_timeout", `"soon"`}},
		{name: "unknown key", config: "tcp:\n  idle_timout: 5s\n", want: []string{"tcp.idle_timout", "unknown key", `"5s"`}},
		{name: "EDNS size too small", config: "edns_udp_size: 100\n", want: []string{"edns_udp_size", `"100"`}},
		{name: "bad value from the environment", env: []string{"SOVDNS_TCP_IDLE_TIMEOUT=0s"}, want: []string{"tcp.idle_timeout", `"0s"`}},
		{name: "bad listen from the environment", env: []string{"SOVDNS_LISTEN=127.0.0.1"}, want: []string{"listen[0]", `"127.0.0.1"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			serve := []string{"serve", "--data-dir", t.TempDir()}
			checkconf := []string{"checkconf"}
			if tt.config != "" {
				path := filepath.Join(t.TempDir(), "sovdns.yaml")
				if err := os.WriteFile(path, []byte(tt.config), 0o600); err != nil {
					t.Fatal(err)
				}
				serve = append(serve, "--config", path)
				checkconf = append(checkconf, "--config", path)
			}
			for _, cmd := range [][]string{serve, checkconf} {
				r := runCLI(t, tt.env, cmd...)
				if r.code != 2 {
					t.Errorf("sovdns %s: exit %d; want 2\nstderr: %s", strings.Join(cmd, " "), r.code, r.stderr)
				}
				for _, w := range tt.want {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("sovdns %s: stderr does not name %s:\n%s", strings.Join(cmd, " "), w, r.stderr)
					}
				}
				if strings.Contains(r.stderr, "msg=listening") {
					t.Errorf("sovdns %s started listening with an invalid configuration", strings.Join(cmd, " "))
				}
			}
		})
	}
}

// TestListenFromEnvironment sets the DNS address with SOVDNS_LISTEN only.
func TestListenFromEnvironment(t *testing.T) {
	t.Parallel()
	addr := newAddr(t)
	s := startServer(t, serveOpts{
		env:  []string{"SOVDNS_LISTEN=" + addr, "SOVDNS_UDP_SOCKETS=1"},
		args: []string{"--metrics-listen", "127.0.0.1:0"},
	})
	if s.dns != addr {
		t.Fatalf("listening on %s; want %s from SOVDNS_LISTEN", s.dns, addr)
	}
	if r := exchange(t, "tcp", s.dns, newQuery("www.gov.az.", dns.TypeA)); len(r.Answer) != 1 {
		t.Errorf("www.gov.az A over TCP: %v", r)
	}
	if !strings.Contains(s.log.String(), "udp_sockets=1") {
		t.Errorf("SOVDNS_UDP_SOCKETS=1 not applied:\n%s", s.log)
	}
}

// TestFlagsOverrideEnvironment gives both; the flag wins.
func TestFlagsOverrideEnvironment(t *testing.T) {
	t.Parallel()
	s := startServer(t, serveOpts{env: []string{"SOVDNS_LISTEN=127.0.0.1:1"}})
	if strings.HasSuffix(s.dns, ":1") {
		t.Fatalf("listening on %s: SOVDNS_LISTEN beat --listen", s.dns)
	}
}

// TestSIGTERM stops a server that is answering queries and holding an idle
// TCP connection: it must exit 0 within a few seconds, not wait out the
// connection's idle timeout.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	s := zoneServer(t, "tcp:\n  idle_timeout: 60s\n")

	idle, err := net.DialTimeout("tcp", s.dns, queryTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	// Queries keep arriving until the server is gone (bounded in count).
	var wg sync.WaitGroup
	var answered atomic.Int64
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(loadDone)
		c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
		for range 2000 {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := c.Exchange(newQuery("www.example.com.", dns.TypeA), s.dns); err == nil {
				answered.Add(1)
			}
		}
	}()
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	// SIGTERM once the server is answering the load.
	deadline := time.Now().Add(startTimeout)
	for answered.Load() < 10 {
		select {
		case <-loadDone:
			t.Fatalf("the load ended with %d queries answered", answered.Load())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d queries answered within %v", answered.Load(), startTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}

	took := s.stop(t)
	stopLoad()
	if took > 5*time.Second {
		t.Errorf("exit took %v after SIGTERM; want a few seconds at most", took)
	}
	if !strings.Contains(s.log.String(), "shutting down") {
		t.Errorf("the log does not record the shutdown:\n%s", s.log)
	}
	// The idle connection was closed by the server.
	_ = idle.SetReadDeadline(time.Now().Add(queryTimeout))
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Error("the idle TCP connection is still open after the server exited")
	}
}
