package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/internal/testsrv"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/watcher"
)

func ptr[T any](v T) *T { return &v }

// TestStatusText renders fixed statuses: the layout a person reads.
func TestStatusText(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	started := now.Add(-(2*time.Hour + 3*time.Minute))
	fromDaemon := daemon.Status{
		Source: "daemon", Version: "ferry 1.4.0 (go1.26.8 linux/amd64)", StartedAt: &started, UptimeSeconds: ptr(started.Sub(now).Abs().Seconds()),
		Queue: 3, QueueBytes: 3<<30 + 5<<20, DeadLetters: 1, OldestWait: 252, Uploaded: 1204, Bytes: 300 << 30,
		Breakers: map[string]string{"archive": "closed", "nas": "open"},
		Watches:  []string{"/data/scope1", "/data/scope2", "/data/share"},
		WatchStates: []daemon.WatchState{
			{Path: "/data/scope1", Resolved: "/data/scope1", Up: true, Since: &started, Skipped: map[string]int{"symlink": 0, "special": 0, "unreadable": 0},
				Mode: "events", ModeReason: "ext4 is a local filesystem", Filesystem: "ext4"},
			{Path: "/data/scope2", Resolved: "/mnt/scope2", Up: true, Since: &started, Skipped: map[string]int{"symlink": 2, "special": 1, "unreadable": 1},
				Unreadable: []watcher.Unreadable{{Path: "run-7/raw", Error: "permission denied"}},
				Mode:       "poll", ModeReason: "nfs is a network filesystem", Filesystem: "nfs"},
			{Path: "/data/share", Resolved: "/data/share", Reason: "missing", Since: ptr(now.Add(-90 * time.Second)), Skipped: map[string]int{}},
		},
		States: map[string]int{"queued": 2, "uploading": 1, "uploaded": 1204, "failed": 1, "changed": 0, "ignored": 3, "dropped": 0},
		InFlight: []daemon.InFlight{
			{Watch: "/data/scope1", Path: "run-0003/image-0003.tif", Target: "archive", Key: "scope1/run-0003/image-0003.tif",
				Done: 512 << 20, Size: 1 << 30, Percent: 50, StartedAt: now.Add(-50 * time.Second), Rate: 512 << 20 / 50, ETASeconds: ptr(50.0)},
			{Watch: "/data/scope2", Path: "a.csv", Target: "nas", Key: "a.csv", Size: 12 << 10, StartedAt: now},
		},
		Rate: ptr(float64(12<<20 + 512<<10)), ETASeconds: ptr(205.0),
		LastError: &daemon.Failure{Time: now.Add(-4 * time.Minute), Watch: "/data/scope2", Path: "a.csv", Target: "nas", Class: "transient",
			Message: "Put: transient: dial tcp 10.0.0.7:443: connect: connection refused"},
	}
	fromJournal := daemon.Status{
		Source: "journal", Queue: 2, QueueBytes: 2048, DeadLetters: 0, OldestWait: 3 * 86400,
		Watches: []string{"/data/scope1"},
		States:  map[string]int{"queued": 2, "uploaded": 10},
	}
	for name, c := range map[string]struct {
		st   daemon.Status
		note string
	}{
		"daemon":  {fromDaemon, "from the daemon at 127.0.0.1:9464"},
		"journal": {fromJournal, "daemon not running: from the journal /var/lib/ferry/ferry.db (in-flight uploads, rate and breakers unknown)"},
	} {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			writeStatus(&b, c.st, c.note, now)
			golden(t, filepath.Join("testdata", "status", name+".golden"), b.String())
		})
	}
}

// TestStatusCommand runs ferry status against a running daemon (an upload
// held halfway by a proxy in front of versitygw, a dead letter) and, once
// the daemon has stopped, against the journal.
func TestStatusCommand(t *testing.T) {
	srv := testsrv.StartS3(t)
	e := e2eSetup(t, srv, "status", true)
	release := make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)
	endpoint := e2eStartProxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "denied") {
			io.Copy(io.Discard, r.Body)
			e2eS3Error(w, http.StatusForbidden, "AccessDenied")
			return true
		}
		if n, _ := strconv.Atoi(r.URL.Query().Get("partNumber")); r.Method == http.MethodPut && n >= 3 {
			select { // parts 1 and 2 land; the rest wait
			case <-release:
			case <-r.Context().Done():
			}
		}
		return false
	})
	addr := testsrv.FreeAddr(t)
	c := e.config()
	c.Endpoint = endpoint
	text := e.writeConfig(c) + fmt.Sprintf("[metrics]\nlisten = %q\n", addr)
	if err := os.WriteFile(e.cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d := e.startDaemon()
	bigSize := int64(4*e2eChunk + 7)
	e2eWriteFiles(t, e.watch, map[string][]byte{"a.bin": e2eData(1, 1000), "denied.bin": e2eData(2, 100), "run/big.bin": e2eData(3, int(bigSize))})

	ferryStatus := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errb strings.Builder
		code := run(t.Context(), append([]string{"status", "--config", e.cfgPath}, args...), &out, &errb, testcfg.Env(nil))
		return code, out.String(), errb.String()
	}
	var st daemon.Status
	testsrv.Eventually(t, e2eWait, "the held upload to show its first two parts", func() (bool, string) {
		code, out, errs := ferryStatus("--json")
		st = daemon.Status{}
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			return false, out + errs
		}
		return st.States["uploaded"] == 1 && st.DeadLetters == 1 && len(st.InFlight) == 1 && st.InFlight[0].Done == 2*e2eChunk, out
	})
	// The JSON: every documented field, with the values this run must give.
	f := st.InFlight[0]
	if st.Source != "daemon" || !strings.HasPrefix(st.Version, "ferry ") || st.StartedAt == nil || st.UptimeSeconds == nil || *st.UptimeSeconds <= 0 ||
		st.Queue != 1 || st.QueueBytes != bigSize || st.Uploaded != 1 || st.Bytes != 1000 || st.Breakers["s3"] != "closed" ||
		st.States["uploading"] != 1 || st.States["failed"] != 1 || st.States["queued"] != 0 || len(st.States) != len(journal.States()) ||
		len(st.Watches) != 1 || st.Watches[0] != e.watch {
		t.Errorf("status: %+v", st)
	}
	if f.Path != "run/big.bin" || f.Watch != e.watch || f.Target != "s3" || f.Key != e2ePrefix+"run/big.bin" || f.Size != bigSize ||
		f.Percent != 50 || f.Rate <= 0 || f.ETASeconds == nil || f.StartedAt.IsZero() {
		t.Errorf("in flight: %+v", f)
	}
	if st.Rate == nil || *st.Rate <= 0 || st.ETASeconds == nil || *st.ETASeconds <= 0 {
		t.Errorf("rate %v, eta %v: want both positive while a file moves", st.Rate, st.ETASeconds)
	}
	if le := st.LastError; le == nil || le.Path != "denied.bin" || le.Class != "permanent" || le.Target != "s3" || !strings.Contains(le.Message, "AccessDenied") {
		t.Errorf("last error %+v", st.LastError)
	}
	code, out, errs := ferryStatus()
	for _, want := range []string{"Daemon:        ferry ", "Source:        from the daemon at " + addr, "Queue:         1 files, 20.0 MiB",
		"failed 1", "Dead letters:  1 (see ferry dlq list)", "s3 (breaker closed)", "denied.bin -> s3", "permanent: Put: permanent (HTTP 403 AccessDenied)",
		"In flight:     1", "run/big.bin -> s3  10.0 MiB  / 20.0 MiB  50.0%"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("ferry status: exit %d, no %q in:\n%s%s", code, want, out, errs)
		}
	}

	releaseAll()
	testsrv.Eventually(t, e2eWait, "the big file to land", func() (bool, string) {
		_, out, _ := ferryStatus("--json")
		return strings.Contains(out, `"uploaded": 2`), out
	})
	if code, _ := d.stop(t); code != 0 {
		t.Fatalf("daemon exit %d", code)
	}

	// The daemon is gone: the journal answers.
	code, out, errs = ferryStatus()
	if code != 0 {
		t.Fatalf("ferry status without a daemon: exit %d\n%s%s", code, out, errs)
	}
	norm := regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\w+ ago\)`).ReplaceAllString(strings.ReplaceAll(out, e.dir, "$DIR"), "TIME (AGO ago)")
	golden(t, filepath.Join("testdata", "status", "stopped.golden"), norm)
	code, out, _ = ferryStatus("--json")
	var js map[string]any
	if err := json.Unmarshal([]byte(out), &js); code != 0 || err != nil {
		t.Fatalf("--json without a daemon: exit %d, %v\n%s", code, err, out)
	}
	for _, k := range []string{"version", "started_at", "uptime_seconds", "uploaded_files", "uploaded_bytes", "in_flight", "rate_bytes_per_second", "eta_seconds", "breakers"} {
		if v, ok := js[k]; !ok || v != nil {
			t.Errorf("from the journal, %s = %v, want null", k, v)
		}
	}
	if js["source"] != "journal" || js["dead_letter_files"] != 1.0 || js["states"].(map[string]any)["uploaded"] != 2.0 ||
		js["last_error"].(map[string]any)["path"] != "denied.bin" {
		t.Errorf("from the journal: %s", out)
	}

	// Metrics disabled: said so, and the journal answers.
	os.WriteFile(e.cfgPath, []byte(e.writeConfig(c)+"[metrics]\nlisten = \"\"\n"), 0o644)
	if code, out, _ := ferryStatus(); code != 0 || !strings.Contains(out, `metrics disabled ([metrics] listen = ""): from the journal`) {
		t.Errorf("metrics disabled: exit %d\n%s", code, out)
	}
	// No journal either: exit 1, naming it.
	os.Remove(e.journal)
	if code, _, errs := ferryStatus(); code != exitFailed || !strings.Contains(errs, "no journal at "+e.journal) {
		t.Errorf("no journal: exit %d, %q", code, errs)
	}
}
