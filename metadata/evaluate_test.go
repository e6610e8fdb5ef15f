package metadata

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// runResult writes a run folder, captures and evaluates it against seen.
func runResult(t *testing.T, p *Profile, o ExampleRun, seen *Shape, extra ...string) Result {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "LH00001", "run")
	if err := WriteExampleRun(dir, o); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		writeFile(t, dir, extra[i], extra[i+1])
	}
	return p.Evaluate(p.Capture(dir, "LH00001/run"), seen)
}

func findingLines(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.String())
	}
	return out
}

func TestEvaluateDrift(t *testing.T) {
	p := exampleProfile(t)
	first := runResult(t, p, ExampleRun{}, nil)
	if first.Status != StatusValid || len(first.Findings) != 0 {
		t.Fatalf("first run: %s %v", first.Status, first.Findings)
	}
	base := first.Shape
	if base.Datasets != 1 || base.Fields["runinfo.date"] != "string:date-iso" || base.Fields["samplesheet.BCLConvert_Data[].Species"] != "string" ||
		base.Values["runparameters.ApplicationVersion"] != "1.2.0.28691" || !reflect.DeepEqual(base.Terms["samplesheet.BCLConvert_Data[].Species"], []string{"NCBITaxon:9606"}) {
		t.Fatalf("baseline %+v", base)
	}
	// The Shape survives the journal (JSON).
	b, _ := json.Marshal(base)
	var seen Shape
	if err := json.Unmarshal(b, &seen); err != nil || !reflect.DeepEqual(seen, base) {
		t.Fatalf("round trip: %v", err)
	}

	cases := []struct {
		name  string
		o     ExampleRun
		extra []string
		want  []string
	}{
		{"same shape", ExampleRun{RunID: "20261203_LH00001_0043_B22XYZLT3", Species: []string{"human", "Homo sapiens"}}, nil, nil},
		{"new software version", ExampleRun{ApplicationVersion: "1.3.0.30000"}, nil, []string{
			`drift runparameters.ApplicationVersion: expected "1.2.0.28691", found "1.3.0.30000" (a new instrument software or chemistry version)`}},
		{"new term", ExampleRun{Species: []string{"Homo sapiens", "mouse"}}, nil, []string{
			`drift samplesheet.BCLConvert_Data[1].Species: expected one of NCBITaxon:9606, found NCBITaxon:10090 (a term never seen for this field)`}},
		{"date YYMMDD to ISO", ExampleRun{Date: "261202"}, nil, []string{
			`drift runinfo.date: expected string:date-iso, found string:date-yymmdd (a changed type or format)`}},
		{"new field", ExampleRun{}, []string{"run.meta.json", `{"operator": "Ada", "kit": {"lot": 42}}`}, []string{
			`drift sidecars: expected nothing, found object (a new field)`}},
		{"field gone and new table", ExampleRun{SampleSheetV1: true}, nil, []string{
			`drift samplesheet.Data: expected nothing, found array (a new field)`,
			`drift samplesheet.Header.Chemistry: expected nothing, found string (a new field)`,
			`drift samplesheet.Header.Date: expected nothing, found string:date-us (a new field)`,
			`drift samplesheet.Header.IEMFileVersion: expected nothing, found string (a new field)`,
			`drift samplesheet.Header.Workflow: expected nothing, found string (a new field)`,
			`drift samplesheet.Header["Experiment Name"]: expected nothing, found string (a new field)`,
			`drift samplesheet.Settings: expected nothing, found object (a new field)`,
			`drift samplesheet.BCLConvert_Data: expected array, found nothing (a field present in every dataset so far (1) is gone)`,
			`drift samplesheet.BCLConvert_Settings: expected object, found nothing (a field present in every dataset so far (1) is gone)`,
			`drift samplesheet.Header.FileFormatVersion: expected string, found nothing (a field present in every dataset so far (1) is gone)`,
			`drift samplesheet.Header.InstrumentPlatform: expected string, found nothing (a field present in every dataset so far (1) is gone)`,
			`drift samplesheet.Header.InstrumentType: expected string, found nothing (a field present in every dataset so far (1) is gone)`,
			`drift samplesheet.Header.RunName: expected string, found nothing (a field present in every dataset so far (1) is gone)`,
			// v1 [Reads] is a list of cycles, v2 [Reads] key/value: one
			// finding, not one per key below it.
			`drift samplesheet.Reads: expected object, found array (a changed type or format)`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runResult(t, p, tc.o, &seen, tc.extra...)
			want := StatusDrift
			if tc.want == nil {
				want = StatusValid
			}
			got := findingLines(r.Findings)
			if r.Status != want || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("status %s, findings:\n%s\nwant %s:\n%s", r.Status, strings.Join(got, "\n"), want, strings.Join(tc.want, "\n"))
			}
		})
	}

	t.Run("new field below a known one", func(t *testing.T) {
		r := runResult(t, p, ExampleRun{}, &seen, "SampleSheet.csv", "[Header]\nFileFormatVersion,2\nRunName,r\nInstrumentPlatform,NovaSeqXSeries\nInstrumentType,NovaSeqXPlus\n"+
			"[Reads]\nRead1Cycles,151\nRead2Cycles,151\nIndex1Cycles,8\nIndex2Cycles,8\n[BCLConvert_Settings]\nSoftwareVersion,4.2.7\nFastqCompressionFormat,gzip\n"+
			"[BCLConvert_Data]\nLane,Sample_ID,Index,Index2,Sample_Project,Species,Tissue\n1,S1,ACGTACGT,TGCATGCA,P1,Homo sapiens,liver\n")
		if got := findingLines(r.Findings); r.Status != StatusDrift || !reflect.DeepEqual(got, []string{
			`drift samplesheet.BCLConvert_Data[].Tissue: expected nothing, found string (a new field)`}) {
			t.Errorf("%s %q", r.Status, got)
		}
	})

	t.Run("optional field missing once is not noise", func(t *testing.T) {
		// Seen twice: once with the sidecar, once without; its absence now
		// is not drift, its presence is not new.
		withSide := runResult(t, p, ExampleRun{}, &seen, "run.meta.json", `{"operator": "Ada"}`)
		if withSide.Status != StatusDrift {
			t.Fatalf("status %s", withSide.Status)
		}
		without := runResult(t, p, ExampleRun{}, &withSide.Shape)
		if without.Status != StatusValid {
			t.Fatalf("sidecar missing after one run with it: %s %q", without.Status, findingLines(without.Findings))
		}
		if without.Shape.Datasets != 3 || without.Shape.Present["sidecars"] != 1 || without.Shape.Present["runinfo"] != 3 {
			t.Errorf("presence %+v", without.Shape.Present)
		}
		again := runResult(t, p, ExampleRun{}, &without.Shape, "x.meta.json", `{"operator": "Grace"}`)
		if again.Status != StatusValid {
			t.Errorf("an optional field back (another sidecar of the same pattern): %s %q", again.Status, findingLines(again.Findings))
		}
		// A field always present so far that goes is drift, even after many.
		gone := runResult(t, p, ExampleRun{}, &again.Shape, "RunParameters.xml", "<RunParameters><ApplicationName>x</ApplicationName><ApplicationVersion>1.2.0.28691</ApplicationVersion><SystemSuiteVersion>1.2.0</SystemSuiteVersion><Side>A</Side><Application>NovaSeqXSeries Control Software</Application><OutputFolder>o</OutputFolder><InstrumentType>NovaSeqXPlus</InstrumentType><RunId>r</RunId><Read/><Read/><Type/><Type/><Mode/><Mode/></RunParameters>")
		if got := findingLines(gone.Findings); !reflect.DeepEqual(got, []string{
			`drift runparameters.Version: expected array, found nothing (a field present in every dataset so far (4) is gone)`,
			`drift runparameters.ApplicationName: expected "NovaSeqXSeries Control Software", found "x" (a new instrument software or chemistry version)`,
		}) {
			t.Errorf("%s %q", gone.Status, got)
		}
	})

	t.Run("invalid wins", func(t *testing.T) {
		r := runResult(t, p, ExampleRun{Species: []string{"fruit fly"}, ApplicationVersion: "9"}, &seen)
		if got := findingLines(r.Findings); r.Status != StatusInvalid || !reflect.DeepEqual(got, []string{
			`invalid samplesheet.BCLConvert_Data[0].Species: expected a term of ncbitaxon under NCBITaxon:40674, found "fruit fly"`}) {
			t.Errorf("%s %q", r.Status, got)
		}
		if r.Shape.Datasets != 2 {
			t.Error("an invalid dataset still gives the merged shape (the lead decides)")
		}
	})
}

func TestEvaluateWithoutSchema(t *testing.T) {
	p, err := NewProfile("seq", "{instrument}/{run_id}/**", []string{"RunInfo.xml", "RunParameters.xml", "SampleSheet.csv"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := runResult(t, p, ExampleRun{}, nil)
	if first.Status != StatusValid || first.SchemaVersion != "" || len(first.Shape.Terms) != 0 {
		t.Fatalf("%+v", first)
	}
	r := runResult(t, p, ExampleRun{ApplicationVersion: "2.0"}, &first.Shape)
	if r.Status != StatusDrift || len(r.Findings) != 1 || r.Findings[0].Field != "runparameters.ApplicationVersion" ||
		r.Findings[0].Expected != `"1.2.0.28691"` || r.Findings[0].Found != `"2.0"` {
		t.Errorf("%s %q", r.Status, findingLines(r.Findings))
	}
	if got := (*Profile)(nil).Evaluate(nil, nil); got.Status != StatusNone {
		t.Errorf("nil profile: %s", got.Status)
	}
	// An empty Shape (a watch with no dataset yet) is no baseline.
	if r := runResult(t, p, ExampleRun{}, &Shape{}); r.Status != StatusValid {
		t.Errorf("empty shape: %s %q", r.Status, findingLines(r.Findings))
	}
}

func TestKindOf(t *testing.T) {
	cases := []struct {
		key  string
		v    any
		want string
	}{
		{"date", "2026-12-02T09:41:07Z", "string:date-iso"},
		{"Date", "2026-12-02", "string:date-iso"},
		{"date", "261202", "string:date-yymmdd"},
		{"run_number", "261202", "string"}, // six digits outside a date field
		{"date", "261399", "string"},       // month 13
		{"Date", "4/29/2020 7:29:41 PM", "string:date-us"},
		{"Date", "12/2/2026", "string:date-us"},
		{"x", "", "string:empty"},
		{"x", json.Number("3"), "integer"},
		{"x", json.Number("3.5"), "number"},
		{"x", true, "boolean"},
		{"x", nil, "null"},
		{"x", []any{}, "array"},
		{"x", map[string]any{}, "object"},
	}
	for _, tc := range cases {
		if got := kindOf(tc.key, tc.v); got != tc.want {
			t.Errorf("kindOf(%q, %v) = %s, want %s", tc.key, tc.v, got, tc.want)
		}
	}
	for in, want := range map[string]string{
		"string|string:empty":          "string",
		"string:empty":                 "string",
		"string:date-iso|string:empty": "string:date-iso",
		"string:date-iso|string":       "string",
		"integer|null":                 "integer",
		"integer|string":               "integer|string",
	} {
		ks := map[string]bool{}
		for _, k := range strings.Split(in, "|") {
			ks[k] = true
		}
		if got := fieldKinds(ks); got != want {
			t.Errorf("fieldKinds(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestFindingString(t *testing.T) {
	f := Finding{Kind: "invalid", Field: "samplesheet.BCLConvert_Data[2].Species", Expected: "a term of ncbitaxon under NCBITaxon:40674", Found: `"Homo sapiens sapiens X"`, Message: "not a term of ncbitaxon"}
	if got := f.String(); got != `invalid samplesheet.BCLConvert_Data[2].Species: expected a term of ncbitaxon under NCBITaxon:40674, found "Homo sapiens sapiens X"` {
		t.Errorf("%s", got)
	}
	f = Finding{Kind: "invalid", Field: "runinfo", Message: "/x/RunInfo.xml:3: malformed XML"}
	if got := f.String(); got != "invalid runinfo: /x/RunInfo.xml:3: malformed XML" {
		t.Errorf("%s", got)
	}
}

func TestSplitPath(t *testing.T) {
	for in, want := range map[string][]string{
		"runparameters.ApplicationVersion":   {"runparameters", "ApplicationVersion"},
		`sidecars["run.meta.json"].operator`: {"sidecars", "run.meta.json", "operator"},
		`sidecars["a"]`:                      {"sidecars", "a"},
		"a":                                  {"a"},
	} {
		if got := splitPath(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitPath(%s) = %q", in, got)
		}
	}
	doc := map[string]any{"sidecars": map[string]any{"run.meta.json": map[string]any{"operator": "Ada"}}}
	if v, ok := lookupPath(doc, `sidecars["run.meta.json"].operator`); !ok || v != "Ada" {
		t.Errorf("lookupPath %v %v", v, ok)
	}
}
