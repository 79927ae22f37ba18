package replication

// Placeholders, replaced by secondary.go and catalog.go.

import (
	"context"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/server"
)

type secondaries struct{ n *Node }

func newSecondaries(n *Node) *secondaries    { return &secondaries{n: n} }
func (*secondaries) run(ctx context.Context) { <-ctx.Done() }
func (*secondaries) notify(_ context.Context, req *dns.Msg, _ server.Peer) *dns.Msg {
	r := new(dns.Msg)
	r.SetRcode(req, dns.RcodeNotImplemented)
	return r
}
