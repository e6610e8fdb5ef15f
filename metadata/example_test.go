package metadata

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// repoTestdata is the repository's testdata/metadata (the worked example
// the README uses).
func repoTestdata(t *testing.T, elem ...string) string {
	t.Helper()
	return filepath.Join(append([]string{"..", "testdata", "metadata"}, elem...)...)
}

// exampleProfile is the README's profile over the worked example schema
// and vocabulary.
func exampleProfile(t *testing.T, sources ...string) *Profile {
	t.Helper()
	v, err := LoadVocabulary("ncbitaxon", repoTestdata(t, "ontologies", "ncbitaxon-subset.obo"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := CompileSchema(repoTestdata(t, "schemas", "sequencing-run.json"), map[string]*Vocabulary{"ncbitaxon": v})
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) == 0 {
		sources = []string{"RunInfo.xml", "RunParameters.xml", "SampleSheet.csv", "*.meta.json"}
	}
	p, err := NewProfile("sequencer", "{instrument}/{run_id}/**", sources, s, []string{"runparameters.ApplicationVersion"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The checked-in run folder is what WriteExampleRun writes with its
// defaults (go test -run TestExampleRunFixture -update rewrites it), and it
// validates against the worked example.
func TestExampleRunFixture(t *testing.T) {
	fixture := filepath.Join("testdata", "LH00001", "20261202_LH00001_0042_A22XYZLT3")
	if *update {
		if err := WriteExampleRun(fixture, ExampleRun{Species: []string{"Homo sapiens", "mouse", "NCBITaxon:10116"}}); err != nil {
			t.Fatal(err)
		}
	}
	gen := filepath.Join(t.TempDir(), "run")
	if err := WriteExampleRun(gen, ExampleRun{Species: []string{"Homo sapiens", "mouse", "NCBITaxon:10116"}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"RunInfo.xml", "RunParameters.xml", "SampleSheet.csv"} {
		want, err := os.ReadFile(filepath.Join(fixture, name))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(gen, name))
		if string(got) != string(want) {
			t.Errorf("%s: generated differs from the fixture (run with -update)", name)
		}
	}
	p := exampleProfile(t)
	c := p.Capture(fixture, "LH00001/20261202_LH00001_0042_A22XYZLT3")
	r := p.Evaluate(c, nil)
	if r.Status != StatusValid {
		t.Fatalf("status %s, findings %v", r.Status, r.Findings)
	}
	if !strings.HasPrefix(r.SchemaVersion, "https://facility.example.org/schemas/sequencing-run.json@") {
		t.Errorf("schema version %q", r.SchemaVersion)
	}
	rows := r.Doc["samplesheet"].(map[string]any)["BCLConvert_Data"].([]any)
	var got []string
	for _, row := range rows {
		got = append(got, row.(map[string]any)["Species"].(string))
	}
	if strings.Join(got, ",") != "NCBITaxon:9606,NCBITaxon:10090,NCBITaxon:10116" {
		t.Errorf("normalized species %v", got)
	}
	if ri := r.Doc["runinfo"].(map[string]any); ri["flowcell"] != "22XYZLT3" || ri["instrument"] != "LH00001" {
		t.Errorf("runinfo %v", ri)
	}
	if pf := r.Doc["path"].(map[string]any); pf["instrument"] != "LH00001" || pf["run_id"] != "20261202_LH00001_0042_A22XYZLT3" {
		t.Errorf("path fields %v", pf)
	}
}
