package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CheckpointFormat names the layout of a checkpoint object (AUDIT.md).
const CheckpointFormat = "ferry-checkpoint/1"

// Checkpoint anchors both chains against truncation: the tail (seq and
// hash) of the event chain and of the audit chain at an instant. A copy
// kept elsewhere (ferry uploads one to every target) lets a later verify
// tell a chain whose tail was cut from an intact one. Its JSON form is the
// checkpoint object.
type Checkpoint struct {
	Format       string    `json:"format"`     // CheckpointFormat
	JournalID    string    `json:"journal_id"` // hash of the journal's first audit record
	EventSeq     int64     `json:"event_seq"`  // 0 when no event yet
	EventHash    string    `json:"event_hash"` // GenesisHash when no event yet
	AuditSeq     int64     `json:"audit_seq"`  // the checkpoint's own audit record
	AuditHash    string    `json:"audit_hash"`
	Time         time.Time `json:"time"` // UTC
	Host         string    `json:"host"`
	FerryVersion string    `json:"ferry_version"`
}

// Checkpoint records a checkpoint of both chains in the audit log (kind
// "checkpoint", Subject host, Detail the event tail) and returns it; its
// audit tail is that record. When nothing was appended to either chain
// since the last checkpoint this journal took, that one is returned again
// and nothing is written.
func (j *Journal) Checkpoint(ctx context.Context, host, version string) (Checkpoint, error) {
	var cp Checkpoint
	err := j.do(ctx, func(t *Tx) error {
		if last := j.lastCheckpoint; last != nil && last.EventSeq == t.chain.seq && last.AuditSeq == t.auditTail.seq {
			cp = *last
			return nil
		}
		if j.journalID == "" {
			if err := t.queryRow(`SELECT hash FROM audit WHERE seq = 1`).Scan(&j.journalID); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		cp = Checkpoint{Format: CheckpointFormat, EventSeq: t.chain.seq, EventHash: t.chain.hash, Time: t.now.UTC(), Host: host, FerryVersion: version}
		if cp.EventHash == "" {
			cp.EventHash = GenesisHash
		}
		r, err := t.audit(AuditRecord{Kind: AuditCheckpoint, FerryVersion: version, Subject: host,
			Detail: fmt.Sprintf("event_seq=%d event_hash=%s", cp.EventSeq, cp.EventHash)})
		if err != nil {
			return err
		}
		if j.journalID == "" { // the first audit record is this one
			j.journalID = r.Hash
		}
		cp.JournalID, cp.AuditSeq, cp.AuditHash = j.journalID, r.Seq, r.Hash
		c := cp
		t.onCommit = append(t.onCommit, func() { j.lastCheckpoint = &c })
		return nil
	})
	return cp, err
}

// EventsCheckpointed reports whether the latest checkpoint in the audit
// log anchors the event chain's tail as it is now: no event was appended
// since (by a process that stopped without its final checkpoint, or by
// ferry dlq). A starting daemon then need not take one at once.
func (j *Journal) EventsCheckpointed(ctx context.Context) (bool, error) {
	var detail string
	err := j.r.QueryRowContext(ctx, `SELECT detail FROM audit WHERE kind = ? ORDER BY seq DESC LIMIT 1`, AuditCheckpoint).Scan(&detail)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	var tail int64
	if err := j.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&tail); err != nil {
		return false, err
	}
	var seq int64
	var hash string
	if _, err := fmt.Sscanf(detail, "event_seq=%d event_hash=%s", &seq, &hash); err != nil {
		return false, nil // not one ferry wrote: take a new one
	}
	return seq == tail, nil
}

// JournalID identifies the journal: the hash of its first audit record
// (written when the journal was created or first opened by a ferry with
// an audit log). "" before there is one.
func (j *Journal) JournalID(ctx context.Context) (string, error) {
	var id string
	err := j.r.QueryRowContext(ctx, `SELECT hash FROM audit WHERE seq = 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// MatchCheckpoint checks that this journal still holds what cp anchored:
// the event with cp's event seq and hash, and the audit record with cp's
// audit seq and hash. A chain shorter than the checkpoint (its tail was
// cut) or different at that seq is a *ChainError naming the seq. It does
// not verify the chains themselves (VerifyChain, VerifyAudit).
func (j *Journal) MatchCheckpoint(ctx context.Context, cp Checkpoint) error {
	id, err := j.JournalID(ctx)
	if err != nil {
		return err
	}
	if cp.JournalID != id {
		return fmt.Errorf("the checkpoint of %s belongs to another journal (id %s, this one is %q): this journal was replaced or rebuilt",
			cp.Time.UTC().Format(time.RFC3339), cp.JournalID, id)
	}
	check := func(log, table string, seq int64, want string) error {
		if seq == 0 {
			return nil
		}
		var hash string
		err := j.r.QueryRowContext(ctx, `SELECT hash FROM `+table+` WHERE seq = ?`, seq).Scan(&hash)
		if errors.Is(err, sql.ErrNoRows) {
			var last int64
			j.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM `+table).Scan(&last)
			return &ChainError{seq, fmt.Sprintf("the %s chain ends at seq %d, but the checkpoint of %s names seq %d: the chain was truncated",
				log, last, cp.Time.UTC().Format(time.RFC3339), seq)}
		}
		if err != nil {
			return err
		}
		if hash != want {
			return &ChainError{seq, fmt.Sprintf("the %s chain differs from the checkpoint of %s at this seq (hash %s, checkpoint %s)",
				log, cp.Time.UTC().Format(time.RFC3339), hash, want)}
		}
		return nil
	}
	if err := check("event", "events", cp.EventSeq, cp.EventHash); err != nil {
		return err
	}
	return check("audit", "audit", cp.AuditSeq, cp.AuditHash)
}

// BatchCompleted returns a new subscription that receives (coalesced: at
// most one waits) after a transaction made a batch complete: a file became
// uploaded and no other file of its batch_id is still waiting (queued,
// uploading or changed). Each caller (the checkpointer, the dataset loop)
// subscribes once and keeps its channel.
func (j *Journal) BatchCompleted() <-chan struct{} {
	ch := make(chan struct{}, 1)
	j.batchMu.Lock()
	j.batchSubs = append(j.batchSubs, ch)
	j.batchMu.Unlock()
	return ch
}

func (j *Journal) nudgeBatch() {
	j.batchMu.Lock()
	defer j.batchMu.Unlock()
	for _, ch := range j.batchSubs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
