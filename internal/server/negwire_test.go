package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
)

// negZones are the zones of the wire-path tests: an unsigned one with
// every kind of node, a signed one (records and proofs faked: only their
// presence matters), and the root, whose SOA owner is written differently.
const negSignedZone = `$ORIGIN signed.example.
$TTL 3600
@      SOA   ns1 hostmaster 2024010101 7200 900 1209600 300
@      RRSIG SOA 13 2 3600 20300101000000 20200101000000 11111 signed.example. AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==
@      NS    ns1
@      DNSKEY 257 3 13 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==
@      NSEC  ns1 SOA NS DNSKEY NSEC RRSIG
ns1    A     192.0.2.1
ns1    NSEC  signed.example. A NSEC RRSIG
`

const negRootZone = `$ORIGIN .
$TTL 86400
@                  SOA  a.root-servers.test. nstld.root-servers.test. 2024060101 1800 900 604800 86400
@                  NS   a.root-servers.test.
a.root-servers.test. A  192.0.2.2
az                 NS   ns1.nic.az.
ns1.nic.az.        A    192.0.2.3
`

// TestNegativeWireMatchesFullPath checks the wire path against the general
// one, query by query: the same message, header flags, question spelling,
// SOA, OPT; and that it leaves to the general path whatever it must.
func TestNegativeWireMatchesFullPath(t *testing.T) {
	zs := zone.NewSet(
		mustZone(t, testZone+"*.wild A 192.0.2.80\nempty.nt.deep TXT \"x\"\n", "example.gov."),
		mustZone(t, negSignedZone, "signed.example."),
		mustZone(t, negRootZone, "."),
	)
	s := New(Config{RecursionAllow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Resolver: noRecursor{t},
		RRL: RRLConfig{}}, slog.New(slog.DiscardHandler), metrics.New(prometheus.NewRegistry()))
	s.SetZones(zs)
	tests := []struct {
		name  string
		qtype uint16
		wire  bool // the wire path answers it
	}{
		{"nope.example.gov.", dns.TypeA, true},
		{"NoPe.Example.GOV.", dns.TypeAAAA, true},
		{"a.b.c.d.nope.example.gov.", dns.TypeMX, true},
		{"www.example.gov.", dns.TypeMX, true},            // NODATA
		{"nt.deep.example.gov.", dns.TypeA, true},         // empty non-terminal: NODATA
		{"example.gov.", dns.TypeTXT, true},               // NODATA at the apex
		{"www.example.gov.", dns.TypeA, false},            // an answer
		{"alias.example.gov.", dns.TypeAAAA, false},       // CNAME
		{"x.sub.example.gov.", dns.TypeA, false},          // referral
		{"sub.example.gov.", dns.TypeTXT, false},          // at a cut
		{"y.legacy.example.gov.", dns.TypeA, false},       // DNAME
		{"x.wild.example.gov.", dns.TypeA, false},         // wildcard
		{"x.wild.example.gov.", dns.TypeMX, false},        // wildcard NODATA
		{"www.example.gov.", dns.TypeDS, false},           // DS: left out
		{"www.example.gov.", dns.TypeANY, false},          // ANY
		{"www.example.gov.", dns.TypeRRSIG, false},        // RRSIG
		{"nope.signed.example.", dns.TypeA, true},         // signed, without DO
		{"ns1.signed.example.", dns.TypeMX, true},         // signed NODATA, without DO
		{"nosuchtld.", dns.TypeA, true},                   // the root
		{"x.y.nosuchtld.", dns.TypeA, true},               //
		{"www.example.org.", dns.TypeA, true},             // NXDOMAIN from the root zone held
		{"www.az.", dns.TypeA, false},                     // a referral from the root
		{"a.root-servers.test.", dns.TypeAAAA, true},      // NODATA in the root zone
		{"\\001\\255.nope.example.gov.", dns.TypeA, true}, // odd octets
		{"a\\.b.nope.example.gov.", dns.TypeTXT, true},    // an escaped dot
		{"nope.example.gov.", dns.TypeCNAME, false},       // CNAME: left out
		{"nope.example.gov.", dns.TypeNSEC3, false},       //
		{"nope.example.gov.", dns.TypeSOA, true},
		{"nope.example.gov.", 4000, true}, // an unknown type
		{"nope.example.gov.", dns.TypeNS, true},
		{"nope.example.gov.", dns.TypeHTTPS, true},
		{"nope.example.gov.", dns.TypeNULL, true},
		{"ns1.signed.example.", dns.TypeA, false}, // an answer in the signed zone
		{"example.gov.", dns.TypeNS, false},       // the apex NS
		{"nope.signed.example.", dns.TypeDNSKEY, true},
	}
	buf := make([]byte, 0, 65535)
	buf2 := make([]byte, 0, 65535)
	checked := 0
	for _, tt := range tests {
		for _, v := range []struct {
			edns, do, rd, cd bool
			src              string
		}{
			{false, false, false, false, "198.51.100.1"},
			{true, false, true, false, "198.51.100.1"},
			{true, true, false, true, "198.51.100.1"},
			{false, false, true, false, "192.0.2.7"}, // may recurse: RA
			{true, false, false, false, "192.0.2.7"},
		} {
			name := fmt.Sprintf("%s %s edns=%v do=%v rd=%v from %s", tt.name, dns.Type(tt.qtype), v.edns, v.do, v.rd, v.src)
			q := query(tt.name, tt.qtype)
			q.RecursionDesired, q.CheckingDisabled = v.rd, v.cd
			if v.edns {
				q.SetEdns0(1232, v.do)
			}
			in, err := q.Pack()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			src := netip.AddrPortFrom(netip.MustParseAddr(v.src), 5353)
			var fq fastQuery
			if !parseFast(in, &fq) {
				t.Fatalf("%s: not a plain query", name)
			}
			fq.setClient(s.recursionAllowed(src.Addr()), in[2]&bitRD != 0)
			st := s.st.Load()
			wire, ok := s.negativeWire(st, in, buf, src, udp, &fq, 1232)
			wantWire := tt.wire && !(v.do && tt.name != "" && isSignedName(tt.name))
			if ok != wantWire {
				t.Errorf("%s: wire path took it: %v, want %v", name, ok, wantWire)
				continue
			}
			if !ok {
				continue
			}
			full := s.respondSlow(st, in, buf2, src, src, nil, udp, true, &fq, time.Now())
			a, b := new(dns.Msg), new(dns.Msg)
			if err := a.Unpack(wire); err != nil {
				t.Fatalf("%s: the wire answer does not parse: %v", name, err)
			}
			if err := b.Unpack(full); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if a.String() != b.String() {
				t.Errorf("%s: wire answer differs:\n%v\nfull:\n%v", name, a, b)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("nothing went through the wire path")
	}
}

// noRecursor is a resolver that must never be asked: the questions of
// these tests are all answered from the zones.
type noRecursor struct{ t *testing.T }

func (r noRecursor) ResolveMiss(_ context.Context, name string, _ uint16, _ resolver.Miss) resolver.Result {
	r.t.Errorf("resolution asked for %s", name)
	return resolver.Result{}
}

func (r noRecursor) Lookup(name string, _ uint16) (resolver.Result, resolver.Miss, bool) {
	r.t.Errorf("cache asked for %s", name)
	return resolver.Result{}, resolver.Miss{}, false
}

func isSignedName(name string) bool {
	return dns.IsSubDomain("signed.example.", dns.CanonicalName(name))
}

func BenchmarkNegativeWire(b *testing.B) {
	zs := zone.NewSet(mustZone(b, testZone, "example.gov."))
	s := New(Config{}, slog.New(slog.DiscardHandler), metrics.New(prometheus.NewRegistry()))
	s.SetZones(zs)
	const spread = 4096
	ins := make([][]byte, spread)
	for i := range ins {
		in, _ := query(fmt.Sprintf("r%dx%d.example.gov.", i, i*7919), dns.TypeA).Pack()
		ins[i] = in
	}
	out := make([]byte, 0, 65535)
	src := netip.MustParseAddrPort("198.51.100.1:5353")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if s.respond(ins[i%spread], out, src, nil, udp) == nil {
			b.Fatal("no response")
		}
		i++
	}
}
