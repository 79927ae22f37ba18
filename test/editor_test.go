package test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestEditorFlow edits a zone offline with the CLI (import, add, delete,
// export), checks the export round-trips, then serves the result and
// queries it over UDP and TCP.
func TestEditorFlow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := t.TempDir()
	src := filepath.Join(files, "example.com.zone")
	if err := os.WriteFile(src, []byte(testZone), 0o600); err != nil {
		t.Fatal(err)
	}
	dd := []string{"--data-dir", dir}

	r := mustCLI(t, nil, append([]string{"zone", "import", src}, dd...)...)
	if !strings.Contains(r.stdout, "imported zone example.com.") {
		t.Errorf("zone import printed %q", r.stdout)
	}
	mustCLI(t, nil, append([]string{"record", "add", "example.com", "new 300 IN A 192.0.2.77", "@ MX 20 new"}, dd...)...)
	mustCLI(t, nil, append([]string{"record", "delete", "example.com", "old", "A", "192.0.2.66"}, dd...)...)

	out := filepath.Join(files, "exported.zone")
	mustCLI(t, nil, append([]string{"zone", "export", "example.com", "-o", out}, dd...)...)
	exported, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}

	// The export holds the original records, plus the two added, minus the
	// one deleted, with the serial moved once per edit.
	want := parseZone(t, testZone)
	want = slices.DeleteFunc(want, func(s string) bool { return strings.HasPrefix(s, "old.example.com.") })
	want = append(want,
		"new.example.com.\t300\tIN\tA\t192.0.2.77",
		"example.com.\t3600\tIN\tMX\t20 new.example.com.")
	for i, s := range want {
		want[i] = strings.Replace(s, " 2024060101 ", " 2024060103 ", 1)
	}
	slices.Sort(want)
	if got := parseZone(t, string(exported)); !slices.Equal(got, want) {
		t.Errorf("exported zone:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}

	// Importing the export elsewhere and exporting again gives the same text.
	dir2 := t.TempDir()
	mustCLI(t, nil, "zone", "import", out, "--data-dir", dir2)
	if again := mustCLI(t, nil, "zone", "export", "example.com.", "--data-dir", dir2).stdout; again != string(exported) {
		t.Errorf("the export does not round-trip:\n%s\n---\n%s", again, exported)
	}

	s := startServer(t, serveOpts{dataDir: dir, config: "udp_sockets: 2\n"})
	soa := "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 2024060103 7200 900 1209600 300"
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		aa     bool
		answer []string
		ns     []string
		extra  []string
	}{
		{name: "exact", qname: "www.example.com.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"www.example.com. 3600 IN A 192.0.2.10"}},
		{name: "added record", qname: "new.example.com.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"new.example.com. 300 IN A 192.0.2.77"}},
		{name: "deleted record", qname: "old.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			ns: []string{soa}},
		{name: "MX with additional", qname: "example.com.", qtype: dns.TypeMX, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"example.com. 3600 IN MX 10 mail.example.com.", "example.com. 3600 IN MX 20 new.example.com."},
			extra:  []string{"mail.example.com. 3600 IN A 192.0.2.25", "new.example.com. 300 IN A 192.0.2.77"}},
		{name: "NXDOMAIN", qname: "nope.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			ns: []string{soa}},
		{name: "NODATA", qname: "www.example.com.", qtype: dns.TypeMX, rcode: dns.RcodeSuccess, aa: true,
			ns: []string{soa}},
		{name: "empty non-terminal", qname: "b.ent.example.com.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			ns: []string{soa}},
		{name: "referral with glue", qname: "host.sub.example.com.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: false,
			ns:    []string{"sub.example.com. 3600 IN NS ns.sub.example.com.", "sub.example.com. 3600 IN NS ns.other.net."},
			extra: []string{"ns.sub.example.com. 3600 IN A 192.0.2.53"}},
		{name: "wildcard", qname: "x.wild.example.com.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"x.wild.example.com. 3600 IN A 192.0.2.99"}},
		{name: "wildcard NODATA", qname: "x.wild.example.com.", qtype: dns.TypeAAAA, rcode: dns.RcodeSuccess, aa: true,
			ns: []string{soa}},
		{name: "CNAME chain", qname: "alias2.example.com.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{
				"alias2.example.com. 3600 IN CNAME alias.example.com.",
				"alias.example.com. 3600 IN CNAME www.example.com.",
				"www.example.com. 3600 IN A 192.0.2.10"}},
		{name: "out of zone", qname: "www.example.net.", qtype: dns.TypeA, rcode: dns.RcodeRefused, aa: false},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				r := exchange(t, network, s.dns, newQuery(tt.qname, tt.qtype))
				if r.Rcode != tt.rcode || r.Authoritative != tt.aa || r.Truncated || r.RecursionAvailable {
					t.Errorf("rcode %s AA %v TC %v RA %v; want rcode %s AA %v\n%v", dns.RcodeToString[r.Rcode], r.Authoritative,
						r.Truncated, r.RecursionAvailable, dns.RcodeToString[tt.rcode], tt.aa, r)
				}
				wantRRs(t, "answer", r.Answer, tt.answer...)
				wantRRs(t, "authority", r.Ns, tt.ns...)
				wantRRs(t, "additional", r.Extra, tt.extra...)
			})
		}
		t.Run(network+"/qname case preserved", func(t *testing.T) {
			// A name not asked before, so the answer is built afresh.
			qname := map[string]string{"udp": "MaIl.ExAmPlE.CoM.", "tcp": "nS1.eXaMpLe.CoM."}[network]
			r := exchange(t, network, s.dns, newQuery(qname, dns.TypeA))
			if len(r.Question) != 1 || r.Question[0].Name != qname {
				t.Errorf("question %v; want the name as sent", r.Question)
			}
			if len(r.Answer) != 1 || r.Answer[0].Header().Name != qname {
				t.Errorf("answer %v; want the owner spelt as the question", r.Answer)
			}
			// The same question in another spelling is answered from the
			// response cache and should carry the new spelling too.
			again := strings.ToUpper(qname)
			r = exchange(t, network, s.dns, newQuery(again, dns.TypeA))
			if len(r.Question) != 1 || r.Question[0].Name != again {
				t.Errorf("cached response: question %v; want the name as sent", r.Question)
			}
			if len(r.Answer) != 1 || r.Answer[0].Header().Name != again {
				t.Errorf("cached response: answer %v; want the owner spelt as the question", r.Answer)
			}
		})
		t.Run(network+"/ANY is minimal", func(t *testing.T) {
			// RFC 8482: one RRset of the name (www holds A and AAAA).
			r := exchange(t, network, s.dns, newQuery("www.example.com.", dns.TypeANY))
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) == 0 {
				t.Fatalf("ANY: %v", r)
			}
			types := map[uint16]bool{}
			for _, rr := range r.Answer {
				types[rr.Header().Rrtype] = true
			}
			if len(types) != 1 {
				t.Errorf("ANY answered %d RRsets; want 1 (RFC 8482)\n%v", len(types), r)
			}
		})
		t.Run(network+"/RD echoed", func(t *testing.T) {
			q := newQuery("www.example.com.", dns.TypeA)
			q.RecursionDesired = true
			r := exchange(t, network, s.dns, q)
			if !r.RecursionDesired || r.RecursionAvailable {
				t.Errorf("RD %v RA %v; want RD copied, RA clear", r.RecursionDesired, r.RecursionAvailable)
			}
		})
	}
}

// parseZone returns the records of a master file in presentation form,
// sorted, owner names lower-cased.
func parseZone(t *testing.T, text string) []string {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), "", "")
	var out []string
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rr.Header().Name = strings.ToLower(rr.Header().Name)
		out = append(out, rr.String())
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("parse zone: %v\n%s", err, text)
	}
	slices.Sort(out)
	return out
}
