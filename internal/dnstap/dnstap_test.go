package dnstap

import (
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dt "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"
)

// chanOutput is an Output whose frames the test reads; with block set its
// loop takes nothing, as a collector that stopped reading.
type chanOutput struct {
	ch    chan []byte
	block chan struct{}
	got   chan []byte
	done  chan struct{}
}

func newChanOutput(blocked bool) *chanOutput {
	o := &chanOutput{ch: make(chan []byte), got: make(chan []byte, 64), done: make(chan struct{})}
	if blocked {
		o.block = make(chan struct{})
	}
	return o
}

func (o *chanOutput) GetOutputChannel() chan []byte { return o.ch }
func (o *chanOutput) RunOutputLoop() {
	defer close(o.done)
	if o.block != nil {
		<-o.block
	}
	for b := range o.ch {
		o.got <- b
	}
}
func (o *chanOutput) Close() { close(o.ch); <-o.done }

func wire(t *testing.T, name string, response bool) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Response = response
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSinkMessages(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		log  func(s *Sink, q, r []byte)
		want []dt.Message_Type
	}{
		{"every kind", Config{ClientQueries: true, ClientResponses: true, ResolverQueries: true, ResolverResponses: true},
			func(s *Sink, q, r []byte) {
				c, u := netip.MustParseAddrPort("192.0.2.1:5353"), netip.MustParseAddrPort("[2001:db8::53]:53")
				now := time.Now()
				s.ClientQuery(q, c, UDP, now)
				s.UpstreamQuery(q, u, false, now)
				s.UpstreamResponse(r, u, true, now, now)
				s.ClientResponse(r, c, TCP, now, now)
			},
			[]dt.Message_Type{dt.Message_CLIENT_QUERY, dt.Message_RESOLVER_QUERY, dt.Message_RESOLVER_RESPONSE, dt.Message_CLIENT_RESPONSE}},
		{"client responses only", Config{ClientResponses: true},
			func(s *Sink, q, r []byte) {
				c := netip.MustParseAddrPort("192.0.2.1:5353")
				s.ClientQuery(q, c, UDP, time.Now())
				s.ClientResponse(r, c, UDP, time.Now(), time.Now())
			},
			[]dt.Message_Type{dt.Message_CLIENT_RESPONSE}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newChanOutput(false)
			tt.cfg.Identity = "ns1"
			s := newSink(tt.cfg, o, nil)
			q, r := wire(t, "www.example.", false), wire(t, "www.example.", true)
			tt.log(s, q, r)
			s.Close()
			close(o.got)
			var got []dt.Message_Type
			for b := range o.got {
				var d dt.Dnstap
				if err := proto.Unmarshal(b, &d); err != nil {
					t.Fatal(err)
				}
				m := d.GetMessage()
				got = append(got, m.GetType())
				if string(d.GetIdentity()) != "ns1" {
					t.Errorf("identity %q", d.GetIdentity())
				}
				msg := m.GetQueryMessage()
				if strings.HasSuffix(m.GetType().String(), "RESPONSE") {
					msg = m.GetResponseMessage()
				}
				if len(msg) == 0 {
					t.Errorf("%v without its DNS message", m.GetType())
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// A collector that does not read never holds up the caller: what does not
// fit in the queue is dropped and counted.
func TestSinkNeverBlocks(t *testing.T) {
	o := newChanOutput(true)
	s := newSink(Config{ClientQueries: true, QueueSize: 16}, o, nil)
	q := wire(t, "www.example.", false)
	c := netip.MustParseAddrPort("192.0.2.1:5353")
	const n = 1000
	done := make(chan struct{})
	go func() {
		for range n {
			s.ClientQuery(q, c, UDP, time.Now())
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("logging blocked on a collector that does not read")
	}
	// The queue (16) and the message the writer holds are all that can
	// wait: the rest was dropped.
	if d := s.Dropped(); d < n-18 {
		t.Errorf("%d of %d dropped, want at least %d", d, n, n-18)
	}
	close(o.block)
	s.Close()
	if s.Sent()+s.Dropped() != n {
		t.Errorf("sent %d + dropped %d != %d", s.Sent(), s.Dropped(), n)
	}
}

// dnstap-read (BIND's) reads the file written.
func TestSinkFileDnstapRead(t *testing.T) {
	path, err := exec.LookPath("dnstap-read")
	if err != nil {
		t.Skip("dnstap-read not installed (Debian package bind9-dnsutils)")
	}
	file := filepath.Join(t.TempDir(), "tap.fstrm")
	s, err := New(Config{File: file, ClientQueries: true, ResolverResponses: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.ClientQuery(wire(t, "www.example.", false), netip.MustParseAddrPort("192.0.2.1:5353"), UDP, time.Now())
	s.UpstreamResponse(wire(t, "ns.example.", true), netip.MustParseAddrPort("192.0.2.53:53"), false, time.Now(), time.Now())
	s.Close()
	out, err := exec.Command(path, "-y", file).CombinedOutput()
	if err != nil {
		t.Fatalf("dnstap-read: %v\n%s", err, out)
	}
	for _, want := range []string{"type: CLIENT_QUERY", "type: RESOLVER_RESPONSE", "www.example.", "ns.example."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dnstap-read output lacks %q:\n%s", want, out)
		}
	}
}
