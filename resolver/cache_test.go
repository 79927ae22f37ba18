package resolver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// The zone data the tests cache. The SOA's TTL is 3600 and its MINIMUM 300,
// so a negative answer with it lives 300 s (RFC 2308 §5).
const (
	soaCom = "example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300"
	soaNet = "example.net. 3600 IN SOA ns1.example.net. hostmaster.example.net. 1 7200 900 1209600 120"
	soaOrg = "example.org. 3600 IN SOA ns1.example.org. hostmaster.example.org. 1 7200 900 1209600 300"
)

// fakeClock is the cache's clock in tests: it moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// newTestCache returns a cache on a fake clock; MaxBytes defaults to 16 MiB.
func newTestCache(t testing.TB, cfg CacheConfig) (*Cache, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	cfg.Now = clock.Now
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 16 << 20
	}
	return NewCache(cfg), clock
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("dns.NewRR(%q): %v", s, err)
	}
	return rr
}

func mustRRs(t testing.TB, ss ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, s := range ss {
		out = append(out, mustRR(t, s))
	}
	return out
}

// resp describes a response in zone text, as CoreDNS's test.Case does.
type resp struct {
	qname  string
	qtype  uint16
	qclass uint16 // 0 means IN
	rcode  int
	tc     bool
	answer []string
	ns     []string
	extra  []string
}

func (r resp) msg(t testing.TB) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(r.qname, r.qtype)
	if r.qclass != 0 {
		m.Question[0].Qclass = r.qclass
	}
	m.Response = true
	m.Rcode = r.rcode
	m.Truncated = r.tc
	m.Answer = mustRRs(t, r.answer...)
	m.Ns = mustRRs(t, r.ns...)
	m.Extra = mustRRs(t, r.extra...)
	return m
}

// texts returns the records in presentation format, sorted, for comparison.
func texts(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.String()
	}
	slices.Sort(out)
	return out
}

// wantTexts parses records and sets their TTL to ttl, as the cache returns them.
func wantTexts(t testing.TB, ttl uint32, ss ...string) []string {
	t.Helper()
	rrs := mustRRs(t, ss...)
	for _, rr := range rrs {
		rr.Header().Ttl = ttl
	}
	return texts(rrs)
}

func equalTexts(got, want []string) bool { return slices.Equal(got, want) }

// checkInvariants walks every shard: the LRU and national rings hold
// exactly the slots in use, each found by its key, the byte count is the
// sum of the LRU's sizes and within the budget.
func checkInvariants(t testing.TB, c *Cache) {
	t.Helper()
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n, bytes := 0, int64(0)
		for _, head := range []int32{lruHead, natHead} {
			for j := sh.t.slots[head].next; j != head; j = sh.t.slots[j].next {
				s := &sh.t.slots[j]
				e := sh.entry(j)
				k := e.key()
				if f, ok := sh.t.find(c.nameHash(k.name), k.name, k.qtype, k.kind); !ok || f != j {
					t.Errorf("shard %d: entry %v in a ring is not indexed", i, k)
				}
				if sh.t.slots[s.next].prev != j {
					t.Errorf("shard %d: broken link at %v", i, k)
				}
				if s.protected != (head == natHead) {
					t.Errorf("shard %d: entry %v in the wrong ring", i, k)
				}
				n++
				if head == lruHead {
					bytes += int64(s.size)
				}
			}
		}
		if n != sh.t.n {
			t.Errorf("shard %d: %d entries in the rings, %d in use", i, n, sh.t.n)
		}
		// Every slot in use is in its bucket's chain, once, and no chain
		// holds another; the buckets outnumber the slots in use.
		chained := 0
		for b, head := range sh.t.heads {
			for j, steps := head, 0; j != noSlot; j = sh.t.slots[j].chain {
				if steps++; steps > len(sh.t.slots) {
					t.Fatalf("shard %d: bucket %d's chain loops", i, b)
				}
				if sh.t.slots[j].kind == kindFree || sh.t.bucket(sh.t.slots[j].hash) != b {
					t.Errorf("shard %d: slot %d in bucket %d's chain is free or not of that bucket", i, j, b)
				}
				chained++
			}
		}
		if chained != sh.t.n || len(sh.t.heads) < sh.t.n || len(sh.t.heads)&(len(sh.t.heads)-1) != 0 {
			t.Errorf("shard %d: %d slots chained, %d in use, %d buckets", i, chained, sh.t.n, len(sh.t.heads))
		}
		if bytes != sh.bytes {
			t.Errorf("shard %d: entries add up to %d bytes, shard counts %d", i, bytes, sh.bytes)
		}
		if sh.bytes > c.budget {
			t.Errorf("shard %d: %d bytes, over its budget of %d", i, sh.bytes, c.budget)
		}
		sh.mu.Unlock()
	}
}

func TestRankString(t *testing.T) {
	tests := []struct {
		rank Rank
		want string
	}{
		{rank: RankNone, want: "none"},
		{rank: RankAdditional, want: "additional"},
		{rank: RankAuthority, want: "authority"},
		{rank: RankAdditionalAA, want: "additional-aa"},
		{rank: RankAnswerNonAuthAA, want: "answer-nonauth-aa"},
		{rank: RankAnswer, want: "answer"},
		{rank: RankGlue, want: "glue"},
		{rank: RankAuthorityAA, want: "authority-aa"},
		{rank: RankAnswerAA, want: "answer-aa"},
		{rank: RankValidated, want: "validated"},
		{rank: Rank(200), want: "Rank(200)"},
	}
	for _, tc := range tests {
		if got := tc.rank.String(); got != tc.want {
			t.Errorf("Rank(%d).String() = %q, want %q", uint8(tc.rank), got, tc.want)
		}
	}
	// The order is the contract: each rank is trusted more than the one before.
	order := []Rank{RankNone, RankAdditional, RankAuthority, RankAdditionalAA, RankAnswerNonAuthAA,
		RankAnswer, RankGlue, RankAuthorityAA, RankAnswerAA, RankValidated}
	if !slices.IsSorted(order) {
		t.Errorf("ranks are not in trust order: %v", order)
	}
}

func TestMsgKindString(t *testing.T) {
	for kind, want := range map[MsgKind]string{MsgAnswer: "answer", MsgNoData: "nodata", MsgNXDomain: "nxdomain", 9: "MsgKind(9)"} {
		if got := kind.String(); got != want {
			t.Errorf("MsgKind(%d).String() = %q, want %q", uint8(kind), got, want)
		}
	}
}

// A slot holds no pointer (the collector does not scan the shards' slot
// arrays) and fills 56 bytes.
var _ [56 - unsafe.Sizeof(slot{})]struct{}

// TestCacheEntryFields checks what an entry gives back of what it packs
// tightly: the rcode (kept as the kind), the TTL it was stored for, and
// why it is not secure.
func TestCacheEntryFields(t *testing.T) {
	whyBogus := errors.New("signature expired")
	tests := []struct {
		name      string
		r         resp
		sec       dnssec.SecStatus
		why       error
		wantKind  MsgKind
		wantRcode int
		wantOrig  uint32
	}{
		{name: "answer", r: resp{qname: "a.example.com.", qtype: dns.TypeA, answer: []string{"a.example.com. 300 IN A 192.0.2.1"}},
			sec: dnssec.Secure, wantKind: MsgAnswer, wantRcode: dns.RcodeSuccess, wantOrig: 300},
		{name: "nodata", r: resp{qname: "b.example.com.", qtype: dns.TypeAAAA, ns: []string{soaCom}},
			sec: dnssec.Insecure, wantKind: MsgNoData, wantRcode: dns.RcodeSuccess, wantOrig: 300},
		{name: "nxdomain", r: resp{qname: "c.example.net.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaNet}},
			sec: dnssec.Unchecked, wantKind: MsgNXDomain, wantRcode: dns.RcodeNameError, wantOrig: 120},
		{name: "bogus with its reason", r: resp{qname: "d.example.org.", qtype: dns.TypeA, answer: []string{"d.example.org. 60 IN A 192.0.2.4"}},
			sec: dnssec.Bogus, why: whyBogus, wantKind: MsgAnswer, wantRcode: dns.RcodeSuccess, wantOrig: 60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, clock := newTestCache(t, CacheConfig{})
			if !c.PutValidated(tc.r.msg(t), tc.sec, tc.why, 0) {
				t.Fatal("PutValidated refused")
			}
			clock.Advance(10 * time.Second)
			got, ok := c.Get(tc.r.qname, tc.r.qtype)
			if !ok {
				t.Fatal("Get missed")
			}
			if got.Kind != tc.wantKind || got.Rcode != tc.wantRcode || got.Sec != tc.sec {
				t.Errorf("kind %v rcode %d sec %v, want %v %d %v", got.Kind, got.Rcode, got.Sec, tc.wantKind, tc.wantRcode, tc.sec)
			}
			if got.OrigTTL != tc.wantOrig || got.TTL != tc.wantOrig-10 {
				t.Errorf("OrigTTL %d TTL %d, want %d and %d", got.OrigTTL, got.TTL, tc.wantOrig, tc.wantOrig-10)
			}
			if !errors.Is(got.Why, tc.why) || (tc.why == nil) != (got.Why == nil) {
				t.Errorf("Why = %v, want %v", got.Why, tc.why)
			}
		})
	}
}

// TestCacheTTLDecrement checks that a cached answer's TTLs count down with
// the clock, rounded down, and that the entry is gone once they reach its
// expiry.
func TestCacheTTLDecrement(t *testing.T) {
	c, clock := newTestCache(t, CacheConfig{})
	r := resp{qname: "www.example.com.", qtype: dns.TypeA, answer: []string{
		"www.example.com. 300 IN A 192.0.2.1",
		"www.example.com. 600 IN A 192.0.2.2", // the smallest TTL wins
	}}
	if !c.Put(r.msg(t)) {
		t.Fatal("Put refused a positive answer")
	}
	tests := []struct {
		name    string
		elapsed time.Duration // since the Put
		wantTTL uint32
		wantHit bool
	}{
		{name: "at once", elapsed: 0, wantTTL: 300, wantHit: true},
		{name: "rounded down", elapsed: 1500 * time.Millisecond, wantTTL: 298, wantHit: true},
		{name: "last second", elapsed: 299 * time.Second, wantTTL: 1, wantHit: true},
		{name: "under a second left", elapsed: 299*time.Second + 900*time.Millisecond, wantTTL: 0, wantHit: true},
		{name: "expired", elapsed: 300 * time.Second, wantHit: false},
		{name: "long expired", elapsed: 300 * time.Hour, wantHit: false},
	}
	start := clock.Now()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock.Advance(start.Add(tc.elapsed).Sub(clock.Now()))
			got, ok := c.Get("www.example.com.", dns.TypeA)
			if ok != tc.wantHit {
				t.Fatalf("Get hit = %v, want %v", ok, tc.wantHit)
			}
			if !ok {
				return
			}
			if got.Kind != MsgAnswer || got.Rcode != dns.RcodeSuccess || got.Stale {
				t.Errorf("got kind %v rcode %d stale %v, want a fresh NOERROR answer", got.Kind, got.Rcode, got.Stale)
			}
			if got.TTL != tc.wantTTL {
				t.Errorf("Message.TTL = %d, want %d", got.TTL, tc.wantTTL)
			}
			want := wantTexts(t, tc.wantTTL, r.answer...)
			if g := texts(got.Answer); !equalTexts(g, want) {
				t.Errorf("answer = %q, want %q", g, want)
			}
		})
	}
	if s := c.Stats(); s.Hits != 4 || s.Misses != 2 {
		t.Errorf("Stats hits %d misses %d, want 4 and 2", s.Hits, s.Misses)
	}
}

// TestCacheNames checks that keys ignore case and escapes and that stored
// owner names are lower-cased.
func TestCacheNames(t *testing.T) {
	c, _ := newTestCache(t, CacheConfig{})
	r := resp{qname: "WWW.Example.COM.", qtype: dns.TypeA, answer: []string{"WwW.ExAmPlE.CoM. 300 IN A 192.0.2.1"}}
	if !c.Put(r.msg(t)) {
		t.Fatal("Put refused a positive answer")
	}
	for _, name := range []string{"www.example.com.", "WWW.EXAMPLE.COM.", "www.example.com", `\119ww.example.com.`} {
		got, ok := c.Get(name, dns.TypeA)
		if !ok {
			t.Errorf("Get(%q) missed", name)
			continue
		}
		if owner := got.Answer[0].Header().Name; owner != "www.example.com." {
			t.Errorf("Get(%q) owner = %q, want it lower-cased", name, owner)
		}
	}
	if _, ok := c.Get("www.example.com.", dns.TypeAAAA); ok {
		t.Error("Get of another type hit")
	}
}

// TestCacheLongNames caches names whose presentation form is 255
// characters or longer (escapes take four for an octet) and up to the
// longest a name of 255 octets can have: answers, RRsets and negative
// answers, read back, listed and exported to a record and imported.
func TestCacheLongNames(t *testing.T) {
	label := strings.Repeat(`\000`, 63) // 63 octets, 252 characters
	for _, tc := range []struct{ desc, name string }{
		{"254 characters", strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61) + "."},
		{"255 characters", label[:len(label)-12] + "ab.example.com."},
		{"one escaped label", label + ".example.com."},
		{"255 octets, escaped", label + "." + label + "." + label + "." + strings.Repeat(`\255`, 61) + "."},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c, _ := newTestCache(t, CacheConfig{})
			if _, err := dns.PackDomainName(tc.name, make([]byte, 255), 0, nil, false); err != nil {
				t.Fatalf("test name %q: %v", tc.name, err)
			}
			r := resp{qname: tc.name, qtype: dns.TypeA, answer: []string{tc.name + " 300 IN A 192.0.2.1"}}
			if !c.Put(r.msg(t)) {
				t.Fatalf("Put refused a name of %d characters", len(tc.name))
			}
			got, ok := c.Get(tc.name, dns.TypeA)
			if !ok || len(got.Answer) != 1 || !strings.EqualFold(got.Answer[0].Header().Name, tc.name) {
				t.Fatalf("Get: %v, %v", got.Answer, ok)
			}
			if !c.PutRRset([]dns.RR{mustRR(t, tc.name+" 300 IN TXT \"x\"")}, RankAnswerAA) {
				t.Fatal("PutRRset refused")
			}
			if rrs, _, ok := c.GetRRset(tc.name, dns.TypeTXT); !ok || len(rrs) != 1 {
				t.Fatalf("GetRRset: %v, %v", rrs, ok)
			}
			var recs []CacheRecord
			if err := c.Export(func(rec CacheRecord) error { recs = append(recs, rec); return nil }); err != nil || len(recs) != 2 {
				t.Fatalf("Export: %d records, %v", len(recs), err)
			}
			var dump strings.Builder
			if err := c.Dump(&dump); err != nil || !strings.Contains(dump.String(), tc.name) {
				t.Error("Dump does not list the name")
			}
			c2, _ := newTestCache(t, CacheConfig{})
			for _, rec := range recs {
				if err := c2.ImportRecord(rec); err != nil {
					t.Fatalf("ImportRecord(%s): %v", rec.Name, err)
				}
			}
			if _, ok := c2.Get(tc.name, dns.TypeA); !ok {
				t.Error("the answer was not imported")
			}
		})
	}
}

func TestCacheClamps(t *testing.T) {
	tests := []struct {
		name       string
		cfg        CacheConfig
		resp       resp
		wantStored bool
		wantTTL    uint32
	}{
		{name: "kept as is", resp: resp{qname: "a.example.com.", qtype: dns.TypeA,
			answer: []string{"a.example.com. 300 IN A 192.0.2.1"}}, wantStored: true, wantTTL: 300},
		{name: "MinTTL raises", cfg: CacheConfig{MinTTL: time.Minute}, resp: resp{qname: "a.example.com.", qtype: dns.TypeA,
			answer: []string{"a.example.com. 10 IN A 192.0.2.1"}}, wantStored: true, wantTTL: 60},
		{name: "MaxTTL lowers", cfg: CacheConfig{MaxTTL: time.Hour}, resp: resp{qname: "a.example.com.", qtype: dns.TypeA,
			answer: []string{"a.example.com. 172800 IN A 192.0.2.1"}}, wantStored: true, wantTTL: 3600},
		{name: "default MaxTTL", resp: resp{qname: "a.example.com.", qtype: dns.TypeA,
			answer: []string{"a.example.com. 604800 IN A 192.0.2.1"}}, wantStored: true, wantTTL: 86400},
		{name: "MaxTTL wins over MinTTL", cfg: CacheConfig{MinTTL: 2 * time.Hour, MaxTTL: time.Hour}, resp: resp{qname: "a.example.com.", qtype: dns.TypeA,
			answer: []string{"a.example.com. 10 IN A 192.0.2.1"}}, wantStored: true, wantTTL: 3600},
		{name: "zero TTL not stored", resp: resp{qname: "a.example.com.", qtype: dns.TypeA,
			answer: []string{"a.example.com. 0 IN A 192.0.2.1"}}, wantStored: false},
		{name: "top bit counts as zero", resp: resp{qname: "a.example.com.", qtype: dns.TypeA,
			answer: []string{"a.example.com. 2147483648 IN A 192.0.2.1"}}, wantStored: false},
		{name: "top bit raised by MinTTL", cfg: CacheConfig{MinTTL: 30 * time.Second}, resp: resp{qname: "a.example.com.", qtype: dns.TypeA,
			answer: []string{"a.example.com. 4294967295 IN A 192.0.2.1"}}, wantStored: true, wantTTL: 30},
		{name: "smallest over all sections", resp: resp{qname: "a.example.com.", qtype: dns.TypeA,
			answer: []string{"a.example.com. 300 IN A 192.0.2.1"},
			ns:     []string{"example.com. 200 IN NS ns1.example.com."},
			extra:  []string{"ns1.example.com. 100 IN A 192.0.2.53"}}, wantStored: true, wantTTL: 100},
		{name: "negative from SOA MINIMUM", resp: resp{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			ns: []string{soaCom}}, wantStored: true, wantTTL: 300},
		{name: "negative from SOA TTL", resp: resp{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			ns: []string{"example.com. 120 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300"}}, wantStored: true, wantTTL: 120},
		{name: "MaxNegativeTTL caps", cfg: CacheConfig{MaxNegativeTTL: time.Minute}, resp: resp{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			ns: []string{soaCom}}, wantStored: true, wantTTL: 60},
		{name: "default MaxNegativeTTL", resp: resp{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			ns: []string{"example.com. 86400 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 86400"}}, wantStored: true, wantTTL: 3600},
		{name: "MaxNegativeTTL wins over MinTTL", cfg: CacheConfig{MinTTL: time.Hour, MaxNegativeTTL: 10 * time.Minute}, resp: resp{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			ns: []string{soaCom}}, wantStored: true, wantTTL: 600},
		{name: "negative with a shorter NSEC", resp: resp{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			ns: []string{soaCom, "example.com. 60 IN NSEC z.example.com. A NS SOA RRSIG NSEC"}}, wantStored: true, wantTTL: 60},
		{name: "SOA MINIMUM ignored in a positive answer", resp: resp{qname: "example.com.", qtype: dns.TypeSOA,
			answer: []string{soaCom}}, wantStored: true, wantTTL: 3600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestCache(t, tc.cfg)
			if got := c.Put(tc.resp.msg(t)); got != tc.wantStored {
				t.Fatalf("Put = %v, want %v", got, tc.wantStored)
			}
			got, ok := c.Get(tc.resp.qname, tc.resp.qtype)
			if ok != tc.wantStored {
				t.Fatalf("Get hit = %v, want %v", ok, tc.wantStored)
			}
			if !ok {
				return
			}
			if got.TTL != tc.wantTTL {
				t.Errorf("TTL = %d, want %d", got.TTL, tc.wantTTL)
			}
			for _, rr := range slices.Concat(got.Answer, got.Ns, got.Extra) {
				if rr.Header().Ttl != tc.wantTTL {
					t.Errorf("record %s: TTL %d, want %d", rr, rr.Header().Ttl, tc.wantTTL)
				}
			}
		})
	}
}

// TestCacheNegative checks RFC 2308 keying: NXDOMAIN by name alone, NODATA
// by name and type.
func TestCacheNegative(t *testing.T) {
	c, _ := newTestCache(t, CacheConfig{})
	puts := []resp{
		{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaCom}},
		{qname: "nodata.example.com.", qtype: dns.TypeAAAA, ns: []string{soaCom}},
	}
	for _, r := range puts {
		if !c.Put(r.msg(t)) {
			t.Fatalf("Put(%s %s) refused", r.qname, dns.Type(r.qtype))
		}
	}
	tests := []struct {
		name      string
		qname     string
		qtype     uint16
		wantHit   bool
		wantKind  MsgKind
		wantRcode int
	}{
		{name: "NXDOMAIN, type asked", qname: "nx.example.com.", qtype: dns.TypeA, wantHit: true, wantKind: MsgNXDomain, wantRcode: dns.RcodeNameError},
		{name: "NXDOMAIN, other type", qname: "nx.example.com.", qtype: dns.TypeMX, wantHit: true, wantKind: MsgNXDomain, wantRcode: dns.RcodeNameError},
		{name: "NXDOMAIN, other case", qname: "NX.Example.COM.", qtype: dns.TypeTXT, wantHit: true, wantKind: MsgNXDomain, wantRcode: dns.RcodeNameError},
		{name: "NXDOMAIN, parent", qname: "example.com.", qtype: dns.TypeA, wantHit: false},
		{name: "NODATA, type asked", qname: "nodata.example.com.", qtype: dns.TypeAAAA, wantHit: true, wantKind: MsgNoData, wantRcode: dns.RcodeSuccess},
		{name: "NODATA, other type", qname: "nodata.example.com.", qtype: dns.TypeA, wantHit: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := c.Get(tc.qname, tc.qtype)
			if ok != tc.wantHit {
				t.Fatalf("Get hit = %v, want %v", ok, tc.wantHit)
			}
			if !ok {
				return
			}
			if got.Kind != tc.wantKind || got.Rcode != tc.wantRcode {
				t.Errorf("kind %v rcode %d, want %v %d", got.Kind, got.Rcode, tc.wantKind, tc.wantRcode)
			}
			if len(got.Answer) != 0 {
				t.Errorf("answer %v, want none", got.Answer)
			}
			if want := wantTexts(t, 300, soaCom); !equalTexts(texts(got.Ns), want) {
				t.Errorf("authority %q, want %q", texts(got.Ns), want)
			}
		})
	}
}

// TestCacheNegativeReplaced checks that data for a name removes the cached
// NXDOMAIN for it.
func TestCacheNegativeReplaced(t *testing.T) {
	c, _ := newTestCache(t, CacheConfig{})
	c.Put(resp{qname: "x.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaCom}}.msg(t))
	if !c.Put(resp{qname: "x.example.com.", qtype: dns.TypeA, answer: []string{"x.example.com. 60 IN A 192.0.2.7"}}.msg(t)) {
		t.Fatal("Put of the answer refused")
	}
	if got, ok := c.Get("x.example.com.", dns.TypeA); !ok || got.Kind != MsgAnswer {
		t.Errorf("Get(A) = %v %v, want the answer", got.Kind, ok)
	}
	if got, ok := c.Get("x.example.com.", dns.TypeAAAA); ok {
		t.Errorf("Get(AAAA) = %v, want a miss: the NXDOMAIN is gone", got.Kind)
	}
}

func TestCacheCNAMEChain(t *testing.T) {
	c, _ := newTestCache(t, CacheConfig{})
	puts := []resp{
		{qname: "www.example.com.", qtype: dns.TypeA, answer: []string{
			"www.example.com. 300 IN CNAME web.example.net.",
			"web.example.net. 200 IN A 192.0.2.80",
		}},
		{qname: "alias.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			answer: []string{"alias.example.com. 300 IN CNAME gone.example.net."},
			ns:     []string{soaNet}},
		{qname: "alias2.example.com.", qtype: dns.TypeAAAA,
			answer: []string{"alias2.example.com. 300 IN CNAME host.example.net."},
			ns:     []string{soaNet}},
	}
	for _, r := range puts {
		if !c.Put(r.msg(t)) {
			t.Fatalf("Put(%s %s) refused", r.qname, dns.Type(r.qtype))
		}
	}
	tests := []struct {
		name       string
		qname      string
		qtype      uint16
		wantHit    bool
		wantKind   MsgKind
		wantTTL    uint32
		wantAnswer int
	}{
		{name: "chain to data", qname: "www.example.com.", qtype: dns.TypeA, wantHit: true, wantKind: MsgAnswer, wantTTL: 200, wantAnswer: 2},
		{name: "chain, other type", qname: "www.example.com.", qtype: dns.TypeAAAA, wantHit: false},
		{name: "chain to NXDOMAIN", qname: "alias.example.com.", qtype: dns.TypeA, wantHit: true, wantKind: MsgNXDomain, wantTTL: 120, wantAnswer: 1},
		{name: "chain to NXDOMAIN is per type", qname: "alias.example.com.", qtype: dns.TypeCNAME, wantHit: false},
		{name: "end of the chain does not exist", qname: "gone.example.net.", qtype: dns.TypeTXT, wantHit: true, wantKind: MsgNXDomain, wantTTL: 120, wantAnswer: 0},
		{name: "chain to NODATA", qname: "alias2.example.com.", qtype: dns.TypeAAAA, wantHit: true, wantKind: MsgNoData, wantTTL: 120, wantAnswer: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := c.Get(tc.qname, tc.qtype)
			if ok != tc.wantHit {
				t.Fatalf("Get hit = %v, want %v", ok, tc.wantHit)
			}
			if !ok {
				return
			}
			if got.Kind != tc.wantKind || got.TTL != tc.wantTTL || len(got.Answer) != tc.wantAnswer {
				t.Errorf("kind %v TTL %d answer %d records, want %v %d %d", got.Kind, got.TTL, len(got.Answer), tc.wantKind, tc.wantTTL, tc.wantAnswer)
			}
		})
	}
}

// TestCacheNotCached lists what Put must refuse.
func TestCacheNotCached(t *testing.T) {
	answer := []string{"a.example.com. 300 IN A 192.0.2.1"}
	tests := []struct {
		name string
		resp resp
	}{
		{name: "truncated", resp: resp{qname: "a.example.com.", qtype: dns.TypeA, tc: true, answer: answer}},
		{name: "SERVFAIL", resp: resp{qname: "a.example.com.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, ns: []string{soaCom}}},
		{name: "REFUSED", resp: resp{qname: "a.example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused}},
		{name: "FORMERR", resp: resp{qname: "a.example.com.", qtype: dns.TypeA, rcode: dns.RcodeFormatError}},
		{name: "NOTIMP", resp: resp{qname: "a.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNotImplemented}},
		{name: "class CH", resp: resp{qname: "version.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS,
			answer: []string{`version.bind. 0 CH TXT "x"`}}},
		{name: "qtype ANY", resp: resp{qname: "a.example.com.", qtype: dns.TypeANY, answer: answer}},
		{name: "qtype AXFR", resp: resp{qname: "example.com.", qtype: dns.TypeAXFR, answer: []string{soaCom}}},
		{name: "NXDOMAIN without SOA", resp: resp{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError}},
		{name: "NODATA without SOA", resp: resp{qname: "a.example.com.", qtype: dns.TypeAAAA}},
		{name: "referral", resp: resp{qname: "a.sub.example.com.", qtype: dns.TypeA,
			ns:    []string{"sub.example.com. 300 IN NS ns.sub.example.com."},
			extra: []string{"ns.sub.example.com. 300 IN A 192.0.2.53"}}},
		{name: "NXDOMAIN with an unrelated SOA", resp: resp{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			ns: []string{soaOrg}}},
		{name: "chain cut short", resp: resp{qname: "www.example.com.", qtype: dns.TypeA,
			answer: []string{"www.example.com. 300 IN CNAME web.example.net."}}},
		{name: "only non-IN answers", resp: resp{qname: "a.example.com.", qtype: dns.TypeA,
			answer: []string{"a.example.com. 300 CH A 192.0.2.1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestCache(t, CacheConfig{})
			if c.Put(tc.resp.msg(t)) {
				t.Error("Put stored it")
			}
			if s := c.Stats(); s.Entries != 0 || s.Bytes != 0 {
				t.Errorf("Stats: %d entries, %d bytes, want none", s.Entries, s.Bytes)
			}
		})
	}
	t.Run("no question", func(t *testing.T) {
		c, _ := newTestCache(t, CacheConfig{})
		m := resp{qname: "a.example.com.", qtype: dns.TypeA, answer: answer}.msg(t)
		m.Question = nil
		if c.Put(m) || c.Put(nil) {
			t.Error("Put stored a message without a question")
		}
	})
	t.Run("cache disabled", func(t *testing.T) {
		c := NewCache(CacheConfig{})
		if c.Put(resp{qname: "a.example.com.", qtype: dns.TypeA, answer: answer}.msg(t)) {
			t.Error("Put stored with MaxBytes 0")
		}
		if c.PutRRset(mustRRs(t, answer...), RankAnswerAA) {
			t.Error("PutRRset stored with MaxBytes 0")
		}
	})
	t.Run("larger than a shard", func(t *testing.T) {
		c, _ := newTestCache(t, CacheConfig{MaxBytes: cacheShards * 1024})
		var big []string
		for i := range 20 {
			big = append(big, fmt.Sprintf("a.example.com. 300 IN TXT %q", strings.Repeat("x", 40+i)))
		}
		if c.Put(resp{qname: "a.example.com.", qtype: dns.TypeTXT, answer: big}.msg(t)) {
			t.Error("Put stored a message larger than a shard's budget")
		}
		if c.PutRRset(mustRRs(t, big...), RankAnswerAA) {
			t.Error("PutRRset stored an RRset larger than a shard's budget")
		}
	})
}

// TestCacheDropsMeta checks that OPT, TSIG and non-IN records are left out of
// what is stored.
func TestCacheDropsMeta(t *testing.T) {
	c, _ := newTestCache(t, CacheConfig{})
	m := resp{qname: "a.example.com.", qtype: dns.TypeA,
		answer: []string{"a.example.com. 300 IN A 192.0.2.1"},
		extra:  []string{"ns1.example.com. 300 IN A 192.0.2.53", "ns1.example.com. 300 CH A 192.0.2.54"}}.msg(t)
	m.SetEdns0(1232, true)
	m.SetTsig("key.", dns.HmacSHA256, 300, 0)
	m.Extra[len(m.Extra)-1].(*dns.TSIG).MAC = "00"
	if !c.Put(m) {
		t.Fatal("Put refused")
	}
	got, ok := c.Get("a.example.com.", dns.TypeA)
	if !ok {
		t.Fatal("Get missed")
	}
	if want := wantTexts(t, 300, "ns1.example.com. 300 IN A 192.0.2.53"); !equalTexts(texts(got.Extra), want) {
		t.Errorf("additional %q, want %q", texts(got.Extra), want)
	}
}

// TestCacheRRsetRank checks the replacement rules: rank order while fresh,
// and the ghost-domain rule for NS and glue.
func TestCacheRRsetRank(t *testing.T) {
	type put struct {
		after  time.Duration // clock advance before this put
		rrs    []string
		rank   Rank
		stored bool
	}
	const (
		a1  = "ns1.example.com. 300 IN A 192.0.2.1"
		a2  = "ns1.example.com. 300 IN A 192.0.2.2"
		a2l = "ns1.example.com. 3600 IN A 192.0.2.2"
		ns1 = "example.com. 3600 IN NS ns1.example.com."
		ns2 = "example.com. 3600 IN NS ns2.example.com."
	)
	tests := []struct {
		name     string
		puts     []put
		qname    string
		qtype    uint16
		wantData []string // records expected, with their TTL replaced by wantTTL
		wantRank Rank
		wantTTL  uint32
	}{
		{name: "higher rank replaces",
			puts: []put{
				{rrs: []string{a1}, rank: RankAdditional, stored: true},
				{rrs: []string{a2l}, rank: RankAnswerAA, stored: true},
			},
			qname: "ns1.example.com.", qtype: dns.TypeA, wantData: []string{a2}, wantRank: RankAnswerAA, wantTTL: 3600},
		{name: "lower rank refused while fresh",
			puts: []put{
				{rrs: []string{a1}, rank: RankAnswerAA, stored: true},
				{after: 299 * time.Second, rrs: []string{a2}, rank: RankGlue, stored: false},
			},
			qname: "ns1.example.com.", qtype: dns.TypeA, wantData: []string{a1}, wantRank: RankAnswerAA, wantTTL: 1},
		{name: "lower rank accepted once expired",
			puts: []put{
				{rrs: []string{a1}, rank: RankAnswerAA, stored: true},
				{after: 300 * time.Second, rrs: []string{a2}, rank: RankAdditional, stored: true},
			},
			qname: "ns1.example.com.", qtype: dns.TypeA, wantData: []string{a2}, wantRank: RankAdditional, wantTTL: 300},
		{name: "equal rank replaces",
			puts: []put{
				{rrs: []string{a1}, rank: RankAnswerAA, stored: true},
				{after: 100 * time.Second, rrs: []string{a2}, rank: RankAnswerAA, stored: true},
			},
			qname: "ns1.example.com.", qtype: dns.TypeA, wantData: []string{a2}, wantRank: RankAnswerAA, wantTTL: 300},
		{name: "NS may not extend at equal rank",
			puts: []put{
				{rrs: []string{ns1}, rank: RankAuthority, stored: true},
				{after: 100 * time.Second, rrs: []string{ns2}, rank: RankAuthority, stored: true},
			},
			qname: "example.com.", qtype: dns.TypeNS, wantData: []string{ns2}, wantRank: RankAuthority, wantTTL: 3500},
		{name: "NS may not extend at higher rank",
			puts: []put{
				{rrs: []string{ns1}, rank: RankAuthority, stored: true},
				{after: 100 * time.Second, rrs: []string{ns1, ns2}, rank: RankAnswerAA, stored: true},
			},
			qname: "example.com.", qtype: dns.TypeNS, wantData: []string{ns1, ns2}, wantRank: RankAnswerAA, wantTTL: 3500},
		{name: "NS may shorten",
			puts: []put{
				{rrs: []string{ns1}, rank: RankAuthority, stored: true},
				{rrs: []string{"example.com. 60 IN NS ns2.example.com."}, rank: RankAuthorityAA, stored: true},
			},
			qname: "example.com.", qtype: dns.TypeNS, wantData: []string{ns2}, wantRank: RankAuthorityAA, wantTTL: 60},
		{name: "NS takes a new TTL once expired",
			puts: []put{
				{rrs: []string{"example.com. 60 IN NS ns1.example.com."}, rank: RankAuthority, stored: true},
				{after: 60 * time.Second, rrs: []string{ns2}, rank: RankAuthority, stored: true},
			},
			qname: "example.com.", qtype: dns.TypeNS, wantData: []string{ns2}, wantRank: RankAuthority, wantTTL: 3600},
		{name: "glue may not extend",
			puts: []put{
				{rrs: []string{a1}, rank: RankGlue, stored: true},
				{after: 100 * time.Second, rrs: []string{a2l}, rank: RankGlue, stored: true},
			},
			qname: "ns1.example.com.", qtype: dns.TypeA, wantData: []string{a2}, wantRank: RankGlue, wantTTL: 200},
		{name: "authoritative address may extend",
			puts: []put{
				{rrs: []string{a1}, rank: RankGlue, stored: true},
				{after: 100 * time.Second, rrs: []string{a2l}, rank: RankAnswerAA, stored: true},
			},
			qname: "ns1.example.com.", qtype: dns.TypeA, wantData: []string{a2}, wantRank: RankAnswerAA, wantTTL: 3600},
		{name: "other types may extend",
			puts: []put{
				{rrs: []string{"example.com. 300 IN DNSKEY 257 3 13 AAAA"}, rank: RankAnswerAA, stored: true},
				{after: 100 * time.Second, rrs: []string{"example.com. 300 IN DNSKEY 257 3 13 AAAA"}, rank: RankAnswerAA, stored: true},
			},
			qname: "example.com.", qtype: dns.TypeDNSKEY, wantData: []string{"example.com. 300 IN DNSKEY 257 3 13 AAAA"}, wantRank: RankAnswerAA, wantTTL: 300},
		{name: "with its signature",
			puts: []put{
				{rrs: []string{a1, "ns1.example.com. 300 IN RRSIG A 13 3 300 20250401000000 20250301000000 12345 example.com. AAAA"}, rank: RankValidated, stored: true},
			},
			qname: "ns1.example.com.", qtype: dns.TypeA, wantRank: RankValidated, wantTTL: 300,
			wantData: []string{a1, "ns1.example.com. 300 IN RRSIG A 13 3 300 20250401000000 20250301000000 12345 example.com. AAAA"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, clock := newTestCache(t, CacheConfig{})
			for i, p := range tc.puts {
				clock.Advance(p.after)
				if got := c.PutRRset(mustRRs(t, p.rrs...), p.rank); got != p.stored {
					t.Fatalf("put %d: PutRRset = %v, want %v", i, got, p.stored)
				}
			}
			rrs, rank, ok := c.GetRRset(tc.qname, tc.qtype)
			if !ok {
				t.Fatal("GetRRset missed")
			}
			if rank != tc.wantRank {
				t.Errorf("rank %v, want %v", rank, tc.wantRank)
			}
			if want := wantTexts(t, tc.wantTTL, tc.wantData...); !equalTexts(texts(rrs), want) {
				t.Errorf("RRset %q, want %q", texts(rrs), want)
			}
		})
	}
}

func TestCachePutRRsetRefuses(t *testing.T) {
	tests := []struct {
		name string
		rrs  []string
	}{
		{name: "empty"},
		{name: "two owners", rrs: []string{"a.example.com. 300 IN A 192.0.2.1", "b.example.com. 300 IN A 192.0.2.2"}},
		{name: "two types", rrs: []string{"a.example.com. 300 IN A 192.0.2.1", "a.example.com. 300 IN AAAA 2001:db8::1"}},
		{name: "class CH", rrs: []string{"a.example.com. 300 CH A 192.0.2.1"}},
		{name: "signature only", rrs: []string{"a.example.com. 300 IN RRSIG A 13 3 300 20250401000000 20250301000000 12345 example.com. AAAA"}},
		{name: "signature of another type", rrs: []string{"a.example.com. 300 IN A 192.0.2.1",
			"a.example.com. 300 IN RRSIG AAAA 13 3 300 20250401000000 20250301000000 12345 example.com. AAAA"}},
		{name: "zero TTL", rrs: []string{"a.example.com. 0 IN A 192.0.2.1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestCache(t, CacheConfig{})
			if c.PutRRset(mustRRs(t, tc.rrs...), RankAnswerAA) {
				t.Error("PutRRset stored it")
			}
		})
	}
	t.Run("OPT", func(t *testing.T) {
		c, _ := newTestCache(t, CacheConfig{})
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: dns.ClassINET, Ttl: 300}}
		if c.PutRRset([]dns.RR{opt}, RankAnswerAA) {
			t.Error("PutRRset stored an OPT record")
		}
	})
}

// TestCacheCopies checks that the cache and its callers never share records.
func TestCacheCopies(t *testing.T) {
	c, _ := newTestCache(t, CacheConfig{})
	m := resp{qname: "a.example.com.", qtype: dns.TypeA, answer: []string{"a.example.com. 300 IN A 192.0.2.1"}}.msg(t)
	rrset := mustRRs(t, "ns1.example.com. 300 IN A 192.0.2.53")
	c.Put(m)
	c.PutRRset(rrset, RankGlue)

	// Change what was given.
	m.Answer[0].(*dns.A).A[3] = 99
	m.Answer[0].Header().Ttl = 1
	rrset[0].(*dns.A).A[3] = 99
	rrset[0].Header().Name = "evil.example."

	// Change what was returned.
	got, _ := c.Get("a.example.com.", dns.TypeA)
	got.Answer[0].(*dns.A).A[3] = 98
	got.Answer[0].Header().Ttl = 2
	got.Answer = append(got.Answer, mustRR(t, "a.example.com. 300 IN A 192.0.2.98"))
	rs, _, _ := c.GetRRset("ns1.example.com.", dns.TypeA)
	rs[0].(*dns.A).A = net.IPv4(192, 0, 2, 98)

	got, ok := c.Get("a.example.com.", dns.TypeA)
	if want := wantTexts(t, 300, "a.example.com. 300 IN A 192.0.2.1"); !ok || !equalTexts(texts(got.Answer), want) {
		t.Errorf("message answer %q, want %q", texts(got.Answer), want)
	}
	rs, _, ok = c.GetRRset("ns1.example.com.", dns.TypeA)
	if want := wantTexts(t, 300, "ns1.example.com. 300 IN A 192.0.2.53"); !ok || !equalTexts(texts(rs), want) {
		t.Errorf("RRset %q, want %q", texts(rs), want)
	}
}

// TestCacheByteBound inserts 100k distinct names into a small cache: the
// byte count stays within MaxBytes throughout and every entry that left was
// counted as an eviction.
func TestCacheByteBound(t *testing.T) {
	const (
		maxBytes = cacheShards * 4096
		inserts  = 100_000
	)
	c, _ := newTestCache(t, CacheConfig{MaxBytes: maxBytes})
	for i := range inserts {
		name := fmt.Sprintf("host%d.example.com.", i)
		rr := &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600},
			A: net.IPv4(192, 0, byte(i>>8), byte(i)).To4()}
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.Answer = []dns.RR{rr}
		if !c.Put(m) {
			t.Fatalf("Put %d refused", i)
		}
		sh := c.shardFor(name)
		sh.mu.Lock()
		over := sh.bytes > c.budget
		sh.mu.Unlock()
		if over {
			t.Fatalf("after insert %d the shard is over its budget", i)
		}
		if i%500 == 0 {
			if b := c.Stats().Bytes; b > maxBytes {
				t.Fatalf("after insert %d: %d bytes, over %d", i, b, maxBytes)
			}
		}
	}
	s := c.Stats()
	if s.Bytes > maxBytes {
		t.Errorf("%d bytes, over %d", s.Bytes, maxBytes)
	}
	if s.Evictions == 0 {
		t.Error("no evictions counted")
	}
	if got := s.Entries + int64(s.Evictions); got != inserts {
		t.Errorf("entries %d + evictions %d = %d, want %d", s.Entries, s.Evictions, got, inserts)
	}
	if s.Bytes < maxBytes*3/4 {
		t.Errorf("only %d of %d bytes used: eviction removes too much", s.Bytes, maxBytes)
	}
	checkInvariants(t, c)
}

// sameShardNames returns n names that hash to one shard.
func sameShardNames(c *Cache, n int) []string {
	var names []string
	target := c.shardFor("n00000.example.com.")
	for i := 0; len(names) < n && i < 1_000_000; i++ {
		name := fmt.Sprintf("n%05d.example.com.", i) // all of one length, so all of one size
		if c.shardFor(name) == target {
			names = append(names, name)
		}
	}
	return names
}

// TestCacheLRU fills one shard with three entries, reads the oldest, and
// adds a fourth: the least recently used one is evicted, not the one read.
func TestCacheLRU(t *testing.T) {
	put := func(c *Cache, name string) bool {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A: net.IPv4(192, 0, 2, 1).To4()}}
		return c.Put(m)
	}
	// Measure one entry, then size the cache for three per shard.
	probe, _ := newTestCache(t, CacheConfig{})
	put(probe, "n00000.example.com.")
	size := probe.Stats().Bytes

	c, _ := newTestCache(t, CacheConfig{MaxBytes: cacheShards * 3 * size})
	names := sameShardNames(c, 4)
	for _, n := range names[:3] {
		if !put(c, n) {
			t.Fatalf("Put(%s) refused", n)
		}
	}
	if _, ok := c.Get(names[0], dns.TypeA); !ok {
		t.Fatalf("Get(%s) missed before any eviction", names[0])
	}
	put(c, names[3])
	for i, want := range []bool{true, false, true, true} {
		if _, ok := c.Get(names[i], dns.TypeA); ok != want {
			t.Errorf("Get(%s) hit = %v, want %v", names[i], ok, want)
		}
	}
	if s := c.Stats(); s.Evictions != 1 || s.Entries != 3 {
		t.Errorf("evictions %d entries %d, want 1 and 3", s.Evictions, s.Entries)
	}

	// The same across the whole cache: an entry read between inserts
	// survives a flood of new names, one never read does not.
	c, _ = newTestCache(t, CacheConfig{MaxBytes: cacheShards * 8 * size})
	put(c, "keep.example.com.")
	put(c, "drop.example.com.")
	for i := range 20_000 {
		put(c, fmt.Sprintf("flood%d.example.com.", i))
		if _, ok := c.Get("keep.example.com.", dns.TypeA); !ok {
			t.Fatalf("the entry read after every insert was evicted after %d inserts", i)
		}
	}
	if _, ok := c.Get("drop.example.com.", dns.TypeA); ok {
		t.Error("the entry never read survived 20000 inserts")
	}
}

func TestCacheFlushName(t *testing.T) {
	c, _ := newTestCache(t, CacheConfig{})
	for _, r := range []resp{
		{qname: "example.com.", qtype: dns.TypeA, answer: []string{"example.com. 300 IN A 192.0.2.1"}},
		{qname: "www.example.com.", qtype: dns.TypeA, answer: []string{"www.example.com. 300 IN A 192.0.2.2"}},
		{qname: "a.b.example.com.", qtype: dns.TypeAAAA, ns: []string{soaCom}},
		{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaCom}},
		{qname: "example.org.", qtype: dns.TypeA, answer: []string{"example.org. 300 IN A 192.0.2.3"}},
		{qname: "xexample.com.", qtype: dns.TypeA, answer: []string{"xexample.com. 300 IN A 192.0.2.4"}},
		{qname: `a\.example.com.`, qtype: dns.TypeA, answer: []string{`a\.example.com. 300 IN A 192.0.2.5`}},
	} {
		if !c.Put(r.msg(t)) {
			t.Fatalf("Put(%s) refused", r.qname)
		}
	}
	c.PutRRset(mustRRs(t, "ns1.example.com. 300 IN A 192.0.2.53"), RankGlue)
	c.PutRRset(mustRRs(t, "example.com. 300 IN NS ns1.example.com."), RankAuthority)

	if got := c.FlushName("Example.COM"); got != 6 {
		t.Errorf("FlushName removed %d entries, want 6", got)
	}
	tests := []struct {
		qname string
		qtype uint16
		want  bool
	}{
		{qname: "example.com.", qtype: dns.TypeA, want: false},
		{qname: "www.example.com.", qtype: dns.TypeA, want: false},
		{qname: "a.b.example.com.", qtype: dns.TypeAAAA, want: false},
		{qname: "nx.example.com.", qtype: dns.TypeA, want: false},
		{qname: "example.org.", qtype: dns.TypeA, want: true},
		{qname: "xexample.com.", qtype: dns.TypeA, want: true},
		{qname: `a\.example.com.`, qtype: dns.TypeA, want: true},
	}
	for _, tc := range tests {
		if _, ok := c.Get(tc.qname, tc.qtype); ok != tc.want {
			t.Errorf("after FlushName, Get(%s) hit = %v, want %v", tc.qname, ok, tc.want)
		}
	}
	if _, _, ok := c.GetRRset("ns1.example.com.", dns.TypeA); ok {
		t.Error("after FlushName, the RRset below the name is still there")
	}
	if s := c.Stats(); s.Entries != 3 {
		t.Errorf("%d entries left, want 3", s.Entries)
	}
	if got := c.FlushName("."); got != 3 {
		t.Errorf("FlushName(.) removed %d, want 3", got)
	}
	checkInvariants(t, c)
}

func TestCacheFlush(t *testing.T) {
	c, _ := newTestCache(t, CacheConfig{})
	c.Put(resp{qname: "a.example.com.", qtype: dns.TypeA, answer: []string{"a.example.com. 300 IN A 192.0.2.1"}}.msg(t))
	c.PutRRset(mustRRs(t, "ns1.example.com. 300 IN A 192.0.2.53"), RankGlue)
	c.Flush()
	if s := c.Stats(); s.Entries != 0 || s.Bytes != 0 {
		t.Errorf("after Flush: %d entries, %d bytes", s.Entries, s.Bytes)
	}
	if _, ok := c.Get("a.example.com.", dns.TypeA); ok {
		t.Error("Get hit after Flush")
	}
	checkInvariants(t, c)
	if !c.Put(resp{qname: "a.example.com.", qtype: dns.TypeA, answer: []string{"a.example.com. 300 IN A 192.0.2.1"}}.msg(t)) {
		t.Error("Put refused after Flush")
	}
}

// TestCacheStale checks the serve-stale window: expired entries are left to
// GetStale until the window ends, then they are gone.
func TestCacheStale(t *testing.T) {
	const window = time.Hour
	tests := []struct {
		name      string
		elapsed   time.Duration
		wantGet   bool
		wantStale bool // GetStale finds it, marked stale
		wantAny   bool // GetStale finds it at all
		wantTTL   uint32
	}{
		{name: "fresh", elapsed: 30 * time.Second, wantGet: true, wantAny: true, wantTTL: 30},
		{name: "just expired", elapsed: 60 * time.Second, wantStale: true, wantAny: true},
		{name: "in the window", elapsed: 30 * time.Minute, wantStale: true, wantAny: true},
		{name: "window over", elapsed: time.Minute + window, wantAny: false},
	}
	c, clock := newTestCache(t, CacheConfig{StaleWindow: window})
	c.Put(resp{qname: "a.example.com.", qtype: dns.TypeA, answer: []string{"a.example.com. 60 IN A 192.0.2.1"}}.msg(t))
	c.Put(resp{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
		ns: []string{"example.com. 60 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 60"}}.msg(t))
	c.PutRRset(mustRRs(t, "example.com. 60 IN NS ns1.example.com."), RankAuthority)
	start := clock.Now()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock.Advance(start.Add(tc.elapsed).Sub(clock.Now()))
			for _, q := range []struct {
				name string
				kind MsgKind
			}{{"a.example.com.", MsgAnswer}, {"nx.example.com.", MsgNXDomain}} {
				if _, ok := c.Get(q.name, dns.TypeA); ok != tc.wantGet {
					t.Errorf("Get(%s) hit = %v, want %v", q.name, ok, tc.wantGet)
				}
				got, ok := c.GetStale(q.name, dns.TypeA)
				if ok != tc.wantAny {
					t.Fatalf("GetStale(%s) hit = %v, want %v", q.name, ok, tc.wantAny)
				}
				if ok && (got.Stale != tc.wantStale || got.TTL != tc.wantTTL || got.Kind != q.kind) {
					t.Errorf("GetStale(%s): stale %v TTL %d kind %v, want %v %d %v", q.name, got.Stale, got.TTL, got.Kind, tc.wantStale, tc.wantTTL, q.kind)
				}
				for _, rr := range slices.Concat(got.Answer, got.Ns) {
					if rr.Header().Ttl != tc.wantTTL {
						t.Errorf("GetStale(%s): record TTL %d, want %d", q.name, rr.Header().Ttl, tc.wantTTL)
					}
				}
			}
			if _, _, ok := c.GetRRset("example.com.", dns.TypeNS); ok != tc.wantGet {
				t.Errorf("GetRRset hit = %v, want %v", ok, tc.wantGet)
			}
			_, _, stale, ok := c.GetRRsetStale("example.com.", dns.TypeNS)
			if ok != tc.wantAny || stale != tc.wantStale {
				t.Errorf("GetRRsetStale: ok %v stale %v, want %v %v", ok, stale, tc.wantAny, tc.wantStale)
			}
		})
	}
	s := c.Stats()
	if s.StaleHits != 4 {
		t.Errorf("StaleHits = %d, want 4", s.StaleHits)
	}
	if s.Entries != 0 || s.Expired != 3 {
		t.Errorf("after the window: %d entries, %d expired, want 0 and 3", s.Entries, s.Expired)
	}

	t.Run("no window", func(t *testing.T) {
		c, clock := newTestCache(t, CacheConfig{})
		c.Put(resp{qname: "a.example.com.", qtype: dns.TypeA, answer: []string{"a.example.com. 60 IN A 192.0.2.1"}}.msg(t))
		clock.Advance(60 * time.Second)
		if _, ok := c.GetStale("a.example.com.", dns.TypeA); ok {
			t.Error("GetStale returned an expired entry with no stale window")
		}
	})
}

func TestCacheDump(t *testing.T) {
	c, clock := newTestCache(t, CacheConfig{StaleWindow: time.Hour})
	for _, r := range []resp{
		{qname: "www.example.com.", qtype: dns.TypeA, answer: []string{"www.example.com. 300 IN A 192.0.2.1"}},
		{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaCom}},
		{qname: "old.example.org.", qtype: dns.TypeTXT, answer: []string{`old.example.org. 10 IN TXT "old"`}},
		{qname: "example.com.", qtype: dns.TypeAAAA, ns: []string{soaCom}},
	} {
		c.Put(r.msg(t))
	}
	c.PutRRset(mustRRs(t, "example.com. 3600 IN NS ns1.example.com."), RankAuthority)
	clock.Advance(20 * time.Second)

	var sb strings.Builder
	if err := c.Dump(&sb); err != nil {
		t.Fatal(err)
	}
	want := `; msg example.com. AAAA nodata NOERROR ttl=280
;; authority
example.com.	280	IN	SOA	ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300
; rrset example.com. NS rank=authority ttl=3580
example.com.	3580	IN	NS	ns1.example.com.
; msg nx.example.com. * nxdomain NXDOMAIN ttl=280
;; authority
example.com.	280	IN	SOA	ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300
; msg www.example.com. A answer NOERROR ttl=280
;; answer
www.example.com.	280	IN	A	192.0.2.1
; msg old.example.org. TXT answer NOERROR stale expired=10s
;; answer
old.example.org.	0	IN	TXT	"old"
`
	if got := sb.String(); got != want {
		t.Errorf("Dump:\n%s\nwant:\n%s", got, want)
	}
}

func TestCompareCanonical(t *testing.T) {
	// RFC 4034 §6.1's example order.
	sorted := []string{"example.", "a.example.", "yljkjljk.a.example.", "z.a.example.",
		"zabc.a.example.", "z.example.", `\001.z.example.`, "*.z.example.", `\200.z.example.`}
	for i := range sorted {
		sorted[i] = cacheName(sorted[i])
	}
	got := slices.Clone(sorted)
	slices.Reverse(got)
	slices.SortFunc(got, compareCanonical)
	// Escapes compare by their text, so only the unescaped names are
	// guaranteed in RFC order.
	plain := func(ss []string) []string {
		return slices.DeleteFunc(slices.Clone(ss), func(s string) bool { return strings.Contains(s, `\`) })
	}
	if !slices.Equal(plain(got), plain(sorted)) {
		t.Errorf("sorted %q, want %q", plain(got), plain(sorted))
	}
}

func TestAtOrBelow(t *testing.T) {
	tests := []struct {
		child, ancestor string
		want            bool
	}{
		{child: "example.com.", ancestor: "example.com.", want: true},
		{child: "a.example.com.", ancestor: "example.com.", want: true},
		{child: "a.b.example.com.", ancestor: "example.com.", want: true},
		{child: "anything.", ancestor: ".", want: true},
		{child: "xexample.com.", ancestor: "example.com.", want: false},
		{child: "com.", ancestor: "example.com.", want: false},
		{child: `a\.example.com.`, ancestor: "example.com.", want: false},
		{child: `a\\.example.com.`, ancestor: "example.com.", want: true},
	}
	for _, tc := range tests {
		if got := atOrBelow(tc.child, tc.ancestor); got != tc.want {
			t.Errorf("atOrBelow(%q, %q) = %v, want %v", tc.child, tc.ancestor, got, tc.want)
		}
	}
}

// TestCacheConcurrent runs every operation from several goroutines at once;
// run it with -race. Afterwards the shards must be consistent.
func TestCacheConcurrent(t *testing.T) {
	const (
		workers    = 8
		iterations = 3000
		names      = 400
	)
	c, clock := newTestCache(t, CacheConfig{MaxBytes: cacheShards * 2048, StaleWindow: time.Minute})
	msgs := make([]*dns.Msg, names)
	rrsets := make([][]dns.RR, names)
	for i := range names {
		name := fmt.Sprintf("h%d.example.com.", i)
		msgs[i] = resp{qname: name, qtype: dns.TypeA, answer: []string{
			fmt.Sprintf("%s %d IN A 192.0.2.%d", name, 30+i%60, i%250)}}.msg(t)
		rrsets[i] = mustRRs(t, fmt.Sprintf("%s %d IN AAAA 2001:db8::%x", name, 30+i%90, i))
	}
	nx := resp{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaCom}}.msg(t)

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range iterations {
				n := (i*7 + w*13) % names
				name := msgs[n].Question[0].Name
				switch i % 10 {
				case 0, 1:
					c.Put(msgs[n])
				case 2:
					c.PutRRset(rrsets[n], Rank(i%int(RankValidated+1)))
				case 3, 4, 5:
					if got, ok := c.Get(name, dns.TypeA); ok {
						got.Answer[0].Header().Ttl = 0 // callers own what they get
					}
				case 6:
					c.GetStale(name, dns.TypeA)
				case 7:
					c.GetRRset(name, dns.TypeAAAA)
				case 8:
					c.Put(nx)
					c.Get("nx.example.com.", dns.TypeMX)
				case 9:
					switch {
					case i%300 == 9:
						c.FlushName(fmt.Sprintf("h%d.example.com.", n))
					case i%500 == 19:
						c.Stats()
					case i%1000 == 29:
						if err := c.Dump(io.Discard); err != nil {
							t.Error(err)
						}
					case i%100 == 39:
						clock.Advance(5 * time.Second)
					}
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, c)
	if s := c.Stats(); s.Hits == 0 || s.Bytes > cacheShards*2048 {
		t.Errorf("stats after the run: %+v", s)
	}
}
