package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dnssec enable with no flags signs a zone whose SOA EXPIRE and TTLs the
// default timing would not outlive, and says what it chose; timing given
// that the guard refuses is refused with values that would do.
func TestDNSSECEnableFitsZone(t *testing.T) {
	tests := []struct {
		name string
		soa  string // expire
		ttl  string
		args []string
		code int
		want string // in stdout (code 0) or stderr
	}{
		{"14 days, 1-day TTLs", "1209600", "86400", nil, 0, "signatures valid 22d, refreshed with 16d left (chosen for the zone's SOA EXPIRE and largest TTL)"},
		{"6 weeks, 2-day TTLs", "3628800", "172800", nil, 0, "signatures valid 51d, refreshed with 45d left"},
		{"given too short", "1209600", "86400", []string{"--refresh", "15d", "--validity", "21d"}, 2, "--refresh 16d --validity 22d"},
		{"given long enough", "1209600", "86400", []string{"--refresh", "20d", "--validity", "30d"}, 0, "signatures valid 30d, refreshed with 20d left (as given)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(t.TempDir(), "example.zone")
			text := "$ORIGIN example.\n$TTL " + tt.ttl + "\n@ SOA ns1 hostmaster 1 7200 900 " + tt.soa + " 300\n@ NS ns1\nns1 A 192.0.2.1\n"
			if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			mustRun(t, dir, "zone", "import", file, "--origin", "example.")
			r := run(t, dir, append([]string{"dnssec", "enable", "example."}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			out := r.stdout
			if tt.code != 0 {
				out = r.stderr
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("output %q does not contain %q", out, tt.want)
			}
		})
	}
}
