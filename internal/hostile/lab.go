package hostile

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/sovdns/sovdns/internal/testaddr"
)

// Lab is a set of Servers on the addresses of one testaddr.Block, all on
// one port: a resolver whose upstream port is Port reaches each at the
// address its glue names. Zone text is written for 127.0.0.0/24 and moved
// into the block (Rewrite), as testaddr.Block.Rewrite does.
type Lab struct {
	Block testaddr.Block
	Port  uint16

	ctx     context.Context
	mu      sync.Mutex
	servers []*Server
}

// NewLab returns a Lab on a new block with a port free for UDP and TCP on
// the block's addresses ending in hosts. Its servers' handlers see ctx.
func NewLab(ctx context.Context, hosts ...byte) (*Lab, error) {
	b := testaddr.NewBlock()
	ips := make([]netip.Addr, len(hosts))
	for i, h := range hosts {
		ips[i] = b.IP(h)
	}
	port, err := testaddr.FreePort(ips...)
	if err != nil {
		return nil, err
	}
	return &Lab{Block: b, Port: port, ctx: ctx}, nil
}

// NewLabOn returns a Lab on block and port, chosen by the caller (port 53
// of a block, for a resolver that cannot be told another port).
func NewLabOn(ctx context.Context, block testaddr.Block, port uint16) *Lab {
	return &Lab{Block: block, Port: port, ctx: ctx}
}

// IP returns the block's address ending in host.
func (l *Lab) IP(host byte) netip.Addr { return l.Block.IP(host) }

// Addr returns the block's address ending in host with the lab's port.
func (l *Lab) Addr(host byte) netip.AddrPort { return netip.AddrPortFrom(l.IP(host), l.Port) }

// Rewrite moves the addresses 127.0.0.N in text into the lab's block.
func (l *Lab) Rewrite(text string) string { return l.Block.Rewrite(text) }

// Zone parses a zone from text written for 127.0.0.0/24 (Rewrite).
func (l *Lab) Zone(origin, text string) (*Zone, error) { return NewZone(origin, l.Rewrite(text)) }

// Serve starts a server at the block's address ending in host.
func (l *Lab) Serve(host byte, h Handler) (*Server, error) {
	s, err := Listen(l.ctx, l.Addr(host), h)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.servers = append(l.servers, s)
	l.mu.Unlock()
	return s, nil
}

// Hints returns root hints (master-file text) naming one root server, ns,
// at the block's address ending in host.
func (l *Lab) Hints(ns string, host byte) string {
	return fmt.Sprintf(". 3600000 IN NS %s\n%s 3600000 IN A %s\n", ns, ns, l.IP(host))
}

// Close closes every server of the lab.
func (l *Lab) Close() {
	l.mu.Lock()
	ss := l.servers
	l.servers = nil
	l.mu.Unlock()
	for _, s := range ss {
		s.Close()
	}
}
