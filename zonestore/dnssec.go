package zonestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/zone"
)

// A signed zone's DNSSEC state lives next to its records:
//
//	zones/<origin>/dnssec/policy      the dnssec.Policy as JSON; absent when signing is off
//	zones/<origin>/dnssec/keys/<id>   one key, private half included (dnssec.MarshalKey)
//	zones/<origin>/dnssec/parent      what the parent's servers were last seen to publish as the
//	                                  zone's DS (dnssec.ParentView as JSON); absent until asked
//
// The database file is created mode 0640 in a 0750 directory; the keys
// never leave it except as DNSKEY and DS records.
var (
	bucketDNSSEC = []byte("dnssec")
	bucketKeys   = []byte("keys")
	keyPolicy    = []byte("policy")
	keyParent    = []byte("parent")
)

// Sentinels for DNSSEC operations; test with errors.Is.
var (
	ErrNotSigned = errors.New("DNSSEC is not enabled for the zone")
	ErrKeysExist = errors.New("the zone already has keys")
)

type signing struct {
	Policy *dnssec.Policy // nil: signing is off (keys may remain from before)
	Keys   []*dnssec.Key
	// Parent is what the parent's servers were last seen to publish; nil
	// until they have been asked.
	Parent *dnssec.ParentView
}

func readSigning(tx *bolt.Tx, origin string) (*signing, error) {
	zb, err := zoneBucket(tx, origin)
	if err != nil {
		return nil, err
	}
	db := zb.Bucket(bucketDNSSEC)
	if db == nil {
		return nil, nil
	}
	sg := &signing{}
	if v := db.Get(keyPolicy); v != nil {
		p := dnssec.DefaultPolicy()
		if err := json.Unmarshal(v, &p); err != nil {
			return nil, fmt.Errorf("%w: zone %s: DNSSEC policy: %w", ErrCorrupt, origin, err)
		}
		sg.Policy = &p
	}
	if v := db.Get(keyParent); v != nil {
		var pv dnssec.ParentView
		if err := json.Unmarshal(v, &pv); err != nil {
			return nil, fmt.Errorf("%w: zone %s: DNSSEC parent view: %w", ErrCorrupt, origin, err)
		}
		sg.Parent = &pv
	}
	if kb := db.Bucket(bucketKeys); kb != nil {
		err := kb.ForEach(func(k, v []byte) error {
			key, err := dnssec.UnmarshalKey(v)
			if err != nil {
				return fmt.Errorf("%w: zone %s: key %s: %w", ErrCorrupt, origin, k, err)
			}
			sg.Keys = append(sg.Keys, key)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(sg.Keys, func(a, b *dnssec.Key) int { return a.Created.Compare(b.Created) })
	return sg, nil
}

func writeSigning(tx *bolt.Tx, origin string, sg *signing) error {
	zb, err := zoneBucket(tx, origin)
	if err != nil {
		return err
	}
	if zb.Bucket(bucketDNSSEC) != nil {
		if err := zb.DeleteBucket(bucketDNSSEC); err != nil {
			return err
		}
	}
	db, err := zb.CreateBucket(bucketDNSSEC)
	if err != nil {
		return err
	}
	if sg.Policy != nil {
		v, err := json.Marshal(sg.Policy)
		if err != nil {
			return err
		}
		if err := db.Put(keyPolicy, v); err != nil {
			return err
		}
	}
	if sg.Parent != nil {
		v, err := json.Marshal(sg.Parent)
		if err != nil {
			return err
		}
		if err := db.Put(keyParent, v); err != nil {
			return err
		}
	}
	kb, err := db.CreateBucket(bucketKeys)
	if err != nil {
		return err
	}
	for _, k := range sg.Keys {
		v, err := dnssec.MarshalKey(k)
		if err != nil {
			return err
		}
		if err := kb.Put([]byte(k.ID()), v); err != nil {
			return err
		}
	}
	return reindex(tx, origin)
}

// hasManaged reports whether z holds records the signer makes.
func hasManaged(z *zone.Zone) bool {
	if z.HasNSEC3() {
		return true
	}
	found := false
	z.Walk(func(n *zone.Node) bool {
		for _, set := range n.RRsets {
			if dnssec.Managed(set.Type) || len(set.Sigs()) > 0 {
				found = true
				return false
			}
		}
		return true
	})
	return found
}

// maxTTL returns the largest TTL of the zone's records.
func maxTTL(z *zone.Zone) uint32 {
	var m uint32
	z.Walk(func(n *zone.Node) bool {
		for _, set := range n.RRsets {
			m = max(m, set.TTL)
		}
		return true
	})
	return m
}

// timing is what the rollover steps of z wait for, with what the parent
// was last seen to publish (sg may be nil).
func timing(z *zone.Zone, sg *signing) dnssec.Timing {
	t := dnssec.Timing{
		KeyTTL: time.Duration(z.SOA.Hdr.Ttl) * time.Second,
		MaxTTL: time.Duration(maxTTL(z)) * time.Second,
	}
	if sg != nil {
		t.Parent = sg.Parent
	}
	return t
}

// signZone returns z signed under sg, keeping prev's signatures where it
// may. z's own DNSSEC records, if any, are dropped first.
func (s *Store) signZone(z, prev *zone.Zone, sg *signing, now time.Time) (*zone.Zone, error) {
	unsigned := z
	if hasManaged(z) {
		var err error
		if unsigned, err = zone.Build(z.Origin, dnssec.Strip(z)); err != nil {
			return nil, fmt.Errorf("zone %s: %w", z.Origin, err)
		}
	}
	if err := sg.Policy.CheckZone(unsigned.SOA, max(maxTTL(unsigned), unsigned.SOA.Hdr.Ttl)); err != nil {
		return nil, fmt.Errorf("zone %s: %w", z.Origin, err)
	}
	in := dnssec.Input{Zone: unsigned, Prev: prev, Keys: sg.Keys, Policy: *sg.Policy, Now: now}
	if bar := s.opts.Progress.Start("sign "+z.Origin, 0, "RRsets"); bar != nil {
		defer bar.Finish()
		var once sync.Once
		in.Progress = func(n, total int) {
			once.Do(func() { bar.SetTotal(int64(total)) })
			bar.Add(int64(n))
		}
	}
	out, err := dnssec.Sign(in)
	if err != nil {
		return nil, fmt.Errorf("zone %s: sign: %w", z.Origin, err)
	}
	s.opts.Logger.Debug("zone signed", "zone", z.Origin, "serial", out.Zone.Serial(),
		"signatures_made", out.Made, "signatures_kept", out.Kept, "first_expiry", out.Earliest)
	return out.Zone, nil
}

// SigningZones returns the zones with a signing policy, the ones Maintain
// has work for, read in one pass.
func (s *Store) SigningZones() ([]string, error) {
	var out []string
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		ok, err := eachIndexed(tx, func(info ZoneInfo, flags byte) error {
			if flags&indexSigned != 0 {
				out = append(out, info.Origin)
			}
			return nil
		})
		if ok {
			return err
		}
		zs := tx.Bucket(bucketZones)
		if zs == nil {
			return nil
		}
		return zs.ForEachBucket(func(k []byte) error {
			n++
			if db := zs.Bucket(k).Bucket(bucketDNSSEC); db != nil && db.Get(keyPolicy) != nil {
				out = append(out, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list signed zones: %w", err)
	}
	s.passed(n)
	if n > 0 { // read zone by zone: in the zones bucket's order
		zone.SortCanonical(out)
	}
	return out, nil
}

// loadSigning reads a zone's DNSSEC state outside a write.
func (s *Store) loadSigning(origin string) (*signing, error) {
	var sg *signing
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		sg, err = readSigning(tx, origin)
		return err
	})
	return sg, err
}

// nextSerial returns z with its serial moved on by the serial policy.
func (s *Store) nextSerial(z *zone.Zone) (*zone.Zone, error) {
	return withSerial(z, NextSerial(z.Serial(), s.opts.SerialPolicy, s.opts.Now()))
}

// resign signs z (whose serial has been moved on) under sg and commits
// it, rewriting the zone, with sg as the zone's new DNSSEC state.
func (s *Store) resign(old, z *zone.Zone, sg *signing, op string) (PutResult, error) {
	res := PutResult{OldSerial: old.Serial(), OldRecords: old.Len(), Bumped: true}
	now := s.opts.Now()
	// Signed before the write transaction, which then only writes: the
	// zone's lock keeps it as it is meanwhile.
	var err error
	if sg.Policy != nil {
		if z.Len() >= largeZone {
			// Through the write too: it holds the whole encoded zone.
			defer s.gcTight()()
		}
		if z, err = s.signZone(z, old, sg, now); err != nil {
			return res, fmt.Errorf("store zone %s: %w", old.Origin, err)
		}
		// The signing's garbage goes before the write's buffers come,
		// and the heap stays near what is live while it writes.
		releaseMemory(z)
		if z.Len() >= largeZone {
			defer s.writeCap()()
		}
	} else if hasManaged(z) {
		if z, err = zone.Build(z.Origin, dnssec.Strip(z)); err != nil {
			return res, fmt.Errorf("store zone %s: %w", old.Origin, err)
		}
	}
	// A large zone's names are written ahead, a slice per transaction;
	// the last one makes them the zone's, or they are dropped.
	staged, err := s.stageNames(z, true)
	if err != nil {
		return res, fmt.Errorf("store zone %s: %w", old.Origin, err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		if err := checkPrimary(tx, old.Origin); err != nil {
			return err
		}
		if err := writeZoneStaged(tx, z, now, true, staged); err != nil {
			return err
		}
		if err := writeSigning(tx, z.Origin, sg); err != nil {
			return err
		}
		return s.journal(tx, old, z, op, now, nil)
	})
	if err != nil {
		if staged {
			s.dropStaged(z.Origin)
		}
		return res, fmt.Errorf("store zone %s: %w", old.Origin, err)
	}
	res.Zone, res.Serial, res.Records = z, z.Serial(), z.Len()
	s.setCached(z.Origin, z)
	s.publish(z.Origin, z)
	releaseMemory(z)
	return res, nil
}

// EnableDNSSEC signs the zone under p, with the keys it already has if
// they fit the policy (see GenerateKeys), or new ones. On a zone already
// signed it changes the policy (denial method, NSEC3 parameters, timers,
// key split, parent servers) and re-signs; another algorithm starts an
// algorithm rollover (dnssec.StartAlgorithmRollover), and enabling cancels
// a disable that waits for the parent.
func (s *Store) EnableDNSSEC(origin string, p dnssec.Policy) (PutResult, error) {
	origin = zone.Fqdn(origin)
	defer s.lockZone(origin)()
	old, err := s.load(origin)
	if err != nil {
		return PutResult{}, err
	}
	sg, err := s.loadSigning(origin)
	if err != nil {
		return PutResult{}, err
	}
	if sg == nil {
		sg = &signing{}
	}
	if err := p.Check(); err != nil {
		return PutResult{}, err
	}
	// Enabling cancels a disable that waits for the parent.
	p.Unsigning, p.DSGone = time.Time{}, time.Time{}
	if p.FitTiming {
		// Validity and refresh left to sovdns: as long as the zone's SOA
		// EXPIRE and largest TTL need (the expiry guard).
		p = p.Fit(old.SOA, max(maxTTL(old), old.SOA.Hdr.Ttl))
	}
	var keys []*dnssec.Key
	switch cur := sg.Policy; {
	case cur != nil && cur.AlgorithmFrom != 0:
		// An algorithm rollover under way: other settings may change.
		if p.Algorithm != cur.Algorithm || p.SplitKeys != cur.SplitKeys {
			return PutResult{}, fmt.Errorf("zone %s: %w: the algorithm rollover from %d to %d must end before the algorithm or the key split changes again",
				origin, dnssec.ErrRollover, cur.AlgorithmFrom, cur.Algorithm)
		}
		keys, p.AlgorithmFrom = sg.Keys, cur.AlgorithmFrom
	case cur != nil && cur.Algorithm != p.Algorithm:
		// RFC 6781 §4.1.4: new signatures, then new keys, then the DS,
		// then the old keys go; signing maintenance steps it.
		if keys, p, err = dnssec.StartAlgorithmRollover(origin, *cur, p, sg.Keys, s.opts.Now()); err != nil {
			return PutResult{}, fmt.Errorf("zone %s: %w", origin, err)
		}
	default:
		if keys = usableKeys(sg.Keys, p); keys == nil {
			if keys, err = dnssec.InitialKeys(origin, p, s.opts.Now()); err != nil {
				return PutResult{}, err
			}
		}
	}
	z, err := s.nextSerial(old)
	if err != nil {
		return PutResult{}, err
	}
	return s.resign(old, z, &signing{Policy: &p, Keys: keys, Parent: sg.Parent}, OpDNSSECEnable)
}

// usableKeys returns keys if they can sign under p: the algorithm matches
// and there is an active key of each role p needs. Otherwise nil.
func usableKeys(keys []*dnssec.Key, p dnssec.Policy) []*dnssec.Key {
	var ksk, zsk bool
	for _, k := range keys {
		if k.DNSKEY.Algorithm != p.Algorithm {
			return nil
		}
		if k.State != dnssec.StateActive {
			continue
		}
		switch {
		case k.Role == dnssec.RoleCSK && !p.SplitKeys:
			ksk, zsk = true, true
		case k.Role == dnssec.RoleKSK && p.SplitKeys:
			ksk = true
		case k.Role == dnssec.RoleZSK && p.SplitKeys:
			zsk = true
		}
	}
	if !ksk || !zsk {
		return nil
	}
	return keys
}

// DisableDNSSEC turns signing off. Unless force is set, the zone first
// stays signed with CDS and CDNSKEY holding the RFC 8078 delete records,
// which ask the parent to remove the DS; signing maintenance (or another
// DisableDNSSEC) takes it unsigned once every parent server has withdrawn
// the DS and its TTL has passed (view: what they publish now; nil: what
// they were last seen to publish). With force it goes unsigned at once:
// the zone's signatures and chain are removed. Either way the keys are
// kept, so that enabling again signs with the same keys.
func (s *Store) DisableDNSSEC(origin string, force bool, view *dnssec.ParentView) (string, PutResult, error) {
	origin = zone.Fqdn(origin)
	defer s.lockZone(origin)()
	old, sg, err := s.loadSigned(origin)
	if err != nil {
		return "", PutResult{}, err
	}
	if view != nil {
		sg.Parent = view
	}
	p := *sg.Policy
	now := s.opts.Now()
	if !force && p.Unsigning.IsZero() {
		p.Unsigning, p.DSGone = now.UTC(), time.Time{}
		z, err := s.nextSerial(old)
		if err != nil {
			return "", PutResult{}, err
		}
		res, err := s.resign(old, z, &signing{Policy: &p, Keys: sg.Keys, Parent: sg.Parent}, OpDNSSECDisable)
		msg := fmt.Sprintf("signing of %s is being turned off: CDS and CDNSKEY now ask the parent to delete the DS (RFC 8078; tell the parent's operator if it does not scan for them). "+
			"The zone stays signed until every parent server has withdrawn the DS and its TTL has passed; a running server checks hourly (sovdns dnssec status shows the wait)", origin)
		return msg, res, err
	}
	if !force {
		if !sg.Parent.NoDS() {
			err := fmt.Errorf("%w: the zone would go bogus while the parent publishes a DS: %s (--force to go unsigned anyway)", dnssec.ErrParentDS, sg.Parent.DescribeAny())
			return "", PutResult{}, errors.Join(err, s.writeParent(origin, view))
		}
		if p = dnssec.NoteWithdrawal(p, sg.Parent); p.DSGone != sg.Policy.DSGone {
			sg.Policy = &p
			if err := s.saveSigning(origin, sg); err != nil {
				return "", PutResult{}, err
			}
		}
		if at := dnssec.UnsignAt(p, sg.Parent); now.Before(at) {
			return "", PutResult{}, fmt.Errorf("%w: resolvers may hold the parent's DS until %s (--force to go unsigned anyway)", dnssec.ErrTooSoon, at.Format(time.RFC3339))
		}
	}
	res, err := s.unsign(old, sg)
	return fmt.Sprintf("DNSSEC disabled for %s; its keys are kept", origin), res, err
}

// unsign removes the signatures and chain of old, a signed zone whose
// DNSSEC state is sg, keeping its keys.
func (s *Store) unsign(old *zone.Zone, sg *signing) (PutResult, error) {
	z, err := s.nextSerial(old)
	if err != nil {
		return PutResult{}, err
	}
	return s.resign(old, z, &signing{Keys: sg.Keys, Parent: sg.Parent}, OpDNSSECDisable)
}

// GenerateKeys makes the initial keys for a zone that is not signed yet,
// so that their DS can be looked at before EnableDNSSEC uses them.
func (s *Store) GenerateKeys(origin string, p dnssec.Policy) ([]*dnssec.Key, error) {
	origin = zone.Fqdn(origin)
	defer s.lockZone(origin)()
	if err := p.Check(); err != nil {
		return nil, err
	}
	var keys []*dnssec.Key
	err := s.update(func(tx *bolt.Tx) error {
		sg, err := readSigning(tx, origin)
		if err != nil {
			return err
		}
		if sg != nil && len(sg.Keys) > 0 {
			return fmt.Errorf("zone %s: %w (see key list; key rollover replaces them)", origin, ErrKeysExist)
		}
		if keys, err = dnssec.InitialKeys(origin, p, s.opts.Now()); err != nil {
			return err
		}
		return writeSigning(tx, origin, &signing{Keys: keys})
	})
	return keys, err
}

// Rollover starts a key rollover of the given role (dnssec.RoleZSK, or
// dnssec.RoleKSK for the KSK or CSK) or, with next set, takes the next
// step of a KSK rollover as ContinueRollover does without force, judged
// by what the parent was last seen to publish. It re-signs the zone and
// returns what happened in words.
func (s *Store) Rollover(origin string, role dnssec.Role, next bool) (string, PutResult, error) {
	if next {
		return s.ContinueRollover(origin, role, false, nil)
	}
	origin = zone.Fqdn(origin)
	defer s.lockZone(origin)()
	old, sg, err := s.loadSigned(origin)
	if err != nil {
		return "", PutResult{}, err
	}
	keys, nk, err := dnssec.StartRollover(origin, *sg.Policy, sg.Keys, role, s.opts.Now())
	if err != nil {
		return "", PutResult{}, fmt.Errorf("zone %s: %w", origin, err)
	}
	msg := fmt.Sprintf("new ZSK %s published; it starts signing after the DNSKEY TTL and propagation delay", nk.ID())
	if nk.State == dnssec.StateDSPending {
		msg = fmt.Sprintf("new %s %s published in DNSKEY: the parent must publish its DS next to the current one (sovdns dnssec ds %s; also in CDS and CDNSKEY); "+
			"a running server asks the parent's servers and swaps the keys once every one of them has it and the DS TTL has passed", nk.Role, nk.ID(), origin)
	}
	z, err := s.nextSerial(old)
	if err != nil {
		return "", PutResult{}, err
	}
	res, err := s.resign(old, z, &signing{Policy: sg.Policy, Keys: keys, Parent: sg.Parent}, OpRollover)
	return msg, res, err
}

// ContinueRollover takes the next step of a KSK or CSK rollover at the
// operator's word (dnssec.ContinueRollover): the swap to the new key, or
// the deletion of the retired one. view is what the parent's servers
// publish now (nil: what they were last seen to publish; a view given is
// kept as the last seen). Without force, the swap is refused while a
// parent server lacks the new DS.
func (s *Store) ContinueRollover(origin string, role dnssec.Role, force bool, view *dnssec.ParentView) (string, PutResult, error) {
	origin = zone.Fqdn(origin)
	if role == dnssec.RoleZSK {
		return "", PutResult{}, fmt.Errorf("zone %s: a ZSK rollover moves on by itself as time passes: %w", origin, dnssec.ErrNoRollover)
	}
	defer s.lockZone(origin)()
	old, sg, err := s.loadSigned(origin)
	if err != nil {
		return "", PutResult{}, err
	}
	if view != nil {
		sg.Parent = view
	}
	keys, msg, err := dnssec.ContinueRollover(*sg.Policy, sg.Keys, timing(old, sg), s.opts.Now(), force)
	if err != nil {
		// What the parent publishes is worth keeping even when the step
		// is refused: sovdns dnssec status shows it.
		return "", PutResult{}, errors.Join(fmt.Errorf("zone %s: %w", origin, err), s.writeParent(origin, view))
	}
	z, err := s.nextSerial(old)
	if err != nil {
		return "", PutResult{}, err
	}
	res, err := s.resign(old, z, &signing{Policy: sg.Policy, Keys: keys, Parent: sg.Parent}, OpRollover)
	return msg, res, err
}

// loadSigned reads a signed zone and its DNSSEC state; ErrNotSigned if
// signing is off.
func (s *Store) loadSigned(origin string) (*zone.Zone, *signing, error) {
	old, err := s.load(origin)
	if err != nil {
		return nil, nil, err
	}
	sg, err := s.loadSigning(origin)
	if err != nil {
		return nil, nil, err
	}
	if sg == nil || sg.Policy == nil {
		return nil, nil, fmt.Errorf("zone %s: %w", origin, ErrNotSigned)
	}
	return old, sg, nil
}

// ParentServers returns the parent servers configured for a signed zone
// (none: found otherwise) and whether one of its rollover steps waits for
// what the parent publishes, so that the parent should be asked.
func (s *Store) ParentServers(origin string) (servers []string, wait bool, err error) {
	sg, err := s.loadSigning(zone.Fqdn(origin))
	if err != nil || sg == nil || sg.Policy == nil {
		return nil, false, err
	}
	return sg.Policy.ParentServers, dnssec.WaitsForParent(*sg.Policy, sg.Keys), nil
}

// SetParentView records what the parent's servers publish as the zone's
// DS; the next Maintain takes the rollover steps it allows.
func (s *Store) SetParentView(origin string, v dnssec.ParentView) error {
	origin = zone.Fqdn(origin)
	defer s.lockZone(origin)()
	return s.writeParent(origin, &v)
}

// writeParent stores v as the zone's last parent view (nil: nothing to
// store); the caller holds the zone's lock.
func (s *Store) writeParent(origin string, v *dnssec.ParentView) error {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		zb, err := zoneBucket(tx, origin)
		if err != nil {
			return err
		}
		db, err := zb.CreateBucketIfNotExists(bucketDNSSEC)
		if err != nil {
			return err
		}
		return db.Put(keyParent, b)
	})
}

// saveSigning stores sg as the zone's DNSSEC state without signing it
// again (a change no record shows, such as when the parent was seen to
// publish a DS); the caller holds the zone's lock.
func (s *Store) saveSigning(origin string, sg *signing) error {
	return s.update(func(tx *bolt.Tx) error { return writeSigning(tx, origin, sg) })
}

// LocalParentDS returns, when the zone's parent zone is held in this
// store, its name and the DS RRset it holds for origin, as a parent
// server's answer would give it.
func (s *Store) LocalParentDS(origin string) (string, dnssec.ParentServer, bool) {
	origin = zone.Fqdn(origin)
	for name := origin; ; {
		i, end := dns.NextLabel(name, 0)
		if end || name == "." {
			return "", dnssec.ParentServer{}, false
		}
		if name = name[i:]; name == "" {
			name = "."
		}
		p, err := s.Load(name)
		if err != nil {
			continue
		}
		srv := dnssec.ParentServer{Server: "zone " + p.Origin + " held here", TTL: min(p.SOA.Minttl, p.SOA.Hdr.Ttl)}
		key, err := zone.WireKey(origin)
		if err != nil {
			return "", dnssec.ParentServer{}, false
		}
		if n := p.Lookup(key); n != nil {
			if set := n.Get(dns.TypeDS); set != nil {
				srv.TTL = set.TTL
				for _, rr := range set.RRs() {
					if ds, ok := rr.(*dns.DS); ok {
						srv.DS = append(srv.DS, ds)
					}
				}
			}
		}
		return p.Origin, srv, true
	}
}

// maintainSlice is how many names one commit of a signature refresh
// re-signs at most: a refresh of a large zone is a series of small
// commits, between which edits of the zone go ahead.
const maintainSlice = 5000

// Maintain re-signs the zone if signatures are due for refresh or a
// rollover step's time has come, and reports whether it did. Unsigned
// zones are left alone.
//
// A refresh re-signs only the names whose signatures are due, a slice of
// them per commit (each a serial step and a journal entry of its own),
// signed before the write transaction; the zone's lock is let go
// between slices. A rollover step, which changes the key set, signs the
// zone whole.
func (s *Store) Maintain(origin string) (bool, PutResult, error) {
	origin = zone.Fqdn(origin)
	unlock := s.lockZone(origin)
	old, err := s.load(origin)
	if err != nil {
		unlock()
		return false, PutResult{}, err
	}
	sg, err := s.loadSigning(origin)
	if err != nil || sg == nil || sg.Policy == nil {
		unlock()
		return false, PutResult{}, err
	}
	now := s.opts.Now()
	if !sg.Policy.Unsigning.IsZero() {
		// Signing is being turned off: note when the parent was first
		// seen without a DS, and go unsigned once its TTL has passed.
		if p := dnssec.NoteWithdrawal(*sg.Policy, sg.Parent); p.DSGone != sg.Policy.DSGone {
			sg.Policy = &p
			if err := s.saveSigning(origin, sg); err != nil {
				unlock()
				return false, PutResult{}, fmt.Errorf("zone %s: %w", origin, err)
			}
		}
		if at := dnssec.UnsignAt(*sg.Policy, sg.Parent); !at.IsZero() && sg.Parent.NoDS() && !now.Before(at) {
			defer unlock()
			res, err := s.unsign(old, sg)
			return err == nil, res, err
		}
	}
	keys, changed := dnssec.Advance(*sg.Policy, sg.Keys, timing(old, sg), now)
	if changed && dnssec.SameSigning(keys, sg.Keys) {
		// Only what was seen of the parent changed: no record shows it.
		if err := s.saveSigning(origin, &signing{Policy: sg.Policy, Keys: keys, Parent: sg.Parent}); err != nil {
			unlock()
			return false, PutResult{}, fmt.Errorf("zone %s: %w", origin, err)
		}
		changed = false
	}
	first := dnssec.Earliest(old, now)
	if !changed && !first.IsZero() && first.Sub(now) >= sg.Policy.Refresh.D() {
		unlock()
		return false, PutResult{}, nil
	}
	if changed || first.IsZero() {
		defer unlock()
		z, err := s.nextSerial(old)
		if err != nil {
			return false, PutResult{}, err
		}
		// An algorithm rollover ends with the last key of the old one.
		p := sg.Policy.Settle(keys)
		res, err := s.resign(old, z, &signing{Policy: &p, Keys: keys, Parent: sg.Parent}, OpMaintain)
		return err == nil, res, err
	}
	due := dnssec.Due(old, now.Add(sg.Policy.Refresh.D()))
	unlock()

	res := PutResult{OldSerial: old.Serial(), OldRecords: old.Len(), Bumped: true}
	for len(due) > 0 {
		slice := due[:min(maintainSlice, len(due))]
		due = due[len(slice):]
		z, err := s.refreshSlice(origin, slice)
		if err != nil {
			return false, res, err
		}
		res.Zone, res.Serial, res.Records = z, z.Serial(), z.Len()
	}
	return true, res, nil
}

// refreshSlice re-signs the due signatures of the names with the given
// keys in one commit, and returns the new version.
func (s *Store) refreshSlice(origin string, keys []string) (*zone.Zone, error) {
	defer s.lockZone(origin)()
	old, err := s.load(origin)
	if err != nil {
		return nil, err
	}
	sg, err := s.loadSigning(origin)
	if err != nil {
		return nil, err
	}
	if sg == nil || sg.Policy == nil {
		return nil, fmt.Errorf("zone %s: %w", origin, ErrNotSigned)
	}
	soa := dns.Copy(old.SOA).(*dns.SOA)
	soa.Serial = NextSerial(old.SOA.Serial, s.opts.SerialPolicy, s.opts.Now())
	apex := []dns.RR{soa}
	for _, set := range old.Apex.RRsets {
		if set.Type != dns.TypeSOA && !dnssec.Managed(set.Type) {
			apex = append(apex, set.RRs()...)
		}
	}
	out, err := dnssec.SignEdit(dnssec.EditInput{Prev: old, Changes: map[string][]dns.RR{old.Key: apex}, Refresh: keys,
		Keys: sg.Keys, Policy: *sg.Policy, Now: s.opts.Now()})
	if errors.Is(err, dnssec.ErrSignAll) {
		z, err := withSerial(old, soa.Serial)
		if err != nil {
			return nil, err
		}
		res, err := s.resign(old, z, sg, OpMaintain)
		return res.Zone, err
	}
	if err != nil {
		return nil, fmt.Errorf("zone %s: re-sign: %w", origin, err)
	}
	s.opts.Logger.Debug("signatures refreshed", "zone", origin, "serial", out.Zone.Serial(),
		"names", len(out.Changed), "signatures_made", out.Made)
	if err := s.commitEdit(old, out.Zone, out.Changed, OpMaintain); err != nil {
		return nil, err
	}
	return out.Zone, nil
}

// KeyInfo describes one key of a zone.
type KeyInfo struct {
	ID        string       `json:"id"`
	Tag       uint16       `json:"tag"`
	Algorithm uint8        `json:"algorithm"`
	Role      dnssec.Role  `json:"role"`
	State     dnssec.State `json:"state"`
	Created   time.Time    `json:"created"`
	Changed   time.Time    `json:"changed"`
	DNSKEY    string       `json:"dnskey"`
	DS        string       `json:"ds,omitempty"` // for keys whose DS belongs in the parent
}

// DNSSECStatus is a zone's signing state.
type DNSSECStatus struct {
	Zone   string         `json:"zone"`
	Signed bool           `json:"signed"`
	Policy *dnssec.Policy `json:"policy,omitempty"`
	Keys   []KeyInfo      `json:"keys"`
	// FirstExpiry is when the earliest signature expires; Left is how long
	// that is from now, in seconds.
	FirstExpiry time.Time `json:"first_expiry,omitzero"`
	Left        int64     `json:"seconds_left"`
	// Refresh is when the maintenance of a running server next re-signs.
	Refresh time.Time `json:"next_refresh,omitzero"`
	Steps   []string  `json:"next_steps,omitempty"`
	// Rollover holds the same steps for programs (the rollover metrics),
	// with when each is due or has waited since; not in the JSON.
	Rollover []dnssec.Step `json:"-"`
	// Parent is what the parent's servers were last seen to publish as
	// the zone's DS.
	Parent *dnssec.ParentView `json:"parent,omitempty"`
	// Guard is empty when the policy satisfies the expiry guard.
	Guard string `json:"guard_violation,omitempty"`
}

// DNSSEC reports a zone's signing state.
func (s *Store) DNSSEC(origin string) (DNSSECStatus, error) {
	origin = zone.Fqdn(origin)
	z, err := s.Load(origin)
	if err != nil {
		return DNSSECStatus{}, err
	}
	sg, err := s.loadSigning(origin)
	if err != nil {
		return DNSSECStatus{}, err
	}
	st := DNSSECStatus{Zone: origin, Keys: []KeyInfo{}}
	if sg == nil {
		return st, nil
	}
	for _, k := range sg.Keys {
		ki := KeyInfo{ID: k.ID(), Tag: k.Tag(), Algorithm: k.DNSKEY.Algorithm, Role: k.Role, State: k.State,
			Created: k.Created, Changed: k.Changed, DNSKEY: k.DNSKEY.String()}
		if k.InParent() {
			ki.DS = k.DS().String()
		}
		st.Keys = append(st.Keys, ki)
	}
	if sg.Policy == nil {
		return st, nil
	}
	now := s.opts.Now()
	st.Signed, st.Policy = true, sg.Policy
	st.FirstExpiry = dnssec.Earliest(z, now)
	if !st.FirstExpiry.IsZero() {
		st.Left = int64(st.FirstExpiry.Sub(now) / time.Second)
		st.Refresh = st.FirstExpiry.Add(-sg.Policy.Refresh.D())
	}
	st.Steps = dnssec.NextSteps(*sg.Policy, sg.Keys, timing(z, sg))
	st.Rollover = dnssec.PendingSteps(*sg.Policy, sg.Keys, timing(z, sg))
	st.Parent = sg.Parent
	if err := sg.Policy.CheckZone(z.SOA, max(maxTTL(z), z.SOA.Hdr.Ttl)); err != nil {
		st.Guard = err.Error()
	}
	return st, nil
}

// Signed reports whether DNSSEC is enabled for the zone.
func (s *Store) Signed(origin string) (bool, error) {
	sg, err := s.loadSigning(zone.Fqdn(origin))
	return sg != nil && sg.Policy != nil, err
}

// DS returns the DS records the parent should hold for the zone, with the
// given digest type (dns.SHA256 or dns.SHA384) and the DNSKEY TTL.
func (s *Store) DS(origin string, digest uint8) ([]*dns.DS, error) {
	origin = zone.Fqdn(origin)
	z, err := s.Load(origin)
	if err != nil {
		return nil, err
	}
	sg, err := s.loadSigning(origin)
	if err != nil {
		return nil, err
	}
	if sg == nil || len(sg.Keys) == 0 {
		return nil, fmt.Errorf("zone %s: %w", origin, ErrNotSigned)
	}
	var out []*dns.DS
	for _, k := range sg.Keys {
		if k.InParent() {
			ds := k.DNSKEY.ToDS(digest)
			ds.Hdr.Ttl = z.SOA.Hdr.Ttl
			out = append(out, ds)
		}
	}
	return out, nil
}
