package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/watcher"
)

// RebuildResult is what a rebuild found: the files in the watched folders,
// those the target already holds (recorded as uploaded), those it lacks,
// those it holds with other content, and those whose names cannot be keys.
// Aside is where the old journal was moved ("" when there was none).
type RebuildResult struct {
	Files, Uploaded, Missing, Differ, Unstorable int
	Aside                                        string
}

// Rebuild makes a new journal for cfg from the watched folders and what the
// targets hold: a file whose object exists with the same size and sha256
// is recorded as uploaded, so nothing is sent twice; every other file is
// left for the daemon to take as new. The old journal (corrupt, or, with
// force, readable) is moved aside, never deleted; a readable one without
// force is refused. The new journal is built under a temporary name and
// only moved into place when complete. An error says what was done, if
// anything.
func Rebuild(ctx context.Context, cfg *config.Config, force bool, version string, log *slog.Logger) (RebuildResult, error) {
	var res RebuildResult
	path := cfg.Journal.Path
	// A running daemon holds the journal: rebuilding under it would lose
	// what it writes meanwhile.
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return res, fmt.Errorf("journal %s: %w", path, err)
	}
	lock, err := journal.Lock(path)
	if err != nil {
		return res, fmt.Errorf("%w: stop it before rebuilding", err)
	}
	defer lock.Unlock()
	oldExists := exists(path)
	if oldExists {
		j, err := journal.Open(path, journal.Options{})
		switch {
		case err == nil:
			j.Close()
			if !force {
				return res, fmt.Errorf("journal %s is readable and intact: rebuild is for a corrupt or lost journal (add --force to rebuild anyway; the old one is kept beside it)", path)
			}
		case errors.Is(err, journal.ErrCorrupt):
		default:
			return res, err
		}
	}
	tmp := path + ".rebuild"
	removeDB(tmp)
	res, err = rebuild(ctx, cfg, tmp, version, log)
	if err != nil {
		removeDB(tmp)
		return res, fmt.Errorf("journal rebuild: %v (nothing was changed)", err)
	}
	if oldExists {
		kind := "corrupt"
		if force {
			kind = "old"
		}
		res.Aside = fmt.Sprintf("%s.%s-%s", path, kind, time.Now().UTC().Format("20060102T150405Z"))
		if err := moveDB(path, res.Aside); err != nil {
			removeDB(tmp)
			return res, fmt.Errorf("cannot move the old journal aside: %v (nothing was changed)", err)
		}
	}
	if err := moveDB(tmp, path); err != nil {
		return res, fmt.Errorf("cannot put the rebuilt journal in place: %v (it is at %s)", err, tmp)
	}
	log.Info("journal rebuilt", "journal", path, "old_journal", res.Aside, "files", res.Files, "recorded_uploaded", res.Uploaded,
		"not_on_target", res.Missing, "different_on_target", res.Differ)
	return res, nil
}

// rebuild records in a new journal at path every file of the watched
// folders whose object the target holds.
func rebuild(ctx context.Context, cfg *config.Config, path, version string, log *slog.Logger) (RebuildResult, error) {
	var st RebuildResult
	j, err := journal.Open(path, journal.Options{FerryVersion: version})
	if err != nil {
		return st, err
	}
	defer j.Close()
	targets, err := NewTargets(cfg, nil, log, nil)
	if err != nil {
		return st, err
	}
	for _, wc := range cfg.Watch {
		w, err := watcher.New(watcherOptions(cfg, wc, nil, log))
		if err != nil {
			return st, err
		}
		t, s := cfg.Target[wc.Target], targets[wc.Target].Sink()
		err = w.Walk(ctx, func(f watcher.File) error {
			st.Files++
			key, err := uploader.ObjectKey(t.Prefix, f.RelPath)
			if err != nil {
				st.Unstorable++
				return nil
			}
			info, err := s.Stat(ctx, key)
			if errors.Is(err, sink.ErrNotFound) {
				st.Missing++
				return nil
			}
			if err != nil {
				return fmt.Errorf("target %s: %s: %w", wc.Target, key, err)
			}
			settled := journal.Settled{
				Watch: f.Root, RelPath: f.RelPath, Target: wc.Target, Key: key, BatchID: uploader.BatchID(f.RelPath),
				Version: fileVersion(f), Signal: "rebuild",
			}
			if info.SHA256 == "" {
				// Not put there by ferry: the daemon's create-only upload
				// will report the conflict.
				st.Differ++
				return nil
			}
			same := false
			if info.Size == f.Stat.Size {
				sum, err := hashFile(f.Path)
				same = err == nil && sum == info.SHA256
			}
			if same {
				st.Uploaded++
				return j.RecordFromTarget(ctx, settled, info.SHA256, true, "rebuild: the target holds this content under "+key)
			}
			st.Differ++
			return j.RecordFromTarget(ctx, settled, info.SHA256, false, "rebuild: the target holds an earlier content under "+key)
		})
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

func hashFile(path string) (string, error) {
	f, err := srcfile.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
