package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// currentAuthor is how the journal names the user running the tests.
func currentAuthor(t *testing.T) string {
	t.Helper()
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "unix:" + u.Username
	}
	return fmt.Sprintf("unix:uid=%d", os.Getuid())
}

// waitAnswer queries qname/qtype over UDP until the answer's records
// (sorted presentation form) are want, for at most two seconds: a
// committed change is served at once, the bound only keeps a failure from
// hanging. It returns the last response.
func waitAnswer(t *testing.T, addr, qname string, qtype uint16, rcode int, want ...string) *dns.Msg {
	t.Helper()
	var wantRRs []dns.RR
	for _, w := range want {
		rr, err := dns.NewRR(w)
		if err != nil {
			t.Fatalf("bad expected record %q: %v", w, err)
		}
		wantRRs = append(wantRRs, rr)
	}
	w := strings.Join(rrStrings(wantRRs), "\n")
	var r *dns.Msg
	for i := range 40 {
		r = exchange(t, "udp", addr, newQuery(qname, qtype))
		if r.Rcode == rcode && strings.Join(rrStrings(r.Answer), "\n") == w {
			if i > 0 {
				t.Logf("%s %s: the change was served after %d tries", qname, dns.TypeToString[qtype], i+1)
			}
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("%s %s: rcode %s, answer\n%s\nwant rcode %s, answer\n%s", qname, dns.TypeToString[qtype],
		dns.RcodeToString[r.Rcode], strings.Join(rrStrings(r.Answer), "\n"), dns.RcodeToString[rcode], w)
	return r
}

func soaSerial(t *testing.T, addr, zone string) uint32 {
	t.Helper()
	r := exchange(t, "udp", addr, newQuery(zone, dns.TypeSOA))
	if len(r.Answer) != 1 {
		t.Fatalf("%s SOA: %v", zone, r)
	}
	return r.Answer[0].(*dns.SOA).Serial
}

// TestLiveEdit edits a served zone with the CLI while the server runs:
// each change goes through the control socket, is answered at once, and
// is journaled under the editor's name.
func TestLiveEdit(t *testing.T) {
	t.Parallel()
	const secret = "live-edit-token-0123456789"
	control := newAddr(t)
	s := zoneServer(t, fmt.Sprintf("control:\n  listen: %s\n  tokens:\n    - name: ci\n      secret: %s\n", control, secret))
	dd := []string{"--data-dir", s.dataDir}
	cli := func(args ...string) cliResult { t.Helper(); return mustCLI(t, nil, append(args, dd...)...) }
	serial := soaSerial(t, s.dns, "example.com.")

	// Add.
	r := cli("record", "add", "example.com", "live 300 A 192.0.2.123", "--json")
	var rep struct {
		Serial    uint32 `json:"serial"`
		OldSerial uint32 `json:"old_serial"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.OldSerial != serial || rep.Serial != serial+1 {
		t.Errorf("record add reported %s (%v); want serial %d -> %d", r.stdout, err, serial, serial+1)
	}
	waitAnswer(t, s.dns, "live.example.com.", dns.TypeA, dns.RcodeSuccess, "live.example.com. 300 IN A 192.0.2.123")
	if got := soaSerial(t, s.dns, "example.com."); got != serial+1 {
		t.Errorf("served serial %d after the add; want %d", got, serial+1)
	}

	// Change: a new address with a new TTL, then the old address goes.
	cli("record", "add", "example.com", "live 600 A 192.0.2.124")
	waitAnswer(t, s.dns, "live.example.com.", dns.TypeA, dns.RcodeSuccess,
		"live.example.com. 600 IN A 192.0.2.123", "live.example.com. 600 IN A 192.0.2.124")
	cli("record", "delete", "example.com", "live", "A", "192.0.2.123")
	waitAnswer(t, s.dns, "live.example.com.", dns.TypeA, dns.RcodeSuccess, "live.example.com. 600 IN A 192.0.2.124")
	// A record without a TTL joins its RRset with the RRset's TTL.
	cli("record", "add", "example.com", "www A 192.0.2.11")
	waitAnswer(t, s.dns, "www.example.com.", dns.TypeA, dns.RcodeSuccess,
		"www.example.com. 3600 IN A 192.0.2.10", "www.example.com. 3600 IN A 192.0.2.11")

	// Delete.
	cli("record", "delete", "example.com", "live")
	waitAnswer(t, s.dns, "live.example.com.", dns.TypeA, dns.RcodeNameError)
	if got := soaSerial(t, s.dns, "example.com."); got != serial+5 {
		t.Errorf("served serial %d after five edits; want %d", got, serial+5)
	}

	// Refusals come back as offline: bad input is exit 2, a missing
	// record exit 1, and nothing changes.
	if r := runCLI(t, nil, append([]string{"record", "add", "example.com", "www CNAME mail"}, dd...)...); r.code != 2 || !strings.Contains(r.stderr, "CNAME cannot coexist") {
		t.Errorf("a CNAME beside data: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, nil, append([]string{"record", "delete", "example.com", "live", "A", "192.0.2.124"}, dd...)...); r.code != 1 || !strings.Contains(r.stderr, "record not found") {
		t.Errorf("deleting a deleted record: exit %d, stderr %q", r.code, r.stderr)
	}
	if got := soaSerial(t, s.dns, "example.com."); got != serial+5 {
		t.Errorf("served serial %d after refused edits; want %d", got, serial+5)
	}

	// The history names the editor and the records of each change.
	me := currentAuthor(t)
	h := cli("zone", "history", "example.com", "--limit", "5").stdout
	blocks := strings.Split(strings.TrimSpace(h), "\n\n")
	if len(blocks) != 5 {
		t.Fatalf("zone history --limit 5 printed %d blocks:\n%s", len(blocks), h)
	}
	want := []struct{ head, body string }{
		{fmt.Sprintf(`%s edit serial %d -> %d`, regexp.QuoteMeta(me), serial, serial+1), `^\+ live\.example\.com\.\s+300\s+IN\s+A\s+192\.0\.2\.123$`},
		{fmt.Sprintf(`%s edit serial %d -> %d`, regexp.QuoteMeta(me), serial+1, serial+2), `^- live\.example\.com\.\s+300\s+IN\s+A\s+192\.0\.2\.123\n\+ live\.example\.com\.\s+600\s+IN\s+A\s+192\.0\.2\.123\n\+ live\.example\.com\.\s+600\s+IN\s+A\s+192\.0\.2\.124$`},
		{fmt.Sprintf(`%s edit serial %d -> %d`, regexp.QuoteMeta(me), serial+2, serial+3), `^- live\.example\.com\.\s+600\s+IN\s+A\s+192\.0\.2\.123$`},
		{fmt.Sprintf(`%s edit serial %d -> %d`, regexp.QuoteMeta(me), serial+3, serial+4), `^\+ www\.example\.com\.\s+3600\s+IN\s+A\s+192\.0\.2\.11$`},
		{fmt.Sprintf(`%s edit serial %d -> %d`, regexp.QuoteMeta(me), serial+4, serial+5), `^- live\.example\.com\.\s+600\s+IN\s+A\s+192\.0\.2\.124$`},
	}
	for i, b := range blocks {
		head, body, _ := strings.Cut(b, "\n")
		if !regexp.MustCompile(`^#\d+ \S+ `+want[i].head+`$`).MatchString(head) || !regexp.MustCompile(want[i].body).MatchString(body) {
			t.Errorf("history entry %d:\n%s\nwant a head matching %q and records matching %q", i+1, b, want[i].head, want[i].body)
		}
	}

	// The rest of the editor's commands reach the server too.
	if out := cli("zone", "list").stdout; !strings.Contains(out, "example.com.") {
		t.Errorf("zone list:\n%s", out)
	}
	if out := cli("zone", "export", "example.com").stdout; !strings.Contains(out, "192.0.2.11") || strings.Contains(out, "live.example.com.") {
		t.Errorf("zone export does not hold the edits:\n%s", out)
	}
	cli("zone", "create", "example.net", "--ns", "ns1.example.com")
	waitAnswer(t, s.dns, "example.net.", dns.TypeNS, dns.RcodeSuccess, "example.net. 3600 IN NS ns1.example.com.")
	cli("dnssec", "enable", "example.net")
	if r := exchange(t, "udp", s.dns, doQuery("example.net.", dns.TypeNS)); len(r.Answer) != 2 || r.Answer[1].Header().Rrtype != dns.TypeRRSIG {
		t.Errorf("example.net NS with DO after dnssec enable: %v", r.Answer)
	}
	if out := cli("dnssec", "ds", "example.net").stdout; !strings.Contains(out, "IN\tDS\t") {
		t.Errorf("dnssec ds:\n%s", out)
	}
	cli("zone", "delete", "example.net", "--yes")
	waitAnswer(t, s.dns, "example.net.", dns.TypeNS, dns.RcodeRefused)

	// reload reaches the server and prints its answer.
	if out := cli("reload").stdout; strings.TrimSpace(out) == "" {
		t.Error("reload printed nothing")
	}

	// The control API on loopback TCP takes a bearer token, whose name is
	// the author.
	base := "http://" + control
	body := `{"add":[{"rr":"api.example.com. 60 IN A 192.0.2.77"}],"delete":[]}`
	if code, _ := controlPOST(t, base+"/v1/records?zone=example.com", "", body); code != http.StatusUnauthorized {
		t.Errorf("without a token: HTTP %d; want 401", code)
	}
	if code, _ := controlPOST(t, base+"/v1/records?zone=example.com", "not-the-token-0123456789", body); code != http.StatusUnauthorized {
		t.Errorf("with a wrong token: HTTP %d; want 401", code)
	}
	if code, out := controlPOST(t, base+"/v1/records?zone=example.com", secret, body); code != http.StatusOK {
		t.Errorf("with the token: HTTP %d\n%s", code, out)
	}
	waitAnswer(t, s.dns, "api.example.com.", dns.TypeA, dns.RcodeSuccess, "api.example.com. 60 IN A 192.0.2.77")
	if h := cli("zone", "history", "example.com", "--limit", "1").stdout; !regexp.MustCompile(`(?m)^#\d+ \S+ token:ci edit `).MatchString(h) {
		t.Errorf("the change with the token is not journaled as token:ci:\n%s", h)
	}
}

// controlPOST posts a JSON body to the control API on TCP, with a bearer
// token unless it is empty, and returns the status and body.
func controlPOST(t *testing.T, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: cliTimeout}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}
