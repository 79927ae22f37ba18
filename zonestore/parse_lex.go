package zonestore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// tracker follows the bytes the zone parser reads, from the top file and
// the files it includes, to know where each record starts (the file and
// line of its first byte that is neither blank nor part of a comment) and
// to catch what the parser lets through: a \DDD escape above 255 or without
// three digits, and a record whose data runs on into the next line.
//
// The parser's lexer reads one byte at a time through io.ByteReader, and
// hands a record over as soon as it has read the newline that ends it, so
// the state kept here matches the lexer's exactly: quotes, escapes,
// comments and parentheses are followed as the lexer follows them.
//
// The parser reads an IPSECKEY record's data up to and including the end
// of its line, then looks for that end again and takes the next line for
// garbage after the data; it reads such a record only when the next line is
// empty. A newline is added after each IPSECKEY record for it.
type tracker struct {
	found     bool        // the current entry's first byte has been read
	at        *lineReader // the reader it was read from
	line      int         // its line
	endLine   int         // the line of the first end of entry after it; 0: none yet
	spill     bool        // a byte of another line has been read into the entry
	directive bool        // the entry is a control entry ($ORIGIN, $GENERATE...)
	last      Pos         // where the last control entry was
	cur       *lineReader // the reader read last
	err       error       // a problem found in the bytes; the parse stops at it
	files     []io.Closer // included files, closed at the end
}

func (t *tracker) reader(br io.ByteReader, name string) *lineReader {
	return &lineReader{t: t, br: br, name: name, col0: true}
}

// mark starts the search for the next record.
func (t *tracker) mark() { t.found, t.directive = false, false }

// pos is where the record just read starts. Records that $GENERATE makes
// are not read from a file: they are placed at the $GENERATE line.
func (t *tracker) pos() Pos {
	if t.found {
		return Pos{File: t.at.name, Line: t.line}
	}
	return t.last
}

// ranOver reports whether the record just read went on past the end of its
// entry: the parser reads the next line as the rest of data it found short
// (`www MX 10` then `mail` is read as MX 10 mail).
func (t *tracker) ranOver() bool {
	return t.found && !t.directive && t.spill
}

func (t *tracker) closeFiles() {
	for _, f := range t.files {
		f.Close()
	}
}

// lineReader is one file as the zone parser reads it.
type lineReader struct {
	t     *tracker
	br    io.ByteReader
	name  string
	line  int // lines completed so far
	quote bool
	esc   bool // the previous byte was an escaping backslash
	comm  bool
	brace int
	last  byte // the last byte read; 0 before the first
	ddd   int  // digits of a \DDD escape read so far (0: not in one)
	val   int  // their value

	// The first tokens of the entry being read, to find its type.
	col0     bool // no byte read yet on this line
	owner    bool // the entry starts with an owner name
	inTok    bool
	tok      [maxTypeName]byte
	tokLen   int
	ntok     int  // tokens ended in this entry
	typed    bool // the type is known, or no longer looked for
	ipseckey bool // the entry is an IPSECKEY record
	pending  bool // a newline is to be added before the next byte
	added    int  // newlines added so far
}

// maxTypeName is the longest token kept while looking for an entry's type.
const maxTypeName = 16

// special marks the bytes that change the lexer's state.
var special = [256]bool{'\n': true, '\r': true, ' ': true, '\t': true, ';': true, '\\': true, '"': true, '(': true, ')': true}

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
	if r.t.err != nil {
		return 0, r.t.err
	}
	if r.pending {
		r.pending = false
		r.added++
		return '\n', nil
	}
	c, err := r.br.ReadByte()
	if err != nil {
		if !errors.Is(err, io.EOF) {
			r.fail(fmt.Errorf("read: %w", err))
			return 0, r.t.err
		}
		if r.last == 0 || r.last == '\n' {
			return c, err
		}
		// A last line without its newline is read as if it had one: the
		// parser handles the end of the input differently from the end
		// of a line (`www IN A` at the end reads as a record without
		// data, and its message speaks of a TTL).
		c = '\n'
	}
	r.last = c
	if r.t.cur != r {
		r.t.cur = r // a pointer store costs a write barrier: only on a change
	}
	if !special[c] && r.ddd == 0 && !r.esc {
		// The common byte: part of a token or of a comment.
		col0 := r.col0
		r.col0 = false
		if !r.comm {
			r.tokenByte(c, col0)
		}
		return c, nil
	}
	if err := r.step(c); err != nil {
		r.fail(err)
		return 0, r.t.err
	}
	return c, nil
}

// fail stops the parse with err at the current line.
func (r *lineReader) fail(err error) {
	r.t.err = &ParseError{Pos: Pos{File: r.name, Line: r.line + 1}, Err: fmt.Errorf("%w: %w", ErrSyntax, err)}
}

// step follows the lexer's state over one byte.
func (r *lineReader) step(c byte) error {
	col0 := r.col0
	r.col0 = c == '\n'
	if r.ddd > 0 {
		if c < '0' || c > '9' {
			return fmt.Errorf("bad escape %s: a backslash and a digit start a \\DDD escape, which takes three decimal digits",
				quoteInput(fmt.Sprintf(`\%0*d`, r.ddd, r.val)+string([]byte{c})))
		}
		r.val = r.val*10 + int(c-'0')
		if r.ddd++; r.ddd == 3 {
			r.ddd = 0
			if r.val > 255 {
				return fmt.Errorf("bad escape \\%03d: an octet written \\DDD is at most \\255", r.val)
			}
		}
		r.tokenByte(c, col0)
		return nil
	}
	if c == '\n' {
		r.line++
		r.esc, r.comm = false, false
		if !r.quote {
			r.endToken()
		}
		if !r.quote && r.brace == 0 {
			r.endEntry()
		}
		return nil
	}
	if r.comm {
		return nil
	}
	switch c {
	case ' ', '\t':
		if r.esc || r.quote {
			r.esc = false
			r.tokenByte(c, col0)
		} else {
			r.endToken()
		}
	case ';':
		if r.esc || r.quote {
			r.esc = false
			r.tokenByte(c, col0)
		} else {
			r.comm = true
			r.endToken()
		}
	case '\r':
		r.esc = false
	case '\\':
		r.tokenByte(c, col0)
		r.esc = !r.esc
	case '"':
		r.tokenByte(c, col0)
		if r.esc {
			r.esc = false
		} else {
			r.quote = !r.quote
		}
	case '(', ')':
		if r.esc || r.quote {
			r.esc = false
			r.tokenByte(c, col0)
			break
		}
		r.endToken()
		if c == '(' {
			r.brace++
		} else {
			r.brace--
		}
	default:
		if r.esc && c >= '0' && c <= '9' {
			r.ddd, r.val = 1, int(c-'0')
		}
		r.esc = false
		r.tokenByte(c, col0)
	}
	return nil
}

// tokenByte notes a byte of a token; col0 says it is the first of its line.
func (r *lineReader) tokenByte(c byte, col0 bool) {
	if t := r.t; r.typed && t.found && t.endLine == 0 {
		return // nothing more to learn from the entry's bytes
	}
	r.significant(c)
	if !r.inTok {
		r.inTok, r.tokLen = true, 0
		if r.ntok == 0 {
			r.owner = col0
		}
	}
	if r.tokLen < len(r.tok) {
		r.tok[r.tokLen] = c
	}
	r.tokLen++
}

// endToken ends the token being read, if any, and looks at it for the
// entry's type: the first token that names a type, after the owner, as the
// parser's lexer takes it.
func (r *lineReader) endToken() {
	if !r.inTok {
		return
	}
	r.inTok = false
	n := r.ntok
	r.ntok++
	if r.typed || (n == 0 && r.owner) {
		return
	}
	if r.tokLen > len(r.tok) || r.ntok > 4 || r.tok[0] == '$' {
		r.typed = true
		return
	}
	name := r.tok[:r.tokLen]
	for i, c := range name {
		if c >= 'a' && c <= 'z' {
			name[i] = c - 'a' + 'A'
		}
	}
	if t, ok := dns.StringToType[string(name)]; ok {
		r.typed, r.ipseckey = true, t == dns.TypeIPSECKEY
	} else if string(name) == "TYPE45" {
		r.typed, r.ipseckey = true, true
	} else if bytes.HasPrefix(name, []byte("TYPE")) {
		r.typed = true
	}
}

// significant notes a byte that belongs to an entry: the first one after a
// mark is where the entry starts.
func (r *lineReader) significant(c byte) {
	t := r.t
	if t.found {
		if t.endLine > 0 {
			t.spill = true
		}
		return
	}
	t.found, t.at, t.line, t.endLine, t.spill = true, r, r.line+1, 0, false
	t.directive = c == '$'
	if t.directive {
		t.last = Pos{File: r.name, Line: t.line}
	}
}

// endEntry is called at each end of an entry in r.
func (r *lineReader) endEntry() {
	if r.ipseckey {
		r.pending = true
	}
	r.ntok, r.typed, r.ipseckey = 0, false, false
	t := r.t
	if !t.found || t.at != r {
		return
	}
	if t.endLine == 0 {
		t.endLine = r.line
	}
	if t.directive {
		// A control entry is not a record: the search for the next
		// record's start goes on after it.
		t.mark()
	}
}

// dnsErrorText matches the end of a miekg/dns *ParseError's message: the
// token, quoted, and where it is.
var dnsErrorText = regexp.MustCompile(` at line: (\d+):(\d+)$`)

// syntaxError turns an error of the zone parser into a *ParseError at the
// file and line it concerns, its quote of the input cut short. When the
// record being read had run on past the end of its line, the error is the
// record's and placed at its line.
func (t *tracker) syntaxError(err error) error {
	var pe *dns.ParseError
	if !errors.As(err, &pe) {
		pos := t.last
		if t.cur != nil {
			pos = Pos{File: t.cur.name, Line: t.cur.line + 1}
		}
		return &ParseError{Pos: pos, Err: fmt.Errorf("%w: %w", ErrSyntax, err)}
	}
	msg := pe.Error()
	pos, text, token, ok := t.splitDNSError(msg)
	if !ok {
		return &ParseError{Pos: t.pos(), Err: fmt.Errorf("%w: %s", ErrSyntax, quoteInput(msg))}
	}
	if t.cur != nil && pos.File == t.cur.name {
		pos.Line -= t.cur.added // the parser counts the newlines added too
	}
	if pos.Line < 1 {
		// The parser lost the place (an error at the end of the input).
		if t.found {
			pos = Pos{File: t.at.name, Line: t.line}
		} else if t.cur != nil {
			pos = Pos{File: t.cur.name, Line: max(t.cur.line, 1)}
		}
	}
	if !t.found && t.last.File != "" {
		// After a control entry: an $INCLUDE that failed, or a record
		// that $GENERATE made (the parser numbers those lines itself).
		pos = t.last
	} else if t.found && !t.directive && t.endLine > 0 && pos.File == t.at.name && pos.Line > t.endLine {
		text = fmt.Sprintf("the data is incomplete: the record ends with its line (line %d), and the next line was taken as part of it (%s at line %d)",
			t.line, tokenText(text, token), pos.Line)
		pos, token = Pos{File: t.at.name, Line: t.line}, ""
	}
	if w := errors.Unwrap(pe); w != nil {
		// The wrapped error (an $INCLUDE that could not be opened) says
		// it all; keep it for errors.Is.
		return &ParseError{Pos: pos, Err: fmt.Errorf("%w: %w", ErrSyntax, w)}
	}
	if better, ok := dnsErrorWords[text]; ok {
		text, token = better, ""
	}
	return &ParseError{Pos: pos, Err: fmt.Errorf("%w: %s", ErrSyntax, tokenText(text, token))}
}

// tokenText is an error message of the parser with the token it is about.
func tokenText(text, token string) string {
	switch token {
	case "":
		return text
	case "\n":
		return text + " at the end of the line"
	}
	return text + ": " + quoteInput(token)
}

// dnsErrorWords rephrases some of the zone parser's messages.
var dnsErrorWords = map[string]string{
	"unexpected newline":                             "the record has no data: the line ends after the type",
	"NULL records do not have a presentation format": `NULL records have no presentation format: write the data in the generic form, \# LENGTH HEX`,
	"bad RFC3597 Rdata":                              `bad generic (RFC 3597) data: \# must be followed by the length and exactly that many octets in hex`,
	"bad RFC3597 Rdata ":                             `bad generic (RFC 3597) data: \# must be followed by the length and exactly that many octets in hex`,
}

// splitDNSError takes apart the message of a miekg/dns *ParseError:
// "FILE: dns: TEXT: "TOKEN" at line: L:C", whose fields are not exported.
func (t *tracker) splitDNSError(msg string) (pos Pos, text, token string, ok bool) {
	m := dnsErrorText.FindStringSubmatchIndex(msg)
	if m == nil {
		return pos, "", "", false
	}
	pos.Line, _ = strconv.Atoi(msg[m[2]:m[3]])
	rest := msg[:m[0]]
	// The token is the last quoted string: it holds no unescaped quote,
	// so the last `: "` that starts a valid quoted string starts it.
	for end := len(rest); ; {
		i := strings.LastIndex(rest[:end], `: "`)
		if i < 0 {
			return pos, "", "", false
		}
		if tok, err := strconv.Unquote(rest[i+2:]); err == nil {
			token, rest = tok, rest[:i]
			break
		}
		end = i
	}
	pos.File = t.pos().File
	if t.cur != nil {
		pos.File = t.cur.name
	}
	if after, found := strings.CutPrefix(rest, "dns: "); found {
		rest = after
	} else if file, after, found := strings.Cut(rest, ": dns: "); found {
		pos.File, rest = file, after
	}
	return pos, rest, token, true
}
