package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/hub"
)

const dashboardFile = "../../docs/grafana-dashboard.json"

var (
	promqlString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promqlMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promqlRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlVariable = regexp.MustCompile(`\$\{?\w+\}?`)
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(?:\s*\()?`)
	labelValues    = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)
	promqlKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true}
)

// metricNames returns the metric names a PromQL expression reads.
func metricNames(expr string) []string {
	expr = promqlString.ReplaceAllString(expr, `""`)
	expr = promqlMatchers.ReplaceAllString(expr, " ")
	expr = promqlRange.ReplaceAllString(expr, " ")
	expr = promqlGrouping.ReplaceAllString(expr, " ")
	expr = promqlVariable.ReplaceAllString(expr, " ")
	var names []string
	for _, m := range promqlIdent.FindAllString(expr, -1) {
		if strings.HasSuffix(m, "(") || promqlKeywords[strings.ToLower(m)] {
			continue // a function or aggregation, or a keyword
		}
		names = append(names, m)
	}
	return names
}

func TestMetricNames(t *testing.T) {
	require.Equal(t, []string{"foo_total", "bar"},
		metricNames(`sum by (action, reason) (rate(foo_total{a="b}", c=~"$x"}[$__rate_interval])) * 8 + on(x) group_left(y) bar`))
	require.Equal(t, []string{"go_goroutines"}, metricNames(`topk(10, go_goroutines{instance=~"$instance"}) > bool 0`))
	require.Empty(t, metricNames(`vector(1)`))
}

type dashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct{ X, Y, W, H int }
	Targets    []struct {
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
}

// exposedNames scrapes a node with every option set and every event counted
// once, and returns the metric names it exposes (with the _sum, _count and
// _bucket series of summaries and histograms).
func exposedNames(t *testing.T) map[string]bool {
	var m *Metrics
	h := newHub(t, hub.Options{}, &m)
	m = New(h,
		WithNodeLoad(func() cluster.Load { return cluster.Load{CPU: 0.5, Cores: 2} }),
		WithRelays(func() []RelayState { return []RelayState{{Path: "live/r", State: "live", Bytes: 1}} }),
		WithJobs(func() []cluster.Lease { return []cluster.Lease{{Kind: cluster.KindRecord, Path: "live/a"}} }),
		WithNode("n1", "publish", "test"))
	p := publish(t, h, "live/a", 2, 10)
	defer p.Close()
	r := subscribe(t, h, "live/a", "flv")
	defer r.Close()
	subscribe(t, h, "live/a", "hls").Close()
	m.AuthRefused("play", "flv", ReasonExpired)
	m.WebhookSent(WebhookOnPlay, OutcomeOK)

	names := map[string]bool{}
	for name, f := range scrape(t, m) {
		names[name] = true
		switch f.GetType() {
		case dto.MetricType_SUMMARY:
			names[name+"_sum"], names[name+"_count"] = true, true
		case dto.MetricType_HISTOGRAM:
			names[name+"_sum"], names[name+"_count"], names[name+"_bucket"] = true, true, true
		}
	}
	return names
}

func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(raw, &d))
	require.NotEmpty(t, d.Title)
	require.NotEmpty(t, d.UID)
	require.GreaterOrEqual(t, d.SchemaVersion, 36)

	exposed := exposedNames(t)
	var exprs []string
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "DS_PROMETHEUS" {
			hasDS = true
			require.Equal(t, "datasource", v.Type)
			require.JSONEq(t, `"prometheus"`, string(v.Query))
			continue
		}
		require.NotNil(t, v.Datasource, "variable %s", v.Name)
		require.Equal(t, "${DS_PROMETHEUS}", v.Datasource.UID, "variable %s", v.Name)
		sub := labelValues.FindStringSubmatch(string(v.Query))
		require.NotNil(t, sub, "variable %s: a label_values(metric, label) query", v.Name)
		exprs = append(exprs, sub[1])
	}
	require.True(t, hasDS, "a DS_PROMETHEUS data source variable")

	ids := map[int]bool{}
	used := map[string]bool{}
	for _, p := range d.Panels {
		require.NotEmpty(t, p.Title)
		require.False(t, ids[p.ID], "panel id %d repeats", p.ID)
		ids[p.ID] = true
		require.True(t, p.GridPos.W > 0 && p.GridPos.X+p.GridPos.W <= 24, "panel %q: grid position", p.Title)
		if p.Type == "row" {
			continue
		}
		require.NotNil(t, p.Datasource, "panel %q", p.Title)
		require.Equal(t, "${DS_PROMETHEUS}", p.Datasource.UID, "panel %q", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, "panel %q", p.Title)
			require.Equal(t, strings.Count(tg.Expr, "("), strings.Count(tg.Expr, ")"), "panel %q: %s", p.Title, tg.Expr)
			require.Equal(t, strings.Count(tg.Expr, "{"), strings.Count(tg.Expr, "}"), "panel %q: %s", p.Title, tg.Expr)
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, e := range exprs {
		names := metricNames(e)
		require.NotEmpty(t, names, "no metric in %s", e)
		for _, n := range names {
			require.True(t, exposed[n], "%q reads %s, which /metrics does not expose", e, n)
			used[n] = true
		}
	}
	// The dashboard covers what the brief asks for.
	for _, n := range []string{"quasipaa_streams", "quasipaa_viewers", "quasipaa_ingress_bytes_total",
		"quasipaa_egress_bytes_total", "quasipaa_dropped_frames_total", "quasipaa_client_disconnects_total",
		"quasipaa_auth_refusals_total", "quasipaa_relay_upstreams", "quasipaa_jobs", "quasipaa_node_cpu_cores",
		"go_goroutines", "go_memstats_heap_alloc_bytes"} {
		require.True(t, used[n], "no panel shows %s", n)
	}
	list := make([]string, 0, len(used))
	for n := range used {
		list = append(list, n)
	}
	sort.Strings(list)
	t.Logf("%d panels read %d metrics: %s", len(d.Panels), len(list), strings.Join(list, " "))
}
