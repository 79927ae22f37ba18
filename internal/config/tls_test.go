package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestEncryptedListeners(t *testing.T) {
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "sovdns.yaml")
	yaml := "listen_tls: [\"127.0.0.1:853\", \"[::1]:853\"]\nlisten_https: [127.0.0.1:443]\n" +
		"tls:\n  cert_file: /etc/sovdns/cert.pem\n  key_file: /etc/sovdns/key.pem\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantTLS := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:853"), netip.MustParseAddrPort("[::1]:853")}
	if !slices.Equal(c.TLSAddrs, wantTLS) {
		t.Errorf("TLSAddrs %v, want %v", c.TLSAddrs, wantTLS)
	}
	if want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:443")}; !slices.Equal(c.HTTPSAddrs, want) {
		t.Errorf("HTTPSAddrs %v, want %v", c.HTTPSAddrs, want)
	}
	if c.TLS != (TLSConfig{CertFile: "/etc/sovdns/cert.pem", KeyFile: "/etc/sovdns/key.pem"}) {
		t.Errorf("TLS %+v", c.TLS)
	}

	// From the environment, comma-separated; port 0 may repeat.
	t.Setenv("SOVDNS_LISTEN_HTTPS", "127.0.0.2:0,127.0.0.3:0")
	t.Setenv("SOVDNS_LISTEN_TLS", "127.0.0.2:0")
	c, err = Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.HTTPSAddrs) != 2 || len(c.TLSAddrs) != 1 {
		t.Errorf("from the environment: TLSAddrs %v, HTTPSAddrs %v", c.TLSAddrs, c.HTTPSAddrs)
	}
}
