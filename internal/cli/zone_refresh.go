package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sovdns/sovdns/internal/replication"
	"github.com/sovdns/sovdns/zone"
)

// newZoneRefreshCmds are sovdns zone refresh and sovdns zone retransfer:
// checks of a secondary zone made now by the running server.
func newZoneRefreshCmds(g *globals) []*cobra.Command {
	refresh := &cobra.Command{
		Use:   "refresh ZONE",
		Short: "Check a secondary zone at its primaries now, and transfer it if it is newer",
		Long: `Have the running server check a secondary zone now, as a NOTIFY from its
primary would: ask the primaries, in the configured order, for the zone's SOA,
and transfer the zone (IXFR, else AXFR) if the serial is newer than the
copy's. It waits for the outcome and prints it. A successful check makes an
expired copy current again. It needs a running server on the data directory.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.zoneRefresh(cmd, args[0], false)
		},
	}
	retransfer := &cobra.Command{
		Use:   "retransfer ZONE",
		Short: "Transfer a secondary zone whole (AXFR) from its primaries now, whatever the serials",
		Long: `Have the running server transfer a secondary zone whole by AXFR now, from
the first of its primaries that gives it, and replace the copy, whatever the
serials: also when the primary's serial is equal to the copy's or older (a
primary rebuilt, or a copy suspected to differ). Secondaries of this server
then take the zone whole too. It needs a running server on the data
directory.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.zoneRefresh(cmd, args[0], true)
		},
	}
	return []*cobra.Command{refresh, retransfer}
}

// zoneRefresh asks the running server for a check (or a whole transfer)
// of origin and prints what it did.
func (g *globals) zoneRefresh(cmd *cobra.Command, origin string, retransfer bool) error {
	c, err := g.serverClient(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	do := c.Refresh
	if retransfer {
		do = c.Retransfer
	}
	res, err := do(cmdContext(cmd), origin)
	if err != nil {
		return err
	}
	if g.json {
		return g.printJSON(res)
	}
	fmt.Fprintln(g.stdout, describeRefresh(res, zone.Fqdn(origin)))
	return nil
}

// describeRefresh says in words what a check did.
func describeRefresh(res replication.RefreshResult, origin string) string {
	if res.Zone != "" {
		origin = res.Zone
	}
	switch {
	case res.Transfer == "":
		return fmt.Sprintf("zone %s: current at serial %d (primary %s has %d); nothing transferred",
			origin, res.Serial, res.Primary, res.PrimarySerial)
	case res.OldSerial == 0:
		return fmt.Sprintf("zone %s: serial %d transferred by %s from %s (there was no copy)", origin, res.Serial, res.Transfer, res.Primary)
	}
	return fmt.Sprintf("zone %s: serial %d -> %d by %s from %s", origin, res.OldSerial, res.Serial, res.Transfer, res.Primary)
}
