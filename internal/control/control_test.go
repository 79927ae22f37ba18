package control

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/resolver"
)

func serve(t *testing.T, cache *resolver.Cache) *Client {
	t.Helper()
	return serveNode(t, Node{Cache: cache})
}

func serveNode(t *testing.T, node Node) *Client {
	t.Helper()
	path := filepath.Join(t.TempDir(), SocketName)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, path, Handler(node), slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		// Serve has returned: nothing is left beside the socket's path.
		left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*"))
		hidden, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*"))
		if len(left)+len(hidden) != 0 {
			t.Errorf("left behind after shutdown: %v %v", left, hidden)
		}
	})
	// The socket appears at its path already listening and private: from
	// the first moment it exists, its mode is 0600.
	for i := 0; ; i++ {
		st, err := os.Stat(path)
		if err == nil {
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("the control socket appeared with mode %v, want 0600", st.Mode().Perm())
			}
			break
		}
		if i > 200 {
			t.Fatalf("the control socket did not appear: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return NewClient(path)
}

func TestCacheAPI(t *testing.T) {
	cache := resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20})
	rr, _ := dns.NewRR("www.example.org. 300 IN A 192.0.2.1")
	cache.PutRRset([]dns.RR{rr}, resolver.RankAnswerAA)
	c := serve(t, cache)
	ctx := context.Background()
	body, err := c.Do(ctx, "GET", "/v1/cache/stats")
	if err != nil || !strings.Contains(string(body), `"entries": 1`) {
		t.Fatalf("stats: %v %s", err, body)
	}
	if body, err = c.Do(ctx, "GET", "/v1/cache/dump"); err != nil || !strings.Contains(string(body), "www.example.org.") {
		t.Fatalf("dump: %v %s", err, body)
	}
	var entry resolver.DumpEntry
	if body, err = c.Do(ctx, "GET", "/v1/cache/dump?format=json"); err != nil || json.Unmarshal(body, &entry) != nil ||
		entry.Name != "www.example.org." || entry.Kind != "rrset" || len(entry.Records) != 1 {
		t.Fatalf("dump as JSON: %v %s", err, body)
	}
	if _, err = c.Do(ctx, "GET", "/v1/cache/dump?format=yaml"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("dump as YAML: %v, want ErrBadRequest", err)
	}
	if body, err = c.Do(ctx, "POST", "/v1/cache/flush?name=example.org"); err != nil || !strings.Contains(string(body), `"removed": 1`) {
		t.Fatalf("flush: %v %s", err, body)
	}
	if _, err = c.Do(ctx, "GET", "/v1/cache/flush"); err == nil {
		t.Error("flush answered a GET")
	}
}

func TestNoCacheAndNoServer(t *testing.T) {
	c := serve(t, nil)
	if _, err := c.Do(context.Background(), "GET", "/v1/cache/stats"); err == nil || !strings.Contains(err.Error(), "recursion is off") {
		t.Errorf("stats without a cache: %v", err)
	}
	_, err := NewClient(filepath.Join(t.TempDir(), SocketName)).Do(context.Background(), "GET", "/v1/cache/stats")
	if !errors.Is(err, ErrNoServer) {
		t.Errorf("no server: %v, want ErrNoServer", err)
	}
}

// keyCache records the flushes of the validator's key cache.
type keyCache struct {
	all   int      // full flushes
	names []string // flushes of a name
}

func (k *keyCache) FlushKeys() int { k.all++; return 3 }

func (k *keyCache) FlushKeysName(name string) int {
	k.names = append(k.names, name)
	return 1
}

// TestFlushForgetsKeys: a full flush empties the validated-key cache too,
// a flush of a name forgets the keys at and below it; the answer counts
// them.
func TestFlushForgetsKeys(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		wantAll   int
		wantNames []string
		wantKeys  int
	}{
		{name: "one name", path: "/v1/cache/flush?name=example.org", wantNames: []string{"example.org"}, wantKeys: 1},
		{name: "everything", path: "/v1/cache/flush", wantAll: 1, wantKeys: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := &keyCache{}
			c := serveNode(t, Node{Cache: resolver.NewCache(resolver.CacheConfig{MaxBytes: 1 << 20}), Keys: keys})
			body, err := c.Do(context.Background(), "POST", tt.path)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				KeysRemoved *int `json:"keys_removed"`
			}
			if err := json.Unmarshal(body, &got); err != nil || got.KeysRemoved == nil || *got.KeysRemoved != tt.wantKeys {
				t.Errorf("answer %s (%v), want keys_removed %d", body, err, tt.wantKeys)
			}
			if keys.all != tt.wantAll || !slices.Equal(keys.names, tt.wantNames) {
				t.Errorf("key cache flushed whole %d times and for %q, want %d and %q", keys.all, keys.names, tt.wantAll, tt.wantNames)
			}
		})
	}
}
