package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/tlstest"
)

// encCert is a self-signed certificate written as PEM files.
type encCert struct {
	der       []byte
	spkiPin   string // base64 SHA-256 of the public key, for kdig +tls-pin
	pool      *x509.CertPool
	certFile  string
	keyFile   string
	serialNum int64
}

// writeCert makes a self-signed certificate for ips with serial and writes
// it and its key to certFile and keyFile, replacing what they held.
func writeCert(t *testing.T, certFile, keyFile string, serial int64, ips ...string) *encCert {
	t.Helper()
	var addrs []netip.Addr
	for _, ip := range ips {
		addrs = append(addrs, netip.MustParseAddr(ip))
	}
	leaf := tlstest.WriteCert(t, certFile, keyFile, serial, addrs...)
	pin := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &encCert{der: leaf.Raw, spkiPin: base64.StdEncoding.EncodeToString(pin[:]), pool: pool,
		certFile: certFile, keyFile: keyFile, serialNum: serial}
}

// encServer starts sovdns with the demo zone, a DNS over TLS and a DNS over
// HTTPS listener, each on a loopback address of its own, and recursion
// allowed to a network the tests are not in.
func encServer(t *testing.T) (s *server, dot, doh string, cert *encCert) {
	t.Helper()
	dot, doh = newAddr(t), newAddr(t)
	dir := t.TempDir()
	cert = writeCert(t, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), 1, hostOf(dot), hostOf(doh))
	conf := fmt.Sprintf("udp_sockets: 1\nlisten_tls: [%q]\nlisten_https: [%q]\ntls:\n  cert_file: %s\n  key_file: %s\n"+
		"resolver:\n  allow: [192.0.2.0/24]\n", dot, doh, cert.certFile, cert.keyFile)
	// The failed reload of TestEncryptedReload logs an error.
	s = startServer(t, serveOpts{config: conf, errorsExpected: true})
	return s, dot, doh, cert
}

func hostOf(addr string) string { return netip.MustParseAddrPort(addr).Addr().String() }
func portOf(addr string) string {
	return fmt.Sprint(netip.MustParseAddrPort(addr).Port())
}

// kdig runs kdig with args and returns its output.
func kdig(t *testing.T, args ...string) string {
	t.Helper()
	bin := requireTool(t, "kdig")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kdig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestEncryptedKdig asks the demo zone over DNS over TLS and DNS over
// HTTPS (POST and GET) with kdig, pinning the server's key; and checks
// that recursion is refused to a client outside resolver.allow whatever
// the transport.
func TestEncryptedKdig(t *testing.T) {
	requireTool(t, "kdig")
	s, dot, doh, cert := encServer(t)
	tests := []struct {
		name string
		addr string
		args []string
		want string // in the output
	}{
		{name: "tls", addr: dot, args: []string{"+tls-pin=" + cert.spkiPin}, want: ";; TLS session (TLS1.3)"},
		{name: "tls-ca", addr: dot, args: []string{"+tls-ca=" + cert.certFile, "+tls-hostname=" + hostOf(dot)}, want: ";; TLS session (TLS1.3)"},
		{name: "https post", addr: doh, args: []string{"+https", "+tls-pin=" + cert.spkiPin}, want: ";; HTTP session (HTTP/2-POST)"},
		{name: "https get", addr: doh, args: []string{"+https-get", "+tls-pin=" + cert.spkiPin}, want: ";; HTTP session (HTTP/2-GET)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := append([]string{"@" + hostOf(tt.addr), "-p", portOf(tt.addr)}, tt.args...)
			out := kdig(t, append(base, "www.gov.az", "A")...)
			for _, w := range []string{"status: NOERROR", "Flags: qr aa", "www.gov.az.", "192.0.2.10", tt.want} {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			// A question outside the zones, from a client outside
			// resolver.allow.
			out = kdig(t, append(base, "+rec", "www.example.org", "A")...)
			if !strings.Contains(out, "status: REFUSED") {
				t.Errorf("recursion from outside resolver.allow: not REFUSED:\n%s", out)
			}
		})
	}
	// Counted under their own transports.
	for _, tr := range []string{"tls", "https"} {
		if v := metricValue(t, s, "sovdns_queries_total", map[string]string{"transport": tr, "zone": "gov.az.", "qtype": "A", "rcode": "NOERROR"}); v < 1 {
			t.Errorf(`sovdns_queries_total{transport=%q,rcode="NOERROR"} = %v`, tr, v)
		}
	}
}

// TestEncryptedReload replaces the certificate files and sends SIGHUP: new
// connections to both listeners get the new certificate. A broken key
// file then leaves the new certificate in place.
func TestEncryptedReload(t *testing.T) {
	s, dot, doh, cert := encServer(t)
	seen := func(addr string, pool *x509.CertPool) *x509.Certificate {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: queryTimeout}, "tcp", addr, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatalf("TLS to %s: %v", addr, err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0]
	}
	for _, a := range []string{dot, doh} {
		if got := seen(a, cert.pool); !bytes.Equal(got.Raw, cert.der) {
			t.Fatalf("%s: serial %v, want the first certificate", a, got.SerialNumber)
		}
	}
	hup := func(wantLog string) {
		t.Helper()
		before := strings.Count(s.log.String(), wantLog)
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 10*time.Second, "log "+wantLog, func() bool { return strings.Count(s.log.String(), wantLog) > before }, s.log.String)
	}

	next := writeCert(t, cert.certFile, cert.keyFile, 2, hostOf(dot), hostOf(doh))
	hup("TLS certificate reloaded")
	for _, a := range []string{dot, doh} {
		got := seen(a, next.pool)
		if sha256.Sum256(got.Raw) != sha256.Sum256(next.der) || got.SerialNumber.Int64() != 2 {
			t.Errorf("%s after reload: serial %v, want 2", a, got.SerialNumber)
		}
	}
	// Queries go on over the new certificate.
	c := &dns.Client{Net: "tcp-tls", Timeout: queryTimeout, TLSConfig: &tls.Config{RootCAs: next.pool}}
	r, _, err := c.ExchangeContext(t.Context(), newQuery("www.gov.az.", dns.TypeA), dot)
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("DoT after reload: %v %v", r, err)
	}
	if status, body := dohPost(t, doh, next.pool, newQuery("www.gov.az.", dns.TypeA)); status != http.StatusOK || len(body) < 12 {
		t.Fatalf("DoH after reload: HTTP %d", status)
	}

	// A key that is not a key: the reload keeps the certificate served.
	if err := os.WriteFile(cert.keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup("TLS certificate not reloaded")
	for _, a := range []string{dot, doh} {
		if got := seen(a, next.pool); got.SerialNumber.Int64() != 2 {
			t.Errorf("%s after a failed reload: serial %v, want 2", a, got.SerialNumber)
		}
	}
}

// TestEncryptedNeedsCertificate: a TLS listener without a certificate, or
// with a key that is not the certificate's, stops the start with an error
// naming the keys.
func TestEncryptedNeedsCertificate(t *testing.T) {
	dir := t.TempDir()
	a := writeCert(t, filepath.Join(dir, "a.pem"), filepath.Join(dir, "a.key"), 1, "127.0.0.1")
	b := writeCert(t, filepath.Join(dir, "b.pem"), filepath.Join(dir, "b.key"), 2, "127.0.0.1")
	tests := []struct {
		name string
		conf string
		want string
	}{
		{name: "no certificate", conf: "listen_tls: [127.0.0.1:0]\n", want: "tls.cert_file"},
		{name: "mismatched key", conf: fmt.Sprintf("listen_https: [127.0.0.1:0]\ntls:\n  cert_file: %s\n  key_file: %s\n", a.certFile, b.keyFile),
			want: "tls.cert_file " + a.certFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sovdns.yaml")
			if err := os.WriteFile(path, []byte(tt.conf+"resolver:\n  allow: []\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			r := runCLI(t, nil, "serve", "--data-dir", t.TempDir(), "--config", path, "--listen", "127.0.0.1:0", "--metrics-listen", "")
			if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr lacks %q:\n%s", r.code, tt.want, r.stderr)
			}
		})
	}
}

// dohPost sends m to addr's /dns-query with POST and returns the status
// and body.
func dohPost(t *testing.T, addr string, pool *x509.CertPool, m *dns.Msg) (int, []byte) {
	t.Helper()
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: queryTimeout}
	resp, err := c.Post("https://"+addr+"/dns-query", "application/dns-message", bytes.NewReader(wire))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("HTTP/%d, want HTTP/2", resp.ProtoMajor)
	}
	return resp.StatusCode, body
}
