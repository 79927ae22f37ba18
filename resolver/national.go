package resolver

import (
	"bytes"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// National infrastructure: what the resolver has learned of the way to
// the national zones (Config.National) is kept in the cache apart from
// the LRU, so that the national namespace stays reachable however long
// the outside is cut off and whatever else fills the cache:
//
//   - the NS RRset of every zone cut at or below a national suffix (the
//     national TLD's delegation from the root included);
//   - the addresses (A and AAAA RRsets) of the name servers those NS
//     RRsets name, wherever those names are;
//   - the DS and DNSKEY answers (NODATA for DS too: an unsigned delegation)
//     of national names and of the names above the national suffixes (the
//     root's keys, which authenticate the national TLD's DS), unless they
//     are Bogus or Indeterminate.
//
// Such entries are never evicted for room and never dropped when they
// expire: past their TTL they are served as stale (GetStale,
// GetRRsetStale), and replaced whenever a fresh copy comes. They are
// exported with the rest of the cache, national ones first, and an
// imported record that is national infrastructure comes back into the
// national store whatever its age. Their number is bounded
// (Config.NationalMaxEntries); past it, new ones go to the LRU like any
// other entry. A change of what is held (a new entry, or new records; not a
// mere refresh of the TTL) calls the change hook, which the resolver turns
// into Config.PersistNow.

// DefaultNationalMaxEntries bounds the national infrastructure entries
// kept apart from the LRU when Config.NationalMaxEntries is zero.
const DefaultNationalMaxEntries = 100000

// nationalSet is the cache's view of the national namespace and the
// bookkeeping of the entries kept apart.
type nationalSet struct {
	suffixes  []string        // lower-case, fully qualified
	ancestors map[string]bool // names strictly above a suffix ("." included)
	max       int64
	changed   func() // called when what is held changed; nil: nobody is told

	total   atomic.Int64  // entries held apart, over every shard
	refused atomic.Uint64 // entries that qualified when the store was full
	pending atomic.Bool   // a change not yet told to changed
	queued  atomic.Bool   // promote or demote is not empty

	// mu guards the name servers of the NS RRsets held (targets, name ->
	// how many such RRsets name it) and the names whose address RRsets
	// must move in or out of the store. Taken after a shard's lock, never
	// before one.
	mu      sync.RWMutex
	targets map[string]int
	promote []string
	demote  []string
}

// setNational makes c keep the national infrastructure of suffixes
// (lower-case, fully qualified) apart from the LRU, at most max entries
// (0: DefaultNationalMaxEntries); changed, if not nil, is called (with no
// lock held) when what is kept changes. It must be called before the
// cache is used; New does it. No suffixes: nothing is kept apart.
func (c *Cache) setNational(suffixes []string, max int, changed func()) {
	if len(suffixes) == 0 {
		return
	}
	if max <= 0 {
		max = DefaultNationalMaxEntries
	}
	n := &nationalSet{ancestors: map[string]bool{}, max: int64(max), changed: changed, targets: map[string]int{}}
	for _, s := range suffixes {
		s = cacheName(s)
		n.suffixes = append(n.suffixes, s)
		for a := s; a != "."; {
			a = parentName(a)
			n.ancestors[a] = true
		}
	}
	c.nat = n
	for i := range c.shards {
		c.shards[i].natSet = n
	}
}

// national reports whether name (canonical) is at or below a suffix.
func (n *nationalSet) national(name string) bool {
	for _, s := range n.suffixes {
		if atOrBelow(name, s) {
			return true
		}
	}
	return false
}

// infra reports whether the entry of key k and slot s is national
// infrastructure.
func (n *nationalSet) infra(k cacheKey, s *slot) bool {
	switch k.kind {
	case kindRRset:
		switch k.qtype {
		case dns.TypeNS:
			return n.national(k.name)
		case dns.TypeA, dns.TypeAAAA:
			return n.isTarget(k.name)
		}
	case kindMsg:
		var kind bool
		switch k.qtype {
		case dns.TypeDNSKEY:
			kind = s.mkind == MsgAnswer
		case dns.TypeDS:
			kind = s.mkind == MsgAnswer || s.mkind == MsgNoData
		}
		return kind && s.sec != dnssec.Bogus && s.sec != dnssec.Indeterminate &&
			(n.national(k.name) || n.ancestors[k.name])
	}
	return false
}

// keep decides whether the entry of key k and slot s, with records rrs
// and bytes data, about to be stored in place of the entry of bytes old
// (nil: none; already removed; wasNational: it was kept apart), is kept
// apart, and if so counts it and notes what changed. Called with the
// entry's shard locked.
func (n *nationalSet) keep(k cacheKey, s *slot, rrs []dns.RR, data, old []byte, wasNational bool) bool {
	if !n.infra(k, s) {
		return false
	}
	if n.total.Load() >= n.max {
		n.refused.Add(1)
		return false
	}
	n.total.Add(1)
	if old == nil || !wasNational || !bytes.Equal(recordsOf(old), recordsOf(data)) {
		n.pending.Store(true)
	}
	if k.kind == kindRRset && k.qtype == dns.TypeNS {
		n.mu.Lock()
		for _, t := range nsTargets(rrs) {
			if n.targets[t]++; n.targets[t] == 1 {
				n.promote = append(n.promote, t)
				n.queued.Store(true)
			}
		}
		n.mu.Unlock()
	}
	return true
}

// dropped uncounts the entry of slot s and bytes data, a kept entry
// removed from its shard (replaced, flushed). Called with its shard
// locked.
func (n *nationalSet) dropped(s *slot, data []byte) {
	n.total.Add(-1)
	if s.kind != kindRRset || s.qtype != dns.TypeNS {
		return
	}
	rrs, _ := decodeRecords(nil, data, 0)
	n.mu.Lock()
	for _, t := range nsTargets(rrs) {
		if n.targets[t]--; n.targets[t] <= 0 {
			delete(n.targets, t)
			n.demote = append(n.demote, t)
			n.queued.Store(true)
		}
	}
	n.mu.Unlock()
}

// forgetTargets empties the name-server bookkeeping (after a Flush).
func (n *nationalSet) forgetTargets() {
	n.mu.Lock()
	clear(n.targets)
	n.promote, n.demote = nil, nil
	n.queued.Store(false)
	n.mu.Unlock()
}

func (n *nationalSet) isTarget(name string) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.targets[name] > 0
}

// pushNational links slot i into the national ring of sh. Called with
// sh.mu held.
func (sh *cacheShard) pushNational(i int32) {
	sh.t.link(natHead, i)
	sh.natBytes += int64(sh.t.slots[i].size)
}

// afterNational finishes what storing or removing entries started, once
// no shard lock is held: the address RRsets of name servers that an NS
// RRset held now names (or no longer names) move into (or out of) the
// store, and the change hook is called if what is held changed.
func (c *Cache) afterNational() {
	n := c.nat
	if n == nil {
		return
	}
	if n.queued.Swap(false) {
		n.mu.Lock()
		promote, demote := n.promote, n.demote
		n.promote, n.demote = nil, nil
		n.mu.Unlock()
		for _, name := range demote {
			c.regroup(name, false)
		}
		for _, name := range promote {
			c.regroup(name, true)
		}
	}
	if n.pending.Load() && n.pending.CompareAndSwap(true, false) && n.changed != nil {
		n.changed()
	}
}

// regroup moves the cached address RRsets of the name server name into
// the national store (in) or back to the LRU, if it still should.
func (c *Cache) regroup(name string, in bool) {
	n := c.nat
	sh := c.shardFor(name)
	now := c.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	nh := c.nameHash(name)
	for _, t := range [2]uint16{dns.TypeA, dns.TypeAAAA} {
		i, ok := sh.t.find(nh, name, t, kindRRset)
		if !ok || sh.t.slots[i].protected == in || n.isTarget(name) != in {
			continue
		}
		s := &sh.t.slots[i]
		// Unlink from the ring it is in.
		sh.t.unlink(i)
		if in {
			if n.total.Load() >= n.max {
				n.refused.Add(1)
				sh.t.link(lruHead, i) // back where it was, as the most recent
				continue
			}
			sh.bytes -= int64(s.size)
			s.protected = true
			n.total.Add(1)
			n.pending.Store(true)
			sh.pushNational(i)
			continue
		}
		sh.natBytes -= int64(s.size)
		s.protected = false
		n.total.Add(-1)
		sh.t.link(lruHead, i)
		sh.bytes += int64(s.size)
		c.evict(sh, i, now)
	}
}

// NationalRefused is how many national infrastructure entries went to the
// LRU because the national store was full (Config.NationalMaxEntries).
func (c *Cache) NationalRefused() uint64 {
	if c.nat == nil {
		return 0
	}
	return c.nat.refused.Load()
}
