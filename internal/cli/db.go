package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/config"
	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// zoneDB is what the zone, record, dnssec and key commands do with the
// zone database. control.Local does it on the database file, when no
// server holds it; control.Client asks the running server that does,
// through its control socket, and the server runs control.Local. Either
// way the same zonestore calls are made, with the same results and
// errors.
type zoneDB interface {
	Zones(ctx context.Context, pattern string) ([]zonestore.ZoneInfo, error)
	ZoneList(ctx context.Context, pattern string, asJSON bool, w io.Writer) error
	Zone(ctx context.Context, origin string) (control.ZoneDetail, error)
	Export(ctx context.Context, origin string, w io.Writer) error
	Import(ctx context.Context, z *zone.Zone, replace bool) (control.Result, error)
	ImportMany(ctx context.Context, zs []*zone.Zone, replace bool, progress func(int)) ([]control.ImportOutcome, error)
	Delete(ctx context.Context, origin string) error
	Records(ctx context.Context, origin, name string, rrtype uint16) ([]dns.RR, error)
	Edit(ctx context.Context, origin string, e control.Edit) (control.Result, error)
	History(ctx context.Context, origin string, limit int) ([]zonestore.Entry, error)
	Begin(ctx context.Context, origin string) (zonestore.TxnInfo, error)
	Diff(ctx context.Context, origin string) (control.TxnDiff, error)
	Commit(ctx context.Context, origin string) (control.Result, error)
	Abort(ctx context.Context, origin string, force bool) (zonestore.TxnInfo, error)
	DNSSEC(ctx context.Context, origin string) (zonestore.DNSSECStatus, error)
	DS(ctx context.Context, origin string, digest uint8) ([]*dns.DS, error)
	EnableDNSSEC(ctx context.Context, origin string, p dnssec.Policy) (control.Result, error)
	DisableDNSSEC(ctx context.Context, origin string, force bool) (string, control.Result, error)
	GenerateKeys(ctx context.Context, origin string, p dnssec.Policy) ([]control.NewKey, error)
	Rollover(ctx context.Context, origin string, role dnssec.Role, next, force bool) (string, control.Result, error)
	Close() error
}

var (
	_ zoneDB = control.Local{}
	_ zoneDB = (*control.Client)(nil)
)

// How long a command waits for the control socket of a server that holds
// the database but may still be starting.
const (
	socketWait     = 3 * time.Second
	socketWaitStep = 50 * time.Millisecond
)

// openDB returns the zone database the command works on: the running
// server, when one answers on the data directory's control socket, else
// the database file (read-only for readOnly commands), whose changes are
// journaled as made by the user running the command. The caller closes
// it.
func (g *globals) openDB(cmd *cobra.Command, readOnly bool) (zoneDB, config.Config, error) {
	c, err := g.load(cmd)
	if err != nil {
		return nil, c, err
	}
	sock := filepath.Join(c.DataDir, control.SocketName)
	if control.Answers(sock) {
		return control.NewClient(sock), c, nil
	}
	st, err := g.openStoreWith(c, readOnly)
	if errors.Is(err, errHeld) {
		// A server that is starting holds the database a moment before
		// its control socket answers.
		ctx := cmdContext(cmd)
		for range int(socketWait / socketWaitStep) {
			select {
			case <-ctx.Done():
				return nil, c, ctx.Err()
			case <-time.After(socketWaitStep):
			}
			if control.Answers(sock) {
				return control.NewClient(sock), c, nil
			}
		}
		return nil, c, err
	}
	if err != nil {
		return nil, c, err
	}
	return control.Local{Store: st.As(control.UnixAuthor(os.Getuid())), Parent: parentChecker(st, nil, uint16(c.Resolver.UpstreamPort))}, c, nil
}

// serverClient returns a client for the running server's control socket,
// or an error saying that no server runs on the data directory.
func (g *globals) serverClient(cmd *cobra.Command) (*control.Client, error) {
	c, err := g.load(cmd)
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(c.DataDir, control.SocketName)
	if !control.Answers(sock) {
		return nil, fmt.Errorf("%w on data directory %s: nothing answers on its control socket %s", control.ErrNoServer, c.DataDir, sock)
	}
	return control.NewClient(sock), nil
}

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
