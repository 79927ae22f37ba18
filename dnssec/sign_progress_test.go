package dnssec

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestSignProgress: Progress is told of every RRset signed, in batches,
// with the same total each time.
func TestSignProgress(t *testing.T) {
	var text strings.Builder
	text.WriteString(testZone)
	for i := range 300 {
		fmt.Fprintf(&text, "h%d A 192.0.2.%d\n", i, i%250+1)
	}
	z := buildZone(t, text.String())
	p := DefaultPolicy()
	keys, err := InitialKeys(z.Origin, p, t0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	done, calls, totals := 0, 0, map[int]bool{}
	out, err := Sign(Input{Zone: z, Keys: keys, Policy: p, Now: t0, Progress: func(n, total int) {
		mu.Lock()
		defer mu.Unlock()
		done += n
		calls++
		totals[total] = true
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(totals) != 1 {
		t.Fatalf("totals %v, want one", totals)
	}
	for total := range totals {
		if done != total || calls < total/64 || total < 300 {
			t.Errorf("told of %d RRsets in %d calls, of a total of %d", done, calls, total)
		}
	}
	if out.Made == 0 {
		t.Error("nothing signed")
	}
}
