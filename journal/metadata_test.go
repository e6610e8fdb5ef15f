package journal

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func metaSettled(rel string, source bool) Settled {
	s := settled(rel, 10)
	s.Dataset = &DatasetRef{Watch: "/data", RelPath: s.BatchID, Target: "t", KeyPrefix: "p/" + s.BatchID + "/", Profile: "seq"}
	s.MetadataSource = source
	return s
}

func statesOf(t *testing.T, j *Journal, rels ...string) string {
	t.Helper()
	var out []string
	for _, r := range rels {
		out = append(out, string(state(t, j, r).State))
	}
	return strings.Join(out, ",")
}

func TestMetadataHoldsFilesUntilValidated(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	for _, s := range []Settled{metaSettled("run1/RunInfo.xml", true), metaSettled("run1/a.bcl", false)} {
		if _, err := j.RecordSettled(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// Not validated yet: both wait.
	if got := statesOf(t, j, "run1/RunInfo.xml", "run1/a.bcl"); got != "held,held" {
		t.Fatalf("before the first validation: %s", got)
	}
	if jobs := mustClaim(t, j, 10); len(jobs) != 0 {
		t.Fatalf("a held file was claimed: %+v", jobs)
	}
	dirty, err := j.DirtyMetadata(ctx)
	if err != nil || len(dirty) != 1 || !dirty[0].Dirty() || dirty[0].Held != 2 || dirty[0].Profile != "seq" {
		t.Fatalf("DirtyMetadata = %+v, %v", dirty, err)
	}
	// Invalid under hold: they stay held.
	findings := json.RawMessage(`[{"kind":"invalid","field":"samplesheet.Data[].Species","expected":"a term of ncbitaxon","found":"unicorn"}]`)
	rel, held, err := j.RecordMetadata(ctx, "/data", "run1", MetadataEvaluation{Status: "invalid", SchemaVersion: "https://x/s.json@0123456789ab",
		Hold: true, Findings: findings, Marks: dirty[0].Marks}, nil)
	if err != nil || rel != 0 || held != 0 {
		t.Fatalf("RecordMetadata invalid = %d %d %v", rel, held, err)
	}
	if dirty, _ := j.DirtyMetadata(ctx); len(dirty) != 0 {
		t.Fatalf("still dirty after its validation: %+v", dirty)
	}
	// A new file of a held dataset is held at once, and carries the stamp.
	if _, err := j.RecordSettled(ctx, metaSettled("run1/b.bcl", false)); err != nil {
		t.Fatal(err)
	}
	if got := statesOf(t, j, "run1/b.bcl"); got != "held" {
		t.Fatalf("a file settling in a held dataset: %s", got)
	}
	hm, err := j.HeldMetadata(ctx)
	if err != nil || len(hm) != 1 || hm[0].Held != 3 || hm[0].Status != "invalid" || !strings.Contains(string(hm[0].Findings), "unicorn") {
		t.Fatalf("HeldMetadata = %+v, %v", hm, err)
	}
	// A source file settling marks the dataset dirty again.
	if _, err := j.RecordSettled(ctx, metaSettled("run1/SampleSheet.csv", true)); err != nil {
		t.Fatal(err)
	}
	dirty, _ = j.DirtyMetadata(ctx)
	if len(dirty) != 1 {
		t.Fatalf("a settled source did not mark its dataset: %+v", dirty)
	}
	// Valid now: every held file is released, and the watch's shape is
	// merged.
	var mergedFrom string
	merge := func(w, d []byte) ([]byte, error) { mergedFrom = string(w); return d, nil }
	rel, held, err = j.RecordMetadata(ctx, "/data", "run1", MetadataEvaluation{Status: "valid", SchemaVersion: "https://x/s.json@0123456789ab",
		Shape: json.RawMessage(`{"fields":{"runinfo.run_id":"string"}}`), Marks: dirty[0].Marks}, merge)
	if err != nil || rel != 4 || held != 0 || mergedFrom != "" {
		t.Fatalf("RecordMetadata valid = %d %d %v (merged from %q)", rel, held, err, mergedFrom)
	}
	if shape, err := j.WatchShape(ctx, "/data"); err != nil || !strings.Contains(string(shape), "runinfo.run_id") {
		t.Fatalf("WatchShape = %s, %v", shape, err)
	}
	jobs := mustClaim(t, j, 10)
	if len(jobs) != 4 {
		t.Fatalf("released files claimed: %d", len(jobs))
	}
	// Every event of the dataset's files after the first validation
	// carries its stamp; the settled events before it do not.
	var stamped, unstamped int
	err = j.Events(ctx, EventFilter{}, func(e Event) error {
		if e.FileID == 0 && e.Kind != KindMetadataValidated {
			return nil
		}
		switch {
		case e.ValidationStatus != "" && e.SchemaVersion == "https://x/s.json@0123456789ab":
			stamped++
		case e.ValidationStatus == "":
			unstamped++
		}
		return nil
	})
	if err != nil || stamped == 0 || unstamped == 0 {
		t.Fatalf("stamps: %d stamped, %d not, %v", stamped, unstamped, err)
	}
	if n, err := j.VerifyChain(ctx); err != nil || n == 0 {
		t.Fatalf("chain: %d %v", n, err)
	}
	if mm, _, err := j.VerifyState(ctx); err != nil || len(mm) != 0 {
		t.Fatalf("verify: %v %v", mm, err)
	}
	// A stamp changed in the table breaks the chain.
	if _, err := j.w.Exec(`DROP TRIGGER events_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := j.w.Exec(`UPDATE events SET validation_status = 'valid' WHERE validation_status = 'invalid'`); err != nil {
		t.Fatal(err)
	}
	if _, err := j.VerifyChain(ctx); err == nil {
		t.Fatal("a changed validation_status went unnoticed")
	}
}

func TestMetadataAccept(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	if _, err := j.RecordSettled(ctx, metaSettled("run2/a.bcl", true)); err != nil {
		t.Fatal(err)
	}
	if _, err := j.AcceptMetadata(ctx, "/data", "run2", "", nil); err == nil {
		t.Fatal("accepted without a reason")
	}
	if _, err := j.AcceptMetadata(ctx, "/data", "nope", "r", nil); !errors.Is(err, ErrNoDataset) {
		t.Fatalf("accept of an unknown dataset: %v", err)
	}
	d, _ := j.DirtyMetadata(ctx)
	if _, _, err := j.RecordMetadata(ctx, "/data", "run2", MetadataEvaluation{Status: "drift", SchemaVersion: "v@1", Hold: true, Marks: d[0].Marks}, nil); err != nil {
		t.Fatal(err)
	}
	n, err := j.AcceptMetadata(ctx, "/data", "run2", "new software version approved by the facility", nil)
	if err != nil || n != 1 || statesOf(t, j, "run2/a.bcl") != "queued" {
		t.Fatalf("accept = %d, %v, %s", n, err, statesOf(t, j, "run2/a.bcl"))
	}
	// Accepted is for good: a later validation that would hold does not.
	if _, err := j.RecordSettled(ctx, metaSettled("run2/RunInfo.xml", true)); err != nil {
		t.Fatal(err)
	}
	d, _ = j.DirtyMetadata(ctx)
	if _, held, err := j.RecordMetadata(ctx, "/data", "run2", MetadataEvaluation{Status: "drift", Hold: true, Marks: d[0].Marks}, nil); err != nil || held != 0 {
		t.Fatalf("an accepted dataset held again: %d %v", held, err)
	}
	if got := statesOf(t, j, "run2/RunInfo.xml"); got != "queued" {
		t.Fatalf("file of an accepted dataset: %s", got)
	}
	if _, err := j.AcceptMetadata(ctx, "/data", "run2", "again", nil); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("accepting a dataset that is not held: %v", err)
	}
	var found bool
	err = j.AuditRecords(ctx, EventFilter{}, func(r AuditRecord) error {
		if r.Kind == AuditMetadataAccepted && r.Subject == "/data/run2" && strings.Contains(r.Detail, "approved by the facility") {
			found = true
		}
		return nil
	})
	if err != nil || !found {
		t.Fatalf("no audit record of the acceptance (%v)", err)
	}
	if _, err := j.VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}
}
