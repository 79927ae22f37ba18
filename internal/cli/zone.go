package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"

	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/internal/progress"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

func newZoneCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "zone", Args: cobra.ArbitraryArgs, RunE: groupRunE, Short: "List, create, import, export, show and delete zones; edit in transactions; refresh secondary zones"}
	cmd.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON for scripts")
	cmd.AddCommand(newZoneListCmd(g), newZoneCreateCmd(g), newZoneImportCmd(g), newZoneExportCmd(g),
		newZoneShowCmd(g), newZoneDeleteCmd(g), newZoneHistoryCmd(g))
	cmd.AddCommand(newZoneRefreshCmds(g)...)
	cmd.AddCommand(newZoneTxnCmds(g)...)
	return cmd
}

func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newZoneListCmd(g *globals) *cobra.Command {
	var match string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the zones in the database",
		Example: `  sovdns zone list
  sovdns zone list --match '*.gov.az' --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := control.ZonePattern(match); err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--match %q: %w", match, err)}
			}
			db, _, err := g.openDB(cmd, true)
			if err != nil {
				return err
			}
			defer db.Close()
			return db.ZoneList(cmdContext(cmd), match, g.json, g.stdout)
		},
	}
	cmd.Flags().StringVar(&match, "match", "", "only the zones whose names match this pattern (* any labels' characters, ?, [...])")
	return cmd
}

func newZoneShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show ZONE",
		Short: "Show a zone's SOA and size",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, _, err := g.openDB(cmd, true)
			if err != nil {
				return err
			}
			defer db.Close()
			d, err := db.Zone(cmdContext(cmd), args[0])
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(d)
			}
			soa, err := d.SOARecord()
			if err != nil {
				return err
			}
			info := d.ZoneInfo
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "zone:\t%s\n", info.Origin)
			fmt.Fprintf(tw, "serial:\t%d\n", soa.Serial)
			fmt.Fprintf(tw, "primary:\t%s\n", soa.Ns)
			fmt.Fprintf(tw, "contact:\t%s\n", soa.Mbox)
			fmt.Fprintf(tw, "timers:\trefresh %d, retry %d, expire %d, negative TTL %d\n", soa.Refresh, soa.Retry, soa.Expire, soa.Minttl)
			fmt.Fprintf(tw, "nameservers:\t%s\n", strings.Join(d.Nameservers, " "))
			fmt.Fprintf(tw, "records:\t%d in %d names\n", info.Records, info.Names)
			fmt.Fprintf(tw, "created:\t%s\n", info.Created.Format(time.RFC3339))
			fmt.Fprintf(tw, "updated:\t%s\n", info.Updated.Format(time.RFC3339))
			return tw.Flush()
		},
	}
}

func newZoneCreateCmd(g *globals) *cobra.Command {
	var nss []string
	var email string
	var ttl, minimum uint32
	cmd := &cobra.Command{
		Use:   "create ZONE --ns NAME [--ns NAME...]",
		Short: "Create an empty zone with a SOA and NS records",
		Example: `  sovdns zone create gov.az --ns ns1.gov.az --ns ns2.gov.az --email hostmaster@gov.az
  sovdns record add gov.az 'ns1 A 192.0.2.1' 'ns2 A 192.0.2.2'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			origin := zone.Fqdn(args[0])
			if len(nss) == 0 {
				return &exitError{code: 2, err: errors.New("at least one --ns is needed: a zone must have NS records at its apex")}
			}
			if email == "" {
				email = "hostmaster." + origin
			}
			mbox := dns.Fqdn(strings.Replace(email, "@", ".", 1))
			var rrs []dns.RR
			rrs = append(rrs, &dns.SOA{
				Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
				Ns:  dns.Fqdn(nss[0]), Mbox: mbox, Serial: 1,
				Refresh: 7200, Retry: 900, Expire: 1209600, Minttl: minimum,
			})
			for _, ns := range nss {
				rrs = append(rrs, &dns.NS{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: ttl}, Ns: dns.Fqdn(ns)})
			}
			db, c, err := g.openDB(cmd, false)
			if err != nil {
				return err
			}
			defer db.Close()
			rrs[0].(*dns.SOA).Serial = zonestore.NextSerial(0, c.Serial, time.Now())
			z, err := zone.Build(origin, rrs)
			if err != nil {
				return fmt.Errorf("zone %s: %w", origin, err)
			}
			res, err := db.Import(cmdContext(cmd), z, false)
			if err != nil {
				return err
			}
			return g.report(res, fmt.Sprintf("created zone %s", origin))
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&nss, "ns", nil, "name server of the zone (repeat for each); the first is the SOA primary")
	f.StringVar(&email, "email", "", "contact address for the SOA (default hostmaster.ZONE)")
	f.Uint32Var(&ttl, "ttl", 3600, "TTL of the SOA and NS records")
	f.Uint32Var(&minimum, "negative-ttl", 300, "negative-caching TTL (SOA minimum, RFC 2308)")
	return cmd
}

// report prints the outcome of a change.
func (g *globals) report(res control.Result, what string) error {
	if g.json {
		out := map[string]any{
			"zone": res.Zone, "serial": res.Serial, "old_serial": res.OldSerial,
			"serial_bumped": res.Bumped, "records": res.Records, "created": res.Created,
		}
		if res.Staged {
			out["staged"], out["pending"] = true, res.Pending
		}
		return g.printJSON(out)
	}
	if res.Staged {
		fmt.Fprintf(g.stdout, "%s: staged in the open transaction (%d change(s) waiting; zone commit %s applies them)\n",
			what, res.Pending, strings.TrimSuffix(res.Zone, "."))
		return nil
	}
	if res.Created || res.OldSerial == 0 {
		fmt.Fprintf(g.stdout, "%s: serial %d, %d records\n", what, res.Serial, res.Records)
		return nil
	}
	fmt.Fprintf(g.stdout, "%s: serial %d -> %d, %d records (was %d)\n", what, res.OldSerial, res.Serial, res.Records, res.OldRecords)
	return nil
}

func newZoneImportCmd(g *globals) *cobra.Command {
	var origin string
	var replace bool
	cmd := &cobra.Command{
		Use:   "import FILE|DIR...",
		Short: "Import zones from RFC 1035 master files",
		Long: `Import a zone from an RFC 1035 master file. The whole file is validated
first; nothing is written unless all of it is valid. Errors name the file and
line. $INCLUDE may name only files in the same directory as FILE.

Given several files, or directories (their regular files, not those whose
names start with a dot), each file is a zone: its name is --origin's only
for a single file, else the file's $ORIGIN or SOA owner, else the file name
less a .zone suffix. The files are read 2,000 at a time on every CPU, the
next ones while the zones of the last are written, in batched transactions
(one fsync per batch), each zone whole or not at all; a file that fails is
reported with its line and the others go on, and a zone given in two files
is taken from the first. A summary is printed at the end; the exit
status is 1 if any zone failed.

Progress goes to standard error: a bar when it is a terminal, else a log
line every 5 seconds (bytes read of one file; files imported of many;
RRsets signed when a signed zone is signed whole here); --quiet turns it
off.`,
		Example: `  sovdns zone import gov.az.zone
  sovdns zone import /etc/nsd/zones/           # every file a zone
  sovdns zone import --replace a.zone b.zone`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 || isDir(args[0]) {
				if origin != "" {
					return &exitError{code: 2, err: fmt.Errorf("--origin names one zone: give one file with it")}
				}
				return g.importMany(cmd, args, replace)
			}
			c, err := g.load(cmd)
			if err != nil {
				return err
			}
			p, err := g.readZoneFile(args[0], origin, g.progress(c))
			if err != nil {
				return err
			}
			z, err := p.Build()
			if err != nil {
				return err
			}
			db, _, err := g.openDB(cmd, false)
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := db.Import(cmdContext(cmd), z, replace)
			if err != nil {
				return err
			}
			return g.report(res, fmt.Sprintf("imported zone %s from %s", z.Origin, args[0]))
		},
	}
	cmd.Flags().StringVar(&origin, "origin", "", "zone name (default: $ORIGIN or the SOA owner in the file)")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace the zone if it exists")
	return cmd
}

// parseZoneFile reads a master file for import or checking. The zone's
// name comes from --origin, else from the SOA record's owner; a file that
// names no zone (relative names and no $ORIGIN) is refused unless the root
// was asked for explicitly.
func parseZoneFile(path, origin string) (*zonestore.Parsed, error) {
	return parseZoneFileProgress(path, origin, nil)
}

// readZoneFile is parseZoneFile with the bytes read shown on prog.
func (g *globals) readZoneFile(path, origin string, prog *progress.Progress) (*zonestore.Parsed, error) {
	var size int64
	if fi, err := os.Stat(path); err == nil {
		size = fi.Size()
	}
	bar := prog.Start("read "+filepath.Base(path), size, progress.Bytes)
	defer bar.Finish()
	return parseZoneFileProgress(path, origin, func(n int) { bar.Add(int64(n)) })
}

// parseZoneFileProgress is parseZoneFile that tells read, if not nil, how
// many more bytes of the file were read.
func parseZoneFileProgress(path, origin string, read func(int)) (*zonestore.Parsed, error) {
	p, err := zonestore.ParseFileProgress(path, origin, read)
	if err != nil {
		return nil, err
	}
	if p.Origin == "." && origin == "" {
		return nil, &exitError{code: 2, err: fmt.Errorf("%s: no origin: the zone's name is not known; "+
			"give --origin, or start the file with $ORIGIN or an absolute SOA owner", path)}
	}
	return p, nil
}

func newZoneExportCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export ZONE",
		Short: "Write a zone as a canonical master file",
		Long: `Write a zone as a canonical master file, to standard output or to the
file -o names. The records written are counted on standard error (a bar
on a terminal, else a log line every 5 seconds; --quiet turns it off),
never on standard output.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, c, err := g.openDB(cmd, true)
			if err != nil {
				return err
			}
			defer db.Close()
			ctx := cmdContext(cmd)
			// The bar goes to standard error; the zone is written as it
			// is, byte for byte.
			bar := g.progress(c).Start("zone export "+zone.Fqdn(args[0]), 0, "records")
			defer bar.Finish()
			if out == "" || out == "-" {
				return db.Export(ctx, args[0], &exportCounter{w: g.stdout, bar: bar})
			}
			// Write beside the target and rename, so a failed export never
			// leaves half a file.
			f, err := os.CreateTemp(dirOf(out), ".sovdns-export-*")
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			err = db.Export(ctx, args[0], &exportCounter{w: f, bar: bar})
			if err == nil {
				err = f.Chmod(0o644) // a zone file is public data
			}
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			return os.Rename(f.Name(), out)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default standard output)")
	return cmd
}

// exportCounter passes an export through to w and counts its records on
// bar: the lines after the two of its header ("; zone ORIGIN serial N, M
// records" and $ORIGIN), of which the first gives the total.
type exportCounter struct {
	w     io.Writer
	bar   *progress.Bar
	head  []byte // the first line, until it ends
	lines int
}

func (e *exportCounter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if e.bar == nil {
		return n, err
	}
	p = p[:n]
	if e.lines == 0 {
		line, _, whole := bytes.Cut(p, []byte("\n"))
		if len(e.head) < 512 {
			e.head = append(e.head, line[:min(len(line), 512-len(e.head))]...)
		}
		if whole {
			var origin string
			var serial uint32
			var records int64
			if _, err := fmt.Sscanf(string(e.head), "; zone %s serial %d, %d records", &origin, &serial, &records); err == nil {
				e.bar.SetTotal(records)
			}
			e.head = nil
		}
	}
	const header = 2
	nl := bytes.Count(p, []byte("\n"))
	counted := max(e.lines+nl-header, 0) - max(e.lines-header, 0)
	e.lines += nl
	e.bar.Add(int64(counted))
	return n, err
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i+1]
	}
	return "."
}

func newZoneDeleteCmd(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete ZONE --yes",
		Short: "Delete a zone and all its records",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return &exitError{code: 2, err: fmt.Errorf("deleting zone %s removes all its records: add --yes to confirm", zone.Fqdn(args[0]))}
			}
			db, _, err := g.openDB(cmd, false)
			if err != nil {
				return err
			}
			defer db.Close()
			if err := db.Delete(cmdContext(cmd), args[0]); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]any{"zone": zone.Fqdn(args[0]), "deleted": true})
			}
			fmt.Fprintf(g.stdout, "deleted zone %s\n", zone.Fqdn(args[0]))
			return nil
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm the deletion")
	return cmd
}

func newZoneHistoryCmd(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "history ZONE",
		Short: "Show a zone's journal: who changed what, and when",
		Long: `Show the zone's journal, oldest first: for each change its sequence number,
time, author (unix:USER for the CLI, token:NAME for the control API on TCP,
tsig:KEY for DNS UPDATE), operation and serials, then the records removed
(-) and added (+). A zone's creation, and a change too large to keep whole,
are kept as a summary that counts the records.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return &exitError{code: 2, err: fmt.Errorf("--limit %d: give 0 for all, or a positive number", limit)}
			}
			db, _, err := g.openDB(cmd, true)
			if err != nil {
				return err
			}
			defer db.Close()
			entries, err := db.History(cmdContext(cmd), args[0], limit)
			if err != nil {
				return err
			}
			if g.json {
				if entries == nil {
					entries = []zonestore.Entry{}
				}
				return g.printJSON(entries)
			}
			return writeHistory(g.stdout, entries)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "only the last N changes (0: all the journal holds)")
	return cmd
}

// writeHistory prints journal entries as text, one block each.
func writeHistory(w io.Writer, entries []zonestore.Entry) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintln(w, "(no changes in the journal)")
		return err
	}
	bw := bufio.NewWriter(w)
	for i, e := range entries {
		if i > 0 {
			fmt.Fprintln(bw)
		}
		var to uint32
		if e.To != nil {
			to = e.To.Serial
		}
		fmt.Fprintf(bw, "#%d %s %s %s serial %d -> %d\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Author, e.Op, e.FromSerial(), to)
		if e.Summary {
			fmt.Fprintf(bw, "  %d record(s) removed, %d added (summary: the records were not kept)\n", e.RemovedCount, e.AddedCount)
			continue
		}
		for _, rr := range e.Removed {
			fmt.Fprintf(bw, "- %s\n", rr)
		}
		for _, rr := range e.Added {
			fmt.Fprintf(bw, "+ %s\n", rr)
		}
	}
	return bw.Flush()
}
