package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The dataset lifecycle, declared once like the file lifecycle
// (lifecycle.go): every change to a datasets row is one of the event kinds
// below, and the table says which states it may leave and the state it
// enters. A dataset is a folder of a watch that the watch's `dataset`
// pattern matches (a run folder); its files are the files rows of the same
// watch whose batch_id is the dataset's rel_path.

// DatasetState is where a dataset stands.
type DatasetState string

// The states of a datasets row; DatasetNone is that of a row that does not
// exist yet.
const (
	DatasetNone      DatasetState = ""
	DatasetOpen      DatasetState = "open"       // files arrive; its completion condition has not held yet
	DatasetComplete  DatasetState = "complete"   // the instrument (or a quiet period) says it is complete; its files are still landing
	DatasetClosing   DatasetState = "closing"    // every file landed and verified; the manifest and crate are owed
	DatasetClosed    DatasetState = "closed"     // manifest and RO-Crate landed
	DatasetFailedRun DatasetState = "failed_run" // closed, and the instrument reported the run did not complete successfully
)

// DatasetStateInfo describes a dataset state.
type DatasetStateInfo struct {
	State DatasetState
	// Closed: the manifest and crate landed; nothing of the dataset may
	// land after them.
	Closed bool
	Doc    string
}

var datasetStateInfo = []DatasetStateInfo{
	{DatasetOpen, false, "files arrive; its completion condition has not held yet"},
	{DatasetComplete, false, "complete by its completion condition; waiting until every file has settled and landed, verified"},
	{DatasetClosing, false, "every file landed and verified; manifest-sha256.txt and ro-crate-metadata.json are being written"},
	{DatasetClosed, true, "manifest and RO-Crate landed"},
	{DatasetFailedRun, true, "manifest and RO-Crate landed; the instrument reported that the run did not complete successfully"},
}

// DatasetStates lists every dataset state.
func DatasetStates() []DatasetState {
	out := make([]DatasetState, len(datasetStateInfo))
	for i, s := range datasetStateInfo {
		out[i] = s.State
	}
	return out
}

// Info describes s (the zero value for an unknown state).
func (s DatasetState) Info() DatasetStateInfo {
	for _, i := range datasetStateInfo {
		if i.State == s {
			return i
		}
	}
	return DatasetStateInfo{}
}

// Dataset event kinds.
const (
	KindDatasetOpened    Kind = "dataset_opened"
	KindDatasetCompleted Kind = "dataset_completed"
	KindDatasetClosing   Kind = "dataset_closing"
	KindDatasetClosed    Kind = "dataset_closed"
	KindDatasetFailedRun Kind = "dataset_failed_run"
)

// DatasetRule is one edge set of the dataset lifecycle.
type DatasetRule struct {
	Kind Kind
	From []DatasetState
	To   DatasetState
	Doc  string
}

var datasetLifecycle = []DatasetRule{
	{KindDatasetOpened, []DatasetState{DatasetNone}, DatasetOpen,
		"the first file of a folder that the watch's dataset pattern matches settled"},
	{KindDatasetCompleted, []DatasetState{DatasetOpen}, DatasetComplete,
		"its completion condition held (signal, and the instrument's outcome, recorded)"},
	{KindDatasetClosing, []DatasetState{DatasetComplete}, DatasetClosing,
		"every file settled and landed, verified: the manifest's content is journaled before it is written"},
	{KindDatasetClosed, []DatasetState{DatasetClosing}, DatasetClosed,
		"the manifest and then the RO-Crate landed, create-only; its notifications are queued"},
	{KindDatasetFailedRun, []DatasetState{DatasetClosing}, DatasetFailedRun,
		"as dataset_closed, for a run the instrument reported failed"},
}

// DatasetRules returns the dataset lifecycle table.
func DatasetRules() []DatasetRule { return append([]DatasetRule(nil), datasetLifecycle...) }

var datasetRules = func() map[Kind]map[DatasetState]*DatasetRule {
	m := map[Kind]map[DatasetState]*DatasetRule{}
	for i := range datasetLifecycle {
		r := &datasetLifecycle[i]
		if m[r.Kind] == nil {
			m[r.Kind] = map[DatasetState]*DatasetRule{}
		}
		for _, s := range r.From {
			if m[r.Kind][s] != nil {
				panic(fmt.Sprintf("journal: dataset lifecycle: %s from %q declared twice", r.Kind, s))
			}
			m[r.Kind][s] = r
		}
	}
	return m
}()

func datasetRuleFor(kind Kind, from DatasetState) (*DatasetRule, error) {
	byState, ok := datasetRules[kind]
	if !ok {
		return nil, fmt.Errorf("%w: unknown dataset event kind %q", ErrTransition, kind)
	}
	r := byState[from]
	if r == nil {
		return nil, fmt.Errorf("%w: %s from dataset state %q", ErrTransition, kind, from)
	}
	return r, nil
}

// DatasetKind reports whether kind belongs to the dataset lifecycle.
func DatasetKind(kind Kind) bool { _, ok := datasetRules[kind]; return ok }

// DatasetRef names a dataset and where it lands.
type DatasetRef struct {
	Watch     string
	RelPath   string
	Target    string
	KeyPrefix string // object key of the dataset's folder, ending in "/"
	// Profile is the watch's metadata profile ("" for none): its files
	// wait for the dataset's metadata validation (metadata.go).
	Profile string
}

// Dataset is a datasets row with its files counted.
type Dataset struct {
	DatasetRef
	ID             int64
	State          DatasetState
	Signal         string
	Outcome        string
	Reason         string
	Files          int // in the manifest (from closing)
	Bytes          int64
	ManifestSHA256 string
	CrateSHA256    string
	OpenedAt       time.Time
	CompletedAt    time.Time
	ClosingAt      time.Time
	ClosedAt       time.Time
	// Counted from its files rows.
	Total, Landed, Waiting, DeadLetters int
	TotalBytes, LandedBytes             int64
	// LastSettled is when a file of it last settled (zero: none yet): the
	// start of a quiet period.
	LastSettled time.Time
}

const datasetColumns = `d.id, d.watch, d.rel_path, d.target, d.key_prefix, d.state, d.signal, d.outcome, d.reason, d.files, d.bytes,
	COALESCE(d.manifest_sha256, ''), COALESCE(d.crate_sha256, ''), d.opened_at, COALESCE(d.completed_at, 0), COALESCE(d.closing_at, 0), COALESCE(d.closed_at, 0)`

// scanDataset reads datasetColumns into d, then extra.
func scanDataset(sc scanner, d *Dataset, extra ...any) error {
	var opened, completed, closing, closed int64
	err := sc.Scan(append([]any{&d.ID, &d.Watch, &d.RelPath, &d.Target, &d.KeyPrefix, &d.State, &d.Signal, &d.Outcome, &d.Reason, &d.Files, &d.Bytes,
		&d.ManifestSHA256, &d.CrateSHA256, &opened, &completed, &closing, &closed}, extra...)...)
	tm := func(ns int64) time.Time {
		if ns == 0 {
			return time.Time{}
		}
		return time.Unix(0, ns).UTC()
	}
	d.OpenedAt, d.CompletedAt, d.ClosingAt, d.ClosedAt = tm(opened), tm(completed), tm(closing), tm(closed)
	return err
}

// datasetChange is what one dataset transition carries.
type datasetChange struct {
	Kind           Kind
	Signal         string
	Outcome        string
	Reason         string
	Files          int
	Bytes          int64
	ManifestSHA256 string
	CrateSHA256    string
}

func (c *datasetChange) detail(d *Dataset, prev DatasetState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "watch=%s target=%s previous_state=%s state=%s", strconv.Quote(d.Watch), detailWord(d.Target), detailWord(string(prev)), d.State)
	switch c.Kind {
	case KindDatasetOpened:
		fmt.Fprintf(&b, " key_prefix=%s", strconv.Quote(d.KeyPrefix))
	case KindDatasetCompleted:
		fmt.Fprintf(&b, " signal=%s outcome=%s reason=%s", strconv.Quote(c.Signal), detailWord(c.Outcome), strconv.Quote(c.Reason))
	case KindDatasetClosing:
		fmt.Fprintf(&b, " files=%d bytes=%d manifest_sha256=%s", c.Files, c.Bytes, detailWord(c.ManifestSHA256))
	case KindDatasetClosed, KindDatasetFailedRun:
		fmt.Fprintf(&b, " crate_sha256=%s", detailWord(c.CrateSHA256))
	}
	return b.String()
}

// ErrNoDataset is matched by the error for a dataset the journal does not hold.
var ErrNoDataset = errors.New("no such dataset")

func (t *Tx) dataset(watch, rel string) (Dataset, error) {
	var d Dataset
	err := scanDataset(t.queryRow(`SELECT `+datasetColumns+` FROM datasets d WHERE d.watch = ? AND d.rel_path = ?`, watch, rel), &d)
	if errors.Is(err, sql.ErrNoRows) {
		return Dataset{}, fmt.Errorf("%w: %s in %s", ErrNoDataset, rel, watch)
	}
	return d, err
}

// moveDataset applies c to d (DatasetNone: a new row) by the table, writes
// the row and appends the event.
func (t *Tx) moveDataset(d *Dataset, c *datasetChange) error {
	prev := d.State
	rule, err := datasetRuleFor(c.Kind, prev)
	if err != nil {
		return fmt.Errorf("dataset %s: %w", d.RelPath, err)
	}
	now := t.now.UnixNano()
	d.State = rule.To
	switch c.Kind {
	case KindDatasetOpened:
		d.OpenedAt = t.now
		res, err := t.exec(`INSERT INTO datasets (watch, rel_path, target, key_prefix, state, opened_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			d.Watch, d.RelPath, d.Target, d.KeyPrefix, d.State, now, now)
		if err != nil {
			return err
		}
		if d.ID, err = res.LastInsertId(); err != nil {
			return err
		}
	case KindDatasetCompleted:
		d.Signal, d.Outcome, d.Reason, d.CompletedAt = c.Signal, c.Outcome, c.Reason, t.now
		_, err = t.exec(`UPDATE datasets SET state = ?, signal = ?, outcome = ?, reason = ?, completed_at = ?, updated_at = ? WHERE id = ?`,
			d.State, d.Signal, d.Outcome, d.Reason, now, now, d.ID)
	case KindDatasetClosing:
		d.Files, d.Bytes, d.ManifestSHA256, d.ClosingAt = c.Files, c.Bytes, c.ManifestSHA256, t.now
		_, err = t.exec(`UPDATE datasets SET state = ?, files = ?, bytes = ?, manifest_sha256 = ?, closing_at = ?, updated_at = ? WHERE id = ?`,
			d.State, d.Files, d.Bytes, d.ManifestSHA256, now, now, d.ID)
	case KindDatasetClosed, KindDatasetFailedRun:
		d.CrateSHA256, d.ClosedAt = c.CrateSHA256, t.now
		_, err = t.exec(`UPDATE datasets SET state = ?, crate_sha256 = ?, closed_at = ?, updated_at = ? WHERE id = ?`,
			d.State, d.CrateSHA256, now, now, d.ID)
	}
	if err != nil {
		return err
	}
	e := Event{Kind: c.Kind, BatchID: d.RelPath, RelPath: d.RelPath, Size: -1, Detail: c.detail(d, prev)}
	if e.SchemaVersion, e.ValidationStatus, err = t.stamp(d.Watch, d.RelPath); err != nil {
		return err
	}
	return t.event(e)
}

// settleInDataset opens s's dataset if it is new. For a dataset already
// closing or closed it returns why s may not be uploaded into it.
func (t *Tx) settleInDataset(s Settled) (string, error) {
	if s.Dataset == nil {
		return "", nil
	}
	ref := *s.Dataset
	d, err := t.dataset(ref.Watch, ref.RelPath)
	switch {
	case errors.Is(err, ErrNoDataset):
		d = Dataset{DatasetRef: ref}
		return "", t.moveDataset(&d, &datasetChange{Kind: KindDatasetOpened})
	case err != nil:
		return "", err
	case d.State == DatasetClosing || d.State.Info().Closed:
		return fmt.Sprintf("dataset %s is %s (its manifest and RO-Crate list what it held): a file that arrives after them is not uploaded into it", d.RelPath, d.State), nil
	}
	return "", nil
}

// OpenDataset journals a dataset's first sight (dataset_opened); a
// dataset already journaled is left as it is. It returns the dataset.
func (j *Journal) OpenDataset(ctx context.Context, ref DatasetRef) (Dataset, error) {
	if ref.Watch == "" || ref.RelPath == "" || ref.Target == "" {
		return Dataset{}, errors.New("open dataset: watch, rel_path and target are required")
	}
	var out Dataset
	err := j.do(ctx, func(t *Tx) error {
		d, err := t.dataset(ref.Watch, ref.RelPath)
		if err == nil {
			out = d
			return nil
		}
		if !errors.Is(err, ErrNoDataset) {
			return err
		}
		out = Dataset{DatasetRef: ref}
		return t.moveDataset(&out, &datasetChange{Kind: KindDatasetOpened})
	})
	return out, err
}

// CompleteDataset journals that a dataset's completion condition held:
// signal names it, outcome ("completed" or "failed_run") and reason are the
// instrument's word.
func (j *Journal) CompleteDataset(ctx context.Context, watch, rel, signal, outcome, reason string) error {
	if outcome != "completed" && outcome != "failed_run" {
		return fmt.Errorf("complete dataset %s: outcome %q", rel, outcome)
	}
	return j.do(ctx, func(t *Tx) error {
		d, err := t.dataset(watch, rel)
		if err != nil {
			return err
		}
		return t.moveDataset(&d, &datasetChange{Kind: KindDatasetCompleted, Signal: signal, Outcome: outcome, Reason: reason})
	})
}

// DatasetFile is one landed file of a dataset, as its manifest lists it.
type DatasetFile struct {
	RelPath string // relative to the watch root
	Key     string // where it landed
	Size    int64
	SHA256  string
	MTime   time.Time
}

var datasetFilesQuery = `SELECT rel_path, COALESCE(uploaded_key, object_key), size, mtime_ns, COALESCE(uploaded_sha256, '') FROM files
	WHERE watch = ? AND batch_id = ? AND ` + inStates(datasetListed...) + ` ORDER BY rel_path`

func scanDatasetFile(sc scanner) (DatasetFile, error) {
	var f DatasetFile
	var mt int64
	err := sc.Scan(&f.RelPath, &f.Key, &f.Size, &mt, &f.SHA256)
	f.MTime = time.Unix(0, mt).UTC()
	return f, err
}

// DatasetFiles returns the files a dataset's manifest lists (or would list
// now), by path.
func (j *Journal) DatasetFiles(ctx context.Context, watch, rel string) ([]DatasetFile, error) {
	rs, err := j.r.QueryContext(ctx, datasetFilesQuery, watch, rel)
	return collect(rs, err, scanDatasetFile)
}

// BatchVersions returns the version the journal holds of every file of a
// watch's batch (a dataset), by path: what the dataset loop compares its
// folder with, to know that nothing in it is left to settle.
func (j *Journal) BatchVersions(ctx context.Context, watch, batch string) (map[string]Version, error) {
	rs, err := j.r.QueryContext(ctx, `SELECT rel_path, size, mtime_ns, file_id FROM files WHERE watch = ? AND batch_id = ?`, watch, batch)
	type rv struct {
		rel string
		v   Version
	}
	vs, err := collect(rs, err, func(sc scanner) (rv, error) {
		var x rv
		return x, sc.Scan(&x.rel, &x.v.Size, &x.v.MtimeNS, &x.v.FileID)
	})
	if err != nil {
		return nil, err
	}
	m := make(map[string]Version, len(vs))
	for _, x := range vs {
		m[x.rel] = x.v
	}
	return m, nil
}

// ErrDatasetNotReady is matched by the error of a closing attempted while
// a file of the dataset has not landed.
var ErrDatasetNotReady = errors.New("dataset not ready to close")

// Which files rows a dataset's manifest lists, and which hold it open.
// Uploaded and ignored rows landed (ignored: modified after upload, the
// target keeps what landed); vanished and dropped rows are not part of it
// (the source went away before its upload, or a person dropped it); any
// other state holds the dataset open.
var (
	datasetListed = []State{Uploaded, Ignored}
	datasetSkips  = []State{Vanished, Dropped}
)

// CloseDataset journals, for a complete dataset whose files have all
// landed, the closing intent (dataset_closing: how many files, their bytes
// and the manifest's SHA-256) and returns the files it lists. manifest
// makes the manifest's bytes from the files, inside the transaction, so
// that what is journaled is what will be written. A file still pending or
// failed refuses the closing with ErrDatasetNotReady.
func (j *Journal) CloseDataset(ctx context.Context, watch, rel string, manifest func([]DatasetFile) (sha string, err error)) ([]DatasetFile, error) {
	var files []DatasetFile
	err := j.do(ctx, func(t *Tx) error {
		files = nil
		d, err := t.dataset(watch, rel)
		if err != nil {
			return err
		}
		if d.State != DatasetComplete {
			return fmt.Errorf("dataset %s: %w: closing from state %q", rel, ErrTransition, d.State)
		}
		var blocking int
		var example, exampleState string
		if err := t.queryRow(`SELECT COUNT(*), COALESCE(MIN(rel_path), ''), COALESCE(MIN(state), '') FROM files
			WHERE watch = ? AND batch_id = ? AND NOT (`+inStates(append(datasetListed, datasetSkips...)...)+`)`, watch, rel).
			Scan(&blocking, &example, &exampleState); err != nil {
			return err
		}
		if blocking > 0 {
			return fmt.Errorf("dataset %s: %w: %d file(s) not landed (e.g. %s, %s)", rel, ErrDatasetNotReady, blocking, example, exampleState)
		}
		rs, err := t.query(datasetFilesQuery, watch, rel)
		files, err = collect(rs, err, scanDatasetFile)
		if err != nil {
			return err
		}
		var bytes int64
		for _, f := range files {
			if f.SHA256 == "" {
				return fmt.Errorf("dataset %s: %w: %s landed without a recorded SHA-256", rel, ErrDatasetNotReady, f.RelPath)
			}
			bytes += f.Size
		}
		sha, err := manifest(files)
		if err != nil {
			return err
		}
		return t.moveDataset(&d, &datasetChange{Kind: KindDatasetClosing, Files: len(files), Bytes: bytes, ManifestSHA256: sha})
	})
	return files, err
}

// Notification is an event owed to a [[notify]] endpoint.
type Notification struct {
	ID        int64
	EventID   string // idempotency key
	Endpoint  string // the endpoint's id (no secret)
	Type      string
	DatasetID int64
	Body      string
	Attempts  int
	NextAt    time.Time
	LastError string
	CreatedAt time.Time
	// Delivered is when the endpoint acknowledged it (zero: pending).
	Delivered time.Time
}

// ClosedDataset journals that the manifest and then the crate landed
// (dataset_closed, or dataset_failed_run when the instrument said the run
// failed) and, in the same transaction, queues the notifications owed.
func (j *Journal) ClosedDataset(ctx context.Context, watch, rel, crateSHA string, notes []Notification) error {
	return j.do(ctx, func(t *Tx) error {
		d, err := t.dataset(watch, rel)
		if err != nil {
			return err
		}
		kind := KindDatasetClosed
		if d.Outcome == "failed_run" {
			kind = KindDatasetFailedRun
		}
		if err := t.moveDataset(&d, &datasetChange{Kind: kind, CrateSHA256: crateSHA}); err != nil {
			return err
		}
		for _, n := range notes {
			n.DatasetID = d.ID
			if err := t.queueNotification(n); err != nil {
				return err
			}
		}
		return nil
	})
}

func (t *Tx) queueNotification(n Notification) error {
	if n.EventID == "" || n.Endpoint == "" || n.Type == "" {
		return errors.New("notification: event id, endpoint and type are required")
	}
	var ds any
	if n.DatasetID != 0 {
		ds = n.DatasetID
	}
	_, err := t.exec(`INSERT INTO notifications (event_id, endpoint, type, dataset_id, body, state, created_at)
		VALUES (?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (event_id, endpoint) DO NOTHING`,
		n.EventID, n.Endpoint, n.Type, ds, n.Body, t.now.UnixNano())
	return err
}

// QueueNotifications queues notifications not tied to a dataset's closing
// (a file's dead letter); an event id already queued for an endpoint is
// not queued again.
func (j *Journal) QueueNotifications(ctx context.Context, notes []Notification) error {
	return j.do(ctx, func(t *Tx) error {
		for _, n := range notes {
			if err := t.queueNotification(n); err != nil {
				return err
			}
		}
		return nil
	})
}

const notificationColumns = `id, event_id, endpoint, type, COALESCE(dataset_id, 0), body, attempts, next_attempt_at, COALESCE(last_error, ''), created_at,
	COALESCE(delivered_at, 0)`

func scanNotification(sc scanner) (Notification, error) {
	var n Notification
	var next, created, delivered int64
	err := sc.Scan(&n.ID, &n.EventID, &n.Endpoint, &n.Type, &n.DatasetID, &n.Body, &n.Attempts, &next, &n.LastError, &created, &delivered)
	if next != 0 {
		n.NextAt = time.Unix(0, next).UTC()
	}
	if delivered != 0 {
		n.Delivered = time.Unix(0, delivered).UTC()
	}
	n.CreatedAt = time.Unix(0, created).UTC()
	return n, err
}

// DatasetNotifications returns every notification of a dataset, pending or
// delivered, oldest first.
func (j *Journal) DatasetNotifications(ctx context.Context, datasetID int64) ([]Notification, error) {
	rs, err := j.r.QueryContext(ctx, `SELECT `+notificationColumns+` FROM notifications WHERE dataset_id = ? ORDER BY id`, datasetID)
	return collect(rs, err, scanNotification)
}

// DatasetRows returns every files row of a dataset (a watch's batch),
// whatever its state, by path.
func (j *Journal) DatasetRows(ctx context.Context, watch, rel string) ([]FileRow, error) {
	return j.readRows(ctx, `WHERE watch = ? AND batch_id = ? ORDER BY rel_path`, watch, rel)
}

// noDatasets reports whether err says the journal predates datasets (a
// journal opened read-only is not migrated): it has none.
func noDatasets(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such table")
}

// DueNotifications returns up to n pending notifications due at now,
// oldest first.
func (j *Journal) DueNotifications(ctx context.Context, now time.Time, n int) ([]Notification, error) {
	rs, err := j.r.QueryContext(ctx, `SELECT `+notificationColumns+` FROM notifications
		WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`, now.UnixNano(), n)
	return collect(rs, err, scanNotification)
}

// PendingNotifications returns every notification not yet delivered.
func (j *Journal) PendingNotifications(ctx context.Context) ([]Notification, error) {
	rs, err := j.r.QueryContext(ctx, `SELECT `+notificationColumns+` FROM notifications WHERE state = 'pending' ORDER BY id`)
	return collect(rs, err, scanNotification)
}

// NextNotification is when the earliest pending notification is due.
func (j *Journal) NextNotification(ctx context.Context) (time.Time, bool, error) {
	var ns sql.NullInt64
	if err := j.r.QueryRowContext(ctx, `SELECT MIN(next_attempt_at) FROM notifications WHERE state = 'pending'`).Scan(&ns); err != nil || !ns.Valid {
		return time.Time{}, false, err
	}
	return time.Unix(0, ns.Int64), true, nil
}

// NotificationDelivered records an acknowledged delivery.
func (j *Journal) NotificationDelivered(ctx context.Context, id int64) error {
	return j.do(ctx, func(t *Tx) error {
		_, err := t.exec(`UPDATE notifications SET state = 'delivered', attempts = attempts + 1, last_error = NULL, delivered_at = ?
			WHERE id = ? AND state = 'pending'`, t.now.UnixNano(), id)
		return err
	})
}

// NotificationFailed records a failed attempt and when to try again.
func (j *Journal) NotificationFailed(ctx context.Context, id int64, reason string, next time.Time) error {
	return j.do(ctx, func(t *Tx) error {
		_, err := t.exec(`UPDATE notifications SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ? AND state = 'pending'`,
			reason, next.UnixNano(), id)
		return err
	})
}

// DatasetFilter selects datasets.
type DatasetFilter struct {
	Watch   string // "" for every watch
	RelPath string // "" for every dataset
	State   DatasetState
	// Unclosed selects the datasets not closed yet (open, complete, closing).
	Unclosed bool
}

// Datasets lists datasets with their files counted, oldest first.
func (j *Journal) Datasets(ctx context.Context, f DatasetFilter) ([]Dataset, error) {
	where, args := []string{"1 = 1"}, []any{}
	if f.Watch != "" {
		where, args = append(where, "d.watch = ?"), append(args, f.Watch)
	}
	if f.RelPath != "" {
		where, args = append(where, "d.rel_path = ?"), append(args, f.RelPath)
	}
	if f.State != DatasetNone {
		where, args = append(where, "d.state = ?"), append(args, string(f.State))
	}
	if f.Unclosed {
		var open []string
		for _, i := range datasetStateInfo {
			if !i.Closed {
				open = append(open, "'"+string(i.State)+"'")
			}
		}
		where = append(where, "d.state IN ("+strings.Join(open, ", ")+")")
	}
	q := `SELECT ` + datasetColumns + `,
		COUNT(f.id),
		COUNT(CASE WHEN ` + inStatesOf("f.state", datasetListed...) + ` THEN 1 END),
		COUNT(CASE WHEN ` + inStatesOf("f.state", PendingStates()...) + ` THEN 1 END),
		COUNT(CASE WHEN f.state = '` + string(Failed) + `' THEN 1 END),
		COALESCE(SUM(f.size), 0),
		COALESCE(SUM(CASE WHEN ` + inStatesOf("f.state", datasetListed...) + ` THEN f.size END), 0),
		COALESCE(MAX(f.settled_at), 0)
		FROM datasets d LEFT JOIN files f ON f.watch = d.watch AND f.batch_id = d.rel_path
		WHERE ` + strings.Join(where, " AND ") + ` GROUP BY d.id ORDER BY d.opened_at, d.id`
	rs, err := j.r.QueryContext(ctx, q, args...)
	if noDatasets(err) {
		return nil, nil
	}
	return collect(rs, err, func(sc scanner) (Dataset, error) {
		var d Dataset
		var last int64
		err := scanDataset(sc, &d, &d.Total, &d.Landed, &d.Waiting, &d.DeadLetters, &d.TotalBytes, &d.LandedBytes, &last)
		if last != 0 {
			d.LastSettled = time.Unix(0, last).UTC()
		}
		return d, err
	})
}

// inStatesOf is inStates for a qualified column.
func inStatesOf(col string, ss ...State) string {
	return col + strings.TrimPrefix(inStates(ss...), "state")
}

// DatasetStats counts datasets by state and the notifications not yet
// acknowledged.
type DatasetStats struct {
	States               map[DatasetState]int
	NotificationsPending int
	// NotificationsFailing are the pending ones whose last attempt failed;
	// LastNotificationError is the newest such failure ("" when none).
	NotificationsFailing  int
	LastNotificationError string
	// Deletions are the source deletions (after_upload = "delete").
	Deletions DeletionStats
}

// DatasetStats reads the counts (every state named, zeros included).
func (j *Journal) DatasetStats(ctx context.Context) (DatasetStats, error) {
	st := DatasetStats{States: map[DatasetState]int{}}
	m, err := j.countBy(ctx, `SELECT state, COUNT(*) FROM datasets GROUP BY state`)
	if err != nil && !noDatasets(err) {
		return st, err
	}
	for _, s := range DatasetStates() {
		st.States[s] = m[string(s)]
	}
	err = j.r.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(CASE WHEN attempts > 0 THEN 1 END),
		COALESCE((SELECT last_error FROM notifications WHERE state = 'pending' AND last_error IS NOT NULL ORDER BY next_attempt_at DESC, id DESC LIMIT 1), '')
		FROM notifications WHERE state = 'pending'`).Scan(&st.NotificationsPending, &st.NotificationsFailing, &st.LastNotificationError)
	if err != nil && !noDatasets(err) {
		return st, err
	}
	st.Deletions, err = j.DeletionStats(ctx)
	return st, err
}

// DatasetMermaid draws the dataset lifecycle table as a Mermaid state
// diagram (ARCHITECTURE.md holds it; a test keeps the two equal).
func DatasetMermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	name := func(s DatasetState) string {
		if s == DatasetNone {
			return "[*]"
		}
		return string(s)
	}
	for _, r := range datasetLifecycle {
		for _, f := range r.From {
			fmt.Fprintf(&b, "    %s --> %s: %s\n", name(f), name(r.To), r.Kind)
		}
	}
	for _, i := range datasetStateInfo {
		if i.Closed {
			fmt.Fprintf(&b, "    %s --> [*]\n", i.State)
		}
	}
	return b.String()
}

// DatasetReplay is one dataset as replayed from its events.
type DatasetReplay struct {
	Watch    string
	RelPath  string
	State    DatasetState
	Signal   string
	Outcome  string
	LastSeq  int64
	LastTime time.Time
}

// applyDataset applies a dataset event to the replay: the lifecycle table
// decides whether the step is allowed from the replayed state. After an
// archive (whose base carries no dataset states) a dataset first met in a
// later event starts from the state that event says it left.
func (r *Replay) applyDataset(e Event) error {
	watch, _ := detailValue(e.Detail, "watch")
	prev, okPrev := detailValue(e.Detail, "previous_state")
	to, okTo := detailValue(e.Detail, "state")
	if !okPrev || !okTo {
		return &ReplayError{e.Seq, fmt.Sprintf("%s event without previous_state or state", e.Kind)}
	}
	key := watch + "\x00" + e.BatchID
	d := r.datasets[key]
	from := DatasetNone
	switch {
	case d != nil:
		from = d.State
	case r.base != nil:
		from = DatasetState(prev)
	}
	if DatasetState(prev) != from {
		return &ReplayError{e.Seq, fmt.Sprintf("dataset %s: %s says previous_state=%s, the replay has it %q", e.BatchID, e.Kind, prev, from)}
	}
	rule, err := datasetRuleFor(e.Kind, from)
	if err != nil {
		return &ReplayError{e.Seq, fmt.Sprintf("dataset %s: %v", e.BatchID, err)}
	}
	if DatasetState(to) != rule.To {
		return &ReplayError{e.Seq, fmt.Sprintf("dataset %s: %s says state=%s, the lifecycle table says %s", e.BatchID, e.Kind, to, rule.To)}
	}
	if d == nil {
		d = &DatasetReplay{Watch: watch, RelPath: e.BatchID}
		r.datasets[key] = d
	}
	d.State = rule.To
	if e.Kind == KindDatasetCompleted {
		d.Signal, _ = detailValue(e.Detail, "signal")
		d.Outcome, _ = detailValue(e.Detail, "outcome")
	}
	d.LastSeq, d.LastTime = e.Seq, e.Time
	return nil
}

// Datasets returns the replayed datasets, by watch and path.
func (r *Replay) Datasets() []*DatasetReplay {
	out := make([]*DatasetReplay, 0, len(r.datasets))
	for _, d := range r.datasets {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *DatasetReplay) int {
		if c := strings.Compare(a.Watch, b.Watch); c != 0 {
			return c
		}
		return strings.Compare(a.RelPath, b.RelPath)
	})
	return out
}
