package audit

import (
	"fmt"
	"strings"
	"testing"
)

// TestProgress: Options.Progress is told of every name of the zone, in
// batches of at most 256, and after each name that needed a lookup.
func TestProgress(t *testing.T) {
	tests := []struct {
		name      string
		extra     string
		resolver  bool
		wantCalls int // at least
	}{
		{name: "no lookups", wantCalls: 3},
		{name: "lookups", extra: "a CNAME www.good.az.\nb CNAME www.ring2.az.\n", resolver: true, wantCalls: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var text strings.Builder
			text.WriteString(govApex + tt.extra)
			for i := range 600 {
				fmt.Fprintf(&text, "h%d A 192.0.2.%d\n", i, i%250+1)
			}
			z := parseZone(t, "gov.az.", text.String())
			var res Resolver
			if tt.resolver {
				res = newFake(t)
			}
			done, calls, most := 0, 0, 0
			_, err := Deps(t.Context(), z, national, res, Options{Progress: func(n int) {
				done += n
				calls++
				most = max(most, n)
			}})
			if err != nil {
				t.Fatal(err)
			}
			if done != z.Names() || calls < tt.wantCalls || most > 256 {
				t.Errorf("told of %d names of %d in %d calls (at most %d at once)", done, z.Names(), calls, most)
			}
		})
	}
}
