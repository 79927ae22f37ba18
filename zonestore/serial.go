package zonestore

import (
	"fmt"
	"strconv"
	"time"
)

// SerialPolicy says how the SOA serial moves on each change.
type SerialPolicy string

// The serial policies.
const (
	SerialIncrement SerialPolicy = "increment" // old + 1
	SerialDate      SerialPolicy = "date"      // YYYYMMDDnn, or old + 1 when that is not larger
)

// ParseSerialPolicy checks a policy name.
func ParseSerialPolicy(s string) (SerialPolicy, error) {
	switch p := SerialPolicy(s); p {
	case SerialIncrement, SerialDate:
		return p, nil
	}
	return "", fmt.Errorf("serial policy %q: must be %q or %q", s, SerialIncrement, SerialDate)
}

// SerialLess reports whether a precedes b in RFC 1982 serial arithmetic.
func SerialLess(a, b uint32) bool {
	return a != b && ((a < b && b-a < 1<<31) || (a > b && a-b > 1<<31))
}

// NextSerial returns the serial that follows old under policy p at time now.
// The result is always greater than old in RFC 1982 arithmetic.
func NextSerial(old uint32, p SerialPolicy, now time.Time) uint32 {
	if p == SerialDate {
		d, _ := strconv.ParseUint(now.UTC().Format("20060102"), 10, 32)
		if cand := uint32(d) * 100; SerialLess(old, cand) {
			return cand
		}
	}
	return old + 1
}
