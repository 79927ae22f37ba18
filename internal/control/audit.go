package control

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sovdns/sovdns/internal/audit"
)

// MaxAuditTimeout bounds the timeout parameter of GET /v1/audit/deps, below
// the client's limit on a whole request.
const MaxAuditTimeout = 9 * time.Minute

// auditDepsHandler answers GET /v1/audit/deps?zone=Z&suffix=S[&suffix=S...]
// [&timeout=D]: the foreign-dependency audit of the stored zone Z, whose
// chains are followed with the node's resolver (through the zone's own
// data when the node does not resolve).
func auditDepsHandler(node Node) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rep, err := auditDeps(r, node)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, rep)
	}
}

func auditDeps(r *http.Request, node Node) (audit.Report, error) {
	origin, err := zoneParam(r)
	if err != nil {
		return audit.Report{}, err
	}
	q := r.URL.Query()
	var opts audit.Options
	if s := q.Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > MaxAuditTimeout {
			return audit.Report{}, fmt.Errorf("%w: timeout %q: must be a duration up to %v", ErrBadRequest, s, MaxAuditTimeout)
		}
		opts.Timeout = d
	}
	if node.Store == nil {
		return audit.Report{}, fmt.Errorf("zone store: %w", ErrUnavailable)
	}
	z, err := node.Store.Load(origin)
	if err != nil {
		return audit.Report{}, err
	}
	var res audit.Resolver
	if rec := recursiveResolver(node); rec != nil {
		res = rec
	}
	rep, err := audit.Deps(r.Context(), z, q["suffix"], res, opts)
	if errors.Is(err, audit.ErrNoSuffixes) || errors.Is(err, audit.ErrNotNational) {
		return audit.Report{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return rep, err
}
