package journal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testtmp"
)

func auditRecords(t *testing.T, j *Journal) []AuditRecord {
	t.Helper()
	var rs []AuditRecord
	if err := j.AuditRecords(context.Background(), EventFilter{}, func(r AuditRecord) error { rs = append(rs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return rs
}

func migrationSum(t *testing.T, name string) string {
	t.Helper()
	b, err := migrationFS.ReadFile("migrations/" + name)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestAuditGenesisHash(t *testing.T) {
	s := sha256.Sum256([]byte("ferry audit log\n"))
	if got := hex.EncodeToString(s[:]); got != AuditGenesisHash {
		t.Fatalf("AuditGenesisHash = %s, want SHA-256(\"ferry audit log\\n\") = %s", AuditGenesisHash, got)
	}
}

// A new journal records every migration it applied, one record each, in
// order.
func TestNewJournalAuditsItsMigrations(t *testing.T) {
	j := open(t)
	rs := auditRecords(t, j)
	if len(rs) != SchemaVersion() {
		t.Fatalf("%d audit records, want one per migration (%d): %+v", len(rs), SchemaVersion(), rs)
	}
	ms, _ := migrations()
	for i, r := range rs {
		want := SchemaChange{From: i, To: i + 1}
		if r.Kind != AuditMigration || r.Schema == nil || *r.Schema != want || r.Subject != ms[i].name || r.SHA256 != migrationSum(t, ms[i].name) {
			t.Fatalf("record %d = %+v, want migration %d -> %d of %s", i, r, want.From, want.To, ms[i].name)
		}
	}
	if v, err := j.VerifyAudit(context.Background()); err != nil || v.Count() != int64(len(rs)) {
		t.Fatalf("VerifyAudit = %d, %v", v.Count(), err)
	}
}

// A journal made at schema 2 (by the migrations of that time) and opened
// by this ferry records the one migration applied, 2 -> 3, with the
// SHA-256 of the migration file.
func TestMigrationFromVersion2IsAudited(t *testing.T) {
	path := filepath.Join(testtmp.Dir(t), "v2.db")
	raw := rawDB(t, path)
	qs := []string{`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`}
	for _, name := range []string{"0001_init.sql", "0002_on_change.sql"} {
		b, err := migrationFS.ReadFile("migrations/" + name)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, string(b))
	}
	qs = append(qs, `INSERT INTO schema_migrations VALUES (1, '0001_init.sql', 'x', '2026-11-26T00:00:00Z'), (2, '0002_on_change.sql', 'y', '2026-11-26T00:00:00Z')`)
	for _, q := range qs {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	raw.Close()
	j, err := Open(path, Options{FerryVersion: "ferry test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { j.Close() }() // the journal open at the end (Windows cannot remove an open file)
	// One record per migration applied, in order, from the first one the
	// audit log itself was made by.
	rs := auditRecords(t, j)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var applied []string
	for _, m := range ms[2:] {
		applied = append(applied, m.name)
	}
	if len(rs) != len(applied) {
		t.Fatalf("audit records after migrating from 2: %+v, want one per migration %v", rs, applied)
	}
	prev := AuditGenesisHash
	for i, r := range rs {
		if r.Kind != AuditMigration || r.Schema == nil || *r.Schema != (SchemaChange{2 + i, 3 + i}) || r.Subject != applied[i] ||
			r.SHA256 != migrationSum(t, applied[i]) || r.FerryVersion != "ferry test" || r.PrevHash != prev {
			t.Fatalf("migration record %d = %+v", i, r)
		}
		prev = r.Hash
	}
	// Opening again applies nothing and records nothing.
	j.Close()
	j, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rs := auditRecords(t, j); len(rs) != len(applied) {
		t.Fatalf("a second Open recorded more: %+v", rs)
	}
}

func TestAuditRejectsUnknownKind(t *testing.T) {
	j := open(t)
	if err := j.Audit(context.Background(), AuditRecord{Kind: "config_chnaged"}); err == nil || !strings.Contains(err.Error(), "config_chnaged") {
		t.Fatalf("Audit(unknown kind) = %v", err)
	}
}

func TestAuditTamperingIsDetected(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(testtmp.Dir(t), "j.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := int64(len(auditRecords(t, j)))
	for i, sum := range []string{"aa", "bb", "cc"} {
		if err := j.Audit(ctx, AuditRecord{Kind: AuditConfigLoaded, Subject: "/etc/ferry.toml", SHA256: sum,
			Settings: map[string]string{"upload.max_chunk_size": strings.Repeat("1", i+1)}, Changed: []string{"upload.max_chunk_size"}}); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := j.VerifyAudit(ctx); err != nil || v.Count() != base+3 {
		t.Fatalf("VerifyAudit on an honest log = %d, %v", v.Count(), err)
	}
	j.Close()
	target := base + 2
	raw := rawDB(t, path)
	if _, err := raw.Exec(`UPDATE audit SET settings = '{}' WHERE seq = ?`, target); err == nil {
		t.Fatal("UPDATE on audit was allowed")
	}
	if _, err := raw.Exec(`DELETE FROM audit WHERE seq = ?`, target); err == nil {
		t.Fatal("DELETE on audit was allowed")
	}
	for _, q := range []string{`DROP TRIGGER audit_no_update`, `UPDATE audit SET settings = '{"upload.max_chunk_size":"9"}' WHERE seq = ` + strconv.FormatInt(target, 10)} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	j, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	_, err = j.VerifyAudit(ctx)
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Seq != target || !strings.Contains(err.Error(), "edited") {
		t.Fatalf("VerifyAudit after an edit = %v, want an edit at seq %d", err, target)
	}
}

func TestAuditHashIsStable(t *testing.T) {
	r := AuditRecord{Seq: 4, Time: time.Date(2026, 11, 26, 10, 0, 0, 500, time.UTC), Kind: AuditConfigChanged, FerryVersion: "ferry 1.0",
		Subject: "/etc/ferry/ferry.toml", SHA256: "ab", Changed: []string{"a.b", "watch[/d].settle"},
		Settings: map[string]string{"watch[/d].settle": "5s", "a.b": "x<y"}, PrevHash: AuditGenesisHash}
	want := "seq=4\ntime=\"2026-11-26T10:00:00.0000005Z\"\nkind=\"config_changed\"\nferry_version=\"ferry 1.0\"\nsubject=\"/etc/ferry/ferry.toml\"\nsha256=\"ab\"\n" +
		"from_version=\nto_version=\nchanged=\"[\\\"a.b\\\",\\\"watch[/d].settle\\\"]\"\nsettings=\"{\\\"a.b\\\":\\\"x\\\\u003cy\\\",\\\"watch[/d].settle\\\":\\\"5s\\\"}\"\ndetail=\"\"\n"
	if got := string(auditCanonical(r)); got != want {
		t.Fatalf("audit canonical encoding changed:\n%s\nwant\n%s", got, want)
	}
}

func TestAuditExportRoundTrips(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	if err := j.Audit(ctx, AuditRecord{Kind: AuditConfigLoaded, Subject: "/c.toml", SHA256: "ab", Changed: []string{"x"},
		Settings: map[string]string{"x": "1, \"2\"\n"}}); err != nil {
		t.Fatal(err)
	}
	if err := j.Audit(ctx, AuditRecord{Kind: AuditStart, Subject: "host", Detail: "d"}); err != nil {
		t.Fatal(err)
	}
	rs := auditRecords(t, j)
	jv, cv := NewAuditVerifier(), NewAuditVerifier()
	for _, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back AuditRecord
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if err := jv.Check(back); err != nil {
			t.Fatalf("JSON %s: %v", b, err)
		}
		fromCSV, err := AuditFromCSV(r.CSVRecord())
		if err != nil {
			t.Fatal(err)
		}
		if err := cv.Check(fromCSV); err != nil {
			t.Fatalf("CSV %q: %v", r.CSVRecord(), err)
		}
		if !reflect.DeepEqual(AuditHash(back), AuditHash(fromCSV)) || !back.Time.Equal(r.Time) {
			t.Fatalf("JSON and CSV disagree for seq %d", r.Seq)
		}
	}
	var e Event
	if b, _ := json.Marshal(rs[0]); json.Unmarshal(b, &e) == nil && e.Hash != "" && EventHash(e) == e.Hash {
		t.Fatal("an audit record verified as an event")
	}
}

func TestCheckpointAnchorsTheTail(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(testtmp.Dir(t), "j.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"a", "b", "c"} {
		if _, err := j.RecordSettled(ctx, settled(r, 1)); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := j.Checkpoint(ctx, "pc1", "ferry test")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := j.JournalID(ctx)
	if cp.EventSeq != 3 || cp.EventHash == "" || cp.AuditSeq != int64(SchemaVersion()+1) || cp.JournalID != id || id == "" || cp.Host != "pc1" {
		t.Fatalf("checkpoint = %+v (journal id %s)", cp, id)
	}
	if again, err := j.Checkpoint(ctx, "pc1", "ferry test"); err != nil || again != cp {
		t.Fatalf("a checkpoint with nothing new = %+v, %v; want the same one again", again, err)
	}
	if err := j.MatchCheckpoint(ctx, cp); err != nil {
		t.Fatalf("MatchCheckpoint on an honest journal: %v", err)
	}
	j.Close()

	// The tail is cut (triggers dropped): what remains is a valid chain,
	// but the checkpoint names a seq it no longer has.
	raw := rawDB(t, path)
	for _, q := range []string{`DROP TRIGGER events_no_delete`, `DELETE FROM events WHERE seq >= 2`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	j, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.VerifyChain(ctx); err != nil {
		t.Fatalf("the cut chain no longer verifies on its own (%v): the test is not testing truncation", err)
	}
	err = j.MatchCheckpoint(ctx, cp)
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Seq != 3 || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("MatchCheckpoint after truncation = %v, want seq 3 truncated", err)
	}
	other := cp
	other.JournalID = "ff"
	if err := j.MatchCheckpoint(ctx, other); err == nil || !strings.Contains(err.Error(), "another journal") {
		t.Fatalf("MatchCheckpoint of another journal = %v", err)
	}
}

func TestBatchCompletedWhenItsLastFileIsUploaded(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	for _, r := range []string{"run1/a", "run1/b", "run2/c"} {
		if _, err := j.RecordSettled(ctx, settled(r, 1)); err != nil {
			t.Fatal(err)
		}
	}
	jobs := mustClaim(t, j, 10)
	batches, other := j.BatchCompleted(), j.BatchCompleted()
	complete := func(rel string) bool {
		t.Helper()
		for i := range jobs {
			if jobs[i].RelPath == rel {
				if err := j.Complete(ctx, &jobs[i], "ff", jobs[i].Key); err != nil {
					t.Fatal(err)
				}
			}
		}
		select {
		case <-batches:
			// Every subscriber hears of it.
			select {
			case <-other:
			default:
				t.Fatal("a second subscriber missed a completed batch")
			}
			return true
		default:
			return false
		}
	}
	if complete("run1/a") {
		t.Fatal("batch run1 reported complete with run1/b still uploading")
	}
	if !complete("run1/b") {
		t.Fatal("batch run1 not reported complete after its last file")
	}
	if !complete("run2/c") {
		t.Fatal("batch run2 not reported complete")
	}
}
