package cli

import (
	"slices"
	"testing"
	"time"

	"github.com/sovdns/sovdns/internal/config"
)

// TestRestartNeeded: settings bound at start are reported by a reload.
func TestRestartNeeded(t *testing.T) {
	a, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := a
	if got := restartNeeded(a, b); len(got) != 0 {
		t.Errorf("same configuration: %v", got)
	}
	b.Resilience.Island.ProbeInterval = time.Minute
	b.Resolver.ServeStale.StaleTTL = time.Minute
	got := restartNeeded(a, b)
	for _, want := range []string{"resolver", "resilience"} {
		if !slices.Contains(got, want) {
			t.Errorf("restartNeeded %v, want %s in it", got, want)
		}
	}
}
