// Command hostile runs sovdns and Unbound, in turn, as resolvers against
// the same hostile authoritative servers (package internal/hostile) on
// loopback, and prints what each did:
//
//   - NXNS: N client questions for distinct names of an attacker's zone,
//     each answered by a referral to 100 name servers without glue, new
//     each time, all in a victim's zone: the queries that reach the
//     victim's server, and all upstream queries, per client question;
//   - malformed answers (ANCOUNT above the records present, OPT in the
//     answer section, two OPT records, TSIG not last, trailing bytes, a
//     CH record in an IN answer) from a zone's only server: what each
//     resolver answers its client;
//   - a dead zone: a flood of questions for new names in a zone whose
//     server never answers (-flood questions at -flood-rate a second):
//     the queries that reach the dead server and the CPU time the
//     resolver spends, until it is quiet again.
//
// Unbound learns the servers below the root from referrals and queries
// them on port 53 whatever its root hints say, so the fake servers listen
// on port 53 of their own loopback addresses (127.a.b.c), which needs
// root or CAP_NET_BIND_SERVICE. Without it they listen on another port,
// which sovdns is told (resolver.upstream_port), and Unbound is skipped.
//
// Usage: hostile -sovdns bin/sovdns [-unbound unbound] [-n 20]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/hostile"
	"github.com/sovdns/sovdns/internal/testaddr"
)

// Bounds of the lab.
const (
	runTimeout    = 100 * time.Second // the whole run
	clientTimeout = 5 * time.Second   // one client question
	startTimeout  = 10 * time.Second  // a resolver until it answers
	settleQuiet   = 300 * time.Millisecond
	settleMax     = 5 * time.Second
	nxnsNames     = 100 // name servers per referral
)

// Template addresses (moved into the lab's block).
const (
	hostRoot     = 2
	hostTLD      = 3
	hostGood     = 4
	hostAttacker = 50
	hostVictim   = 51
	hostBad      = 20 // + index of the malformation
	hostDead     = 52
)

func main() {
	sovdns := flag.String("sovdns", "bin/sovdns", "the sovdns binary")
	unbound := flag.String("unbound", "unbound", "the unbound binary; empty: skip Unbound")
	n := flag.Int("n", 20, "NXNS client questions per resolver (1-1000)")
	flood := flag.Int("flood", 2000, "dead-zone questions per resolver (0-20000)")
	floodRate := flag.Int("flood-rate", 1000, "dead-zone questions a second (1-20000)")
	keep := flag.Bool("keep", false, "keep the work directory (configurations and logs), verbose logs")
	flag.Parse()
	if *n < 1 || *n > 1000 || *flood < 0 || *flood > 20000 || *floodRate < 1 || *floodRate > 20000 {
		fmt.Fprintln(os.Stderr, "hostile: -n must be between 1 and 1000, -flood between 0 and 20000, -flood-rate between 1 and 20000")
		os.Exit(2)
	}
	floodN, floodQPS = *flood, *floodRate
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	if err := run(ctx, *sovdns, *unbound, *n, *keep, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		os.Exit(1)
	}
}

// lab is the hierarchy of hostile servers.
type lab struct {
	*hostile.Lab
	servers []*hostile.Server
	victim  *hostile.Server
	dead    *hostile.Server
}

func (l *lab) upstream() int {
	total := 0
	for _, s := range l.servers {
		total += s.Stats().Total
	}
	return total
}

// settle waits until no server has received a query for settleQuiet (a
// resolver may go on after it answered: what it sends then is counted
// against the question that caused it), at most settleMax.
func (l *lab) settle(ctx context.Context) {
	last, quiet := l.upstream(), time.Now()
	for deadline := time.Now().Add(settleMax); time.Now().Before(deadline); {
		if !hostile.Sleep(ctx, 50*time.Millisecond) {
			return
		}
		if cur := l.upstream(); cur != last {
			last, quiet = cur, time.Now()
		} else if time.Since(quiet) >= settleQuiet {
			return
		}
	}
}

func startLab(ctx context.Context) (*lab, error) {
	// Port 53 when it can be bound (Unbound needs it), else a free port.
	hosts := []byte{hostRoot, hostTLD, hostGood, hostAttacker, hostVictim, hostDead}
	for i := range hostile.Malformations {
		hosts = append(hosts, byte(hostBad+i))
	}
	block := testaddr.NewBlock()
	ips := make([]netip.Addr, len(hosts))
	for i, h := range hosts {
		ips[i] = block.IP(h)
	}
	l := &lab{Lab: hostile.NewLabOn(ctx, block, 53)}
	if testaddr.Free(53, ips...) != nil {
		var err error
		if l.Lab, err = hostile.NewLab(ctx, hosts...); err != nil {
			return nil, err
		}
	}
	tld := `$ORIGIN test.
@         NS  ns.nic
ns.nic    A   127.0.0.3
good      NS  ns.good
ns.good   A   127.0.0.4
nxns      NS  ns.nxns
ns.nxns   A   127.0.0.50
victim    NS  ns.victim
ns.victim A   127.0.0.51
dead      NS  ns.dead
ns.dead   A   127.0.0.52
`
	for i, k := range hostile.Malformations {
		tld += fmt.Sprintf("%[1]s NS ns.%[1]s\nns.%[1]s A 127.0.0.%[2]d\n", k, hostBad+i)
	}
	zones := []struct {
		host   byte
		origin string
		text   string
	}{
		{hostRoot, ".", "$ORIGIN .\n@ NS a.root.test.\na.root.test. A 127.0.0.2\ntest. NS ns.nic.test.\nns.nic.test. A 127.0.0.3\n"},
		{hostTLD, "test.", tld},
		{hostGood, "good.test.", "$ORIGIN good.test.\n@ NS ns\nns A 127.0.0.4\nwww A 192.0.2.4\n"},
		{hostVictim, "victim.test.", "$ORIGIN victim.test.\n@ NS ns\nns A 127.0.0.51\nwww A 192.0.2.51\n"},
	}
	serve := func(host byte, h hostile.Handler) (*hostile.Server, error) {
		s, err := l.Serve(host, h)
		if err != nil {
			return nil, err
		}
		l.servers = append(l.servers, s)
		return s, nil
	}
	for _, z := range zones {
		zone, err := l.Zone(z.origin, z.text)
		if err != nil {
			return nil, err
		}
		s, err := serve(z.host, hostile.Serve(zone))
		if err != nil {
			return nil, err
		}
		if z.host == hostVictim {
			l.victim = s
		}
	}
	attacker, err := l.Zone("nxns.test.", "$ORIGIN nxns.test.\n@ NS ns\nns A 127.0.0.50\n")
	if err != nil {
		return nil, err
	}
	if _, err := serve(hostAttacker, hostile.NXNS(attacker, "victim.test.", nxnsNames)); err != nil {
		return nil, err
	}
	// The dead zone's server takes every query and never answers.
	dead, err := serve(hostDead, func(context.Context, *hostile.Writer, *hostile.Query) {})
	if err != nil {
		return nil, err
	}
	l.dead = dead
	for i, k := range hostile.Malformations {
		origin := k.String() + ".test."
		z, err := l.Zone(origin, fmt.Sprintf("$ORIGIN %s\n@ NS ns\nns A 127.0.0.%d\nwww A 192.0.2.20\n", origin, hostBad+i))
		if err != nil {
			return nil, err
		}
		if _, err := serve(byte(hostBad+i), func(_ context.Context, w *hostile.Writer, q *hostile.Query) {
			if q.Msg == nil || q.Msg.Response {
				return
			}
			if raw, err := hostile.Malform(hostile.Answer(q.Msg, z), k); err == nil {
				_ = w.Raw(raw)
			}
		}); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// resolver is one resolver process under test.
type resolver struct {
	name string
	addr string // where it listens, IP:port
	cmd  *exec.Cmd
	done chan struct{}
}

func (r *resolver) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// launch starts a resolver and waits until it resolves www.good.test.
func launch(ctx context.Context, name, addr, logPath string, argv ...string) (*resolver, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	r := &resolver{name: name, addr: addr, cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	c := &dns.Client{Timeout: time.Second}
	for deadline := time.Now().Add(startTimeout); time.Now().Before(deadline) && ctx.Err() == nil; {
		select {
		case <-r.done:
			return nil, fmt.Errorf("%s exited at start; log %s", name, logPath)
		default:
		}
		resp, _, err := c.ExchangeContext(ctx, rd("www.good.test."), addr)
		if err == nil && resp.Rcode == dns.RcodeSuccess && len(resp.Answer) > 0 {
			return r, nil
		}
		hostile.Sleep(ctx, 100*time.Millisecond)
	}
	r.stop()
	log, _ := os.ReadFile(logPath)
	return nil, fmt.Errorf("%s did not resolve www.good.test. within %v; log:\n%s", name, startTimeout, log)
}

func rd(name string) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.SetEdns0(1232, false)
	return m
}

// result is what one resolver did.
type result struct {
	name             string
	victim, upstream []int // per NXNS client question
	nxnsRcodes       map[string]int
	malformed        []string // client's answer per malformation
	flood            floodResult
}

// The dead-zone flood: its size and rate (flags).
var floodN, floodQPS int

// floodResult is what a resolver did with the dead-zone flood.
type floodResult struct {
	sent, answered, servfail int
	toDead                   int           // queries that reached the dead server
	cpu                      time.Duration // the resolver's user and system time
	quiet                    time.Duration // from the first question until the resolver was quiet
}

func measure(ctx context.Context, l *lab, r *resolver, n int) result {
	res := result{name: r.name, nxnsRcodes: map[string]int{}}
	c := &dns.Client{Timeout: clientTimeout}
	l.settle(ctx)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		v0, u0 := l.victim.Stats().Total, l.upstream()
		resp, _, err := c.ExchangeContext(ctx, rd(fmt.Sprintf("%s%d.nxns.test.", r.name, i)), r.addr)
		l.settle(ctx)
		res.victim = append(res.victim, l.victim.Stats().Total-v0)
		res.upstream = append(res.upstream, l.upstream()-u0)
		res.nxnsRcodes[rcode(resp, err)]++
	}
	for _, k := range hostile.Malformations {
		if ctx.Err() != nil {
			break
		}
		resp, _, err := c.ExchangeContext(ctx, rd("www."+k.String()+".test."), r.addr)
		a := rcode(resp, err)
		if err == nil {
			for _, rr := range resp.Answer {
				if v, ok := rr.(*dns.A); ok {
					a += " " + v.A.String()
					if v.Hdr.Class != dns.ClassINET {
						a += "/" + dns.Class(v.Hdr.Class).String()
					}
				}
			}
		}
		res.malformed = append(res.malformed, a)
	}
	if floodN > 0 && ctx.Err() == nil {
		res.flood = deadFlood(ctx, l, r)
	}
	return res
}

// deadFlood sends floodN questions for new names under dead.test., at
// floodQPS a second, without waiting for the answers, and measures the
// resolver's CPU time and the queries reaching the dead server until the
// resolver is quiet again (neither changes for a second, at most 20 s).
func deadFlood(ctx context.Context, l *lab, r *resolver) floodResult {
	var fr floodResult
	pid := r.cmd.Process.Pid
	cpu0, err := cpuTime(pid)
	if err != nil {
		return fr
	}
	dead0 := l.dead.Stats().Total
	conn, err := net.Dial("udp", r.addr)
	if err != nil {
		return fr
	}
	defer conn.Close()
	answers := make(chan [2]int, 1)
	go func() { // counts the answers until the socket closes
		var n, sf int
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				answers <- [2]int{n, sf}
				return
			}
			if k >= 4 {
				n++
				if buf[3]&0x0F == dns.RcodeServerFailure {
					sf++
				}
			}
		}
	}()
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	perTick := max(1, floodQPS/100)
	for fr.sent < floodN && ctx.Err() == nil {
		<-tick.C
		for range perTick {
			if fr.sent == floodN {
				break
			}
			m := rd(fmt.Sprintf("f%d-%s.dead.test.", fr.sent, r.name))
			b, _ := m.Pack()
			if _, err := conn.Write(b); err == nil {
				fr.sent++
			}
		}
	}
	tick.Stop()
	lastCPU, lastDead, since := cpu0, dead0, time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		if !hostile.Sleep(ctx, 200*time.Millisecond) {
			break
		}
		c, err := cpuTime(pid)
		if err != nil {
			break
		}
		d := l.dead.Stats().Total
		if c != lastCPU || d != lastDead {
			lastCPU, lastDead, since = c, d, time.Now()
		} else if time.Since(since) >= time.Second {
			break
		}
	}
	fr.quiet = since.Sub(start)
	fr.cpu = lastCPU - cpu0
	fr.toDead = lastDead - dead0
	conn.SetReadDeadline(time.Now())
	a := <-answers
	fr.answered, fr.servfail = a[0], a[1]
	return fr
}

// cpuTime returns a process's user and system time (/proc/PID/stat,
// fields 14 and 15, in clock ticks of 10 ms).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from after it.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

func rcode(r *dns.Msg, err error) string {
	var ne interface{ Timeout() bool }
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case err != nil:
		return "error"
	}
	return dns.RcodeToString[r.Rcode]
}

func run(ctx context.Context, sovdnsBin, unboundBin string, n int, keep bool, out io.Writer) error {
	work, err := os.MkdirTemp("", "sovdns-hostile-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "hostile: work directory", work)
	} else {
		defer os.RemoveAll(work)
	}
	verbosity, level := 0, "warn"
	if keep {
		verbosity, level = 4, "debug"
	}
	l, err := startLab(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	hints := filepath.Join(work, "root.hints")
	if err := os.WriteFile(hints, []byte(l.Hints("a.root.test.", hostRoot)), 0o600); err != nil {
		return err
	}
	// The resolvers listen on 127.0.0.1, on ports free there.
	local := netip.MustParseAddr("127.0.0.1")

	var results []result
	var skipped []string
	switch {
	case unboundBin == "":
		skipped = append(skipped, "unbound: not asked for (-unbound \"\")")
	case l.Port != 53:
		skipped = append(skipped, "unbound: port 53 is not free on the lab's addresses (needs root, and no server on *:53); Unbound queries delegated servers on port 53 only")
	default:
		path, err := exec.LookPath(unboundBin)
		if err != nil {
			skipped = append(skipped, "unbound: "+err.Error())
			break
		}
		port, err := testaddr.FreePort(local)
		if err != nil {
			return err
		}
		conf := filepath.Join(work, "unbound.conf")
		if err := os.WriteFile(conf, []byte(unboundConf(work, hints, port, verbosity)), 0o600); err != nil {
			return err
		}
		r, err := launch(ctx, "unbound", netip.AddrPortFrom(local, port).String(), filepath.Join(work, "unbound.log"), path, "-d", "-c", conf)
		if err != nil {
			return err
		}
		results = append(results, measure(ctx, l, r, n))
		r.stop()
	}
	port, err := testaddr.FreePort(local)
	if err != nil {
		return err
	}
	addr := netip.AddrPortFrom(local, port).String()
	conf := filepath.Join(work, "sovdns.yaml")
	if err := os.WriteFile(conf, []byte(sovdnsConf(addr, hints, l.Port, level)), 0o600); err != nil {
		return err
	}
	r, err := launch(ctx, "sovdns", addr, filepath.Join(work, "sovdns.log"), sovdnsBin, "serve", "--config", conf, "--data-dir", filepath.Join(work, "sovdns"))
	if err != nil {
		return err
	}
	results = append(results, measure(ctx, l, r, n))
	r.stop()
	if ctx.Err() != nil {
		return fmt.Errorf("cut short: %w", ctx.Err())
	}
	report(out, l, n, results, skipped)
	return nil
}

func unboundConf(work, hints string, port uint16, verbosity int) string {
	return fmt.Sprintf(`server:
  interface: 127.0.0.1@%d
  port: %d
  username: ""
  chroot: ""
  directory: %q
  pidfile: %q
  use-syslog: no
  logfile: ""
  verbosity: %d
  num-threads: 1
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  root-hints: %q
  module-config: "iterator"
  # test. is a special-use name Unbound answers itself by default.
  local-zone: "test." nodefault
`, port, port, work, filepath.Join(work, "unbound.pid"), verbosity, hints)
}

func sovdnsConf(addr, hints string, upstreamPort uint16, level string) string {
	return fmt.Sprintf(`demo_zone: false
listen: [%q]
metrics: {listen: ""}
log: {level: %s}
resolver:
  allow: [127.0.0.0/8]
  root_hints: %q
  upstream_port: %d
  query_loopback: true
  dnssec: {validation: false}
  persist: {enabled: false}
resilience:
  island: {enabled: false}
`, addr, level, hints, upstreamPort)
}

func median(v []int) int {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func maxOf(v []int) int {
	if len(v) == 0 {
		return 0
	}
	return slices.Max(v)
}

func report(out io.Writer, l *lab, n int, results []result, skipped []string) {
	fmt.Fprintf(out, "hostile upstream lab: fake servers on 127.%s.x port %d\n", strings.Join(strings.Split(l.IP(0).String(), ".")[1:3], "."), l.Port)
	for _, s := range skipped {
		fmt.Fprintln(out, "skipped", s)
	}
	fmt.Fprintf(out, "\nNXNS: %d client questions per resolver, each answered by a referral to %d glue-less NS names in victim.test. (new names each time)\n", n, nxnsNames)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "resolver\tto victim median\tto victim max\tupstream median\tupstream max\tclient answers\t")
	for _, r := range results {
		var codes []string
		for c, k := range r.nxnsRcodes {
			codes = append(codes, fmt.Sprintf("%s %d", c, k))
		}
		slices.Sort(codes)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t\n", r.name, median(r.victim), maxOf(r.victim), median(r.upstream), maxOf(r.upstream),
			strings.Join(codes, ","))
	}
	tw.Flush()
	if len(results) == 2 && median(results[1].victim) > 0 {
		u, s := results[0], results[1]
		fmt.Fprintf(out, "ratio unbound/sovdns: to victim %.1fx (median), %.1fx (max); upstream %.1fx (median)\n",
			float64(median(u.victim))/float64(median(s.victim)), float64(maxOf(u.victim))/float64(max(1, maxOf(s.victim))),
			float64(median(u.upstream))/float64(max(1, median(s.upstream))))
	}
	fmt.Fprintf(out, "\nMalformed answers from a zone's only server (www.<kind>.test. A; the server's genuine answer is 192.0.2.20;\n"+
		"each resolver answered the well-formed www.good.test. before it was measured):\n")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	header := "malformation"
	for _, r := range results {
		header += "\t" + r.name
	}
	fmt.Fprintln(tw, header+"\t")
	for i, k := range hostile.Malformations {
		line := k.String()
		for _, r := range results {
			a := "-"
			if i < len(r.malformed) {
				a = r.malformed[i]
			}
			line += "\t" + a
		}
		fmt.Fprintln(tw, line+"\t")
	}
	tw.Flush()
	if floodN == 0 {
		return
	}
	fmt.Fprintf(out, "\nDead zone: %d questions for new names under dead.test. at %d a second; its only server never answers:\n", floodN, floodQPS)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "resolver\tqueries to the dead server\tCPU time\tCPU per question\tanswered (SERVFAIL)\tquiet after\t")
	for _, r := range results {
		f := r.flood
		per := time.Duration(0)
		if f.sent > 0 {
			per = f.cpu / time.Duration(f.sent)
		}
		fmt.Fprintf(tw, "%s\t%d\t%v\t%v\t%d (%d)\t%v\t\n", r.name, f.toDead, f.cpu, per, f.answered, f.servfail, f.quiet.Round(100*time.Millisecond))
	}
	tw.Flush()
	if len(results) == 2 && results[0].flood.cpu > 0 {
		fmt.Fprintf(out, "ratio sovdns/unbound: CPU %.2fx, queries to the dead server %.2fx\n",
			float64(results[1].flood.cpu)/float64(results[0].flood.cpu),
			float64(results[1].flood.toDead)/float64(max(1, results[0].flood.toDead)))
	}
}
