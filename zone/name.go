package zone

import (
	"bytes"
	"fmt"
	"slices"
	"unsafe"

	"github.com/miekg/dns"
)

// MaxNameWire is the longest a domain name may be in wire format (RFC 1035 §2.3.4).
const MaxNameWire = 255

// WireKey returns the lower-cased wire form of a fully qualified name. The
// result is the key used for every name lookup in this package: lower-casing
// is done on label bytes only (length octets are at most 63, so they are never
// in 'A'..'Z').
func WireKey(name string) (string, error) {
	var buf [MaxNameWire + 1]byte
	n, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false)
	if err == nil && n > MaxNameWire {
		err = dns.ErrLongDomain // the buffer holds one octet more
	}
	if err != nil {
		return "", fmt.Errorf("name %q: %w", name, err)
	}
	LowerWire(buf[:n])
	return string(buf[:n]), nil
}

// LowerWire lower-cases the ASCII letters of a wire-format name in place.
func LowerWire(b []byte) {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// ParentKey strips the leftmost label of a wire-format name. The root has no
// parent; ok is false for it.
func ParentKey(key string) (string, bool) {
	if len(key) <= 1 {
		return "", false
	}
	return key[1+int(key[0]):], true
}

// LabelCount returns the number of labels in a wire-format name (the root has 0).
func LabelCount(key string) int {
	n := 0
	for i := 0; i < len(key) && key[i] != 0; i += 1 + int(key[i]) {
		n++
	}
	return n
}

// IsBelow reports whether wire name key is at or below ancestor.
func IsBelow(key, ancestor string) bool {
	for {
		if key == ancestor {
			return true
		}
		p, ok := ParentKey(key)
		if !ok {
			return false
		}
		key = p
	}
}

// CanonicalKey encodes a wire-format name so that bytes.Compare on two
// encodings orders names as RFC 4034 §6.1 does: labels compared from the
// root down, each as a lower-case octet string, a name sorting before its
// descendants. Each label is written with 0x00 escaped as 0x00 0x01 and
// closed by 0x00 0x00.
func CanonicalKey(key string) []byte {
	return appendCanonical(nil, key)
}

// canonicalString is CanonicalKey as a string of exactly its length: what
// a node keeps.
func canonicalString(key string) string {
	var buf [2 * 256]byte // a key of 255 bytes has at most 127 labels
	return string(appendCanonical(buf[:0], key))
}

// shareKeys sets the key and the canonical key of every node of nodes to
// parts of one string: one allocation for a small zone's names, where
// keyAndCanonical makes one per name.
func shareKeys(nodes []*Node) {
	var tmp [2 * 256]byte // as canonicalString
	total := 0
	for _, n := range nodes {
		total += len(n.Key) + len(appendCanonical(tmp[:0], n.Key))
	}
	buf := make([]byte, 0, total)
	for _, n := range nodes {
		buf = append(buf, n.Key...)
		buf = append(buf, appendCanonical(tmp[:0], n.Key)...)
	}
	s := unsafe.String(unsafe.SliceData(buf), len(buf)) // buf is not written again
	off := 0
	for _, n := range nodes {
		k := len(n.Key)
		c := len(appendCanonical(tmp[:0], n.Key))
		n.Key, n.ck = s[off:off+k], s[off+k:off+k+c]
		off += k + c
	}
}

// appendCanonical appends CanonicalKey(key) to out.
func appendCanonical(out []byte, key string) []byte {
	var labels [128]int
	n := 0
	for i := 0; i < len(key) && key[i] != 0; i += 1 + int(key[i]) {
		labels[n] = i
		n++
	}
	out = slices.Grow(out, len(key)+2*n)
	for j := n - 1; j >= 0; j-- {
		off := labels[j]
		for _, c := range []byte(key[off+1 : off+1+int(key[off])]) {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c == 0 {
				out = append(out, 0, 1)
				continue
			}
			out = append(out, c)
		}
		out = append(out, 0, 0)
	}
	return out
}

// SortCanonical sorts presentation-format names in canonical order,
// working out each name's key once (CanonicalCompare works out two per
// comparison: for sorting many names this is many times faster).
func SortCanonical(names []string) {
	type keyed struct {
		key  []byte
		name string
	}
	ks := make([]keyed, len(names))
	for i, n := range names {
		w, _ := WireKey(n)
		ks[i] = keyed{CanonicalKey(w), n}
	}
	slices.SortFunc(ks, func(a, b keyed) int { return bytes.Compare(a.key, b.key) })
	for i := range ks {
		names[i] = ks[i].name
	}
}

// SortedCanonical returns the keys of m in canonical order.
func SortedCanonical[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	SortCanonical(names)
	return names
}

// CanonicalCompare orders two presentation-format names canonically.
func CanonicalCompare(a, b string) int {
	ka, _ := WireKey(a)
	kb, _ := WireKey(b)
	return bytes.Compare(CanonicalKey(ka), CanonicalKey(kb))
}

// Fqdn fully qualifies a presentation-format name and lower-cases its ASCII
// letters. Names are octet strings: only A-Z fold (RFC 4343 §3); any other
// octet, a raw one or one written as \DDD, is kept as it is. A name that
// needs escapes comes back in the one spelling that reading it from the
// wire gives (\DDD for octets outside printable ASCII, \X for the
// characters special in master files), so that two spellings of one name
// compare equal. A name that is not valid is only lower-cased.
func Fqdn(name string) string {
	name = dns.Fqdn(name)
	if PlainName(name) {
		return LowerASCII(name)
	}
	var buf [MaxNameWire + 1]byte
	n, err := dns.PackDomainName(name, buf[:], 0, nil, false)
	if err != nil || n > MaxNameWire {
		return LowerASCII(name)
	}
	LowerWire(buf[:n])
	s, _, err := dns.UnpackDomainName(buf[:n], 0)
	if err != nil {
		return LowerASCII(name)
	}
	return s
}

// PlainName reports whether name is written only with printable ASCII that
// needs no escape, so that its presentation form is already the one that
// reading it from the wire gives.
func PlainName(name string) bool {
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c <= ' ' || c > '~':
			return false
		case c == '\\' || c == '\'' || c == '@' || c == ';' || c == '(' || c == ')' || c == '"':
			return false
		}
	}
	return true
}

// LowerASCII returns s with A-Z lower-cased and every other byte as it is
// (strings.ToLower would fold non-ASCII letters and replace invalid UTF-8).
func LowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			LowerWire(b[i:])
			return string(b)
		}
	}
	return s
}
