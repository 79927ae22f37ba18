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
// that a view of the node stays one screen at any number of zones. A
// negative max keeps every zone, and no summary.
func (st *Status) Summarise(max int) {
	rows := zoneRows{max: max}
	for _, z := range st.Zones {
		rows.add(z)
	}
	st.Zones, st.Summary = rows.done()
}

// zoneRows gathers the zones of a status one at a time. With max < 0 it
// keeps them all. Else it counts them all (ZoneSummary) and keeps them
// all while there are at most max, then only those that need attention,
// the first max of them in canonical order: what it holds does not grow
// with the number of zones.
type zoneRows struct {
	max  int
	rows []ZoneStatus
	sum  ZoneSummary
}

func (r *zoneRows) add(z ZoneStatus) {
	r.sum.Total++
	switch {
	case z.Kept:
		r.sum.Kept++
	case z.Expired:
		r.sum.Expired++
	}
	attention := z.NeedsAttention()
	if attention {
		r.sum.Attention++
	}
	if r.max < 0 || r.sum.Total <= r.max {
		r.rows = append(r.rows, z)
		return
	}
	if r.sum.Total == r.max+1 {
		r.rows = slices.DeleteFunc(r.rows, func(z ZoneStatus) bool { return !z.NeedsAttention() })
	}
	if !attention {
		return
	}
	r.rows = append(r.rows, z)
	if len(r.rows) >= 2*r.max+16 {
		SortZones(r.rows)
		r.rows = slices.Delete(r.rows, r.max, len(r.rows))
	}
}

// done returns the zones kept in canonical order, and their summary (nil
// when all are kept).
func (r *zoneRows) done() ([]ZoneStatus, *ZoneSummary) {
	if r.rows == nil {
		r.rows = []ZoneStatus{}
	}
	SortZones(r.rows)
	if r.max < 0 {
		return r.rows, nil
	}
	if r.sum.Total > r.max && len(r.rows) > r.max {
		r.rows = slices.Delete(r.rows, r.max, len(r.rows))
	}
	sum := r.sum
	return r.rows, &sum
}

// configured is what the configuration says of the secondary zones: which
// are mirrors, and their configured expire times, applied to the stored
// zones one at a time; and those of which no copy is stored.
type configured struct {
	list []replication.SecondaryZone
	by   map[string]int // the first index in list of each zone
	seen []bool         // by that index: a stored copy was seen, or a row made
}

// newConfigured takes the configured secondary zones; the configuration
// names each zone once (a second entry for one is taken for the first).
func newConfigured(secs []replication.SecondaryZone) *configured {
	c := &configured{list: secs, by: make(map[string]int, len(secs)), seen: make([]bool, len(secs))}
	for i, sec := range secs {
		if _, dup := c.by[sec.Zone]; !dup {
			c.by[sec.Zone] = i
		}
	}
	return c
}

// apply adds to z, a stored zone, what the configuration says of it.
func (c *configured) apply(z *ZoneStatus, now time.Time) {
	i, ok := c.by[z.Zone]
	if !ok {
		return
	}
	c.seen[i] = true
	if z.Kind != zonestore.KindSecondary {
		return // a primary of the same name: replication leaves it alone
	}
	sec := c.list[i]
	if sec.Mirror {
		z.Kind = KindMirror
	}
	if sec.Expire != 0 {
		z.SetExpire(sec.Expire, now)
	}
}

// missing calls fn with a row (state missing) for each configured
// secondary zone that apply did not see.
func (c *configured) missing(fn func(ZoneStatus)) {
	for _, sec := range c.list {
		i := c.by[sec.Zone]
		if c.seen[i] {
			continue
		}
		c.seen[i] = true
		kind := zonestore.KindSecondary
		if sec.Mirror {
			kind = KindMirror
		}
		fn(ZoneStatus{Zone: sec.Zone, Kind: kind, State: ZoneMissing, Error: "configured, no copy stored yet"})
	}
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

// statusDNSSECMax is how many signed zones FillZones describes the
// signing state of; with more, none.
const statusDNSSECMax = 2000

// ZoneQuery says how FillZones describes the zones of a node.
type ZoneQuery struct {
	Store *zonestore.Store // nil: no zone database, only configured secondaries
	// Secondaries are the configured secondary zones: which are mirrors,
	// their configured expire times, and those with no copy stored yet.
	Secondaries []replication.SecondaryZone
	// Kept holds the expired secondary copies the running server keeps
	// serving (island mode); nil: none. A set taken before the zones are
	// read: nothing that may wait on the store runs during the walk.
	Kept map[string]bool
	// MaxRead: the zones this process does not hold in memory are read,
	// to report those that cannot be loaded with their error, when there
	// are at most MaxRead of them (negative: always).
	MaxRead int
	// Attention: with a count of zones, at most, only the zones that need
	// attention are kept once there are more, and all are counted
	// (Summarise); negative: every zone is kept.
	Attention int
}

// FillZones sets st.Zones (in canonical order), st.Summary and
// st.ZonesNotRead from the summaries the store keeps and what the
// configuration says of the secondary zones, at now. The zones are taken
// one at a time: with q.Attention set, what it holds does not grow with
// the number of zones.
func FillZones(st *Status, q ZoneQuery, now time.Time) error {
	rows := zoneRows{max: q.Attention}
	cfg := newConfigured(q.Secondaries)
	add := func(z ZoneStatus) {
		if z.Kind == zonestore.KindSecondary && q.Kept[z.Zone] {
			z.Kept, z.Expired, z.State = true, true, ZoneKept
		}
		rows.add(z)
	}
	stored := func(z ZoneStatus) {
		cfg.apply(&z, now)
		add(z)
	}
	st.ZonesNotRead = 0
	if q.Store != nil {
		unread, err := eachStoreStatus(q.Store, now, q.MaxRead, stored)
		if err != nil {
			return err
		}
		st.ZonesNotRead = unread
	}
	cfg.missing(add)
	st.Zones, st.Summary = rows.done()
	return nil
}

// eachStoreStatus calls fn with the status of every zone of st at now,
// from the summaries the store keeps, in no particular order. The zones
// this process does not hold in memory are read, to report those that
// cannot be loaded with their error, when there are at most maxRead of
// them (negative: always); unread says how many were not.
func eachStoreStatus(st *zonestore.Store, now time.Time, maxRead int, fn func(ZoneStatus)) (unread int, err error) {
	names, err := st.SigningZones()
	if err != nil {
		return 0, err
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
	complete := func(zs ZoneStatus, withDNSSEC bool) ZoneStatus {
		if zs.Kind == zonestore.KindSecondary && zs.State == ZoneCurrent {
			zs.SetExpire(time.Duration(zs.SOAExpire)*time.Second, now)
		}
		if withDNSSEC && zs.State == ZoneCurrent {
			if ds, err := st.DNSSEC(zs.Zone); err == nil && ds.Signed {
				zs.DNSSEC = zoneDNSSEC(ds, now)
			}
		}
		return zs
	}
	// The zones come a batch at a time, outside the store's read, so a
	// signing state is read at once; the zones not in memory wait
	// (toRead) until it is known whether there are at most maxRead.
	var toRead []ZoneStatus
	reading := true
	err = st.EachInfoBatch(nil, zoneBatch, func(infos []zonestore.ZoneInfo) error {
		for _, info := range infos {
			zs := ZoneStatus{Zone: info.Origin, Kind: info.Kind, Source: info.Source, Serial: info.Serial, Records: info.Records,
				Updated: info.Updated, Refreshed: info.Refreshed, SOAExpire: info.SOAExpire, State: ZoneCurrent, Transaction: info.Transaction}
			if st.InMemory(info.Origin) {
				fn(complete(zs, signed[info.Origin]))
				continue
			}
			unread++
			if reading && maxRead >= 0 && unread > maxRead {
				reading = false
				for _, z := range toRead {
					fn(complete(z, false))
				}
				toRead = nil
			}
			if reading {
				toRead = append(toRead, zs)
			} else {
				fn(complete(zs, false))
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, zs := range toRead {
		if _, err := st.Load(zs.Zone); errors.Is(err, zonestore.ErrNoZone) {
			continue // deleted since
		} else if err != nil {
			zs = ZoneStatus{Zone: zs.Zone, Kind: zs.Kind, State: ZoneBroken, Error: err.Error()}
		}
		fn(complete(zs, signed[zs.Zone]))
	}
	if reading {
		unread = 0
	}
	return unread, nil
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
		q := ZoneQuery{Store: node.Store, MaxRead: -1, Attention: -1}
		if v := r.URL.Query().Get("attention"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				writeError(w, fmt.Errorf("%w: attention=%q: want a count of zones", ErrBadRequest, v))
				return
			}
			q.Attention = n
		}
		if node.Replication != nil {
			q.Secondaries, q.Kept = node.Replication.Secondaries(), node.Replication.KeptZones()
			pending := node.Replication.NotifyPending()
			st.NotifyPending = &pending
		}
		if err := FillZones(&st, q, now); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, st)
	}
}
