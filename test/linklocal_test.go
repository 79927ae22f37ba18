//go:build linux

package test

import (
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// TestLinkLocalClient asks a resolver for recursion from a link-local IPv6
// address, in a network namespace of the test's own where fe80::53 is on
// the loopback interface, its zone given by name and by index: the client
// is in the networks allowed recursion (fe80::/10) whatever its zone
// (over TCP it was REFUSED: its address has a zone, and no prefix matches
// such an address), and the answer comes back to it, over UDP (sent by a
// resolution worker, with the interface) and TCP. With one interface the
// kernel finds it without the index too; which of several it is, this
// namespace cannot show (TestUDPOutScope checks the index is passed).
// The namespace needs CAP_SYS_ADMIN; the test is skipped without it.
func TestLinkLocalClient(t *testing.T) {
	ipTool := requireTool(t, "ip", "/usr/sbin/ip", "/sbin/ip")
	// The namespace is this goroutine's thread's: the server started from
	// it, and the client's sockets made on it, are in it. The thread is
	// never unlocked, so it ends with the test.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Skipf("no network namespace of the test's own: %v", err)
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"-6", "addr", "add", "fe80::53/64", "dev", "lo", "nodad"},
	} {
		if out, err := exec.Command(ipTool, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}

	s := startServer(t, serveOpts{
		config: "demo_zone: false\nresolver:\n  allow: [\"fe80::/10\"]\n",
		args:   []string{"--listen", "[::]:0", "--metrics-listen", "127.0.0.1:0"},
	})
	_, port, err := net.SplitHostPort(s.dns)
	if err != nil {
		t.Fatal(err)
	}
	for _, zone := range []string{lo.Name, strconv.Itoa(lo.Index)} { // by name, and by index
		addr := net.JoinHostPort("fe80::53%"+zone, port)
		for _, network := range []string{"udp", "tcp"} {
			m := newQuery("www.example.test.", dns.TypeA)
			m.RecursionDesired = true
			r := exchangeOnce(t, network, addr, m)
			// The root hints lead nowhere: the resolution fails, and says so
			// (SERVFAIL), with recursion available; REFUSED would be a
			// client outside the networks allowed.
			if r.Rcode == dns.RcodeRefused || !r.RecursionAvailable {
				t.Errorf("%s from %s: %s, RA %v; want recursion", network, addr, dns.RcodeToString[r.Rcode], r.RecursionAvailable)
			}
		}
	}
	// A client outside the networks allowed is still refused.
	m := newQuery("www.example.test.", dns.TypeA)
	m.RecursionDesired = true
	if r := exchangeOnce(t, "udp", net.JoinHostPort("127.0.0.1", port), m); r.Rcode != dns.RcodeRefused {
		t.Errorf("from 127.0.0.1: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
}
