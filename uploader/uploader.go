// Package uploader moves settled files from the journal to their targets.
//
// A dispatcher claims due files from the journal (the journal is the queue:
// nothing waits in an unbounded in-memory channel) and hands each to one of
// a fixed number of workers. A worker reads its file in chunks into the one
// buffer it owns, so memory is bounded by workers x chunk size whatever the
// file sizes. Each chunk's SHA-256 and the file's are journaled before any
// byte is sent; the target checks every chunk against its hash on receipt;
// the file's identity (size, mtime, volume and index) is checked again just
// before the upload is completed; and what landed is verified (size and
// sha256 metadata) before the file is recorded as uploaded.
//
// Failures are classified by the sink (see package sink). Transient ones are
// retried with exponential backoff and full jitter; when a request runs out
// of attempts the file goes back to the journal with a later due time.
// Permanent ones (and vanished or unreadable files) are recorded as failed
// with the reason, and the other files go on.
package uploader

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/avast/retry-go/v4"

	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
)

// DefaultChunkSize is max_chunk_size's default.
const DefaultChunkSize = 16 << 20

// Options configures an Uploader. Zero values mean the documented defaults.
type Options struct {
	Journal   *journal.Journal     // required
	Sinks     map[string]sink.Sink // by target name; required
	Workers   int                  // max_concurrent_uploads (default 4)
	ChunkSize int64                // max_chunk_size (default 16 MiB)
	// MaxInflightBytes bounds the chunk buffers, so the file bytes held in
	// memory and on the wire: at most this / ChunkSize buffers (at least
	// one, at most one per worker). 0 means one per worker.
	MaxInflightBytes int64
	Retry            RetryPolicy
	Breaker          BreakerPolicy // per target
	// OnChange is, by watch root, what to do with a file modified after its
	// upload (default Reupload).
	OnChange map[string]OnChange
	Logger   *slog.Logger // default: discard
	// OnChunk, when set, is told of every chunk the target acknowledged (a
	// part, or a whole small file): its size and how long the request took.
	OnChunk func(target string, size int64, took time.Duration)
	// Now is the clock for due times; nil means time.Now.
	Now func() time.Time
	// Stats, when set, is where the running totals go, so that they carry
	// on across uploaders (a configuration reload makes a new one); nil
	// means a fresh set.
	Stats *Stats
}

// Stats are running totals since New (or since the first Uploader that
// shared them through Options.Stats).
type Stats struct {
	Uploaded atomic.Int64 // files uploaded and verified
	Bytes    atomic.Int64 // bytes of those files
	Failed   atomic.Int64 // files failed permanently
	Retried  atomic.Int64 // files sent back to the queue after a transient failure
	Requests atomic.Int64 // request retries after transient failures
	Wakeups  atomic.Int64 // dispatcher rounds (claims tried)

	// What Rate and LastFailure report, kept here so that they too carry
	// on across uploaders sharing these Stats.
	meter       meter        // acknowledged bytes per second
	started     atomic.Int64 // unix ns: when the first uploader was made
	lastFailure atomic.Pointer[Failure]
}

// Uploader runs the dispatcher and its workers.
type Uploader struct {
	o         Options
	log       *slog.Logger
	nudge     chan struct{}
	inputDone chan struct{}
	doneOnce  sync.Once
	stop      chan struct{}
	stopOnce  sync.Once
	gates     map[string]*gate // by target
	// bufs holds the chunk buffers, one per worker (allocated on first use).
	// A worker takes one for each file; a multipart upload borrows the
	// idle ones to send several parts at once. Memory stays within
	// workers x chunk size.
	bufs  chan []byte
	Stats *Stats
	// parked are targets the journal holds queued files for but that have
	// no sink (taken out of the configuration): their files wait in the
	// journal, untouched, until the target is configured again.
	parked []string

	slots []slot // the upload in flight of each worker (InFlight)
}

// New checks o and returns an Uploader.
func New(o Options) (*Uploader, error) {
	if o.Journal == nil {
		return nil, errors.New("uploader: no journal")
	}
	if len(o.Sinks) == 0 {
		return nil, errors.New("uploader: no sinks")
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	for name, s := range o.Sinks {
		if o.ChunkSize < s.MinPartSize() {
			return nil, fmt.Errorf("uploader: chunk size %d is below target %q's minimum part size %d", o.ChunkSize, name, s.MinPartSize())
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nbufs := o.Workers
	if o.MaxInflightBytes > 0 {
		nbufs = int(min(max(o.MaxInflightBytes/o.ChunkSize, 1), int64(o.Workers)))
	}
	u := &Uploader{o: o, log: log, nudge: make(chan struct{}, 1), inputDone: make(chan struct{}), stop: make(chan struct{}),
		bufs: make(chan []byte, nbufs), gates: map[string]*gate{}, Stats: o.Stats, slots: make([]slot, o.Workers)}
	if u.Stats == nil {
		u.Stats = new(Stats)
	}
	u.Stats.started.CompareAndSwap(0, o.Now().UnixNano())
	for name := range o.Sinks {
		u.gates[name] = newGate(name, o.Breaker, log)
	}
	for range nbufs {
		u.bufs <- nil
	}
	return u, nil
}

// RateLimited takes in the request budget a target's server announced
// (see s3sink.Options.OnRateLimit).
func (u *Uploader) RateLimited(target string, rl sink.RateLimit) {
	if g := u.gates[target]; g != nil {
		g.rateLimit(rl)
	}
}

// BreakerState is a target's circuit breaker state: "closed", "half-open"
// or "open" ("" for an unknown target).
func (u *Uploader) BreakerState(target string) string {
	if g := u.gates[target]; g != nil {
		return g.state().String()
	}
	return ""
}

// Notify tells the dispatcher that new work may be due. It never blocks.
func (u *Uploader) Notify() {
	select {
	case u.nudge <- struct{}{}:
	default:
	}
}

// InputDone says that no more files will be recorded: Run then returns as
// soon as no file is due and no worker is busy (the mode of "ferry run
// --once"; files whose retry is due later stay queued in the journal).
func (u *Uploader) InputDone() {
	u.doneOnce.Do(func() { close(u.inputDone) })
	u.Notify()
}

// Stop makes Run start no new upload and return once the uploads in flight
// have ended. To bound the wait, cancel Run's context: in-flight uploads are
// then abandoned and their files stay queued.
func (u *Uploader) Stop() { u.stopOnce.Do(func() { close(u.stop) }) }

// Run dispatches until ctx ends or Stop is called, or after InputDone, until
// the work is done. In-flight uploads are abandoned on cancellation and
// their files returned to the queue.
func (u *Uploader) Run(ctx context.Context) error {
	if err := u.park(ctx); err != nil {
		return err
	}
	jobs := make(chan task)
	ready := make(chan struct{}, u.o.Workers)
	// Completions are journaled without holding up the worker, which goes
	// on to its next file; the finisher waits for each to be durable, in
	// order, and only then counts and logs it. Bounded: a full channel
	// makes workers wait.
	completions := make(chan completion, 4*u.o.Workers)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for c := range completions {
			u.completed(c)
		}
	}()
	var wg sync.WaitGroup
	for i := range u.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{u: u, completions: completions, slot: &u.slots[i]}
			for {
				select {
				case ready <- struct{}{}:
				case <-ctx.Done():
					return
				}
				select {
				case tk, ok := <-jobs:
					if !ok {
						return
					}
					w.run(ctx, tk)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	err := u.dispatch(ctx, jobs, ready)
	close(jobs)
	wg.Wait()
	close(completions)
	<-finished
	return err
}

// park finds the targets the journal has pending files for but that have
// no sink: those files are left queued, and said so once.
func (u *Uploader) park(ctx context.Context) error {
	pending, err := u.o.Journal.PendingTargets(ctx)
	if err != nil {
		return fmt.Errorf("uploader: read the journal's targets: %w", err)
	}
	u.parked = u.parked[:0]
	for name, n := range pending {
		if u.o.Sinks[name] == nil {
			u.parked = append(u.parked, name)
			u.log.Warn("files are queued for a target that is not in the configuration; they wait in the journal until it is configured again",
				"target", name, "files", n)
		}
	}
	sort.Strings(u.parked)
	return nil
}

// completion is an upload whose "uploaded" transition was submitted.
type completion struct {
	done  <-chan error
	jb    journal.Job
	sum   string
	start time.Time
	log   *slog.Logger
}

func (u *Uploader) completed(c completion) {
	err := <-c.done
	switch {
	case err == nil:
		u.Stats.Uploaded.Add(1)
		u.Stats.Bytes.Add(c.jb.Version.Size)
		c.log.Info("uploaded", "key", c.jb.Key, "size", c.jb.Version.Size, "sha256", c.sum,
			"duration", time.Since(c.start).String(), "attempt", c.jb.Attempts)
	case errors.Is(err, journal.ErrStale):
		c.log.Info("a newer version of the file settled during the upload; it is queued again")
	default:
		c.log.Error("could not journal the end of an upload; it will be retried after restart", "error", err)
	}
	u.Notify()
}

// dispatch claims due files from the journal a little ahead of the workers
// (at most two per worker, so that claims share transactions), preloads the
// small ones, and hands them out oldest first.
func (u *Uploader) dispatch(ctx context.Context, jobs chan<- task, ready <-chan struct{}) error {
	idle := 0
	var buf []task
	defer func() {
		// Claimed but not started: back to the queue, untouched.
		for i := range buf {
			u.release(&buf[i].jb)
		}
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		for drained := false; !drained; {
			select {
			case <-ready:
				idle++
			default:
				drained = true
			}
		}
		select {
		case <-u.stop:
			return nil
		case <-ctx.Done():
			return nil
		default:
		}
		u.Stats.Wakeups.Add(1)
		// Claim nothing for targets whose breaker is open, nor for those
		// that are no longer configured.
		closed := append([]string(nil), u.parked...)
		for name, g := range u.gates {
			if g.open() {
				closed = append(closed, name)
			}
		}
		if len(buf) < u.o.Workers {
			claimed, err := u.o.Journal.Claim(ctx, 2*u.o.Workers-len(buf), closed...)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("uploader: claim from journal: %w", err)
			}
			buf = append(buf, u.preload(ctx, claimed)...)
		}
		if len(buf) > 0 {
			if idle == 0 {
				select {
				case <-ready:
					idle++
				case <-ctx.Done():
					return nil
				case <-u.stop:
					return nil
				}
			}
			// An idle worker is waiting to receive.
			select {
			case jobs <- buf[0]:
				buf = buf[1:]
				idle--
			case <-ctx.Done():
				return nil
			}
			continue
		}
		// Nothing due now.
		if idle == u.o.Workers && u.isInputDone() {
			return nil
		}
		wait := time.Minute
		if at, ok, err := u.o.Journal.NextDue(ctx, closed...); err == nil && ok {
			wait = max(at.Sub(u.o.Now()), 10*time.Millisecond)
		}
		for _, name := range closed {
			// Look again when the breaker lets a probe through.
			if g := u.gates[name]; g != nil {
				wait = min(wait, g.probeIn(time.Now()))
			}
		}
		timer.Reset(wait)
		select {
		case <-u.nudge:
		case <-ready:
			idle++
		case <-timer.C:
		case <-ctx.Done():
			return nil
		case <-u.stop:
			return nil
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// task is a claimed file for a worker. For a small file, the dispatcher
// has already read it, hashed it and journaled the hash (for many files in
// one transaction, where each worker would wait for a commit of its own).
type task struct {
	jb   journal.Job
	body []byte // the whole file, or nil: the worker reads it
	sum  sink.Digest
}

// preloadMax is the largest file the dispatcher preloads. Preloaded bytes
// in memory are bounded by 3 x workers x preloadMax (two claimed ahead per
// worker, one being sent by each).
const preloadMax = 64 << 10

func (u *Uploader) preload(ctx context.Context, claimed []journal.Job) []task {
	ts := make([]task, len(claimed))
	var hs []journal.Hashes
	var idx []int
	for i := range claimed {
		t := &ts[i]
		t.jb = claimed[i]
		if t.jb.Version.Size > preloadMax || t.jb.UploadID != "" || u.o.Sinks[t.jb.Target] == nil {
			continue
		}
		body, ok := readVersion(filepath.Join(t.jb.Watch, filepath.FromSlash(t.jb.RelPath)), &t.jb)
		if !ok {
			continue // the worker finds out what is wrong and records it
		}
		t.body, t.sum = body, sha256.Sum256(body)
		hex := t.sum.Hex()
		hs = append(hs, journal.Hashes{Job: &t.jb, SHA256: hex, Chunks: []journal.Chunk{{Seq: 1, Size: t.jb.Version.Size, SHA256: hex}}})
		idx = append(idx, i)
	}
	if len(hs) == 0 {
		return ts
	}
	errs, err := u.o.Journal.RecordHashesBatch(ctx, hs)
	for k, i := range idx {
		if err != nil || errs[k] != nil {
			ts[i].body = nil // not journaled: the worker starts over
		}
	}
	return ts
}

// readVersion reads a whole small file if it is still the job's version.
func readVersion(path string, jb *journal.Job) ([]byte, bool) {
	f, err := srcfile.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	same := func() bool {
		st, err := srcfile.FileStat(f)
		return err == nil && versionOf(st) == jb.Version
	}
	if !same() {
		return nil, false
	}
	body := make([]byte, jb.Version.Size)
	if _, err := io.ReadFull(f, body); err != nil || !same() {
		return nil, false
	}
	return body, true
}

func (u *Uploader) isInputDone() bool {
	select {
	case <-u.inputDone:
		return true
	default:
		return false
	}
}

// finishCtx bounds the journal writes that end a job, which must happen
// even while the daemon shuts down.
func finishCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

func (u *Uploader) release(jb *journal.Job) {
	ctx, cancel := finishCtx()
	defer cancel()
	if err := u.o.Journal.Release(ctx, jb); err != nil && !errors.Is(err, journal.ErrStale) {
		u.log.Error("could not return file to the queue", "path", jb.RelPath, "error", err)
	}
}

// worker uploads one file at a time, with a chunk buffer from the pool.
type worker struct {
	u           *Uploader
	buf         []byte
	completions chan<- completion
	gate        *gate // the current job's target
	slot        *slot // its upload in flight, for InFlight
}

func (w *worker) buffer(n int64) []byte {
	if int64(cap(w.buf)) < n {
		c := min(max(n, 64<<10), w.u.o.ChunkSize)
		w.buf = make([]byte, c)
	}
	return w.buf[:n]
}

// outcome is how a job ended.
type outcome struct {
	err     error
	changed string // non-empty: the source changed; the reason
	class   string // for permanent failures
	ignored bool   // modified after upload, and on_change says leave it
	skip    bool   // nothing to send: the target already holds this content
}

func (w *worker) run(ctx context.Context, tk task) {
	u := w.u
	jb := tk.jb
	w.gate = u.gates[jb.Target]
	log := u.log.With("correlation_id", jb.CorrelationID, "batch_id", jb.BatchID, "path", jb.RelPath, "target", jb.Target)
	start := time.Now()
	w.slot.start(&Progress{Watch: jb.Watch, Path: jb.RelPath, Target: jb.Target, Key: jb.Key, Size: jb.Version.Size, StartedAt: u.o.Now()})
	defer w.slot.end()
	var sum string
	var out outcome
	if tk.body != nil {
		sum, out = w.sendPreloaded(ctx, &jb, tk.body, tk.sum, log)
	} else {
		select {
		case w.buf = <-u.bufs:
			sum, out = w.upload(ctx, &jb, log)
			u.bufs <- w.buf
			w.buf = nil
		case <-ctx.Done():
			out = outcome{err: ctx.Err()}
		}
	}
	fctx, cancel := finishCtx()
	defer cancel()
	var err error
	switch {
	case errors.Is(out.err, ErrCircuitOpen):
		log.Debug("target unreachable (circuit breaker open); the file goes back to the queue")
		err = u.o.Journal.Release(fctx, &jb)
	case out.ignored:
		log.Info("modified after upload; on_change = ignore leaves the target's copy as it is", "sha256", sum)
		err = u.o.Journal.Ignore(fctx, &jb, sum)
	case out.err == nil && out.changed == "":
		w.completions <- completion{done: u.o.Journal.CompleteAsync(fctx, &jb, sum, jb.Key), jb: jb, sum: sum, start: start, log: log}
	case out.changed != "":
		log.Warn("source changed during upload; it will be uploaded again once it settles", "reason", out.changed)
		err = u.o.Journal.SourceChanged(fctx, &jb, out.changed)
	case ctx.Err() != nil:
		log.Info("upload interrupted by shutdown; the file stays queued")
		err = u.o.Journal.Release(fctx, &jb)
	case out.class != "":
		log.Error("upload failed permanently", "error_class", out.class, "error", out.err.Error(), "attempt", jb.Attempts)
		w.failed(out.class, out.err)
		u.Stats.Failed.Add(1)
		err = u.o.Journal.Fail(fctx, &jb, out.class, out.err.Error())
	default:
		d := requeueDelay(jb.Attempts, fullJitter)
		at := u.o.Now().Add(d)
		if w.gate != nil && w.gate.trouble.failing.Load() {
			// The target's trouble is logged once (see trouble); each file
			// going back to the queue is a state change of its own, at Info.
			log.Info("upload failed; retrying later", "error", out.err.Error(), "attempt", jb.Attempts, "retry_in", d.Round(time.Second).String())
		} else {
			log.Warn("upload failed; retrying later", "error", out.err.Error(), "attempt", jb.Attempts, "retry_in", d.Round(time.Second).String())
		}
		w.failed(ClassTransient, out.err)
		u.Stats.Retried.Add(1)
		err = u.o.Journal.Retry(fctx, &jb, out.err.Error(), at)
	}
	if errors.Is(err, journal.ErrStale) {
		log.Info("a newer version of the file settled during the upload; it is queued again")
	} else if err != nil {
		log.Error("could not journal the end of an upload; it will be retried after restart", "error", err)
	}
	u.Notify()
}

// Error classes recorded with failed files.
const (
	ClassVanished   = "vanished"
	ClassDenied     = "permission_denied"
	ClassInvalidKey = "invalid_key"
	ClassPermanent  = "permanent"
	ClassVerify     = "verify_failed"
	ClassNoTarget   = "unknown_target"
	ClassConflict   = "conflict"
)

func permanent(class string, err error) outcome { return outcome{err: err, class: class} }

func classifyOpen(err error) outcome {
	switch {
	case srcfile.IsVanished(err):
		return permanent(ClassVanished, fmt.Errorf("source file vanished: %w", err))
	case srcfile.IsDenied(err):
		return permanent(ClassDenied, err)
	case errors.Is(err, srcfile.ErrNotRegular):
		return permanent(ClassVanished, err)
	}
	return outcome{err: err}
}

func classifySink(err error) outcome {
	if sink.IsPermanent(err) {
		return permanent(ClassPermanent, err)
	}
	return outcome{err: err}
}

// upload sends one file and returns its hex SHA-256.
func (w *worker) upload(ctx context.Context, jb *journal.Job, log *slog.Logger) (string, outcome) {
	u := w.u
	s := u.o.Sinks[jb.Target]
	if s == nil {
		return "", permanent(ClassNoTarget, fmt.Errorf("no target named %q in the configuration", jb.Target))
	}
	path := filepath.Join(jb.Watch, filepath.FromSlash(jb.RelPath))
	f, err := srcfile.Open(path)
	if err != nil {
		return "", classifyOpen(err)
	}
	defer f.Close()
	if why := w.recheck(f, path, jb); why != "" {
		return "", outcome{changed: why}
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

// recheck returns why the file no longer matches the job's version, or "".
// It checks both the open file and the path (which a rename may have
// pointed at another file).
func (w *worker) recheck(f *os.File, path string, jb *journal.Job) string {
	check := func(what string, st srcfile.Stat, err error) string {
		if err != nil {
			return fmt.Sprintf("%s: %v", what, err)
		}
		return mismatch(what, versionOf(st), jb)
	}
	st, err := srcfile.FileStat(f)
	if why := check("open file", st, err); why != "" {
		return why
	}
	st, err = srcfile.Lstat(path)
	return check("path", st, err)
}

func (w *worker) try(ctx context.Context, log *slog.Logger, op string, size int64, fn func(ctx context.Context) error) error {
	g := w.gate
	timeout := requestTimeout(size)
	return w.u.o.Retry.do(ctx, func(n uint, err error) {
		w.u.Stats.Requests.Add(1)
		log.Debug("request failed; retrying", "op", op, "retry", n, "error", err.Error())
	}, func() error {
		// Every attempt passes the target's gate: a server's pause and an
		// open breaker hold it here, without using up its retries.
		var done func(error)
		if g != nil {
			var err error
			if done, err = g.enter(ctx); err != nil {
				return retry.Unrecoverable(err)
			}
		}
		// A deadline for the attempt, scaled to what it carries, so that a
		// stalled connection fails instead of holding the worker forever.
		actx, cancel := context.WithTimeout(ctx, timeout)
		began := time.Now()
		err := fn(actx)
		if err == nil && size > 0 {
			w.slot.done.Add(size)
			w.u.Stats.meter.add(w.u.o.Now(), size)
			if w.u.o.OnChunk != nil && g != nil {
				w.u.o.OnChunk(g.target, size, time.Since(began))
			}
		}
		if err != nil && ctx.Err() == nil && actx.Err() != nil {
			err = sink.NewTransient(op, fmt.Errorf("%w after %v", errStalled, timeout))
		}
		cancel()
		switch {
		case err == nil || sink.IsPermanent(err) || errors.Is(err, sink.ErrNotFound) || errors.Is(err, sink.ErrExists):
			// The target answered.
			if g != nil {
				g.trouble.ok(w.u.o.Now())
			}
		case ctx.Err() == nil:
			w.failed(ClassTransient, err)
			if g != nil {
				g.trouble.fail(w.u.o.Now(), op, err, log)
			}
		}
		if done != nil {
			done(err)
		}
		if ra := sink.RetryAfter(err); ra > 0 && g != nil {
			g.pause(time.Now().Add(ra))
		}
		return err
	})
}

// errStalled is a request that did not finish within its deadline.
var errStalled = errors.New("request made no progress in time")

// requestTimeout is the deadline of one request carrying n bytes: a minute,
// plus the time to send them at a floor of 256 KiB/s.
func requestTimeout(n int64) time.Duration {
	return time.Minute + time.Duration(n/(256<<10))*time.Second
}

// readChunkAt fills buf from f at off; a short read means the file shrank
// after it settled.
func readChunkAt(f *os.File, buf []byte, off int64) (string, error) {
	n, err := f.ReadAt(buf, off)
	if n == len(buf) {
		return "", nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return "file shrank while being read", nil
	}
	return "", err
}

func (w *worker) single(ctx context.Context, s sink.Sink, f *os.File, path string, jb *journal.Job, log *slog.Logger) (string, outcome) {
	u := w.u
	buf := w.buffer(jb.Version.Size)
	if why, err := readChunkAt(f, buf, 0); err != nil {
		return "", classifyOpen(err)
	} else if why != "" {
		return "", outcome{changed: why}
	}
	sum := sink.Digest(sha256.Sum256(buf))
	hexSum := sum.Hex()
	if why := w.recheck(f, path, jb); why != "" {
		return "", outcome{changed: why}
	}
	if err := u.o.Journal.RecordHashes(ctx, jb, hexSum, []journal.Chunk{{Seq: 1, Size: jb.Version.Size, SHA256: hexSum}}); err != nil {
		return "", outcome{err: fmt.Errorf("journal: %w", err)}
	}
	ifAbsent, out := w.plan(ctx, s, jb, hexSum, log)
	if out.done() {
		return hexSum, out
	}
	if out := w.put(ctx, s, jb, buf, sum, ifAbsent, log); out.err != nil {
		return "", out
	}
	// Put returns nil only once the target confirmed the bytes against
	// their SHA-256 (see sink.Sink): that is the verification of what
	// landed. The source gets its last look.
	if why := w.recheck(f, path, jb); why != "" {
		return "", outcome{changed: why}
	}
	return hexSum, outcome{}
}

// sendPreloaded sends a small file the dispatcher read and journaled.
func (w *worker) sendPreloaded(ctx context.Context, jb *journal.Job, body []byte, sum sink.Digest, log *slog.Logger) (string, outcome) {
	s := w.u.o.Sinks[jb.Target]
	hexSum := sum.Hex()
	ifAbsent, out := w.plan(ctx, s, jb, hexSum, log)
	if out.done() {
		return hexSum, out
	}
	if out := w.put(ctx, s, jb, body, sum, ifAbsent, log); out.err != nil {
		return "", out
	}
	// The bytes sent were the job's version when read; the path must still
	// be that version now.
	st, err := srcfile.Lstat(filepath.Join(jb.Watch, filepath.FromSlash(jb.RelPath)))
	if err != nil {
		return "", outcome{changed: fmt.Sprintf("path: %v", err)}
	}
	if why := mismatch("path", versionOf(st), jb); why != "" {
		return "", outcome{changed: why}
	}
	return hexSum, outcome{}
}

// put sends a whole small file, with retries. We hashed exactly the bytes
// we send, so a checksum mismatch means damage in transit: retry. A
// create-only write that finds the key taken is settled by what is there.
func (w *worker) put(ctx context.Context, s sink.Sink, jb *journal.Job, body []byte, sum sink.Digest, ifAbsent bool, log *slog.Logger) outcome {
	err := w.try(ctx, log, "Put", int64(len(body)), func(ctx context.Context) error {
		err := s.Put(ctx, jb.Key, body, sum, ifAbsent)
		if errors.Is(err, sink.ErrChecksum) {
			return sink.NewTransient("Put", err)
		}
		return err
	})
	if errors.Is(err, sink.ErrExists) {
		return w.taken(ctx, s, jb, sum.Hex(), log)
	}
	if err != nil {
		return classifySink(err)
	}
	return outcome{}
}

// done reports whether an outcome ends the job before anything is sent.
func (o outcome) done() bool { return o.err != nil || o.changed != "" || o.ignored || o.skip }

// plan decides, once the content's hash is known, how it goes to the
// target: a path never uploaded is written create-only (an object already
// there is never silently overwritten); content the target already got
// from this path is not sent again (a touched file); a file modified after
// its upload is recorded as such and follows its watch's on_change:
// overwrite (reupload), a key of its own beside the old one (version, also
// create-only; jb.Key is changed to it), or nothing (ignore).
func (w *worker) plan(ctx context.Context, s sink.Sink, jb *journal.Job, hexSum string, log *slog.Logger) (ifAbsent bool, out outcome) {
	old := jb.UploadedSHA256
	if old == "" {
		return true, outcome{}
	}
	if old == hexSum {
		info, err := w.stat(ctx, s, jb.Key, log)
		if err == nil && info.Size == jb.Version.Size && info.SHA256 == hexSum {
			log.Info("content unchanged since its upload and still on the target; nothing to send")
			return false, outcome{skip: true}
		}
		return false, outcome{} // gone or replaced on the target: send it again
	}
	policy := w.u.onChange(jb.Watch)
	if err := w.u.o.Journal.ModifiedAfterUpload(ctx, jb, old, hexSum, string(policy)); err != nil {
		return false, outcome{err: fmt.Errorf("journal: %w", err)}
	}
	log.Info("modified after upload", "old_sha256", old, "new_sha256", hexSum, "on_change", string(policy))
	switch policy {
	case Ignore:
		return false, outcome{ignored: true}
	case Version:
		key, err := VersionedKey(jb.Key, hexSum)
		if err != nil {
			return false, permanent(ClassInvalidKey, err)
		}
		jb.Key = key
		w.slot.rekey(key)
		return true, outcome{}
	}
	return false, outcome{}
}

// taken settles a create-only write that found its key taken: if the
// target holds exactly this content (an earlier attempt landed, or a
// journal was rebuilt), the file is uploaded; otherwise it is a conflict
// for a person to resolve, never an overwrite.
func (w *worker) taken(ctx context.Context, s sink.Sink, jb *journal.Job, hexSum string, log *slog.Logger) outcome {
	info, err := w.stat(ctx, s, jb.Key, log)
	if err != nil {
		return classifySink(err)
	}
	if info.Size == jb.Version.Size && info.SHA256 == hexSum {
		log.Info("the target already holds this content under the key")
		return outcome{}
	}
	return permanent(ClassConflict, fmt.Errorf("the target holds a different object under %q (size %d, sha256 %q; this file: size %d, sha256 %s): not overwritten",
		jb.Key, info.Size, info.SHA256, jb.Version.Size, hexSum))
}

func (w *worker) stat(ctx context.Context, s sink.Sink, key string, log *slog.Logger) (sink.Info, error) {
	var info sink.Info
	err := w.try(ctx, log, "Stat", 0, func(ctx context.Context) error {
		var err error
		info, err = s.Stat(ctx, key)
		if errors.Is(err, sink.ErrNotFound) {
			return retry.Unrecoverable(err)
		}
		return err
	})
	return info, err
}

// verify re-checks the source and checks what landed under the key.
func (w *worker) verify(ctx context.Context, s sink.Sink, f *os.File, path string, jb *journal.Job, hexSum string, log *slog.Logger) outcome {
	if why := w.recheck(f, path, jb); why != "" {
		return outcome{changed: why}
	}
	var info sink.Info
	err := w.try(ctx, log, "Stat", 0, func(ctx context.Context) error {
		var err error
		info, err = s.Stat(ctx, jb.Key)
		if errors.Is(err, sink.ErrNotFound) {
			return sink.NewTransient("Stat", err) // not visible yet
		}
		return err
	})
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
	size, cs := jb.Version.Size, u.o.ChunkSize
	// Pass 1: hash the file and every chunk. S3 takes an object's metadata
	// when the upload is created, so the file's SHA-256 must be known first.
	var chunks []journal.Chunk
	fileHash := sha256.New()
	for off, seq := int64(0), 1; off < size; off, seq = off+cs, seq+1 {
		buf := w.buffer(min(cs, size-off))
		if why, err := readChunkAt(f, buf, off); err != nil {
			return "", classifyOpen(err)
		} else if why != "" {
			return "", outcome{changed: why}
		}
		// The two hashes of the same bytes run on two cores.
		done := make(chan struct{})
		go func() { fileHash.Write(buf); close(done) }()
		chunkSum := sink.Digest(sha256.Sum256(buf))
		<-done
		chunks = append(chunks, journal.Chunk{Seq: seq, Offset: off, Size: int64(len(buf)), SHA256: chunkSum.Hex()})
		if ctx.Err() != nil {
			return "", outcome{err: ctx.Err()}
		}
	}
	var sum sink.Digest
	fileHash.Sum(sum[:0])
	hexSum := sum.Hex()
	if why := w.recheck(f, path, jb); why != "" {
		return "", outcome{changed: why}
	}
	if err := u.o.Journal.RecordHashes(ctx, jb, hexSum, chunks); err != nil {
		return "", outcome{err: fmt.Errorf("journal: %w", err)}
	}
	ifAbsent, out := w.plan(ctx, s, jb, hexSum, log)
	if out.done() {
		return hexSum, out
	}
	uploadID, have, done, out := w.resume(ctx, s, jb, hexSum, chunks, log)
	if done || out.err != nil || out.changed != "" {
		return hexSum, out
	}
	if ifAbsent && uploadID == "" {
		// Before sending a large file create-only, look: a taken key is
		// settled now rather than after all its parts.
		if _, err := w.stat(ctx, s, jb.Key, log); err == nil {
			return hexSum, w.taken(ctx, s, jb, hexSum, log)
		} else if !errors.Is(err, sink.ErrNotFound) {
			return "", classifySink(err)
		}
	}
	if uploadID == "" {
		err := w.try(ctx, log, "CreateMultipart", 0, func(ctx context.Context) error {
			var err error
			uploadID, err = s.CreateMultipart(ctx, jb.Key, size, sum)
			return err
		})
		if err != nil {
			return "", classifySink(err)
		}
		if err := u.o.Journal.SetUploadID(ctx, jb, uploadID); err != nil {
			w.abort(s, jb, uploadID, log)
			return "", outcome{err: fmt.Errorf("journal: %w", err)}
		}
	}
	parts, out := w.sendParts(ctx, s, f, jb, uploadID, chunks, have, log)
	if out.err == nil && out.changed == "" {
		// The last look at the source before the object becomes visible.
		if why := w.recheck(f, path, jb); why != "" {
			out = outcome{changed: why}
		}
	}
	if out.err == nil && out.changed == "" {
		err := w.try(ctx, log, "CompleteMultipart", 0, func(ctx context.Context) error {
			return s.CompleteMultipart(ctx, jb.Key, uploadID, parts, ifAbsent)
		})
		if errors.Is(err, sink.ErrExists) {
			// Someone else's object (or an earlier attempt's) took the key.
			w.abort(s, jb, uploadID, log)
			return hexSum, w.taken(ctx, s, jb, hexSum, log)
		}
		if err != nil {
			out = classifySink(err)
		}
	}
	if out.err != nil || out.changed != "" {
		if out.changed != "" || out.class != "" {
			w.abort(s, jb, uploadID, log)
		}
		// A transient failure or a shutdown keeps the upload, which is
		// journaled, for the next attempt to deal with.
		return "", out
	}
	return hexSum, w.verify(ctx, s, f, path, jb, hexSum, log)
}

// resume deals with the multipart upload an earlier attempt left (after a
// crash, a shutdown or a transient failure). When it belongs to this very
// content (the journaled hash of the file is the one just computed), the
// parts the target already holds with the right SHA-256 are kept: resume
// returns the upload and those parts, and only the others are sent again.
// When the upload no longer exists, the object may already be complete (a
// crash after CompleteMultipart): if it holds this content, done is true
// and nothing is sent. Otherwise the old upload is aborted and resume
// returns "": start a new one.
func (w *worker) resume(ctx context.Context, s sink.Sink, jb *journal.Job, hexSum string, chunks []journal.Chunk, log *slog.Logger) (uploadID string, have map[int]sink.Part, done bool, out outcome) {
	if jb.UploadID == "" {
		return "", nil, false, outcome{}
	}
	if jb.SHA256 != hexSum {
		// Left by another version of the file: its metadata is wrong.
		w.abort(s, jb, jb.UploadID, log)
		return "", nil, false, outcome{}
	}
	var listed []sink.Part
	err := w.try(ctx, log, "ListParts", 0, func(ctx context.Context) error {
		var err error
		listed, err = s.ListParts(ctx, jb.Key, jb.UploadID)
		if errors.Is(err, sink.ErrNotFound) {
			return retry.Unrecoverable(err)
		}
		return err
	})
	switch {
	case errors.Is(err, sink.ErrNotFound):
		var info sink.Info
		err := w.try(ctx, log, "Stat", 0, func(ctx context.Context) error {
			var err error
			info, err = s.Stat(ctx, jb.Key)
			if errors.Is(err, sink.ErrNotFound) {
				return retry.Unrecoverable(err)
			}
			return err
		})
		if err == nil && info.Size == jb.Version.Size && info.SHA256 == hexSum {
			log.Info("the earlier attempt's upload was completed before ferry stopped; nothing to send", "upload_id", jb.UploadID)
			return "", nil, true, outcome{}
		}
		if err != nil && !errors.Is(err, sink.ErrNotFound) {
			return "", nil, false, classifySink(err)
		}
		return "", nil, false, outcome{} // gone (aborted or expired): start over
	case err != nil:
		return "", nil, false, classifySink(err)
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
	return jb.UploadID, have, false, outcome{}
}

// sendParts reads the file a second time, chunk by chunk, and sends each
// chunk with the hash journaled for it in pass 1. The target checks every
// chunk against that hash: a mismatch means the bytes changed in transit
// (retry) or in the source (re-hash to tell which). Reading is sequential;
// sending is not: the parts go out concurrently on the worker's buffer plus
// any idle workers' buffers it can borrow from the pool, so one large file
// does not leave the other workers' share of the network unused.
func (w *worker) sendParts(ctx context.Context, s sink.Sink, f *os.File, jb *journal.Job, uploadID string, chunks []journal.Chunk, have map[int]sink.Part, log *slog.Logger) ([]sink.Part, outcome) {
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
		if out.err != nil || out.changed != "" {
			return // already failing: the rest is cancelled
		}
		c := chunks[r.i]
		switch {
		case errors.Is(r.err, sink.ErrChecksum):
			out = outcome{changed: fmt.Sprintf("chunk %d changed after it was hashed", c.Seq)}
		case r.err != nil:
			out = classifySink(r.err)
		default:
			if err := u.o.Journal.AckChunk(ctx, jb, c.Seq, parts[r.i].ETag); err != nil {
				out = outcome{err: fmt.Errorf("journal: %w", err)}
			} else {
				log.Debug("chunk acknowledged", "chunk_sequence", c.Seq, "size", c.Size, "sha256", c.SHA256)
			}
		}
		if out.err != nil || out.changed != "" {
			cancel()
		}
	}
	for i, c := range chunks {
		if p, ok := have[c.Seq]; ok {
			// Already on the target with the right bytes (a resumed upload).
			p.Offset = c.Offset
			parts[i] = p
			w.slot.done.Add(c.Size)
			if err := u.o.Journal.AckChunk(ctx, jb, c.Seq, p.ETag); err != nil {
				out = outcome{err: fmt.Errorf("journal: %w", err)}
				break
			}
			continue
		}
		if out.err != nil || out.changed != "" {
			break
		}
		if len(free) == 0 {
			select {
			case b := <-u.bufs: // an idle worker's buffer
				free = append(free, b)
			default:
				collect()
			}
		}
		if out.err != nil || out.changed != "" {
			break
		}
		buf := free[len(free)-1]
		free = free[:len(free)-1]
		if int64(cap(buf)) < u.o.ChunkSize {
			buf = make([]byte, u.o.ChunkSize)
		}
		body := buf[:c.Size]
		if why, err := readChunkAt(f, body, c.Offset); err != nil || why != "" {
			free = append(free, buf)
			if err != nil {
				out = classifyOpen(err)
			} else {
				out = outcome{changed: why}
			}
			break
		}
		d, err := sink.ParseDigest(c.SHA256)
		if err != nil {
			free = append(free, buf)
			out = outcome{err: err}
			break
		}
		parts[i] = sink.Part{Number: c.Seq, Offset: c.Offset, Size: c.Size, SHA256: d}
		inflight++
		go func(i int, p *sink.Part) {
			plog := log.With("chunk_sequence", p.Number)
			err := w.try(pctx, plog, "UploadPart", int64(len(body)), func(pctx context.Context) error {
				etag, err := s.UploadPart(pctx, jb.Key, uploadID, *p, body)
				if errors.Is(err, sink.ErrChecksum) {
					if sink.Digest(sha256.Sum256(body)) != p.SHA256 {
						return err // the source changed since pass 1
					}
					return sink.NewTransient("UploadPart", err) // damaged in transit
				}
				p.ETag = etag
				return err
			})
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
	if out.err != nil || out.changed != "" {
		return nil, out
	}
	return parts, outcome{}
}

func (w *worker) abort(s sink.Sink, jb *journal.Job, uploadID string, log *slog.Logger) {
	ctx, cancel := finishCtx()
	defer cancel()
	if err := s.AbortMultipart(ctx, jb.Key, uploadID); err != nil {
		log.Warn("could not abort multipart upload", "upload_id", uploadID, "error", err)
	}
}
