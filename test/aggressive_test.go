package test

// Aggressive use of the DNSSEC-validated cache (RFC 8198) end to end: a
// hierarchy signed with ldns and served by NSD on 127.0.0.83 (a template,
// moved into a /24 of the test's own, testaddr.Block, before the zones are
// signed), a sovdns
// resolver with its default configuration (aggressive_nsec on) and the
// test root's key as trust anchor.
//
//	.      signed (NSEC), DS for agg. and agg3.
//	agg.   signed with NSEC: b, m, y
//	agg3.  signed with NSEC3 (no opt-out, no extra iterations): b, m, y
//	short. signed with NSEC, SOA minimum 2 s (its NSEC records live 2 s): b, m, y
//
// One NXDOMAIN in each zone brings the records that cover a range; a
// different name never asked for in the same range is then answered
// NXDOMAIN (AD with DO, the proof and its RRSIGs) without any upstream
// query, and again once NSD is gone and its address drops every packet.
// Once the records have expired, such a name is answered from them only
// as a stale NXDOMAIN (EDE 19), when the resolution cannot be made.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/testaddr"
)

const ipAggressive = "127.0.0.83"

func TestAggressiveNSEC(t *testing.T) {
	t.Parallel()
	nsdBin := requireTool(t, "nsd", "/usr/sbin/nsd")
	o := &outageNet{block: testaddr.NewBlock(), nsdBin: nsdBin}
	o.port = sharedPort(t, o.block, []string{ipAggressive})
	ip := o.block.Rewrite(ipAggressive) // in the zones before they are signed
	kit := &ldnsKit{t: t, dir: t.TempDir(),
		keygen: requireTool(t, "ldns-keygen"), signzone: requireTool(t, "ldns-signzone")}

	head := func(zone string) string {
		minimum := 300
		if zone == "short." {
			minimum = 2
		}
		return fmt.Sprintf("$TTL 300\n%s SOA ns.%s hostmaster.%s 1 3600 900 604800 %d\n%s NS ns.%s\nns.%s A %s\n",
			zone, zone, zone, minimum, zone, zone, zone, ip)
	}
	body := "b.%[1]s A 192.0.2.1\nm.%[1]s A 192.0.2.2\ny.%[1]s A 192.0.2.3\n"
	zones := map[string]string{}
	signed := func(zone string, flags []string) *dns.DNSKEY {
		kb, kr := kit.key(zone, true)
		zb, _ := kit.key(zone, false)
		zones[zone] = kit.sign(zone, head(zone)+fmt.Sprintf(body, zone), flags, kb, zb)
		return kr
	}
	aggKey := signed("agg.", nil)
	agg3Key := signed("agg3.", []string{"-n", "-t", "0"})
	shortKey := signed("short.", nil)
	rb, root := kit.key(".", true)
	zb, _ := kit.key(".", false)
	zones["."] = kit.sign(".", "$TTL 300\n. SOA a.root.test. hostmaster.root.test. 1 3600 900 604800 300\n"+
		". NS a.root.test.\na.root.test. A "+ip+"\n"+
		"agg. NS ns.agg.\nns.agg. A "+ip+"\n"+dsLine(aggKey)+
		"agg3. NS ns.agg3.\nns.agg3. A "+ip+"\n"+dsLine(agg3Key)+
		"short. NS ns.short.\nns.short. A "+ip+"\n"+dsLine(shortKey), nil, rb, zb)

	// NSEC3: names whose hashes fall in the span of the one asked first.
	var span *dns.NSEC3
	for _, rr := range parseText(t, zones["agg3."]) {
		if n, ok := rr.(*dns.NSEC3); ok && n.Cover("n0.agg3.") {
			span = n
		}
	}
	if span == nil {
		t.Fatal("no NSEC3 covers n0.agg3.")
	}
	var inSpan []string
	for i := 0; i < 5000 && len(inSpan) < 2; i++ {
		if name := fmt.Sprintf("q%d.agg3.", i); span.Cover(name) {
			inSpan = append(inSpan, name)
		}
	}
	if len(inSpan) < 2 {
		t.Fatal("no names in the span of n0.agg3.")
	}

	// NSD serves every zone on one address.
	addr := o.addr(ipAggressive)
	var zconf strings.Builder
	files := map[string]string{}
	i := 0
	for origin, text := range zones {
		file := fmt.Sprintf("z%d.zone", i)
		i++
		files[file] = text
		fmt.Fprintf(&zconf, "zone:\n    name: %q\n    zonefile: %q\n", origin, file)
	}
	nsd := o.startNSD(t, ipAggressive, "agg.", files, zconf.String())

	hints := writeTemp(t, "root.hints", ". 3600000 NS a.root.test.\na.root.test. 3600000 A "+ip+"\n")
	res := startServer(t, serveOpts{env: fastExit(), config: fmt.Sprintf(`demo_zone: false
udp_sockets: 1
resolver:
  allow: [127.0.0.1/32]
  root_hints: %q
  upstream_port: %d
  query_timeout: 300ms
  resolution_timeout: %s
  query_loopback: true
  dnssec:
    builtin_root_anchors: false
    trust_anchors: [%q]
`, hints, o.port, resolutionTimeout, root.ToDS(dns.SHA256).String())})

	upstream := func() float64 { return metricSum(t, res, "sovdns_resolver_upstream_queries_total", nil) }
	synthesised := func(proof string) float64 {
		return metricSum(t, res, "sovdns_resolver_aggressive_answers_total", map[string]string{"rcode": "NXDOMAIN", "proof": proof})
	}
	type check struct {
		qname string
		do    bool
		proof uint16 // NSEC or NSEC3
	}
	ask := func(t *testing.T, c check) (*dns.Msg, time.Duration) {
		t.Helper()
		start := time.Now()
		r := exchange(t, "udp", res.dns, vq(c.qname, dns.TypeA, c.do, false, false))
		elapsed := time.Since(start)
		if r.Rcode != dns.RcodeNameError || r.AuthenticatedData != c.do {
			t.Fatalf("%s: rcode %s AD %v, want NXDOMAIN AD %v\n%v", c.qname, dns.RcodeToString[r.Rcode], r.AuthenticatedData, c.do, r)
		}
		if got := hasType(r.Ns, c.proof) && hasType(r.Ns, dns.TypeRRSIG) && hasType(r.Ns, dns.TypeSOA); got != c.do {
			t.Errorf("%s: %s proof with RRSIGs: %v, want %v\n%v", c.qname, dns.Type(c.proof), got, c.do, r)
		}
		for _, rr := range r.Ns {
			if rr.Header().Ttl > 300 {
				t.Errorf("%s: TTL above the SOA minimum: %v", c.qname, rr)
			}
		}
		if e, err := ede(r); err == nil {
			t.Errorf("%s: EDE %d %q", c.qname, e.InfoCode, e.ExtraText)
		}
		return r, elapsed
	}

	// One NXDOMAIN in each zone, from NSD.
	ask(t, check{"c.agg.", true, dns.TypeNSEC})
	ask(t, check{"n0.agg3.", true, dns.TypeNSEC3})
	ask(t, check{"c.short.", true, dns.TypeNSEC})
	if synthesised("nsec")+synthesised("nsec3") != 0 {
		t.Fatal("answers synthesised before any range was known")
	}

	t.Run("known range", func(t *testing.T) {
		before := upstream()
		_, d1 := ask(t, check{"d.agg.", true, dns.TypeNSEC})
		_, d2 := ask(t, check{"e.agg.", false, dns.TypeNSEC})
		_, d3 := ask(t, check{inSpan[0], true, dns.TypeNSEC3})
		if got := upstream() - before; got != 0 {
			t.Errorf("%v upstream queries for names in known ranges", got)
		}
		if synthesised("nsec") != 2 || synthesised("nsec3") != 1 {
			t.Errorf("synthesised: %v nsec, %v nsec3; want 2 and 1", synthesised("nsec"), synthesised("nsec3"))
		}
		t.Logf("synthesised in %v, %v, %v", d1, d2, d3)
	})

	t.Run("hierarchy cut", func(t *testing.T) {
		nsd.stop()
		hole, err := startSilentServer(t, addr)
		if err != nil {
			t.Fatalf("black hole on %s: %v", addr, err)
		}
		before := upstream()
		for _, c := range []check{{"f.agg.", true, dns.TypeNSEC}, {"g.agg.", false, dns.TypeNSEC}, {inSpan[1], true, dns.TypeNSEC3}} {
			_, d := ask(t, c)
			if d > 250*time.Millisecond {
				t.Errorf("%s answered after %v", c.qname, d)
			}
			t.Logf("%s answered in %v during the cut", c.qname, d)
		}
		if n := hole.datagrams.Load() + hole.accepted.Load(); n != 0 || upstream() != before {
			t.Errorf("%d packets reached the cut servers, %v upstream queries", n, upstream()-before)
		}
		if synthesised("nsec") != 4 || synthesised("nsec3") != 2 {
			t.Errorf("synthesised: %v nsec, %v nsec3; want 4 and 2", synthesised("nsec"), synthesised("nsec3"))
		}
		// A name outside every known range is not invented.
		r := exchange(t, "udp", res.dns, vq("z.agg.", dns.TypeA, true, false, false))
		if r.Rcode == dns.RcodeNameError {
			t.Errorf("z.agg.: NXDOMAIN without a proof held\n%v", r)
		}
	})

	t.Run("expired records during the cut", func(t *testing.T) {
		// Fresh until short.'s NSEC records expire (2 s), then stale: the
		// resolver tries upstream and, after its client timeout, answers
		// from the expired records with EDE 19. Each question is a new
		// name in the range b.short. to m.short.
		start := time.Now()
		for i := 0; ; i++ {
			if i >= 100 || time.Since(start) > 20*time.Second {
				t.Fatalf("no stale NXDOMAIN after %d questions, %v", i, time.Since(start))
			}
			r := exchange(t, "udp", res.dns, vq(fmt.Sprintf("d%d.short.", i), dns.TypeA, true, false, false))
			if r.Rcode != dns.RcodeNameError || !r.AuthenticatedData || !hasType(r.Ns, dns.TypeNSEC) {
				t.Fatalf("d%d.short.: rcode %s AD %v\n%v", i, dns.RcodeToString[r.Rcode], r.AuthenticatedData, r)
			}
			codes := edeCodes(r)
			if len(codes) == 0 {
				time.Sleep(100 * time.Millisecond) // fresh: the records have not expired yet
				continue
			}
			if len(codes) != 1 || codes[0] != dns.ExtendedErrorCodeStaleNXDOMAINAnswer {
				t.Fatalf("d%d.short.: EDE %v, want 19 alone\n%v", i, codes, r)
			}
			for _, rr := range r.Ns {
				if rr.Header().Ttl != 30 {
					t.Errorf("stale TTL %d, want the stale_ttl 30: %v", rr.Header().Ttl, rr)
				}
			}
			t.Logf("stale NXDOMAIN for d%d.short. %v after the first question", i, time.Since(start).Round(time.Millisecond))
			break
		}
		if v := metricSum(t, res, "sovdns_resolver_stale_answers_total", nil); v < 1 {
			t.Errorf("%v stale answers counted", v)
		}
	})
	if v := metricSum(t, res, "sovdns_resolver_aggressive_nsec_records", nil); v < 3 {
		t.Errorf("%v NSEC and NSEC3 records held", v)
	}
}
