package zonestore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
)

// Pos is where a record came from.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Parsed is the result of reading a master file.
type Parsed struct {
	Origin string
	RRs    []dns.RR
	Pos    []Pos // Pos[i] is where RRs[i] starts
}

// ParseError is a syntax or validation problem at a place in a master file.
type ParseError struct {
	Pos Pos
	Err error
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s: %v", e.Pos, e.Err) }
func (e *ParseError) Unwrap() error { return e.Err }

// lineReader counts the lines the zone lexer consumes and remembers on which
// line the next record starts (its first byte that is neither blank nor part
// of a comment). A line that starts with '$' is a control entry ($ORIGIN,
// $TTL), not a record: the search for the start goes on after it. The lexer
// reads one byte at a time through io.ByteReader, so the count is exact.
type lineReader struct {
	br        *bufio.Reader
	line      int  // lines completed so far
	start     int  // line of the first significant byte since mark
	marked    bool // looking for a start
	inComment bool
	directive bool // the start found is a control entry
}

func (r *lineReader) Read(p []byte) (int, error) {
	// The lexer only uses ReadByte; Read is here for io.Reader.
	for i := range p {
		c, err := r.ReadByte()
		if err != nil {
			return i, err
		}
		p[i] = c
	}
	return len(p), nil
}

func (r *lineReader) ReadByte() (byte, error) {
	c, err := r.br.ReadByte()
	if err != nil {
		return c, err
	}
	switch {
	case c == '\n':
		r.line++
		r.inComment = false
		if r.directive {
			r.directive = false
			r.mark()
		}
	case r.inComment:
	case c == ';':
		r.inComment = true
	case r.marked && c != ' ' && c != '\t' && c != '\r' && c != '(' && c != ')':
		r.start = r.line + 1
		r.marked = false
		r.directive = c == '$'
	}
	return c, nil
}

func (r *lineReader) mark() { r.marked, r.start = true, 0 }

// Parse reads an RFC 1035 master file. name is used in error messages and
// to resolve $INCLUDE, which is allowed only when includes is not nil and
// then only for files inside it. origin may be empty when the file sets
// $ORIGIN itself.
func Parse(r io.Reader, origin, name string, includes fs.FS) (*Parsed, error) {
	lr := &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
	zp := dns.NewZoneParser(lr, zone.Fqdn(origin), name)
	if includes != nil {
		zp.SetIncludeAllowed(true)
		zp.SetIncludeFS(includes)
	}
	out := &Parsed{Origin: zone.Fqdn(origin)}
	lr.mark()
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		line := lr.start
		if line == 0 {
			line = lr.line
		}
		out.RRs = append(out.RRs, rr)
		out.Pos = append(out.Pos, Pos{File: name, Line: line})
		lr.mark()
	}
	if err := zp.Err(); err != nil {
		var pe *dns.ParseError
		if errors.As(err, &pe) {
			// miekg's message already names the file and line.
			return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
		}
		return nil, fmt.Errorf("%s: %w: %w", name, ErrSyntax, err)
	}
	if out.Origin == "." && len(out.RRs) > 0 {
		// No origin given: the zone is the owner of its SOA record, wherever
		// the file puts it.
		for _, rr := range out.RRs {
			if soa, ok := rr.(*dns.SOA); ok {
				out.Origin = zone.Fqdn(soa.Hdr.Name)
				break
			}
		}
	}
	return out, nil
}

// ParseFile reads a master file from disk. $INCLUDE may name only files in
// the same directory tree as path; anything else is refused.
func ParseFile(path, origin string) (*Parsed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open zone file: %w", err)
	}
	defer f.Close()
	dir := filepath.Dir(path)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open zone file directory: %w", err)
	}
	defer root.Close()
	return Parse(f, origin, filepath.Base(path), includeFS{root.FS(), path})
}

// includeFS confines $INCLUDE to one directory and explains a refusal.
type includeFS struct {
	fsys fs.FS
	top  string
}

func (i includeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) || strings.Contains(name, "\\") {
		return nil, fmt.Errorf("%w: %q is outside the directory of %s", ErrIncludeOutside, name, i.top)
	}
	f, err := i.fsys.Open(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q: %w", ErrIncludeOutside, name, err)
	}
	return f, err
}

// Build validates a parsed file as a zone; errors name file and line.
func (p *Parsed) Build() (*zone.Zone, error) {
	z, err := zone.Build(p.Origin, p.RRs)
	if err == nil {
		return z, nil
	}
	return nil, locate(err, p.Pos)
}

// locate rewrites zone.RecordErrors into ParseErrors naming the position.
func locate(err error, pos []Pos) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		var re *zone.RecordError
		if errors.As(e, &re) && re.Index >= 0 && re.Index < len(pos) {
			out = append(out, &ParseError{Pos: pos[re.Index], Err: re})
			continue
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}
