package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Exchanger sends one query to one server and returns its answer. The
// network one is NetExchanger; tests script their own.
type Exchanger interface {
	Exchange(ctx context.Context, m *dns.Msg, server netip.AddrPort, tcp bool) (*dns.Msg, time.Duration, error)
}

// ErrMismatch is an answer that does not answer the question asked.
var ErrMismatch = errors.New("answer does not match the query")

// NetExchanger queries over UDP or TCP with a fresh socket (so a fresh
// random source port) per query. Query IDs are random (miekg/dns draws
// them from crypto/rand); the client checks the ID and, being connected,
// the source address and port; the question is checked here.
type NetExchanger struct{}

// Exchange implements Exchanger.
func (NetExchanger) Exchange(ctx context.Context, m *dns.Msg, server netip.AddrPort, tcp bool) (*dns.Msg, time.Duration, error) {
	c := &dns.Client{Net: "udp", UDPSize: 1232}
	if tcp {
		c.Net = "tcp"
	}
	if d, ok := ctx.Deadline(); ok {
		c.Timeout = time.Until(d)
	}
	conn, err := c.DialContext(ctx, server.String())
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", server, err)
	}
	defer conn.Close()
	// A cancelled context ends a read under way (the client only applies
	// the context's deadline), so that a stopping server does not wait on
	// dead upstreams.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r, rtt, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, rtt, fmt.Errorf("%s: %w", server, err)
	}
	if err := matches(m, r); err != nil {
		return nil, rtt, fmt.Errorf("%s: %w", server, err)
	}
	return r, rtt, nil
}

func matches(q, r *dns.Msg) error {
	if !r.Response || r.Id != q.Id || len(r.Question) != 1 || len(q.Question) != 1 {
		return ErrMismatch
	}
	a, b := r.Question[0], q.Question[0]
	if a.Qtype != b.Qtype || a.Qclass != b.Qclass || !strings.EqualFold(a.Name, b.Name) {
		return ErrMismatch
	}
	return nil
}
