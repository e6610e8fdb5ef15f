package main

import (
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/journal"
)

// stateSetup makes a configuration with an fs target and returns it with
// a way to run ferry commands.
func stateSetup(t *testing.T) (dir, cfg string, ferry func(args ...string) (int, string, string)) {
	t.Helper()
	dir = t.TempDir()
	os.MkdirAll(filepath.Join(dir, "in"), 0o755)
	cfg = filepath.Join(dir, "ferry.toml")
	os.WriteFile(cfg, []byte("[journal]\npath = \"ferry.db\"\n[log]\nfile = \"ferry.log\"\n[target.local]\ntype = \"fs\"\npath = \"archive\"\n[[watch]]\npath = \"in\"\ntarget = \"local\"\nsettle = \"50ms\"\n"), 0o644)
	ferry = func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := run(t.Context(), args, &out, &errb, testcfg.Env(nil))
		return code, out.String(), errb.String()
	}
	return dir, cfg, ferry
}

func writeBatch(t *testing.T, dir, batch string, names ...string) {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "in", batch), 0o755)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, "in", batch, n), []byte(batch+"/"+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func jsonlStates(t *testing.T, out string) []stateLine {
	t.Helper()
	var ls []stateLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var s stateLine
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		ls = append(ls, s)
	}
	return ls
}

// state --at between two batches shows the first batch only, as it stood
// then; archive keeps verify, the replay check and state working.
func TestJournalStateAtAndArchive(t *testing.T) {
	dir, cfg, ferry := stateSetup(t)
	writeBatch(t, dir, "A", "one.bin", "two.bin")
	if code, out, errs := ferry("run", "--once", "--config", cfg); code != 0 {
		t.Fatalf("run A: %d %s %s", code, out, errs)
	}
	between := time.Now().UTC()
	writeBatch(t, dir, "B", "three.bin")
	if code, out, errs := ferry("run", "--once", "--config", cfg); code != 0 {
		t.Fatalf("run B: %d %s %s", code, out, errs)
	}
	at := between.Format(time.RFC3339Nano)
	code, out, errs := ferry("journal", "state", "--config", cfg, "--at", at, "--format", "jsonl")
	ls := jsonlStates(t, out)
	if code != 0 || len(ls) != 2 {
		t.Fatalf("state --at between the batches: %d %q %q, want the 2 files of A", code, out, errs)
	}
	for _, s := range ls {
		if s.BatchID != "A" || s.State != "uploaded" || s.Size != int64(len("A/one.bin")) || len(s.SHA256) != 64 ||
			s.Watch != filepath.Join(dir, "in") || !strings.HasPrefix(s.RelPath, "A/") || s.LastEventSeq == 0 {
			t.Fatalf("state line %+v", s)
		}
		if lt, err := time.Parse(time.RFC3339Nano, s.LastEventAt); err != nil || lt.After(between) {
			t.Fatalf("last event time %q: %v", s.LastEventAt, err)
		}
	}
	// Now: both batches; --batch selects; text has a header and aligned columns.
	code, out, _ = ferry("journal", "state", "--config", cfg, "--at", time.Now().UTC().Format(time.RFC3339Nano), "--batch", "B")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "PATH ") || !strings.Contains(lines[1], "B/three.bin") ||
		strings.Index(lines[0], "STATE") != strings.Index(lines[1], "uploaded") {
		t.Fatalf("state --batch B (text):\n%s", out)
	}
	// The same from an export, with only the export.
	exp := filepath.Join(dir, "all.jsonl")
	if code, _, errs := ferry("journal", "export", "--config", cfg, "--out", exp); code != 0 {
		t.Fatal(errs)
	}
	if code, out, errs := ferry("journal", "state", "--export", exp, "--at", at, "--format", "jsonl"); code != 0 || len(jsonlStates(t, out)) != 2 {
		t.Fatalf("state --export: %d %q %q", code, out, errs)
	}
	if code, _, _ := ferry("journal", "state", "--config", cfg, "--at", "soon"); code != exitUsage {
		t.Fatalf("a bad --at: exit %d", code)
	}

	// Archive the events of batch A.
	arch := filepath.Join(dir, "2026-A.jsonl")
	code, out, errs = ferry("journal", "archive", "--config", cfg, "--before", at, "--out", arch)
	if code != 0 || !strings.Contains(out, "archived ") {
		t.Fatalf("archive: %d %q %q", code, out, errs)
	}
	if code, _, errs := ferry("journal", "archive", "--config", cfg, "--before", at, "--out", arch); code != exitFailed || !strings.Contains(errs, "exists") {
		t.Fatalf("archive over an existing file: %d %q", code, errs)
	}
	code, out, errs = ferry("journal", "verify", "--config", cfg)
	if code != 0 || !strings.Contains(out, "intact") || !strings.Contains(out, "agree with a replay") {
		t.Fatalf("verify --config after archiving: %d %q %q", code, out, errs)
	}
	if code, out, errs := ferry("journal", "verify", "--export", arch); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("verify --export ARCHIVE: %d %q %q", code, out, errs)
	}
	// Before the archived events: the answer names the archive, which answers.
	code, _, errs = ferry("journal", "state", "--config", cfg, "--at", "2000-01-01")
	if code != exitFailed || !strings.Contains(errs, "2026-A.jsonl") {
		t.Fatalf("state before the archive: %d %q, want exit 1 naming the archive", code, errs)
	}
	if code, out, errs := ferry("journal", "state", "--export", arch, "--at", at, "--format", "jsonl"); code != 0 || len(jsonlStates(t, out)) != 2 {
		t.Fatalf("state --export ARCHIVE: %d %q %q", code, out, errs)
	}
	if code, out, _ := ferry("journal", "state", "--config", cfg, "--at", at, "--format", "jsonl"); code != 0 || len(jsonlStates(t, out)) != 2 {
		t.Fatalf("state at the cut, from the live journal: %d %q", code, out)
	}
	// A new file after the archive: the daemon goes on, and verify with it.
	writeBatch(t, dir, "C", "four.bin")
	if code, out, errs := ferry("run", "--once", "--config", cfg); code != 0 {
		t.Fatalf("run C: %d %s %s", code, out, errs)
	}
	if code, _, errs := ferry("journal", "verify", "--config", cfg); code != 0 {
		t.Fatalf("verify after archiving and uploading more: %s", errs)
	}
}

// verify --config names a files row edited behind the journal's back.
func TestJournalVerifyCatchesAnEditedRow(t *testing.T) {
	dir, cfg, ferry := stateSetup(t)
	writeBatch(t, dir, "A", "one.bin", "two.bin")
	if code, _, errs := ferry("run", "--once", "--config", cfg); code != 0 {
		t.Fatal(errs)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(filepath.Join(dir, "ferry.db")))
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	db.QueryRow(`SELECT id FROM files WHERE rel_path = 'A/two.bin'`).Scan(&id)
	var last int64
	db.QueryRow(`SELECT MAX(seq) FROM events WHERE file_id = ?`, id).Scan(&last)
	if _, err := db.Exec(`UPDATE files SET state = 'failed', sha256 = 'ab' WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, _, errs := ferry("journal", "verify", "--config", cfg)
	want := "A/two.bin (id " + strconv.FormatInt(id, 10) + "): state: the table says failed, the replay of the events says uploaded (last event seq " + strconv.FormatInt(last, 10) + ")"
	if code != exitFailed || !strings.Contains(errs, want) || !strings.Contains(errs, "sha256: the table says ab") {
		t.Fatalf("verify after an edited row: %d %q, want exit 1 with %q", code, errs, want)
	}
}

// Export: an inserted event is named; JSONL and CSV carry the same
// events, with RFC 3339 times, and the CSV verifies as well.
func TestJournalExportFormatsAgree(t *testing.T) {
	dir, cfg, ferry := stateSetup(t)
	writeBatch(t, dir, "A", "one.bin", "two,with comma.bin", "thré\"e.bin")
	if code, _, errs := ferry("run", "--once", "--config", cfg); code != 0 {
		t.Fatal(errs)
	}
	_, jl, _ := ferry("journal", "export", "--config", cfg)
	_, cs, _ := ferry("journal", "export", "--config", cfg, "--format", "csv")
	lines := strings.Split(strings.TrimSpace(jl), "\n")
	recs, err := csv.NewReader(strings.NewReader(cs)).ReadAll()
	if err != nil || len(recs) != len(lines)+1 {
		t.Fatalf("csv: %v, %d records for %d lines", err, len(recs), len(lines))
	}
	v := journal.NewChainVerifier()
	for i, l := range lines {
		var e journal.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		fromCSV := csvEvent(t, recs[i+1])
		if fromCSV != e {
			t.Fatalf("line %d: csv %+v\njsonl %+v", i+1, fromCSV, e)
		}
		if err := v.Check(fromCSV); err != nil {
			t.Fatalf("the CSV export does not verify: %v", err)
		}
		var raw struct{ Time string }
		json.Unmarshal([]byte(l), &raw)
		if _, err := time.Parse(time.RFC3339, raw.Time); err != nil || !strings.HasSuffix(raw.Time, "Z") {
			t.Fatalf("time %q is not RFC 3339 UTC: %v", raw.Time, err)
		}
	}
	// An event inserted into an export (a copy of event 3 after it).
	bad := filepath.Join(dir, "inserted.jsonl")
	ins := append(append(append([]string(nil), lines[:3]...), lines[2]), lines[3:]...)
	os.WriteFile(bad, []byte(strings.Join(ins, "\n")+"\n"), 0o644)
	if code, _, errs := ferry("journal", "verify", "--export", bad); code != exitFailed || !strings.Contains(errs, "seq 3:") {
		t.Fatalf("inserted event: %d %q, want exit 1 naming seq 3", code, errs)
	}
}

func csvEvent(t *testing.T, r []string) journal.Event {
	t.Helper()
	num := func(s string, absent int64) int64 {
		if s == "" {
			return absent
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	tm, err := time.Parse(time.RFC3339Nano, r[1])
	if err != nil {
		t.Fatal(err)
	}
	return journal.Event{Seq: num(r[0], 0), Time: tm, Kind: journal.Kind(r[2]), FileID: num(r[3], 0), CorrelationID: r[4], BatchID: r[5],
		ChunkSequence: int(num(r[6], 0)), RelPath: r[7], Size: num(r[8], -1), SHA256: r[9], Detail: r[10], PrevHash: r[11], Hash: r[12]}
}
