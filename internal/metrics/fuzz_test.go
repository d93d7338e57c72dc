package metrics

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/quasipaa/quasipaa/internal/hub"
)

// FuzzScrapeLabels feeds arbitrary stream paths, protocols and states (which
// come from clients and components) through a scrape: it must never fail,
// and the exposition must parse back with valid, bounded label values.
func FuzzScrapeLabels(f *testing.F) {
	f.Add("live/cam1", "flv", "live", "rtmp")
	f.Add("live/\xff", "", "waiting_publisher", "10.0.0.1:1935")
	f.Add("a\"b\\c\nd", "Bad Proto", "x y", "whep")
	f.Fuzz(func(t *testing.T, path, protocol, state, clientProto string) {
		src := &fakeSource{infos: []hub.StreamInfo{
			{Path: path, State: state, Created: time.Unix(1, 0), Viewers: map[string]int{protocol: 1, "flv": 2}},
			{Path: path + "/2", State: state, Created: time.Unix(2, 0)},
		}}
		m := New(src, WithRelays(func() []RelayState {
			return []RelayState{{Path: path, State: state}, {Path: path, State: protocol}}
		}), WithNode(path, protocol, state))
		m.ClientLeft(hub.Event{Action: hub.Action(state), Client: hub.ClientInfo{Protocol: clientProto}})
		m.AuthRefused(state, clientProto, protocol)
		if _, err := m.Registry().Gather(); err != nil {
			t.Fatalf("gather: %v", err)
		}
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d", rec.Code)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(rec.Body.Bytes()))
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		for name, fam := range fams {
			for _, s := range fam.GetMetric() {
				for _, l := range s.GetLabel() {
					if !utf8.ValidString(l.GetValue()) {
						t.Fatalf("%s: label %s is not UTF-8", name, l.GetName())
					}
					if l.GetName() == "protocol" || l.GetName() == "reason" || l.GetName() == "action" {
						if len(l.GetValue()) > maxLabelLen || (l.GetValue() != "" && !isToken(l.GetValue())) {
							t.Fatalf("%s: label %s=%q is not a bounded token", name, l.GetName(), l.GetValue())
						}
					}
				}
			}
		}
	})
}
