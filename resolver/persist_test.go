package resolver

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// The signatures the persistence tests cache: the cache never checks them.
const (
	sigWWW  = "www.example.com. 300 IN RRSIG A 13 3 300 20250401000000 20250301000000 12345 example.com. AAAA"
	sigSOA  = "example.com. 3600 IN RRSIG SOA 13 2 3600 20250401000000 20250301000000 12345 example.com. AAAA"
	sigNSEC = "mail.example.com. 300 IN RRSIG NSEC 13 3 300 20250401000000 20250301000000 12345 example.com. AAAA"
	sigKey  = "example.com. 3600 IN RRSIG DNSKEY 13 2 3600 20250401000000 20250301000000 12345 example.com. AAAA"
)

// Reasons as the validator gives them.
var (
	whyExpired = &dnssec.ValidationError{Status: dnssec.Bogus, Reason: dnssec.ErrSignatureExpired,
		Detail: "bad.example.com. A: RRSIG expired"}
	whyUnreachable = &dnssec.ValidationError{Status: dnssec.Indeterminate, Reason: dnssec.ErrIndeterminate,
		Detail: "DNSKEY of example.org.", Cause: fmt.Errorf("%w for example.org.: timeout", ErrNoReachableAuthority)}
	whyIterations = &dnssec.ValidationError{Status: dnssec.Insecure, Reason: dnssec.ErrNSEC3Iterations,
		Detail: "example.net. NSEC3 iterations 500"}
)

// fillPersistCache stores one entry of every kind and status in c.
func fillPersistCache(t testing.TB, c *Cache) {
	t.Helper()
	type msgPut struct {
		r   resp
		sec dnssec.SecStatus
		why error
	}
	for _, p := range []msgPut{
		{r: resp{qname: "www.example.com.", qtype: dns.TypeA,
			answer: []string{"www.example.com. 300 IN A 192.0.2.1", "www.example.com. 300 IN A 192.0.2.2", sigWWW}},
			sec: dnssec.Secure},
		{r: resp{qname: "mail.example.com.", qtype: dns.TypeAAAA,
			ns: []string{soaCom, sigSOA, "mail.example.com. 300 IN NSEC nx.example.com. A RRSIG NSEC", sigNSEC}},
			sec: dnssec.Secure},
		{r: resp{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaCom}}},
		{r: resp{qname: "alias.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			answer: []string{"alias.example.com. 300 IN CNAME gone.example.net."}, ns: []string{soaNet}}},
		{r: resp{qname: "bad.example.com.", qtype: dns.TypeA, answer: []string{"bad.example.com. 300 IN A 192.0.2.66"}},
			sec: dnssec.Bogus, why: whyExpired},
		{r: resp{qname: "www.example.org.", qtype: dns.TypeTXT, answer: []string{`www.example.org. 300 IN TXT "x"`}},
			sec: dnssec.Indeterminate, why: whyUnreachable},
		{r: resp{qname: "www.example.net.", qtype: dns.TypeMX, answer: []string{"www.example.net. 300 IN MX 10 mx.example.net."},
			extra: []string{"mx.example.net. 300 IN A 192.0.2.25"}},
			sec: dnssec.Insecure, why: whyIterations},
	} {
		if !c.PutValidated(p.r.msg(t), p.sec, p.why, 0) {
			t.Fatalf("PutValidated(%s) refused", p.r.qname)
		}
	}
	for _, p := range []struct {
		rrs  []string
		rank Rank
	}{
		{rrs: []string{"example.com. 3600 IN NS ns1.example.com.", "example.com. 3600 IN NS ns2.example.com."}, rank: RankAuthority},
		{rrs: []string{"ns1.example.com. 3600 IN A 192.0.2.53"}, rank: RankGlue},
		{rrs: []string{"ns1.example.com. 3600 IN AAAA 2001:db8::53"}, rank: RankGlue},
		{rrs: []string{"example.com. 3600 IN DNSKEY 257 3 13 AAAA", sigKey}, rank: RankValidated},
		{rrs: []string{"example.com. 3600 IN DS 12345 13 2 ABCDEF"}, rank: RankAnswerAA},
	} {
		if !c.PutRRset(mustRRs(t, p.rrs...), p.rank) {
			t.Fatalf("PutRRset(%v) refused", p.rrs)
		}
	}
}

func exportAll(t testing.TB, c *Cache) []CacheRecord {
	t.Helper()
	var recs []CacheRecord
	if err := c.Export(func(r CacheRecord) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatalf("Export: %v", err)
	}
	return recs
}

func dump(t *testing.T, c *Cache) string {
	t.Helper()
	var sb strings.Builder
	if err := c.Dump(&sb); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// TestPersistRoundTrip exports a cache holding every kind of entry and
// imports it into another on the same clock: the two must hold the same
// entries, in the same LRU order, with reasons that still map to their
// Extended DNS Error and status.
func TestPersistRoundTrip(t *testing.T) {
	src, clock := newTestCache(t, CacheConfig{StaleWindow: time.Hour})
	fillPersistCache(t, src)
	clock.Advance(10 * time.Second)
	recs := exportAll(t, src)
	if want := int(src.Stats().Entries); len(recs) != want {
		t.Fatalf("Export gave %d records, the cache holds %d entries", len(recs), want)
	}
	kinds := map[RecordKind]int{}
	for _, r := range recs {
		kinds[r.Kind]++
	}
	if kinds[RecordMessage] != 6 || kinds[RecordNXDomain] != 2 || kinds[RecordRRset] != 5 {
		t.Errorf("records by kind %v, want 6 messages, 2 nxdomain (one derived from the CNAME chain), 5 rrsets", kinds)
	}

	dst := NewCache(CacheConfig{MaxBytes: 16 << 20, StaleWindow: time.Hour, Now: clock.Now})
	for _, r := range recs {
		if err := dst.ImportRecord(r); err != nil {
			t.Errorf("ImportRecord(%s %s/%s): %v", r.Kind, r.Name, dns.Type(r.Qtype), err)
		}
	}
	checkInvariants(t, dst)
	if got, want := dump(t, dst), dump(t, src); got != want {
		t.Errorf("imported cache dumps as\n%s\nwant\n%s", got, want)
	}
	if again := exportAll(t, dst); !reflect.DeepEqual(again, recs) {
		t.Errorf("exporting the imported cache gives other records (or another order)")
	}

	for _, tc := range []struct {
		name   string
		qtype  uint16
		sec    dnssec.SecStatus
		why    error
		extra  error // another sentinel the reason wraps
		status dnssec.SecStatus
	}{
		{name: "www.example.com.", qtype: dns.TypeA, sec: dnssec.Secure},
		{name: "bad.example.com.", qtype: dns.TypeA, sec: dnssec.Bogus, why: whyExpired, status: dnssec.Bogus},
		{name: "www.example.org.", qtype: dns.TypeTXT, sec: dnssec.Indeterminate, why: whyUnreachable,
			extra: ErrNoReachableAuthority, status: dnssec.Indeterminate},
		{name: "www.example.net.", qtype: dns.TypeMX, sec: dnssec.Insecure, why: whyIterations, status: dnssec.Insecure},
	} {
		got, ok := dst.Get(tc.name, tc.qtype)
		if !ok {
			t.Errorf("Get(%s) missed after import", tc.name)
			continue
		}
		if got.Sec != tc.sec {
			t.Errorf("%s: Sec %v, want %v", tc.name, got.Sec, tc.sec)
		}
		if tc.why == nil {
			if got.Why != nil {
				t.Errorf("%s: Why %v, want nil", tc.name, got.Why)
			}
			continue
		}
		if got.Why == nil || got.Why.Error() != tc.why.Error() {
			t.Errorf("%s: Why %v, want %q", tc.name, got.Why, tc.why.Error())
			continue
		}
		wantCode, _ := dnssec.EDE(tc.why)
		if code, ok := dnssec.EDE(got.Why); !ok || code != wantCode {
			t.Errorf("%s: EDE %d %v, want %d", tc.name, code, ok, wantCode)
		}
		if s := dnssec.StatusOf(got.Why); s != tc.status {
			t.Errorf("%s: StatusOf(Why) = %v, want %v", tc.name, s, tc.status)
		}
		if tc.extra != nil && !errors.Is(got.Why, tc.extra) {
			t.Errorf("%s: Why no longer wraps %v", tc.name, tc.extra)
		}
	}
}

// TestPersistStale checks that an entry exported fresh and imported after
// its expiry is served only stale, and is dropped once its stale window
// has passed.
func TestPersistStale(t *testing.T) {
	const window = time.Hour
	src, clock := newTestCache(t, CacheConfig{StaleWindow: window})
	fillPersistCache(t, src)
	recs := exportAll(t, src)

	clock.Advance(10 * time.Minute) // past the 300 s answers, within the 3600 s RRsets
	dst := NewCache(CacheConfig{MaxBytes: 16 << 20, StaleWindow: window, Now: clock.Now})
	for _, r := range recs {
		if err := dst.ImportRecord(r); err != nil {
			t.Fatalf("ImportRecord(%s): %v", r.Name, err)
		}
	}
	if _, ok := dst.Get("www.example.com.", dns.TypeA); ok {
		t.Error("Get returned an entry that expired while the cache was saved")
	}
	got, ok := dst.GetStale("www.example.com.", dns.TypeA)
	if !ok || !got.Stale || got.TTL != 0 || len(got.Answer) != 3 {
		t.Errorf("GetStale: ok %v stale %v TTL %d answer %d, want a stale answer of 3 records", ok, got.Stale, got.TTL, len(got.Answer))
	}
	if _, ok := dst.GetStale("nx.example.com.", dns.TypeTXT); !ok {
		t.Error("GetStale missed the NXDOMAIN entry")
	}
	if _, _, ok := dst.GetRRset("example.com.", dns.TypeNS); !ok {
		t.Error("the NS RRset, still fresh, is missing")
	}
	if rrs, rank, ok := dst.GetRRset("ns1.example.com.", dns.TypeA); !ok || rank != RankGlue || rrs[0].Header().Ttl != 3000 {
		t.Errorf("glue: ok %v rank %v, want a fresh glue RRset with TTL 3000", ok, rank)
	}

	clock.Advance(3600*time.Second + window - 10*time.Minute) // every entry is past its window
	for _, r := range recs {
		if err := NewCache(CacheConfig{MaxBytes: 16 << 20, StaleWindow: window, Now: clock.Now}).ImportRecord(r); !errors.Is(err, ErrRecordExpired) {
			t.Errorf("ImportRecord(%s) past the window: %v, want ErrRecordExpired", r.Name, err)
		}
	}
	if n := len(exportAll(t, src)); n != 0 {
		t.Errorf("Export gave %d records past their stale window, want 0", n)
	}
}

// TestPersistImportRules covers the expiry clamps and the rule that an
// import never displaces a fresher entry.
func TestPersistImportRules(t *testing.T) {
	a := resp{qname: "a.example.com.", qtype: dns.TypeA, answer: []string{"a.example.com. 3600 IN A 192.0.2.1"}}

	t.Run("expiry lowered to MaxTTL", func(t *testing.T) {
		src, clock := newTestCache(t, CacheConfig{})
		src.Put(a.msg(t))
		rec := exportAll(t, src)[0]
		rec.Expire = clock.Now().Add(100 * 24 * time.Hour)
		dst := NewCache(CacheConfig{MaxBytes: 1 << 20, MaxTTL: 10 * time.Minute, Now: clock.Now})
		if err := dst.ImportRecord(rec); err != nil {
			t.Fatal(err)
		}
		if got, _ := dst.Get(a.qname, dns.TypeA); got.TTL != 600 {
			t.Errorf("TTL %d, want 600 (MaxTTL)", got.TTL)
		}
	})
	t.Run("bogus lowered to BogusTTL", func(t *testing.T) {
		src, clock := newTestCache(t, CacheConfig{})
		src.PutValidated(a.msg(t), dnssec.Bogus, whyExpired, 0)
		rec := exportAll(t, src)[0]
		rec.Expire = clock.Now().Add(time.Hour)
		dst := NewCache(CacheConfig{MaxBytes: 1 << 20, Now: clock.Now})
		if err := dst.ImportRecord(rec); err != nil {
			t.Fatal(err)
		}
		if got, _ := dst.Get(a.qname, dns.TypeA); got.TTL != uint32(BogusTTL/time.Second) {
			t.Errorf("TTL %d, want %v", got.TTL, BogusTTL)
		}
	})
	t.Run("a later entry stays", func(t *testing.T) {
		c, clock := newTestCache(t, CacheConfig{})
		c.Put(a.msg(t))
		rec := exportAll(t, c)[0]
		clock.Advance(time.Minute)
		c.Put(a.msg(t)) // expires a minute after rec
		if err := c.ImportRecord(rec); !errors.Is(err, ErrRecordSuperseded) {
			t.Errorf("ImportRecord over a later entry: %v, want ErrRecordSuperseded", err)
		}
		if got, _ := c.Get(a.qname, dns.TypeA); got.TTL != 3600 {
			t.Errorf("TTL %d, want 3600 (the later entry)", got.TTL)
		}
	})
	t.Run("an earlier entry is replaced", func(t *testing.T) {
		c, clock := newTestCache(t, CacheConfig{})
		c.Put(a.msg(t))
		rec := exportAll(t, c)[0]
		rec.Expire = rec.Expire.Add(time.Minute)
		if err := c.ImportRecord(rec); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if got, _ := c.Get(a.qname, dns.TypeA); got.TTL != 3659 {
			t.Errorf("TTL %d, want 3659", got.TTL)
		}
		checkInvariants(t, c)
	})
	t.Run("a fresh RRset of higher rank stays", func(t *testing.T) {
		c, _ := newTestCache(t, CacheConfig{})
		c.PutRRset(mustRRs(t, "ns1.example.com. 300 IN A 192.0.2.1"), RankAnswerAA)
		rec := CacheRecord{Kind: RecordRRset, Name: "ns1.example.com.", Qtype: dns.TypeA, Rank: RankGlue,
			Expire: c.Now().Add(time.Hour), Msg: packRRs(t, []string{"ns1.example.com. 3600 IN A 192.0.2.2"}, nil)}
		if err := c.ImportRecord(rec); !errors.Is(err, ErrRecordSuperseded) {
			t.Errorf("ImportRecord of glue over an authoritative answer: %v, want ErrRecordSuperseded", err)
		}
	})
	t.Run("a later NXDOMAIN stays", func(t *testing.T) {
		src, clock := newTestCache(t, CacheConfig{})
		src.Put(a.msg(t))
		rec := exportAll(t, src)[0]
		c := NewCache(CacheConfig{MaxBytes: 1 << 20, Now: clock.Now})
		c.Put(resp{qname: a.qname, qtype: dns.TypeA, rcode: dns.RcodeNameError,
			ns: []string{"example.com. 7200 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 7200"}}.msg(t))
		if err := c.ImportRecord(rec); !errors.Is(err, ErrRecordSuperseded) {
			t.Errorf("ImportRecord under a later NXDOMAIN: %v, want ErrRecordSuperseded", err)
		}
	})
	t.Run("too large for a shard", func(t *testing.T) {
		src, clock := newTestCache(t, CacheConfig{})
		src.Put(a.msg(t))
		rec := exportAll(t, src)[0]
		dst := NewCache(CacheConfig{MaxBytes: cacheShards * 100, Now: clock.Now})
		if err := dst.ImportRecord(rec); !errors.Is(err, ErrRecordTooLarge) {
			t.Errorf("ImportRecord into a tiny cache: %v, want ErrRecordTooLarge", err)
		}
		if err := NewCache(CacheConfig{Now: clock.Now}).ImportRecord(rec); !errors.Is(err, ErrCacheDisabled) {
			t.Errorf("ImportRecord into a disabled cache: %v, want ErrCacheDisabled", err)
		}
	})
}

// packRRs packs records given in zone text into a record's Msg.
func packRRs(t testing.TB, answer, ns []string) []byte {
	t.Helper()
	m := &dns.Msg{Answer: mustRRs(t, answer...), Ns: mustRRs(t, ns...)}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPersistImportRejects feeds records a damaged or forged file could
// hold: each must be refused as ErrBadRecord and leave the cache empty.
func TestPersistImportRejects(t *testing.T) {
	clock := newFakeClock()
	exp := clock.Now().Add(time.Hour)
	aRR := []string{"a.example.com. 300 IN A 192.0.2.1"}
	okAnswer := CacheRecord{Kind: RecordMessage, Name: "a.example.com.", Qtype: dns.TypeA, Expire: exp, Msg: packRRs(t, aRR, nil)}
	okRRset := CacheRecord{Kind: RecordRRset, Name: "a.example.com.", Qtype: dns.TypeA, Rank: RankGlue, Expire: exp, Msg: packRRs(t, aRR, nil)}
	okNX := CacheRecord{Kind: RecordNXDomain, Name: "nx.example.com.", Rcode: dns.RcodeNameError, MsgKind: MsgNXDomain,
		Expire: exp, Msg: packRRs(t, nil, []string{soaCom})}
	for _, rec := range []CacheRecord{okAnswer, okRRset, okNX} {
		if err := NewCache(CacheConfig{MaxBytes: 1 << 20, Now: clock.Now}).ImportRecord(rec); err != nil {
			t.Fatalf("the valid %s record is refused: %v", rec.Kind, err)
		}
	}
	with := func(rec CacheRecord, f func(*CacheRecord)) CacheRecord {
		f(&rec)
		return rec
	}
	wire := packRRs(t, aRR, nil)
	tests := []struct {
		name string
		rec  CacheRecord
	}{
		{name: "unknown kind", rec: with(okAnswer, func(r *CacheRecord) { r.Kind = 7 })},
		{name: "upper-case name", rec: with(okAnswer, func(r *CacheRecord) { r.Name = "A.example.com." })},
		{name: "relative name", rec: with(okAnswer, func(r *CacheRecord) { r.Name = "a.example.com" })},
		{name: "empty name", rec: with(okAnswer, func(r *CacheRecord) { r.Name = "" })},
		{name: "label too long", rec: with(okAnswer, func(r *CacheRecord) { r.Name = strings.Repeat("a", 64) + ".com." })},
		{name: "zero expiry", rec: with(okAnswer, func(r *CacheRecord) { r.Expire = time.Time{} })},
		{name: "expiry far away", rec: with(okAnswer, func(r *CacheRecord) { r.Expire = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) })},
		{name: "meta question type", rec: with(okAnswer, func(r *CacheRecord) { r.Qtype = dns.TypeANY })},
		{name: "SERVFAIL", rec: with(okAnswer, func(r *CacheRecord) { r.Rcode = dns.RcodeServerFailure })},
		{name: "kind does not match the records", rec: with(okAnswer, func(r *CacheRecord) { r.MsgKind = MsgNoData })},
		{name: "NODATA without SOA", rec: with(okAnswer, func(r *CacheRecord) { r.Qtype = dns.TypeAAAA; r.MsgKind = MsgNoData })},
		{name: "message with a rank", rec: with(okAnswer, func(r *CacheRecord) { r.Rank = RankAnswer })},
		{name: "unknown security status", rec: with(okAnswer, func(r *CacheRecord) { r.Sec = 9 })},
		{name: "unknown reason status", rec: with(okAnswer, func(r *CacheRecord) { r.Why = "x"; r.WhyStatus = 9 })},
		{name: "reason status without text", rec: with(okAnswer, func(r *CacheRecord) { r.WhyStatus = dnssec.Bogus })},
		{name: "reason too long", rec: with(okAnswer, func(r *CacheRecord) { r.Why = strings.Repeat("x", maxWhyLen+1) })},
		{name: "no records", rec: with(okAnswer, func(r *CacheRecord) { r.Msg = nil })},
		{name: "truncated records", rec: with(okAnswer, func(r *CacheRecord) { r.Msg = wire[:len(wire)-2] })},
		{name: "random bytes", rec: with(okAnswer, func(r *CacheRecord) { r.Msg = []byte("\x00\x01\x02not a message at all, really") })},
		{name: "with a question", rec: with(okAnswer, func(r *CacheRecord) {
			m := &dns.Msg{Answer: mustRRs(t, aRR...)}
			m.SetQuestion("a.example.com.", dns.TypeA)
			r.Msg, _ = m.Pack()
		})},
		{name: "record of class CH", rec: with(okAnswer, func(r *CacheRecord) {
			r.Msg = packRRs(t, []string{"a.example.com. 300 CH A 192.0.2.1"}, nil)
		})},
		{name: "upper-case owner", rec: with(okAnswer, func(r *CacheRecord) {
			r.Msg = packRRs(t, []string{"A.example.com. 300 IN A 192.0.2.1"}, nil)
		})},
		{name: "OPT record", rec: with(okAnswer, func(r *CacheRecord) {
			m := &dns.Msg{Answer: mustRRs(t, aRR...)}
			m.SetEdns0(1232, true)
			r.Msg, _ = m.Pack()
		})},
		{name: "empty rdata", rec: with(okAnswer, func(r *CacheRecord) {
			r.Msg = []byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, // header: one answer
				1, 'a', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 0}
		})},
		{name: "rrset of another owner", rec: with(okRRset, func(r *CacheRecord) { r.Name = "b.example.com." })},
		{name: "rrset of another type", rec: with(okRRset, func(r *CacheRecord) { r.Qtype = dns.TypeAAAA })},
		{name: "rrset with a foreign record", rec: with(okRRset, func(r *CacheRecord) {
			r.Msg = packRRs(t, append(slices.Clone(aRR), "b.example.com. 300 IN A 192.0.2.2"), nil)
		})},
		{name: "rrset of signatures only", rec: with(okRRset, func(r *CacheRecord) {
			r.Msg = packRRs(t, []string{"a.example.com. 300 IN RRSIG A 13 3 300 20250401000000 20250301000000 12345 example.com. AAAA"}, nil)
		})},
		{name: "rrset in the authority section", rec: with(okRRset, func(r *CacheRecord) { r.Msg = packRRs(t, nil, aRR) })},
		{name: "rrset rank out of range", rec: with(okRRset, func(r *CacheRecord) { r.Rank = RankValidated + 1 })},
		{name: "rrset with an rcode", rec: with(okRRset, func(r *CacheRecord) { r.Rcode = dns.RcodeNameError })},
		{name: "nxdomain with a type", rec: with(okNX, func(r *CacheRecord) { r.Qtype = dns.TypeA })},
		{name: "nxdomain without SOA", rec: with(okNX, func(r *CacheRecord) { r.Msg = packRRs(t, nil, []string{"example.com. 300 IN NS ns1.example.com."}) })},
		{name: "nxdomain with a foreign SOA", rec: with(okNX, func(r *CacheRecord) { r.Msg = packRRs(t, nil, []string{soaOrg}) })},
		{name: "nxdomain with NOERROR", rec: with(okNX, func(r *CacheRecord) { r.Rcode = dns.RcodeSuccess })},
		{name: "nxdomain for the name as a message", rec: with(okNX, func(r *CacheRecord) { r.Kind = RecordMessage; r.Qtype = dns.TypeA })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(CacheConfig{MaxBytes: 1 << 20, Now: clock.Now})
			err := c.ImportRecord(tc.rec)
			if !errors.Is(err, ErrBadRecord) {
				t.Errorf("ImportRecord: %v, want ErrBadRecord", err)
			}
			if c.Import(tc.rec) {
				t.Error("Import reported the record stored")
			}
			if n := c.Stats().Entries; n != 0 {
				t.Errorf("%d entries after the refusal, want 0", n)
			}
		})
	}
}

// TestPersistExportUnlocked checks that fn runs with no shard locked: it
// may use the cache, even the shard being exported.
func TestPersistExportUnlocked(t *testing.T) {
	c, _ := newTestCache(t, CacheConfig{})
	fillPersistCache(t, c)
	n := 0
	err := c.Export(func(r CacheRecord) error {
		n++
		c.Get(r.Name, r.Qtype)
		c.PutRRset(mustRRs(t, r.Name+" 60 IN TXT \"written during export\""), RankAnswer)
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("Export: %v after %d records", err, n)
	}
	stop := errors.New("stop")
	n = 0
	if err := c.Export(func(CacheRecord) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("Export returned %v after %d calls, want fn's error after 1", err, n)
	}
}

// TestPersistExportConcurrent exports while other goroutines change the
// cache, for the race detector; no export gives a key twice.
func TestPersistExportConcurrent(t *testing.T) {
	c, clock := newTestCache(t, CacheConfig{StaleWindow: time.Hour})
	names := make([]string, 500)
	for i := range names {
		names[i] = fmt.Sprintf("h%d.example.com.", i)
		c.Put(resp{qname: names[i], qtype: dns.TypeA, answer: []string{names[i] + " 300 IN A 192.0.2.1"}}.msg(t))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := names[i%len(names)]
				if i%1000 == 999 {
					c.Flush() // the shards' tables start anew, shorter
				}
				switch i % 4 {
				case 0:
					c.Put(resp{qname: name, qtype: dns.TypeA, answer: []string{name + " 600 IN A 192.0.2.2"}}.msg(t))
				case 1:
					c.Get(name, dns.TypeA)
				case 2:
					c.PutRRset(mustRRs(t, name+" 300 IN AAAA 2001:db8::1"), RankAnswer)
				default:
					c.FlushName(name)
				}
			}
		}()
	}
	dst := NewCache(CacheConfig{MaxBytes: 16 << 20, StaleWindow: time.Hour, Now: clock.Now})
	for range 5 {
		seen := make(map[CacheKey]bool)
		if err := c.Export(func(r CacheRecord) error {
			k := CacheKey{Kind: r.Kind, Name: r.Name, Qtype: r.Qtype}
			if seen[k] {
				t.Errorf("%s %s/%s exported twice", r.Kind, r.Name, dns.Type(r.Qtype))
			}
			seen[k] = true
			dst.ImportRecord(r)
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	checkInvariants(t, c)
	checkInvariants(t, dst)
}

func TestPersistInfra(t *testing.T) {
	src := &Resolver{infra: newInfra(time.Second)}
	a := netip.MustParseAddrPort("192.0.2.1:53")
	b := netip.MustParseAddrPort("[2001:db8::1]:53")
	src.infra.observe(a, 20*time.Millisecond)
	src.infra.failed(b, time.Second)
	got := src.ExportInfra()
	if want := map[netip.AddrPort]time.Duration{a: 20 * time.Millisecond, b: time.Second}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ExportInfra = %v, want %v", got, want)
	}

	dst := &Resolver{infra: newInfra(time.Second)}
	dst.infra.observe(a, 5*time.Millisecond) // measured since start: kept
	in := map[netip.AddrPort]time.Duration{
		a:                                       20 * time.Millisecond,
		b:                                       time.Second,
		netip.MustParseAddrPort("192.0.2.2:53"): 0,                // no RTT
		netip.MustParseAddrPort("192.0.2.3:53"): -time.Second,     // negative
		netip.MustParseAddrPort("192.0.2.4:53"): maxBackoff + 1,   // beyond any backoff
		netip.MustParseAddrPort("192.0.2.5:0"):  time.Millisecond, // no port
		{}:                                      time.Millisecond} // no address
	if n := dst.ImportInfra(in); n != 1 {
		t.Errorf("ImportInfra added %d servers, want 1", n)
	}
	if got, want := dst.ExportInfra(), (map[netip.AddrPort]time.Duration{a: 5 * time.Millisecond, b: time.Second}); !reflect.DeepEqual(got, want) {
		t.Errorf("after ImportInfra: %v, want %v", got, want)
	}

	many := make(map[netip.AddrPort]time.Duration, maxInfra+100)
	for i := range maxInfra + 100 {
		many[netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 53)] = time.Millisecond
	}
	dst.ImportInfra(many)
	if n := len(dst.ExportInfra()); n != maxInfra {
		t.Errorf("the table holds %d servers, want the bound %d", n, maxInfra)
	}
}

func TestRecordKindString(t *testing.T) {
	for k, want := range map[RecordKind]string{RecordMessage: "message", RecordNXDomain: "nxdomain", RecordRRset: "rrset", 9: "RecordKind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("RecordKind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

// FuzzImportRecord feeds arbitrary records to Import: it must not panic,
// and whatever it stores must keep the cache consistent and readable.
func FuzzImportRecord(f *testing.F) {
	c, _ := newTestCache(f, CacheConfig{StaleWindow: time.Hour})
	fillPersistCache(f, c)
	if err := c.Export(func(r CacheRecord) error {
		f.Add(uint8(r.Kind), r.Name, r.Qtype, int64(time.Hour), uint8(r.Rcode), uint8(r.MsgKind), uint8(r.Rank), uint8(r.Sec), r.Msg)
		return nil
	}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, kind uint8, name string, qtype uint16, left int64, rcode, mkind, rank, sec uint8, msg []byte) {
		if len(msg) > 1<<16 {
			return
		}
		c, clock := newTestCache(t, CacheConfig{StaleWindow: time.Hour})
		rec := CacheRecord{Kind: RecordKind(kind), Name: name, Qtype: qtype, Expire: clock.Now().Add(time.Duration(left)),
			Rcode: int(rcode), MsgKind: MsgKind(mkind), Rank: Rank(rank), Sec: dnssec.SecStatus(sec), Msg: msg}
		if !c.Import(rec) {
			return
		}
		checkInvariants(t, c)
		found := false
		if rec.Kind == RecordRRset {
			_, _, _, found = c.GetRRsetStale(name, qtype)
		} else {
			_, found = c.GetStale(name, qtype)
		}
		if !found {
			t.Errorf("stored %s record %s/%d not found", rec.Kind, name, qtype)
		}
		if err := c.Dump(io.Discard); err != nil {
			t.Error(err)
		}
		if again := exportAll(t, c); len(again) != 1 {
			t.Errorf("exported %d records, want 1", len(again))
		}
	})
}
