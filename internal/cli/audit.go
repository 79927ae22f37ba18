package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/sovdns/sovdns/internal/audit"
	"github.com/sovdns/sovdns/internal/config"
	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/zone"
)

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Args: cobra.ArbitraryArgs, RunE: groupRunE,
		Short: "Audit national zones for what they need from outside the country"}
	cmd.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON for scripts")
	cmd.AddCommand(newAuditDepsCmd(g))
	return cmd
}

func newAuditDepsCmd(g *globals) *cobra.Command {
	var suffixes []string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "deps ZONE [--suffix az.]...",
		Short: "List the names of a national zone that depend on something outside the national namespace",
		Long: `List every name of a national zone whose resolution, mail or service depends
on something outside the national namespace (resilience.national_suffixes,
or the --suffix flags, which replace them):

  - NS records of the apex and of delegations naming a foreign name server,
    or a national one whose own zone is served by foreign name servers;
  - CNAME and DNAME, MX, SRV, HTTPS and SVCB targets that are foreign, or
    national names that lead abroad: through a chain of CNAMEs and DNAMEs,
    or because their zone is served by foreign name servers.

Chains are followed with the resolver, at most 8 links deep, within 2000
lookups and the --timeout; a lookup that fails, or a limit reached, makes
the reference "unresolved" and it is listed as such. The audit asks only
about national names (the resolver may still need foreign servers to
answer them).

With a server running on the data directory the audit runs there, with the
server's resolver and cache. Otherwise this command reads the zone from the
database and builds a resolver from the configuration; when recursion is
off (resolver.allow is empty) chains are followed through the zone's own
data only, and the output says so. Then the names audited are counted on
standard error (a bar on a terminal, else a log line every 5 seconds;
--quiet turns it off).

Exit status: 0 when the audit ran, whatever it found; 1 when it could not
run; 2 for a bad command line, no national suffixes, or a zone that is not
under them.`,
		Example: `  sovdns audit deps gov.az
  sovdns audit deps gov.az --suffix az. --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(cmd)
			if err != nil {
				return err
			}
			sfx := c.Resilience.National
			if cmd.Flags().Changed("suffix") {
				sfx = nil
				for _, s := range suffixes {
					n := zone.Fqdn(strings.TrimSpace(s))
					if _, ok := dns.IsDomainName(n); !ok || strings.TrimSpace(s) == "" {
						return &exitError{code: 2, err: fmt.Errorf("--suffix %q: not a domain name", s)}
					}
					sfx = append(sfx, n)
				}
			}
			if len(sfx) == 0 {
				return &exitError{code: 2, err: errors.New("no national suffixes: set resilience.national_suffixes in the configuration " +
					"(e.g. [az.]) or give --suffix")}
			}
			if timeout <= 0 || timeout > control.MaxAuditTimeout {
				return &exitError{code: 2, err: fmt.Errorf("--timeout %v: must be more than 0 and at most %v", timeout, control.MaxAuditTimeout)}
			}
			rep, note, err := g.auditDeps(cmd, c, zone.Fqdn(args[0]), sfx, timeout)
			if errors.Is(err, control.ErrBadRequest) || errors.Is(err, audit.ErrNotNational) || errors.Is(err, audit.ErrNoSuffixes) {
				return &exitError{code: 2, err: err}
			}
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rep)
			}
			return g.printAudit(rep, note)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&suffixes, "suffix", nil, "a national suffix, e.g. az. (repeatable; replaces resilience.national_suffixes)")
	f.DurationVar(&timeout, "timeout", audit.DefaultTimeout, "time limit of the whole audit")
	return cmd
}

// auditDeps runs the audit on the running server, or here on the
// database, and returns a note on how it ran when that limits it.
func (g *globals) auditDeps(cmd *cobra.Command, c config.Config, origin string, suffixes []string, timeout time.Duration) (audit.Report, string, error) {
	db, _, err := g.openDB(cmd, true)
	if err != nil {
		return audit.Report{}, "", err
	}
	ctx := cmdContext(cmd)
	var rep audit.Report
	switch db := db.(type) {
	case *control.Client:
		defer db.Close()
		q := url.Values{"zone": {origin}, "suffix": suffixes, "timeout": {timeout.String()}}
		body, err := db.Do(ctx, http.MethodGet, "/v1/audit/deps?"+q.Encode())
		if err != nil {
			return rep, "", err
		}
		if err := json.Unmarshal(body, &rep); err != nil {
			return rep, "", fmt.Errorf("control API: %w", err)
		}
		if !rep.Resolver {
			return rep, "Audited by the server, which does not resolve (resolver.allow is empty).", nil
		}
		return rep, "", nil
	case control.Local:
		z, err := db.Store.Load(origin)
		db.Close() // the zone is in memory: the database is not held during the audit
		if err != nil {
			return rep, "", err
		}
		// The resolver's own logging (recursion enabled, ...) is for a
		// server; here only its warnings matter.
		log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		rec, _, err := newResolver(c, log, prometheus.NewRegistry(), nil, nil, nil)
		if err != nil {
			return rep, "", err
		}
		note := "Audited by this command: no server runs on data directory " + c.DataDir
		if rec == nil {
			note += "; recursion is off in the configuration (resolver.allow is empty)"
		}
		note += "."
		bar := g.progress(c).Start("audit "+z.Origin, int64(z.Names()), "names")
		defer bar.Finish()
		rep, err = audit.Deps(ctx, z, suffixes, audit.ResolverOf(rec), audit.Options{Timeout: timeout,
			Progress: func(n int) { bar.Add(int64(n)) }})
		return rep, note, err
	default:
		db.Close()
		return rep, "", fmt.Errorf("audit: unexpected database %T", db)
	}
}

// printAudit prints a report as a table and a summary.
func (g *globals) printAudit(rep audit.Report, note string) error {
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	if len(rep.Findings) == 0 {
		fmt.Fprintln(tw, "(no foreign dependencies found)")
	} else {
		fmt.Fprintln(tw, "NAME\tTYPE\tTARGET\tWHY")
		for _, f := range rep.Findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, f.Type, f.Target, f.Why())
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "\n%s\n", rep.Summary())
	if note != "" {
		fmt.Fprintln(g.stdout, note)
	}
	return nil
}
