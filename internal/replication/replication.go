// Package replication keeps zones in step between nodes with the DNS
// protocol's own machinery. On a primary it serves zone transfers (AXFR,
// RFC 5936; IXFR from the zone journal, RFC 1995), sends NOTIFY (RFC 1996)
// after each change, applies dynamic UPDATE (RFC 2136) and publishes a
// catalog zone (RFC 9432). On a secondary it transfers zones in from their
// primaries, on NOTIFY and by the SOA timers, and consumes catalogs.
//
// The server (internal/server) verifies TSIG signatures and signs the
// responses; this package decides, by the access lists of the zone's
// policy, who may do what.
package replication

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// ACLEntry admits a message from an address in Prefix (any address when
// Any) signed with Key (unsigned ones too when Key is empty).
type ACLEntry struct {
	Any    bool
	Prefix netip.Prefix
	Key    string
}

// ACL is a list of entries; a message is admitted when one entry admits
// it. An empty ACL admits nothing.
type ACL []ACLEntry

// Allows reports whether a message from src, signed with key (empty:
// unsigned; the signature already verified), is admitted.
func (a ACL) Allows(src netip.Addr, key string) bool {
	src = src.Unmap()
	for _, e := range a {
		if (e.Any || e.Prefix.Contains(src)) && (e.Key == "" || strings.EqualFold(e.Key, key)) {
			return true
		}
	}
	return false
}

// Sources are the addresses this node's messages to other servers leave
// from, one per address family; an invalid (zero) Addr leaves the choice to
// the system's routing. They are what NSD calls outgoing-interface, Knot
// via, BIND notify-source and transfer-source: the address a peer's access
// list names.
type Sources struct {
	V4, V6 netip.Addr
}

// For returns the source address for a message to dst; invalid when the
// system is to pick it.
func (s Sources) For(dst netip.Addr) netip.Addr {
	if dst.Unmap().Is4() {
		return s.V4
	}
	return s.V6
}

// IsZero reports whether no source address is set.
func (s Sources) IsZero() bool { return !s.V4.IsValid() && !s.V6.IsValid() }

// localAddr is the local address for a socket of network ("udp" or "tcp")
// sending from src: nil, for the system's choice, when src is invalid. The
// port is the system's choice: fixed source ports would collide between
// the messages sent at once.
func localAddr(network string, src netip.Addr) net.Addr {
	if !src.IsValid() {
		return nil
	}
	ap := netip.AddrPortFrom(src, 0)
	if network == "tcp" {
		return net.TCPAddrFromAddrPort(ap)
	}
	return net.UDPAddrFromAddrPort(ap)
}

// Target is a server to NOTIFY, or a primary to transfer from.
type Target struct {
	Addr netip.AddrPort
	Key  string // TSIG key to sign with; empty: unsigned
}

// Policy is what a primary zone allows and whom it notifies.
type Policy struct {
	AllowTransfer ACL
	AllowUpdate   ACL
	Notify        []Target
	// NotifySource is where the NOTIFYs leave from.
	NotifySource Sources
}

// SecondaryZone is a zone copied in from its primaries.
type SecondaryZone struct {
	Zone      string // fully qualified, lower case
	Primaries []Target
	Key       string // TSIG key for SOA queries and transfers; NOTIFYs must carry it
	Catalog   bool   // a catalog (RFC 9432) whose members become secondaries too
	// Mirror: a copy for this node's resolver only, not answered to
	// clients (RFC 8806 local root; national zones on resolver nodes).
	Mirror bool
	// Expire overrides the SOA's expire time when positive; ExpireNever
	// keeps the last copy however old.
	Expire time.Duration
	// AllowNotify admits NOTIFYs from others than the primaries' own
	// addresses (a primary that notifies from another of its addresses).
	// An entry without a key still needs the zone's Key when it has one.
	AllowNotify ACL
	// TransferSource is where SOA queries and transfers leave from.
	TransferSource Sources
}

// ExpireNever is SecondaryZone.Expire for a copy that never expires.
const ExpireNever time.Duration = -1

// MaxTransfersOut bounds the zone transfers served at once; a secondary
// asking beyond it is refused and retries later, as its SOA timers say.
const MaxTransfersOut = 32

// Key is a TSIG key for the messages this node sends.
type Key = server.Key

// Config is the replication configuration; Reconfigure replaces it whole.
type Config struct {
	Keys        map[string]Key // by canonical name
	Policy      func(origin string) Policy
	Secondaries []SecondaryZone
	Catalog     string // name of the catalog zone to publish; empty: none
	// NotifyStartRate is how many zones a second are notified at start;
	// 0 means DefaultNotifyStartRate.
	NotifyStartRate int
}

// Node is the replication of one sovdns node. It implements
// server.ZoneOps.
type Node struct {
	store *zonestore.Store
	log   *slog.Logger
	m     *metrics.Metrics
	zones func() *zone.Set // what the server serves

	cfg atomic.Pointer[Config]

	mu      sync.Mutex
	running context.Context // Run's context, nil before Run
	wake    chan struct{}   // Reconfigure pokes the secondary manager

	notifier  *notifier
	secondary *secondaries
	xfrOut    chan struct{} // a slot per transfer out under way

	// serve is told when a secondary zone expires (serve false: stop
	// serving it) and when an expired one is current again (true).
	serve func(origin string, serve bool)
	hold  func() bool
}

// HoldExpiry sets the function asked before a secondary zone expires:
// while it returns true (the node is cut off from the outside), zones past
// their expire time are kept and served. Set it before Run.
func (n *Node) HoldExpiry(fn func() bool) { n.hold = fn }

func (n *Node) holdExpiry() bool { return n.hold != nil && n.hold() }

// OnExpire sets the function told when a secondary zone expires (serve
// false) or is current again (serve true). Set it before Run.
func (n *Node) OnExpire(fn func(origin string, serve bool)) { n.serve = fn }

var _ server.ZoneOps = (*Node)(nil)

// New returns a node replicating the zones of store. zones returns the set
// the server serves.
func New(store *zonestore.Store, cfg Config, zones func() *zone.Set, log *slog.Logger, m *metrics.Metrics) *Node {
	n := &Node{store: store, log: log, m: m, zones: zones, wake: make(chan struct{}, 1),
		xfrOut: make(chan struct{}, MaxTransfersOut)}
	if cfg.Policy == nil {
		cfg.Policy = func(string) Policy { return Policy{} }
	}
	n.cfg.Store(&cfg)
	n.notifier = newNotifier(n)
	n.secondary = newSecondaries(n)
	m.SetSecondaryTotals(n.secondary.totals)
	return n
}

// config is the configuration in force.
func (n *Node) config() *Config { return n.cfg.Load() }

// Secondaries returns the configured secondary zones (the members of
// consumed catalogs are not among them), which the caller must not
// modify.
func (n *Node) Secondaries() []SecondaryZone { return n.config().Secondaries }

// Reconfigure replaces the configuration: access lists and keys apply to
// the next message, secondary zones are added or dropped at once.
func (n *Node) Reconfigure(cfg Config) {
	if cfg.Policy == nil {
		cfg.Policy = func(string) Policy { return Policy{} }
	}
	n.cfg.Store(&cfg)
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run sends NOTIFYs and keeps secondary zones fresh until ctx ends.
func (n *Node) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.notifier.run(ctx) }()
	go func() { defer wg.Done(); n.secondary.run(ctx) }()
	wg.Wait()
}

// Committed is told of every commit to the store: z is the zone's new
// contents, nil when it was deleted. It must not block.
func (n *Node) Committed(origin string, z *zone.Zone) {
	n.secondary.committed(origin, z)
	if z == nil {
		return
	}
	n.notifier.changed(origin, z.Serial())
}

// Transfer implements server.ZoneOps: AXFR and IXFR out.
func (n *Node) Transfer(ctx context.Context, req *dns.Msg, p server.Peer, send func(*dns.Msg) error) error {
	return n.transferOut(ctx, req, p, send)
}

// Notify implements server.ZoneOps: a NOTIFY from a primary.
func (n *Node) Notify(ctx context.Context, req *dns.Msg, p server.Peer) *dns.Msg {
	return n.secondary.notify(ctx, req, p)
}

// Update implements server.ZoneOps: RFC 2136 dynamic UPDATE.
func (n *Node) Update(ctx context.Context, req *dns.Msg, p server.Peer) *dns.Msg {
	return n.update(ctx, req, p)
}
