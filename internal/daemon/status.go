package daemon

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/watcher"
)

// Status is the JSON of /status and of "ferry status --json". Fields are
// only ever added. Those the journal cannot know are null when ferry
// status reads the journal (source "journal"): version, started_at,
// uptime_seconds, uploaded_files, uploaded_bytes, in_flight,
// rate_bytes_per_second, eta_seconds, breakers (see MarshalJSON).
type Status struct {
	// Source is where the status came from: "daemon" (its /status) or
	// "journal" (read directly: the daemon is not running or serves no
	// /status).
	Source  string `json:"source"`
	Version string `json:"version"` // the daemon's version (null from the journal)
	// StartedAt is when the daemon started; UptimeSeconds how long ago.
	StartedAt     *time.Time `json:"started_at"`
	UptimeSeconds *float64   `json:"uptime_seconds"`
	// The queue: files settled and not yet uploaded (queued or uploading),
	// their bytes, and how long the oldest has waited.
	Queue       int   `json:"queue_files"`
	QueueBytes  int64 `json:"queue_bytes"`
	DeadLetters int   `json:"dead_letter_files"`
	// Held: files kept local for their dataset's metadata (ferry dlq
	// list), and how many datasets they are in.
	Held         int     `json:"held_files"`
	HeldDatasets int     `json:"held_datasets"`
	OldestWait   float64 `json:"oldest_pending_seconds"`
	// Uploaded files and bytes since the daemon started (null from the
	// journal, which knows no start).
	Uploaded int64 `json:"uploaded_files"`
	Bytes    int64 `json:"uploaded_bytes"`
	// Breakers is each target's circuit breaker: "closed", "half-open" or "open".
	Breakers map[string]string `json:"breakers"`
	Watches  []string          `json:"watches"`
	// WatchStates is each watch's folder as the daemon sees it now: up or
	// down (why, since when), the folder it resolved to, and the entries
	// its walks did not take (null from the journal).
	WatchStates []WatchState `json:"watch_states"`
	// States counts the journal's files in each state (every state named,
	// zeros included): queued, uploading, uploaded, failed (dead letters),
	// changed, ignored, dropped.
	States map[string]int `json:"states"`
	// InFlight is the uploads in progress, one per busy worker.
	InFlight []InFlight `json:"in_flight"`
	// Rate is the bytes per second the targets acknowledged over the last
	// 20 s; ETASeconds the queue's bytes not yet acknowledged at that rate
	// (null when nothing moves).
	Rate       *float64 `json:"rate_bytes_per_second"`
	ETASeconds *float64 `json:"eta_seconds"`
	LastError  *Failure `json:"last_error"` // the most recent failure, or null
	// Datasets counts the datasets in each state (every state named);
	// NotificationsPending the notifications not yet acknowledged.
	Datasets             map[string]int `json:"datasets"`
	NotificationsPending int            `json:"notifications_pending"`
	// NotificationsFailing are pending notifications whose last attempt
	// failed, LastNotificationError the newest failure (null when none).
	NotificationsFailing  int     `json:"notifications_failing"`
	LastNotificationError *string `json:"last_notification_error"`
	// SourceDeletions counts the source deletions by state (pending,
	// deleted, refused); ReclaimedBytes the bytes deleted.
	SourceDeletions map[string]int `json:"source_deletions"`
	ReclaimedBytes  int64          `json:"reclaimed_bytes"`
}

// MarshalJSON writes the status; from the journal, the daemon's own
// fields that are plain values in Go (version, uploaded_files,
// uploaded_bytes) are null, like the pointer fields the journal leaves
// unset: a reader must not take "" or 0 for what the daemon would say.
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status // without this method
	if s.Source == "daemon" {
		return json.Marshal(plain(s))
	}
	// The outer fields hide the embedded ones of the same JSON name.
	return json.Marshal(struct {
		plain
		Version  *string `json:"version"`
		Uploaded *int64  `json:"uploaded_files"`
		Bytes    *int64  `json:"uploaded_bytes"`
	}{plain: plain(s)})
}

// InFlight is one upload in progress. Its rate is the file's average since
// a worker took it (hashing included); its ETA the rest at that rate.
type InFlight struct {
	Watch      string    `json:"watch"`
	Path       string    `json:"path"` // relative to the watch
	Target     string    `json:"target"`
	Key        string    `json:"key"`
	Done       int64     `json:"bytes_done"`
	Size       int64     `json:"bytes_total"`
	Percent    float64   `json:"percent"`
	StartedAt  time.Time `json:"started_at"`
	Rate       float64   `json:"rate_bytes_per_second"`
	ETASeconds *float64  `json:"eta_seconds"`
}

// Failure is a failure: when, which file, its class ("transient" for a
// retried one, else the dead letter's class) and the message.
type Failure struct {
	Time    time.Time `json:"time"`
	Watch   string    `json:"watch"`
	Path    string    `json:"path"`
	Target  string    `json:"target"`
	Class   string    `json:"class"`
	Message string    `json:"message"`
}

// WatchState is one watch's folder, as its watcher sees it now.
type WatchState struct {
	Path string `json:"path"` // the watch's path, as configured
	// Resolved is the folder walked: Path with its symlinks resolved.
	Resolved string `json:"resolved"`
	// Up says whether the folder is there and watched; Reason why not
	// ("missing", "not a folder", "unmounted ...", "unreadable: ...";
	// "starting" before the first look); Since when Up last changed.
	Up     bool       `json:"up"`
	Reason string     `json:"reason"`
	Since  *time.Time `json:"since"`
	// Skipped counts the entries not taken by reason (every reason named:
	// symlink, special, unreadable) as of the last complete walk, plus
	// the folders found since; Unreadable lists the folders that could
	// not be read (at most 100), relative to the folder.
	Skipped    map[string]int       `json:"skipped"`
	Unreadable []watcher.Unreadable `json:"unreadable"`
	LastWalk   *time.Time           `json:"last_walk"` // when the last complete walk ended
	// Mode is how the watch learns of changes now: "events" or "poll"
	// ("" before its folder was first up); ModeReason why (the configured
	// mode, the filesystem, or a fallback such as the inotify watch
	// limit); Filesystem the folder's filesystem type.
	Mode       string `json:"mode"`
	ModeReason string `json:"mode_reason"`
	Filesystem string `json:"filesystem"`
}

// watchState is a watcher's Health as the status shows it.
func watchState(h watcher.Health) WatchState {
	ws := WatchState{Path: h.Root, Resolved: h.Resolved, Up: h.Up, Reason: h.Reason, Skipped: map[string]int{}, Unreadable: h.Unreadable,
		Mode: string(h.Mode), ModeReason: h.ModeReason, Filesystem: h.FS}
	if ws.Unreadable == nil {
		ws.Unreadable = []watcher.Unreadable{}
	}
	for _, r := range watcher.SkipReasons {
		ws.Skipped[string(r)] = h.Skipped[r]
	}
	if !h.Since.IsZero() {
		t := h.Since.UTC()
		ws.Since = &t
	} else if !h.Up {
		ws.Reason = "starting"
	}
	if !h.LastWalk.IsZero() {
		t := h.LastWalk.UTC()
		ws.LastWalk = &t
	}
	return ws
}

// States is every journal state, in the order status shows them (the
// lifecycle table's).
var States = journal.States()

// Counters are a daemon's running totals since it started.
type Counters struct {
	UploadedFiles, UploadedBytes int64
	// Retries are the requests retried after a transient failure and the
	// files sent back to the queue for later.
	Retries        int64
	FailedFiles    int64 // dead-lettered
	Reloads        int64 // configuration edits applied
	ReloadFailures int64 // configuration edits refused
}

// StatusSource is what the metrics and the HTTP endpoints read: the
// running Daemon, or anything else that can answer (a fake, in tests).
type StatusSource interface {
	// Status is the whole status (/status) as of now.
	Status(ctx context.Context, now time.Time) (Status, error)
	// Queue is the journal's queue, read at each scrape.
	Queue(ctx context.Context) (journal.QueueStats, error)
	// Breakers is each target's circuit breaker state, by target name.
	Breakers() map[string]string
	// Counters are the running totals.
	Counters() Counters
	// Healthy is nil while the journal can be written (/healthz).
	Healthy(ctx context.Context) error
	// DatasetCounts are the datasets by state and the notifications not
	// yet acknowledged, read at each scrape.
	DatasetCounts(ctx context.Context) (journal.DatasetStats, error)
	// WatchStates is each watch's folder now, sorted by path.
	WatchStates() []WatchState
}

var _ StatusSource = (*Daemon)(nil)

// JournalStatus is what the journal alone tells: counts, the queue, the
// last error recorded on a file.
func JournalStatus(ctx context.Context, j *journal.Journal, now time.Time) (Status, error) {
	st := Status{Source: "journal", States: map[string]int{}}
	q, err := j.Queue(ctx)
	if err != nil {
		return st, err
	}
	st.Queue, st.QueueBytes, st.DeadLetters, st.Held = q.Files, q.Bytes, q.DeadLetters, q.Held
	if q.Held > 0 {
		hm, err := j.HeldMetadata(ctx)
		if err != nil {
			return st, err
		}
		st.HeldDatasets = len(hm)
	}
	if !q.Oldest.IsZero() {
		st.OldestWait = max(now.Sub(q.Oldest).Seconds(), 0)
	}
	counts, err := j.Counts(ctx)
	if err != nil {
		return st, err
	}
	for _, s := range States {
		st.States[string(s)] = counts[s]
	}
	ds, err := j.DatasetStats(ctx)
	if err != nil {
		return st, err
	}
	st.Datasets = map[string]int{}
	for k, n := range ds.States {
		st.Datasets[string(k)] = n
	}
	st.NotificationsPending, st.NotificationsFailing = ds.NotificationsPending, ds.NotificationsFailing
	if ds.LastNotificationError != "" {
		st.LastNotificationError = &ds.LastNotificationError
	}
	st.SourceDeletions = map[string]int{"pending": ds.Deletions.Pending, "deleted": ds.Deletions.Deleted, "refused": ds.Deletions.Refused}
	st.ReclaimedBytes = ds.Deletions.DeletedBytes
	e, ok, err := j.LastError(ctx)
	if err != nil {
		return st, err
	}
	if ok {
		st.LastError = &Failure{Time: e.Time, Watch: e.Watch, Path: e.Path, Target: e.Target, Class: e.Class, Message: e.Message}
	}
	return st, nil
}

// Status is /status: the journal's view plus what only the running
// daemon knows.
func (d *Daemon) Status(ctx context.Context, now time.Time) (Status, error) {
	st, err := JournalStatus(ctx, d.j, now)
	if err != nil {
		return st, err
	}
	cur := d.now()
	up := cur.up
	st.Source, st.Version = "daemon", d.version
	started := d.started.UTC()
	uptime := now.Sub(d.started).Seconds()
	st.StartedAt, st.UptimeSeconds = &started, &uptime
	st.Uploaded, st.Bytes = d.stats.Uploaded.Load(), d.stats.Bytes.Load()
	st.Breakers = breakers(cur)
	st.Watches = cur.roots()
	st.WatchStates = watchStates(cur)
	st.InFlight = []InFlight{}
	var done int64
	for _, p := range up.InFlight() {
		f := InFlight{Watch: p.Watch, Path: p.Path, Target: p.Target, Key: p.Key, Done: p.Done, Size: p.Size, StartedAt: p.StartedAt.UTC(), Percent: 100}
		if p.Size > 0 {
			f.Percent = math.Round(1000*float64(p.Done)/float64(p.Size)) / 10
		}
		if el := now.Sub(p.StartedAt).Seconds(); el > 0 && p.Done > 0 {
			f.Rate = float64(p.Done) / el
			f.ETASeconds = eta(p.Size-p.Done, f.Rate)
		}
		done += p.Done
		st.InFlight = append(st.InFlight, f)
	}
	rate := up.Rate()
	st.Rate = &rate
	st.ETASeconds = eta(st.QueueBytes-done, rate)
	if f, ok := up.LastFailure(); ok {
		st.LastError = &Failure{Time: f.Time.UTC(), Watch: f.Watch, Path: f.Path, Target: f.Target, Class: f.Class, Message: f.Message}
	}
	return st, nil
}

// WatchStates is each current watch's folder now.
func (d *Daemon) WatchStates() []WatchState { return watchStates(d.now()) }

func watchStates(w *wiring) []WatchState {
	out := []WatchState{}
	for _, root := range w.roots() {
		out = append(out, watchState(w.watches[root].Health()))
	}
	return out
}

// Queue is the journal's queue.
func (d *Daemon) Queue(ctx context.Context) (journal.QueueStats, error) { return d.j.Queue(ctx) }

// Breakers is the state of each current target's circuit breaker.
func (d *Daemon) Breakers() map[string]string { return breakers(d.now()) }

func breakers(w *wiring) map[string]string {
	m := make(map[string]string, len(w.cfg.Target))
	for name := range w.cfg.Target {
		m[name] = w.up.BreakerState(name)
	}
	return m
}

// Counters are the daemon's running totals, across reloads.
func (d *Daemon) Counters() Counters {
	s := d.stats
	return Counters{
		UploadedFiles: s.Uploaded.Load(), UploadedBytes: s.Bytes.Load(),
		Retries:     s.Requests.Load() + s.Retried.Load(),
		FailedFiles: s.Failed.Load(),
		Reloads:     d.reloads.Load(), ReloadFailures: d.reloadFailures.Load(),
	}
}

// Healthy is nil while the journal can be written and its path still
// names the file the daemon has open.
func (d *Daemon) Healthy(ctx context.Context) error {
	if err := d.j.CheckFile(); err != nil {
		return err
	}
	return d.j.Healthy(ctx)
}

// DatasetCounts are the journal's datasets by state and its pending
// notifications.
func (d *Daemon) DatasetCounts(ctx context.Context) (journal.DatasetStats, error) {
	return d.j.DatasetStats(ctx)
}

// eta is how long the rest takes at rate, in whole seconds; nil when
// nothing moves.
func eta(rest int64, rate float64) *float64 {
	if rate <= 0 {
		return nil
	}
	s := math.Ceil(float64(max(rest, 0)) / rate)
	return &s
}
