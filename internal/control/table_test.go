package control

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/sovdns/sovdns/zonestore"
)

// tabTable is the zone table as text/tabwriter lays it out (cells two
// spaces apart): what WriteZoneTable must write without keeping every cell.
func tabTable(infos []zonestore.ZoneInfo) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tSERIAL\tRECORDS\tUPDATED")
	for _, i := range infos {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", i.Origin, i.Serial, i.Records, i.Updated.Format(time.RFC3339))
	}
	if len(infos) == 0 {
		fmt.Fprintln(tw, "(no zones)")
	}
	tw.Flush()
	return b.String()
}

func TestWriteZoneTable(t *testing.T) {
	at := time.Date(2026, 12, 4, 14, 5, 21, 0, time.UTC)
	many := make([]zonestore.ZoneInfo, 2000)
	for i := range many {
		many[i] = zonestore.ZoneInfo{Origin: fmt.Sprintf("z%d.gov.test.", i), Serial: uint32(i * 7919), Records: i % 300, Updated: at.Add(time.Duration(i) * time.Second)}
	}
	tests := []struct {
		name  string
		infos []zonestore.ZoneInfo
	}{
		{"no zones", nil},
		{"one short zone", []zonestore.ZoneInfo{{Origin: ".", Serial: 1, Records: 2, Updated: at}}},
		{"wide serial", []zonestore.ZoneInfo{{Origin: "a.", Serial: 4294967295, Records: 1, Updated: at}, {Origin: "gov.az.", Serial: 2026120401, Records: 123456789, Updated: at}}},
		{"zero time", []zonestore.ZoneInfo{{Origin: "example.", Serial: 5, Records: 18}}},
		{"many", many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got bytes.Buffer
			if err := WriteZoneTable(&got, tt.infos); err != nil {
				t.Fatal(err)
			}
			if want := tabTable(tt.infos); got.String() != want {
				t.Errorf("table:\n%q\nwant:\n%q", truncate(got.String()), truncate(want))
			}
		})
	}
}

func truncate(s string) string {
	if len(s) > 600 {
		return s[:600] + "..."
	}
	return s
}

// BenchmarkWriteZoneTable is the table of 100,000 zones: what a zone list of
// a registry costs the server.
func BenchmarkWriteZoneTable(b *testing.B) {
	at := time.Date(2026, 12, 4, 14, 5, 21, 0, time.UTC)
	infos := make([]zonestore.ZoneInfo, 100_000)
	for i := range infos {
		infos[i] = zonestore.ZoneInfo{Origin: fmt.Sprintf("z%d.gov.test.", i), Serial: 1, Records: 17, Updated: at}
	}
	b.ReportAllocs()
	for b.Loop() {
		var out bytes.Buffer
		if err := WriteZoneTable(&out, infos); err != nil {
			b.Fatal(err)
		}
	}
}
