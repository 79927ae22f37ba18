package authoritative_test

import (
	"strings"
	"testing"

	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// Test zones use RFC 2606 names and RFC 5737/3849 addresses. Signatures are
// placeholders: nothing here validates them.

// parentZone is example.com: the main test zone.
const parentZone = `$ORIGIN example.com.
$TTL 3600
@          IN SOA   ns1.example.com. hostmaster.example.com. 2024010101 7200 900 1209600 300
@          IN RRSIG SOA 13 2 3600 20300101000000 20200101000000 11111 example.com. AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==
@          IN NS    ns1.example.com.
@          IN NS    ns2.example.net.
@          IN MX    10 mail.example.com.
@          IN MX    20 mx.sub.example.com.
@          IN MX    30 mail.example.net.
@          IN TXT   "v=spf1 -all"
ns1        IN A     192.0.2.1
ns1        IN AAAA  2001:db8::1
mail       IN A     192.0.2.25
mail       IN AAAA  2001:db8::25
www        IN A     192.0.2.80
www        IN AAAA  2001:db8::80
www        IN RRSIG A 13 3 3600 20300101000000 20200101000000 11111 example.com. AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==
a.b.ent    IN TXT   "below two empty non-terminals"
alias      IN CNAME www
tomx       IN CNAME example.com.
chain1     IN CNAME chain2
chain2     IN CNAME www
toother    IN CNAME www.example.net.
tomissing  IN CNAME nxd.example.net.
toout      IN CNAME www.example.org.
tochild    IN CNAME www.child.example.com.
todeleg    IN CNAME host.sub.example.com.
loop1      IN CNAME loop2
loop2      IN CNAME loop1
self       IN CNAME self
*.wc       IN CNAME www
*.wild     IN TXT   "wildcard data"
_sip._tcp  IN SRV   10 60 5060 sip.example.com.
_sip._tcp  IN SRV   20 60 5060 sip.sub.example.com.
_sip._tcp  IN SRV   30 60 5060 sip.example.net.
sip        IN A     192.0.2.60
; a delegation with in-bailiwick glue, sibling glue and an out-of-zone server
sub        IN NS    ns.sub.example.com.
sub        IN NS    ns.other.example.com.
sub        IN NS    ns.example.net.
ns.sub     IN A     192.0.2.53
ns.sub     IN AAAA  2001:db8::53
mx.sub     IN A     192.0.2.54
sip.sub    IN A     192.0.2.55
other      IN NS    ns.other.example.com.
ns.other   IN A     192.0.2.56
; a signed delegation
secure     IN NS    ns1.example.com.
secure     IN DS    12345 13 2 CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB
secure     IN RRSIG DS 13 3 3600 20300101000000 20200101000000 11111 example.com. AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==
; the delegation of child.example.com, which is held as well
child      IN NS    ns1.example.com.
child      IN DS    54321 13 2 CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB
; DNAME (RFC 6672)
dname      IN DNAME example.net.
dname      IN TXT   "owner data"
long       IN DNAME xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.example.net.
esc        IN DNAME a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.aaa.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.aaa.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.a\.aaa.example.net.
Spelled\045Dname IN DNAME example.net.
`

// childZone is child.example.com, delegated from parentZone.
const childZone = `$ORIGIN child.example.com.
$TTL 3600
@          IN SOA   ns1.example.com. hostmaster.example.com. 3 7200 900 1209600 300
@          IN NS    ns1.example.com.
@          IN DNSKEY 257 3 13 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==
www        IN A     203.0.113.80
`

// otherZone is example.net: a second held zone, with an SOA TTL below its
// MINIMUM so the negative TTL comes from the SOA TTL.
const otherZone = `$ORIGIN example.net.
@          60   IN SOA ns.example.net. hostmaster.example.net. 7 7200 900 1209600 600
@          3600 IN NS  ns.example.net.
ns         3600 IN A   198.51.100.53
www        3600 IN A   198.51.100.80
mail       3600 IN A   198.51.100.25
`

// rfc4592Zone is the example zone of RFC 4592 §2.2.1; the RFC leaves the
// SOA and SRV RDATA open.
const rfc4592Zone = `$ORIGIN example.
example.                 3600 IN  SOA   ns.example.com. hostmaster.example. 1 7200 900 1209600 300
example.                 3600     NS    ns.example.com.
example.                 3600     NS    ns.example.net.
*.example.               3600     TXT   "this is a wildcard"
*.example.               3600     MX    10 host1.example.
sub.*.example.           3600     TXT   "this is not a wildcard"
host1.example.           3600     A     192.0.2.1
_ssh._tcp.host1.example. 3600     SRV   0 0 22 host1.example.
_ssh._tcp.host2.example. 3600     SRV   0 0 22 host2.example.
subdel.example.          3600     NS    ns.example.com.
subdel.example.          3600     NS    ns.example.net.
`

// buildZone parses and builds zone text.
func buildZone(t testing.TB, text string) *zone.Zone {
	t.Helper()
	p, err := zonestore.Parse(strings.NewReader(text), "", "test.zone", nil)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	z, err := p.Build()
	if err != nil {
		t.Fatalf("build %s: %v", p.Origin, err)
	}
	return z
}

// testSets are the zone sets the golden cases run against.
func testSets(t testing.TB) map[string]*zone.Set {
	t.Helper()
	parent, child, other := buildZone(t, parentZone), buildZone(t, childZone), buildZone(t, otherZone)
	return map[string]*zone.Set{
		"main":      zone.NewSet(parent, child, other),
		"childonly": zone.NewSet(buildZone(t, childZone)),
		"rfc4592":   zone.NewSet(buildZone(t, rfc4592Zone)),
	}
}
