package resolver

import (
	"testing"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"github.com/sovdns/sovdns/dnssec"
)

// TestPutValidatedWithRRset: the answer and the RRset stored from it share
// one copy of the records, each with its own TTL; an answer that does not
// start with the RRset (a DNAME before it) stores the RRset on its own.
func TestPutValidatedWithRRset(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewCache(CacheConfig{MaxBytes: 1 << 20, Now: func() time.Time { return now }})
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	set := []dns.RR{rr("WWW.example. 3600 IN A 192.0.2.1"), rr("www.example. 3600 IN A 192.0.2.2")}
	soa := rr("example. 60 IN SOA ns. h. 1 2 3 4 60")
	m := answerMsg("www.example.", dns.TypeA, dns.RcodeSuccess, set, []dns.RR{soa})
	c.PutValidatedWithRRset(m, dnssec.Unchecked, nil, 0, set, RankAnswerAA)

	sh := c.shardFor("www.example.")
	nh := c.nameHash("www.example.")
	mi, okm := sh.t.find(nh, "www.example.", dns.TypeA, kindMsg)
	ri, okr := sh.t.find(nh, "www.example.", dns.TypeA, kindRRset)
	if !okm || !okr {
		t.Fatalf("entries: message %v, RRset %v", okm, okr)
	}
	msg, rs := sh.entry(mi), sh.entry(ri)
	if unsafe.SliceData(rs.data) != unsafe.SliceData(msg.data) || len(rs.data) >= len(msg.data) {
		t.Fatal("the RRset does not share the answer's bytes")
	}
	if rrs := rs.records(0); len(rrs) != 2 || rrs[0].Header().Name != "www.example." {
		t.Fatalf("the RRset's records: %v", rrs)
	}
	if got := rs.expire - msg.expire; got != int64(3540*time.Second) {
		t.Fatalf("RRset expires %v after the answer, want 59m (its own TTL)", time.Duration(got))
	}
	got, rank, ok := c.GetRRset("www.example.", dns.TypeA)
	if !ok || rank != RankAnswerAA || len(got) != 2 || got[0].(*dns.A).A.String() != "192.0.2.1" || got[0].Header().Ttl != 3600 {
		t.Fatalf("GetRRset: %v %v %v", got, rank, ok)
	}
	got[0].(*dns.A).A.To4()[3] = 99 // the caller's copy
	if a := rs.records(0)[0].(*dns.A).A; a.To4()[3] != 1 {
		t.Fatalf("a returned record shares the stored one: %v", a)
	}

	// An RRset of lower rank does not replace one of higher rank.
	low := []dns.RR{rr("www.example. 3600 IN A 192.0.2.9")}
	c.PutValidatedWithRRset(answerMsg("www.example.", dns.TypeA, dns.RcodeSuccess, low, nil), dnssec.Unchecked, nil, 0, low, RankGlue)
	if got, _, _ := c.GetRRset("www.example.", dns.TypeA); len(got) != 2 {
		t.Fatalf("a glue RRset replaced an authoritative one: %v", got)
	}

	// A DNAME and its CNAME before the RRset: the RRset is stored apart.
	target := []dns.RR{rr("x.example.net. 300 IN A 192.0.2.3")}
	answer := []dns.RR{rr("example.org. 300 IN DNAME example.net."), rr("x.example.org. 300 IN CNAME x.example.net."), target[0]}
	c.PutValidatedWithRRset(answerMsg("x.example.net.", dns.TypeA, dns.RcodeSuccess, answer, nil), dnssec.Unchecked, nil, 0, target, RankAnswer)
	if got, _, ok := c.GetRRset("x.example.net.", dns.TypeA); !ok || len(got) != 1 || got[0].(*dns.A).A.String() != "192.0.2.3" {
		t.Fatalf("RRset after a DNAME: %v %v", got, ok)
	}
}
