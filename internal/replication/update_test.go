package replication

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// updatePolicy lets key upd.key. update from loopback, and anyone
// unsigned from 127.0.0.2 (open.example. only).
func updatePolicy(origin string) Policy {
	if origin == "open.example." {
		return Policy{AllowUpdate: ACL{{Prefix: netip.MustParsePrefix("127.0.0.2/32")}}}
	}
	return Policy{AllowUpdate: loopbackACL(keyUpd)}
}

var signedPeer = server.Peer{Addr: netip.MustParseAddrPort("127.0.0.1:40000"), Key: keyUpd}

// wire returns m as the server hands it on: packed and read back, so that
// records without RDATA are as a client's are.
func wire(t *testing.T, m *dns.Msg) *dns.Msg {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("pack: %v", err)
	}
	out := new(dns.Msg)
	if err := out.Unpack(b); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	return out
}

// holds reports whether z has the record text (TTL included).
func holds(t *testing.T, z *zone.Zone, text string) bool {
	t.Helper()
	rr := rrOf(t, text)
	key, err := zone.WireKey(rr.Header().Name)
	if err != nil {
		t.Fatal(err)
	}
	n := z.Lookup(key)
	if n == nil {
		return false
	}
	set := n.Get(rr.Header().Rrtype)
	if set == nil {
		return false
	}
	for _, x := range set.RRs() {
		if dns.IsDuplicate(x, rr) && x.Header().Ttl == rr.Header().Ttl {
			return true
		}
	}
	return false
}

func TestUpdate(t *testing.T) {
	tests := []struct {
		name  string
		peer  *server.Peer // nil: signedPeer
		zone  string       // zone section; empty: example.
		build func(t *testing.T, m *dns.Msg)
		rcode int
		// changed: the serial moved on; serial, when not zero, is the new one.
		changed bool
		serial  uint32
		has     []string // records the zone holds afterwards
		hasNot  []string
	}{
		{name: "add a record", changed: true, rcode: dns.RcodeSuccess,
			build: func(t *testing.T, m *dns.Msg) { m.Insert(rrsOf(t, "new.example. 300 IN A 192.0.2.50")) },
			has:   []string{"new.example. 300 IN A 192.0.2.50"}},
		{name: "an added record sets its RRset's TTL", changed: true,
			build: func(t *testing.T, m *dns.Msg) { m.Insert(rrsOf(t, "www.example. 60 IN A 192.0.2.12")) },
			has:   []string{"www.example. 60 IN A 192.0.2.10", "www.example. 60 IN A 192.0.2.11", "www.example. 60 IN A 192.0.2.12"}},
		{name: "a record already there changes nothing",
			build: func(t *testing.T, m *dns.Msg) { m.Insert(rrsOf(t, "www.example. 3600 IN A 192.0.2.10")) },
			has:   []string{"www.example. 3600 IN A 192.0.2.10"}},
		{name: "a record already there with another TTL", changed: true,
			build: func(t *testing.T, m *dns.Msg) { m.Insert(rrsOf(t, "www.example. 120 IN A 192.0.2.10")) },
			has:   []string{"www.example. 120 IN A 192.0.2.10", "www.example. 120 IN A 192.0.2.11"}},
		{name: "delete an RRset", changed: true,
			build:  func(t *testing.T, m *dns.Msg) { m.RemoveRRset(rrsOf(t, "www.example. 0 IN AAAA ::")) },
			has:    []string{"www.example. 3600 IN A 192.0.2.10"},
			hasNot: []string{"www.example. 3600 IN AAAA 2001:db8::10"}},
		{name: "delete a name", changed: true,
			build:  func(t *testing.T, m *dns.Msg) { m.RemoveName(rrsOf(t, "www.example. 0 IN A 0.0.0.0")) },
			hasNot: []string{"www.example. 3600 IN A 192.0.2.10", "www.example. 3600 IN AAAA 2001:db8::10"}},
		{name: "delete a record", changed: true,
			build:  func(t *testing.T, m *dns.Msg) { m.Remove(rrsOf(t, "www.example. 3600 IN A 192.0.2.10")) },
			has:    []string{"www.example. 3600 IN A 192.0.2.11"},
			hasNot: []string{"www.example. 3600 IN A 192.0.2.10"}},
		{name: "delete a record that is not there",
			build: func(t *testing.T, m *dns.Msg) { m.Remove(rrsOf(t, "nothing.example. 3600 IN A 192.0.2.10")) }},
		{name: "delete an RRset that is not there",
			build: func(t *testing.T, m *dns.Msg) { m.RemoveRRset(rrsOf(t, "www.example. 0 IN MX 0 .")) }},
		{name: "add and delete in one message changes nothing",
			build: func(t *testing.T, m *dns.Msg) {
				m.Insert(rrsOf(t, "x.example. 300 IN A 192.0.2.1"))
				m.Remove(rrsOf(t, "x.example. 300 IN A 192.0.2.1"))
			},
			hasNot: []string{"x.example. 300 IN A 192.0.2.1"}},
		{name: "delete and add in one message replaces", changed: true,
			build: func(t *testing.T, m *dns.Msg) {
				m.RemoveRRset(rrsOf(t, "www.example. 0 IN A 0.0.0.0"))
				m.Insert(rrsOf(t, "www.example. 300 IN A 192.0.2.99"))
			},
			has:    []string{"www.example. 300 IN A 192.0.2.99"},
			hasNot: []string{"www.example. 3600 IN A 192.0.2.10", "www.example. 3600 IN A 192.0.2.11"}},
		{name: "delete all RRsets of the apex keeps SOA and NS", changed: true,
			build:  func(t *testing.T, m *dns.Msg) { m.RemoveName(rrsOf(t, "example. 0 IN A 0.0.0.0")) },
			has:    []string{"example. 3600 IN NS ns1.example.", "example. 3600 IN NS ns2.example."},
			hasNot: []string{"example. 3600 IN MX 10 mail.example."}},
		{name: "delete one of the apex NS records", changed: true,
			build:  func(t *testing.T, m *dns.Msg) { m.Remove(rrsOf(t, "example. 3600 IN NS ns2.example.")) },
			has:    []string{"example. 3600 IN NS ns1.example."},
			hasNot: []string{"example. 3600 IN NS ns2.example."}},
		{name: "replace an apex NS record", changed: true,
			build: func(t *testing.T, m *dns.Msg) {
				m.Insert(rrsOf(t, "example. 3600 IN NS ns3.example.net."))
				m.Remove(rrsOf(t, "example. 3600 IN NS ns1.example.", "example. 3600 IN NS ns2.example."))
			},
			has:    []string{"example. 3600 IN NS ns3.example.net."},
			hasNot: []string{"example. 3600 IN NS ns1.example."}},
		{name: "a CNAME replaces the CNAME", changed: true,
			build:  func(t *testing.T, m *dns.Msg) { m.Insert(rrsOf(t, "alias.example. 300 IN CNAME mail.example.")) },
			has:    []string{"alias.example. 300 IN CNAME mail.example."},
			hasNot: []string{"alias.example. 3600 IN CNAME www.example."}},
		{name: "a CNAME after the name's data is deleted", changed: true,
			build: func(t *testing.T, m *dns.Msg) {
				m.RemoveName(rrsOf(t, "txt.example. 0 IN A 0.0.0.0"))
				m.Insert(rrsOf(t, "txt.example. 300 IN CNAME www.example."))
			},
			has: []string{"txt.example. 300 IN CNAME www.example."}},
		{name: "an SOA whose serial is not newer is ignored",
			build: func(t *testing.T, m *dns.Msg) {
				m.Insert(rrsOf(t, "example. 3600 IN SOA ns1.example. hostmaster.example. 1 60 60 1209600 60"))
			},
			has: []string{"example. 3600 IN SOA ns1.example. hostmaster.example. 1 7200 900 1209600 300"}},
		{name: "an SOA with a newer serial", changed: true, serial: 100,
			build: func(t *testing.T, m *dns.Msg) {
				m.Insert(rrsOf(t, "example. 3600 IN SOA ns1.example. hostmaster.example. 100 60 60 1209600 60"))
			},
			has: []string{"example. 3600 IN SOA ns1.example. hostmaster.example. 100 60 60 1209600 60"}},

		// Refused, changing nothing.
		{name: "a CNAME next to other data", rcode: dns.RcodeRefused,
			build:  func(t *testing.T, m *dns.Msg) { m.Insert(rrsOf(t, "www.example. 300 IN CNAME mail.example.")) },
			hasNot: []string{"www.example. 300 IN CNAME mail.example."}},
		{name: "other data next to a CNAME", rcode: dns.RcodeRefused,
			build: func(t *testing.T, m *dns.Msg) {
				m.Insert(rrsOf(t, "new.example. 300 IN A 192.0.2.50", "alias.example. 300 IN TXT \"no\""))
			},
			hasNot: []string{"new.example. 300 IN A 192.0.2.50"}},
		{name: "delete the apex SOA RRset", rcode: dns.RcodeRefused,
			build: func(t *testing.T, m *dns.Msg) { m.RemoveRRset(rrsOf(t, "example. 0 IN SOA . . 0 0 0 0 0")) }},
		{name: "delete the apex SOA record", rcode: dns.RcodeRefused,
			build: func(t *testing.T, m *dns.Msg) {
				m.Remove(rrsOf(t, "example. 3600 IN SOA ns1.example. hostmaster.example. 1 7200 900 1209600 300"))
			}},
		{name: "delete the apex NS RRset", rcode: dns.RcodeRefused,
			build: func(t *testing.T, m *dns.Msg) { m.RemoveRRset(rrsOf(t, "example. 0 IN NS .")) },
			has:   []string{"example. 3600 IN NS ns1.example.", "example. 3600 IN NS ns2.example."}},
		{name: "delete the last apex NS records", rcode: dns.RcodeRefused,
			build: func(t *testing.T, m *dns.Msg) {
				m.Remove(rrsOf(t, "example. 3600 IN NS ns1.example.", "example. 3600 IN NS ns2.example."))
			},
			has: []string{"example. 3600 IN NS ns1.example.", "example. 3600 IN NS ns2.example."}},
		{name: "data below a delegation", rcode: dns.RcodeRefused,
			build: func(t *testing.T, m *dns.Msg) { m.Insert(rrsOf(t, "x.sub.example. 300 IN TXT \"hidden\"")) }},
		{name: "an SOA away from the apex", rcode: dns.RcodeRefused,
			build: func(t *testing.T, m *dns.Msg) {
				m.Insert(rrsOf(t, "www.example. 3600 IN SOA ns1.example. hostmaster.example. 100 60 60 1209600 60"))
			}},

		// Prerequisites.
		{name: "name in use: holds", changed: true,
			build: func(t *testing.T, m *dns.Msg) {
				m.NameUsed(rrsOf(t, "www.example. 0 IN A 0.0.0.0"))
				m.Insert(rrsOf(t, "new.example. 300 IN A 192.0.2.50"))
			},
			has: []string{"new.example. 300 IN A 192.0.2.50"}},
		{name: "name in use: fails", rcode: dns.RcodeNameError,
			build: func(t *testing.T, m *dns.Msg) {
				m.NameUsed(rrsOf(t, "nothing.example. 0 IN A 0.0.0.0"))
				m.Insert(rrsOf(t, "new.example. 300 IN A 192.0.2.50"))
			},
			hasNot: []string{"new.example. 300 IN A 192.0.2.50"}},
		{name: "name not in use: holds", changed: true,
			build: func(t *testing.T, m *dns.Msg) {
				m.NameNotUsed(rrsOf(t, "new.example. 0 IN A 0.0.0.0"))
				m.Insert(rrsOf(t, "new.example. 300 IN A 192.0.2.50"))
			},
			has: []string{"new.example. 300 IN A 192.0.2.50"}},
		{name: "name not in use: fails", rcode: dns.RcodeYXDomain,
			build: func(t *testing.T, m *dns.Msg) {
				m.NameNotUsed(rrsOf(t, "www.example. 0 IN A 0.0.0.0"))
				m.Insert(rrsOf(t, "www.example. 300 IN A 192.0.2.50"))
			},
			hasNot: []string{"www.example. 300 IN A 192.0.2.50"}},
		{name: "RRset exists: holds", changed: true,
			build: func(t *testing.T, m *dns.Msg) {
				m.RRsetUsed(rrsOf(t, "www.example. 0 IN AAAA ::"))
				m.Insert(rrsOf(t, "new.example. 300 IN A 192.0.2.50"))
			}},
		{name: "RRset exists: fails", rcode: dns.RcodeNXRrset,
			build: func(t *testing.T, m *dns.Msg) {
				m.RRsetUsed(rrsOf(t, "www.example. 0 IN MX 0 ."))
				m.Insert(rrsOf(t, "new.example. 300 IN A 192.0.2.50"))
			}},
		{name: "RRset does not exist: holds", changed: true,
			build: func(t *testing.T, m *dns.Msg) {
				m.RRsetNotUsed(rrsOf(t, "www.example. 0 IN MX 0 ."))
				m.Insert(rrsOf(t, "www.example. 300 IN MX 10 mail.example."))
			}},
		{name: "RRset does not exist: fails", rcode: dns.RcodeYXRrset,
			build: func(t *testing.T, m *dns.Msg) {
				m.RRsetNotUsed(rrsOf(t, "www.example. 0 IN A 0.0.0.0"))
				m.Insert(rrsOf(t, "new.example. 300 IN A 192.0.2.50"))
			}},
		{name: "RRset exists with these records: holds", changed: true,
			build: func(t *testing.T, m *dns.Msg) {
				m.Used(rrsOf(t, "www.example. 0 IN A 192.0.2.11", "www.example. 0 IN A 192.0.2.10"))
				m.Insert(rrsOf(t, "new.example. 300 IN A 192.0.2.50"))
			}},
		{name: "RRset exists with these records: fails on a subset", rcode: dns.RcodeNXRrset,
			build: func(t *testing.T, m *dns.Msg) {
				m.Used(rrsOf(t, "www.example. 0 IN A 192.0.2.10"))
				m.Insert(rrsOf(t, "new.example. 300 IN A 192.0.2.50"))
			}},
		{name: "RRset exists with these records: fails on other data", rcode: dns.RcodeNXRrset,
			build: func(t *testing.T, m *dns.Msg) {
				m.Used(rrsOf(t, "www.example. 0 IN A 192.0.2.10", "www.example. 0 IN A 192.0.2.12"))
			}},
		{name: "a prerequisite with a TTL", rcode: dns.RcodeFormatError,
			build: func(t *testing.T, m *dns.Msg) {
				m.Answer = append(m.Answer, &dns.ANY{Hdr: dns.RR_Header{Name: "www.example.", Rrtype: dns.TypeANY, Class: dns.ClassANY, Ttl: 60}})
			}},
		{name: "a prerequisite outside the zone", rcode: dns.RcodeNotZone,
			build: func(t *testing.T, m *dns.Msg) { m.NameUsed(rrsOf(t, "www.example.org. 0 IN A 0.0.0.0")) }},

		// Malformed updates.
		{name: "an update outside the zone", rcode: dns.RcodeNotZone,
			build: func(t *testing.T, m *dns.Msg) { m.Insert(rrsOf(t, "www.example.org. 300 IN A 192.0.2.1")) }},
		{name: "an update of class CH", rcode: dns.RcodeFormatError,
			build: func(t *testing.T, m *dns.Msg) {
				rr := rrOf(t, "www.example. 300 IN A 192.0.2.1")
				rr.Header().Class = dns.ClassCHAOS
				m.Ns = append(m.Ns, rr)
			}},
		{name: "an RRset deletion with a TTL", rcode: dns.RcodeFormatError,
			build: func(t *testing.T, m *dns.Msg) {
				m.Ns = append(m.Ns, &dns.ANY{Hdr: dns.RR_Header{Name: "www.example.", Rrtype: dns.TypeA, Class: dns.ClassANY, Ttl: 60}})
			}},
		{name: "an addition of type ANY", rcode: dns.RcodeFormatError,
			build: func(t *testing.T, m *dns.Msg) {
				m.Ns = append(m.Ns, &dns.ANY{Hdr: dns.RR_Header{Name: "www.example.", Rrtype: dns.TypeANY, Class: dns.ClassINET, Ttl: 60}})
			}},
		{name: "a zone section of two zones", rcode: dns.RcodeFormatError,
			build: func(t *testing.T, m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }},
		{name: "a zone section of type A", rcode: dns.RcodeFormatError,
			build: func(t *testing.T, m *dns.Msg) { m.Question[0].Qtype = dns.TypeA }},
		{name: "a zone not held", zone: "example.org.", rcode: dns.RcodeNotAuth,
			build: func(t *testing.T, m *dns.Msg) { m.Insert(rrsOf(t, "www.example.org. 300 IN A 192.0.2.1")) }},
		{name: "a name that is not a zone", zone: "www.example.", rcode: dns.RcodeNotAuth,
			build: func(t *testing.T, m *dns.Msg) { m.Insert(rrsOf(t, "www.example. 300 IN A 192.0.2.1")) }},

		// Access.
		{name: "unsigned where a key is needed", rcode: dns.RcodeRefused,
			peer:   &server.Peer{Addr: netip.MustParseAddrPort("127.0.0.1:40000")},
			build:  func(t *testing.T, m *dns.Msg) { m.Insert(rrsOf(t, "new.example. 300 IN A 192.0.2.50")) },
			hasNot: []string{"new.example. 300 IN A 192.0.2.50"}},
		{name: "signed with another key", rcode: dns.RcodeRefused,
			peer:  &server.Peer{Addr: netip.MustParseAddrPort("127.0.0.1:40000"), Key: keyOther},
			build: func(t *testing.T, m *dns.Msg) { m.Insert(rrsOf(t, "new.example. 300 IN A 192.0.2.50")) }},
		{name: "from an address not listed", rcode: dns.RcodeRefused,
			peer:  &server.Peer{Addr: netip.MustParseAddrPort("192.0.2.7:40000"), Key: keyUpd},
			build: func(t *testing.T, m *dns.Msg) { m.Insert(rrsOf(t, "new.example. 300 IN A 192.0.2.50")) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newPrimaryHarness(t, Config{Policy: updatePolicy}, primaryZone)
			before, err := h.store.Load("example.")
			if err != nil {
				t.Fatal(err)
			}
			m := new(dns.Msg)
			m.SetUpdate(cmpOrZone(tc.zone))
			tc.build(t, m)
			p := signedPeer
			if tc.peer != nil {
				p = *tc.peer
			}
			r := h.node.Update(t.Context(), wire(t, m), p)
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			after, err := h.store.Load("example.")
			if err != nil {
				t.Fatal(err)
			}
			if changed := after.Serial() != before.Serial(); changed != tc.changed {
				t.Errorf("serial %d after %d: changed %v, want %v", after.Serial(), before.Serial(), changed, tc.changed)
			}
			if tc.serial != 0 && after.Serial() != tc.serial {
				t.Errorf("serial %d, want %d", after.Serial(), tc.serial)
			}
			if !tc.changed && after != before {
				t.Error("the zone was committed again")
			}
			for _, s := range tc.has {
				if !holds(t, after, s) {
					t.Errorf("the zone lacks %s", s)
				}
			}
			for _, s := range tc.hasNot {
				if holds(t, after, s) {
					t.Errorf("the zone holds %s", s)
				}
			}
			label := "example."
			if tc.zone != "" {
				label = "none"
			}
			if len(m.Question) != 1 || m.Question[0].Qtype != dns.TypeSOA {
				label = "none"
			}
			if got := testutil.ToFloat64(h.m.Updates.WithLabelValues(label, dns.RcodeToString[tc.rcode])); got != 1 {
				t.Errorf("updates_total{%s,%s} = %v, want 1", label, dns.RcodeToString[tc.rcode], got)
			}
		})
	}
}

func cmpOrZone(z string) string {
	if z == "" {
		return "example."
	}
	return z
}

// TestUpdateAuthor: changes are journaled under the key, or the address
// of an unsigned sender.
func TestUpdateAuthor(t *testing.T) {
	h := newPrimaryHarness(t, Config{Policy: updatePolicy}, primaryZone,
		"$ORIGIN open.example.\n$TTL 300\n@ SOA ns1 h 7 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n")
	tests := []struct {
		origin string
		peer   server.Peer
		author string
	}{
		{origin: "example.", peer: signedPeer, author: "tsig:upd.key."},
		{origin: "open.example.", peer: server.Peer{Addr: netip.MustParseAddrPort("[::ffff:127.0.0.2]:1234")}, author: "addr:127.0.0.2"},
	}
	for _, tc := range tests {
		t.Run(tc.author, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetUpdate(tc.origin)
			m.Insert(rrsOf(t, "new."+tc.origin+" 300 IN A 192.0.2.50"))
			if r := h.node.Update(t.Context(), wire(t, m), tc.peer); r.Rcode != dns.RcodeSuccess {
				t.Fatalf("rcode %s", dns.RcodeToString[r.Rcode])
			}
			hist, err := h.store.History(tc.origin, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != 1 || hist[0].Author != tc.author || hist[0].Op != zonestore.OpEdit {
				t.Errorf("journal %+v, want an edit by %s", hist, tc.author)
			}
		})
	}
}

// TestUpdateSecondary: a secondary copy is not updated here.
func TestUpdateSecondary(t *testing.T) {
	h := newPrimaryHarness(t, Config{Policy: func(string) Policy { return Policy{AllowUpdate: ACL{{Any: true}}} }})
	p, err := zonestore.Parse(strings.NewReader("$ORIGIN sec.example.\n$TTL 300\n@ SOA ns1 h 7 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n"), "sec.example.", "sec.zone", nil)
	if err != nil {
		t.Fatal(err)
	}
	z, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.PutTransfer(z, "192.0.2.200:53"); err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetUpdate("sec.example.")
	m.Insert(rrsOf(t, "new.sec.example. 300 IN A 192.0.2.50"))
	if r := h.node.Update(t.Context(), wire(t, m), signedPeer); r.Rcode != dns.RcodeNotAuth {
		t.Fatalf("rcode %s, want NOTAUTH", dns.RcodeToString[r.Rcode])
	}
	if cur, _ := h.store.Load("sec.example."); cur.Serial() != 7 {
		t.Errorf("serial %d, want 7", cur.Serial())
	}
}

// TestUpdateSigned: a zone sovdns signs is signed as it is updated, and
// its signer's records are not the client's to change.
func TestUpdateSigned(t *testing.T) {
	h := newPrimaryHarness(t, Config{Policy: updatePolicy}, primaryZone)
	if _, err := h.store.EnableDNSSEC("example.", dnssec.DefaultPolicy()); err != nil {
		t.Fatal(err)
	}
	dnskey := func() string {
		z, _ := h.store.Load("example.")
		return z.Apex.Get(dns.TypeDNSKEY).RRs()[0].String()
	}()
	tests := []struct {
		name  string
		build func(m *dns.Msg)
		rcode int
	}{
		{name: "add a record", rcode: dns.RcodeSuccess, build: func(m *dns.Msg) { m.Insert(rrsOf(t, "new.example. 300 IN A 192.0.2.50")) }},
		{name: "delete a name", rcode: dns.RcodeSuccess, build: func(m *dns.Msg) { m.RemoveName(rrsOf(t, "txt.example. 0 IN A 0.0.0.0")) }},
		{name: "delete all RRsets of the apex", rcode: dns.RcodeSuccess, build: func(m *dns.Msg) { m.RemoveName(rrsOf(t, "example. 0 IN A 0.0.0.0")) }},
		{name: "add a DNSKEY", rcode: dns.RcodeRefused, build: func(m *dns.Msg) {
			k := rrOf(t, dnskey).(*dns.DNSKEY)
			k.PublicKey = "AwEAAQ=="
			m.Insert([]dns.RR{k})
		}},
		{name: "delete the DNSKEY RRset", rcode: dns.RcodeRefused, build: func(m *dns.Msg) { m.RemoveRRset(rrsOf(t, dnskey)) }},
		{name: "delete an NSEC", rcode: dns.RcodeRefused, build: func(m *dns.Msg) { m.RemoveRRset(rrsOf(t, "www.example. 0 IN NSEC www.example. A")) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := h.store.Load("example.")
			m := new(dns.Msg)
			m.SetUpdate("example.")
			tc.build(m)
			if r := h.node.Update(t.Context(), wire(t, m), signedPeer); r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			after, _ := h.store.Load("example.")
			if changed := after.Serial() != before.Serial(); changed != (tc.rcode == dns.RcodeSuccess) {
				t.Errorf("serial %d after %d", after.Serial(), before.Serial())
			}
			if !after.Signed() || after.Apex.Get(dns.TypeDNSKEY) == nil {
				t.Error("the zone is no longer signed")
			}
		})
	}
	z, _ := h.store.Load("example.")
	key, _ := zone.WireKey("new.example.")
	if set := z.Lookup(key).Get(dns.TypeA); set == nil || len(set.Sigs()) == 0 {
		// Say which keys the zone has: miekg/dns cannot sign with a key
		// whose tag is 0, and the signer leaves such an RRset unsigned.
		var tags []uint16
		if keys := z.Apex.Get(dns.TypeDNSKEY); keys != nil {
			for _, rr := range keys.RRs() {
				tags = append(tags, rr.(*dns.DNSKEY).KeyTag())
			}
		}
		t.Errorf("the added record is not signed: RRset %v; DNSKEY tags %v", set, tags)
	}
	if z.Apex.Get(dns.TypeMX) != nil || z.Apex.Get(dns.TypeNS) == nil {
		t.Error("deleting all RRsets of the apex: want MX gone and NS kept")
	}
}

// TestUpdatePrerequisitesAtomic: of two updates racing with the
// prerequisite that a name is unused, exactly one adds it.
func TestUpdatePrerequisitesAtomic(t *testing.T) {
	h := newPrimaryHarness(t, Config{Policy: updatePolicy}, primaryZone)
	const n = 8
	rcodes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		m := new(dns.Msg)
		m.SetUpdate("example.")
		m.NameNotUsed(rrsOf(t, "race.example. 0 IN A 0.0.0.0"))
		m.Insert(rrsOf(t, "race.example. 300 IN A 192.0.2."+string(rune('1'+i))))
		req := wire(t, m)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rcodes[i] = h.node.Update(t.Context(), req, signedPeer).Rcode
		}()
	}
	wg.Wait()
	won := 0
	for _, rc := range rcodes {
		switch rc {
		case dns.RcodeSuccess:
			won++
		case dns.RcodeYXDomain:
		default:
			t.Errorf("rcode %s", dns.RcodeToString[rc])
		}
	}
	z, _ := h.store.Load("example.")
	key, _ := zone.WireKey("race.example.")
	if won != 1 || len(z.Lookup(key).Get(dns.TypeA).RRs()) != 1 {
		t.Errorf("%d updates applied, want 1", won)
	}
}

// TestUpdateOverTheNetwork sends UPDATEs through the server, signed and
// not, over UDP and TCP.
func TestUpdateOverTheNetwork(t *testing.T) {
	h := newPrimaryHarness(t, Config{Policy: updatePolicy}, primaryZone)
	h.start(false)
	tests := []struct {
		name    string
		network string
		key     string
		secret  string // replaces the key's secret: a bad signature
		add     string
		rcode   int
	}{
		{name: "signed over UDP", network: "udp", key: keyUpd, add: "u.example. 300 IN A 192.0.2.1", rcode: dns.RcodeSuccess},
		{name: "signed over TCP", network: "tcp", key: keyUpd, add: "t.example. 300 IN A 192.0.2.2", rcode: dns.RcodeSuccess},
		{name: "unsigned", network: "udp", add: "n.example. 300 IN A 192.0.2.3", rcode: dns.RcodeRefused},
		{name: "another key", network: "udp", key: keyOther, add: "o.example. 300 IN A 192.0.2.4", rcode: dns.RcodeRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetUpdate("example.")
			m.Insert(rrsOf(t, tc.add))
			r, err := h.query(tc.network, m, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tc.rcode || r.Opcode != dns.OpcodeUpdate {
				t.Fatalf("rcode %s opcode %s, want %s", dns.RcodeToString[r.Rcode], dns.OpcodeToString[r.Opcode], dns.RcodeToString[tc.rcode])
			}
			q := new(dns.Msg)
			q.SetQuestion(rrOf(t, tc.add).Header().Name, dns.TypeA)
			a, err := h.query("udp", q, "")
			if err != nil {
				t.Fatal(err)
			}
			if found := len(a.Answer) == 1; found != (tc.rcode == dns.RcodeSuccess) {
				t.Errorf("the server answers %v after the update", a.Answer)
			}
		})
	}
	// A signature by a secret the server does not know is NOTAUTH with
	// BADSIG, from the server before the node sees it.
	m := new(dns.Msg)
	m.SetUpdate("example.")
	m.Insert(rrsOf(t, "bad.example. 300 IN A 192.0.2.9"))
	m.SetTsig(keyUpd, dns.HmacSHA256, 300, time.Now().Unix())
	c := &dns.Client{Net: "udp", TsigSecret: map[string]string{keyUpd: secretOther}}
	r, _, err := c.ExchangeContext(t.Context(), m, h.addr)
	if r == nil {
		t.Fatalf("no response: %v", err)
	}
	if r.Rcode != dns.RcodeNotAuth {
		t.Errorf("rcode %s, want NOTAUTH", dns.RcodeToString[r.Rcode])
	}
}
