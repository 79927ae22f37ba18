package zone

import (
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// Sentinels for the checks Build makes; test with errors.Is.
var (
	ErrNoSOA         = errors.New("zone has no SOA record at its apex")
	ErrMultipleSOA   = errors.New("zone has more than one SOA record")
	ErrSOANotApex    = errors.New("SOA record is not at the zone apex")
	ErrNoApexNS      = errors.New("zone has no NS records at its apex")
	ErrOutOfZone     = errors.New("record is outside the zone")
	ErrCNAMEConflict = errors.New("CNAME cannot coexist with other data")
	ErrMultipleCNAME = errors.New("more than one CNAME record at a name")
	ErrDNAMEConflict = errors.New("more than one DNAME record at a name")
	ErrBelowDNAME    = errors.New("name is below a DNAME and can never be reached")
	ErrOccluded      = errors.New("only glue (A/AAAA) is allowed at or below a delegation")
	ErrDSAtApex      = errors.New("DS record at the zone apex belongs in the parent zone")
	ErrBadTTL        = errors.New("TTL is larger than 2147483647 (RFC 2181 §8)")
	ErrBadClass      = errors.New("only class IN is served")
	ErrBadType       = errors.New("record type cannot be stored in a zone")
	ErrNoRdata       = errors.New("record has no data")
	ErrOrphanRRSIG   = errors.New("RRSIG covers a type that has no records at this name")
	ErrTooManyRRSIGs = errors.New("more than 65535 RRSIG records cover one RRset")
	ErrWildcardNS    = errors.New("NS records cannot be owned by a wildcard name")
	ErrNSEC3Owner    = errors.New("NSEC3 records must be owned by a name directly below the apex")
	ErrTooManyErrors = errors.New("too many errors; stopping")
)

// MaxErrors is how many problems Build reports before it gives up.
const MaxErrors = 50

// RecordError is a problem with one input record. Index is the record's
// position in the slice given to Build, so a caller can name the file and
// line it came from; it is -1 for problems of the zone as a whole.
type RecordError struct {
	Index int
	Owner string
	Type  uint16
	Err   error
}

func (e *RecordError) Error() string {
	if e.Owner == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s %s: %v", e.Owner, dns.TypeToString[e.Type], e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }
