package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProgressNotOnATerminal runs the binary with standard error on a
// pipe: an import of many zones and an export log their progress there
// (as JSON lines here, durations in seconds), never on standard output,
// whose data is the same with and without them; --quiet silences them.
func TestProgressNotOnATerminal(t *testing.T) {
	t.Parallel()
	files := t.TempDir()
	for i := range 50 {
		text := fmt.Sprintf("$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.%d\n", i+1)
		if err := os.WriteFile(filepath.Join(files, fmt.Sprintf("z%d.example.zone", i)), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	jsonLog := []string{"SOVDNS_LOG_FORMAT=json"}
	const often = "--progress-interval=1ns" // a line whenever the count moves

	// progressLines returns the progress lines of a JSON log.
	progressLines := func(t *testing.T, stderr string) []map[string]any {
		t.Helper()
		var out []map[string]any
		for line := range strings.Lines(stderr) {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("standard error has a line that is not JSON: %q", line)
			}
			if msg, _ := m["msg"].(string); strings.HasPrefix(msg, "progress") {
				out = append(out, m)
			}
		}
		return out
	}
	dir := t.TempDir()
	tests := []struct {
		name      string
		args      []string
		wantLines bool
	}{
		{name: "import", args: []string{"zone", "import", files, "--data-dir", dir, often}, wantLines: true},
		{name: "import, quiet", args: []string{"zone", "import", files, "--data-dir", t.TempDir(), often, "--quiet"}},
		{name: "export", args: []string{"zone", "export", "z7.example", "--data-dir", dir, often}, wantLines: true},
		{name: "export, quiet", args: []string{"zone", "export", "z7.example", "--data-dir", dir, often, "--quiet"}},
	}
	stdout := map[string]string{}
	for _, tt := range tests {
		r := mustCLI(t, jsonLog, tt.args...)
		stdout[tt.name] = r.stdout
		lines := progressLines(t, r.stderr)
		if (len(lines) > 0) != tt.wantLines {
			t.Errorf("%s: %d progress lines, want some: %v\n%s", tt.name, len(lines), tt.wantLines, r.stderr)
		}
		for _, l := range lines {
			if _, ok := l["elapsed"].(float64); !ok || l["task"] == nil || l["done"] == nil {
				t.Errorf("%s: progress line %v", tt.name, l)
			}
		}
		if strings.Contains(r.stdout, "progress") {
			t.Errorf("%s: progress on standard output:\n%s", tt.name, r.stdout)
		}
	}
	if stdout["import"] != stdout["import, quiet"] || stdout["import"] != "imported 50 of 50 zone files: 50 created, 0 replaced, 0 failed\n" {
		t.Errorf("import's standard output: %q, quiet %q", stdout["import"], stdout["import, quiet"])
	}
	if stdout["export"] != stdout["export, quiet"] || !strings.Contains(stdout["export"], "www.z7.example.\t300\tIN\tA\t192.0.2.8\n") {
		t.Errorf("export's standard output differs with progress:\n%s\n---\n%s", stdout["export"], stdout["export, quiet"])
	}
}
