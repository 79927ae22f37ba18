package cli

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/zonestore"
)

// liveServer is an in-process stand-in for a running server: it holds the
// database of a data directory and serves the control API on its socket.
type liveServer struct {
	st       *zonestore.Store
	requests atomic.Int64
	stop     func()
}

// serveDataDir opens dir's database, as a server does, and serves node
// (with the store filled in) on dir's control socket until the test ends
// or stop is called.
func serveDataDir(t *testing.T, dir string, node control.Node) *liveServer {
	t.Helper()
	st, err := zonestore.Open(filepath.Join(dir, "sovdns.db"), zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	node.Store = st
	s := &liveServer{st: st}
	h := control.Handler(node)
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h.ServeHTTP(w, r)
	})
	sock := filepath.Join(dir, control.SocketName)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- control.Serve(ctx, sock, counted, slog.New(slog.DiscardHandler)) }()
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("control.Serve: %v", err)
		}
		st.Close()
	}
	t.Cleanup(s.stop)
	for i := 0; !control.Answers(sock); i++ {
		if i > 200 {
			t.Fatal("the control socket does not answer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s
}

// copyDB copies the zone database of one data directory into a new one.
func copyDB(t *testing.T, from string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(from, "sovdns.db"))
	if err != nil {
		t.Fatal(err)
	}
	to := t.TempDir()
	if err := os.WriteFile(filepath.Join(to, "sovdns.db"), b, 0o640); err != nil {
		t.Fatal(err)
	}
	return to
}

// What differs between two runs of the same command on copies of one
// database: times, and the keys and signatures a command makes afresh.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`), "TIME"},
	{regexp.MustCompile(`"seconds_left": \d+`), `"seconds_left": N`},
	{regexp.MustCompile(`\(\d+d( \d+h)? left\)|\(\d+h left\)`), "(LEFT)"},
	{regexp.MustCompile(`\b(8|13|15)-\d{1,5}\b`), "KEYID"},
	{regexp.MustCompile(`"tag": \d+`), `"tag": N`},
	{regexp.MustCompile(`[A-Za-z0-9+/]{40,}={0,2}`), "BASE64"},
	{regexp.MustCompile(`\b\d{14} \d{14} \d+\b`), "VALIDITY TAG"},
	{regexp.MustCompile(`(DS\s+)\d+ (\d+ \d+) [0-9A-F]{64}`), "${1}TAG $2 DIGEST"},
	{regexp.MustCompile(`KEYID(\s+)\d+\b`), "KEYID${1}TAG"},
	{regexp.MustCompile(`[ \t]+`), " "}, // tabwriter pads to the widest key ID
}

// normalize replaces what is volatile in s, then sorts its lines: keys
// made in the same instant are listed in the order of their random tags.
func normalize(s string) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	lines := strings.Split(s, "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// baseDataDir makes a data directory holding an unsigned zone
// (example.org.), a signed one (signed.example.) and a secondary copy
// (copy.example.), each edited once with the CLI.
func baseDataDir(t *testing.T) (dir, files string) {
	t.Helper()
	dir, files = t.TempDir(), t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mustRun(t, dir, "zone", "import", write("example.org.zone", exampleZone))
	mustRun(t, dir, "record", "add", "example.org", "extra 600 TXT \"one\"")
	mustRun(t, dir, "zone", "import", write("signed.zone", strings.ReplaceAll(exampleZone, "example.org.", "signed.example.")))
	mustRun(t, dir, "dnssec", "enable", "signed.example")
	write("example.net.zone", strings.ReplaceAll(exampleZone, "example.org.", "example.net."))
	write("replace.zone", strings.Replace(exampleZone, "192.0.2.80", "192.0.2.180", 1))
	write("copy.zone", strings.ReplaceAll(exampleZone, "example.org.", "copy.example."))
	write("bad.zone", "$ORIGIN bad.example.\n$TTL 60\n@ SOA ns1 hostmaster 1 2 3 4 5\n@ NS ns1\nwww A 192.0.2.1\nwww CNAME ns1\n")
	// many/: zones for an import of many, one named by its file alone, one
	// broken, one that exists already (refused without --replace).
	if err := os.Mkdir(filepath.Join(files, "many"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("many/a.example.zone", strings.ReplaceAll(exampleZone, "example.org.", "a.example."))
	write("many/b.example.zone", strings.ReplaceAll(strings.ReplaceAll(exampleZone, "$ORIGIN example.org.\n", ""), "example.org.", "b.example."))
	write("many/broken.zone", "$ORIGIN broken.example.\n$TTL 60\n@ SOA ns1 hostmaster 1 2 3 4 5\n@ NS ns1\nwww A 192.0.2.1\nwww CNAME ns1\n")
	write("many/example.org.zone", strings.Replace(exampleZone, "192.0.2.80", "192.0.2.181", 1))
	write("many/.hidden", "not a zone")
	st, err := zonestore.Open(filepath.Join(dir, "sovdns.db"), zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := zonestore.Parse(strings.NewReader(strings.ReplaceAll(exampleZone, "example.org.", "copy.example.")), "", "copy", nil)
	if err != nil {
		t.Fatal(err)
	}
	z, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutTransfer(z, "192.0.2.53"); err != nil {
		t.Fatal(err)
	}
	return dir, files
}

// TestOfflineAndOnlineAgree runs each command twice, on two copies of one
// database: once with the database to itself (offline), once with a
// server holding it (through the control socket). Output and exit code
// must be the same, times and fresh keys aside.
func TestOfflineAndOnlineAgree(t *testing.T) {
	clearEnv(t)
	base, files := baseDataDir(t)
	file := func(name string) string { return filepath.Join(files, name) }
	tests := []struct {
		name  string
		steps [][]string // each run and compared in turn; {out} is a file in a scratch directory
		code  int        // of the last step
		// local: the command is refused before it needs the database.
		local bool
	}{
		{name: "zone list", steps: [][]string{{"zone", "list"}, {"zone", "list", "--json"}}},
		{name: "zone show", steps: [][]string{{"zone", "show", "example.org"}, {"zone", "show", "signed.example.", "--json"}}},
		{name: "zone show of no zone", steps: [][]string{{"zone", "show", "nothing.example"}}, code: 1},
		{name: "zone export", steps: [][]string{{"zone", "export", "signed.example"}, {"zone", "export", "example.org", "-o", "{out}"}}},
		{name: "zone export of no zone", steps: [][]string{{"zone", "export", "nothing.example", "-o", "{out}"}}, code: 1},
		{name: "zone create", steps: [][]string{{"zone", "create", "new.example", "--ns", "ns1.new.example", "--json"}, {"zone", "show", "new.example"}}},
		{name: "zone create of an existing zone", steps: [][]string{{"zone", "create", "example.org", "--ns", "ns1.example.org"}}, code: 1},
		{name: "zone import", steps: [][]string{{"zone", "import", file("example.net.zone")}, {"record", "list", "example.net"}}},
		{name: "zone import --replace", steps: [][]string{{"zone", "import", "--replace", file("replace.zone"), "--json"}, {"zone", "history", "example.org", "--limit", "1"}}},
		{name: "zone import of many", steps: [][]string{{"zone", "import", file("many")}, {"zone", "list"}, {"record", "list", "b.example", "--name", "www"}}},
		{name: "zone import of many with --replace", steps: [][]string{{"zone", "import", "--replace", file("many"), file("example.net.zone"), "--json"}}, code: 1},
		{name: "zone import of many with --origin", steps: [][]string{{"zone", "import", "--origin", "x.example", file("many")}}, code: 2, local: true},
		{name: "zone import of an existing zone", steps: [][]string{{"zone", "import", file("replace.zone")}}, code: 1},
		{name: "zone import of a bad file", steps: [][]string{{"zone", "import", file("bad.zone")}}, code: 2, local: true},
		{name: "zone import onto a secondary", steps: [][]string{{"zone", "import", "--replace", file("copy.zone")}}, code: 1},
		{name: "zone delete", steps: [][]string{{"zone", "delete", "example.org", "--yes", "--json"}, {"zone", "list"}}},
		{name: "zone delete of no zone", steps: [][]string{{"zone", "delete", "nothing.example", "--yes"}}, code: 1},
		{name: "zone history", steps: [][]string{{"zone", "history", "example.org"}, {"zone", "history", "signed.example", "--json"}, {"zone", "history", "copy.example"}}},
		{name: "zone history of no zone", steps: [][]string{{"zone", "history", "nothing.example"}}, code: 1},
		{name: "record add", steps: [][]string{{"record", "add", "example.org", "www A 192.0.2.81", "new 300 AAAA 2001:db8::1", "--json"}, {"record", "list", "example.org", "--name", "www"},
			{"record", "add", "example.org", "extra TXT \"two\""}, {"record", "list", "example.org", "--name", "extra"}}},
		{name: "record add of what is there", steps: [][]string{{"record", "add", "example.org", "www A 192.0.2.80"}}},
		{name: "record add of a CNAME beside data", steps: [][]string{{"record", "add", "example.org", "www CNAME mail"}}, code: 2},
		{name: "record add out of zone", steps: [][]string{{"record", "add", "example.org", "www.example.com. A 192.0.2.1"}}, code: 2},
		{name: "record add of bad syntax", steps: [][]string{{"record", "add", "example.org", "www A 192.0.2.300"}}, code: 2, local: true},
		{name: "record add to no zone", steps: [][]string{{"record", "add", "nothing.example", "www A 192.0.2.1"}}, code: 1},
		{name: "record add to a secondary", steps: [][]string{{"record", "add", "copy.example", "new A 192.0.2.1"}}, code: 1},
		{name: "record add to a signed zone", steps: [][]string{{"record", "add", "signed.example", "new A 192.0.2.1"}, {"record", "list", "signed.example", "--name", "new", "--type", "A"}}},
		{name: "record add of signer data", steps: [][]string{{"record", "add", "signed.example", "new NSEC www.signed.example. A"}}, code: 1},
		{name: "record delete", steps: [][]string{{"record", "delete", "example.org", "www", "A", "192.0.2.80"}, {"record", "delete", "example.org", "mail", "--json"}, {"zone", "history", "example.org", "--limit", "2"}}},
		{name: "record delete of no record", steps: [][]string{{"record", "delete", "example.org", "www", "A", "192.0.2.99"}}, code: 1},
		{name: "record delete of the SOA", steps: [][]string{{"record", "delete", "example.org", "@", "SOA"}}, code: 1},
		{name: "transaction", steps: [][]string{{"zone", "begin", "example.org"}, {"record", "add", "example.org", "www A 192.0.2.81", "--json"},
			{"record", "delete", "example.org", "mail"}, {"record", "add", "example.org", "www CNAME mail"}, {"zone", "diff", "example.org"},
			{"record", "list", "example.org", "--name", "www"}, {"zone", "show", "example.org", "--json"}, {"zone", "commit", "example.org"},
			{"zone", "history", "example.org", "--limit", "1"}, {"record", "list", "example.org", "--name", "www"}}},
		{name: "transaction on a signed zone", steps: [][]string{{"zone", "begin", "signed.example"}, {"record", "add", "signed.example", "new A 192.0.2.1"},
			{"record", "add", "signed.example", "new2 TXT \"x\""}, {"zone", "diff", "signed.example", "--json"}, {"zone", "commit", "signed.example", "--json"},
			{"record", "list", "signed.example", "--name", "new", "--type", "A"}}},
		{name: "transaction aborted", steps: [][]string{{"zone", "begin", "example.org", "--json"}, {"record", "add", "example.org", "www A 192.0.2.81"},
			{"zone", "begin", "example.org"}, {"zone", "abort", "example.org"}, {"record", "list", "example.org", "--name", "www"}}},
		{name: "zone commit with no transaction", steps: [][]string{{"zone", "commit", "example.org"}}, code: 1},
		{name: "record list", steps: [][]string{{"record", "list", "example.org"}, {"record", "list", "example.org", "--type", "ns", "--json"}, {"record", "list", "signed.example", "--name", "@"}}},
		{name: "dnssec enable", steps: [][]string{{"dnssec", "enable", "example.org", "--nsec3", "--split-keys"}, {"dnssec", "status", "example.org"}, {"key", "list", "example.org"}}},
		{name: "dnssec enable changes a policy", steps: [][]string{{"dnssec", "enable", "signed.example", "--nsec3", "--json"}, {"dnssec", "status", "signed.example", "--json"}}},
		{name: "dnssec enable with a bad algorithm", steps: [][]string{{"dnssec", "enable", "example.org", "--algorithm", "5"}}, code: 2},
		{name: "dnssec enable against the expiry guard", steps: [][]string{{"dnssec", "enable", "example.org", "--refresh", "7d", "--validity", "10d"}}, code: 2},
		{name: "dnssec enable of no zone", steps: [][]string{{"dnssec", "enable", "nothing.example"}}, code: 1},
		{name: "dnssec status and ds", steps: [][]string{{"dnssec", "status", "signed.example"}, {"dnssec", "status", "example.org"}, {"dnssec", "ds", "signed.example", "--digest", "4"}}},
		{name: "dnssec ds of an unsigned zone", steps: [][]string{{"dnssec", "ds", "example.org"}}, code: 1},
		{name: "dnssec disable", steps: [][]string{{"dnssec", "disable", "signed.example"}, {"dnssec", "status", "signed.example"}}},
		{name: "dnssec disable of an unsigned zone", steps: [][]string{{"dnssec", "disable", "example.org"}}, code: 1},
		{name: "key list", steps: [][]string{{"key", "list", "signed.example"}, {"key", "list", "signed.example", "--json"}}},
		{name: "key generate", steps: [][]string{{"key", "generate", "example.org", "--split-keys"}, {"key", "list", "example.org"}}},
		{name: "key generate with keys", steps: [][]string{{"key", "generate", "signed.example"}}, code: 1},
		{name: "key rollover", steps: [][]string{{"key", "rollover", "signed.example", "ksk"}, {"dnssec", "status", "signed.example"}, {"key", "rollover", "signed.example", "ksk", "--continue", "--force"}}},
		{name: "key rollover --continue of a ZSK", steps: [][]string{{"key", "rollover", "signed.example", "zsk", "--continue"}}, code: 1},
		{name: "key rollover of an unsigned zone", steps: [][]string{{"key", "rollover", "example.org", "zsk"}}, code: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offline, online := copyDB(t, base), copyDB(t, base)
			srv := serveDataDir(t, online, control.Node{})
			scratch := [2]string{t.TempDir(), t.TempDir()}
			for i, step := range tt.steps {
				var res [2]result
				for j, dir := range []string{offline, online} {
					args := make([]string, len(step))
					for k, a := range step {
						args[k] = strings.ReplaceAll(a, "{out}", filepath.Join(scratch[j], "out.zone"))
					}
					res[j] = run(t, dir, args...)
				}
				off, on := res[0], res[1]
				if off.code != on.code || normalize(off.stdout) != normalize(on.stdout) || normalize(off.stderr) != normalize(on.stderr) {
					t.Errorf("sovdns %s:\noffline: exit %d\n%s%s\nonline: exit %d\n%s%s", strings.Join(step, " "),
						off.code, off.stdout, off.stderr, on.code, on.stdout, on.stderr)
				}
				if i == len(tt.steps)-1 && off.code != tt.code {
					t.Errorf("sovdns %s: exit %d, want %d\n%s", strings.Join(step, " "), off.code, tt.code, off.stderr)
				}
			}
			a, aerr := os.ReadFile(filepath.Join(scratch[0], "out.zone"))
			b, berr := os.ReadFile(filepath.Join(scratch[1], "out.zone"))
			if string(a) != string(b) || errors.Is(aerr, os.ErrNotExist) != errors.Is(berr, os.ErrNotExist) {
				t.Errorf("the files written differ:\noffline (%v):\n%s\nonline (%v):\n%s", aerr, a, berr, b)
			}
			if !tt.local && srv.requests.Load() == 0 {
				t.Error("the online runs did not reach the server")
			}
		})
	}
}

// TestOnlineAuthor: changes through a server are journaled under the user
// running the CLI, as offline ones are.
func TestOnlineAuthor(t *testing.T) {
	clearEnv(t)
	base, _ := baseDataDir(t)
	serveDataDir(t, base, control.Node{})
	mustRun(t, base, "record", "add", "example.org", "who TXT \"me\"")
	h := decodeJSON[[]struct {
		Author string   `json:"author"`
		Op     string   `json:"op"`
		Added  []string `json:"added"`
	}](t, mustRun(t, base, "zone", "history", "example.org", "--json"))
	me := control.UnixAuthor(os.Getuid())
	if len(h) != 3 || h[2].Author != me || h[2].Op != "edit" || len(h[2].Added) != 1 || !strings.Contains(h[2].Added[0], `"me"`) {
		t.Errorf("history: %+v; want the last edit by %s", h, me)
	}
	for _, e := range h {
		if e.Author != me {
			t.Errorf("entry by %q; want %q (offline edits too)", e.Author, me)
		}
	}
	text := mustRun(t, base, "zone", "history", "example.org", "--limit", "1").stdout
	if !regexp.MustCompile(`(?m)^#3 \S+ ` + regexp.QuoteMeta(me) + ` edit serial 2024010102 -> 2024010103\n\+ who\.example\.org\.\s+3600\s+IN\s+TXT\s+"me"\n$`).MatchString(text) {
		t.Errorf("zone history --limit 1 printed:\n%s", text)
	}
	first := mustRun(t, base, "zone", "history", "example.org", "--limit", "3").stdout
	if !strings.Contains(first, "import serial 0 -> 2024010101\n  13 record(s) removed") && !strings.Contains(first, "create serial 0 -> 2024010101\n  0 record(s) removed, 13 added (summary") {
		t.Errorf("the creation is not shown as a summary:\n%s", first)
	}
}

// TestReloadCommand: reload needs a running server and prints what it
// says.
func TestReloadCommand(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	expectFail(t, dir, 1, "no running sovdns server", "reload")
	srv := serveDataDir(t, dir, control.Node{Reload: func() (string, error) { return "reloaded: 0 zones changed", nil }})
	if r := mustRun(t, dir, "reload"); r.stdout != "reloaded: 0 zones changed\n" {
		t.Errorf("reload printed %q", r.stdout)
	}
	srv.stop()
	serveDataDir(t, dir, control.Node{})
	expectFail(t, dir, 1, "not available on this server", "reload")
}

// TestHeldWithoutSocket: a database held by a server whose control socket
// does not answer is reported as such, within a few seconds.
func TestHeldWithoutSocket(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	mustRun(t, dir, "zone", "create", "example.com", "--ns", "ns.example.net")
	st, err := zonestore.Open(filepath.Join(dir, "sovdns.db"), zonestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A socket file left behind by a server that is gone.
	if err := os.WriteFile(filepath.Join(dir, control.SocketName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	expectFail(t, dir, 1, "held by a running sovdns server, but nothing answers on its control socket", "record", "add", "example.com", "www A 192.0.2.1")
	if d := time.Since(start); d > socketWait+3*time.Second {
		t.Errorf("took %v to fail", d)
	}
}
