package resolver

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestCacheDumpJSON: the JSON dump has the text dump's entries in its
// order, one object per line, with snake_case fields.
func TestCacheDumpJSON(t *testing.T) {
	c, clock := newTestCache(t, CacheConfig{StaleWindow: time.Hour})
	for _, r := range []resp{
		{qname: "www.example.com.", qtype: dns.TypeA, answer: []string{"www.example.com. 300 IN A 192.0.2.1"}},
		{qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaCom}},
		{qname: "old.example.org.", qtype: dns.TypeTXT, answer: []string{`old.example.org. 10 IN TXT "old"`}},
	} {
		c.Put(r.msg(t))
	}
	c.PutRRset(mustRRs(t, "example.com. 3600 IN NS ns1.example.com."), RankAuthority)
	clock.Advance(20 * time.Second)

	var sb strings.Builder
	if err := c.DumpJSON(&sb); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		line string // the line as written
	}{
		{name: "an RRset",
			line: `{"kind":"rrset","name":"example.com.","type":"NS","rank":"authority","ttl":3580,"stale":false,"national":false,"records":["example.com.\t3580\tIN\tNS\tns1.example.com."]}`},
		{name: "an NXDOMAIN",
			line: `{"kind":"message","name":"nx.example.com.","type":"*","result":"nxdomain","rcode":"NXDOMAIN","ttl":280,"stale":false,"national":false,"authority":["example.com.\t280\tIN\tSOA\tns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300"]}`},
		{name: "an answer",
			line: `{"kind":"message","name":"www.example.com.","type":"A","result":"answer","rcode":"NOERROR","ttl":280,"stale":false,"national":false,"answer":["www.example.com.\t280\tIN\tA\t192.0.2.1"]}`},
		{name: "a stale answer",
			line: `{"kind":"message","name":"old.example.org.","type":"TXT","result":"answer","rcode":"NOERROR","ttl":0,"stale":true,"expired_seconds":10,"national":false,"answer":["old.example.org.\t0\tIN\tTXT\t\"old\""]}`},
	}
	sc := bufio.NewScanner(strings.NewReader(sb.String()))
	i := 0
	for ; sc.Scan(); i++ {
		if i >= len(want) {
			t.Fatalf("more lines than %d: %s", len(want), sc.Text())
		}
		var e DumpEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Errorf("%s: line %d is not JSON: %v", want[i].name, i+1, err)
		}
		if sc.Text() != want[i].line {
			t.Errorf("%s: line %d\n%s\nwant\n%s", want[i].name, i+1, sc.Text(), want[i].line)
		}
	}
	if i != len(want) {
		t.Errorf("%d lines, want %d:\n%s", i, len(want), sb.String())
	}
}
