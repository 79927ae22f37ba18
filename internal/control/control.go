// Package control is the API through which the CLI, and automation, reach
// a running server: HTTP with JSON. It is served on a unix socket in the
// data directory, whose file permissions (owner only) are the access
// control and whose peer's user is the author of the changes made through
// it, and optionally on a loopback TCP address, where each request needs
// a bearer token and the token's name is the author. Every zone, record,
// DNSSEC and key operation of the CLI is here, run by Local on the
// server's store; errors keep their identity across the wire (see Error).
package control

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/trustanchor"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// SocketName is the control socket's file name in the data directory.
const SocketName = "control.sock"

// maxBody bounds a request body: a zone import is the largest.
const maxBody = 1 << 30

// Signing is what the control API reads of zones' DNSSEC state;
// zonestore.Store is one.
type Signing interface {
	DNSSEC(origin string) (zonestore.DNSSECStatus, error)
	DS(origin string, digest uint8) ([]*dns.DS, error)
}

// KeyCache is the resolver's cache of validated DNSKEY and DS sets,
// flushed with the cache (all of it, or a name and the names below it);
// resolver.Resolver is one. Both return how many entries they removed.
type KeyCache interface {
	FlushKeys() int
	FlushKeysName(name string) int
}

// Node is what the control API reaches of a running server. Cache and
// Keys are nil when the node does not resolve; Store is nil when it has no
// zone store, and then Signing, if set, answers DNSSEC status and DS.
type Node struct {
	Cache   *resolver.Cache
	Keys    KeyCache
	Signing Signing
	// Store is the zone database, for edits through the API; Reload
	// re-reads the configuration and the zones (SIGHUP does the same) and
	// says what changed.
	Store  *zonestore.Store
	Reload func() (string, error)
	// Resolver is the recursive resolver, for sovdns status and audit
	// deps; nil when the node does not resolve.
	Resolver RecursiveResolver
	// Replication, for sovdns zone refresh and retransfer and the status
	// of secondary zones; nil when the node has none.
	Replication Replication
	// CacheFile says how far the resolver cache's file is behind, for
	// sovdns status; nil when the cache is not persisted.
	CacheFile func() CacheFileStatus
	// TrustAnchors reports the resolver's RFC 5011 trust anchor state;
	// nil when it does not keep one.
	TrustAnchors func() []trustanchor.ZoneStatus
	// Parent asks a zone's parent servers for its DS, for the steps of
	// KSK and CSK rollovers; nil: judged by what was last seen.
	Parent ParentChecker
}

// ParentChecker asks a zone's parent servers (the ones given, or else
// found) what they publish as its DS RRset.
type ParentChecker interface {
	Check(ctx context.Context, origin string, servers []string) dnssec.ParentView
}

// authorKey is the context key of a request's author.
type authorKey struct{}

func withAuthor(ctx context.Context, author string) context.Context {
	return context.WithValue(ctx, authorKey{}, author)
}

// authorOf returns the author of the request: the unix socket's peer user
// or the bearer token's name.
func authorOf(ctx context.Context) string {
	if a, ok := ctx.Value(authorKey{}).(string); ok && a != "" {
		return a
	}
	return "unknown"
}

// Handler serves the control API for a node.
func Handler(node Node) http.Handler {
	mux := http.NewServeMux()
	local := func(r *http.Request) (Local, error) {
		if node.Store == nil {
			return Local{}, fmt.Errorf("zone store: %w", ErrUnavailable)
		}
		return Local{Store: node.Store.As(authorOf(r.Context())), Parent: node.Parent}, nil
	}
	// handle registers an operation on the zone store; fn returns the
	// answer's value, or nil when it has written the answer itself.
	handle := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, l Local) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			l, err := local(r)
			if err != nil {
				writeError(w, err)
				return
			}
			v, err := fn(w, r, l)
			switch {
			case err != nil:
				writeError(w, err)
			case v != nil:
				writeJSON(w, v)
			}
		})
	}

	handle("GET /v1/zones", func(w http.ResponseWriter, r *http.Request, l Local) (any, error) {
		// Read a batch at a time and written out as read: a list of
		// 100,000 zones holds no more than a batch of them.
		each, err := l.zoneSource(r.URL.Query().Get("match"))
		if err != nil {
			return nil, err
		}
		if r.URL.Query().Get("format") == "text" {
			// The table of sovdns zone list, which the client copies out
			// as it comes.
			cw := &countingWriter{w: w}
			if err := writeZoneTable(cw, each); err != nil && cw.n == 0 {
				return nil, err // before the first line: an error of its own
			}
			return nil, nil
		}
		writeJSONListFrom(w, each)
		return nil, nil
	})
	handle("GET /v1/zone", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		return l.Zone(r.Context(), origin)
	})
	handle("DELETE /v1/zone", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		if err := l.Delete(r.Context(), origin); err != nil {
			return nil, err
		}
		return map[string]any{"zone": origin, "deleted": true}, nil
	})
	handle("GET /v1/zone/export", func(w http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		// Loaded before the answer starts, so that a missing zone is an
		// error answer rather than an empty file.
		z, err := l.Store.Load(origin)
		if err != nil {
			return nil, err
		}
		w.Header().Set("Content-Type", "text/dns; charset=utf-8")
		_ = zonestore.Export(w, z) // the client sees a cut answer as an error
		return nil, nil
	})
	handle("POST /v1/zone/import", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		p, err := zonestore.Parse(r.Body, origin, "import request", nil)
		if err != nil {
			return nil, err
		}
		z, err := p.Build()
		if err != nil {
			return nil, err
		}
		return l.Import(r.Context(), z, r.URL.Query().Get("replace") == "true")
	})
	handle("POST /v1/zones/import", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		var in []zoneText
		if err := readJSON(r, &in); err != nil {
			return nil, err
		}
		zs := make([]*zone.Zone, len(in))
		for i, zt := range in {
			p, err := zonestore.Parse(strings.NewReader(zt.Text), zt.Zone, "import request", nil)
			if err != nil {
				return nil, fmt.Errorf("zone %s: %w", zt.Zone, err)
			}
			if zs[i], err = p.Build(); err != nil {
				return nil, fmt.Errorf("zone %s: %w", zt.Zone, err)
			}
		}
		return l.ImportMany(r.Context(), zs, r.URL.Query().Get("replace") == "true", nil)
	})
	handle("GET /v1/zone/history", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		limit := 0
		if s := r.URL.Query().Get("limit"); s != "" {
			if limit, err = strconv.Atoi(s); err != nil {
				return nil, fmt.Errorf("%w: limit %q", ErrBadRequest, s)
			}
		}
		h, err := l.History(r.Context(), origin, limit)
		if h == nil && err == nil {
			h = []zonestore.Entry{}
		}
		return h, err
	})
	handle("GET /v1/records", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		var rrtype uint16
		if s := r.URL.Query().Get("type"); s != "" {
			var ok bool
			if rrtype, ok = typeOf(s); !ok {
				return nil, fmt.Errorf("%w: unknown record type %q", ErrBadRequest, s)
			}
		}
		rrs, err := l.Records(r.Context(), origin, r.URL.Query().Get("name"), rrtype)
		if err != nil {
			return nil, err
		}
		out := make([]string, len(rrs))
		for i, rr := range rrs {
			out[i] = rr.String()
		}
		return out, nil
	})
	handle("POST /v1/records", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		var e Edit
		if err := readJSON(r, &e); err != nil {
			return nil, err
		}
		return l.Edit(r.Context(), origin, e)
	})
	handle("POST /v1/txn/begin", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		return l.Begin(r.Context(), origin)
	})
	handle("GET /v1/txn/diff", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		return l.Diff(r.Context(), origin)
	})
	handle("POST /v1/txn/commit", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		return l.Commit(r.Context(), origin)
	})
	handle("POST /v1/txn/abort", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		return l.Abort(r.Context(), origin, r.URL.Query().Get("force") == "true")
	})
	handle("POST /v1/dnssec/enable", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		p := dnssec.DefaultPolicy()
		if err := readJSON(r, &p); err != nil {
			return nil, err
		}
		return l.EnableDNSSEC(r.Context(), origin, p)
	})
	handle("POST /v1/dnssec/disable", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		msg, res, err := l.DisableDNSSEC(r.Context(), origin, r.URL.Query().Get("force") == "true")
		if err != nil {
			return nil, err
		}
		return rolloverJSON{Message: msg, Result: res}, nil
	})
	handle("POST /v1/keys/generate", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		p := dnssec.DefaultPolicy()
		if err := readJSON(r, &p); err != nil {
			return nil, err
		}
		return l.GenerateKeys(r.Context(), origin, p)
	})
	handle("POST /v1/keys/rollover", func(_ http.ResponseWriter, r *http.Request, l Local) (any, error) {
		origin, err := zoneParam(r)
		if err != nil {
			return nil, err
		}
		q := r.URL.Query()
		msg, res, err := l.Rollover(r.Context(), origin, dnssec.Role(q.Get("role")), q.Get("continue") == "true", q.Get("force") == "true")
		if err != nil {
			return nil, err
		}
		return rolloverJSON{Message: msg, Result: res}, nil
	})

	// DNSSEC status and DS come from the store, or from Signing on a node
	// without one.
	signing := node.Signing
	if node.Store != nil {
		signing = nil
	}
	mux.HandleFunc("GET /v1/dnssec/status", func(w http.ResponseWriter, r *http.Request) {
		origin, err := zoneParam(r)
		if err != nil {
			writeError(w, err)
			return
		}
		var st zonestore.DNSSECStatus
		switch {
		case signing != nil:
			st, err = signing.DNSSEC(origin)
		case node.Store != nil:
			st, err = node.Store.DNSSEC(origin)
		default:
			err = fmt.Errorf("zone store: %w", ErrUnavailable)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, st)
	})
	mux.HandleFunc("GET /v1/dnssec/ds", func(w http.ResponseWriter, r *http.Request) {
		origin, err := zoneParam(r)
		if err != nil {
			writeError(w, err)
			return
		}
		digest, err := strconv.ParseUint(r.URL.Query().Get("digest"), 10, 8)
		if err != nil {
			writeError(w, fmt.Errorf("%w: digest: %w", ErrBadRequest, err))
			return
		}
		var ds []*dns.DS
		switch {
		case signing != nil:
			ds, err = signing.DS(origin, uint8(digest))
		case node.Store != nil:
			ds, err = node.Store.DS(origin, uint8(digest))
		default:
			err = fmt.Errorf("zone store: %w", ErrUnavailable)
		}
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

	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, _ *http.Request) {
		if node.Reload == nil {
			writeError(w, fmt.Errorf("reload: %w", ErrUnavailable))
			return
		}
		msg, err := node.Reload()
		if err != nil {
			writeError(w, fmt.Errorf("reload: %w", err))
			return
		}
		writeJSON(w, map[string]string{"message": msg})
	})

	replicationRoutes(mux, node)
	mux.HandleFunc("GET /v1/status", statusHandler(node))
	mux.HandleFunc("GET /v1/audit/deps", auditDepsHandler(node))

	cache := node.Cache
	noCache := func(w http.ResponseWriter) bool {
		if cache == nil {
			writeError(w, fmt.Errorf("recursion is off on this server (resolver.allow is empty): there is no cache: %w", ErrUnavailable))
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
	// ?format=json: JSON Lines, one resolver.DumpEntry per line.
	mux.HandleFunc("GET /v1/cache/dump", func(w http.ResponseWriter, r *http.Request) {
		if noCache(w) {
			return
		}
		switch f := r.URL.Query().Get("format"); f {
		case "", "text":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_ = cache.Dump(w)
		case "json":
			w.Header().Set("Content-Type", "application/jsonl")
			_ = cache.DumpJSON(w)
		default:
			writeError(w, fmt.Errorf("format %q: %w: give text or json", f, ErrBadRequest))
		}
	})
	mux.HandleFunc("POST /v1/cache/flush", func(w http.ResponseWriter, r *http.Request) {
		if noCache(w) {
			return
		}
		// The validator's verdicts on the zones' keys go too, so they are
		// fetched and validated again: keys_removed counts them.
		name := r.URL.Query().Get("name")
		if name == "" {
			n := cache.Stats().Entries
			cache.Flush()
			keys := 0
			if node.Keys != nil {
				keys = node.Keys.FlushKeys()
			}
			writeJSON(w, map[string]any{"flushed": "all", "removed": n, "keys_removed": keys})
			return
		}
		n, keys := cache.FlushName(name), 0
		if node.Keys != nil {
			keys = node.Keys.FlushKeysName(name)
		}
		writeJSON(w, map[string]any{"flushed": name, "removed": n, "keys_removed": keys})
	})
	// The body is limited on the request itself (not a copy), so the
	// route the mux matched stays visible to the caller in r.Pattern.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		mux.ServeHTTP(w, r)
	})
}

// rolloverJSON is the answer to a rollover step.
type rolloverJSON struct {
	Message string `json:"message"`
	Result  Result `json:"result"`
}

// zoneParam returns the request's zone parameter.
func zoneParam(r *http.Request) (string, error) {
	z := r.URL.Query().Get("zone")
	if z == "" {
		return "", fmt.Errorf("%w: the zone parameter is missing", ErrBadRequest)
	}
	return z, nil
}

func readJSON(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return nil
}

// writeJSONList writes a long list as a JSON array, compact, one element
// at a time through a buffer: nothing the size of the whole answer is
// built.
func writeJSONList[T any](w http.ResponseWriter, list []T) {
	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	bw.WriteByte('[')
	for i := range list {
		if i > 0 {
			bw.WriteByte(',')
		}
		// Encode ends each element with a newline: one per line.
		if err := enc.Encode(&list[i]); err != nil {
			return
		}
	}
	bw.WriteString("]\n")
	_ = bw.Flush()
}

// countingWriter writes to an HTTP response as text, counting what it
// wrote.
type countingWriter struct {
	w http.ResponseWriter
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.n == 0 {
		c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

// writeJSONListFrom is writeJSONList for the elements each walks, a batch
// at a time. An error after the first element leaves the list unfinished,
// which the client takes for the error it is.
func writeJSONListFrom[T any](w http.ResponseWriter, each func(fn func([]T) error) error) {
	var bw *bufio.Writer
	var enc *json.Encoder
	n := 0
	err := each(func(list []T) error {
		if bw == nil {
			w.Header().Set("Content-Type", "application/json")
			bw = bufio.NewWriterSize(w, 64<<10)
			enc = json.NewEncoder(bw)
			bw.WriteByte('[')
		}
		for i := range list {
			if n > 0 {
				bw.WriteByte(',')
			}
			n++
			// Encode ends each element with a newline: one per line.
			if err := enc.Encode(&list[i]); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case err != nil && bw == nil:
		writeError(w, err)
	case err != nil:
		_ = bw.Flush() // unfinished
	case bw == nil:
		writeJSONList(w, []T{})
	default:
		bw.WriteString("]\n")
		_ = bw.Flush()
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Serve listens on the unix socket at path (mode 0600) and serves h until
// ctx ends. The author of each request is the user of the process at the
// other end of the socket. A socket file left by a server that is gone is
// replaced; one a live server answers on is an error.
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
	ln, err := listenPrivate(ctx, path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer os.Remove(path)
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return withAuthor(ctx, peerAuthor(c, log))
		},
	}
	log.Info("control socket listening", "path", path)
	if err := run(ctx, hs, ln); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	return nil
}

// listenPrivate listens on a unix socket at path that no one but this
// user can ever connect to: the socket is made, and set to mode 0600, in a
// new directory of mode 0700 beside path, and only then renamed to path, so
// at no moment does it exist with the umask's mode where others can reach
// it. The listener does not remove path when closed; the caller does.
func listenPrivate(ctx context.Context, path string) (net.Listener, error) {
	// A short name: a unix socket's path must fit in 108 bytes.
	var dir string
	for try := 0; ; try++ {
		var b [3]byte
		_, _ = rand.Read(b[:])
		dir = filepath.Join(filepath.Dir(path), ".c"+hex.EncodeToString(b[:]))
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || try == 8 {
			return nil, err
		}
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", tmp)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// ServeTCP serves h on addr, a loopback IP:port, until ctx ends; an empty
// addr serves nothing and returns at once. Every request needs the header
// "Authorization: Bearer SECRET" with a secret of tokens (which maps
// secrets to token names); the token's name, as "token:NAME", is the
// author of the changes made with it. Other requests get 401.
func ServeTCP(ctx context.Context, addr string, tokens map[string]string, h http.Handler, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return fmt.Errorf("control API on %q: the address must be a loopback IP:port", addr)
	}
	if len(tokens) == 0 {
		return fmt.Errorf("control API on %s: no tokens", addr)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	return serveTCP(ctx, ln, tokens, h, log)
}

// serveTCP is ServeTCP on a listener.
func serveTCP(ctx context.Context, ln net.Listener, tokens map[string]string, h http.Handler, log *slog.Logger) error {
	hs := &http.Server{
		Handler:           requireToken(tokens, h, log),
		ReadHeaderTimeout: 5 * time.Second,
	}
	log.Info("control API listening", "addr", ln.Addr().String())
	if err := run(ctx, hs, ln); err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	return nil
}

// run serves hs on ln until ctx ends, then shuts it down, giving requests
// under way a moment to finish.
func run(ctx context.Context, hs *http.Server, ln net.Listener) error {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	err := hs.Serve(ln)
	close(done)
	<-stopped
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// readAll reads a body of at most limit bytes.
func readAll(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(b)) > limit {
		return nil, fmt.Errorf("answer larger than %d bytes", limit)
	}
	return b, err
}
