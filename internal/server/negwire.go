package server

import (
	"encoding/binary"
	"net/netip"
	"sync"

	"github.com/miekg/dns"
	"github.com/sovdns/sovdns/zone"
)

// The negative answers of a random-subdomain flood (a new name each time,
// which no response cache can help) are written straight into the output
// buffer: a tree walk, then the header, the client's question and the
// zone's SOA, prepared once per zone version. No dns.Msg is unpacked or
// packed and nothing is allocated. Everything else, and any doubt, goes to
// the general path.

// zoneWire is what one zone version contributes to negative answers.
type zoneWire struct {
	origin       int    // wire length of the origin
	soaHead      []byte // type, class and negative TTL of the SOA
	mname, rname []byte // the SOA's names, without the origin when below it
	mrel, rrel   bool   // ...and whether the origin follows (a pointer to it)
	soaTail      []byte // serial, refresh, retry, expire, minimum
	nxdomain     rrlAccount
	nodata       rrlAccount
	signed       bool
	zoneLabel    string
	zone         *zone.Zone // the version it was made from
}

// wires holds the zoneWire of the current version of each zone, made on
// first use and made again for a newer version.
type wires struct {
	m sync.Map // zone key -> *zoneWire
}

func (w *wires) get(z *zone.Zone, label string) *zoneWire {
	if v, ok := w.m.Load(z.Key); ok {
		if zw := v.(*zoneWire); zw.zone == z && zw.zoneLabel == label {
			return zw
		}
	}
	zw := newZoneWire(z, label)
	w.m.Store(z.Key, zw)
	return zw
}

func newZoneWire(z *zone.Zone, label string) *zoneWire {
	soa := z.SOA
	zw := &zoneWire{
		origin:    len(z.Key),
		nxdomain:  newAccount(rrlNXDomain, z.Origin, 0),
		nodata:    newAccount(rrlNoData, z.Origin, 0),
		signed:    z.Signed(),
		zoneLabel: label,
		zone:      z,
	}
	ttl := min(soa.Hdr.Ttl, soa.Minttl)
	zw.soaHead = binary.BigEndian.AppendUint16(nil, dns.TypeSOA)
	zw.soaHead = binary.BigEndian.AppendUint16(zw.soaHead, dns.ClassINET)
	zw.soaHead = binary.BigEndian.AppendUint32(zw.soaHead, ttl)
	zw.mname, zw.mrel = relName(soa.Ns, z.Key)
	zw.rname, zw.rrel = relName(soa.Mbox, z.Key)
	for _, v := range []uint32{soa.Serial, soa.Refresh, soa.Retry, soa.Expire, soa.Minttl} {
		zw.soaTail = binary.BigEndian.AppendUint32(zw.soaTail, v)
	}
	return zw
}

// relName returns name's wire form without the origin (key) when it is at
// or below it, and whether it was; otherwise the whole wire name.
func relName(name, originKey string) ([]byte, bool) {
	var buf [zone.MaxNameWire + 1]byte
	n, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false)
	if err != nil {
		return []byte{0}, false
	}
	w := buf[:n]
	lw := append([]byte(nil), w...)
	zone.LowerWire(lw)
	if len(originKey) > 1 && len(lw) >= len(originKey) && string(lw[len(lw)-len(originKey):]) == originKey &&
		labelBoundary(lw, len(lw)-len(originKey)) {
		return append([]byte(nil), w[:len(w)-len(originKey)]...), true
	}
	return append([]byte(nil), w...), false
}

// labelBoundary reports whether off starts a label of the wire name w.
func labelBoundary(w []byte, off int) bool {
	for i := 0; i < len(w); i += 1 + int(w[i]) {
		if i == off {
			return true
		}
		if w[i] == 0 {
			break
		}
	}
	return false
}

// negativeWire answers a plain query (fq) with NXDOMAIN or NODATA when that
// is the whole answer, writing it into out. It reports false, having done
// nothing, when the answer is anything else or needs DNSSEC records.
func (s *Server) negativeWire(st *state, in, out []byte, src netip.AddrPort, transport int, fq *fastQuery, maxSize int) ([]byte, bool) {
	name := fq.keyBytes[:fq.nameLen]
	qtype := binary.BigEndian.Uint16(fq.keyBytes[fq.nameLen:])
	switch qtype {
	case dns.TypeANY, dns.TypeDS, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeCNAME, dns.TypeDNAME:
		return nil, false
	}
	z := st.zones.Match(name, qtype)
	if z == nil {
		return nil, false
	}
	n, exact := z.FindBytes(name)
	if n.Cut() != nil {
		return nil, false // a delegation
	}
	rcode := dns.RcodeNameError
	if exact {
		if n.DNAMEAbove() != nil || n.Get(qtype) != nil || n.Get(dns.TypeCNAME) != nil {
			return nil, false
		}
		rcode = dns.RcodeSuccess
	} else if n.DNAME() != nil || n.Wildcard() != nil {
		return nil, false
	}
	flags := fq.keyBytes[fq.keyLen-1]
	zw := st.wires.get(z, s.m.Zone(z.Origin))
	if zw.signed && flags&keyDO != 0 {
		return nil, false // needs the denial of existence
	}
	qEnd := 12 + fq.nameLen + 4
	out = append(out[:0], in[:qEnd]...)
	out[2] = 0x80 | 0x04 | in[2]&bitRD // QR, QUERY, AA, RD as asked
	out[3] = byte(rcode) | in[3]&bitCD
	if flags&keyMayRecurse != 0 {
		out[3] |= 0x80 // RA
	}
	binary.BigEndian.PutUint16(out[4:], 1)
	binary.BigEndian.PutUint16(out[6:], 0)
	binary.BigEndian.PutUint16(out[8:], 1)
	binary.BigEndian.PutUint16(out[10:], 0)

	// The SOA, owned by the origin: a pointer into the question.
	originOff := 12 + fq.nameLen - zw.origin
	ptr := func(b []byte) []byte { return append(b, 0xC0|byte(originOff>>8), byte(originOff)) }
	if zw.origin == 1 {
		out = append(out, 0) // the root
	} else {
		out = ptr(out)
	}
	out = append(out, zw.soaHead...)
	rdlen := len(out)
	out = append(out, 0, 0)
	for _, nm := range []struct {
		b   []byte
		rel bool
	}{{zw.mname, zw.mrel}, {zw.rname, zw.rrel}} {
		out = append(out, nm.b...)
		if nm.rel {
			out = ptr(out)
		}
	}
	out = append(out, zw.soaTail...)
	binary.BigEndian.PutUint16(out[rdlen:], uint16(len(out)-rdlen-2))
	if fq.udpSize != 0 {
		binary.BigEndian.PutUint16(out[10:], 1)
		var do byte
		if flags&keyDO != 0 {
			do = 0x80
		}
		out = append(out, 0, 0, 41, byte(s.cfg.EDNSSize>>8), byte(s.cfg.EDNSSize), 0, 0, do, 0, 0, 0)
	}
	if len(out) > maxSize {
		return nil, false // the general path truncates
	}
	if transport == udp && s.rrl != nil {
		acct := zw.nxdomain
		if rcode == dns.RcodeSuccess {
			acct = zw.nodata
		}
		switch s.rrl.check(acct, src.Addr()) {
		case rrlDrop:
			return nil, true
		case rrlSlip:
			return slipped(out, in, fq.nameLen, fq.udpSize != 0, s.cfg.EDNSSize), true
		}
	}

	s.count(transport, zw.zoneLabel, qtype, rcode)
	return out, true
}
