// Package trustanchor keeps a validating resolver's trust anchors up to
// date (RFC 5011): for each zone with a configured anchor (the root's
// built-in ones included) it asks the zone's DNSKEY RRset now and then,
// authenticated by the anchors in force, trusts a new key-signing key
// once it has been seen for the add hold-down time (30 days), and stops
// trusting a key that revokes itself. The state lives in a bbolt file, so
// a restart neither forgets a key on its way in nor trusts a revoked one
// again.
package trustanchor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/sovdns/sovdns/dnssec"
)

// FileName is the state file's name in the data directory.
const FileName = "trust-anchors.db"

var bucketZones = []byte("zones")

// Fetch returns the zone's DNSKEY RRset with its signatures and TTL, and
// an error unless the resolver authenticated it with the anchors in force.
type Fetch func(ctx context.Context, zone string) (rrs []dns.RR, sigs []*dns.RRSIG, ttl time.Duration, err error)

// Config is what a Manager works with.
type Config struct {
	// Configured are the configured trust anchors, DS or DNSKEY records.
	Configured []dns.RR
	Fetch      Fetch
	// Apply puts the anchors in force in the resolver.
	Apply func([]dns.RR) error
	// Path is the state file (FileName in the data directory).
	Path string
	Now  func() time.Time // nil: time.Now
	Log  *slog.Logger     // nil: discarded
	// FirstRefresh is how long after Run starts the zones are first
	// asked: by then the resolver has usually fetched and cached the keys
	// while validating, so the first refresh costs no query. Zero:
	// DefaultFirstRefresh.
	FirstRefresh time.Duration
}

// DefaultFirstRefresh is Config.FirstRefresh's default.
const DefaultFirstRefresh = 10 * time.Minute

// Manager runs RFC 5011 for every anchored zone.
type Manager struct {
	cfg Config
	db  *bolt.DB

	mu    sync.Mutex
	zones map[string]*dnssec.ManagedZone
	next  map[string]time.Time // when each zone is asked next
}

// retryInterval is how soon a zone whose refresh failed is asked again.
const retryInterval = time.Hour

// Open reads the state file (made if missing) and puts the anchors it
// leads to in force.
func Open(cfg Config) (*Manager, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	db, err := bolt.Open(cfg.Path, 0o640, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("trust anchor state %s: %w", cfg.Path, err)
	}
	m := &Manager{cfg: cfg, db: db, zones: make(map[string]*dnssec.ManagedZone), next: make(map[string]time.Time)}
	for _, rr := range cfg.Configured {
		z := dns.CanonicalName(rr.Header().Name)
		if m.zones[z] == nil {
			m.zones[z] = &dnssec.ManagedZone{Zone: z}
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketZones)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			z := m.zones[string(k)]
			if z == nil {
				return nil // no anchor configured for it any more
			}
			if err := json.Unmarshal(v, z); err != nil {
				return fmt.Errorf("zone %s: %w", k, err)
			}
			return z.Decode()
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("trust anchor state %s: %w", cfg.Path, err)
	}
	if err := cfg.Apply(m.anchors()); err != nil {
		db.Close()
		return nil, fmt.Errorf("trust anchors: %w", err)
	}
	return m, nil
}

// Close closes the state file.
func (m *Manager) Close() error { return m.db.Close() }

// anchors returns the anchors in force for every zone.
func (m *Manager) anchors() []dns.RR {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []dns.RR
	for _, name := range m.zoneNames() {
		out = append(out, m.zones[name].Anchors(m.configuredFor(name))...)
	}
	return out
}

func (m *Manager) zoneNames() []string {
	names := make([]string, 0, len(m.zones))
	for n := range m.zones {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (m *Manager) configuredFor(zone string) []dns.RR {
	var out []dns.RR
	for _, rr := range m.cfg.Configured {
		if dns.CanonicalName(rr.Header().Name) == zone {
			out = append(out, rr)
		}
	}
	return out
}

// Refresh asks every zone that is due (all of them with force) for its
// DNSKEY RRset and applies what it finds; it returns the first error.
func (m *Manager) Refresh(ctx context.Context, force bool) error {
	now := m.cfg.Now()
	var errs []error
	changed := false
	m.mu.Lock()
	names := m.zoneNames()
	m.mu.Unlock()
	for _, name := range names {
		m.mu.Lock()
		due := force || !now.Before(m.next[name])
		m.mu.Unlock()
		if !due {
			continue
		}
		rrs, sigs, ttl, err := m.cfg.Fetch(ctx, name)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.mu.Lock()
		z := m.zones[name]
		if err != nil {
			z.LastError = err.Error()
			m.next[name] = now.Add(retryInterval)
			errs = append(errs, fmt.Errorf("zone %s: %w", name, err))
		} else {
			if z.Update(m.configuredFor(name), rrs, sigs, ttl, now) {
				changed = true
				m.cfg.Log.Info("trust anchors changed (RFC 5011)", "zone", name, "keys", describe(z))
			}
			m.next[name] = now.Add(dnssec.RefreshInterval(ttl, sigs, now))
		}
		b, merr := json.Marshal(z)
		m.mu.Unlock()
		if merr == nil {
			merr = m.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketZones).Put([]byte(name), b) })
		}
		if merr != nil {
			errs = append(errs, fmt.Errorf("zone %s: save: %w", name, merr))
		}
	}
	if changed {
		if err := m.cfg.Apply(m.anchors()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkEvery is how often Run looks for zones due.
const checkEvery = time.Minute

// Run refreshes the zones as they come due, from Config.FirstRefresh
// on, until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	first := m.cfg.FirstRefresh
	if first <= 0 {
		first = DefaultFirstRefresh
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(first):
	}
	t := time.NewTicker(checkEvery)
	defer t.Stop()
	for {
		if err := m.Refresh(ctx, false); err != nil && ctx.Err() == nil {
			m.cfg.Log.Warn("trust anchor refresh (RFC 5011) failed; the anchors in force stay", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func describe(z *dnssec.ManagedZone) string {
	var parts []string
	for _, k := range z.Keys {
		parts = append(parts, k.ID()+" "+string(k.State))
	}
	return fmt.Sprint(parts)
}

// KeyStatus is one managed key.
type KeyStatus struct {
	ID      string             `json:"id"` // algorithm-tag, without the REVOKE bit
	State   dnssec.AnchorState `json:"state"`
	Since   time.Time          `json:"since"`
	TrustAt time.Time          `json:"trusted_at,omitzero"` // for a key in its hold-down
}

// ZoneStatus is one anchored zone's RFC 5011 state.
type ZoneStatus struct {
	Zone        string      `json:"zone"`
	Keys        []KeyStatus `json:"keys"`
	LastRefresh time.Time   `json:"last_refresh,omitzero"`
	NextRefresh time.Time   `json:"next_refresh,omitzero"`
	LastError   string      `json:"last_error,omitempty"`
}

// Status describes every anchored zone.
func (m *Manager) Status() []ZoneStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ZoneStatus
	for _, name := range m.zoneNames() {
		z := m.zones[name]
		zs := ZoneStatus{Zone: name, Keys: []KeyStatus{}, LastRefresh: z.LastRefresh, NextRefresh: m.next[name], LastError: z.LastError}
		for _, k := range z.Keys {
			ks := KeyStatus{ID: k.ID(), State: k.State, Since: k.Changed}
			if k.State == dnssec.AnchorAddPend {
				ks.TrustAt = k.FirstSeen.Add(dnssec.AnchorHoldDown)
			}
			zs.Keys = append(zs.Keys, ks)
		}
		out = append(out, zs)
	}
	return out
}
