package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/metadata"
)

// TestMetadataOnce: ferry run --once validates every dataset it finds
// before it ends, uploads the valid ones and reports the held ones as not
// uploaded (exit 1), which a second run still holds until a person
// accepts.
func TestMetadataOnce(t *testing.T) {
	dir := t.TempDir()
	abs := func(p string) string {
		a, err := filepath.Abs(filepath.Join("..", "..", "testdata", "metadata", p))
		if err != nil {
			t.Fatal(err)
		}
		return filepath.ToSlash(a)
	}
	in := filepath.Join(dir, "in")
	good, bad := "M001/20261202_M001_0001_A000000001", "M001/20261202_M001_0002_A000000002"
	if err := metadata.WriteExampleRun(filepath.Join(in, good), metadata.ExampleRun{RunID: "20261202_M001_0001_A000000001", Species: []string{"human"}, SampleSheetV1: true}); err != nil {
		t.Fatal(err)
	}
	if err := metadata.WriteExampleRun(filepath.Join(in, bad), metadata.ExampleRun{RunID: "20261202_M001_0002_A000000002", Species: []string{"Escherichia coli"}}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(in, good, "image 01.tif"), []byte("pixels"), 0o644)
	os.WriteFile(filepath.Join(in, bad, "image 01.tif"), []byte("pixels"), 0o644)
	cfg := filepath.Join(dir, "ferry.toml")
	os.WriteFile(cfg, []byte(`[journal]
path = "ferry.db"
[log]
file = "ferry.log"
[target.local]
type = "fs"
path = "archive"
[[watch]]
path = "in"
target = "local"
settle = "100ms"
metadata = "m"
[metadata.m]
path_template = "{instrument}/{run_id}/**"
sources = ["RunInfo.xml", "RunParameters.xml", "SampleSheet.csv"]
schema = "`+abs("schemas/sequencing-run.json")+`"
[vocabulary.ncbitaxon]
file = "`+abs("ontologies/ncbitaxon-subset.obo")+`"
`), 0o644)
	ferry := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := run(t.Context(), append(args, "--config", cfg), &out, &errb, testcfg.Env(nil))
		return code, out.String(), errb.String()
	}
	for range 2 {
		code, out, errs := ferry("run", "--once")
		if code != exitFailed || !strings.Contains(out, "held") || !strings.Contains(out, filepath.Join(bad, "image 01.tif")) {
			t.Fatalf("run --once: exit %d\n%s\n%s", code, out, errs)
		}
		if _, err := os.Stat(filepath.Join(dir, "archive", good, "image 01.tif")); err != nil {
			t.Fatalf("the valid run's file did not land: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "archive", bad)); !os.IsNotExist(err) {
			t.Fatalf("something of the held run landed: %v", err)
		}
	}
	if code, out, errs := ferry("metadata", "accept", bad, "--reason", "E. coli spike-in, approved"); code != 0 {
		t.Fatalf("accept: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := ferry("run", "--once"); code != 0 {
		t.Fatalf("run --once after the acceptance: exit %d\n%s\n%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "archive", bad, "image 01.tif")); err != nil {
		t.Fatalf("the accepted run's file did not land: %v", err)
	}
}
