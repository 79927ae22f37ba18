package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// Client bounds: how long to wait for a connection, and for a whole
// exchange (signing or importing a large zone takes a while).
const (
	dialTimeout    = 2 * time.Second
	requestTimeout = 10 * time.Minute
	maxAnswer      = 1 << 30
)

// Client talks to a server's control API. Its zone operations have the
// same signatures as Local's.
type Client struct {
	where string // for messages: the socket path or the TCP address
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client for the unix socket at path.
func NewClient(path string) *Client {
	return &Client{where: "control socket " + path, base: "http://sovdns", hc: &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: dialTimeout}
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

// NewTokenClient returns a client for the control API on a loopback TCP
// address, authenticating with the bearer token secret.
func NewTokenClient(addr, secret string) *Client {
	return &Client{where: "control API " + addr, base: "http://" + addr, token: secret, hc: &http.Client{
		Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: dialTimeout}).DialContext},
	}}
}

// Answers reports whether a server accepts connections on the control
// socket at path.
func Answers(path string) bool {
	c, err := net.DialTimeout("unix", path, dialTimeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Close releases the client's idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// Do sends a request without a body and returns the body of a 2xx answer.
func (c *Client) Do(ctx context.Context, method, path string) ([]byte, error) {
	resp, cancel, err := c.send(ctx, method, path, nil, nil, "")
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	b, err := readAll(resp.Body, maxAnswer)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.where, err)
	}
	return b, nil
}

// send makes one request and returns a 2xx answer, whose body the caller
// closes before calling cancel; any other answer is returned as its error.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body io.Reader, ctype string) (*http.Response, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		var ne *net.OpError
		if errors.As(err, &ne) && ne.Op == "dial" || errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("%w (%s): %w", ErrNoServer, c.where, err)
		}
		return nil, nil, fmt.Errorf("%s: %w", c.where, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, cancel, nil
	}
	defer cancel()
	defer resp.Body.Close()
	b, err := readAll(resp.Body, 1<<20)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c.where, err)
	}
	return nil, nil, decodeError(resp, b)
}

// decodeError rebuilds the error of an error answer.
func decodeError(resp *http.Response, b []byte) error {
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		var eb errorBody
		if err := json.Unmarshal(b, &eb); err == nil && eb.Error != "" {
			return &Error{Msg: eb.Error, Kinds: eb.Kinds, Status: resp.StatusCode}
		}
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = resp.Status
	}
	return &Error{Msg: msg, Status: resp.StatusCode}
}

// call sends in (JSON unless it is an io.Reader) and decodes the answer
// into out (unless nil).
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	ctype := ""
	switch v := in.(type) {
	case nil:
	case io.Reader:
		body, ctype = v, "text/dns; charset=utf-8"
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	resp, cancel, err := c.send(ctx, method, path, q, body, ctype)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
		return fmt.Errorf("%s: answer: %w", c.where, err)
	}
	return nil
}

func zoneQuery(origin string, kv ...string) url.Values {
	q := url.Values{"zone": {origin}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

// Zones describes the zones of the server's store whose names match
// pattern (ZonePattern; empty: every zone).
func (c *Client) Zones(ctx context.Context, pattern string) ([]zonestore.ZoneInfo, error) {
	var q url.Values
	if pattern != "" {
		q = url.Values{"match": {pattern}}
	}
	var out []zonestore.ZoneInfo
	err := c.call(ctx, http.MethodGet, "/v1/zones", q, nil, &out)
	return out, err
}

// ZoneList writes the zones whose names match pattern to w, as
// Local.ZoneList does. The table comes made from the server and is copied
// out as it arrives; the JSON list is indented here.
func (c *Client) ZoneList(ctx context.Context, pattern string, asJSON bool, w io.Writer) error {
	q := url.Values{}
	if pattern != "" {
		q.Set("match", pattern)
	}
	if !asJSON {
		q.Set("format", "text")
	}
	resp, cancel, err := c.send(ctx, http.MethodGet, "/v1/zones", q, nil, "")
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	if !asJSON {
		if _, err := io.Copy(w, resp.Body); err != nil {
			return fmt.Errorf("%s: answer: %w", c.where, err)
		}
		return nil
	}
	if err := indentList(w, io.LimitReader(resp.Body, maxAnswer)); err != nil {
		return fmt.Errorf("%s: answer: %w", c.where, err)
	}
	return nil
}

// indentList copies a JSON list written one element a line (as
// writeJSONList writes it: "[" a, "," b, ... "]") from r to w, indented as
// json.Indent with two spaces indents the whole, an element at a time: a
// list of 100,000 zones is not held twice in memory.
func indentList(w io.Writer, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(w, 64<<10)
	var buf bytes.Buffer
	for n := 0; ; n++ {
		line, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		elem, end, err2 := listElement(line, n)
		switch {
		case err2 != nil:
			return err2
		case end && n == 0:
			bw.WriteString("[]\n")
			return bw.Flush()
		case end:
			bw.WriteString("\n]\n")
			return bw.Flush()
		case errors.Is(err, io.EOF):
			return fmt.Errorf("list cut short after %d elements", n)
		case n == 0:
			bw.WriteString("[\n  ")
		default:
			bw.WriteString(",\n  ")
		}
		buf.Reset()
		if err := json.Indent(&buf, elem, "  ", "  "); err != nil {
			return fmt.Errorf("list element %d: %w", n, err)
		}
		bw.Write(buf.Bytes())
	}
}

// listElement returns element n of a list as writeJSONList writes it from
// its line, or end when the line closes the list.
func listElement(line []byte, n int) (elem []byte, end bool, err error) {
	elem = bytes.TrimSpace(line)
	if n > 0 && string(elem) == "]" {
		return nil, true, nil
	}
	sep := []byte(",")
	if n == 0 {
		sep = []byte("[")
	}
	elem, ok := bytes.CutPrefix(elem, sep)
	if !ok {
		return nil, false, fmt.Errorf("list element %d: not as listed: %.40q", n, line)
	}
	return elem, n == 0 && string(elem) == "]", nil
}

// Zone describes one zone.
func (c *Client) Zone(ctx context.Context, origin string) (ZoneDetail, error) {
	var out ZoneDetail
	err := c.call(ctx, http.MethodGet, "/v1/zone", zoneQuery(origin), nil, &out)
	return out, err
}

// Export writes the zone to w as a canonical master file.
func (c *Client) Export(ctx context.Context, origin string, w io.Writer) error {
	resp, cancel, err := c.send(ctx, http.MethodGet, "/v1/zone/export", zoneQuery(origin), nil, "")
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("export %s: %w", zone.Fqdn(origin), err)
	}
	return nil
}

// Import sends z to be stored as the whole contents of its zone.
func (c *Client) Import(ctx context.Context, z *zone.Zone, replace bool) (Result, error) {
	var buf bytes.Buffer
	if err := zonestore.Export(&buf, z); err != nil {
		return Result{}, err
	}
	var out Result
	err := c.call(ctx, http.MethodPost, "/v1/zone/import", zoneQuery(z.Origin, "replace", strconv.FormatBool(replace)), &buf, &out)
	return out, err
}

// ImportMany imports zones through the server in batched transactions;
// progress is not reported over the API (it is called once, at the end).
func (c *Client) ImportMany(ctx context.Context, zs []*zone.Zone, replace bool, progress func(int)) ([]ImportOutcome, error) {
	in := make([]zoneText, len(zs))
	for i, z := range zs {
		var buf bytes.Buffer
		if err := zonestore.Export(&buf, z); err != nil {
			return nil, err
		}
		in[i] = zoneText{Zone: z.Origin, Text: buf.String()}
	}
	var out []ImportOutcome
	err := c.call(ctx, http.MethodPost, "/v1/zones/import", url.Values{"replace": {strconv.FormatBool(replace)}}, in, &out)
	if err == nil && progress != nil {
		progress(len(zs))
	}
	return out, err
}

// Delete removes a zone.
func (c *Client) Delete(ctx context.Context, origin string) error {
	return c.call(ctx, http.MethodDelete, "/v1/zone", zoneQuery(origin), nil, nil)
}

// Records returns the zone's records, only those at name when it is not
// empty and of type rrtype when it is not 0.
func (c *Client) Records(ctx context.Context, origin, name string, rrtype uint16) ([]dns.RR, error) {
	q := zoneQuery(origin, "name", name)
	if rrtype != 0 {
		q.Set("type", dns.Type(rrtype).String())
	}
	var texts []string
	if err := c.call(ctx, http.MethodGet, "/v1/records", q, nil, &texts); err != nil {
		return nil, err
	}
	out := make([]dns.RR, 0, len(texts))
	for _, s := range texts {
		rr, err := parseRR(s)
		if err != nil {
			return nil, fmt.Errorf("%s: answer: %w", c.where, err)
		}
		out = append(out, rr)
	}
	return out, nil
}

// Edit applies e to the zone as one change.
func (c *Client) Edit(ctx context.Context, origin string, e Edit) (Result, error) {
	var out Result
	err := c.call(ctx, http.MethodPost, "/v1/records", zoneQuery(origin), e, &out)
	return out, err
}

// Begin opens a transaction on the zone for the caller.
func (c *Client) Begin(ctx context.Context, origin string) (zonestore.TxnInfo, error) {
	var out zonestore.TxnInfo
	err := c.call(ctx, http.MethodPost, "/v1/txn/begin", zoneQuery(origin), nil, &out)
	return out, err
}

// Diff shows what committing the caller's transaction would change.
func (c *Client) Diff(ctx context.Context, origin string) (TxnDiff, error) {
	var out TxnDiff
	err := c.call(ctx, http.MethodGet, "/v1/txn/diff", zoneQuery(origin), nil, &out)
	return out, err
}

// Commit applies the caller's transaction.
func (c *Client) Commit(ctx context.Context, origin string) (Result, error) {
	var out Result
	err := c.call(ctx, http.MethodPost, "/v1/txn/commit", zoneQuery(origin), nil, &out)
	return out, err
}

// Abort drops the zone's transaction: the caller's, or with force anyone's.
func (c *Client) Abort(ctx context.Context, origin string, force bool) (zonestore.TxnInfo, error) {
	var out zonestore.TxnInfo
	q := zoneQuery(origin)
	if force {
		q.Set("force", "true")
	}
	err := c.call(ctx, http.MethodPost, "/v1/txn/abort", q, nil, &out)
	return out, err
}

// History returns the zone's last limit journal entries, oldest first.
func (c *Client) History(ctx context.Context, origin string, limit int) ([]zonestore.Entry, error) {
	var out []zonestore.Entry
	err := c.call(ctx, http.MethodGet, "/v1/zone/history", zoneQuery(origin, "limit", strconv.Itoa(limit)), nil, &out)
	return out, err
}

// DNSSEC reports the zone's signing state.
func (c *Client) DNSSEC(ctx context.Context, origin string) (zonestore.DNSSECStatus, error) {
	var out zonestore.DNSSECStatus
	err := c.call(ctx, http.MethodGet, "/v1/dnssec/status", zoneQuery(origin), nil, &out)
	return out, err
}

// DS returns the DS records the parent should hold.
func (c *Client) DS(ctx context.Context, origin string, digest uint8) ([]*dns.DS, error) {
	var texts []string
	if err := c.call(ctx, http.MethodGet, "/v1/dnssec/ds", zoneQuery(origin, "digest", strconv.Itoa(int(digest))), nil, &texts); err != nil {
		return nil, err
	}
	out := make([]*dns.DS, 0, len(texts))
	for _, s := range texts {
		rr, err := parseRR(s)
		if err != nil {
			return nil, fmt.Errorf("%s: answer: %w", c.where, err)
		}
		ds, ok := rr.(*dns.DS)
		if !ok {
			return nil, fmt.Errorf("%s: answer: %q is not a DS record", c.where, s)
		}
		out = append(out, ds)
	}
	return out, nil
}

// EnableDNSSEC signs the zone under p, or changes a signed zone's policy.
func (c *Client) EnableDNSSEC(ctx context.Context, origin string, p dnssec.Policy) (Result, error) {
	var out Result
	err := c.call(ctx, http.MethodPost, "/v1/dnssec/enable", zoneQuery(origin), p, &out)
	return out, err
}

// DisableDNSSEC turns the zone's signing off, or with force removes its
// signatures at once.
func (c *Client) DisableDNSSEC(ctx context.Context, origin string, force bool) (string, Result, error) {
	var out rolloverJSON
	err := c.call(ctx, http.MethodPost, "/v1/dnssec/disable", zoneQuery(origin, "force", strconv.FormatBool(force)), nil, &out)
	return out.Message, out.Result, err
}

// GenerateKeys makes the keys of a zone not signed yet.
func (c *Client) GenerateKeys(ctx context.Context, origin string, p dnssec.Policy) ([]NewKey, error) {
	var out []NewKey
	err := c.call(ctx, http.MethodPost, "/v1/keys/generate", zoneQuery(origin), p, &out)
	return out, err
}

// Rollover starts a key rollover or takes its next step.
func (c *Client) Rollover(ctx context.Context, origin string, role dnssec.Role, next, force bool) (string, Result, error) {
	var out rolloverJSON
	err := c.call(ctx, http.MethodPost, "/v1/keys/rollover",
		zoneQuery(origin, "role", string(role), "continue", strconv.FormatBool(next), "force", strconv.FormatBool(force)), nil, &out)
	return out.Message, out.Result, err
}

// Reload asks the server to re-read its configuration and zones, and
// returns what it says changed.
func (c *Client) Reload(ctx context.Context) (string, error) {
	var out struct {
		Message string `json:"message"`
	}
	err := c.call(ctx, http.MethodPost, "/v1/reload", nil, nil, &out)
	return out.Message, err
}
