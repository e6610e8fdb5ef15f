package journal

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// ArchiveFile moves the events older than before to a new JSONL archive at
// path, as `ferry journal archive` and the daemon's archiver do: the
// archive is written and made durable (file and folder) before the live
// table changes (CommitArchive, one transaction). On any failure the
// archive file is removed and the journal is unchanged. ErrNothingToArchive
// when no event is older than before (no file is left).
func (j *Journal) ArchiveFile(ctx context.Context, before time.Time, path string) (ArchivePoint, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return ArchivePoint{}, err
	}
	fail := func(err error) (ArchivePoint, error) {
		f.Close()
		os.Remove(path)
		return ArchivePoint{}, err
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 256<<10)
	plan, err := j.WriteArchive(ctx, before, bw)
	if err != nil {
		return fail(err)
	}
	defer plan.Close() // its spool, also when it is not committed
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	syncDir(filepath.Dir(path))
	plan.Point.SHA256 = hex.EncodeToString(h.Sum(nil))
	plan.Point.Name = filepath.Base(path)
	a, err := j.CommitArchive(ctx, plan)
	if err != nil {
		os.Remove(path)
		return a, err
	}
	return a, nil
}

// ArchiveName is the base name of the archive of the events before t
// that a person (ferry journal archive without --out) or the daemon
// writes in [journal] archive_dir.
func ArchiveName(before time.Time) string {
	return "ferry-journal-before-" + before.UTC().Format("20060102T150405Z") + ".jsonl"
}

// ArchiveBacklog estimates what archiving the events before t would do:
// how many events it would move (those before the first event at or after
// t) and how many file_state events it would append (one per file). The
// times compare as stored text, to the second: an estimate, for deciding
// whether to archive (WriteArchive decides exactly what).
func (j *Journal) ArchiveBacklog(ctx context.Context, before time.Time) (events, files int64, err error) {
	cut := before.UTC().Format(time.RFC3339)
	err = j.r.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM events WHERE seq < COALESCE((SELECT MIN(seq) FROM events WHERE time >= ?), (SELECT COALESCE(MAX(seq), 0) + 1 FROM events))),
		(SELECT COUNT(*) FROM files)`, cut).Scan(&events, &files)
	if err != nil {
		return 0, 0, fmt.Errorf("journal %s: archive backlog: %w", j.path, err)
	}
	return events, files, nil
}
