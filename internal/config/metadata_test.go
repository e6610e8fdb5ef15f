package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/metadata"
)

func exampleRules(t *testing.T) (schema, obo string) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", "testdata", "metadata"))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.ToSlash(filepath.Join(root, "schemas", "sequencing-run.json")), filepath.ToSlash(filepath.Join(root, "ontologies", "ncbitaxon-subset.obo"))
}

func metadataConfig(schema, obo, watchExtra, profileExtra string) string {
	return datasetBase + `metadata = "sequencer"
` + watchExtra + `
[metadata.sequencer]
path_template = "{instrument}/{run_id}/**"
sources = ["RunInfo.xml", "RunParameters.xml", "SampleSheet.csv"]
schema = "` + schema + `"
` + profileExtra + `
[vocabulary.ncbitaxon]
file = "` + obo + `"
`
}

func TestMetadataProfile(t *testing.T) {
	schema, obo := exampleRules(t)
	c, err := loadText(t, metadataConfig(schema, obo, "", ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Watch[0]
	p := c.Profile(w)
	// Datasets from the path template, completed after an hour of quiet
	// by default; invalid holds, drift flags.
	if p == nil || p.Schema == nil || w.Dataset != "*/*" || !w.DatasetFromTemplate() || strings.Join(w.Complete, ",") != DefaultMetadataComplete {
		t.Fatalf("watch %+v profile %+v", w, p)
	}
	if m := c.Metadata["sequencer"]; m.OnInvalid != PolicyHold || m.OnDrift != PolicyFlag {
		t.Fatalf("policies: %+v", m)
	}
	if !c.HoldsOn("sequencer", metadata.StatusInvalid) || c.HoldsOn("sequencer", metadata.StatusDrift) || c.HoldsOn("sequencer", metadata.StatusValid) {
		t.Fatal("HoldsOn does not follow on_invalid/on_drift")
	}
	vocabs, schemas := c.RuleFiles()
	if len(vocabs) != 1 || len(schemas) != 1 || vocabs[0].Len() == 0 {
		t.Fatalf("rule files: %v %v", vocabs, schemas)
	}
	// A dataset pattern written in the watch wins over the template's.
	c, err = loadText(t, metadataConfig(schema, obo, `dataset = "*"
complete = "illumina"`, `on_drift = "hold"`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Watch[0]; w.Dataset != "*" || w.DatasetFromTemplate() || !c.HoldsOn("sequencer", metadata.StatusDrift) {
		t.Fatalf("explicit dataset: %+v", w)
	}
}

func TestMetadataConfigErrors(t *testing.T) {
	schema, obo := exampleRules(t)
	dir := t.TempDir()
	badSchema := filepath.ToSlash(filepath.Join(dir, "bad.json"))
	os.WriteFile(badSchema, []byte("{\n  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\",\n  \"type\": \"object\",\n  \"properties\": {\"s\": {\"x-ferry-vocabulary\": \"nope\"}}\n}\n"), 0o644)
	broken := filepath.ToSlash(filepath.Join(dir, "broken.json"))
	os.WriteFile(broken, []byte("{\n  \"type\": \"object\",\n  \"properties\": {,}\n}\n"), 0o644)
	for _, tc := range []struct {
		name, body string
		want       []string // in the error, besides FILE:LINE
	}{
		{"unknown profile", strings.Replace(metadataConfig(schema, obo, "", ""), `metadata = "sequencer"`, `metadata = "seq"`, 1),
			[]string{`watch[1].metadata: no [metadata.seq] section (profiles: sequencer)`}},
		{"bad policy", metadataConfig(schema, obo, "", `on_invalid = "ignore"`), []string{`metadata.sequencer.on_invalid: must be "flag" or "hold"`}},
		{"missing vocabulary file", strings.Replace(metadataConfig(schema, obo, "", ""), obo, obo+".gone", 1), []string{"vocabulary.ncbitaxon.file", ".gone"}},
		{"schema names an unregistered vocabulary", strings.Replace(metadataConfig(schema, obo, "", ""), schema, badSchema, 1), []string{"metadata.sequencer.schema", "nope"}},
		{"schema is not JSON", strings.Replace(metadataConfig(schema, obo, "", ""), schema, broken, 1), []string{"metadata.sequencer.schema", "broken.json:3"}},
		{"no dataset and no ** in the template", strings.Replace(metadataConfig(schema, obo, "", ""), `"{instrument}/{run_id}/**"`, `"{instrument}/{run_id}"`, 1),
			[]string{"watch[1].metadata: metadata is captured per dataset"}},
		{"vocabulary without file", datasetBase + "\n[vocabulary.x]\n", []string{"vocabulary.x.file: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(testcfg.Write(t, tc.body), testcfg.Env(nil))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("want configuration errors, got %v", err)
			}
			text := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("error %q lacks %q", text, w)
				}
			}
			for _, e := range es {
				if e.Line == 0 {
					t.Errorf("no line: %v", e)
				}
			}
		})
	}
}
