package server

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const tsigSecret = "aGVsbG8tc292ZG5zLXRzaWcta2V5LWEtMzItYnl0ZXM="

// signedRaw sends q signed with secret (as key name) at the given time
// over UDP, and returns the raw response.
func signedRaw(t *testing.T, addr, name, secret string, q *dns.Msg, at time.Time) *dns.Msg {
	t.Helper()
	q.SetTsig(name, dns.HmacSHA256, 300, at.Unix())
	wire, mac, err := dns.TsigGenerate(q, secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(wire); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatal(err)
	}
	if err := dns.TsigVerify(buf[:n], secret, mac, false); r.IsTsig() != nil && r.IsTsig().Error == 0 && err != nil {
		t.Errorf("response signature does not verify: %v", err)
	}
	return r
}

func TestTSIGQueries(t *testing.T) {
	ts := startServer(t, Config{}, mustZone(t, testZone, "example.gov."))
	ts.SetKeys(map[string]Key{"xfr": {Algorithm: dns.HmacSHA256, Secret: tsigSecret}})
	now := time.Now()
	tests := []struct {
		name    string
		key     string
		secret  string
		at      time.Time
		rcode   int
		tsigErr uint16
	}{
		{"good", "xfr.", tsigSecret, now, dns.RcodeSuccess, 0},
		{"unknown key", "other.", tsigSecret, now, dns.RcodeNotAuth, dns.RcodeBadKey},
		{"wrong secret", "xfr.", "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE=", now, dns.RcodeNotAuth, dns.RcodeBadSig},
		{"an hour late", "xfr.", tsigSecret, now.Add(-time.Hour), dns.RcodeNotAuth, dns.RcodeBadTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := signedRaw(t, ts.udp, tt.key, tt.secret, query("www.example.gov.", dns.TypeA), tt.at)
			if r.Rcode != tt.rcode {
				t.Fatalf("rcode %s, want %s\n%v", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode], r)
			}
			sig := r.IsTsig()
			if sig == nil || sig.Error != tt.tsigErr {
				t.Fatalf("TSIG %v, want error %d", sig, tt.tsigErr)
			}
			if tt.rcode == dns.RcodeSuccess && len(r.Answer) != 1 {
				t.Errorf("signed answer: %v", r)
			}
			if tt.tsigErr == dns.RcodeBadTime && (sig.OtherLen != 6 || sig.TimeSigned != uint64(tt.at.Unix())) {
				t.Errorf("BADTIME: other data %q (%d bytes), time %d; want the server's time and the client's", sig.OtherData, sig.OtherLen, sig.TimeSigned)
			}
		})
	}
}
