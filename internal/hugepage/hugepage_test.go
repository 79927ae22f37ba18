package hugepage

import "testing"

func TestOff(t *testing.T) {
	for _, tc := range []struct {
		godebug string
		off     bool
	}{
		{"", false},
		{"disablethp=1", true},
		{"madvdontneed=1,disablethp=1", true},
		{"disablethp=1,disablethp=0", false},
		{"disablethp=0", false},
		{"disablethp=10", false},
		{"xdisablethp=1", false},
	} {
		if got := Off(tc.godebug); got != tc.off {
			t.Errorf("Off(%q) = %v, want %v", tc.godebug, got, tc.off)
		}
	}
}
