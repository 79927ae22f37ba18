package server

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// Peer is the sender of a message the server passes on to ZoneOps.
type Peer struct {
	Addr netip.AddrPort
	// Key is the name of the TSIG key whose signature on the message was
	// verified; empty for an unsigned message.
	Key string
	TCP bool
}

// ZoneOps handles what is not a plain question: zone transfers (RFC 5936,
// RFC 1995), NOTIFY (RFC 1996) and dynamic UPDATE (RFC 2136). The server
// has verified any TSIG signature and signs the responses; ZoneOps
// decides who is allowed what.
type ZoneOps interface {
	// Transfer answers an AXFR or IXFR question by calling send with each
	// response message in turn (one for a refusal, an IXFR over UDP, or an
	// answer that is up to date). An error from send ends the transfer.
	Transfer(ctx context.Context, req *dns.Msg, p Peer, send func(*dns.Msg) error) error
	// Notify answers a NOTIFY.
	Notify(ctx context.Context, req *dns.Msg, p Peer) *dns.Msg
	// Update answers a dynamic UPDATE.
	Update(ctx context.Context, req *dns.Msg, p Peer) *dns.Msg
}

// SetOps sets the handler of zone transfers, NOTIFY and UPDATE, before Run.
func (s *Server) SetOps(ops ZoneOps) { s.cfg.Ops = ops }

// SetKeys replaces the TSIG keys the server verifies and signs with.
func (s *Server) SetKeys(keys map[string]Key) {
	k := make(map[string]Key, len(keys))
	for name, key := range keys {
		k[dns.CanonicalName(name)] = Key{Algorithm: dns.CanonicalName(key.Algorithm), Secret: key.Secret}
	}
	s.keys.Store(&k)
}

// isTransfer reports whether the message in is a query for AXFR or IXFR,
// reading just enough of it.
func isTransfer(in []byte) bool {
	if len(in) < 17 || in[2]&0xf8 != 0 || binary.BigEndian.Uint16(in[4:]) != 1 { // QR clear, opcode QUERY, one question
		return false
	}
	off := 12
	for off < len(in) {
		l := int(in[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 {
			return false
		}
		off += 1 + l
	}
	if off+4 > len(in) {
		return false
	}
	t := binary.BigEndian.Uint16(in[off:])
	return t == dns.TypeAXFR || t == dns.TypeIXFR
}

// transferTCP serves a zone transfer on a TCP connection, writing each
// message as it is made. It reports whether the connection may go on.
func (s *Server) transferTCP(ctx context.Context, c net.Conn, in []byte, src netip.AddrPort) bool {
	start := s.now()
	req := new(dns.Msg)
	if err := req.Unpack(in); err != nil || !countsMatch(in, req) {
		s.count(tcp, "none", 0, dns.RcodeFormatError)
		return writeTCP(c, formErr(in, nil), s.cfg.TCPIdleTimeout) == nil
	}
	var sg *signer
	if req.IsTsig() != nil {
		sg = s.verifyTSIG(in, req)
	}
	send := func(m *dns.Msg) error {
		m.Id = req.Id
		m.Response = true
		var wire []byte
		var err error
		if sg != nil {
			wire, err = sg.pack(m)
		} else {
			m.Compress = true
			wire, err = m.Pack()
		}
		if err != nil {
			return err
		}
		return writeTCP(c, wire, s.cfg.TCPIdleTimeout)
	}
	defer func() { s.duration[tcp].Observe(s.now().Sub(start).Seconds()) }()
	if (sg != nil && !sg.ok()) || s.cfg.Ops == nil {
		resp := new(dns.Msg)
		resp.SetRcode(req, dns.RcodeRefused)
		if sg != nil {
			resp.Rcode = dns.RcodeNotAuth
		}
		s.count(tcp, "none", qtypeOf(req), resp.Rcode)
		return send(resp) == nil
	}
	rcode := -1
	err := s.cfg.Ops.Transfer(ctx, req, Peer{Addr: src, Key: sg.keyName(), TCP: true}, func(m *dns.Msg) error {
		if rcode < 0 {
			rcode = m.Rcode
		}
		return send(m)
	})
	s.count(tcp, "none", qtypeOf(req), max(rcode, 0))
	if err != nil {
		s.log.Info("zone transfer ended early", "client", src.Addr(), "qname", questionName(req), "err", err)
		return false
	}
	return true
}

func writeTCP(c net.Conn, wire []byte, timeout time.Duration) error {
	if len(wire) > 65535 {
		return errors.New("message larger than 65535 bytes")
	}
	var hdr [2]byte
	binary.BigEndian.PutUint16(hdr[:], uint16(len(wire)))
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	bufs := net.Buffers{hdr[:], wire}
	_, err := bufs.WriteTo(c)
	return err
}

// special answers, for handle, a message that is not a plain question:
// NOTIFY, UPDATE, or an IXFR or AXFR over UDP. It reports false for a
// plain question.
func (s *Server) special(req *dns.Msg, resp *dns.Msg, p Peer) bool {
	switch req.Opcode {
	case dns.OpcodeNotify, dns.OpcodeUpdate:
		if s.cfg.Ops == nil {
			resp.Rcode = dns.RcodeNotImplemented
			return true
		}
		var r *dns.Msg
		if req.Opcode == dns.OpcodeNotify {
			r = s.cfg.Ops.Notify(s.baseCtx(), req, p)
		} else {
			r = s.cfg.Ops.Update(s.baseCtx(), req, p)
		}
		copyInto(resp, r)
		return true
	case dns.OpcodeQuery:
		if len(req.Question) != 1 {
			return false
		}
		switch req.Question[0].Qtype {
		case dns.TypeAXFR, dns.TypeIXFR:
		default:
			return false
		}
		if s.cfg.Ops == nil || req.Question[0].Qtype == dns.TypeAXFR {
			// AXFR is TCP only (RFC 5936 §4.2).
			resp.Question = req.Question
			resp.Rcode = dns.RcodeRefused
			if s.cfg.Ops == nil {
				addEDE(resp, dns.ExtendedErrorCodeProhibited, "zone transfers are not allowed")
			} else {
				addEDE(resp, dns.ExtendedErrorCodeProhibited, "AXFR needs TCP")
			}
			return true
		}
		got := false
		_ = s.cfg.Ops.Transfer(s.baseCtx(), req, p, func(m *dns.Msg) error {
			if got {
				return io.EOF // UDP: one message
			}
			got = true
			copyInto(resp, m)
			return nil
		})
		if !got {
			resp.Rcode = dns.RcodeServerFailure
		}
		return true
	}
	return false
}

// copyInto makes resp, the server's response with its OPT, carry r's
// header bits and sections.
func copyInto(resp, r *dns.Msg) {
	if r == nil {
		resp.Rcode = dns.RcodeServerFailure
		return
	}
	resp.Rcode = r.Rcode
	resp.Authoritative = r.Authoritative
	resp.Question = r.Question
	resp.Answer = r.Answer
	resp.Ns = r.Ns
	var extra []dns.RR
	for _, rr := range r.Extra {
		if t := rr.Header().Rrtype; t != dns.TypeOPT && t != dns.TypeTSIG {
			extra = append(extra, rr)
		}
	}
	resp.Extra = append(extra, resp.Extra...)
}
