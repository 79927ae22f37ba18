package replication

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// Zone transfers out. A transfer is served for every zone this node serves,
// primary zones and secondary copies alike (a secondary can feed further
// secondaries), to the peers the zone's policy allows: Policy(origin)
// answers for both, since a zone is either in the zones list or a
// secondary, and a secondary thus follows the primary section's lists.
//
// AXFR (RFC 5936) goes over TCP only: the SOA, every record of the zone in
// canonical order (DNSSEC records and the SOA's own signatures included),
// and the SOA again, in messages of at most xfrMessageSize bytes before
// compression. IXFR (RFC 1995) is built from the zone journal: for each
// change since the client's serial, the old SOA and the records removed,
// then the new SOA and the records added, the whole framed by the current
// SOA. When the journal does not reach back that far the IXFR answer holds
// the whole zone as an AXFR would; a client that is current gets the
// current SOA alone, and so does an IXFR over UDP whose answer does not
// fit in one datagram (the client then asks again over TCP).

// xfrMessageSize bounds the records of one transfer message, uncompressed.
// It leaves room below 16 KiB for the header, the question and the TSIG.
const xfrMessageSize = 16000

// Transfer types and results, as counted in TransfersOut.
const (
	outAXFR     = "AXFR"
	outIXFR     = "IXFR"
	outFallback = "AXFR-fallback"
	outCurrent  = "current"

	outOK      = "ok"
	outRefused = "refused"
	outNotAuth = "notauth"
	outFormErr = "formerr"
	outFailed  = "failed"
	// An IXFR over UDP too large for a datagram: answered with the SOA.
	outTCPNeeded = "tcp_needed"
	udpPlainSize = 512 // payload size of a client without EDNS
)

// transferOut answers an AXFR or IXFR question.
func (n *Node) transferOut(ctx context.Context, req *dns.Msg, p server.Peer, send func(*dns.Msg) error) error {
	qtype := uint16(dns.TypeAXFR)
	if len(req.Question) == 1 {
		qtype = req.Question[0].Qtype
	}
	typeLabel := dns.TypeToString[qtype]
	refuse := func(zoneLabel string, rcode int, result string) error {
		n.m.TransfersOut.WithLabelValues(n.m.Zone(zoneLabel), typeLabel, result).Inc()
		r := new(dns.Msg)
		r.SetRcode(req, rcode)
		return send(r)
	}
	if len(req.Question) != 1 || len(req.Answer) != 0 || (qtype != dns.TypeAXFR && qtype != dns.TypeIXFR) {
		typeLabel = outAXFR
		return refuse(metrics.ZoneNone, dns.RcodeFormatError, outFormErr)
	}
	q := req.Question[0]
	origin := zone.Fqdn(q.Name)
	key, err := zone.WireKey(origin)
	if err != nil {
		return refuse(metrics.ZoneNone, dns.RcodeFormatError, outFormErr)
	}
	// Only a zone's apex names a zone; an expired secondary is not served.
	z := n.zones().Get(key)
	if z == nil || (q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY) {
		return refuse(metrics.ZoneNone, dns.RcodeNotAuth, outNotAuth)
	}
	if !n.config().Policy(origin).AllowTransfer.Allows(p.Addr.Addr(), p.Key) {
		n.log.Info("zone transfer refused", "zone", origin, "qtype", typeLabel, "client", p.Addr.Addr(), "key", p.Key)
		return refuse(origin, dns.RcodeRefused, outRefused)
	}
	if qtype == dns.TypeAXFR && !p.TCP {
		return refuse(origin, dns.RcodeRefused, outRefused)
	}
	select {
	case n.xfrOut <- struct{}{}:
		defer func() { <-n.xfrOut }()
	default:
		n.log.Warn("zone transfer refused: too many under way", "zone", origin, "client", p.Addr.Addr(), "max", MaxTransfersOut)
		return refuse(origin, dns.RcodeRefused, "busy")
	}

	x := &xfr{req: req, send: send, ctx: ctx, limit: xfrMessageSize}
	kind := outAXFR
	if qtype == dns.TypeIXFR {
		var clientSOA *dns.SOA
		for _, rr := range req.Ns {
			if s, ok := rr.(*dns.SOA); ok && strings.EqualFold(s.Hdr.Name, origin) {
				clientSOA = s
			}
		}
		if clientSOA == nil || len(req.Ns) != 1 {
			// RFC 1995 §3: the authority section holds the client's SOA.
			return refuse(origin, dns.RcodeFormatError, outFormErr)
		}
		kind, err = n.ixfr(x, origin, z, clientSOA.Serial, p.TCP)
	} else {
		err = x.zone(z)
	}
	result := cmp.Or(x.result, outOK)
	if err != nil {
		result = outFailed
	}
	n.m.TransfersOut.WithLabelValues(n.m.Zone(origin), kind, result).Inc()
	if err != nil {
		return fmt.Errorf("%s of %s to %s: %w", kind, origin, p.Addr, err)
	}
	level := slog.LevelInfo
	if kind == outCurrent || x.result != "" {
		level = slog.LevelDebug
	}
	n.log.Log(ctx, level, "zone transfer served", "zone", origin, "type", kind, "serial", x.serial,
		"client", p.Addr.Addr(), "key", p.Key, "messages", x.sent, "records", x.records)
	return nil
}

// ixfr answers an IXFR from serial, falling back to the whole zone when
// the journal does not reach back to it. It returns the kind of answer
// given. Over UDP (tcp false) an answer that does not fit in one message
// is replaced by the current SOA.
func (n *Node) ixfr(x *xfr, origin string, served *zone.Zone, serial uint32, tcp bool) (string, error) {
	if !zonestore.SerialLess(serial, served.Serial()) {
		x.serial = served.Serial()
		return outCurrent, x.soaOnly(served.SOA)
	}
	chain, z, err := n.store.Changes(origin, serial)
	kind := outIXFR
	switch {
	case err == nil && len(chain) == 0:
		x.serial = z.Serial()
		return outCurrent, x.soaOnly(z.SOA)
	case err == nil:
	case errors.Is(err, zonestore.ErrNoJournal), errors.Is(err, zonestore.ErrNoZone):
		// ErrNoZone: served but not stored, as a zone just deleted is for
		// a moment; the snapshot served is consistent on its own.
		kind, z, chain = outFallback, served, nil
	default:
		return kind, err
	}
	if !tcp {
		// Collect in one message rather than send: it goes only if it fits.
		var msgs []*dns.Msg
		udp := *x
		udp.limit = dns.MaxMsgSize
		udp.send = func(m *dns.Msg) error { msgs = append(msgs, m); return nil }
		if kind == outIXFR {
			err = udp.changes(z, chain)
		} else {
			err = udp.zone(z)
		}
		if err != nil {
			return kind, err
		}
		if len(msgs) != 1 || msgs[0].Len() > udpRoom(x.req) {
			x.serial, x.result = z.Serial(), outTCPNeeded
			return kind, x.soaOnly(z.SOA)
		}
		x.serial, x.records = udp.serial, udp.records
		return kind, x.emit(msgs[0])
	}
	if kind == outIXFR {
		return kind, x.changes(z, chain)
	}
	return kind, x.zone(z)
}

// udpRoom is how large a UDP response to req may be before the server
// adds its OPT options and TSIG: the client's EDNS payload size (512
// without EDNS), at most 1232, less room for an OPT record with a cookie
// and, for a signed request, as much room as the server keeps for the TSIG.
func udpRoom(req *dns.Msg) int {
	size := udpPlainSize
	if opt := req.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), udpPlainSize)
	}
	size = min(size, 1232) - 11 - 40
	if req.IsTsig() != nil {
		size -= 200
	}
	return size
}

// xfr writes the messages of one transfer.
type xfr struct {
	ctx   context.Context
	req   *dns.Msg
	send  func(*dns.Msg) error
	limit int // record bytes per message, uncompressed

	cur     *dns.Msg
	size    int
	sent    int
	records int
	serial  uint32
	result  string // the result to count when not plain success
}

// add appends rr to the current message, sending that first when rr would
// not fit.
func (x *xfr) add(rr dns.RR) error {
	l := dns.Len(rr)
	if x.cur != nil && len(x.cur.Answer) > 0 && x.size+l > x.limit {
		if err := x.flush(); err != nil {
			return err
		}
	}
	if x.cur == nil {
		x.cur = x.message()
		x.size = 0
	}
	x.cur.Answer = append(x.cur.Answer, rr)
	x.size += l
	x.records++
	return nil
}

// message starts a response message: the question in the first only
// (RFC 5936 §2.2.1), AA set.
func (x *xfr) message() *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(x.req)
	m.Authoritative = true
	m.Compress = true
	if x.sent > 0 {
		m.Question = nil
	}
	return m
}

func (x *xfr) flush() error {
	if x.cur == nil {
		return nil
	}
	if err := x.ctx.Err(); err != nil {
		return err
	}
	m := x.cur
	x.cur = nil
	return x.emit(m)
}

func (x *xfr) emit(m *dns.Msg) error {
	x.sent++
	return x.send(m)
}

// soaOnly answers with soa alone.
func (x *xfr) soaOnly(soa *dns.SOA) error {
	if err := x.add(soa); err != nil {
		return err
	}
	return x.flush()
}

// zone sends the whole of z: SOA, every other record, SOA.
func (x *xfr) zone(z *zone.Zone) error {
	x.serial = z.Serial()
	if err := x.add(z.SOA); err != nil {
		return err
	}
	var err error
	z.WalkAll(func(_ []byte, nd *zone.Node) bool {
		for i := range nd.RRsets {
			set := &nd.RRsets[i]
			for _, rr := range set.RRs() {
				if set.Type == dns.TypeSOA {
					continue // first and last only
				}
				if err = x.add(rr); err != nil {
					return false
				}
			}
			for _, rr := range set.Sigs() {
				if err = x.add(rr); err != nil {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	if err := x.add(z.SOA); err != nil {
		return err
	}
	return x.flush()
}

// changes sends an incremental answer leading to z by chain.
func (x *xfr) changes(z *zone.Zone, chain []zonestore.Entry) error {
	x.serial = z.Serial()
	if err := x.add(z.SOA); err != nil {
		return err
	}
	for i := range chain {
		e := &chain[i]
		for _, part := range [][]dns.RR{{e.From}, e.Removed, {e.To}, e.Added} {
			for _, rr := range part {
				if err := x.add(rr); err != nil {
					return err
				}
			}
		}
	}
	if err := x.add(z.SOA); err != nil {
		return err
	}
	return x.flush()
}

// peerAuthor names the peer a change is journaled under: its TSIG key, or
// its address.
func peerAuthor(p server.Peer) string {
	if p.Key != "" {
		return "tsig:" + p.Key
	}
	return "addr:" + addrString(p.Addr.Addr())
}

func addrString(a netip.Addr) string { return a.Unmap().String() }
