package test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestRateLimitDefault floods the demo server, on its default
// configuration, with 1,000 identical questions a second from one address
// for two seconds, and checks that most of them get no full answer while a
// client in another network loses nothing.
func TestRateLimitDefault(t *testing.T) {
	t.Parallel()
	s := startServer(t, serveOpts{})
	const (
		perSecond = 1000
		seconds   = 2
		total     = perSecond * seconds
	)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.80.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s.dns))
	type counts struct{ whole, tc int }
	got := make(chan counts, 1)
	go func() {
		var n counts
		buf := make([]byte, 65535)
		for {
			k, _, err := c.ReadFromUDP(buf)
			if err != nil { // closed below
				got <- n
				return
			}
			r := new(dns.Msg)
			if r.Unpack(buf[:k]) != nil {
				continue
			}
			if r.Truncated {
				n.tc++
			} else if len(r.Answer) > 0 {
				n.whole++
			}
		}
	}()
	// Paced: ten packets every 10 ms, so the flood lasts two seconds.
	q := newQuery("www.gov.az.", dns.TypeA)
	start := time.Now()
	tick := time.NewTicker(10 * time.Second / perSecond)
	for i := range total {
		q.Id = uint16(i)
		pkt, _ := q.Pack()
		if _, err := c.WriteToUDP(pkt, to); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 { // ten a tick keeps up with a coarse timer
			<-tick.C
		}
	}
	tick.Stop()
	elapsed := time.Since(start)

	// Another network meanwhile, and after: every answer whole.
	for i := range 20 {
		r := exchangeFrom(t, "udp", "127.0.81.1", s.dns, newQuery("www.gov.az.", dns.TypeA))
		if r.Truncated || len(r.Answer) != 1 {
			t.Fatalf("query %d from another network was limited:\n%v", i, r)
		}
	}
	// Every response to the flood has been sent once the server has
	// counted every query, answered or limited: then read what arrived.
	var counted float64
	waitUntil(t, 10*time.Second, "every query of the flood counted", func() bool {
		smp := parseSamples(t, scrape(t, s.metrics))
		whole, _ := find(smp, "sovdns_queries_total", map[string]string{"transport": "udp", "zone": "gov.az.", "qtype": "A", "rcode": "NOERROR"})
		drop, _ := find(smp, "sovdns_rrl_limited_responses_total", map[string]string{"kind": "answer", "action": "drop"})
		slip, _ := find(smp, "sovdns_rrl_limited_responses_total", map[string]string{"kind": "answer", "action": "slip"})
		counted = whole + drop + slip
		return counted >= total+20
	}, func() string { return fmt.Sprintf("%v of %d counted", counted, total+20) })
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	n := <-got
	t.Logf("%d queries in %v from one address: %d whole answers, %d truncated, %d without a response",
		total, elapsed.Round(time.Millisecond), n.whole, n.tc, total-n.whole-n.tc)
	if n.whole == 0 {
		t.Fatal("no whole answers at all: the flood never reached the server")
	}
	if limit := total * 4 / 10; n.whole > limit {
		t.Errorf("%d of %d got a whole answer; at most %d (40%%) may", n.whole, total, limit)
	}
	if n.tc == 0 {
		t.Error("no truncated (slipped) responses")
	}
	// Over TCP nothing is limited, from the flooded address either.
	for i := range 20 {
		r := exchangeFrom(t, "tcp", "127.0.80.1", s.dns, newQuery("www.gov.az.", dns.TypeA))
		if r.Truncated || len(r.Answer) != 1 {
			t.Fatalf("TCP query %d was limited:\n%v", i, r)
		}
	}
}

// TestRateLimitSlipWithDigAndKdig shows a slipped response as dig and kdig
// print it, and that kdig, retrying over TCP as a real client does, gets
// the whole answer.
func TestRateLimitSlipWithDigAndKdig(t *testing.T) {
	t.Parallel()
	dig := requireTool(t, "dig")
	kdig := requireTool(t, "kdig")
	// One whole answer a second, every limited response slipped.
	s := startServer(t, serveOpts{config: "rate_limit:\n  responses_per_second: 1\n  slip: 1\n"})
	host, port, _ := net.SplitHostPort(s.dns)
	run := func(name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	digArgs := []string{"-b", "127.0.82.1", "-p", port, "@" + host, "+ignore", "+tries=1", "+time=2", "www.gov.az", "A"}
	// The first may take the bucket's one token; then every answer slips.
	run(dig, digArgs...)
	out := run(dig, digArgs...)
	if !strings.Contains(out, "flags: qr tc") || !strings.Contains(out, "ANSWER: 0") {
		t.Errorf("dig: want a slipped (TC, empty) response:\n%s", out)
	}
	kdigArgs := []string{"-b", "127.0.82.1", "-p", port, "@" + host, "+notcp", "+ignore", "+retry=0", "+time=2", "www.gov.az", "A"}
	out = run(kdig, kdigArgs...)
	if !strings.Contains(strings.ToLower(out), "flags: qr tc") {
		t.Errorf("kdig: want a slipped (TC) response:\n%s", out)
	}
	// Without +ignore kdig retries over TCP, which is never limited.
	out = run(kdig, "-b", "127.0.82.1", "-p", port, "@"+host, "+retry=0", "+time=2", "www.gov.az", "A")
	if !strings.Contains(out, "192.0.2.") || !strings.Contains(out, "TCP") {
		t.Errorf("kdig: want the whole answer over TCP after TC:\n%s", out)
	}
}
