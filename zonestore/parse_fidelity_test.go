package zonestore_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sovdns/sovdns/zonestore"
)

// fidelityHead is lines 1-5 of every file in TestZoneFileFidelity: the
// record under test is on line 6.
const fidelityHead = "$ORIGIN example.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 7200 900 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"

// fidelityApex is what the export holds for fidelityHead.
var fidelityApex = []string{
	"example.\t3600\tIN\tSOA\tns1.example. hostmaster.example. 1 7200 900 1209600 300",
	"example.\t3600\tIN\tNS\tns1.example.",
	"ns1.example.\t3600\tIN\tA\t192.0.2.1",
}

// TestZoneFileFidelity reads master files as `zone import` does (from
// disk, $INCLUDE allowed), and either refuses each at its file and line,
// or stores it, exports it, imports the export into a second store and
// exports again: both exports must be the text given.
func TestZoneFileFidelity(t *testing.T) {
	t.Parallel()
	maxTXT := strings.Repeat(`"`+strings.Repeat("a", 255)+`" `, 255) + `"` + strings.Repeat("b", 254) + `"`
	tests := []struct {
		name    string
		text    string            // after fidelityHead, from line 6
		files   map[string]string // beside test.zone, for $INCLUDE
		special string            // "fifo" or "dir": include.zone is one
		want    []string          // the export's records after the apex, in order
		wantErr string            // or the error message holds this
	}{
		// Data that the parser accepts and packing refuses.
		{name: "SSHFP bad hex", text: "x IN SSHFP 1 1 zz12\n", wantErr: "test.zone:6: syntax error: x.example. SSHFP: bad data: encoding/hex: invalid byte"},
		{name: "TLSA odd hex", text: "_443._tcp IN TLSA 3 1 1 abc\n", wantErr: "test.zone:6: syntax error: _443._tcp.example. TLSA: bad data: encoding/hex: odd length"},
		{name: "DS bad hex", text: "x IN DS 12345 8 2 xyz0\n", wantErr: "test.zone:6: syntax error: x.example. DS: bad data"},
		{name: "DNSKEY bad base64", text: "x IN DNSKEY 257 3 8 !!!notbase64\n", wantErr: "test.zone:6: syntax error: x.example. DNSKEY: bad data: illegal base64"},
		{name: "CERT bad base64", text: "x IN CERT 1 0 0 ***\n", wantErr: "test.zone:6: syntax error: x.example. CERT: bad data: illegal base64"},
		{name: "OPENPGPKEY bad base64", text: "x IN OPENPGPKEY @@@\n", wantErr: "test.zone:6: syntax error: x.example. OPENPGPKEY: bad data: illegal base64"},
		{name: "TXT over 65535 octets", text: "x IN TXT " + strings.Repeat(`"`+strings.Repeat("a", 255)+`" `, 257) + "\n",
			wantErr: "test.zone:6: syntax error: x.example. TXT: the data is longer than 65,535 octets"},
		{name: "TXT of exactly 65535 octets", text: "x IN TXT " + maxTXT + "\n",
			want: []string{"x.example.\t3600\tIN\tTXT\t" + maxTXT}},
		{name: "SSHFP good hex", text: "x IN SSHFP 1 1 0123abcd\n", want: []string{"x.example.\t3600\tIN\tSSHFP\t1 1 0123ABCD"}},
		{name: "bad data in an included file", text: "$INCLUDE include.zone\n", files: map[string]string{"include.zone": "; keys\nx IN DNSKEY 257 3 8 AwEAAa==\ny IN DNSKEY 257 3 8 !!!\n"},
			wantErr: "include.zone:3: syntax error: y.example. DNSKEY: bad data"},

		// NULL has no presentation format of its own.
		{name: "NULL", text: "x IN NULL \\# 3 010203\n", want: []string{"x.example.\t3600\tIN\tNULL\t\\# 3 010203"}},
		{name: "NULL empty", text: "x IN NULL \\# 0\n", want: []string{"x.example.\t3600\tIN\tNULL\t\\# 0"}},
		{name: "NULL as TYPE10", text: "x IN TYPE10 \\# 2 ABCD\n", want: []string{"x.example.\t3600\tIN\tNULL\t\\# 2 abcd"}},
		{name: "NULL without generic form", text: "x IN NULL 010203\n", wantErr: "test.zone:6: syntax error: NULL records have no presentation format"},

		// Names are octets: only A-Z fold.
		{name: "owner in UTF-8", text: "caf\xc3\xa9 IN A 192.0.2.3\n", want: []string{"caf\\195\\169.example.\t3600\tIN\tA\t192.0.2.3"}},
		{name: "owner with a Latin-1 capital", text: "X\xc9Y IN A 192.0.2.4\n", want: []string{"x\\201y.example.\t3600\tIN\tA\t192.0.2.4"}},
		{name: "owner with invalid UTF-8", text: "bad\xff IN A 192.0.2.5\n", want: []string{"bad\\255.example.\t3600\tIN\tA\t192.0.2.5"}},
		{name: "owner in \\DDD", text: "\\067af\\195\\169 IN A 192.0.2.3\n", want: []string{"caf\\195\\169.example.\t3600\tIN\tA\t192.0.2.3"}},
		{name: "raw and escaped spellings are one name", text: "caf\xc3\xa9 IN A 192.0.2.3\ncaf\\195\\169 IN A 192.0.2.3\nCAF\\195\\169 IN TXT \"x\"\n",
			want: []string{"caf\\195\\169.example.\t3600\tIN\tA\t192.0.2.3", "caf\\195\\169.example.\t3600\tIN\tTXT\t\"x\""}},
		{name: "rdata name keeps its case and octets", text: "y IN CNAME \xc3\x89t\xc3\xa9.Example.NET.\n", want: []string{"y.example.\t3600\tIN\tCNAME\t\\195\\137t\\195\\169.Example.NET."}},
		{name: "special characters in a label", text: "a\\.b\\@c\\(d IN A 192.0.2.6\n", want: []string{"a\\.b\\@c\\(d.example.\t3600\tIN\tA\t192.0.2.6"}},

		// \DDD is at most 255 and has three digits.
		{name: "TXT escape over 255", text: "x IN TXT \"\\256\"\n", wantErr: "test.zone:6: syntax error: bad escape \\256"},
		{name: "TXT escape 999 unquoted", text: "x IN TXT \\999\n", wantErr: "test.zone:6: syntax error: bad escape \\999"},
		{name: "TXT escape of two digits", text: "x IN TXT \"\\25x\"\n", wantErr: "test.zone:6: syntax error: bad escape \"\\\\25x\""},
		{name: "name escape over 255", text: "\\300 IN A 192.0.2.1\n", wantErr: "test.zone:6: syntax error: bad escape \\300"},
		{name: "escape over 255 on a later line of a record", text: "x IN TXT (\n \"a\"\n \"\\400\" )\n", wantErr: "test.zone:8: syntax error: bad escape \\400"},
		{name: "TXT escapes at the limits", text: "x IN TXT \"\\255\\000\\\\\\\"\"\n", want: []string{"x.example.\t3600\tIN\tTXT\t\"\\255\\000\\\\\\\"\""}},
		{name: "escaped backslash before digits", text: "x IN TXT \"\\\\256\"\n", want: []string{"x.example.\t3600\tIN\tTXT\t\"\\\\256\""}},
		{name: "escape in a comment", text: "x IN TXT \"y\" ; \\999\n", want: []string{"x.example.\t3600\tIN\tTXT\t\"y\""}},

		// The generic form must hold exactly the type's data.
		{name: "A generic too long", text: "x IN A \\# 5 0102030405\n", wantErr: "test.zone:6: syntax error: x.example. A: the generic data (\\# 5) does not match the A format"},
		{name: "A generic too short", text: "x IN A \\# 3 010203\n", wantErr: "test.zone:6: syntax error"},
		{name: "generic length above the hex", text: "x IN A \\# 5 01020304\n", wantErr: "test.zone:6: syntax error: bad generic (RFC 3597) data"},
		{name: "generic length below the hex", text: "x IN TYPE65280 \\# 3 0102030405\n", wantErr: "test.zone:6: syntax error: bad generic (RFC 3597) data"},
		{name: "generic bad hex", text: "x IN TYPE65280 \\# 2 zzzz\n", wantErr: "test.zone:6: syntax error: x.example. TYPE65280: bad data"},
		{name: "MX generic without its name", text: "x IN MX \\# 2 000a\n", wantErr: "test.zone:6: syntax error: x.example. MX: the generic data (\\# 2) does not hold a whole MX record"},
		{name: "A generic", text: "x IN A \\# 4 01020304\n", want: []string{"x.example.\t3600\tIN\tA\t1.2.3.4"}},
		{name: "MX generic", text: "x IN MX \\# 8 000a 046d61696c 00\n", want: []string{"x.example.\t3600\tIN\tMX\t10 mail."}},
		{name: "unknown type generic split hex", text: "x IN TYPE65280 \\# 3 01 02 03\n", want: []string{"x.example.\t3600\tCLASS1\tTYPE65280\t\\# 3 010203"}},
		{name: "TXT generic empty", text: "x IN TXT \\# 0\n", wantErr: "test.zone:6: syntax error: x.example. TXT: the record has no data"},

		// A record with its data missing is reported at its own line.
		{name: "no data at the end of a line", text: "www A\ny A 192.0.2.2\n", wantErr: "test.zone:6: syntax error: the record has no data"},
		{name: "no data, a comment after the type", text: "www IN A ; none\ny A 192.0.2.2\n", wantErr: "test.zone:6: syntax error: bad A A at the end of the line"},
		{name: "MX cut short, next line taken as its name", text: "www MX 10\nmail\n\nz A 192.0.2.9\n",
			wantErr: "test.zone:6: syntax error: www.example. MX: the data is incomplete"},
		{name: "MX cut short, error on the next line", text: "www MX 10\ny A 192.0.2.2\n",
			wantErr: "test.zone:6: syntax error: the data is incomplete: the record ends with its line (line 6)"},
		{name: "DS cut short", text: "www DS 1 2\n3 abcd\n", wantErr: "test.zone:6: syntax error"},
		{name: "data on the next line inside parentheses", text: "www MX ( 10\n mail )\n", want: []string{"www.example.\t3600\tIN\tMX\t10 mail.example."}},
		{name: "MX at the end of the file", text: "www MX ", wantErr: "test.zone:6: syntax error: bad MX Pref at the end of the line"},
		{name: "A at the end of the file", text: "www IN A", wantErr: "test.zone:6: syntax error: www.example. A: the record has no data"},
		{name: "last line without its newline", text: "www IN A 192.0.2.7", want: []string{"www.example.\t3600\tIN\tA\t192.0.2.7"}},

		// The parser reads an IPSECKEY record only when an empty line
		// follows it; the export writes one record a line.
		{name: "IPSECKEY then another record", text: "x IN IPSECKEY 10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==\ny IN A 192.0.2.7\n",
			want: []string{"x.example.\t3600\tIN\tIPSECKEY\t10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==", "y.example.\t3600\tIN\tA\t192.0.2.7"}},
		{name: "IPSECKEY over lines, owner carried over", text: "x IN IPSECKEY ( 10 0 2 .\n AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ== )\n  IN TXT \"t\"\n",
			want: []string{"x.example.\t3600\tIN\tTXT\t\"t\"", "x.example.\t3600\tIN\tIPSECKEY\t10 0 2 . AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ=="}},
		{name: "error after IPSECKEY records", text: "x IN IPSECKEY 10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==\ny IN TYPE45 \\# 3 0a0000\nz IN IPSECKEY 10 0 2 . AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==\n\nw IN A 192.0.2.300\n",
			wantErr: "test.zone:10: syntax error: bad A A: \"192.0.2.300\""},
		{name: "owner that reads as IPSECKEY", text: "ipseckey IN A 192.0.2.8\nwww IN A 192.0.2.9\n",
			want: []string{"ipseckey.example.\t3600\tIN\tA\t192.0.2.8", "www.example.\t3600\tIN\tA\t192.0.2.9"}},

		// Types 0 and 65535 print as names the parser does not read.
		{name: "NSEC types in any order, repeated", text: "x IN NSEC y.example. RRSIG A NSEC A\n",
			want: []string{"x.example.\t3600\tIN\tNSEC\ty.example. A RRSIG NSEC"}},
		{name: "NSEC listing types 0 and 65535", text: "x IN NSEC y.example. A TYPE0 TYPE65535\n",
			want: []string{"x.example.\t3600\tIN\tNSEC\t\\# 48 0179076578616d706c65000001c0ff20" + strings.Repeat("00", 31) + "01"}},

		// Data the parser lets through that its type's format cannot hold.
		{name: "HIP without its public key", text: "x IN HIP 2 200100107B1A74DF365639CC39F1D578 \n", wantErr: "test.zone:6: syntax error: x.example. HIP: the public key is missing"},
		{name: "SVCB mandatory listing itself", text: "x IN SVCB 1 . mandatory=0\n", wantErr: "test.zone:6: syntax error: x.example. SVCB: the data is not valid SVCB data"},

		// A bad token is quoted at most 64 bytes.
		{name: "10 MB bad token", text: "x IN A " + strings.Repeat("9", 10_000_000) + "\n",
			wantErr: "test.zone:6: syntax error: bad A A: \"" + strings.Repeat("9", 64) + "\"... (10000000 bytes)"},

		// $INCLUDE takes regular files only.
		{name: "$INCLUDE of a FIFO", text: "$INCLUDE include.zone\n", special: "fifo", wantErr: "test.zone:6: syntax error: failed to open `include.zone': $INCLUDE refused: \"include.zone\" is a FIFO, not a regular file"},
		{name: "$INCLUDE of a directory", text: "$INCLUDE include.zone\n", special: "dir", wantErr: "test.zone:6: syntax error: failed to open `include.zone': $INCLUDE refused: \"include.zone\" is a directory, not a regular file"},
		{name: "$INCLUDE of a missing file", text: "; c\n$INCLUDE include.zone\n", wantErr: "test.zone:7: syntax error: failed to open `include.zone'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "test.zone")
			if err := os.WriteFile(path, []byte(fidelityHead+tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			for name, text := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			inc := filepath.Join(dir, "include.zone")
			switch tc.special {
			case "fifo":
				if err := syscall.Mkfifo(inc, 0o600); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					// Should the parse block on the FIFO, release it.
					if f, err := os.OpenFile(inc, os.O_RDWR, 0); err == nil {
						f.Close()
					}
				})
			case "dir":
				if err := os.Mkdir(inc, 0o700); err != nil {
					t.Fatal(err)
				}
			}

			out1, err := importExport(t, path)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("imported; want an error with %q; export:\n%s", tc.wantErr, out1)
				}
				t.Logf("%.300s", err)
				if msg := err.Error(); !strings.Contains(msg, tc.wantErr) {
					t.Errorf("error %.300q\nwant it to hold %q", msg, tc.wantErr)
				}
				if len(err.Error()) > 1024 {
					t.Errorf("error message of %d bytes", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The export's records, but for those of fidelityHead.
			var got []string
			for _, l := range strings.Split(strings.TrimSuffix(out1, "\n"), "\n")[2:] {
				if !slices.Contains(fidelityApex, l) {
					got = append(got, l)
				}
			}
			if !strings.Contains(out1, strings.Join(fidelityApex[:2], "\n")) || !strings.Contains(out1, fidelityApex[2]) {
				t.Errorf("export lacks the records of the head:\n%s", out1)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("export:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			again := filepath.Join(t.TempDir(), "export.zone")
			if err := os.WriteFile(again, []byte(out1), 0o600); err != nil {
				t.Fatal(err)
			}
			out2, err := importExport(t, again)
			if err != nil {
				t.Fatalf("import of the export: %v\n%s", err, out1)
			}
			if out2 != out1 {
				t.Errorf("the export does not round-trip:\n%s\n---\n%s", out1, out2)
			}
		})
	}
}

// importExport reads a master file as `zone import` does, stores it in a
// new store and exports it. It gives up after a while, so that a parse
// that blocks fails the test rather than hanging it.
func importExport(t *testing.T, path string) (string, error) {
	t.Helper()
	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	s := openStore(t, zonestore.Options{})
	go func() {
		p, err := zonestore.ParseFile(path, "")
		if err != nil {
			done <- result{err: err}
			return
		}
		z, err := p.Build()
		if err != nil {
			done <- result{err: err}
			return
		}
		if _, err := s.Import(z, false); err != nil {
			done <- result{err: err}
			return
		}
		stored, err := s.Load(z.Origin)
		if err != nil {
			done <- result{err: err}
			return
		}
		var b bytes.Buffer
		err = zonestore.Export(&b, stored)
		done <- result{text: b.String(), err: err}
	}()
	select {
	case r := <-done:
		return r.text, r.err
	case <-time.After(20 * time.Second):
		t.Fatalf("reading %s did not finish", path)
		return "", nil
	}
}
