package dataset

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestParseConditions(t *testing.T) {
	good := map[string]string{
		"illumina":                     "illumina",
		" Illumina ":                   "illumina",
		"marker:.done":                 "marker:.done",
		"marker:.MARKER_is_finished_*": "marker:.MARKER_is_finished_*",
		"marker:sub/DONE":              "marker:sub/DONE",
		"quiet:2h":                     "quiet:2h0m0s",
		"quiet: 90s":                   "quiet:1m30s",
	}
	for in, want := range good {
		c, err := ParseCondition(in)
		if err != nil || c.String() != want {
			t.Errorf("ParseCondition(%q) = %v, %v; want %s", in, c, err, want)
		}
	}
	bad := map[string]string{
		"":                 "unknown condition",
		"copy":             "unknown condition",
		"illumina:x":       "takes no argument",
		"marker:":          "needs a file name",
		"marker:/etc/done": "clean path inside",
		"marker:../done":   "clean path inside",
		"marker:a/../b":    "clean path inside",
		`marker:a\b`:       "with /",
		"marker:[":         "bad pattern",
		"quiet:":           "needs a duration",
		"quiet:soon":       "needs a duration",
		"quiet:1ns":        "at least",
		"quiet:-1h":        "at least",
	}
	for in, want := range bad {
		if _, err := ParseCondition(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCondition(%q) = %v; want an error with %q", in, err, want)
		}
	}
	if _, err := ParseConditions(nil); err == nil {
		t.Error("no condition accepted")
	}
	cs, err := ParseConditions([]string{"marker:.done", "quiet:1h"})
	if err != nil || len(cs) != 2 {
		t.Fatalf("ParseConditions: %v, %v", cs, err)
	}
}

func must(t *testing.T, vals ...string) Conditions {
	t.Helper()
	cs, err := ParseConditions(vals)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestMarkerAndQuiet(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	run := fstest.MapFS{"a.tif": {Data: []byte("x")}, "sub/b.tif": {Data: []byte("y")}}

	cs := must(t, "marker:.done")
	if v := cs.Evaluate(run, t0, t0.Add(24*time.Hour)); v.Complete {
		t.Fatalf("complete without its marker: %+v", v)
	}
	run[".done"] = &fstest.MapFile{}
	if v := cs.Evaluate(run, t0, t0); !v.Complete || v.Signal != "marker:.done" {
		t.Fatalf("marker present: %+v", v)
	}
	// A folder by the marker's name is not the marker.
	dirRun := fstest.MapFS{".done/x": {}}
	if v := cs.Evaluate(dirRun, t0, t0); v.Complete {
		t.Fatalf("a folder named like the marker completed the dataset: %+v", v)
	}

	// openBIS writes .MARKER_is_finished_<name>.
	ob := must(t, "marker:.MARKER_is_finished_*")
	if v := ob.Evaluate(fstest.MapFS{"x": {}}, t0, t0); v.Complete {
		t.Fatal("pattern matched nothing yet completed")
	}
	if v := ob.Evaluate(fstest.MapFS{".MARKER_is_finished_run7": {}}, t0, t0); !v.Complete {
		t.Fatal("openBIS marker not recognised")
	}

	q := must(t, "quiet:2h")
	if v := q.Evaluate(run, time.Time{}, t0); v.Complete || !v.Recheck.IsZero() {
		t.Fatalf("quiet with nothing seen: %+v", v)
	}
	v := q.Evaluate(run, t0, t0.Add(time.Hour))
	if v.Complete || !v.Recheck.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("one hour into two: %+v", v)
	}
	if v := q.Evaluate(run, t0, t0.Add(2*time.Hour)); !v.Complete || v.Signal != "quiet:2h0m0s" {
		t.Fatalf("two hours quiet: %+v", v)
	}

	// Any one condition completes; the earliest recheck is kept while none does.
	both := must(t, "quiet:3h", "quiet:1h", "marker:.end")
	if v := both.Evaluate(run, t0, t0.Add(30*time.Minute)); v.Complete || !v.Recheck.Equal(t0.Add(time.Hour)) {
		t.Fatalf("earliest recheck: %+v", v)
	}
	if v := both.Evaluate(run, t0, t0.Add(90*time.Minute)); !v.Complete || v.Signal != "quiet:1h0m0s" || !v.Recheck.IsZero() {
		t.Fatalf("second condition holds: %+v", v)
	}
}
