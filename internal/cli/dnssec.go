package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

func newDNSSECCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "dnssec", Args: cobra.ArbitraryArgs, RunE: groupRunE, Short: "Sign zones: enable, disable, status, DS for the parent"}
	cmd.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON for scripts")
	cmd.AddCommand(newDNSSECEnableCmd(g), newDNSSECDisableCmd(g), newDNSSECStatusCmd(g), newDNSSECDSCmd(g))
	return cmd
}

func newKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "key", Args: cobra.ArbitraryArgs, RunE: groupRunE, Short: "A signed zone's keys: list, generate, rollover"}
	cmd.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON for scripts")
	cmd.AddCommand(newKeyListCmd(g), newKeyGenerateCmd(g), newKeyRolloverCmd(g))
	return cmd
}

// policyFlags adds the signing-policy flags to fs.
func policyFlags(fs *pflag.FlagSet) {
	fs.String("algorithm", "13", "13 (ECDSAP256SHA256), 15 (ED25519) or 8 (RSASHA256)")
	fs.Bool("split-keys", false, "sign with a KSK and a ZSK instead of one combined key (CSK)")
	fs.Int("rsa-bits", 0, "RSA modulus size for algorithm 8 (2048..4096; 0: 2048)")
	fs.Bool("nsec3", false, "deny existence with NSEC3 (RFC 5155) instead of NSEC")
	fs.Uint16("iterations", 0, "NSEC3 extra iterations (RFC 9276: 0)")
	fs.String("salt", "", "NSEC3 salt, hex (RFC 9276: none)")
	fs.Bool("opt-out", false, "NSEC3 opt-out: unsigned delegations get no NSEC3 record")
	fs.String("validity", "", "signature validity, e.g. 21d (default 21d)")
	fs.String("refresh", "", "re-sign when less than this is left, e.g. 15d (default 15d)")
	fs.String("jitter", "", "spread of signature expiry times (default 12h)")
	fs.String("propagation-delay", "", "added to every rollover wait (default 1h)")
	fs.StringSlice("parent-server", nil, "a server of the parent zone (IP or IP:port) that KSK and CSK rollovers ask for the zone's DS; repeat for each, \"none\" to clear (default: the parent zone when held here, or else its NS found through a resolver)")
}

func parseAlgorithm(s string) (uint8, error) {
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		return uint8(n), nil
	}
	if a, ok := dns.StringToAlgorithm[strings.ToUpper(s)]; ok {
		return a, nil
	}
	return 0, fmt.Errorf("--algorithm %q: %w", s, dnssec.ErrAlgorithm)
}

// policyFrom applies the flags that were given to base.
func policyFrom(fs *pflag.FlagSet, base dnssec.Policy) (dnssec.Policy, error) {
	p := base
	var err error
	if fs.Changed("algorithm") {
		v, _ := fs.GetString("algorithm")
		if p.Algorithm, err = parseAlgorithm(v); err != nil {
			return p, err
		}
	}
	if fs.Changed("split-keys") {
		p.SplitKeys, _ = fs.GetBool("split-keys")
	}
	if fs.Changed("rsa-bits") {
		p.RSABits, _ = fs.GetInt("rsa-bits")
	}
	if fs.Changed("nsec3") {
		if on, _ := fs.GetBool("nsec3"); on {
			p.Denial = dnssec.DenialNSEC3
		} else {
			p.Denial, p.Iterations, p.Salt, p.OptOut = dnssec.DenialNSEC, 0, "", false
		}
	}
	if fs.Changed("iterations") {
		p.Iterations, _ = fs.GetUint16("iterations")
	}
	if fs.Changed("salt") {
		p.Salt, _ = fs.GetString("salt")
		p.Salt = strings.ToUpper(strings.TrimPrefix(p.Salt, "-"))
	}
	if fs.Changed("opt-out") {
		p.OptOut, _ = fs.GetBool("opt-out")
	}
	if fs.Changed("parent-server") {
		v, _ := fs.GetStringSlice("parent-server")
		p.ParentServers = nil
		for _, s := range v {
			if s != "none" && s != "" {
				p.ParentServers = append(p.ParentServers, s)
			}
		}
	}
	for _, d := range []struct {
		flag string
		to   *dnssec.Duration
	}{{"validity", &p.Validity}, {"refresh", &p.Refresh}, {"jitter", &p.Jitter}, {"propagation-delay", &p.PropagationDelay}} {
		if !fs.Changed(d.flag) {
			continue
		}
		v, _ := fs.GetString(d.flag)
		dur, err := dnssec.ParseDuration(v)
		if err != nil {
			return p, fmt.Errorf("--%s: %w", d.flag, err)
		}
		*d.to = dnssec.Duration(dur)
	}
	return p, p.Check()
}

// dnssecInputError marks policy mistakes as bad input (exit code 2).
func dnssecInputError(err error) error {
	if errors.Is(err, dnssec.ErrPolicy) || errors.Is(err, dnssec.ErrAlgorithm) || errors.Is(err, dnssec.ErrExpiryGuard) ||
		errors.Is(err, dnssec.ErrKeyKind) {
		return &exitError{code: 2, err: err}
	}
	return err
}

func newDNSSECEnableCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "enable ZONE",
		Short: "Sign a zone, or change how a signed zone is signed",
		Long: `Sign the zone: keys are made (or the zone's existing ones used), every RRset
is signed and the NSEC or NSEC3 chain built, in one transaction. Edits are
signed as they are made, and a running server refreshes signatures before
they expire. On a signed zone, the flags given change its policy.

On a signed zone, --algorithm with another algorithm starts an algorithm
rollover (RFC 6781 4.1.4, the conservative way): keys of the new algorithm
sign every RRset at once; they enter DNSKEY once every cached RRset
carries their signatures (the zone's largest TTL); once every parent
server publishes their DS (asked as key rollover --help says) and its TTL
has passed, the old keys leave DNSKEY; their signatures go a DNSKEY TTL
later. A running server takes each step; key rollover ZONE ksk --continue
takes the DS step at once.

The expiry guard refuses a policy whose refresh window is shorter than the
zone's SOA EXPIRE plus its largest TTL: a secondary may serve a copy that
long after its last transfer, and its signatures must not expire first.
When a zone is first signed without --validity or --refresh, they are
chosen to fit it (21 and 15 days, or longer as its SOA EXPIRE and TTLs
need) and printed; values given are checked as given, and a refusal
names values that would do.

The RRsets signed are counted on standard error (a bar on a terminal,
else a log line every 5 seconds; --quiet turns it off). With a server
running, the server signs, and its log has those lines.`,
		Example: `  sovdns dnssec enable gov.az
  sovdns dnssec enable gov.az --nsec3 --split-keys
  sovdns dnssec ds gov.az     # the DS records for the parent`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			origin := zone.Fqdn(args[0])
			db, _, err := g.openDB(cmd, false)
			if err != nil {
				return err
			}
			defer db.Close()
			ctx := cmdContext(cmd)
			// The flags given change the zone's current policy, if any.
			base := dnssec.DefaultPolicy()
			cur, err := db.DNSSEC(ctx, origin)
			switch {
			case errors.Is(err, zonestore.ErrNoZone):
				return err
			case err == nil && cur.Policy != nil:
				base = *cur.Policy
			}
			p, err := policyFrom(cmd.Flags(), base)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			switch {
			case cmd.Flags().Changed("validity") || cmd.Flags().Changed("refresh"):
				p.FitTiming = false // the operator's choice, checked as given
			case cur.Policy == nil:
				p.FitTiming = true // chosen to fit the zone's SOA EXPIRE and TTLs
			}
			res, err := db.EnableDNSSEC(ctx, origin, p)
			if err != nil {
				return dnssecInputError(err)
			}
			timing := ""
			st, err := db.DNSSEC(ctx, origin)
			if err == nil && st.Policy != nil && st.Policy.AlgorithmFrom != 0 && (cur.Policy == nil || cur.Policy.AlgorithmFrom == 0) {
				return g.report(res, fmt.Sprintf("algorithm rollover of %s from %d to %d started: the new keys sign now, enter DNSKEY once every cached RRset carries their signatures, "+
					"and replace the old ones once every parent server publishes their DS (sovdns dnssec ds %s); a running server takes each step, sovdns dnssec status shows the next",
					origin, st.Policy.AlgorithmFrom, st.Policy.Algorithm, origin))
			}
			if err == nil && st.Policy != nil {
				how := "as given"
				if st.Policy.FitTiming {
					how = "chosen for the zone's SOA EXPIRE and largest TTL"
				}
				timing = fmt.Sprintf("; signatures valid %s, refreshed with %s left (%s)", days(st.Policy.Validity.D()), days(st.Policy.Refresh.D()), how)
			}
			return g.report(res, fmt.Sprintf("signed %s (%s, algorithm %d)%s; give the parent its DS: sovdns dnssec ds %s", origin, p.Denial, p.Algorithm, timing, origin))
		},
	}
	policyFlags(cmd.Flags())
	return cmd
}

func newDNSSECDisableCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "disable ZONE",
		Short: "Turn a zone's signing off, once the parent has removed its DS",
		Long: `Turn the zone's signing off without making it bogus. The zone stays signed,
and its CDS and CDNSKEY become the RFC 8078 delete records ("0 0 0 00",
"0 3 0 AA=="), which ask a parent that scans for them to remove the DS
(others must be told). A running server asks the parent's servers hourly
(see key rollover --help for which servers) and removes the signatures,
DNSKEY, CDS, CDNSKEY and NSEC/NSEC3 records once none of them publishes a
DS and the DS TTL has passed. Running disable again takes that step now if
the parent allows it. --force removes them at once, whatever the parent
publishes. dnssec enable cancels the change. The keys are kept, so
enabling again signs with the same keys.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			origin := zone.Fqdn(args[0])
			db, _, err := g.openDB(cmd, false)
			if err != nil {
				return err
			}
			defer db.Close()
			force, _ := cmd.Flags().GetBool("force")
			msg, res, err := db.DisableDNSSEC(cmdContext(cmd), origin, force)
			if err != nil {
				return err
			}
			return g.report(res, msg)
		},
	}
	cmd.Flags().Bool("force", false, "remove the signatures now, even while the parent publishes a DS (the zone goes bogus for validating resolvers until the DS is gone)")
	return cmd
}

func newDNSSECStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status ZONE",
		Short: "Show a zone's signing policy, keys, rollover steps and the time left on its signatures",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.dnssecStatus(cmd, args[0])
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(s)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "zone:\t%s\n", s.Zone)
			if !s.Signed {
				fmt.Fprintf(tw, "signed:\tno\n")
			} else {
				p := s.Policy
				keys := "one combined key (CSK)"
				if p.SplitKeys {
					keys = "KSK + ZSK"
				}
				denial := string(p.Denial)
				if p.Denial == dnssec.DenialNSEC3 {
					salt := p.Salt
					if salt == "" {
						salt = "-"
					}
					denial = fmt.Sprintf("nsec3, %d iterations, salt %s, opt-out %v", p.Iterations, salt, p.OptOut)
				}
				fmt.Fprintf(tw, "signed:\tyes, algorithm %d (%s), %s\n", p.Algorithm, dns.AlgorithmToString[p.Algorithm], keys)
				fmt.Fprintf(tw, "denial:\t%s\n", denial)
				fmt.Fprintf(tw, "signatures:\tvalid %s, refreshed with %s left, jitter %s\n", days(p.Validity.D()), days(p.Refresh.D()), days(p.Jitter.D()))
				if !s.FirstExpiry.IsZero() {
					fmt.Fprintf(tw, "earliest expiry:\t%s (%s left)\n", s.FirstExpiry.Format(time.RFC3339), days(time.Duration(s.Left)*time.Second))
					fmt.Fprintf(tw, "next refresh:\t%s\n", s.Refresh.Format(time.RFC3339))
				}
				if s.Guard != "" {
					fmt.Fprintf(tw, "WARNING:\t%s\n", s.Guard)
				}
			}
			for _, k := range s.Keys {
				fmt.Fprintf(tw, "key %s:\t%s, %s since %s\n", k.ID, k.Role, k.State, k.Changed.Format(time.RFC3339))
			}
			for _, step := range s.Steps {
				fmt.Fprintf(tw, "next step:\t%s\n", strings.ReplaceAll(step, "ZONE", s.Zone))
			}
			if s.Policy != nil && len(s.Policy.ParentServers) > 0 {
				fmt.Fprintf(tw, "parent servers:\t%s\n", strings.Join(s.Policy.ParentServers, " "))
			}
			if v := s.Parent; v != nil && len(s.Steps) > 0 {
				asked := v.Checked.Format(time.RFC3339)
				if v.Parent != "" {
					asked += ", zone " + v.Parent
				}
				fmt.Fprintf(tw, "parent asked:\t%s\n", asked)
				if v.Err != "" {
					fmt.Fprintf(tw, "  error:\t%s\n", v.Err)
				}
				for _, srv := range v.Servers {
					fmt.Fprintf(tw, "  %s:\t%s\n", srv.Server, parentAnswer(srv))
				}
			}
			return tw.Flush()
		},
	}
}

// parentAnswer says what one parent server published: its DS records by
// key (algorithm-tag) and TTL, or why it gave no answer.
func parentAnswer(s dnssec.ParentServer) string {
	if s.Err != "" {
		return "no answer: " + s.Err
	}
	if len(s.DS) == 0 {
		return "no DS"
	}
	ids := make([]string, len(s.DS))
	for i, ds := range s.DS {
		ids[i] = fmt.Sprintf("%d-%d", ds.Algorithm, ds.KeyTag)
	}
	return fmt.Sprintf("DS of %s, TTL %d", strings.Join(ids, " "), s.TTL)
}

func newDNSSECDSCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ds ZONE",
		Short: "Print the DS records the parent zone should publish",
		Long: `Print the DS records for the zone's key-signing keys: the active one and,
during a KSK rollover, the new one too. Give them to the parent's operator
(the zone also publishes them as CDS and CDNSKEY, RFC 7344).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			digest, _ := cmd.Flags().GetUint8("digest")
			if digest != dns.SHA256 && digest != dns.SHA384 {
				return &exitError{code: 2, err: fmt.Errorf("--digest %d: use 2 (SHA-256) or 4 (SHA-384)", digest)}
			}
			db, _, err := g.openDB(cmd, true)
			if err != nil {
				return err
			}
			defer db.Close()
			ds, err := db.DS(cmdContext(cmd), args[0], digest)
			if err != nil {
				return err
			}
			out := make([]string, len(ds))
			for i, d := range ds {
				out[i] = d.String()
			}
			if g.json {
				return g.printJSON(out)
			}
			for _, d := range out {
				fmt.Fprintln(g.stdout, d)
			}
			return nil
		},
	}
	cmd.Flags().Uint8("digest", dns.SHA256, "digest type: 2 (SHA-256) or 4 (SHA-384)")
	return cmd
}

func newKeyListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list ZONE",
		Short: "List a zone's keys with their roles and states",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.dnssecStatus(cmd, args[0])
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(s.Keys)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTAG\tALGORITHM\tROLE\tSTATE\tSINCE")
			for _, k := range s.Keys {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", k.ID, k.Tag, k.Algorithm, k.Role, k.State, k.Changed.Format(time.RFC3339))
			}
			if len(s.Keys) == 0 {
				fmt.Fprintln(tw, "(no keys)")
			}
			return tw.Flush()
		},
	}
}

func newKeyGenerateCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "generate ZONE",
		Short: "Make a not yet signed zone's keys ahead of dnssec enable",
		Long: `Make the keys a zone will be signed with, without signing it yet, so their
DS records can be prepared. dnssec enable then uses them. A zone that has
keys changes them by rollover.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policyFrom(cmd.Flags(), dnssec.DefaultPolicy())
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			db, _, err := g.openDB(cmd, false)
			if err != nil {
				return err
			}
			defer db.Close()
			keys, err := db.GenerateKeys(cmdContext(cmd), zone.Fqdn(args[0]), p)
			if err != nil {
				return err
			}
			for _, k := range keys {
				fmt.Fprintf(g.stdout, "%s %s %s\n", k.ID, k.Role, k.DNSKEY)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.String("algorithm", "13", "13 (ECDSAP256SHA256), 15 (ED25519) or 8 (RSASHA256)")
	f.Bool("split-keys", false, "a KSK and a ZSK instead of one combined key (CSK)")
	f.Int("rsa-bits", 0, "RSA modulus size for algorithm 8 (2048..4096; 0: 2048)")
	return cmd
}

func newKeyRolloverCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollover ZONE zsk|ksk",
		Short: "Replace a key: ZSK by pre-publication, KSK (or CSK) by double-DS",
		Long: `zsk: a new ZSK is published at once, signs the zone after the DNSKEY TTL
plus the propagation delay, and the old one is removed after the zone's
largest TTL plus the propagation delay. A running server makes these steps.

ksk (the CSK when the zone has one combined key): a new key is made,
published in DNSKEY and its DS offered (sovdns dnssec ds, CDS, CDNSKEY).
A running server asks the parent's servers for the zone's DS at every
signing maintenance run (hourly): the servers named by dnssec enable
--parent-server, or the parent zone itself when this node holds it, or
the parent's NS found through the resolver. Once every one of them
publishes the new DS and its TTL has passed, the new key replaces the old
one; the old key is deleted once they have all withdrawn its DS (a CSK
not before its signatures have left caches).

--continue takes the next step now. It asks the parent's servers first
and refuses while one of them lacks the new DS, or while caches may still
hold the DNSKEY RRset without the new key; --force takes the step anyway.
sovdns dnssec status shows the step a rollover waits for, and what each
parent server publishes.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			role := dnssec.Role(strings.ToLower(args[1]))
			switch role {
			case dnssec.RoleZSK, dnssec.RoleKSK:
			case dnssec.RoleCSK:
				role = dnssec.RoleKSK
			default:
				return &exitError{code: 2, err: fmt.Errorf("key kind %q: use zsk or ksk", args[1])}
			}
			db, _, err := g.openDB(cmd, false)
			if err != nil {
				return err
			}
			defer db.Close()
			next, _ := cmd.Flags().GetBool("continue")
			force, _ := cmd.Flags().GetBool("force")
			if force && !next {
				return &exitError{code: 2, err: errors.New("--force goes with --continue")}
			}
			msg, res, err := db.Rollover(cmdContext(cmd), zone.Fqdn(args[0]), role, next, force)
			if err != nil {
				return dnssecInputError(err)
			}
			return g.report(res, msg)
		},
	}
	cmd.Flags().Bool("continue", false, "take the next step of a KSK or CSK rollover now, if every parent server publishes the new DS")
	cmd.Flags().Bool("force", false, "with --continue: take the step whatever the parent publishes")
	return cmd
}

// dnssecStatus reads a zone's signing state.
func (g *globals) dnssecStatus(cmd *cobra.Command, name string) (zonestore.DNSSECStatus, error) {
	db, _, err := g.openDB(cmd, true)
	if err != nil {
		return zonestore.DNSSECStatus{}, err
	}
	defer db.Close()
	return db.DNSSEC(cmdContext(cmd), name)
}

// days writes a duration as days and hours: "14d 3h", "12h", "40m".
func days(d time.Duration) string {
	if d < time.Hour {
		return d.Round(time.Second).String()
	}
	n, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	switch {
	case n == 0:
		return fmt.Sprintf("%dh", h)
	case h == 0:
		return fmt.Sprintf("%dd", n)
	}
	return fmt.Sprintf("%dd %dh", n, h)
}
