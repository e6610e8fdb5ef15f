package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/metadata"
)

// pageLimit bounds the lists the operator's page reads: the newest N.
const pageLimit = 50

// PageSource is what the operator's page reads besides /status: the
// journal's dead letters and datasets, newest first, at most n. The
// running Daemon is one; a StatusSource that is not serves empty lists.
type PageSource interface {
	RecentDeadLetters(ctx context.Context, n int) ([]journal.DeadLetter, error)
	RecentDatasets(ctx context.Context, n int) ([]PageDataset, error)
}

// PageDataset is one dataset (run) as the page shows it.
type PageDataset struct {
	Watch       string `json:"watch"`
	Path        string `json:"path"`
	Target      string `json:"target"`
	State       string `json:"state"`
	Total       int    `json:"total"`
	Landed      int    `json:"landed"`
	Waiting     int    `json:"waiting"`
	DeadLetters int    `json:"dead_letters"`
}

// HeldSource is what the page reads of the datasets held for their
// metadata (the running Daemon is one).
type HeldSource interface {
	HeldDatasets(ctx context.Context, n int) ([]PageHeld, error)
}

// PageHeld is a dataset held for its metadata as the page shows it: its
// files stay on the instrument until the metadata validates or a person
// accepts it.
type PageHeld struct {
	Watch         string   `json:"watch"`
	Path          string   `json:"path"`
	Files         int      `json:"files"`
	Status        string   `json:"validation_status"`
	SchemaVersion string   `json:"schema_version"`
	Findings      []string `json:"findings"` // at most heldFindings, one line each
}

// heldFindings bounds the findings the page lists per held dataset.
const heldFindings = 10

// HeldDatasets are the first n datasets held for their metadata, oldest
// first, with their findings.
func (d *Daemon) HeldDatasets(ctx context.Context, n int) ([]PageHeld, error) {
	ms, err := d.j.HeldMetadata(ctx)
	if err != nil {
		return nil, err
	}
	out := []PageHeld{}
	for _, m := range ms {
		if len(out) == n {
			break
		}
		h := PageHeld{Watch: m.Dataset.Watch, Path: m.Dataset.RelPath, Files: m.Held, Status: m.Status, SchemaVersion: m.SchemaVersion, Findings: []string{}}
		if h.Status == "" {
			h.Status = "not validated yet"
		}
		var fs []metadata.Finding
		_ = json.Unmarshal(m.Findings, &fs)
		for i, f := range fs {
			if i == heldFindings {
				h.Findings = append(h.Findings, fmt.Sprintf("... and %d more (ferry dlq list)", len(fs)-i))
				break
			}
			h.Findings = append(h.Findings, f.String())
		}
		out = append(out, h)
	}
	return out, nil
}

// RecentDeadLetters are the newest n dead letters, newest first.
func (d *Daemon) RecentDeadLetters(ctx context.Context, n int) ([]journal.DeadLetter, error) {
	return d.j.RecentDeadLetters(ctx, n)
}

// RecentDatasets are the newest n datasets, newest first.
func (d *Daemon) RecentDatasets(ctx context.Context, n int) ([]PageDataset, error) {
	all, err := d.j.Datasets(ctx, journal.DatasetFilter{})
	if err != nil {
		return nil, err
	}
	out := []PageDataset{}
	for _, ds := range newestFirst(all, n) {
		out = append(out, PageDataset{Watch: ds.Watch, Path: ds.RelPath, Target: ds.Target, State: string(ds.State),
			Total: ds.Total, Landed: ds.Landed, Waiting: ds.Waiting, DeadLetters: ds.DeadLetters})
	}
	return out, nil
}

// newestFirst reverses the last n of an oldest-first list.
func newestFirst[T any](all []T, n int) []T {
	out := make([]T, 0, min(n, len(all)))
	for i := len(all) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, all[i])
	}
	return out
}

var _ PageSource = (*Daemon)(nil)

// throughput is the bytes uploaded in each of the last 60 minutes, a ring
// fed from the same counter as ferry_uploaded_bytes_total.
type throughput struct {
	mu      sync.Mutex
	buckets [60]int64 // [59] is the current minute
	minute  int64     // unix minute of buckets[59]; 0 before the first sample
	last    int64     // the counter at the last sample
}

// observe takes the counter's value total at now: what it grew by since
// the last sample goes to now's minute.
func (t *throughput) observe(now time.Time, total int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := now.Unix() / 60
	if t.minute == 0 {
		t.minute, t.last = m, total
		return
	}
	if shift := m - t.minute; shift > 0 {
		if shift >= int64(len(t.buckets)) {
			t.buckets = [60]int64{}
		} else {
			copy(t.buckets[:], t.buckets[shift:])
			for i := len(t.buckets) - int(shift); i < len(t.buckets); i++ {
				t.buckets[i] = 0
			}
		}
		t.minute = m
	}
	if d := total - t.last; d > 0 {
		t.buckets[len(t.buckets)-1] += d
	}
	t.last = total
}

// Throughput is the JSON of /throughput.
type Throughput struct {
	// BytesPerMinute is the last hour, oldest minute first; the last is
	// the current (partial) minute.
	BytesPerMinute []int64   `json:"bytes_per_minute"`
	End            time.Time `json:"end"` // the start of the current minute
}

func (t *throughput) snapshot() Throughput {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Throughput{BytesPerMinute: append([]int64(nil), t.buckets[:]...), End: time.Unix(t.minute*60, 0).UTC()}
}

// sampleThroughput feeds the ring every 10 s until ctx ends.
func (m *metrics) sampleThroughput(ctx context.Context) {
	tk := time.NewTicker(10 * time.Second)
	defer tk.Stop()
	for {
		m.tp.observe(m.now(), m.src.Counters().UploadedBytes)
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// pageHandlers registers the page's JSON endpoints on mux.
func (m *metrics) pageHandlers(mux *http.ServeMux) {
	ps, _ := m.src.(PageSource)
	list := func(f func(ctx context.Context) (any, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			v, err := f(ctx)
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			writeJSON(w, v)
		}
	}
	mux.HandleFunc("GET /deadletters", list(func(ctx context.Context) (any, error) {
		if ps == nil {
			return []journal.DeadLetter{}, nil
		}
		return ps.RecentDeadLetters(ctx, pageLimit)
	}))
	mux.HandleFunc("GET /held", list(func(ctx context.Context) (any, error) {
		hs, ok := m.src.(HeldSource)
		if !ok {
			return []PageHeld{}, nil
		}
		return hs.HeldDatasets(ctx, pageLimit)
	}))
	mux.HandleFunc("GET /datasets", list(func(ctx context.Context) (any, error) {
		if ps == nil {
			return []PageDataset{}, nil
		}
		return ps.RecentDatasets(ctx, pageLimit)
	}))
	mux.HandleFunc("GET /throughput", func(w http.ResponseWriter, r *http.Request) {
		m.tp.observe(m.now(), m.src.Counters().UploadedBytes)
		writeJSON(w, m.tp.snapshot())
	})
}
