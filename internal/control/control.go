// Package control is the API the CLI uses to reach a running server: HTTP
// with JSON on a unix socket in the data directory, whose file permissions
// (owner only) are the access control. Nothing of it listens on the network.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zonestore"
)

// ErrNoServer means no server answers on the control socket.
var ErrNoServer = errors.New("no running sovdns server")

// SocketName is the control socket's file name in the data directory.
const SocketName = "control.sock"

// Signing is what the control API reads of zones' DNSSEC state;
// zonestore.Store is one.
type Signing interface {
	DNSSEC(origin string) (zonestore.DNSSECStatus, error)
	DS(origin string, digest uint8) ([]*dns.DS, error)
}

// KeyCache is the resolver's cache of validated DNSKEY and DS sets,
// emptied with the cache; resolver.Resolver is one.
type KeyCache interface{ FlushKeys() }

// Node is what the control API reaches of a running server. Cache and
// Keys are nil when the node does not resolve, Signing when it has no
// zone store.
type Node struct {
	Cache   *resolver.Cache
	Keys    KeyCache
	Signing Signing
	// Store is the zone database, for edits through the API; Reload
	// re-reads the configuration and the zones (SIGHUP does the same) and
	// says what changed.
	Store  *zonestore.Store
	Reload func() (string, error)
}

// Handler serves the control API for a node.
func Handler(node Node) http.Handler {
	cache, signing := node.Cache, node.Signing
	mux := http.NewServeMux()
	if signing != nil {
		mux.HandleFunc("GET /v1/dnssec/status", func(w http.ResponseWriter, r *http.Request) {
			st, err := signing.DNSSEC(r.URL.Query().Get("zone"))
			if err != nil {
				writeError(w, err)
				return
			}
			writeJSON(w, st)
		})
		mux.HandleFunc("GET /v1/dnssec/ds", func(w http.ResponseWriter, r *http.Request) {
			digest, err := strconv.ParseUint(r.URL.Query().Get("digest"), 10, 8)
			if err != nil {
				http.Error(w, "digest: "+err.Error(), http.StatusBadRequest)
				return
			}
			ds, err := signing.DS(r.URL.Query().Get("zone"), uint8(digest))
			if err != nil {
				writeError(w, err)
				return
			}
			out := make([]string, len(ds))
			for i, d := range ds {
				out[i] = d.String()
			}
			writeJSON(w, out)
		})
	}
	noCache := func(w http.ResponseWriter) bool {
		if cache == nil {
			http.Error(w, "recursion is off on this server (resolver.allow is empty): there is no cache", http.StatusConflict)
			return true
		}
		return false
	}
	mux.HandleFunc("GET /v1/cache/stats", func(w http.ResponseWriter, _ *http.Request) {
		if noCache(w) {
			return
		}
		writeJSON(w, cache.Stats())
	})
	mux.HandleFunc("GET /v1/cache/dump", func(w http.ResponseWriter, _ *http.Request) {
		if noCache(w) {
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_ = cache.Dump(w)
	})
	mux.HandleFunc("POST /v1/cache/flush", func(w http.ResponseWriter, r *http.Request) {
		if noCache(w) {
			return
		}
		name := r.URL.Query().Get("name")
		if name == "" {
			n := cache.Stats().Entries
			cache.Flush()
			if node.Keys != nil {
				node.Keys.FlushKeys() // a full flush forgets validated keys too
			}
			writeJSON(w, map[string]any{"flushed": "all", "removed": n})
			return
		}
		writeJSON(w, map[string]any{"flushed": name, "removed": cache.FlushName(name)})
	})
	return mux
}

// writeError answers with err's text: 404 for a zone that is not there.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, zonestore.ErrNoZone) || errors.Is(err, zonestore.ErrNotSigned) {
		code = http.StatusNotFound
	}
	http.Error(w, err.Error(), code)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Serve listens on the unix socket at path (mode 0600) and serves h until
// ctx ends. A socket file left by a server that is gone is replaced; one a
// live server answers on is an error.
func Serve(ctx context.Context, path string, h http.Handler, log *slog.Logger) error {
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("control socket %s: another server is using it", path)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("control socket %s: %w", path, err)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	log.Info("control socket listening", "path", path)
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("control socket: %w", err)
	}
	return nil
}

// Client talks to a server's control socket.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	return &Client{path: path, hc: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

// Do sends a request and returns the body of a 2xx answer.
func (c *Client) Do(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://sovdns"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (control socket %s): %w", ErrNoServer, c.path, err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, errors.New(strings.TrimSpace(string(body)))
	}
	return body, nil
}
