package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/configs"
)

// result is what one run of the command line produced.
type result struct {
	code           int
	stdout, stderr string
}

// run executes the sovdns command line in-process with the data directory
// dir (unless dir is empty) and returns its outcome.
func run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	if dir != "" {
		args = append(args, "--data-dir", dir)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := Run(ctx, args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustRun is run that fails the test unless the exit code is 0.
func mustRun(t *testing.T, dir string, args ...string) result {
	t.Helper()
	r := run(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("sovdns %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// expectFail runs args and checks the exit code and that stderr names want.
func expectFail(t *testing.T, dir string, code int, want string, args ...string) {
	t.Helper()
	r := run(t, dir, args...)
	if r.code != code {
		t.Errorf("sovdns %s: exit %d, want %d\nstderr: %s", strings.Join(args, " "), r.code, code, r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("sovdns %s: stderr %q does not contain %q", strings.Join(args, " "), r.stderr, want)
	}
}

// clearEnv hides SOVDNS_* variables (including SOVDNS_CONFIG, which sets
// the --config default) from the commands.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SOVDNS_") {
			t.Setenv(k, "")
		}
	}
}

func decodeJSON[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("output is not the expected JSON: %v\n%s", err, r.stdout)
	}
	return v
}

type jsonRecord struct {
	Name  string `json:"name"`
	TTL   uint32 `json:"ttl"`
	Class string `json:"class"`
	Type  string `json:"type"`
	Data  string `json:"data"`
}

type jsonReport struct {
	Zone         string `json:"zone"`
	Serial       uint32 `json:"serial"`
	OldSerial    uint32 `json:"old_serial"`
	SerialBumped bool   `json:"serial_bumped"`
	Records      int    `json:"records"`
	Created      bool   `json:"created"`
}

type jsonZoneInfo struct {
	Zone        string    `json:"zone"`
	Serial      uint32    `json:"serial"`
	Records     int       `json:"records"`
	Names       int       `json:"names"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	SOA         string    `json:"soa"`
	Nameservers []string  `json:"nameservers"`
}

func TestVersion(t *testing.T) {
	clearEnv(t)
	r := mustRun(t, "", "version")
	if !strings.HasPrefix(r.stdout, "sovdns "+configs.Version) || strings.Contains(r.stdout, "devel") {
		t.Errorf("version printed %q; want \"sovdns %s...\"", r.stdout, configs.Version)
	}
	expectFail(t, "", 2, "unknown command", "version", "extra")
}

func TestUsageErrors(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "unknown command", args: []string{"frobnicate"}, want: `unknown command "frobnicate"`},
		{name: "unknown flag", args: []string{"zone", "list", "--frobnicate"}, want: "unknown flag: --frobnicate"},
		{name: "missing argument", args: []string{"zone", "show"}, want: "accepts 1 arg(s), received 0"},
		{name: "too few records", args: []string{"record", "add", "example.com"}, want: "requires at least 2 arg(s)"},
		{name: "delete without --yes", args: []string{"zone", "delete", "example.com"}, want: "--yes"},
		{name: "create without --ns", args: []string{"zone", "create", "example.com"}, want: "--ns"},
		{name: "bad config", args: []string{"zone", "list", "--config", filepath.Join("..", "config", "testdata", "unknown_key.bad.yml")}, want: `colour: unknown key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectFail(t, dir, 2, tt.want, tt.args...)
		})
	}
	// None of these may have created a database.
	if _, err := os.Stat(filepath.Join(dir, "sovdns.db")); err == nil {
		t.Error("a refused command line created the zone database")
	}
}

func TestZoneCreateAndRecords(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()

	// Nothing to read yet: a store error.
	expectFail(t, dir, 1, "no zone database", "zone", "list")

	r := mustRun(t, dir, "zone", "create", "example.com", "--ns", "ns1.example.com", "--ns", "ns2.example.net", "--json")
	rep := decodeJSON[jsonReport](t, r)
	if rep.Zone != "example.com." || !rep.Created || rep.Serial != 1 || rep.Records != 3 {
		t.Errorf("zone create reported %+v; want example.com., created, serial 1, 3 records", rep)
	}
	expectFail(t, dir, 1, "already exists", "zone", "create", "example.com", "--ns", "ns1.example.com")

	r = mustRun(t, dir, "record", "add", "example.com", "ns1 A 192.0.2.1", "www 300 IN A 192.0.2.10", "--json")
	rep = decodeJSON[jsonReport](t, r)
	if rep.OldSerial != 1 || rep.Serial != 2 || !rep.SerialBumped || rep.Records != 5 || rep.Created {
		t.Errorf("record add reported %+v; want serial 1 -> 2, 5 records", rep)
	}
	// Without a TTL a record takes its RRset's.
	mustRun(t, dir, "record", "add", "example.com", "www A 192.0.2.11")
	// Adding what is there already changes nothing and is not an error.
	r = mustRun(t, dir, "record", "add", "example.com", "www A 192.0.2.11")
	if !strings.Contains(r.stderr, "nothing changed") {
		t.Errorf("re-adding a record: stderr %q; want a note that nothing changed", r.stderr)
	}

	list := decodeJSON[[]jsonRecord](t, mustRun(t, dir, "record", "list", "example.com", "--json"))
	want := []jsonRecord{
		{Name: "example.com.", TTL: 3600, Class: "IN", Type: "SOA", Data: "ns1.example.com. hostmaster.example.com. 3 7200 900 1209600 300"},
		{Name: "example.com.", TTL: 3600, Class: "IN", Type: "NS", Data: "ns1.example.com."},
		{Name: "example.com.", TTL: 3600, Class: "IN", Type: "NS", Data: "ns2.example.net."},
		{Name: "ns1.example.com.", TTL: 3600, Class: "IN", Type: "A", Data: "192.0.2.1"},
		{Name: "www.example.com.", TTL: 300, Class: "IN", Type: "A", Data: "192.0.2.10"},
		{Name: "www.example.com.", TTL: 300, Class: "IN", Type: "A", Data: "192.0.2.11"},
	}
	if !slices.Equal(list, want) {
		t.Errorf("record list:\n got %+v\nwant %+v", list, want)
	}

	filtered := decodeJSON[[]jsonRecord](t, mustRun(t, dir, "record", "list", "example.com", "--name", "www", "--type", "a", "--json"))
	if len(filtered) != 2 || filtered[0].Name != "www.example.com." || filtered[1].Name != "www.example.com." {
		t.Errorf("record list --name www --type a: %+v", filtered)
	}
	empty := mustRun(t, dir, "record", "list", "example.com", "--name", "nothing", "--json")
	if strings.TrimSpace(empty.stdout) != "[]" {
		t.Errorf("an empty JSON list printed %q; want []", empty.stdout)
	}
	text := mustRun(t, dir, "record", "list", "example.com", "--type", "NS")
	if !strings.Contains(text.stdout, "ns2.example.net.") || strings.Contains(text.stdout, "192.0.2.1") {
		t.Errorf("record list --type NS printed:\n%s", text.stdout)
	}

	// Deleting one record, then an RRset, then everything at a name.
	mustRun(t, dir, "record", "delete", "example.com", "www", "A", "192.0.2.11")
	mustRun(t, dir, "record", "delete", "example.com", "www A")
	r = mustRun(t, dir, "record", "delete", "example.com", "ns1", "--json")
	rep = decodeJSON[jsonReport](t, r)
	if rep.Records != 3 || rep.Serial != 6 {
		t.Errorf("after deleting everything but SOA and NS: %+v; want 3 records at serial 6", rep)
	}
	expectFail(t, dir, 1, "not found", "record", "delete", "example.com", "www", "A", "192.0.2.99")

	// Records the zone cannot hold are refused as invalid input (exit 2)
	// and change nothing.
	invalid := []struct {
		name, record, want string
	}{
		{name: "syntax", record: "www A not-an-address", want: "not-an-address"},
		{name: "out of zone", record: "www.example.org. A 192.0.2.1", want: "outside the zone"},
		{name: "CNAME beside data", record: "@ CNAME elsewhere.example.net.", want: "CNAME cannot coexist"},
		{name: "second SOA", record: "sub SOA ns1 hostmaster 1 2 3 4 5", want: "not at the zone apex"},
		{name: "unknown type", record: "www FROB 1", want: "FROB"},
		// Checked as an import checks a file, not left to fail at commit.
		{name: "bad hex", record: "www SSHFP 1 1 zz12", want: "record 1:1: syntax error: www.example.com. SSHFP: bad data"},
		{name: "escape over 255", record: `www TXT "\256"`, want: `record 1:1: syntax error: bad escape \256`},
		{name: "generic data of the wrong length", record: `www A \# 5 0102030405`, want: "does not match the A format"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			expectFail(t, dir, 2, tt.want, "record", "add", "example.com", tt.record)
		})
	}
	expectFail(t, dir, 2, "unknown record type", "record", "delete", "example.com", "www", "FROB")
	expectFail(t, dir, 2, "unknown record type", "record", "list", "example.com", "--type", "FROB")
	expectFail(t, dir, 1, "no such zone", "record", "add", "example.org", "www A 192.0.2.1")
	info := decodeJSON[jsonZoneInfo](t, mustRun(t, dir, "zone", "show", "example.com", "--json"))
	if info.Serial != 6 || info.Records != 3 {
		t.Errorf("refused changes were written: zone is at serial %d with %d records", info.Serial, info.Records)
	}
}

const exampleZone = `$ORIGIN example.org.
$TTL 3600
@       SOA  ns1 hostmaster 2024010101 7200 900 1209600 300
        NS   ns1
        NS   ns2.example.net.
        MX   10 mail
ns1     A    192.0.2.1
mail    A    192.0.2.25
www     A    192.0.2.80
        AAAA 2001:db8::80
alias   CNAME www
*.wild  TXT  "wildcard"
a.b.ent A    192.0.2.7
sub     NS   ns.sub
ns.sub  A    192.0.2.53
`

func TestZoneImportExportShowListDelete(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	files := t.TempDir()
	src := filepath.Join(files, "example.org.zone")
	if err := os.WriteFile(src, []byte(exampleZone), 0o600); err != nil {
		t.Fatal(err)
	}

	rep := decodeJSON[jsonReport](t, mustRun(t, dir, "zone", "import", src, "--json"))
	if rep.Zone != "example.org." || !rep.Created || rep.Serial != 2024010101 || rep.Records != 13 || rep.SerialBumped {
		t.Errorf("zone import reported %+v", rep)
	}
	expectFail(t, dir, 1, "already exists", "zone", "import", src)
	// Replacing with the same serial moves the serial forward.
	rep = decodeJSON[jsonReport](t, mustRun(t, dir, "zone", "import", src, "--replace", "--json"))
	if rep.Serial != 2024010102 || !rep.SerialBumped || rep.OldSerial != 2024010101 {
		t.Errorf("zone import --replace reported %+v; want the serial bumped to 2024010102", rep)
	}

	// Export, re-import elsewhere, export again: the same text.
	out := filepath.Join(files, "exported.zone")
	mustRun(t, dir, "zone", "export", "example.org", "-o", out)
	exported, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, dir, "zone", "export", "example.org.").stdout; got != string(exported) {
		t.Errorf("export to stdout and to a file differ:\n%s\n---\n%s", got, exported)
	}
	dir2 := t.TempDir()
	mustRun(t, dir2, "zone", "import", out)
	if again := mustRun(t, dir2, "zone", "export", "example.org").stdout; again != string(exported) {
		t.Errorf("export is not stable across import:\n%s\n---\n%s", again, exported)
	}
	assertSameRecords(t, exampleZone, string(exported), "2024010102")
	if entries, _ := os.ReadDir(files); len(entries) != 2 {
		t.Errorf("export left files behind: %v", entries)
	}

	// show and list, as text and JSON.
	info := decodeJSON[jsonZoneInfo](t, mustRun(t, dir, "zone", "show", "example.org", "--json"))
	if info.Zone != "example.org." || info.Serial != 2024010102 || info.Records != 13 ||
		!slices.Equal(info.Nameservers, []string{"ns1.example.org.", "ns2.example.net."}) ||
		!strings.Contains(info.SOA, "hostmaster.example.org.") || info.Created.IsZero() || info.Updated.Before(info.Created) {
		t.Errorf("zone show --json: %+v", info)
	}
	// Names include the empty non-terminals b.ent and ent.
	if info.Names != 12 {
		t.Errorf("zone show: %d names; want 12", info.Names)
	}
	text := mustRun(t, dir, "zone", "show", "example.org").stdout
	for _, w := range []string{"example.org.", "2024010102", "ns1.example.org.", "negative TTL 300"} {
		if !strings.Contains(text, w) {
			t.Errorf("zone show does not print %q:\n%s", w, text)
		}
	}
	mustRun(t, dir, "zone", "create", "example.com", "--ns", "ns.example.net")
	zones := decodeJSON[[]jsonZoneInfo](t, mustRun(t, dir, "zone", "list", "--json"))
	if len(zones) != 2 || zones[0].Zone != "example.com." || zones[1].Zone != "example.org." {
		t.Errorf("zone list --json: %+v; want example.com. and example.org.", zones)
	}
	listText := mustRun(t, dir, "zone", "list").stdout
	if !strings.Contains(listText, "ZONE") || !strings.Contains(listText, "example.org.") {
		t.Errorf("zone list printed:\n%s", listText)
	}

	// delete needs --yes and an existing zone.
	expectFail(t, dir, 2, "--yes", "zone", "delete", "example.org")
	del := decodeJSON[map[string]any](t, mustRun(t, dir, "zone", "delete", "example.org", "--yes", "--json"))
	if del["zone"] != "example.org." || del["deleted"] != true {
		t.Errorf("zone delete --json: %v", del)
	}
	expectFail(t, dir, 1, "no such zone", "zone", "delete", "example.org", "--yes")
	expectFail(t, dir, 1, "no such zone", "zone", "show", "example.org")
	expectFail(t, dir, 1, "no such zone", "zone", "export", "example.org")
	zones = decodeJSON[[]jsonZoneInfo](t, mustRun(t, dir, "zone", "list", "--json"))
	if len(zones) != 1 {
		t.Errorf("after delete, zone list: %+v", zones)
	}
	mustRun(t, dir, "zone", "delete", "example.com", "--yes")
	if got := strings.TrimSpace(mustRun(t, dir, "zone", "list", "--json").stdout); got != "[]" {
		t.Errorf("zone list --json of an empty database printed %q; want []", got)
	}
	if got := mustRun(t, dir, "zone", "list").stdout; !strings.Contains(got, "(no zones)") {
		t.Errorf("zone list of an empty database printed %q", got)
	}
}

// assertSameRecords checks that exported holds the records of original,
// with the SOA serial set to serial.
func assertSameRecords(t *testing.T, original, exported, serial string) {
	t.Helper()
	parse := func(text string) []string {
		zp := dns.NewZoneParser(strings.NewReader(text), "", "")
		var out []string
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			if soa, ok := rr.(*dns.SOA); ok {
				soa.Serial = 0
			}
			out = append(out, strings.ToLower(rr.String()))
		}
		if err := zp.Err(); err != nil {
			t.Fatalf("parse: %v\n%s", err, text)
		}
		slices.Sort(out)
		return out
	}
	if a, b := parse(original), parse(exported); !slices.Equal(a, b) {
		t.Errorf("exported records differ:\n got %q\nwant %q", b, a)
	}
	if !strings.Contains(exported, " "+serial+" ") {
		t.Errorf("export does not carry serial %s:\n%s", serial, exported)
	}
}

func TestZoneImportInvalid(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	files := t.TempDir()
	tests := []struct {
		name, text string
		want       string // in the messages of zone import and checkzone
		wantImport string // in zone import's message only
	}{
		{name: "syntax", text: "$ORIGIN example.org.\n$TTL 60\n@ SOA ns1 hostmaster 1 2 3 4 5\n@ NS ns1\nwww A 192.0.2.300\n",
			want: "syntax error"},
		{name: "CNAME conflict", text: "$ORIGIN example.org.\n$TTL 60\n@ SOA ns1 hostmaster 1 2 3 4 5\n@ NS ns1\nwww A 192.0.2.1\nwww CNAME ns1\n",
			want: "bad.zone:5: www.example.org. A: CNAME cannot coexist"},
		{name: "no NS", text: "$ORIGIN example.org.\n$TTL 60\n@ SOA ns1 hostmaster 1 2 3 4 5\n",
			want: "no NS records"},
		{name: "no origin", text: "$TTL 60\nwww A 192.0.2.1\n",
			want: "no origin", wantImport: "no origin"},
		{name: "include outside", text: "$ORIGIN example.org.\n$INCLUDE ../outside.zone\n",
			want: "$INCLUDE refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(files, "bad.zone")
			if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			wantImport := tt.want
			if tt.wantImport != "" {
				wantImport = tt.wantImport
			}
			expectFail(t, dir, 2, wantImport, "zone", "import", path)
			expectFail(t, "", 2, tt.want, "checkzone", path)
		})
	}
	expectFail(t, dir, 1, "open zone file", "zone", "import", filepath.Join(files, "missing.zone"))
	if _, err := os.Stat(filepath.Join(dir, "sovdns.db")); err == nil {
		t.Error("an invalid import created the zone database")
	}
}

// TestZoneImportOriginFromDirective imports a file that sets its origin
// with $ORIGIN but does not start with the SOA record.
func TestZoneImportOriginFromDirective(t *testing.T) {
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "nsfirst.zone")
	text := "$ORIGIN example.org.\n$TTL 60\n@ NS ns1\n@ SOA ns1 hostmaster 1 2 3 4 5\nns1 A 192.0.2.1\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "", "checkzone", path)
	r := mustRun(t, t.TempDir(), "zone", "import", path)
	if !strings.Contains(r.stdout, "example.org.") {
		t.Errorf("zone import printed %q", r.stdout)
	}
}

func TestCheckZone(t *testing.T) {
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "example.org.zone")
	if err := os.WriteFile(path, []byte(exampleZone), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, "", "checkzone", path)
	if !strings.Contains(r.stdout, "zone example.org.: serial 2024010101, 13 records") || !strings.Contains(r.stdout, "OK") {
		t.Errorf("checkzone printed %q", r.stdout)
	}
}

func TestCheckConf(t *testing.T) {
	clearEnv(t)
	r := mustRun(t, "", "checkconf")
	if !strings.Contains(r.stdout, "configuration OK (built-in defaults)") || !strings.Contains(r.stdout, "127.0.0.1:5300") {
		t.Errorf("checkconf printed %q", r.stdout)
	}
	good := filepath.Join("..", "config", "testdata", "good.yml")
	if r := mustRun(t, "", "checkconf", "--config", good); !strings.Contains(r.stdout, "good.yml") {
		t.Errorf("checkconf --config printed %q", r.stdout)
	}
	expectFail(t, "", 2, `edns_udp_size: invalid value "100"`, "checkconf", "--config",
		filepath.Join("..", "config", "testdata", "edns_udp_size_small.bad.yml"))
	// SOVDNS_CONFIG names the file when --config is not given.
	t.Setenv("SOVDNS_CONFIG", filepath.Join("..", "config", "testdata", "log_level.bad.yml"))
	expectFail(t, "", 2, `log.level: invalid value "loud"`, "checkconf")
}

func TestProcsFloor(t *testing.T) {
	tests := []struct {
		cur  int
		env  string
		want int
	}{
		{1, "", minProcs},
		{2, "", minProcs},
		{minProcs, "", 0},
		{16, "", 0},
		{1, "1", 0}, // the operator's choice stands
	}
	for _, tc := range tests {
		if got := procsFloor(tc.cur, tc.env); got != tc.want {
			t.Errorf("procsFloor(%d, %q) = %d, want %d", tc.cur, tc.env, got, tc.want)
		}
	}
}

// TestZoneImportMany imports a directory of zone files and checks the
// summary, the exit status, what was stored and what was refused.
func TestZoneImportMany(t *testing.T) {
	clearEnv(t)
	dir, files := t.TempDir(), t.TempDir()
	for i := range 30 {
		text := fmt.Sprintf("$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.%d\n", i+1)
		if err := os.WriteFile(filepath.Join(files, fmt.Sprintf("z%d.example.zone", i)), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(files, "broken.zone"), []byte("$ORIGIN broken.example.\n$TTL 60\n@ SOA ns1 hostmaster 1 2 3 4 5\n@ NS ns1\nwww A 192.0.2.1\nwww CNAME ns1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, "zone", "import", files)
	if r.code != 1 || r.stdout != "imported 30 of 31 zone files: 30 created, 0 replaced, 1 failed\n" {
		t.Errorf("exit %d, stdout %q", r.code, r.stdout)
	}
	if !strings.Contains(r.stderr, "broken.zone:5:") {
		t.Errorf("the broken file's line is not named: %q", r.stderr)
	}
	if out := mustRun(t, dir, "record", "list", "z17.example", "--name", "www").stdout; !strings.Contains(out, "192.0.2.18") {
		t.Errorf("z17.example. www: %q", out)
	}
	list := decodeJSON[[]struct {
		Zone string `json:"zone"`
	}](t, mustRun(t, dir, "zone", "list", "--match", "z2*.example", "--json"))
	if len(list) != 11 || list[0].Zone != "z2.example." {
		t.Errorf("zone list --match z2*.example: %+v, want z2 and z20-z29", list)
	}
	expectFail(t, dir, 2, "--match", "zone", "list", "--match", "[")
	// Again: every zone exists; with --replace they are replaced.
	r = run(t, dir, "zone", "import", files)
	if r.code != 1 || !strings.Contains(r.stdout, "0 created, 0 replaced, 31 failed") {
		t.Errorf("imported twice: exit %d, %q", r.code, r.stdout)
	}
	r = run(t, dir, "zone", "import", "--replace", filepath.Join(files, "z1.example.zone"), filepath.Join(files, "z2.example.zone"))
	if r.code != 0 || r.stdout != "imported 2 of 2 zone files: 0 created, 2 replaced, 0 failed\n" {
		t.Errorf("--replace: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	// Two files of one zone: the first is imported, the second refused.
	twice := filepath.Join(t.TempDir(), "again.zone")
	if err := os.WriteFile(twice, []byte("$ORIGIN z1.example.\n$TTL 300\n@ SOA ns1 hostmaster 9 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, t.TempDir(), "zone", "import", filepath.Join(files, "z1.example.zone"), twice)
	if r.code != 1 || r.stdout != "imported 1 of 2 zone files: 1 created, 0 replaced, 1 failed\n" ||
		!strings.Contains(r.stderr, "again.zone: zone z1.example.: the zone is given more than once (also in "+filepath.Join(files, "z1.example.zone")+")") {
		t.Errorf("a zone in two files: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}
