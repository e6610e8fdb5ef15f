package journal

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The replay rebuilds, from the event chain alone, what the file-state
// tables say: one model per file (keyed by the events' file_id), so memory
// grows with the number of files, never with the number of events.
//
// What each event does to a file is the lifecycle table's (lifecycle.go):
// the replay looks up the rule for the event's kind and the file's
// replayed state, refuses an event the table does not allow from that
// state, and applies the rule with the values the event carries. Besides,
// it checks what the table cannot: a settled event's previous_state is the
// replayed state, and a file_hashed event counts the chunk_hashed events
// before it (whose digest it keeps, to compare with the chunks table).
//
//	archived    the events up to last_seq were moved to an archive file; the
//	            file_state events right after it carry each file's state at last_seq
//	file_state  one file's replayed state at the archive point (the base of a
//	            chain that starts after an archive; ignored in a stream)
//
// Since settled and recorded_* events begin their detail with
// watch="<root>" (Go-quoted), the replay knows each file's watch root too;
// for older events it stays "" and is not compared. Likewise the key of
// what landed: uploaded events have always named it, recorded_* events
// only since the lifecycle table.

// FileState is one file's state as replayed from the events.
type FileState struct {
	FileID         int64
	Watch          string // "" when the events do not say (older journals)
	RelPath        string
	BatchID        string
	State          State
	Size           int64
	SHA256         string
	Generation     int64
	UploadedSHA256 string
	UploadedKey    string // "" when the events do not say
	Chunks         int    // chunks of the last hashed set
	ChunksDigest   string // ChunkDigest of that set, hex
	LastSeq        int64  // the last event about this file
	LastTime       time.Time

	// the chunk_hashed events seen since the last file_hashed
	pendingN      int
	pendingDigest [sha256.Size]byte
}

// Path is the file's watch root and relative path, or the relative path
// alone when the root is not known.
func (f *FileState) Path() string {
	if f.Watch == "" {
		return f.RelPath
	}
	return strings.TrimSuffix(f.Watch, "/") + "/" + f.RelPath
}

// ChunkDigest folds one chunk into the digest of a set of chunks: the XOR
// of SHA-256("seq offset size sha256") over the chunks, so that the digest
// of a set does not depend on the order chunks are met in.
func ChunkDigest(d *[sha256.Size]byte, seq int, offset, size int64, sha string) {
	s := sha256.Sum256([]byte(fmt.Sprintf("%d %d %d %s", seq, offset, size, sha)))
	for i := range d {
		d[i] ^= s[i]
	}
}

// ArchivePoint is what an archived event records.
type ArchivePoint struct {
	FirstSeq, LastSeq int64
	LastHash          string    // hash of the last archived event
	LastTime          time.Time // time of the last archived event
	Before            time.Time // the archive holds the events before this time
	Count             int64     // events in the archive
	Files             int       // file_state events that follow the archived event
	SHA256            string    // of the archive file
	Name              string    // the archive file's base name
	Seq               int64     // the archived event's own seq
}

// Detail is the archived event's detail.
func (a ArchivePoint) Detail() string {
	return fmt.Sprintf("first_seq=%d last_seq=%d last_hash=%s last_time=%s before=%s count=%d files=%d archive=%s",
		a.FirstSeq, a.LastSeq, a.LastHash, a.LastTime.UTC().Format(time.RFC3339Nano), a.Before.UTC().Format(time.RFC3339Nano),
		a.Count, a.Files, strconv.Quote(a.Name))
}

// ParseArchivePoint reads an archived event.
func ParseArchivePoint(e Event) (ArchivePoint, error) {
	a := ArchivePoint{SHA256: e.SHA256, Seq: e.Seq}
	if e.Kind != KindArchived {
		return a, fmt.Errorf("seq %d: a %s event, not %s", e.Seq, e.Kind, KindArchived)
	}
	var err error
	get := func(k string) string {
		v, ok := detailValue(e.Detail, k)
		if !ok && err == nil {
			err = fmt.Errorf("seq %d: archived event without %s", e.Seq, k)
		}
		return v
	}
	num := func(k string) int64 {
		n, perr := strconv.ParseInt(get(k), 10, 64)
		if perr != nil && err == nil {
			err = fmt.Errorf("seq %d: archived event: bad %s", e.Seq, k)
		}
		return n
	}
	tm := func(k string) time.Time {
		t, perr := time.Parse(time.RFC3339Nano, get(k))
		if perr != nil && err == nil {
			err = fmt.Errorf("seq %d: archived event: bad %s", e.Seq, k)
		}
		return t
	}
	a.FirstSeq, a.LastSeq, a.Count = num("first_seq"), num("last_seq"), num("count")
	a.Files = int(num("files"))
	a.LastHash, a.Name = get("last_hash"), get("archive")
	a.LastTime, a.Before = tm("last_time"), tm("before")
	switch {
	case err != nil:
	case a.FirstSeq < 1 || a.LastSeq < a.FirstSeq || a.Count < 0 || a.Files < 0 || int64(a.Files) != num("files"):
		err = fmt.Errorf("seq %d: archived event: impossible first_seq=%d last_seq=%d count=%d files=%d", e.Seq, a.FirstSeq, a.LastSeq, a.Count, a.Files)
	case !plainWord(a.LastHash) || a.LastHash == "":
		err = fmt.Errorf("seq %d: archived event: last_hash %q is not a hash", e.Seq, a.LastHash)
	}
	return a, err
}

// plainWord reports whether v is written as it is in a detail (one word,
// nothing to quote), as the hashes and states of archived and file_state
// events are: a value that is not cannot have been written by ferry.
func plainWord(v string) bool { return v == "" || detailWord(v) == v }

// FileStateEvent is the file_state event that carries f as the base of a
// chain that continues after an archive.
func FileStateEvent(f *FileState) Event {
	d := fmt.Sprintf("watch=%s state=%s generation=%d uploaded_sha256=%s chunks=%d chunks_digest=%s last_seq=%d last_time=%s uploaded_key=%s",
		strconv.Quote(f.Watch), f.State, f.Generation, f.UploadedSHA256, f.Chunks, f.ChunksDigest, f.LastSeq, f.LastTime.UTC().Format(time.RFC3339Nano),
		strconv.Quote(f.UploadedKey))
	return Event{Kind: KindFileState, FileID: f.FileID, BatchID: f.BatchID, RelPath: f.RelPath, Size: f.Size, SHA256: f.SHA256, Detail: d}
}

func parseFileState(e Event) (*FileState, error) {
	f := &FileState{FileID: e.FileID, BatchID: e.BatchID, RelPath: e.RelPath, Size: e.Size, SHA256: e.SHA256}
	var err error
	get := func(k string) string {
		v, ok := detailValue(e.Detail, k)
		if !ok && err == nil {
			err = fmt.Errorf("seq %d: file_state event without %s", e.Seq, k)
		}
		return v
	}
	f.Watch = get("watch")
	f.State = State(get("state"))
	f.UploadedSHA256 = get("uploaded_sha256")
	f.ChunksDigest = get("chunks_digest")
	f.UploadedKey, _ = detailValue(e.Detail, "uploaded_key") // absent in archives made before the lifecycle table
	var perr error
	if f.Generation, perr = strconv.ParseInt(get("generation"), 10, 64); perr != nil && err == nil {
		err = fmt.Errorf("seq %d: file_state: bad generation", e.Seq)
	}
	if f.Chunks, perr = strconv.Atoi(get("chunks")); perr != nil && err == nil {
		err = fmt.Errorf("seq %d: file_state: bad chunks", e.Seq)
	}
	if f.LastSeq, perr = strconv.ParseInt(get("last_seq"), 10, 64); perr != nil && err == nil {
		err = fmt.Errorf("seq %d: file_state: bad last_seq", e.Seq)
	}
	if f.LastTime, perr = time.Parse(time.RFC3339Nano, get("last_time")); perr != nil && err == nil {
		err = fmt.Errorf("seq %d: file_state: bad last_time", e.Seq)
	}
	switch {
	case err != nil:
	case e.FileID == 0:
		err = fmt.Errorf("seq %d: file_state event without file_id", e.Seq)
	case f.State == None || f.State.Info().State != f.State:
		err = fmt.Errorf("seq %d: file_state: unknown state %q", e.Seq, f.State)
	case !plainWord(f.UploadedSHA256):
		err = fmt.Errorf("seq %d: file_state: uploaded_sha256 %q is not a hash", e.Seq, f.UploadedSHA256)
	case !plainWord(f.ChunksDigest) || f.ChunksDigest == "":
		err = fmt.Errorf("seq %d: file_state: chunks_digest %q is not a hash", e.Seq, f.ChunksDigest)
	case f.Generation < 0 || f.Chunks < 0 || f.LastSeq < 0:
		err = fmt.Errorf("seq %d: file_state: negative generation, chunks or last_seq", e.Seq)
	}
	return f, err
}

// watchDetail is the start of the detail of an event that creates a row.
func watchDetail(watch string) string { return "watch=" + strconv.Quote(watch) }

// detailWord is a value in a detail's key=value tokens: as it is when it is
// one word, Go-quoted otherwise.
func detailWord(v string) string {
	if v == "" || strings.ContainsAny(v, " \"=\t\n") {
		return strconv.Quote(v)
	}
	return v
}

// detailValue finds key=value among the leading key=value tokens of an
// event's detail; a value is either Go-quoted or runs to the next space.
// The first token that is not key=value ends the search (free text).
func detailValue(detail, key string) (string, bool) {
	s := detail
	for s != "" {
		s = strings.TrimLeft(s, " ")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.ContainsAny(s[:eq], " \"") {
			return "", false
		}
		k, rest := s[:eq], s[eq+1:]
		var v string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return "", false
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			sp := strings.IndexByte(rest, ' ')
			if sp < 0 {
				sp = len(rest)
			}
			v, rest = rest[:sp], rest[sp:]
		}
		if k == key {
			return v, true
		}
		s = rest
	}
	return "", false
}

// ReplayError says why events could not be replayed.
type ReplayError struct {
	Seq    int64
	Reason string
}

func (e *ReplayError) Error() string { return fmt.Sprintf("seq %d: %s", e.Seq, e.Reason) }

// Replay is the per-file model built by applying events in chain order.
// Its zero value is not ready: use NewReplay.
type Replay struct {
	files    map[int64]*FileState
	datasets map[string]*DatasetReplay // by watch and path
	base     *ArchivePoint             // the archive point the model started from, if any
	applied  int64
	last     int64
}

// NewReplay starts a replay of a chain from seq 1.
func NewReplay() *Replay {
	return &Replay{files: map[int64]*FileState{}, datasets: map[string]*DatasetReplay{}}
}

// SetBase makes the model start from an archive point: states are the
// file_state events that follow the archived event a. The chain then
// continues at a.LastSeq+1.
func (r *Replay) SetBase(a ArchivePoint, states []Event) error {
	if len(states) != a.Files {
		return &ReplayError{a.Seq, fmt.Sprintf("the archived event announces %d file states, %d follow it", a.Files, len(states))}
	}
	for _, e := range states {
		if e.Kind != KindFileState {
			return &ReplayError{e.Seq, fmt.Sprintf("a %s event where the file states of the archive at seq %d belong", e.Kind, a.Seq)}
		}
		f, err := parseFileState(e)
		if err != nil {
			return err
		}
		r.files[f.FileID] = f
	}
	r.base = &a
	r.last = a.LastSeq
	return nil
}

// Base is the archive point the model started from, or nil.
func (r *Replay) Base() *ArchivePoint { return r.base }

// Applied is the number of events applied.
func (r *Replay) Applied() int64 { return r.applied }

// LastSeq is the seq of the last event applied (or of the base).
func (r *Replay) LastSeq() int64 { return r.last }

// Apply applies the next event of the chain. Events must come in seq
// order; archived and file_state events change no file (a base is set
// with SetBase). An event about a file that no event created (and that
// the base does not hold) is an error: its history is missing; so is an
// event the lifecycle table does not allow from the file's state.
func (r *Replay) Apply(e Event) error {
	if r.last != 0 && e.Seq <= r.last {
		return &ReplayError{e.Seq, fmt.Sprintf("out of order (after seq %d)", r.last)}
	}
	r.applied++
	r.last = e.Seq
	if e.Kind == KindArchived || e.Kind == KindFileState {
		return nil
	}
	if DatasetKind(e.Kind) {
		return r.applyDataset(e)
	}
	if e.FileID == 0 {
		return nil // not about a file
	}
	if !fileKind(e.Kind) {
		return &ReplayError{e.Seq, fmt.Sprintf("unknown event kind %q", e.Kind)}
	}
	f := r.files[e.FileID]
	from := None
	if f != nil {
		from = f.State
	}
	prev, requeue := detailValue(e.Detail, "previous_state")
	switch {
	case f == nil && (rules[e.Kind][None] == nil || requeue):
		return r.missing(e)
	case f != nil && (rules[e.Kind][None] != nil && !requeue):
		return &ReplayError{e.Seq, fmt.Sprintf("file_id %d created again (it was created by seq %d or before)", e.FileID, f.LastSeq)}
	case f != nil && e.Kind == KindSettled && State(prev) != f.State:
		return &ReplayError{e.Seq, fmt.Sprintf("settled says previous_state=%s, the replay has the file %s", prev, f.State)}
	}
	rule, err := ruleFor(e.Kind, from)
	if err != nil {
		return &ReplayError{e.Seq, fmt.Sprintf("file_id %d (%s): %v", e.FileID, e.RelPath, err)}
	}
	c, err := changeOf(e, rule)
	if err != nil {
		return &ReplayError{e.Seq, err.Error()}
	}
	if f == nil {
		f = r.create(e)
	}
	if err := f.hashed(e); err != nil {
		return err
	}
	row := f.row()
	row.apply(rule, c, e.Time.UnixNano())
	f.set(&row)
	f.LastSeq, f.LastTime = e.Seq, e.Time
	return nil
}

// hashed keeps the digest of the chunk_hashed events since the last
// file_hashed, and checks that file_hashed counts them.
func (f *FileState) hashed(e Event) error {
	switch e.Kind {
	case KindChunkHashed:
		off, ok := detailValue(e.Detail, "offset")
		o, err := strconv.ParseInt(off, 10, 64)
		if !ok || err != nil {
			return &ReplayError{e.Seq, "chunk_hashed without offset"}
		}
		ChunkDigest(&f.pendingDigest, e.ChunkSequence, o, e.Size, e.SHA256)
		f.pendingN++
	case KindFileHashed:
		n, _ := detailValue(e.Detail, "chunks")
		if whole, _ := detailValue(e.Detail, "whole"); whole == "true" {
			// The file was read as one chunk, recorded by this event alone.
			if n != "1" || f.pendingN != 0 {
				return &ReplayError{e.Seq, fmt.Sprintf("file_hashed says whole=true with chunks=%s after %d chunk_hashed events: want chunks=1 and none", n, f.pendingN)}
			}
			ChunkDigest(&f.pendingDigest, 1, 0, e.Size, e.SHA256)
			f.pendingN = 1
		}
		if want, err := strconv.Atoi(n); err != nil || want != f.pendingN {
			return &ReplayError{e.Seq, fmt.Sprintf("file_hashed says chunks=%s, %d chunk_hashed events came before it", n, f.pendingN)}
		}
		f.Chunks, f.ChunksDigest = f.pendingN, hex.EncodeToString(f.pendingDigest[:])
		f.pendingN, f.pendingDigest = 0, [sha256.Size]byte{}
	}
	return nil
}

// row is f as a files row, for the lifecycle table to move.
func (f *FileState) row() fileRow {
	return fileRow{File: File{Watch: f.Watch, RelPath: f.RelPath, BatchID: f.BatchID, Version: Version{Size: f.Size}}, ID: f.FileID, State: f.State,
		SHA256: f.SHA256, Generation: f.Generation, UploadedSHA256: f.UploadedSHA256, UploadedKey: f.UploadedKey}
}

// set takes back what the lifecycle table changed. A settled event of a
// journal older than the watch root in its detail keeps the root known.
func (f *FileState) set(r *fileRow) {
	if r.Watch != "" {
		f.Watch = r.Watch
	}
	f.RelPath, f.BatchID, f.State, f.Size = r.RelPath, r.BatchID, r.State, r.Version.Size
	f.SHA256, f.Generation, f.UploadedSHA256, f.UploadedKey = r.SHA256, r.Generation, r.UploadedSHA256, r.UploadedKey
}

func (r *Replay) create(e Event) *FileState {
	f := &FileState{FileID: e.FileID, RelPath: e.RelPath, BatchID: e.BatchID, Size: e.Size,
		ChunksDigest: hex.EncodeToString(make([]byte, sha256.Size))}
	r.files[e.FileID] = f
	return f
}

func (r *Replay) missing(e Event) error {
	return &ReplayError{e.Seq, fmt.Sprintf("%s event for file_id %d (%s), which no earlier event created: its history is missing", e.Kind, e.FileID, e.RelPath)}
}

// Files returns the replayed files, ordered by file id.
func (r *Replay) Files() []*FileState {
	out := make([]*FileState, 0, len(r.files))
	for _, f := range r.files {
		out = append(out, f)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].FileID < out[b].FileID })
	return out
}

// File returns one replayed file, or nil.
func (r *Replay) File(id int64) *FileState { return r.files[id] }
