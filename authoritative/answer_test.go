package authoritative_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/authoritative"
	"github.com/sovdns/sovdns/zone"
)

func TestKindString(t *testing.T) {
	tests := []struct {
		kind authoritative.Kind
		want string
	}{
		{kind: authoritative.KindAnswer, want: "answer"},
		{kind: authoritative.KindNoData, want: "nodata"},
		{kind: authoritative.KindNXDomain, want: "nxdomain"},
		{kind: authoritative.KindReferral, want: "referral"},
		{kind: authoritative.KindRefused, want: "refused"},
		{kind: authoritative.KindYXDomain, want: "yxdomain"},
	}
	for _, tc := range tests {
		if got := tc.kind.String(); got != tc.want {
			t.Errorf("Kind(%d).String() = %q, want %q", tc.kind, got, tc.want)
		}
	}
}

// TestAnswerChainOrder checks that a CNAME chain is given in the order it is
// followed, each link before its target (RFC 1034 §3.6.2).
func TestAnswerChainOrder(t *testing.T) {
	zs := testSets(t)["main"]
	tests := []struct {
		name  string
		qname string
		qtype uint16
		want  []string // owner and type of each answer record, in order
	}{
		{name: "chain", qname: "chain1.example.com.", qtype: dns.TypeA,
			want: []string{"chain1.example.com. CNAME", "chain2.example.com. CNAME", "www.example.com. A"}},
		{name: "into another zone", qname: "toother.example.com.", qtype: dns.TypeA,
			want: []string{"toother.example.com. CNAME", "www.example.net. A"}},
		{name: "DNAME", qname: "www.dname.example.com.", qtype: dns.TypeA,
			want: []string{"dname.example.com. DNAME", "www.dname.example.com. CNAME", "www.example.net. A"}},
		{name: "loop", qname: "loop2.example.com.", qtype: dns.TypeA,
			want: []string{"loop2.example.com. CNAME", "loop1.example.com. CNAME"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := authoritative.Answer(zs, authoritative.Query{Name: tc.qname, Type: tc.qtype})
			var got []string
			for _, rr := range res.Answer {
				got = append(got, rr.Header().Name+" "+dns.Type(rr.Header().Rrtype).String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("answer order\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestAnswerChainCap checks that a long CNAME chain is cut at MaxChain links.
func TestAnswerChainCap(t *testing.T) {
	const links = authoritative.MaxChain + 10
	var b strings.Builder
	b.WriteString("$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns.example.net. h.example.net. 1 2 3 4 5\n@ IN NS ns.example.net.\n")
	for i := range links {
		fmt.Fprintf(&b, "c%d IN CNAME c%d\n", i, i+1)
	}
	fmt.Fprintf(&b, "c%d IN A 192.0.2.1\n", links)
	zs := zone.NewSet(buildZone(t, b.String()))
	tests := []struct {
		name      string
		qname     string
		wantCount int
		wantLast  uint16
	}{
		{name: "too long", qname: "c0.example.com.", wantCount: authoritative.MaxChain + 1, wantLast: dns.TypeCNAME},
		{name: "just short enough", qname: fmt.Sprintf("c%d.example.com.", links-authoritative.MaxChain), wantCount: authoritative.MaxChain + 1, wantLast: dns.TypeA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := authoritative.Answer(zs, authoritative.Query{Name: tc.qname, Type: dns.TypeA})
			if len(res.Answer) != tc.wantCount || res.Rcode != dns.RcodeSuccess {
				t.Fatalf("%d records, rcode %d; want %d, NOERROR", len(res.Answer), res.Rcode, tc.wantCount)
			}
			if last := res.Answer[len(res.Answer)-1].Header().Rrtype; last != tc.wantLast {
				t.Errorf("last record type %s, want %s", dns.Type(last), dns.Type(tc.wantLast))
			}
		})
	}
}

// TestAnswerDNAMELoop checks that DNAMEs pointing at each other terminate.
func TestAnswerDNAMELoop(t *testing.T) {
	zs := zone.NewSet(buildZone(t, `$ORIGIN example.com.
$TTL 300
@  IN SOA ns.example.net. h.example.net. 1 2 3 4 5
@  IN NS ns.example.net.
d1 IN DNAME d2.example.com.
d2 IN DNAME d1.example.com.
`))
	res := authoritative.Answer(zs, authoritative.Query{Name: "x.d1.example.com.", Type: dns.TypeA})
	if len(res.Answer) == 0 || len(res.Answer) > 2*(authoritative.MaxChain+1) {
		t.Errorf("%d answer records", len(res.Answer))
	}
}

// TestAnswerSharedRecords checks that answers never change zone records:
// owner rewriting (question case, wildcards) works on copies.
func TestAnswerSharedRecords(t *testing.T) {
	sets := testSets(t)
	before := snapshot(sets)
	queries := []authoritative.Query{
		{Name: "WWW.EXAMPLE.COM.", Type: dns.TypeA, DO: true},
		{Name: "Foo.Wild.Example.Com.", Type: dns.TypeTXT},
		{Name: "X.WC.example.com.", Type: dns.TypeA},
		{Name: "nope.example.com.", Type: dns.TypeA, DO: true},
		{Name: "A.Dname.Example.Com.", Type: dns.TypeA},
	}
	for _, q := range queries {
		res := authoritative.Answer(sets["main"], q)
		if len(res.Answer)+len(res.Ns) == 0 {
			t.Errorf("%s %s: empty result", q.Name, dns.Type(q.Type))
		}
		if len(res.Answer) > 0 && res.Answer[0].Header().Rrtype != dns.TypeDNAME && res.Answer[0].Header().Name != q.Name {
			t.Errorf("%s: answer owner %s", q.Name, res.Answer[0].Header().Name)
		}
	}
	if after := snapshot(sets); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Error("answering changed zone records")
	}
}

// TestAnswerConcurrent runs many answers at once, for the race detector.
func TestAnswerConcurrent(t *testing.T) {
	zs := testSets(t)["main"]
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				tc := goldenCases[(g*31+i)%len(goldenCases)]
				if tc.set != "main" {
					continue
				}
				res := authoritative.Answer(zs, authoritative.Query{Name: tc.qname, Type: tc.qtype, DO: tc.do})
				_ = render(authoritative.Query{Name: tc.qname, Type: tc.qtype}, res)
			}
		})
	}
	wg.Wait()
}
