package cli

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/sovdns/sovdns/internal/config"
	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/internal/replication"
	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// served keeps the zones the server answers from in step with the store:
// every commit replaces its zone, and secondary zones past their SOA
// expire are left out until they are current again. Mirrors (secondary
// zones with mirror: true) go to the resolver only; every other zone both
// to clients and to the resolver.
//
// A commit that replaces a zone by its newer version costs the same
// however many zones are held: one entry of each persistent set changes,
// the old version is marked superseded (which retires its response-cache
// entries alone), and only that zone's metrics are set.
type served struct {
	srv   *server.Server
	local *server.Local
	st    *zonestore.Store
	m     *metrics.Metrics
	log   *slog.Logger

	mu      sync.Mutex
	all     *zone.Set       // every zone held and not expired
	clients *zone.Set       // all less the mirrors
	expired map[string]bool // by origin
	mirrors map[string]bool // by origin
	records int             // in all
	// seriesMax is the number of zones up to which metrics are kept per
	// zone (metrics.zone_series_max).
	seriesMax int
	// holding, when set, is called each time the number of zones held
	// changes while there are some (see raiseProcs).
	holding func()
}

func newServed(srv *server.Server, local *server.Local, st *zonestore.Store, m *metrics.Metrics, seriesMax int, log *slog.Logger) *served {
	return &served{srv: srv, local: local, st: st, m: m, log: log, all: zone.NewSet(), clients: zone.NewSet(),
		expired: map[string]bool{}, mirrors: map[string]bool{}, seriesMax: seriesMax}
}

// setSeriesMax sets the number of zones up to which metrics are kept per
// zone.
func (p *served) setSeriesMax(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seriesMax = n
	p.checkSeries()
}

// countChanged follows a change of the number of zones held; p.mu is
// held.
func (p *served) countChanged() {
	if p.holding != nil && p.all.Len() > 0 {
		p.holding()
	}
	p.checkSeries()
}

// checkSeries turns per-zone metrics off when more zones are held than
// seriesMax, and on again when no more are; p.mu is held. Counting and
// the response cache start afresh on a change, so that no query goes on
// being counted under its zone's label.
func (p *served) checkSeries() {
	on := p.all.Len() <= p.seriesMax
	if !p.m.SetPerZone(on) {
		return
	}
	p.srv.ResetCounters()
	if on {
		p.all.Each(func(z *zone.Zone) bool {
			p.zoneMetrics(z)
			return true
		})
		p.log.Info("metrics per zone on", "zones", p.all.Len(), "zone_series_max", p.seriesMax)
		return
	}
	p.log.Info("metrics per zone off: more zones than metrics.zone_series_max; series labelled zone=\"all\" count every zone",
		"zones", p.all.Len(), "zone_series_max", p.seriesMax)
}

// setMirrors says which zones are mirrors, from the configuration.
func (p *served) setMirrors(secs []replication.SecondaryZone) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mirrors = map[string]bool{}
	for _, s := range secs {
		if s.Mirror {
			p.mirrors[s.Zone] = true
		}
	}
	p.publishAll(p.all)
}

// replace serves exactly zs (less the expired ones).
func (p *served) replace(zs []*zone.Zone) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := make([]*zone.Zone, 0, len(zs))
	for _, z := range zs {
		if !p.expired[z.Origin] {
			keep = append(keep, z)
		}
	}
	p.publishAll(zone.NewSet(keep...))
}

// committed is the store's commit hook: z is the zone's new contents, nil
// when it was deleted. It runs under the store's lock.
func (p *served) committed(origin string, z *zone.Zone) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if z == nil {
		delete(p.expired, origin)
		p.remove(origin)
		return
	}
	// A new copy of an expired secondary zone is current: served again.
	if p.expired[origin] {
		delete(p.expired, origin)
		if p.m.PerZone() {
			p.m.ZoneExpired.DeleteLabelValues(origin)
		}
	}
	p.put(z)
}

// expire stops serving a secondary zone (serve false) or serves it again
// from the store (serve true).
func (p *served) expire(origin string, serve bool) {
	var z *zone.Zone
	if serve {
		var err error
		if z, err = p.st.Load(origin); err != nil {
			p.log.Error("secondary zone cannot be served again", "zone", origin, "err", err)
			return
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if serve {
		delete(p.expired, origin)
		if p.m.PerZone() {
			p.m.ZoneExpired.WithLabelValues(origin).Set(0)
		}
		p.put(z)
		return
	}
	p.expired[origin] = true
	if p.m.PerZone() {
		p.m.ZoneExpired.WithLabelValues(origin).Set(1)
	}
	p.remove(origin)
}

// put serves z in place of any version of its zone; p.mu is held.
func (p *served) put(z *zone.Zone) {
	old := p.all.Get(z.Key)
	if old == z {
		return
	}
	p.all = p.all.With(z)
	p.records += z.Len()
	if old != nil {
		p.records -= old.Len()
	}
	p.m.RecordsLoaded.Set(float64(p.records))
	mirror := p.mirrors[z.Origin]
	if !mirror {
		p.clients = p.clients.With(z)
	}
	if old != nil {
		// The same zones in a newer version: the response cache stays, and
		// the old version's entries retire with it.
		if !mirror {
			p.srv.UpdateZones(p.clients)
		}
		p.local.SetZones(p.all)
		old.Supersede()
	} else {
		// A zone more: the answers of the zones above it (and those that
		// drew on names no zone held) retire; the rest of the cache stays.
		if !mirror {
			p.srv.ChangeZones(p.clients, z.Key)
		}
		p.local.SetZones(p.all)
		p.m.ZonesLoaded.Set(float64(p.all.Len()))
		p.countChanged()
	}
	p.zoneMetrics(z)
}

// remove stops serving the zone at origin; p.mu is held.
func (p *served) remove(origin string) {
	key, err := zone.WireKey(origin)
	if err != nil {
		return
	}
	old := p.all.Get(key)
	if old == nil {
		return
	}
	p.all = p.all.Without(key)
	p.clients = p.clients.Without(key)
	p.records -= old.Len()
	p.srv.ChangeZones(p.clients, key)
	p.local.SetZones(p.all)
	old.Supersede()
	p.m.ZonesLoaded.Set(float64(p.all.Len()))
	p.m.RecordsLoaded.Set(float64(p.records))
	if p.m.PerZone() {
		p.m.ZoneRecords.DeleteLabelValues(origin)
		p.m.ZoneSerial.DeleteLabelValues(origin)
	}
	p.countChanged()
}

// zoneMetrics sets z's own series, if series are kept per zone.
func (p *served) zoneMetrics(z *zone.Zone) {
	if !p.m.PerZone() {
		return
	}
	p.m.ZoneRecords.WithLabelValues(z.Origin).Set(float64(z.Len()))
	p.m.ZoneSerial.WithLabelValues(z.Origin).Set(float64(z.Serial()))
}

// publishAll serves set, less the mirrors, to clients and all of it to
// the resolver, and sets every zone's metrics again; p.mu is held. It
// is for reloads and configuration changes, not for commits.
func (p *served) publishAll(set *zone.Set) {
	prev := p.all
	p.all = set
	p.clients = set
	for origin := range p.mirrors {
		if key, err := zone.WireKey(origin); err == nil {
			p.clients = p.clients.Without(key)
		}
	}
	p.srv.SetZones(p.clients)
	p.local.SetZones(set)
	prev.Each(func(z *zone.Zone) bool {
		if set.Get(z.Key) != z {
			z.Supersede()
		}
		return true
	})
	p.m.ZonesLoaded.Set(float64(set.Len()))
	p.records = 0
	set.Each(func(z *zone.Zone) bool {
		p.records += z.Len()
		return true
	})
	p.m.RecordsLoaded.Set(float64(p.records))
	p.m.ZoneRecords.Reset()
	p.m.ZoneSerial.Reset()
	p.countChanged()
	set.Each(func(z *zone.Zone) bool {
		p.zoneMetrics(z)
		return true
	})
}

// reloader applies a new configuration to a running node (SIGHUP, sovdns
// reload) without closing its listeners: TSIG keys, access lists, NOTIFY
// targets and secondary zones change at once, and every zone is read
// again from the store. Settings bound at start (listeners, data_dir,
// metrics and control addresses, the resolver) are reported as needing a
// restart and left as they are.
type reloader struct {
	load   func() (config.Config, error)
	st     *zonestore.Store
	srv    *server.Server
	repl   *replication.Node
	served *served
	m      *metrics.Metrics
	log    *slog.Logger
	cert   *server.Certificate // of the DoT and DoH listeners; nil without them

	mu  sync.Mutex
	cur config.Config
}

// Reload re-reads the configuration and the zones and says what it did.
// An invalid configuration changes nothing.
func (r *reloader) Reload() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.load()
	if err != nil {
		r.m.ConfigReloads.WithLabelValues("invalid_config").Inc()
		return "", fmt.Errorf("configuration not reloaded, nothing changed: %w", err)
	}
	zs, errs, err := r.st.Reread()
	if err != nil {
		r.m.ConfigReloads.WithLabelValues("store_error").Inc()
		return "", fmt.Errorf("zones not reloaded, nothing changed: %w", err)
	}
	r.srv.SetKeys(c.Repl.Keys)
	r.repl.Reconfigure(c.Repl.Config())
	r.served.setMirrors(c.Repl.Secondaries)
	r.served.setSeriesMax(c.Metrics.ZoneSeriesMax)
	r.served.replace(zs)
	for _, e := range errs {
		r.m.StoreErrors.WithLabelValues("load").Inc()
		r.log.Error("zone not served: it cannot be loaded", "err", e)
	}
	restart := restartNeeded(r.cur, c)
	r.cur = c
	r.m.ConfigReloads.WithLabelValues("ok").Inc()
	msg := fmt.Sprintf("reloaded: %d zones served, %d TSIG keys, %d secondary zones configured", len(zs), len(c.Repl.Keys), len(c.Repl.Secondaries))
	if len(errs) > 0 {
		msg += fmt.Sprintf("; %d zones could not be loaded (see the server log)", len(errs))
	}
	if note := reloadCertificate(r.cert, c, r.log); note != "" {
		msg += "; " + note
	}
	if len(restart) > 0 {
		msg += "; changed but applied only at the next start: " + strings.Join(restart, ", ")
	}
	r.log.Info("configuration reloaded", "zones", len(zs), "restart_needed", strings.Join(restart, ","))
	return msg, nil
}

// restartNeeded lists the settings that differ between a and b and are
// bound when the server starts.
func restartNeeded(a, b config.Config) []string {
	var out []string
	diff := func(name string, same bool) {
		if !same {
			out = append(out, name)
		}
	}
	diff("listen", slices.Equal(a.ListenAddrs, b.ListenAddrs))
	diff("listen_tls", slices.Equal(a.TLSAddrs, b.TLSAddrs))
	diff("listen_https", slices.Equal(a.HTTPSAddrs, b.HTTPSAddrs))
	diff("data_dir", a.DataDir == b.DataDir)
	diff("metrics.listen", a.Metrics.Listen == b.Metrics.Listen)
	diff("control", a.Control.Listen == b.Control.Listen && fmt.Sprint(a.ControlTokens) == fmt.Sprint(b.ControlTokens))
	diff("udp_sockets", a.UDPSockets == b.UDPSockets && a.UDPBatch == b.UDPBatch)
	diff("tcp", a.TCP == b.TCP)
	diff("edns_udp_size", a.EDNSUDPSize == b.EDNSUDPSize)
	diff("response_cache_mb", a.ResponseCacheMB == b.ResponseCacheMB)
	diff("rate_limit", fmt.Sprintf("%+v", a.RateLimit) == fmt.Sprintf("%+v", b.RateLimit))
	diff("identity", a.Identity == b.Identity)
	diff("log", a.Log == b.Log)
	diff("serial_policy", a.SerialPolicy == b.SerialPolicy)
	diff("journal", a.Journal == b.Journal)
	diff("resolver", fmt.Sprintf("%+v", a.Resolver) == fmt.Sprintf("%+v", b.Resolver))
	diff("resilience", fmt.Sprintf("%+v", a.Resilience) == fmt.Sprintf("%+v", b.Resilience))
	diff("dnstap", a.Dnstap == b.Dnstap)
	return out
}
