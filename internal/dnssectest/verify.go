// Package dnssectest checks signed zones with independent verifiers
// (ldns-verify-zone from ldnsutils, dnssec-verify from bind9-utils) for the
// tests of the packages that sign.
package dnssectest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Verify fails t unless every installed verifier accepts the zone made of
// rrs at time now. Under CI (CI set in the environment) a missing
// verifier is a failure too.
func Verify(t testing.TB, origin string, rrs []dns.RR, now time.Time) {
	t.Helper()
	ran, complaints := Run(t, origin, rrs, now)
	for _, c := range complaints {
		t.Error(c)
	}
	if ran < 2 && os.Getenv("CI") != "" {
		t.Fatalf("only %d of ldns-verify-zone and dnssec-verify are installed", ran)
	}
}

// Run writes rrs as a zone file, runs the installed verifiers over it and
// returns how many ran and what those that failed said. dnssec-verify
// checks against the real clock, so now should be close to it.
func Run(t testing.TB, origin string, rrs []dns.RR, now time.Time) (int, []string) {
	t.Helper()
	var buf bytes.Buffer
	csk := true
	for _, rr := range rrs {
		buf.WriteString(rr.String() + "\n")
		if k, ok := rr.(*dns.DNSKEY); ok {
			csk = csk && k.Flags&dns.SEP != 0
		}
	}
	path := filepath.Join(t.TempDir(), "zone")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	ran := 0
	var complaints []string
	if _, err := exec.LookPath("ldns-verify-zone"); err == nil {
		ran++
		// -t: the time to check the signatures at.
		out, err := exec.Command("ldns-verify-zone", "-t", now.UTC().Format("20060102150405"), path).CombinedOutput()
		if err != nil {
			complaints = append(complaints, fmt.Sprintf("ldns-verify-zone: %v\n%s", err, out))
		}
	}
	if _, err := exec.LookPath("dnssec-verify"); err == nil {
		ran++
		// It exits 0 on some usage errors with -q: read what it says.
		args := []string{"-o", origin}
		if csk {
			args = append(args, "-z") // every record signed by a key with SEP set
		}
		out, err := exec.Command("dnssec-verify", append(args, path)...).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("Zone fully signed")) {
			complaints = append(complaints, fmt.Sprintf("dnssec-verify: %v\n%s", err, out))
		}
	}
	return ran, complaints
}
