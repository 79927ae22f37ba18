package test

// DNSSEC validation end to end: a hierarchy of zones signed by an
// independent tool (ldns-signzone, keys from ldns-keygen) and served by NSD
// on an address of its own (ipSigned), and sovdns resolvers validating it with a trust anchor for
// the test root, a negative trust anchor, or only a pinned anchor for
// gov.az.
//
//	.              signed, DS for az.
//	az.            signed; delegates:
//	  gov.az.        signed (NSEC), DS: secure, with a wildcard and a CNAME
//	  insecure.az.   unsigned, no DS: insecure
//	  nods.az.       signed, but no DS in az.: insecure, not bogus
//	  wrongds.az.    signed, the DS matches another key: bogus (EDE 9)
//	  expired.az.    signed, every signature expired: bogus (EDE 7)
//	  wrongkey.az.   signed, www's RRSIG by a key not in the DNSKEY RRset: bogus
//	  n3.az.         NSEC3 with opt-out, delegating the unsigned unsig.n3.az.
//	  brokenn3.az.   NSEC3, the record covering the apex wildcard removed: bogus (EDE 12)

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/testaddr"
)

// ipSigned is NSD's address for the signed hierarchy: a loopback address
// of this test process's own (testaddr), written into the signed zones.
var ipSigned = testaddr.IP().String()

// ldnsKit signs zones with ldns in a directory.
type ldnsKit struct {
	t                *testing.T
	dir              string
	keygen, signzone string
}

// key makes an ECDSA P-256 key for zone with ldns-keygen (a KSK with ksk)
// and returns its base name and DNSKEY record.
func (k *ldnsKit) key(zone string, ksk bool) (string, *dns.DNSKEY) {
	k.t.Helper()
	args := []string{"-a", "ECDSAP256SHA256"}
	if ksk {
		args = append(args, "-k")
	}
	out := k.run(k.keygen, append(args, zone)...)
	base := strings.TrimSpace(out)
	text, err := os.ReadFile(filepath.Join(k.dir, base+".key"))
	if err != nil {
		k.t.Fatal(err)
	}
	rr, err := dns.NewRR(string(text))
	if err != nil {
		k.t.Fatalf("%s.key: %v", base, err)
	}
	return base, rr.(*dns.DNSKEY)
}

func (k *ldnsKit) run(bin string, args ...string) string {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(k.t.Context(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = k.dir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		k.t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// sign writes text as zone's master file and signs it with ldns-signzone
// (flags before the file, then the keys); it returns the signed text.
func (k *ldnsKit) sign(zone, text string, flags []string, keys ...string) string {
	k.t.Helper()
	in := filepath.Join(k.dir, zone+"zone")
	if err := os.WriteFile(in, []byte(text), 0o600); err != nil {
		k.t.Fatal(err)
	}
	out := in + ".signed"
	args := append(append([]string{"-o", zone, "-f", out}, flags...), in)
	k.run(k.signzone, append(args, keys...)...)
	signed, err := os.ReadFile(out)
	if err != nil {
		k.t.Fatal(err)
	}
	return string(signed)
}

func zoneHead(zone string) string {
	return fmt.Sprintf("$TTL 300\n%s SOA ns.%s hostmaster.%s 1 3600 900 604800 300\n%s NS ns.%s\nns.%s A %s\n",
		zone, zone, zone, zone, zone, zone, ipSigned)
}

func dsLine(k *dns.DNSKEY) string { return k.ToDS(dns.SHA256).String() + "\n" }

// signedHierarchy signs the zones and returns them by origin, with the DS
// of the root's and gov.az.'s key-signing keys (the trust anchors).
func signedHierarchy(t *testing.T, kit *ldnsKit) (zones map[string]string, rootDS, govDS string) {
	zones = map[string]string{}
	signed := func(zone, body string, flags []string) *dns.DNSKEY {
		kb, kr := kit.key(zone, true)
		zb, _ := kit.key(zone, false)
		zones[zone] = kit.sign(zone, zoneHead(zone)+body, flags, kb, zb)
		return kr
	}
	gov := signed("gov.az.", "www.gov.az. A 192.0.2.10\n*.apps.gov.az. A 192.0.2.80\nportal.gov.az. CNAME www.gov.az.\n", nil)
	zones["insecure.az."] = zoneHead("insecure.az.") + "www.insecure.az. A 192.0.2.40\n"
	signed("nods.az.", "www.nods.az. A 192.0.2.41\n", nil)
	signed("wrongds.az.", "www.wrongds.az. A 192.0.2.42\n", nil)
	_, otherKey := kit.key("wrongds.az.", true)
	expired := signed("expired.az.", "www.expired.az. A 192.0.2.43\n", []string{"-i", "20200101", "-e", "20200201"})

	// wrongkey.az.: www's RRSIG comes from a second signing with another
	// zone-signing key, which the served DNSKEY RRset lacks.
	wkb, wk := kit.key("wrongkey.az.", true)
	wzb, _ := kit.key("wrongkey.az.", false)
	w3b, _ := kit.key("wrongkey.az.", false)
	wbody := zoneHead("wrongkey.az.") + "www.wrongkey.az. A 192.0.2.44\n"
	good := kit.sign("wrongkey.az.", wbody, nil, wkb, wzb)
	other := kit.sign("wrongkey.az.", wbody, []string{"-d"}, wkb, w3b)
	zones["wrongkey.az."] = swapSig(t, good, other, "www.wrongkey.az.", dns.TypeA)

	n3 := signed("n3.az.", "www.n3.az. A 192.0.2.45\nunsig.n3.az. NS ns.unsig.n3.az.\nns.unsig.n3.az. A "+ipSigned+"\n",
		[]string{"-n", "-p", "-t", "0"})
	zones["unsig.n3.az."] = zoneHead("unsig.n3.az.") + "www.unsig.n3.az. A 192.0.2.46\n"
	broken := signed("brokenn3.az.", "www.brokenn3.az. A 192.0.2.47\n", []string{"-n", "-t", "0"})
	zones["brokenn3.az."] = dropNSEC3Covering(t, zones["brokenn3.az."], "*.brokenn3.az.")

	var az strings.Builder
	az.WriteString("gov.az. NS ns.gov.az.\n" + dsLine(gov))
	az.WriteString("insecure.az. NS ns.insecure.az.\nnods.az. NS ns.nods.az.\n")
	az.WriteString("wrongds.az. NS ns.wrongds.az.\n" + dsLine(otherKey))
	az.WriteString("expired.az. NS ns.expired.az.\n" + dsLine(expired))
	az.WriteString("wrongkey.az. NS ns.wrongkey.az.\n" + dsLine(wk))
	az.WriteString("n3.az. NS ns.n3.az.\n" + dsLine(n3))
	az.WriteString("brokenn3.az. NS ns.brokenn3.az.\n" + dsLine(broken))
	for _, c := range []string{"gov", "insecure", "nods", "wrongds", "expired", "wrongkey", "n3", "brokenn3"} {
		fmt.Fprintf(&az, "ns.%s.az. A %s\n", c, ipSigned)
	}
	azKey := signed("az.", az.String(), nil)

	rb, root := kit.key(".", true)
	zb, _ := kit.key(".", false)
	zones["."] = kit.sign(".", "$TTL 300\n. SOA a.root.test. hostmaster.root.test. 1 3600 900 604800 300\n"+
		". NS a.root.test.\na.root.test. A "+ipSigned+"\naz. NS ns.az.\nns.az. A "+ipSigned+"\n"+dsLine(azKey), nil, rb, zb)
	return zones, root.ToDS(dns.SHA256).String(), gov.ToDS(dns.SHA256).String()
}

// swapSig returns zone text good with the RRSIG over (owner, t) taken from
// zone text other.
func swapSig(t *testing.T, good, other, owner string, typ uint16) string {
	t.Helper()
	isSig := func(rr dns.RR) bool {
		s, ok := rr.(*dns.RRSIG)
		return ok && strings.EqualFold(s.Hdr.Name, owner) && s.TypeCovered == typ
	}
	var b strings.Builder
	for _, rr := range parseText(t, good) {
		if !isSig(rr) {
			b.WriteString(rr.String() + "\n")
		}
	}
	for _, rr := range parseText(t, other) {
		if isSig(rr) {
			b.WriteString(rr.String() + "\n")
		}
	}
	return b.String()
}

// dropNSEC3Covering returns zone text without the NSEC3 record (and its
// RRSIG) that covers name.
func dropNSEC3Covering(t *testing.T, text, name string) string {
	t.Helper()
	rrs := parseText(t, text)
	drop := ""
	for _, rr := range rrs {
		if n, ok := rr.(*dns.NSEC3); ok && n.Cover(name) {
			drop = strings.ToLower(n.Hdr.Name)
		}
	}
	if drop == "" {
		t.Fatalf("no NSEC3 covers %s", name)
	}
	var b strings.Builder
	for _, rr := range rrs {
		if strings.ToLower(rr.Header().Name) == drop {
			continue
		}
		b.WriteString(rr.String() + "\n")
	}
	return b.String()
}

func parseText(t *testing.T, text string) []dns.RR {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), "", "")
	var out []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out = append(out, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// startSignedNSD serves zones with NSD on ipSigned and returns its port.
func startSignedNSD(t *testing.T, nsdBin string, zones map[string]string) int {
	t.Helper()
	dir := t.TempDir()
	var zconf strings.Builder
	i := 0
	for origin, text := range zones {
		file := fmt.Sprintf("z%d.zone", i)
		i++
		if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&zconf, "zone:\n    name: %q\n    zonefile: %q\n", origin, file)
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr(ipSigned), testaddr.Port(t, netip.MustParseAddr(ipSigned)))
	confPath := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(confPath, []byte(nsdConf(addr.String(), dir, zconf.String())), 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, log := runNSD(t, nsdBin, confPath, addr.String(), "gov.az."); !ok {
		t.Fatalf("NSD did not start:\n%s", log)
	}
	return int(addr.Port())
}

// validatingResolver starts a sovdns resolver iterating from NSD's root
// with the resolver.dnssec section given (YAML, indented four spaces).
func validatingResolver(t *testing.T, hints string, port int, dnssecYAML string) *server {
	t.Helper()
	return startServer(t, serveOpts{env: fastExit(), config: fmt.Sprintf(`demo_zone: false
udp_sockets: 1
resolver:
  allow: [127.0.0.1/32]
  root_hints: %q
  upstream_port: %d
  query_timeout: 500ms
  resolution_timeout: %s
  query_loopback: true
  dnssec:
    builtin_root_anchors: false
%s`, hints, port, resolutionTimeout, dnssecYAML)})
}

// vq is a recursive query with EDNS, DO, AD and CD as given.
func vq(name string, qtype uint16, do, ad, cd bool) *dns.Msg {
	m := newQuery(name, qtype)
	m.RecursionDesired = true
	m.AuthenticatedData = ad
	m.CheckingDisabled = cd
	m.SetEdns0(1232, do)
	return m
}

func hasType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

func TestDNSSECValidation(t *testing.T) {
	t.Parallel()
	nsdBin := requireTool(t, "nsd", "/usr/sbin/nsd")
	kit := &ldnsKit{t: t, dir: t.TempDir(),
		keygen: requireTool(t, "ldns-keygen"), signzone: requireTool(t, "ldns-signzone")}
	zones, rootDS, govDS := signedHierarchy(t, kit)
	port := startSignedNSD(t, nsdBin, zones)
	hints := filepath.Join(t.TempDir(), "root.hints")
	if err := os.WriteFile(hints, []byte(". 3600000 NS a.root.test.\na.root.test. 3600000 A "+ipSigned+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := validatingResolver(t, hints, port, fmt.Sprintf("    trust_anchors: [%q]\n", rootDS))

	type check struct {
		name       string
		qname      string
		qtype      uint16
		do, ad, cd bool
		rcode      int
		wantAD     bool
		sigs       bool   // RRSIGs in the answer
		proof      bool   // NSEC or NSEC3 in authority
		ede        uint16 // 0: none expected
	}
	run := func(t *testing.T, addr string, checks []check) {
		t.Helper()
		for _, c := range checks {
			t.Run(c.name, func(t *testing.T) {
				resp := exchange(t, "udp", addr, vq(c.qname, c.qtype, c.do, c.ad, c.cd))
				if resp.Rcode != c.rcode || resp.AuthenticatedData != c.wantAD {
					t.Fatalf("rcode %s AD %v, want %s AD %v\n%v", dns.RcodeToString[resp.Rcode], resp.AuthenticatedData,
						dns.RcodeToString[c.rcode], c.wantAD, resp)
				}
				if got := hasType(resp.Answer, dns.TypeRRSIG); got != c.sigs {
					t.Errorf("RRSIGs in the answer: %v, want %v\n%v", got, c.sigs, resp)
				}
				if got := hasType(resp.Ns, dns.TypeNSEC) || hasType(resp.Ns, dns.TypeNSEC3); got != c.proof {
					t.Errorf("NSEC/NSEC3 in authority: %v, want %v\n%v", got, c.proof, resp)
				}
				e, err := ede(resp)
				switch {
				case c.ede == 0 && err == nil:
					t.Errorf("unexpected EDE %d %q", e.InfoCode, e.ExtraText)
				case c.ede != 0 && err != nil:
					t.Errorf("no EDE, want %d\n%v", c.ede, resp)
				case c.ede != 0 && e.InfoCode != c.ede:
					t.Errorf("EDE %d %q, want %d", e.InfoCode, e.ExtraText, c.ede)
				}
				if c.rcode == dns.RcodeServerFailure && len(resp.Answer) > 0 {
					t.Errorf("SERVFAIL with data: %v", resp.Answer)
				}
			})
		}
	}
	run(t, r.dns, []check{
		{name: "secure with DO", qname: "www.gov.az.", qtype: dns.TypeA, do: true, wantAD: true, sigs: true},
		{name: "secure without DO", qname: "www.gov.az.", qtype: dns.TypeA},
		{name: "secure with AD only", qname: "www.gov.az.", qtype: dns.TypeA, ad: true, wantAD: true},
		{name: "secure CNAME chain", qname: "portal.gov.az.", qtype: dns.TypeA, do: true, wantAD: true, sigs: true},
		{name: "secure wildcard", qname: "x.apps.gov.az.", qtype: dns.TypeA, do: true, wantAD: true, sigs: true, proof: true},
		{name: "secure NXDOMAIN", qname: "nope.gov.az.", qtype: dns.TypeA, do: true, rcode: dns.RcodeNameError, wantAD: true, proof: true},
		{name: "secure NXDOMAIN without DO", qname: "nope.gov.az.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "secure NODATA", qname: "www.gov.az.", qtype: dns.TypeTXT, do: true, wantAD: true, proof: true},
		{name: "secure DNSKEY", qname: "gov.az.", qtype: dns.TypeDNSKEY, do: true, wantAD: true, sigs: true},
		{name: "unsigned child", qname: "www.insecure.az.", qtype: dns.TypeA, do: true},
		{name: "signed child without DS", qname: "www.nods.az.", qtype: dns.TypeA, do: true, sigs: true},
		{name: "DS mismatch", qname: "www.wrongds.az.", qtype: dns.TypeA, do: true, rcode: dns.RcodeServerFailure, ede: dns.ExtendedErrorCodeDNSKEYMissing},
		{name: "DS mismatch with CD", qname: "www.wrongds.az.", qtype: dns.TypeA, do: true, cd: true, sigs: true},
		{name: "expired signatures", qname: "www.expired.az.", qtype: dns.TypeA, do: true, rcode: dns.RcodeServerFailure, ede: dns.ExtendedErrorCodeSignatureExpired},
		{name: "signature by a wrong key", qname: "www.wrongkey.az.", qtype: dns.TypeA, do: true, rcode: dns.RcodeServerFailure, ede: dns.ExtendedErrorCodeDNSKEYMissing},
		{name: "nsec3 secure", qname: "www.n3.az.", qtype: dns.TypeA, do: true, wantAD: true, sigs: true},
		{name: "nsec3 opt-out unsigned delegation", qname: "www.unsig.n3.az.", qtype: dns.TypeA, do: true},
		{name: "nsec3 broken proof", qname: "nope.brokenn3.az.", qtype: dns.TypeA, do: true, rcode: dns.RcodeServerFailure, ede: dns.ExtendedErrorCodeNSECMissing},
	})

	body := scrape(t, r.metrics)
	samples := parseSamples(t, body)
	if v, ok := find(samples, "sovdns_resolver_validations_total", map[string]string{"result": "secure"}); !ok || v < 5 {
		t.Errorf("secure validations %v (%v)", v, ok)
	}
	if v, ok := find(samples, "sovdns_resolver_bogus_total", map[string]string{"reason": "signature_expired"}); !ok || v < 1 {
		t.Errorf("bogus signature_expired %v (%v)", v, ok)
	}

	t.Run("trust anchor state", func(t *testing.T) {
		// RFC 5011: the anchored zone is listed in status, its state kept
		// in the data directory.
		out := mustCLI(t, nil, "status", "--data-dir", r.dataDir).stdout
		if !strings.Contains(out, "trust anchor .:") {
			t.Errorf("status does not list the root's trust anchor state:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(r.dataDir, "trust-anchors.db")); err != nil {
			t.Errorf("no trust anchor state file: %v", err)
		}
	})
	t.Run("negative trust anchor", func(t *testing.T) {
		nta := validatingResolver(t, hints, port, fmt.Sprintf("    trust_anchors: [%q]\n    negative_trust_anchors: [expired.az]\n", rootDS))
		run(t, nta.dns, []check{
			{name: "NTA", qname: "www.expired.az.", qtype: dns.TypeA, do: true, sigs: true},
			{name: "beside the NTA", qname: "www.gov.az.", qtype: dns.TypeA, do: true, wantAD: true, sigs: true},
		})
	})
	t.Run("pinned anchor", func(t *testing.T) {
		pinned := validatingResolver(t, hints, port, fmt.Sprintf("    trust_anchors: [%q]\n", govDS))
		run(t, pinned.dns, []check{
			{name: "under the anchor", qname: "www.gov.az.", qtype: dns.TypeA, do: true, wantAD: true, sigs: true},
			{name: "outside every anchor", qname: "www.expired.az.", qtype: dns.TypeA, do: true, sigs: true},
		})
	})
	t.Run("validation off", func(t *testing.T) {
		off := validatingResolver(t, hints, port, "    validation: false\n")
		run(t, off.dns, []check{
			{name: "bogus served", qname: "www.expired.az.", qtype: dns.TypeA, do: true, sigs: true},
		})
	})
}
