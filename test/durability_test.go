package test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// kill ends the server with SIGKILL, as a crash or power loss would, and
// waits for the process to be gone.
func (s *server) kill(t *testing.T) {
	t.Helper()
	s.stopped = true // nothing left for the cleanup to stop
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill: %v", err)
	}
	select {
	case <-s.done:
	case <-t.Context().Done():
		t.Fatal("the killed server did not exit")
	}
}

// TestEditSurvivesKill: an edit the CLI reported as done through a running
// server is in the database, even when the server is killed with SIGKILL
// the moment the CLI returns. Each round restarts the server on the same
// data directory and finds every earlier round's edit served and
// journaled.
func TestEditSurvivesKill(t *testing.T) {
	t.Parallel()
	const rounds = 5
	dir := t.TempDir()
	importZone(t, dir, testZone)
	opts := serveOpts{dataDir: dir, config: "demo_zone: false\nudp_sockets: 2\n"}
	for round := 1; round <= rounds; round++ {
		s := startServer(t, opts)
		// Every earlier round's edit survived its kill.
		for i := 1; i < round; i++ {
			name := fmt.Sprintf("round%d.example.com.", i)
			r := exchange(t, "udp", s.dns, newQuery(name, dns.TypeA))
			wantRRs(t, fmt.Sprintf("round %d: answer for %s", round, name), r.Answer, fmt.Sprintf("%s 300 IN A 192.0.2.%d", name, i))
		}
		mustCLI(t, nil, "record", "add", "example.com", fmt.Sprintf("round%d 300 A 192.0.2.%d", round, round), "--data-dir", dir)
		s.kill(t)
	}

	s := startServer(t, opts)
	for i := 1; i <= rounds; i++ {
		name := fmt.Sprintf("round%d.example.com.", i)
		wantRRs(t, "answer for "+name, exchange(t, "udp", s.dns, newQuery(name, dns.TypeA)).Answer,
			fmt.Sprintf("%s 300 IN A 192.0.2.%d", name, i))
	}
	r := exchange(t, "udp", s.dns, newQuery("example.com.", dns.TypeSOA))
	if len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != 2024060101+rounds {
		t.Errorf("SOA after %d edits: %v; want serial %d", rounds, r.Answer, 2024060101+rounds)
	}
	h := mustCLI(t, nil, "zone", "history", "example.com", "--limit", fmt.Sprint(rounds), "--data-dir", dir).stdout
	for i := 1; i <= rounds; i++ {
		if !strings.Contains(h, fmt.Sprintf("+ round%d.example.com.", i)) {
			t.Errorf("the journal lacks round %d's edit:\n%s", i, h)
		}
	}
}
