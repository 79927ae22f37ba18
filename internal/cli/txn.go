package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sovdns/sovdns/zone"
)

// newZoneTxnCmds returns zone begin, diff, commit and abort: an editor's
// transaction on a zone.
func newZoneTxnCmds(g *globals) []*cobra.Command {
	begin := &cobra.Command{
		Use:   "begin ZONE",
		Short: "Open a transaction: your record add and delete wait in it until zone commit",
		Long: `Open a transaction on the zone. Until it is committed or aborted, your
record add and record delete on the zone are checked and staged, not applied;
zone commit applies them all at once: one validation, one serial step, one
journal entry under your name. Another editor's edits of the zone are refused
meanwhile (dynamic UPDATE and zone transfers go on; a staged change that
they make impossible is reported at commit). The transaction is kept in the
database: it survives the command and a restart of the server.`,
		Example: `  sovdns zone begin gov.az
  sovdns record delete gov.az www A 192.0.2.10
  sovdns record add gov.az 'www A 192.0.2.20'
  sovdns zone diff gov.az
  sovdns zone commit gov.az`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, _, err := g.openDB(cmd, false)
			if err != nil {
				return err
			}
			defer db.Close()
			info, err := db.Begin(cmdContext(cmd), args[0])
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(info)
			}
			fmt.Fprintf(g.stdout, "transaction open on %s (serial %d): record add and delete now wait for zone commit %s\n",
				zone.Fqdn(args[0]), info.Serial, args[0])
			return nil
		},
	}
	diff := &cobra.Command{
		Use:   "diff ZONE",
		Short: "Show what committing your open transaction would change",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, _, err := g.openDB(cmd, true)
			if err != nil {
				return err
			}
			defer db.Close()
			d, err := db.Diff(cmdContext(cmd), args[0])
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(d)
			}
			if len(d.Removed)+len(d.Added) == 0 {
				fmt.Fprintf(g.stdout, "; the transaction on %s changes nothing\n", zone.Fqdn(args[0]))
			}
			for _, s := range d.Removed {
				fmt.Fprintf(g.stdout, "-%s\n", s)
			}
			for _, s := range d.Added {
				fmt.Fprintf(g.stdout, "+%s\n", s)
			}
			return nil
		},
	}
	commit := &cobra.Command{
		Use:   "commit ZONE",
		Short: "Apply your open transaction: one serial step, one journal entry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, _, err := g.openDB(cmd, false)
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := db.Commit(cmdContext(cmd), args[0])
			if err != nil {
				return err
			}
			return g.report(res, "committed the transaction on "+zone.Fqdn(args[0]))
		},
	}
	var force bool
	abort := &cobra.Command{
		Use:   "abort ZONE",
		Short: "Drop your open transaction and its staged changes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, _, err := g.openDB(cmd, false)
			if err != nil {
				return err
			}
			defer db.Close()
			info, err := db.Abort(cmdContext(cmd), args[0], force)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(info)
			}
			fmt.Fprintf(g.stdout, "aborted the transaction on %s: %d staged change(s) dropped\n", zone.Fqdn(args[0]), info.Changes)
			return nil
		},
	}
	abort.Flags().BoolVar(&force, "force", false, "drop another editor's transaction")
	return []*cobra.Command{begin, diff, commit, abort}
}
