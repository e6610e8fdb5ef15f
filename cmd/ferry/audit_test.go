package main

import (
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/internal/testsrv"
	"github.com/ferry-data/ferry/journal"
)

// The daemon's audit log, export and verify of both chains, checkpoints
// on the target and verify --against-target, end to end against versitygw.
func TestAuditLogAndCheckpoints(t *testing.T) {
	srv := testsrv.StartS3(t)
	e := e2eSetup(t, srv, "audit", true)
	e2eWriteFiles(t, e.watch, map[string][]byte{"run1/a.bin": e2eData(1, 1000), "run1/b.bin": e2eData(2, 2000)})
	c := e.config()
	e.writeConfig(c)
	e.mustOnce(2, 3000)
	c.Watches[0].Settle = "400ms"
	c.BreakerThreshold = 7
	e.writeConfig(c)
	e2eWriteFiles(t, e.watch, map[string][]byte{"run2/c.bin": e2eData(3, 3000)})
	e.mustOnce(1, 3000)

	ferry := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := run(t.Context(), args, &out, &errb, e.getenv)
		return code, out.String(), errb.String()
	}

	// Export --log audit (JSONL): every record, verified on its own.
	exp := filepath.Join(e.dir, "audit.jsonl")
	if code, out, errs := ferry("journal", "export", "--config", e.cfgPath, "--log", "audit", "--out", exp); code != 0 || !strings.Contains(out, "audit records") {
		t.Fatalf("export --log audit: %d %q %q", code, out, errs)
	}
	text := mustRead(t, exp)
	var recs []journal.AuditRecord
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		var r journal.AuditRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		recs = append(recs, r)
	}
	kinds := map[string][]journal.AuditRecord{}
	for _, r := range recs {
		kinds[r.Kind] = append(kinds[r.Kind], r)
	}
	if len(kinds["migration"]) != journal.SchemaVersion() || len(kinds["start"]) != 2 || len(kinds["stop"]) != 2 || len(kinds["config_loaded"]) != 2 || len(kinds["checkpoint"]) < 2 {
		t.Fatalf("audit log kinds: migration %d, start %d, stop %d, config_loaded %d, checkpoint %d",
			len(kinds["migration"]), len(kinds["start"]), len(kinds["stop"]), len(kinds["config_loaded"]), len(kinds["checkpoint"]))
	}
	if r := kinds["start"][0]; r.FerryVersion != versionString() {
		t.Errorf("start record version %q, want %q", r.FerryVersion, versionString())
	}
	second := kinds["config_loaded"][1]
	if want := []string{"upload.breaker.failure_threshold", "watch[" + e.watch + "].settle"}; !slices.Equal(second.Changed, want) {
		t.Errorf("second config record changed %q, want %q", second.Changed, want)
	}
	if second.Settings["target.s3.secret_key_env"] != e2eSecretKeyEnv || second.SHA256 != config.Sum([]byte(c.text())) {
		t.Errorf("second config record: %+v", second)
	}
	for k, v := range second.Settings {
		if v == srv.SecretKey || v == srv.AccessKey {
			t.Errorf("setting %s holds a credential", k)
		}
	}
	if strings.Contains(text, `"`+srv.SecretKey+`"`) {
		t.Errorf("the audit export holds the secret key")
	}
	if code, out, errs := ferry("journal", "verify", "--export", exp); code != 0 || !strings.Contains(out, "audit log): intact, "+fmt.Sprint(len(recs))+" audit records") {
		t.Fatalf("verify --export (audit): %d %q %q", code, out, errs)
	}
	// CSV carries the same records.
	code, out, _ := ferry("journal", "export", "--config", e.cfgPath, "--log", "audit", "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(rows) != len(recs)+1 || !slices.Equal(rows[0], journal.AuditExportColumns) {
		t.Fatalf("csv export: %d %v, %d rows", code, err, len(rows))
	}
	for i, row := range rows[1:] {
		r, err := journal.AuditFromCSV(row)
		if err != nil || journal.AuditHash(r) != recs[i].Hash || r.Hash != recs[i].Hash {
			t.Fatalf("csv row %d: %v; hash %s, JSONL %s", i+1, err, journal.AuditHash(r), recs[i].Hash)
		}
	}
	if code, _, errs := ferry("journal", "export", "--config", e.cfgPath, "--log", "audit", "--batch", "run1"); code != exitUsage || !strings.Contains(errs, "batch") {
		t.Fatalf("--log audit --batch: %d %q", code, errs)
	}

	// Checkpoints on the target, and verify against them.
	listed, err := srv.Client().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(e.bucket), Prefix: aws.String(e2ePrefix + daemon.CheckpointDir)})
	if err != nil || len(listed.Contents) == 0 {
		t.Fatalf("no checkpoint under %s%s: %v", e2ePrefix, daemon.CheckpointDir, err)
	}
	latestKey := aws.ToString(listed.Contents[len(listed.Contents)-1].Key)
	b, _, err := e2eGet(srv, e.bucket, latestKey)
	var latest journal.Checkpoint
	if err != nil || json.Unmarshal(b, &latest) != nil || latest.Host != daemon.CheckpointHost() || latest.EventSeq == 0 {
		t.Fatalf("latest checkpoint %s: %s, %v", latestKey, b, err)
	}
	if last := recs[len(recs)-1]; last.Kind != journal.AuditCheckpoint || last.Seq != latest.AuditSeq || last.Hash != latest.AuditHash {
		t.Errorf("the final checkpoint (%s) is not the audit log's last record %+v", latestKey, last)
	}
	code, out, errs := ferry("journal", "verify", "--config", e.cfgPath, "--against-target")
	if code != 0 || !strings.Contains(out, "audit records") || !strings.Contains(out, "latest checkpoint on every target (1)") {
		t.Fatalf("verify --against-target on an honest journal: %d %q %q", code, out, errs)
	}

	// The tail of the event chain is cut: what is left still verifies as
	// a chain; the file tables, ahead of it, give the cut away, and so
	// does the checkpoint on the target, naming the seq.
	raw, err := sql.Open("sqlite", "file:"+filepath.ToSlash(e.journal))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{`DROP TRIGGER events_no_delete`, fmt.Sprintf(`DELETE FROM events WHERE seq > %d`, latest.EventSeq-3)} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, errs := ferry("journal", "verify", "--config", e.cfgPath); code != exitFailed || !strings.Contains(errs, "do NOT agree with the events") || strings.Contains(errs, "chain NOT intact") {
		t.Fatalf("verify of the cut chain alone: %d %q %q; want the chain intact, the replay not", code, out, errs)
	}
	code, _, errs = ferry("journal", "verify", "--config", e.cfgPath, "--against-target")
	if code != exitFailed || !strings.Contains(errs, fmt.Sprintf("seq %d:", latest.EventSeq)) || !strings.Contains(errs, "truncated") {
		t.Fatalf("verify --against-target after the cut: %d %q; want 1 naming seq %d", code, errs, latest.EventSeq)
	}

	// An edit in the audit table (triggers dropped) is found.
	for _, q := range []string{`DROP TRIGGER audit_no_update`, `UPDATE audit SET detail = 'nothing to see' WHERE seq = 2`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	code, _, errs = ferry("journal", "verify", "--config", e.cfgPath)
	if code != exitFailed || !strings.Contains(errs, "audit chain NOT intact") || !strings.Contains(errs, "seq 2:") {
		t.Fatalf("verify after an audit edit: %d %q", code, errs)
	}
}
