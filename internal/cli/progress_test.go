package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sovdns/sovdns/internal/config"
	"github.com/sovdns/sovdns/internal/progress"
)

// progressLine matches a progress line of the text log.
var progressLine = regexp.MustCompile(`(?m)^time=\S+ level=INFO msg="?progress(?: done)?"? task=`)

// TestProgressOfImportAndExport: with standard error not a terminal (a
// buffer here), an import of many zones and an export log their progress
// there (every --progress-interval, here as often as they count), the
// data on standard output stays byte for byte the same, and --quiet
// silences the lines.
func TestProgressOfImportAndExport(t *testing.T) {
	clearEnv(t)
	dir, files := t.TempDir(), t.TempDir()
	for i := range 40 {
		text := fmt.Sprintf("$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.%d\n", i+1)
		if err := os.WriteFile(filepath.Join(files, fmt.Sprintf("z%d.example.zone", i)), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var big strings.Builder
	big.WriteString("$ORIGIN big.example.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n")
	for i := range 5000 {
		fmt.Fprintf(&big, "host%d A 192.0.2.%d\n", i, i%250+1)
	}
	bigFile := filepath.Join(t.TempDir(), "big.example.zone")
	if err := os.WriteFile(bigFile, []byte(big.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	const often = "--progress-interval=1ns"

	tests := []struct {
		name      string
		dir       string
		args      []string
		wantLines bool   // progress lines on standard error
		wantTask  string // named in them
	}{
		{name: "import of many", dir: dir, args: []string{"zone", "import", files, often}, wantLines: true, wantTask: `task="zone import"`},
		{name: "import of many, quiet", dir: t.TempDir(), args: []string{"zone", "import", files, often, "--quiet"}},
		{name: "import of one", dir: dir, args: []string{"zone", "import", bigFile, often}, wantLines: true, wantTask: `task="read big.example.zone"`},
		{name: "import of one, quiet", dir: t.TempDir(), args: []string{"zone", "import", bigFile, often, "-q"}},
		{name: "import of many at the default interval", dir: t.TempDir(), args: []string{"zone", "import", files}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, tt.dir, tt.args...)
			if got := progressLine.MatchString(r.stderr); got != tt.wantLines {
				t.Errorf("progress lines on standard error: %v, want %v:\n%s", got, tt.wantLines, r.stderr)
			}
			if tt.wantTask != "" && !strings.Contains(r.stderr, tt.wantTask) {
				t.Errorf("standard error does not name %s:\n%s", tt.wantTask, r.stderr)
			}
			if strings.Contains(r.stdout, "progress") {
				t.Errorf("progress on standard output:\n%s", r.stdout)
			}
		})
	}

	// The export: the same bytes on standard output with progress
	// logged, without, and quiet; the lines count the records.
	plain := mustRun(t, dir, "zone", "export", "big.example")
	logged := mustRun(t, dir, "zone", "export", "big.example", often)
	quiet := mustRun(t, dir, "zone", "export", "big.example", often, "--quiet")
	if logged.stdout != plain.stdout || quiet.stdout != plain.stdout {
		t.Errorf("export differs with progress: %d, %d and %d bytes", len(plain.stdout), len(logged.stdout), len(quiet.stdout))
	}
	if !strings.Contains(logged.stderr, `msg="progress done" task="zone export big.example." done=5003 total=5003 unit=records`) {
		t.Errorf("export's last progress line is not there:\n%s", logged.stderr)
	}
	if plain.stderr != "" || quiet.stderr != "" {
		t.Errorf("standard error without progress lines: %q, quiet: %q", plain.stderr, quiet.stderr)
	}
}

// TestExportCounter counts an export's records however its writes cut it,
// and takes the total from its first line.
func TestExportCounter(t *testing.T) {
	text := "; zone example. serial 7, 3 records\n$ORIGIN example.\nexample.\t300\tIN\tSOA\ta b 7 1 1 1 1\nexample.\t300\tIN\tNS\tns.example.\nns.example.\t300\tIN\tA\t192.0.2.1\n"
	tests := []struct {
		name      string
		chunk     int
		text      string
		wantTotal string
	}{
		{name: "one write", chunk: len(text), text: text, wantTotal: "total=3 "},
		{name: "a byte at a time", chunk: 1, text: text, wantTotal: "total=3 "},
		{name: "seven bytes at a time", chunk: 7, text: text, wantTotal: "total=3 "},
		{name: "no header", chunk: 5, text: "; something else\n\n" + text[strings.Index(text, "example.\t"):]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, log bytes.Buffer
			p := progress.New(progress.Options{Log: slog.New(slog.NewTextHandler(&log, nil)), Interval: time.Nanosecond})
			bar := p.Start("export", 0, "records")
			w := &exportCounter{w: &out, bar: bar}
			for s := tt.text; s != ""; {
				n := min(tt.chunk, len(s))
				if _, err := w.Write([]byte(s[:n])); err != nil {
					t.Fatal(err)
				}
				s = s[n:]
			}
			bar.Finish()
			if out.String() != tt.text {
				t.Errorf("passed through %q", out.String())
			}
			if tt.wantTotal == "" {
				// Of unknown size, the work is looked at every 256
				// records: these few make no line.
				if log.Len() != 0 {
					t.Errorf("logged %s", log.String())
				}
				return
			}
			last := log.String()[max(strings.LastIndex(log.String(), "msg="), 0):]
			if !strings.Contains(last, `msg="progress done"`) || !strings.Contains(last, "done=3 ") || !strings.Contains(last, tt.wantTotal) {
				t.Errorf("last line: %s", last)
			}
		})
	}
}

// TestJSONLogDurations: JSON logs give durations as seconds, text logs as
// Go writes them.
func TestJSONLogDurations(t *testing.T) {
	tests := []struct {
		name   string
		format string
		value  any
		want   string // the attribute as written
	}{
		{name: "seconds", format: "json", value: 1500 * time.Millisecond, want: `"took":1.5`},
		{name: "a whole second", format: "json", value: time.Second, want: `"took":1`},
		{name: "nanoseconds", format: "json", value: 250 * time.Nanosecond, want: `"took":2.5e-7`},
		{name: "not a duration", format: "json", value: 1500, want: `"took":1500`},
		{name: "text", format: "text", value: 1500 * time.Millisecond, want: "took=1.5s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := newLogger(&buf, config.LogConfig{Level: "info", Format: tt.format})
			log.Info("done", "took", tt.value, slog.Group("g", "inner", 2*time.Second))
			if !strings.Contains(buf.String(), tt.want) {
				t.Errorf("log line %s does not contain %s", buf.String(), tt.want)
			}
			if tt.format != "json" {
				return
			}
			var m map[string]any
			if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			if _, ok := m["took"].(float64); !ok {
				t.Errorf("took is %T, want a number", m["took"])
			}
			if g, _ := m["g"].(map[string]any); g["inner"] != 2.0 {
				t.Errorf("a duration in a group: %v, want 2 (seconds)", m["g"])
			}
		})
	}
}
