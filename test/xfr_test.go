package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// The TSIG keys of the primary tests: xfr transfers, upd updates.
const (
	replXfrSecret   = "c292ZG5zLWUyZS16b25lLXRyYW5zZmVyLWtleS0wMDE="
	replUpdSecret   = "c292ZG5zLWUyZS1keW5hbWljLXVwZGF0ZS1rZXktMDA="
	replWrongSecret = "bm90LXRoZS1yaWdodC1zZWNyZXQtZm9yLWFueS1rZXk="
)

// primaryConfig is the configuration of a sovdns primary whose zones
// allowTransfer may transfer with key xfr (e.g. "127.0.0.1/32"), key upd
// may update from anywhere, and the targets given ("IP:port key:xfr") are
// notified of every change.
func primaryConfig(allowTransfer string, notify ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tsig_keys:\n  - {name: xfr, algorithm: hmac-sha256, secret: %q}\n  - {name: upd, secret: %q}\n", replXfrSecret, replUpdSecret)
	fmt.Fprintf(&b, "primary:\n  allow_transfer: [%q]\n  allow_update: [\"key:upd\"]\n  notify:\n", allowTransfer+" key:xfr")
	for _, n := range notify {
		fmt.Fprintf(&b, "    - %q\n", n)
	}
	if len(notify) == 0 {
		b.WriteString("    []\n")
	}
	return b.String()
}

// tool runs an external DNS tool with stdin, bounded by cliTimeout, and
// returns its stdout, stderr and exit code.
func tool(t *testing.T, path, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %s did not finish within %v", path, strings.Join(args, " "), cliTimeout)
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", path, err)
	}
	return stdout.String(), stderr.String(), code
}

// toolRRs reads the records dig or kdig printed, in order, without the
// TSIG records and comments.
func toolRRs(t *testing.T, out string) []dns.RR {
	t.Helper()
	var rrs []dns.RR
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		if f := strings.Fields(line); len(f) > 3 && f[3] == "TSIG" { // not presentation format
			continue
		}
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("cannot read %q: %v\n%s", line, err, out)
		}
		if rr == nil {
			continue
		}
		rrs = append(rrs, rr)
	}
	return rrs
}

func rrTexts(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.String()
	}
	return out
}

// soaText is the SOA of testZone at serial.
func soaText(serial uint32) string {
	return fmt.Sprintf("example.com.\t3600\tIN\tSOA\tns1.example.com. hostmaster.example.com. %d 7200 900 1209600 300", serial)
}

// runNsupdate sends an nsupdate (or knsupdate) script to addr, signed
// with name:secret unless name is empty. It returns the combined output
// and the exit code.
func runNsupdate(t *testing.T, bin, addr, name, secret, script string) (string, int) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	args := []string{}
	if name != "" {
		args = append(args, "-y", "hmac-sha256:"+name+":"+secret)
	}
	stdout, stderr, code := tool(t, bin, "server "+host+" "+port+"\nzone example.com.\n"+script+"send\nquit\n", args...)
	return stdout + stderr, code
}

// mustNsupdate is runNsupdate that fails the test unless the update
// succeeds.
func mustNsupdate(t *testing.T, bin, addr, script string) {
	t.Helper()
	if out, code := runNsupdate(t, bin, addr, "upd", replUpdSecret, script); code != 0 {
		t.Fatalf("%s exit %d:\n%s\nscript:\n%s", bin, code, out, script)
	}
}

// TestXFR edits a zone with the CLI and by dynamic UPDATE, then transfers
// it with dig and kdig, whole and incrementally, signed with TSIG, and
// checks who is refused.
func TestXFR(t *testing.T) {
	dig := requireTool(t, "dig")
	kdig := requireTool(t, "kdig")
	nsupdate := requireTool(t, "nsupdate")
	s := zoneServer(t, primaryConfig("127.0.0.1/32"))
	host, port, _ := strings.Cut(s.dns, ":")
	xfr := "hmac-sha256:xfr:" + replXfrSecret

	// Three edits, serials 2024060102, 03 and 04: two with the CLI
	// through the running server, one by dynamic UPDATE.
	mustCLI(t, nil, "record", "add", "example.com", "new 300 A 192.0.2.200", "--data-dir", s.dataDir)
	mustCLI(t, nil, "record", "delete", "example.com", "old", "A", "--data-dir", s.dataDir)
	mustNsupdate(t, nsupdate, s.dns, "update delete www.example.com. A\nupdate add www.example.com. 600 IN A 192.0.2.11\n")

	t.Run("AXFR", func(t *testing.T) {
		out, stderr, code := tool(t, dig, "", "@"+host, "-p", port, "-y", xfr, "example.com.", "AXFR", "+nostats")
		if code != 0 {
			t.Fatalf("dig exit %d: %s", code, stderr)
		}
		got := toolRRs(t, out)
		if len(got) < 2 || got[0].String() != soaText(2024060104) || got[len(got)-1].String() != soaText(2024060104) {
			t.Fatalf("AXFR does not begin and end with the SOA of serial 2024060104:\n%s", out)
		}
		// The zone: testZone with the three edits.
		zp := dns.NewZoneParser(strings.NewReader(testZone), "", "")
		var want []string
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			switch s := rr.String(); {
			case rr.Header().Rrtype == dns.TypeSOA:
				want = append(want, soaText(2024060104))
			case strings.HasPrefix(s, "old.example.com.\t"), strings.HasPrefix(s, "www.example.com.\t3600\tIN\tA\t"):
			default:
				want = append(want, s)
			}
		}
		if err := zp.Err(); err != nil {
			t.Fatal(err)
		}
		want = append(want, soaText(2024060104), "new.example.com.\t300\tIN\tA\t192.0.2.200", "www.example.com.\t600\tIN\tA\t192.0.2.11")
		g := rrTexts(got)
		slices.Sort(g)
		slices.Sort(want)
		if !slices.Equal(g, want) {
			t.Errorf("AXFR:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
		}
	})

	full := []string{
		soaText(2024060104),
		soaText(2024060101), soaText(2024060102), "new.example.com.\t300\tIN\tA\t192.0.2.200",
		soaText(2024060102), "old.example.com.\t3600\tIN\tA\t192.0.2.66", soaText(2024060103),
		soaText(2024060103), "www.example.com.\t3600\tIN\tA\t192.0.2.10", soaText(2024060104), "www.example.com.\t600\tIN\tA\t192.0.2.11",
		soaText(2024060104),
	}
	ixfrTests := []struct {
		name string
		bin  string
		args []string
		want []string
	}{
		{name: "kdig from the first serial", bin: kdig, args: []string{"IXFR=2024060101"}, want: full},
		{name: "dig from the first serial", bin: dig, args: []string{"IXFR=2024060101"}, want: full},
		{name: "dig over UDP from the last serial but one", bin: dig, args: []string{"IXFR=2024060103", "+notcp"}, want: []string{
			soaText(2024060104), soaText(2024060103), "www.example.com.\t3600\tIN\tA\t192.0.2.10",
			soaText(2024060104), "www.example.com.\t600\tIN\tA\t192.0.2.11", soaText(2024060104),
		}},
		{name: "kdig when current", bin: kdig, args: []string{"IXFR=2024060104"}, want: []string{soaText(2024060104)}},
	}
	for _, tc := range ixfrTests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"@" + host, "-p", port, "-y", xfr, "example.com."}, tc.args...)
			out, stderr, code := tool(t, tc.bin, "", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if got := rrTexts(toolRRs(t, out)); !slices.Equal(got, tc.want) {
				t.Errorf("IXFR:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}

	refusals := []struct {
		name  string
		args  []string
		rcode string // as kdig reports it
	}{
		{name: "unsigned", rcode: "REFUSED"},
		{name: "signed with a key not allowed", args: []string{"-y", "hmac-sha256:upd:" + replUpdSecret}, rcode: "REFUSED"},
		{name: "from an address not allowed", args: []string{"-b", "127.0.0.2", "-y", xfr}, rcode: "REFUSED"},
		{name: "signed with the wrong secret", args: []string{"-y", "hmac-sha256:xfr:" + replWrongSecret}, rcode: "BADSIG"},
		{name: "signed with an unknown key", args: []string{"-y", "hmac-sha256:nokey:" + replXfrSecret}, rcode: "BADKEY"},
	}
	for _, tc := range refusals {
		for _, qtype := range []string{"AXFR", "IXFR=2024060101"} {
			t.Run(tc.name+" "+qtype, func(t *testing.T) {
				args := append(append([]string{"@" + host, "-p", port}, tc.args...), "example.com.", qtype)
				out, stderr, code := tool(t, kdig, "", args...)
				if code == 0 || !strings.Contains(stderr, "'"+tc.rcode+"'") || len(toolRRs(t, out)) != 0 {
					t.Errorf("kdig exit %d, want a failure with %s\nstdout: %s\nstderr: %s", code, tc.rcode, out, stderr)
				}
			})
		}
	}
	// dig says the same in its own words.
	out, _, _ := tool(t, dig, "", "-b", "127.0.0.2", "@"+host, "-p", port, "-y", xfr, "example.com.", "AXFR")
	if !strings.Contains(out, "Transfer failed") || len(toolRRs(t, out)) != 0 {
		t.Errorf("dig AXFR from 127.0.0.2:\n%s", out)
	}

	samples := parseSamples(t, scrape(t, s.metrics))
	for _, c := range []struct {
		typ, result string
		min         float64
	}{
		{typ: "AXFR", result: "ok", min: 1},
		{typ: "IXFR", result: "ok", min: 3},
		{typ: "current", result: "ok", min: 1},
		{typ: "AXFR", result: "refused", min: 3},
		{typ: "IXFR", result: "refused", min: 3},
	} {
		v, _ := find(samples, "sovdns_transfers_out_total", map[string]string{"zone": "example.com.", "type": c.typ, "result": c.result})
		if v < c.min {
			t.Errorf("sovdns_transfers_out_total{type=%q,result=%q} = %v, want at least %v", c.typ, c.result, v, c.min)
		}
	}
}
