package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Certificate is the TLS certificate that the DNS over TLS and DNS over
// HTTPS listeners present. It is read from PEM files and replaced by
// Reload; a handshake takes the certificate current when it starts, so
// connections already open keep theirs.
type Certificate struct {
	mu  sync.Mutex // serializes Reload
	cur atomic.Pointer[tls.Certificate]
}

// LoadCertificate reads a certificate (chain) and its private key from PEM
// files, failing if either cannot be read or they do not match.
func LoadCertificate(certFile, keyFile string) (*Certificate, error) {
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	c := &Certificate{}
	c.cur.Store(cert)
	return c, nil
}

// Reload reads the files again, possibly others, and serves them from the
// next handshake on. On an error the certificate served is kept.
func (c *Certificate) Reload(certFile, keyFile string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	c.cur.Store(cert)
	return nil
}

// Leaf returns the certificate being served (the first of the chain).
func (c *Certificate) Leaf() *x509.Certificate { return c.cur.Load().Leaf }

// get is tls.Config.GetCertificate.
func (c *Certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls.cert_file and tls.key_file are both needed")
	}
	// LoadX509KeyPair checks that the key is the certificate's and fills
	// Leaf.
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file %s, tls.key_file %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls.cert_file %s: %w", certFile, err)
		}
	}
	return &cert, nil
}

// tlsConfig is the TLS configuration of a listener offering the
// application protocols protos (ALPN).
func (c *Certificate) tlsConfig(protos ...string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.get,
		NextProtos:     protos,
	}
}
