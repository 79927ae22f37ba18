// Package cli is the sovdns command line: a cobra command tree built fresh
// for every run, with no package-level state.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/sovdns/sovdns/configs"
	"github.com/sovdns/sovdns/internal/config"
	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/internal/progress"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// Version, when set at build time with -ldflags "-X ...cli.Version=...",
// replaces the version computed by version.
var Version = ""

// version reports the build's version: the release in configs/VERSION,
// followed by the commit it was built from (and "-modified" for a tree with
// uncommitted changes) when the build recorded it, as go build does in a
// git checkout.
func version() string {
	if Version != "" {
		return Version
	}
	v := configs.Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev string
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			v += "+" + rev
			if modified {
				v += "-modified"
			}
		}
	}
	return v
}

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// globals are the flags every command has.
type globals struct {
	configFile string
	json       bool
	stdout     io.Writer
	stderr     io.Writer
	// quiet turns the progress of long work off; progressEvery is the
	// time between its log lines (a hidden flag, for tests).
	quiet         bool
	progressEvery time.Duration
}

// Run executes the command line args (without the program name) and
// returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "sovdns: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var re *runError
	if !errors.As(err, &re) || invalidInput(err) {
		// cobra refused the command line (unknown command or flag, wrong
		// number of arguments), or the input given was not valid.
		return 2
	}
	return 1
}

// runError marks an error returned by a command's RunE, as opposed to one
// cobra returns for a bad command line.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// markRunErrors wraps the RunE of c and its subcommands so that Run can
// tell their errors from usage errors.
func markRunErrors(c *cobra.Command) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if err := run(cmd, args); err != nil {
				return &runError{err: err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		markRunErrors(sub)
	}
}

// invalidInput reports whether err is a problem with a zone file or
// records given on the command line, rather than with the store.
func invalidInput(err error) bool {
	if errors.Is(err, zonestore.ErrCorrupt) {
		return false
	}
	var re *zone.RecordError
	return errors.As(err, &re) || errors.Is(err, zonestore.ErrSyntax) || errors.Is(err, zonestore.ErrIncludeOutside)
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "sovdns",
		Short:         "sovdns: authoritative DNS from a local zone store, and a recursive resolver that keeps answering when cut off",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVarP(&g.configFile, "config", "c", os.Getenv("SOVDNS_CONFIG"), "configuration file (YAML); $SOVDNS_CONFIG")
	pf.String("data-dir", "", "directory of the zone database (data_dir)")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "show no progress of long work (a bar on a terminal, else a log line every 5s on standard error)")
	pf.DurationVar(&g.progressEvery, "progress-interval", progress.DefaultInterval, "time between two progress log lines")
	_ = pf.MarkHidden("progress-interval")
	root.AddCommand(
		newServeCmd(g),
		newZoneCmd(g),
		newRecordCmd(g),
		newDNSSECCmd(g),
		newKeyCmd(g),
		newCacheCmd(g),
		newReloadCmd(g),
		newCheckZoneCmd(g),
		newCheckConfCmd(g),
		newStatusCmd(g),
		newAuditCmd(g),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				fmt.Fprintf(g.stdout, "sovdns %s\n", version())
				return nil
			},
		},
	)
	markRunErrors(root)
	return root
}

// load reads the configuration with the command's flags.
func (g *globals) load(cmd *cobra.Command) (config.Config, error) {
	c, err := config.Load(g.configFile, cmd.Flags())
	if err != nil {
		return c, &exitError{code: 2, err: err}
	}
	return c, nil
}

// openStoreWith opens the zone database file under configuration c. A
// running server holds the file lock, so this fails fast with an error
// that matches errHeld instead of waiting.
func (g *globals) openStoreWith(c config.Config, readOnly bool) (*zonestore.Store, error) {
	if readOnly {
		if _, err := os.Stat(c.DBPath()); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no zone database at %s (data_dir %q): create a zone first", c.DBPath(), c.DataDir)
		}
	}
	st, err := zonestore.Open(c.DBPath(), zonestore.Options{
		ReadOnly:     readOnly,
		Timeout:      500 * time.Millisecond,
		SerialPolicy: c.Serial,
		Progress:     g.progress(c), // signing a whole zone
	})
	if errors.Is(err, zonestore.ErrLocked) {
		return nil, heldError("the zone database %s is held by a running sovdns server, but nothing answers on its "+
			"control socket %s; if the server runs under another data_dir setting or user, give the same --data-dir "+
			"and run as that user, or stop the server to work on the database directly",
			c.DBPath(), filepath.Join(c.DataDir, control.SocketName))
	}
	return st, err
}

// errHeld marks the error of a command that found the database held by a
// running server it could not reach.
var errHeld = errors.New("database held by a running server")

type heldErr struct{ msg string }

func (e *heldErr) Error() string        { return e.msg }
func (e *heldErr) Is(target error) bool { return target == errHeld }

func heldError(format string, args ...any) error {
	return &heldErr{msg: fmt.Sprintf(format, args...)}
}

func (g *globals) logger(c config.Config) *slog.Logger {
	return newLogger(g.stderr, c.Log)
}

// newLogger builds the logger of configuration lc, writing to w. JSON logs
// give durations as seconds (a float), the unit of the metrics, rather
// than slog's integer nanoseconds; text logs keep Go's "1.5s".
func newLogger(w io.Writer, lc config.LogConfig) *slog.Logger {
	level, _ := config.ParseLevel(lc.Level)
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		opts.ReplaceAttr = durationSeconds
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// durationSeconds is a slog ReplaceAttr that writes a time.Duration as
// seconds.
func durationSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key, a.Value.Duration().Seconds())
	}
	return a
}

// progress reports the progress of the command's long work on standard
// error (see package progress), logged under configuration c; nil with
// --quiet.
func (g *globals) progress(c config.Config) *progress.Progress {
	return progress.New(progress.Options{Out: g.stderr, Log: g.logger(c), Interval: g.progressEvery, Quiet: g.quiet})
}

// groupRunE serves a command that only groups others: without arguments it
// shows the help, with any it names the unknown subcommand (exit code 2).
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return &exitError{code: 2, err: fmt.Errorf("unknown command %q for %q; see %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())}
}
