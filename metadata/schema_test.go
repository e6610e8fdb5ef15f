package metadata

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func exampleVocabs(t *testing.T) map[string]*Vocabulary {
	t.Helper()
	v, err := LoadVocabulary("ncbitaxon", repoTestdata(t, "ontologies", "ncbitaxon-subset.obo"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*Vocabulary{"ncbitaxon": v}
}

func TestCompileSchemaErrors(t *testing.T) {
	vocabs := exampleVocabs(t)
	bad := []struct {
		name, body string
		line       int
		msg        string
	}{
		{"bad json", "{\n  \"type\": \"object\",\n  \"properties\": {,}\n}\n", 3, "malformed JSON"},
		{"draft 7", "{\n  \"$schema\": \"http://json-schema.org/draft-07/schema#\"\n}\n", 2, "ferry supports only https://json-schema.org/draft/2020-12/schema"},
		{"unknown vocabulary", "{\n  \"properties\": {\n    \"s\": {\"x-ferry-vocabulary\": \"uberon\"}\n  }\n}\n", 3, `x-ferry-vocabulary "uberon": no such vocabulary (registered: ncbitaxon)`},
		{"unknown term", "{\n  \"properties\": {\n    \"s\": {\n      \"x-ferry-vocabulary\": \"ncbitaxon\",\n      \"x-ferry-under\": \"NCBITaxon:8888\"\n    }\n  }\n}\n", 5, `x-ferry-under "NCBITaxon:8888": no such term in vocabulary ncbitaxon`},
		{"under alone", "{\n  \"properties\": {\n    \"s\": {\"x-ferry-under\": \"NCBITaxon:1\"}\n  }\n}\n", 3, "x-ferry-under without a x-ferry-vocabulary"},
		{"vocabulary not a string", "{\n  \"x-ferry-vocabulary\": 3\n}\n", 2, "want a vocabulary name"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			f := writeFile(t, t.TempDir(), "s.json", tc.body)
			_, err := CompileSchema(f, vocabs)
			wantFileErr(t, err, f, tc.line, tc.msg)
		})
	}
	f := writeFile(t, t.TempDir(), "s.json", `{"type": "nonsense"}`)
	if _, err := CompileSchema(f, vocabs); err == nil || !strings.Contains(err.Error(), f) {
		t.Errorf("a schema the compiler refuses: %v", err)
	}
}

func TestSchemaStamp(t *testing.T) {
	s, err := CompileSchema(repoTestdata(t, "schemas", "sequencing-run.json"), exampleVocabs(t))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(repoTestdata(t, "schemas", "sequencing-run.json"))
	if string(s.Raw) != string(raw) || s.Version != "1.0.0" || s.ID != "https://facility.example.org/schemas/sequencing-run.json" {
		t.Errorf("schema %q %q", s.ID, s.Version)
	}
	if want := s.ID + "@" + s.SHA256[:12]; s.Stamp() != want {
		t.Errorf("Stamp %q, want %q", s.Stamp(), want)
	}
	dir := t.TempDir()
	noID, err := CompileSchema(writeFile(t, dir, "a.json", `{"version": 3}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(noID.Stamp()) != 12 || noID.Stamp() != noID.SHA256[:12] || noID.Version != "3" {
		t.Errorf("no $id: stamp %q version %q", noID.Stamp(), noID.Version)
	}
	uni, err := CompileSchema(writeFile(t, dir, "u.json", `{"$id": "urn:facility:séquençage run"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	st := uni.Stamp()
	for i := 0; i < len(st); i++ {
		if st[i] < 0x21 || st[i] > 0x7e {
			t.Fatalf("Stamp %q has a byte %#x outside printable ASCII", st, st[i])
		}
	}
	if !strings.HasPrefix(st, "urn:facility:s%C3%A9quen%C3%A7age%20run@") {
		t.Errorf("Stamp %q", st)
	}
	if (*Schema)(nil).Stamp() != "" {
		t.Error("nil schema stamp")
	}
}

func TestSchemaFindings(t *testing.T) {
	p := exampleProfile(t)
	doc := map[string]any{
		"runinfo": map[string]any{"run_id": "not a run id", "flowcell": 7},
		"samplesheet": map[string]any{"BCLConvert_Data": []any{
			map[string]any{"Sample_ID": "S1", "Species": "human"},
			map[string]any{"Sample_ID": "S2", "Species": "Drosophila melanogaster"},
			map[string]any{"Sample_ID": "S3", "Species": "Homo sapiens sapiens X"},
			map[string]any{"Sample_ID": "S4"},
			map[string]any{"Sample_ID": "S5", "Species": "Mus musculus"},
		}},
	}
	r := p.Evaluate(&Capture{Doc: doc}, nil)
	if r.Status != StatusInvalid {
		t.Fatalf("status %s", r.Status)
	}
	var got []string
	for _, f := range r.Findings {
		got = append(got, f.String())
	}
	want := []string{
		`invalid runinfo.flowcell: expected type "string", found 7`,
		`invalid runinfo.instrument: expected a value (required), found nothing`,
		`invalid runinfo.run_id: expected pattern "^[0-9]{6,8}_[A-Za-z0-9]+_[0-9]+_[A-Za-z0-9-]+$", found "not a run id"`,
		`invalid samplesheet.BCLConvert_Data[1].Species: expected a term of ncbitaxon under NCBITaxon:40674, found "Drosophila melanogaster"`,
		`invalid samplesheet.BCLConvert_Data[2].Species: expected a term of ncbitaxon under NCBITaxon:40674, found "Homo sapiens sapiens X"`,
		`invalid samplesheet.BCLConvert_Data[3].Species: expected a value (required), found nothing`,
	}
	sortStrings(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("findings:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, f := range r.Findings {
		switch f.Field {
		case "samplesheet.BCLConvert_Data[1].Species":
			if f.Message != "NCBITaxon:7227 (Drosophila melanogaster) is not under NCBITaxon:40674 (Mammalia)" {
				t.Errorf("under message %q", f.Message)
			}
		case "samplesheet.BCLConvert_Data[2].Species":
			if f.Message != "not a term of ncbitaxon" {
				t.Errorf("vocabulary message %q", f.Message)
			}
		}
	}
	// Terms are normalized to IDs in Result.Doc, the capture is untouched.
	rows := r.Doc["samplesheet"].(map[string]any)["BCLConvert_Data"].([]any)
	if rows[0].(map[string]any)["Species"] != "NCBITaxon:9606" || rows[4].(map[string]any)["Species"] != "NCBITaxon:10090" ||
		rows[2].(map[string]any)["Species"] != "Homo sapiens sapiens X" {
		t.Errorf("normalized rows %v", rows)
	}
	if doc["samplesheet"].(map[string]any)["BCLConvert_Data"].([]any)[0].(map[string]any)["Species"] != "human" {
		t.Error("Evaluate changed the captured document")
	}
	if got := r.Shape.Terms["samplesheet.BCLConvert_Data[].Species"]; !reflect.DeepEqual(got, []string{"NCBITaxon:10090", "NCBITaxon:9606"}) {
		t.Errorf("terms seen %v", got)
	}

	// anyOf: neither sample table.
	r = p.Evaluate(&Capture{Doc: map[string]any{"runinfo": map[string]any{"run_id": "261202_M1_1_A", "instrument": "M1", "flowcell": "A"},
		"samplesheet": map[string]any{"Header": map[string]any{}}}}, nil)
	got = got[:0]
	for _, f := range r.Findings {
		got = append(got, f.String())
	}
	sortStrings(got)
	if want := []string{
		"invalid samplesheet.BCLConvert_Data: expected a value (required), found nothing",
		"invalid samplesheet.Data: expected a value (required), found nothing",
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("anyOf findings %q", got)
	}
}

func TestVocabularyKeywordOnNonStrings(t *testing.T) {
	vocabs := exampleVocabs(t)
	s, err := CompileSchema(writeFile(t, t.TempDir(), "s.json", `{"properties": {"sidecars": {"additionalProperties": {"properties": {"organism": {"x-ferry-vocabulary": "ncbitaxon"}}}}}}`), vocabs)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProfile("p", "{run}/**", []string{"*.meta.json"}, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := p.Evaluate(&Capture{Doc: map[string]any{"sidecars": map[string]any{"a/x.meta.json": map[string]any{"organism": []any{"human"}}}}}, nil)
	if len(r.Findings) != 1 || r.Findings[0].String() != `invalid sidecars["a/x.meta.json"].organism: expected a term of ncbitaxon, found ["human"]` || r.Findings[0].Message != "not a string" {
		t.Errorf("findings %v", r.Findings)
	}
}

func TestDiffSchema(t *testing.T) {
	old := []byte(`{"$id": "x", "required": ["a"], "properties": {"a": {"type": "string"}, "gone": {"type": "integer"}}, "version": "1"}`)
	nw := []byte(`{"$id": "x", "required": ["a", "b"], "properties": {"a": {"type": "string", "minLength": 1}, "species": {"type": "string"}}, "version": "2"}`)
	want := []string{
		"removed /properties/gone",
		"added /properties/species",
		"added /properties/a/minLength: 1",
		`changed /required: ["a"] -> ["a","b"]`,
		`changed /version: "1" -> "2"`,
	}
	got := DiffSchema(old, nw)
	sortStrings(got)
	sortStrings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DiffSchema:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := DiffSchema(nil, []byte(`{"a/b": {"c~d": 1}, "z": 2}`)); !reflect.DeepEqual(got, []string{"added /a~1b", "added /z: 2"}) {
		t.Errorf("from nil: %q", got)
	}
	if got := DiffSchema(old, old); len(got) != 0 {
		t.Errorf("same: %q", got)
	}
	var big strings.Builder
	big.WriteString(`{"properties": {`)
	for i := range 80 {
		if i > 0 {
			big.WriteString(",")
		}
		big.WriteString(`"p` + itoa(i) + `": {}`)
	}
	big.WriteString("}}")
	got = DiffSchema([]byte(`{"properties": {}}`), []byte(big.String()))
	if len(got) != 51 || got[50] != "... and 30 more" {
		t.Errorf("bounded: %d lines, last %q", len(got), got[len(got)-1])
	}
	if got := DiffSchema(old, []byte("{")); len(got) != 1 || !strings.HasPrefix(got[0], "schema is not JSON") {
		t.Errorf("bad JSON: %q", got)
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
