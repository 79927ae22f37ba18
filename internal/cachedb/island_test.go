package cachedb

import (
	"path/filepath"
	"testing"
)

// TestIslandStateSaved: a resolver saved in island mode is told so when its
// file is loaded again, and one that was not is not.
func TestIslandStateSaved(t *testing.T) {
	for _, island := range []bool{false, true} {
		clk := newClock()
		c := newCache(clk)
		r := newResolver(c)
		if island {
			r.RestoreIsland()
		}
		path := filepath.Join(t.TempDir(), "cache.db")
		saved, err := Save(path, c, r)
		if err != nil {
			t.Fatal(err)
		}
		c2 := newCache(clk)
		loaded, err := Load(path, c2, newResolver(c2))
		if err != nil {
			t.Fatal(err)
		}
		if saved.Island != island || loaded.Island != island {
			t.Errorf("island %v: saved %v, loaded %v", island, saved.Island, loaded.Island)
		}
	}
}
