package zonestore_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

func TestParseFile(t *testing.T) {
	p, err := zonestore.ParseFile(filepath.Join("testdata", "parse", "example.zone"), "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Origin != "example." {
		t.Errorf("Origin %q, want example. (from the SOA)", p.Origin)
	}
	want := []struct {
		line int
		rr   string
	}{
		{line: 5, rr: "example. 3600 IN SOA ns1.example. hostmaster.example. 2024010101 7200 900 1209600 300"},
		{line: 11, rr: "example. 3600 IN NS ns1.example."},
		{line: 12, rr: "example. 3600 IN NS ns2.example.net."},
		{line: 13, rr: "ns1.example. 3600 IN A 192.0.2.53"},
		{line: 16, rr: "www.example. 600 IN A 192.0.2.1"},
		{line: 17, rr: "www.example. 3600 IN AAAA 2001:db8::1"},
		{line: 18, rr: "mail.example. 3600 IN MX 10 mail.example."},
		{line: 19, rr: "mail.example. 3600 IN A 192.0.2.25"},
		{line: 20, rr: `unk.example. 3600 IN TYPE65280 \# 4 0a000001`},
		{line: 21, rr: `txt.example. 3600 IN TXT "a;b" "c(d)"`},
		{line: 22, rr: `multi.example. 3600 IN TXT "first" "second"`},
		{line: 26, rr: "host.sub.example. 60 IN A 192.0.2.2"},
		{line: 27, rr: "sub.example. 60 IN A 192.0.2.3"},
	}
	if len(p.RRs) != len(want) || len(p.Pos) != len(want) {
		t.Fatalf("%d records, %d positions; want %d", len(p.RRs), len(p.Pos), len(want))
	}
	for i, w := range want {
		if !dns.IsDuplicate(p.RRs[i], mustRR(t, w.rr)) || p.RRs[i].Header().Ttl != mustRR(t, w.rr).Header().Ttl {
			t.Errorf("record %d = %v, want %s", i, p.RRs[i], w.rr)
		}
		if wantPos := (zonestore.Pos{File: "example.zone", Line: w.line}); p.Pos[i] != wantPos {
			t.Errorf("record %d (%s) at %v, want %v", i, p.RRs[i].Header().Name, p.Pos[i], wantPos)
		}
	}
	if _, err := p.Build(); err != nil {
		t.Errorf("Build: %v", err)
	}
}

func TestParseUnknownTypeSyntax(t *testing.T) {
	p := parse(t, apexText+`
unk   IN TYPE65280 \# 4 0A000001
empty IN TYPE65281 \# 0
known IN TYPE1 \# 4 C0000201
`)
	tests := []struct {
		owner  string
		rrtype uint16
		check  func(dns.RR) error
	}{
		{owner: "unk.example.", rrtype: 65280, check: func(rr dns.RR) error {
			u, ok := rr.(*dns.RFC3597)
			if !ok || !strings.EqualFold(u.Rdata, "0a000001") {
				return fmt.Errorf("got %#v, want RFC3597 rdata 0a000001", rr)
			}
			return nil
		}},
		{owner: "empty.example.", rrtype: 65281, check: func(rr dns.RR) error {
			if u, ok := rr.(*dns.RFC3597); !ok || u.Rdata != "" {
				return fmt.Errorf("got %#v, want empty RFC3597 rdata", rr)
			}
			return nil
		}},
		{owner: "known.example.", rrtype: dns.TypeA, check: func(rr dns.RR) error {
			if a, ok := rr.(*dns.A); !ok || a.A.String() != "192.0.2.1" {
				return fmt.Errorf("got %#v, want A 192.0.2.1", rr)
			}
			return nil
		}},
	}
	z, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.owner, func(t *testing.T) {
			n := z.Lookup(wireKey(t, tc.owner))
			if n == nil || n.Get(tc.rrtype) == nil {
				t.Fatalf("no %s %d RRset", tc.owner, tc.rrtype)
			}
			if err := tc.check(n.Get(tc.rrtype).RRs()[0]); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestParseOrigin(t *testing.T) {
	tests := []struct {
		name       string
		text       string
		origin     string
		wantOrigin string
		wantOwner  string // owner of the first record
	}{
		{name: "given", text: "@ 3600 IN SOA ns1 h 1 2 3 4 5\n", origin: "example.", wantOrigin: "example.", wantOwner: "example."},
		{name: "given unqualified and mixed case", text: "@ 3600 IN SOA ns1 h 1 2 3 4 5\n", origin: "Example", wantOrigin: "example.", wantOwner: "example."},
		{name: "from $ORIGIN via the SOA", text: "$ORIGIN example.\n@ 3600 IN SOA ns1 h 1 2 3 4 5\n", wantOrigin: "example.", wantOwner: "example."},
		{name: "from an absolute SOA owner", text: "Example. 3600 IN SOA ns1.example. h.example. 1 2 3 4 5\n", wantOrigin: "example.", wantOwner: "Example."},
		{name: "$ORIGIN overrides the argument", text: "$ORIGIN example.net.\nwww 3600 IN A 192.0.2.1\n", origin: "example.", wantOrigin: "example.", wantOwner: "www.example.net."},
		{name: "relative name with the argument", text: "www 3600 IN A 192.0.2.1\n", origin: "example.", wantOrigin: "example.", wantOwner: "www.example."},
		{name: "no SOA first and no origin", text: "www.example. 3600 IN A 192.0.2.1\n", wantOrigin: ".", wantOwner: "www.example."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := zonestore.Parse(strings.NewReader(tc.text), tc.origin, "test.zone", nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.Origin != tc.wantOrigin {
				t.Errorf("Origin %q, want %q", p.Origin, tc.wantOrigin)
			}
			if got := p.RRs[0].Header().Name; got != tc.wantOwner {
				t.Errorf("first owner %q, want %q", got, tc.wantOwner)
			}
		})
	}
}

// TestParseLines checks the line recorded for each record.
func TestParseLines(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []int
	}{
		{
			name: "one per line",
			text: "$ORIGIN example.\n@ 3600 IN SOA ns1 h 1 2 3 4 5\n@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.53\n",
			want: []int{2, 3, 4},
		},
		{
			name: "comments and blank lines first",
			text: "; zone\n\n   \n\t; indented comment\n$ORIGIN example.\n\n@ 3600 IN SOA ns1 h 1 2 3 4 5\n",
			want: []int{7},
		},
		{
			name: "record after a multi-line SOA",
			text: "$ORIGIN example.\n$TTL 300\n@ IN SOA ns1 h (\n  1 ; serial\n  2 3\n  4\n  5 )\n\n; next\n@ IN NS ns1\n",
			want: []int{3, 10},
		},
		{
			name: "parenthesis on the first line alone",
			text: "$ORIGIN example.\n@ 3600 IN SOA (\n ns1 h\n 1 2 3 4 5\n )\nwww 3600 IN A 192.0.2.1\n",
			want: []int{2, 6},
		},
		{
			name: "directives between records",
			text: "$ORIGIN example.\n@ 3600 IN SOA ns1 h 1 2 3 4 5\n$TTL 60\n\n$ORIGIN sub.example.\n; comment\nhost IN A 192.0.2.1\n$ORIGIN example.\nwww IN A 192.0.2.2\n",
			want: []int{2, 7, 9},
		},
		{
			name: "directive with a comment",
			text: "$ORIGIN example. ; the origin\n$TTL 60 ; default\nwww IN A 192.0.2.1\n",
			want: []int{3},
		},
		{
			name: "owner carried over",
			text: "$ORIGIN example.\nwww 3600 IN A 192.0.2.1\n     3600 IN AAAA 2001:db8::1\n\t3600 IN TXT \"x\"\n",
			want: []int{2, 3, 4},
		},
		{
			name: "CRLF line ends",
			text: "$ORIGIN example.\r\n\r\n@ 3600 IN SOA ns1 h 1 2 3 4 5\r\nwww 3600 IN A 192.0.2.1\r\n",
			want: []int{3, 4},
		},
		{
			name: "no newline at the end",
			text: "$ORIGIN example.\n\nwww 3600 IN A 192.0.2.1",
			want: []int{3},
		},
		{
			name: "semicolon in a quoted string",
			text: "$ORIGIN example.\nt1 3600 IN TXT \"a;b\"\n\nt2 3600 IN TXT \"c\"\n",
			want: []int{2, 4},
		},
		{
			name: "$GENERATE gives its own line",
			text: "$ORIGIN example.\n@ 3600 IN SOA ns1 h 1 2 3 4 5\n\n$GENERATE 1-3 host$ 3600 IN A 192.0.2.$\nlast 3600 IN A 192.0.2.9\n",
			want: []int{2, 4, 4, 4, 5},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := zonestore.Parse(strings.NewReader(tc.text), "", "test.zone", nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, pos := range p.Pos {
				if pos.File != "test.zone" {
					t.Errorf("position names file %q", pos.File)
				}
				got = append(got, pos.Line)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("lines %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseSyntaxErrors(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		wantLine int
	}{
		{name: "bad address after a multi-line SOA", text: "$ORIGIN example.\n@ 3600 IN SOA ns1 h (\n 1 2 3 4 5 )\n\n; c\nwww IN A 192.0.2.300\n", wantLine: 6},
		{name: "unknown type", text: "$ORIGIN example.\n\n\nwww 3600 IN BOGUS x\n", wantLine: 4},
		{name: "unclosed parenthesis", text: "$ORIGIN example.\n@ 3600 IN SOA ns1 h ( 1 2 3 4 5\nwww IN A 192.0.2.1\n", wantLine: 3},
		{name: "unterminated string", text: "$ORIGIN example.\n@ 3600 IN TXT \"unterminated\n", wantLine: 2},
		{name: "bad $TTL", text: "; c\n$TTL bogus\n", wantLine: 2},
		{name: "$INCLUDE without an FS", text: "$ORIGIN example.\n@ 3600 IN SOA ns1 h 1 2 3 4 5\n$INCLUDE other.zone\n", wantLine: 3},
		{name: "bad unknown-type length", text: "$ORIGIN example.\nunk 3600 IN TYPE65280 \\# 5 0A000001\n", wantLine: 2},
		{name: "label too long", text: "$ORIGIN example.\n" + strings.Repeat("a", 64) + " 3600 IN A 192.0.2.1\n", wantLine: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := zonestore.Parse(strings.NewReader(tc.text), "", "test.zone", nil)
			if !errors.Is(err, zonestore.ErrSyntax) {
				t.Fatalf("error %v, want ErrSyntax", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "test.zone") {
				t.Errorf("error %q does not name the file", msg)
			}
			if want := fmt.Sprintf("test.zone:%d: ", tc.wantLine); !strings.HasPrefix(msg, want) {
				t.Errorf("error %q does not start with %q", msg, want)
			}
		})
	}
}

// TestParseValidationErrors checks that problems found by Build are reported
// at the file and line of the offending record.
func TestParseValidationErrors(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		want     error
		wantLine int // 0: a whole-zone problem with no line
	}{
		{
			name:     "CNAME and data, after a multi-line SOA",
			text:     "$ORIGIN example.\n$TTL 3600\n@ IN SOA ns1 h (\n 1 2 3\n 4 5 )\n@ IN NS ns1\nns1 IN A 192.0.2.53\nwww IN CNAME ns1\n; comment\n\nwww IN TXT \"clash\"\n",
			want:     zone.ErrCNAMEConflict,
			wantLine: 11,
		},
		{
			name:     "out of zone after a directive",
			text:     apexText + "$ORIGIN example.net.\n\nwww IN A 192.0.2.1\n",
			want:     zone.ErrOutOfZone,
			wantLine: 6,
		},
		{
			name:     "occluded data",
			text:     apexText + "sub IN NS ns.example.net.\n\n\nx.sub IN TXT \"hidden\"\n",
			want:     zone.ErrOccluded,
			wantLine: 7,
		},
		{
			name:     "second CNAME",
			text:     apexText + "w IN CNAME a.example.net.\nw IN CNAME b.example.net.\n",
			want:     zone.ErrMultipleCNAME,
			wantLine: 5,
		},
		{
			name:     "TTL too large",
			text:     apexText + "; big\nwww 2147483648 IN A 192.0.2.1\n",
			want:     zone.ErrBadTTL,
			wantLine: 5,
		},
		{
			name:     "SOA below the apex",
			text:     apexText + "sub IN SOA ns1 h (\n  1 2 3 4 5 )\n",
			want:     zone.ErrSOANotApex,
			wantLine: 4,
		},
		{
			name: "no SOA",
			text: "$ORIGIN example.\n@ 3600 IN NS ns1\n",
			want: zone.ErrNoSOA,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := zonestore.Parse(strings.NewReader(tc.text), "example.", "test.zone", nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			z, err := p.Build()
			if z != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Build = %v, %v; want %v", z, err, tc.want)
			}
			var pe *zonestore.ParseError
			if tc.wantLine == 0 {
				if errors.As(err, &pe) {
					t.Errorf("whole-zone error positioned at %v", pe.Pos)
				}
				return
			}
			if !errors.As(err, &pe) {
				t.Fatalf("error %v has no position", err)
			}
			if want := (zonestore.Pos{File: "test.zone", Line: tc.wantLine}); pe.Pos != want {
				t.Errorf("error at %v, want %v", pe.Pos, want)
			}
			if want := fmt.Sprintf("test.zone:%d: ", tc.wantLine); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("message %q does not start with %q", err.Error(), want)
			}
			var re *zone.RecordError
			if !errors.As(err, &re) {
				t.Error("ParseError does not unwrap to the RecordError")
			}
		})
	}
}

func TestParseAllErrorsPositioned(t *testing.T) {
	text := apexText + "a.example.net. IN A 192.0.2.1\n\nb.example.net. IN A 192.0.2.2\nc CH TXT \"x\"\n"
	p := parse(t, text)
	_, err := p.Build()
	if err == nil {
		t.Fatal("Build succeeded")
	}
	var lines []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var pe *zonestore.ParseError
		if !errors.As(e, &pe) {
			t.Errorf("error %v has no position", e)
			continue
		}
		lines = append(lines, pe.Pos.String())
	}
	if want := "[test.zone:4 test.zone:6 test.zone:7]"; fmt.Sprint(lines) != want {
		t.Errorf("positions %v, want %s", lines, want)
	}
}

func TestPosString(t *testing.T) {
	tests := []struct {
		pos  zonestore.Pos
		want string
	}{
		{pos: zonestore.Pos{File: "a.zone", Line: 7}, want: "a.zone:7"},
		{pos: zonestore.Pos{File: "a.zone"}, want: "a.zone"},
	}
	for _, tc := range tests {
		if got := tc.pos.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.pos, got, tc.want)
		}
	}
}

func TestParseFileInclude(t *testing.T) {
	p, err := zonestore.ParseFile(filepath.Join("testdata", "include", "main.zone"), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		rr  string
		pos string
	}{
		{rr: "example. 3600 IN SOA ns1.example. hostmaster.example. 1 7200 900 1209600 300", pos: "main.zone:3"},
		{rr: "example. 3600 IN NS ns1.example.", pos: "main.zone:4"},
		// Records from an included file are placed in that file.
		{rr: "ns1.example. 3600 IN A 192.0.2.53", pos: "hosts.inc:2"},
		{rr: "www.example. 3600 IN A 192.0.2.80", pos: "hosts.inc:3"},
		{rr: "mail.example. 3600 IN MX 10 mx.mail.example.", pos: "sub/mail.inc:1"},
		{rr: "mx.mail.example. 3600 IN A 192.0.2.25", pos: "sub/mail.inc:2"},
		{rr: "after.example. 3600 IN A 192.0.2.99", pos: "main.zone:7"},
	}
	if len(p.RRs) != len(want) {
		t.Fatalf("%d records, want %d: %v", len(p.RRs), len(want), p.RRs)
	}
	for i, w := range want {
		if !dns.IsDuplicate(p.RRs[i], mustRR(t, w.rr)) {
			t.Errorf("record %d = %v, want %s", i, p.RRs[i], w.rr)
		}
		if p.Pos[i].String() != w.pos {
			t.Errorf("record %d at %v, want %s", i, p.Pos[i], w.pos)
		}
	}
	if _, err := p.Build(); err != nil {
		t.Errorf("Build: %v", err)
	}
}

func TestParseFileIncludeRefused(t *testing.T) {
	tmp := t.TempDir()
	secret := filepath.Join(tmp, "secret.inc")
	if err := os.WriteFile(secret, []byte("secret IN TXT \"must not be read\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	zoneDir := filepath.Join(tmp, "zones")
	if err := os.Mkdir(zoneDir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(zoneDir, "link.inc")); err != nil {
		t.Fatal(err)
	}
	head := "$ORIGIN example.\n@ 3600 IN SOA ns1 h 1 2 3 4 5\n@ 3600 IN NS ns1\n"
	linkZone := filepath.Join(zoneDir, "link.zone")
	if err := os.WriteFile(linkZone, []byte(head+"$INCLUDE link.inc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		outside bool // the error must be ErrIncludeOutside
	}{
		{name: "parent directory", path: filepath.Join("testdata", "include", "escape.zone"), outside: true},
		{name: "symlink out of the directory", path: linkZone, outside: true},
		{name: "absolute path", path: filepath.Join("testdata", "include", "absolute.zone")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := zonestore.ParseFile(tc.path, "")
			if err == nil {
				t.Fatalf("ParseFile succeeded with %d records", len(p.RRs))
			}
			if !errors.Is(err, zonestore.ErrSyntax) {
				t.Errorf("error %v is not ErrSyntax", err)
			}
			if tc.outside && !errors.Is(err, zonestore.ErrIncludeOutside) {
				t.Errorf("error %v is not ErrIncludeOutside", err)
			}
			if strings.Contains(err.Error(), "must not be read") {
				t.Errorf("error %q reveals the file", err)
			}
		})
	}
}

func TestParseIncludeFS(t *testing.T) {
	fsys := fstest.MapFS{
		"hosts.inc":      {Data: []byte("www IN A 192.0.2.1\n")},
		"dir/nested.inc": {Data: []byte("$INCLUDE ../hosts.inc\n")},
	}
	text := "$ORIGIN example.\n$TTL 60\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\n$INCLUDE dir/nested.inc\n"
	p, err := zonestore.Parse(strings.NewReader(text), "", "main.zone", fsys)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.RRs); n != 3 || p.RRs[2].Header().Name != "www.example." {
		t.Errorf("records %v", p.RRs)
	}
	_, err = zonestore.Parse(strings.NewReader(text+"$INCLUDE missing.inc\n"), "", "main.zone", fsys)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing include: error %v, want fs.ErrNotExist", err)
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := zonestore.ParseFile(filepath.Join(t.TempDir(), "nope.zone"), "example.")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v, want fs.ErrNotExist", err)
	}
}
