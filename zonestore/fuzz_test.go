package zonestore_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// maxFuzzInput caps the input so each run stays fast.
const maxFuzzInput = 16 << 10

// maxFuzzRecords caps the records checked, so that each run stays fast.
const maxFuzzRecords = 2000

// maxErrorText bounds the message of one error: input is quoted cut short,
// so even a huge bad token gives a short message.
const maxErrorText = 4 << 10

// FuzzParse feeds arbitrary bytes to Parse and Build. Errors are fine when
// they name a file and line; panics are not. Every record read must read
// back the same from the text the export writes for it, and a zone that
// builds must export, read back and build to the same records.
// testdata/fuzz/FuzzParse holds inputs that once broke one of these.
func FuzzParse(f *testing.F) {
	seeds := []string{
		baseZone,
		apexText,
		apexText + "www IN A 192.0.2.1\nwww IN CNAME x\n",
		apexText + "sub IN NS ns.sub\nns.sub IN A 192.0.2.1\nx.sub IN TXT \"occluded\"\n",
		apexText + "d IN DNAME example.net.\na.b.d IN A 192.0.2.1\n",
		apexText + "unk IN TYPE65280 \\# 4 0A000001\nbad IN TYPE65281 \\# 3 00\n",
		apexText + "* IN NS ns.example.net.\n*.w IN MX 10 mail\n",
		apexText + "$GENERATE 1-5 h$ A 192.0.2.$\n",
		apexText + "$INCLUDE other.zone\n",
		"$ORIGIN example.\n@ 3600 IN SOA ns1 h (\n 1 2 3\n 4 5 )\n",
		"$ORIGIN example.\n@ 3600 IN SOA ns1 h ( 1 2 3 4 5\n",
		"$TTL\n$ORIGIN\n@",
		"@ IN TXT \"unterminated\n",
		"\\000.\\255.example. 0 IN A 192.0.2.1\n",
		"example. 2147483648 CH A 192.0.2.1\n",
		"",
		"\x00\xff(;)\"\\",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(apexText + everyType))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput || bytes.Count(bytes.ToUpper(data), []byte("$GENERATE")) > 1 {
			return // $GENERATE lines make up to 65,536 records each: too slow
		}
		p, err := zonestore.Parse(bytes.NewReader(data), "example.", "fuzz.zone", nil)
		if err != nil {
			checkParseError(t, err)
			return
		}
		if len(p.Pos) != len(p.RRs) {
			t.Fatalf("%d positions for %d records", len(p.Pos), len(p.RRs))
		}
		if len(p.RRs) > maxFuzzRecords {
			return
		}
		for i, rr := range p.RRs {
			if p.Pos[i].File != "fuzz.zone" || p.Pos[i].Line < 1 {
				t.Fatalf("record %d (%s) placed at %v", i, rr, p.Pos[i])
			}
			text := zonestore.FormatRecord(rr)
			again, err := zonestore.Parse(strings.NewReader(text+"\n"), "", "record", nil)
			if err != nil {
				t.Fatalf("record %d at %v does not read back from %q: %v", i, p.Pos[i], text, err)
			}
			if len(again.RRs) != 1 || !slices.Equal(wire(t, again.RRs[0]), wire(t, rr)) {
				t.Fatalf("record %d at %v, written %q, reads back as %v", i, p.Pos[i], text, again.RRs)
			}
		}
		z, err := p.Build()
		if err != nil {
			checkParseError(t, err)
			return
		}
		var b bytes.Buffer
		if err := zonestore.Export(&b, z); err != nil {
			t.Fatalf("Export: %v", err)
		}
		p2, err := zonestore.Parse(bytes.NewReader(b.Bytes()), "", "export.zone", nil)
		if err != nil {
			t.Fatalf("re-parse of the export: %v\n%s", err, b.String())
		}
		z2, err := p2.Build()
		if err != nil {
			t.Fatalf("rebuild of the export: %v\n%s", err, b.String())
		}
		if a, b2 := wires(t, z.Records()), wires(t, z2.Records()); !slices.Equal(a, b2) {
			t.Fatalf("the export reads back as other records:\n%s", b.String())
		}
	})
}

// everyType is a record of each type the parser knows, for the fuzzer to
// start from.
const everyType = `md IN MD a.example.
mf IN MF a.example.
mb IN MB a.example.
mg IN MG a.example.
mr IN MR a.example.
hinfo IN HINFO "PC" "Linux OS"
minfo IN MINFO r.example. e.example.
rp IN RP m.example. t.example.
afsdb IN AFSDB 1 a.example.
x25 IN X25 311061700956
isdn IN ISDN "150862028003217" "004"
rt IN RT 10 a.example.
nsap-ptr IN NSAP-PTR a.example.
px IN PX 10 map822.example. mapx400.example.
gpos IN GPOS -32.6882 116.8652 10.0
loc IN LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m
eid IN EID 12345678
nimloc IN NIMLOC 32
naptr IN NAPTR 100 10 "S" "SIP+D2U" "!^.*$!sip:info@example.com!" _sip._udp.example.
kx IN KX 10 a.example.
cert IN CERT PGP 0 0 AQIDBA==
apl IN APL 1:192.168.32.0/21 !1:192.168.38.0/28 2:2001:db8::/32
sshfp IN SSHFP 4 2 123456789abcdef67890123456789abcdef67890123456789abcdef123456789
ipseckey IN IPSECKEY 10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==
dhcid IN DHCID AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=
tlsa IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
smimea IN SMIMEA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
hip IN HIP 2 200100107B1A74DF365639CC39F1D578 AwEAAbdxyhNuSutc5EMzxTs9LBPCIkOFH8cIvM4p9+LrV4e19WzK00+CI6zBCQTdtWsuxKbWIy87UOoJTwkUs7lBu+Upr1gsNrut79ryra+bSRGQb1slImA8YVJyuIDsj7kwzG7jnERNqnWxZ48AWkskmdHaVDP4BcelrTI3rMXdXF5D rvs.example.
ninfo IN NINFO "a" "b"
rkey IN RKEY 0 3 5 AwEAAQ==
talink IN TALINK a.example. b.example.
cds IN CDS 12345 8 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
cdnskey IN CDNSKEY 257 3 8 AwEAAQ==
openpgpkey IN OPENPGPKEY AwEAAQ==
csync IN CSYNC 66 3 A NS AAAA
zonemd IN ZONEMD 2018031900 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
svcb IN SVCB 1 . alpn=h2,h3 port=8443 ipv4hint=192.0.2.1 ech=AEn+DQBFKwAgACABWIHUGj4u+PIggYXcR5JF0gYk3dCRioBW8uJq9H4mKAAIAAEAAQABAANAEnB1YmxpYy50bHMtZWNoLmRldgAA mandatory=alpn
https IN HTTPS 0 svc.example.
spf IN SPF "v=spf1 -all"
uinfo IN UINFO "x"
uid IN UID 1
gid IN GID 1
nid IN NID 10 0014:4fff:ff20:ee64
l32 IN L32 10 10.1.2.0
l64 IN L64 10 2001:0db8:1140:1000
lp IN LP 10 l64.example.
eui48 IN EUI48 00-00-5e-00-53-2a
eui64 IN EUI64 00-00-5e-ef-10-00-00-2a
uri IN URI 10 1 "ftp://ftp1.example.com/public"
caa IN CAA 0 issue "ca.example.net; account=230123"
avc IN AVC "app-name:WOLFGANG|app-class:OAM"
amtrelay IN AMTRELAY 10 0 3 relay.example.
resinfo IN RESINFO qnamemin exterr=15,16,17
ta IN TA 12345 8 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
dlv IN DLV 12345 8 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
key IN KEY 256 3 8 AwEAAQ==
sig IN SIG A 8 2 300 20300101000000 20200101000000 12345 example. dGVzdA==
nxt IN NXT a.example. A NS
null IN NULL \# 2 abcd
`

// checkParseError fails unless err (or each error it joins) is placed.
func checkParseError(t *testing.T, err error) {
	t.Helper()
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	for _, e := range list {
		if len(e.Error()) > maxErrorText {
			t.Fatalf("error message of %d bytes: %.200s...", len(e.Error()), e)
		}
		var pe *zonestore.ParseError
		if errors.As(e, &pe) {
			if pe.Pos.File != "fuzz.zone" || pe.Pos.Line < 1 {
				t.Fatalf("error placed at %v: %v", pe.Pos, e)
			}
			continue
		}
		if !errors.Is(e, zone.ErrNoSOA) && !errors.Is(e, zone.ErrNoApexNS) && !errors.Is(e, zone.ErrTooManyErrors) {
			t.Fatalf("error without a position: %v", e)
		}
	}
}

// wire is rr's uncompressed wire form.
func wire(t *testing.T, rr dns.RR) []byte {
	t.Helper()
	buf := make([]byte, dns.Len(rr)+512)
	n, err := dns.PackRR(dns.Copy(rr), buf, 0, nil, false)
	if err != nil {
		t.Fatalf("pack %v: %v", rr, err)
	}
	return buf[:n]
}

// wires is the sorted wire forms of rrs.
func wires(t *testing.T, rrs []dns.RR) []string {
	t.Helper()
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = string(wire(t, rr))
	}
	slices.Sort(out)
	return out
}
