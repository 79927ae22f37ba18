package replication

// Catalog zones (RFC 9432).
//
// Producer: with Config.Catalog set, the node keeps a catalog zone of that
// name in its store, listing its primary zones (secondary copies are not
// listed, nor the catalog itself or any other catalog zone):
//
//	<catalog>              0 SOA invalid. invalid. <serial> 3600 600 2419200 0
//	<catalog>              0 NS  invalid.
//	version.<catalog>      0 TXT "2"
//	<id>.zones.<catalog>   0 PTR <member>.
//
// where <id> is the first 8 bytes of the SHA-256 of the member's lower-case
// name, in hex (longer on a collision), so a member keeps its id for as
// long as it is listed. The catalog is an ordinary primary zone, edited as
// author "catalog" whenever the set of primary zones changes (one PTR added
// or removed per member; members that come together in one edit), so it
// is journaled, offered by IXFR, notified and signed by the zone's policy
// like any other. Turning the producer off leaves the last catalog in
// place.
//
// Consumer: a secondary zone configured with Catalog is checked as a
// catalog on every transfer (exactly one version TXT "2"; one PTR per
// member node and per coo property); a broken catalog is refused like any
// invalid zone, and the previous one stays in force. After each transfer
// the members become secondary zones of this node, with the catalog's
// primaries and key; members removed from the catalog are deleted from
// the store and so stop being served; a member whose unique id changed is
// reset (its copy deleted and transferred afresh, as RFC 9432 asks). A zone
// configured explicitly keeps its own settings, a member listed by two
// catalogs belongs to the one configured first, and a member listed twice
// in one catalog is taken once. Group and coo properties are otherwise
// ignored, as are custom properties.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// catalogAuthor is the name the catalog's changes are journaled under.
const catalogAuthor = "catalog"

// errBrokenCatalog marks a catalog zone that must not be processed.
var errBrokenCatalog = errors.New("broken catalog zone (RFC 9432)")

// catalogMembers reads the members of catalog zone z and their unique ids.
// dups names the members listed more than once, of which the first in
// canonical order counts.
func catalogMembers(z *zone.Zone) (members map[string]string, dups []string, err error) {
	zkey, err := catalogZonesKey(z)
	if err != nil {
		return nil, nil, err
	}
	members = map[string]string{}
	z.Walk(func(n *zone.Node) bool {
		parent, _ := zone.ParentKey(n.Key)
		switch {
		case parent == zkey: // a member node
			var m string
			if m, err = memberAt(n); err != nil {
				return false
			}
			if m == "" {
				return true
			}
			if _, dup := members[m]; dup {
				dups = append(dups, m)
				return true
			}
			members[m] = firstLabel(n.Key)
		case parent != "":
			err = checkCoo(n, parent, zkey)
		}
		return err == nil
	})
	if err != nil {
		return nil, nil, err
	}
	return members, dups, nil
}

// catalogZonesKey checks that catalog z has exactly one version TXT, "2",
// and returns the wire key of its zones. name, under which its members are
// listed.
func catalogZonesKey(z *zone.Zone) (string, error) {
	vkey, err := zone.WireKey("version." + z.Origin)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errBrokenCatalog, err)
	}
	var version *zone.RRset
	if n := z.Lookup(vkey); n != nil {
		version = n.Get(dns.TypeTXT)
	}
	if version == nil || len(version.RRs()) != 1 || !slices.Equal(version.RRs()[0].(*dns.TXT).Txt, []string{"2"}) {
		return "", fmt.Errorf("%w: version.%s must have exactly one TXT record, \"2\"", errBrokenCatalog, z.Origin)
	}
	zkey, err := zone.WireKey("zones." + z.Origin)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errBrokenCatalog, err)
	}
	return zkey, nil
}

// memberAt reads member node n of a catalog: the zone its PTR names, ""
// when it has none (or n is nil), or names no usable zone.
func memberAt(n *zone.Node) (string, error) {
	if n == nil {
		return "", nil
	}
	ptr := n.Get(dns.TypePTR)
	if ptr == nil {
		return "", nil
	}
	if len(ptr.RRs()) != 1 {
		return "", fmt.Errorf("%w: member node %s has %d PTR records", errBrokenCatalog, n.Name, len(ptr.RRs()))
	}
	m := zone.Fqdn(ptr.RRs()[0].(*dns.PTR).Ptr)
	if _, ok := dns.IsDomainName(m); !ok || m == "." {
		return "", nil
	}
	return m, nil
}

// checkCoo checks node n, whose parent's wire key is parent, when it is
// the coo property of a member: one PTR at most.
func checkCoo(n *zone.Node, parent, zkey string) error {
	if n == nil || firstLabel(n.Key) != "coo" {
		return nil
	}
	if gp, _ := zone.ParentKey(parent); gp != zkey {
		return nil
	}
	if ptr := n.Get(dns.TypePTR); ptr != nil && len(ptr.RRs()) != 1 {
		return fmt.Errorf("%w: coo property %s has %d PTR records", errBrokenCatalog, n.Name, len(ptr.RRs()))
	}
	return nil
}

// firstLabel is the first label of wire key k.
func firstLabel(k string) string { return k[1 : 1+int(k[0])] }

// catalogChanges reads what an incremental transfer changed in a catalog:
// cur is the copy it applied to, z the new version and changed the wire
// keys of the names it touched. Only those names are read, and checked
// as catalogMembers checks every name (z's version too). It returns the
// member entries gone from cur and new in z, by id; an entry whose PTR
// changed is in both.
func catalogChanges(cur, z *zone.Zone, changed map[string]bool) (removed, added map[string]string, err error) {
	zkey, err := catalogZonesKey(z)
	if err != nil {
		return nil, nil, err
	}
	removed, added = map[string]string{}, map[string]string{}
	for k := range changed {
		parent, _ := zone.ParentKey(k)
		switch {
		case parent == zkey:
			now, err := memberAt(z.Lookup(k))
			if err != nil {
				return nil, nil, err
			}
			was, _ := memberAt(cur.Lookup(k))
			if was == now {
				continue
			}
			if was != "" {
				removed[firstLabel(k)] = was
			}
			if now != "" {
				added[firstLabel(k)] = now
			}
		case parent != "":
			if err := checkCoo(z.Lookup(k), parent, zkey); err != nil {
				return nil, nil, err
			}
		}
	}
	return removed, added, nil
}

// newID gives member m its unique id: the hex of the first 8 bytes of the
// SHA-256 of its name, or of more bytes when that id is in used, to which
// it is added.
func newID(m string, used map[string]bool) string {
	sum := sha256.Sum256([]byte(zone.Fqdn(m)))
	for n := 8; n < len(sum); n *= 2 {
		if id := hex.EncodeToString(sum[:n]); !used[id] {
			used[id] = true
			return id
		}
	}
	id := hex.EncodeToString(sum[:])
	used[id] = true
	return id
}

// catalogRR is the catalog record listing member m under id.
func catalogRR(origin, id, m string) dns.RR {
	return &dns.PTR{Hdr: dns.RR_Header{Name: id + ".zones." + origin, Rrtype: dns.TypePTR, Class: dns.ClassINET}, Ptr: m}
}

// buildCatalog makes the catalog zone origin listing members.
func buildCatalog(origin string, serial uint32, ids map[string]string) (*zone.Zone, error) {
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 0}
	}
	rrs := []dns.RR{
		&dns.SOA{Hdr: hdr(origin, dns.TypeSOA), Ns: "invalid.", Mbox: "invalid.", Serial: serial,
			Refresh: 3600, Retry: 600, Expire: 2419200, Minttl: 0},
		&dns.NS{Hdr: hdr(origin, dns.TypeNS), Ns: "invalid."},
		&dns.TXT{Hdr: hdr("version."+origin, dns.TypeTXT), Txt: []string{"2"}},
	}
	for m, id := range ids {
		rrs = append(rrs, catalogRR(origin, id, m))
	}
	return zone.Build(origin, rrs)
}

// catalogProducer keeps the catalog zone of the node's primary zones.
//
// It hears of every commit and notes the zone; what the noted zones change
// for the catalog is then applied as one edit of it (a PTR added for each
// new member, removed for each member gone), journaled and offered by IXFR
// like any edit, so the cost of a change follows the change, not the
// number of zones. The catalog is compared with the whole store, and built
// whole if need be, only at start, when its name changes, and after an
// edit of it failed.
type catalogProducer struct {
	n    *Node
	kick chan struct{}
	// ready is closed once the catalog has been brought up to date at
	// start (or that failed): the NOTIFYs of the start wait for it, so
	// that the catalog goes out first.
	ready chan struct{}

	mu    sync.Mutex
	dirty map[string]bool // zones committed since the last update
	full  bool            // compare the catalog with every zone next

	// Owned by run: the catalog the members were published in, each
	// member's unique id, and the ids in use.
	cat  string
	ids  map[string]string
	used map[string]bool
}

func newCatalogProducer(n *Node) *catalogProducer {
	return &catalogProducer{n: n, kick: make(chan struct{}, 1), ready: make(chan struct{}), full: true}
}

func (p *catalogProducer) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// committed is told of every commit to the store (z nil: origin was
// deleted). It runs with the zone's lock held: it only notes the zone.
func (p *catalogProducer) committed(origin string, _ *zone.Zone) {
	cat := p.n.config().Catalog
	if cat == "" || origin == cat {
		return
	}
	p.mu.Lock()
	if p.dirty == nil {
		p.dirty = map[string]bool{}
	}
	p.dirty[origin] = true
	p.mu.Unlock()
	p.poke()
}

// run updates the catalog at start and after each poke until ctx ends.
func (p *catalogProducer) run(ctx context.Context) {
	p.updateOrRetry()
	close(p.ready)
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
			p.updateOrRetry()
		}
	}
}

// updateOrRetry runs update; after a failure the next one compares the
// catalog with every zone.
func (p *catalogProducer) updateOrRetry() {
	if err := p.update(); err != nil {
		p.mu.Lock()
		p.full = true
		p.mu.Unlock()
		p.n.log.Error("catalog zone not updated", "zone", p.n.config().Catalog, "err", err)
	}
}

// update brings the catalog up to date with the zones committed since the
// last update, or with every zone when that is due.
func (p *catalogProducer) update() error {
	cat := p.n.config().Catalog
	p.mu.Lock()
	dirty, full := p.dirty, p.full || cat != p.cat || p.ids == nil
	p.dirty, p.full = nil, false
	p.mu.Unlock()
	switch {
	case cat == "":
		p.cat, p.ids, p.used = "", nil, nil
		return nil
	case full:
		return p.rebuild(cat)
	case len(dirty) == 0:
		return nil
	}
	return p.apply(cat, dirty)
}

// isMember reports whether the zone origin, of the kind given, is listed
// in the catalog: a primary zone, and not a catalog itself.
func (p *catalogProducer) isMember(origin, kind string) bool {
	return kind == zonestore.KindPrimary && !p.isCatalog(origin)
}

// rebuild compares the catalog cat with every stored zone and makes it
// list exactly the members, keeping the ids of those it already lists.
func (p *catalogProducer) rebuild(cat string) error {
	st := p.n.store
	kinds, err := st.Kinds()
	if err != nil {
		return err
	}
	members := make([]string, 0, len(kinds))
	for name, kind := range kinds {
		if name != cat && p.isMember(name, kind) {
			members = append(members, name)
		}
	}
	zone.SortCanonical(members)
	ids := make(map[string]string, len(members))
	used := make(map[string]bool, len(members))
	serial := uint32(1)
	var listed map[string]string
	cur, err := st.Load(cat)
	if err == nil {
		serial = cur.Serial()
		if got, _, err := catalogMembers(cur); err == nil {
			listed = got
			for _, m := range members {
				if id, ok := got[m]; ok {
					ids[m], used[id] = id, true
				}
			}
		}
	}
	for _, m := range members {
		if _, ok := ids[m]; !ok {
			ids[m] = newID(m, used)
		}
	}
	p.cat, p.ids, p.used = "", nil, nil // until the catalog is stored
	if listed == nil || !maps.Equal(listed, ids) {
		z, err := buildCatalog(cat, serial, ids)
		if err != nil {
			return err
		}
		res, err := st.As(catalogAuthor).Import(z, true)
		if err != nil {
			return err
		}
		p.n.log.Info("catalog zone updated", "zone", cat, "members", len(ids), "serial", res.Serial)
	}
	p.cat, p.ids, p.used = cat, ids, used
	return nil
}

// manyDirty is the number of committed zones from which apply reads the
// state of every zone in one transaction rather than one by one.
const manyDirty = 1000

// apply edits the catalog cat for the zones in dirty: new members are
// added, members deleted or no longer primary zones removed.
func (p *catalogProducer) apply(cat string, dirty map[string]bool) error {
	st := p.n.store
	var kinds map[string]string
	if len(dirty) >= manyDirty {
		var err error
		if kinds, err = st.Kinds(); err != nil {
			return err
		}
	}
	names := zone.SortedCanonical(dirty)
	var c zonestore.Change
	var added, removed []string
	for _, name := range names {
		kind, ok := kinds[name]
		if kinds == nil {
			m, err := st.Meta(name)
			kind, ok = m.Kind, err == nil
		}
		member := ok && p.isMember(name, kind)
		switch id, listed := p.ids[name]; {
		case member && !listed:
			id = newID(name, p.used)
			p.ids[name] = id
			c.Add = append(c.Add, catalogRR(cat, id, name))
			added = append(added, name)
		case !member && listed:
			delete(p.ids, name)
			delete(p.used, id)
			c.Delete = append(c.Delete, zonestore.Deletion{Name: id + ".zones." + cat, Type: dns.TypePTR})
			removed = append(removed, name)
		}
	}
	if len(added)+len(removed) == 0 {
		return nil
	}
	c.Lenient = true
	res, err := st.As(catalogAuthor).Update(cat, c)
	if errors.Is(err, zonestore.ErrNoZone) {
		return p.rebuild(cat) // deleted meanwhile: made afresh
	}
	if err != nil {
		return err
	}
	args := []any{"zone", cat, "members", len(p.ids), "added", len(added), "removed", len(removed), "serial", res.Serial}
	if len(added)+len(removed) == 1 {
		args = append(args, "member", slices.Concat(added, removed)[0])
	}
	p.n.log.Info("catalog zone updated", args...)
	return nil
}

// isCatalog reports whether the stored zone origin is a catalog zone (a
// former catalog of this node, say), which is not listed as a member.
func (p *catalogProducer) isCatalog(origin string) bool {
	z, err := p.n.store.Load(origin)
	if err != nil {
		return false
	}
	vkey, err := zone.WireKey("version." + origin)
	if err != nil {
		return false
	}
	n := z.Lookup(vkey)
	if n == nil || n.Get(dns.TypeTXT) == nil {
		return false
	}
	_, _, err = catalogMembers(z)
	return err == nil
}

// storedMembers reads the members of the stored copy of catalog c, and
// those it lists more than once; none when there is no usable copy.
func (s *secondaries) storedMembers(c string) (map[string]string, []string) {
	z, err := s.n.store.Load(c)
	if err != nil {
		return map[string]string{}, nil
	}
	if m, err := s.n.store.Meta(c); err != nil || m.Kind != zonestore.KindSecondary {
		return map[string]string{}, nil
	}
	members, dups, err := catalogMembers(z)
	if err != nil {
		s.n.log.Warn("stored catalog zone cannot be read: its members are not refreshed until it is transferred again",
			"zone", c, "err", err)
		return map[string]string{}, nil
	}
	return members, dups
}

// setOf is the set of names.
func setOf(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return set
}

// applyCatalog makes the members of catalog zone z, just stored, the
// secondary zones it provides: new members are started, removed ones
// stopped and deleted, reset ones deleted and started afresh. self is the
// catalog's own worker, which calls it. After an incremental transfer
// from cur (changed holds the names it touched) only the members those
// names list are looked at; after a whole transfer, every member.
func (s *secondaries) applyCatalog(self string, cur, z *zone.Zone, changed map[string]bool) {
	if changed != nil && cur != nil && s.applyCatalogChanges(self, cur, z, changed) {
		return
	}
	members, dups, err := catalogMembers(z)
	if err != nil {
		s.n.log.Error("catalog zone cannot be read", "zone", z.Origin, "err", err)
		return
	}
	for _, d := range dups {
		s.n.log.Warn("catalog lists a member more than once: the first entry counts", "zone", z.Origin, "member", d)
	}
	s.mu.Lock()
	old := s.members[self]
	s.members[self] = members
	s.dups[self] = setOf(dups)
	s.mu.Unlock()
	var gone, reset, added []string
	for m, id := range old {
		switch nid, ok := members[m]; {
		case !ok:
			gone = append(gone, m)
		case nid != id:
			reset = append(reset, m)
		}
	}
	for m := range members {
		if _, ok := old[m]; !ok {
			added = append(added, m)
		}
	}
	slices.SortFunc(gone, zone.CanonicalCompare)
	slices.SortFunc(reset, zone.CanonicalCompare)
	s.mu.Lock()
	_, owner := s.desiredOwned(s.n.config())
	s.mu.Unlock()
	for _, m := range reset {
		if owner[m] != self {
			continue // configured explicitly, or provided by another catalog
		}
		s.stop(m)
		s.deleteCopy(z.Origin, m, "its unique id changed: transferring it afresh")
	}
	s.reconcile(self)
	s.mu.Lock()
	want := s.desired(s.n.config())
	s.mu.Unlock()
	for _, m := range gone {
		if _, still := want[m]; still {
			continue // configured explicitly, or listed by another catalog
		}
		s.deleteCopy(z.Origin, m, "removed from the catalog")
	}
	s.logMembers(z.Origin, len(members), len(added), len(gone), len(reset))
}

// logMembers says how the members of a catalog changed, if they did.
func (s *secondaries) logMembers(catalog string, members, added, gone, reset int) {
	if added+gone+reset > 0 {
		s.n.log.Info("catalog members changed", "zone", catalog, "members", members,
			"added", added, "removed", gone, "reset", reset)
	}
}

// applyCatalogChanges is applyCatalog for the member entries an
// incremental transfer changed: nothing on the path grows with the number
// of members. It returns false, having changed nothing, when the whole
// catalog must be read instead: no members are held for it yet, or an
// entry changed names a member listed under another id too (which entry
// counts depends on the whole catalog; the members listed twice are known
// from the last whole reading, and entries added here make none, or the
// whole catalog is read).
func (s *secondaries) applyCatalogChanges(self string, cur, z *zone.Zone, changed map[string]bool) bool {
	removed, added, err := catalogChanges(cur, z, changed)
	if err != nil {
		s.n.log.Error("catalog zone cannot be read", "zone", z.Origin, "err", err)
		return true
	}
	s.mu.Lock()
	members := s.members[self]
	if members == nil {
		s.mu.Unlock()
		return false
	}
	newID := make(map[string]string, len(added)) // member → id
	for id, m := range added {
		if _, dup := newID[m]; dup {
			s.mu.Unlock()
			return false
		}
		newID[m] = id
	}
	for id, m := range removed {
		if members[m] != id || s.dups[self][m] {
			s.mu.Unlock()
			return false
		}
	}
	for m := range newID {
		if id, ok := members[m]; ok && removed[id] != m {
			s.mu.Unlock()
			return false
		}
	}
	var gone, reset, fresh []string
	for _, m := range removed {
		if _, again := newID[m]; again {
			reset = append(reset, m)
		} else {
			gone = append(gone, m)
		}
		delete(members, m)
	}
	for m, id := range newID {
		if members[m] == "" {
			fresh = append(fresh, m)
		}
		members[m] = id
	}
	fresh = slices.DeleteFunc(fresh, func(m string) bool { return slices.Contains(reset, m) })
	cfg := s.n.config()
	var stopped []*worker
	// Removed members: stopped unless still wanted (configured, or in
	// another catalog, whose settings they take).
	for _, m := range gone {
		w := s.workers[m]
		sz, want := s.wantedLocked(cfg, m)
		switch {
		case !want && w != nil:
			s.removeLocked(w)
			stopped = append(stopped, w)
		case want && w != nil:
			w.cfg.Store(&sz)
		case want && s.ctx != nil:
			s.startLocked(sz)
		}
	}
	// Reset members of this catalog: stopped, deleted below, started anew.
	var resetOwn []string
	for _, m := range reset {
		if !s.ownsLocked(cfg, self, m) {
			continue
		}
		if w := s.workers[m]; w != nil {
			s.removeLocked(w)
			stopped = append(stopped, w)
		}
		resetOwn = append(resetOwn, m)
	}
	// New members: started, or given this catalog's settings if another
	// catalog configured later had them.
	for _, m := range fresh {
		sz, want := s.wantedLocked(cfg, m)
		if !want {
			continue
		}
		if w := s.workers[m]; w != nil {
			w.cfg.Store(&sz)
		} else if s.ctx != nil {
			s.startLocked(sz)
		}
	}
	total := len(members)
	s.mu.Unlock()
	for _, w := range stopped {
		<-w.done
		s.ended(w)
	}
	for _, m := range gone {
		s.mu.Lock()
		_, want := s.wantedLocked(cfg, m)
		s.mu.Unlock()
		if !want {
			s.deleteCopy(z.Origin, m, "removed from the catalog")
		}
	}
	for _, m := range resetOwn {
		s.deleteCopy(z.Origin, m, "its unique id changed: transferring it afresh")
		s.mu.Lock()
		if sz, want := s.wantedLocked(cfg, m); want && s.workers[m] == nil && s.ctx != nil {
			s.startLocked(sz)
		}
		s.mu.Unlock()
	}
	s.logMembers(z.Origin, total, len(fresh), len(gone), len(reset))
	return true
}

// ownsLocked reports whether member m is provided by catalog c: not
// configured explicitly, and in no catalog configured before c. Called
// with s.mu held.
func (s *secondaries) ownsLocked(cfg *Config, c, m string) bool {
	for _, sz := range cfg.Secondaries {
		if sz.Zone == m {
			return false
		}
	}
	for _, sz := range cfg.Secondaries {
		if !sz.Catalog {
			continue
		}
		if _, ok := s.members[sz.Zone][m]; ok {
			return sz.Zone == c
		}
	}
	return false
}

// deleteCopy deletes the stored copy of catalog member m, if it is a
// secondary copy.
func (s *secondaries) deleteCopy(catalog, m, why string) {
	meta, err := s.n.store.Meta(m)
	if errors.Is(err, zonestore.ErrNoZone) {
		return
	}
	if err != nil || meta.Kind != zonestore.KindSecondary {
		s.n.log.Warn("catalog member not deleted: it is not a secondary copy here", "zone", m, "catalog", catalog, "err", err)
		return
	}
	if err := s.n.store.Delete(m); err != nil && !errors.Is(err, zonestore.ErrNoZone) {
		s.n.log.Error("catalog member not deleted", "zone", m, "catalog", catalog, "err", err)
		return
	}
	s.n.log.Info("catalog member deleted: "+why, "zone", m, "catalog", catalog)
}

// committed passes a store commit on to the catalog producer.
func (s *secondaries) committed(origin string, z *zone.Zone) { s.catalog.committed(origin, z) }
