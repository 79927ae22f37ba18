package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sovdns/sovdns/internal/config"
	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/internal/trustanchor"
	"github.com/sovdns/sovdns/zonestore"
)

// exitNotRunning is the exit status of sovdns status when no server runs,
// as LSB init scripts' status action has it ("program is not running").
const exitNotRunning = 3

// maxUpstreamLines bounds the upstream servers listed in the text output.
const maxUpstreamLines = 10

func newStatusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the node: zones and their signing, resolver cache, island mode, trust anchors and upstream health",
		Long: `Show the node on one screen: each zone held (kind, serial, when it last
changed and, for secondaries, when it was last found current and when it
expires; open editor transactions; for signed zones the policy, the keys and
their states, the earliest signature expiry and what a rollover waits for),
the resolver's cache, island mode, the trust anchors' RFC 5011 state and the
health of the upstream servers. With more than 20 zones, only those that
need attention are listed (not current, with a transaction open, or signed
with a problem), 20 at most; --json gives every zone.

A secondary's expiry is computed as its last refresh plus the SOA expire
time (or the expire configured for it); a server cut off from the outside
may keep serving an expired copy (resilience.island.keep_copies). Mirrors
and configured secondaries not yet transferred are taken from the running
server's configuration, or with no server running, from the configuration
this command reads. The running server sends only the counts and the zones
that need attention (--json: every zone).

With no server running on the data directory, the zones are read from the
database and the resolver is not shown; with more than 1,000 zones, only the
summary each zone's last change stored is read (a zone that cannot be
loaded then shows only with the server running).

Exit status: 0 when the server is running; 3 when it is not (the zones are
still shown); 1 when the state cannot be read (a server holds the database
but does not answer, or the database cannot be opened).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load(cmd)
			if err != nil {
				return err
			}
			now := time.Now()
			st, dbNote, err := g.status(cmd, c, now, !g.json)
			if err != nil {
				return err
			}
			if g.json {
				err = g.printJSON(st)
			} else {
				err = printStatus(g.stdout, st, c, dbNote, now)
			}
			if err != nil {
				return err
			}
			if !st.Running {
				return &exitError{code: exitNotRunning, err: fmt.Errorf("%w on data directory %s", control.ErrNoServer, c.DataDir)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&g.json, "json", false, "print JSON for scripts")
	return cmd
}

// status asks the running server for its status, or, with none, reads the
// zones from the database; dbNote says why no zones could be read.
// statusReadMax is the number of zones up to which status without the
// server reads every zone, to find those that cannot be loaded; above it
// the summaries the database keeps are shown.
const statusReadMax = 1000

// With summary, only the zones that need attention are kept, up to
// statusZoneRows of them, and every zone is counted (Status.Summarise):
// the running server sends no more.
func (g *globals) status(cmd *cobra.Command, c config.Config, now time.Time, summary bool) (control.Status, string, error) {
	sock := filepath.Join(c.DataDir, control.SocketName)
	if control.Answers(sock) {
		cl := control.NewClient(sock)
		defer cl.Close()
		path := "/v1/status"
		if summary {
			path += "?attention=" + strconv.Itoa(statusZoneRows)
		}
		body, err := cl.Do(cmdContext(cmd), http.MethodGet, path)
		if err != nil {
			return control.Status{}, "", err
		}
		var st control.Status
		if err := json.Unmarshal(body, &st); err != nil {
			return st, "", fmt.Errorf("control API: %w", err)
		}
		return st, "", nil
	}
	st := control.Status{Time: now.UTC(), Zones: []control.ZoneStatus{}}
	q := control.ZoneQuery{Secondaries: c.Repl.Secondaries, MaxRead: statusReadMax, Attention: -1}
	if summary {
		q.Attention = statusZoneRows
	}
	if _, err := os.Stat(c.DBPath()); errors.Is(err, os.ErrNotExist) {
		return st, "no zone database at " + c.DBPath(), control.FillZones(&st, q, now)
	}
	store, err := g.openStoreWith(c, true)
	if err != nil {
		return st, "", err
	}
	defer store.Close()
	q.Store = store
	return st, "", control.FillZones(&st, q, now)
}

// printZoneDNSSEC writes the signing state of the signed zones among
// rows: policy, keys, the earliest signature expiry, what a rollover
// waits for, and any problem.
func printZoneDNSSEC(w io.Writer, rows []control.ZoneStatus, now time.Time) {
	for _, z := range rows {
		d := z.DNSSEC
		if d == nil {
			continue
		}
		keys := make([]string, len(d.Keys))
		for i, k := range d.Keys {
			keys[i] = fmt.Sprintf("%s %s %s", k.ID, k.Role, k.State)
		}
		line := fmt.Sprintf("dnssec %s: %s; keys: %s", z.Zone, d.Policy, strings.Join(keys, ", "))
		if !d.FirstExpiry.IsZero() {
			line += fmt.Sprintf("; earliest signature expiry %s (%s)", d.FirstExpiry.Format(time.RFC3339), relTime(now, d.FirstExpiry))
		}
		fmt.Fprintln(w, line)
		for _, s := range d.Steps {
			fmt.Fprintf(w, "  next step: %s\n", strings.ReplaceAll(s, "ZONE", z.Zone))
		}
		if d.Problem != "" {
			fmt.Fprintf(w, "  PROBLEM: %s\n", d.Problem)
		}
	}
}

// statusZoneRows is how many zones status lists one per row: more, and it
// lists only those that need attention (not current, or with an open
// transaction), this many at most.
const statusZoneRows = 20

func printStatus(w io.Writer, st control.Status, c config.Config, dbNote string, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if st.Running {
		fmt.Fprintf(tw, "server:\trunning (data directory %s)\n", c.DataDir)
	} else {
		fmt.Fprintf(tw, "server:\tNOT RUNNING: zones read from the database %s\n", c.DBPath())
	}
	fmt.Fprintf(tw, "time:\t%s\n", st.Time.Format(time.RFC3339))
	if st.Summary == nil {
		st.Summarise(statusZoneRows)
	}
	total, expired, kept := st.Summary.Total, st.Summary.Expired, st.Summary.Kept
	switch {
	case dbNote != "":
		fmt.Fprintf(tw, "zones:\tnone (%s)\n", dbNote)
	case expired > 0 || kept > 0:
		var parts []string
		if expired > 0 {
			parts = append(parts, fmt.Sprintf("%d EXPIRED", expired))
		}
		if kept > 0 {
			parts = append(parts, fmt.Sprintf("%d past expiry, kept and served (island mode)", kept))
		}
		fmt.Fprintf(tw, "zones:\t%d, %s\n", total, strings.Join(parts, ", "))
	default:
		fmt.Fprintf(tw, "zones:\t%d\n", total)
	}
	if st.ZonesNotRead > 0 {
		fmt.Fprintf(tw, "\t(from the summaries the database keeps: with more than %d zones and no server, the zones are not read, so one that cannot be loaded does not show)\n", statusReadMax)
	}
	if p := st.NotifyPending; p != nil && *p > 0 {
		fmt.Fprintf(tw, "notify:\t%d NOTIFYs pending (one per zone and secondary), sent as secondaries answer\n", *p)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// One row per zone for a few zones; beyond that, only those that need
	// attention (Summarise), so that the view stays one screen at any
	// number of zones.
	rows, hidden := st.Zones, total-len(st.Zones)
	if len(rows) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ZONE\tKIND\tSERIAL\tRECORDS\tUPDATED\tREFRESHED\tEXPIRES\tSTATE")
		for _, z := range rows {
			serial, records, expires, refreshed := "-", "-", "-", "-"
			if z.State != control.ZoneMissing && z.State != control.ZoneBroken {
				serial, records = fmt.Sprint(z.Serial), fmt.Sprint(z.Records)
				if z.Kind != zonestore.KindPrimary {
					refreshed, expires = relTime(now, z.Refreshed), "never"
					if !z.ExpiresAt.IsZero() {
						expires = relTime(now, z.ExpiresAt)
					}
				}
			}
			state := z.State
			switch z.State {
			case control.ZoneExpired:
				state = "EXPIRED"
			case control.ZoneKept:
				state = "kept (expired, island mode)"
			case control.ZoneMissing, control.ZoneBroken:
				state += ": " + z.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", z.Zone, z.Kind, serial, records,
				relTime(now, z.Updated), refreshed, expires, state)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, z := range rows {
			if t := z.Transaction; t != nil {
				fmt.Fprintf(w, "transaction open on %s: by %s since %s, %d change(s) staged\n", z.Zone, t.Author, relTime(now, t.Started), t.Changes)
			}
		}
		printZoneDNSSEC(w, rows, now)
	}
	if hidden > 0 {
		fmt.Fprintf(w, "(%d of %d zones shown: those that need attention; sovdns zone list shows them all)\n", len(rows), total)
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	r := st.Resolver
	switch {
	case !st.Running:
		fmt.Fprintf(tw, "resolver:\tnot known: the server is not running\n")
		return tw.Flush()
	case r == nil:
		fmt.Fprintf(tw, "resolver:\toff (resolver.allow is empty)\n")
		return tw.Flush()
	}
	fmt.Fprintf(tw, "cache:\t%d entries, %s; hits %d, misses %d, stale hits %d\n",
		r.Cache.Entries, sizeIEC(r.Cache.Bytes), r.Cache.Hits, r.Cache.Misses, r.Cache.StaleHits)
	fmt.Fprintf(tw, "national infra:\t%d entries held apart: delegations, server addresses, DS and DNSKEY of the national zones\n",
		r.Cache.National)
	if f := r.CacheFile; f != nil {
		fmt.Fprintf(tw, "cache file:\t%s\n", cacheFileLine(*f, now))
	}
	is := r.Island
	island := "no"
	if is.Active {
		island = "YES, since " + is.Since.Format(time.RFC3339) + " (" + relTime(now, is.Since) + "): stale answers and local copies are served"
	}
	fmt.Fprintf(tw, "island mode:\t%s\n", island)
	probe := "none yet"
	if !is.LastProbe.IsZero() {
		probe = relTime(now, is.LastProbe) + ", "
		if is.LastProbeOK {
			probe += "answered"
		} else {
			probe += "no answer"
		}
	}
	fmt.Fprintf(tw, "last probe:\t%s\n", probe)
	fmt.Fprintf(tw, "island history:\t%d transitions, %s in island mode in total; foreign failures in a row: %d\n",
		is.Transitions, (time.Duration(is.SecondsTotal) * time.Second).String(), is.ForeignFailures)
	for _, z := range r.TrustAnchors {
		fmt.Fprintf(tw, "trust anchor %s:\t%s\n", z.Zone, trustAnchorLine(z, now))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Upstreams) == 0 {
		fmt.Fprintln(w, "upstreams:      none asked yet")
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UPSTREAM\tSRTT\tSTATE")
	for i, u := range r.Upstreams {
		if i == maxUpstreamLines {
			fmt.Fprintf(tw, "(%d more: see --json)\t\t\n", len(r.Upstreams)-i)
			break
		}
		state := "ok"
		if u.Failing {
			state = "FAILING"
		}
		srtt := time.Duration(u.SRTTMillis * float64(time.Millisecond)).Round(time.Millisecond)
		fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Addr, srtt, state)
	}
	return tw.Flush()
}

// trustAnchorLine describes an anchored zone's RFC 5011 state: its keys
// and their states, and when its DNSKEY RRset was last and is next asked.
func trustAnchorLine(z trustanchor.ZoneStatus, now time.Time) string {
	var keys []string
	for _, k := range z.Keys {
		s := k.ID + " " + string(k.State)
		if !k.TrustAt.IsZero() {
			s += " (trusted from " + k.TrustAt.Format(time.RFC3339) + ")"
		}
		keys = append(keys, s)
	}
	line := "keys not seen yet"
	if len(keys) > 0 {
		line = strings.Join(keys, ", ")
	}
	line += "; asked " + relTime(now, z.LastRefresh)
	if !z.NextRefresh.IsZero() {
		line += ", next " + relTime(now, z.NextRefresh)
	}
	if z.LastError != "" {
		line += "; LAST REFRESH FAILED: " + z.LastError
	}
	return line
}

// cacheFileLine says how far the cache file is behind the cache.
func cacheFileLine(f control.CacheFileStatus, now time.Time) string {
	lag := (time.Duration(f.LagSeconds * float64(time.Second))).Round(100 * time.Millisecond)
	var b strings.Builder
	switch {
	case f.WriteBehindSeconds == 0:
		fmt.Fprintf(&b, "saved whole (write-behind off), last %s", relTime(now, f.LastWrite))
	case !f.Open:
		fmt.Fprintf(&b, "NOT BEING WRITTEN: %d changes pending, the oldest %s old", f.PendingEntries, lag)
	case f.PendingEntries == 0:
		fmt.Fprintf(&b, "up to date (write-behind %s), last written %s", time.Duration(f.WriteBehindSeconds*float64(time.Second)), relTime(now, f.LastWrite))
	default:
		fmt.Fprintf(&b, "%d changes pending, the oldest %s old (write-behind %s)", f.PendingEntries, lag, time.Duration(f.WriteBehindSeconds*float64(time.Second)))
	}
	if f.Errors > 0 {
		fmt.Fprintf(&b, "; %d errors", f.Errors)
	}
	if f.LastError != "" {
		fmt.Fprintf(&b, ", last: %s", f.LastError)
	}
	return b.String() + " (" + f.Path + ")"
}

// relTime says how long ago, or in how long, t is from now, roughly.
func relTime(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + roughDuration(-d)
	}
	return roughDuration(d) + " ago"
}

func roughDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// sizeIEC writes a byte count in binary units.
func sizeIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
