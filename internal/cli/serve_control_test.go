package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sovdns/sovdns/internal/control"
)

func TestCountRequests(t *testing.T) {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reqs", Help: "h"}, []string{"endpoint", "code"})
	h := countRequests(reqs, control.Handler(control.Node{}))
	for _, path := range []string{"/v1/cache/stats", "/v1/cache/stats", "/nowhere"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	want := `
# HELP reqs h
# TYPE reqs counter
reqs{code="404",endpoint="other"} 1
reqs{code="501",endpoint="GET /v1/cache/stats"} 2
`
	if err := testutil.CollectAndCompare(reqs, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
