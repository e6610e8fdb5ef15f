package journal

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The file lifecycle, declared once. Every change to a files row is one of
// the event kinds below; the table (lifecycle) says, for each kind, which
// states it may leave, the state it enters and the columns it sets. The
// journal's transitions (files.go) and the replay of the event chain
// (replay.go) both go through fileRow.apply with a rule from this table, so
// the two cannot disagree about what an event does; a transition the table
// does not allow is refused by both.

// State is where a file version stands.
type State string

// The states of a files row. None is the state of a row that does not
// exist yet: the state the creating kinds leave.
const (
	None      State = ""
	Queued    State = "queued"    // settled, waiting to be claimed (perhaps due later)
	Uploading State = "uploading" // claimed by a worker
	Uploaded  State = "uploaded"  // landed and verified
	Failed    State = "failed"    // a dead letter: failed permanently, for a person to look at
	Changed   State = "changed"   // the source moved on under the upload; waits to settle again
	Ignored   State = "ignored"   // modified after upload, left alone (on_change = "ignore")
	Dropped   State = "dropped"   // a person dropped it (the source stays)
	Vanished  State = "vanished"  // the source was deleted or renamed before its upload ended
	Held      State = "held"      // its dataset's metadata is not validated yet, or is invalid or drifted under "hold"
)

// StateInfo describes a state.
type StateInfo struct {
	State State
	// Pending: ferry still has work to do for the file by itself (it
	// holds a dataset open, and ferry run --once reports it).
	Pending bool
	// DeadLetter: a person must act (ferry dlq).
	DeadLetter bool
	// Resettle: the row does not hold a version ferry will act on (the
	// source moved on, or went away), so the watcher's next report of the
	// file, even of the version the row names, queues it again.
	Resettle bool
	Doc      string
}

var stateInfo = []StateInfo{
	{Queued, true, false, false, "settled, waiting to be claimed (perhaps due later, after a transient failure)"},
	{Uploading, true, false, false, "claimed by a worker"},
	{Uploaded, false, false, false, "landed on the target and verified"},
	{Failed, false, true, false, "failed permanently (class and reason recorded): ferry dlq retry|drop"},
	{Changed, true, false, true, "the source changed under the upload; the next settle queues the new version"},
	{Ignored, false, false, false, "modified after its upload; on_change = \"ignore\" leaves the target's copy"},
	{Vanished, false, false, true, "the source was deleted or renamed before its upload ended; what landed, if anything, is recorded"},
	{Dropped, false, false, false, "dropped by a person; taken again only when the file changes"},
	{Held, false, false, false, "kept local: its dataset's metadata is not validated yet, or is invalid or drifted under on_invalid/on_drift = \"hold\"; released when it validates or a person runs ferry metadata accept"},
}

// States lists every state a row can be in.
func States() []State {
	out := make([]State, len(stateInfo))
	for i, s := range stateInfo {
		out[i] = s.State
	}
	return out
}

// Info describes s (the zero StateInfo for an unknown state).
func (s State) Info() StateInfo {
	for _, i := range stateInfo {
		if i.State == s {
			return i
		}
	}
	return StateInfo{}
}

func statesWhere(f func(StateInfo) bool) []State {
	var out []State
	for _, i := range stateInfo {
		if f(i) {
			out = append(out, i.State)
		}
	}
	return out
}

// PendingStates are the states in which ferry still has work to do for a
// file (StateInfo.Pending).
func PendingStates() []State { return statesWhere(func(i StateInfo) bool { return i.Pending }) }

// inStates is the SQL condition "state is one of ss", written from the
// constants (never from input).
func inStates(ss ...State) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + string(s) + "'"
	}
	return "state IN (" + strings.Join(q, ", ") + ")"
}

// Kind is the kind of an event in the chain.
type Kind string

// Event kinds. Those in the lifecycle table change a files row; archived
// and file_state belong to archiving (archive.go).
const (
	KindSettled             Kind = "settled"
	KindRecordedUploaded    Kind = "recorded_uploaded"
	KindRecordedModified    Kind = "recorded_modified"
	KindClaimed             Kind = "claimed"
	KindInterrupted         Kind = "interrupted"
	KindChunkHashed         Kind = "chunk_hashed"
	KindFileHashed          Kind = "file_hashed"
	KindMultipartCreated    Kind = "multipart_created"
	KindChunkAcked          Kind = "chunk_acked"
	KindModifiedAfterUpload Kind = "modified_after_upload"
	KindUploaded            Kind = "uploaded"
	KindIgnored             Kind = "ignored"
	KindFailed              Kind = "failed"
	KindRetryScheduled      Kind = "retry_scheduled"
	KindReleased            Kind = "released"
	KindSuperseded          Kind = "superseded"
	KindSourceChanged       Kind = "source_changed"
	KindVanished            Kind = "vanished"
	KindDLQRetry            Kind = "dlq_retry"
	KindDLQDrop             Kind = "dlq_drop"
	KindUploadAborted       Kind = "upload_aborted"
	KindArchived            Kind = "archived"
	KindFileState           Kind = "file_state"
	KindHeld                Kind = "held"
	KindMetadataReleased    Kind = "metadata_released"
)

// Col is a set of the files columns a transition sets.
type Col uint32

// The columns (or groups of columns) a rule may set.
const (
	// SetVersion: target, object_key, batch_id, size, mtime_ns, file_id,
	// signal, settled_at, from the settled file.
	SetVersion Col = 1 << iota
	// NewGeneration: generation + 1 (1 for a new row).
	NewGeneration
	// ResetAttempts: attempts = 0, next_attempt_at = 0.
	ResetAttempts
	// CountAttempt: attempts + 1, correlation_id = the claim's.
	CountAttempt
	// UncountAttempt: attempts - 1 (not below 0), next_attempt_at = 0.
	UncountAttempt
	// ResetDue: next_attempt_at = 0 (due at once; attempts kept).
	ResetDue
	// SetDue: next_attempt_at = when the retry is due.
	SetDue
	// SetHash: sha256 = the file's SHA-256 as read.
	SetHash
	// ClearHash: sha256 = NULL (a new version is not hashed yet).
	ClearHash
	// SetUploadID: upload_id = the multipart upload's ID.
	SetUploadID
	// ClearUploadID: upload_id = NULL.
	ClearUploadID
	// SetError: error_class and error.
	SetError
	// ClearError: error_class = error = NULL.
	ClearError
	// SetLanded: uploaded_key and uploaded_sha256 = what the transition
	// says landed on the target (always for uploaded and recorded_*; for
	// the other ends of a job, when something landed before it ended).
	SetLanded
	// SetUploadedAt: uploaded_at = now.
	SetUploadedAt
	// ClearUploadedAt: uploaded_at = NULL.
	ClearUploadedAt
)

var colNames = []string{"version", "generation+1", "attempts=0", "attempts+1", "attempts-1", "due=0", "due", "sha256", "sha256=NULL",
	"upload_id", "upload_id=NULL", "error", "error=NULL", "uploaded_key/uploaded_sha256", "uploaded_at", "uploaded_at=NULL"}

func (c Col) String() string {
	var out []string
	for i, n := range colNames {
		if c&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}

// Rule is one edge set of the lifecycle: an event of Kind moves a row in
// one of the From states to To, setting the columns Sets.
type Rule struct {
	Kind Kind
	From []State
	To   State
	// Job: made by the worker that claimed the row, so it applies only
	// while the row is still the job's version (generation). A job's
	// change to a row whose version moved on is refused (ErrStale); a job
	// that ends (To is not Uploading) then ends the row superseded
	// instead.
	Job  bool
	Sets Col
	Doc  string
}

// Ends reports whether the rule ends a job (the row leaves uploading).
func (r *Rule) Ends() bool { return r.Job && r.To != Uploading }

// jobEnd is what every end of a job sets besides its own columns: the
// multipart upload is over, and what landed before the end is recorded.
const jobEnd = ClearUploadID | SetLanded

var lifecycle = []Rule{
	{Kind: KindSettled, From: []State{None}, To: Queued, Sets: SetVersion | NewGeneration,
		Doc: "the watcher found a new file settled"},
	{Kind: KindSettled, From: []State{Queued, Uploaded, Failed, Changed, Ignored, Dropped, Vanished, Held}, To: Queued,
		Sets: SetVersion | NewGeneration | ClearHash | ResetAttempts | ClearError | ClearUploadedAt,
		Doc:  "a new version of a known file settled"},
	{Kind: KindSettled, From: []State{Uploading}, To: Uploading,
		Sets: SetVersion | NewGeneration | ClearHash | ResetAttempts | ClearError | ClearUploadedAt,
		Doc:  "a new version settled during an upload: the upload's end supersedes it"},
	{Kind: KindRecordedUploaded, From: []State{None}, To: Uploaded, Sets: SetVersion | NewGeneration | SetHash | SetLanded | SetUploadedAt,
		Doc: "journal rebuild: the target holds this content"},
	{Kind: KindRecordedModified, From: []State{None}, To: Queued, Sets: SetVersion | NewGeneration | SetLanded,
		Doc: "journal rebuild: the target holds an earlier content that ferry put there"},
	{Kind: KindFailed, From: []State{Queued}, To: Failed, Sets: SetError,
		Doc: "the file cannot be stored under its name (invalid key)"},
	{Kind: KindClaimed, From: []State{Queued}, To: Uploading, Sets: CountAttempt,
		Doc: "the dispatcher claimed it for a worker"},
	{Kind: KindInterrupted, From: []State{Uploading}, To: Queued, Sets: ResetDue,
		Doc: "at start: the previous process stopped during the upload"},
	{Kind: KindChunkHashed, From: []State{Uploading}, To: Uploading, Job: true,
		Doc: "a chunk's SHA-256 as read, journaled before its object is completed"},
	{Kind: KindFileHashed, From: []State{Uploading}, To: Uploading, Job: true, Sets: SetHash,
		Doc: "the file's SHA-256, journaled before its object is completed (with whole=true: the file was read as one chunk, which this event records; otherwise its chunk_hashed events came before)"},
	{Kind: KindMultipartCreated, From: []State{Uploading}, To: Uploading, Job: true, Sets: SetUploadID,
		Doc: "a multipart upload's ID, journaled before its first part"},
	{Kind: KindChunkAcked, From: []State{Uploading}, To: Uploading, Job: true,
		Doc: "the target acknowledged a part"},
	{Kind: KindModifiedAfterUpload, From: []State{Uploading}, To: Uploading, Job: true,
		Doc: "new content for a path that had landed: on_change decides"},
	{Kind: KindUploaded, From: []State{Uploading}, To: Uploaded, Job: true, Sets: jobEnd | SetHash | ClearError | SetUploadedAt,
		Doc: "landed and verified"},
	{Kind: KindIgnored, From: []State{Uploading}, To: Ignored, Job: true, Sets: jobEnd | SetHash | ClearError,
		Doc: "modified after upload, on_change = \"ignore\""},
	{Kind: KindFailed, From: []State{Uploading}, To: Failed, Job: true, Sets: jobEnd | SetError,
		Doc: "a permanent failure"},
	{Kind: KindRetryScheduled, From: []State{Uploading}, To: Queued, Job: true, Sets: SetLanded | SetError | SetDue,
		Doc: "a transient failure: due again later (a multipart upload is kept to resume)"},
	{Kind: KindReleased, From: []State{Uploading}, To: Queued, Job: true, Sets: SetLanded | UncountAttempt,
		Doc: "stopped before the end (shutdown, breaker open): not counted as an attempt"},
	{Kind: KindSuperseded, From: []State{Uploading}, To: Queued, Job: true, Sets: SetLanded,
		Doc: "the upload ended after a newer version settled (a multipart upload it leaves stays journaled: the next attempt aborts it)"},
	{Kind: KindSourceChanged, From: []State{Uploading}, To: Changed, Job: true, Sets: jobEnd | SetError,
		Doc: "the source no longer matches the settled version"},
	{Kind: KindVanished, From: []State{Uploading}, To: Vanished, Job: true, Sets: jobEnd | SetError,
		Doc: "the source was deleted or renamed during the upload"},
	{Kind: KindVanished, From: []State{Queued, Changed, Held}, To: Vanished, Sets: SetError,
		Doc: "the source was deleted or renamed while it waited (a multipart upload it kept stays journaled until aborted)"},
	{Kind: KindDLQRetry, From: []State{Failed}, To: Queued, Sets: ResetAttempts | ClearError,
		Doc: "a person: ferry dlq retry"},
	{Kind: KindDLQDrop, From: []State{Queued, Failed, Changed, Ignored, Vanished, Held}, To: Dropped,
		Doc: "a person: ferry dlq drop (a multipart upload it kept stays journaled until aborted)"},
	{Kind: KindUploadAborted, From: []State{Vanished}, To: Vanished, Sets: ClearUploadID,
		Doc: "the multipart upload a vanished row kept was aborted on the target"},
	{Kind: KindUploadAborted, From: []State{Dropped}, To: Dropped, Sets: ClearUploadID,
		Doc: "the multipart upload a dropped row kept was aborted on the target"},
	{Kind: KindHeld, From: []State{Queued}, To: Held, Sets: ResetDue,
		Doc: "its dataset's metadata is not validated yet, or is invalid or drifted under \"hold\": it stays local"},
	{Kind: KindMetadataReleased, From: []State{Held}, To: Queued, Sets: ResetDue,
		Doc: "its dataset's metadata validated, or a person accepted it (ferry metadata accept)"},
}

// Rules returns the lifecycle table.
func Rules() []Rule { return append([]Rule(nil), lifecycle...) }

// rules indexes the table by kind and the state left.
var rules = func() map[Kind]map[State]*Rule {
	m := map[Kind]map[State]*Rule{}
	for i := range lifecycle {
		r := &lifecycle[i]
		if m[r.Kind] == nil {
			m[r.Kind] = map[State]*Rule{}
		}
		for _, s := range r.From {
			if m[r.Kind][s] != nil {
				panic(fmt.Sprintf("journal: lifecycle: %s from %q declared twice", r.Kind, s))
			}
			m[r.Kind][s] = r
		}
	}
	return m
}()

// ErrTransition is matched by the error of a change the lifecycle table
// does not allow.
var ErrTransition = fmt.Errorf("transition not allowed by the file lifecycle")

// ruleFor finds the rule for an event of kind on a row in state from.
func ruleFor(kind Kind, from State) (*Rule, error) {
	byState, ok := rules[kind]
	if !ok {
		return nil, fmt.Errorf("%w: unknown event kind %q", ErrTransition, kind)
	}
	r := byState[from]
	if r == nil {
		if from == None {
			return nil, fmt.Errorf("%w: %s needs an existing row", ErrTransition, kind)
		}
		return nil, fmt.Errorf("%w: %s from state %q", ErrTransition, kind, from)
	}
	return r, nil
}

// fileKind reports whether kind is in the lifecycle table.
func fileKind(kind Kind) bool { _, ok := rules[kind]; return ok }

// Landed is an object ferry put on a target: its key and the SHA-256 of
// its content.
type Landed struct {
	Key    string
	SHA256 string
}

// fileRow is a files row as the lifecycle sees it. The journal reads and
// writes it whole (files.go); the replay keeps one per file (replay.go).
type fileRow struct {
	File
	ID             int64
	Generation     int64
	State          State
	Signal         string
	SHA256         string
	UploadID       string
	CorrelationID  string
	Attempts       int
	NextAttemptAt  int64
	ErrorClass     string
	Error          string
	SettledAt      int64
	UpdatedAt      int64
	UploadedAt     int64 // 0: never
	UploadedSHA256 string
	UploadedKey    string
}

// change is one transition's values: those of the columns its rule sets,
// and what its event records besides.
type change struct {
	Kind          Kind
	Settled       *Settled // SetVersion
	SHA256        string   // SetHash
	UploadID      string   // SetUploadID
	Due           time.Time
	Class, Reason string  // SetError
	Landed        *Landed // SetLanded (nil: nothing landed)
	CorrelationID string  // CountAttempt
	Attempt       int     // CountAttempt: the attempt it counts (replay)
	Detail        string  // what the event says besides (free text last)
	Chunk         *Chunk  // chunk_hashed, chunk_acked
}

// apply moves r along rule, with the values of c, at now (unix ns).
func (r *fileRow) apply(rule *Rule, c *change, now int64) {
	s := rule.Sets
	if s&SetVersion != 0 && c.Settled != nil {
		st := c.Settled
		r.File = File{Watch: st.Watch, RelPath: st.RelPath, Target: st.Target, Key: st.Key, BatchID: st.BatchID, Version: st.Version}
		r.Signal, r.SettledAt = st.Signal, now
	}
	if s&NewGeneration != 0 {
		r.Generation++
	}
	if s&ResetAttempts != 0 {
		r.Attempts, r.NextAttemptAt = 0, 0
	}
	if s&CountAttempt != 0 {
		r.Attempts++
		if c.Attempt > 0 {
			r.Attempts = c.Attempt
		}
		r.CorrelationID = c.CorrelationID
	}
	if s&UncountAttempt != 0 {
		r.Attempts, r.NextAttemptAt = max(r.Attempts-1, 0), 0
	}
	if s&ResetDue != 0 {
		r.NextAttemptAt = 0
	}
	if s&SetDue != 0 {
		r.NextAttemptAt = c.Due.UnixNano()
	}
	if s&ClearHash != 0 {
		r.SHA256 = ""
	}
	if s&SetHash != 0 {
		r.SHA256 = c.SHA256
	}
	if s&ClearUploadID != 0 {
		r.UploadID = ""
	}
	if s&SetUploadID != 0 {
		r.UploadID = c.UploadID
	}
	if s&ClearError != 0 {
		r.ErrorClass, r.Error = "", ""
	}
	if s&SetError != 0 {
		r.ErrorClass, r.Error = c.Class, c.Reason
	}
	if s&SetLanded != 0 && c.Landed != nil {
		r.UploadedKey, r.UploadedSHA256 = c.Landed.Key, c.Landed.SHA256
	}
	if s&ClearUploadedAt != 0 {
		r.UploadedAt = 0
	}
	if s&SetUploadedAt != 0 {
		r.UploadedAt = now
	}
	r.State = rule.To
	r.UpdatedAt = now
}

// event is the chain's record of c applied to r (r as it is after), with
// prev the state r left. The encoding keeps the details of the journals
// written before the table existed, so that their chains replay alike:
// key=value tokens first (values Go-quoted when they are not one word),
// free text last.
func (c *change) event(r *fileRow, prev State) Event {
	rule := rules[c.Kind][prev]
	e := Event{Kind: c.Kind, FileID: r.ID, BatchID: r.BatchID, RelPath: r.RelPath, Size: -1}
	if rule.Job || rule.Sets&CountAttempt != 0 {
		e.CorrelationID = r.CorrelationID // the attempt's
	}
	var tok []string
	add := func(k, v string) { tok = append(tok, k+"="+detailWord(v)) }
	switch {
	case rule.Sets&SetVersion != 0:
		e.Size = r.Version.Size
		tok = append(tok, watchDetail(r.Watch))
		if c.Kind == KindSettled {
			add("signal", r.Signal)
			if prev != None {
				add("previous_state", string(prev))
			}
		} else {
			add("key", r.UploadedKey)
		}
	case c.Chunk != nil && c.Kind == KindChunkHashed:
		e.ChunkSequence, e.Size, e.SHA256 = c.Chunk.Seq, c.Chunk.Size, c.Chunk.SHA256
		add("offset", strconv.FormatInt(c.Chunk.Offset, 10))
	case c.Chunk != nil:
		e.ChunkSequence = c.Chunk.Seq
	case rule.Sets&(SetHash) != 0:
		e.Size = r.Version.Size
	}
	if rule.Sets&SetHash != 0 {
		e.SHA256 = r.SHA256
	}
	if c.Kind == KindModifiedAfterUpload {
		e.Size, e.SHA256 = r.Version.Size, c.SHA256
	}
	if rule.Sets&CountAttempt != 0 {
		e.Size = r.Version.Size
		add("attempt", strconv.Itoa(r.Attempts))
	}
	if rule.Sets&SetUploadID != 0 {
		add("upload_id", r.UploadID)
	}
	if rule.Sets&SetDue != 0 {
		add("at", c.Due.UTC().Format(time.RFC3339))
		add("reason", c.Reason)
	}
	if c.Landed != nil && rule.Sets&SetLanded != 0 {
		switch c.Kind {
		case KindUploaded:
			// "key=" and the key to the end: the form of every journal.
			e.SHA256 = c.Landed.SHA256
			tok = append(tok, "key="+c.Landed.Key)
		case KindRecordedUploaded, KindRecordedModified:
			e.SHA256 = c.Landed.SHA256
		default:
			add("landed_key", c.Landed.Key)
			add("landed_sha256", c.Landed.SHA256)
		}
	}
	if c.Detail != "" {
		tok = append(tok, c.Detail)
	}
	if rule.Sets&SetError != 0 && rule.Sets&SetDue == 0 {
		if c.Class != "" && c.Kind == KindFailed {
			tok = append(tok, c.Class+": "+c.Reason)
		} else if c.Reason != "" {
			tok = append(tok, c.Reason)
		}
	}
	e.Detail = strings.Join(tok, " ")
	return e
}

// changeOf reads back from an event what the replay needs of its change:
// the values of the columns the replay compares (size, batch, watch,
// sha256, what landed). rule is the rule the event applies by.
func changeOf(e Event, rule *Rule) (*change, error) {
	c := &change{Kind: e.Kind}
	if rule.Sets&SetVersion != 0 {
		st := &Settled{RelPath: e.RelPath, BatchID: e.BatchID, Version: Version{Size: e.Size}}
		st.Watch, _ = detailValue(e.Detail, "watch")
		c.Settled = st
	}
	if rule.Sets&SetHash != 0 {
		c.SHA256 = e.SHA256
	}
	if rule.Sets&SetLanded != 0 {
		switch c.Kind {
		case KindUploaded:
			key, _ := uploadedKey(e.Detail) // "" (not known) when the event does not say
			c.Landed = &Landed{Key: key, SHA256: e.SHA256}
		case KindRecordedUploaded, KindRecordedModified:
			key, _ := detailValue(e.Detail, "key") // "" in journals rebuilt before the key was recorded
			c.Landed = &Landed{Key: key, SHA256: e.SHA256}
		default:
			if sha, ok := detailValue(e.Detail, "landed_sha256"); ok {
				key, _ := detailValue(e.Detail, "landed_key")
				c.Landed = &Landed{Key: key, SHA256: sha}
			}
		}
	}
	return c, nil
}

// uploadedKey reads the key of an uploaded event's detail: "key=" and the
// key as it is, to the end (the form every journal has written).
func uploadedKey(detail string) (string, bool) {
	return strings.CutPrefix(detail, "key=")
}

// Mermaid renders the lifecycle table as a Mermaid stateDiagram (for
// ARCHITECTURE.md; a test keeps the two the same). Kinds that leave a row
// in its state (the steps of an upload, a new version of a queued file)
// are listed in a note beside the state.
func Mermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	type edge struct{ from, to State }
	labels := map[edge][]string{}
	var order []edge
	stay := map[State][]string{}
	var stayOrder []State
	for _, r := range lifecycle {
		for _, f := range r.From {
			if f == r.To {
				if stay[f] == nil {
					stayOrder = append(stayOrder, f)
				}
				if !contains(stay[f], string(r.Kind)) {
					stay[f] = append(stay[f], string(r.Kind))
				}
				continue
			}
			e := edge{f, r.To}
			if labels[e] == nil {
				order = append(order, e)
			}
			if !contains(labels[e], string(r.Kind)) {
				labels[e] = append(labels[e], string(r.Kind))
			}
		}
	}
	name := func(s State) string {
		if s == None {
			return "[*]"
		}
		return string(s)
	}
	for _, e := range order {
		fmt.Fprintf(&b, "    %s --> %s: %s\n", name(e.from), name(e.to), strings.Join(labels[e], ", "))
	}
	for _, s := range stayOrder {
		fmt.Fprintf(&b, "    note right of %s: %s keep it %s\n", s, strings.Join(stay[s], ", "), s)
	}
	return b.String()
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
