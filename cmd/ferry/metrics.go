package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader"
)

// metrics is ferry's private Prometheus registry and the HTTP endpoints
// /metrics, /healthz and /status.
type metrics struct {
	reg     *prometheus.Registry
	chunks  *prometheus.HistogramVec
	d       *daemon
	started time.Time // the daemon's start, for /status
}

func newMetrics(d *daemon) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), d: d, started: time.Now()}
	m.chunks = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ferry_chunk_upload_seconds",
		Help:    "Time to send one chunk (a part, or a whole small file) and have it acknowledged.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12), // 5 ms .. ~5 min
	}, []string{"target"})
	stats := func() *uploader.Stats { return d.stats } // across reloads
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(
		m.chunks,
		counter("ferry_uploaded_files_total", "Files uploaded and verified since start.", func() float64 { return float64(stats().Uploaded.Load()) }),
		counter("ferry_uploaded_bytes_total", "Bytes of the files uploaded since start.", func() float64 { return float64(stats().Bytes.Load()) }),
		counter("ferry_retries_total", "Requests retried after a transient failure, and files sent back to the queue for later, since start.",
			func() float64 { return float64(stats().Requests.Load() + stats().Retried.Load()) }),
		counter("ferry_failed_files_total", "Files that failed permanently (dead-lettered) since start.", func() float64 { return float64(stats().Failed.Load()) }),
		counter("ferry_config_reloads_total", "Configuration edits applied without a restart since start.", func() float64 { return float64(d.reloads.Load()) }),
		counter("ferry_config_reload_failures_total", "Configuration edits refused since start (invalid: ferry went on with the previous configuration).",
			func() float64 { return float64(d.reloadFailures.Load()) }),
		&queueCollector{j: d.j},
		&breakerCollector{d: d},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) observeChunk(target string, _ int64, took time.Duration) {
	m.chunks.WithLabelValues(target).Observe(took.Seconds())
}

// queueCollector reads the journal at each scrape.
type queueCollector struct{ j *journal.Journal }

var (
	queueFilesDesc = prometheus.NewDesc("ferry_queue_files", "Files settled and waiting to be uploaded, or being uploaded.", nil, nil)
	queueBytesDesc = prometheus.NewDesc("ferry_queue_bytes", "Bytes of those files.", nil, nil)
	deadDesc       = prometheus.NewDesc("ferry_dead_letter_files", "Files that failed permanently and wait for a person (ferry dlq list).", nil, nil)
	oldestDesc     = prometheus.NewDesc("ferry_oldest_pending_seconds", "How long the longest-waiting file settled but not yet uploaded has waited: the data at risk.", nil, nil)
	breakerDesc    = prometheus.NewDesc("ferry_breaker_state", "Circuit breaker of each target: 0 closed, 1 half-open, 2 open.", []string{"target"}, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueFilesDesc
	ch <- queueBytesDesc
	ch <- deadDesc
	ch <- oldestDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q, err := c.j.Queue(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueFilesDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(queueFilesDesc, prometheus.GaugeValue, float64(q.Files))
	ch <- prometheus.MustNewConstMetric(queueBytesDesc, prometheus.GaugeValue, float64(q.Bytes))
	ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(q.DeadLetters))
	var oldest float64
	if !q.Oldest.IsZero() {
		oldest = time.Since(q.Oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, oldest)
}

type breakerCollector struct{ d *daemon }

func (c *breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- breakerDesc }

func (c *breakerCollector) Collect(ch chan<- prometheus.Metric) {
	w := c.d.now()
	for name := range w.cfg.Target {
		v := 0.0
		switch w.up.BreakerState(name) {
		case "half-open":
			v = 1
		case "open":
			v = 2
		}
		ch <- prometheus.MustNewConstMetric(breakerDesc, prometheus.GaugeValue, v, name)
	}
}

// status is the JSON of /status and of "ferry status --json". Fields are
// only ever added. Those the journal cannot know are null when ferry
// status reads the journal (source "journal"): started_at, uptime_seconds,
// in_flight, rate_bytes_per_second, eta_seconds, breakers.
type status struct {
	// Source is where the status came from: "daemon" (its /status) or
	// "journal" (read directly: the daemon is not running or serves no
	// /status).
	Source  string `json:"source"`
	Version string `json:"version"` // the daemon's version ("" from the journal)
	// StartedAt is when the daemon started; UptimeSeconds how long ago.
	StartedAt     *time.Time `json:"started_at"`
	UptimeSeconds *float64   `json:"uptime_seconds"`
	// The queue: files settled and not yet uploaded (queued or uploading),
	// their bytes, and how long the oldest has waited.
	Queue       int     `json:"queue_files"`
	QueueBytes  int64   `json:"queue_bytes"`
	DeadLetters int     `json:"dead_letter_files"`
	OldestWait  float64 `json:"oldest_pending_seconds"`
	// Uploaded files and bytes since the daemon started.
	Uploaded int64 `json:"uploaded_files"`
	Bytes    int64 `json:"uploaded_bytes"`
	// Breakers is each target's circuit breaker: "closed", "half-open" or "open".
	Breakers map[string]string `json:"breakers"`
	Watches  []string          `json:"watches"`
	// States counts the journal's files in each state (every state named,
	// zeros included): queued, uploading, uploaded, failed (dead letters),
	// changed, ignored, dropped.
	States map[string]int `json:"states"`
	// InFlight is the uploads in progress, one per busy worker.
	InFlight []inFlightStatus `json:"in_flight"`
	// Rate is the bytes per second the targets acknowledged over the last
	// 20 s; ETASeconds the queue's bytes not yet acknowledged at that rate
	// (null when nothing moves).
	Rate       *float64    `json:"rate_bytes_per_second"`
	ETASeconds *float64    `json:"eta_seconds"`
	LastError  *lastStatus `json:"last_error"` // the most recent failure, or null
}

// inFlightStatus is one upload in progress. Its rate is the file's average
// since a worker took it (hashing included); its ETA the rest at that rate.
type inFlightStatus struct {
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

// lastStatus is a failure: when, which file, its class ("transient" for a
// retried one, else the dead letter's class) and the message.
type lastStatus struct {
	Time    time.Time `json:"time"`
	Watch   string    `json:"watch"`
	Path    string    `json:"path"`
	Target  string    `json:"target"`
	Class   string    `json:"class"`
	Message string    `json:"message"`
}

// allStates is every journal state, in the order status shows them (the
// lifecycle table's).
var allStates = journal.States()

// journalStatus is what the journal alone tells: counts, the queue, the
// last error recorded on a file.
func journalStatus(ctx context.Context, j *journal.Journal, now time.Time) (status, error) {
	st := status{Source: "journal", States: map[string]int{}}
	q, err := j.Queue(ctx)
	if err != nil {
		return st, err
	}
	st.Queue, st.QueueBytes, st.DeadLetters = q.Files, q.Bytes, q.DeadLetters
	if !q.Oldest.IsZero() {
		st.OldestWait = max(now.Sub(q.Oldest).Seconds(), 0)
	}
	counts, err := j.Counts(ctx)
	if err != nil {
		return st, err
	}
	for _, s := range allStates {
		st.States[string(s)] = counts[s]
	}
	e, ok, err := j.LastError(ctx)
	if err != nil {
		return st, err
	}
	if ok {
		st.LastError = &lastStatus{Time: e.Time, Watch: e.Watch, Path: e.Path, Target: e.Target, Class: e.Class, Message: e.Message}
	}
	return st, nil
}

// daemonStatus is /status: the journal's view plus what only the running
// daemon knows.
func (m *metrics) daemonStatus(ctx context.Context, now time.Time) (status, error) {
	st, err := journalStatus(ctx, m.d.j, now)
	if err != nil {
		return st, err
	}
	cur := m.d.now()
	up := cur.up
	st.Source, st.Version = "daemon", versionString()
	started := m.started.UTC()
	uptime := now.Sub(m.started).Seconds()
	st.StartedAt, st.UptimeSeconds = &started, &uptime
	st.Uploaded, st.Bytes = m.d.stats.Uploaded.Load(), m.d.stats.Bytes.Load()
	st.Breakers = map[string]string{}
	for name := range cur.cfg.Target {
		st.Breakers[name] = up.BreakerState(name)
	}
	st.Watches = cur.roots()
	st.InFlight = []inFlightStatus{}
	var done int64
	for _, p := range up.InFlight() {
		f := inFlightStatus{Watch: p.Watch, Path: p.Path, Target: p.Target, Key: p.Key, Done: p.Done, Size: p.Size, StartedAt: p.StartedAt.UTC(), Percent: 100}
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
		st.LastError = &lastStatus{Time: f.Time.UTC(), Watch: f.Watch, Path: f.Path, Target: f.Target, Class: f.Class, Message: f.Message}
	}
	return st, nil
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

// serve runs the endpoints until ctx ends. A port that cannot be bound is
// logged, and ferry goes on without them: uploading matters more.
func (m *metrics) serve(ctx context.Context, listen string, log *slog.Logger) {
	if listen == "" {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		hctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := m.d.j.Healthy(hctx); err != nil {
			http.Error(w, "journal cannot be written: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		sctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		st, err := m.daemonStatus(sctx, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		log.Error("cannot serve metrics; going on without them", "listen", listen, "error", err.Error())
		return
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("serving metrics", "listen", ln.Addr().String(), "paths", "/metrics /healthz /status")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics server stopped", "error", err.Error())
	}
}
