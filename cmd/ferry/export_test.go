package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/testcfg"
)

func TestJournalExportAndVerify(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../../testdata/scope1", filepath.Join(dir, "in"))
	cfg := filepath.Join(dir, "ferry.toml")
	os.WriteFile(cfg, []byte("[journal]\npath = \"ferry.db\"\n[log]\nfile = \"ferry.log\"\n[target.local]\ntype = \"fs\"\npath = \"archive\"\n[[watch]]\npath = \"in\"\ntarget = \"local\"\nsettle = \"100ms\"\nexclude = [\"**/*.tmp\", \"**/~$*\"]\n"), 0o644)
	ferry := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := run(t.Context(), args, &out, &errb, testcfg.Env(nil))
		return code, out.String(), errb.String()
	}
	if code, out, _ := ferry("run", "--once", "--config", cfg); code != 0 {
		t.Fatalf("run: %d %s", code, out)
	}
	if code, out, errs := ferry("journal", "verify", "--config", cfg); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("verify: %d %q %q", code, out, errs)
	}
	exp := filepath.Join(dir, "events.jsonl")
	if code, out, errs := ferry("journal", "export", "--config", cfg, "--out", exp); code != 0 || !strings.HasPrefix(out, "exported ") {
		t.Fatalf("export: %d %q %q", code, out, errs)
	}
	code, out, errs := ferry("journal", "verify", "--export", exp)
	if code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("verify --export: %d %q %q", code, out, errs)
	}
	lines := strings.Split(strings.TrimSpace(mustRead(t, exp)), "\n")
	if len(lines) < 10 || !strings.Contains(lines[0], `"seq":1,`) || !strings.Contains(lines[0], `"prev_hash":"0000`) {
		t.Fatalf("export has %d lines, first %s", len(lines), lines[0])
	}
	// A range export (the second half) verifies on its own.
	half := filepath.Join(dir, "half.jsonl")
	os.WriteFile(half, []byte(strings.Join(lines[len(lines)/2:], "\n")+"\n"), 0o644)
	if code, _, errs := ferry("journal", "verify", "--export", half); code != 0 {
		t.Fatalf("a contiguous range: %d %s", code, errs)
	}
	// Edited, deleted, reordered: exit 1 naming the first bad seq.
	for name, c := range map[string]struct {
		edit func([]string) []string
		seq  string
	}{
		"edited":    {func(l []string) []string { l[2] = strings.Replace(l[2], `"kind":"`, `"kind":"x`, 1); return l }, "seq 3:"},
		"deleted":   {func(l []string) []string { return append(l[:3], l[4:]...) }, "seq 5:"},
		"reordered": {func(l []string) []string { l[3], l[4] = l[4], l[3]; return l }, "seq 5:"},
	} {
		bad := filepath.Join(dir, name+".jsonl")
		os.WriteFile(bad, []byte(strings.Join(c.edit(append([]string(nil), lines...)), "\n")+"\n"), 0o644)
		code, _, errs := ferry("journal", "verify", "--export", bad)
		if code != exitFailed || !strings.Contains(errs, c.seq) {
			t.Errorf("%s export: exit %d, %q; want 1 naming %s", name, code, errs, c.seq)
		}
	}
	// CSV: a header and one row per event.
	code, out, _ = ferry("journal", "export", "--config", cfg, "--format", "csv")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(recs) != len(lines)+1 || strings.Join(recs[0], ",") != "seq,time,kind,file_id,correlation_id,batch_id,chunk_sequence,rel_path,size,sha256,detail,prev_hash,hash,schema_version,validation_status" {
		t.Fatalf("csv export: %d %v, %d records", code, err, len(recs))
	}
	// Filters.
	code, out, _ = ferry("journal", "export", "--config", cfg, "--batch", "run 0001")
	if code != 0 || strings.TrimSpace(out) == "" {
		t.Fatalf("--batch: exit %d, %q", code, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(l, `"batch_id":"run 0001"`) {
			t.Fatalf("--batch let through %s", l)
		}
	}
	if code, out, _ := ferry("journal", "export", "--config", cfg, "--since", "2099-01-01"); code != 0 || out != "" {
		t.Fatalf("--since in the future: %d %q", code, out)
	}
	if code, _, _ := ferry("journal", "export", "--config", cfg, "--since", "yesterday"); code != exitUsage {
		t.Fatalf("a bad --since: exit %d", code)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
