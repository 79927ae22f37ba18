package cli

import (
	"log/slog"
	"time"

	"github.com/sovdns/sovdns/internal/config"
	"github.com/sovdns/sovdns/internal/server"
)

// loadCertificate reads the certificate that the DNS over TLS and DNS over
// HTTPS listeners present; nil when there are none. An unreadable file or
// a key that is not the certificate's stops the start.
func loadCertificate(c config.Config, log *slog.Logger) (*server.Certificate, error) {
	if len(c.TLSAddrs)+len(c.HTTPSAddrs) == 0 {
		return nil, nil
	}
	cert, err := server.LoadCertificate(c.TLS.CertFile, c.TLS.KeyFile)
	if err != nil {
		return nil, err
	}
	logCertificate(log, cert, "TLS certificate loaded", c.TLS.CertFile)
	return cert, nil
}

// reloadCertificate reads the certificate files named by c again, for a
// reload, and says how it went in a few words for the reload's message. A
// certificate that cannot be loaded is logged and the one served is kept.
func reloadCertificate(cert *server.Certificate, c config.Config, log *slog.Logger) string {
	if cert == nil || c.TLS.CertFile == "" {
		return "" // no encrypted listeners were started, or they are being removed (at restart)
	}
	if err := cert.Reload(c.TLS.CertFile, c.TLS.KeyFile); err != nil {
		log.Error("TLS certificate not reloaded: the one loaded before is still served", "err", err)
		return "TLS certificate not reloaded, the old one is still served (see the server log)"
	}
	logCertificate(log, cert, "TLS certificate reloaded", c.TLS.CertFile)
	return "TLS certificate reloaded"
}

func logCertificate(log *slog.Logger, cert *server.Certificate, msg, file string) {
	leaf := cert.Leaf()
	log.Info(msg, "file", file, "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		log.Warn("TLS certificate not valid now: clients that check it will refuse the connection", "file", file,
			"not_before", leaf.NotBefore.UTC().Format(time.RFC3339), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}
