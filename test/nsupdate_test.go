package test

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestNSUpdate changes a zone with nsupdate and knsupdate, signed with
// TSIG, and checks what the server then answers; refused updates leave
// the zone as it was.
func TestNSUpdate(t *testing.T) {
	nsupdate := requireTool(t, "nsupdate")
	knsupdate := requireTool(t, "knsupdate")
	s := zoneServer(t, primaryConfig("127.0.0.1/32"))

	serial := func() uint32 {
		t.Helper()
		r := exchange(t, "udp", s.dns, newQuery("example.com.", dns.TypeSOA))
		if len(r.Answer) != 1 {
			t.Fatalf("SOA query: %v", r)
		}
		return r.Answer[0].(*dns.SOA).Serial
	}
	lookup := func(name string, qtype uint16) []dns.RR {
		t.Helper()
		return exchange(t, "udp", s.dns, newQuery(name, qtype)).Answer
	}

	steps := []struct {
		name   string
		bin    string
		key    string // "name:secret"; empty: unsigned
		args   []string
		script string
		// fail is what the tool's output says of a refused update; empty:
		// the update succeeds and moves the serial on, unless same is set.
		fail string
		same bool
		// has and hasNot are records the server answers afterwards, or not.
		has    []string
		hasNot []string
	}{
		{name: "nsupdate adds", bin: nsupdate, key: "upd:" + replUpdSecret,
			script: "update add nsupd.example.com. 300 IN A 192.0.2.201\n",
			has:    []string{"nsupd.example.com. 300 IN A 192.0.2.201"}},
		{name: "nsupdate over TCP adds to an RRset", bin: nsupdate, key: "upd:" + replUpdSecret, args: []string{"-v"},
			script: "update add nsupd.example.com. 300 IN A 192.0.2.202\n",
			has:    []string{"nsupd.example.com. 300 IN A 192.0.2.201", "nsupd.example.com. 300 IN A 192.0.2.202"}},
		{name: "knsupdate adds", bin: knsupdate, key: "upd:" + replUpdSecret,
			script: "update add knsupd.example.com. 300 IN TXT \"from knsupdate\"\n",
			has:    []string{"knsupd.example.com. 300 IN TXT \"from knsupdate\""}},
		{name: "nsupdate deletes a record", bin: nsupdate, key: "upd:" + replUpdSecret,
			script: "update delete nsupd.example.com. 300 IN A 192.0.2.201\n",
			has:    []string{"nsupd.example.com. 300 IN A 192.0.2.202"}, hasNot: []string{"nsupd.example.com. 300 IN A 192.0.2.201"}},
		{name: "knsupdate deletes an RRset", bin: knsupdate, key: "upd:" + replUpdSecret,
			script: "update delete www.example.com. AAAA\n",
			has:    []string{"www.example.com. 3600 IN A 192.0.2.10"}, hasNot: []string{"www.example.com. 3600 IN AAAA 2001:db8::10"}},
		{name: "an update that changes nothing", bin: nsupdate, key: "upd:" + replUpdSecret, same: true,
			script: "update add www.example.com. 3600 IN A 192.0.2.10\n"},

		// Prerequisites.
		{name: "prerequisite: the RRset exists", bin: nsupdate, key: "upd:" + replUpdSecret,
			script: "prereq yxrrset www.example.com. A\nupdate add pre1.example.com. 300 IN A 192.0.2.31\n",
			has:    []string{"pre1.example.com. 300 IN A 192.0.2.31"}},
		{name: "prerequisite: the name is unused, but is used", bin: nsupdate, key: "upd:" + replUpdSecret, fail: "YXDOMAIN",
			script: "prereq nxdomain www.example.com.\nupdate add www.example.com. 300 IN TXT \"no\"\n",
			hasNot: []string{"www.example.com. 300 IN TXT \"no\""}},
		{name: "prerequisite: the name is used, but is not", bin: knsupdate, key: "upd:" + replUpdSecret, fail: "NXDOMAIN",
			script: "prereq yxdomain nothing.example.com.\nupdate add pre2.example.com. 300 IN A 192.0.2.32\n",
			hasNot: []string{"pre2.example.com. 300 IN A 192.0.2.32"}},
		{name: "prerequisite: the RRset holds these records, but not only", bin: nsupdate, key: "upd:" + replUpdSecret, fail: "NXRRSET",
			script: "prereq yxrrset example.com. NS ns1.example.com.\nupdate add pre3.example.com. 300 IN A 192.0.2.33\n",
			hasNot: []string{"pre3.example.com. 300 IN A 192.0.2.33"}},
		{name: "prerequisite: the RRset does not exist, but does", bin: nsupdate, key: "upd:" + replUpdSecret, fail: "YXRRSET",
			script: "prereq nxrrset mail.example.com. A\nupdate add pre4.example.com. 300 IN A 192.0.2.34\n",
			hasNot: []string{"pre4.example.com. 300 IN A 192.0.2.34"}},

		// Refused: the server's rules, the keys.
		{name: "a CNAME next to other data", bin: nsupdate, key: "upd:" + replUpdSecret, fail: "REFUSED",
			script: "update add www.example.com. 300 IN CNAME mail.example.com.\n",
			has:    []string{"www.example.com. 3600 IN A 192.0.2.10"}},
		{name: "data next to a CNAME", bin: knsupdate, key: "upd:" + replUpdSecret, fail: "REFUSED",
			script: "update add alias.example.com. 300 IN TXT \"no\"\n",
			has:    []string{"alias.example.com. 3600 IN CNAME www.example.com."}},
		{name: "deleting the apex SOA", bin: nsupdate, key: "upd:" + replUpdSecret, fail: "REFUSED",
			script: "update delete example.com. SOA\n"},
		{name: "deleting the apex NS RRset", bin: nsupdate, key: "upd:" + replUpdSecret, fail: "REFUSED",
			script: "update delete example.com. NS\n",
			has:    []string{"example.com. 3600 IN NS ns1.example.com.", "example.com. 3600 IN NS ns2.example.com."}},
		{name: "deleting the last apex NS records", bin: knsupdate, key: "upd:" + replUpdSecret, fail: "REFUSED",
			script: "update delete example.com. NS ns1.example.com.\nupdate delete example.com. NS ns2.example.com.\n",
			has:    []string{"example.com. 3600 IN NS ns1.example.com.", "example.com. 3600 IN NS ns2.example.com."}},
		{name: "a part refused refuses the whole", bin: nsupdate, key: "upd:" + replUpdSecret, fail: "REFUSED",
			script: "update add whole.example.com. 300 IN A 192.0.2.40\nupdate delete example.com. NS\n",
			hasNot: []string{"whole.example.com. 300 IN A 192.0.2.40"}},
		{name: "signed with the wrong secret", bin: nsupdate, key: "upd:" + replWrongSecret, fail: "NOTAUTH",
			script: "update add wrong.example.com. 300 IN A 192.0.2.50\n",
			hasNot: []string{"wrong.example.com. 300 IN A 192.0.2.50"}},
		{name: "signed with an unknown key", bin: knsupdate, key: "nokey:" + replUpdSecret, fail: "BADKEY",
			script: "update add wrong.example.com. 300 IN A 192.0.2.50\n",
			hasNot: []string{"wrong.example.com. 300 IN A 192.0.2.50"}},
		{name: "signed with a key not allowed to update", bin: nsupdate, key: "xfr:" + replXfrSecret, fail: "REFUSED",
			script: "update add wrong.example.com. 300 IN A 192.0.2.50\n",
			hasNot: []string{"wrong.example.com. 300 IN A 192.0.2.50"}},
		{name: "unsigned", bin: nsupdate, fail: "REFUSED",
			script: "update add wrong.example.com. 300 IN A 192.0.2.50\n",
			hasNot: []string{"wrong.example.com. 300 IN A 192.0.2.50"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := serial()
			name, secret, _ := strings.Cut(st.key, ":")
			host, port, _ := strings.Cut(s.dns, ":")
			args := append([]string{}, st.args...)
			if name != "" {
				args = append(args, "-y", "hmac-sha256:"+name+":"+secret)
			}
			stdout, stderr, code := tool(t, st.bin, "server "+host+" "+port+"\nzone example.com.\n"+st.script+"send\nquit\n", args...)
			out := stdout + stderr
			if st.fail == "" && code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			if st.fail != "" && (code == 0 || !strings.Contains(out, st.fail)) {
				t.Fatalf("exit %d, want a failure with %s:\n%s", code, st.fail, out)
			}
			after := serial()
			if changed := after != before; changed != (st.fail == "" && !st.same) {
				t.Errorf("serial %d after %d", after, before)
			}
			for _, h := range st.has {
				want := rrOfText(t, h)
				if !containsRR(lookup(want.Header().Name, want.Header().Rrtype), want) {
					t.Errorf("the server does not answer %s", h)
				}
			}
			for _, h := range st.hasNot {
				want := rrOfText(t, h)
				if containsRR(lookup(want.Header().Name, want.Header().Rrtype), want) {
					t.Errorf("the server answers %s", h)
				}
			}
		})
	}

	samples := parseSamples(t, scrape(t, s.metrics))
	for rcode, min := range map[string]float64{"NOERROR": 7, "REFUSED": 8, "YXDOMAIN": 1, "NXRRSET": 1} {
		v, _ := find(samples, "sovdns_updates_total", map[string]string{"zone": "example.com.", "rcode": rcode})
		if v < min {
			t.Errorf("sovdns_updates_total{rcode=%q} = %v, want at least %v", rcode, v, min)
		}
	}
}

func rrOfText(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("bad record %q: %v", s, err)
	}
	return rr
}

// containsRR reports whether rrs hold rr, TTL included.
func containsRR(rrs []dns.RR, rr dns.RR) bool {
	for _, x := range rrs {
		if dns.IsDuplicate(x, rr) && x.Header().Ttl == rr.Header().Ttl {
			return true
		}
	}
	return false
}
