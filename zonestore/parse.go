package zonestore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

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

// maxQuoted is how much of a piece of input an error message repeats.
const maxQuoted = 64

// quoteInput quotes input for an error message, cut to maxQuoted bytes.
func quoteInput(s string) string {
	if len(s) <= maxQuoted {
		return strconv.QuoteToASCII(s)
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.QuoteToASCII(s[:maxQuoted]), len(s))
}

// Parse reads an RFC 1035 master file. name is used in error messages and
// to resolve $INCLUDE, which is allowed only when includes is not nil and
// then only for regular files inside it. origin may be empty when the file
// sets $ORIGIN itself.
//
// Every record is checked as it is read: its data must encode to the wire
// (valid hex and base64, at most 65,535 octets) and decode back to the same
// octets, and data in the RFC 3597 generic form must be exactly as long as
// the type's own format reads. A problem is reported with the file and line
// of the record. The records returned are in the form the store gives back
// (names with \DDD escapes for octets outside printable ASCII), so a zone
// exported from the store reads back as the same records.
func Parse(r io.Reader, origin, name string, includes fs.FS) (*Parsed, error) {
	return parse(r, origin, name, includes, 0)
}

// ParseRecords reads records given on their own (the CLI's record add),
// checked as Parse checks the records of a file; a record without a TTL
// gets defaultTTL. $INCLUDE is not allowed.
func ParseRecords(text, origin, name string, defaultTTL uint32) (*Parsed, error) {
	return parse(strings.NewReader(text), origin, name, nil, defaultTTL)
}

func parse(r io.Reader, origin, name string, includes fs.FS, defaultTTL uint32) (*Parsed, error) {
	t := &tracker{}
	defer t.closeFiles()
	top := t.reader(bufio.NewReaderSize(r, 16<<10), name)
	zp := dns.NewZoneParser(top, zone.Fqdn(origin), name)
	if defaultTTL != 0 {
		zp.SetDefaultTTL(defaultTTL)
	}
	if includes != nil {
		zp.SetIncludeAllowed(true)
		zp.SetIncludeFS(trackFS{fsys: includes, t: t})
	}
	out := &Parsed{Origin: zone.Fqdn(origin)}
	var c checker
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if t.err != nil {
			return nil, t.err
		}
		pos := t.pos()
		if t.ranOver() {
			return nil, &ParseError{Pos: pos, Err: fmt.Errorf("%w: %s %s: the data is incomplete: the record ends with its line (line %d), and the next line was taken as part of it",
				ErrSyntax, rr.Header().Name, typeName(rr.Header().Rrtype), pos.Line)}
		}
		rr, err := c.check(rr)
		if err != nil {
			return nil, &ParseError{Pos: pos, Err: fmt.Errorf("%w: %w", ErrSyntax, err)}
		}
		out.RRs = append(out.RRs, rr)
		out.Pos = append(out.Pos, pos)
		t.mark()
	}
	if t.err != nil {
		return nil, t.err
	}
	if err := zp.Err(); err != nil {
		return nil, t.syntaxError(err)
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

// ParseFile reads a master file from disk. $INCLUDE may name only regular
// files in the same directory tree as path; anything else is refused.
func ParseFile(path, origin string) (*Parsed, error) {
	return ParseFileProgress(path, origin, nil)
}

// ParseFileProgress is ParseFile that tells read, if not nil, how many
// more bytes of the file were read, as it goes (16 KiB at a time; the
// files of $INCLUDE are not counted), for a progress bar.
func ParseFileProgress(path, origin string, read func(n int)) (*Parsed, error) {
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
	var r io.Reader = f
	if read != nil {
		r = countingReader{r: f, read: read}
	}
	return Parse(r, origin, filepath.Base(path), includeFS{root: root, top: path})
}

// countingReader tells read how many bytes each Read gave.
type countingReader struct {
	r    io.Reader
	read func(n int)
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.read(n)
	}
	return n, err
}

// includeFS confines $INCLUDE to one directory, opens only regular files
// (a FIFO would block the parse, a directory or a device is not a zone
// file) and explains a refusal.
type includeFS struct {
	root *os.Root
	top  string
}

func (i includeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) || strings.Contains(name, "\\") {
		return nil, fmt.Errorf("%w: %q is outside the directory of %s", ErrIncludeOutside, name, i.top)
	}
	fi, err := i.root.Stat(name)
	if err == nil {
		err = regular(name, fi)
	}
	if err != nil {
		return nil, i.refusal(name, err)
	}
	// Non-blocking, so that a file swapped for a FIFO after the Stat does
	// not hang the open; the mode is checked again on what was opened.
	f, err := i.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err == nil {
		if fi, err = f.Stat(); err == nil {
			err = regular(name, fi)
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		return nil, i.refusal(name, err)
	}
	return f, nil
}

func (i includeFS) refusal(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrIncludeOutside) {
		return err
	}
	return fmt.Errorf("%w: %q: %w", ErrIncludeOutside, name, err)
}

// regular refuses anything but a regular file as an $INCLUDE.
func regular(name string, fi fs.FileInfo) error {
	m := fi.Mode()
	if m.IsRegular() {
		return nil
	}
	kind := "not a regular file"
	switch {
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeNamedPipe != 0:
		kind = "a FIFO"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	}
	return fmt.Errorf("%w: %q is %s, not a regular file", ErrIncludeOutside, name, kind)
}

// trackFS hands the files that $INCLUDE opens to the tracker, so that their
// records are placed at their own file and line.
type trackFS struct {
	fsys fs.FS
	t    *tracker
}

func (f trackFS) Open(name string) (fs.File, error) {
	file, err := f.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	fi, err := file.Stat()
	if err == nil {
		err = regular(name, fi)
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	f.t.files = append(f.t.files, file)
	return &trackedFile{File: file, lineReader: f.t.reader(bufio.NewReader(file), name)}, nil
}

// trackedFile is an included file read through a lineReader. The zone
// parser closes it at its end; the tracker closes it after an error.
type trackedFile struct {
	fs.File
	*lineReader
}

func (f *trackedFile) Read(p []byte) (int, error) { return f.lineReader.Read(p) }

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

func typeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}
