package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/watcher"
)

// fakeSource is a StatusSource with fixed answers: what the endpoints
// show comes from the interface alone.
type fakeSource struct {
	queue    journal.QueueStats
	breakers map[string]string
	counters Counters
	status   Status
	healthy  error
	datasets journal.DatasetStats
	watches  []WatchState
}

func (f *fakeSource) Status(context.Context, time.Time) (Status, error) { return f.status, nil }
func (f *fakeSource) Queue(context.Context) (journal.QueueStats, error) { return f.queue, nil }
func (f *fakeSource) Breakers() map[string]string                       { return f.breakers }
func (f *fakeSource) Counters() Counters                                { return f.counters }
func (f *fakeSource) Healthy(context.Context) error                     { return f.healthy }
func (f *fakeSource) WatchStates() []WatchState                         { return f.watches }
func (f *fakeSource) DatasetCounts(context.Context) (journal.DatasetStats, error) {
	return f.datasets, nil
}

func TestEndpointsReadTheStatusSource(t *testing.T) {
	src := &fakeSource{
		queue:    journal.QueueStats{Files: 3, Bytes: 4096, DeadLetters: 2},
		breakers: map[string]string{"nas": "open", "s3": "half-open", "local": "closed"},
		counters: Counters{UploadedFiles: 12, UploadedBytes: 3000, Retries: 5, FailedFiles: 2, Reloads: 1, ReloadFailures: 4},
		status:   Status{Source: "daemon", Version: "ferry fake", Queue: 3, States: map[string]int{"queued": 3}},
		datasets: journal.DatasetStats{States: map[journal.DatasetState]int{journal.DatasetOpen: 2, journal.DatasetClosed: 7}, NotificationsPending: 1,
			Deletions: journal.DeletionStats{Deleted: 3, Refused: 1, DeletedBytes: 4096}},
		watches: []WatchState{
			watchState(watcher.Health{Root: "/data/scope1", Up: true, Skipped: map[watcher.SkipReason]int{watcher.SkipSymlink: 2, watcher.SkipUnreadable: 1}}),
			watchState(watcher.Health{Root: "/data/share", Reason: watcher.DownMissing}),
		},
	}
	m := newMetrics(src, nil)
	m.observeChunk("s3", 1<<20, 250*time.Millisecond)
	m.observeClose(90 * time.Second)
	srv := httptest.NewServer(m.handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		"ferry_uploaded_files_total 12", "ferry_uploaded_bytes_total 3000", "ferry_retries_total 5", "ferry_failed_files_total 2",
		"ferry_config_reloads_total 1", "ferry_config_reload_failures_total 4",
		"ferry_queue_files 3", "ferry_queue_bytes 4096", "ferry_dead_letter_files 2", "ferry_oldest_pending_seconds 0",
		`ferry_breaker_state{target="local"} 0`, `ferry_breaker_state{target="s3"} 1`, `ferry_breaker_state{target="nas"} 2`,
		`ferry_chunk_upload_seconds_count{target="s3"} 1`, `ferry_chunk_upload_seconds_sum{target="s3"} 0.25`,
		`ferry_datasets{state="open"} 2`, `ferry_datasets{state="closed"} 7`, `ferry_datasets{state="failed_run"} 0`,
		"ferry_notifications_pending 1", "ferry_dataset_close_seconds_count 1", "ferry_dataset_close_seconds_sum 90",
		`ferry_watch_up{watch="/data/scope1"} 1`, `ferry_watch_up{watch="/data/share"} 0`,
		`ferry_skipped_entries{reason="symlink",watch="/data/scope1"} 2`, `ferry_skipped_entries{reason="special",watch="/data/scope1"} 0`,
		`ferry_skipped_entries{reason="unreadable",watch="/data/scope1"} 1`, `ferry_skipped_entries{reason="unreadable",watch="/data/share"} 0`,
		"ferry_reclaimed_bytes_total 4096", `ferry_source_deletions{state="deleted"} 3`, `ferry_source_deletions{state="refused"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	code, body = get("/status")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st.Version != "ferry fake" || st.Queue != 3 || st.States["queued"] != 3 {
		t.Errorf("/status = %d %s (%v)", code, body, err)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	src.healthy = errors.New("disk full")
	if code, body := get("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "journal cannot be written: disk full") {
		t.Errorf("/healthz of an unhealthy source = %d %q", code, body)
	}
}
