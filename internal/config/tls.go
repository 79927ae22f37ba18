package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// TLSConfig is the tls section: the certificate that the DNS over TLS
// (listen_tls) and DNS over HTTPS (listen_https) listeners present. The
// files are read at start and again on every reload (SIGHUP, sovdns
// reload).
type TLSConfig struct {
	CertFile string `mapstructure:"cert_file"` // PEM: the certificate, then any intermediates
	KeyFile  string `mapstructure:"key_file"`  // PEM: its private key
}

// validateEncrypted checks listen_tls, listen_https and the tls section,
// and fills TLSAddrs and HTTPSAddrs. Whether the files can be read and
// belong together is found when they are loaded, at start and on reload.
func (c *Config) validateEncrypted(bad func(string, any, string)) {
	c.TLSAddrs = listenAddrs("listen_tls", c.ListenTLS, bad)
	c.HTTPSAddrs = listenAddrs("listen_https", c.ListenHTTPS, bad)
	// One TCP port cannot serve two of plain DNS, DoT and DoH.
	taken := map[netip.AddrPort]string{}
	for i, ap := range c.ListenAddrs {
		taken[ap] = fmt.Sprintf("listen[%d]", i)
	}
	for _, l := range []struct {
		key   string
		addrs []netip.AddrPort
	}{{"listen_tls", c.TLSAddrs}, {"listen_https", c.HTTPSAddrs}} {
		for i, ap := range l.addrs {
			if ap.Port() == 0 {
				continue // the kernel picks a port of its own
			}
			key := fmt.Sprintf("%s[%d]", l.key, i)
			if other, ok := taken[ap]; ok {
				bad(key, ap, "is also "+other+": each address needs a port of its own")
				continue
			}
			taken[ap] = key
		}
	}
	t := c.TLS
	if len(c.ListenTLS)+len(c.ListenHTTPS) > 0 || t.CertFile != "" || t.KeyFile != "" {
		why := "listen_tls and listen_https need tls.cert_file and tls.key_file: a PEM certificate (chain) and its private key"
		if t.CertFile == "" {
			bad("tls.cert_file", t.CertFile, why)
		}
		if t.KeyFile == "" {
			bad("tls.key_file", t.KeyFile, why)
		}
	}
}

// listenAddrs parses a list of IP:port addresses under key.
func listenAddrs(key string, list []string, bad func(string, any, string)) []netip.AddrPort {
	var out []netip.AddrPort
	for i, l := range list {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(l))
		if err != nil {
			bad(fmt.Sprintf("%s[%d]", key, i), l, "must be IP:port, with IPv6 as [addr]:port")
			continue
		}
		out = append(out, ap)
	}
	return out
}
