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
// Which event does what to a file's row (journal/files.go):
//
//	settled            new row (no previous_state in detail): generation 1, queued;
//	                   a new version (previous_state=S): generation+1, sha256 cleared,
//	                   uploading if S was uploading, else queued; size and batch_id set
//	recorded_uploaded  new row, uploaded, sha256 = uploaded_sha256 = the event's sha256
//	recorded_modified  new row, queued, uploaded_sha256 = the event's sha256
//	claimed            uploading
//	chunk_hashed       one chunk of the next file_hashed set
//	file_hashed        sha256 set; the chunks are those hashed since the last file_hashed
//	uploaded           uploaded, sha256 = uploaded_sha256 = the event's sha256
//	ignored            ignored, sha256 = the event's sha256
//	failed             failed
//	interrupted, superseded, retry_scheduled, released, dlq_retry: queued
//	source_changed     changed
//	dlq_drop           dropped
//	multipart_created, chunk_acked, modified_after_upload: no change to what is replayed
//	archived           the events up to last_seq were moved to an archive file; the
//	                   file_state events right after it carry each file's state at last_seq
//	file_state         one file's replayed state at the archive point (the base of a
//	                   chain that starts after an archive; ignored in a stream)
//
// Since settled and recorded_* events begin their detail with
// watch="<root>" (Go-quoted), the replay knows each file's watch root too;
// for older events it stays "" and is not compared.

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
	return a, err
}

// Event kinds of archiving.
const (
	KindArchived  = "archived"
	KindFileState = "file_state"
)

// FileStateEvent is the file_state event that carries f as the base of a
// chain that continues after an archive.
func FileStateEvent(f *FileState) Event {
	d := fmt.Sprintf("watch=%s state=%s generation=%d uploaded_sha256=%s chunks=%d chunks_digest=%s last_seq=%d last_time=%s",
		strconv.Quote(f.Watch), f.State, f.Generation, f.UploadedSHA256, f.Chunks, f.ChunksDigest, f.LastSeq, f.LastTime.UTC().Format(time.RFC3339Nano))
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
	if e.FileID == 0 && err == nil {
		err = fmt.Errorf("seq %d: file_state event without file_id", e.Seq)
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
	files   map[int64]*FileState
	base    *ArchivePoint // the archive point the model started from, if any
	applied int64
	last    int64
}

// NewReplay starts a replay of a chain from seq 1.
func NewReplay() *Replay { return &Replay{files: map[int64]*FileState{}} }

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
// the base does not hold) is an error: its history is missing.
func (r *Replay) Apply(e Event) error {
	if r.last != 0 && e.Seq <= r.last {
		return &ReplayError{e.Seq, fmt.Sprintf("out of order (after seq %d)", r.last)}
	}
	r.applied++
	r.last = e.Seq
	if e.Kind == KindArchived || e.Kind == KindFileState {
		return nil
	}
	if e.FileID == 0 {
		return nil // not about a file
	}
	f := r.files[e.FileID]
	switch e.Kind {
	case "settled":
		prev, requeue := detailValue(e.Detail, "previous_state")
		if !requeue {
			if f != nil {
				return &ReplayError{e.Seq, fmt.Sprintf("file_id %d created again (it was created by seq %d or before)", e.FileID, f.LastSeq)}
			}
			f = r.create(e)
			f.State = Queued
			break
		}
		if f == nil {
			return r.missing(e)
		}
		f.Generation++
		f.State = Queued
		if State(prev) == Uploading {
			f.State = Uploading
		}
		f.SHA256 = ""
		f.Size, f.BatchID = e.Size, e.BatchID
		if w, ok := detailValue(e.Detail, "watch"); ok {
			f.Watch = w
		}
	case "recorded_uploaded", "recorded_modified":
		if f != nil {
			return &ReplayError{e.Seq, fmt.Sprintf("file_id %d created again (it was created by seq %d or before)", e.FileID, f.LastSeq)}
		}
		f = r.create(e)
		f.UploadedSHA256 = e.SHA256
		f.State = Queued
		if e.Kind == "recorded_uploaded" {
			f.State, f.SHA256 = Uploaded, e.SHA256
		}
	default:
		if f == nil {
			if !knownKind(e.Kind) {
				return &ReplayError{e.Seq, fmt.Sprintf("unknown event kind %q", e.Kind)}
			}
			return r.missing(e)
		}
		if err := r.transition(f, e); err != nil {
			return err
		}
	}
	f.LastSeq, f.LastTime = e.Seq, e.Time
	return nil
}

func knownKind(k string) bool {
	switch k {
	case "claimed", "chunk_hashed", "file_hashed", "multipart_created", "chunk_acked", "modified_after_upload",
		"uploaded", "ignored", "failed", "interrupted", "superseded", "retry_scheduled", "released",
		"dlq_retry", "dlq_drop", "source_changed":
		return true
	}
	return false
}

func (r *Replay) transition(f *FileState, e Event) error {
	switch e.Kind {
	case "claimed":
		f.State = Uploading
	case "chunk_hashed":
		off, ok := detailValue(e.Detail, "offset")
		o, err := strconv.ParseInt(off, 10, 64)
		if !ok || err != nil {
			return &ReplayError{e.Seq, "chunk_hashed without offset"}
		}
		ChunkDigest(&f.pendingDigest, e.ChunkSequence, o, e.Size, e.SHA256)
		f.pendingN++
	case "file_hashed":
		n, _ := detailValue(e.Detail, "chunks")
		if want, err := strconv.Atoi(n); err != nil || want != f.pendingN {
			return &ReplayError{e.Seq, fmt.Sprintf("file_hashed says chunks=%s, %d chunk_hashed events came before it", n, f.pendingN)}
		}
		f.SHA256 = e.SHA256
		f.Chunks, f.ChunksDigest = f.pendingN, hex.EncodeToString(f.pendingDigest[:])
		f.pendingN, f.pendingDigest = 0, [sha256.Size]byte{}
	case "uploaded":
		f.State, f.SHA256, f.UploadedSHA256 = Uploaded, e.SHA256, e.SHA256
	case "ignored":
		f.State, f.SHA256 = Ignored, e.SHA256
	case "failed":
		f.State = Failed
	case "interrupted", "superseded", "retry_scheduled", "released", "dlq_retry":
		f.State = Queued
	case "source_changed":
		f.State = Changed
	case "dlq_drop":
		f.State = Dropped
	case "multipart_created", "chunk_acked", "modified_after_upload":
	default:
		return &ReplayError{e.Seq, fmt.Sprintf("unknown event kind %q", e.Kind)}
	}
	return nil
}

func (r *Replay) create(e Event) *FileState {
	f := &FileState{FileID: e.FileID, RelPath: e.RelPath, BatchID: e.BatchID, Size: e.Size, Generation: 1,
		ChunksDigest: hex.EncodeToString(make([]byte, sha256.Size))}
	f.Watch, _ = detailValue(e.Detail, "watch")
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
