package audit

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
)

// world is the national namespace (az.) the fake resolver answers for, as
// zone text per origin. Foreign names are not held: the fake answers them
// SERVFAIL, and the tests check that the audit never asks about them.
var world = map[string]string{
	"az.": `
@       SOA ns1 hostmaster 1 7200 900 1209600 300
        NS  ns1
ns1     A   192.0.2.1
`,
	// Served nationally; chains that stay national, and ones that leave.
	"good.az.": `
@       SOA ns1 hostmaster 1 7200 900 1209600 300
        NS  ns1
ns1     A   192.0.2.10
www     A   192.0.2.11
mx      A   192.0.2.12
alias   CNAME www
web     CNAME x.akamai.net.
a1      CNAME a2
a2      CNAME a3
a3      CNAME a4
a4      CNAME a5
a5      A   192.0.2.13
l1      CNAME l2
l2      CNAME l1
ns      A   192.0.2.14
`,
	// A national name served from abroad.
	"dept.az.": `
@       SOA ns1.cloudflare.com. hostmaster 1 7200 900 1209600 300
        NS  ns2.cloudflare.com.
        NS  ns1.cloudflare.com.
www     A   192.0.2.20
ns      A   192.0.2.21
`,
	// Served by a national name server whose own zone is served from abroad.
	"chain.az.": `
@       SOA ns.dept.az. hostmaster 1 7200 900 1209600 300
        NS  ns.dept.az.
www     A   192.0.2.30
ns      A   192.0.2.31
`,
	// Zones served by each other's name servers: a cycle that stays national.
	"ring1.az.": `
@       SOA ns.ring2.az. hostmaster 1 7200 900 1209600 300
        NS  ns.ring2.az.
ns      A   192.0.2.41
`,
	"ring2.az.": `
@       SOA ns.ring1.az. hostmaster 1 7200 900 1209600 300
        NS  ns.ring1.az.
ns      A   192.0.2.42
www     A   192.0.2.43
`,
	// A cycle one of whose zones also has a foreign server.
	"ring3.az.": `
@       SOA ns.ring4.az. hostmaster 1 7200 900 1209600 300
        NS  ns.ring4.az.
        NS  ns.foreign-dns.com.
ns      A   192.0.2.44
`,
	"ring4.az.": `
@       SOA ns.ring3.az. hostmaster 1 7200 900 1209600 300
        NS  ns.ring3.az.
ns      A   192.0.2.45
www     A   192.0.2.46
`,
	// Lookups of names here fail (see fakeResolver.fail).
	"broken.az.": `
@       SOA ns1 hostmaster 1 7200 900 1209600 300
        NS  ns1
ns1     A   192.0.2.50
`,
	// Its names answer, its NS set does not.
	"flaky.az.": `
@       SOA ns1 hostmaster 1 7200 900 1209600 300
        NS  ns1
ns1     A   192.0.2.51
y       A   192.0.2.52
`,
	// Signed data that does not validate.
	"bogus.az.": `
@       SOA ns1 hostmaster 1 7200 900 1209600 300
        NS  ns1
ns1     A   192.0.2.53
www     A   192.0.2.54
`,
	// The child of the audited zone's delegation sub.gov.az.
	"sub.gov.az.": `
@       SOA ns hostmaster 1 7200 900 1209600 300
        NS  ns
        NS  ns.foreign.org.
ns      A   192.0.2.60
www     A   192.0.2.61
`,
}

// parseZone builds the zone origin from text, failing the test on error.
func parseZone(t testing.TB, origin, text string) *zone.Zone {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader("$TTL 3600\n"+text), origin, origin)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("parse %s: %v", origin, err)
	}
	z, err := zone.Build(origin, rrs)
	if err != nil {
		t.Fatalf("build %s: %v", origin, err)
	}
	return z
}

// fakeResolver answers from the world's zones, following CNAMEs and DNAMEs
// as resolver.Resolver does (not for qtype CNAME), with scripted failures.
type fakeResolver struct {
	zones *zone.Set
	// fail makes questions fail: keys are "NAME TYPE" or "*.ZONE" for
	// every question at or below ZONE.
	fail  map[string]bool
	bogus map[string]bool // names answered with DNSSEC status Bogus
	block bool            // every question waits for ctx to end

	mu    sync.Mutex
	asked []string
}

func newFake(t testing.TB) *fakeResolver {
	t.Helper()
	var zs []*zone.Zone
	for origin, text := range world {
		zs = append(zs, parseZone(t, origin, text))
	}
	return &fakeResolver{
		zones: zone.NewSet(zs...),
		fail: map[string]bool{"*.broken.az.": true, "flaky.az. NS": true,
			"*.lame.gov.az.": true, "*.lame2.gov.az.": true}, // delegations of the audited zone whose servers fail
		bogus: map[string]bool{"www.bogus.az.": true},
	}
}

func (f *fakeResolver) questions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asked...)
}

var errScripted = errors.New("scripted failure")

func (f *fakeResolver) Resolve(ctx context.Context, name string, qtype uint16) resolver.Result {
	name = zone.Fqdn(name)
	f.mu.Lock()
	f.asked = append(f.asked, name+" "+dns.TypeToString[qtype])
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
		return resolver.Result{Rcode: dns.RcodeServerFailure, Err: ctx.Err()}
	}
	if f.bogus[name] {
		// The data is kept for clients that set CD; the others get SERVFAIL.
		return resolver.Result{Sec: dnssec.Bogus, Why: dnssec.ErrBogus}
	}
	servfail := func(chain []dns.RR, err error) resolver.Result {
		return resolver.Result{Rcode: dns.RcodeServerFailure, Answer: chain, Err: err}
	}
	var chain []dns.RR
	for range 16 {
		if f.fail[name+" "+dns.TypeToString[qtype]] {
			return servfail(chain, errScripted)
		}
		for k := range f.fail {
			if strings.HasPrefix(k, "*.") && dns.IsSubDomain(k[2:], name) {
				return servfail(chain, errScripted)
			}
		}
		key, err := zone.WireKey(name)
		if err != nil {
			return servfail(chain, err)
		}
		z := f.zones.Match([]byte(key), qtype)
		if z == nil {
			return servfail(chain, resolver.ErrNoReachableAuthority) // foreign: not in this world
		}
		n, exact := z.Find(key)
		if n.Cut() != nil {
			return servfail(chain, resolver.ErrLame)
		}
		if d := n.DNAME(); d != nil && !(exact && d == n) {
			dn := d.Get(dns.TypeDNAME).RRs()[0].(*dns.DNAME)
			target := strings.TrimSuffix(name, d.Name) + zone.Fqdn(dn.Target)
			chain = append(chain, dn, &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: target})
			if qtype == dns.TypeCNAME {
				return resolver.Result{Answer: chain}
			}
			name = target
			continue
		}
		negative := []dns.RR{z.SOA}
		if !exact {
			return resolver.Result{Rcode: dns.RcodeNameError, Answer: chain, Ns: negative}
		}
		if set := n.Get(qtype); set != nil {
			return resolver.Result{Answer: append(chain, set.RRs()...)}
		}
		if set := n.Get(dns.TypeCNAME); set != nil {
			chain = append(chain, set.RRs()[0])
			name = zone.Fqdn(set.RRs()[0].(*dns.CNAME).Target)
			continue
		}
		return resolver.Result{Answer: chain, Ns: negative}
	}
	return servfail(chain, resolver.ErrCNAMEChain)
}
