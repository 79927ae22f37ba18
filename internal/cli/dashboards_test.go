package cli

import (
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/sovdns/sovdns/internal/audit"
	"github.com/sovdns/sovdns/internal/cachedb"
	"github.com/sovdns/sovdns/internal/config"
	"github.com/sovdns/sovdns/internal/metrics"
)

// The monitoring files shipped in configs/. These tests live in package
// cli, not internal/metrics, because serve registers collectors of its own
// here (newSignerMetrics) and through newResolver, and calling the same
// functions is what keeps the exported set true.
var (
	dashboardFile  = filepath.Join("..", "..", "configs", "grafana", "sovdns.json")
	alertRulesFile = filepath.Join("..", "..", "configs", "prometheus", "sovdns-alerts.yaml")
	alertTestsFile = filepath.Join("..", "..", "configs", "prometheus", "sovdns-alerts_test.yaml")
)

// exportedMetric is a series name the server exports and the labels its
// series carry (job and instance, added by the scrape, not included).
type exportedMetric struct {
	labels []string
}

// recordingRegisterer registers on a real registry (so that a clash still
// fails as in serve) and remembers every collector.
type recordingRegisterer struct {
	reg        *prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.reg.Register(c)
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *recordingRegisterer) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }

var (
	descName   = regexp.MustCompile(`^Desc\{fqName: "([^"]*)"`)
	descConst  = regexp.MustCompile(`constLabels: \{([^}]*)\}`)
	descVar    = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	constLabel = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)=`)
)

// exportedMetrics registers every collector serve registers, in the order
// serve does, with the built-in configuration (recursion and the cache
// file on) plus dnstap to a file, and returns the series names they
// export.
//
// Names come from each collector's Describe, not from a scrape: a label
// vector has no series until first used and some collectors send nothing
// until set up (the secondary totals), yet all of them describe what they
// export. client_golang has no accessor for a Desc's name, so it is read
// from Desc.String; a format change fails the test rather than passing it.
// A Desc does not tell the type, which decides the names a histogram or
// summary expands to (_bucket, _sum, _count): that comes from what the
// collector collects, or, for a vector with no series yet, from its Go
// type.
func exportedMetrics(t *testing.T) map[string]exportedMetric {
	t.Helper()
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Dnstap.File = filepath.Join(t.TempDir(), "dnstap.fstrm") // its counters exist only with dnstap on
	log := slog.New(slog.DiscardHandler)
	rec := &recordingRegisterer{reg: prometheus.NewRegistry()}
	m := metrics.New(rec) // with the Go runtime and process collectors
	tap, err := openDnstap(c, rec, log)
	if err != nil {
		t.Fatal(err)
	}
	if tap == nil {
		t.Fatal("dnstap.file set, yet dnstap is off: the dnstap metrics would be missing")
	}
	t.Cleanup(tap.Close)
	r, _, err := newResolver(c, log, rec, nil, nil, tap)
	if err != nil {
		t.Fatal(err)
	}
	if r == nil {
		t.Fatal("the built-in configuration has recursion off (resolver.allow, SOVDNS_RESOLVER_ALLOW?): the resolver metrics would be missing")
	}
	cachedb.NewMetrics(rec)
	newSignerMetrics(rec, m)
	audit.NewMetrics(rec)

	out := make(map[string]exportedMetric)
	for _, col := range rec.collectors {
		descs := make(chan *prometheus.Desc)
		go func() { col.Describe(descs); close(descs) }()
		kinds := make(map[string]dto.MetricType) // by Desc.String
		ms := make(chan prometheus.Metric)
		go func() { col.Collect(ms); close(ms) }()
		for sample := range ms {
			var pb dto.Metric
			if err := sample.Write(&pb); err != nil {
				t.Fatalf("collect %s: %v", sample.Desc(), err)
			}
			switch {
			case pb.Histogram != nil:
				kinds[sample.Desc().String()] = dto.MetricType_HISTOGRAM
			case pb.Summary != nil:
				kinds[sample.Desc().String()] = dto.MetricType_SUMMARY
			default:
				kinds[sample.Desc().String()] = dto.MetricType_UNTYPED
			}
		}
		for d := range descs {
			s := d.String()
			name := descName.FindStringSubmatch(s)
			if name == nil {
				t.Fatalf("cannot read the metric name in %s (client_golang changed Desc.String?)", s)
			}
			var labels []string
			if cl := descConst.FindStringSubmatch(s); cl != nil {
				for _, l := range constLabel.FindAllStringSubmatch(cl[1], -1) {
					labels = append(labels, l[1])
				}
			}
			if vl := descVar.FindStringSubmatch(s); vl != nil && vl[1] != "" {
				for l := range strings.SplitSeq(vl[1], ",") {
					labels = append(labels, strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"))
				}
			}
			kind, ok := kinds[s]
			if !ok {
				switch col.(type) {
				case *prometheus.HistogramVec, prometheus.Histogram:
					kind = dto.MetricType_HISTOGRAM
				case *prometheus.SummaryVec, prometheus.Summary:
					kind = dto.MetricType_SUMMARY
				}
			}
			switch kind {
			case dto.MetricType_HISTOGRAM:
				out[name[1]+"_bucket"] = exportedMetric{labels: append(slices.Clone(labels), "le")}
				out[name[1]+"_sum"] = exportedMetric{labels: labels}
				out[name[1]+"_count"] = exportedMetric{labels: labels}
			case dto.MetricType_SUMMARY:
				out[name[1]] = exportedMetric{labels: append(slices.Clone(labels), "quantile")}
				out[name[1]+"_sum"] = exportedMetric{labels: labels}
				out[name[1]+"_count"] = exportedMetric{labels: labels}
			default:
				out[name[1]] = exportedMetric{labels: labels}
			}
		}
	}
	return out
}

// PromQL is read with regular expressions, not the Prometheus parser: the
// module github.com/prometheus/prometheus would bring in a large tree of
// dependencies for one test. String literals are blanked first (label
// values, "$zone"), so what is left are identifiers: functions, keywords,
// label names and metric names. Every identifier starting with one of the
// exporters' prefixes counts as a metric name, wherever it stands; so does
// any identifier directly followed by a selector ({) or a range ([),
// whatever its prefix, which catches a misspelled prefix.
var (
	promqlString   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promqlIdent    = regexp.MustCompile(`(?:^|[^A-Za-z0-9_:$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*[{\[])?`)
	promqlSelector = regexp.MustCompile(`([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}`)
	promqlMatcher  = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)`)
	labelValues    = regexp.MustCompile(`label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{[^}]*\})?\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)`)
)

// metricPrefixes are the prefixes of the names the server exports.
var metricPrefixes = []string{metrics.Namespace + "_", "go_", "process_"}

// targetLabels are added by the scrape to every series.
var targetLabels = []string{"job", "instance"}

// checkExpr reports each metric in expr the server does not export, and
// each label matched on or asked for (label_values) that the metric does
// not carry. It fails an expression that names no metric at all.
func checkExpr(t *testing.T, where, expr string, exported map[string]exportedMetric) {
	t.Helper()
	bare := promqlString.ReplaceAllString(expr, `""`)
	var names []string
	for _, m := range promqlIdent.FindAllStringSubmatch(bare, -1) {
		id, selector := m[1], m[2] != ""
		hasPrefix := slices.ContainsFunc(metricPrefixes, func(p string) bool { return strings.HasPrefix(id, p) })
		if !hasPrefix && !selector {
			continue
		}
		names = append(names, id)
		if _, ok := exported[id]; !ok {
			t.Errorf("%s: metric %s is not exported by the server\n\t%s", where, id, expr)
		}
	}
	if len(names) == 0 {
		t.Errorf("%s: no metric found in %q", where, expr)
	}
	checkLabel := func(metric, label string) {
		em, ok := exported[metric]
		if !ok || slices.Contains(targetLabels, label) || label == "__name__" {
			return // an unknown metric is reported above
		}
		if !slices.Contains(em.labels, label) {
			t.Errorf("%s: metric %s has no label %s (it has %v)\n\t%s", where, metric, label, em.labels, expr)
		}
	}
	for _, sel := range promqlSelector.FindAllStringSubmatch(bare, -1) {
		for matcher := range strings.SplitSeq(sel[2], ",") {
			if l := promqlMatcher.FindStringSubmatch(matcher); l != nil {
				checkLabel(sel[1], l[1])
			}
		}
	}
	for _, lv := range labelValues.FindAllStringSubmatch(bare, -1) {
		checkLabel(lv[1], lv[2])
	}
}

// located is a PromQL expression and where it was found.
type located struct{ where, expr string }

// dashboardExprs walks the dashboard JSON and appends every PromQL string
// in it to out: panel targets, annotation queries and template variable
// queries.
func dashboardExprs(v any, where string, out *[]located) {
	switch v := v.(type) {
	case map[string]any:
		title, _ := v["title"].(string)
		if name, ok := v["name"].(string); ok && title == "" {
			title = name
		}
		if title != "" {
			where += " > " + title
		}
		for k, sub := range v {
			if s, ok := sub.(string); ok && (k == "expr" || k == "definition" || k == "query") {
				if k == "query" && !strings.Contains(s, "(") && !strings.Contains(s, "_") {
					continue // a datasource variable's plugin type ("prometheus")
				}
				*out = append(*out, located{where + " (" + k + ")", s})
				continue
			}
			dashboardExprs(sub, where, out)
		}
	case []any:
		for _, sub := range v {
			dashboardExprs(sub, where, out)
		}
	}
}

// TestDashboardMetricsExported: every metric and label the Grafana
// dashboard queries is one the server exports, and the dashboard takes its
// data source and instances from variables.
func TestDashboardMetricsExported(t *testing.T) {
	exported := exportedMetrics(t)
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var exprs []located
	dashboardExprs(dash, "dashboard", &exprs)
	if len(exprs) < 100 {
		t.Fatalf("found %d queries in the dashboard, want the panels' (at least 100)", len(exprs))
	}
	for _, e := range exprs {
		checkExpr(t, e.where, e.expr, exported)
	}

	// The variables, and every panel on the ${DS_PROMETHEUS} data source.
	var d struct {
		Inputs []struct {
			Name, Type string
		} `json:"__inputs"`
		Templating struct {
			List []struct {
				Name, Type string
			}
		}
		Panels []struct {
			Type, Title string
			ID          int
			Datasource  struct{ UID string }
			Targets     []json.RawMessage
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(d.Inputs, func(in struct{ Name, Type string }) bool {
		return in.Name == "DS_PROMETHEUS" && in.Type == "datasource"
	}) {
		t.Error("no DS_PROMETHEUS data source input")
	}
	vars := make(map[string]string)
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	for name, typ := range map[string]string{"DS_PROMETHEUS": "datasource", "job": "query", "instance": "query", "zone": "query"} {
		if vars[name] != typ {
			t.Errorf("template variable %s: type %q, want %q", name, vars[name], typ)
		}
	}
	ids := make(map[int]bool)
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${DS_PROMETHEUS}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %q and %d queries, want ${DS_PROMETHEUS} and at least one", p.Title, p.Datasource.UID, len(p.Targets))
		}
	}
}

// TestAlertRulesMetricsExported: every metric and label the alert rules
// use is one the server exports, and every alert has a severity, a summary
// and a description.
func TestAlertRulesMetricsExported(t *testing.T) {
	exported := exportedMetrics(t)
	raw, err := os.ReadFile(alertRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Record, Expr string
				Labels              map[string]string
				Annotations         map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatalf("%s: %v", alertRulesFile, err)
	}
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			n++
			where := g.Name + " > " + r.Alert + r.Record
			checkExpr(t, where, r.Expr, exported)
			if r.Alert == "" {
				continue
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("%s: severity %q, want critical, warning or info", where, s)
			}
			for _, a := range []string{"summary", "description"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s annotation", where, a)
				}
			}
		}
	}
	if n == 0 {
		t.Fatalf("%s: no rules", alertRulesFile)
	}
}

// TestAlertRulesPromtool runs promtool check rules and promtool test rules
// (Debian package prometheus). Without promtool the test is skipped, except
// in CI, where it must be installed. The rule tests take seconds of CPU:
// -short skips them.
func TestAlertRulesPromtool(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: promtool not run")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found: CI must install the Debian package prometheus")
		}
		t.Skip("promtool not found (Debian package prometheus): the alert rules are not checked")
	}
	for _, args := range [][]string{{"check", "rules", alertRulesFile}, {"test", "rules", alertTestsFile}} {
		out, err := exec.CommandContext(t.Context(), promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
