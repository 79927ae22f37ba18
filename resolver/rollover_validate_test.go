package resolver_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// rollLab serves gov.az. from a zone store that signs it and rolls its
// keys, under az. and the root signed by the test, to a validating
// resolver that keeps its cache from step to step; one clock runs them
// all.
type rollLab struct {
	t      *testing.T
	mu     sync.Mutex
	now    time.Time
	st     *zonestore.Store
	f      *fakeNet
	root   [2]valKey
	az     [2]valKey
	hints  []dns.RR
	r      *resolver.Resolver // keeps its cache across steps
	asked  int
	policy dnssec.Policy
}

func (l *rollLab) clock() time.Time { l.mu.Lock(); defer l.mu.Unlock(); return l.now }
func (l *rollLab) advance(d time.Duration) {
	l.mu.Lock()
	l.now = l.now.Add(d)
	l.mu.Unlock()
}

func newRollLab(t *testing.T, p dnssec.Policy) *rollLab {
	l := &rollLab{t: t, now: valNow, policy: p,
		root: [2]valKey{newValKey(t, ".", dns.ZONE|dns.SEP), newValKey(t, ".", dns.ZONE)},
		az:   [2]valKey{newValKey(t, "az.", dns.ZONE|dns.SEP), newValKey(t, "az.", dns.ZONE)}}
	st, err := zonestore.Open(filepath.Join(t.TempDir(), "zones.db"), zonestore.Options{Now: l.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l.st = st
	gov := mustZone(t, "gov.az.", `@ SOA ns1 h 1 7200 900 1209600 300
@ NS ns1
ns1 A 192.0.2.3
www A 198.51.100.10
*.apps A 198.51.100.80
`)
	if _, err := st.Import(gov, false); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnableDNSSEC("gov.az.", p); err != nil {
		t.Fatal(err)
	}
	root := signZone(t, ".", `. SOA a.root.test. h.root.test. 1 2 3 4 86400
. NS a.root.test.
a.root.test. A 192.0.2.1
az. NS ns.nic.az.
ns.nic.az. A 192.0.2.2
`+l.az[0].rr.ToDS(dns.SHA256).String()+"\n", l.root[0], l.root[1], valNow.Add(-24*time.Hour), valNow.Add(30*24*time.Hour))
	l.f = &fakeNet{servers: map[netip.Addr]*zone.Set{netip.MustParseAddr("192.0.2.1"): zone.NewSet(mustZone(t, ".", root))}}
	if l.hints, err = resolver.ParseHints(strings.NewReader(". NS a.root.test.\na.root.test. A 192.0.2.1\n"), "hints"); err != nil {
		t.Fatal(err)
	}
	l.publish(nil)
	l.r = l.resolver()
	return l
}

// resolver returns a validating resolver on the lab's clock.
func (l *rollLab) resolver() *resolver.Resolver {
	cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 4 << 20, Now: l.clock})
	return resolver.New(resolver.Config{RootHints: l.hints, QueryTimeout: 50 * time.Millisecond, ResolutionTimeout: 2 * time.Second, Now: l.clock,
		DNSSEC: resolver.DNSSECConfig{Validation: true, Anchors: []dns.RR{l.root[0].rr.ToDS(dns.SHA256)}}}, l.f, cache, nil, nil)
}

// publish serves the store's gov.az., and az. with the DS records of
// gov.az.'s keys with the given tags (nil: all that dnssec ds gives).
func (l *rollLab) publish(tags []uint16) {
	t := l.t
	t.Helper()
	ds, err := l.st.DS("gov.az.", dns.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, d := range ds {
		if tags == nil || containsTag(tags, d.KeyTag) {
			d.Hdr.Ttl = 3600
			b.WriteString(d.String() + "\n")
		}
	}
	az := signZone(t, "az.", `@ SOA ns.nic h 1 2 3 4 300
@ NS ns.nic
ns.nic A 192.0.2.2
gov NS ns1.gov
ns1.gov A 192.0.2.3
`+b.String(), l.az[0], l.az[1], valNow.Add(-24*time.Hour), valNow.Add(30*24*time.Hour))
	gov, err := l.st.Load("gov.az.")
	if err != nil {
		t.Fatal(err)
	}
	l.f.mu.Lock()
	l.f.servers[netip.MustParseAddr("192.0.2.2")] = zone.NewSet(mustZone(t, "az.", az))
	l.f.servers[netip.MustParseAddr("192.0.2.3")] = zone.NewSet(gov)
	l.f.mu.Unlock()
}

func containsTag(tags []uint16, tag uint16) bool {
	for _, x := range tags {
		if x == tag {
			return true
		}
	}
	return false
}

// check asks a name not asked before, and the zone's keys, of the resolver
// that has cached the previous steps and of a fresh one: both must
// validate.
func (l *rollLab) check(step string) {
	t := l.t
	t.Helper()
	l.asked++
	name := fmt.Sprintf("n%d.apps.gov.az.", l.asked)
	for _, r := range []*resolver.Resolver{l.r, l.resolver()} {
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{name, dns.TypeA}, {"www.gov.az.", dns.TypeA}, {"gov.az.", dns.TypeDNSKEY}} {
			if res := r.Resolve(context.Background(), q.name, q.qtype); res.Sec != dnssec.Secure {
				t.Errorf("%s: %s %s: %v (%v)", step, q.name, dns.Type(q.qtype), res.Sec, res.Why)
			}
		}
	}
}

// maintain has the store take what steps it may, the parent's servers
// seen to publish tags (nil: what publish last put there is not known
// to the store; no view).
func (l *rollLab) maintain(tags []uint16) {
	t := l.t
	t.Helper()
	if tags != nil {
		ds, _ := l.st.DS("gov.az.", dns.SHA256)
		v := dnssec.ParentView{Parent: "az.", Checked: l.clock(), Servers: []dnssec.ParentServer{{Server: "192.0.2.2:53", TTL: 3600}}}
		for _, d := range ds {
			if containsTag(tags, d.KeyTag) {
				v.Servers[0].DS = append(v.Servers[0].DS, d)
			}
		}
		if err := l.st.SetParentView("gov.az.", v); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := l.st.Maintain("gov.az."); err != nil {
		t.Fatal(err)
	}
}

func (l *rollLab) tags() []uint16 {
	ds, _ := l.st.DS("gov.az.", dns.SHA256)
	var out []uint16
	for _, d := range ds {
		out = append(out, d.KeyTag)
	}
	return out
}

// TestRolloversValidateThroughout runs each kind of rollover with a moved
// clock. At every step the zone is served as it now is, and a validating
// resolver that cached the step before (and a fresh one) still find it
// secure: no step comes before caches allow it.
func TestRolloversValidateThroughout(t *testing.T) {
	step := func(l *rollLab, name string, tags []uint16, d time.Duration) {
		t.Helper()
		l.check("before " + name)
		l.maintain(tags)
		l.publish(nil)
		l.check(name)
		l.advance(d)
	}
	wait := time.Hour + dnssec.DefaultPolicy().PropagationDelay.D() + time.Minute

	t.Run("zsk", func(t *testing.T) {
		p := dnssec.DefaultPolicy()
		p.SplitKeys = true
		l := newRollLab(t, p)
		l.check("signed")
		if _, _, err := l.st.Rollover("gov.az.", dnssec.RoleZSK, false); err != nil {
			t.Fatal(err)
		}
		l.publish(nil)
		l.check("new ZSK published")
		l.advance(wait)
		step(l, "new ZSK signs", nil, wait)
		step(l, "old ZSK removed", nil, wait)
	})

	for _, split := range []bool{false, true} {
		t.Run(fmt.Sprintf("ksk split=%v", split), func(t *testing.T) {
			p := dnssec.DefaultPolicy()
			p.SplitKeys = split
			l := newRollLab(t, p)
			old := l.tags()
			l.check("signed")
			if _, _, err := l.st.Rollover("gov.az.", dnssec.RoleKSK, false); err != nil {
				t.Fatal(err)
			}
			l.publish(old) // the parent has not caught up
			l.check("new key published")
			l.advance(wait)
			both := l.tags()
			l.publish(both)
			step(l, "parent has both DS", both, wait)
			step(l, "keys swapped", both, wait)
			newOnly := l.tags()
			l.publish(newOnly)
			step(l, "old DS withdrawn", newOnly, wait)
			step(l, "old key deleted", newOnly, wait)
			if st, _ := l.st.DNSSEC("gov.az."); len(st.Steps) != 0 {
				t.Errorf("steps left: %q", st.Steps)
			}
		})
	}

	for _, c := range []struct{ from, to uint8 }{{dns.RSASHA256, dns.ECDSAP256SHA256}, {dns.ECDSAP256SHA256, dns.ED25519}} {
		t.Run(fmt.Sprintf("algorithm %d to %d", c.from, c.to), func(t *testing.T) {
			p := dnssec.DefaultPolicy()
			p.Algorithm = c.from
			l := newRollLab(t, p)
			old := l.tags()
			l.check("signed")
			p.Algorithm = c.to
			if _, err := l.st.EnableDNSSEC("gov.az.", p); err != nil {
				t.Fatal(err)
			}
			l.publish(old)
			l.check("new signatures")
			l.advance(wait)
			step(l, "new keys in DNSKEY", old, wait)
			both := l.tags()
			l.publish(both)
			step(l, "parent has both DS", both, wait)
			step(l, "old keys out of DNSKEY", both, wait)
			newOnly := l.tags()
			l.publish(newOnly)
			step(l, "old signatures removed", newOnly, wait)
			st, _ := l.st.DNSSEC("gov.az.")
			if st.Policy.AlgorithmFrom != 0 || len(st.Keys) != 1 || st.Keys[0].Algorithm != c.to {
				t.Errorf("after the rollover: %+v", st)
			}
		})
	}
}
