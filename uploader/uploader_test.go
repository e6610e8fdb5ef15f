package uploader

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/internal/testtmp"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/gate"
	"github.com/ferry-data/ferry/uploader/sink/memsink"
	"github.com/ferry-data/ferry/uploader/sink/retry"
	"github.com/ferry-data/ferry/uploader/target"
)

const testChunk = 128 << 10 // above preloadMax, so both small-file paths run

// faulty wraps a sink and lets a test interfere with calls.
type faulty struct {
	sink.Sink
	mu      sync.Mutex
	calls   map[string]int
	maxBody int
	before  func(op string, n int, key string) error // n: 1-based count of op calls
}

func (f *faulty) hook(op, key string, body []byte) error {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	n := f.calls[op]
	f.maxBody = max(f.maxBody, len(body))
	hook := f.before
	f.mu.Unlock()
	if hook != nil {
		return hook(op, n, key)
	}
	return nil
}

func (f *faulty) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *faulty) Put(ctx context.Context, key string, body []byte, sum sink.Digest, ifAbsent bool) error {
	if err := f.hook("Put", key, body); err != nil {
		return err
	}
	return f.Sink.Put(ctx, key, body, sum, ifAbsent)
}

func (f *faulty) UploadPart(ctx context.Context, key, id string, p sink.Part, body []byte) (string, error) {
	if err := f.hook("UploadPart", key, body); err != nil {
		return "", err
	}
	return f.Sink.UploadPart(ctx, key, id, p, body)
}

func (f *faulty) CreateMultipart(ctx context.Context, key string, size int64) (string, error) {
	if err := f.hook("CreateMultipart", key, nil); err != nil {
		return "", err
	}
	return f.Sink.CreateMultipart(ctx, key, size)
}

func (f *faulty) Stat(ctx context.Context, key string) (sink.Info, error) {
	if err := f.hook("Stat", key, nil); err != nil {
		return sink.Info{}, err
	}
	return f.Sink.Stat(ctx, key)
}

func (f *faulty) CompleteMultipart(ctx context.Context, key, id string, parts []sink.Part, sum sink.Digest, ifAbsent bool) error {
	if err := f.hook("CompleteMultipart", key, nil); err != nil {
		return err
	}
	return f.Sink.CompleteMultipart(ctx, key, id, parts, sum, ifAbsent)
}

type env struct {
	t     *testing.T
	watch string
	mem   *memsink.Sink // the target
	j     *journal.Journal
	sink  *faulty // mem, with the test's hooks
	u     *Uploader
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, watch: testtmp.Dir(t), mem: memsink.New(memsink.Options{})}
	var err error
	e.j, err = journal.Open(filepath.Join(testtmp.Dir(t), "j.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.j.Close() })
	e.sink = &faulty{Sink: e.mem}
	e.u, err = New(withTargets(Options{Journal: e.j, Workers: 3, ChunkSize: testChunk}, map[string]sink.Sink{"t": e.sink}, retry.Policy{Attempts: 3, InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}, gate.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// add writes a file and journals it as settled.
func (e *env) add(rel string, data []byte) {
	e.t.Helper()
	p := filepath.Join(e.watch, filepath.FromSlash(rel))
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	st, err := srcfile.Lstat(p)
	if err != nil {
		e.t.Fatal(err)
	}
	key, err := ObjectKey("", rel)
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = e.j.RecordSettled(context.Background(), journal.Settled{Watch: e.watch, RelPath: rel, Target: "t", Key: key,
		BatchID: BatchID(rel), Version: journal.Version{Size: st.Size, MtimeNS: st.ModTime.UnixNano(), FileID: st.ID.String()}, Signal: "quiet"})
	if err != nil {
		e.t.Fatal(err)
	}
}

// drain runs the uploader until no work is due.
func (e *env) drain() {
	e.t.Helper()
	e.u.InputDone()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.u.Run(ctx); err != nil {
		e.t.Fatal(err)
	}
	if ctx.Err() != nil {
		e.t.Fatal("uploader did not finish")
	}
}

func (e *env) row(rel string) journal.FileRow {
	e.t.Helper()
	rows, _ := e.j.Files(context.Background())
	for _, r := range rows {
		if r.RelPath == rel {
			return r
		}
	}
	e.t.Fatalf("%s not in journal", rel)
	return journal.FileRow{}
}

func (e *env) landed(rel string, want []byte) {
	e.t.Helper()
	got, ok := e.mem.Object(rel)
	if !ok {
		e.t.Fatalf("%s did not land", rel)
	}
	if !bytes.Equal(got, want) {
		e.t.Fatalf("%s landed with %d bytes that differ from the source's %d", rel, len(got), len(want))
	}
	sum := sha256.Sum256(want)
	if r := e.row(rel); r.State != journal.Uploaded || r.SHA256 != hex.EncodeToString(sum[:]) {
		e.t.Fatalf("%s journaled as %+v", rel, r)
	}
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestUploadSizes(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{
		"empty":            {},
		"one":              {'x'},
		"run1/chunk":       randBytes(testChunk, 1),
		"run1/chunk+1":     randBytes(testChunk+1, 2),
		"run2/a b/several": randBytes(3*testChunk+12345, 3),
		"ü/größe.tif":      randBytes(1000, 4),
		"preload-max":      randBytes(preloadMax, 8),   // read by the dispatcher
		"above-preload":    randBytes(preloadMax+1, 9), // read by a worker, one request
	}
	for rel, data := range files {
		e.add(rel, data)
	}
	e.drain()
	for rel, data := range files {
		e.landed(rel, data)
	}
	if e.sink.maxBody > testChunk {
		t.Errorf("a request carried %d bytes, more than one chunk (%d)", e.sink.maxBody, testChunk)
	}
	if got := e.u.Stats.Uploaded.Load(); got != int64(len(files)) {
		t.Errorf("Stats.Uploaded = %d", got)
	}
	if _, err := e.j.VerifyChain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.mem.Uploads(); n != 0 {
		t.Fatalf("%d multipart uploads left open", n)
	}
}

// A file deleted before its upload is not a dead letter (nobody can do
// anything about it): it ends vanished, with the reason, and is no longer
// pending.
func TestVanishedFileEndsVanishedAndOthersGoOn(t *testing.T) {
	e := newEnv(t)
	e.add("gone", []byte("soon gone"))
	e.add("stays", []byte("here"))
	os.Remove(filepath.Join(e.watch, "gone"))
	e.drain()
	if r := e.row("gone"); r.State != journal.Vanished || !strings.Contains(r.Error, "vanished") || r.UploadedKey != "" {
		t.Fatalf("gone: %+v", r)
	}
	e.landed("stays", []byte("here"))
}

func TestUnreadableFileFails(t *testing.T) {
	if os.Geteuid() == 0 || runtime.GOOS == "windows" {
		t.Skip("root reads any file; on Windows chmod only sets the read-only attribute")
	}
	e := newEnv(t)
	e.add("locked", []byte("secret"))
	os.Chmod(filepath.Join(e.watch, "locked"), 0)
	e.drain()
	if r := e.row("locked"); r.State != journal.Failed || r.ErrorClass != ClassDenied {
		t.Fatalf("locked: %+v", r)
	}
}

func TestFileRewrittenMidUploadIsNotCompleted(t *testing.T) {
	e := newEnv(t)
	data := randBytes(3*testChunk, 5)
	e.add("grows", data)
	e.sink.before = func(op string, n int, key string) error {
		if op == "UploadPart" && n == 2 {
			f, _ := os.OpenFile(filepath.Join(e.watch, "grows"), os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("more data"))
			f.Close()
		}
		return nil
	}
	e.drain()
	if r := e.row("grows"); r.State != journal.Changed {
		t.Fatalf("rewritten file journaled as %+v, want changed", r)
	}
	if _, ok := e.mem.Object("grows"); ok {
		t.Fatal("a stale version was completed")
	}
	if n := e.sink.count("CompleteMultipart"); n != 0 {
		t.Fatalf("CompleteMultipart called %d times", n)
	}
	if e.mem.Uploads() != 0 {
		t.Fatal("the abandoned multipart upload was not aborted")
	}
}

func TestSmallFileReplacedBeforeUploadIsNotSent(t *testing.T) {
	e := newEnv(t)
	e.add("a", []byte("version one"))
	p := filepath.Join(e.watch, "a")
	os.Remove(p)
	os.WriteFile(p, []byte("version two!"), 0o644) // new inode, new size
	e.drain()
	if r := e.row("a"); r.State != journal.Changed {
		t.Fatalf("replaced file journaled as %+v, want changed", r)
	}
	if e.sink.count("Put") != 0 {
		t.Fatal("the replaced file's old version was sent")
	}
}

func TestTransientFailuresAreRetried(t *testing.T) {
	e := newEnv(t)
	data := randBytes(2*testChunk+7, 6)
	e.add("big", data)
	e.add("small", []byte("small"))
	e.sink.before = func(op string, n int, key string) error {
		if n <= 2 && (op == "Put" || op == "UploadPart") {
			return &sink.Error{Class: sink.Transient, Op: op, Status: 503, Err: errors.New("slow down")}
		}
		return nil
	}
	e.drain()
	e.landed("big", data)
	e.landed("small", []byte("small"))
	if e.u.Stats.Requests.Load() == 0 {
		t.Fatal("no retries counted")
	}
}

func TestExhaustedRetriesRequeueLater(t *testing.T) {
	e := newEnv(t)
	e.add("a", []byte("x"))
	e.sink.before = func(op string, n int, key string) error {
		return sink.NewTransient(op, errors.New("connection refused"))
	}
	e.drain()
	r := e.row("a")
	if r.State != journal.Queued || r.ErrorClass != "transient" || r.Attempts != 1 {
		t.Fatalf("after exhausted retries: %+v, want queued for later", r)
	}
	if n := e.sink.count("Put"); n != 3 {
		t.Fatalf("Put tried %d times, want the policy's 3", n)
	}
	at, ok, _ := e.j.NextDue(context.Background())
	if !ok || time.Until(at) < 10*time.Second {
		t.Fatalf("next attempt at %v, want well in the future", at)
	}
}

func TestPermanentFailureIsNotRetried(t *testing.T) {
	e := newEnv(t)
	e.add("denied", []byte("x"))
	e.add("fine", []byte("y"))
	e.sink.before = func(op string, n int, key string) error {
		if key == "denied" {
			return &sink.Error{Class: sink.Permanent, Op: op, Status: 403, Code: "AccessDenied"}
		}
		return nil
	}
	e.drain()
	if r := e.row("denied"); r.State != journal.Failed || r.ErrorClass != ClassPermanent {
		t.Fatalf("denied: %+v", r)
	}
	if n := e.sink.count("Put"); n != 2 {
		t.Fatalf("Put called %d times, want 1 per file", n)
	}
	e.landed("fine", []byte("y"))
}

func TestShutdownReleasesInFlightWork(t *testing.T) {
	e := newEnv(t)
	e.add("slow", randBytes(3*testChunk, 7))
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Bool
	e.sink.before = func(op string, n int, key string) error {
		if op == "UploadPart" {
			started.Store(true)
			cancel()
			return sink.NewTransient(op, context.Canceled)
		}
		return nil
	}
	if err := e.u.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if !started.Load() {
		t.Fatal("upload never started")
	}
	if r := e.row("slow"); r.State != journal.Queued || r.Attempts != 0 {
		t.Fatalf("after shutdown: %+v, want queued, attempt not counted", r)
	}
}

func TestNewRejectsChunkBelowMinimumPart(t *testing.T) {
	e := newEnv(t)
	s3like := &minPart{Sink: e.sink, min: 5 << 20}
	if _, err := New(withTargets(Options{Journal: e.j, ChunkSize: 1 << 20}, map[string]sink.Sink{"s3": s3like}, retry.Policy{}, gate.Policy{})); err == nil {
		t.Fatal("a chunk size below the target's minimum part size was accepted")
	}
}

type minPart struct {
	sink.Sink
	min int64
}

func (m *minPart) MinPartSize() int64 { return m.min }

func TestStopFinishesInFlightAndStartsNothingNew(t *testing.T) {
	e := newEnv(t)
	u, err := New(withTargets(Options{Journal: e.j, Workers: 1, ChunkSize: testChunk}, map[string]sink.Sink{"t": e.sink}, retry.Policy{}, gate.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	e.add("first", []byte("1"))
	e.add("second", []byte("2"))
	inPut, release := make(chan struct{}), make(chan struct{})
	e.sink.before = func(op string, n int, key string) error {
		if op == "Put" && n == 1 {
			close(inPut)
			<-release
		}
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- u.Run(context.Background()) }()
	<-inPut
	u.Stop()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := e.row("first"); r.State != journal.Uploaded {
		t.Fatalf("in-flight file: %+v, want uploaded", r)
	}
	if r := e.row("second"); r.State != journal.Queued {
		t.Fatalf("second file: %+v, want still queued", r)
	}
}

// parallel holds the first parts of an upload until two are in flight at
// once (or a deadline passes), and records the most seen together.
type parallel struct {
	sink.Sink
	mu      sync.Mutex
	now     int
	most    int
	arrived chan struct{}
	once    sync.Once
	wait    time.Duration // how long a part waits for company (default 5 s)
}

func (p *parallel) UploadPart(ctx context.Context, key, id string, part sink.Part, body []byte) (string, error) {
	p.mu.Lock()
	p.now++
	p.most = max(p.most, p.now)
	if p.now == 2 {
		p.once.Do(func() { close(p.arrived) })
	}
	p.mu.Unlock()
	wait := p.wait
	if wait == 0 {
		wait = 5 * time.Second
	}
	select {
	case <-p.arrived:
	case <-time.After(wait):
	}
	defer func() { p.mu.Lock(); p.now--; p.mu.Unlock() }()
	return p.Sink.UploadPart(ctx, key, id, part, body)
}

func TestIdleWorkersBuffersSendPartsConcurrently(t *testing.T) {
	e := newEnv(t)
	ps := &parallel{Sink: e.sink, arrived: make(chan struct{})}
	u, err := New(withTargets(Options{Journal: e.j, Workers: 3, ChunkSize: testChunk}, map[string]sink.Sink{"t": ps}, retry.Policy{}, gate.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(6*testChunk+5, 10)
	e.add("big", data)
	e.u = u
	e.drain()
	e.landed("big", data)
	if ps.most < 2 || ps.most > 3 {
		t.Fatalf("at most %d parts in flight, want 2..3 (the workers' buffers)", ps.most)
	}
	if n := len(u.bufs); n != 3 {
		t.Fatalf("%d buffers back in the pool after the upload, want 3", n)
	}
}

// interruptAfter runs one uploader (one worker, so parts go one at a time)
// that stops the daemon as part n is about to be sent, the way a shutdown
// or a crash interrupts an upload.
func interruptAfter(t *testing.T, e *env, s sink.Sink, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &faulty{Sink: s, before: func(op string, k int, key string) error {
		if op == "UploadPart" && k == n {
			cancel()
			return sink.NewTransient(op, context.Canceled)
		}
		return nil
	}}
	u, err := New(withTargets(Options{Journal: e.j, Workers: 1, ChunkSize: testChunk}, map[string]sink.Sink{"t": f}, retry.Policy{}, gate.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// rerun runs a fresh uploader to completion and returns what it sent.
func rerun(t *testing.T, e *env, s sink.Sink) *faulty {
	t.Helper()
	f := &faulty{Sink: s}
	u, err := New(withTargets(Options{Journal: e.j, Workers: 1, ChunkSize: testChunk}, map[string]sink.Sink{"t": f}, retry.Policy{}, gate.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	e.u = u
	e.drain()
	return f
}

func TestResumeSendsOnlyMissingParts(t *testing.T) {
	e := newEnv(t)
	data := randBytes(5*testChunk+99, 11)
	e.add("big", data)
	interruptAfter(t, e, e.sink.Sink, 3) // parts 1 and 2 acknowledged
	if r := e.row("big"); r.State != journal.Queued {
		t.Fatalf("after the interruption: %+v", r)
	}
	sent := rerun(t, e, e.sink.Sink)
	e.landed("big", data)
	if n := sent.count("UploadPart"); n != 4 {
		t.Fatalf("resumed upload sent %d parts, want the 4 missing of 6", n)
	}
	if n := sent.count("CreateMultipart"); n != 0 {
		t.Fatalf("a new upload was created (%d) instead of resuming", n)
	}
}

func TestResumeAfterTheUploadWentAway(t *testing.T) {
	e := newEnv(t)
	data := randBytes(3*testChunk+1, 12)
	e.add("big", data)
	interruptAfter(t, e, e.sink.Sink, 2)
	// The upload expires (or another tool aborts it) while ferry is down.
	ups, _ := e.mem.ListUploads(context.Background(), "")
	if len(ups) != 1 {
		t.Fatalf("%d open uploads, want the interrupted one", len(ups))
	}
	if err := e.sink.Sink.AbortMultipart(context.Background(), "big", ups[0].ID); err != nil {
		t.Fatal(err)
	}
	sent := rerun(t, e, e.sink.Sink)
	e.landed("big", data)
	if sent.count("UploadPart") != 4 {
		t.Fatalf("sent %d parts, want all 4 again", sent.count("UploadPart"))
	}
}

// completeThenCrash completes the upload on the target and then "crashes"
// before ferry can journal it.
type completeThenCrash struct {
	sink.Sink
	cancel context.CancelFunc
}

func (c *completeThenCrash) CompleteMultipart(ctx context.Context, key, id string, parts []sink.Part, sum sink.Digest, ifAbsent bool) error {
	if err := c.Sink.CompleteMultipart(ctx, key, id, parts, sum, ifAbsent); err != nil {
		return err
	}
	c.cancel()
	return sink.NewTransient("CompleteMultipart", context.Canceled)
}

func TestCompletedBeforeCrashIsNotSentAgain(t *testing.T) {
	e := newEnv(t)
	data := randBytes(2*testChunk+5, 13)
	e.add("big", data)
	ctx, cancel := context.WithCancel(context.Background())
	u, err := New(withTargets(Options{Journal: e.j, Workers: 1, ChunkSize: testChunk}, map[string]sink.Sink{"t": &completeThenCrash{Sink: e.sink.Sink, cancel: cancel}}, retry.Policy{}, gate.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	u.Run(ctx)
	if r := e.row("big"); r.State != journal.Queued {
		t.Fatalf("after the crash: %+v", r)
	}
	sent := rerun(t, e, e.sink.Sink)
	e.landed("big", data)
	if n := sent.count("UploadPart") + sent.count("Put") + sent.count("CompleteMultipart"); n != 0 {
		t.Fatalf("%d requests sent again for an object that was complete", n)
	}
}

func TestChangedWhileDownStartsOver(t *testing.T) {
	e := newEnv(t)
	e.add("big", randBytes(3*testChunk, 14))
	interruptAfter(t, e, e.sink.Sink, 2)
	// Rewritten while ferry was down, and settled again.
	data := randBytes(3*testChunk+10, 15)
	e.add("big", data)
	sent := rerun(t, e, e.sink.Sink)
	e.landed("big", data)
	if sent.count("CreateMultipart") != 1 || sent.count("UploadPart") != 4 {
		t.Fatalf("created %d uploads and sent %d parts, want a new upload of 4 parts", sent.count("CreateMultipart"), sent.count("UploadPart"))
	}
	if n := e.mem.Uploads(); n != 0 {
		t.Fatalf("the old version's upload was left behind (%d open)", n)
	}
}

func TestAbortOrphans(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	known, _ := e.sink.CreateMultipart(ctx, "p/known.bin", 10)
	orphan, _ := e.sink.CreateMultipart(ctx, "p/orphan.bin", 10)
	outside, _ := e.sink.CreateMultipart(ctx, "q/outside.bin", 10)
	// Young uploads are left alone: another writer may still be at work.
	n, err := AbortOrphans(ctx, e.sink, "p/", map[string]bool{known: true}, time.Hour, time.Now(), slog.New(slog.DiscardHandler))
	if err != nil || n != 0 {
		t.Fatalf("AbortOrphans within the ttl = %d, %v; want 0", n, err)
	}
	n, err = AbortOrphans(ctx, e.sink, "p/", map[string]bool{known: true}, time.Hour, time.Now().Add(2*time.Hour), slog.New(slog.DiscardHandler))
	if err != nil || n != 1 {
		t.Fatalf("AbortOrphans = %d, %v; want 1", n, err)
	}
	ups, _ := e.sink.ListUploads(ctx, "")
	left := map[string]bool{}
	for _, u := range ups {
		left[u.ID] = true
	}
	if !left[known] || left[orphan] || !left[outside] {
		t.Fatalf("uploads left %v: want the known one and the one outside the prefix, not the orphan", left)
	}
}

func (e *env) uploaderWith(policy OnChange) *Uploader {
	e.t.Helper()
	u, err := New(withTargets(Options{Journal: e.j, Workers: 2, ChunkSize: testChunk,
		OnChange: map[string]OnChange{e.watch: policy}}, map[string]sink.Sink{"t": e.sink}, retry.Policy{}, gate.Policy{}))
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) stored(key string) []byte {
	e.t.Helper()
	b, ok := e.mem.Object(key)
	if !ok {
		e.t.Fatalf("%s not on the target", key)
	}
	return b
}

func TestOnChange(t *testing.T) {
	for _, size := range []int{100, testChunk - 5, 2*testChunk + 3} { // preloaded, single, multipart
		for _, policy := range []OnChange{Reupload, Version, Ignore} {
			t.Run(fmt.Sprintf("%s/%d", policy, size), func(t *testing.T) {
				e := newEnv(t)
				v1, v2 := randBytes(size, 20), randBytes(size+1, 21)
				e.add("f.bin", v1)
				e.u = e.uploaderWith(policy)
				e.drain()
				e.add("f.bin", v2) // modified after its upload
				e.u = e.uploaderWith(policy)
				e.drain()
				sum2 := sha256.Sum256(v2)
				r := e.row("f.bin")
				switch policy {
				case Reupload:
					if !bytes.Equal(e.stored("f.bin"), v2) || r.State != journal.Uploaded {
						t.Fatalf("reupload: target holds the old bytes, or row %+v", r)
					}
				case Version:
					vk, _ := VersionedKey("f.bin", hex.EncodeToString(sum2[:]))
					if !bytes.Equal(e.stored("f.bin"), v1) || !bytes.Equal(e.stored(vk), v2) || r.State != journal.Uploaded {
						t.Fatalf("version: want the old bytes under f.bin and the new under %s; row %+v", vk, r)
					}
				case Ignore:
					if !bytes.Equal(e.stored("f.bin"), v1) || r.State != journal.Ignored {
						t.Fatalf("ignore: target changed, or row %+v", r)
					}
				}
			})
		}
	}
}

func TestTouchedFileIsNotSentAgain(t *testing.T) {
	e := newEnv(t)
	data := randBytes(testChunk-1, 22)
	e.add("t.bin", data)
	e.drain()
	p := filepath.Join(e.watch, "t.bin")
	later := time.Now().Add(time.Hour)
	os.Chtimes(p, later, later) // same content, new mtime: a new version
	e.add("t.bin", data)
	e.u = e.uploaderWith(Reupload)
	puts := e.sink.count("Put")
	e.drain()
	if n := e.sink.count("Put") - puts; n != 0 {
		t.Fatalf("a touched file was sent again (%d requests)", n)
	}
	if r := e.row("t.bin"); r.State != journal.Uploaded {
		t.Fatalf("row %+v", r)
	}
}

func TestFirstUploadNeverOverwrites(t *testing.T) {
	for _, size := range []int{100, testChunk - 5, 2*testChunk + 3} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			same, other := randBytes(size, 23), randBytes(size, 24)
			// Already on the target (say, from a lost journal): same content
			// under one key, different content under another.
			e.sink.Sink.Put(ctx, "same.bin", same, sha256.Sum256(same), false)
			e.sink.Sink.Put(ctx, "other.bin", other, sha256.Sum256(other), false)
			mine := randBytes(size, 25)
			e.add("same.bin", same)
			e.add("other.bin", mine)
			e.drain()
			if r := e.row("same.bin"); r.State != journal.Uploaded {
				t.Errorf("same content already there: %+v, want uploaded", r)
			}
			r := e.row("other.bin")
			if r.State != journal.Failed || r.ErrorClass != ClassConflict {
				t.Errorf("different content already there: %+v, want failed as a conflict", r)
			}
			if !bytes.Equal(e.stored("other.bin"), other) {
				t.Error("the object already there was overwritten")
			}
			if n := e.mem.Uploads(); n != 0 {
				t.Errorf("%d multipart uploads left behind", n)
			}
		})
	}
}

func TestVersionedKey(t *testing.T) {
	sha := "3fa9c2b1d0e4aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	for in, want := range map[string]string{
		"run1/img.tif":       "run1/img~3fa9c2b1d0e4.tif",
		"a.tar.gz":           "a.tar~3fa9c2b1d0e4.gz",
		"noext":              "noext~3fa9c2b1d0e4",
		"p/.hidden":          "p/.hidden~3fa9c2b1d0e4",
		"dir.d/file":         "dir.d/file~3fa9c2b1d0e4",
		"run 1/größe ü.tiff": "run 1/größe ü~3fa9c2b1d0e4.tiff",
	} {
		if got, err := VersionedKey(in, sha); err != nil || got != want {
			t.Errorf("VersionedKey(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := VersionedKey(strings.Repeat("x", 1020), sha); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("an over-long versioned key: %v", err)
	}
}

// While the target is unreachable nothing is dropped: every file goes back
// to the journal, due later, and goes once the network is back.
func TestOutageWaitsInTheJournal(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	j, err := journal.Open(filepath.Join(testtmp.Dir(t), "outage.db"), journal.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() }) // before its folder is removed
	e.j.Close()                     // the env's journal, replaced by one on the test's clock
	e.j = j
	var down atomic.Bool
	down.Store(true)
	e.sink.before = func(op string, n int, key string) error {
		if down.Load() {
			return sink.NewTransient(op, errors.New("connect: connection refused"))
		}
		return nil
	}
	files := map[string][]byte{}
	for i := range 12 {
		rel := fmt.Sprintf("run/%02d.bin", i)
		files[rel] = randBytes(1000*(i+1)+i*testChunk/4, uint64(30+i))
		e.add(rel, files[rel])
	}
	run := func() {
		t.Helper()
		u, err := New(withTargets(Options{Journal: j, Workers: 3, ChunkSize: testChunk, Now: clock}, map[string]sink.Sink{"t": e.sink}, retry.Policy{Attempts: 2, InitialDelay: time.Millisecond, MaxDelay: time.Millisecond}, gate.Policy{}))
		if err != nil {
			t.Fatal(err)
		}
		u.InputDone()
		if err := u.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	requests := func() int { return e.sink.count("Put") + e.sink.count("CreateMultipart") + e.sink.count("UploadPart") }
	goroutines := runtime.NumGoroutine()
	for round := range 2 { // two runs (restarts) during the outage
		before := requests()
		run()
		for rel := range files {
			if r := e.row(rel); r.State != journal.Queued {
				t.Fatalf("round %d: %s during the outage: %+v, want queued", round, rel, r)
			}
		}
		// The breaker opens after 5 consecutive failures: the other files
		// go back to the queue untried, instead of each retrying.
		if n := requests() - before; n > 5+3 {
			t.Fatalf("round %d: %d requests during the outage, want the breaker's 5 (plus those in flight)", round, n)
		}
	}
	if n := runtime.NumGoroutine(); n > goroutines+2 {
		t.Errorf("%d goroutines after runs in an outage, %d before", n, goroutines)
	}
	// The network is back, and time has passed.
	down.Store(false)
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	run()
	for rel, data := range files {
		e.landed(rel, data)
	}
}

// stalls never answers a Put: a connection that hangs mid-request.
type stalls struct{ sink.Sink }

func (stalls) Put(ctx context.Context, key string, body []byte, sum sink.Digest, ifAbsent bool) error {
	<-ctx.Done()
	return sink.NewTransient("Put", ctx.Err())
}

func TestStalledRequestTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.add("a", []byte("x"))
		u, err := New(withTargets(Options{Journal: e.j, Workers: 1, ChunkSize: testChunk}, map[string]sink.Sink{"t": stalls{e.sink}}, retry.Policy{Attempts: 2, InitialDelay: time.Second, MaxDelay: time.Second}, gate.Policy{}))
		if err != nil {
			t.Fatal(err)
		}
		u.InputDone()
		start := time.Now()
		if err := u.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 2*time.Minute || d > 3*time.Minute {
			t.Fatalf("two stalled attempts took %v, want about two request deadlines", d)
		}
		if r := e.row("a"); r.State != journal.Queued || !strings.Contains(r.Error, "no progress") {
			t.Fatalf("after stalled attempts: %+v, want queued with the stall as reason", r)
		}
	})
}

func TestMaxInflightBytesBoundsTheBuffers(t *testing.T) {
	e := newEnv(t)
	// Each part waits a moment for another: with one buffer none comes.
	ps := &parallel{Sink: e.sink, arrived: make(chan struct{}), wait: 100 * time.Millisecond}
	u, err := New(withTargets(Options{Journal: e.j, Workers: 3, ChunkSize: testChunk, MaxInflightBytes: testChunk}, map[string]sink.Sink{"t": ps}, retry.Policy{}, gate.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(4*testChunk+5, 40)
	e.add("big", data)
	e.u = u
	e.drain()
	e.landed("big", data)
	if ps.most != 1 {
		t.Fatalf("%d parts in flight at once with max_inflight_bytes = one chunk, want 1", ps.most)
	}
}

// Through a long outage with a growing queue, the uploader's goroutines
// and heap stay flat, and every file waits in the journal.
func TestLongOutageStaysFlat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.sink.before = func(op string, n int, key string) error {
			return sink.NewTransient(op, errors.New("no route to host"))
		}
		u, err := New(withTargets(Options{Journal: e.j, Workers: 4, ChunkSize: testChunk}, map[string]sink.Sink{"t": e.sink}, retry.Policy{Attempts: 2, InitialDelay: time.Second, MaxDelay: time.Second}, gate.Policy{}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- u.Run(ctx) }()
		sample := func() (int, uint64) {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return runtime.NumGoroutine(), m.HeapAlloc
		}
		var g0 int
		var h0 uint64
		const files, every = 80, 15 * time.Second // 20 minutes of outage
		for i := range files {
			e.add(fmt.Sprintf("run/%03d.bin", i), randBytes(2000+i, uint64(i)))
			u.Notify()
			time.Sleep(every)
			synctest.Wait()
			if i == 20 {
				g0, h0 = sample()
			}
		}
		g1, h1 := sample()
		if g1 > g0+2 {
			t.Errorf("goroutines grew from %d to %d during the outage", g0, g1)
		}
		if h1 > h0+4<<20 {
			t.Errorf("heap grew from %d to %d bytes during the outage", h0, h1)
		}
		// The breaker's threshold (5), what was in flight when it opened
		// (4), then one probe per open_timeout (30 s).
		requests := e.sink.count("Put")
		if limit := 5 + 4 + int(files*every/(30*time.Second)) + 3; requests > limit {
			t.Errorf("%d requests in %v of outage, want at most %d (threshold, in flight, probes)", requests, files*every, limit)
		}
		// No spinning while the target is away: a dispatcher round per new
		// file, per probe and per worker coming back, not one per tick.
		if w := u.Stats.Wakeups.Load(); w > 20*(files+45) {
			t.Errorf("%d dispatcher rounds in %v of outage", w, files*every)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		rows, _ := e.j.Files(context.Background())
		if len(rows) != files {
			t.Fatalf("%d files journaled, want %d", len(rows), files)
		}
		for _, r := range rows {
			if r.State != journal.Queued {
				t.Fatalf("%s: %s after the outage, want queued", r.RelPath, r.State)
			}
		}
		t.Logf("%v outage, %d files queued: %d requests, %d dispatcher rounds; goroutines %d -> %d; heap %d -> %d KiB",
			files*every, files, requests, u.Stats.Wakeups.Load(), g0, g1, h0>>10, h1>>10)
	})
}

// TestFilesOfAnUnconfiguredTargetWaitInTheJournal: a target taken out of
// the configuration (a reload) leaves its queued files queued, untouched
// and not dead-lettered, while the others upload; a later uploader that
// has the target again sends them, and shares the running totals.
func TestFilesOfAnUnconfiguredTargetWaitInTheJournal(t *testing.T) {
	e := newEnv(t)
	e.add("kept.bin", []byte("for t"))
	p := filepath.Join(e.watch, "gone.bin")
	os.WriteFile(p, []byte("for a target no longer configured"), 0o644)
	gst, _ := srcfile.Lstat(p)
	if _, err := e.j.RecordSettled(context.Background(), journal.Settled{Watch: e.watch, RelPath: "gone.bin", Target: "gone", Key: "gone.bin",
		BatchID: "gone", Version: journal.Version{Size: gst.Size, MtimeNS: gst.ModTime.UnixNano(), FileID: gst.ID.String()}}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	stats := new(Stats)
	u, err := New(withTargets(Options{Journal: e.j, Workers: 2, ChunkSize: testChunk, Stats: stats,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))}, map[string]sink.Sink{"t": e.sink}, retry.Policy{}, gate.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	e.u = u
	first := u.StartedAt()
	e.drain()
	e.landed("kept.bin", []byte("for t"))
	if r := e.row("gone.bin"); r.State != journal.Queued || r.Attempts != 0 || r.Error != "" {
		t.Fatalf("gone.bin is %+v; want queued, untouched", r)
	}
	if !strings.Contains(logs.String(), `"target":"gone","files":1`) {
		t.Errorf("the waiting files were not reported:\n%s", logs.String())
	}
	// The target is configured again (under the same name).
	u, err = New(withTargets(Options{Journal: e.j, Workers: 2, ChunkSize: testChunk, Stats: stats}, map[string]sink.Sink{"t": e.sink, "gone": e.sink}, retry.Policy{}, gate.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	e.u = u
	e.drain()
	e.landed("gone.bin", []byte("for a target no longer configured"))
	if n := stats.Uploaded.Load(); n != 2 {
		t.Errorf("shared stats counted %d uploads, want 2", n)
	}
	if !u.StartedAt().Equal(first) {
		t.Errorf("the second uploader starts its rate window at %v, not at the first's %v", u.StartedAt(), first)
	}
}

// withTargets sets o.Targets from sinks, decorated as the daemon does
// (uploader/target) with the given retry and breaker policies, and with
// o.Stats (made if nil) as their observer.
func withTargets(o Options, sinks map[string]sink.Sink, r retry.Policy, b gate.Policy) Options {
	if o.Stats == nil {
		o.Stats = new(Stats)
	}
	o.Targets = map[string]*target.Target{}
	for name, s := range sinks {
		o.Targets[name] = target.New(name, s, target.Options{Retry: r, Breaker: b, Observer: o.Stats, Log: o.Logger, Now: o.Now})
	}
	return o
}
