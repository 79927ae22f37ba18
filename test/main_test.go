// Package test holds sovdns's end-to-end tests: they build the sovdns
// binary once, run it as a separate process on 127.0.0.1 with port 0 (or,
// when its address must be known in advance, on a loopback address of its
// own: newAddr), and talk to it over UDP, TCP and HTTP as clients and
// operators would.
package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/testaddr"
)

// sovdnsBin is the binary TestMain builds.
var sovdnsBin string

// Bounds on every wait in this package. They are generous because the
// binary runs under the race detector and commits to bbolt with fsync,
// which a busy machine can make slow; the tests that check promptness
// (SIGTERM, the database lock) measure the time themselves.
const (
	startTimeout = 15 * time.Second // until the server logs its addresses
	stopTimeout  = 10 * time.Second // from SIGTERM to exit
	cliTimeout   = 20 * time.Second // any one offline command
	queryTimeout = 4 * time.Second  // one DNS exchange
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

// deadHints is a root-hints file naming only 127.0.0.254.
var deadHints string

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sovdns-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	sovdnsBin = filepath.Join(dir, "sovdns")
	args := []string{"build"}
	if raceEnabled {
		// The server runs under the race detector too; a race makes it
		// exit 66, which the stop check reports.
		args = append(args, "-race")
	}
	args = append(args, "-o", sovdnsBin, "./cmd/sovdns")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = ".." // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	// Root hints that lead nowhere but loopback: a server started by a test
	// that does not set its own never sends a query off this machine.
	deadHints = filepath.Join(dir, "dead.hints")
	if err := os.WriteFile(deadHints, []byte(". 3600 IN NS dead.root.test.\ndead.root.test. 3600 IN A 127.0.0.254\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// goTool finds the go command that is running the tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// inCI reports whether the tests run in CI, where missing tools are errors.
func inCI() bool { return os.Getenv("CI") != "" }

// requireTool returns the path of an external program, skipping the test
// when it is absent outside CI and failing it in CI.
func requireTool(t *testing.T, name string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if inCI() {
		t.Fatalf("%s is not installed, and CI is set: install it (.ci/run does)", name)
	}
	t.Skipf("%s is not installed (set CI to make this an error)", name)
	return ""
}

// environ is the environment for child processes: ours without any
// SOVDNS_* variable, plus extra.
func environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOVDNS_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// cliResult is the outcome of one offline command.
type cliResult struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// runCLI runs the sovdns binary with args and env and waits at most
// cliTimeout for it, failing the test if it hangs.
func runCLI(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	return runCLIWithin(t, cliTimeout, env, args...)
}

// runCLIWithin is runCLI with another bound on the command's time: a
// guard against a hang, for commands whose work is large.
func runCLIWithin(t *testing.T, within time.Duration, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, sovdnsBin, args...)
	cmd.Env = environ(env...)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("sovdns %s did not finish within %v\nstderr: %s", strings.Join(args, " "), within, r.stderr)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("sovdns %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustCLI is runCLI that fails the test unless the command exits 0.
func mustCLI(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	return mustCLIWithin(t, cliTimeout, env, args...)
}

// mustCLIWithin is mustCLI with another bound (see runCLIWithin).
func mustCLIWithin(t *testing.T, within time.Duration, env []string, args ...string) cliResult {
	t.Helper()
	r := runCLIWithin(t, within, env, args...)
	if r.code != 0 {
		t.Fatalf("sovdns %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// logBuffer collects a process's stderr and signals each write.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{}, 1)} }

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.buf.Write(p)
	select {
	case l.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// serveOpts describe one sovdns serve process.
type serveOpts struct {
	config  string   // YAML for a --config file; empty: no file
	dataDir string   // empty: a new temporary directory
	env     []string // extra environment, KEY=VALUE
	// args replaces the default "--listen 127.0.0.1:0 --metrics-listen
	// 127.0.0.1:0" when not nil.
	args []string
	// errorsExpected lets the server log errors (a test that provokes one).
	errorsExpected bool
}

// server is a running sovdns serve.
type server struct {
	errorsExpected bool
	dns            string // DNS address, UDP and TCP
	metrics        string // metrics address
	dataDir        string
	log            *logBuffer

	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done
	stopped bool
}

var (
	listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)
	metricsRE   = regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)
)

// startServer runs sovdns serve and waits until it has logged its DNS and
// metrics addresses. On cleanup it stops the server with SIGTERM and checks
// that it exits 0.
func startServer(t *testing.T, o serveOpts) *server {
	t.Helper()
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	args := []string{"serve", "--data-dir", o.dataDir}
	if o.config != "" && !strings.Contains(o.config, "resolver:") {
		// Recursion off unless the test configures it.
		o.config += "\nresolver:\n  allow: []\n"
	}
	if o.config != "" {
		path := filepath.Join(t.TempDir(), "sovdns.yaml")
		if err := os.WriteFile(path, []byte(o.config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	if o.args == nil {
		args = append(args, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
	} else {
		args = append(args, o.args...)
	}
	s, err := launch(t, o, args)
	if err != nil {
		t.Fatalf("sovdns serve %s: %v\nlog:\n%s", strings.Join(args, " "), err, s.log)
	}
	return s
}

// launch starts one sovdns serve process and waits for its addresses. On
// error the process has ended.
func launch(t *testing.T, o serveOpts, args []string) (*server, error) {
	t.Helper()
	s := &server{errorsExpected: o.errorsExpected, dataDir: o.dataDir, log: newLogBuffer(), done: make(chan struct{})}
	s.cmd = exec.Command(sovdnsBin, args...)
	env := o.env
	if !strings.Contains(o.config, "root_hints") {
		env = append([]string{"SOVDNS_RESOLVER_ROOT_HINTS=" + deadHints}, env...)
	}
	s.cmd.Env = environ(env...)
	s.cmd.Dir = t.TempDir()
	s.cmd.Stderr = s.log
	s.cmd.Stdout = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sovdns: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()

	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	for {
		text := s.log.String()
		d, m := listeningRE.FindStringSubmatch(text), metricsRE.FindStringSubmatch(text)
		if d != nil && m != nil {
			s.dns, s.metrics = d[1], m[1]
			t.Cleanup(func() { s.stop(t) })
			return s, nil
		}
		select {
		case <-s.log.changed:
		case <-s.done:
			return s, fmt.Errorf("exited before listening: %v", s.waitErr)
		case <-deadline.C:
			_ = s.cmd.Process.Kill()
			<-s.done
			return s, fmt.Errorf("did not log its addresses within %v", startTimeout)
		}
	}
}

// stop sends SIGTERM and checks for a clean exit within stopTimeout. It
// returns how long the exit took. Calling it again does nothing.
func (s *server) stop(t *testing.T) time.Duration {
	t.Helper()
	if s.stopped {
		return 0
	}
	s.stopped = true
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("SIGTERM: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("sovdns did not exit within %v of SIGTERM\nlog:\n%s", stopTimeout, s.log)
		return time.Since(start)
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("sovdns exited with code %d after SIGTERM (%v)\nlog:\n%s", code, s.waitErr, s.log)
	}
	if !s.errorsExpected && strings.Contains(s.log.String(), "level=ERROR") {
		t.Errorf("sovdns logged errors:\n%s", s.log)
	}
	return time.Since(start)
}

// importZone writes text to a file and imports it into dataDir with the CLI.
func importZone(t *testing.T, dataDir, text string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "import.zone")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, nil, "zone", "import", path, "--data-dir", dataDir)
}

// zoneServer imports testZone into a new data directory and serves it with
// the extra configuration given.
func zoneServer(t *testing.T, config string) *server {
	t.Helper()
	dir := t.TempDir()
	importZone(t, dir, testZone)
	return startServer(t, serveOpts{dataDir: dir, config: "demo_zone: false\nudp_sockets: 2\n" + config})
}

// testZone is the zone most tests serve.
var testZone = `$ORIGIN example.com.
$TTL 3600
@           SOA   ns1 hostmaster 2024060101 7200 900 1209600 300
@           NS    ns1
@           NS    ns2
@           MX    10 mail
ns1         A     192.0.2.1
ns2         A     192.0.2.2
mail        A     192.0.2.25
www         A     192.0.2.10
www         AAAA  2001:db8::10
alias       CNAME www
alias2      CNAME alias
*.wild      A     192.0.2.99
*.wild      TXT   "wildcard"
a.b.ent     A     192.0.2.7
sub         NS    ns.sub
sub         NS    ns.other.net.
ns.sub      A     192.0.2.53
old         A     192.0.2.66
` + bigTXT

// bigTXT is an RRset of about 3 kB, too large for 1232-byte UDP.
var bigTXT = func() string {
	var b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&b, "big TXT \"%02d %s\"\n", i, strings.Repeat("x", 90))
	}
	return b.String()
}()

// newQuery builds a query without RD.
func newQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	return m
}

// exchange sends m over network ("udp" or "tcp") to addr and returns the
// response, failing the test on any error. A UDP query that times out is
// sent once more, as any DNS client would.
func exchange(t *testing.T, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	return exchangeTries(t, network, addr, m, 2)
}

// exchangeOnce is exchange without the UDP retry, for counting queries.
func exchangeOnce(t *testing.T, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	return exchangeTries(t, network, addr, m, 1)
}

func exchangeTries(t *testing.T, network, addr string, m *dns.Msg, tries int) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: queryTimeout}
	var r *dns.Msg
	var err error
	for try := 1; try <= tries; try++ {
		r, _, err = c.ExchangeContext(t.Context(), m, addr)
		var ne net.Error
		if err == nil || network != "udp" || !errors.As(err, &ne) || !ne.Timeout() {
			break
		}
	}
	if err != nil {
		t.Fatalf("%s query %s to %s: %v", network, m.Question[0].String(), addr, err)
	}
	if r.Id != m.Id {
		t.Fatalf("response ID %d, query ID %d", r.Id, m.Id)
	}
	return r
}

// rrStrings returns rrs in presentation form, sorted, without OPT.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

// wantRRs parses want as zone text and compares it with got, ignoring order.
func wantRRs(t *testing.T, section string, got []dns.RR, want ...string) {
	t.Helper()
	var ws []dns.RR
	for _, w := range want {
		rr, err := dns.NewRR(w)
		if err != nil {
			t.Fatalf("bad expected record %q: %v", w, err)
		}
		ws = append(ws, rr)
	}
	g, w := rrStrings(got), rrStrings(ws)
	if !slices.Equal(g, w) {
		t.Errorf("%s section:\n got %s\nwant %s", section, strings.Join(g, "\n     "), strings.Join(w, "\n     "))
	}
}

// newAddr returns the address ("IP:port") of a server a test starts
// whose address must be known before it runs (to be written into another
// server's configuration, or kept across a restart): a loopback address no
// other server of the tests gets, with a port free on it (package
// testaddr). A server whose address nobody needs in advance listens on
// 127.0.0.1:0 instead, where sovdns takes a port no other socket can share.
func newAddr(t *testing.T) string {
	t.Helper()
	return testaddr.AddrPort(t).String()
}
