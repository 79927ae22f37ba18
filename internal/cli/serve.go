package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/sovdns/sovdns/configs"
	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/audit"
	"github.com/sovdns/sovdns/internal/cachedb"
	"github.com/sovdns/sovdns/internal/clock"
	"github.com/sovdns/sovdns/internal/config"
	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/internal/dnstap"
	"github.com/sovdns/sovdns/internal/hugepage"
	"github.com/sovdns/sovdns/internal/memlimit"
	"github.com/sovdns/sovdns/internal/metrics"
	"github.com/sovdns/sovdns/internal/parentds"
	"github.com/sovdns/sovdns/internal/procs"
	"github.com/sovdns/sovdns/internal/progress"
	"github.com/sovdns/sovdns/internal/replication"
	"github.com/sovdns/sovdns/internal/server"
	"github.com/sovdns/sovdns/internal/trustanchor"
	"github.com/sovdns/sovdns/resolver"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

func newServeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the DNS server",
		Long: `Run the DNS server on the configured addresses, answering the zones in the
zone database. Without a configuration file it listens on 127.0.0.1:5300,
serves metrics on 127.0.0.1:9353, keeps its database in ./sovdns-data and
loads the demo zone gov.az into an empty database.

The load of the resolver cache's file at start shows its progress on
standard error (a bar on a terminal, else a log line every 5 seconds),
and the signing of a whole zone is logged likewise; --quiet turns both
off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return serve(ctx, c, func() (config.Config, error) { return g.load(cmd) }, g.logger(c), g.progress(c))
		},
	}
	f := cmd.Flags()
	f.StringSlice("listen", nil, "DNS listen addresses, IP:port (listen)")
	f.String("metrics-listen", "", "Prometheus listen address, IP:port; empty string disables (metrics.listen)")
	f.String("log-level", "", "debug, info, warn or error (log.level)")
	f.String("log-format", "", "text or json (log.format)")
	f.Bool("demo-zone", true, "load the demo zone into an empty database (demo_zone)")
	f.String("serial-policy", "", "increment or date (serial_policy)")
	return cmd
}

// serve runs the node until ctx ends. reload reads the configuration
// again, for SIGHUP and sovdns reload. prog shows the progress of the
// resolver cache's load at start; later work (the signing of a whole
// zone) is only logged.
func serve(ctx context.Context, c config.Config, reload func() (config.Config, error), log *slog.Logger, prog *progress.Progress) error {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.BuildInfo.WithLabelValues(version(), runtime.Version()).Set(1)
	cpus := runtime.GOMAXPROCS(0) // the CPUs the runtime found for us
	owner := procs.New(procs.Go{}, os.Getenv("GOMAXPROCS"))

	st, err := zonestore.Open(c.DBPath(), zonestore.Options{SerialPolicy: c.Serial, Logger: log,
		JournalMaxBytes: c.Journal.MaxSizeMB << 20, JournalMaxAge: c.Journal.MaxAge, Progress: prog.Logging()})
	if errors.Is(err, zonestore.ErrLocked) {
		return fmt.Errorf("the zone database %s is held by another process: is another sovdns server running on this data directory?", c.DBPath())
	}
	if err != nil {
		return err
	}
	defer st.Close()

	if err := seedDemo(st, c, log); err != nil {
		return err
	}
	// A zone that cannot be loaded is left out, loudly; the others are served.
	zs, errs, err := st.Reread()
	if err != nil {
		m.StoreErrors.WithLabelValues("load").Inc()
		return fmt.Errorf("load zones: %w", err)
	}
	for _, err := range errs {
		m.StoreErrors.WithLabelValues("load").Inc()
		log.Error("zone not served: it cannot be loaded", "err", err)
	}

	tap, err := openDnstap(c, reg, log)
	if err != nil {
		return err
	}
	defer tap.Close() // after the listeners and the resolver have stopped

	local := server.NewLocal()
	var persistNow func(string) // island mode entered, national infrastructure changed: the cache file is written at once
	trigger := cachedb.NewTrigger()
	if c.Resolver.Persist.Enabled {
		persistNow = trigger.Pull
	}
	rec, cache, err := newResolver(c, log, reg, local, persistNow, tap)
	if err != nil {
		return err
	}
	var recursor server.Recursor
	var cacheFile *cachedb.Writer
	var anchors *trustanchor.Manager
	if rec != nil {
		recursor = rec
		d := c.Resolver.DNSSEC
		if d.Validation && d.TrustAnchorUpdates && len(d.Anchors) > 0 {
			// Before the first question: the anchors a past run learnt
			// (or revoked) are in force from the start.
			if anchors, err = trustanchor.Open(trustanchor.Config{Configured: d.Anchors, Fetch: authenticatedKeys(rec),
				Apply: rec.SetTrustAnchors, Path: filepath.Join(c.DataDir, trustanchor.FileName), Now: rec.Now, Log: log}); err != nil {
				return err
			}
			defer anchors.Close()
		}
		if c.Resolver.Persist.Enabled {
			m := cachedb.NewMetrics(reg)
			loadCache(c, cache, rec, m, log, prog)
			// Before the first question: from here on every change to
			// the cache is recorded for the file.
			cacheFile = cachedb.NewWriter(cachePath(c), cache, rec, cachedb.WriterConfig{
				WriteBehind: c.Resolver.Persist.WriteBehind, Interval: c.Resolver.Persist.Interval,
				Trigger: trigger, Lend: owner.Lend, Log: log, Metrics: m})
		}
	}
	if cache != nil {
		cache.IndexDenials() // aggressive NSEC from the negative answers restored
	}
	cert, err := loadCertificate(c, log)
	if err != nil {
		return err
	}
	srv := server.New(server.Config{
		Listen:            c.ListenAddrs,
		ListenTLS:         c.TLSAddrs,
		ListenHTTPS:       c.HTTPSAddrs,
		Certificate:       cert,
		Tap:               tap,
		UDPSockets:        cmp.Or(c.UDPSockets, cpus), // one per CPU, not per processor
		UDPUnbatched:      !c.UDPBatch,
		EDNSSize:          uint16(c.EDNSUDPSize),
		TCPIdleTimeout:    c.TCP.IdleTimeout,
		TCPMaxConnections: c.TCP.MaxConnections,
		TCPMaxPerClient:   c.TCP.MaxPerClient,
		ResponseCache:     memlimit.Entries(int64(c.ResponseCacheMB) << 20),
		NSID:              c.Identity.NSID,
		Version:           c.Identity.Version,
		Identity:          c.Identity.ID,
		CookieSecret:      c.CookieSecret,
		Resolver:          recursor,
		RecursionAllow:    c.Resolver.AllowPrefixes,
		MaxInFlight:       c.Resolver.MaxInFlight,
		ClientRateLimit:   c.Resolver.ClientRateLimit,
		RRL: server.RRLConfig{
			ResponsesPerSecond: c.RateLimit.ResponsesPerSecond,
			ErrorsPerSecond:    c.RateLimit.ErrorsPerSecond,
			Slip:               c.RateLimit.Slip,
			IPv4Prefix:         c.RateLimit.IPv4Prefix,
			IPv6Prefix:         c.RateLimit.IPv6Prefix,
			Exempt:             c.RateLimit.ExemptPrefixes,
			LogOnly:            c.RateLimit.LogOnly,
			TableSize:          c.RateLimit.TableSize,
		},
		// Under systemd (Type=notify) the node is ready once every DNS
		// listener is bound: the zones are loaded and the metrics
		// listener bound before Run starts.
		Started: func() { sdNotify(log, daemon.SdNotifyReady) },
	}, log, m)
	srv.SetKeys(c.Repl.Keys)
	zones := newServed(srv, local, st, m, c.Metrics.ZoneSeriesMax, log)
	if n := procsFloor(cpus, os.Getenv("GOMAXPROCS")); n > 0 {
		zones.holding = func() {
			if owner.Raise(n) {
				log.Debug("scheduler processors raised: zones are held", "gomaxprocs", n)
			}
		}
	}
	zones.setMirrors(c.Repl.Secondaries)
	repl := replication.New(st, c.Repl.Config(), local.Zones, log, m)
	repl.OnExpire(zones.expire)
	if rec != nil && c.Resilience.Island.KeepCopies {
		repl.HoldExpiry(rec.Island)
	}
	srv.SetOps(repl)
	zones.replace(zs)
	// Every commit to the store replaces that zone in the served set and
	// may be notified to secondaries.
	signerM := newSignerMetrics(reg, m)
	st.Subscribe(func(origin string, z *zone.Zone) {
		zones.committed(origin, z)
		repl.Committed(origin, z)
		signerM.committed(origin, z)
	})
	rl := &reloader{load: reload, st: st, srv: srv, repl: repl, served: zones, m: m, log: log, cur: c, cert: cert}
	// KSK and CSK rollovers and unsigning ask the zones' parents.
	parent := parentChecker(st, rec, uint16(c.Resolver.UpstreamPort))
	logLoaded(log, zs)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	if c.Metrics.Listen != "" {
		ln, err := net.Listen("tcp", c.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("metrics.listen %s: %w", c.Metrics.Listen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		if c.Metrics.Pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
			log.Warn("Go profiler on the metrics listener (metrics.pprof): keep the address private", "addr", c.Metrics.Listen)
		}
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics server: %w", err)
			}
		}()
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer scancel()
			_ = hs.Shutdown(sctx)
		}()
		log.Info("metrics listening", "addr", ln.Addr().String())
	}
	// SIGHUP is caught before the first query is answered: a signal that
	// comes once the server answers never ends it (the reload itself is
	// started below).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() { errc <- srv.Run(ctx) }()
	var bg sync.WaitGroup
	defer func() { cancel(); bg.Wait() }() // before the store closes
	bg.Add(3)
	go func() {
		defer bg.Done()
		maintainSigning(ctx, st, parent, signerM, dnssec.MaintenanceInterval, log)
	}()
	go func() { defer bg.Done(); signerM.watchCommits(ctx, st) }()
	go func() { defer bg.Done(); repl.Run(ctx) }()
	if rec != nil {
		bg.Add(1)
		go func() { defer bg.Done(); rec.Run(ctx) }()
	}
	if anchors != nil {
		bg.Add(1)
		go func() { defer bg.Done(); anchors.Run(ctx) }()
	}
	// The heap settles near what the caches are configured to cost, not
	// at twice it (see memlimit; their entries hold memlimit.Entries of
	// it).
	limits := &memlimit.Keeper{Budget: int64(c.ResponseCacheMB) << 20, Cached: srv.ResponseCacheBytes, Log: log}
	if rec != nil {
		limits.Budget += int64(c.Resolver.CacheMB) << 20
		limits.Cached = func() int64 { return srv.ResponseCacheBytes() + cache.Stats().Bytes }
		// A resolver starts with its caches empty and every question a
		// miss, when collecting is costliest: it starts with the room.
		limits.Share = 1
		// Its cache is spread over the heap: huge pages while it is
		// busy and its heap does not grow, unless the operator turned
		// them off (huge_pages, or for the heap as the runtime knows it:
		// GODEBUG=disablethp=1) or keeps the memory limit (GOMEMLIMIT:
		// the keeper does not run).
		if c.Resolver.HugePages && !hugepage.Off(os.Getenv("GODEBUG")) && !memlimit.Operator() {
			limits.HugePages = &hugepage.Advisor{}
		}
	}
	bg.Add(1)
	go func() { defer bg.Done(); limits.Run(ctx) }()
	// The pages the heap grows into are faulted in here, a chunk at a
	// time, before the listeners first write to them.
	bg.Add(1)
	go func() { defer bg.Done(); new(hugepage.Prefaulter).Run(ctx, log) }()
	if cacheFile != nil {
		// Writes the cache's changes every write_behind (or the whole
		// file every interval), and what is left as the server stops.
		bg.Add(1)
		go func() {
			defer bg.Done()
			cacheFile.Run(ctx)
		}()
	}
	if c.Resilience.AuditInterval > 0 {
		// The foreign-dependency audit of the national zones held.
		am := audit.NewMetrics(reg)
		bg.Add(1)
		go func() {
			defer bg.Done()
			audit.Run(ctx, c.Resilience.AuditInterval, func() []*zone.Zone { return local.Zones().Zones() },
				c.Resilience.National, audit.ResolverOf(rec), am, log)
		}()
	}
	node := controlNode(rec, cache, cacheFile, st, repl, rl.Reload)
	node.Parent = parent
	if anchors != nil {
		node.TrustAnchors = anchors.Status
	}
	api := countRequests(m.ControlReqs, control.Handler(node))
	bg.Add(2) // control requests finish before the store closes
	go func() {
		defer bg.Done()
		// The control socket is an aid: without it DNS is still served.
		if err := control.Serve(ctx, filepath.Join(c.DataDir, control.SocketName), api, log); err != nil {
			log.Error("control socket unavailable: sovdns commands cannot reach this server", "err", err)
		}
	}()
	go func() {
		defer bg.Done()
		if err := control.ServeTCP(ctx, c.Control.Listen, c.ControlTokens, api, log); err != nil {
			log.Error("control API on TCP unavailable", "addr", c.Control.Listen, "err", err)
		}
	}()
	// SIGHUP reloads the configuration and the zones; the listeners stay.
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				sdNotify(log, sdReloading())
				if msg, err := rl.Reload(); err != nil {
					log.Error("SIGHUP: reload failed", "err", err)
				} else {
					log.Info("SIGHUP: " + msg)
				}
				sdNotify(log, daemon.SdNotifyReady) // also after a failure: the node goes on serving
			}
		}
	}()
	signalled, err := awaitEnd(ctx, errc)
	if signalled {
		log.Info("shutting down")
		sdNotify(log, daemon.SdNotifyStopping)
	}
	cancel()
	return err
}

// awaitEnd waits until the server fails or ctx is done (a signal), and
// then for the listeners' return. signalled reports a shutdown asked for:
// a signal also ends the listeners, and their return may be seen first.
func awaitEnd(ctx context.Context, errc <-chan error) (signalled bool, err error) {
	select {
	case err = <-errc:
		return ctx.Err() != nil, err
	case <-ctx.Done():
		return true, <-errc
	}
}

// manyZonesLogged is the number of zones up to which each zone loaded at
// start has a line of its own at level info; above it they are at debug,
// and one line sums them up.
const manyZonesLogged = 20

// logLoaded logs the zones loaded at start.
func logLoaded(log *slog.Logger, zs []*zone.Zone) {
	level, records := slog.LevelInfo, 0
	if len(zs) > manyZonesLogged {
		level = slog.LevelDebug
	}
	for _, z := range zs {
		records += z.Len()
		log.Log(context.Background(), level, "zone loaded", "zone", z.Origin, "serial", z.Serial(), "records", z.Len())
	}
	log.Info("zones loaded", "zones", len(zs), "records", records)
}

// cachePath is the resolver cache's file.
func cachePath(c config.Config) string { return filepath.Join(c.DataDir, "resolver-cache.db") }

// loadCache fills the resolver cache from its file. A damaged file is set
// aside and the node starts with an empty cache.
func loadCache(c config.Config, cache *resolver.Cache, rec *resolver.Resolver, m *cachedb.Metrics, log *slog.Logger, prog *progress.Progress) {
	path := cachePath(c)
	st, err := cachedb.LoadProgress(path, cache, rec, prog)
	m.ObserveLoad(st, err)
	if err != nil {
		bad := path + ".bad"
		damaged := errors.Is(err, cachedb.ErrCorrupt) || errors.Is(err, cachedb.ErrBadVersion)
		if damaged && os.Rename(path, bad) == nil {
			log.Warn("resolver cache file unusable: starting with an empty cache; the file is kept as "+bad, "file", path, "err", err)
		} else {
			log.Warn("resolver cache file unusable: starting with an empty cache", "file", path, "err", err)
		}
		return
	}
	if st.Island {
		rec.RestoreIsland()
	}
	if st.Entries > 0 || st.Bad > 0 {
		log.Info("resolver cache loaded", "file", path, "entries", st.Entries, "stale", st.Stale,
			"dropped", st.Dropped, "bad", st.Bad, "servers", st.Servers, "saved_at", st.SavedAt, "format", st.Version)
	}
}

// seedDemo imports the demo zone into a database that holds no zone yet.
func seedDemo(st *zonestore.Store, c config.Config, log *slog.Logger) error {
	if !c.DemoZone {
		return nil
	}
	names, err := st.List()
	if err != nil || len(names) > 0 {
		return err
	}
	p, err := zonestore.Parse(bytes.NewReader(configs.DemoZone), configs.DemoOrigin, "configs/demo/gov.az.zone", nil)
	if err != nil {
		return fmt.Errorf("demo zone: %w", err)
	}
	z, err := p.Build()
	if err != nil {
		return fmt.Errorf("demo zone: %w", err)
	}
	if _, err := st.Import(z, false); err != nil {
		return fmt.Errorf("demo zone: %w", err)
	}
	log.Warn("loaded the demo zone into an empty database: its data is made up; "+
		"set demo_zone: false on a real server and delete it with sovdns zone delete", "zone", z.Origin)
	return nil
}

// newResolver builds the recursive resolver, or returns nil when no client
// network is allowed recursion.
func newResolver(c config.Config, log *slog.Logger, reg prometheus.Registerer, local resolver.LocalAuthority, persistNow func(string), tap *dnstap.Sink) (*resolver.Resolver, *resolver.Cache, error) {
	rc := c.Resolver
	if len(rc.AllowPrefixes) == 0 {
		return nil, nil, nil
	}
	var hints []dns.RR
	if rc.RootHints != "" {
		var err error
		if hints, err = resolver.LoadHints(rc.RootHints); err != nil {
			return nil, nil, fmt.Errorf("resolver.root_hints: %w", err)
		}
	}
	now := time.Now
	if c.TestFaketime {
		path := os.Getenv("FAKETIME_TIMESTAMP_FILE")
		if path == "" {
			return nil, nil, errors.New("test_faketime: FAKETIME_TIMESTAMP_FILE is not set")
		}
		fake, err := clock.NewFakeTimeFile(path, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("test_faketime: %w", err)
		}
		now = fake.Now
		log.Warn("test_faketime: the resolver's clock comes from a file", "file", path, "now", now())
	}
	stats := &resolver.Stats{}
	cache := resolver.NewCache(resolver.CacheConfig{
		MaxBytes: memlimit.Entries(int64(rc.CacheMB) << 20), Now: now,
		MinTTL: rc.MinTTL, MaxTTL: rc.MaxTTL, MaxNegativeTTL: rc.MaxNegativeTTL,
		StaleWindow: rc.ServeStale.MaxStale,
	})
	metrics.RegisterResolver(reg, stats, cache)
	rs := c.Resilience
	var warm []resolver.Question
	for _, w := range rs.WarmNames {
		for _, t := range w.Types {
			warm = append(warm, resolver.Question{Name: w.Name, Qtype: t})
		}
	}
	xch := resolver.NewNetExchanger(exchangeConfig(rc, tap, stats, log))
	r := resolver.New(resolver.Config{
		RootHints:              hints,
		UpstreamPort:           uint16(rc.UpstreamPort),
		QueryTimeout:           rc.QueryTimeout,
		ResolutionTimeout:      rc.ResolutionTimeout,
		MaxReferrals:           rc.MaxReferrals,
		MaxUpstreamQueries:     rc.MaxUpstreamQueries,
		MaxCNAMEChain:          rc.MaxCNAMEChain,
		MaxNSLookups:           rc.MaxNSLookups,
		NoIPv4:                 !rc.UpstreamIPv4,
		NoIPv6:                 !rc.UpstreamIPv6,
		QueryLoopback:          rc.QueryLoopback,
		NoPrivate:              !rc.QueryPrivate,
		QNameMinimisation:      map[string]resolver.QMin{"relaxed": resolver.QMinRelaxed, "strict": resolver.QMinStrict, "off": resolver.QMinOff}[rc.QNameMinimisation],
		Use0x20:                rc.Use0x20,
		ZoneRateLimit:          offIfZero(rc.ZoneRateLimit),
		MaxZoneInFlight:        offIfZero(rc.MaxZoneInFlight),
		UnwantedReplyThreshold: offIfZero(rc.UnwantedReplies),
		Stubs:                  rc.Stubs,
		Forwards:               rc.Forwards,
		Now:                    now,
		DNSSEC:                 rc.DNSSEC.Resolver(),
		StaleTTL:               rc.ServeStale.StaleTTL,
		ClientTimeout:          rc.ServeStale.ClientTimeout,
		FailureRecheck:         rc.ServeStale.FailureRecheck,
		Prefetch:               rc.Prefetch,
		Local:                  local,
		National:               rs.National,
		NationalHints:          rs.HintRRs,
		Island: resolver.IslandConfig{Disabled: !rs.Island.Enabled, Failures: rs.Island.Failures,
			Probes: rs.ProbeAddrs, ProbeInterval: rs.Island.ProbeInterval, TrialWait: rs.Island.TrialWait},
		SignatureGrace:   rs.SignatureGrace,
		KeepWarm:         warm,
		KeepWarmInterval: rs.KeepWarmInterval,
		PersistNow:       persistNow,
	}, xch, cache, log, stats)
	metrics.RegisterResilience(reg, r, stats)
	udp, err := xch.UDPPath()
	if err != nil {
		log.Info("upstream UDP queries with a system call each, not through io_uring", "err", err)
	}
	log.Info("recursion enabled", "allow", fmt.Sprint(rc.AllowPrefixes), "root_hints", cmp.Or(rc.RootHints, "built in"), "upstream_udp", udp)
	return r, cache, nil
}

// authenticatedKeys fetches an anchored zone's DNSKEY RRset through rec,
// for RFC 5011: only an RRset the resolver found secure counts.
func authenticatedKeys(rec *resolver.Resolver) trustanchor.Fetch {
	return func(ctx context.Context, zone string) ([]dns.RR, []*dns.RRSIG, time.Duration, error) {
		res := rec.Resolve(ctx, zone, dns.TypeDNSKEY)
		if res.Sec != dnssec.Secure {
			why := res.Why
			if why == nil {
				why = res.Err
			}
			return nil, nil, 0, fmt.Errorf("DNSKEY %s not authenticated (%s): %v", zone, res.Sec, why)
		}
		var rrs []dns.RR
		var sigs []*dns.RRSIG
		var ttl time.Duration
		for _, rr := range res.Answer {
			switch v := rr.(type) {
			case *dns.DNSKEY:
				rrs = append(rrs, v)
				ttl = time.Duration(v.Hdr.Ttl) * time.Second
			case *dns.RRSIG:
				if v.TypeCovered == dns.TypeDNSKEY {
					sigs = append(sigs, v)
				}
			}
		}
		if len(rrs) == 0 {
			return nil, nil, 0, fmt.Errorf("DNSKEY %s: no keys in the answer", zone)
		}
		return rrs, sigs, ttl, nil
	}
}

// parentChecker asks zones' parents for their DS: the parent zone itself
// when st holds it, or else its servers, found through rec (nil: the
// resolvers of /etc/resolv.conf) and asked on port (resolver.upstream_port),
// unless the zone names them.
func parentChecker(st *zonestore.Store, rec *resolver.Resolver, port uint16) *parentds.Checker {
	c := &parentds.Checker{Local: st.LocalParentDS, Port: port}
	if rec != nil {
		c.Lookup = func(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
			res := rec.Resolve(ctx, name, qtype)
			if res.Rcode != dns.RcodeSuccess && res.Rcode != dns.RcodeNameError {
				if res.Err != nil {
					return nil, res.Err
				}
				return nil, fmt.Errorf("%s", dns.RcodeToString[res.Rcode])
			}
			m := new(dns.Msg)
			m.Rcode, m.Answer, m.Ns = res.Rcode, res.Answer, res.Ns
			return m, nil
		}
	}
	return c
}

// controlNode is what the control API reaches of this server.
func controlNode(rec *resolver.Resolver, cache *resolver.Cache, cacheFile *cachedb.Writer, st *zonestore.Store, repl *replication.Node, reload func() (string, error)) control.Node {
	n := control.Node{Cache: cache, Signing: st, Store: st, Reload: reload, Replication: repl}
	if rec != nil {
		n.Keys = rec
		n.Resolver = rec
	}
	if cacheFile != nil {
		n.CacheFile = func() control.CacheFileStatus {
			f := cacheFile.Status()
			return control.CacheFileStatus{Path: f.Path, WriteBehindSeconds: f.WriteBehind.Seconds(), Open: f.Open,
				PendingEntries: f.Pending, LagSeconds: f.Lag.Seconds(), LastWrite: f.LastWrite.UTC(),
				Batches: f.Batches, BytesWritten: f.Bytes, Fsyncs: f.Fsyncs, Saves: f.Saves, Errors: f.Errors, LastError: f.LastError}
		}
	}
	return n
}

// minProcs is the fewest scheduler processors (GOMAXPROCS) the server
// runs with once it holds zones. On one or two CPUs (a container, a
// pinned process) the Go runtime would otherwise give it as many
// processors, and then a goroutine committing an edit, signing or
// transferring a zone can hold the processor a listener needs for a whole
// scheduling slice (milliseconds): with a few more, the kernel
// interleaves them and queries are answered meanwhile. A node without
// zones (a resolver alone) keeps the runtime's count: there every
// processor more than the CPUs wakes threads that find no work, and a
// cache miss cost a resolver pinned to one CPU 1.05 to 1.31 times the CPU
// it costs with one processor (bench/resolver.sh, sovdns against
// sovdns-1p), its latency no better. Its cache file's writer is lent a
// second processor for the length of each commit instead (procs.Owner).
const minProcs = 4

// procsFloor returns the GOMAXPROCS to set, or 0 to leave it: an
// operator's own GOMAXPROCS is kept.
func procsFloor(cur int, env string) int {
	if env != "" || cur >= minProcs {
		return 0
	}
	return minProcs
}

// offIfZero maps a configured limit, where 0 means none, to the
// resolver's, where 0 means its default and a negative value none.
func offIfZero(v int) int {
	if v == 0 {
		return -1
	}
	return v
}

// exchangeConfig is how the resolver talks to upstream servers; a ring
// that fails is logged and counted in stats.
func exchangeConfig(rc config.ResolverConfig, tap *dnstap.Sink, stats *resolver.Stats, log *slog.Logger) resolver.ExchangeConfig {
	xc := resolver.ExchangeConfig{Cookies: rc.Cookies, NoRing: !rc.IOURing, OnRingError: func(err error) {
		stats.RingFailures.Add(1)
		log.Warn("an io_uring ring failed: its upstream UDP queries go with a system call each from now on", "err", err)
	}}
	if tap != nil {
		xc.Tap = tap
	}
	return xc
}

// openDnstap starts dnstap logging when it is configured (nil otherwise),
// with its counters on reg.
func openDnstap(c config.Config, reg prometheus.Registerer, log *slog.Logger) (*dnstap.Sink, error) {
	d := c.Dnstap
	if !d.Enabled() {
		return nil, nil
	}
	tap, err := dnstap.New(dnstap.Config{Socket: d.Socket, File: d.File, Identity: d.Identity, Version: "sovdns " + version(),
		ClientQueries: d.ClientQueries, ClientResponses: d.ClientResponses,
		ResolverQueries: d.ResolverQueries, ResolverResponses: d.ResolverResponses, QueueSize: d.QueueSize}, log)
	if err != nil {
		return nil, err
	}
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "dnstap", Name: "sent_total",
			Help: "DNS messages handed to the dnstap output."}, func() float64 { return float64(tap.Sent()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "dnstap", Name: "dropped_total",
			Help: "DNS messages not logged to dnstap because its queue was full."}, func() float64 { return float64(tap.Dropped()) }),
	)
	log.Info("dnstap logging", "socket", d.Socket, "file", d.File)
	return tap, nil
}
