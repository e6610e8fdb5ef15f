package daemon

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-data/ferry/journal"
)

// TestJournalStatusJSON: read from the journal, every field the README
// says only the daemon knows is null; from the daemon, they are values.
func TestJournalStatusJSON(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "ferry.db"), journal.Options{FerryVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	st, err := JournalStatus(t.Context(), j, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	decode := func(st Status) {
		t.Helper()
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		m = nil
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
	}
	decode(st)
	unknown := []string{"version", "started_at", "uptime_seconds", "uploaded_files", "uploaded_bytes",
		"in_flight", "rate_bytes_per_second", "eta_seconds", "breakers"}
	for _, k := range unknown {
		if v, ok := m[k]; !ok || v != nil {
			t.Errorf("from the journal, %s = %v (present %v), want null", k, v, ok)
		}
	}
	for k, want := range map[string]any{"source": "journal", "queue_files": 0.0, "dead_letter_files": 0.0, "last_error": nil} {
		if v, ok := m[k]; !ok || v != want {
			t.Errorf("from the journal, %s = %v, want %v", k, v, want)
		}
	}
	if _, ok := m["states"].(map[string]any); !ok {
		t.Errorf("from the journal, states = %v, want the counts", m["states"])
	}

	// The daemon's status keeps its values, zeros included, and reads back.
	st.Source, st.Version = "daemon", "ferry test"
	decode(st)
	if m["version"] != "ferry test" || m["uploaded_files"] != 0.0 || m["uploaded_bytes"] != 0.0 {
		t.Errorf("from the daemon: %v", m)
	}
	b, _ := json.Marshal(st)
	var back Status
	if err := json.Unmarshal(b, &back); err != nil || back.Version != "ferry test" || back.Source != "daemon" {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}
