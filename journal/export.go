package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EventFilter selects events. Zero fields select everything.
type EventFilter struct {
	Since, Until time.Time // inclusive bounds on the event time
	BatchID      string
}

// timeRange is f's time bounds as a WHERE clause, widened by a second on
// each side: stored times are RFC 3339 strings whose trimmed fractions do
// not compare exactly as text; within then decides on the parsed time.
func (f EventFilter) timeRange() (where []string, args []any) {
	if !f.Since.IsZero() {
		where = append(where, `time >= ?`)
		args = append(args, f.Since.UTC().Add(-time.Second).Format(time.RFC3339))
	}
	if !f.Until.IsZero() {
		where = append(where, `time <= ?`)
		args = append(args, f.Until.UTC().Add(time.Second).Format(time.RFC3339Nano))
	}
	return where, args
}

// within says whether t is inside f's time bounds.
func (f EventFilter) within(t time.Time) bool {
	return (f.Since.IsZero() || !t.Before(f.Since)) && (f.Until.IsZero() || !t.After(f.Until))
}

// Events calls fn for each selected event, in seq order, streaming: memory
// does not grow with the number of events.
func (j *Journal) Events(ctx context.Context, f EventFilter, fn func(Event) error) error {
	where, args := f.timeRange()
	if f.BatchID != "" {
		where = append(where, `batch_id = ?`)
		args = append(args, f.BatchID)
	}
	return scanEvents(ctx, j.r, strings.Join(where, ` AND `), args, func(e Event) error {
		if !f.within(e.Time) {
			return nil
		}
		return fn(e)
	})
}

// ChainError names the first event that breaks a chain.
type ChainError struct {
	Seq    int64
	Reason string
}

func (e *ChainError) Error() string { return fmt.Sprintf("seq %d: %s", e.Seq, e.Reason) }

// link is what a verifier of either chain keeps: the seq and prev_hash the
// next entry must carry. One made for an export (fromExport) takes its
// first entry's as given, so that a range export verifies on its own, as
// long as they could start a chain: a seq from 1, a prev_hash that is a
// hash, the log's genesis at seq 1.
type link struct {
	prev       string
	want       int64
	fromExport bool
	genesis    string // of an export's log
	n          int64
}

// check verifies the next entry of a chain: its seq, its prev_hash, and
// its hash against computed (the hash of its fields). noun names the
// entries in errors ("event", "audit record"), seqName their seq.
func (l *link) check(seq int64, prevHash, hash, computed, seqName, noun string) error {
	if l.fromExport && l.n == 0 {
		switch {
		case seq < 1:
			return &ChainError{seq, fmt.Sprintf("a chain starts at %s 1", seqName)}
		case !isChainHash(prevHash):
			return &ChainError{seq, "prev_hash is not a hash (64 lowercase hex digits)"}
		case seq == 1 && prevHash != l.genesis:
			return &ChainError{seq, fmt.Sprintf("the first %s's prev_hash is not the genesis hash", noun)}
		}
		l.prev, l.want = prevHash, seq
	}
	switch {
	case seq != l.want:
		return &ChainError{seq, fmt.Sprintf("expected %s %d (%s was deleted, inserted or reordered)", seqName, l.want, article(noun))}
	case prevHash != l.prev:
		return &ChainError{seq, fmt.Sprintf("prev_hash does not match the previous %s's hash", noun)}
	case computed != hash:
		return &ChainError{seq, fmt.Sprintf("hash does not match the %s's fields (the %s was edited)", noun, noun)}
	}
	l.prev, l.want = hash, seq+1
	l.n++
	return nil
}

// isChainHash reports whether s is a hash as the chains write them: 64
// lowercase hex digits.
func isChainHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func article(noun string) string {
	if strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

// Count is the number of entries checked.
func (l *link) Count() int64 { return l.n }

// Last is the hash of the last entry checked (the chain's tail).
func (l *link) Last() string { return l.prev }

// ChainVerifier checks events, in order, against the hash chain: from the
// genesis (NewChainVerifier), from an archive point (LiveVerifier), or from
// wherever an export starts (NewRangeVerifier).
type ChainVerifier struct{ link }

// NewChainVerifier checks a whole chain from seq 1.
func NewChainVerifier() *ChainVerifier { return &ChainVerifier{link{prev: GenesisHash, want: 1}} }

// NewRangeVerifier checks a chain that may start anywhere.
func NewRangeVerifier() *ChainVerifier {
	return &ChainVerifier{link{fromExport: true, genesis: GenesisHash}}
}

// Check verifies the next event.
func (v *ChainVerifier) Check(e Event) error {
	return v.check(e.Seq, e.PrevHash, e.Hash, EventHash(e), "seq", "event")
}

// VerifyChain recomputes the event chain from the start (or from the
// archive point it continues, see LiveVerifier) and returns the number of
// events checked, or a *ChainError naming the first bad seq.
func (j *Journal) VerifyChain(ctx context.Context) (int64, error) {
	v, err := j.LiveVerifier(ctx)
	if err != nil {
		return 0, err
	}
	err = j.Events(ctx, EventFilter{}, v.Check)
	return v.Count(), err
}

// eventJSON is the export form of an event: every field, with absent
// numbers as null, so that an export verifies on its own.
type eventJSON struct {
	Seq           int64  `json:"seq"`
	Time          string `json:"time"`
	Kind          string `json:"kind"`
	FileID        *int64 `json:"file_id"`
	CorrelationID string `json:"correlation_id"`
	BatchID       string `json:"batch_id"`
	ChunkSequence *int   `json:"chunk_sequence"`
	// Only when set (events about a file of a dataset with metadata).
	SchemaVersion    string `json:"schema_version,omitempty"`
	ValidationStatus string `json:"validation_status,omitempty"`
	RelPath          string `json:"rel_path"`
	Size             *int64 `json:"size"`
	SHA256           string `json:"sha256"`
	Detail           string `json:"detail"`
	PrevHash         string `json:"prev_hash"`
	Hash             string `json:"hash"`
}

// ExportColumns are the fields of an exported event, in order (the CSV
// header).
var ExportColumns = []string{"seq", "time", "kind", "file_id", "correlation_id", "batch_id", "chunk_sequence", "rel_path", "size", "sha256", "detail", "prev_hash", "hash",
	"schema_version", "validation_status"}

// MarshalJSON writes the export form.
func (e Event) MarshalJSON() ([]byte, error) {
	x := eventJSON{Seq: e.Seq, Time: e.Time.UTC().Format(time.RFC3339Nano), Kind: string(e.Kind), CorrelationID: e.CorrelationID,
		BatchID: e.BatchID, SchemaVersion: e.SchemaVersion, ValidationStatus: e.ValidationStatus, RelPath: e.RelPath, SHA256: e.SHA256, Detail: e.Detail,
		PrevHash: e.PrevHash, Hash: e.Hash}
	if e.FileID != 0 {
		x.FileID = &e.FileID
	}
	if e.ChunkSequence != 0 {
		x.ChunkSequence = &e.ChunkSequence
	}
	if e.Size >= 0 {
		x.Size = &e.Size
	}
	return json.Marshal(x)
}

// UnmarshalJSON reads the export form.
func (e *Event) UnmarshalJSON(b []byte) error {
	var x eventJSON
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, x.Time)
	if err != nil {
		return fmt.Errorf("seq %d: bad time %q", x.Seq, x.Time)
	}
	*e = Event{Seq: x.Seq, Time: t, Kind: Kind(x.Kind), CorrelationID: x.CorrelationID, BatchID: x.BatchID,
		SchemaVersion: x.SchemaVersion, ValidationStatus: x.ValidationStatus, RelPath: x.RelPath,
		Size: -1, SHA256: x.SHA256, Detail: x.Detail, PrevHash: x.PrevHash, Hash: x.Hash}
	if x.FileID != nil {
		e.FileID = *x.FileID
	}
	if x.ChunkSequence != nil {
		e.ChunkSequence = *x.ChunkSequence
	}
	if x.Size != nil {
		e.Size = *x.Size
	}
	return exportForm(b, e.MarshalJSON, x.Seq)
}

// exportForm checks that b, a line read as an export entry, is exactly the
// line the export writes for that entry (marshal). Anything else reads as
// something other than what a reader of the file sees, yet hashes the
// same: a key in another case or twice (encoding/json takes either), a
// field added (not hashed) or left out (read as zero), a time in another
// zone, a file_id of 0 or a negative size (hashed as absent), text that is
// not UTF-8 or a lone surrogate (read as U+FFFD).
func exportForm(b []byte, marshal func() ([]byte, error), seq int64) error {
	want, err := marshal()
	if err != nil {
		return err
	}
	if bytes.Equal(b, want) {
		return nil
	}
	i := 0
	for i < len(b) && i < len(want) && b[i] == want[i] {
		i++
	}
	excerpt := func(s []byte) string { return string(s[max(i-20, 0):min(i+20, len(s))]) }
	return fmt.Errorf("seq %d: not as the export writes it: at byte %d, %q where the export has %q", seq, i+1, excerpt(b), excerpt(want))
}

// CSVRecord is the export form of an event as CSV fields (ExportColumns).
func (e Event) CSVRecord() []string {
	num := func(v int64, ok bool) string {
		if !ok {
			return ""
		}
		return strconv.FormatInt(v, 10)
	}
	return []string{strconv.FormatInt(e.Seq, 10), e.Time.UTC().Format(time.RFC3339Nano), string(e.Kind), num(e.FileID, e.FileID != 0),
		e.CorrelationID, e.BatchID, num(int64(e.ChunkSequence), e.ChunkSequence != 0), e.RelPath, num(e.Size, e.Size >= 0),
		e.SHA256, e.Detail, e.PrevHash, e.Hash, e.SchemaVersion, e.ValidationStatus}
}
