package control

import (
	"context"
	"fmt"
	"net/http"

	"github.com/sovdns/sovdns/internal/replication"
)

// Replication is what the control API reaches of the node's replication:
// checks and whole transfers of secondary zones on request, and which
// copies past their expire time are kept while the node is cut off.
// *replication.Node is one.
type Replication interface {
	Refresh(ctx context.Context, origin string, retransfer bool) (replication.RefreshResult, error)
	// KeptZones is the set of secondary zones past their expire time
	// that are kept, and served, while the node is cut off.
	KeptZones() map[string]bool
	// NotifyPending is the number of NOTIFYs waiting or under way.
	NotifyPending() int
	// Secondaries is the configured secondary zones, for sovdns status.
	Secondaries() []replication.SecondaryZone
}

var _ Replication = (*replication.Node)(nil)

// replicationRoutes adds POST /v1/zone/refresh (check the primaries' SOA
// now, transfer if newer) and POST /v1/zone/retransfer (AXFR now, whatever
// the serials). Each waits for the outcome and answers with a
// replication.RefreshResult.
func replicationRoutes(mux *http.ServeMux, node Node) {
	for path, retransfer := range map[string]bool{"POST /v1/zone/refresh": false, "POST /v1/zone/retransfer": true} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			origin, err := zoneParam(r)
			if err != nil {
				writeError(w, err)
				return
			}
			if node.Replication == nil {
				writeError(w, fmt.Errorf("replication: %w", ErrUnavailable))
				return
			}
			res, err := node.Replication.Refresh(r.Context(), origin, retransfer)
			if err != nil {
				writeError(w, err)
				return
			}
			writeJSON(w, res)
		})
	}
}

// Refresh has the server check the secondary zone at its primaries now
// and transfer it if it is newer.
func (c *Client) Refresh(ctx context.Context, origin string) (replication.RefreshResult, error) {
	var out replication.RefreshResult
	err := c.call(ctx, http.MethodPost, "/v1/zone/refresh", zoneQuery(origin), nil, &out)
	return out, err
}

// Retransfer has the server transfer the secondary zone whole (AXFR) now,
// whatever the serials.
func (c *Client) Retransfer(ctx context.Context, origin string) (replication.RefreshResult, error) {
	var out replication.RefreshResult
	err := c.call(ctx, http.MethodPost, "/v1/zone/retransfer", zoneQuery(origin), nil, &out)
	return out, err
}
