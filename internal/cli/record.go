package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"

	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

func newRecordCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "record", Args: cobra.ArbitraryArgs, RunE: groupRunE, Short: "Add, delete and list records of a zone"}
	cmd.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON for scripts")
	cmd.AddCommand(newRecordAddCmd(g), newRecordDeleteCmd(g), newRecordListCmd(g))
	return cmd
}

// noTTL marks a record written without a TTL: no real TTL is this large.
const noTTL = 1<<32 - 1

// defaultTTL is the TTL of a record written without one whose RRset is new.
const defaultTTL = 3600

// parseRecords reads records in presentation format, names relative to
// origin. A record written without a TTL gets defaultTTL and is marked to
// take the TTL of its RRset, if the zone has it, when the change is made.
func parseRecords(origin string, texts []string) ([]control.Addition, error) {
	var out []control.Addition
	for i, text := range texts {
		// Each record is checked as an import checks it (bad hex or base64,
		// escapes over \255, generic data of the wrong length, oversized
		// data).
		p, err := zonestore.ParseRecords(text, origin, fmt.Sprintf("record %d", i+1), noTTL)
		if err != nil {
			return nil, err
		}
		if len(p.RRs) == 0 {
			return nil, fmt.Errorf("%q: no record", text)
		}
		for _, rr := range p.RRs {
			a := control.Addition{RR: rr}
			if h := rr.Header(); h.Ttl == noTTL {
				h.Ttl, a.InheritTTL = defaultTTL, true
			}
			out = append(out, a)
		}
	}
	return out, nil
}

func newRecordAddCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "add ZONE RECORD...",
		Short: "Add records, given in presentation format",
		Long: `Add records given in master-file presentation format, names relative to the
zone. The zone is validated as a whole and the serial moves forward; nothing
changes if any record is refused. A record's TTL becomes its RRset's TTL; a
record given without one takes its RRset's TTL, or 3600. With a transaction
of yours open on the zone (zone begin), the records are checked and staged
in it, and added at zone commit.`,
		Example: `  sovdns record add gov.az 'www 3600 IN A 192.0.2.10'
  sovdns record add gov.az 'mail MX 10 mx1.gov.az.' 'mx1 A 192.0.2.25'`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			origin := zone.Fqdn(args[0])
			adds, err := parseRecords(origin, args[1:])
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			db, _, err := g.openDB(cmd, false)
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := db.Edit(cmdContext(cmd), origin, control.Edit{Add: adds})
			if errors.Is(err, zonestore.ErrNoChange) {
				fmt.Fprintf(g.stderr, "sovdns: the records are already in %s; nothing changed\n", origin)
				return nil
			}
			if err != nil {
				return err
			}
			return g.report(res, fmt.Sprintf("added %d record(s) to %s", len(adds), origin))
		},
	}
}

func newRecordDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ZONE NAME [TYPE [RDATA...]]",
		Short: "Delete a record, an RRset, or everything at a name",
		Example: `  sovdns record delete gov.az www A 192.0.2.10   # one record
  sovdns record delete gov.az 'www A 192.0.2.10' # the same
  sovdns record delete gov.az www AAAA           # the whole RRset
  sovdns record delete gov.az old                # every record at old.gov.az.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			origin := zone.Fqdn(args[0])
			d, err := parseDeletion(origin, strings.Join(args[1:], " "))
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			db, _, err := g.openDB(cmd, false)
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := db.Edit(cmdContext(cmd), origin, control.Edit{Delete: []zonestore.Deletion{d}})
			if err != nil {
				return err
			}
			return g.report(res, fmt.Sprintf("deleted %s", d))
		},
	}
}

// parseDeletion reads "NAME [TYPE [RDATA...]]"; a class or TTL may appear
// as in a master file.
func parseDeletion(origin, text string) (zonestore.Deletion, error) {
	fields := strings.Fields(text)
	name := fields[0]
	if name == "@" {
		name = origin
	} else if !strings.HasSuffix(name, ".") {
		name = name + "." + origin
	}
	d := zonestore.Deletion{Name: zone.Fqdn(name)}
	rest := fields[1:]
	for len(rest) > 0 {
		if _, ok := dns.StringToClass[strings.ToUpper(rest[0])]; ok {
			rest = rest[1:]
			continue
		}
		if _, err := fmt.Sscanf(rest[0], "%d", new(uint32)); err == nil && len(rest) > 1 {
			rest = rest[1:]
			continue
		}
		break
	}
	if len(rest) == 0 {
		return d, nil
	}
	t, ok := dns.StringToType[strings.ToUpper(rest[0])]
	if !ok {
		var n uint16
		if _, err := fmt.Sscanf(strings.ToUpper(rest[0]), "TYPE%d", &n); err != nil {
			return d, fmt.Errorf("%q: unknown record type %q", text, rest[0])
		}
		t = n
	}
	d.Type = t
	if len(rest) == 1 {
		return d, nil
	}
	rr, err := dns.NewRR(fmt.Sprintf("$ORIGIN %s\n%s 0 IN %s", origin, d.Name, strings.Join(rest, " ")))
	if err != nil {
		return d, fmt.Errorf("%q: %w", text, err)
	}
	d.RR = rr
	return d, nil
}

func newRecordListCmd(g *globals) *cobra.Command {
	var name, typ string
	cmd := &cobra.Command{
		Use:   "list ZONE",
		Short: "List a zone's records",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			origin := zone.Fqdn(args[0])
			var want uint16
			if typ != "" {
				t, ok := dns.StringToType[strings.ToUpper(typ)]
				if !ok {
					return &exitError{code: 2, err: fmt.Errorf("--type: unknown record type %q", typ)}
				}
				want = t
			}
			var wantName string
			if name != "" {
				wantName = zone.Fqdn(name)
				if name == "@" {
					wantName = origin
				} else if !strings.HasSuffix(name, ".") {
					wantName = zone.Fqdn(name + "." + origin)
				}
			}
			db, _, err := g.openDB(cmd, true)
			if err != nil {
				return err
			}
			defer db.Close()
			rrs, err := db.Records(cmdContext(cmd), origin, wantName, want)
			if err != nil {
				return err
			}
			type jsonRR struct {
				Name  string `json:"name"`
				TTL   uint32 `json:"ttl"`
				Class string `json:"class"`
				Type  string `json:"type"`
				Data  string `json:"data"`
			}
			var list []jsonRR
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 1, ' ', 0)
			for _, rr := range rrs {
				h := rr.Header()
				data := strings.TrimPrefix(rr.String()[len(h.String()):], " ")
				if g.json {
					list = append(list, jsonRR{h.Name, h.Ttl, dns.ClassToString[h.Class], dns.Type(h.Rrtype).String(), data})
					continue
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", h.Name, h.Ttl, dns.ClassToString[h.Class], dns.Type(h.Rrtype), data)
			}
			if g.json {
				if list == nil {
					list = []jsonRR{}
				}
				return g.printJSON(list)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "only records at this name (relative to the zone or absolute)")
	cmd.Flags().StringVar(&typ, "type", "", "only records of this type")
	return cmd
}
