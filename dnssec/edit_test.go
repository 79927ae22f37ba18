package dnssec

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// editNames are the names the random edits touch, below example.az.:
// nested names (empty non-terminals appear and go), a wildcard, a
// delegation with glue and names below it, and an insecure delegation.
var editNames = []string{
	"a", "b.a", "c.b.a", "*.a", "x", "y.x", "sub", "ns.sub", "deep.ns.sub",
	"d", "e.d", "m", "z.m", "ins", "q.ins",
}

// editRecords returns a random unsigned RRset collection for name.
func editRecords(r *rand.Rand, name string) []dns.RR {
	var out []dns.RR
	add := func(s string) {
		rr, err := dns.NewRR(name + " " + s)
		if err != nil {
			panic(err)
		}
		out = append(out, rr)
	}
	switch r.IntN(8) {
	case 0: // nothing: the name goes
	case 1:
		add(fmt.Sprintf("%d IN A 192.0.2.%d", 300+r.IntN(2), 1+r.IntN(3)))
	case 2:
		add("300 IN A 192.0.2.1")
		add("300 IN AAAA 2001:db8::1")
		add("300 IN TXT \"hello\"")
	case 3:
		add("300 IN NS ns.sub.example.az.")
		if r.IntN(2) == 0 {
			add("300 IN DS 12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE1ABD5D6D5B3F2E6B1B2D6E2A")
		}
	case 4:
		add("300 IN CNAME a.example.az.")
	case 5:
		add("300 IN MX 10 a.example.az.")
	case 6:
		add(fmt.Sprintf("300 IN TXT \"%d\"", r.IntN(3)))
	case 7:
		add("300 IN A 192.0.2.7")
		add("300 IN TXT \"seven\"")
	}
	return out
}

func recordStrings(z *zone.Zone) []string {
	var out []string
	for _, rr := range z.Records() {
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

func nodeStrings(n *zone.Node) []string {
	if n == nil || n.Empty() {
		return nil
	}
	var out []string
	for _, set := range n.RRsets {
		for _, rr := range set.RRs() {
			out = append(out, rr.String())
		}
		for _, rr := range set.Sigs() {
			out = append(out, rr.String())
		}
	}
	slices.Sort(out)
	return out
}

// TestSignEditMatchesSign makes random sequences of edits of a signed
// zone and checks that each version SignEdit makes is the zone Sign makes
// of the same records: Sign, given the incremental version as the one
// before, keeps every signature and makes none, and gives the same
// records. Changed must name every name that differs from the version
// before, and no edit may disturb that version.
func TestSignEditMatchesSign(t *testing.T) {
	nsec3 := DefaultPolicy()
	nsec3.Denial = DenialNSEC3
	optout := nsec3
	optout.OptOut = true
	optout.SplitKeys = true
	salted := nsec3
	salted.Salt, salted.Iterations = "aabb", 1
	policies := []struct {
		name string
		p    Policy
	}{{"nsec", DefaultPolicy()}, {"nsec3", nsec3}, {"nsec3-optout", optout}, {"nsec3-salt", salted}}
	for _, pc := range policies {
		keys, err := InitialKeys("example.az.", pc.p, t0)
		if err != nil {
			t.Fatal(err)
		}
		for seed := range uint64(6) {
			t.Run(fmt.Sprintf("%s/%d", pc.name, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 11))
				cur := signWith(t, pc.p, nil, keys, t0, buildZone(t, testZone)).Zone
				serial := cur.Serial()
				applied, small := 0, 0
				for step := range 100 {
					byName := map[string][]dns.RR{}
					for _, rr := range Strip(cur) {
						k := strings.ToLower(rr.Header().Name)
						byName[k] = append(byName[k], rr)
					}
					changes := map[string][]dns.RR{}
					for range 1 + r.IntN(3) {
						name := editNames[r.IntN(len(editNames))] + ".example.az."
						rrs := editRecords(r, name)
						byName[name] = rrs
						k, _ := zone.WireKey(name)
						changes[k] = rrs
					}
					if r.IntN(2) == 0 {
						serial++
						apex := slices.Clone(byName["example.az."])
						for i, rr := range apex {
							if soa, ok := rr.(*dns.SOA); ok {
								c := *soa
								c.Serial = serial
								apex[i] = &c
							}
						}
						byName["example.az."] = apex
						changes[cur.Key] = apex
					}
					var all []dns.RR
					for _, rrs := range byName {
						all = append(all, rrs...)
					}
					unsigned, berr := zone.Build("example.az.", all)
					before := recordStrings(cur)
					out, err := SignEdit(EditInput{Prev: cur, Changes: changes, Keys: keys, Policy: pc.p, Now: t0})
					if !slices.Equal(recordStrings(cur), before) {
						t.Fatalf("step %d: SignEdit changed the version it was given", step)
					}
					if (berr == nil) != (err == nil) {
						t.Fatalf("step %d: Build error %v, SignEdit error %v", step, berr, err)
					}
					if err != nil {
						continue
					}
					full := signWith(t, pc.p, out.Zone, keys, t0, unsigned)
					if full.Made != 0 {
						t.Errorf("step %d: Sign made %d signatures that SignEdit did not", step, full.Made)
					}
					if g, w := recordStrings(out.Zone), recordStrings(full.Zone); !slices.Equal(g, w) {
						t.Fatalf("step %d: SignEdit made\n%s\nSign made\n%s", step, strings.Join(g, "\n"), strings.Join(w, "\n"))
					}
					seen := map[string]bool{}
					check := func(_ []byte, n *zone.Node) bool {
						if seen[n.Key] {
							return true
						}
						seen[n.Key] = true
						if !slices.Equal(nodeStrings(cur.LookupAny(n.Key)), nodeStrings(out.Zone.LookupAny(n.Key))) && !out.Changed[n.Key] {
							t.Errorf("step %d: %s changed but is not in Changed", step, n.Name)
						}
						return true
					}
					out.Zone.WalkAll(check)
					cur.WalkAll(check)
					if len(out.Changed) < 12 {
						small++
					}
					cur = out.Zone
					applied++
				}
				if applied < 30 || small < applied/2 {
					t.Fatalf("%d of 100 edits applied, %d of them small: the test exercises too little", applied, small)
				}
				verifyAll(t, cur, t0)
			})
		}
		t.Run(pc.name+"/external", func(t *testing.T) {
			// One long sequence, checked by the independent verifiers.
			r := rand.New(rand.NewPCG(99, 1))
			cur := signWith(t, pc.p, nil, keys, t0, buildZone(t, testZone)).Zone
			for range 60 {
				changes := map[string][]dns.RR{}
				name := editNames[r.IntN(len(editNames))] + ".example.az."
				k, _ := zone.WireKey(name)
				changes[k] = editRecords(r, name)
				if out, err := SignEdit(EditInput{Prev: cur, Changes: changes, Keys: keys, Policy: pc.p, Now: t0}); err == nil {
					cur = out.Zone
				}
			}
			externalVerify(t, cur, t0)
		})
	}
}

// TestSignEditSignsLittle checks that a one-name edit of a signed zone
// makes only the signatures it must: the changed RRset, the SOA and the
// chain records around the name.
func TestSignEditSignsLittle(t *testing.T) {
	for _, denial := range []Denial{DenialNSEC, DenialNSEC3} {
		t.Run(string(denial), func(t *testing.T) {
			p := DefaultPolicy()
			p.Denial = denial
			keys, err := InitialKeys("example.az.", p, t0)
			if err != nil {
				t.Fatal(err)
			}
			first := signWith(t, p, nil, keys, t0, buildZone(t, testZone))
			apex := nextApex(first.Zone)
			rr, _ := dns.NewRR("new.example.az. 300 IN A 192.0.2.99")
			k, _ := zone.WireKey("new.example.az.")
			out, err := SignEdit(EditInput{Prev: first.Zone, Changes: map[string][]dns.RR{k: {rr}, first.Zone.Key: apex}, Keys: keys, Policy: p, Now: t0.Add(time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			// SOA, the new A, the new name's chain record and its
			// predecessor's: 4 (NSEC3 adds no record at the name itself).
			if out.Made < 3 || out.Made > 4 {
				t.Errorf("made %d signatures, want 3 or 4", out.Made)
			}
			if len(out.Changed) > 4 {
				t.Errorf("changed %d names: %v", len(out.Changed), out.Changed)
			}
			verifyAll(t, out.Zone, t0.Add(time.Minute))
		})
	}
}

// TestSignEditRefuses checks what SignEdit leaves to Sign or refuses.
func TestSignEditRefuses(t *testing.T) {
	p := DefaultPolicy()
	keys, err := InitialKeys("example.az.", p, t0)
	if err != nil {
		t.Fatal(err)
	}
	first := signWith(t, p, nil, keys, t0, buildZone(t, testZone))
	z := first.Zone
	soa := dns.Copy(z.SOA).(*dns.SOA)
	soa.Minttl = 60 // the chain's TTL follows
	ns := z.Apex.Get(dns.TypeNS).RRs()
	_, err = SignEdit(EditInput{Prev: z, Changes: map[string][]dns.RR{z.Key: append([]dns.RR{soa}, ns...)}, Keys: keys, Policy: p, Now: t0})
	if !errors.Is(err, ErrSignAll) {
		t.Errorf("SOA minimum changed: %v, want ErrSignAll", err)
	}
	nsec3 := p
	nsec3.Denial = DenialNSEC3
	k, _ := zone.WireKey("www.example.az.")
	rr, _ := dns.NewRR("www.example.az. 300 IN A 192.0.2.1")
	if _, err := SignEdit(EditInput{Prev: z, Changes: map[string][]dns.RR{k: {rr}}, Keys: keys, Policy: nsec3, Now: t0}); !errors.Is(err, ErrSignAll) {
		t.Errorf("NSEC chain, NSEC3 policy: %v, want ErrSignAll", err)
	}
	bad, _ := dns.NewRR("www.example.az. 300 IN NSEC example.az. A")
	if _, err := SignEdit(EditInput{Prev: z, Changes: map[string][]dns.RR{k: {bad}}, Keys: keys, Policy: p, Now: t0}); !errors.Is(err, ErrManagedData) {
		t.Errorf("NSEC in the change: %v, want ErrManagedData", err)
	}
}

// TestSignEditRefresh checks that refreshing the names Due names remakes
// exactly the signatures Sign would remake at the same time, and keeps
// every other.
func TestSignEditRefresh(t *testing.T) {
	for _, denial := range []Denial{DenialNSEC, DenialNSEC3} {
		t.Run(string(denial), func(t *testing.T) {
			p := DefaultPolicy()
			p.Denial = denial
			keys, err := InitialKeys("example.az.", p, t0)
			if err != nil {
				t.Fatal(err)
			}
			first := signWith(t, p, nil, keys, t0, buildZone(t, testZone))
			// Expiry times are spread over the jitter: half way through
			// it, about half the names are due.
			now := t0.Add(p.Validity.D() - p.Refresh.D() - p.Jitter.D()/2)
			due := Due(first.Zone, now.Add(p.Refresh.D()))
			total := 0
			first.Zone.WalkAll(func(_ []byte, n *zone.Node) bool { total++; return true })
			if len(due) == 0 || len(due) >= total {
				t.Fatalf("%d of %d names due: the test needs some", len(due), total)
			}
			out, err := SignEdit(EditInput{Prev: first.Zone, Changes: map[string][]dns.RR{}, Refresh: due, Keys: keys, Policy: p, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if out.Made == 0 || len(out.Changed) != len(due) {
				t.Errorf("made %d signatures, changed %d names, %d due", out.Made, len(out.Changed), len(due))
			}
			if left := Due(out.Zone, now.Add(p.Refresh.D())); len(left) != 0 {
				t.Errorf("still due after the refresh: %d names", len(left))
			}
			unsigned, err := zone.Build("example.az.", Strip(out.Zone))
			if err != nil {
				t.Fatal(err)
			}
			full := signWith(t, p, out.Zone, keys, now, unsigned)
			if full.Made != 0 {
				t.Errorf("Sign made %d signatures the refresh did not", full.Made)
			}
			if g, w := recordStrings(out.Zone), recordStrings(full.Zone); !slices.Equal(g, w) {
				t.Errorf("refreshed zone differs from Sign's")
			}
			verifyAll(t, out.Zone, now)
		})
	}
}

// nextApex returns the unsigned records of z's apex with the SOA serial
// moved on by one: what an edit hands SignEdit for the apex.
func nextApex(z *zone.Zone) []dns.RR {
	soa := dns.Copy(z.SOA).(*dns.SOA)
	soa.Serial++
	apex := []dns.RR{soa}
	for _, set := range z.Apex.RRsets {
		if !Managed(set.Type) && set.Type != dns.TypeSOA {
			apex = append(apex, set.RRs()...)
		}
	}
	return apex
}
