package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/resolver"
)

func newCacheCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cache", Args: cobra.ArbitraryArgs, RunE: groupRunE,
		Short: "Look into and flush the running server's resolver cache"}
	cmd.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON for scripts")
	cmd.AddCommand(
		&cobra.Command{
			Use:   "stats",
			Short: "Show the cache's size and hit counts",
			Long: `Show the cache's size and hit counts. With --json, one object with the
fields entries, bytes, national, hits, misses, stale_hits, rrset_hits,
rrset_misses, evictions and expired.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				body, err := g.control(cmd, http.MethodGet, "/v1/cache/stats")
				if err != nil {
					return err
				}
				if g.json {
					_, err := g.stdout.Write(body)
					return err
				}
				var st resolver.CacheStats
				if err := json.Unmarshal(body, &st); err != nil {
					return fmt.Errorf("control API: %w", err)
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "entries:\t%d\n", st.Entries)
				fmt.Fprintf(tw, "bytes:\t%d\n", st.Bytes)
				fmt.Fprintf(tw, "hits:\t%d (stale %d)\n", st.Hits, st.StaleHits)
				fmt.Fprintf(tw, "misses:\t%d\n", st.Misses)
				fmt.Fprintf(tw, "rrset hits / misses:\t%d / %d\n", st.RRsetHits, st.RRsetMisses)
				fmt.Fprintf(tw, "evictions:\t%d\n", st.Evictions)
				fmt.Fprintf(tw, "expired:\t%d\n", st.Expired)
				return tw.Flush()
			},
		},
		&cobra.Command{
			Use:   "dump",
			Short: "Print every cached entry with its remaining TTL",
			Long: `Print every cached entry that can still be served, with its remaining
TTL, in canonical name order: as zone-file text under a comment line per
entry, or with --json as JSON Lines, one object per entry and line (kind
"rrset" or "message", name, type, result and rcode of a message, rank,
dnssec, ttl, stale, expired_seconds, national, and the records: records
of an RRset, answer, authority and additional of a message).`,
			Example: `  sovdns cache dump --json | jq -r 'select(.stale) | .name'`,
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				path := "/v1/cache/dump"
				if g.json {
					path += "?format=json"
				}
				body, err := g.control(cmd, http.MethodGet, path)
				if err != nil {
					return err
				}
				_, err = g.stdout.Write(body)
				return err
			},
		},
		&cobra.Command{
			Use:   "flush [NAME]",
			Short: "Remove everything, or everything at and below NAME, from the cache",
			Long: `Remove everything, or everything at and below NAME, from the cache, and
the validator's verdicts on the keys (DNSKEY and DS) of those zones, so
that they are fetched and validated again. With --json: flushed (NAME or
"all"), removed (cache entries) and keys_removed.`,
			Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				path := "/v1/cache/flush"
				if len(args) == 1 {
					path += "?name=" + url.QueryEscape(args[0])
				}
				body, err := g.control(cmd, http.MethodPost, path)
				if err != nil {
					return err
				}
				if g.json {
					_, err := g.stdout.Write(body)
					return err
				}
				var r struct {
					Flushed     string `json:"flushed"`
					Removed     int64  `json:"removed"`
					KeysRemoved int64  `json:"keys_removed"`
				}
				if err := json.Unmarshal(body, &r); err != nil {
					return fmt.Errorf("control API: %w", err)
				}
				fmt.Fprintf(g.stdout, "flushed %s: removed %d cache entries and %d from the validator's key cache\n", r.Flushed, r.Removed, r.KeysRemoved)
				return nil
			},
		},
	)
	return cmd
}

// control calls the running server's control API.
func (g *globals) control(cmd *cobra.Command, method, path string) ([]byte, error) {
	c, err := g.load(cmd)
	if err != nil {
		return nil, err
	}
	cl := control.NewClient(filepath.Join(c.DataDir, control.SocketName))
	defer cl.Close()
	return cl.Do(cmdContext(cmd), method, path)
}

func newReloadCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make the running server re-read its configuration and zones",
		Long: `Make the running server re-read its configuration file and its zones, as
SIGHUP does, and print what changed. It needs a running server on the data
directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.serverClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			msg, err := c.Reload(cmdContext(cmd))
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]string{"message": msg})
			}
			fmt.Fprintln(g.stdout, msg)
			return nil
		},
	}
	cmd.Flags().BoolVar(&g.json, "json", false, "print JSON for scripts")
	return cmd
}
