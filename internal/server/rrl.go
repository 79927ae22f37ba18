package server

import (
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Response rate limiting (RRL), with the semantics of NSD, Knot and BIND:
// identical responses to one client network are counted against a rate per
// second; over the rate, responses are dropped, except every Slip-th, which
// goes out truncated (TC) so that a real client behind the address retries
// over TCP, where the address is proved and nothing is limited. What counts
// as "identical" is the response's account: an answer is its name and type,
// an answer synthesised from a wildcard is the wildcard's zone and type, an
// NXDOMAIN or NODATA is its zone, a referral is its delegation, and every
// error is the client network alone. That way a random-subdomain or
// random-type flood is limited as one stream, as an amplifier's victim sees
// it.

// RRLConfig configures response rate limiting over UDP.
type RRLConfig struct {
	// ResponsesPerSecond is the rate of identical responses one client
	// network gets; 0 turns rate limiting off. ErrorsPerSecond applies to
	// errors (REFUSED, FORMERR, SERVFAIL, ...) and NXDOMAIN/NODATA, whose
	// accounts are broad; 0 means ResponsesPerSecond.
	ResponsesPerSecond int
	ErrorsPerSecond    int
	// Slip: every Slip-th limited response is sent truncated instead of
	// dropped. 0 drops them all; 1 truncates every one.
	Slip int
	// IPv4Prefix and IPv6Prefix group client addresses into networks (0
	// means 24 and 56).
	IPv4Prefix, IPv6Prefix int
	// Exempt clients are never limited.
	Exempt []netip.Prefix
	// LogOnly counts what would be limited and sends every response.
	LogOnly bool
	// TableSize is the number of accounting buckets (0 means 262144); a
	// bucket is 32 bytes. Accounts that hash to one bucket share it, which
	// can only make the limit looser for them.
	TableSize int
}

// Response kinds, for accounting and for the metrics' kind label.
const (
	rrlNone     uint8 = iota // not limited: TCP, resolution, transfers, TSIG, cookies
	rrlAnswer                // data for the name and type asked
	rrlWildcard              // data synthesised from a wildcard
	rrlNXDomain              // NXDOMAIN
	rrlNoData                // NODATA
	rrlReferral              // a delegation
	rrlError                 // REFUSED, FORMERR, SERVFAIL, NOTIMP, ...
	rrlKinds
)

var rrlKindNames = [rrlKinds]string{"none", "answer", "wildcard", "nxdomain", "nodata", "referral", "error"}

// rrlAccount is what a response is counted against: its kind and a hash of
// the name (and type) it concerns, without the client.
type rrlAccount struct {
	kind uint8
	hash uint64
}

// What the limiter says of one response.
const (
	rrlSend = iota // send it whole
	rrlDrop        // send nothing
	rrlSlip        // send a truncated response
)

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// newAccount hashes kind, a name (ASCII letters folded to lower case) and
// qtype.
func newAccount(kind uint8, name string, qtype uint16) rrlAccount {
	h := uint64(fnvOffset)
	h = (h ^ uint64(kind)) * fnvPrime
	for i := 0; i < len(name); i++ {
		b := name[i]
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
		h = (h ^ uint64(b)) * fnvPrime
	}
	h = (h ^ uint64(qtype>>8)) * fnvPrime
	h = (h ^ uint64(qtype&0xff)) * fnvPrime
	return rrlAccount{kind: kind, hash: h}
}

// rrl is the limiter: a fixed table of token buckets behind striped locks.
// It allocates nothing per response.
type rrl struct {
	cfg     RRLConfig
	now     func() time.Time
	rate    [rrlKinds]int64 // tokens per second by kind
	v4, v6  int             // prefix lengths
	buckets []rrlBucket
	mask    uint64
	locks   [rrlStripes]sync.Mutex
	limited [rrlKinds][3]prometheus.Counter // by kind and action: drop, slip, log
}

const rrlStripes = 256

// rrlBucket is one account's token bucket. tokens is in units of 1/1e9 of a
// response, so that refills need no division.
type rrlBucket struct {
	key     uint64
	tokens  int64
	last    int64 // Unix nanoseconds of the last refill
	limited uint32
}

const tokenUnit = int64(time.Second) // one response

// Actions for the metrics' action label.
const (
	actDrop = iota
	actSlip
	actLog
)

var rrlActionNames = [3]string{"drop", "slip", "log_only"}

func newRRL(cfg RRLConfig, now func() time.Time, vec *prometheus.CounterVec) *rrl {
	if cfg.ResponsesPerSecond <= 0 {
		return nil
	}
	if cfg.ErrorsPerSecond <= 0 {
		cfg.ErrorsPerSecond = cfg.ResponsesPerSecond
	}
	if cfg.IPv4Prefix <= 0 || cfg.IPv4Prefix > 32 {
		cfg.IPv4Prefix = 24
	}
	if cfg.IPv6Prefix <= 0 || cfg.IPv6Prefix > 128 {
		cfg.IPv6Prefix = 56
	}
	if cfg.TableSize <= 0 {
		cfg.TableSize = 1 << 18
	}
	size := 1
	for size < cfg.TableSize {
		size <<= 1
	}
	buckets, free := bucketTable(size)
	l := &rrl{cfg: cfg, now: now, v4: cfg.IPv4Prefix, v6: cfg.IPv6Prefix,
		buckets: buckets, mask: uint64(size - 1)}
	if free != nil {
		// The table is reached only through l (a bucket in use is reached
		// under one of l's locks), so it goes when l does.
		runtime.AddCleanup(l, func(free func()) { free() }, free)
	}
	for k := range rrlKinds {
		r := int64(cfg.ResponsesPerSecond)
		switch k {
		case rrlError, rrlNXDomain, rrlNoData:
			r = int64(cfg.ErrorsPerSecond)
		}
		l.rate[k] = r
		if vec != nil && k != rrlNone {
			for a, name := range rrlActionNames {
				l.limited[k][a] = vec.WithLabelValues(rrlKindNames[k], name)
			}
		}
	}
	return l
}

// exempt reports whether src is never limited.
func (l *rrl) exempt(src netip.Addr) bool {
	for _, p := range l.cfg.Exempt {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// check counts one response of account a to src and says what to do with
// it.
func (l *rrl) check(a rrlAccount, src netip.Addr) int {
	if l == nil || a.kind == rrlNone {
		return rrlSend
	}
	src = src.Unmap()
	if len(l.cfg.Exempt) > 0 && l.exempt(src) {
		return rrlSend
	}
	// The client network, folded into the account's hash.
	h := a.hash
	if src.Is4() {
		b := src.As4()
		v := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
		v &= ^uint64(0) << (32 - l.v4)
		h = mix(h ^ v ^ 4<<40)
	} else {
		b := src.As16()
		hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
			uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
		lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
			uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
		if l.v6 <= 64 {
			hi &= ^uint64(0) << (64 - l.v6)
			lo = 0
		} else {
			lo &= ^uint64(0) << (128 - l.v6)
		}
		h = mix(mix(h^hi) ^ lo ^ 6)
	}
	if h == 0 {
		h = 1 // 0 marks an empty bucket
	}
	rate := l.rate[a.kind]
	burst := rate * tokenUnit
	now := l.now().UnixNano()
	idx := h & l.mask
	mu := &l.locks[idx%rrlStripes]
	mu.Lock()
	b := &l.buckets[idx]
	if b.key != h {
		// A new account, or another that hashed here: start it full.
		*b = rrlBucket{key: h, tokens: burst, last: now}
	} else if d := now - b.last; d > 0 {
		d = min(d, 10*int64(time.Second)) // a full bucket takes at most 1s; no overflow
		b.tokens = min(b.tokens+d*rate, burst)
		b.last = now
	}
	if b.tokens >= tokenUnit {
		b.tokens -= tokenUnit
		mu.Unlock()
		return rrlSend
	}
	b.limited++
	n := b.limited
	mu.Unlock()
	switch {
	case l.cfg.LogOnly:
		l.count(a.kind, actLog)
		return rrlSend
	case l.cfg.Slip > 0 && n%uint32(l.cfg.Slip) == 0:
		l.count(a.kind, actSlip)
		return rrlSlip
	}
	l.count(a.kind, actDrop)
	return rrlDrop
}

func (l *rrl) count(kind uint8, action int) {
	if c := l.limited[kind][action]; c != nil {
		c.Inc()
	}
}

// mix is the finaliser of splitmix64: it spreads the bits of x.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// slipped writes into out the truncated response to in: the header with QR
// and TC set, RD and CD as asked, NOERROR, and the question when it is
// there; nameLen is the question name's wire length (0: no question). A
// query with EDNS gets an OPT record without options.
func slipped(out, in []byte, nameLen int, edns bool, ednsSize uint16) []byte {
	qEnd := 12
	if nameLen > 0 && 12+nameLen+4 <= len(in) {
		qEnd = 12 + nameLen + 4
	}
	out = append(out[:0], in[:qEnd]...)
	out[2] = 0x80 | in[2]&0x79 | bitTC // QR, opcode, RD; TC
	out[3] = in[3] & bitCD
	out[4], out[5] = 0, 0
	if qEnd > 12 {
		out[5] = 1
	}
	for i := 6; i < 12; i++ {
		out[i] = 0
	}
	if edns {
		out[11] = 1
		out = append(out, 0, 0, 41, byte(ednsSize>>8), byte(ednsSize), 0, 0, 0, 0, 0, 0)
	}
	return out
}
