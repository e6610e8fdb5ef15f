package dataset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testsrv"
)

// validator is tools/rocrate/validate.js (testsrv.ROCrateValidator); these
// tests read its report, to show it catches broken crates too.
func validator(t *testing.T) string { return testsrv.ROCrateValidator(t) }

type report struct {
	Errors   []string `json:"errors"`
	Warnings []string `json:"warnings"`
}

func validate(t *testing.T, script, dir string) (report, error) {
	t.Helper()
	cmd := exec.Command("node", script, dir)
	out, err := cmd.Output()
	var r report
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		t.Fatalf("validator output %q: %v (exit: %v)", out, jerr, err)
	}
	return r, err
}

func writeCrate(t *testing.T, dir string, c Crate) {
	t.Helper()
	b, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CrateName), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sampleCrate(t *testing.T, dir string) Crate {
	t.Helper()
	names := map[string]string{}
	for k, v := range oddNames {
		if runtime.GOOS == "windows" && strings.ContainsAny(k, `\:?`) {
			continue
		}
		names[k] = v
	}
	files := writeTree(t, dir, names)
	m, err := Manifest(files)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), m, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(m)
	closed := time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC)
	return Crate{
		ID:           "261203_A00123_0042_BHXYZ",
		Name:         "261203_A00123_0042_BHXYZ",
		Published:    closed,
		Files:        files,
		Manifest:     File{Path: ManifestName, Size: int64(len(m)), SHA256: hex.EncodeToString(sum[:]), ModTime: closed},
		FerryVersion: "v0.0.0-test",
		Host:         "novaseq-pc",
		Started:      closed.Add(-6 * time.Hour),
		Ended:        closed,
		Signal:       CopyComplete,
		Target:       "s3://archive/runs/261203_A00123_0042_BHXYZ/",
	}
}

func TestCratePassesTheROCrateValidator(t *testing.T) {
	script := validator(t)
	for _, license := range []string{"", "CC-BY-4.0", "https://example.org/terms"} {
		t.Run("license="+license, func(t *testing.T) {
			dir := t.TempDir()
			c := sampleCrate(t, dir)
			c.License = license
			c.Outcome, c.Reason = FailedRun, "RunErrored: I/O data integrity check failed"
			c.Extra = map[string]any{"keywords": "sequencing"}
			writeCrate(t, dir, c)
			r, err := validate(t, script, dir)
			if err != nil || len(r.Errors) > 0 {
				b, _ := os.ReadFile(filepath.Join(dir, CrateName))
				t.Fatalf("validator: %v, errors %q\n%s", err, r.Errors, b)
			}
		})
	}
}

// The validator is not a rubber stamp: a crate that lacks what RO-Crate
// requires, or describes files that are not there, fails it.
func TestValidatorCatchesBrokenCrates(t *testing.T) {
	script := validator(t)
	dir := t.TempDir()
	c := sampleCrate(t, dir)
	writeCrate(t, dir, c)

	// A described file that is missing.
	if err := os.Remove(filepath.Join(dir, "RunInfo.xml")); err != nil {
		t.Fatal(err)
	}
	if r, err := validate(t, script, dir); err == nil || !strings.Contains(strings.Join(r.Errors, "\n"), "fileMissing") {
		t.Fatalf("missing file not caught: %v %q", err, r.Errors)
	}
	// A file in the crate folder that the crate does not describe.
	dir2 := t.TempDir()
	c2 := sampleCrate(t, dir2)
	writeCrate(t, dir2, c2)
	if err := os.WriteFile(filepath.Join(dir2, "late.txt"), []byte("late"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := validate(t, script, dir2); err == nil || !strings.Contains(strings.Join(r.Errors, "\n"), "late.txt") {
		t.Fatalf("undescribed file not caught: %v %q", err, r.Errors)
	}
	// A root dataset without a license.
	b, _ := c2.JSON()
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, e := range doc["@graph"].([]any) {
		if n := e.(map[string]any); n["@id"] == "./" {
			delete(n, "license")
		}
	}
	b, _ = json.Marshal(doc)
	os.Remove(filepath.Join(dir2, "late.txt"))
	if err := os.WriteFile(filepath.Join(dir2, CrateName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := validate(t, script, dir2); err == nil || !strings.Contains(strings.Join(r.Errors, "\n"), "license") {
		t.Fatalf("missing license not caught: %v %q", err, r.Errors)
	}
	// A property that is no term of the context.
	c2.Extra = map[string]any{"runNumberish": "42"}
	writeCrate(t, dir2, c2)
	if r, err := validate(t, script, dir2); err == nil || !strings.Contains(strings.Join(r.Errors, "\n"), "unknownTerm") {
		t.Fatalf("unknown term not caught: %v %q", err, r.Errors)
	}
}

func TestCrateContent(t *testing.T) {
	dir := t.TempDir()
	c := sampleCrate(t, dir)
	c.Outcome, c.Reason = FailedRun, "UserEndedEarly: Thread was aborted"
	b, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Context string           `json:"@context"`
		Graph   []map[string]any `json:"@graph"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	byID := map[string]map[string]any{}
	for _, n := range doc.Graph {
		byID[n["@id"].(string)] = n
	}
	root := byID["./"]
	if root["creativeWorkStatus"] != "failed_run" || root["datePublished"] != "2026-12-03T11:00:00Z" {
		t.Fatalf("root: %v", root)
	}
	if lic := root["license"].(map[string]any)["@id"]; lic != "#all-rights-reserved" || byID["#all-rights-reserved"] == nil {
		t.Fatalf("default licence: %v", lic)
	}
	parts := root["hasPart"].([]any)
	if len(parts) != len(c.Files)+1 {
		t.Fatalf("%d parts for %d files and the manifest", len(parts), len(c.Files))
	}
	for _, f := range c.Files {
		e := byID[fileID(f.Path)]
		if e == nil || e["sha256"] != f.SHA256 || e["contentSize"] == nil || e["dateModified"] != "2026-12-01T08:30:00Z" {
			t.Errorf("%q: entity %v", f.Path, e)
		}
	}
	if byID["with%20space/file%20name.tif"] == nil || byID["./colon:first.txt"] == nil {
		t.Errorf("ids not percent-encoded as URI references: %v", parts)
	}
	tr := byID["#transfer"]
	if tr["agent"].(map[string]any)["@id"] != "#ferry" || !strings.Contains(tr["description"].(string), "UserEndedEarly") {
		t.Errorf("transfer: %v", tr)
	}
	if byID["#ferry"]["version"] != "v0.0.0-test" {
		t.Errorf("ferry: %v", byID["#ferry"])
	}

	// What the crate refuses.
	bad := c
	bad.Extra = map[string]any{"license": "x"}
	if _, err := bad.JSON(); err == nil {
		t.Error("metadata replaced the license")
	}
	bad = c
	bad.License = "not a licence!"
	if _, err := bad.JSON(); err == nil {
		t.Error("bad licence accepted")
	}
	bad = c
	bad.Files = append(bad.Files[:1:1], File{Path: CrateName, SHA256: c.Files[0].SHA256})
	if _, err := bad.JSON(); err == nil {
		t.Error("a source named ro-crate-metadata.json accepted")
	}
	bad = c
	bad.Name = ""
	if _, err := bad.JSON(); err == nil {
		t.Error("nameless crate accepted")
	}
}
