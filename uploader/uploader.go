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
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-data/ferry/internal/defaults"
	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/gate"
	"github.com/ferry-data/ferry/uploader/target"
)

// DefaultChunkSize is max_chunk_size's default.
const DefaultChunkSize = 16 << 20

// Options configures an Uploader. Zero values mean the documented defaults.
type Options struct {
	Journal *journal.Journal // required
	// Targets are the configured targets, by name, each with the
	// decorators every request passes (uploader/target); required.
	Targets   map[string]*target.Target
	Workers   int   // max_concurrent_uploads (default 4)
	ChunkSize int64 // max_chunk_size (default 16 MiB)
	// MaxInflightBytes bounds the chunk buffers, so the file bytes held in
	// memory and on the wire: at most this / ChunkSize buffers (at least
	// one, at most one per worker). 0 means one per worker.
	MaxInflightBytes int64
	// OnChange is, by watch root, what to do with a file modified after its
	// upload (default Reupload).
	OnChange map[string]OnChange
	Logger   *slog.Logger // default: discard
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

var _ target.Observer = (*Stats)(nil)

// RequestRetried counts a request tried again (target.Observer): give
// these Stats to the targets' options.
func (s *Stats) RequestRetried(string, string) { s.Requests.Add(1) }

// Attempt is target.Observer's: the totals take nothing from single
// attempts (a worker's progress and failures come through its calls).
func (s *Stats) Attempt(string, string, int64, bool, time.Duration, error) {}

// Uploader runs the dispatcher and its workers.
type Uploader struct {
	o         Options
	log       *slog.Logger
	nudge     chan struct{}
	inputDone chan struct{}
	doneOnce  sync.Once
	stop      chan struct{}
	stopOnce  sync.Once
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
	if len(o.Targets) == 0 {
		return nil, errors.New("uploader: no targets")
	}
	defaults.Set(&o.Workers, DefaultWorkers)
	defaults.Set(&o.ChunkSize, DefaultChunkSize)
	for name, t := range o.Targets {
		if min := t.Sink().MinPartSize(); o.ChunkSize < min {
			return nil, fmt.Errorf("uploader: chunk size %d is below target %q's minimum part size %d", o.ChunkSize, name, min)
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
		bufs: make(chan []byte, nbufs), Stats: o.Stats, slots: make([]slot, o.Workers)}
	if u.Stats == nil {
		u.Stats = new(Stats)
	}
	u.Stats.started.CompareAndSwap(0, o.Now().UnixNano())
	for range nbufs {
		u.bufs <- nil
	}
	return u, nil
}

// BreakerState is a target's circuit breaker state: "closed", "half-open"
// or "open" ("" for an unknown target).
func (u *Uploader) BreakerState(name string) string {
	if t := u.o.Targets[name]; t != nil {
		return t.Gate().State()
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
	// makes workers wait. The journal may hold ends for up to its linger
	// (journal.DefaultLinger) to commit them with the next claim: the
	// channel holds as many as one of its transactions, so that at
	// thousands of small files a second the workers do not wait for the
	// linger.
	completions := make(chan completion, max(4*u.o.Workers, journal.DefaultMaxBatch))
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
		if u.o.Targets[name] == nil {
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
	key   string // where it landed
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
		c.log.Info("uploaded", "key", c.key, "size", c.jb.Version.Size, "sha256", c.sum,
			"duration", u.o.Now().Sub(c.start).String(), "attempt", c.jb.Attempts)
	case errors.Is(err, journal.ErrStale):
		c.log.Info("a newer version of the file settled during the upload; it is queued again")
	default:
		c.log.Error("could not journal the end of an upload; it will be retried after restart", "error", err)
	}
	u.Notify()
}

// dispatch claims due files from the journal a little ahead of the workers
// (at most claimAhead per worker, so that claims share transactions),
// preloads the small ones, and hands them out oldest first.
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
	var lastReap time.Time
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
		for name, t := range u.o.Targets {
			if t.Gate().Open() {
				closed = append(closed, name)
			}
		}
		if len(buf) < u.o.Workers {
			claimed, err := u.claim(ctx, claimAhead*u.o.Workers-len(buf), closed)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("uploader: claim from journal: %w", err)
			}
			buf = append(buf, claimed...)
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
			u.reap(ctx) // a file that changed and then went away ends vanished
			return nil
		}
		if now := u.o.Now(); now.Sub(lastReap) >= reapInterval {
			u.reap(ctx)
			lastReap = now
		}
		wait := min(time.Minute, reapInterval)
		if at, ok, err := u.o.Journal.NextDue(ctx, closed...); err == nil && ok {
			wait = max(at.Sub(u.o.Now()), 10*time.Millisecond)
		}
		for _, name := range closed {
			// Look again when the breaker lets a probe through.
			if t := u.o.Targets[name]; t != nil {
				wait = min(wait, t.Gate().ProbeIn(u.o.Now()))
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
// has already read it and hashed it, and its hash was journaled with its
// claim (for many files in one transaction, where each worker would wait
// for a commit of its own).
type task struct {
	jb   journal.Job
	body []byte // the whole file, or nil: the worker reads it
	sum  sink.Digest
}

// claimAhead is how many files per worker the dispatcher claims ahead
// (when fewer than one per worker are left): each claim is a commit of
// the journal, shared by the files it claims and by the ends of those
// the workers finished meanwhile.
const claimAhead = 4

// preloadMax is the largest file the dispatcher preloads. Preloaded bytes
// in memory are bounded by (claimAhead+1) x workers x preloadMax (claimed
// ahead, and one being sent by each worker): 1.25 MiB for 4 workers.
const preloadMax = 64 << 10

// claim takes up to n due files for the workers: it looks at which are due
// (a read), reads the small ones whole from their source, and claims them
// all in one transition that also journals the small ones' hashes. A file
// whose source is not its journaled version when read is claimed unread:
// its worker finds out what is wrong and records it.
func (u *Uploader) claim(ctx context.Context, n int, exclude []string) ([]task, error) {
	due, err := u.o.Journal.Due(ctx, n, exclude...)
	if err != nil || len(due) == 0 {
		return nil, err
	}
	bodies := make([][]byte, len(due))
	digests := make([]sink.Digest, len(due))
	sums := make([]string, len(due))
	for i := range due {
		jb := &due[i]
		if jb.Version.Size > preloadMax || jb.UploadID != "" || u.o.Targets[jb.Target] == nil {
			continue
		}
		body, ok := readVersion(filepath.Join(jb.Watch, filepath.FromSlash(jb.RelPath)), jb)
		if !ok {
			continue
		}
		digests[i] = sha256.Sum256(body)
		bodies[i], sums[i] = body, digests[i].Hex()
	}
	claimed, from, err := u.o.Journal.ClaimDue(ctx, due, sums)
	if err != nil {
		return nil, err
	}
	ts := make([]task, len(claimed))
	for k, i := range from {
		ts[k] = task{jb: claimed[k], body: bodies[i], sum: digests[i]} // body nil: not read, the worker reads it
	}
	return ts, nil
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

// reapInterval is how often the dispatcher looks whether the sources of
// files waiting as changed are still there.
const reapInterval = time.Minute

// reap ends vanished the files waiting as changed (their source moved on
// under an upload) whose source is gone: deleted or renamed away, they
// will never settle again, and must not hold their batch (or run --once)
// open.
func (u *Uploader) reap(ctx context.Context) {
	defer u.abortAbandoned(ctx)
	rows, err := u.o.Journal.Files(ctx, journal.Changed)
	if err != nil {
		u.log.Warn("cannot read the files waiting to settle again", "error", err.Error())
		return
	}
	for _, r := range rows {
		_, err := srcfile.Lstat(filepath.Join(r.Watch, filepath.FromSlash(r.RelPath)))
		if err == nil || !(srcfile.IsVanished(err) || errors.Is(err, srcfile.ErrNotRegular)) {
			continue
		}
		why := "deleted or renamed while waiting to settle again: " + err.Error()
		if n, err := u.o.Journal.Vanish(ctx, why, r.ID); err != nil {
			u.log.Warn("cannot record a vanished file", "path", r.RelPath, "error", err.Error())
		} else if n > 0 {
			u.log.Warn(ends[journal.KindVanished].msg, "path", r.RelPath, "watch", r.Watch, "reason", why,
				"landed_key", r.UploadedKey, "landed_sha256", r.UploadedSHA256)
		}
	}
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
// abortAbandoned aborts the multipart uploads that vanished and dropped
// rows kept (journal.AbandonedUploads), then journals each abort: a file
// deleted, or dropped from the dead letters, while its upload was kept
// for the next attempt leaves nothing staged on the target.
func (u *Uploader) abortAbandoned(ctx context.Context) {
	ups, err := u.o.Journal.AbandonedUploads(ctx)
	if err != nil {
		u.log.Warn("cannot read the abandoned multipart uploads", "error", err.Error())
		return
	}
	for _, a := range ups {
		t := u.o.Targets[a.Target]
		if t == nil {
			continue // a target taken out of the configuration: kept for when it is back
		}
		actx, cancel := finishCtx()
		err := abortUpload(actx, t.Sink(), a.Key, a.UploadID, u.log.With("target", a.Target, "key", a.Key))
		cancel()
		if err != nil {
			continue // tried again at the next reap
		}
		if err := u.o.Journal.UploadAborted(ctx, a); err != nil {
			u.log.Warn("cannot journal an aborted multipart upload", "upload_id", a.UploadID, "error", err.Error())
			continue
		}
		u.log.Info("aborted the multipart upload of a file that vanished or was dropped", "target", a.Target, "key", a.Key, "upload_id", a.UploadID)
	}
}

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
	gate        *gate.Gate // the current job's target's
	slot        *slot      // its upload in flight, for InFlight
	// landed is what the current job has put on the target so far (nil:
	// nothing). Whatever the job's end, the journal records it: ferry
	// always knows what it wrote.
	landed *journal.Landed
}

func (w *worker) buffer(n int64) []byte {
	if int64(cap(w.buf)) < n {
		// Up to a chunk, or one larger part (see PartSize).
		c := max(min(max(n, 64<<10), w.u.o.ChunkSize), n)
		w.buf = make([]byte, c)
	}
	return w.buf[:n]
}
