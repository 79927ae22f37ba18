//go:build linux

package test

import (
	"fmt"
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
// kernel finds it without the index too; that the answer leaves by the
// interface the question came in by, of several, TestLinkLocalTwoLinks
// shows.
// The namespace needs CAP_SYS_ADMIN; the test is skipped without it.
func TestLinkLocalClient(t *testing.T) {
	ipTool := ownNetns(t)
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"-6", "addr", "add", "fe80::53/64", "dev", "lo", "nodad"},
	} {
		if err := runIP(ipTool, args...); err != nil {
			t.Fatal(err)
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
			r := exchangeOnce(t, network, addr, recursive())
			// The root hints lead nowhere: the resolution fails, and says so
			// (SERVFAIL), with recursion available; REFUSED would be a
			// client outside the networks allowed.
			if r.Rcode == dns.RcodeRefused || !r.RecursionAvailable {
				t.Errorf("%s from %s: %s, RA %v; want recursion", network, addr, dns.RcodeToString[r.Rcode], r.RecursionAvailable)
			}
		}
	}
	// A client outside the networks allowed is still refused.
	if r := exchangeOnce(t, "udp", net.JoinHostPort("127.0.0.1", port), recursive()); r.Rcode != dns.RcodeRefused {
		t.Errorf("from 127.0.0.1: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
}

// TestLinkLocalTwoLinks asks a server for recursion, and for its demo
// zone, over two links that use the same link-local addresses: the server's namespace (the test's
// thread's) has fe80::53 on veth a0 and on veth b0, whose peers a1 and b1
// are in a client namespace of their own with fe80::c on both. A question
// over either link must be answered over that link: the client's socket
// is bound to its interface, and an answer sent out of the other one
// reaches the other client interface, where nothing listens. With the
// interface of the question not passed to the send, the kernel picks one
// route to fe80::/64 for both links, and the questions over one of them
// go unanswered. Over TCP too. Needs CAP_SYS_ADMIN and veth (skipped
// without).
func TestLinkLocalTwoLinks(t *testing.T) {
	ipTool := ownNetns(t)
	client, err := newNetns()
	if err != nil {
		t.Skipf("no second network namespace: %v", err)
	}
	defer client.close()
	ip := func(args ...string) error { return runIP(ipTool, args...) }
	links := []string{"a", "b"}
	if err := ip("link", "add", "a0", "type", "veth", "peer", "name", "a1"); err != nil {
		t.Skipf("no veth pair (kernel without veth?): %v", err)
	}
	steps := [][]string{{"link", "set", "lo", "up"}, {"link", "add", "b0", "type", "veth", "peer", "name", "b1"}}
	for _, l := range links {
		steps = append(steps,
			[]string{"link", "set", l + "1", "netns", strconv.Itoa(client.tid)},
			[]string{"-6", "addr", "add", "fe80::53/64", "dev", l + "0", "nodad"},
			[]string{"link", "set", l + "0", "up"})
	}
	for _, args := range steps {
		if err := ip(args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.run(func() error {
		for _, l := range links {
			for _, args := range [][]string{
				{"-6", "addr", "add", "fe80::c/64", "dev", l + "1", "nodad"},
				{"link", "set", l + "1", "up"},
			} {
				if err := ip(args...); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	s := startServer(t, serveOpts{
		config: "resolver:\n  allow: [\"fe80::/10\"]\n", // and the demo zone, gov.az
		args:   []string{"--listen", "[::]:0", "--metrics-listen", "127.0.0.1:0"},
	})
	_, port, err := net.SplitHostPort(s.dns)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		for _, q := range []struct {
			network string
			m       *dns.Msg
		}{
			{"udp", recursive()}, {"tcp", recursive()},
			{"udp", newQuery("gov.az.", dns.TypeSOA)}, {"tcp", newQuery("gov.az.", dns.TypeSOA)},
		} {
			network, m := q.network, q.m
			var r *dns.Msg
			err := client.run(func() error {
				// The socket is made here, in the client's namespace,
				// bound to fe80::c on the link's interface.
				local := net.Addr(&net.UDPAddr{IP: net.ParseIP("fe80::c"), Zone: l + "1"})
				if network == "tcp" {
					local = &net.TCPAddr{IP: net.ParseIP("fe80::c"), Zone: l + "1"}
				}
				c := &dns.Client{Net: network, Timeout: queryTimeout, Dialer: &net.Dialer{LocalAddr: local, Timeout: queryTimeout}}
				var err error
				// A UDP question unanswered is asked once more, as any
				// client would (the links have only just come up); an
				// answer sent out of the wrong link is lost both times.
				for try := 0; try < 2; try++ {
					if r, _, err = c.ExchangeContext(t.Context(), m, net.JoinHostPort("fe80::53%"+l+"1", port)); err == nil {
						break
					}
				}
				return err
			})
			what := fmt.Sprintf("%s %s over link %s", network, m.Question[0].Name, l)
			switch {
			case err != nil:
				t.Errorf("%s: %v", what, err)
			case m.RecursionDesired && (r.Rcode == dns.RcodeRefused || !r.RecursionAvailable):
				t.Errorf("%s: %s, RA %v; want recursion", what, dns.RcodeToString[r.Rcode], r.RecursionAvailable)
			case !m.RecursionDesired && (r.Rcode != dns.RcodeSuccess || !r.Authoritative):
				t.Errorf("%s: %s, AA %v; want the demo zone's SOA", what, dns.RcodeToString[r.Rcode], r.Authoritative)
			}
		}
	}
}

// ownNetns puts the test's goroutine in a network namespace of its own,
// and returns the path of the ip tool. The namespace is the goroutine's
// thread's: a server started from it, and sockets made on it, are in it.
// The thread is never unlocked, so the namespace ends with the test. The
// test is skipped without CAP_SYS_ADMIN.
func ownNetns(t *testing.T) string {
	t.Helper()
	ipTool := requireTool(t, "ip", "/usr/sbin/ip", "/sbin/ip")
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Skipf("no network namespace of the test's own: %v", err)
	}
	return ipTool
}

// runIP runs the ip tool with args; its error carries the tool's output.
func runIP(ipTool string, args ...string) error {
	if out, err := exec.Command(ipTool, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// recursive is a question that asks for recursion.
func recursive() *dns.Msg {
	m := newQuery("www.example.test.", dns.TypeA)
	m.RecursionDesired = true
	return m
}

// netns is a network namespace held by a thread of its own, which runs
// the functions given to run: a socket made there, or a command started
// there, is in the namespace.
type netns struct {
	tid  int
	work chan func()
}

// newNetns starts the thread and its namespace.
func newNetns() (*netns, error) {
	n := &netns{work: make(chan func())}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the namespace
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ready <- err
			return
		}
		n.tid = unix.Gettid()
		ready <- nil
		for f := range n.work {
			f()
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return n, nil
}

// run runs f on the namespace's thread and returns its error.
func (n *netns) run(f func() error) error {
	done := make(chan error, 1)
	n.work <- func() { done <- f() }
	return <-done
}

// close ends the thread, and with it the namespace.
func (n *netns) close() { close(n.work) }
