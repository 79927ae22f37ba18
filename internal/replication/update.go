package replication

import (
	"context"
	"errors"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// Dynamic UPDATE (RFC 2136) of primary zones. The server has verified the
// TSIG signature (RFC 8945) and answered NOTAUTH to a bad one; here:
//
//  1. the zone section must name one zone, type SOA (else FORMERR), a zone
//     this node serves (else NOTAUTH) as its primary: a secondary copy is
//     NOTAUTH too, as UPDATEs are not forwarded to the primary;
//  2. the zone's AllowUpdate list must admit the sender's address and key
//     (else REFUSED); this comes before the prerequisites, so that nobody
//     else learns anything of the zone from them;
//  3. the prerequisites and the update, checked and applied (see
//     update_plan.go) under the store's edit lock, so that what the
//     prerequisites found still holds when the change commits, in one
//     transaction, journaled as made by "tsig:<key>" or "addr:<address>".
//
// An update that changes nothing is NOERROR and leaves the serial alone.
// A change the zone's validation refuses (data below a delegation, a
// second SOA, an edit that would break the signatures' expiry guard) is
// REFUSED, and so is one of the signer's records in a zone sovdns signs.

// update answers an UPDATE.
func (n *Node) update(ctx context.Context, req *dns.Msg, p server.Peer) *dns.Msg {
	origin, rcode := n.applyUpdate(ctx, req, p)
	r := new(dns.Msg)
	r.SetRcode(req, rcode)
	label := metrics.ZoneNone
	if origin != "" {
		label = n.m.Zone(origin)
	}
	n.m.Updates.WithLabelValues(label, dns.RcodeToString[rcode]).Inc()
	return r
}

// applyUpdate checks and applies an UPDATE. It returns the zone's origin
// when it is one this node serves, and the response code.
func (n *Node) applyUpdate(ctx context.Context, req *dns.Msg, p server.Peer) (string, int) {
	if len(req.Question) != 1 || req.Question[0].Qtype != dns.TypeSOA {
		return "", dns.RcodeFormatError
	}
	q := req.Question[0]
	origin := zone.Fqdn(q.Name)
	key, err := zone.WireKey(origin)
	if err != nil {
		return "", dns.RcodeFormatError
	}
	z := n.zones().Get(key)
	if z == nil || q.Qclass != dns.ClassINET {
		return "", dns.RcodeNotAuth
	}
	log := n.log.With("zone", origin, "client", p.Addr.Addr(), "key", p.Key)
	meta, err := n.store.Meta(origin)
	if err != nil || meta.Kind != zonestore.KindPrimary {
		log.Info("UPDATE refused: not a primary zone here")
		return origin, dns.RcodeNotAuth
	}
	if !n.config().Policy(origin).AllowUpdate.Allows(p.Addr.Addr(), p.Key) {
		log.Info("UPDATE refused by allow_update")
		return origin, dns.RcodeRefused
	}
	signed, err := n.store.Signed(origin)
	if err != nil {
		log.Error("UPDATE failed: cannot read the zone's signing state", "err", err)
		return origin, dns.RcodeServerFailure
	}
	scanErr := prescan(key, req.Ns)
	var planned zonestore.Change
	res, err := n.store.As(peerAuthor(p)).UpdateFunc(origin, func(cur *zone.Zone) (zonestore.Change, error) {
		if err := checkPrereqs(cur, req.Answer); err != nil {
			return zonestore.Change{}, err
		}
		if scanErr != nil {
			return zonestore.Change{}, scanErr
		}
		c, err := planUpdate(cur, req.Ns, signed)
		if err != nil {
			return c, err
		}
		if len(c.Add) == 0 && len(c.Delete) == 0 {
			return c, zonestore.ErrNoChange
		}
		planned = c
		return c, nil
	})
	var re *rcodeError
	var recErr *zone.RecordError
	switch {
	case err == nil:
		log.Info("zone updated", "serial", res.Serial, "added", len(planned.Add), "deleted", len(planned.Delete))
		return origin, dns.RcodeSuccess
	case errors.As(err, &re):
		log.Info("UPDATE not applied", "rcode", dns.RcodeToString[re.rcode], "reason", re.reason)
		return origin, re.rcode
	case errors.Is(err, zonestore.ErrNoChange):
		log.Debug("UPDATE changes nothing")
		return origin, dns.RcodeSuccess
	case errors.Is(err, zonestore.ErrNoZone), errors.Is(err, zonestore.ErrSecondary):
		return origin, dns.RcodeNotAuth
	case errors.As(err, &recErr), errors.Is(err, dnssec.ErrManagedData), errors.Is(err, dnssec.ErrExpiryGuard),
		errors.Is(err, dnssec.ErrHashClash), errors.Is(err, zone.ErrNoSOA):
		log.Info("UPDATE refused", "reason", err)
		return origin, dns.RcodeRefused
	default:
		if ctx.Err() == nil {
			log.Error("UPDATE failed", "err", err)
		}
		return origin, dns.RcodeServerFailure
	}
}
