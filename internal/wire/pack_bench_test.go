package wire

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/zonetest"
)

func benchMsg(b *testing.B) *dns.Msg {
	m := reply(b, "nope123.gov.az.", dns.TypeA, true, nil, zonetest.RRs(b, "gov.az. 3600 IN SOA ns1.gov.az. hostmaster.gov.az. 2026120501 7200 900 1209600 3600"), withOpt(nil))
	m.Rcode = dns.RcodeNameError
	return m
}

func BenchmarkAppendMsg(b *testing.B) {
	m := benchMsg(b)
	buf := make([]byte, 0, 65535)
	b.ReportAllocs()
	for b.Loop() {
		AppendMsg(buf, m)
	}
}

func BenchmarkPackBuffer(b *testing.B) {
	m := benchMsg(b)
	buf := make([]byte, 65535)
	b.ReportAllocs()
	for b.Loop() {
		m.PackBuffer(buf)
	}
}
