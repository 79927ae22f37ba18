package test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/miekg/dns"
)

// fidelityZone holds records that master-file tools have trouble keeping:
// NULL data, names with octets outside ASCII (raw and as \DDD), an
// IPSECKEY record followed by another record, TXT escapes at their limits.
const fidelityZone = "$ORIGIN example.com.\n$TTL 3600\n" +
	"@ IN SOA ns1 hostmaster 2024060101 7200 900 1209600 300\n" +
	"@ IN NS ns1\n" +
	"ns1 IN A 192.0.2.53\n" +
	"null IN NULL \\# 3 010203\n" +
	"caf\xc3\xa9 IN A 192.0.2.1\n" +
	"X\xc9Y IN AAAA 2001:db8::1\n" +
	"alias IN CNAME \xc3\x89t\xc3\xa9.Example.NET.\n" +
	"key IN IPSECKEY 10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==\n" +
	"txt IN TXT \"\\255\\000\" \"caf\xc3\xa9\"\n"

// TestZoneFileRoundTrip runs checkzone, zone import and zone export on a
// zone of hard cases: the export reads back as the same zone, byte for
// byte, and the names outside ASCII are served as their octets.
func TestZoneFileRoundTrip(t *testing.T) {
	t.Parallel()
	files := t.TempDir()
	src := filepath.Join(files, "example.com.zone")
	if err := os.WriteFile(src, []byte(fidelityZone), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := mustCLI(t, nil, "checkzone", src); !strings.Contains(r.stdout, "OK") {
		t.Errorf("checkzone printed %q", r.stdout)
	}
	dir := t.TempDir()
	mustCLI(t, nil, "zone", "import", src, "--data-dir", dir)
	exported := mustCLI(t, nil, "zone", "export", "example.com", "--data-dir", dir).stdout
	for _, want := range []string{
		"null.example.com.\t3600\tIN\tNULL\t\\# 3 010203\n",
		"caf\\195\\169.example.com.\t3600\tIN\tA\t192.0.2.1\n",
		"x\\201y.example.com.\t3600\tIN\tAAAA\t2001:db8::1\n",
		"alias.example.com.\t3600\tIN\tCNAME\t\\195\\137t\\195\\169.Example.NET.\n",
		"key.example.com.\t3600\tIN\tIPSECKEY\t10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==\n",
		"txt.example.com.\t3600\tIN\tTXT\t\"\\255\\000\" \"caf\\195\\169\"\n",
	} {
		if !strings.Contains(exported, want) {
			t.Errorf("export lacks %q:\n%s", want, exported)
		}
	}

	out := filepath.Join(files, "exported.zone")
	if err := os.WriteFile(out, []byte(exported), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, nil, "checkzone", out)
	dir2 := t.TempDir()
	mustCLI(t, nil, "zone", "import", out, "--data-dir", dir2)
	if again := mustCLI(t, nil, "zone", "export", "example.com.", "--data-dir", dir2).stdout; again != exported {
		t.Errorf("the export does not round-trip:\n%s\n---\n%s", again, exported)
	}

	s := startServer(t, serveOpts{dataDir: dir})
	for _, tt := range []struct {
		qname  string
		qtype  uint16
		answer string
	}{
		{qname: "caf\\195\\169.example.com.", qtype: dns.TypeA, answer: "caf\\195\\169.example.com. 3600 IN A 192.0.2.1"},
		{qname: "X\\201Y.example.com.", qtype: dns.TypeAAAA, answer: "X\\201Y.example.com. 3600 IN AAAA 2001:db8::1"},
		{qname: "null.example.com.", qtype: dns.TypeNULL, answer: "null.example.com. 3600 IN NULL \\# 3 010203"},
	} {
		r := exchange(t, "udp", s.dns, newQuery(tt.qname, tt.qtype))
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("%s %s: %v", tt.qname, dns.TypeToString[tt.qtype], r)
			continue
		}
		want, err := dns.NewRR(tt.answer)
		if err != nil {
			t.Fatal(err)
		}
		if !dns.IsDuplicate(r.Answer[0], want) {
			t.Errorf("%s %s: answer %v, want %v", tt.qname, dns.TypeToString[tt.qtype], r.Answer[0], want)
		}
	}
	// Only A-Z fold: the lower-case form of \201 (U+00C9) is another name.
	if r := exchange(t, "udp", s.dns, newQuery("x\\233y.example.com.", dns.TypeAAAA)); r.Rcode != dns.RcodeNameError {
		t.Errorf("x\\233y: rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
}

// TestZoneFileRefused runs checkzone and zone import on files that must be
// refused at their file and line, with nothing stored.
func TestZoneFileRefused(t *testing.T) {
	t.Parallel()
	head := "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 7200 900 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.53\n"
	tests := []struct {
		name, text string
		fifo       bool // include.zone is a FIFO
		want       string
	}{
		{name: "bad hex", text: "x IN SSHFP 1 1 zz12\n", want: "bad.zone:6: syntax error: x.example.com. SSHFP: bad data: encoding/hex"},
		{name: "bad base64", text: "; keys\nx IN DNSKEY 257 3 8 !!!\n", want: "bad.zone:7: syntax error: x.example.com. DNSKEY: bad data: illegal base64"},
		{name: "TXT over 65535 octets", text: "x IN TXT " + strings.Repeat(`"`+strings.Repeat("a", 255)+`" `, 300) + "\n",
			want: "bad.zone:6: syntax error: x.example.com. TXT: the data is longer than 65,535 octets"},
		{name: "escape over 255", text: "x IN TXT \"\\256\"\n", want: "bad.zone:6: syntax error: bad escape \\256"},
		{name: "generic data too long", text: "x IN A \\# 5 0102030405\n", want: "bad.zone:6: syntax error: x.example.com. A: the generic data (\\# 5) does not match the A format"},
		{name: "no data", text: "www IN A\ny IN A 192.0.2.2\n", want: "bad.zone:6: syntax error"},
		{name: "10 MB token", text: "x IN A " + strings.Repeat("9", 10_000_000) + "\n", want: "bad.zone:6: syntax error: bad A A: \"999"},
		{name: "$INCLUDE of a FIFO", text: "$INCLUDE include.zone\n", fifo: true, want: "bad.zone:6: syntax error: failed to open `include.zone': $INCLUDE refused: \"include.zone\" is a FIFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := t.TempDir()
			path := filepath.Join(files, "bad.zone")
			if err := os.WriteFile(path, []byte(head+tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.fifo {
				if err := syscall.Mkfifo(filepath.Join(files, "include.zone"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			for _, args := range [][]string{{"checkzone", path}, {"zone", "import", path, "--data-dir", dir}} {
				r := runCLI(t, nil, args...)
				if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
					t.Errorf("sovdns %s: exit %d, stderr %.300q; want exit 2 and %q", args[0], r.code, r.stderr, tt.want)
				}
				if len(r.stderr) > 1024 {
					t.Errorf("sovdns %s: %d bytes on stderr", args[0], len(r.stderr))
				}
			}
			if r := runCLI(t, nil, "zone", "list", "--data-dir", dir); r.code == 0 && strings.Contains(r.stdout, "example.com.") {
				t.Errorf("a refused import stored the zone:\n%s", r.stdout)
			}
		})
	}
}
