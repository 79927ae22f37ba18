package test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const (
	keyA = "aGVsbG8tc292ZG5zLXRzaWcta2V5LWEtMzItYnl0ZXM="
	keyB = "c2Vjb25kLXNvdmRucy10c2lnLWtleS1iLTMyLWJ5dGU="
)

// signedSOA asks addr for the SOA of example.com over TCP, signed with the
// named key, and returns the response and the client's error (a bad
// signature on the response is an error).
func signedSOA(addr, name, secret string) (*dns.Msg, error) {
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second, TsigSecret: map[string]string{name: secret}}
	m := newQuery("example.com.", dns.TypeSOA)
	m.SetTsig(name, dns.HmacSHA256, 300, time.Now().Unix())
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// TestReloadOnSIGHUP: SIGHUP applies a new TSIG key and keeps answering
// throughout; an invalid configuration changes nothing.
func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	importZone(t, dir, testZone)
	// The query loop below asks as fast as it can from 127.0.0.1, which
	// is exempt from response rate limiting.
	base := "demo_zone: false\nudp_sockets: 1\nresolver:\n  allow: []\nrate_limit:\n  exempt: [127.0.0.1]\n"
	conf := func(keys ...string) string {
		s := base + "tsig_keys:\n"
		for _, k := range keys {
			name, secret, _ := strings.Cut(k, "=")
			s += "  - {name: " + name + ", secret: " + secret + "}\n"
		}
		return s
	}
	path := filepath.Join(t.TempDir(), "sovdns.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(conf("alpha=" + keyA))
	s := startServer(t, serveOpts{dataDir: dir, errorsExpected: true,
		args: []string{"--config", path, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}})

	if r, err := signedSOA(s.dns, "alpha.", keyA); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("query signed with a configured key: %v %v", r, err)
	}
	if r, _ := signedSOA(s.dns, "beta.", keyB); r == nil || r.Rcode != dns.RcodeNotAuth {
		t.Fatalf("query signed with an unknown key: %v, want NOTAUTH", r)
	}

	// Queries run all through the reloads; none may fail. A UDP query
	// that times out is sent once more, as any DNS client would.
	var stop atomic.Bool
	var failures, answered atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := &dns.Client{Timeout: time.Second}
		for i := 0; i < 20000 && !stop.Load(); i++ {
			var r *dns.Msg
			var err error
			for try := 0; try < 2; try++ {
				var ne net.Error
				if r, _, err = c.Exchange(newQuery("www.example.com.", dns.TypeA), s.dns); !errors.As(err, &ne) || !ne.Timeout() {
					break
				}
			}
			if err != nil || r.Rcode != dns.RcodeSuccess {
				failures.Add(1)
				continue
			}
			answered.Add(1)
		}
	}()
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	// waitAnswered waits until the load has been answered more than n
	// times.
	waitAnswered := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(startTimeout)
		for answered.Load() <= n {
			if time.Now().After(deadline) {
				t.Fatalf("%d queries answered within %v, %d failed", answered.Load(), startTimeout, failures.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitAnswered(0)

	// hup sends SIGHUP, waits for wantLog, and then for an answer to the
	// load: the server answers after the reload.
	hup := func(wantLog string) {
		t.Helper()
		before := strings.Count(s.log.String(), wantLog)
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(s.log.String(), wantLog) == before {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log after SIGHUP:\n%s", wantLog, s.log)
			}
			time.Sleep(20 * time.Millisecond)
		}
		waitAnswered(answered.Load())
	}
	write(conf("alpha="+keyA, "beta="+keyB))
	hup("SIGHUP: reloaded")
	if r, err := signedSOA(s.dns, "beta.", keyB); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("key added by reload: %v %v", r, err)
	}

	// A broken file: the reload fails loudly and the keys stay.
	write(base + "tsig_keys:\n  - {name: beta, secret: not-base64}\n")
	hup("SIGHUP: reload failed")
	if r, err := signedSOA(s.dns, "alpha.", keyA); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after a failed reload the old keys must stay: %v %v", r, err)
	}

	// A key removed by reload is refused.
	write(conf("beta=" + keyB))
	hup("SIGHUP: reloaded")
	if r, _ := signedSOA(s.dns, "alpha.", keyA); r == nil || r.Rcode != dns.RcodeNotAuth {
		t.Fatalf("key removed by reload: %v, want NOTAUTH", r)
	}
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 {
		t.Errorf("during reloads: %d queries failed, %d answered", failures.Load(), answered.Load())
	}
	if !strings.Contains(s.log.String(), "tsig_keys[0].secret") {
		t.Errorf("the failed reload does not name the bad key:\n%s", s.log)
	}
}
