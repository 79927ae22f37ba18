package audit

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// govApex is what every audited test zone starts with.
const govApex = `
@       SOA ns1 hostmaster 1 7200 900 1209600 300
        NS  ns1
ns1     A   192.0.2.100
`

var national = []string{"az."}

// findings renders a report's findings as "NAME TYPE TARGET: WHY".
func findings(rep Report) []string {
	out := []string{}
	for _, f := range rep.Findings {
		out = append(out, f.Name+" "+f.Type+" "+f.Target+": "+f.Why())
	}
	return out
}

// checkNothingForeignAsked fails the test if the audit asked the resolver
// about a name outside the national suffixes.
func checkNothingForeignAsked(t *testing.T, f *fakeResolver) {
	t.Helper()
	for _, q := range f.questions() {
		name, _, _ := strings.Cut(q, " ")
		if !National(name, national) {
			t.Errorf("the audit asked the resolver %q, a foreign name", q)
		}
	}
}

func TestDeps(t *testing.T) {
	tests := []struct {
		name    string
		records string // added to govApex
		opts    Options
		want    []string
		// wantForeign and wantUnresolved count names; -1: not checked.
		wantForeign, wantUnresolved int
		wantLimits                  []string
	}{
		{
			name:    "in-zone and national references are fine",
			records: "@ NS ns1.good.az.\n@ MX 10 mail\n@ MX 20 mx.good.az.\nmail A 192.0.2.2\nintra CNAME alias.good.az.\nd DNAME good.az.\n_sip._tcp SRV 0 0 5060 www.good.az.\n",
		},
		{
			name:    "apex NS outside",
			records: "@ NS ns.cloudflare.com.\n",
			want:    []string{"gov.az. NS ns.cloudflare.com.: outside the national suffixes"},
		},
		{
			name:    "apex NS national, its zone served from abroad",
			records: "@ NS ns.dept.az.\n",
			want:    []string{"gov.az. NS ns.dept.az.: via dept.az. NS ns1.cloudflare.com."},
		},
		{
			name:    "apex NS national, two zones away from abroad",
			records: "@ NS ns.chain.az.\n",
			want:    []string{"gov.az. NS ns.chain.az.: via chain.az. NS ns.dept.az. > dept.az. NS ns1.cloudflare.com."},
		},
		{
			name:    "name servers in a national cycle",
			records: "@ NS ns.ring1.az.\n",
		},
		{
			name:    "name servers in a cycle that leaves",
			records: "@ NS ns.ring4.az.\nw CNAME www.ring4.az.\n",
			want: []string{
				"gov.az. NS ns.ring4.az.: via ring4.az. NS ns.ring3.az. > ring3.az. NS ns.foreign-dns.com.",
				"w.gov.az. CNAME www.ring4.az.: via ring4.az. NS ns.ring3.az. > ring3.az. NS ns.foreign-dns.com.",
			},
			wantForeign: 2,
		},
		{
			name:    "delegation with a foreign name server and glue",
			records: "sub NS ns.sub\nsub NS ns.foreign.org.\nns.sub A 192.0.2.3\nsub DS 12345 13 2 0000000000000000000000000000000000000000000000000000000000000000\n",
			want:    []string{"sub.gov.az. NS ns.foreign.org.: outside the national suffixes"},
		},
		{
			name:    "glue below a cut is no reference",
			records: "sub NS ns.sub\nns.sub A 192.0.2.3\nns.sub AAAA 2001:db8::3\n",
		},
		{
			name:    "name under the zone's own delegation served from abroad",
			records: "sub NS ns.sub\nsub NS ns.foreign.org.\nns.sub A 192.0.2.3\ndeep CNAME www.sub\n",
			want: []string{
				"deep.gov.az. CNAME www.sub.gov.az.: via sub.gov.az. NS ns.foreign.org.",
				"sub.gov.az. NS ns.foreign.org.: outside the national suffixes",
			},
			wantForeign: 2,
		},
		{
			name:    "name under a delegation to foreign servers that fail",
			records: "lame NS ns.foreign.org.\nl CNAME www.lame\n",
			want: []string{
				"l.gov.az. CNAME www.lame.gov.az.: via lame.gov.az. NS ns.foreign.org.",
				"lame.gov.az. NS ns.foreign.org.: outside the national suffixes",
			},
			wantForeign: 2,
		},
		{
			name:           "name under a delegation to national servers that fail",
			records:        "lame2 NS ns1.good.az.\nm CNAME www.lame2\n",
			want:           []string{"m.gov.az. CNAME www.lame2.gov.az.: unresolved: lookup of www.lame2.gov.az. CNAME failed: SERVFAIL: " + errScripted.Error()},
			wantUnresolved: 1,
		},
		{
			name:    "CNAME outside",
			records: "www CNAME cdn.example.com.\n",
			want:    []string{"www.gov.az. CNAME cdn.example.com.: outside the national suffixes"},
		},
		{
			name:    "CNAME to a national name that is a CNAME outside",
			records: "portal CNAME web.good.az.\n",
			want:    []string{"portal.gov.az. CNAME web.good.az.: via web.good.az. CNAME x.akamai.net."},
		},
		{
			name:    "CNAME chain inside the zone that leaves",
			records: "inzone CNAME www\nwww CNAME cdn.example.com.\n",
			want: []string{
				"inzone.gov.az. CNAME www.gov.az.: via www.gov.az. CNAME cdn.example.com.",
				"www.gov.az. CNAME cdn.example.com.: outside the national suffixes",
			},
			wantForeign: 2,
		},
		{
			name:    "CNAME to a national name served from abroad",
			records: "d CNAME www.dept.az.\n",
			want:    []string{"d.gov.az. CNAME www.dept.az.: via dept.az. NS ns1.cloudflare.com."},
		},
		{
			name:    "national CNAME chain of several hops",
			records: "long CNAME a1.good.az.\n",
		},
		{
			name:    "chain longer than the depth limit",
			records: "long CNAME a1.good.az.\n",
			opts:    Options{MaxDepth: 3},
			want: []string{"long.gov.az. CNAME a1.good.az.: unresolved: chain longer than the audit follows (3 links) " +
				"(after a1.good.az. CNAME a2.good.az. > a2.good.az. CNAME a3.good.az. > a3.good.az. CNAME a4.good.az. > a4.good.az. CNAME a5.good.az.)"},
			wantUnresolved: 1,
			wantLimits:     []string{"depth"},
		},
		{
			name:    "CNAME loop",
			records: "loop CNAME l1.good.az.\n",
			want: []string{"loop.gov.az. CNAME l1.good.az.: unresolved: CNAME or DNAME loop at l1.good.az. " +
				"(after l1.good.az. CNAME l2.good.az. > l2.good.az. CNAME l1.good.az.)"},
			wantUnresolved: 1,
		},
		{
			name:    "CNAME loop inside the zone",
			records: "a CNAME b\nb CNAME a\n",
			want: []string{
				"a.gov.az. CNAME b.gov.az.: unresolved: CNAME or DNAME loop at b.gov.az. (after b.gov.az. CNAME a.gov.az. > a.gov.az. CNAME b.gov.az.)",
				"b.gov.az. CNAME a.gov.az.: unresolved: CNAME or DNAME loop at a.gov.az. (after a.gov.az. CNAME b.gov.az. > b.gov.az. CNAME a.gov.az.)",
			},
			wantUnresolved: 2,
		},
		{
			name:    "lookup fails",
			records: "broken CNAME x.broken.az.\n",
			want: []string{"broken.gov.az. CNAME x.broken.az.: unresolved: lookup of x.broken.az. CNAME failed: SERVFAIL: " +
				errScripted.Error()},
			wantUnresolved: 1,
		},
		{
			name:    "the NS set of the target's zone does not resolve",
			records: "f CNAME y.flaky.az.\n",
			want: []string{"f.gov.az. CNAME y.flaky.az.: unresolved: lookup of flaky.az. NS failed: SERVFAIL: " +
				errScripted.Error()},
			wantUnresolved: 1,
		},
		{
			name:           "DNSSEC bogus answer",
			records:        "b MX 10 www.bogus.az.\n",
			want:           []string{"b.gov.az. MX www.bogus.az.: unresolved: lookup of www.bogus.az. CNAME failed: bogus: DNSSEC bogus"},
			wantUnresolved: 1,
		},
		{
			name:    "DNAME outside, and a name below it",
			records: "old DNAME legacy.example.com.\nx CNAME foo.old\n",
			want: []string{
				"old.gov.az. DNAME legacy.example.com.: outside the national suffixes",
				"x.gov.az. CNAME foo.old.gov.az.: via foo.old.gov.az. DNAME foo.legacy.example.com.",
			},
			wantForeign: 2,
		},
		{
			name:    "DNAME to a national zone that leads outside",
			records: "n CNAME web.g\ng DNAME good.az.\n",
			want:    []string{"n.gov.az. CNAME web.g.gov.az.: via web.g.gov.az. DNAME web.good.az. > web.good.az. CNAME x.akamai.net."},
		},
		{
			name:    "MX",
			records: "@ MX 10 mx.outlook.com.\n@ MX 20 mx.good.az.\n@ MX 30 mx.outlook.com.\nnull MX 0 .\n",
			want:    []string{"gov.az. MX mx.outlook.com.: outside the national suffixes"},
		},
		{
			name:    "SRV",
			records: "_sip._tcp SRV 0 0 5060 sip.example.net.\n_xmpp._tcp SRV 0 0 5269 .\n",
			want:    []string{"_sip._tcp.gov.az. SRV sip.example.net.: outside the national suffixes"},
		},
		{
			name:    "HTTPS and SVCB",
			records: "svc HTTPS 1 svc.example.org. alpn=h2\nsvc2 SVCB 1 . alpn=h2\nsvc3 HTTPS 0 web.good.az.\n",
			want: []string{
				"svc.gov.az. HTTPS svc.example.org.: outside the national suffixes",
				"svc3.gov.az. HTTPS web.good.az.: via web.good.az. CNAME x.akamai.net.",
			},
			wantForeign: 2,
		},
		{
			name:    "wildcard CNAME",
			records: "*.w CNAME cdn.example.com.\nx CNAME foo.w\n",
			want: []string{
				"*.w.gov.az. CNAME cdn.example.com.: outside the national suffixes",
				"x.gov.az. CNAME foo.w.gov.az.: via foo.w.gov.az. CNAME cdn.example.com.",
			},
			wantForeign: 2,
		},
		{
			name:    "lookup limit",
			records: "a CNAME www.good.az.\nb CNAME www.ring2.az.\n",
			opts:    Options{MaxLookups: 1},
			want: []string{
				"a.gov.az. CNAME www.good.az.: unresolved: lookup limit of the audit reached (1)",
				"b.gov.az. CNAME www.ring2.az.: unresolved: lookup limit of the audit reached (1)",
			},
			wantUnresolved: 2,
			wantLimits:     []string{"lookups"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := parseZone(t, "gov.az.", govApex+tt.records)
			f := newFake(t)
			rep, err := Deps(t.Context(), z, national, f, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == nil {
				want = []string{}
			}
			if got := findings(rep); !slices.Equal(got, want) {
				t.Errorf("findings:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			wantForeign, wantUnresolved := tt.wantForeign, tt.wantUnresolved
			if wantForeign == 0 && wantUnresolved == 0 {
				for _, f := range rep.Findings {
					if f.Status == StatusForeign {
						wantForeign = 1
					}
				}
			}
			if rep.Foreign != wantForeign || rep.Unresolved != wantUnresolved {
				t.Errorf("foreign names %d, unresolved %d; want %d, %d", rep.Foreign, rep.Unresolved, wantForeign, wantUnresolved)
			}
			if !slices.Equal(rep.LimitsReached, tt.wantLimits) {
				t.Errorf("limits reached %v, want %v", rep.LimitsReached, tt.wantLimits)
			}
			if !rep.Resolver || rep.Zone != "gov.az." || rep.Serial != 1 || !slices.Equal(rep.Suffixes, national) {
				t.Errorf("report header %+v", rep)
			}
			if rep.Lookups != len(f.questions()) {
				t.Errorf("report says %d lookups, the resolver was asked %d", rep.Lookups, len(f.questions()))
			}
			checkNothingForeignAsked(t, f)
		})
	}
}

// TestFindingFields checks the structured form of a chained finding.
func TestFindingFields(t *testing.T) {
	z := parseZone(t, "gov.az.", govApex+"@ NS ns.chain.az.\nmail MX 10 mx.outlook.com.\n")
	rep, err := Deps(t.Context(), z, national, newFake(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Finding{
		{Name: "gov.az.", Type: "NS", Target: "ns.chain.az.", Status: StatusForeign, Foreign: "ns1.cloudflare.com.",
			Chain: []Step{{Name: "chain.az.", Type: "NS", Target: "ns.dept.az."}, {Name: "dept.az.", Type: "NS", Target: "ns1.cloudflare.com."}}},
		{Name: "mail.gov.az.", Type: "MX", Target: "mx.outlook.com.", Status: StatusForeign, Foreign: "mx.outlook.com.", Chain: []Step{}},
	}
	if !slices.EqualFunc(rep.Findings, want, func(a, b Finding) bool {
		return a.Name == b.Name && a.Type == b.Type && a.Target == b.Target && a.Status == b.Status &&
			a.Foreign == b.Foreign && a.Reason == b.Reason && slices.Equal(a.Chain, b.Chain)
	}) {
		t.Errorf("findings %+v\nwant %+v", rep.Findings, want)
	}
	if rep.Names != 3 || rep.References != 3 {
		t.Errorf("names %d, references %d; want 3, 3 (ns1's A is no reference)", rep.Names, rep.References)
	}
}

// TestJSONIsStable pins the JSON field names scripts read.
func TestJSONIsStable(t *testing.T) {
	z := parseZone(t, "gov.az.", govApex+"www CNAME web.good.az.\n")
	rep, err := Deps(t.Context(), z, national, newFake(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"zone", "serial", "suffixes", "resolver", "names", "references", "lookups", "unchecked",
		"foreign_names", "unresolved_names", "findings", "duration_ns"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON report has no %q: %s", k, b)
		}
	}
	f := m["findings"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "type", "target", "status", "foreign", "chain"} {
		if _, ok := f[k]; !ok {
			t.Errorf("JSON finding has no %q: %s", k, b)
		}
	}
	if f["chain"].([]any)[0].(map[string]any)["type"] != "CNAME" {
		t.Errorf("JSON chain step: %s", b)
	}
}

// TestLookupsAreShared: each question is asked once per audit, however
// many references lead to it.
func TestLookupsAreShared(t *testing.T) {
	z := parseZone(t, "gov.az.", govApex+"a CNAME www.good.az.\nb CNAME www.good.az.\nc MX 10 www.good.az.\nd CNAME mx.good.az.\n")
	f := newFake(t)
	rep, err := Deps(t.Context(), z, national, f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	q := f.questions()
	sorted := slices.Clone(q)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(q) {
		t.Errorf("questions asked more than once: %v", q)
	}
	// www.good.az. CNAME, good.az. NS, mx.good.az. CNAME.
	if rep.Lookups != 3 || len(rep.Findings) != 0 {
		t.Errorf("lookups %d (%v), findings %v", rep.Lookups, q, findings(rep))
	}
}

// TestWithoutResolver: chains are followed through the zone's data only;
// references into other national zones are counted, not followed.
func TestWithoutResolver(t *testing.T) {
	z := parseZone(t, "gov.az.", govApex+
		"www CNAME cdn.example.com.\ninzone CNAME www\nportal CNAME web.good.az.\n@ NS ns.dept.az.\n"+
		"sub NS ns.sub\nsub NS ns.foreign.org.\nns.sub A 192.0.2.3\ndeep CNAME www.sub\n")
	rep, err := Deps(t.Context(), z, national, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"deep.gov.az. CNAME www.sub.gov.az.: via sub.gov.az. NS ns.foreign.org.",
		"inzone.gov.az. CNAME www.gov.az.: via www.gov.az. CNAME cdn.example.com.",
		"sub.gov.az. NS ns.foreign.org.: outside the national suffixes",
		"www.gov.az. CNAME cdn.example.com.: outside the national suffixes",
	}
	if got := findings(rep); !slices.Equal(got, want) {
		t.Errorf("findings:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	// portal's target and the apex's ns.dept.az. are in other national zones.
	if rep.Resolver || rep.Unchecked != 2 || rep.Lookups != 0 {
		t.Errorf("resolver %v, unchecked %d, lookups %d; want false, 2, 0", rep.Resolver, rep.Unchecked, rep.Lookups)
	}
	if s := rep.Summary(); !strings.Contains(s, "no resolver") || !strings.Contains(s, "2 references to other national zones not followed") {
		t.Errorf("summary %q does not say chains were not followed", s)
	}
}

// TestTimeout: a resolver that does not answer makes the references it
// holds up unresolved once the audit's time is up, and the audit ends.
func TestTimeout(t *testing.T) {
	z := parseZone(t, "gov.az.", govApex+"a CNAME www.good.az.\nb CNAME www.ring2.az.\nc CNAME cdn.example.com.\n")
	f := newFake(t)
	f.block = true
	start := time.Now()
	rep, err := Deps(t.Context(), z, national, f, Options{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the audit took %v", d)
	}
	want := []string{
		"a.gov.az. CNAME www.good.az.: unresolved: time limit of the audit reached",
		"b.gov.az. CNAME www.ring2.az.: unresolved: time limit of the audit reached",
		"c.gov.az. CNAME cdn.example.com.: outside the national suffixes",
	}
	if got := findings(rep); !slices.Equal(got, want) {
		t.Errorf("findings:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if !slices.Equal(rep.LimitsReached, []string{"timeout"}) || rep.Unresolved != 2 || rep.Foreign != 1 {
		t.Errorf("limits %v, unresolved %d, foreign %d", rep.LimitsReached, rep.Unresolved, rep.Foreign)
	}
}

func TestDepsErrors(t *testing.T) {
	z := parseZone(t, "gov.az.", govApex)
	if _, err := Deps(t.Context(), z, nil, nil, Options{}); !errors.Is(err, ErrNoSuffixes) {
		t.Errorf("no suffixes: %v, want ErrNoSuffixes", err)
	}
	if _, err := Deps(t.Context(), z, []string{" ", ""}, nil, Options{}); !errors.Is(err, ErrNoSuffixes) {
		t.Errorf("blank suffixes: %v, want ErrNoSuffixes", err)
	}
	if _, err := Deps(t.Context(), z, []string{"tr"}, nil, Options{}); !errors.Is(err, ErrNotNational) {
		t.Errorf("zone outside the suffixes: %v, want ErrNotNational", err)
	}
	if rep, err := Deps(t.Context(), z, []string{"AZ", "gov.az."}, nil, Options{}); err != nil || !slices.Equal(rep.Suffixes, []string{"az.", "gov.az."}) {
		t.Errorf("suffixes are made fully qualified and lower-case: %v %v", rep.Suffixes, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Deps(ctx, parseZone(t, "gov.az.", govApex+"a CNAME www.good.az.\n"), national, newFake(t), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}

func TestNational(t *testing.T) {
	for _, tt := range []struct {
		name     string
		suffixes []string
		want     bool
	}{
		{name: "az.", suffixes: []string{"az."}, want: true},
		{name: "WWW.Gov.AZ.", suffixes: []string{"az."}, want: true},
		{name: "gaz.", suffixes: []string{"az."}, want: false},
		{name: "az.example.com.", suffixes: []string{"az."}, want: false},
		{name: "x.gov.tr.", suffixes: []string{"az.", "gov.tr."}, want: true},
		{name: "anything.", suffixes: []string{"."}, want: true},
		{name: "az.", suffixes: nil, want: false},
	} {
		if got := National(tt.name, tt.suffixes); got != tt.want {
			t.Errorf("National(%q, %v) = %v, want %v", tt.name, tt.suffixes, got, tt.want)
		}
	}
}
