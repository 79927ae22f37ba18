package test

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestDig queries the server with dig, the tool operators reach for first.
// Outside CI a missing dig skips the test; in CI it fails it.
func TestDig(t *testing.T) {
	t.Parallel()
	dig := requireTool(t, "dig", "/usr/bin/dig")
	s := zoneServer(t, "identity:\n  nsid: e2e-dig\n")
	host, port, err := net.SplitHostPort(s.dns)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string // regular expressions the output must match
	}{
		{name: "UDP", args: []string{"www.example.com.", "A"}, want: []string{
			`status: NOERROR`, `flags: qr aa;`, `(?m)^www\.example\.com\.\s+3600\s+IN\s+A\s+192\.0\.2\.10$`, `\(UDP\)`}},
		{name: "TCP", args: []string{"+tcp", "www.example.com.", "AAAA"}, want: []string{
			`status: NOERROR`, `flags: qr aa;`, `(?m)^www\.example\.com\.\s+3600\s+IN\s+AAAA\s+2001:db8::10$`, `\(TCP\)`}},
		{name: "NXDOMAIN", args: []string{"nope.example.com.", "A"}, want: []string{
			`status: NXDOMAIN`, `flags: qr aa;`, `(?m)^example\.com\.\s+300\s+IN\s+SOA\s+ns1\.example\.com\. hostmaster\.example\.com\. 2024060101`}},
		{name: "referral", args: []string{"host.sub.example.com.", "A"}, want: []string{
			`status: NOERROR`, `flags: qr;`, `(?m)^sub\.example\.com\.\s+3600\s+IN\s+NS\s+ns\.sub\.example\.com\.$`,
			`(?m)^ns\.sub\.example\.com\.\s+3600\s+IN\s+A\s+192\.0\.2\.53$`}},
		{name: "truncated then TCP", args: []string{"+ignore", "+bufsize=1232", "big.example.com.", "TXT"}, want: []string{
			`flags: qr aa tc;`}},
		{name: "retry over TCP", args: []string{"+bufsize=1232", "big.example.com.", "TXT"}, want: []string{
			`Truncated, retrying in TCP mode`, `ANSWER: 30,`}},
		{name: "NSID and cookie", args: []string{"+nsid", "www.example.com.", "A"}, want: []string{
			`NSID: .*\("e2e-dig"\)`, `COOKIE: [0-9a-f]+ \(good\)`}},
		{name: "version.bind", args: []string{"-c", "CH", "version.bind.", "TXT"}, want: []string{`status: REFUSED`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
			defer cancel()
			args := append([]string{"@" + host, "-p", port, "+norec", "+time=2", "+tries=1"}, tt.args...)
			out, err := exec.CommandContext(ctx, dig, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			for _, w := range tt.want {
				if !regexp.MustCompile(w).Match(out) {
					t.Errorf("dig %s: output does not match %q:\n%s", strings.Join(args, " "), w, out)
				}
			}
		})
	}
}
