package uploader

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/retry"
)

// outcome is where a job stands: going on (end ""), or decided, with the
// kind of the journal event that will end it (a rule of the lifecycle
// table, journal/lifecycle.go) and what that event records. The worker
// does not decide states: it names the end, and the journal's table says
// what the end does to the row.
type outcome struct {
	end   journal.Kind
	err   error  // failed, retry_scheduled: the failure
	class string // failed: its class
	why   string // source_changed, vanished: what was seen
	// own, from a create-only write that found its key taken: the object
	// there is one an earlier attempt of this file put (its end was lost
	// to a crash), not a stranger's. The caller plans again with it as
	// what landed.
	own *journal.Landed
}

// going reports whether the job goes on (no end decided yet).
func (o outcome) going() bool { return o.end == "" && o.own == nil }

// Error classes recorded with failed files.
const (
	ClassDenied     = "permission_denied"
	ClassInvalidKey = "invalid_key"
	ClassPermanent  = "permanent"
	ClassVerify     = "verify_failed"
	ClassNoTarget   = "unknown_target"
	ClassConflict   = "conflict"
)

func permanent(class string, err error) outcome {
	return outcome{end: journal.KindFailed, err: err, class: class}
}

func transient(err error) outcome { return outcome{end: journal.KindRetryScheduled, err: err} }

func changed(why string) outcome { return outcome{end: journal.KindSourceChanged, why: why} }

func vanished(why string) outcome { return outcome{end: journal.KindVanished, why: why} }

// uploaded ends the job with its content on the target (where w.landed
// says).
var uploaded = outcome{end: journal.KindUploaded}

func classifyOpen(err error) outcome {
	switch {
	case srcfile.IsVanished(err):
		return vanished(fmt.Sprintf("source file vanished: %v", err))
	case errors.Is(err, srcfile.ErrNotRegular):
		return vanished(err.Error())
	case srcfile.IsDenied(err):
		return permanent(ClassDenied, err)
	}
	return transient(err)
}

func classifySink(err error) outcome {
	if sink.IsPermanent(err) {
		return permanent(ClassPermanent, err)
	}
	return transient(err)
}

// ends says, for each end, how the worker logs it (uploaded is logged by
// the finisher, once durable).
var ends = map[journal.Kind]struct {
	level slog.Level
	msg   string
}{
	journal.KindReleased:       {slog.LevelInfo, "upload interrupted by shutdown; the file stays queued"},
	journal.KindIgnored:        {slog.LevelInfo, "modified after upload; on_change = ignore leaves the target's copy as it is"},
	journal.KindSourceChanged:  {slog.LevelWarn, "source changed during upload; it will be uploaded again once it settles"},
	journal.KindVanished:       {slog.LevelWarn, "source file deleted or renamed before its upload ended; nothing more to send for it"},
	journal.KindFailed:         {slog.LevelError, "upload failed permanently"},
	journal.KindRetryScheduled: {slog.LevelWarn, "upload failed; retrying later"},
}

func (w *worker) run(ctx context.Context, tk task) {
	u := w.u
	jb := tk.jb
	w.gate = nil
	if t := u.o.Targets[jb.Target]; t != nil {
		w.gate = t.Gate()
	}
	w.landed = nil
	log := u.log.With("correlation_id", jb.CorrelationID, "batch_id", jb.BatchID, "path", jb.RelPath, "target", jb.Target)
	if jb.ValidationStatus != "" || jb.SchemaVersion != "" {
		// The file's dataset has metadata: its log lines say how it
		// validated, and the object carries it (S3 user metadata).
		log = log.With("schema_version", jb.SchemaVersion, "validation_status", jb.ValidationStatus)
		ctx = sink.WithObjectMetadata(ctx, map[string]string{"validation-status": jb.ValidationStatus, "schema-version": jb.SchemaVersion})
	}
	// Every call on the target passes its decorators (uploader/target);
	// they log with the file's attributes, and report its progress and
	// failures to this worker.
	ctx = sink.WithCall(ctx, sink.CallInfo{Log: log, Progress: w.progress, Chunk: true, Failed: func(_ string, err error) { w.failed(ClassTransient, err) }})
	start := u.o.Now()
	w.slot.start(&Progress{Watch: jb.Watch, Path: jb.RelPath, Target: jb.Target, Key: jb.Key, Size: jb.Version.Size, StartedAt: start})
	defer w.slot.end()
	var sum string
	var out outcome
	if tk.body != nil {
		sum, out = w.sendPreloaded(ctx, &jb, tk.body, tk.sum, log)
	} else {
		select {
		case w.buf = <-u.bufs:
			sum, out = w.upload(ctx, &jb, log)
			if int64(cap(w.buf)) > u.o.ChunkSize {
				w.buf = nil // a large part's buffer (PartSize) goes, the pool keeps chunks
			}
			u.bufs <- w.buf
			w.buf = nil
		case <-ctx.Done():
			out = transient(ctx.Err())
		}
	}
	end := journal.End{Kind: out.end, SHA256: sum, Class: out.class, Reason: out.why, Landed: w.landed}
	switch {
	case out.end == "" || out.end == journal.KindUploaded:
		end.Kind = journal.KindUploaded
	case (out.end == journal.KindRetryScheduled || out.end == journal.KindFailed) && (ctx.Err() != nil || errors.Is(out.err, sink.ErrUnavailable)):
		// Not the file's failure: the daemon stops, or the target is
		// unreachable and its breaker open. Back to the queue, unpenalised.
		end.Kind, end.Class = journal.KindReleased, ""
		if ctx.Err() == nil {
			end.Detail = "target unreachable (circuit breaker open)"
		}
	}
	fctx, cancel := finishCtx()
	defer cancel()
	if end.Kind == journal.KindUploaded && end.Landed == nil {
		// Every path to success records where the content landed; one
		// that does not is a bug, and the file is tried again rather than
		// recorded uploaded without its key.
		out = transient(errors.New("internal error: upload ended without recording where it landed"))
		end = journal.End{Kind: journal.KindRetryScheduled}
	}
	if end.Kind == journal.KindUploaded {
		w.completions <- completion{done: u.o.Journal.FinishAsync(fctx, &jb, end), jb: jb, key: end.Landed.Key, sum: sum, start: start, log: log}
		return
	}
	attrs := []any{}
	switch end.Kind {
	case journal.KindFailed:
		end.Reason = out.err.Error()
		attrs = append(attrs, "error_class", out.class, "error", end.Reason, "attempt", jb.Attempts)
		w.failed(out.class, out.err)
		u.Stats.Failed.Add(1)
	case journal.KindRetryScheduled:
		d := requeueDelay(jb.Attempts, retry.FullJitter)
		end.Class, end.Reason, end.Due = ClassTransient, out.err.Error(), u.o.Now().Add(d)
		attrs = append(attrs, "error", end.Reason, "attempt", jb.Attempts, "retry_in", d.Round(time.Second).String())
		w.failed(ClassTransient, out.err)
		u.Stats.Retried.Add(1)
	case journal.KindSourceChanged, journal.KindVanished:
		attrs = append(attrs, "reason", out.why)
	case journal.KindIgnored:
		attrs = append(attrs, "sha256", sum)
	}
	if w.landed != nil {
		attrs = append(attrs, "landed_key", w.landed.Key, "landed_sha256", w.landed.SHA256)
	}
	how := ends[end.Kind]
	switch {
	case end.Detail != "":
		// The breaker's state is logged once by the gate; each file
		// going back is a detail.
		log.Debug("target unreachable (circuit breaker open); the file goes back to the queue")
	case end.Kind == journal.KindRetryScheduled && w.gate != nil && w.gate.Failing():
		// The target's trouble is logged once (see trouble); each file
		// going back to the queue is a state change of its own, at Info.
		log.Info(how.msg, attrs...)
	default:
		log.Log(fctx, how.level, how.msg, attrs...)
	}
	err := u.o.Journal.Finish(fctx, &jb, end)
	if errors.Is(err, journal.ErrStale) {
		log.Info("a newer version of the file settled during the upload; it is queued again")
	} else if err != nil {
		log.Error("could not journal the end of an upload; it will be retried after restart", "error", err)
	}
	u.Notify()
}

// upload sends one file and returns its hex SHA-256.
func (w *worker) upload(ctx context.Context, jb *journal.Job, log *slog.Logger) (string, outcome) {
	u := w.u
	t := u.o.Targets[jb.Target]
	if t == nil {
		return "", permanent(ClassNoTarget, fmt.Errorf("no target named %q in the configuration", jb.Target))
	}
	s := t.Sink()
	path := filepath.Join(jb.Watch, filepath.FromSlash(jb.RelPath))
	f, err := srcfile.Open(path)
	if err != nil {
		out := classifyOpen(err)
		w.dropKept(s, jb, out, log)
		return "", out
	}
	defer f.Close()
	if out := w.recheck(f, path, jb); !out.going() {
		w.dropKept(s, jb, out, log)
		return "", out
	}
	if jb.Version.Size <= u.o.ChunkSize {
		if jb.UploadID != "" {
			// An earlier version of the file was being sent in parts.
			w.abort(s, jb, jb.UploadID, log)
		}
		return w.single(ctx, s, f, path, jb, log)
	}
	return w.multipart(ctx, s, f, path, jb, log)
}

// versionOf is the journal's form of a file version.
func versionOf(st srcfile.Stat) journal.Version {
	return journal.Version{Size: st.Size, MtimeNS: st.ModTime.UnixNano(), FileID: st.ID.String()}
}

// mismatch says how v differs from the job's version, or "" when it does not.
func mismatch(what string, v journal.Version, jb *journal.Job) string {
	if v == jb.Version {
		return ""
	}
	return fmt.Sprintf("%s: size %d mtime %d id %s, settled as size %d mtime %d id %s", what,
		v.Size, v.MtimeNS, v.FileID, jb.Version.Size, jb.Version.MtimeNS, jb.Version.FileID)
}

// recheck looks at the source again: the path first (a file deleted or
// renamed away has vanished: nothing more will come for this path), then
// the open file and the path against the job's version (a mismatch means
// the source changed). It returns a going outcome when all is as settled.
func (w *worker) recheck(f *os.File, path string, jb *journal.Job) outcome {
	pst, perr := srcfile.Lstat(path)
	if perr != nil && (srcfile.IsVanished(perr) || errors.Is(perr, srcfile.ErrNotRegular)) {
		return vanished(fmt.Sprintf("path: %v", perr))
	}
	if f != nil {
		st, err := srcfile.FileStat(f)
		if err != nil {
			return changed(fmt.Sprintf("open file: %v", err))
		}
		if why := mismatch("open file", versionOf(st), jb); why != "" {
			return changed(why)
		}
	}
	if perr != nil {
		return changed(fmt.Sprintf("path: %v", perr))
	}
	if why := mismatch("path", versionOf(pst), jb); why != "" {
		return changed(why)
	}
	return outcome{}
}

// progress counts the body bytes of the worker's calls that succeeded.
func (w *worker) progress(n int64) {
	w.slot.done.Add(n)
	w.u.Stats.meter.add(w.u.o.Now(), n)
}

// readChunkAt fills buf from f at off; a short read means the file shrank
// after it settled.
func readChunkAt(f *os.File, buf []byte, off int64) outcome {
	n, err := f.ReadAt(buf, off)
	switch {
	case n == len(buf):
		return outcome{}
	case err == nil || errors.Is(err, io.EOF):
		return changed("file shrank while being read")
	}
	return classifyOpen(err)
}

func (w *worker) single(ctx context.Context, s sink.Sink, f *os.File, path string, jb *journal.Job, log *slog.Logger) (string, outcome) {
	buf := w.buffer(jb.Version.Size)
	if out := readChunkAt(f, buf, 0); !out.going() {
		return "", out
	}
	sum := sink.Digest(sha256.Sum256(buf))
	hexSum := sum.Hex()
	if out := w.recheck(f, path, jb); !out.going() {
		return "", out
	}
	if err := w.u.o.Journal.RecordHashes(ctx, jb, hexSum, []journal.Chunk{{Seq: 1, Size: jb.Version.Size, SHA256: hexSum}}); err != nil {
		return "", transient(fmt.Errorf("journal: %w", err))
	}
	if out := w.whole(ctx, s, jb, buf, sum, log); !out.going() {
		return hexSum, out
	}
	// Put returns nil only once the target confirmed the bytes against
	// their SHA-256 (see sink.Sink): that is the verification of what
	// landed. The source gets its last look.
	if out := w.recheck(f, path, jb); !out.going() {
		return hexSum, out
	}
	return hexSum, outcome{}
}

// sendPreloaded sends a small file the dispatcher read and journaled.
func (w *worker) sendPreloaded(ctx context.Context, jb *journal.Job, body []byte, sum sink.Digest, log *slog.Logger) (string, outcome) {
	s := w.u.o.Targets[jb.Target].Sink()
	hexSum := sum.Hex()
	if out := w.whole(ctx, s, jb, body, sum, log); !out.going() {
		return hexSum, out
	}
	// The bytes sent were the job's version when read; the path must still
	// be that version now.
	return hexSum, w.recheck(nil, filepath.Join(jb.Watch, filepath.FromSlash(jb.RelPath)), jb)
}

// whole plans and sends a file in one request. A create-only write that
// finds its key holding an earlier content of this very file (an attempt
// whose end a crash kept from the journal) plans again with that content
// as what landed, once.
func (w *worker) whole(ctx context.Context, s sink.Sink, jb *journal.Job, body []byte, sum sink.Digest, log *slog.Logger) outcome {
	for range 2 {
		ifAbsent, out := w.plan(ctx, s, jb, sum.Hex(), log)
		if !out.going() {
			return out
		}
		out = w.put(ctx, s, jb, body, sum, ifAbsent, log)
		if out.own == nil {
			return out
		}
		w.adopt(jb, *out.own, log)
	}
	return transient(errors.New("the key keeps changing hands; trying again later"))
}

// adopt takes an object found under the job's key as what an earlier
// attempt of this file landed.
func (w *worker) adopt(jb *journal.Job, l journal.Landed, log *slog.Logger) {
	log.Info("the target holds an earlier content of this file that ferry sent before a restart; it counts as what landed",
		"key", l.Key, "sha256", l.SHA256)
	jb.UploadedKey, jb.UploadedSHA256 = l.Key, l.SHA256
	w.landed = &l
}

// put sends a whole small file, with retries. We hashed exactly the bytes
// we send, so a checksum mismatch means damage in transit: retry. A
// create-only write that finds the key taken is settled by what is there.
func (w *worker) put(ctx context.Context, s sink.Sink, jb *journal.Job, body []byte, sum sink.Digest, ifAbsent bool, log *slog.Logger) outcome {
	err := s.Put(ctx, jb.Key, body, sum, ifAbsent)
	if errors.Is(err, sink.ErrExists) {
		return w.taken(ctx, s, jb, sum.Hex(), log)
	}
	if err != nil {
		return classifySink(err)
	}
	w.landed = &journal.Landed{Key: jb.Key, SHA256: sum.Hex()}
	return outcome{}
}

// plan decides, once the content's hash is known, how it goes to the
// target: a path never uploaded is written create-only (an object already
// there is never silently overwritten); content the target already got
// from this path is not sent again (a touched file) unless it is gone from
// where it landed; a file modified after its upload is recorded as such
// and follows its watch's on_change: overwrite (reupload), a key of its
// own beside the old one (version, also create-only; jb.Key is changed to
// it), or nothing (ignore).
func (w *worker) plan(ctx context.Context, s sink.Sink, jb *journal.Job, hexSum string, log *slog.Logger) (ifAbsent bool, out outcome) {
	old := jb.UploadedSHA256
	if old == "" {
		return true, outcome{}
	}
	if old == hexSum {
		key := jb.UploadedKey
		if key == "" {
			key = jb.Key
		}
		info, err := s.Stat(ctx, key)
		if err == nil && info.Size == jb.Version.Size && info.SHA256 == hexSum {
			log.Info("content unchanged since its upload and still on the target; nothing to send", "key", key)
			w.landed = &journal.Landed{Key: key, SHA256: hexSum}
			return false, uploaded
		}
		// Gone or replaced on the target: send it again, where it was.
		if key != jb.Key {
			jb.Key = key
			w.slot.rekey(key)
			return true, outcome{} // a versioned key: create-only, as the first time
		}
		return false, outcome{}
	}
	policy := w.u.onChange(jb.Watch)
	key := jb.Key
	switch policy {
	case Ignore:
		key = ""
	case Version:
		var err error
		if key, err = VersionedKey(jb.Key, hexSum); err != nil {
			return false, permanent(ClassInvalidKey, err)
		}
	}
	if err := w.u.o.Journal.ModifiedAfterUpload(ctx, jb, old, hexSum, string(policy), key); err != nil {
		return false, transient(fmt.Errorf("journal: %w", err))
	}
	log.Info("modified after upload", "old_sha256", old, "new_sha256", hexSum, "on_change", string(policy))
	switch policy {
	case Ignore:
		return false, outcome{end: journal.KindIgnored}
	case Version:
		jb.Key = key
		w.slot.rekey(key)
		return true, outcome{}
	}
	return false, outcome{}
}

// taken settles a create-only write that found its key taken: if the
// target holds exactly this content (an earlier attempt landed, or a
// journal was rebuilt), the file is uploaded; if it holds a content this
// file sent earlier (journaled before sending, its landing lost to a
// crash), the object is ferry's own and the caller plans again (own);
// otherwise it is a conflict for a person to resolve, never an overwrite.
func (w *worker) taken(ctx context.Context, s sink.Sink, jb *journal.Job, hexSum string, log *slog.Logger) outcome {
	info, err := s.Stat(ctx, jb.Key)
	if err != nil {
		return classifySink(err)
	}
	if info.Size == jb.Version.Size && info.SHA256 == hexSum {
		log.Info("the target already holds this content under the key")
		w.landed = &journal.Landed{Key: jb.Key, SHA256: hexSum}
		return outcome{}
	}
	if info.SHA256 != "" {
		own, err := w.u.o.Journal.WroteObject(ctx, jb.ID, jb.Target, jb.Key, info.SHA256)
		if err != nil {
			return transient(fmt.Errorf("journal: %w", err))
		}
		if own {
			return outcome{own: &journal.Landed{Key: jb.Key, SHA256: info.SHA256}}
		}
	}
	return permanent(ClassConflict, fmt.Errorf("the target holds a different object under %q (size %d, sha256 %q; this file: size %d, sha256 %s): not overwritten",
		jb.Key, info.Size, info.SHA256, jb.Version.Size, hexSum))
}

// verify re-checks the source and checks what landed under the key.
func (w *worker) verify(ctx context.Context, s sink.Sink, f *os.File, path string, jb *journal.Job, hexSum string, log *slog.Logger) outcome {
	if out := w.recheck(f, path, jb); !out.going() {
		return out
	}
	ci := sink.CallOf(ctx)
	ci.RetryNotFound = true // just completed: not visible yet is worth another look
	info, err := s.Stat(sink.WithCall(ctx, ci), jb.Key)
	if err != nil {
		return classifySink(err)
	}
	if info.Size != jb.Version.Size || info.SHA256 != hexSum {
		return permanent(ClassVerify, fmt.Errorf("target holds size %d sha256 %q under %q, sent size %d sha256 %s",
			info.Size, info.SHA256, jb.Key, jb.Version.Size, hexSum))
	}
	return outcome{}
}

func (w *worker) multipart(ctx context.Context, s sink.Sink, f *os.File, path string, jb *journal.Job, log *slog.Logger) (string, outcome) {
	u := w.u
	size := jb.Version.Size
	// Parts of the configured chunk size, or larger ones for a file that
	// would need more than the target's parts (10,000 on S3).
	cs, err := PartSize(size, u.o.ChunkSize, s.MaxParts())
	if err != nil {
		return "", permanent(ClassTooLarge, err)
	}
	var chunks []journal.Chunk
	for off, seq := int64(0), 1; off < size; off, seq = off+cs, seq+1 {
		chunks = append(chunks, journal.Chunk{Seq: seq, Offset: off, Size: min(cs, size-off)})
	}
	if jb.UploadedSHA256 != "" || (jb.UploadID != "" && jb.SHA256 != "") {
		// The hash decides what to do before anything is sent: an earlier
		// content landed (send again, or not, per on_change), or the
		// upload left behind was begun for a hashed content.
		return w.hashFirst(ctx, s, f, path, jb, chunks, log)
	}
	// The file's first upload: each byte is read once, hashed as it is
	// sent, and the file's hash journaled and stored with the object when
	// every part is acknowledged.
	uploadID := jb.UploadID
	var have map[int]sink.Part
	if uploadID != "" {
		current, err := u.o.Journal.UploadIsCurrent(ctx, jb)
		if err != nil {
			return "", transient(fmt.Errorf("journal: %w", err))
		}
		if !current {
			// Begun for an earlier version of the file.
			w.abort(s, jb, uploadID, log)
			uploadID = ""
		}
	}
	if uploadID != "" {
		// An earlier attempt's upload (a transient failure, a shutdown, a
		// crash). It was never completed: completing comes after the
		// file's hash is journaled. The parts it holds are kept where they
		// match the bytes read now.
		listed, err := s.ListParts(ctx, jb.Key, uploadID)
		switch {
		case errors.Is(err, sink.ErrNotFound):
			uploadID = "" // aborted or expired: start over
		case err != nil:
			return "", classifySink(err)
		default:
			have = map[int]sink.Part{}
			for _, p := range listed {
				have[p.Number] = p
			}
			log.Info("resuming an interrupted multipart upload", "upload_id", uploadID, "parts_listed", len(listed), "parts", len(chunks))
		}
	}
	if uploadID == "" {
		// Written create-only. A key already taken is settled by comparing
		// what it holds with the file's hash: hash first.
		if _, err := s.Stat(ctx, jb.Key); err == nil {
			return w.hashFirst(ctx, s, f, path, jb, chunks, log)
		} else if !errors.Is(err, sink.ErrNotFound) {
			return "", classifySink(err)
		}
		var out outcome
		if uploadID, out = w.create(ctx, s, jb, log); !out.going() {
			return "", out
		}
	}
	fileHash := sha256.New()
	parts, out := w.sendParts(ctx, s, f, jb, uploadID, chunks, have, fileHash, log)
	if out.going() {
		// The last look at the source before its hash is recorded.
		out = w.recheck(f, path, jb)
	}
	if !out.going() {
		if out.end != journal.KindRetryScheduled {
			w.abort(s, jb, uploadID, log)
		}
		// A transient failure or a shutdown keeps the upload, which is
		// journaled, for the next attempt to resume.
		return "", out
	}
	var sum sink.Digest
	fileHash.Sum(sum[:0])
	hexSum := sum.Hex()
	if err := u.o.Journal.RecordHashes(ctx, jb, hexSum, chunks); err != nil {
		return "", transient(fmt.Errorf("journal: %w", err))
	}
	return hexSum, w.complete(ctx, s, f, path, jb, uploadID, parts, sum, true, log)
}

// hashFirst sends a file in parts whose hash must be known before it is
// sent, reading it twice: pass 1 hashes the file and every chunk, which
// are journaled; then it is planned (see plan), an upload left behind is
// resumed (see resume), and pass 2 sends the chunks with those hashes.
func (w *worker) hashFirst(ctx context.Context, s sink.Sink, f *os.File, path string, jb *journal.Job, chunks []journal.Chunk, log *slog.Logger) (string, outcome) {
	u := w.u
	fileHash := sha256.New()
	for i := range chunks {
		c := &chunks[i]
		buf := w.buffer(c.Size)
		if out := readChunkAt(f, buf, c.Offset); !out.going() {
			return "", out
		}
		c.SHA256 = hashChunk(buf, fileHash).Hex()
		if ctx.Err() != nil {
			return "", transient(ctx.Err())
		}
	}
	var sum sink.Digest
	fileHash.Sum(sum[:0])
	hexSum := sum.Hex()
	if out := w.recheck(f, path, jb); !out.going() {
		return "", out
	}
	if err := u.o.Journal.RecordHashes(ctx, jb, hexSum, chunks); err != nil {
		return "", transient(fmt.Errorf("journal: %w", err))
	}
	ifAbsent, out := w.plan(ctx, s, jb, hexSum, log)
	if !out.going() {
		return hexSum, out
	}
	uploadID, have, out := w.resume(ctx, s, jb, hexSum, chunks, log)
	if !out.going() {
		return hexSum, out
	}
	if ifAbsent && uploadID == "" {
		// Before sending a large file create-only, look: a taken key is
		// settled now rather than after all its parts.
		if _, err := s.Stat(ctx, jb.Key); err == nil {
			out := w.taken(ctx, s, jb, hexSum, log)
			if out.own == nil {
				return hexSum, out
			}
			w.adopt(jb, *out.own, log)
			if ifAbsent, out = w.plan(ctx, s, jb, hexSum, log); !out.going() {
				return hexSum, out
			}
		} else if !errors.Is(err, sink.ErrNotFound) {
			return "", classifySink(err)
		}
	}
	if uploadID == "" {
		if uploadID, out = w.create(ctx, s, jb, log); !out.going() {
			return "", out
		}
	}
	parts, out := w.sendParts(ctx, s, f, jb, uploadID, chunks, have, nil, log)
	if out.going() {
		// The last look at the source before the object becomes visible.
		out = w.recheck(f, path, jb)
	}
	if !out.going() {
		if out.end != journal.KindRetryScheduled {
			w.abort(s, jb, uploadID, log)
		}
		// A transient failure or a shutdown keeps the upload, which is
		// journaled, for the next attempt to deal with.
		return "", out
	}
	return hexSum, w.complete(ctx, s, f, path, jb, uploadID, parts, sum, ifAbsent, log)
}

// create starts the job's multipart upload and journals its ID before any
// part is sent (an upload the journal does not know is an orphan).
func (w *worker) create(ctx context.Context, s sink.Sink, jb *journal.Job, log *slog.Logger) (string, outcome) {
	id, err := s.CreateMultipart(ctx, jb.Key, jb.Version.Size)
	if err != nil {
		return "", classifySink(err)
	}
	if err := w.u.o.Journal.SetUploadID(ctx, jb, id); err != nil {
		w.abort(s, jb, id, log)
		return "", transient(fmt.Errorf("journal: %w", err))
	}
	return id, outcome{}
}

// hashChunk returns the SHA-256 of buf and adds buf to the file's hash:
// the two hashes of the same bytes run on two cores.
func hashChunk(buf []byte, fileHash hash.Hash) sink.Digest {
	done := make(chan struct{})
	go func() { fileHash.Write(buf); close(done) }()
	d := sink.Digest(sha256.Sum256(buf))
	<-done
	return d
}

// complete assembles the parts into the object, stores the file's hash
// with it, and verifies what landed.
func (w *worker) complete(ctx context.Context, s sink.Sink, f *os.File, path string, jb *journal.Job, uploadID string, parts []sink.Part, sum sink.Digest, ifAbsent bool, log *slog.Logger) outcome {
	hexSum := sum.Hex()
	err := s.CompleteMultipart(ctx, jb.Key, uploadID, parts, sum, ifAbsent)
	switch {
	case errors.Is(err, sink.ErrExists):
		// Someone else's object (or an earlier attempt's) took the key.
		w.abort(s, jb, uploadID, log)
		out := w.taken(ctx, s, jb, hexSum, log)
		if out.own != nil {
			// Recorded as what landed; the next attempt plans with it.
			w.adopt(jb, *out.own, log)
			return transient(errors.New("the key holds an earlier content of this file: planning again"))
		}
		return out
	case err != nil:
		out := classifySink(err)
		if out.end != journal.KindRetryScheduled {
			w.abort(s, jb, uploadID, log)
		}
		// A transient failure or a shutdown keeps the upload, which is
		// journaled, for the next attempt to deal with.
		return out
	}
	w.landed = &journal.Landed{Key: jb.Key, SHA256: hexSum}
	return w.verify(ctx, s, f, path, jb, hexSum, log)
}

// resume deals with the multipart upload an earlier attempt left (after a
// crash, a shutdown or a transient failure). When it belongs to this very
// content (the journaled hash of the file is the one just computed), the
// parts the target already holds with the right SHA-256 are kept: resume
// returns the upload and those parts, and only the others are sent again.
// When the upload no longer exists, the object may already be complete (a
// crash after CompleteMultipart): if it holds this content, the outcome is
// uploaded and nothing is sent. Otherwise the old upload is aborted and
// resume returns "": start a new one.
func (w *worker) resume(ctx context.Context, s sink.Sink, jb *journal.Job, hexSum string, chunks []journal.Chunk, log *slog.Logger) (uploadID string, have map[int]sink.Part, out outcome) {
	if jb.UploadID == "" {
		return "", nil, outcome{}
	}
	if jb.SHA256 != hexSum {
		// Left by another version of the file: its metadata is wrong.
		w.abort(s, jb, jb.UploadID, log)
		return "", nil, outcome{}
	}
	listed, err := s.ListParts(ctx, jb.Key, jb.UploadID)
	switch {
	case errors.Is(err, sink.ErrNotFound):
		info, err := s.Stat(ctx, jb.Key)
		if err == nil && info.Size == jb.Version.Size && info.SHA256 == hexSum {
			log.Info("the earlier attempt's upload was completed before ferry stopped; nothing to send", "upload_id", jb.UploadID)
			w.landed = &journal.Landed{Key: jb.Key, SHA256: hexSum}
			return "", nil, uploaded
		}
		if err != nil && !errors.Is(err, sink.ErrNotFound) {
			return "", nil, classifySink(err)
		}
		if err == nil && info.Size == jb.Version.Size && info.SHA256 == "" {
			// Completed, perhaps, with its hash not yet stored (a crash
			// between the two): completing again stores it where the
			// target proves the object is made of these chunks.
			parts := make([]sink.Part, len(chunks))
			for i, c := range chunks {
				d, err := sink.ParseDigest(c.SHA256)
				if err != nil {
					return "", nil, transient(err)
				}
				parts[i] = sink.Part{Number: c.Seq, Offset: c.Offset, Size: c.Size, SHA256: d}
			}
			sum, err := sink.ParseDigest(hexSum)
			if err != nil {
				return "", nil, transient(err)
			}
			err = s.CompleteMultipart(ctx, jb.Key, jb.UploadID, parts, sum, false)
			switch {
			case err == nil:
				log.Info("the earlier attempt's upload was completed before ferry stopped; its sha256 is stored now", "upload_id", jb.UploadID)
				w.landed = &journal.Landed{Key: jb.Key, SHA256: hexSum}
				return "", nil, uploaded
			case !errors.Is(err, sink.ErrNotFound):
				return "", nil, classifySink(err)
			}
		}
		return "", nil, outcome{} // gone (aborted or expired): start over
	case err != nil:
		return "", nil, classifySink(err)
	}
	have = map[int]sink.Part{}
	for _, p := range listed {
		if p.Number < 1 || p.Number > len(chunks) {
			continue
		}
		c := chunks[p.Number-1]
		if p.Size == c.Size && p.SHA256.Hex() == c.SHA256 {
			have[p.Number] = p
		}
	}
	log.Info("resuming an interrupted multipart upload", "upload_id", jb.UploadID, "parts_kept", len(have), "parts", len(chunks))
	return jb.UploadID, have, outcome{}
}

// sendParts reads the file chunk by chunk and sends each chunk. With
// fileHash (one read per byte), each chunk is hashed as it is read, into
// chunks and into fileHash, and a part in have (an earlier attempt's) is
// kept when it has the bytes just read. Without (pass 2 of hashFirst),
// each chunk is sent with the hash journaled for it in pass 1, and the
// parts in have were matched against those. The target checks every chunk
// against its hash: a mismatch means the bytes changed in transit (retry)
// or in the source since pass 1 (re-hash to tell which). Reading is sequential;
// sending is not: the parts go out concurrently on the worker's buffer plus
// any idle workers' buffers it can borrow from the pool, so one large file
// does not leave the other workers' share of the network unused.
func (w *worker) sendParts(ctx context.Context, s sink.Sink, f *os.File, jb *journal.Job, uploadID string, chunks []journal.Chunk, have map[int]sink.Part, fileHash hash.Hash, log *slog.Logger) ([]sink.Part, outcome) {
	u := w.u
	type result struct {
		i   int
		buf []byte
		err error
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := make([]sink.Part, len(chunks))
	results := make(chan result, len(chunks))
	free := [][]byte{w.buf}
	// A file sent in parts larger than the chunk size (more than 10,000
	// chunks) borrows no buffer: memory stays within workers x chunk
	// size, plus one part per such file.
	large := len(chunks) > 0 && chunks[0].Size > u.o.ChunkSize
	inflight := 0
	var out outcome
	// collect waits for one part and journals its acknowledgement.
	collect := func() {
		r := <-results
		inflight--
		if len(free) > 0 {
			// Keep one spare at most: a borrowed buffer goes back to the
			// pool at once, for a worker that may be waiting for one.
			u.bufs <- r.buf
		} else {
			free = append(free, r.buf)
		}
		if !out.going() {
			return // already failing: the rest is cancelled
		}
		c := chunks[r.i]
		switch {
		case errors.Is(r.err, sink.ErrChecksum):
			out = changed(fmt.Sprintf("chunk %d changed after it was hashed", c.Seq))
		case r.err != nil:
			out = classifySink(r.err)
		default:
			chunks[r.i].ETag = parts[r.i].ETag
			if err := u.o.Journal.AckChunk(ctx, jb, c.Seq, parts[r.i].ETag); err != nil {
				out = transient(fmt.Errorf("journal: %w", err))
			} else {
				log.Debug("chunk acknowledged", "chunk_sequence", c.Seq, "size", c.Size, "sha256", c.SHA256)
			}
		}
		if !out.going() {
			cancel()
		}
	}
	// kept takes a part the target already holds with the right bytes (a
	// resumed upload).
	kept := func(i int, p sink.Part) {
		c := &chunks[i]
		p.Offset = c.Offset
		parts[i] = p
		c.ETag = p.ETag
		w.slot.done.Add(c.Size)
		if err := u.o.Journal.AckChunk(ctx, jb, c.Seq, p.ETag); err != nil {
			out = transient(fmt.Errorf("journal: %w", err))
		}
	}
	for i := range chunks {
		c := &chunks[i]
		if p, ok := have[c.Seq]; ok && fileHash == nil {
			// Matched against the hashes of pass 1 (resume).
			if kept(i, p); !out.going() {
				break
			}
			continue
		}
		if !out.going() {
			break
		}
		if len(free) == 0 && large {
			collect() // parts above the chunk size: the worker's own buffer only
		} else if len(free) == 0 {
			select {
			case b := <-u.bufs: // an idle worker's buffer
				free = append(free, b)
			default:
				collect()
			}
		}
		if !out.going() {
			break
		}
		buf := free[len(free)-1]
		free = free[:len(free)-1]
		if n := max(u.o.ChunkSize, c.Size); int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		body := buf[:c.Size]
		if out = readChunkAt(f, body, c.Offset); !out.going() {
			free = append(free, buf)
			break
		}
		var d sink.Digest
		if fileHash != nil {
			// One read per byte: hashed as it is sent.
			d = hashChunk(body, fileHash)
			c.SHA256 = d.Hex()
			if p, ok := have[c.Seq]; ok && p.Size == c.Size && p.SHA256 == d {
				free = append(free, buf)
				if kept(i, p); !out.going() {
					break
				}
				continue
			}
		} else {
			var err error
			if d, err = sink.ParseDigest(c.SHA256); err != nil {
				free = append(free, buf)
				out = transient(err)
				break
			}
		}
		parts[i] = sink.Part{Number: c.Seq, Offset: c.Offset, Size: c.Size, SHA256: d}
		inflight++
		go func(i int, p *sink.Part) {
			ci := sink.CallOf(pctx)
			ci.Log = log.With("chunk_sequence", p.Number)
			// A part the target rejects against its SHA-256 is sent again
			// if its bytes still match it (damage in transit), and ends
			// with sink.ErrChecksum if not (the source changed since pass
			// 1): the retry decorator tells which.
			etag, err := s.UploadPart(sink.WithCall(pctx, ci), jb.Key, uploadID, *p, body)
			p.ETag = etag
			results <- result{i: i, buf: buf, err: err}
		}(i, &parts[i])
	}
	for inflight > 0 {
		collect()
	}
	// Keep one buffer as the worker's; give back the borrowed ones.
	w.buf = free[0]
	for _, b := range free[1:] {
		u.bufs <- b
	}
	if int64(cap(w.buf)) > u.o.ChunkSize {
		w.buf = nil // a large part's buffer is not kept for the next file
	}
	if !out.going() {
		return nil, out
	}
	return parts, outcome{}
}

// dropKept aborts the multipart upload an earlier attempt kept (a
// transient failure, a shutdown, a newer version settling during it) when
// this attempt ends the job before reaching it: the source vanished,
// changed or cannot be read. The journal forgets the upload with the job's
// end; left on the target it would wait for the orphan sweep's TTL.
func (w *worker) dropKept(s sink.Sink, jb *journal.Job, out outcome, log *slog.Logger) {
	if jb.UploadID == "" {
		return
	}
	switch out.end {
	case journal.KindVanished, journal.KindSourceChanged, journal.KindFailed:
		w.abort(s, jb, jb.UploadID, log)
	}
}

// abort discards a multipart upload, by its ID: it may be under another key
// than the job's now (with on_change = "version" each version has its own
// key, and the journal keeps the ID), and an object store takes an abort
// under the wrong key for one of an unknown upload, leaving it staged. So
// the upload is looked for by ID among those of the key's folder too.
func (w *worker) abort(s sink.Sink, jb *journal.Job, uploadID string, log *slog.Logger) {
	ctx, cancel := finishCtx()
	defer cancel()
	abortUpload(ctx, s, jb.Key, uploadID, log)
}

// abortUpload aborts the upload uploadID, under key and under whatever key
// the target lists it with in key's folder; failures are logged, and
// reported.
func abortUpload(ctx context.Context, s sink.Sink, key, uploadID string, log *slog.Logger) error {
	keys := []string{key}
	dir := path.Dir(key) + "/"
	if dir == "./" {
		dir = ""
	}
	if ups, err := s.ListUploads(ctx, dir); err == nil {
		for _, up := range ups {
			if up.ID == uploadID && up.Key != key {
				keys = append(keys, up.Key)
			}
		}
	}
	var errs []error
	for _, k := range keys {
		if err := s.AbortMultipart(ctx, k, uploadID); err != nil {
			log.Warn("could not abort multipart upload", "upload_id", uploadID, "key", k, "error", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
