package replication

// Placeholders, replaced by primary.go, notify.go and update.go.

import (
	"context"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/server"
)

type notifier struct{ n *Node }

func newNotifier(n *Node) *notifier                    { return &notifier{n: n} }
func (*notifier) run(ctx context.Context)              { <-ctx.Done() }
func (*notifier) changed(origin string, serial uint32) {}

func (n *Node) transferOut(_ context.Context, req *dns.Msg, _ server.Peer, send func(*dns.Msg) error) error {
	r := new(dns.Msg)
	r.SetRcode(req, dns.RcodeRefused)
	return send(r)
}

func (n *Node) update(_ context.Context, req *dns.Msg, _ server.Peer) *dns.Msg {
	r := new(dns.Msg)
	r.SetRcode(req, dns.RcodeNotImplemented)
	return r
}
