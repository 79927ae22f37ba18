package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/internal/testaddr"
	"github.com/sovdns/sovdns/internal/tlstest"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
)

// testCert writes a self-signed certificate for ips, with serial, and its
// key as PEM files in dir, and returns their paths and a pool trusting it.
func testCert(t *testing.T, dir string, serial int64, ips ...netip.Addr) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	certFile = filepath.Join(dir, "cert"+big.NewInt(serial).String()+".pem")
	keyFile = filepath.Join(dir, "key"+big.NewInt(serial).String()+".pem")
	pool = x509.NewCertPool()
	pool.AddCert(tlstest.WriteCert(t, certFile, keyFile, serial, ips...))
	return certFile, keyFile, pool
}

// encServer is a server with one DoT and one DoH listener, each on a
// loopback address of its own.
type encServer struct {
	*testServer
	dot, doh string
	pool     *x509.CertPool
	dir      string
}

func startEncrypted(t *testing.T, cfg Config) *encServer {
	t.Helper()
	tlsIP, httpsIP := testaddr.IP(), testaddr.IP()
	dir := t.TempDir()
	certFile, keyFile, pool := testCert(t, dir, 1, tlsIP, httpsIP)
	cert, err := LoadCertificate(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	// Port 0: the kernel picks a port no other socket holds.
	cfg.ListenTLS = []netip.AddrPort{netip.AddrPortFrom(tlsIP, 0)}
	cfg.ListenHTTPS = []netip.AddrPort{netip.AddrPortFrom(httpsIP, 0)}
	cfg.Certificate = cert
	ts := startServer(t, cfg, mustZone(t, testZone, "example.gov."))
	// The encrypted listeners are bound before the plain ones.
	return &encServer{testServer: ts, dot: ts.TLSAddrs()[0].String(), doh: ts.HTTPSAddrs()[0].String(), pool: pool, dir: dir}
}

func (e *encServer) dotExchange(t *testing.T, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: "tcp-tls", Timeout: 2 * time.Second, TLSConfig: &tls.Config{RootCAs: e.pool, NextProtos: []string{"dot"}}}
	r, _, err := c.Exchange(m, e.dot)
	if err != nil {
		t.Fatalf("DoT exchange %s: %v", m.Question[0].String(), err)
	}
	return r
}

func (e *encServer) httpClient(t *testing.T, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	// Before the server stops, which would otherwise wait for the
	// client to end its idle HTTP/2 connection.
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func (e *encServer) url() string { return "https://" + e.doh + dohPath }

// dohGet sends m with GET and returns the HTTP response and the DNS one.
func (e *encServer) dohGet(t *testing.T, c *http.Client, m *dns.Msg) (*http.Response, *dns.Msg) {
	t.Helper()
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(e.url() + "?dns=" + base64.RawURLEncoding.EncodeToString(wire))
	if err != nil {
		t.Fatal(err)
	}
	return resp, readDNS(t, resp)
}

func (e *encServer) dohPost(t *testing.T, c *http.Client, m *dns.Msg) (*http.Response, *dns.Msg) {
	t.Helper()
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Post(e.url(), dohContentType, bytes.NewReader(wire))
	if err != nil {
		t.Fatal(err)
	}
	return resp, readDNS(t, resp)
}

func readDNS(t *testing.T, resp *http.Response) *dns.Msg {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %s: %s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != dohContentType {
		t.Fatalf("Content-Type %q", ct)
	}
	m := new(dns.Msg)
	if err := m.Unpack(body); err != nil {
		t.Fatalf("response: %v", err)
	}
	return m
}

func TestDoTAnswers(t *testing.T) {
	e := startEncrypted(t, Config{})
	// Twice: the second answer comes from the response cache.
	for i := range 2 {
		r := e.dotExchange(t, query("www.example.gov.", dns.TypeA))
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
			t.Fatalf("pass %d: %v", i, r)
		}
	}
	// No truncation over TLS: the whole large RRset comes back.
	big := query("big.example.gov.", dns.TypeTXT)
	e.SetZones(zone.NewSet(bigTXTZone(t)))
	if r := e.dotExchange(t, big); r.Truncated || len(r.Answer) != 40 {
		t.Fatalf("big TXT over DoT: TC %v, %d answers", r.Truncated, len(r.Answer))
	}
	if v := testutil.ToFloat64(e.m.Queries.WithLabelValues("tls", "example.gov.", "A", "NOERROR")); v != 2 {
		t.Errorf(`queries{transport="tls",qtype="A"} = %v, want 2`, v)
	}
	if v := testutil.ToFloat64(e.m.Queries.WithLabelValues("tcp", "example.gov.", "A", "NOERROR")); v != 0 {
		t.Errorf(`queries{transport="tcp"} = %v, want 0`, v)
	}

	// ALPN "dot", TLS 1.2 at least, and pipelined queries on one connection.
	conn, err := tls.Dial("tcp", e.dot, &tls.Config{RootCAs: e.pool, NextProtos: []string{"dot"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "dot" {
		t.Errorf("ALPN %q, want dot", p)
	}
	dc := &dns.Conn{Conn: conn}
	for _, name := range []string{"www.example.gov.", "nope.example.gov."} {
		if err := dc.WriteMsg(query(name, dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []int{dns.RcodeSuccess, dns.RcodeNameError} {
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		r, err := dc.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != want {
			t.Errorf("pipelined: rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[want])
		}
	}
	old := &tls.Config{RootCAs: e.pool, MaxVersion: tls.VersionTLS11}
	if c, err := tls.Dial("tcp", e.dot, old); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
}

func TestDoHGetAndPost(t *testing.T) {
	e := startEncrypted(t, Config{})
	for _, h2 := range []bool{true, false} {
		c := e.httpClient(t, h2)
		proto := map[bool]int{true: 2, false: 1}[h2]
		for _, method := range []string{"GET", "POST"} {
			send := e.dohGet
			if method == "POST" {
				send = e.dohPost
			}
			// RFC 8484 §4.1: DoH clients use ID 0, so that answers can be
			// cached by HTTP; twice, the second from the response cache.
			for i := range 2 {
				q := query("www.example.gov.", dns.TypeA)
				q.Id = 0
				resp, r := send(t, c, q)
				if resp.ProtoMajor != proto {
					t.Errorf("HTTP/%d, want HTTP/%d", resp.ProtoMajor, proto)
				}
				if r.Id != 0 || r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
					t.Fatalf("%s pass %d: %v", method, i, r)
				}
				if cc := resp.Header.Get("Cache-Control"); cc != "max-age=3600" {
					t.Errorf("%s: Cache-Control %q, want max-age=3600", method, cc)
				}
			}
			// A negative answer lives as long as the SOA's minimum (300).
			resp, r := send(t, c, query("nope.example.gov.", dns.TypeA))
			if r.Rcode != dns.RcodeNameError {
				t.Errorf("%s nope: %v", method, r)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "max-age=300" {
				t.Errorf("%s NXDOMAIN: Cache-Control %q, want max-age=300", method, cc)
			}
		}
	}
	if v := testutil.ToFloat64(e.m.Queries.WithLabelValues("https", "example.gov.", "A", "NOERROR")); v != 8 {
		t.Errorf(`queries{transport="https",qtype="A"} = %v, want 8`, v)
	}
}

func TestDoHBadRequests(t *testing.T) {
	e := startEncrypted(t, Config{})
	c := e.httpClient(t, true)
	wire, _ := query("www.example.gov.", dns.TypeA).Pack()
	resp := query("www.example.gov.", dns.TypeA)
	resp.Response = true
	respWire, _ := resp.Pack()
	tests := []struct {
		name   string
		method string
		path   string
		ctype  string
		body   []byte
		want   int
	}{
		{name: "no dns parameter", method: "GET", path: dohPath, want: http.StatusBadRequest},
		{name: "two dns parameters", method: "GET", path: dohPath + "?dns=AAAA&dns=AAAA", want: http.StatusBadRequest},
		{name: "not base64url", method: "GET", path: dohPath + "?dns=%21%21%21", want: http.StatusBadRequest},
		{name: "too short", method: "GET", path: dohPath + "?dns=AAAA", want: http.StatusBadRequest},
		{name: "a response", method: "GET", path: dohPath + "?dns=" + base64.RawURLEncoding.EncodeToString(respWire), want: http.StatusBadRequest},
		{name: "post short", method: "POST", path: dohPath, ctype: dohContentType, body: wire[:5], want: http.StatusBadRequest},
		{name: "post wrong type", method: "POST", path: dohPath, ctype: "application/octet-stream", body: wire, want: http.StatusUnsupportedMediaType},
		{name: "post no type", method: "POST", path: dohPath, body: wire, want: http.StatusUnsupportedMediaType},
		{name: "post too large", method: "POST", path: dohPath, ctype: dohContentType, body: make([]byte, 70000), want: http.StatusRequestEntityTooLarge},
		{name: "put", method: "PUT", path: dohPath, ctype: dohContentType, body: wire, want: http.StatusMethodNotAllowed},
		{name: "head", method: "HEAD", path: dohPath, want: http.StatusMethodNotAllowed},
		{name: "other path", method: "GET", path: "/resolve?dns=" + base64.RawURLEncoding.EncodeToString(wire), want: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, "https://"+e.doh+tt.path, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "GET, POST" {
				t.Errorf("Allow %q", resp.Header.Get("Allow"))
			}
		})
	}
	// A padded query is taken.
	odd, _ := query("ww.example.gov.", dns.TypeA).Pack()
	padded := base64.URLEncoding.EncodeToString(odd)
	if !strings.HasSuffix(padded, "=") {
		t.Fatalf("%q has no padding", padded)
	}
	r, err := c.Get(e.url() + "?dns=" + padded)
	if err != nil {
		t.Fatal(err)
	}
	readDNS(t, r)
}

// TestEncryptedRecursionACL: the recursion access list applies to DoT and
// DoH clients by their real address.
func TestEncryptedRecursionACL(t *testing.T) {
	a, _ := dns.NewRR("www.example.com. 30 IN A 192.0.2.1")
	for _, tt := range []struct {
		allow string
		rcode int
	}{
		{allow: "127.0.0.0/8", rcode: dns.RcodeSuccess},
		{allow: "192.0.2.0/24", rcode: dns.RcodeRefused},
	} {
		t.Run(tt.allow, func(t *testing.T) {
			e := startEncrypted(t, Config{Resolver: scripted{resolver.Result{Answer: []dns.RR{a}}},
				RecursionAllow: []netip.Prefix{netip.MustParsePrefix(tt.allow)}})
			q := new(dns.Msg)
			q.SetQuestion("www.example.com.", dns.TypeA)
			if r := e.dotExchange(t, q); r.Rcode != tt.rcode {
				t.Errorf("DoT: rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
			_, r := e.dohPost(t, e.httpClient(t, true), q)
			if r.Rcode != tt.rcode {
				t.Errorf("DoH: rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
			if tt.rcode == dns.RcodeSuccess && len(r.Answer) == 1 && r.Answer[0].Header().Ttl != 30 {
				t.Errorf("DoH answer TTL %d", r.Answer[0].Header().Ttl)
			}
		})
	}
}

// TestCertificateReload: a reload serves the new certificate from the next
// handshake on; a failed one keeps the old.
func TestCertificateReload(t *testing.T) {
	e := startEncrypted(t, Config{})
	ip := netip.MustParseAddrPort(e.dot).Addr()
	serialSeen := func(pool *x509.CertPool) int64 {
		t.Helper()
		c, err := tls.Dial("tcp", e.dot, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serialSeen(e.pool); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	cert2, key2, pool2 := testCert(t, e.dir, 2, ip)
	if err := e.cfg.Certificate.Reload(cert2, key2); err != nil {
		t.Fatal(err)
	}
	if s := serialSeen(pool2); s != 2 {
		t.Fatalf("after reload: serial %d, want 2", s)
	}
	// A key that is not the certificate's: refused, the old one stays.
	cert3, _, _ := testCert(t, e.dir, 3, ip)
	err := e.cfg.Certificate.Reload(cert3, key2)
	if err == nil || !strings.Contains(err.Error(), "tls.cert_file") {
		t.Fatalf("mismatched pair: err %v", err)
	}
	if err := e.cfg.Certificate.Reload(filepath.Join(e.dir, "missing.pem"), key2); err == nil {
		t.Fatal("a missing file: no error")
	}
	if s := serialSeen(pool2); s != 2 {
		t.Fatalf("after failed reloads: serial %d, want 2", s)
	}
	if e.cfg.Certificate.Leaf().SerialNumber.Int64() != 2 {
		t.Error("Leaf is not the certificate served")
	}
}

func TestLoadCertificateErrors(t *testing.T) {
	dir := t.TempDir()
	c1, k1, _ := testCert(t, dir, 1)
	_, k2, _ := testCert(t, dir, 2)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		cert, key string
	}{
		{name: "missing cert", cert: filepath.Join(dir, "none.pem"), key: k1},
		{name: "missing key", cert: c1, key: filepath.Join(dir, "none.pem")},
		{name: "mismatched", cert: c1, key: k2},
		{name: "not PEM", cert: garbage, key: k1},
		{name: "empty", cert: "", key: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := LoadCertificate(tt.cert, tt.key); err == nil {
				t.Fatal("no error")
			} else if !strings.Contains(err.Error(), "tls.") {
				t.Errorf("error %q does not name the tls keys", err)
			}
		})
	}
	if _, err := LoadCertificate(c1, k1); err != nil {
		t.Fatal(err)
	}
}

// TestEncryptedListenerInUse: a DoT or DoH address already held fails Run
// at once, naming the key.
func TestEncryptedListenerInUse(t *testing.T) {
	ip := testaddr.IP()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := ln.Addr().(*net.TCPAddr).AddrPort()
	dir := t.TempDir()
	certFile, keyFile, _ := testCert(t, dir, 1, ip)
	cert, err := LoadCertificate(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key string
		cfg Config
	}{
		{key: "listen_tls", cfg: Config{ListenTLS: []netip.AddrPort{held}}},
		{key: "listen_https", cfg: Config{ListenHTTPS: []netip.AddrPort{held}}},
	} {
		cfg := tt.cfg
		cfg.Listen = []netip.AddrPort{loopback0}
		cfg.Certificate = cert
		s := New(cfg, slog.New(slog.DiscardHandler), metrics.New(prometheus.NewRegistry()))
		err := s.Run(t.Context())
		if err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("%s on a port in use: Run = %v", tt.key, err)
		}
	}
}

func TestCacheLifetime(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name       string
		answer, ns []dns.RR
		want       uint32
	}{
		{name: "smallest answer TTL", answer: []dns.RR{rr("a.example. 300 A 192.0.2.1"), rr("a.example. 60 A 192.0.2.2")},
			ns: []dns.RR{rr("example. 10 NS ns.example.")}, want: 60},
		{name: "negative: SOA minimum", ns: []dns.RR{rr("example. 3600 SOA ns h 1 2 3 4 120")}, want: 120},
		{name: "negative: SOA TTL", ns: []dns.RR{rr("example. 30 SOA ns h 1 2 3 4 120")}, want: 30},
		{name: "referral", ns: []dns.RR{rr("sub.example. 3600 NS ns.sub.example.")}, want: 0},
		{name: "nothing", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("a.example.", dns.TypeA)
			m.Response = true
			m.Answer, m.Ns = tt.answer, tt.ns
			m.SetEdns0(1232, false)
			wire, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if got := cacheLifetime(wire); got != tt.want {
				t.Errorf("cacheLifetime = %d, want %d", got, tt.want)
			}
			for i := range wire { // cut anywhere: never a panic
				cacheLifetime(wire[:i])
			}
		})
	}
}

// TestDoHConnectionLimits: a DoH listener takes at most
// tcp.max_connections_per_client connections from one address; one over
// is closed at once and counted, and the slot comes back when the
// connection ends.
func TestDoHConnectionLimits(t *testing.T) {
	e := startEncrypted(t, Config{TCPMaxConnections: 4, TCPMaxPerClient: 1})
	dial := func() (*tls.Conn, error) {
		d := &net.Dialer{Timeout: 2 * time.Second}
		return tls.DialWithDialer(d, "tcp", e.doh, &tls.Config{RootCAs: e.pool, NextProtos: []string{"h2"}})
	}
	first, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	if p := first.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Errorf("ALPN %q, want h2", p)
	}
	if c, err := dial(); err == nil {
		c.Close()
		t.Fatal("a second connection from the same address was taken")
	}
	if v := testutil.ToFloat64(e.m.Dropped.WithLabelValues("tcp_client_limit")); v != 1 {
		t.Errorf(`dropped{reason="tcp_client_limit"} = %v, want 1`, v)
	}
	first.Close()
	waitUntil(t, func() bool {
		c, err := dial()
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}
