// Package journal is ferry's durable memory and its work queue: a SQLite
// database (WAL, synchronous=FULL, one writer connection) that records every
// file version ferry has taken on and every step of its upload, so that a
// reboot, a crash or a week without network loses nothing and sends nothing
// twice.
//
// Promises:
//   - A method that changes state returns only after the change is durable
//     (committed with a full fsync). Callers act on a transition only after
//     it returned nil.
//   - Transitions from many goroutines share transactions (group commit):
//     each caller waits for its own change to be durable, and one failing
//     change never takes the others in its batch down with it.
//   - Every transition appends an event to a hash-chained, append-only table.
package journal

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite" // driver "sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// ErrCorrupt is returned by Open when SQLite's integrity check fails.
var ErrCorrupt = errors.New("journal is corrupt")

// ErrClosed is returned for work submitted after Close.
var ErrClosed = errors.New("journal is closed")

// Options tunes a Journal. The zero value is the documented default.
type Options struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// DueNow is the clock retries are scheduled by: Claim takes a queued
	// file once its due time (next_attempt_at, set by the caller from this
	// same clock) is not after DueNow. nil means Now. A daemon gives a
	// clock that does not step back with the wall (internal/clock).
	DueNow func() time.Time
	// MaxBatch bounds how many transitions share one transaction
	// (default DefaultMaxBatch).
	MaxBatch int
	// Linger is how long the writer waits for more transitions before
	// committing a batch made only of transitions whose submitters do not
	// wait for them (FinishAsync: the workers go on to their next file).
	// A transition someone waits for ends the wait at once. Zero means
	// DefaultLinger; negative, no wait.
	Linger time.Duration
	// FerryVersion is recorded in the audit records the journal writes
	// itself (migrations) and in those given without one.
	FerryVersion string
	// Exclusive takes the journal's lock (Lock) for as long as it is open:
	// a daemon's, or a rebuild's, journal. Open fails with an *InUseError
	// while another process holds it.
	Exclusive bool
}

// Journal is an open journal. Its methods are safe for concurrent use.
type Journal struct {
	path string
	file os.FileInfo // the file opened at path (CheckFile)
	lock *FileLock   // with Options.Exclusive
	// startCheck says how Open checked the file (StartCheck).
	startCheck string
	w          *sql.DB // the one writer connection, used only by the writer goroutine
	r          *sql.DB // read-only pool
	readMu     sync.Mutex
	readStmts  map[string]*sql.Stmt // readStmt's, prepared on r
	now        func() time.Time
	dueNow     func() time.Time // Options.DueNow
	max        int
	ops        chan *op
	quit       chan struct{}
	exited     chan struct{}
	once       sync.Once

	// chain and auditTail are the tails of the event and audit chains;
	// only the writer goroutine touches them (and lastCheckpoint,
	// journalID).
	chain          chainTail
	auditTail      chainTail
	lastCheckpoint *Checkpoint
	journalID      string
	version        string
	batchMu        sync.Mutex
	batchSubs      []chan struct{} // each 1-buffered: a batch became complete

	// stmts caches prepared statements by query text, so that SQLite does
	// not parse the same SQL for every transition; missing collects the
	// queries of a batch that were not prepared yet. Writer goroutine only.
	stmts   map[string]*sql.Stmt
	missing map[string]struct{}
	known   *sql.Stmt // on the read pool

	// metadataInUse: some dataset has metadata (dataset_metadata rows):
	// events of dataset files look their stamp up (Tx.stamp).
	metadataInUse atomic.Bool

	linger      time.Duration // Options.Linger
	lingerTimer *time.Timer   // the writer's
	commits     atomic.Int64  // transactions the writer committed (tests count them)
	statements  atomic.Int64  // statements the writer ran (benchmarks count them)
}

type chainTail struct {
	seq  int64
	hash string
}

type op struct {
	fn   func(*Tx) error
	done chan error
	// lazy: the submitter goes on without waiting for the result (see
	// Options.Linger).
	lazy bool
}

// DefaultMaxBatch is Options.MaxBatch's default.
const DefaultMaxBatch = 256

// DefaultLinger is Options.Linger's default. Workers finish small files
// every millisecond or so each, and the dispatcher claims the next few
// (a transition it waits for) every 10-20 ms at that rate: lingering that
// long lets the ends ride in the claims' commits (their WAL frames and
// their fsync) instead of commits of their own. With 4 ms, two commits in
// three were ends alone, about four files each; with 25 ms, one in ten
// (5,000 files of 16 KiB to an fs target: 1,316 commits -> 462-486, CPU
// about x0.9). The cost is that much delay before an upload is counted,
// and, after a crash, the files whose ends were in the last 25 ms are
// claimed again (their create-only writes find their objects there and
// check them).
const DefaultLinger = 25 * time.Millisecond

// Tx is the view of a batch transaction given to one transition.
type Tx struct {
	tx        *sql.Tx
	j         *Journal
	chain     *chainTail
	auditTail *chainTail
	now       time.Time
	// onCommit runs, in the writer, once the transaction is durable (only
	// for the ops that were not rolled back).
	onCommit []func()
	// left: the batches a file of which stopped being pending in this
	// transaction (see batchesLeft).
	left map[string]bool
	// stmts: the journal's prepared statements bound to this transaction,
	// each bound once (database/sql makes a new statement per binding;
	// the transaction closes them when it ends).
	stmts map[string]*sql.Stmt
}

func dsn(path string, readOnly bool) string {
	v := url.Values{}
	v.Add("_pragma", "busy_timeout(10000)")
	v.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		v.Add("mode", "ro")
	} else {
		v.Add("_pragma", "journal_mode(WAL)")
		v.Add("_pragma", "synchronous(FULL)")
		// The writer runs each transition of a shared transaction in a
		// savepoint, whose undo copies (the sub-journal) are small and
		// short-lived: in memory, not written to a temporary file.
		v.Add("_pragma", "temp_store(MEMORY)")
		v.Set("_txlock", "immediate")
	}
	return "file:" + filepath.ToSlash(path) + "?" + v.Encode()
}

// Open opens (creating if needed) the journal at path, checks its integrity,
// applies pending migrations and starts the writer.
//
// A new journal is made 0600 (0640 in a setgid folder), marked as ferry's
// (ApplicationID) and moved into place whole. An existing file that is not
// a ferry journal (empty, another database) is refused with ErrCorrupt,
// like a corrupt one: it is never taken for a new journal.
func Open(path string, o Options) (j *Journal, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	var lock *FileLock
	if o.Exclusive {
		if lock, err = Lock(path); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				lock.Unlock()
			}
		}()
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := create(path); err != nil {
			return nil, fmt.Errorf("journal %s: create: %w", path, err)
		}
		fi, err = os.Stat(path)
	}
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if err := checkNotEmpty(fi, path); err != nil {
		return nil, err
	}
	os.SameFile(fi, fi) // Windows reads a file's identity lazily: read it now, for CheckFile
	// Look before the writer's pragmas (WAL) change anything in a file
	// that may not be ferry's.
	if err := checkFile(path); err != nil {
		return nil, err
	}
	// Before the writer opens it: a WAL left by an unclean end is still there.
	clean := closedCleanly(path)
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	j = &Journal{path: path, file: fi, lock: lock, w: w, now: o.Now, max: o.MaxBatch, stmts: map[string]*sql.Stmt{}, missing: map[string]struct{}{},
		version: o.FerryVersion}
	if j.now == nil {
		j.now = time.Now
	}
	if j.dueNow = o.DueNow; j.dueNow == nil {
		j.dueNow = j.now
	}
	switch {
	case o.Linger == 0:
		j.linger = DefaultLinger
	case o.Linger > 0:
		j.linger = o.Linger
	}
	if j.max <= 0 {
		j.max = DefaultMaxBatch
	}
	j.startCheck = "quick_check"
	if clean {
		j.startCheck = "skipped: the journal is as ferry closed it (" + filepath.Base(CleanPath(path)) + ")"
	} else if err := j.check(); err != nil {
		w.Close()
		return nil, err
	}
	if err := checkMark(w, path, true); err != nil {
		w.Close()
		return nil, err
	}
	if err := j.migrate(); err != nil {
		w.Close()
		return nil, fmt.Errorf("journal %s: migrate: %w", path, err)
	}
	if err := w.QueryRow(`SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1`).Scan(&j.chain.seq, &j.chain.hash); err != nil && !errors.Is(err, sql.ErrNoRows) {
		w.Close()
		return nil, fmt.Errorf("journal %s: read chain tail: %w", path, err)
	}
	if err := w.QueryRow(`SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&j.auditTail.seq, &j.auditTail.hash); err != nil && !errors.Is(err, sql.ErrNoRows) {
		w.Close()
		return nil, fmt.Errorf("journal %s: read audit chain tail: %w", path, err)
	}
	var inUse bool
	if err := w.QueryRow(`SELECT EXISTS (SELECT 1 FROM dataset_metadata)`).Scan(&inUse); err != nil {
		w.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	j.metadataInUse.Store(inUse)
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	j.r = r
	// Walks ask Known for every file: prepare it once (per reader connection).
	if j.known, err = r.Prepare(knownQuery); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	j.ops = make(chan *op, 1024)
	j.quit = make(chan struct{})
	j.exited = make(chan struct{})
	go j.writer()
	return j, nil
}

// Path is the journal's file name.
func (j *Journal) Path() string { return j.path }

// check runs SQLite's quick_check: a corrupt journal is never silently reset.
// Only SQLite's own verdict (a failed check, SQLITE_CORRUPT, SQLITE_NOTADB)
// makes ErrCorrupt; other failures (permissions, a lock held too long) are
// reported as they are.
func (j *Journal) check() error {
	return j.integrity(context.Background(), j.w, "quick_check")
}

// IntegrityCheck runs SQLite's full integrity_check on the journal (every
// page, every index against its table), as `ferry journal verify` does: a
// failure is ErrCorrupt.
func (j *Journal) IntegrityCheck(ctx context.Context) error {
	return j.integrity(ctx, j.r, "integrity_check")
}

func (j *Journal) integrity(ctx context.Context, db *sql.DB, pragma string) error {
	corrupt := func(detail string) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, j.path, detail)
	}
	rows, err := db.QueryContext(ctx, `PRAGMA `+pragma)
	if err != nil {
		if isCorrupt(err) {
			return corrupt(err.Error())
		}
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return corrupt(err.Error())
		}
		if s != "ok" {
			msgs = append(msgs, s)
		}
	}
	if err := rows.Err(); err != nil {
		if isCorrupt(err) {
			return corrupt(err.Error())
		}
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if len(msgs) > 0 {
		if len(msgs) > 5 {
			msgs = append(msgs[:5], "...")
		}
		return corrupt(pragma + ": " + strings.Join(msgs, "; "))
	}
	return nil
}

func isCorrupt(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code() & 0xff
	return c == sqlite3.SQLITE_CORRUPT || c == sqlite3.SQLITE_NOTADB
}

type migration struct {
	version int
	name    string
	sql     string
	sum     string
}

func migrations() ([]migration, error) {
	ents, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range ents {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and _", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		s := sha256.Sum256(b)
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b), sum: hex.EncodeToString(s[:])})
	}
	sort.Slice(ms, func(a, b int) bool { return ms[a].version < ms[b].version })
	return ms, nil
}

// SchemaVersion is the newest migration this build knows.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

func (j *Journal) migrate() error {
	if _, err := j.w.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`); err != nil {
		return err
	}
	ms, err := migrations()
	if err != nil {
		return err
	}
	var cur int
	if err := j.w.QueryRow(`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return err
	}
	if len(ms) > 0 && cur > ms[len(ms)-1].version {
		return fmt.Errorf("journal schema version %d is newer than this ferry understands (%d): use a newer ferry", cur, ms[len(ms)-1].version)
	}
	// A migration may rebuild a table that others reference: foreign keys
	// are checked after it (foreign_key_check), not during. The pragma only
	// takes effect outside a transaction.
	if _, err := j.w.Exec(`PRAGMA foreign_keys = OFF`); err != nil {
		return err
	}
	defer j.w.Exec(`PRAGMA foreign_keys = ON`)
	// Each migration applied here gets its own audit record, in order. The
	// audit log is made by a migration: records wait until it exists, then
	// go in the transaction of the migration at hand.
	var pending []AuditRecord
	for _, m := range ms {
		if m.version <= cur {
			continue
		}
		pending = append(pending, AuditRecord{Kind: AuditMigration, FerryVersion: j.version, Subject: m.name, SHA256: m.sum,
			Schema: &SchemaChange{From: cur, To: m.version}})
		cur = m.version
		tx, err := j.w.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if bad, err := foreignKeyViolations(tx); err != nil || bad != "" {
			tx.Rollback()
			if err == nil {
				err = fmt.Errorf("foreign key violations: %s", bad)
			}
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if _, err := tx.Exec(`INSERT INTO schema_migrations (version, name, sha256, applied_at) VALUES (?, ?, ?, ?)`,
			m.version, m.name, m.sum, j.now().UTC().Format(time.RFC3339Nano)); err != nil {
			tx.Rollback()
			return err
		}
		n, err := auditMigrations(tx, pending, j.now())
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("%s: audit log: %w", m.name, err)
		}
		pending = pending[n:]
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// auditMigrations appends the records to the audit log inside tx when the
// log exists there, and says how many it wrote.
func auditMigrations(tx *sql.Tx, rs []AuditRecord, now time.Time) (int, error) {
	var n int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit'`).Scan(&n); err != nil || n == 0 {
		return 0, err
	}
	var tail chainTail
	if err := tx.QueryRow(`SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&tail.seq, &tail.hash); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	for _, r := range rs {
		if _, err := appendAudit(tx.Exec, &tail, r, now); err != nil {
			return 0, err
		}
	}
	return len(rs), nil
}

func foreignKeyViolations(tx *sql.Tx) (string, error) {
	rows, err := tx.Query(`PRAGMA foreign_key_check`)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fk int
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			return "", err
		}
		bad = append(bad, fmt.Sprintf("%s row %d -> %s", table, rowid.Int64, parent))
	}
	return strings.Join(bad, "; "), rows.Err()
}

// Healthy checks that the journal can be written: an empty transaction
// through the writer, committed.
func (j *Journal) Healthy(ctx context.Context) error {
	return j.do(ctx, func(*Tx) error { return nil })
}

// Close stops the writer after the work already submitted and closes the
// database.
func (j *Journal) Close() error {
	j.once.Do(func() { close(j.quit) })
	<-j.exited
	for _, s := range j.stmts {
		s.Close()
	}
	j.readMu.Lock()
	for _, s := range j.readStmts {
		s.Close()
	}
	j.readStmts = nil
	j.readMu.Unlock()
	j.known.Close()
	if j.w == nil { // read-only
		return j.r.Close()
	}
	err := errors.Join(j.r.Close(), j.w.Close())
	if err == nil {
		// Closed cleanly: the next Open need not check (clean.go).
		err = markClean(j.path, j.file)
	}
	return errors.Join(err, j.lock.Unlock())
}

// do submits fn to run in a group-committed transaction and waits until it
// is durable. fn must only use tx; it may run in a transaction shared with
// other callers, inside its own savepoint. Once submitted, the change is
// committed even if ctx is cancelled meanwhile: ctx bounds only the wait to
// submit.
func (j *Journal) do(ctx context.Context, fn func(*Tx) error) error {
	return <-j.submit(ctx, fn)
}

// submit queues fn like do, but returns at once (or when the queue of
// pending transitions, which is bounded, has room) with a channel that
// receives fn's result once it is durable.
func (j *Journal) submit(ctx context.Context, fn func(*Tx) error) <-chan error {
	return j.enqueue(ctx, &op{fn: fn, done: make(chan error, 1)})
}

// submitLazy is submit for a transition nobody waits for at once: the
// writer may hold its batch open for up to Options.Linger for others.
func (j *Journal) submitLazy(ctx context.Context, fn func(*Tx) error) <-chan error {
	return j.enqueue(ctx, &op{fn: fn, done: make(chan error, 1), lazy: true})
}

func (j *Journal) enqueue(ctx context.Context, o *op) <-chan error {
	select {
	case j.ops <- o:
	case <-j.quit:
		o.done <- ErrClosed
	case <-ctx.Done():
		o.done <- ctx.Err()
	}
	return o.done
}

func (j *Journal) writer() {
	defer close(j.exited)
	batch := make([]*op, 0, j.max)
	for {
		batch = batch[:0]
		select {
		case o := <-j.ops:
			batch = append(batch, o)
		case <-j.quit:
			// Drain what was submitted before Close, then stop.
			for {
				select {
				case o := <-j.ops:
					batch = append(batch, o)
					if len(batch) == j.max {
						j.run(batch)
						batch = batch[:0]
					}
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				j.run(batch)
			}
			return
		}
	fill:
		for len(batch) < j.max {
			select {
			case o := <-j.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		j.lingerFor(&batch)
		j.run(batch)
	}
}

// lingerFor holds a batch of lazy transitions open for up to j.linger,
// adding those that arrive, until one arrives that somebody waits for, the
// batch is full, or the journal closes.
func (j *Journal) lingerFor(batch *[]*op) {
	if j.linger <= 0 || len(*batch) >= j.max {
		return
	}
	for _, o := range *batch {
		if !o.lazy {
			return
		}
	}
	if j.lingerTimer == nil {
		j.lingerTimer = time.NewTimer(j.linger)
	} else {
		j.lingerTimer.Reset(j.linger)
	}
	defer j.lingerTimer.Stop()
	for len(*batch) < j.max {
		select {
		case o := <-j.ops:
			*batch = append(*batch, o)
			if !o.lazy {
				return
			}
		case <-j.lingerTimer.C:
			return
		case <-j.quit:
			return
		}
	}
}

// run executes a batch in one transaction, each op in its own savepoint.
func (j *Journal) run(batch []*op) {
	errs := make([]error, len(batch))
	fail := func(err error) {
		for _, o := range batch {
			o.done <- err
		}
	}
	saved, savedAudit := j.chain, j.auditTail
	restore := func() { j.chain, j.auditTail = saved, savedAudit }
	tx, err := j.w.Begin()
	if err != nil {
		fail(fmt.Errorf("journal: begin: %w", err))
		return
	}
	t := &Tx{tx: tx, j: j, chain: &j.chain, auditTail: &j.auditTail, now: j.now()}
	// Another process (ferry dlq, journal archive, a migration) may have
	// appended since this one's last transaction: both tails are read
	// again under the write lock (index lookups), so no chain forks.
	j.chain, j.auditTail = chainTail{}, chainTail{}
	for _, tail := range []struct {
		q string
		t *chainTail
	}{
		{`SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1`, &j.chain},
		{`SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`, &j.auditTail},
	} {
		if err := t.queryRow(tail.q).Scan(&tail.t.seq, &tail.t.hash); err != nil && !errors.Is(err, sql.ErrNoRows) {
			tx.Rollback()
			restore()
			fail(fmt.Errorf("journal: read chain tail: %w", err))
			return
		}
	}
	var keep *staleCommit
	if len(batch) == 1 {
		// Alone in its transaction: no savepoint needed.
		errs[0] = batch[0].fn(t)
		if errs[0] != nil && !errors.As(errs[0], &keep) {
			tx.Rollback()
			restore()
			batch[0].done <- errs[0]
			return
		}
	} else {
		for i, o := range batch {
			if _, err := t.exec(`SAVEPOINT op`); err != nil {
				errs[i] = err
				continue
			}
			before, beforeAudit, hooks := j.chain, j.auditTail, len(t.onCommit)
			errs[i] = o.fn(t)
			if errs[i] != nil && !errors.As(errs[i], &keep) {
				j.chain, j.auditTail, t.onCommit = before, beforeAudit, t.onCommit[:hooks]
				if _, rerr := t.exec(`ROLLBACK TO op`); rerr != nil {
					tx.Rollback()
					restore()
					fail(fmt.Errorf("journal: rollback to savepoint: %w", rerr))
					return
				}
			}
			if _, err := t.exec(`RELEASE op`); err != nil {
				tx.Rollback()
				restore()
				fail(fmt.Errorf("journal: release savepoint: %w", err))
				return
			}
		}
	}
	if err := t.batchesLeft(); err != nil {
		tx.Rollback()
		restore()
		fail(fmt.Errorf("journal: %w", err))
		return
	}
	if err := tx.Commit(); err != nil {
		restore()
		fail(fmt.Errorf("journal: commit: %w", err))
		return
	}
	j.commits.Add(1)
	for _, f := range t.onCommit {
		f()
	}
	for i, o := range batch {
		o.done <- errs[i]
	}
	// Prepare, now that the connection is free, what the batch ran unprepared.
	for q := range j.missing {
		if s, err := j.w.Prepare(q); err == nil {
			j.stmts[q] = s
		}
		delete(j.missing, q)
	}
}

// readStmt returns q prepared on the read pool (once per query text), for
// the reads made many times a second (Due).
func (j *Journal) readStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	j.readMu.Lock()
	defer j.readMu.Unlock()
	if s := j.readStmts[q]; s != nil {
		return s, nil
	}
	s, err := j.r.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if j.readStmts == nil {
		j.readStmts = map[string]*sql.Stmt{}
	}
	j.readStmts[q] = s
	return s, nil
}

// batchesLeft asks, for each batch a file of which stopped being pending
// in the transaction, whether another file still holds it open; when none
// does, the subscribers of BatchCompleted hear of it once the transaction
// is durable. A batch named by an op that was rolled back is asked too: the
// answer is the journal's, whatever asked.
func (t *Tx) batchesLeft() error {
	if len(t.left) == 0 {
		return nil
	}
	t.j.batchMu.Lock()
	subscribed := len(t.j.batchSubs) > 0
	t.j.batchMu.Unlock()
	if !subscribed {
		return nil
	}
	for b := range t.left {
		var waiting bool
		if err := t.queryRow(`SELECT EXISTS (SELECT 1 FROM files WHERE batch_id = ? AND `+inStates(PendingStates()...)+`)`, b).Scan(&waiting); err != nil {
			return fmt.Errorf("is batch %q complete: %w", b, err)
		}
		if !waiting {
			t.onCommit = append(t.onCommit, t.j.nudgeBatch)
			return nil
		}
	}
	return nil
}

func (t *Tx) stmt(q string) *sql.Stmt {
	t.j.statements.Add(1)
	if s := t.stmts[q]; s != nil {
		return s
	}
	if s := t.j.stmts[q]; s != nil {
		if t.stmts == nil {
			t.stmts = map[string]*sql.Stmt{}
		}
		bound := t.tx.Stmt(s)
		t.stmts[q] = bound
		return bound
	}
	t.j.missing[q] = struct{}{}
	return nil
}

func (t *Tx) exec(q string, args ...any) (sql.Result, error) {
	if s := t.stmt(q); s != nil {
		return s.Exec(args...)
	}
	return t.tx.Exec(q, args...)
}

func (t *Tx) queryRow(q string, args ...any) *sql.Row {
	if s := t.stmt(q); s != nil {
		return s.QueryRow(args...)
	}
	return t.tx.QueryRow(q, args...)
}

func (t *Tx) query(q string, args ...any) (*sql.Rows, error) {
	if s := t.stmt(q); s != nil {
		return s.Query(args...)
	}
	return t.tx.Query(q, args...)
}

// Event is one entry of the hash-chained event log.
type Event struct {
	Seq           int64
	Time          time.Time
	Kind          Kind
	FileID        int64 // 0 when none
	CorrelationID string
	BatchID       string
	ChunkSequence int // 0 when none
	// SchemaVersion and ValidationStatus: the metadata of the file's
	// dataset when the event was written ("" for a file in no dataset
	// with a metadata profile, or before its first validation).
	SchemaVersion    string
	ValidationStatus string
	RelPath          string
	Size             int64 // -1 when none
	SHA256           string
	Detail           string
	PrevHash         string
	Hash             string
}

// GenesisHash is the prev_hash of the first event.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// EventHash computes an event's hash: SHA-256 over prev_hash, a newline and
// the canonical encoding of the other fields (see canonical).
func EventHash(e Event) string {
	// One buffer for prev_hash, newline and the encoding; a typical event
	// fits in 512 bytes, so most hashes allocate nothing else.
	var arr [512]byte
	b := append(arr[:0], e.PrevHash...)
	b = append(b, '\n')
	b = appendCanonical(b, e)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// canonical encodes an event's fields, in a fixed order, each as
// name=value followed by a newline, values with strconv.Quote for text,
// decimal for numbers ("" for absent numbers), and time as RFC 3339 UTC
// with nanoseconds. The encoding is documented so an auditor can recompute
// it without ferry.
func canonical(e Event) []byte { return appendCanonical(nil, e) }

// appendCanonical appends canonical(e) to b.
func appendCanonical(b []byte, e Event) []byte {
	key := func(k string) { b = append(b, k...); b = append(b, '=') }
	num := func(k string, v int64, present bool) {
		key(k)
		if present {
			b = strconv.AppendInt(b, v, 10)
		}
		b = append(b, '\n')
	}
	text := func(k, v string) {
		key(k)
		b = strconv.AppendQuote(b, v)
		b = append(b, '\n')
	}
	num("seq", e.Seq, true)
	key("time")
	var ts [40]byte
	b = strconv.AppendQuote(b, string(e.Time.UTC().AppendFormat(ts[:0], time.RFC3339Nano)))
	b = append(b, '\n')
	text("kind", string(e.Kind))
	num("file_id", e.FileID, e.FileID != 0)
	text("correlation_id", e.CorrelationID)
	text("batch_id", e.BatchID)
	num("chunk_sequence", int64(e.ChunkSequence), e.ChunkSequence != 0)
	// Added with metadata (migration 0007): encoded only when set, so
	// that every event written before hashes as it did.
	if e.SchemaVersion != "" || e.ValidationStatus != "" {
		text("schema_version", e.SchemaVersion)
		text("validation_status", e.ValidationStatus)
	}
	text("rel_path", e.RelPath)
	num("size", e.Size, e.Size >= 0)
	text("sha256", e.SHA256)
	text("detail", e.Detail)
	return b
}

// event appends e to the chain inside the transaction.
func (t *Tx) event(e Event) error {
	e.Seq = t.chain.seq + 1
	e.Time = t.now
	e.PrevHash = t.chain.hash
	if e.PrevHash == "" {
		e.PrevHash = GenesisHash
	}
	e.Hash = EventHash(e)
	var fileID, chunk, size any
	if e.FileID != 0 {
		fileID = e.FileID
	}
	if e.ChunkSequence != 0 {
		chunk = e.ChunkSequence
	}
	if e.Size >= 0 {
		size = e.Size
	}
	_, err := t.exec(`INSERT INTO events (seq, time, kind, file_id, correlation_id, batch_id, chunk_sequence, schema_version, validation_status,
		rel_path, size, sha256, detail, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.Time.UTC().Format(time.RFC3339Nano), e.Kind, fileID, e.CorrelationID, e.BatchID, chunk, e.SchemaVersion, e.ValidationStatus, e.RelPath, size, e.SHA256, e.Detail, e.PrevHash, e.Hash)
	if err != nil {
		return fmt.Errorf("append event %s: %w", e.Kind, err)
	}
	t.chain.seq, t.chain.hash = e.Seq, e.Hash
	return nil
}
