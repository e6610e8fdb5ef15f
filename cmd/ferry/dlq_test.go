package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/journal"
)

func TestDeadLetterCommands(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	os.MkdirAll(in, 0o755)
	os.WriteFile(filepath.Join(in, "ok.txt"), []byte("fine\n"), 0o644)
	// A name S3 cannot take as a key: a permanent failure of this file only.
	os.WriteFile(filepath.Join(in, "bad\x01name.txt"), []byte("x\n"), 0o644)
	cfg := filepath.Join(dir, "ferry.toml")
	os.WriteFile(cfg, []byte("[journal]\npath = \"ferry.db\"\n[log]\nfile = \"ferry.log\"\n[target.local]\ntype = \"fs\"\npath = \"archive\"\n[[watch]]\npath = \"in\"\ntarget = \"local\"\nsettle = \"100ms\"\n"), 0o644)
	ferry := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := run(t.Context(), append(args, "--config", cfg), &out, &errb, testcfg.Env(nil))
		return code, out.String(), errb.String()
	}
	if code, out, _ := ferry("run", "--once"); code != exitFailed || !strings.Contains(out, "uploaded 1 files") || !strings.Contains(out, "bad\x01name.txt") {
		t.Fatalf("run: exit %d, %q", code, out)
	}
	code, out, _ := ferry("dlq", "list")
	if code != 0 || !strings.Contains(out, "invalid_key") || !strings.Contains(out, "bad\x01name.txt") || !strings.HasPrefix(out, "ID") {
		t.Fatalf("dlq list: exit %d\n%s", code, out)
	}
	code, out, _ = ferry("dlq", "list", "--json")
	var dl []struct {
		ID         int64  `json:"id"`
		Path       string `json:"path"`
		ErrorClass string `json:"error_class"`
		Attempts   int    `json:"attempts"`
	}
	if err := json.Unmarshal([]byte(out), &dl); code != 0 || err != nil || len(dl) != 1 || dl[0].ErrorClass != "invalid_key" || dl[0].Path != "bad\x01name.txt" {
		t.Fatalf("dlq list --json: exit %d, %v\n%s", code, err, out)
	}
	if code, _, errs := ferry("dlq", "retry", "999"); code != exitUsage || !strings.Contains(errs, "not a dead letter") {
		t.Fatalf("retry of an unknown id: exit %d, %q", code, errs)
	}
	if code, _, _ := ferry("dlq", "retry"); code != exitUsage {
		t.Fatalf("retry without ids or --all: exit %d", code)
	}
	id := strconv.FormatInt(dl[0].ID, 10)
	if code, out, _ := ferry("dlq", "drop", id); code != 0 || !strings.HasPrefix(out, "dropped 1 files") {
		t.Fatalf("dlq drop: exit %d, %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(in, "bad\x01name.txt")); err != nil {
		t.Fatal("drop touched the source file")
	}
	// A file already uploaded cannot be dropped; one unknown neither.
	rows := e2eReadJournalRows(t, filepath.Join(dir, "ferry.db"))
	if code, _, errs := ferry("dlq", "drop", strconv.FormatInt(rows["ok.txt"], 10)); code != exitUsage || !strings.Contains(errs, "uploaded") {
		t.Fatalf("drop of an uploaded file: exit %d, %q", code, errs)
	}
	if code, _, errs := ferry("dlq", "drop", "999"); code != exitUsage || !strings.Contains(errs, "no file with that id") {
		t.Fatalf("drop of an unknown id: exit %d, %q", code, errs)
	}
	// Dropped is not pending: the next run is clean, and does not take it again.
	if code, out, _ := ferry("run", "--once"); code != 0 || out != "uploaded 0 files (0 bytes)\n" {
		t.Fatalf("run after the drop: exit %d, %q", code, out)
	}
	if code, out, _ := ferry("dlq", "list"); code != 0 || out != "no dead letters\n" {
		t.Fatalf("dlq list after the drop: %q", out)
	}
}

// e2eReadJournalRows maps each journaled path to its row id.
func e2eReadJournalRows(t *testing.T, path string) map[string]int64 {
	t.Helper()
	j, err := journal.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	rows, err := j.Files(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.RelPath] = r.ID
	}
	return out
}

// TestDLQListStreams: dlq list writes the dead letters as it reads them
// (JSON exactly as encoding/json writes the list; the table in pages of
// dlqPage rows, each with its header), oldest first.
func TestDLQListStreams(t *testing.T) {
	ctx := t.Context()
	j, err := journal.Open(filepath.Join(t.TempDir(), "ferry.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	n := dlqPage + 5
	var ss []journal.Settled
	for i := range n {
		rel := "f" + strconv.Itoa(i)
		ss = append(ss, journal.Settled{Watch: "/data", RelPath: rel, Target: "t", Key: rel, Version: journal.Version{Size: 1, MtimeNS: 1}, Signal: "quiet"})
	}
	if _, err := j.RecordSettledBatch(ctx, ss); err != nil {
		t.Fatal(err)
	}
	jobs, err := j.Claim(ctx, n)
	if err != nil || len(jobs) != n {
		t.Fatalf("Claim: %d, %v", len(jobs), err)
	}
	for i := range jobs {
		if err := j.Fail(ctx, &jobs[i], "permanent", "HTTP 403"); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb strings.Builder
	if code := dlqList(ctx, j, &out, &errb, true); code != exitOK {
		t.Fatalf("dlq list --json: exit %d, %s", code, errb.String())
	}
	all, err := j.DeadLetters(ctx)
	if err != nil || len(all) != n {
		t.Fatalf("DeadLetters: %d, %v", len(all), err)
	}
	var want strings.Builder
	enc := json.NewEncoder(&want)
	enc.SetIndent("", "  ")
	enc.Encode(all)
	if out.String() != want.String() {
		t.Fatalf("dlq list --json streamed differs from the list encoded whole (%d bytes, want %d)", out.Len(), want.Len())
	}
	out.Reset()
	if code := dlqList(ctx, j, &out, &errb, false); code != exitOK {
		t.Fatalf("dlq list: exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != n+2 || !strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[dlqPage+1], "ID") || !strings.Contains(lines[1], filepath.Join("/data", "f0")+" ") {
		t.Fatalf("dlq list: %d lines, want %d (two pages with headers); first %q", len(lines), n+2, lines[:2])
	}
	if c, err := j.CountDeadLetters(ctx); err != nil || c != n {
		t.Fatalf("CountDeadLetters = %d, %v", c, err)
	}
	if r, err := j.RecentDeadLetters(ctx, 2); err != nil || len(r) != 2 || r[0].ID != all[n-1].ID || r[1].ID != all[n-2].ID {
		t.Fatalf("RecentDeadLetters(2) = %+v, %v; want the last two, newest first", r, err)
	}
	out.Reset()
	j2, _ := journal.Open(filepath.Join(t.TempDir(), "empty.db"), journal.Options{})
	defer j2.Close()
	if dlqList(ctx, j2, &out, &errb, true); out.String() != "[]\n" {
		t.Fatalf("dlq list --json of none = %q", out.String())
	}
}
