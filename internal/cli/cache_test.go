package cli

import (
	"bufio"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/internal/control"
	"github.com/sovdns/sovdns/resolver"
)

// countingKeys stands for the validator's key cache.
type countingKeys struct{ all, names int }

func (k *countingKeys) FlushKeys() int { k.all++; return 2 }

func (k *countingKeys) FlushKeysName(string) int { k.names++; return 1 }

// TestCacheJSON: the cache commands' --json outputs parse, with
// snake_case names; dump --json is JSON Lines; flush empties the key
// cache too, and says so.
func TestCacheJSON(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20})
	for _, s := range []string{"www.example.org. 300 IN A 192.0.2.1", "example.org. 300 IN NS ns.example.org."} {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		cache.PutRRset([]dns.RR{rr}, resolver.RankAnswerAA)
	}
	keys := &countingKeys{}
	serveDataDir(t, dir, control.Node{Cache: cache, Keys: keys})
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

	// objects decodes the JSON objects of the output: one, or one per
	// line.
	objects := func(t *testing.T, out string, lines bool) []map[string]any {
		t.Helper()
		var objs []map[string]any
		if !lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("not a JSON object: %v\n%s", err, out)
			}
			return append(objs, m)
		}
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
			}
			objs = append(objs, m)
		}
		return objs
	}
	tests := []struct {
		name     string
		args     []string
		lines    bool     // JSON Lines
		want     []string // fields every object has
		objects  int
		wantKeys countingKeys // key cache flushes after the command
	}{
		{name: "stats", args: []string{"cache", "stats", "--json"}, objects: 1,
			want: []string{"hits", "misses", "stale_hits", "rrset_hits", "rrset_misses", "evictions", "expired", "entries", "bytes", "national"}},
		{name: "dump", args: []string{"cache", "dump", "--json"}, lines: true, objects: 2,
			want: []string{"kind", "name", "type", "rank", "ttl", "stale", "national", "records"}},
		{name: "flush of a name", args: []string{"cache", "flush", "www.example.org", "--json"}, objects: 1,
			want: []string{"flushed", "removed", "keys_removed"}, wantKeys: countingKeys{names: 1}},
		{name: "flush", args: []string{"cache", "flush", "--json"}, objects: 1,
			want: []string{"flushed", "removed", "keys_removed"}, wantKeys: countingKeys{all: 1, names: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := objects(t, mustRun(t, dir, tt.args...).stdout, tt.lines)
			if len(objs) != tt.objects {
				t.Fatalf("%d objects, want %d: %v", len(objs), tt.objects, objs)
			}
			for _, o := range objs {
				for k := range o {
					if !snake.MatchString(k) {
						t.Errorf("field %q is not snake_case", k)
					}
				}
				for _, k := range tt.want {
					if _, ok := o[k]; !ok {
						t.Errorf("no field %q in %v", k, o)
					}
				}
			}
			if *keys != tt.wantKeys {
				t.Errorf("key cache flushed %+v, want %+v", *keys, tt.wantKeys)
			}
		})
	}
	if out := mustRun(t, dir, "cache", "flush").stdout; out != "flushed all: removed 0 cache entries and 2 from the validator's key cache\n" {
		t.Errorf("cache flush said %q", out)
	}
	names := []string{}
	for _, o := range objects(t, mustRun(t, dir, "cache", "dump", "--json").stdout, true) {
		names = append(names, o["name"].(string))
	}
	if !slices.Equal(names, []string{}) {
		t.Errorf("dump after the flush: %v", names)
	}
}
