package control

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/sovdns/sovdns/dnssec"
	"github.com/sovdns/sovdns/internal/replication"
	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// Sentinels of this package; test with errors.Is.
var (
	// ErrNoServer means no server answers on the control socket.
	ErrNoServer = errors.New("no running sovdns server")
	// ErrBadRequest is a request the API cannot read.
	ErrBadRequest = errors.New("bad control API request")
	// ErrUnauthorized is a request on TCP without a known bearer token.
	ErrUnauthorized = errors.New("a bearer token of control.tokens is needed")
	// ErrUnavailable is an operation this server does not offer.
	ErrUnavailable = errors.New("not available on this server")
)

// kindRecordError names zone.RecordError, the one error type (rather than
// sentinel) that travels.
const kindRecordError = "zone.RecordError"

// sentinels are the errors whose identity crosses the wire: an error
// answer names those its error matches (errors.Is), and the client's error
// matches them again. The names are the Go identifiers; a client ignores
// names it does not know.
var sentinels = []struct {
	kind string
	err  error
}{
	{"zonestore.ErrLocked", zonestore.ErrLocked},
	{"zonestore.ErrNoZone", zonestore.ErrNoZone},
	{"zonestore.ErrZoneExists", zonestore.ErrZoneExists},
	{"zonestore.ErrSyntax", zonestore.ErrSyntax},
	{"zonestore.ErrIncludeOutside", zonestore.ErrIncludeOutside},
	{"zonestore.ErrBadVersion", zonestore.ErrBadVersion},
	{"zonestore.ErrCorrupt", zonestore.ErrCorrupt},
	{"zonestore.ErrNotFound", zonestore.ErrNotFound},
	{"zonestore.ErrNoChange", zonestore.ErrNoChange},
	{"zonestore.ErrReadOnly", zonestore.ErrReadOnly},
	{"zonestore.ErrNotSigned", zonestore.ErrNotSigned},
	{"zonestore.ErrKeysExist", zonestore.ErrKeysExist},
	{"zonestore.ErrSecondary", zonestore.ErrSecondary},
	{"zonestore.ErrNotSecondary", zonestore.ErrNotSecondary},
	{"zonestore.ErrSerialNotNewer", zonestore.ErrSerialNotNewer},
	{"zonestore.ErrNoJournal", zonestore.ErrNoJournal},
	{"zonestore.ErrTxnOpen", zonestore.ErrTxnOpen},
	{"zonestore.ErrNoTxn", zonestore.ErrNoTxn},
	{"zonestore.ErrTxnUser", zonestore.ErrTxnUser},
	{"zone.ErrNoSOA", zone.ErrNoSOA},
	{"zone.ErrMultipleSOA", zone.ErrMultipleSOA},
	{"zone.ErrSOANotApex", zone.ErrSOANotApex},
	{"zone.ErrNoApexNS", zone.ErrNoApexNS},
	{"zone.ErrOutOfZone", zone.ErrOutOfZone},
	{"zone.ErrCNAMEConflict", zone.ErrCNAMEConflict},
	{"zone.ErrMultipleCNAME", zone.ErrMultipleCNAME},
	{"zone.ErrDNAMEConflict", zone.ErrDNAMEConflict},
	{"zone.ErrBelowDNAME", zone.ErrBelowDNAME},
	{"zone.ErrOccluded", zone.ErrOccluded},
	{"zone.ErrDSAtApex", zone.ErrDSAtApex},
	{"zone.ErrBadTTL", zone.ErrBadTTL},
	{"zone.ErrBadClass", zone.ErrBadClass},
	{"zone.ErrBadType", zone.ErrBadType},
	{"zone.ErrNoRdata", zone.ErrNoRdata},
	{"zone.ErrOrphanRRSIG", zone.ErrOrphanRRSIG},
	{"zone.ErrWildcardNS", zone.ErrWildcardNS},
	{"zone.ErrNSEC3Owner", zone.ErrNSEC3Owner},
	{"zone.ErrTooManyErrors", zone.ErrTooManyErrors},
	{"dnssec.ErrAlgorithm", dnssec.ErrAlgorithm},
	{"dnssec.ErrPolicy", dnssec.ErrPolicy},
	{"dnssec.ErrExpiryGuard", dnssec.ErrExpiryGuard},
	{"dnssec.ErrRollover", dnssec.ErrRollover},
	{"dnssec.ErrNoRollover", dnssec.ErrNoRollover},
	{"dnssec.ErrParentDS", dnssec.ErrParentDS},
	{"dnssec.ErrTooSoon", dnssec.ErrTooSoon},
	{"dnssec.ErrKeyKind", dnssec.ErrKeyKind},
	{"dnssec.ErrNoSigningKey", dnssec.ErrNoSigningKey},
	{"dnssec.ErrManagedData", dnssec.ErrManagedData},
	{"dnssec.ErrHashClash", dnssec.ErrHashClash},
	{"dnssec.ErrKeyData", dnssec.ErrKeyData},
	{"control.ErrBadRequest", ErrBadRequest},
	{"control.ErrUnauthorized", ErrUnauthorized},
	{"control.ErrUnavailable", ErrUnavailable},
	{"replication.ErrNotSecondary", replication.ErrNotSecondary},
}

// errorBody is an error answer.
type errorBody struct {
	Error string   `json:"error"`
	Kinds []string `json:"kinds,omitempty"`
}

// kindsOf names the sentinels err matches, and zone.RecordError if it
// holds one.
func kindsOf(err error) []string {
	var out []string
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			out = append(out, s.kind)
		}
	}
	var re *zone.RecordError
	if errors.As(err, &re) {
		out = append(out, kindRecordError)
	}
	return out
}

// statusOf is the HTTP status of an error answer. Clients go by the
// kinds; the status is for people reading the API with curl.
func statusOf(err error) int {
	var re *zone.RecordError
	switch {
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrUnavailable):
		return http.StatusNotImplemented
	case errors.Is(err, zonestore.ErrCorrupt):
		return http.StatusInternalServerError
	case errors.Is(err, zonestore.ErrNoZone), errors.Is(err, zonestore.ErrNotSigned), errors.Is(err, zonestore.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, replication.ErrNotSecondary):
		return http.StatusConflict
	case errors.Is(err, zonestore.ErrZoneExists), errors.Is(err, zonestore.ErrNoChange), errors.Is(err, zonestore.ErrSecondary),
		errors.Is(err, zonestore.ErrKeysExist), errors.Is(err, dnssec.ErrRollover), errors.Is(err, dnssec.ErrNoRollover),
		errors.Is(err, dnssec.ErrParentDS), errors.Is(err, dnssec.ErrTooSoon),
		errors.Is(err, zonestore.ErrTxnOpen), errors.Is(err, zonestore.ErrNoTxn), errors.Is(err, zonestore.ErrTxnUser):
		return http.StatusConflict
	case errors.As(err, &re), errors.Is(err, ErrBadRequest), errors.Is(err, zonestore.ErrSyntax),
		errors.Is(err, dnssec.ErrPolicy), errors.Is(err, dnssec.ErrAlgorithm), errors.Is(err, dnssec.ErrExpiryGuard),
		errors.Is(err, dnssec.ErrKeyKind), errors.Is(err, dnssec.ErrManagedData):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// writeError answers with err as an error body.
func writeError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(statusOf(err))
	_ = json.NewEncoder(w).Encode(errorBody{Error: err.Error(), Kinds: kindsOf(err)})
}

// Error is an error answer of the API, rebuilt by the client: its text is
// the server's, and it matches (errors.Is) the sentinels the server's
// error matched, so that a caller treats it as it would the local error.
type Error struct {
	Msg    string
	Kinds  []string
	Status int
}

func (e *Error) Error() string { return e.Msg }

// Is reports whether the server's error matched target.
func (e *Error) Is(target error) bool {
	for _, s := range sentinels {
		if s.err == target {
			return slices.Contains(e.Kinds, s.kind)
		}
	}
	return false
}

// As fills a *zone.RecordError target when the server's error held one:
// it carries the message, not the record's position.
func (e *Error) As(target any) bool {
	p, ok := target.(**zone.RecordError)
	if !ok || !slices.Contains(e.Kinds, kindRecordError) {
		return false
	}
	*p = &zone.RecordError{Index: -1, Err: errors.New(e.Msg)}
	return true
}
