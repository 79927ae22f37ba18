package zonestore_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// TestLoadSharesNames checks that zones read back from the file hold one
// string per name: the records of a name their owner's, the servers and
// mailbox that several zones name one string, an MX or CNAME target the
// string of the name it points to, a signed zone's signatures one signer;
// and that the zones read back hold the records imported.
func TestLoadSharesNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.db")
	st := openAt(t, path, zonestore.Options{})
	imported := make([]*zone.Zone, 3)
	for i := range imported {
		imported[i] = institutionZone(t, i)
	}
	for _, r := range st.ImportMany(imported, false, nil) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if _, err := st.EnableDNSSEC("z2.gov.test.", dnssec.DefaultPolicy()); err != nil {
		t.Fatal(err)
	}
	signed, err := st.Load("z2.gov.test.")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"z2.gov.test.": recordTexts(signed)}
	for _, z := range imported[:2] {
		want[z.Origin] = recordTexts(z)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openAt(t, path, zonestore.Options{})
	zs, err := st.LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*zone.Zone{}
	for _, z := range zs {
		got[z.Origin] = z
		if !slices.Equal(recordTexts(z), want[z.Origin]) {
			t.Errorf("%s read back differs:\n%v\nwant\n%v", z.Origin, recordTexts(z), want[z.Origin])
		}
	}
	same := func(what, a, b string) {
		t.Helper()
		if a != b || unsafe.StringData(a) != unsafe.StringData(b) {
			t.Errorf("%s: %q and %q are not one string", what, a, b)
		}
	}
	rr := func(z *zone.Zone, owner string, t uint16, i int) dns.RR {
		key, _ := zone.WireKey(owner)
		n := z.Lookup(key)
		if n == nil || n.Get(t) == nil || len(n.Get(t).RRs()) <= i {
			panic(fmt.Sprintf("%s has no %s record %d at %s", z.Origin, dns.TypeToString[t], i, owner))
		}
		return n.Get(t).RRs()[i]
	}
	z0, z1, z2 := got["z0.gov.test."], got["z1.gov.test."], got["z2.gov.test."]
	same("owners at one name", rr(z0, "www.z0.gov.test.", dns.TypeA, 0).Header().Name,
		rr(z0, "www.z0.gov.test.", dns.TypeTXT, 0).Header().Name)
	same("one server, two zones", rr(z0, "z0.gov.test.", dns.TypeNS, 0).(*dns.NS).Ns,
		rr(z1, "z1.gov.test.", dns.TypeNS, 0).(*dns.NS).Ns)
	same("one mailbox, two zones", rr(z0, "z0.gov.test.", dns.TypeSOA, 0).(*dns.SOA).Mbox,
		rr(z1, "z1.gov.test.", dns.TypeSOA, 0).(*dns.SOA).Mbox)
	same("an MX target and its owner", rr(z0, "z0.gov.test.", dns.TypeMX, 0).(*dns.MX).Mx,
		rr(z0, "mail.z0.gov.test.", dns.TypeA, 0).Header().Name)
	same("a CNAME target and its owner", rr(z1, "portal.z1.gov.test.", dns.TypeCNAME, 0).(*dns.CNAME).Target,
		rr(z1, "www.z1.gov.test.", dns.TypeA, 0).Header().Name)
	key, _ := zone.WireKey("www.z2.gov.test.")
	sigs := [][]dns.RR{z2.Lookup(key).Get(dns.TypeA).Sigs(), z2.Apex.Get(dns.TypeNS).Sigs()}
	if len(sigs[0]) == 0 || len(sigs[1]) == 0 {
		t.Fatal("the signed zone read back has no signatures")
	}
	same("one signer", sigs[0][0].(*dns.RRSIG).SignerName, sigs[1][0].(*dns.RRSIG).SignerName)
}
