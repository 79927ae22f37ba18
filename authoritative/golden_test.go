package authoritative_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/authoritative"
	"github.com/sovdns/sovdns/zone"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenCase is one question asked of one zone set; the expected response is
// in testdata/golden/<name>.golden.
type goldenCase struct {
	name  string // also the golden file's name
	set   string // key of testSets
	qname string
	qtype uint16
	do    bool
}

var goldenCases = []goldenCase{
	// Plain answers and negative answers (RFC 1034 §4.3.2, RFC 2308).
	{name: "exact-a", set: "main", qname: "www.example.com.", qtype: dns.TypeA},
	{name: "exact-aaaa-unqualified", set: "main", qname: "www.example.com", qtype: dns.TypeAAAA},
	{name: "exact-qname-case-preserved", set: "main", qname: "WwW.ExAmPlE.cOm.", qtype: dns.TypeA},
	{name: "exact-do-with-rrsig", set: "main", qname: "www.example.com.", qtype: dns.TypeA, do: true},
	{name: "exact-do-case-preserved", set: "main", qname: "WWW.example.com.", qtype: dns.TypeA, do: true},
	// A question for type RRSIG: one RRset's signatures, DO or not (as Knot
	// DNS); NODATA at a name without any.
	{name: "rrsig-qtype", set: "main", qname: "www.example.com.", qtype: dns.TypeRRSIG},
	{name: "rrsig-qtype-do", set: "main", qname: "www.example.com.", qtype: dns.TypeRRSIG, do: true},
	{name: "rrsig-qtype-unsigned-nodata", set: "main", qname: "www.example.net.", qtype: dns.TypeRRSIG},
	{name: "apex-soa", set: "main", qname: "example.com.", qtype: dns.TypeSOA},
	{name: "apex-txt", set: "main", qname: "example.com.", qtype: dns.TypeTXT},
	{name: "nodata-soa-ttl-is-minimum", set: "main", qname: "www.example.com.", qtype: dns.TypeMX},
	{name: "nodata-soa-ttl-is-soa-ttl", set: "main", qname: "www.example.net.", qtype: dns.TypeMX},
	{name: "nodata-do-with-soa-rrsig", set: "main", qname: "www.example.com.", qtype: dns.TypeTXT, do: true},
	{name: "nxdomain", set: "main", qname: "nope.example.com.", qtype: dns.TypeA},
	{name: "nxdomain-case-preserved", set: "main", qname: "NoPe.Example.Com.", qtype: dns.TypeA},
	{name: "ent-nodata", set: "main", qname: "ent.example.com.", qtype: dns.TypeA},
	{name: "ent-deeper-nodata", set: "main", qname: "b.ent.example.com.", qtype: dns.TypeTXT},
	{name: "below-ent-nxdomain", set: "main", qname: "x.ent.example.com.", qtype: dns.TypeA},
	{name: "ent-leaf-answer", set: "main", qname: "a.b.ent.example.com.", qtype: dns.TypeTXT},

	// CNAME (RFC 1034 §3.6.2, §4.3.2 step 3a; RFC 6604 for the rcode).
	{name: "cname-one-link", set: "main", qname: "alias.example.com.", qtype: dns.TypeA},
	{name: "cname-chain-in-zone", set: "main", qname: "chain1.example.com.", qtype: dns.TypeA},
	{name: "cname-chain-case-preserved", set: "main", qname: "CHAIN1.example.com.", qtype: dns.TypeAAAA},
	{name: "cname-target-nodata", set: "main", qname: "alias.example.com.", qtype: dns.TypeMX},
	{name: "cname-into-other-zone", set: "main", qname: "toother.example.com.", qtype: dns.TypeA},
	{name: "cname-into-other-zone-nxdomain", set: "main", qname: "tomissing.example.com.", qtype: dns.TypeA},
	{name: "cname-into-child-zone", set: "main", qname: "tochild.example.com.", qtype: dns.TypeA},
	{name: "cname-out-of-authority", set: "main", qname: "toout.example.com.", qtype: dns.TypeA},
	{name: "cname-into-delegation", set: "main", qname: "todeleg.example.com.", qtype: dns.TypeA},
	{name: "cname-loop", set: "main", qname: "loop1.example.com.", qtype: dns.TypeA},
	{name: "cname-self-loop", set: "main", qname: "self.example.com.", qtype: dns.TypeA},
	{name: "cname-qtype-cname", set: "main", qname: "alias.example.com.", qtype: dns.TypeCNAME},
	{name: "cname-qtype-cname-chain-not-followed", set: "main", qname: "chain1.example.com.", qtype: dns.TypeCNAME},
	{name: "wildcard-cname", set: "main", qname: "foo.wc.example.com.", qtype: dns.TypeA},
	{name: "wildcard-cname-deep", set: "main", qname: "a.b.wc.example.com.", qtype: dns.TypeAAAA},
	{name: "wildcard-txt-case-preserved", set: "main", qname: "Some.Host.WILD.example.com.", qtype: dns.TypeTXT},
	{name: "wildcard-nodata", set: "main", qname: "x.wild.example.com.", qtype: dns.TypeA},

	// RFC 4592 §2.2.1: the example zone and every query it discusses.
	{name: "rfc4592-host3-mx-synthesized", set: "rfc4592", qname: "host3.example.", qtype: dns.TypeMX},
	{name: "rfc4592-host3-a-nodata", set: "rfc4592", qname: "host3.example.", qtype: dns.TypeA},
	{name: "rfc4592-foo-bar-txt-synthesized", set: "rfc4592", qname: "foo.bar.example.", qtype: dns.TypeTXT},
	{name: "rfc4592-host1-mx-nodata", set: "rfc4592", qname: "host1.example.", qtype: dns.TypeMX},
	{name: "rfc4592-sub-star-mx-nodata", set: "rfc4592", qname: "sub.*.example.", qtype: dns.TypeMX},
	{name: "rfc4592-telnet-srv-nxdomain", set: "rfc4592", qname: "_telnet._tcp.host1.example.", qtype: dns.TypeSRV},
	{name: "rfc4592-host-subdel-referral", set: "rfc4592", qname: "host.subdel.example.", qtype: dns.TypeA},
	{name: "rfc4592-ghost-star-mx-nxdomain", set: "rfc4592", qname: "ghost.*.example.", qtype: dns.TypeMX},
	// Further consequences of the same zone.
	{name: "rfc4592-sub-star-txt", set: "rfc4592", qname: "sub.*.example.", qtype: dns.TypeTXT},
	{name: "rfc4592-star-txt-literal", set: "rfc4592", qname: "*.example.", qtype: dns.TypeTXT},
	{name: "rfc4592-host2-ent-nodata", set: "rfc4592", qname: "host2.example.", qtype: dns.TypeMX},
	{name: "rfc4592-tcp-host1-ent-nodata", set: "rfc4592", qname: "_tcp.host1.example.", qtype: dns.TypeA},
	{name: "rfc4592-ssh-host1-srv", set: "rfc4592", qname: "_ssh._tcp.host1.example.", qtype: dns.TypeSRV},
	{name: "rfc4592-ssh-host3-srv-wildcard-nodata", set: "rfc4592", qname: "_ssh._tcp.host3.example.", qtype: dns.TypeSRV},
	{name: "rfc4592-wildcard-any", set: "rfc4592", qname: "host3.example.", qtype: dns.TypeANY},

	// Delegations (RFC 1034 §4.3.2 step 3b, RFC 4035 §3.1.4.1 for DS).
	{name: "referral-below-cut", set: "main", qname: "host.sub.example.com.", qtype: dns.TypeA},
	{name: "referral-deep-below-cut", set: "main", qname: "a.b.ns.sub.example.com.", qtype: dns.TypeAAAA},
	{name: "referral-at-cut", set: "main", qname: "sub.example.com.", qtype: dns.TypeA},
	{name: "referral-at-cut-ns", set: "main", qname: "sub.example.com.", qtype: dns.TypeNS},
	{name: "referral-at-cut-any", set: "main", qname: "sub.example.com.", qtype: dns.TypeANY},
	{name: "referral-glue-name", set: "main", qname: "ns.sub.example.com.", qtype: dns.TypeA},
	{name: "referral-unsigned-do", set: "main", qname: "host.sub.example.com.", qtype: dns.TypeA, do: true},
	{name: "referral-signed-do", set: "main", qname: "www.secure.example.com.", qtype: dns.TypeA, do: true},
	{name: "referral-signed-no-do", set: "main", qname: "www.secure.example.com.", qtype: dns.TypeA},
	{name: "ds-at-cut", set: "main", qname: "secure.example.com.", qtype: dns.TypeDS},
	{name: "ds-at-cut-do", set: "main", qname: "secure.example.com.", qtype: dns.TypeDS, do: true},
	{name: "ds-at-unsigned-cut-nodata", set: "main", qname: "sub.example.com.", qtype: dns.TypeDS},
	{name: "ds-below-cut-referral", set: "main", qname: "x.sub.example.com.", qtype: dns.TypeDS},
	{name: "ds-at-child-apex-from-parent", set: "main", qname: "child.example.com.", qtype: dns.TypeDS},
	{name: "ds-at-child-apex-child-only", set: "childonly", qname: "child.example.com.", qtype: dns.TypeDS},
	{name: "child-apex-soa-from-child", set: "main", qname: "child.example.com.", qtype: dns.TypeSOA},
	{name: "child-apex-ns-from-child", set: "main", qname: "child.example.com.", qtype: dns.TypeNS},
	{name: "child-apex-dnskey", set: "main", qname: "Child.Example.Com.", qtype: dns.TypeDNSKEY},
	{name: "child-name-longest-match", set: "main", qname: "www.child.example.com.", qtype: dns.TypeA},
	{name: "child-nxdomain-child-soa", set: "main", qname: "nope.child.example.com.", qtype: dns.TypeA},

	// DNAME (RFC 6672).
	{name: "dname-substitution", set: "main", qname: "www.dname.example.com.", qtype: dns.TypeA},
	{name: "dname-substitution-case-preserved", set: "main", qname: "WWW.Dname.Example.COM.", qtype: dns.TypeA},
	{name: "dname-deep-substitution-nxdomain", set: "main", qname: "a.b.dname.example.com.", qtype: dns.TypeA},
	{name: "dname-qtype-cname", set: "main", qname: "www.dname.example.com.", qtype: dns.TypeCNAME},
	{name: "dname-qtype-dname-below", set: "main", qname: "www.dname.example.com.", qtype: dns.TypeDNAME},
	{name: "dname-owner-dname", set: "main", qname: "dname.example.com.", qtype: dns.TypeDNAME},
	{name: "dname-owner-txt", set: "main", qname: "dname.example.com.", qtype: dns.TypeTXT},
	{name: "dname-owner-a-nodata", set: "main", qname: "dname.example.com.", qtype: dns.TypeA},
	{name: "dname-target-out-of-authority", set: "main", qname: "x.long.example.com.", qtype: dns.TypeA},
	{name: "dname-target-exactly-255", set: "main", qname: "ppppppppppppppppppppppppppppppppppppppppppppppppp.long.example.com.", qtype: dns.TypeA},
	{name: "dname-yxdomain", set: "main", qname: "pppppppppppppppppppppppppppppppppppppppppppppppppp.long.example.com.", qtype: dns.TypeA},
	{name: "dname-escaped-target-fits", set: "main", qname: "www.esc.example.com.", qtype: dns.TypeA},
	{name: "dname-owner-spelled-with-escape", set: "main", qname: "www.spelled-dname.example.com.", qtype: dns.TypeA},
	{name: "dname-owner-spelled-with-escape-short-qname", set: "main", qname: "x.Spelled-Dname.example.com.", qtype: dns.TypeA},

	// ANY (RFC 8482) and additional section processing (RFC 1034 §4.3.2 step 6).
	{name: "any-minimal", set: "main", qname: "www.example.com.", qtype: dns.TypeANY},
	{name: "any-apex", set: "main", qname: "example.com.", qtype: dns.TypeANY},
	{name: "any-cname", set: "main", qname: "alias.example.com.", qtype: dns.TypeANY},
	{name: "any-ent-nodata", set: "main", qname: "ent.example.com.", qtype: dns.TypeANY},
	{name: "any-nxdomain", set: "main", qname: "nope.example.com.", qtype: dns.TypeANY},
	{name: "additional-mx", set: "main", qname: "example.com.", qtype: dns.TypeMX},
	{name: "additional-mx-via-cname", set: "main", qname: "ToMX.example.com.", qtype: dns.TypeMX},
	{name: "additional-srv", set: "main", qname: "_sip._tcp.example.com.", qtype: dns.TypeSRV},
	{name: "additional-ns-apex", set: "main", qname: "example.com.", qtype: dns.TypeNS},
	{name: "additional-ns-apex-do", set: "main", qname: "example.com.", qtype: dns.TypeNS, do: true},

	// Names outside every held zone.
	{name: "refused-not-held", set: "main", qname: "www.example.org.", qtype: dns.TypeA},
	{name: "refused-parent-of-held", set: "main", qname: "com.", qtype: dns.TypeNS},
	{name: "refused-root", set: "main", qname: ".", qtype: dns.TypeNS},
	{name: "refused-bad-name", set: "main", qname: strings.Repeat("a", 64) + ".example.com.", qtype: dns.TypeA},
}

func TestGolden(t *testing.T) {
	sets := testSets(t)
	before := snapshot(sets)
	seen := map[string]bool{}
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			if seen[tc.name] {
				t.Fatalf("duplicate case name %s", tc.name)
			}
			seen[tc.name] = true
			set := sets[tc.set]
			if set == nil {
				t.Fatalf("no zone set %q", tc.set)
			}
			q := authoritative.Query{Name: tc.qname, Type: tc.qtype, DO: tc.do}
			res := authoritative.Answer(set, q)
			checkInvariants(t, q, res)
			got := render(q, res)
			path := filepath.Join("testdata", "golden", tc.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o600); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./authoritative -run TestGolden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("response differs from %s\n--- got\n%s--- want\n%s", path, got, want)
			}
		})
	}
	if after := snapshot(sets); !slices.Equal(before, after) {
		t.Error("answering changed the zones' records")
	}
}

// TestGoldenFilesUsed fails when a golden file has no case, so that renamed
// cases do not leave stale files behind.
func TestGoldenFilesUsed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tc := range goldenCases {
		names[tc.name] = true
	}
	for _, f := range files {
		if n := strings.TrimSuffix(filepath.Base(f), ".golden"); !names[n] {
			if *update {
				os.Remove(f)
				continue
			}
			t.Errorf("%s has no test case", f)
		}
	}
}

// render prints a result as dig-like text with every section sorted.
func render(q authoritative.Query, r authoritative.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, ";; QUESTION: %s IN %s", q.Name, dns.Type(q.Type))
	if q.DO {
		b.WriteString(" +dnssec")
	}
	flags := ""
	if r.Authoritative {
		flags = " aa"
	}
	fmt.Fprintf(&b, "\n;; kind: %s, status: %s, flags:%s\n", r.Kind, dns.RcodeToString[r.Rcode], flags)
	if r.Zone != nil {
		fmt.Fprintf(&b, ";; zone: %s\n", r.Zone.Origin)
	}
	for _, sec := range []struct {
		name string
		rrs  []dns.RR
	}{{"ANSWER", r.Answer}, {"AUTHORITY", r.Ns}, {"ADDITIONAL", r.Extra}} {
		fmt.Fprintf(&b, "\n;; %s SECTION: %d\n", sec.name, len(sec.rrs))
		lines := make([]string, len(sec.rrs))
		for i, rr := range sec.rrs {
			lines[i] = rr.String()
		}
		slices.Sort(lines)
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// checkInvariants checks what must hold for every result, whatever the
// golden file says.
func checkInvariants(t *testing.T, q authoritative.Query, r authoritative.Result) {
	t.Helper()
	for _, sec := range [][]dns.RR{r.Answer, r.Ns, r.Extra} {
		for i, a := range sec {
			for _, b := range sec[:i] {
				if dns.IsDuplicate(a, b) {
					t.Errorf("record %v appears twice in a section", a)
				}
			}
		}
	}
	switch r.Kind {
	case authoritative.KindRefused:
		if r.Rcode != dns.RcodeRefused || r.Authoritative || r.Zone != nil || len(r.Answer)+len(r.Ns)+len(r.Extra) != 0 {
			t.Errorf("refused result %+v", r)
		}
	case authoritative.KindReferral:
		if r.Authoritative || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
			t.Errorf("referral with aa=%v rcode %d and %d answers", r.Authoritative, r.Rcode, len(r.Answer))
		}
	case authoritative.KindNoData, authoritative.KindNXDomain:
		if !r.Authoritative || len(r.Answer) != 0 || len(r.Ns) == 0 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Errorf("negative result %+v", r)
		}
		soa := r.Ns[0].(*dns.SOA)
		if soa.Hdr.Ttl > soa.Minttl {
			t.Errorf("negative SOA TTL %d above its MINIMUM %d (RFC 2308 §3)", soa.Hdr.Ttl, soa.Minttl)
		}
	case authoritative.KindAnswer:
		if !r.Authoritative || len(r.Answer) == 0 {
			t.Errorf("answer with aa=%v and %d records", r.Authoritative, len(r.Answer))
		}
		if first := r.Answer[0]; first.Header().Rrtype != dns.TypeDNAME && first.Header().Name != dns.Fqdn(q.Name) {
			t.Errorf("first answer owner %q, want the question's %q", r.Answer[0].Header().Name, dns.Fqdn(q.Name))
		}
	}
	if !q.DO {
		for _, sec := range [][]dns.RR{r.Answer, r.Ns, r.Extra} {
			for _, rr := range sec {
				// Unless the question asks for that type (RFC 4035 §3.2.1).
				if rt := rr.Header().Rrtype; rt != q.Type && (rt == dns.TypeRRSIG || rt == dns.TypeNSEC || rt == dns.TypeNSEC3) {
					t.Errorf("DNSSEC record %v without DO", rr)
				}
			}
		}
	}
}

// snapshot renders every record of every zone, to detect changes.
func snapshot(sets map[string]*zone.Set) []string {
	var out []string
	for _, s := range sets {
		for _, z := range s.Zones() {
			for _, rr := range z.Records() {
				out = append(out, rr.String())
			}
		}
	}
	slices.Sort(out)
	return out
}
