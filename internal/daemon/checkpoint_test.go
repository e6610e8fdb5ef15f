package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/fssink"
)

func TestCheckpointKeysSortByChain(t *testing.T) {
	a := checkpointKey("p/", journal.Checkpoint{Host: "pc1", EventSeq: 9, AuditSeq: 12})
	b := checkpointKey("p/", journal.Checkpoint{Host: "pc1", EventSeq: 10, AuditSeq: 3})
	c := checkpointKey("p/", journal.Checkpoint{Host: "pc1", EventSeq: 10, AuditSeq: 4})
	if a != "p/_ferry/checkpoints/pc1/00000000000000000009-00000000000000000012.json" || !(a < b && b < c) {
		t.Fatalf("keys %s, %s, %s do not sort in chain order", a, b, c)
	}
}

// A checkpoint that a target cannot take (its folder is gone) is tried
// again at the next checkpoint, while the other target has it at once; a
// burst of completed batches makes one checkpoint at once and one at the
// end of the minute, not one each.
func TestCheckpointOutageAndDebounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		dir := t.TempDir()
		j, err := journal.Open(filepath.Join(dir, "ferry.db"), journal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		up, err := fssink.New(filepath.Join(dir, "up"))
		if err != nil {
			t.Fatal(err)
		}
		downRoot := filepath.Join(dir, "down")
		down, err := fssink.New(downRoot)
		if err != nil {
			t.Fatal(err)
		}
		// The share goes away: its folder is now a file.
		os.Remove(downRoot)
		os.WriteFile(downRoot, []byte("not a folder"), 0o644)

		var logs bytes.Buffer
		cfg := &config.Config{Journal: config.JournalConfig{CheckpointInterval: config.Duration(time.Hour), CheckpointRetention: config.Duration(time.Hour)},
			Target: map[string]config.TargetConfig{"up": {Prefix: "a/"}, "down": {Prefix: "b/"}}}
		c := newCheckpointer(cfg, j, map[string]sink.Sink{"up": up, "down": down}, "ferry test", slog.New(slog.NewJSONHandler(&logs, nil)))
		count := func(s sink.Sink, prefix string) int {
			t.Helper()
			keys, err := s.List(t.Context(), prefix+CheckpointDir)
			if err != nil {
				return -1
			}
			return len(keys)
		}
		go c.run(ctx, true)
		synctest.Wait()
		if n := count(up, "a/"); n != 1 {
			t.Fatalf("up holds %d checkpoints after the start, want 1", n)
		}
		if !strings.Contains(logs.String(), `"msg":"cannot upload the checkpoint`) || !strings.Contains(logs.String(), `"target":"down"`) {
			t.Fatalf("the failed upload is not logged:\n%s", logs.String())
		}

		// Ten batches complete within seconds, during the outage: the
		// journal is not held up by it.
		for i := range 10 {
			rel := "run" + string(rune('a'+i)) + "/f"
			if _, err := j.RecordSettled(ctx, journal.Settled{Watch: "/w", RelPath: rel, Target: "up", Key: rel, BatchID: rel[:4],
				Version: journal.Version{Size: 1, MtimeNS: 1, FileID: "1:1"}, Signal: "quiet"}); err != nil {
				t.Fatal(err)
			}
			jobs, err := j.Claim(ctx, 1)
			if err != nil || len(jobs) != 1 {
				t.Fatalf("claim: %v %v", jobs, err)
			}
			if err := j.Complete(ctx, &jobs[0], "ff", rel); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			synctest.Wait()
		}
		if n := count(up, "a/"); n != 1 {
			t.Fatalf("up holds %d checkpoints within the minute after the start, want 1 (debounced)", n)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := count(up, "a/"); n != 2 {
			t.Fatalf("up holds %d checkpoints after the burst, want 2: the start and one for the burst", n)
		}

		// The share comes back: nothing is sent before the next tick,
		// then the latest checkpoint.
		os.Remove(downRoot)
		os.Mkdir(downRoot, 0o755)
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		if n := count(down, "b/"); n != 0 {
			t.Fatalf("down got %d checkpoints before the next tick", n)
		}
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		keys, err := down.List(t.Context(), "b/"+CheckpointDir)
		if err != nil || len(keys) != 1 {
			t.Fatalf("down after the tick: %q, %v; want the latest checkpoint", keys, err)
		}
		upKeys, _ := up.List(t.Context(), "a/"+CheckpointDir)
		if strings.TrimPrefix(keys[0], "b/") != strings.TrimPrefix(upKeys[len(upKeys)-1], "a/") {
			t.Fatalf("down got %s, want the latest, %s", keys[0], upKeys[len(upKeys)-1])
		}
		if !strings.Contains(logs.String(), `"msg":"checkpoint uploaded again after failures"`) {
			t.Fatalf("the recovery is not logged:\n%s", logs.String())
		}
		cancel()
		<-c.done
	})
}

// The documented cadence over whole runs: a --once run takes one
// checkpoint (at its end), not one at start and one at stop; a daemon
// starting on a journal whose tail a checkpoint already anchors takes none
// at start, and one at stop; the "checkpoint" lines come before "ferry
// stopped".
func TestCheckpointCadenceAcrossRuns(t *testing.T) {
	cfgPath := testcfg.Write(t, "[journal]\npath = \"ferry.db\"\n[log]\nfile = \"ferry.log\"\n[metrics]\nlisten = \"\"\n"+
		"[target.local]\ntype = \"fs\"\npath = \"archive\"\n[[watch]]\npath = \"in\"\ntarget = \"local\"\nsettle = \"100ms\"\n")
	dir := filepath.Dir(cfgPath)
	os.WriteFile(filepath.Join(dir, "in", "a.bin"), []byte("one"), 0o644)
	checkpoints := func() int {
		ents, _ := filepath.Glob(filepath.Join(dir, "archive", CheckpointDir, CheckpointHost(), "*.json"))
		return len(ents) // not the .sha256 sidecars
	}
	once := func() {
		t.Helper()
		cfg, err := config.Load(cfgPath, testcfg.Env(nil))
		if err != nil {
			t.Fatal(err)
		}
		log, closeLog, err := NewLogger(cfg.Log, io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer closeLog.Close()
		d, err := New(cfg, Options{Log: log, Version: "ferry test"})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if _, err := d.Run(t.Context(), true); err != nil {
			t.Fatal(err)
		}
	}
	once()
	if n := checkpoints(); n != 1 {
		logs, _ := os.ReadFile(filepath.Join(dir, "ferry.log"))
		t.Fatalf("%d checkpoints after a --once run, want 1\n%s", n, logs)
	}
	once()
	if n := checkpoints(); n != 2 {
		t.Fatalf("%d checkpoints after two --once runs, want 2", n)
	}
	os.Remove(filepath.Join(dir, "ferry.log")) // startDaemon waits for this daemon's "watching"
	d := startDaemon(t, cfgPath, testcfg.Env(nil))
	if n := checkpoints(); n != 2 {
		t.Fatalf("%d checkpoints after a daemon started on an anchored journal, want still 2", n)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if n := checkpoints(); n != 3 {
		t.Fatalf("%d checkpoints after the daemon stopped, want 3", n)
	}
	logs, _ := os.ReadFile(filepath.Join(dir, "ferry.log"))
	last := strings.LastIndex(string(logs), `"msg":"checkpoint"`)
	if stopped := strings.LastIndex(string(logs), `"msg":"ferry stopped"`); last < 0 || stopped < last {
		t.Fatalf("the final checkpoint is logged after \"ferry stopped\":\n%s", logs)
	}
}
