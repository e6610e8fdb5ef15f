package metadata

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadVocabularyOBO(t *testing.T) {
	v, err := LoadVocabulary("ncbitaxon", repoTestdata(t, "ontologies", "ncbitaxon-subset.obo"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Len() != 15 || len(v.SHA256) != 64 || v.Name != "ncbitaxon" {
		t.Errorf("Len %d, SHA256 %q, Name %q", v.Len(), v.SHA256, v.Name)
	}
	lookups := []struct {
		value, id string
	}{
		{"NCBITaxon:9606", "NCBITaxon:9606"},
		{"Homo sapiens", "NCBITaxon:9606"},
		{"  homo   SAPIENS ", "NCBITaxon:9606"},
		{"human", "NCBITaxon:9606"},  // EXACT synonym
		{"man", "NCBITaxon:9606"},    // RELATED synonym
		{"Mouse", "NCBITaxon:10090"}, // EXACT synonym, case folded
		{"baker's yeast", "NCBITaxon:4932"},
		{"E. coli", "NCBITaxon:562"},
		{"ncbitaxon:9606", ""}, // IDs are exact
		{"Homo sapiens sapiens X", ""},
		{"", ""},
	}
	for _, l := range lookups {
		term, ok := v.Lookup(l.value)
		if ok != (l.id != "") || term.ID != l.id {
			t.Errorf("Lookup(%q) = %q %v, want %q", l.value, term.ID, ok, l.id)
		}
	}
	h, _ := v.Lookup("human")
	if h.Label != "Homo sapiens" || !reflect.DeepEqual(h.Parents, []string{"NCBITaxon:40674"}) || !reflect.DeepEqual(h.Synonyms, []string{"human", "man"}) {
		t.Errorf("term %+v", h)
	}
	under := []struct {
		id, anc string
		want    bool
	}{
		{"NCBITaxon:9606", "NCBITaxon:40674", true},  // direct
		{"NCBITaxon:9606", "NCBITaxon:2759", true},   // Mammalia -> Vertebrata -> Metazoa -> Opisthokonta -> Eukaryota
		{"NCBITaxon:9606", "NCBITaxon:1", true},      // to the root
		{"NCBITaxon:40674", "NCBITaxon:40674", true}, // a term is under itself
		{"NCBITaxon:7227", "NCBITaxon:40674", false}, // a fly is not a mammal
		{"NCBITaxon:562", "NCBITaxon:2759", false},
		{"NCBITaxon:40674", "NCBITaxon:9606", false}, // not upwards
		{"NCBITaxon:999", "NCBITaxon:999", false},    // unknown
	}
	for _, u := range under {
		if got := v.Under(u.id, u.anc); got != u.want {
			t.Errorf("Under(%s, %s) = %v", u.id, u.anc, got)
		}
	}
}

func TestLoadVocabularyOBORules(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "v.obo", `format-version: 1.2
ontology: test

[Term]
id: T:1
name: top ! a comment
synonym: "apex" EXACT []

[Term]
id: T:2
name: child \"quoted\"
synonym: "kid" NARROW [src:1] ! comment
synonym: "same" RELATED []
is_a: T:1 {source="x"} ! top
is_a: EXT:9 ! a parent from another ontology

[Term]
id: T:3
name: sibling
synonym: "same" RELATED []
is_a: T:1

[Term]
id: T:4
name: gone
synonym: "old child" EXACT []
is_obsolete: true

[Typedef]
id: part_of
name: part of
`)
	v, err := LoadVocabulary("t", p)
	if err != nil {
		t.Fatal(err)
	}
	if v.Len() != 3 {
		t.Errorf("Len %d: obsolete terms are not counted", v.Len())
	}
	if _, ok := v.Lookup("T:4"); ok {
		t.Error("an obsolete term is found")
	}
	if _, ok := v.Lookup("old child"); ok {
		t.Error("an obsolete term's synonym is found")
	}
	if tm, ok := v.Lookup(`child "quoted"`); !ok || tm.ID != "T:2" || !reflect.DeepEqual(tm.Parents, []string{"T:1", "EXT:9"}) {
		t.Errorf("child: %+v %v", tm, ok)
	}
	if _, ok := v.Lookup("same"); ok {
		t.Error(`"same" names T:2 and T:3: ambiguous, not found`)
	}
	if tm, _ := v.Lookup("apex"); tm.ID != "T:1" {
		t.Errorf("apex: %+v", tm)
	}
	if !v.Under("T:2", "EXT:9") || v.Under("T:1", "EXT:9") {
		t.Error("a parent outside the file counts by its ID")
	}

	bad := []struct {
		name, body string
		line       int
		msg        string
	}{
		{"cycle", "[Term]\nid: A\nname: a\nis_a: C\n\n[Term]\nid: B\nname: b\nis_a: A\n\n[Term]\nid: C\nname: c\nis_a: B\n", 1, "is_a cycle: A -> C -> B -> A"},
		{"self cycle", "[Term]\nid: A\nname: a\nis_a: A\n", 1, "is_a cycle: A -> A"},
		{"duplicate id", "[Term]\nid: A\nname: a\n\n[Term]\nid: A\nname: b\n", 5, "term A defined twice (first at line 1)"},
		{"no id", "[Term]\n\n[Term]\nid: B\n", 1, "term has no id"},
		{"tag before id", "[Term]\nname: a\nid: A\n", 2, "name: before the term's id"},
		{"bad synonym scope", "[Term]\nid: A\nsynonym: \"x\" SIMILAR []\n", 3, `scope "SIMILAR"`},
		{"unquoted synonym", "[Term]\nid: A\nsynonym: x EXACT []\n", 3, "want a quoted text"},
		{"unterminated synonym", "[Term]\nid: A\nsynonym: \"x EXACT []\n", 3, "unterminated quote"},
		{"synonym without xrefs", "[Term]\nid: A\nsynonym: \"x\" EXACT\n", 3, "no [xrefs] list"},
		{"no colon", "[Term]\nid: A\nnonsense here\n", 3, `want "tag: value"`},
		{"bad obsolete", "[Term]\nid: A\nis_obsolete: maybe\n", 3, "is_obsolete: want true or false"},
		{"bad stanza", "[Term\nid: A\n", 1, "bad stanza header"},
		{"second name", "[Term]\nid: A\nname: a\nname: b\n", 4, "second name"},
		{"empty is_a", "[Term]\nid: A\nis_a: ! nothing\n", 3, "is_a without a term id"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			f := writeFile(t, t.TempDir(), "bad.obo", tc.body)
			_, err := LoadVocabulary("bad", f)
			wantFileErr(t, err, f, tc.line, tc.msg)
		})
	}
}

func TestLoadVocabularyCSV(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "projects.csv", "\ufeffid,label,synonyms\nP1,Proteomics core,prot|PROT-1\nP2,\"Genomics, spatial\",\nP3,Imaging,  img  |  | microscopy \n")
	v, err := LoadVocabulary("projects", p)
	if err != nil {
		t.Fatal(err)
	}
	if v.Len() != 3 {
		t.Errorf("Len %d", v.Len())
	}
	for value, id := range map[string]string{"P1": "P1", "prot": "P1", "prot-1": "P1", "genomics, spatial": "P2", "Microscopy": "P3", "img": "P3"} {
		if tm, ok := v.Lookup(value); !ok || tm.ID != id {
			t.Errorf("Lookup(%q) = %+v %v, want %s", value, tm, ok, id)
		}
	}
	if tm, _ := v.Lookup("P3"); !reflect.DeepEqual(tm.Synonyms, []string{"img", "microscopy"}) {
		t.Errorf("synonyms %q", tm.Synonyms)
	}
	p = writeFile(t, dir, "tree.csv", "id,label,synonyms,parents\nA,a,,\nB,b,,A\nC,c,,B|A\n")
	v, err = LoadVocabulary("tree", p)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Under("C", "A") || v.Under("A", "C") {
		t.Error("parents column")
	}
	bad := []struct {
		name, body string
		line       int
		msg        string
	}{
		{"header", "code,name,aka\nA,a,\n", 1, "want id,label,synonyms"},
		{"empty", "", 1, "empty file"},
		{"short row", "id,label,synonyms\nA,a,\nB,b\n", 3, "wrong number of fields"},
		{"duplicate", "id,label,synonyms\nA,a,\nB,b,\nA,c,\n", 4, "term A defined twice (first at line 2)"},
		{"no id", "id,label,synonyms\n,a,\n", 2, "term has no id"},
		{"no label", "id,label,synonyms\nA,,x\n", 2, `term "A" has no label`},
		{"bad quote", "id,label,synonyms\nA,\"a,\n", 2, "extraneous or missing"},
		{"cycle", "id,label,synonyms,parents\nA,a,,B\nB,b,,A\n", 2, "is_a cycle: A -> B -> A"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			f := writeFile(t, t.TempDir(), "bad.csv", tc.body)
			_, err := LoadVocabulary("bad", f)
			wantFileErr(t, err, f, tc.line, tc.msg)
		})
	}
	if _, err := LoadVocabulary("x", writeFile(t, dir, "x.txt", "id,label,synonyms\n")); err == nil || !strings.Contains(err.Error(), "want an .obo or .csv file") {
		t.Errorf("extension: %v", err)
	}
}

func TestDiffVocabulary(t *testing.T) {
	dir := t.TempDir()
	old, err := LoadVocabulary("t", writeFile(t, dir, "old.obo", "[Term]\nid: A\nname: alpha\n\n[Term]\nid: B\nname: beta\nis_a: A\n\n[Term]\nid: C\nname: gamma\nsynonym: \"g\" EXACT []\n\n[Term]\nid: D\nname: delta\n"))
	if err != nil {
		t.Fatal(err)
	}
	nw, err := LoadVocabulary("t", writeFile(t, dir, "new.obo", "[Term]\nid: A\nname: Alpha\n\n[Term]\nid: B\nname: beta\nis_a: C\n\n[Term]\nid: C\nname: gamma\nsynonym: \"gg\" EXACT []\n\n[Term]\nid: D\nname: delta\nis_obsolete: true\n\n[Term]\nid: NCBITaxon:10090\nname: Mus musculus\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"label of A: alpha -> Alpha",
		"parents of B: A -> C",
		"synonyms of C: g -> gg",
		"obsoleted term D (delta)",
		"added term NCBITaxon:10090 (Mus musculus)",
	}
	if got := DiffVocabulary(old, nw); !reflect.DeepEqual(got, want) {
		t.Errorf("DiffVocabulary:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := DiffVocabulary(nw, old); !reflect.DeepEqual(got[3:], []string{"added term D (delta)", "removed term NCBITaxon:10090 (Mus musculus)"}) {
		t.Errorf("reverse: %q", got)
	}
	if got := DiffVocabulary(nil, old); len(got) != 4 || got[0] != "added term A (alpha)" {
		t.Errorf("from nil: %q", got)
	}
	if got := DiffVocabulary(old, old); len(got) != 0 {
		t.Errorf("same: %q", got)
	}
	var big strings.Builder
	for i := range 120 {
		big.WriteString("[Term]\nid: X:" + itoa(1000+i) + "\nname: x\n\n")
	}
	many, err := LoadVocabulary("t", writeFile(t, dir, "many.obo", big.String()))
	if err != nil {
		t.Fatal(err)
	}
	got := DiffVocabulary(nil, many)
	if len(got) != 51 || got[50] != "... and 70 more" {
		t.Errorf("bounded: %d lines, last %q", len(got), got[len(got)-1])
	}
}
