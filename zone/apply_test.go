package zone_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// applyNames are the names the random edits touch: nested names (so that
// empty non-terminals appear and go), wildcards, a delegation with glue
// below it, a DNAME, and NSEC3-style hash owners directly below the apex.
var applyNames = []string{
	"example.", "a.example.", "b.a.example.", "c.b.a.example.", "*.a.example.",
	"x.example.", "*.x.example.", "y.*.x.example.", "sub.example.", "ns.sub.example.",
	"deep.ns.sub.example.", "d.example.", "y.d.example.", "m.example.",
	"0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.", "2t7b4g4vsa5smi47k61mv5bv1a22bojr.example.",
}

// applyRecords returns a random set of records for name.
func applyRecords(r *rand.Rand, name string) []dns.RR {
	var out []dns.RR
	add := func(s string) {
		rr, err := dns.NewRR(name + " " + s)
		if err != nil {
			panic(err)
		}
		out = append(out, rr)
	}
	if name == "example." {
		add(fmt.Sprintf("3600 IN SOA ns.example. host.example. %d 3600 600 86400 300", 1+r.IntN(1000)))
		add("3600 IN NS ns.sub.example.")
		if r.IntN(3) == 0 {
			add("3600 IN NS ns2.example.")
		}
		if r.IntN(3) == 0 {
			add("300 IN NSEC a.example. NS SOA RRSIG NSEC")
		}
		if r.IntN(4) == 0 {
			add("300 IN RRSIG NS 8 1 3600 20300101000000 20200101000000 1 example. AAAA")
		}
		return out
	}
	if strings.Count(name, ".") == 2 && len(name) > 40 { // a hash owner
		if r.IntN(2) == 0 {
			add("300 IN NSEC3 1 0 0 - 0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TOM A RRSIG")
			if r.IntN(2) == 0 {
				add("300 IN RRSIG NSEC3 8 2 300 20300101000000 20200101000000 1 example. AAAA")
			}
		}
		return out
	}
	switch r.IntN(9) {
	case 0: // nothing
	case 1:
		add(fmt.Sprintf("%d IN A 192.0.2.%d", 300+r.IntN(2), 1+r.IntN(3)))
	case 2:
		add("300 IN A 192.0.2.1")
		add("300 IN AAAA 2001:db8::1")
		add("300 IN TXT \"hello\"")
	case 3:
		add("300 IN NS ns.sub.example.")
		if r.IntN(2) == 0 {
			add("300 IN DS 12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE1ABD5D6D5B3F2E6B1B2D6E2A")
		}
	case 4:
		add("300 IN CNAME a.example.")
	case 5:
		add("300 IN DNAME example.net.")
	case 6:
		add("300 IN MX 10 a.example.")
		add("300 IN NSEC m.example. MX RRSIG NSEC")
	case 7:
		add("300 IN A 192.0.2.7")
		add("300 IN RRSIG A 8 3 300 20300101000000 20200101000000 1 example. AAAA")
	case 8:
		add("300 IN A 192.0.2.9")
		add("300 IN NSEC example. A RRSIG NSEC")
	}
	return out
}

func recordsByName(z *zone.Zone) map[string][]dns.RR {
	out := map[string][]dns.RR{}
	for _, rr := range z.Records() {
		k := strings.ToLower(rr.Header().Name)
		out[k] = append(out[k], rr)
	}
	return out
}

// TestApplyMatchesBuild makes random sequences of edits and checks that
// each version Apply makes is the zone Build makes from the same records,
// that a change Build refuses Apply refuses too, and that the version
// edited from is left as it was.
func TestApplyMatchesBuild(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			cur, err := zone.Build("example.", applyRecords(r, "example."))
			if err != nil {
				t.Fatal(err)
			}
			applied := 0
			for step := range 150 {
				changes := map[string][]dns.RR{}
				byName := recordsByName(cur)
				for range 1 + r.IntN(3) {
					name := applyNames[r.IntN(len(applyNames))]
					rrs := applyRecords(r, name)
					byName[name] = rrs
					k, _ := zone.WireKey(name)
					changes[k] = slices.Clone(rrs)
				}
				var all []dns.RR
				for _, rrs := range byName {
					for _, rr := range rrs {
						all = append(all, dns.Copy(rr))
					}
				}
				want, werr := zone.Build("example.", all)
				before := describe(cur)
				got, gerr := zone.Apply(cur, changes)
				if after := describe(cur); after != before {
					t.Fatalf("step %d: Apply changed the version it was given:\n%s\nwas\n%s", step, after, before)
				}
				if (werr == nil) != (gerr == nil) {
					t.Fatalf("step %d: Build error %v, Apply error %v", step, werr, gerr)
				}
				if werr != nil {
					continue
				}
				if g, w := describe(got), describe(want); g != w {
					t.Fatalf("step %d: Apply made\n%s\nBuild made\n%s", step, g, w)
				}
				cur = got
				applied++
			}
			if applied < 20 {
				t.Fatalf("only %d of 150 random edits were valid: the test exercises too little", applied)
			}
		})
	}
}

// describe renders everything a reader of z can see: each name in
// canonical order with its records, signatures and links, the NSEC and
// NSEC3 lookups and the counts.
func describe(z *zone.Zone) string {
	var b strings.Builder
	fmt.Fprintf(&b, "origin %s serial %d records %d names %d signed %v\n", z.Origin, z.Serial(), z.Len(), z.Names(), z.Signed())
	name := func(n *zone.Node) string {
		if n == nil {
			return "-"
		}
		return n.Name
	}
	sets := func(n *zone.Node) string {
		var parts []string
		for _, s := range n.RRsets {
			var rrs []string
			for _, rr := range s.RRs() {
				rrs = append(rrs, rr.String())
			}
			for _, rr := range s.Sigs() {
				rrs = append(rrs, "sig "+rr.String())
			}
			slices.Sort(rrs)
			parts = append(parts, fmt.Sprintf("%s/%d[%s]", dns.Type(s.Type), s.TTL, strings.Join(rrs, "|")))
		}
		return strings.Join(parts, " ")
	}
	z.WalkAll(func(ck []byte, n *zone.Node) bool {
		fmt.Fprintf(&b, "%s cut=%s dname=%s wild=%s %s\n", n.Name, name(n.Cut()), name(n.DNAME()), name(n.Wildcard()), sets(n))
		if l := z.LookupAny(n.Key); l != n {
			fmt.Fprintf(&b, "  LookupAny(%s) = %s\n", n.Name, name(l))
		}
		return true
	})
	for _, q := range append(slices.Clone(applyNames), "zzz.example.", "q.b.a.example.", "a.x.example.") {
		k, _ := zone.WireKey(q)
		f, exact := z.Find(k)
		fmt.Fprintf(&b, "find %s: %s %v; nsec %s; prev %s\n", q, name(f), exact, name(z.CoveringNSEC(k)), name(z.Prev(k)))
	}
	for _, h := range []string{"0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TOM", "1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV"} {
		n, match := z.FindNSEC3(h)
		fmt.Fprintf(&b, "nsec3 %s: %s %v\n", h, name(n), match)
	}
	fmt.Fprintf(&b, "first nsec3 %s\n", name(z.FirstNSEC3()))
	return b.String()
}

// TestApplyShares checks that a version shares the nodes of the names a
// change does not touch.
func TestApplyShares(t *testing.T) {
	var rrs []dns.RR
	rrs = append(rrs, mustRR(t, "example. 3600 IN SOA ns.example. host.example. 1 3600 600 86400 300"), mustRR(t, "example. 3600 IN NS ns.example."))
	for i := range 1000 {
		rrs = append(rrs, mustRR(t, fmt.Sprintf("h%d.example. 300 IN A 192.0.2.1", i)))
	}
	z, err := zone.Build("example.", rrs)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := zone.WireKey("h5.example.")
	z2, err := zone.Apply(z, map[string][]dns.RR{k: {mustRR(t, "h5.example. 300 IN A 192.0.2.55")}})
	if err != nil {
		t.Fatal(err)
	}
	shared := 0
	z.Walk(func(n *zone.Node) bool {
		if z2.Lookup(n.Key) == n {
			shared++
		}
		return true
	})
	if shared != z.Names()-1 {
		t.Errorf("%d of %d nodes shared after a one-name change, want all but the changed one", shared, z.Names())
	}
	if got := z2.Lookup(k).RRsets[0].RRs()[0].(*dns.A).A.String(); got != "192.0.2.55" {
		t.Errorf("changed name holds %s", got)
	}
	if got := z.Lookup(k).RRsets[0].RRs()[0].(*dns.A).A.String(); got != "192.0.2.1" {
		t.Errorf("old version changed: %s", got)
	}
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}
