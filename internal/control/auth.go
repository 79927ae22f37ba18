package control

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/user"
	"strconv"
	"strings"
)

// UnixAuthor names a local user as the author of changes: "unix:NAME",
// or "unix:uid=N" for a uid without a user name.
func UnixAuthor(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		return "unix:" + u.Username
	}
	return fmt.Sprintf("unix:uid=%d", uid)
}

// peerAuthor names the user of the process at the other end of a unix
// socket connection.
func peerAuthor(c net.Conn, log *slog.Logger) string {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return "unix:unknown"
	}
	uid, err := peerUID(uc)
	if err != nil {
		log.Warn("control socket: the peer's credentials cannot be read; its changes are journaled as unix:unknown", "err", err)
		return "unix:unknown"
	}
	return UnixAuthor(uid)
}

// requireToken lets through the requests that carry a bearer token of
// tokens (secret to name), with "token:NAME" as their author, and answers
// the others 401. Secrets are compared as SHA-256 digests in constant
// time, every token each time, so neither the time taken nor its length
// tells anything about them.
func requireToken(tokens map[string]string, h http.Handler, log *slog.Logger) http.Handler {
	type token struct {
		digest [sha256.Size]byte
		name   string
	}
	known := make([]token, 0, len(tokens))
	for secret, name := range tokens {
		known = append(known, token{sha256.Sum256([]byte(secret)), name})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := bearer(r.Header.Get("Authorization"))
		name := ""
		if ok {
			d := sha256.Sum256([]byte(secret))
			for _, t := range known {
				if subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1 {
					name = t.name
				}
			}
		}
		if name == "" {
			log.Warn("control API: request refused: no valid bearer token", "client", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="sovdns"`)
			writeError(w, ErrUnauthorized)
			return
		}
		h.ServeHTTP(w, r.WithContext(withAuthor(r.Context(), "token:"+name)))
	})
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header.
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
