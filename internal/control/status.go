package control

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/audit"
	"github.com/sovdns/sovdns/internal/replication"
	"github.com/sovdns/sovdns/internal/trustanchor"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// RecursiveResolver is what the control API uses of the node's recursive
// resolver: its health for sovdns status and resolution for sovdns audit
// deps. *resolver.Resolver is one.
type RecursiveResolver interface {
	audit.Resolver
	Health() resolver.Health
}

var _ RecursiveResolver = (*resolver.Resolver)(nil)

// recursiveResolver returns the node's resolver, or nil when it has none
// (a nil *resolver.Resolver in the field counts as none).
func recursiveResolver(node Node) RecursiveResolver {
	if r, ok := node.Resolver.(*resolver.Resolver); ok && r == nil {
		return nil
	}
	return node.Resolver
}

// Status is the state of a node, the answer of GET /v1/status. Its JSON
// form is stable: fields are only ever added.
type Status struct {
	// Running: the status comes from the running server. Without one the
	// CLI fills in the zones from the database, and Resolver is nil.
	Running bool         `json:"server_running"`
	Time    time.Time    `json:"time"`
	Zones   []ZoneStatus `json:"zones"`
	// Resolver is nil when the node does not resolve.
	Resolver *ResolverStatus `json:"resolver"`
	// ZonesNotRead: without the server, the zones are described from the
	// summaries the database keeps, and with many zones not read (so a zone
	// that cannot be loaded is not found): how many.
	ZonesNotRead int `json:"zones_not_read,omitempty"`
	// NotifyPending is the NOTIFY backlog of the running server: the
	// notifications (one per zone and secondary) waiting or under way.
	NotifyPending *int `json:"notify_pending,omitempty"`
	// Summary is set when Zones holds only some of the zones, those that
	// need attention (GET /v1/status?attention=N, Summarise): it counts
	// them all.
	Summary *ZoneSummary `json:"zone_summary,omitempty"`
}

// ZoneSummary counts the zones of a node.
type ZoneSummary struct {
	Total int `json:"total"`
	// Expired: secondary copies past their expire time and not served;
	// Kept: past it and served still (island mode).
	Expired int `json:"expired"`
	Kept    int `json:"kept"`
	// Attention counts the zones that need attention (NeedsAttention).
	Attention int `json:"attention"`
}

// NeedsAttention reports whether an operator should look at the zone: it
// is not current (expired, kept past expiry, missing, broken), an
// editor's transaction is open on it, or its signing has a problem.
func (z ZoneStatus) NeedsAttention() bool {
	return z.State != ZoneCurrent || z.Transaction != nil || (z.DNSSEC != nil && z.DNSSEC.Problem != "")
}

// Summarise counts the zones in Summary and, when there are more than
// max, keeps in Zones only those that need attention, max at most, so
// that a view of the node stays one screen at any number of zones.
func (st *Status) Summarise(max int) {
	sum := &ZoneSummary{Total: len(st.Zones)}
	for _, z := range st.Zones {
		switch {
		case z.Kept:
			sum.Kept++
		case z.Expired:
			sum.Expired++
		}
		if z.NeedsAttention() {
			sum.Attention++
		}
	}
	st.Summary = sum
	if len(st.Zones) <= max {
		return
	}
	rows := make([]ZoneStatus, 0, min(sum.Attention, max))
	for _, z := range st.Zones {
		if len(rows) == max {
			break
		}
		if z.NeedsAttention() {
			rows = append(rows, z)
		}
	}
	st.Zones = rows
}

// ApplyConfigured adds what the configuration says of the secondary zones
// secs to st: which are mirrors, their configured expire times, and those
// of which no copy is stored yet (state missing); then sorts the zones.
func ApplyConfigured(st *Status, secs []replication.SecondaryZone, now time.Time) {
	at := make(map[string]int, len(secs))
	for i, z := range st.Zones {
		at[z.Zone] = i
	}
	for _, sec := range secs {
		i, ok := at[sec.Zone]
		if !ok {
			kind := zonestore.KindSecondary
			if sec.Mirror {
				kind = KindMirror
			}
			at[sec.Zone] = len(st.Zones)
			st.Zones = append(st.Zones, ZoneStatus{Zone: sec.Zone, Kind: kind, State: ZoneMissing,
				Error: "configured, no copy stored yet"})
			continue
		}
		z := &st.Zones[i]
		if z.Kind != zonestore.KindSecondary {
			continue // a primary of the same name: replication leaves it alone
		}
		if sec.Mirror {
			z.Kind = KindMirror
		}
		if sec.Expire != 0 {
			z.SetExpire(sec.Expire, now)
		}
	}
	SortZones(st.Zones)
}

// KindMirror is the kind of a secondary copy kept for the node's resolver
// only (replication.SecondaryZone.Mirror).
const KindMirror = "mirror"

// The states of a zone.
const (
	ZoneCurrent = "current" // a primary, or a secondary copy within its expire time
	ZoneExpired = "expired" // a secondary copy past its expire time
	// ZoneKept is a secondary copy past its expire time that the running
	// server keeps serving because it is cut off (island mode,
	// resilience.island.keep_copies).
	ZoneKept    = "kept"
	ZoneMissing = "missing" // a configured secondary of which no copy is stored yet
	ZoneBroken  = "error"   // stored but cannot be loaded
)

// ZoneStatus is one zone held, as the store has it.
type ZoneStatus struct {
	Zone    string `json:"zone"`
	Kind    string `json:"kind"` // primary, secondary or mirror (a secondary for the resolver only)
	Source  string `json:"source,omitempty"`
	Serial  uint32 `json:"serial"`
	Records int    `json:"records"`
	// Updated is when the stored zone last changed; Refreshed, for a
	// secondary, when its copy was last found current.
	Updated   time.Time `json:"updated,omitzero"`
	Refreshed time.Time `json:"refreshed,omitzero"`
	// SOAExpire is the SOA's expire timer in seconds. ExpiresAt, for a
	// secondary, is the last refresh (else the last update) plus that time
	// or the configured expire; zero when the copy never expires. Expired
	// is computed from it, as the replication does: a server cut off from
	// the outside (island mode, resilience.island.keep_copies) may keep
	// serving an expired copy.
	SOAExpire uint32    `json:"soa_expire"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Expired   bool      `json:"expired"`
	State     string    `json:"state"`
	Error     string    `json:"error,omitempty"`

	// Kept: past its expire time, and served still by the running server
	// because it is cut off (island mode); State is then ZoneKept.
	Kept bool `json:"kept,omitempty"`

	// Transaction is an editor's transaction open on the zone.
	Transaction *zonestore.TxnInfo `json:"transaction,omitempty"`

	// DNSSEC is the zone's signing state; nil when it is not signed here.
	DNSSEC *ZoneDNSSEC `json:"dnssec,omitempty"`
}

// ZoneDNSSEC is a signed zone's state in the node's status.
type ZoneDNSSEC struct {
	Policy string    `json:"policy"` // algorithm, keys and denial, in words
	Keys   []ZoneKey `json:"keys"`
	// FirstExpiry is when the earliest signature expires; NextRefresh
	// when signing maintenance re-signs it.
	FirstExpiry time.Time `json:"first_expiry,omitzero"`
	NextRefresh time.Time `json:"next_refresh,omitzero"`
	// Steps says what each rollover under way waits for.
	Steps []string `json:"next_steps,omitempty"`
	// Problem, when set, needs the operator: the expiry guard is broken,
	// or signatures are past their refresh time (maintenance is failing).
	Problem string `json:"problem,omitempty"`
}

// ZoneKey is one key of a signed zone.
type ZoneKey struct {
	ID    string       `json:"id"`
	Role  dnssec.Role  `json:"role"`
	State dnssec.State `json:"state"`
}

// zoneDNSSEC describes s for the status at now.
func zoneDNSSEC(s zonestore.DNSSECStatus, now time.Time) *ZoneDNSSEC {
	p := s.Policy
	keys := "CSK"
	if p.SplitKeys {
		keys = "KSK+ZSK"
	}
	d := &ZoneDNSSEC{Policy: fmt.Sprintf("algorithm %d, %s, %s", p.Algorithm, keys, p.Denial),
		Keys: make([]ZoneKey, 0, len(s.Keys)), FirstExpiry: s.FirstExpiry, NextRefresh: s.Refresh, Steps: s.Steps}
	for _, k := range s.Keys {
		d.Keys = append(d.Keys, ZoneKey{ID: k.ID, Role: k.Role, State: k.State})
	}
	switch {
	case s.Guard != "":
		d.Problem = s.Guard
	case !s.Refresh.IsZero() && now.After(s.Refresh.Add(2*dnssec.MaintenanceInterval)):
		d.Problem = fmt.Sprintf("signatures due for refresh since %s are not re-signed: is signing maintenance failing (sovdns_dnssec_maintenance_total{result=\"error\"})?", s.Refresh.Format(time.RFC3339))
	}
	return d
}

// SetExpire sets the copy's expire time to d after its last refresh,
// overriding the SOA's; d < 0 is a copy that never expires.
func (z *ZoneStatus) SetExpire(d time.Duration, now time.Time) {
	if z.Kind == zonestore.KindPrimary || z.State == ZoneMissing || z.State == ZoneBroken {
		return
	}
	z.ExpiresAt, z.Expired = time.Time{}, false
	if d >= 0 {
		base := z.Refreshed
		if base.IsZero() {
			base = z.Updated
		}
		z.ExpiresAt = base.Add(d)
		z.Expired = !now.Before(z.ExpiresAt)
	}
	z.State = ZoneCurrent
	switch {
	case z.Kept:
		// The server's replication found it past its expire time.
		z.Expired, z.State = true, ZoneKept
	case z.Expired:
		z.State = ZoneExpired
	}
}

// ResolverStatus is the state of the node's resolver.
type ResolverStatus struct {
	Cache CacheStatus `json:"cache"`
	// CacheFile is nil when the cache is not persisted.
	CacheFile *CacheFileStatus `json:"cache_file,omitempty"`
	Island    IslandStatus     `json:"island"`
	Upstreams []UpstreamStatus `json:"upstreams"`
	// TrustAnchors is the RFC 5011 state of each anchored zone; absent
	// when trust anchors are not kept up to date.
	TrustAnchors []trustanchor.ZoneStatus `json:"trust_anchors,omitempty"`
}

// CacheStatus is the size and use of the resolver's cache. National is
// how many of its entries are national infrastructure, held apart from
// the LRU (included in Entries).
type CacheStatus struct {
	Entries   int64  `json:"entries"`
	Bytes     int64  `json:"bytes"`
	Hits      uint64 `json:"hits"`
	Misses    uint64 `json:"misses"`
	StaleHits uint64 `json:"stale_hits"`
	National  int64  `json:"national_infra_entries"`
}

// CacheFileStatus is how far the resolver cache's file
// (resolver.persist) is behind the cache.
type CacheFileStatus struct {
	Path string `json:"path"`
	// WriteBehindSeconds is resolver.persist.write_behind; 0: off, the file
	// is saved whole every resolver.persist.interval.
	WriteBehindSeconds float64 `json:"write_behind_seconds"`
	Open               bool    `json:"open"` // write-behind: the file is open and being written
	// PendingEntries are the changed entries not yet written (write-behind
	// only), LagSeconds the age of the oldest change not yet written
	// (without write-behind: of the last save); both 0 when up to date.
	PendingEntries int       `json:"pending_entries"`
	LagSeconds     float64   `json:"lag_seconds"`
	LastWrite      time.Time `json:"last_write,omitzero"`
	Batches        uint64    `json:"batches"`
	BytesWritten   uint64    `json:"bytes_written"`
	Fsyncs         uint64    `json:"fsyncs"`
	Saves          uint64    `json:"saves"`
	Errors         uint64    `json:"errors"`
	LastError      string    `json:"last_error,omitempty"`
}

// IslandStatus is the resolver's view of the outside world.
type IslandStatus struct {
	Active          bool      `json:"active"`
	Since           time.Time `json:"since,omitzero"`
	SecondsTotal    float64   `json:"seconds_total"`
	Transitions     uint64    `json:"transitions"`
	LastProbe       time.Time `json:"last_probe,omitzero"`
	LastProbeOK     bool      `json:"last_probe_ok"`
	ForeignFailures int       `json:"foreign_failures"`
}

// UpstreamStatus is what the resolver knows of one upstream server.
type UpstreamStatus struct {
	Addr       string  `json:"addr"`
	SRTTMillis float64 `json:"srtt_ms"`
	Failing    bool    `json:"failing"`
}

// statusDNSSECMax is how many signed zones StoreStatus describes the
// signing state of; with more, none.
const statusDNSSECMax = 2000

// StoreStatus describes every zone of st at now, from the summaries the
// store keeps. The zones this process does not hold in memory are read,
// to report those that cannot be loaded with their error, when there are
// at most maxRead of them (negative: always); unread says how many were
// not.
func StoreStatus(st *zonestore.Store, now time.Time, maxRead int) (zones []ZoneStatus, unread int, err error) {
	infos, err := st.Infos()
	if err != nil {
		return nil, 0, err
	}
	for _, info := range infos {
		if !st.InMemory(info.Origin) {
			unread++
		}
	}
	read := maxRead < 0 || unread <= maxRead
	if read {
		unread = 0
	}
	names, err := st.SigningZones()
	if err != nil {
		return nil, 0, err
	}
	// Each signed zone's state is read whole (its earliest signature
	// walks it): above statusDNSSECMax signed zones the view leaves it to
	// the signing metrics and their alerts.
	signed := make(map[string]bool, len(names))
	if len(names) <= statusDNSSECMax {
		for _, n := range names {
			signed[n] = true
		}
	}
	out := make([]ZoneStatus, 0, len(infos))
	for _, info := range infos {
		zs := ZoneStatus{Zone: info.Origin, Kind: info.Kind, Source: info.Source, Serial: info.Serial, Records: info.Records,
			Updated: info.Updated, Refreshed: info.Refreshed, SOAExpire: info.SOAExpire, State: ZoneCurrent, Transaction: info.Transaction}
		if read && !st.InMemory(info.Origin) {
			if _, err := st.Load(info.Origin); errors.Is(err, zonestore.ErrNoZone) {
				continue // deleted since
			} else if err != nil {
				zs = ZoneStatus{Zone: info.Origin, Kind: info.Kind, State: ZoneBroken, Error: err.Error()}
			}
		}
		if zs.Kind == zonestore.KindSecondary && zs.State == ZoneCurrent {
			zs.SetExpire(time.Duration(zs.SOAExpire)*time.Second, now)
		}
		if zs.State == ZoneCurrent && (read || st.InMemory(info.Origin)) && signed[info.Origin] {
			if ds, err := st.DNSSEC(info.Origin); err == nil && ds.Signed {
				zs.DNSSEC = zoneDNSSEC(ds, now)
			}
		}
		out = append(out, zs)
	}
	return out, unread, nil
}

// SortZones puts zones in canonical order of their origins.
func SortZones(zs []ZoneStatus) {
	slices.SortStableFunc(zs, func(a, b ZoneStatus) int { return zone.CanonicalCompare(a.Zone, b.Zone) })
}

// resolverStatus describes the node's resolver, or returns nil when it
// has none.
func resolverStatus(node Node) *ResolverStatus {
	rec := recursiveResolver(node)
	if rec == nil && node.Cache == nil {
		return nil
	}
	rs := &ResolverStatus{Upstreams: []UpstreamStatus{}}
	if node.TrustAnchors != nil {
		rs.TrustAnchors = node.TrustAnchors()
	}
	if node.Cache != nil {
		c := node.Cache.Stats()
		rs.Cache = CacheStatus{Entries: c.Entries, Bytes: c.Bytes, Hits: c.Hits, Misses: c.Misses, StaleHits: c.StaleHits,
			National: c.National}
	}
	if node.CacheFile != nil {
		f := node.CacheFile()
		rs.CacheFile = &f
	}
	if rec != nil {
		h := rec.Health()
		rs.Island = IslandStatus{Active: h.Island, Since: h.IslandSince, SecondsTotal: h.IslandSeconds, Transitions: h.Transitions,
			LastProbe: h.LastProbe, LastProbeOK: h.LastProbeOK, ForeignFailures: h.ForeignFailures}
		for _, s := range h.Servers {
			rs.Upstreams = append(rs.Upstreams, UpstreamStatus{Addr: s.Addr.String(),
				SRTTMillis: float64(s.SRTT.Microseconds()) / 1000, Failing: s.Failing})
		}
	}
	return rs
}

// statusHandler answers GET /v1/status.
func statusHandler(node Node) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		st := Status{Running: true, Time: now.UTC(), Zones: []ZoneStatus{}, Resolver: resolverStatus(node)}
		if node.Store != nil {
			zs, _, err := StoreStatus(node.Store, now, -1)
			if err != nil {
				writeError(w, err)
				return
			}
			st.Zones = zs
		}
		if node.Replication != nil {
			ApplyConfigured(&st, node.Replication.Secondaries(), now)
			pending := node.Replication.NotifyPending()
			st.NotifyPending = &pending
			for i := range st.Zones {
				z := &st.Zones[i]
				if z.Kind == zonestore.KindSecondary && node.Replication.Kept(z.Zone) {
					z.Kept, z.Expired, z.State = true, true, ZoneKept
				}
			}
		}
		if v := r.URL.Query().Get("attention"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				writeError(w, fmt.Errorf("%w: attention=%q: want a count of zones", ErrBadRequest, v))
				return
			}
			st.Summarise(n)
		}
		writeJSON(w, st)
	}
}
