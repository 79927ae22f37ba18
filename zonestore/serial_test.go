package zonestore_test

import (
	"testing"
	"time"

	"github.com/sovdns/sovdns/zonestore"
)

func TestSerialLess(t *testing.T) {
	tests := []struct {
		name string
		a, b uint32
		want bool
	}{
		{name: "equal", a: 5, b: 5, want: false},
		{name: "one more", a: 5, b: 6, want: true},
		{name: "one less", a: 6, b: 5, want: false},
		{name: "zero to one", a: 0, b: 1, want: true},
		{name: "wrap past zero", a: 4294967295, b: 0, want: true},
		{name: "wrap past zero, reversed", a: 0, b: 4294967295, want: false},
		{name: "wrap by ten", a: 4294967290, b: 4, want: true},
		{name: "just under half", a: 0, b: 1<<31 - 1, want: true},
		{name: "just under half, reversed", a: 1<<31 - 1, b: 0, want: false},
		// RFC 1982 §3.2: at exactly 2^31 apart the comparison is undefined;
		// neither is less.
		{name: "exactly half", a: 0, b: 1 << 31, want: false},
		{name: "exactly half, reversed", a: 1 << 31, b: 0, want: false},
		{name: "just over half", a: 0, b: 1<<31 + 1, want: false},
		{name: "just over half, reversed", a: 1<<31 + 1, b: 0, want: true},
		{name: "date serials", a: 2024010101, b: 2024010200, want: true},
		{name: "max and half", a: 4294967295, b: 1<<31 - 2, want: true},
		{name: "max and half minus one", a: 4294967295, b: 1<<31 - 1, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := zonestore.SerialLess(tc.a, tc.b); got != tc.want {
				t.Errorf("SerialLess(%d, %d) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestNextSerial(t *testing.T) {
	day := time.Date(2024, 3, 1, 23, 30, 0, 0, time.UTC)
	tests := []struct {
		name   string
		old    uint32
		policy zonestore.SerialPolicy
		now    time.Time
		want   uint32
	}{
		{name: "increment", old: 5, policy: zonestore.SerialIncrement, now: day, want: 6},
		{name: "increment wraps", old: 4294967295, policy: zonestore.SerialIncrement, now: day, want: 0},
		{name: "date from a small serial", old: 5, policy: zonestore.SerialDate, now: day, want: 2024030100},
		{name: "date from yesterday", old: 2024022907, policy: zonestore.SerialDate, now: day, want: 2024030100},
		{name: "date same day", old: 2024030100, policy: zonestore.SerialDate, now: day, want: 2024030101},
		{name: "date same day, 99 used", old: 2024030199, policy: zonestore.SerialDate, now: day, want: 2024030200},
		{name: "date already ahead", old: 2030010100, policy: zonestore.SerialDate, now: day, want: 2030010101},
		{name: "date uses UTC", old: 5, policy: zonestore.SerialDate, now: time.Date(2024, 3, 1, 20, 0, 0, 0, time.FixedZone("UTC-5", -5*3600)), want: 2024030200},
		{name: "date behind old in serial arithmetic", old: 4000000000, policy: zonestore.SerialDate, now: day, want: 4000000001},
		{name: "date ahead of max in serial arithmetic", old: 4294967295, policy: zonestore.SerialDate, now: day, want: 2024030100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := zonestore.NextSerial(tc.old, tc.policy, tc.now)
			if got != tc.want {
				t.Errorf("NextSerial(%d, %s) = %d, want %d", tc.old, tc.policy, got, tc.want)
			}
			if !zonestore.SerialLess(tc.old, got) {
				t.Errorf("NextSerial(%d) = %d does not move forward", tc.old, got)
			}
		})
	}
}

func TestParseSerialPolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    zonestore.SerialPolicy
		wantErr bool
	}{
		{in: "increment", want: zonestore.SerialIncrement},
		{in: "date", want: zonestore.SerialDate},
		{in: "", wantErr: true},
		{in: "Date", wantErr: true},
		{in: "unixtime", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := zonestore.ParseSerialPolicy(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseSerialPolicy(%q) = %q, %v", tc.in, got, err)
			}
		})
	}
}
