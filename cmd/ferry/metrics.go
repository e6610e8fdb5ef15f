package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-data/ferry/journal"
)

// metrics is ferry's private Prometheus registry and the HTTP endpoints
// /metrics, /healthz and /status.
type metrics struct {
	reg    *prometheus.Registry
	chunks *prometheus.HistogramVec
	d      *daemon
}

func newMetrics(d *daemon) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), d: d}
	m.chunks = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ferry_chunk_upload_seconds",
		Help:    "Time to send one chunk (a part, or a whole small file) and have it acknowledged.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12), // 5 ms .. ~5 min
	}, []string{"target"})
	stats := d.stats
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(
		m.chunks,
		counter("ferry_uploaded_files_total", "Files uploaded and verified since start.", func() float64 { return float64(stats.Uploaded.Load()) }),
		counter("ferry_uploaded_bytes_total", "Bytes of the files uploaded since start.", func() float64 { return float64(stats.Bytes.Load()) }),
		counter("ferry_retries_total", "Requests retried after a transient failure, and files sent back to the queue for later, since start.",
			func() float64 { return float64(stats.Requests.Load() + stats.Retried.Load()) }),
		counter("ferry_failed_files_total", "Files that failed permanently (dead-lettered) since start.", func() float64 { return float64(stats.Failed.Load()) }),
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

// status is the JSON of /status.
type status struct {
	Version     string            `json:"version"`
	Queue       int               `json:"queue_files"`
	QueueBytes  int64             `json:"queue_bytes"`
	DeadLetters int               `json:"dead_letter_files"`
	OldestWait  float64           `json:"oldest_pending_seconds"`
	Uploaded    int64             `json:"uploaded_files"`
	Bytes       int64             `json:"uploaded_bytes"`
	Breakers    map[string]string `json:"breakers"`
	Watches     []string          `json:"watches"`
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
		q, err := m.d.j.Queue(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		cur := m.d.now()
		st := status{Version: versionString(), Queue: q.Files, QueueBytes: q.Bytes, DeadLetters: q.DeadLetters,
			Uploaded: m.d.stats.Uploaded.Load(), Bytes: m.d.stats.Bytes.Load(), Breakers: map[string]string{}}
		if !q.Oldest.IsZero() {
			st.OldestWait = time.Since(q.Oldest).Seconds()
		}
		for name := range cur.cfg.Target {
			st.Breakers[name] = cur.up.BreakerState(name)
		}
		st.Watches = cur.roots()
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
