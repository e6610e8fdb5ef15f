package main

// Helpers for the end-to-end tests in e2e_test.go: ferry runs in-process
// (run, the whole CLI) against a real versitygw on loopback. Every top-level
// name here starts with e2e so as not to clash with other tests of the
// package.

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/internal/testsrv"
	"github.com/ferry-data/ferry/journal"
)

// Names of the environment variables the test configs point at; e2eEnv's
// getenv provides them, the process environment is never consulted.
const (
	e2eAccessKeyEnv = "E2E_FERRY_S3_ACCESS_KEY"
	e2eSecretKeyEnv = "E2E_FERRY_S3_SECRET_KEY"
	e2ePrefix       = "scope1/"
	e2eChunk        = 5 << 20 // max_chunk_size in every test config
	e2eSettle       = 300 * time.Millisecond
	e2eWait         = 20 * time.Second // bound on waiting for a daemon to deliver
	e2eRunTimeout   = 60 * time.Second // bound on one --once run
)

// e2eExampleExclude are the exclude globs of config.example.toml.
var e2eExampleExclude = []string{"**/*.tmp", "**/~$*", "**/.DS_Store"}

// e2eWatch is one [[watch]] of a test config.
type e2eWatch struct {
	Path    string
	Settle  string // default "300ms"
	Include []string
	Exclude []string // nil: the example's excludes
}

// e2eConfig is a test configuration.
type e2eConfig struct {
	Journal  string
	LogFile  string
	Endpoint string
	Bucket   string
	Watches  []e2eWatch
	// BreakerThreshold and BreakerOpen, when set, are [upload.breaker]
	// failure_threshold and open_timeout.
	BreakerThreshold int
	BreakerOpen      string
}

// e2eQuote renders s as a TOML string (a literal string when it can be).
func e2eQuote(s string) string {
	if !strings.ContainsAny(s, "'\n\r") {
		return "'" + s + "'"
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`)
	return `"` + r.Replace(s) + `"`
}

func e2eQuoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = e2eQuote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// text renders the configuration as TOML.
func (c e2eConfig) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# ferry end-to-end test configuration\n\n")
	fmt.Fprintf(&b, "[journal]\npath = %s\n\n", e2eQuote(c.Journal))
	fmt.Fprintf(&b, "[log]\nfile = %s\nlevel = \"info\"\n\n", e2eQuote(c.LogFile))
	fmt.Fprintf(&b, "[upload]\nmax_concurrent_uploads = 4\nmax_chunk_size = \"5MiB\"\n\n")
	fmt.Fprintf(&b, "[upload.retry]\nattempts = 3\ninitial_delay = \"10ms\"\nmax_delay = \"100ms\"\n\n")
	if c.BreakerThreshold > 0 || c.BreakerOpen != "" {
		fmt.Fprintf(&b, "[upload.breaker]\n")
		if c.BreakerThreshold > 0 {
			fmt.Fprintf(&b, "failure_threshold = %d\n", c.BreakerThreshold)
		}
		if c.BreakerOpen != "" {
			fmt.Fprintf(&b, "open_timeout = %q\n", c.BreakerOpen)
		}
		fmt.Fprintln(&b)
	}
	fmt.Fprintf(&b, "[target.s3]\ntype = \"s3\"\nendpoint = %s\nbucket = %s\nregion = \"us-east-1\"\naccess_key_env = %s\nsecret_key_env = %s\nprefix = %s\n\n",
		e2eQuote(c.Endpoint), e2eQuote(c.Bucket), e2eQuote(e2eAccessKeyEnv), e2eQuote(e2eSecretKeyEnv), e2eQuote(e2ePrefix))
	for _, w := range c.Watches {
		settle := w.Settle
		if settle == "" {
			settle = e2eSettle.String()
		}
		include := w.Include
		if include == nil {
			include = []string{"**/*"}
		}
		exclude := w.Exclude
		if exclude == nil {
			exclude = e2eExampleExclude
		}
		fmt.Fprintf(&b, "[[watch]]\npath = %s\ntarget = \"s3\"\nsettle = %s\nrecursive = true\ninclude = %s\nexclude = %s\n\n",
			e2eQuote(w.Path), e2eQuote(settle), e2eQuoteList(include), e2eQuoteList(exclude))
	}
	return b.String()
}

// e2eEnv is one test's world: a temp dir holding the watched folder, the
// journal, the log and the config, and a bucket on the shared server.
type e2eEnv struct {
	t       *testing.T
	srv     *testsrv.S3
	dir     string
	watch   string // the watched folder
	journal string
	logFile string
	cfgPath string
	bucket  string
}

// e2eSetup makes a fresh world; the bucket is created when create is set.
func e2eSetup(t *testing.T, srv *testsrv.S3, bucket string, create bool) *e2eEnv {
	t.Helper()
	dir := t.TempDir()
	e := &e2eEnv{
		t: t, srv: srv, dir: dir,
		watch:   filepath.Join(dir, "incoming"),
		journal: filepath.Join(dir, "state", "ferry.db"),
		logFile: filepath.Join(dir, "logs", "ferry.log"),
		cfgPath: filepath.Join(dir, "ferry.toml"),
		bucket:  bucket,
	}
	if err := os.MkdirAll(e.watch, 0o755); err != nil {
		t.Fatal(err)
	}
	if create {
		srv.CreateBucket(t, bucket)
	}
	return e
}

// config is the default configuration: one watch on e.watch.
func (e *e2eEnv) config() e2eConfig {
	return e2eConfig{
		Journal: e.journal, LogFile: e.logFile, Endpoint: e.srv.Endpoint, Bucket: e.bucket,
		Watches: []e2eWatch{{Path: e.watch}},
	}
}

func (e *e2eEnv) writeConfig(c e2eConfig) string {
	e.t.Helper()
	text := c.text()
	if err := os.WriteFile(e.cfgPath, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return text
}

// getenv is the environment ferry sees: the credentials, nothing else.
func (e *e2eEnv) getenv(k string) (string, bool) {
	switch k {
	case e2eAccessKeyEnv:
		return e.srv.AccessKey, true
	case e2eSecretKeyEnv:
		return e.srv.SecretKey, true
	}
	return "", false
}

// runOnce runs `ferry run --once --config e.cfgPath` and returns its exit
// code, stdout and stderr.
func (e *e2eEnv) runOnce() (int, string, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eRunTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"run", "--once", "--config", e.cfgPath}, &stdout, &stderr, e.getenv)
	if ctx.Err() != nil {
		e.t.Fatalf("ferry run --once did not finish within %v (exit %d)\nstdout:\n%s\nstderr:\n%s\nlog:\n%s",
			e2eRunTimeout, code, stdout.String(), stderr.String(), e.log())
	}
	return code, stdout.String(), stderr.String()
}

// mustOnce runs --once and requires exit code 0 and the stdout line
// "uploaded N files (B bytes)".
func (e *e2eEnv) mustOnce(files int, bytes int64) {
	e.t.Helper()
	code, stdout, stderr := e.runOnce()
	want := fmt.Sprintf("uploaded %d files (%d bytes)\n", files, bytes)
	if code != exitOK || stdout != want {
		e.t.Fatalf("ferry run --once: exit %d, stdout %q; want exit 0, stdout %q\nstderr:\n%s\nlog:\n%s",
			code, stdout, want, stderr, e.log())
	}
}

// log returns the log file's content ("" when there is none).
func (e *e2eEnv) log() string {
	b, _ := os.ReadFile(e.logFile)
	return string(b)
}

// e2eDaemon is `ferry run` (no --once) in a goroutine.
type e2eDaemon struct {
	cancel  context.CancelFunc
	done    chan int
	ended   time.Time    // when run returned; read only after done
	stdout  bytes.Buffer // read only after done
	stderr  bytes.Buffer
	stopped bool
}

// startDaemon starts ferry and waits until its watcher has listed the
// watched folder (the log says "watching"), so that what the test does next
// reaches ferry through filesystem events, not through the initial walk.
func (e *e2eEnv) startDaemon() *e2eDaemon {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &e2eDaemon{cancel: cancel, done: make(chan int, 1)}
	go func() {
		code := run(ctx, []string{"run", "--config", e.cfgPath}, &d.stdout, &d.stderr, e.getenv)
		d.ended = time.Now()
		d.done <- code
	}()
	e.t.Cleanup(func() {
		// A test that failed early must not leave ferry writing into
		// temp dirs that are being removed.
		if d.stopped {
			return
		}
		cancel()
		select {
		case <-d.done:
		case <-time.After(15 * time.Second):
			e.t.Errorf("ferry daemon did not stop within 15 s of cancellation")
		}
	})
	testsrv.Eventually(e.t, e2eWait, "ferry to start watching", func() (bool, string) {
		select {
		case code := <-d.done:
			d.done <- code
			e.t.Fatalf("ferry exited early with %d\nstderr:\n%s\nlog:\n%s", code, d.stderr.String(), e.log())
		default:
		}
		return strings.Contains(e.log(), `"msg":"watching"`), e.log()
	})
	return d
}

// stop cancels the daemon's context and returns its exit code and how long
// it took to return.
func (d *e2eDaemon) stop(t *testing.T) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	d.cancel()
	return d.wait(t, start)
}

// wait waits for the daemon to return and reports its exit code and how
// long after start run returned.
func (d *e2eDaemon) wait(t *testing.T, start time.Time) (int, time.Duration) {
	t.Helper()
	select {
	case code := <-d.done:
		d.stopped = true
		return code, d.ended.Sub(start)
	case <-time.After(30 * time.Second):
		t.Fatalf("ferry daemon did not return within 30 s of cancellation")
	}
	return -1, 0
}

// e2eData returns n deterministic pseudo-random bytes.
func e2eData(seed uint64, n int) []byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// e2eWriteFile writes data to root/rel (rel slash-separated), making folders.
func e2eWriteFile(t *testing.T, root, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// e2eWriteFiles writes every file of files under root.
func e2eWriteFiles(t *testing.T, root string, files map[string][]byte) {
	t.Helper()
	for rel, data := range files {
		e2eWriteFile(t, root, rel, data)
	}
}

func e2eTotal(files map[string][]byte) int64 {
	var n int64
	for _, b := range files {
		n += int64(len(b))
	}
	return n
}

// e2eKeys maps relative paths to their expected objects: prefix + rel.
func e2eKeys(files map[string][]byte) map[string][]byte {
	m := make(map[string][]byte, len(files))
	for rel, b := range files {
		m[e2ePrefix+rel] = b
	}
	return m
}

// e2eObject is what the bucket holds under a key (from ListObjectsV2).
type e2eObject struct {
	Size         int64
	LastModified time.Time
}

// e2eList lists the whole bucket but for ferry's checkpoints
// (<prefix>_ferry/checkpoints/...: see e2eCheckpoints).
func e2eList(t *testing.T, srv *testsrv.S3, bucket string) map[string]e2eObject {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string]e2eObject{}
	p := s3.NewListObjectsV2Paginator(srv.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListObjectsV2 %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			if strings.Contains(aws.ToString(o.Key), daemon.CheckpointDir) {
				continue
			}
			got[aws.ToString(o.Key)] = e2eObject{Size: aws.ToInt64(o.Size), LastModified: aws.ToTime(o.LastModified)}
		}
	}
	return got
}

// e2eSortedKeys returns m's keys in order.
func e2eSortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// e2eAssertBucket checks that the bucket holds exactly want (key -> bytes):
// no missing and no extra keys, every object byte-identical with user
// metadata sha256 = lowercase hex of its bytes, and no multipart upload
// left open.
func e2eAssertBucket(t *testing.T, srv *testsrv.S3, bucket string, want map[string][]byte) {
	t.Helper()
	got := e2eList(t, srv, bucket)
	gk, wk := e2eSortedKeys(got), e2eSortedKeys(want)
	if strings.Join(gk, "\n") != strings.Join(wk, "\n") {
		t.Errorf("bucket %s keys:\n  got  %q\n  want %q", bucket, gk, wk)
	}
	for _, k := range wk {
		if _, ok := got[k]; ok {
			e2eAssertObject(t, srv, bucket, k, want[k])
		}
	}
	e2eAssertNoMultipart(t, srv, bucket)
}

// e2eAssertObject checks one object's bytes and sha256 metadata.
func e2eAssertObject(t *testing.T, srv *testsrv.S3, bucket, key string, want []byte) {
	t.Helper()
	body, meta, err := e2eGet(srv, bucket, key)
	if err != nil {
		t.Errorf("GetObject %s: %v", key, err)
		return
	}
	if !bytes.Equal(body, want) {
		t.Errorf("object %s: %d bytes (sha256 %s), want %d bytes (sha256 %s)", key, len(body), config.Sum(body), len(want), config.Sum(want))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := testsrv.ObjectSHA256(ctx, srv.Client(), bucket, key, meta)
	if err != nil {
		t.Errorf("object %s: %v", key, err)
	} else if w := config.Sum(want); got != w {
		t.Errorf("object %s: sha256 (tag, else metadata) = %q, want %q (all metadata: %v)", key, got, w, meta)
	}
}

func e2eGet(srv *testsrv.S3, bucket, key string) ([]byte, map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return b, out.Metadata, err
}

// e2eHeadSHA returns the sha256 (tag, else metadata) and LastModified of key, or
// ok=false when there is no such object.
func e2eHead(t *testing.T, srv *testsrv.S3, bucket, key string) (sha string, lastModified time.Time, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && (ae.ErrorCode() == "NotFound" || ae.ErrorCode() == "NoSuchKey") {
			return "", time.Time{}, false
		}
		t.Fatalf("HeadObject %s: %v", key, err)
	}
	sha, err = testsrv.ObjectSHA256(ctx, srv.Client(), bucket, key, out.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	return sha, aws.ToTime(out.LastModified), true
}

// e2eAssertNoMultipart checks that no multipart upload is open in bucket.
func e2eAssertNoMultipart(t *testing.T, srv *testsrv.S3, bucket string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("ListMultipartUploads %s: %v", bucket, err)
	}
	for _, u := range out.Uploads {
		t.Errorf("open multipart upload in %s: key %q upload id %q", bucket, aws.ToString(u.Key), aws.ToString(u.UploadId))
	}
}

// e2eWaitObjects waits until every key of want holds an object whose sha256
// metadata is that of its expected bytes.
func e2eWaitObjects(t *testing.T, srv *testsrv.S3, bucket string, want map[string][]byte, logf func() string) {
	t.Helper()
	testsrv.Eventually(t, e2eWait, fmt.Sprintf("%d objects to land in %s", len(want), bucket), func() (bool, string) {
		var missing []string
		for _, k := range e2eSortedKeys(want) {
			if sha, _, ok := e2eHead(t, srv, bucket, k); !ok || sha != config.Sum(want[k]) {
				missing = append(missing, k)
			}
		}
		return len(missing) == 0, fmt.Sprintf("not (yet) landed: %q\nlog:\n%s", missing, logf())
	})
}

// e2eBackendMtimes returns the modification times, in nanoseconds, of the
// files versitygw's posix backend keeps for each object: a re-upload of an
// object would change them even within the second that S3's LastModified
// resolves.
func e2eBackendMtimes(t *testing.T, srv *testsrv.S3, bucket string, keys []string) map[string]time.Time {
	t.Helper()
	m := map[string]time.Time{}
	for _, k := range keys {
		fi, err := os.Stat(filepath.Join(srv.Root, bucket, filepath.FromSlash(k)))
		if err != nil {
			t.Fatalf("backend file of %s: %v", k, err)
		}
		m[k] = fi.ModTime()
	}
	return m
}

// e2eEvent is one row of the journal's event log.
type e2eEvent struct {
	Seq     int64
	Kind    string
	RelPath string
	Chunk   int
	Detail  string
}

// e2eJournal is the journal of a stopped ferry: its files and events.
type e2eJournal struct {
	files  []journal.FileRow
	events []e2eEvent
}

// e2eReadJournal opens the journal of a ferry that has stopped, verifies
// its event chain and returns its files and events.
func e2eReadJournal(t *testing.T, path string) e2eJournal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatalf("journal.Open: %v", err)
	}
	defer j.Close()
	if _, err := j.VerifyChain(ctx); err != nil {
		t.Errorf("journal event chain: %v", err)
	}
	var out e2eJournal
	if out.files, err = j.Files(ctx); err != nil {
		t.Fatalf("journal files: %v", err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?mode=ro")
	if err != nil {
		t.Fatalf("open journal for reading: %v", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT seq, kind, rel_path, COALESCE(chunk_sequence, 0), detail FROM events ORDER BY seq`)
	if err != nil {
		t.Fatalf("journal events: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e e2eEvent
		if err := rows.Scan(&e.Seq, &e.Kind, &e.RelPath, &e.Chunk, &e.Detail); err != nil {
			t.Fatalf("journal events: %v", err)
		}
		out.events = append(out.events, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("journal events: %v", err)
	}
	return out
}

// count is the number of events of kind for rel ("" = any path).
func (j e2eJournal) count(kind, rel string) int {
	n := 0
	for _, e := range j.events {
		if e.Kind == kind && (rel == "" || e.RelPath == rel) {
			n++
		}
	}
	return n
}

// file returns the journal row of rel.
func (j e2eJournal) file(rel string) (journal.FileRow, bool) {
	for _, f := range j.files {
		if f.RelPath == rel {
			return f, true
		}
	}
	return journal.FileRow{}, false
}

// dump renders the events for failure messages.
func (j e2eJournal) dump() string {
	var b strings.Builder
	for _, e := range j.events {
		fmt.Fprintf(&b, "  %d %s %q chunk=%d %s\n", e.Seq, e.Kind, e.RelPath, e.Chunk, e.Detail)
	}
	return b.String()
}

// e2eAssertUploaded checks that the journal records exactly the files of
// want (relative paths) as uploaded, with the SHA-256 of their bytes.
func e2eAssertUploaded(t *testing.T, j e2eJournal, want map[string][]byte) {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range j.files {
		seen[f.RelPath] = true
		b, ok := want[f.RelPath]
		if !ok {
			t.Errorf("journal has a row for %q (state %s), which should never have been taken on", f.RelPath, f.State)
			continue
		}
		if f.State != journal.Uploaded || f.SHA256 != config.Sum(b) || f.Size != int64(len(b)) || f.Key != e2ePrefix+f.RelPath {
			t.Errorf("journal row %q: state %s size %d sha256 %s key %q error %q; want uploaded, size %d, sha256 %s, key %q",
				f.RelPath, f.State, f.Size, f.SHA256, f.Key, f.Error, len(b), config.Sum(b), e2ePrefix+f.RelPath)
		}
	}
	for _, rel := range e2eSortedKeys(want) {
		if !seen[rel] {
			t.Errorf("journal has no row for %q", rel)
		}
	}
}

// e2eLineOf returns the 1-based line of text that contains substr.
func e2eLineOf(t *testing.T, text, substr string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			return i + 1
		}
	}
	t.Fatalf("no line contains %q in:\n%s", substr, text)
	return 0
}

// e2eStartProxy starts an HTTP reverse proxy on loopback in front of srv
// and returns its URL, for a config's endpoint. hook sees every request
// first: it returns true when it answered the request itself, false to pass
// it on (possibly with a replaced body). The Host header is kept, so
// SigV4 signatures made for the proxy's address stay valid.
func e2eStartProxy(t *testing.T, srv *testsrv.S3, hook func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{Proxy: nil}
	rp.ErrorLog = log.New(io.Discard, "", 0) // requests ferry gave up on
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hook(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ps.Close)
	return ps.URL
}

// e2eSlowDown answers a request with S3's 503 SlowDown.
func e2eSlowDown(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	e2eS3Error(w, http.StatusServiceUnavailable, "SlowDown")
}

// e2eS3Error answers with an S3 error document.
func e2eS3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+code+`</Code><Message>e2e proxy</Message></Error>`)
}

// e2eFlipReader flips one bit of the byte at offset at.
type e2eFlipReader struct {
	r   io.ReadCloser
	off int64
	at  int64
}

func (f *e2eFlipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.off && f.at < f.off+int64(n) {
		p[f.at-f.off] ^= 0x01
	}
	f.off += int64(n)
	return n, err
}

func (f *e2eFlipReader) Close() error { return f.r.Close() }
