package main

import (
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const grafanaFile = "../../packaging/grafana/ferry.json"

type grafanaPanel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Repeat  string `json:"repeat"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

// TestGrafanaDashboard checks packaging/grafana/ferry.json: a templated
// instance variable, a row repeated per instance, the panels the issue
// names, and every expression built only from metrics ferry serves (the
// names scraped from a real daemon, as for the alert rules).
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(grafanaFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		SchemaVersion int            `json:"schemaVersion"`
		Panels        []grafanaPanel `json:"panels"`
		Templating    struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", grafanaFile, err)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want a current one (>= 36)", d.SchemaVersion)
	}
	var exprs []string
	hasInstance := false
	for _, v := range d.Templating.List {
		if v.Name == "instance" && v.Type == "query" {
			hasInstance = true
			exprs = append(exprs, v.Definition)
		}
	}
	if !hasInstance {
		t.Errorf("%s: no templated instance variable", grafanaFile)
	}
	repeated := false
	titles := map[string]bool{}
	var walk func(ps []grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if p.Type == "row" && p.Repeat == "instance" {
				repeated = true
			}
			if p.Type != "row" {
				titles[p.Title] = true
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
			}
			for _, q := range p.Targets {
				if strings.TrimSpace(q.Expr) == "" {
					t.Errorf("panel %q: empty expr", p.Title)
				}
				exprs = append(exprs, q.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if !repeated {
		t.Errorf("%s: no row repeated per instance", grafanaFile)
	}
	for _, want := range []string{"Up", "Queue", "Oldest pending", "Upload rate", "Files uploaded and failed", "Breakers", "Dead letters"} {
		if !titles[want] {
			t.Errorf("%s: no panel %q (has %v)", grafanaFile, want, slices.Sorted(maps.Keys(titles)))
		}
	}

	served := scrapeMetricNames(t)
	// Prometheus' own series for a scraped target.
	served["up"] = true
	// A metric is a name followed by a selector or a range; and every
	// ferry_ name, wherever it stands.
	selRe := regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]`)
	ferryRe := regexp.MustCompile(`\bferry_[a-z0-9_]+`)
	functions := map[string]bool{"rate": true, "increase": true, "sum": true, "by": true, "label_values": true, "histogram_quantile": true}
	for _, e := range exprs {
		var names []string
		for _, m := range selRe.FindAllStringSubmatch(e, -1) {
			names = append(names, m[1])
		}
		names = append(names, ferryRe.FindAllString(e, -1)...)
		if len(names) == 0 {
			t.Errorf("expr %q names no metric", e)
		}
		for _, n := range names {
			if functions[n] {
				continue
			}
			if !served[n] {
				t.Errorf("%s: expr %q uses %s, which ferry does not serve", grafanaFile, e, n)
			}
		}
	}
}
