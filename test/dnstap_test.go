package test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestDnstap: a resolver node logs to a dnstap file the client's question
// and its answer, and its own questions to the upstream servers and their
// answers; BIND's dnstap-read reads the file.
func TestDnstap(t *testing.T) {
	t.Parallel()
	read := requireTool(t, "dnstap-read")
	file := filepath.Join(t.TempDir(), "sovdns.dnstap")
	n := newHostileNet(t, hostileOpts{})
	n.start(t, fmt.Sprintf("dnstap:\n  file: %q\n  identity: resolver-1\n", file))
	r, _ := n.ask(t, "www.good.test.", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Fatalf("www.good.test.: %v", r)
	}
	n.res.stop(t) // the file is complete once the server has stopped
	out, err := exec.Command(read, "-y", file).CombinedOutput()
	if err != nil {
		t.Fatalf("dnstap-read: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"type: CLIENT_QUERY", "type: CLIENT_RESPONSE", "type: RESOLVER_QUERY", "type: RESOLVER_RESPONSE",
		"identity: resolver-1", "www.good.test."} {
		if !strings.Contains(text, want) {
			t.Errorf("dnstap-read output lacks %q:\n%s", want, text)
		}
	}
	// The upstream answer logged is the good server's, with its address.
	if !strings.Contains(text, "192.0.2.4") {
		t.Errorf("the answer's address is not in the log:\n%s", text)
	}
}
