package daemon

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ferry-data/ferry/journal"
)

// metrics is ferry's private Prometheus registry. Its collectors read a
// StatusSource at each scrape, never the daemon itself.
type metrics struct {
	reg          *prometheus.Registry
	chunks       *prometheus.HistogramVec
	closeSeconds prometheus.Histogram
	validations  *prometheus.CounterVec
	src          StatusSource
	now          func() time.Time // the clock /status reads
	tp           throughput       // /throughput: bytes per minute, last hour
}

// newMetrics makes the collectors of src; now (nil: time.Now) is the
// clock of /status.
func newMetrics(src StatusSource, now func() time.Time) *metrics {
	if now == nil {
		now = time.Now
	}
	m := &metrics{reg: prometheus.NewRegistry(), src: src, now: now}
	m.chunks = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ferry_chunk_upload_seconds",
		Help:    "Time to send one chunk (a part, or a whole small file) and have it acknowledged.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12), // 5 ms .. ~5 min
	}, []string{"target"})
	m.closeSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ferry_dataset_close_seconds",
		Help:    "Time from a dataset's completion signal to its manifest and RO-Crate landed.",
		Buckets: prometheus.ExponentialBuckets(0.1, 3, 12), // 100 ms .. ~5 h
	})
	m.validations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_metadata_validations_total",
		Help: "Validations of datasets' metadata since start, by outcome (valid, drift, invalid).",
	}, []string{"status"})
	counter := func(name, help string, f func(Counters) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(src.Counters())) })
	}
	m.reg.MustRegister(
		m.chunks,
		m.closeSeconds,
		m.validations,
		&datasetCollector{src: src},
		counter("ferry_uploaded_files_total", "Files uploaded and verified since start.", func(c Counters) int64 { return c.UploadedFiles }),
		counter("ferry_uploaded_bytes_total", "Bytes of the files uploaded since start.", func(c Counters) int64 { return c.UploadedBytes }),
		counter("ferry_retries_total", "Requests retried after a transient failure, and files sent back to the queue for later, since start.",
			func(c Counters) int64 { return c.Retries }),
		counter("ferry_failed_files_total", "Files that failed permanently (dead-lettered) since start.", func(c Counters) int64 { return c.FailedFiles }),
		counter("ferry_config_reloads_total", "Configuration edits applied without a restart since start.", func(c Counters) int64 { return c.Reloads }),
		counter("ferry_config_reload_failures_total", "Configuration edits refused since start (invalid: ferry went on with the previous configuration).",
			func(c Counters) int64 { return c.ReloadFailures }),
		&queueCollector{src: src, now: now},
		&breakerCollector{src: src},
		&watchCollector{src: src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) observeChunk(target string, _ int64, took time.Duration) {
	m.chunks.WithLabelValues(target).Observe(took.Seconds())
}

// queueCollector reads the journal's queue at each scrape.
type queueCollector struct {
	src StatusSource
	now func() time.Time
}

var (
	queueFilesDesc = prometheus.NewDesc("ferry_queue_files", "Files settled and waiting to be uploaded, or being uploaded.", nil, nil)
	queueBytesDesc = prometheus.NewDesc("ferry_queue_bytes", "Bytes of those files.", nil, nil)
	deadDesc       = prometheus.NewDesc("ferry_dead_letter_files", "Files that failed permanently and wait for a person (ferry dlq list).", nil, nil)
	heldDesc       = prometheus.NewDesc("ferry_held_files", "Files kept local because their dataset's metadata is not validated yet, or invalid or drifted under hold (ferry dlq list).", nil, nil)
	oldestDesc     = prometheus.NewDesc("ferry_oldest_pending_seconds", "How long the longest-waiting file settled but not yet uploaded has waited: the data at risk.", nil, nil)
	breakerDesc    = prometheus.NewDesc("ferry_breaker_state", "Circuit breaker of each target: 0 closed, 1 half-open, 2 open.", []string{"target"}, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueFilesDesc
	ch <- queueBytesDesc
	ch <- deadDesc
	ch <- heldDesc
	ch <- oldestDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q, err := c.src.Queue(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueFilesDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(queueFilesDesc, prometheus.GaugeValue, float64(q.Files))
	ch <- prometheus.MustNewConstMetric(queueBytesDesc, prometheus.GaugeValue, float64(q.Bytes))
	ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(q.DeadLetters))
	ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.GaugeValue, float64(q.Held))
	var oldest float64
	if !q.Oldest.IsZero() {
		oldest = c.now().Sub(q.Oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, oldest)
}

// breakerCollector reads the targets' breakers at each scrape.
type breakerCollector struct{ src StatusSource }

func (c *breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- breakerDesc }

func (c *breakerCollector) Collect(ch chan<- prometheus.Metric) {
	for name, state := range c.src.Breakers() {
		v := 0.0
		switch state {
		case "half-open":
			v = 1
		case "open":
			v = 2
		}
		ch <- prometheus.MustNewConstMetric(breakerDesc, prometheus.GaugeValue, v, name)
	}
}

// observeClose records how long a dataset took from its completion signal
// to its manifest and crate landed.
func (m *metrics) observeClose(took time.Duration) { m.closeSeconds.Observe(took.Seconds()) }

// observeValidation counts a validation of a dataset's metadata.
func (m *metrics) observeValidation(status string) { m.validations.WithLabelValues(status).Inc() }

// datasetCollector reads the datasets and the outbox at each scrape.
type datasetCollector struct{ src StatusSource }

var (
	datasetsDesc      = prometheus.NewDesc("ferry_datasets", "Datasets by state (open, complete, closing, closed, failed_run).", []string{"state"}, nil)
	notifyPendingDesc = prometheus.NewDesc("ferry_notifications_pending", "Notifications queued and not yet acknowledged by their endpoint.", nil, nil)
	reclaimedDesc     = prometheus.NewDesc("ferry_reclaimed_bytes_total", "Bytes of source files deleted after their dataset closed and every check held (after_upload = \"delete\"), over the journal's life.", nil, nil)
	deletionsDesc     = prometheus.NewDesc("ferry_source_deletions", "Source deletions by state: pending (planned, waiting for a check), deleted, refused (a check failed: the file is kept).", []string{"state"}, nil)
)

func (c *datasetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- datasetsDesc
	ch <- notifyPendingDesc
	ch <- reclaimedDesc
	ch <- deletionsDesc
}

func (c *datasetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.src.DatasetCounts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(datasetsDesc, err)
		return
	}
	for _, s := range journal.DatasetStates() {
		ch <- prometheus.MustNewConstMetric(datasetsDesc, prometheus.GaugeValue, float64(st.States[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(notifyPendingDesc, prometheus.GaugeValue, float64(st.NotificationsPending))
	ch <- prometheus.MustNewConstMetric(reclaimedDesc, prometheus.CounterValue, float64(st.Deletions.DeletedBytes))
	for state, n := range map[string]int{"pending": st.Deletions.Pending, "deleted": st.Deletions.Deleted, "refused": st.Deletions.Refused} {
		ch <- prometheus.MustNewConstMetric(deletionsDesc, prometheus.GaugeValue, float64(n), state)
	}
}

// watchCollector reads the watches' folders at each scrape.
type watchCollector struct{ src StatusSource }

var (
	watchUpDesc = prometheus.NewDesc("ferry_watch_up", "1 while the watch's folder is there and watched; 0 while it is missing, not a folder, unmounted or unreadable (the other watches go on).", []string{"watch"}, nil)
	skippedDesc = prometheus.NewDesc("ferry_skipped_entries", "Entries of the watch's folder not taken, by reason: symlink (not followed), special (FIFO, socket, device), unreadable (a folder that cannot be listed), as of the last walk.", []string{"watch", "reason"}, nil)
)

func (c *watchCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- watchUpDesc
	ch <- skippedDesc
}

func (c *watchCollector) Collect(ch chan<- prometheus.Metric) {
	for _, w := range c.src.WatchStates() {
		up := 0.0
		if w.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(watchUpDesc, prometheus.GaugeValue, up, w.Path)
		for reason, n := range w.Skipped {
			ch <- prometheus.MustNewConstMetric(skippedDesc, prometheus.GaugeValue, float64(n), w.Path, reason)
		}
	}
}
