package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// base is the row every pair of TestLifecycleTable starts from: every
// column holds a value no change sets, so that what a transition writes
// (and what it must leave alone) shows.
func baseRow(st State) fileRow {
	return fileRow{File: File{Watch: "/data", RelPath: "run/a", Target: "t0", Key: "p/run/a", BatchID: "run",
		Version: Version{Size: 7, MtimeNS: 70, FileID: "1:7"}}, Generation: 3, State: st, Signal: "quiet",
		SHA256: "old-sha", UploadID: "old-upload", CorrelationID: "old-corr", Attempts: 4, NextAttemptAt: 400,
		ErrorClass: "old-class", Error: "old-error", SettledAt: 11, UpdatedAt: 12, UploadedAt: 13,
		UploadedSHA256: "old-landed-sha", UploadedKey: "old-landed-key"}
}

// aChange carries a distinct value for every column a change may set.
func aChange(kind Kind) *change {
	return &change{Kind: kind,
		Settled: &Settled{Watch: "/data", RelPath: "run/a", Target: "t1", Key: "p/run/a", BatchID: "run",
			Version: Version{Size: 9, MtimeNS: 90, FileID: "1:9"}, Signal: "close"},
		SHA256: "new-sha", UploadID: "new-upload", Due: time.Unix(0, 900), Class: "new-class", Reason: "new-reason",
		Landed: &Landed{Key: "new-landed-key", SHA256: "new-landed-sha"}, CorrelationID: "new-corr", Chunk: &Chunk{Seq: 1, Size: 9, SHA256: "c"}}
}

// insertRow writes r as it is (any state) and returns its id.
func insertRow(t *testing.T, j *Journal, r fileRow) int64 {
	t.Helper()
	res, err := j.w.Exec(`INSERT INTO files (watch, rel_path, target, object_key, batch_id, size, mtime_ns, file_id, generation, state, signal,
			sha256, upload_id, correlation_id, attempts, next_attempt_at, error_class, error, settled_at, updated_at, uploaded_at, uploaded_sha256, uploaded_key)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, append([]any{r.Watch, r.RelPath}, r.values()...)...)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	return id
}

func readRow(t *testing.T, j *Journal, id int64) (fileRow, bool) {
	t.Helper()
	r, err := scanRow(j.w.QueryRow(`SELECT `+rowCols+` FROM files WHERE id = ?`, id))
	if err != nil {
		return fileRow{}, false
	}
	return r, true
}

func eventCount(t *testing.T, j *Journal) int {
	t.Helper()
	var n int
	if err := j.w.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLifecycleTable walks every (state, kind) pair through the journal:
// a pair the table allows moves the row to the rule's state and sets
// exactly the columns the rule says (each checked against the database,
// and every other column left as it was); any other pair is refused, with
// nothing written.
func TestLifecycleTable(t *testing.T) {
	j := open(t)
	ctx := context.Background()
	var kinds []Kind
	seen := map[Kind]bool{}
	for _, r := range lifecycle {
		if !seen[r.Kind] {
			seen[r.Kind] = true
			kinds = append(kinds, r.Kind)
		}
	}
	kinds = append(kinds, "teleported") // not a kind at all
	now := time.Unix(0, 5000)
	j.now = func() time.Time { return now }
	for _, from := range append([]State{None}, States()...) {
		for _, kind := range kinds {
			name := string(from)
			if from == None {
				name = "none"
			}
			t.Run(name+"/"+string(kind), func(t *testing.T) {
				before := baseRow(from)
				var id int64
				if from != None {
					before.RelPath = fmt.Sprintf("run/%s-%s", from, kind)
					id = insertRow(t, j, before)
					before.ID = id
				}
				events := eventCount(t, j)
				c := aChange(kind)
				if from == None {
					c.Settled.RelPath = fmt.Sprintf("run/new-%s", kind)
				}
				var after fileRow
				err := j.do(ctx, func(tx *Tx) error {
					r := fileRow{File: File{Watch: "/data", RelPath: c.Settled.RelPath}}
					if from != None {
						var err error
						if r, err = tx.row(id); err != nil {
							return err
						}
					}
					err := tx.move(&r, c)
					after = r
					return err
				})
				rule := rules[kind][from]
				if rule == nil {
					if !errors.Is(err, ErrTransition) {
						t.Fatalf("%s from %q: err = %v, want ErrTransition", kind, from, err)
					}
					if got := eventCount(t, j); got != events {
						t.Fatalf("a refused transition appended %d events", got-events)
					}
					if from != None {
						if got, _ := readRow(t, j, id); got != before {
							t.Fatalf("a refused transition changed the row:\n%+v\n%+v", got, before)
						}
					}
					return
				}
				if err != nil {
					t.Fatalf("%s from %q: %v", kind, from, err)
				}
				got, ok := readRow(t, j, after.ID)
				if !ok {
					t.Fatal("no row after the transition")
				}
				if got.State != rule.To {
					t.Fatalf("state %q, want %q", got.State, rule.To)
				}
				if got := eventCount(t, j); got != events+1 {
					t.Fatalf("%d events appended, want 1", got-events)
				}
				checkColumns(t, rule, before, got, c, now.UnixNano())
			})
		}
	}
}

// checkColumns checks each column of the row after a transition against
// the rule's Sets: set as the change says when the rule sets it, as it was
// before otherwise.
func checkColumns(t *testing.T, rule *Rule, before, got fileRow, c *change, now int64) {
	t.Helper()
	sets := func(col Col) bool { return rule.Sets&col != 0 }
	check := func(name string, gotV, setV, keepV any, set bool) {
		t.Helper()
		want := keepV
		if set {
			want = setV
		}
		if gotV != want {
			t.Errorf("%s = %v, want %v (rule sets %s)", name, gotV, want, rule.Sets)
		}
	}
	created := rule.From[0] == None
	if created {
		// A new row: what is not set is the column's zero.
		before = fileRow{}
	}
	st := c.Settled
	check("target", got.Target, st.Target, before.Target, sets(SetVersion))
	check("version", got.Version, st.Version, before.Version, sets(SetVersion))
	check("signal", got.Signal, st.Signal, before.Signal, sets(SetVersion))
	check("settled_at", got.SettledAt, now, before.SettledAt, sets(SetVersion))
	check("generation", got.Generation, before.Generation+1, before.Generation, sets(NewGeneration))
	attempts, due := before.Attempts, before.NextAttemptAt
	switch {
	case sets(ResetAttempts):
		attempts, due = 0, 0
	case sets(CountAttempt):
		attempts++
	case sets(UncountAttempt):
		attempts, due = max(attempts-1, 0), 0
	}
	if sets(ResetDue) {
		due = 0
	}
	if sets(SetDue) {
		due = c.Due.UnixNano()
	}
	check("attempts", got.Attempts, attempts, attempts, false)
	check("next_attempt_at", got.NextAttemptAt, due, due, false)
	check("correlation_id", got.CorrelationID, c.CorrelationID, before.CorrelationID, sets(CountAttempt))
	sha := before.SHA256
	if sets(ClearHash) {
		sha = ""
	}
	check("sha256", got.SHA256, c.SHA256, sha, sets(SetHash))
	id := before.UploadID
	if sets(ClearUploadID) {
		id = ""
	}
	check("upload_id", got.UploadID, c.UploadID, id, sets(SetUploadID))
	class, msg := before.ErrorClass, before.Error
	if sets(ClearError) {
		class, msg = "", ""
	}
	check("error_class", got.ErrorClass, c.Class, class, sets(SetError))
	check("error", got.Error, c.Reason, msg, sets(SetError))
	check("uploaded_key", got.UploadedKey, c.Landed.Key, before.UploadedKey, sets(SetLanded))
	check("uploaded_sha256", got.UploadedSHA256, c.Landed.SHA256, before.UploadedSHA256, sets(SetLanded))
	at := before.UploadedAt
	if sets(ClearUploadedAt) {
		at = 0
	}
	check("uploaded_at", got.UploadedAt, now, at, sets(SetUploadedAt))
	// A step that sets nothing writes only its event.
	check("updated_at", got.UpdatedAt, now, before.UpdatedAt, rule.Sets != 0 || rule.To != before.State || created)
	// Never set by a transition: the row's identity.
	if !created {
		check("watch", got.Watch, before.Watch, before.Watch, false)
		check("rel_path", got.RelPath, before.RelPath, before.RelPath, false)
	}
}

// TestLifecycleStates: every state a rule names is declared, every
// declared state but none is reachable, and the CHECK constraint of the
// files table lists exactly the declared states.
func TestLifecycleStates(t *testing.T) {
	declared := map[State]bool{None: true}
	for _, s := range States() {
		declared[s] = true
	}
	reached := map[State]bool{}
	for _, r := range lifecycle {
		for _, f := range append([]State{r.To}, r.From...) {
			if !declared[f] {
				t.Errorf("%s: state %q is not declared", r.Kind, f)
			}
		}
		reached[r.To] = true
	}
	for _, s := range States() {
		if !reached[s] {
			t.Errorf("no rule enters %q", s)
		}
	}
	j := open(t)
	var ddl string
	if err := j.w.QueryRow(`SELECT sql FROM sqlite_master WHERE name = 'files'`).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	_, list, ok := strings.Cut(ddl, "CHECK (state IN (")
	list, _, _ = strings.Cut(list, ")")
	if !ok {
		t.Fatalf("no CHECK on state in:\n%s", ddl)
	}
	allowed := map[State]bool{}
	for _, q := range strings.Split(list, ",") {
		allowed[State(strings.Trim(strings.TrimSpace(q), "'"))] = true
	}
	for _, s := range States() {
		if !allowed[s] {
			t.Errorf("the files table's CHECK does not allow %q: %s", s, list)
		}
		delete(allowed, s)
	}
	if len(allowed) > 0 {
		t.Errorf("the files table's CHECK allows undeclared states %v", allowed)
	}
}

// TestArchitectureShowsTheLifecycle keeps ARCHITECTURE.md's state diagram
// the table's own rendering.
func TestArchitectureShowsTheLifecycle(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "ARCHITECTURE.md"))
	if err != nil {
		t.Skipf("ARCHITECTURE.md: %v", err)
	}
	if want := "```mermaid\n" + Mermaid() + "```"; !strings.Contains(string(b), want) {
		t.Errorf("ARCHITECTURE.md does not hold the lifecycle's diagram; put this in it:\n%s", want)
	}
}

// Dead letters wait for a person across restarts: Recover puts back what
// was being uploaded, and leaves failed files failed (ARCHITECTURE.md says
// why); ferry dlq retry is what queues them again.
func TestRecoverLeavesDeadLettersToAPerson(t *testing.T) {
	j := open(t)
	ctx := context.Background()
	for _, rel := range []string{"run/bad", "run/busy"} {
		if _, err := j.RecordSettled(ctx, settled(rel, 3)); err != nil {
			t.Fatal(err)
		}
	}
	jobs := mustClaim(t, j, 2)
	if err := j.Fail(ctx, &jobs[0], "permanent", "403"); err != nil {
		t.Fatal(err)
	}
	// restart
	if n, err := j.Recover(ctx); err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v; want the one being uploaded", n, err)
	}
	if r := state(t, j, jobs[0].RelPath); r.State != Failed {
		t.Fatalf("%s after a restart: %s, want still failed", r.RelPath, r.State)
	}
	if r := state(t, j, jobs[1].RelPath); r.State != Queued {
		t.Fatalf("%s after a restart: %s, want queued", r.RelPath, r.State)
	}
	if n, err := j.RetryDeadLetters(ctx); err != nil || n != 1 {
		t.Fatalf("dlq retry: %d, %v", n, err)
	}
	if r := state(t, j, jobs[0].RelPath); r.State != Queued || r.ErrorClass != "" {
		t.Fatalf("after dlq retry: %+v", r)
	}
}
