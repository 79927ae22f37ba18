package server

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Key is a TSIG key (RFC 8945) the server knows.
type Key struct {
	Algorithm string // miekg/dns name, e.g. dns.HmacSHA256
	Secret    string // base64
}

// signer signs the responses to a TSIG-signed request: the first with the
// request's MAC, each later one of a transfer with the previous MAC and
// timers only (RFC 8945 §5.3.1).
type signer struct {
	name   string
	key    Key
	mac    string
	timers bool
	err    uint16 // TSIG error of an unverified request: the response is not signed
	when   uint64 // the request's time, echoed in an error
}

// verifyTSIG checks the signature of in (whose last record is the TSIG of
// req). It returns the signer for the responses; on failure the signer
// carries the TSIG error and the response is NOTAUTH (RFC 8945 §5.2).
func (s *Server) verifyTSIG(in []byte, req *dns.Msg) *signer {
	t := req.IsTsig()
	name := strings.ToLower(t.Hdr.Name)
	sg := &signer{name: name, when: t.TimeSigned}
	keys := s.keys.Load()
	var key Key
	ok := false
	if keys != nil {
		key, ok = (*keys)[name]
	}
	if !ok || !strings.EqualFold(dns.Fqdn(t.Algorithm), key.Algorithm) {
		sg.err = dns.RcodeBadKey
		s.m.TSIG.WithLabelValues("badkey").Inc()
		return sg
	}
	sg.key = key
	if err := dns.TsigVerify(in, key.Secret, "", false); err != nil {
		if errors.Is(err, dns.ErrTime) {
			sg.err = dns.RcodeBadTime
			s.m.TSIG.WithLabelValues("badtime").Inc()
		} else {
			sg.err = dns.RcodeBadSig
			s.m.TSIG.WithLabelValues("badsig").Inc()
		}
		return sg
	}
	s.m.TSIG.WithLabelValues("ok").Inc()
	sg.mac = t.MAC
	return sg
}

// ok reports whether the request's signature was verified.
func (sg *signer) ok() bool { return sg != nil && sg.err == 0 }

// keyName is the verified key's name, or "" for an unsigned or unverified
// request.
func (sg *signer) keyName() string {
	if !sg.ok() {
		return ""
	}
	return sg.name
}

// pack packs m with its TSIG record: signed when the request verified,
// otherwise carrying the error without a MAC.
func (sg *signer) pack(m *dns.Msg) ([]byte, error) {
	t := &dns.TSIG{
		Hdr:        dns.RR_Header{Name: sg.name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm:  sg.key.Algorithm,
		Fudge:      300,
		TimeSigned: uint64(time.Now().Unix()),
		OrigId:     m.Id,
		Error:      sg.err,
	}
	if t.Algorithm == "" {
		t.Algorithm = dns.HmacSHA256
	}
	if sg.err != 0 {
		m.Rcode = dns.RcodeNotAuth
		if sg.err == dns.RcodeBadTime {
			// The client's time comes back in the record (RFC 8945 §5.2.3);
			// the server's in other data.
			t.TimeSigned = sg.when
			t.OtherData = fmt.Sprintf("%012x", uint64(time.Now().Unix())&0xffffffffffff)
			t.OtherLen = 6
		}
		m.Extra = append(m.Extra, t)
		return m.Pack()
	}
	m.Extra = append(m.Extra, t)
	wire, mac, err := dns.TsigGenerate(m, sg.key.Secret, sg.mac, sg.timers)
	if err != nil {
		return nil, err
	}
	sg.mac, sg.timers = mac, true
	return wire, nil
}
