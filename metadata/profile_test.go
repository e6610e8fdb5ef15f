package metadata

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewProfile(t *testing.T) {
	p, err := NewProfile("seq", "{instrument}/{run_id}/**", []string{"runparameters.XML", "SampleSheet.csv", "*.meta.json", "meta/**/*.yml"}, nil, []string{"samplesheet.Header.RunName"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"runparameters.ApplicationVersion", "runparameters.RtaVersion", "runparameters.RTAVersion", "samplesheet.Header.RunName"} {
		if !slices.Contains(p.DriftFields, f) {
			t.Errorf("DriftFields %v lack %s", p.DriftFields, f)
		}
	}
	if !slices.IsSorted(p.DriftFields) {
		t.Error("DriftFields not sorted")
	}
	q, _ := NewProfile("x", "{run}/**", []string{"RunInfo.xml"}, nil, nil)
	if len(q.DriftFields) != 0 {
		t.Errorf("without RunParameters.xml no default drift fields: %v", q.DriftFields)
	}
	bad := []struct {
		tmpl    string
		sources []string
		drift   []string
		msg     string
	}{
		{"{run}/**", []string{"data.txt"}, nil, "must end in .json, .yaml or .yml"},
		{"{run}/**", []string{"/abs/x.json"}, nil, "not a valid pattern"},
		{"{run}/**", []string{"[x.json"}, nil, "not a valid pattern"},
		{"{run}/**", []string{"RunInfo.xml", "runinfo.xml"}, nil, "listed twice"},
		{"{run}/**", nil, []string{""}, "drift_fields: empty field"},
		{"x_{run}", nil, nil, "a field must be a whole segment"},
	}
	for _, tc := range bad {
		if _, err := NewProfile("p", tc.tmpl, tc.sources, nil, tc.drift); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("NewProfile(%q, %q) = %v, want %q", tc.tmpl, tc.sources, err, tc.msg)
		}
	}
	for tmpl, want := range map[string]string{
		"{instrument}/{run_id}/**": "*/*",
		"{project}/**":             "*",
		"runs/{year}/{run}/**":     "*/*/*",
		"**":                       "",
		"{instrument}/{run_id}":    "",
	} {
		p, err := NewProfile("p", tmpl, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.DatasetPattern(); got != want {
			t.Errorf("DatasetPattern(%q) = %q, want %q", tmpl, got, want)
		}
	}
}

func TestCapture(t *testing.T) {
	root := t.TempDir()
	rel := "M00123/150424_M00123_0042_000000000-ABCDE"
	dir := filepath.Join(root, filepath.FromSlash(rel))
	if err := WriteExampleRun(dir, ExampleRun{RunID: "150424_M00123_0042_000000000-ABCDE", Instrument: "M00123", Flowcell: "000000000-ABCDE",
		Date: "150424", SampleSheetV1: true, ApplicationVersion: "2.6.2.1"}); err != nil {
		t.Fatal(err)
	}
	// MiSeq writes runParameters.xml.
	if err := os.Rename(filepath.Join(dir, "RunParameters.xml"), filepath.Join(dir, "runParameters.xml")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "project.meta.json", `{"project": "P1", "pi": {"name": "Ada"}}`)
	writeFile(t, dir, "Data/S1.meta.json", `{"organism": "human"}`)
	writeFile(t, dir, "meta/run.yaml", "operator: Grace\n")
	writeFile(t, dir, "other.yaml", "ignored: true\n") // matches no pattern
	writeFile(t, dir, "Data/S1.fastq.gz", "not metadata")
	p, err := NewProfile("seq", "{instrument}/{run_id}/**", []string{"RunInfo.xml", "RunParameters.xml", "SampleSheet.csv", "*.meta.json", "meta/*.yaml"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := p.Capture(dir, rel)
	if len(c.Findings) != 0 {
		t.Fatalf("findings %v", c.Findings)
	}
	var files []string
	for _, s := range c.Sources {
		files = append(files, s.Kind+":"+s.File)
	}
	if want := []string{"path:.", "runinfo:RunInfo.xml", "runparameters:runParameters.xml", "samplesheet:SampleSheet.csv",
		"sidecar:Data/S1.meta.json", "sidecar:meta/run.yaml", "sidecar:project.meta.json"}; !reflect.DeepEqual(files, want) {
		t.Errorf("sources %q", files)
	}
	ri := c.Sources[1]
	if fi, _ := os.Stat(filepath.Join(dir, "RunInfo.xml")); ri.Size != fi.Size() || !ri.ModTime.Equal(fi.ModTime()) {
		t.Errorf("RunInfo source %+v", ri)
	}
	if !slices.Contains(ri.Fields, "runinfo.flowcell") || !slices.Contains(ri.Fields, "runinfo.reads") {
		t.Errorf("RunInfo fields %v", ri.Fields)
	}
	if got := c.Sources[0].Fields; !reflect.DeepEqual(got, []string{"path.instrument", "path.run_id"}) {
		t.Errorf("path fields %v", got)
	}
	if got := c.Sources[6].Fields; !reflect.DeepEqual(got, []string{`sidecars["project.meta.json"].pi`, `sidecars["project.meta.json"].project`}) {
		t.Errorf("sidecar fields %v", got)
	}
	b, err := json.Marshal(c.Doc)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.Unmarshal(b, &doc)
	if got := doc["runinfo"].(map[string]any)["date"]; got != "150424" {
		t.Errorf("date %v", got)
	}
	if got := doc["runparameters"].(map[string]any)["ApplicationVersion"]; got != "2.6.2.1" {
		t.Errorf("ApplicationVersion %v", got)
	}
	if got := doc["samplesheet"].(map[string]any)["Data"].([]any)[0].(map[string]any)["Species"]; got != "Homo sapiens" {
		t.Errorf("v1 Data %v", got)
	}
	if got := doc["samplesheet"].(map[string]any)["Reads"]; !reflect.DeepEqual(got, []any{"151", "151"}) {
		t.Errorf("v1 Reads %v", got)
	}
	sc := doc["sidecars"].(map[string]any)
	if len(sc) != 3 || sc["Data/S1.meta.json"].(map[string]any)["organism"] != "human" || sc["meta/run.yaml"].(map[string]any)["operator"] != "Grace" {
		t.Errorf("sidecars %v", sc)
	}
	if got := doc["path"]; !reflect.DeepEqual(got, map[string]any{"instrument": "M00123", "run_id": "150424_M00123_0042_000000000-ABCDE"}) {
		t.Errorf("path %v", got)
	}
}

func TestCaptureFailures(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "RunInfo.xml", "<RunInfo>\n<Run Id=\"r\" Number=\"1\">\n</RunInfo>\n")
	writeFile(t, dir, "SampleSheet.csv", "[Header]\nFileFormatVersion,2\nRunName,a,b\n")
	writeFile(t, dir, "x/bad.meta.json", "{\n\"a\": }\n")
	if err := os.WriteFile(filepath.Join(dir, "big.meta.json"), make([]byte, MaxSourceSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := NewProfile("seq", "{instrument}/{run_id}/**", []string{"RunInfo.xml", "RunParameters.xml", "SampleSheet.csv", "*.meta.json"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := p.Capture(dir, "only-one-segment")
	var got []string
	for _, f := range c.Findings {
		got = append(got, f.String())
	}
	sep := string(filepath.Separator)
	want := []string{
		`invalid path: expected a path matching "{instrument}/{run_id}/**", found "only-one-segment"`,
		"invalid runinfo: " + dir + sep + "RunInfo.xml:3: malformed XML: element <Run> closed by </RunInfo>",
		"invalid samplesheet: " + dir + sep + "SampleSheet.csv:3: [Header]: key/value row has 3 cells, want 2",
		`invalid sidecars["big.meta.json"]: ` + dir + sep + "big.meta.json: file too large: 4194305 bytes, over 4194304: not read",
		`invalid sidecars["x/bad.meta.json"]: ` + dir + sep + "x" + sep + "bad.meta.json:2: malformed JSON: invalid character '}' looking for beginning of value",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("findings:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(c.Doc) != 0 {
		t.Errorf("a failed source gives nothing: %v", c.Doc)
	}
	// Absent sources are not findings; the schema decides.
	empty := t.TempDir()
	if c := p.Capture(empty, "LH1/run1"); len(c.Findings) != 0 || len(c.Sources) != 1 {
		t.Errorf("empty dataset: %v %v", c.Findings, c.Sources)
	}
	if r := p.Evaluate(p.Capture(dir, "LH1/run1"), nil); r.Status != StatusInvalid || len(r.Findings) != 4 {
		t.Errorf("a reader failure is invalid: %s %v", r.Status, r.Findings)
	}
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	if err := WriteExampleRun(dir, ExampleRun{}); err != nil {
		t.Fatal(err)
	}
	p, err := NewProfile("seq", "{instrument}/{run_id}/**", []string{"RunInfo.xml", "RunParameters.xml", "SampleSheet.csv", "*.meta.json"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rel := "LH00001/run"
	fp := p.Fingerprint(dir, rel)
	same := func(what string, want bool) {
		t.Helper()
		now := p.Fingerprint(dir, rel)
		if (now == fp) != want {
			t.Errorf("%s: fingerprint changed=%v", what, now != fp)
		}
		fp = now
	}
	same("nothing", true)
	writeFile(t, dir, "Data/L001/s.bcl", "data")
	same("a data file", true)
	writeFile(t, dir, "Data/x.meta.json", "{}")
	same("a sidecar appears", false)
	writeFile(t, dir, "Data/x.meta.json", `{"a": 1}`)
	same("a sidecar grows", false)
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, "SampleSheet.csv"), old, old); err != nil {
		t.Fatal(err)
	}
	same("a sample sheet's mtime", false)
	os.Remove(filepath.Join(dir, "RunParameters.xml"))
	same("RunParameters.xml gone", false)
	writeFile(t, dir, "runParameters.xml", "<RunParameters/>")
	same("runParameters.xml appears", false)
	os.Remove(filepath.Join(dir, "Data", "x.meta.json"))
	same("a sidecar gone", false)
	if p.Fingerprint(dir, "LH00001/other") == fp {
		t.Error("the dataset path is part of the fingerprint")
	}
}
