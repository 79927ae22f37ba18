package test

// The resolver against hostile upstream servers: the real sovdns binary,
// as a resolver, iterating through a hierarchy of fake authoritative
// servers (package hostile) on a loopback block of its own, that poison,
// mangle, flood, loop, stall, drop cookies, and are flooded with
// questions. Each scenario runs its own hierarchy and resolver process,
// checks what the client is answered and how many queries reached the
// servers, and ends with the resolver alive and its memory bounded.
//
// The template addresses of every hierarchy (moved into its block):
//
//	127.0.0.2   .          a.root.test.
//	127.0.0.3   test.      ns.nic.test.
//	127.0.0.4   good.test. ns.good.test. (and the good servers of scenarios)
//	127.0.0.10+            the scenario's servers
//	127.0.0.250            the resolver's metrics listener

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/hostile"
)

// Limits of the resolver under attack (its configuration below).
const (
	hostileQueryTimeout      = 300 * time.Millisecond
	hostileMaxUpstream       = 64 // resolver.max_upstream_queries (the default)
	hostileRSSLimit          = 300 << 20
	forgedAddr               = "192.0.2.66" // what the attackers want believed
	hostileMetricsHost  byte = 250
)

const hostileRootZone = `$ORIGIN .
@              NS  a.root.test.
a.root.test.   A   127.0.0.2
test.          NS  ns.nic.test.
ns.nic.test.   A   127.0.0.3
`

const hostileTLDZone = `$ORIGIN test.
@        NS  ns.nic
ns.nic   A   127.0.0.3
good     NS  ns.good
ns.good  A   127.0.0.4
`

const hostileGoodZone = `$ORIGIN good.test.
@    NS  ns
ns   A   127.0.0.4
www  A   192.0.2.4
`

// hostileOpts describe a scenario's hierarchy.
type hostileOpts struct {
	hosts []byte // the scenario's own servers (last octets of template addresses)
	tld   string // records added to test. (template addresses)
	// goodExtra are records added to good.test.; good are more zones
	// served by its server (127.0.0.4), by origin.
	goodExtra string
	good      map[string]string
}

// hostileNet is a hierarchy of hostile servers and the resolver that
// iterates through it.
type hostileNet struct {
	lab     *hostile.Lab
	servers []*hostile.Server
	good    *hostile.Server
	res     *server
}

// newHostileNet starts the root, test. and good.test. servers of a new
// lab, with the scenario's delegations; the scenario adds its servers
// (serve) and then starts the resolver (start).
func newHostileNet(t *testing.T, o hostileOpts) *hostileNet {
	t.Helper()
	lab, err := hostile.NewLab(t.Context(), append([]byte{2, 3, 4}, o.hosts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	n := &hostileNet{lab: lab}
	n.serve(t, 2, hostile.Serve(n.zone(t, ".", hostileRootZone)))
	n.serve(t, 3, hostile.Serve(n.zone(t, "test.", hostileTLDZone+o.tld)))
	good := []*hostile.Zone{n.zone(t, "good.test.", hostileGoodZone+o.goodExtra)}
	for origin, text := range o.good {
		good = append(good, n.zone(t, origin, text))
	}
	n.good = n.serve(t, 4, hostile.Serve(good...))
	return n
}

func (n *hostileNet) zone(t *testing.T, origin, text string) *hostile.Zone {
	t.Helper()
	z, err := n.lab.Zone(origin, text)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func (n *hostileNet) serve(t *testing.T, host byte, h hostile.Handler) *hostile.Server {
	t.Helper()
	s, err := n.lab.Serve(host, h)
	if err != nil {
		t.Fatal(err)
	}
	n.servers = append(n.servers, s)
	return s
}

// start runs the resolver, with extra lines (indented two spaces) in its
// resolver section.
func (n *hostileNet) start(t *testing.T, extra string) {
	t.Helper()
	hints := filepath.Join(t.TempDir(), "root.hints")
	if err := os.WriteFile(hints, []byte(n.lab.Hints("a.root.test.", 2)), 0o600); err != nil {
		t.Fatal(err)
	}
	// Island mode off: every name here is foreign, and the scenarios
	// make servers fail on purpose; what they check is the iteration.
	config := fmt.Sprintf(`demo_zone: false
udp_sockets: 1
resolver:
  allow: [127.0.0.0/8]
  root_hints: %q
  upstream_port: %d
  query_timeout: %s
  resolution_timeout: %s
  query_loopback: true
  dnssec:
    validation: false
  persist:
    enabled: false
%sresilience:
  island:
    enabled: false
`, hints, n.lab.Port, hostileQueryTimeout, resolutionTimeout, extra)
	n.res = startServer(t, serveOpts{config: config, env: fastExit(),
		args: []string{"--listen", "127.0.0.1:0", "--metrics-listen", netip.AddrPortFrom(n.lab.IP(hostileMetricsHost), 0).String()}})
}

// ask sends a recursive question to the resolver and times it.
func (n *hostileNet) ask(t *testing.T, name string, qtype uint16) (*dns.Msg, time.Duration) {
	t.Helper()
	start := time.Now()
	r := exchangeOnce(t, "udp", n.res.dns, rdQuery(name, qtype))
	return r, time.Since(start)
}

// upstream is the number of queries all the lab's servers received.
func (n *hostileNet) upstream() int {
	total := 0
	for _, s := range n.servers {
		total += s.Stats().Total
	}
	return total
}

func (n *hostileNet) metric(t *testing.T, name string) float64 {
	t.Helper()
	return metricValue(t, n.res, name, nil)
}

// checkAlive checks that the resolver still resolves a good name and that
// its resident memory is bounded.
func (n *hostileNet) checkAlive(t *testing.T) {
	t.Helper()
	r, _ := n.ask(t, "www.good.test.", dns.TypeA)
	if got := addrs(r); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"192.0.2.4"}) {
		t.Errorf("www.good.test. after the attack: %s %v\n%v", dns.RcodeToString[r.Rcode], got, r)
	}
	rss, err := vmRSS(n.res.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resolver VmRSS %d MiB", rss>>20)
	if rss > hostileRSSLimit {
		t.Errorf("resolver VmRSS %d MiB, over %d MiB", rss>>20, hostileRSSLimit>>20)
	}
}

// vmRSS returns a process's resident set size in bytes.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// addrs returns the addresses of the A records of r's answer, sorted.
func addrs(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out
}

// wantServfail checks a SERVFAIL with the Extended DNS Error code given.
func wantServfail(t *testing.T, r *dns.Msg, code uint16) {
	t.Helper()
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL\n%v", dns.RcodeToString[r.Rcode], r)
		return
	}
	if codes := edeCodes(r); !slices.Contains(codes, code) {
		t.Errorf("EDE %v, want %d\n%v", codes, code, r)
	}
}

// TestHostilePoisoning: records an attacker's server adds for names
// outside its zone (in any section, as glue, as NS sets of a sibling zone,
// of its parent or of the root) are never believed: the victim's names
// are answered by the victim's server.
func TestHostilePoisoning(t *testing.T) {
	t.Parallel()
	n := newHostileNet(t, hostileOpts{hosts: []byte{10, 11}, tld: `
victim       NS  ns.victim
ns.victim    A   127.0.0.10
attacker     NS  ns.attacker
ns.attacker  A   127.0.0.11
`})
	victim := n.serve(t, 10, hostile.Serve(n.zone(t, "victim.test.", `$ORIGIN victim.test.
@    NS  ns
ns   A   127.0.0.10
www  A   192.0.2.10
`)))
	attackerZone := n.zone(t, "attacker.test.", `$ORIGIN attacker.test.
@     NS  ns
ns    A   127.0.0.11
*     A   192.0.2.11
glue  NS  ns.victim.test.
`)
	attackerIP := n.lab.IP(11).String()
	forgedWWW := hostile.MustRR("www.victim.test. 86400 IN A " + forgedAddr)
	// The attacker answers each name genuinely, adding what its first
	// label says.
	attacker := n.serve(t, 11, func(_ context.Context, w *hostile.Writer, q *hostile.Query) {
		if q.Msg == nil {
			return
		}
		m := hostile.Answer(q.Msg, attackerZone)
		label, _, _ := strings.Cut(q.Name(), ".")
		nsAttacker := hostile.MustRR("ns.attacker.test. 86400 IN A " + attackerIP)
		switch label {
		case "additional":
			m.Extra = append(m.Extra, forgedWWW)
		case "authority":
			m.Ns = append(m.Ns, forgedWWW)
		case "answer":
			m.Answer = append(m.Answer, forgedWWW)
		case "sibling":
			m.Ns = append(m.Ns, hostile.MustRR("victim.test. 86400 IN NS ns.attacker.test."))
			m.Extra = append(m.Extra, nsAttacker)
		case "parent":
			m.Ns = append(m.Ns, hostile.MustRR("test. 86400 IN NS ns.attacker.test."),
				hostile.MustRR(". 86400 IN NS ns.attacker.test."))
			m.Extra = append(m.Extra, nsAttacker)
		case "sideways": // a referral to another zone, nothing else
			m.Answer = nil
			m.Authoritative = false
			m.Ns = []dns.RR{hostile.MustRR("victim.test. 86400 IN NS ns.attacker.test.")}
			m.Extra = append(m.Extra, nsAttacker)
		case "glue": // referral for glue.attacker.test.: ns.victim.test. forged as glue
			m.Extra = append(m.Extra, hostile.MustRR("ns.victim.test. 86400 IN A "+attackerIP), forgedWWW)
		}
		_ = w.Msg(m)
	})
	n.start(t, "")

	cases := []struct {
		name  string
		qname string
		rcode int
		want  []string // addresses answered
	}{
		{name: "forged A in additional", qname: "additional.attacker.test.", rcode: dns.RcodeSuccess, want: []string{"192.0.2.11"}},
		{name: "forged A in authority", qname: "authority.attacker.test.", rcode: dns.RcodeSuccess, want: []string{"192.0.2.11"}},
		{name: "forged A in answer", qname: "answer.attacker.test.", rcode: dns.RcodeSuccess, want: []string{"192.0.2.11"}},
		{name: "NS of a sibling zone", qname: "sibling.attacker.test.", rcode: dns.RcodeSuccess, want: []string{"192.0.2.11"}},
		{name: "NS of the parent and the root", qname: "parent.attacker.test.", rcode: dns.RcodeSuccess, want: []string{"192.0.2.11"}},
		{name: "sideways referral", qname: "sideways.attacker.test.", rcode: dns.RcodeServerFailure},
		// The referral's glue for ns.victim.test. is not believed: its real
		// address (the victim's server) is looked up, which refuses.
		{name: "out-of-bailiwick glue", qname: "x.glue.attacker.test.", rcode: dns.RcodeServerFailure},
	}
	for _, c := range cases {
		r, _ := n.ask(t, c.qname, dns.TypeA)
		if r.Rcode != c.rcode || !slices.Equal(addrs(r), c.want) {
			t.Errorf("%s: %s %s %v, want %s %v\n%v", c.name, c.qname, dns.RcodeToString[r.Rcode], addrs(r),
				dns.RcodeToString[c.rcode], c.want, r)
		}
		asked := c.qname
		if c.qname == "x.glue.attacker.test." {
			asked = "glue.attacker.test." // QNAME minimisation: the referral
		}
		if got := attacker.Count(asked); got != 1 {
			t.Errorf("%s: the attacker was asked %s %d times, want once", c.name, asked, got)
		}
	}
	if got := attacker.CountUnder("glue.attacker.test."); got != 1 {
		t.Errorf("the attacker was asked %d times at or below glue.attacker.test. (its forged glue believed?), want 1 (the referral)", got)
	}

	// The names the attacker forged, asked only now, come from their real
	// server; the attacker is never asked about anything but its zone.
	checks := []struct {
		qname string
		qtype uint16
		want  string
		asked bool // never asked before: the victim's server must be asked now
	}{
		{qname: "www.victim.test.", qtype: dns.TypeA, want: "www.victim.test. A 192.0.2.10", asked: true},
		{qname: "ns.victim.test.", qtype: dns.TypeA, want: n.lab.Rewrite("ns.victim.test. A 127.0.0.10")},
		{qname: "victim.test.", qtype: dns.TypeNS, want: "victim.test. NS ns.victim.test."},
	}
	for _, c := range checks {
		before := victim.Count(c.qname)
		r, _ := n.ask(t, c.qname, c.qtype)
		if r.Rcode != dns.RcodeSuccess {
			t.Errorf("%s %s: %s", c.qname, dns.Type(c.qtype), dns.RcodeToString[r.Rcode])
		}
		wantData(t, c.qname, r.Answer, 86400, c.want)
		if c.asked && victim.Count(c.qname) == before {
			t.Errorf("%s %s answered without asking the victim's server (from a forged cache entry?)", c.qname, dns.Type(c.qtype))
		}
	}
	if other := attacker.Stats().Total - attacker.CountUnder("attacker.test."); other != 0 {
		t.Errorf("the attacker's server was asked %d questions outside its zone: %v", other, attacker.Log())
	}
	t.Logf("upstream queries: %d in all, attacker %d, victim %d", n.upstream(), attacker.Stats().Total, victim.Stats().Total)
	n.checkAlive(t)
}

// TestHostileMalformed: an answer that does not hold together is refused
// whatever it carries: SERVFAIL when its server is the zone's only one,
// the answer of the zone's other server when it has one.
func TestHostileMalformed(t *testing.T) {
	t.Parallel()
	kinds := hostile.Malformations
	var tld, goodExtra strings.Builder
	good := map[string]string{}
	var hosts []byte
	for i, k := range kinds {
		// <kind>-1.test.: one server, malformed. <kind>-2.test.: the
		// malformed server, the only one with glue (so asked first), and
		// the good server, whose address must be looked up.
		one, two := byte(20+i), byte(30+i)
		hosts = append(hosts, one, two)
		fmt.Fprintf(&tld, "%[1]s-1 NS ns.%[1]s-1\nns.%[1]s-1 A 127.0.0.%[2]d\n", k, one)
		fmt.Fprintf(&tld, "%[1]s-2 NS ns.%[1]s-2\n%[1]s-2 NS ns-%[1]s.good.test.\nns.%[1]s-2 A 127.0.0.%[2]d\n", k, two)
		fmt.Fprintf(&goodExtra, "ns-%s A 127.0.0.4\n", k)
		good[k.String()+"-2.test."] = malformedZone(k.String()+"-2.test.", two)
	}
	n := newHostileNet(t, hostileOpts{hosts: hosts, tld: tld.String(), goodExtra: goodExtra.String(), good: good})
	type bad struct {
		kind     hostile.Malformation
		one, two *hostile.Server
	}
	var bads []bad
	for i, k := range kinds {
		b := bad{kind: k}
		for j, host := range []byte{byte(20 + i), byte(30 + i)} {
			origin := fmt.Sprintf("%s-%d.test.", k, j+1)
			z := n.zone(t, origin, malformedZone(origin, host))
			s := n.serve(t, host, func(_ context.Context, w *hostile.Writer, q *hostile.Query) {
				if q.Msg == nil {
					return
				}
				raw, err := hostile.Malform(hostile.Answer(q.Msg, z), k)
				if err != nil {
					t.Errorf("%s: %v", k, err)
					return
				}
				_ = w.Raw(raw)
			})
			if j == 0 {
				b.one = s
			} else {
				b.two = s
			}
		}
		bads = append(bads, b)
	}
	n.start(t, "")

	malformedBefore := n.metric(t, "sovdns_resolver_upstream_malformed_total")
	badQueries := 0
	for _, b := range bads {
		t.Run(b.kind.String(), func(t *testing.T) {
			name1 := fmt.Sprintf("www.%s-1.test.", b.kind)
			r, _ := n.ask(t, name1, dns.TypeA)
			wantServfail(t, r, dns.ExtendedErrorCodeNoReachableAuthority)
			if got := addrs(r); len(got) > 0 {
				t.Errorf("%s: addresses %v in a SERVFAIL", name1, got)
			}
			if got := b.one.Count(name1); got != 1 {
				t.Errorf("%s: the malformed server was asked %d times, want 1", name1, got)
			}

			name2 := fmt.Sprintf("www.%s-2.test.", b.kind)
			r, _ = n.ask(t, name2, dns.TypeA)
			if got := addrs(r); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"192.0.2.20"}) {
				t.Errorf("%s: %s %v, want the good server's 192.0.2.20\n%v", name2, dns.RcodeToString[r.Rcode], got, r)
			}
			if got := b.two.Count(name2); got != 1 {
				t.Errorf("%s: the malformed server was asked %d times, want 1 (first, as the only one with glue)", name2, got)
			}
			if got := n.good.Count(name2); got != 1 {
				t.Errorf("%s: the good server was asked %d times, want 1", name2, got)
			}
			badQueries += b.one.Stats().Total + b.two.Stats().Total
		})
	}
	grew := n.metric(t, "sovdns_resolver_upstream_malformed_total") - malformedBefore
	t.Logf("malformed answers sent %d, counted %v; upstream queries %d", badQueries, grew, n.upstream())
	if grew < float64(2*len(kinds)) || grew > float64(badQueries) {
		t.Errorf("sovdns_resolver_upstream_malformed_total grew by %v; %d malformed answers were sent, at least %d of them answers", grew, badQueries, 2*len(kinds))
	}
	n.checkAlive(t)
}

// malformedZone is the zone text of a zone of the malformed scenario,
// whose server is at template host.
func malformedZone(origin string, host byte) string {
	return fmt.Sprintf("$ORIGIN %s\n@ NS ns\nns A 127.0.0.%d\nwww A 192.0.2.20\n", origin, host)
}

// TestHostileForgedFlood: the zone's server answers each query with
// forged replies (wrong IDs, a forged address), then the genuine answer.
// The forged address is never served. With unwanted_reply_threshold 100,
// the spoofing alarm is raised and logged, and the exchange that raised
// it is not believed (SERVFAIL, unless the zone had another server): with
// 40 forgeries a query every third exchange raises it and the others are
// answered genuinely; with 200 a query, every one does. Once the flood
// ends, every name resolves. (A flood may also push the genuine answer
// out of the socket's buffer: a timeout, a SERVFAIL too, never a forgery.)
func TestHostileForgedFlood(t *testing.T) {
	t.Parallel()
	const threshold = 100
	n := newHostileNet(t, hostileOpts{hosts: []byte{40}, tld: "flood NS ns.flood\nns.flood A 127.0.0.40\n"})
	z := n.zone(t, "flood.test.", "$ORIGIN flood.test.\n@ NS ns\nns A 127.0.0.40\n* A 192.0.2.40\n")
	var perQuery atomic.Int64 // forged replies per query; 0: no flood
	flood := n.serve(t, 40, func(ctx context.Context, w *hostile.Writer, q *hostile.Query) {
		if q.Msg == nil {
			return
		}
		genuine := hostile.Answer(q.Msg, z)
		forged := genuine.Copy()
		forged.Answer = []dns.RR{hostile.MustRR(q.Msg.Question[0].Name + " 86400 IN A " + forgedAddr)}
		_ = hostile.Flood(ctx, w, q, int(perQuery.Load()), forged, genuine, 50*time.Millisecond)
	})
	n.start(t, fmt.Sprintf("  unwanted_reply_threshold: %d\n", threshold))

	// ask returns whether name got the genuine answer; the only other
	// answer allowed is a SERVFAIL for the alarm.
	ask := func(name string) bool {
		t.Helper()
		r, _ := n.ask(t, name, dns.TypeA)
		got := addrs(r)
		switch {
		case r.Rcode == dns.RcodeSuccess && slices.Equal(got, []string{"192.0.2.40"}):
			return true
		case r.Rcode == dns.RcodeServerFailure && len(got) == 0:
			// The exchange that raised the alarm is not believed; and on a
			// loaded machine the forgeries can fill the socket's buffer,
			// so that the genuine answer is lost and the query times out.
			if codes := edeCodes(r); !slices.Contains(codes, dns.ExtendedErrorCodeNoReachableAuthority) {
				t.Errorf("%s: SERVFAIL without EDE 22: %v", name, r)
			}
			e, _ := ede(r)
			t.Logf("%s: SERVFAIL: %s", name, e.ExtraText)
		default:
			t.Errorf("%s: %s %v, want 192.0.2.40 or SERVFAIL (forged: %s)\n%v", name, dns.RcodeToString[r.Rcode], got, forgedAddr, r)
		}
		return false
	}
	start := time.Now()
	for _, phase := range []struct {
		forged, queries int
		minGenuine      int // of the queries
	}{
		{forged: 40, queries: 9, minGenuine: 3},
		{forged: 200, queries: 3},
		{forged: 0, queries: 3, minGenuine: 3},
	} {
		perQuery.Store(int64(phase.forged))
		genuine := 0
		var names []string
		for i := range phase.queries {
			name := fmt.Sprintf("f%d-%d.flood.test.", phase.forged, i)
			names = append(names, name)
			if ask(name) {
				genuine++
			}
		}
		t.Logf("%d forged replies a query: %d of %d questions answered genuinely", phase.forged, genuine, phase.queries)
		if genuine < phase.minGenuine {
			t.Errorf("%d forged replies a query: %d of %d questions answered genuinely, want at least %d", phase.forged, genuine, phase.queries, phase.minGenuine)
		}
		for _, name := range names {
			if got := flood.Count(name); got != 1 {
				t.Errorf("%s asked %d times, want once (the genuine answer came 50ms after the forgeries)", name, got)
			}
		}
	}
	// After the flood, every name flooded resolves (from the cache or
	// asked again), genuinely.
	perQuery.Store(0)
	for _, phase := range []int{40, 200} {
		for i := range 3 {
			if name := fmt.Sprintf("f%d-%d.flood.test.", phase, i); !ask(name) {
				t.Errorf("%s after the flood: no genuine answer", name)
			}
		}
	}
	unwanted := n.metric(t, "sovdns_resolver_unwanted_replies_total")
	alarms := n.metric(t, "sovdns_resolver_unwanted_reply_alarms_total")
	t.Logf("flood over %v: unwanted counted %v, alarms %v, upstream queries %d",
		time.Since(start).Round(time.Millisecond), unwanted, alarms, n.upstream())
	if unwanted < threshold {
		t.Errorf("sovdns_resolver_unwanted_replies_total %v; %d forged replies were sent", unwanted, 9*40+3*200)
	}
	if alarms < 1 {
		t.Errorf("sovdns_resolver_unwanted_reply_alarms_total %v with unwanted_reply_threshold %d", alarms, threshold)
	}
	if !strings.Contains(n.res.log.String(), "unwanted replies: possible spoofing attack") {
		t.Errorf("no spoofing warning logged:\n%s", n.res.log)
	}
	n.checkAlive(t)
}

// TestHostileNXNS: a referral naming 100 servers without glue, all in a
// victim's zone and new with each referral (NXNSAttack), costs the victim
// three queries per client question (three names looked up, A only after
// their NXDOMAIN), not a hundred (or two hundred with AAAA).
func TestHostileNXNS(t *testing.T) {
	t.Parallel()
	n := newHostileNet(t, hostileOpts{hosts: []byte{50, 51}, tld: `
nxns       NS  ns.nxns
ns.nxns    A   127.0.0.50
victim     NS  ns.victim
ns.victim  A   127.0.0.51
`})
	attackerZone := n.zone(t, "nxns.test.", "$ORIGIN nxns.test.\n@ NS ns\nns A 127.0.0.50\n")
	n.serve(t, 50, hostile.NXNS(attackerZone, "victim.test.", 100))
	victim := n.serve(t, 51, hostile.Serve(n.zone(t, "victim.test.", "$ORIGIN victim.test.\n@ NS ns\nns A 127.0.0.51\nwww A 192.0.2.51\n")))
	n.start(t, "")
	skippedBefore := n.metric(t, "sovdns_resolver_nameserver_lookups_skipped_total")

	const clients = 20
	var toVictim, total []int
	for i := range clients {
		v0, u0 := victim.Stats().Total, n.upstream()
		r, _ := n.ask(t, fmt.Sprintf("q%d-%d.nxns.test.", i, rand.Uint32()), dns.TypeA)
		if r.Rcode != dns.RcodeServerFailure {
			t.Errorf("query %d: %s, want SERVFAIL", i, dns.RcodeToString[r.Rcode])
		}
		toVictim = append(toVictim, victim.Stats().Total-v0)
		total = append(total, n.upstream()-u0)
	}
	t.Logf("NXNS, %d client queries, referral of 100 glue-less names: queries to the victim per client query %v (median %d, max %d); upstream queries %v (median %d, max %d)",
		clients, toVictim, median(toVictim), slices.Max(toVictim), total, median(total), slices.Max(total))
	for i, v := range toVictim {
		if v > 6 || v < 1 {
			t.Errorf("client query %d sent the victim %d queries, want 3 (at most 6)", i, v)
		}
	}
	if m := slices.Max(total); m > 12 {
		t.Errorf("a client query sent %d upstream queries, want at most 12", m)
	}
	if got := n.metric(t, "sovdns_resolver_nameserver_lookups_skipped_total") - skippedBefore; got < 97*clients {
		t.Errorf("sovdns_resolver_nameserver_lookups_skipped_total grew by %v, want at least %d (97 of each referral's 100 names)", got, 97*clients)
	}
	n.checkAlive(t)
}

func median(v []int) int {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestHostileLoops: a CNAME loop across two zones, and two zones each
// served only by a name in the other (no glue), end in SERVFAIL within
// the resolution timeout and the upstream query limit.
func TestHostileLoops(t *testing.T) {
	t.Parallel()
	n := newHostileNet(t, hostileOpts{hosts: []byte{60, 61}, tld: `
loop1     NS  ns.loop1
ns.loop1  A   127.0.0.60
loop2     NS  ns.loop2
ns.loop2  A   127.0.0.61
ra        NS  ns.rb
rb        NS  ns.ra
`})
	n.serve(t, 60, hostile.Serve(n.zone(t, "loop1.test.", "$ORIGIN loop1.test.\n@ NS ns\nns A 127.0.0.60\na CNAME b.loop2.test.\nc CNAME a\n")))
	n.serve(t, 61, hostile.Serve(n.zone(t, "loop2.test.", "$ORIGIN loop2.test.\n@ NS ns\nns A 127.0.0.61\nb CNAME c.loop1.test.\n")))
	n.start(t, "")

	for _, c := range []struct {
		name  string
		qname string
		code  uint16
	}{
		{name: "CNAME loop across two zones", qname: "a.loop1.test.", code: dns.ExtendedErrorCodeOther},
		{name: "referral loop without glue", qname: "www.ra.test.", code: dns.ExtendedErrorCodeNoReachableAuthority},
	} {
		u0 := n.upstream()
		r, took := n.ask(t, c.qname, dns.TypeA)
		wantServfail(t, r, c.code)
		sent := n.upstream() - u0
		t.Logf("%s: SERVFAIL after %v, %d upstream queries", c.name, took.Round(time.Millisecond), sent)
		if took > resolutionTimeout+time.Second {
			t.Errorf("%s: answered after %v; resolution_timeout is %v", c.name, took, resolutionTimeout)
		}
		if sent > hostileMaxUpstream {
			t.Errorf("%s: %d upstream queries, over max_upstream_queries %d", c.name, sent, hostileMaxUpstream)
		}
	}
	n.checkAlive(t)
}

// TestHostileStall: a server that never answers, and one that truncates
// over UDP and then trickles its TCP answer a byte a second, cost a
// SERVFAIL within the resolution timeout.
func TestHostileStall(t *testing.T) {
	t.Parallel()
	n := newHostileNet(t, hostileOpts{hosts: []byte{70, 71}, tld: `
stall       NS  ns.stall
ns.stall    A   127.0.0.70
trickle     NS  ns.trickle
ns.trickle  A   127.0.0.71
`})
	stall := n.serve(t, 70, func(context.Context, *hostile.Writer, *hostile.Query) {})
	tz := n.zone(t, "trickle.test.", "$ORIGIN trickle.test.\n@ NS ns\nns A 127.0.0.71\nwww A 192.0.2.71\n")
	trickle := n.serve(t, 71, func(ctx context.Context, w *hostile.Writer, q *hostile.Query) {
		if q.Msg == nil {
			return
		}
		m := hostile.Answer(q.Msg, tz)
		if !q.TCP {
			m.Answer, m.Truncated = nil, true
			_ = w.Msg(m)
			return
		}
		_ = w.Trickle(ctx, m, time.Second)
	})
	n.start(t, "")

	for _, c := range []struct {
		name  string
		qname string
		srv   *hostile.Server
	}{
		{name: "never answers", qname: "www.stall.test.", srv: stall},
		{name: "trickles over TCP", qname: "www.trickle.test.", srv: trickle},
	} {
		r, took := n.ask(t, c.qname, dns.TypeA)
		wantServfail(t, r, dns.ExtendedErrorCodeNoReachableAuthority)
		st := c.srv.Stats()
		t.Logf("%s: SERVFAIL after %v; the server got %d queries (%d over TCP)", c.name, took.Round(time.Millisecond), st.Total, st.TCP)
		if took > resolutionTimeout+time.Second {
			t.Errorf("%s: answered after %v; resolution_timeout is %v", c.name, took, resolutionTimeout)
		}
		if st.Total > 4 {
			t.Errorf("%s: the server got %d queries", c.name, st.Total)
		}
	}
	if st := trickle.Stats(); st.TCP < 1 {
		t.Errorf("the truncating server got no TCP query: %+v", st)
	}
	n.checkAlive(t)
}

// TestHostileCookies: a server that has sent a server cookie and then
// answers over UDP without one is not believed (the question goes over
// TCP); a reply with another client cookie is a forgery, and the genuine
// reply after it is taken.
func TestHostileCookies(t *testing.T) {
	t.Parallel()
	n := newHostileNet(t, hostileOpts{hosts: []byte{80}, tld: "cookie NS ns.cookie\nns.cookie A 127.0.0.80\n"})
	z := n.zone(t, "cookie.test.", "$ORIGIN cookie.test.\n@ NS ns\nns A 127.0.0.80\n* A 192.0.2.80\n")
	serverCookie := []byte{0x5e, 0x7e, 0x20, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
	var mu sync.Mutex
	var sawClientCookie int
	srv := n.serve(t, 80, func(ctx context.Context, w *hostile.Writer, q *hostile.Query) {
		if q.Msg == nil {
			return
		}
		genuine := hostile.Answer(q.Msg, z)
		client := hostile.ClientCookie(q.Msg)
		if client != nil {
			mu.Lock()
			sawClientCookie++
			mu.Unlock()
		}
		forged := genuine.Copy()
		forged.Answer = []dns.RR{hostile.MustRR(q.Msg.Question[0].Name + " 86400 IN A " + forgedAddr)}
		switch label, _, _ := strings.Cut(q.Name(), "."); {
		case q.TCP:
			_ = w.Msg(genuine) // no cookie over TCP, as a server may
		case label == "nocookie":
			_ = w.Msg(forged) // over UDP without the cookie it sent before
		case label == "wrongcookie":
			hostile.SetCookie(forged, []byte("notyours"), serverCookie)
			_ = w.Msg(forged)
			if !hostile.Sleep(ctx, 20*time.Millisecond) {
				return
			}
			hostile.SetCookie(genuine, client, serverCookie)
			_ = w.Msg(genuine)
		default:
			if client != nil {
				hostile.SetCookie(genuine, client, serverCookie)
			}
			_ = w.Msg(genuine)
		}
	})
	n.start(t, "")

	cases := []struct {
		name    string
		qname   string
		tcp     bool // the server must have been asked over TCP
		queries int  // the server gets, UDP and TCP
	}{
		{name: "server cookie sent", qname: "first.cookie.test.", queries: 1},
		{name: "no cookie over UDP from a server that sends them", qname: "nocookie.cookie.test.", tcp: true, queries: 2},
		{name: "wrong client cookie, then the genuine reply", qname: "wrongcookie.cookie.test.", queries: 1},
	}
	refused0, unwanted0 := n.metric(t, "sovdns_resolver_cookie_refused_total"), n.metric(t, "sovdns_resolver_unwanted_replies_total")
	for _, c := range cases {
		r, _ := n.ask(t, c.qname, dns.TypeA)
		if got := addrs(r); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"192.0.2.80"}) {
			t.Errorf("%s: %s %v, want 192.0.2.80 (forged: %s)\n%v", c.name, dns.RcodeToString[r.Rcode], got, forgedAddr, r)
		}
		overTCP := 0
		for _, s := range srv.Log() {
			if s.TCP && s.Name == c.qname {
				overTCP++
			}
		}
		if (overTCP > 0) != c.tcp {
			t.Errorf("%s: %d queries over TCP, want TCP %v", c.name, overTCP, c.tcp)
		}
		if got := srv.Count(c.qname); got != c.queries {
			t.Errorf("%s: the server got %d queries, want %d", c.name, got, c.queries)
		}
	}
	mu.Lock()
	if sawClientCookie == 0 {
		t.Errorf("the resolver sent no client cookie")
	}
	mu.Unlock()
	refused := n.metric(t, "sovdns_resolver_cookie_refused_total") - refused0
	unwanted := n.metric(t, "sovdns_resolver_unwanted_replies_total") - unwanted0
	t.Logf("cookie_refused grew %v, unwanted_replies grew %v; upstream queries %d (%d to the cookie server, %d over TCP)",
		refused, unwanted, n.upstream(), srv.Stats().Total, srv.Stats().TCP)
	if refused < 1 {
		t.Errorf("sovdns_resolver_cookie_refused_total grew by %v, want at least 1", refused)
	}
	if unwanted < 1 {
		t.Errorf("sovdns_resolver_unwanted_replies_total grew by %v, want at least 1", unwanted)
	}
	n.checkAlive(t)
}

// TestHostileZoneRateLimit: a flood of random names under one zone
// reaches its server at no more than zone_ratelimit a second; the excess
// gets SERVFAIL with an Extended DNS Error that says why.
func TestHostileZoneRateLimit(t *testing.T) {
	t.Parallel()
	const rate, queries, workers = 20, 200, 16
	n := newHostileNet(t, hostileOpts{hosts: []byte{90}, tld: "rl NS ns.rl\nns.rl A 127.0.0.90\n"})
	rl := n.serve(t, 90, hostile.Serve(n.zone(t, "rl.test.", "$ORIGIN rl.test.\n@ NS ns\nns A 127.0.0.90\n* A 192.0.2.90\n")))
	n.start(t, fmt.Sprintf("  zone_ratelimit: %d\n", rate))
	limited0 := n.metric(t, "sovdns_resolver_zone_ratelimited_total")

	type outcome struct {
		rcode   int
		limited bool // SERVFAIL with the rate limit's EDE
		err     error
	}
	results := make([]outcome, queries)
	jobs := make(chan int, queries)
	for i := range queries {
		jobs <- i
	}
	close(jobs)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			c := &dns.Client{Timeout: queryTimeout}
			for i := range jobs {
				if ctx.Err() != nil {
					results[i].err = ctx.Err()
					continue
				}
				r, _, err := c.ExchangeContext(ctx, rdQuery(fmt.Sprintf("r%d-%d.rl.test.", i, rand.Uint32()), dns.TypeA), n.res.dns)
				if err != nil {
					results[i].err = err
					continue
				}
				results[i].rcode = r.Rcode
				if r.Rcode == dns.RcodeServerFailure {
					if e, err := ede(r); err == nil && e.InfoCode == dns.ExtendedErrorCodeOther && strings.Contains(e.ExtraText, "upstream query rate limit") {
						results[i].limited = true
					}
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)

	var ok, limited, other int
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("query %d: %v", i, r.err)
		case r.rcode == dns.RcodeSuccess:
			ok++
		case r.limited:
			limited++
		default:
			other++
		}
	}
	// The server's view: queries per second of the clock (the limit's
	// windows). A query the resolver counted in one second can reach the
	// server in the next: between the count and the send, a socket is
	// opened and the goroutine may wait for a CPU, milliseconds under the
	// race detector with many questions at once, while the burst sends
	// several queries a millisecond. So what arrives in the first 100 ms
	// of a second may belong to the one before; the rest of a second holds
	// its own queries only, at most the rate. The run's total is bounded
	// too, below.
	perSecond, early := map[int64]int{}, map[int64]int{}
	received := 0
	for _, s := range rl.Log() {
		if dns.IsSubDomain("rl.test.", s.Name) && s.Name != "rl.test." {
			perSecond[s.At.Unix()]++
			if s.At.Sub(s.At.Truncate(time.Second)) < 100*time.Millisecond {
				early[s.At.Unix()]++
			}
			received++
		}
	}
	seconds := int(took/time.Second) + 2 // the seconds of the clock the run touched, at most
	limitedMetric := n.metric(t, "sovdns_resolver_zone_ratelimited_total") - limited0
	t.Logf("%d queries in %v: %d answered, %d rate-limited SERVFAIL, %d other; the zone's server got %d (by second %v); zone_ratelimited grew %v",
		queries, took.Round(time.Millisecond), ok, limited, other, received, perSecond, limitedMetric)
	for sec, c := range perSecond {
		if c-early[sec] > rate {
			t.Errorf("the zone's server got %d queries in second %d, %d of them after its first 100 ms; zone_ratelimit is %d",
				c, sec, c-early[sec], rate)
		}
	}
	if received > rate*seconds {
		t.Errorf("the zone's server got %d queries in %v, over %d a second", received, took, rate)
	}
	if limited < queries-rate*seconds {
		t.Errorf("%d rate-limited SERVFAILs, want at least %d", limited, queries-rate*seconds)
	}
	if ok < 1 {
		t.Error("no query was answered")
	}
	if limitedMetric < float64(limited) {
		t.Errorf("sovdns_resolver_zone_ratelimited_total grew by %v; %d questions were refused for it", limitedMetric, limited)
	}
	// The limit passes: the zone answers again.
	i := 0
	waitUntil(t, 5*time.Second, "a name of the rate-limited zone resolved again", func() bool {
		i++
		r := exchangeOnce(t, "udp", n.res.dns, rdQuery(fmt.Sprintf("again%d.rl.test.", i), dns.TypeA))
		return r.Rcode == dns.RcodeSuccess && slices.Equal(addrs(r), []string{"192.0.2.90"})
	}, func() string { return n.res.log.String() })
	n.checkAlive(t)
}

// TestHostileSourcePorts: the resolver's queries come from source ports
// and with IDs an off-path forger cannot predict: nearly all distinct,
// spread over the ephemeral range, not in sequence.
func TestHostileSourcePorts(t *testing.T) {
	t.Parallel()
	const queries, workers = 300, 8
	n := newHostileNet(t, hostileOpts{hosts: []byte{100}, tld: "ports NS ns.ports\nns.ports A 127.0.0.100\n"})
	srv := n.serve(t, 100, hostile.Serve(n.zone(t, "ports.test.", "$ORIGIN ports.test.\n@ NS ns\nns A 127.0.0.100\n* A 192.0.2.100\n")))
	n.start(t, "")

	jobs := make(chan int, queries)
	for i := range queries {
		jobs <- i
	}
	close(jobs)
	errs := make(chan error, queries)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			c := &dns.Client{Timeout: queryTimeout}
			for i := range jobs {
				r, _, err := c.ExchangeContext(t.Context(), rdQuery(fmt.Sprintf("p%d-%d.ports.test.", i, rand.Uint32()), dns.TypeA), n.res.dns)
				if err == nil && r.Rcode != dns.RcodeSuccess {
					err = fmt.Errorf("query %d: %s\n%v", i, dns.RcodeToString[r.Rcode], r)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		failed++
		t.Log(err)
	}
	if failed > 5 {
		t.Errorf("%d of %d queries failed", failed, queries)
	}

	var ports []int
	ids := map[uint16]bool{}
	for _, s := range srv.Log() {
		if !s.TCP && strings.HasPrefix(s.Name, "p") {
			ports = append(ports, int(s.From.Port()))
			ids[s.ID] = true
		}
	}
	if len(ports) < queries-5 {
		t.Fatalf("the server logged %d of the %d queries", len(ports), queries)
	}
	distinct := map[int]bool{}
	steps := 0
	for i, p := range ports {
		distinct[p] = true
		if i > 0 && p == ports[i-1]+1 {
			steps++
		}
	}
	lo, hi := slices.Min(ports), slices.Max(ports)
	t.Logf("%d queries: %d distinct IDs, %d distinct source ports in [%d, %d], %d steps of +1", len(ports), len(ids), len(distinct), lo, hi, steps)
	if len(ids) < queries-5 {
		t.Errorf("%d distinct IDs in %d queries, want at least %d", len(ids), len(ports), queries-5)
	}
	if len(distinct) < queries-20 {
		t.Errorf("%d distinct source ports in %d queries, want at least %d", len(distinct), len(ports), queries-20)
	}
	if hi-lo < 10000 {
		t.Errorf("source ports within [%d, %d], a range under 10000", lo, hi)
	}
	if steps > 5 {
		t.Errorf("%d consecutive queries from the next port up: sequential ports", steps)
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			elo, _ := strconv.Atoi(f[0])
			ehi, _ := strconv.Atoi(f[1])
			if lo < elo || hi > ehi {
				t.Errorf("source ports [%d, %d] outside the ephemeral range [%d, %d]", lo, hi, elo, ehi)
			}
		}
	}
	n.checkAlive(t)
}

// TestHostileDeadZoneFlood: a flood of questions for new names in a zone
// whose only server never answers does not starve the other zones. While
// 3,000 such questions arrive (1,500 a second, beyond max_zone_in_flight
// and close to max_in_flight), new names of a healthy zone are still
// resolved (at least 95 % of them within 2 s), and the dead server gets a
// few probes rather than a query per question (it is held down).
func TestHostileDeadZoneFlood(t *testing.T) {
	t.Parallel()
	const (
		flood     = 3000
		floodRate = 1500 // a second
		healthy   = 40   // questions for new healthy names, one per 75 flood questions
	)
	n := newHostileNet(t, hostileOpts{hosts: []byte{80, 81}, tld: `
dead        NS  ns.dead
ns.dead     A   127.0.0.80
healthy     NS  ns.healthy
ns.healthy  A   127.0.0.81
`})
	dead := n.serve(t, 80, func(context.Context, *hostile.Writer, *hostile.Query) {})
	hz := n.zone(t, "healthy.test.", "$ORIGIN healthy.test.\n@ NS ns\nns A 127.0.0.81\n* A 192.0.2.81\n")
	n.serve(t, 81, hostile.Serve(hz))
	n.start(t, "")
	// The resolver knows the way to both zones before the flood: what is
	// measured is the flood, not the first referrals.
	if r, _ := n.ask(t, "warm.healthy.test.", dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("warm.healthy.test.: %s", dns.RcodeToString[r.Rcode])
	}

	conn, err := net.Dial("udp", n.res.dns)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var answered atomic.Int64
	readDone := make(chan struct{})
	allAnswered := make(chan struct{})
	go func() { // the flood's answers, counted until the socket closes
		defer close(readDone)
		buf := make([]byte, 1500)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
			if answered.Add(1) == flood {
				close(allAnswered)
			}
		}
	}()
	floodDone := make(chan error, 1)
	var atHalf atomic.Int64 // queries the dead server had when half the flood was sent
	// progress gets a token each time another flood/healthy questions
	// went: the healthy questions are spread over the flood by it.
	progress := make(chan struct{}, healthy)
	go func() {
		tick := time.NewTicker(time.Second / floodRate * 10)
		defer tick.Stop()
		for i := 0; i < flood; {
			<-tick.C
			if i == flood/2 {
				atHalf.Store(int64(dead.Stats().Total))
			}
			for range 10 {
				wire, err := rdQuery(fmt.Sprintf("f%d.dead.test.", i), dns.TypeA).Pack()
				if err == nil {
					_, err = conn.Write(wire)
				}
				if err != nil {
					floodDone <- err
					close(progress)
					return
				}
				if i++; i%(flood/healthy) == 0 {
					progress <- struct{}{}
				}
			}
		}
		floodDone <- nil
	}()

	c := &dns.Client{Timeout: 2 * time.Second}
	ok := 0
	var slow []string
	for i := range healthy {
		if _, more := <-progress; !more {
			break // the flood failed: reported below
		}
		name := fmt.Sprintf("h%d.healthy.test.", i)
		start := time.Now()
		r, _, err := c.ExchangeContext(t.Context(), rdQuery(name, dns.TypeA), n.res.dns)
		switch {
		case err != nil:
			slow = append(slow, fmt.Sprintf("%s: %v", name, err))
		case r.Rcode != dns.RcodeSuccess || !slices.Equal(addrs(r), []string{"192.0.2.81"}):
			slow = append(slow, fmt.Sprintf("%s: %s %v after %v", name, dns.RcodeToString[r.Rcode], addrs(r), time.Since(start).Round(time.Millisecond)))
		default:
			ok++
		}
	}
	if err := <-floodDone; err != nil {
		t.Fatalf("flood: %v", err)
	}
	t.Logf("healthy names answered during the flood: %d of %d; not: %v", ok, healthy, slow)
	if ok*100 < healthy*95 {
		t.Errorf("healthy names answered during the flood: %d of %d, want at least 95%%", ok, healthy)
	}
	// The resolver answers each flood question (SERVFAIL, at once once the
	// server is held down) before its resolution timeout.
	select {
	case <-allAnswered:
	case <-time.After(resolutionTimeout + 2*time.Second):
	}
	conn.Close()
	<-readDone
	toDead, half := dead.Stats().Total, int(atHalf.Load())
	t.Logf("flood of %d questions: %d answered; %d queries reached the dead server, %d of them in the second half of the flood", flood, answered.Load(), toDead, toDead-half)
	if half == 0 {
		t.Fatal("the dead server got no query in the first half of the flood: the flood did not reach the resolver's iteration")
	}
	// Until its first timeouts the server is asked by the questions that
	// get a slot (max_zone_in_flight); then it is down, and probed once
	// every few seconds.
	if late := toDead - half; late > 10 {
		t.Errorf("%d queries reached the dead server in the second half of the flood (%d questions); a server that does not answer is to be held down", late, flood/2)
	}
	n.checkAlive(t)
}
