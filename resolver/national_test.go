package resolver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/resolver"
)

// askedSince returns the queries f was sent to addr since the n-th.
func (f *fakeNet) askedSince(n int, addr netip.Addr) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, q := range f.asked[n:] {
		if strings.HasPrefix(q, addr.String()+" ") {
			out = append(out, q)
		}
	}
	return out
}

// nationalInfra are what the test hierarchy's national infrastructure
// holds once www.gov.az. was resolved: the delegations and the addresses
// of their servers.
var nationalInfra = []resolver.Question{
	{Name: "az.", Qtype: dns.TypeNS},
	{Name: "gov.az.", Qtype: dns.TypeNS},
	{Name: "ns.nic.az.", Qtype: dns.TypeA},
	{Name: "ns1.gov.az.", Qtype: dns.TypeA},
}

func mustHints(t *testing.T, text string) []dns.RR {
	t.Helper()
	rrs, err := resolver.ParseNationalHints(strings.NewReader(text), "test hints")
	if err != nil {
		t.Fatal(err)
	}
	if err := resolver.CheckNationalHints(rrs, []string{"az."}); err != nil {
		t.Fatal(err)
	}
	return rrs
}

// TestNationalKeptApart: the national delegations and their servers'
// addresses survive a cache filled many times over and every TTL and
// stale window running out; they are exported first and come back in the
// national store; what is held changing asks for a save at once, a mere
// refresh does not.
func TestNationalKeptApart(t *testing.T) {
	f, hints := hierarchy(t)
	for _, national := range []bool{false, true} {
		t.Run(fmt.Sprintf("national=%v", national), func(t *testing.T) {
			clk := &stepClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			// 512 KiB: 2 KiB per shard, a few entries each.
			cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 512 << 10, StaleWindow: time.Hour, Now: clk.Now})
			var saves atomic.Int64
			cfg := resolver.Config{RootHints: hints, QueryTimeout: 20 * time.Millisecond, Now: clk.Now,
				Island: resolver.IslandConfig{Disabled: true},
				PersistNow: func(reason string) {
					if reason == "national infrastructure changed" {
						saves.Add(1)
					}
				}}
			if national {
				cfg.National = []string{"az."}
			}
			r := resolver.New(cfg, f, cache, nil, nil)
			resolveOK(t, r, "www.gov.az.", dns.TypeA)
			if national && saves.Load() == 0 {
				t.Error("no save asked for when the national delegations were learned")
			}
			// Fill the cache ten times over.
			for i := range 20000 {
				cache.PutRRset([]dns.RR{mustRR(t, fmt.Sprintf("filler%d.example. 3600 A 192.0.2.1", i))}, resolver.RankAnswer)
			}
			if cache.Stats().Evictions == 0 {
				t.Fatal("nothing evicted: the cache was not filled")
			}
			clk.Advance(100 * time.Hour) // past every TTL and the stale window
			for _, q := range nationalInfra {
				_, _, stale, ok := cache.GetRRsetStale(q.Name, q.Qtype)
				if national && (!ok || !stale) {
					t.Errorf("%s %s: held %v stale %v; want it held, stale", q.Name, dns.Type(q.Qtype), ok, stale)
				}
				if !national && ok {
					t.Errorf("%s %s held without national suffixes", q.Name, dns.Type(q.Qtype))
				}
			}
			st := cache.Stats()
			if !national {
				if st.National != 0 {
					t.Errorf("%d national entries without national suffixes", st.National)
				}
				return
			}
			if st.National < int64(len(nationalInfra)) {
				t.Errorf("Stats.National = %d, want at least %d", st.National, len(nationalInfra))
			}
			var dump bytes.Buffer
			if err := cache.Dump(&dump); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(dump.String(), "; rrset gov.az. NS rank=") || !strings.Contains(dump.String(), " national\n") {
				t.Errorf("dump does not show the national entries:\n%.2000s", dump.String())
			}

			// Exported first, and back in the national store of a new
			// cache, however old.
			var recs []resolver.CacheRecord
			if err := cache.Export(func(rec resolver.CacheRecord) error { recs = append(recs, rec); return nil }); err != nil {
				t.Fatal(err)
			}
			for i, rec := range recs[:st.National] {
				if !strings.HasSuffix(rec.Name, "az.") && rec.Name != "ns.nic.az." {
					t.Errorf("record %d of the export is %s %s, not national infrastructure", i, rec.Name, dns.Type(rec.Qtype))
				}
			}
			if recs[0].Qtype != dns.TypeNS {
				t.Errorf("the export starts with %s %s, want an NS RRset", recs[0].Name, dns.Type(recs[0].Qtype))
			}
			clk2 := &stepClock{t: clk.Now().Add(24 * time.Hour)}
			cache2 := resolver.NewCache(resolver.CacheConfig{MaxBytes: 512 << 10, StaleWindow: time.Hour, Now: clk2.Now})
			resolver.New(resolver.Config{RootHints: hints, National: []string{"az."}, Now: clk2.Now}, f, cache2, nil, nil)
			for _, rec := range recs {
				cache2.ImportRecord(rec)
			}
			if got := cache2.Stats().National; got != st.National {
				t.Errorf("imported %d national entries, want %d", got, st.National)
			}
			for i := range 20000 {
				cache2.PutRRset([]dns.RR{mustRR(t, fmt.Sprintf("other%d.example. 3600 A 192.0.2.1", i))}, resolver.RankAnswer)
			}
			for _, q := range nationalInfra {
				if _, _, _, ok := cache2.GetRRsetStale(q.Name, q.Qtype); !ok {
					t.Errorf("%s %s lost after the import", q.Name, dns.Type(q.Qtype))
				}
			}

			// Refreshed with the same records: no save asked for.
			n := saves.Load()
			resolveOK(t, r, "www.gov.az.", dns.TypeA)
			if rrs, _, ok := cache.GetRRset("gov.az.", dns.TypeNS); !ok || len(rrs) == 0 {
				t.Fatal("gov.az. NS not refreshed")
			}
			if saves.Load() != n {
				t.Errorf("%d saves asked for by a refresh that changed nothing", saves.Load()-n)
			}
		})
	}
}

// TestNationalMaxEntries: past the bound, national infrastructure goes to
// the LRU like any other entry.
func TestNationalMaxEntries(t *testing.T) {
	f, hints := hierarchy(t)
	cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20})
	r := resolver.New(resolver.Config{RootHints: hints, QueryTimeout: 20 * time.Millisecond, National: []string{"az."},
		NationalMaxEntries: 2, Island: resolver.IslandConfig{Disabled: true}}, f, cache, nil, nil)
	resolveOK(t, r, "www.gov.az.", dns.TypeA)
	if st := cache.Stats(); st.National != 2 || cache.NationalRefused() == 0 {
		t.Errorf("%d national entries held, %d refused; want 2 and some", st.National, cache.NationalRefused())
	}
}

// TestNationalRootDead: with the root's servers failing (no island mode
// here), a national name is resolved from the national delegations learned
// before, expired as they are; once the root has failed, national names
// start at the national cut without asking it.
func TestNationalRootDead(t *testing.T) {
	f, hints := hierarchy(t)
	r, clk := staleResolver(t, f, hints, func(c *resolver.Config) { c.Island.Disabled = true })
	resolveOK(t, r, "www.gov.az.", dns.TypeA)
	clk.Advance(2 * time.Hour) // every TTL has run out
	f.cut(true, ipRoot)

	n := f.count()
	resolveOK(t, r, "ns1.gov.az.", dns.TypeA) // the root is tried once
	if got := f.askedSince(n, ipRoot); len(got) != 1 {
		t.Errorf("root asked %q; want once, before it is known to fail", got)
	}
	n = f.count()
	resolveOK(t, r, "portal.gov.az.", dns.TypeA)
	if res := r.Resolve(context.Background(), "nosuch.gov.az.", dns.TypeA); res.Rcode != dns.RcodeNameError {
		t.Errorf("nosuch.gov.az.: rcode %s err %v, want NXDOMAIN", dns.RcodeToString[res.Rcode], res.Err)
	}
	if got := f.askedSince(n, ipRoot); len(got) != 0 {
		t.Errorf("root asked %q for national names after it failed", got)
	}
	if r.Stats().NationalCutStarts.Load() == 0 {
		t.Error("no resolution counted as started at a national cut")
	}
	// Foreign names still go to the root.
	if res := r.Resolve(context.Background(), "www.tc.com.", dns.TypeA); res.Err == nil {
		t.Errorf("www.tc.com. answered with the root dead: %v", res.Answer)
	}
}

// TestNationalIsland: in island mode a national name never asked before
// is resolved from the national cut learned before (expired), with no
// query to the root; what is foreign and not known fails at once, without
// a query.
func TestNationalIsland(t *testing.T) {
	f, hints := hierarchy(t)
	r, clk := staleResolver(t, f, hints, nil)
	resolveOK(t, r, "www.gov.az.", dns.TypeA)
	clk.Advance(100 * time.Hour) // past every TTL and the stale window
	f.cut(true, foreignServers...)
	r.SetIslandForTest(true)

	n := f.count()
	start := time.Now()
	resolveOK(t, r, "portal.gov.az.", dns.TypeA)
	if d := time.Since(start); d > time.Second {
		t.Errorf("national name in island mode took %v", d)
	}
	for _, ip := range foreignServers {
		if got := f.askedSince(n, ip); len(got) != 0 {
			t.Errorf("foreign server %s asked %q in island mode", ip, got)
		}
	}
	start = time.Now()
	res := r.Resolve(context.Background(), "www.never-asked.com.", dns.TypeA)
	if res.Rcode != dns.RcodeServerFailure || !errors.Is(res.Err, resolver.ErrNoReachableAuthority) {
		t.Errorf("unknown foreign name: rcode %s err %v, want SERVFAIL, no reachable authority", dns.RcodeToString[res.Rcode], res.Err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("unknown foreign name answered in %v in island mode, want under 50ms", d)
	}
	for _, ip := range foreignServers {
		if got := f.askedSince(n, ip); len(got) != 0 {
			t.Errorf("foreign server %s asked %q in island mode, with no trial due", ip, got)
		}
	}
}

// TestNationalHints: a node that never saw the national zones reaches them
// through the national hints with the root cut off: in island mode at
// once, and out of it after the root's one failure.
func TestNationalHints(t *testing.T) {
	hintText := "az. NS ns.nic.az.\nns.nic.az. A 192.0.2.2\n"
	for _, island := range []bool{true, false} {
		t.Run(fmt.Sprintf("island=%v", island), func(t *testing.T) {
			f, hints := hierarchy(t)
			f.cut(true, foreignServers...)
			r, _ := staleResolver(t, f, hints, func(c *resolver.Config) {
				c.NationalHints = mustHints(t, hintText)
				c.Island.Disabled = !island
			})
			if island {
				r.RestoreIsland()
			}
			resolveOK(t, r, "www.gov.az.", dns.TypeA)
			resolveOK(t, r, "portal.gov.az.", dns.TypeA)
			want := 0
			if !island {
				want = 1
			}
			if got := f.askedSince(0, ipRoot); len(got) != want {
				t.Errorf("root asked %q, want %d queries", got, want)
			}
			// What was learned through the hints is kept.
			if _, _, _, ok := r.Cache().GetRRsetStale("gov.az.", dns.TypeNS); !ok || r.Cache().Stats().National == 0 {
				t.Error("the gov.az. delegation learned through the hints is not held")
			}
		})
	}
}

func TestNationalHintsChecked(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"az. NS ns.nic.az.\n", "no address"},
		{"com. NS a.gtld.com.\na.gtld.com. A 192.0.2.5\n", "under no national suffix"},
		{"az. NS ns.nic.az.\nns.nic.az. A 192.0.2.2\nother. A 192.0.2.9\n", "no NS record names"},
		{"ns.nic.az. A 192.0.2.2\n", "no NS record"},
	} {
		rrs, err := resolver.ParseNationalHints(strings.NewReader(tc.text), "t")
		if err == nil {
			err = resolver.CheckNationalHints(rrs, []string{"az."})
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, resolver.ErrBadHints) {
			t.Errorf("%q: err %v, want %q", tc.text, err, tc.want)
		}
	}
	if _, err := resolver.ParseNationalHints(strings.NewReader("az. MX 10 mail.az.\n"), "t"); err == nil {
		t.Error("an MX record accepted in hints")
	}
}

// startIsland returns a resolver of the hierarchy, configured by mod,
// that resolved www.example.com., was then cut off from the foreign
// servers and restored as an island two hours on, running (Run) until the
// test ends, its probe at start made; and the network and its clock.
func startIsland(t *testing.T, mod func(*resolver.Config)) (*fakeNet, *resolver.Resolver, *stepClock) {
	t.Helper()
	f, hints := hierarchy(t)
	r, clk := staleResolver(t, f, hints, func(c *resolver.Config) {
		c.Island.ProbeInterval = time.Hour
		mod(c)
	})
	resolveOK(t, r, "www.example.com.", dns.TypeA)
	f.cut(true, foreignServers...)
	clk.Advance(2 * time.Hour)
	r.RestoreIsland()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the probe at start", func() bool { return r.Stats().Probes[0].Load() >= 1 })
	return f, r, clk
}

// TestIslandRecovery: in island mode nothing waits on the dead; once the
// outside answers again, the first question's trial ends island mode and
// wakes the prober, and the questions that follow are resolved upstream.
func TestIslandRecovery(t *testing.T) {
	f, r, clk := startIsland(t, func(*resolver.Config) {})

	// Cut off: answers at once, stale or failed; one trial per interval.
	n := f.count()
	for i := range 20 {
		start := time.Now()
		if res := r.Resolve(context.Background(), "www.example.com.", dns.TypeA); !res.Stale {
			t.Fatalf("known foreign name not stale in island mode: %+v", res)
		}
		res := r.Resolve(context.Background(), fmt.Sprintf("n%d.example.com.", i), dns.TypeA)
		if !errors.Is(res.Err, resolver.ErrNoReachableAuthority) {
			t.Fatalf("unknown foreign name: err %v", res.Err)
		}
		if d := time.Since(start); d > 50*time.Millisecond+resolver.IslandTrialWait {
			t.Errorf("island answers took %v", d)
		}
		if i%5 == 4 {
			clk.Advance(resolver.IslandTrialInterval)
		}
	}
	if got, most := f.count()-n, 4+1; got > most {
		t.Errorf("%d foreign queries for 40 questions over 4 trial intervals, want at most %d", got, most)
	}

	// The links return, a little slower than before. The burst right
	// after, questions that come together, is resolved upstream: the
	// first sends a trial, the others wait for it.
	probes := r.Stats().Probes[1].Load()
	f.mu.Lock()
	f.latency = 5 * time.Millisecond
	f.mu.Unlock()
	f.cut(false, foreignServers...)
	clk.Advance(resolver.IslandTrialInterval)
	names := []string{"www.tc.com.", "www.slow.com.", "www.mfa.gov.az.", "a.example.com.", "b.example.com.", "c.example.com."}
	errs := make(chan error, len(names))
	for _, name := range names {
		go func() {
			res := r.Resolve(context.Background(), name, dns.TypeA)
			if res.Err != nil || res.Stale || (len(res.Answer) == 0 && res.Rcode != dns.RcodeNameError) {
				errs <- fmt.Errorf("%s right after the links returned: err %v stale %v rcode %s", name, res.Err, res.Stale, dns.RcodeToString[res.Rcode])
				return
			}
			errs <- nil
		}()
	}
	for range names {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if res := r.Resolve(context.Background(), "www.example.com.", dns.TypeA); res.Err != nil || res.Stale {
		t.Errorf("www.example.com. after the recovery: err %v stale %v", res.Err, res.Stale)
	}
	if r.Island() {
		t.Error("still an island after foreign answers")
	}
	waitFor(t, "the prober woken by the recovery", func() bool { return r.Stats().Probes[1].Load() > probes })
	if h := r.Health(); !h.LastProbeOK {
		t.Errorf("health after recovery: %+v", h)
	}
}

// TestStaleTrial: in island mode a question answered stale tries the
// outside too (in the background), so a node asked only what it knows
// still finds out that the links are back.
func TestStaleTrial(t *testing.T) {
	f, hints := hierarchy(t)
	r, clk := staleResolver(t, f, hints, nil)
	resolveOK(t, r, "www.example.com.", dns.TypeA)
	clk.Advance(2 * time.Hour)
	r.SetIslandForTest(true)
	clk.Advance(resolver.IslandTrialInterval)
	if res := r.Resolve(context.Background(), "www.example.com.", dns.TypeA); !res.Stale {
		t.Fatal("not stale in island mode")
	}
	waitFor(t, "the end of island mode by the stale answer's trial", func() bool { return !r.Island() })
	if r.Stats().IslandTrials.Load() == 0 {
		t.Error("no trial counted")
	}
}

// TestFirstQuestionProbes: a node cut off from the start finds out with
// a probe sent on its first failed foreign query, not after the failures
// threshold (set out of reach here), and its first question waits for
// that probe rather than asking every root server in turn: one root
// server is asked, not four.
func TestFirstQuestionProbes(t *testing.T) {
	f, _ := hierarchy(t)
	f.cut(true, foreignServers...)
	var text strings.Builder
	var roots []netip.Addr
	for _, l := range "abcd" {
		fmt.Fprintf(&text, ". NS %c.root.test.\n%c.root.test. A 192.0.2.%d\n", l, l, 21+l-'a')
		roots = append(roots, netip.AddrFrom4([4]byte{192, 0, 2, byte(21 + l - 'a')}))
	}
	hints, err := resolver.ParseHints(strings.NewReader(text.String()), "hints")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := staleResolver(t, f, hints, func(c *resolver.Config) {
		c.QueryTimeout = 900 * time.Millisecond
		c.ResolutionTimeout = 10 * time.Second
		c.Island.Failures = 1000
		c.Island.ProbeInterval = time.Hour
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	start := time.Now()
	res := r.Resolve(context.Background(), "www.example.com.", dns.TypeA)
	if !errors.Is(res.Err, resolver.ErrNoReachableAuthority) {
		t.Errorf("first question: err %v", res.Err)
	}
	if !r.Island() {
		t.Error("not an island after the first question's probe")
	}
	// The probes ask the root servers for ". NS"; the question's
	// (minimised) queries are the others.
	f.mu.Lock()
	asked, probes := 0, 0
	for _, q := range f.asked {
		for _, a := range roots {
			if strings.HasPrefix(q, a.String()+" ") {
				if strings.HasSuffix(q, " . NS") {
					probes++
				} else {
					asked++
				}
			}
		}
	}
	f.mu.Unlock()
	if asked != 1 || probes == 0 {
		t.Errorf("the first question asked %d of the 4 dead root servers and %d probes went out, want 1 and some", asked, probes)
	}
	t.Logf("first question of a cut-off node with 4 root servers: %v", time.Since(start).Round(time.Millisecond))
}

// TestNationalValidationKeptKeys: validation of national names keeps
// working from the keys kept (and persisted) with the national
// infrastructure, under the root anchor or a pinned national one, after a
// restart in island mode with the root's servers cut off and every TTL
// run out.
func TestNationalValidationKeptKeys(t *testing.T) {
	n := signedHierarchy(t)
	root := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		what   string
		anchor dns.RR
	}{{"root anchor", n.rootDS}, {"pinned gov.az. anchor", n.govDS}} {
		t.Run(tc.what, func(t *testing.T) {
			n.f.cut(false, root)
			build := func(clk *stepClock) *resolver.Resolver {
				cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20, StaleWindow: time.Hour, Now: clk.Now})
				return resolver.New(resolver.Config{RootHints: n.hints, QueryTimeout: 20 * time.Millisecond,
					ResolutionTimeout: time.Second, Now: clk.Now, National: []string{"az."},
					DNSSEC: resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{tc.anchor}}}, n.f, cache, nil, nil)
			}
			clk := &stepClock{t: valNow}
			r := build(clk)
			if res := r.Resolve(context.Background(), "www.gov.az.", dns.TypeA); res.Sec != dnssec.Secure {
				t.Fatalf("www.gov.az.: %v %v", res.Sec, res.Why)
			}
			var recs []resolver.CacheRecord
			if err := r.Cache().Export(func(rec resolver.CacheRecord) error { recs = append(recs, rec); return nil }); err != nil {
				t.Fatal(err)
			}

			// A restart a day later, the root cut off, the state saying
			// island.
			n.f.cut(true, root)
			clk2 := &stepClock{t: valNow.Add(24 * time.Hour)}
			r2 := build(clk2)
			for _, rec := range recs {
				r2.Cache().ImportRecord(rec)
			}
			r2.RestoreIsland()
			before := n.f.count()
			res := r2.Resolve(context.Background(), "portal.gov.az.", dns.TypeA)
			if res.Err != nil || res.Sec != dnssec.Secure {
				t.Fatalf("portal.gov.az. after the restart: err %v sec %v why %v", res.Err, res.Sec, res.Why)
			}
			if got := n.f.askedSince(before, root); len(got) != 0 {
				t.Errorf("root asked %q", got)
			}
		})
	}
}

// TestIslandTrialWait: in island mode a question waits for its trial query
// as long as Island.TrialWait says. With the foreign servers 60 ms away
// once the links return, the first question after is answered without
// the trial (no reachable authority) at the default 25 ms, and resolved
// through it at 300 ms.
func TestIslandTrialWait(t *testing.T) {
	for _, tc := range []struct {
		wait     time.Duration
		resolved bool
	}{{0, false}, {300 * time.Millisecond, true}} {
		t.Run(fmt.Sprint(tc.wait), func(t *testing.T) {
			f, r, clk := startIsland(t, func(c *resolver.Config) {
				c.Island.TrialWait = tc.wait
				c.QueryTimeout = time.Second // the trial's own timeout is not what ends it
			})
			if !r.Island() {
				t.Fatal("not an island after the restore")
			}

			f.mu.Lock()
			f.latency = 60 * time.Millisecond
			f.mu.Unlock()
			f.cut(false, foreignServers...)
			clk.Advance(resolver.IslandTrialInterval)
			res := r.Resolve(context.Background(), "a.example.com.", dns.TypeA)
			resolved := res.Err == nil && !res.Stale
			if resolved != tc.resolved {
				t.Errorf("trial wait %v: the first question after the links returned: err %v stale %v, want resolved %v",
					tc.wait, res.Err, res.Stale, tc.resolved)
			}
			if !resolved && !errors.Is(res.Err, resolver.ErrNoReachableAuthority) {
				t.Errorf("answered without the trial: err %v, want ErrNoReachableAuthority", res.Err)
			}
		})
	}
}
