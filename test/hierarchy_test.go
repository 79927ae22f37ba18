package test

// A simulated DNS hierarchy on loopback for the resolver's end-to-end tests.
//
// Every authority is a real `sovdns serve` process with its own data
// directory, recursion disabled, listening on its own 127.0.0.0/8 address;
// all of them share one port, so a resolver configured with that
// upstream_port reaches each of them at the address its glue names. Two
// misbehaving servers are played in process on the same port: one that
// never answers and one that truncates every UDP answer.
//
// The addresses below are templates: each hierarchy started moves them,
// and the zone data naming them, into a /24 of loopback addresses of its
// own (testaddr.Block), so that hierarchies running at once never meet.
//
//	127.0.0.2   .               a.root-servers.test.
//	127.0.0.3   az.             ns1.nic.az.
//	127.0.0.4   com., net.      a.gtld.com.
//	127.0.0.5   gov.az.         ns1.gov.az.
//	127.0.0.6   example.com.,   ns1.example.com.,
//	            slow.com.       ns2.slow.com.
//	127.0.0.7   mfa.gov.az.,    ns.mfa-dns.com. (out of bailiwick for mfa.gov.az.)
//	            mfa-dns.com.
//	127.0.0.9   unrelated.org.  ns0.gov.az.: lame for gov.az. (REFUSED), listed first
//	127.0.0.10  (in process)    never answers: ns1.slow.com., ns1.dead.com.
//	127.0.0.11  (in process)    tc.com.: TC=1 over UDP, answers over TCP
//	127.0.0.12  (nothing)       ns2.dead.com.: no socket at all

import (
	"errors"
	"fmt"
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

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/testaddr"
)

// Addresses of the hierarchy's servers (see the table above).
const (
	ipRoot    = "127.0.0.2"
	ipAZ      = "127.0.0.3"
	ipGTLD    = "127.0.0.4"
	ipGovAZ   = "127.0.0.5"
	ipExample = "127.0.0.6"
	ipMFA     = "127.0.0.7"
	ipLame    = "127.0.0.9"
	ipSilent  = "127.0.0.10"
	ipTrunc   = "127.0.0.11"
	ipNobody  = "127.0.0.12"
)

// hierarchyIPs are the addresses that must all have the shared port free
// (templates, as above).
var hierarchyIPs = []string{ipRoot, ipAZ, ipGTLD, ipGovAZ, ipExample, ipMFA, ipLame, ipSilent, ipTrunc, ipNobody}

// authority is one sovdns authoritative server of the hierarchy.
type authority struct {
	ip    string
	zones []hierZone
}

// hierZone is a zone imported with --origin.
type hierZone struct {
	origin, text string
}

var hierarchyAuthorities = []authority{
	{ipRoot, []hierZone{{".", rootZone}}},
	{ipAZ, []hierZone{{"az.", azZone}}},
	{ipGTLD, []hierZone{{"com.", comZone}, {"net.", netZone}}},
	{ipGovAZ, []hierZone{{"gov.az.", govAZZone}}},
	{ipExample, []hierZone{{"example.com.", exampleComZone}, {"slow.com.", slowComZone}}},
	{ipMFA, []hierZone{{"mfa.gov.az.", mfaGovAZZone}, {"mfa-dns.com.", mfaDNSComZone}}},
	{ipLame, []hierZone{{"unrelated.org.", unrelatedOrgZone}}},
}

const rootZone = `$TTL 86400
.                     SOA  a.root-servers.test. nstld.root-servers.test. 2024060101 1800 900 604800 86400
.                     NS   a.root-servers.test.
a.root-servers.test.  A    127.0.0.2
az.                   NS   ns1.nic.az.
ns1.nic.az.           A    127.0.0.3
com.                  NS   a.gtld.com.
a.gtld.com.           A    127.0.0.4
net.                  NS   a.gtld.com.
`

// azZone delegates gov.az. to a lame server first (ns0, canonical order
// puts it first) and to the real one.
const azZone = `$ORIGIN az.
$TTL 3600
@        SOA  ns1.nic hostmaster.nic 2024060101 7200 900 1209600 300
@        NS   ns1.nic
ns1.nic  A    127.0.0.3
gov      NS   ns0.gov
gov      NS   ns1.gov
ns0.gov  A    127.0.0.9
ns1.gov  A    127.0.0.5
`

const comZone = `$ORIGIN com.
$TTL 3600
@            SOA  a.gtld hostmaster.gtld 2024060101 7200 900 1209600 300
@            NS   a.gtld
a.gtld       A    127.0.0.4
example      NS   ns1.example
ns1.example  A    127.0.0.6
mfa-dns      NS   ns.mfa-dns
ns.mfa-dns   A    127.0.0.7
slow         NS   ns1.slow
slow         NS   ns2.slow
ns1.slow     A    127.0.0.10
ns2.slow     A    127.0.0.6
tc           NS   ns.tc
ns.tc        A    127.0.0.11
dead         NS   ns1.dead
dead         NS   ns2.dead
ns1.dead     A    127.0.0.10
ns2.dead     A    127.0.0.12
`

// netZone is served by a.gtld.com., a name outside net.: the root's glue
// for it is sibling glue.
const netZone = `$ORIGIN net.
$TTL 3600
@            SOA  a.gtld.com. hostmaster.gtld.com. 2024060101 7200 900 1209600 300
@            NS   a.gtld.com.
www.example  A    192.0.2.40
`

const govAZZone = `$ORIGIN gov.az.
$TTL 3600
@           SOA    ns1 hostmaster 2024060101 7200 900 1209600 300
@           NS     ns1
@           MX     10 mail
ns1         A      127.0.0.5
www         A      192.0.2.10
www         AAAA   2001:db8::10
portal      CNAME  www
mail        A      192.0.2.25
e-services  CNAME  www.example.com.
*.apps      A      192.0.2.80
cache       A      192.0.2.70
mfa         NS     ns.mfa-dns.com.
`

const exampleComZone = `$ORIGIN example.com.
$TTL 3600
@    SOA  ns1 hostmaster 2024060101 7200 900 1209600 300
@    NS   ns1
ns1  A    127.0.0.6
www  A    192.0.2.20
`

// slowComZone names a server that never answers (ns1) beside a working one.
const slowComZone = `$ORIGIN slow.com.
$TTL 3600
@    SOA  ns2 hostmaster 2024060101 7200 900 1209600 300
@    NS   ns1
@    NS   ns2
ns1  A    127.0.0.10
ns2  A    127.0.0.6
www  A    192.0.2.50
`

const mfaGovAZZone = `$ORIGIN mfa.gov.az.
$TTL 3600
@    SOA  ns.mfa-dns.com. hostmaster 2024060101 7200 900 1209600 300
@    NS   ns.mfa-dns.com.
www  A    192.0.2.30
`

const mfaDNSComZone = `$ORIGIN mfa-dns.com.
$TTL 3600
@   SOA  ns hostmaster 2024060101 7200 900 1209600 300
@   NS   ns
ns  A    127.0.0.7
`

const unrelatedOrgZone = `$ORIGIN unrelated.org.
$TTL 3600
@   SOA  ns hostmaster 2024060101 7200 900 1209600 300
@   NS   ns
ns  A    127.0.0.9
`

// truncZone is what the in-process truncating server answers over TCP.
const truncZone = `$ORIGIN tc.com.
$TTL 3600
@       SOA  ns hostmaster 2024060101 7200 900 1209600 300
@       NS   ns
ns      A    127.0.0.11
www     A    192.0.2.60
`

// hierarchy is a running simulated hierarchy.
type hierarchy struct {
	block   testaddr.Block // where the template addresses are moved to
	port    int
	hints   string             // root hints file
	servers map[string]*server // the sovdns authorities by template address
	silent  *silentServer      // 127.0.0.10
	trunc   *truncServer       // 127.0.0.11
}

// ip is the hierarchy's address for the template address tmpl.
func (h *hierarchy) ip(tmpl string) string { return h.block.Rewrite(tmpl) }

// addr is the hierarchy's address for the template address tmpl, with the
// hierarchy's port.
func (h *hierarchy) addr(tmpl string) string {
	return net.JoinHostPort(h.ip(tmpl), strconv.Itoa(h.port))
}

// rewrite moves the template addresses in records (zone text) into the
// hierarchy's block.
func (h *hierarchy) rewrite(records []string) []string {
	out := make([]string, len(records))
	for i, r := range records {
		out[i] = h.block.Rewrite(r)
	}
	return out
}

// startHierarchy starts the whole hierarchy and writes its root hints.
// Everything stops on cleanup.
func startHierarchy(t *testing.T) *hierarchy {
	t.Helper()
	h := &hierarchy{block: testaddr.NewBlock(), servers: map[string]*server{}}
	h.port = sharedPort(t, h.block, hierarchyIPs)
	var err error
	if h.silent, err = startSilentServer(t, h.addr(ipSilent)); err != nil {
		t.Fatalf("silent server: %v", err)
	}
	if h.trunc, err = startTruncServer(t, h.addr(ipTrunc)); err != nil {
		t.Fatalf("truncating server: %v", err)
	}
	for i := range hierarchyAuthorities {
		a := &hierarchyAuthorities[i]
		dir := t.TempDir()
		for _, z := range a.zones {
			importZoneOrigin(t, dir, z.origin, h.block.Rewrite(z.text))
		}
		h.servers[a.ip] = startServer(t, serveOpts{
			dataDir: dir,
			config:  authorityConfig(h.addr(a.ip)),
			env:     fastExit(),
			args:    []string{"--metrics-listen", "127.0.0.1:0"},
		})
	}
	h.hints = filepath.Join(t.TempDir(), "root.hints")
	hints := ".                     3600000  NS  a.root-servers.test.\n" +
		"a.root-servers.test.  3600000  A   " + h.ip(ipRoot) + "\n"
	if err := os.WriteFile(h.hints, []byte(hints), 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

// authorityConfig is the configuration of a hierarchy authority: no demo
// zone, one address, and no recursion.
func authorityConfig(listen string) string {
	return fmt.Sprintf("demo_zone: false\nudp_sockets: 1\nlisten: [%q]\nresolver:\n  allow: []\n", listen)
}

// resolverConfig is the configuration of a resolver node iterating through
// h, answering recursive queries from the clients in allow (YAML list
// items).
func (h *hierarchy) resolverConfig(allow ...string) string {
	return fmt.Sprintf(`demo_zone: false
udp_sockets: 2
resolver:
  allow: [%s]
  root_hints: %q
  upstream_port: %d
  query_timeout: 300ms
  resolution_timeout: %s
  query_loopback: true
  dnssec:
    validation: false # the hierarchy is unsigned (validate_test.go signs its own)
`, strings.Join(allow, ", "), h.hints, h.port, resolutionTimeout)
}

// startResolver starts a resolver node on 127.0.0.1:0 that iterates
// through h, holding the zones given (imported with their origin, their
// template addresses moved into h's block).
func (h *hierarchy) startResolver(t *testing.T, allow []string, zones ...hierZone) *server {
	t.Helper()
	dir := t.TempDir()
	for _, z := range zones {
		importZoneOrigin(t, dir, z.origin, h.block.Rewrite(z.text))
	}
	return startServer(t, serveOpts{dataDir: dir, config: h.resolverConfig(allow...), env: fastExit()})
}

// importZoneOrigin imports text as the zone origin into dataDir.
func importZoneOrigin(t *testing.T, dataDir, origin, text string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "import.zone")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, fastExit(), "zone", "import", "--origin", origin, path, "--data-dir", dataDir)
	if r.code != 0 {
		var hint string
		if origin == "." && strings.Contains(r.stderr, "key required") {
			hint = "\n(the zone store cannot hold the root zone: the apex of . has an empty canonical key, which bbolt refuses)"
		}
		t.Fatalf("sovdns zone import --origin %s: exit %d\nstdout: %s\nstderr: %s%s", origin, r.code, r.stdout, r.stderr, hint)
	}
}

// fastExit is the environment that spares a process built with -race the
// race detector's one-second sleep at exit (atexit_sleep_ms), which would
// otherwise add a second to every import and every stop of the hierarchy's
// many processes. Races are still reported, with exit status 66.
func fastExit() []string {
	return []string{"GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")}
}

// sharedPort returns a port free for UDP and TCP on every address of
// block named by the templates ips (testaddr.Port).
func sharedPort(t *testing.T, block testaddr.Block, ips []string) int {
	t.Helper()
	addrs := make([]netip.Addr, len(ips))
	for i, ip := range ips {
		addrs[i] = netip.MustParseAddr(block.Rewrite(ip))
	}
	return int(testaddr.Port(t, addrs...))
}

// silentServer never answers: it reads and discards UDP datagrams, and
// accepts TCP connections and says nothing on them.
type silentServer struct {
	udp       net.PacketConn
	tcp       net.Listener
	datagrams atomic.Int64 // UDP datagrams received
	accepted  atomic.Int64 // TCP connections accepted

	mu     sync.Mutex
	qs     []string // "qname qtype" of the UDP queries received, the first maxSilentQs
	conns  []net.Conn
	closed bool
	wg     sync.WaitGroup
	once   sync.Once
}

func startSilentServer(t *testing.T, addr string) (*silentServer, error) {
	t.Helper()
	s := &silentServer{}
	var err error
	if s.udp, err = net.ListenPacket("udp", addr); err != nil {
		return nil, err
	}
	if s.tcp, err = net.Listen("tcp", addr); err != nil {
		s.udp.Close()
		return nil, err
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 65535)
		for {
			n, _, err := s.udp.ReadFrom(buf)
			if err != nil {
				return
			}
			s.datagrams.Add(1)
			var m dns.Msg
			if m.Unpack(buf[:n]) == nil && len(m.Question) == 1 {
				q := strings.ToLower(m.Question[0].Name) + " " + dns.Type(m.Question[0].Qtype).String()
				s.mu.Lock()
				if len(s.qs) < maxSilentQs {
					s.qs = append(s.qs, q)
				}
				s.mu.Unlock()
			}
		}
	}()
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.tcp.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			if s.closed {
				c.Close()
			} else {
				s.conns = append(s.conns, c)
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.close)
	return s, nil
}

// maxSilentQs bounds the questions a silent server records.
const maxSilentQs = 100000

// questions returns the questions received over UDP so far, "qname qtype"
// with the name lower-cased.
func (s *silentServer) questions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.qs)
}

// close closes the server's sockets (testaddr.Release: another process
// may bind the address at once) and waits for its goroutines.
func (s *silentServer) close() {
	s.once.Do(func() {
		testaddr.Release(func() {
			s.udp.Close()
			s.tcp.Close()
			s.mu.Lock()
			s.closed = true
			for _, c := range s.conns {
				c.Close()
			}
			s.mu.Unlock()
		})
		s.wg.Wait()
	})
}

// truncServer serves tc.com.: every UDP query gets an empty answer with TC
// set, TCP queries get the real answer.
type truncServer struct {
	udp, tcp   *dns.Server
	records    []dns.RR
	udpQueries atomic.Int64
	tcpQueries atomic.Int64
	once       sync.Once
}

func startTruncServer(t *testing.T, addr string) (*truncServer, error) {
	t.Helper()
	s := &truncServer{}
	zp := dns.NewZoneParser(strings.NewReader(truncZone), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		s.records = append(s.records, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("tc.com zone: %v", err)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return nil, err
	}
	s.udp = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serveUDP)}
	s.tcp = &dns.Server{Listener: ln, Handler: dns.HandlerFunc(s.serveTCP)}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
	}
	t.Cleanup(s.close)
	return s, nil
}

func (s *truncServer) close() {
	s.once.Do(func() {
		_ = s.udp.Shutdown()
		_ = s.tcp.Shutdown()
	})
}

func (s *truncServer) serveUDP(w dns.ResponseWriter, r *dns.Msg) {
	s.udpQueries.Add(1)
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.Truncated = true
	if r.IsEdns0() != nil {
		m.SetEdns0(1232, false)
	}
	_ = w.WriteMsg(m)
}

func (s *truncServer) serveTCP(w dns.ResponseWriter, r *dns.Msg) {
	s.tcpQueries.Add(1)
	_ = w.WriteMsg(s.answer(r))
}

// answer is a minimal authoritative answer from tc.com.'s records: data,
// NODATA or NXDOMAIN with the SOA, REFUSED outside the zone.
func (s *truncServer) answer(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	if r.IsEdns0() != nil {
		m.SetEdns0(1232, false)
	}
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := r.Question[0]
	if !dns.IsSubDomain("tc.com.", q.Name) {
		m.Rcode = dns.RcodeRefused
		return m
	}
	m.Authoritative = true
	exists := false
	var soa dns.RR
	for _, rr := range s.records {
		if rr.Header().Rrtype == dns.TypeSOA {
			soa = rr
		}
		if !strings.EqualFold(rr.Header().Name, q.Name) {
			continue
		}
		exists = true
		if rr.Header().Rrtype == q.Qtype || q.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, rr)
		}
	}
	if len(m.Answer) == 0 {
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
		neg := dns.Copy(soa)
		neg.Header().Ttl = soa.(*dns.SOA).Minttl
		m.Ns = append(m.Ns, neg)
	}
	return m
}

// ede returns the Extended DNS Error option of m.
func ede(m *dns.Msg) (*dns.EDNS0_EDE, error) {
	opt := m.IsEdns0()
	if opt == nil {
		return nil, errors.New("no OPT record")
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			return e, nil
		}
	}
	return nil, errors.New("no Extended DNS Error option")
}
