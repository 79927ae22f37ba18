package test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"

	"github.com/sovdns/sovdns/internal/cli"
)

// unitFile is the systemd unit the Debian package installs.
const unitFile = "../configs/sovdns.service"

// TestSystemdUnit checks the settings the service's hardening rests on,
// and that systemd-analyze verify finds nothing to say about the unit.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	lines := strings.Split(unit, "\n")
	for _, want := range []string{
		"Type=notify",
		"NotifyAccess=main",
		"ExecStart=/usr/bin/sovdns serve --config /etc/sovdns/sovdns.yaml --data-dir /var/lib/sovdns",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"Restart=on-failure",
		"User=sovdns",
		"StateDirectory=sovdns",
		"ConfigurationDirectory=sovdns",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"ProtectHome=yes",
		"PrivateTmp=yes",
		"SystemCallArchitectures=native",
		"SystemCallFilter=@system-service",
		"SystemCallFilter=~@privileged @resources",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
		"WantedBy=multi-user.target",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("%s has no line %q", unitFile, want)
		}
	}

	analyze := requireTool(t, "systemd-analyze")
	// verify wants the programs the unit runs to exist: ExecStart runs
	// the binary built for the tests. The man pages named in
	// Documentation= exist only once the package is installed (the
	// install test verifies the installed unit with them).
	exec1 := "ExecStart=/usr/bin/sovdns "
	if strings.Count(unit, exec1) != 1 {
		t.Fatalf("%s: no line starting %q", unitFile, exec1)
	}
	path := filepath.Join(t.TempDir(), "sovdns.service")
	if err := os.WriteFile(path, []byte(strings.Replace(unit, exec1, "ExecStart="+sovdnsBin+" ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	verifyUnit(t, analyze, path, "--man=no")
}

// verifyUnit runs systemd-analyze verify on the unit at path and fails
// the test on any complaint.
func verifyUnit(t *testing.T, analyze, path string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, append(append([]string{"verify"}, args...), path)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", path, err, out)
	}
}

// TestSystemdNotify runs sovdns serve as systemd runs a Type=notify
// service, with NOTIFY_SOCKET naming a socket of the test: READY=1 comes
// once the server answers from its zones, RELOADING=1 (with
// MONOTONIC_USEC) and READY=1 around a SIGHUP reload, STOPPING=1 at
// SIGTERM.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	dir := t.TempDir()
	importZone(t, dir, testZone)
	cfg := filepath.Join(t.TempDir(), "sovdns.yaml")
	if err := os.WriteFile(cfg, []byte("demo_zone: false\nresolver:\n  allow: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The address is known in advance, so that the server is asked as
	// soon as READY=1 comes, before its log is read.
	addr := newAddr(t)
	s := &server{dataDir: dir, dns: addr, log: newLogBuffer(), done: make(chan struct{})}
	s.cmd = exec.Command(sovdnsBin, "serve", "--config", cfg, "--data-dir", dir,
		"--listen", addr, "--metrics-listen", "")
	s.cmd.Env = environ("NOTIFY_SOCKET=" + sock)
	s.cmd.Dir = t.TempDir()
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.stop(t) })

	if got := readNotify(t, conn, s); !slices.Equal(got, []string{"READY=1"}) {
		t.Fatalf("first notification %q, want READY=1\nlog:\n%s", got, s.log)
	}
	// Ready means answering from the zones, with no retry.
	for _, network := range []string{"udp", "tcp"} {
		r := exchangeOnce(t, network, addr, newQuery("www.example.com", dns.TypeA))
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("%s query right after READY=1: %v", network, r)
		}
	}

	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	got := readNotify(t, conn, s)
	if len(got) != 2 || got[0] != "RELOADING=1" || !strings.HasPrefix(got[1], "MONOTONIC_USEC=") {
		t.Fatalf("notification at SIGHUP %q, want RELOADING=1 and MONOTONIC_USEC=...\nlog:\n%s", got, s.log)
	}
	if usec, err := strconv.ParseUint(strings.TrimPrefix(got[1], "MONOTONIC_USEC="), 10, 64); err != nil || usec == 0 {
		t.Errorf("%s: not a time in microseconds", got[1])
	}
	if got := readNotify(t, conn, s); !slices.Equal(got, []string{"READY=1"}) {
		t.Fatalf("notification after the reload %q, want READY=1\nlog:\n%s", got, s.log)
	}

	s.stop(t)
	if got := readNotify(t, conn, s); !slices.Equal(got, []string{"STOPPING=1"}) {
		t.Errorf("notification at SIGTERM %q, want STOPPING=1\nlog:\n%s", got, s.log)
	}
}

// readNotify reads one sd_notify datagram and returns its lines.
func readNotify(t *testing.T, conn *net.UnixConn, s *server) []string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(startTimeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification on NOTIFY_SOCKET: %v\nlog:\n%s", err, s.log)
	}
	return strings.Fields(string(buf[:n]))
}

// TestDebianPackage builds the package with make deb and checks what it
// holds; as root, in CI or with SOVDNS_TEST_INSTALL=1, it also installs
// the package, checks the installed node, and purges it.
func TestDebianPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Debian package: not with -short")
	}
	mk := requireTool(t, "make")
	dpkgDeb := requireTool(t, "dpkg-deb")
	v, err := os.ReadFile("../configs/VERSION")
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(string(v))

	dist := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mk, "deb", "DIST="+dist, "GO="+goTool())
	cmd.Dir = ".." // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
	if len(debs) != 1 || !strings.HasPrefix(filepath.Base(debs[0]), "sovdns_"+version+"_") {
		t.Fatalf("make deb wrote %q, want one sovdns_%s_ARCH.deb", debs, version)
	}
	pkg := debs[0]
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, name, args...).Output()
		if err != nil {
			t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
		}
		return string(out)
	}

	fields := run(dpkgDeb, "-f", pkg, "Package", "Version", "Architecture", "Depends")
	arch := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(pkg), "sovdns_"+version+"_"), ".deb")
	for _, want := range []string{"Package: sovdns", "Version: " + version, "Architecture: " + arch, "Depends: adduser"} {
		if !strings.Contains(fields, want+"\n") {
			t.Errorf("control fields lack %q:\n%s", want, fields)
		}
	}

	// Every path, with its type and mode (dpkg-deb -c: mode, owner,
	// size, date, time, path).
	listed := map[string]string{}
	for line := range strings.Lines(run(dpkgDeb, "-c", pkg)) {
		f := strings.Fields(line)
		if len(f) >= 6 {
			listed[strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")] = f[0]
		}
	}
	wantPaths := map[string]string{
		"/usr/bin/sovdns":                                  "-rwxr-xr-x",
		"/lib/systemd/system/sovdns.service":               "-rw-r--r--",
		"/etc/sovdns/sovdns.yaml":                          "-rw-r-----",
		"/var/lib/sovdns":                                  "drwxr-x---",
		"/usr/share/bash-completion/completions/sovdns":    "-rw-r--r--",
		"/usr/share/zsh/vendor-completions/_sovdns":        "-rw-r--r--",
		"/usr/share/fish/vendor_completions.d/sovdns.fish": "-rw-r--r--",
	}
	// A man page for each command.
	var commands func(c *cobra.Command)
	commands = func(c *cobra.Command) {
		wantPaths["/usr/share/man/man1/"+strings.ReplaceAll(c.CommandPath(), " ", "-")+".1.gz"] = "-rw-r--r--"
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() {
				commands(sub)
			}
		}
	}
	commands(cli.CommandTree(io.Discard, io.Discard))
	for _, p := range slices.Sorted(maps.Keys(wantPaths)) {
		if got, ok := listed[p]; !ok {
			t.Errorf("package lacks %s", p)
		} else if got != wantPaths[p] {
			t.Errorf("%s: mode %s, want %s", p, got, wantPaths[p])
		}
	}

	control := t.TempDir()
	run(dpkgDeb, "-e", pkg, control)
	if b, err := os.ReadFile(filepath.Join(control, "conffiles")); err != nil || string(b) != "/etc/sovdns/sovdns.yaml\n" {
		t.Errorf("conffiles %q (%v), want /etc/sovdns/sovdns.yaml", b, err)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		run("sh", "-n", filepath.Join(control, script))
	}

	root := t.TempDir()
	run(dpkgDeb, "-x", pkg, root)
	conf, err := os.ReadFile(filepath.Join(root, "etc/sovdns/sovdns.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\ndata_dir: /var/lib/sovdns\n", "\ndemo_zone: false\n"} {
		if !bytes.Contains(conf, []byte(want)) {
			t.Errorf("packaged configuration lacks %q", strings.TrimSpace(want))
		}
	}
	// The packaged configuration passes checkconf with the flags the
	// unit starts the server with.
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/sovdns.service"))
	if err != nil {
		t.Fatal(err)
	}
	execStart := regexp.MustCompile(`(?m)^ExecStart=/usr/bin/sovdns serve (.*)$`).FindSubmatch(unit)
	if execStart == nil {
		t.Fatal("packaged unit: no ExecStart=/usr/bin/sovdns serve")
	}
	args := strings.Fields(strings.ReplaceAll(string(execStart[1]), "/etc/sovdns/sovdns.yaml", filepath.Join(root, "etc/sovdns/sovdns.yaml")))
	mustCLI(t, nil, append([]string{"checkconf"}, args...)...)
	if out := run(filepath.Join(root, "usr/bin/sovdns"), "version"); !strings.HasPrefix(out, "sovdns "+version) {
		t.Errorf("packaged sovdns version: %q, want sovdns %s...", out, version)
	}
	page, err := os.Open(filepath.Join(root, "usr/share/man/man1/sovdns-serve.1.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close()
	zr, err := gzip.NewReader(page)
	if err != nil {
		t.Fatal(err)
	}
	if text, err := io.ReadAll(zr); err != nil || !bytes.Contains(text, []byte(`.TH "SOVDNS-SERVE" "1"`)) {
		t.Errorf("sovdns-serve.1.gz is not the man page of sovdns serve (%v)", err)
	}

	t.Run("install", func(t *testing.T) { testInstall(t, pkg, version) })
}

// testInstall installs the package on this machine with dpkg, checks the
// node it makes, installs it again over itself, and purges it; the sovdns
// user is removed again when the test made it.
func testInstall(t *testing.T, pkg, version string) {
	if os.Geteuid() != 0 {
		t.Skip("installing the package needs root")
	}
	if !inCI() && os.Getenv("SOVDNS_TEST_INSTALL") != "1" {
		t.Skip("installs the package on this machine: set SOVDNS_TEST_INSTALL=1 (CI does, as root)")
	}
	dpkg := requireTool(t, "dpkg")
	requireTool(t, "adduser") // the package depends on it
	// Not the test's context: the purge at cleanup runs after it ends.
	run := func(name string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		return string(out), err
	}
	must := func(name string, args ...string) string {
		t.Helper()
		out, err := run(name, args...)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return out
	}
	if out, _ := run("dpkg-query", "-W", "-f", "${Status}", "sovdns"); strings.Contains(out, "installed") {
		if !inCI() {
			t.Skip("a sovdns package is installed on this machine: not touching it")
		}
		t.Logf("purging the sovdns package an earlier run left")
		must(dpkg, "--purge", "sovdns")
	}
	_, err := run("id", "sovdns")
	userExisted := err == nil

	must(dpkg, "-i", pkg)
	t.Cleanup(func() {
		if out, err := run(dpkg, "--purge", "sovdns"); err != nil {
			t.Errorf("dpkg --purge sovdns: %v\n%s", err, out)
		}
		if !userExisted {
			_, _ = run("deluser", "--system", "--quiet", "sovdns")
			if _, err := run("getent", "group", "sovdns"); err == nil {
				_, _ = run("delgroup", "--system", "--quiet", "sovdns")
			}
		}
	})

	if out := must("/usr/bin/sovdns", "version"); !strings.HasPrefix(out, "sovdns "+version) {
		t.Errorf("sovdns version: %q", out)
	}
	must("/usr/bin/sovdns", "checkconf", "--config", "/etc/sovdns/sovdns.yaml")
	must("id", "sovdns")
	uid, _ := strconv.Atoi(strings.TrimSpace(must("id", "-u", "sovdns")))
	gid, _ := strconv.Atoi(strings.TrimSpace(must("id", "-g", "sovdns")))
	for _, c := range []struct {
		path     string
		uid, gid int
		mode     os.FileMode
	}{
		{"/var/lib/sovdns", uid, gid, os.ModeDir | 0o750},
		{"/etc/sovdns/sovdns.yaml", 0, gid, 0o640},
		{"/usr/bin/sovdns", 0, 0, 0o755},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Error(err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != c.uid || int(st.Gid) != c.gid || fi.Mode() != c.mode {
			t.Errorf("%s: %d:%d %v, want %d:%d %v", c.path, st.Uid, st.Gid, fi.Mode(), c.uid, c.gid, c.mode)
		}
	}
	if out := must("dpkg-query", "-W", "-f", "${Conffiles}", "sovdns"); !strings.Contains(out, "/etc/sovdns/sovdns.yaml ") {
		t.Errorf("installed conffiles: %q", out)
	}
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		var args []string
		if _, err := exec.LookPath("man"); err != nil {
			args = append(args, "--man=no")
		}
		verifyUnit(t, analyze, "/lib/systemd/system/sovdns.service", args...)
	}

	// Installed again over itself: postinst finds the user and goes on.
	must(dpkg, "-i", pkg)
	must(dpkg, "--purge", "sovdns")
	for _, p := range []string{"/usr/bin/sovdns", "/etc/sovdns", "/var/lib/sovdns", "/etc/systemd/system/multi-user.target.wants/sovdns.service"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after dpkg --purge", p)
		}
	}
}
