package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCheckZoneCmd(g *globals) *cobra.Command {
	var origin string
	cmd := &cobra.Command{
		Use:   "checkzone FILE",
		Short: "Validate a master file without storing it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parseZoneFile(args[0], origin)
			if err != nil {
				return err
			}
			z, err := p.Build()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "zone %s: serial %d, %d records, %d names: OK\n", z.Origin, z.Serial(), z.Len(), z.Names())
			return nil
		},
	}
	cmd.Flags().StringVar(&origin, "origin", "", "zone name (default: $ORIGIN or the SOA owner in the file)")
	return cmd
}

func newCheckConfCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "checkconf",
		Short: "Validate the configuration (file, environment and built-in defaults)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load(cmd)
			if err != nil {
				return err
			}
			src := "built-in defaults"
			if g.configFile != "" {
				src = g.configFile
			}
			fmt.Fprintf(g.stdout, "configuration OK (%s): listen %v, data_dir %s\n", src, c.Listen, c.DataDir)
			return nil
		},
	}
}
