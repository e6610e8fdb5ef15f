package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/journal"
)

// The journal's growth policy ([journal] archive_after, archive_dir): once
// a day the daemon moves the events older than archive_after to an
// archive in archive_dir, exactly as `ferry journal archive --before T`
// does (journal.ArchiveFile: the archive is durable before the live table
// changes; the chain records it with an archived event and one file_state
// event per file, and goes on verifying).
//
// An archive appends one file_state event per file. The daemon archives
// only when that shrinks the live journal: when at least as many events
// are older than archive_after as there are files. Until then it waits
// for the next day (and says so). The live journal so stays within about
// archive_after's worth of events plus one or two file states per file.
//
// It runs beside the uploads: writing the archive reads a snapshot; the
// commit is one transaction of the journal's writer (which the uploads'
// transitions wait for, as for any other transaction).

// archiveFirst is when the daemon first looks, after the start's rush;
// archiveEvery how often after that.
const (
	archiveFirst = 10 * time.Minute
	archiveEvery = 24 * time.Hour
)

// archiver archives the journal by the policy of the configuration in
// force (like every [journal] key, archive_after and archive_dir change at
// a restart: a reload keeps the running ones).
type archiver struct {
	j   *journal.Journal
	cfg func() *config.Config
	now func() time.Time
	log *slog.Logger
}

func (d *Daemon) archiver() *archiver {
	return &archiver{j: d.j, cfg: func() *config.Config { return d.now().cfg }, now: d.clock, log: d.log}
}

// run passes archiveFirst after the start, then every archiveEvery, until
// ctx ends.
func (a *archiver) run(ctx context.Context) {
	t := time.NewTimer(archiveFirst)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.pass(ctx)
			t.Reset(archiveEvery)
		}
	}
}

// pass archives by the policy of the configuration in force.
func (a *archiver) pass(ctx context.Context) (journal.ArchivePoint, bool) {
	return ArchiveDue(ctx, a.j, a.cfg(), a.now(), a.log)
}

// ArchiveDue archives the events of j older than cfg's [journal]
// archive_after at now into its archive_dir, when the policy says so (see
// above), and says whether it archived; what it did or why not is logged.
// The daemon calls it once a day.
func ArchiveDue(ctx context.Context, j *journal.Journal, cfg *config.Config, now time.Time, log *slog.Logger) (journal.ArchivePoint, bool) {
	c := cfg.Journal
	if c.ArchiveAfter == 0 {
		return journal.ArchivePoint{}, false
	}
	before := now.Add(-time.Duration(c.ArchiveAfter)).UTC().Truncate(time.Second)
	events, files, err := j.ArchiveBacklog(ctx, before)
	switch {
	case err != nil:
		log.Warn("journal archive: cannot tell what to archive; trying again tomorrow", "error", err)
		return journal.ArchivePoint{}, false
	case events == 0:
		log.Debug("journal archive: no event older than archive_after", "before", before)
		return journal.ArchivePoint{}, false
	case events < files:
		log.Info("journal archive postponed: an archive appends one file state per file, more than the events it would move",
			"events_older", events, "files", files, "archive_after", c.ArchiveAfter.String(), "before", before)
		return journal.ArchivePoint{}, false
	}
	if err := os.MkdirAll(c.ArchiveDir, 0o750); err != nil {
		log.Error("journal archive: cannot make archive_dir; trying again tomorrow", "archive_dir", c.ArchiveDir, "error", err)
		return journal.ArchivePoint{}, false
	}
	path := filepath.Join(c.ArchiveDir, journal.ArchiveName(before))
	start := time.Now()
	p, err := j.ArchiveFile(ctx, before, path)
	switch {
	case errors.Is(err, journal.ErrNothingToArchive):
		log.Debug("journal archive: no event older than archive_after", "before", before)
		return p, false
	case err != nil:
		log.Error("journal archive failed (the journal is unchanged); trying again tomorrow", "archive", path, "error", err)
		return p, false
	}
	log.Info("journal archived", "archive", path, "sha256", p.SHA256, "events", p.Count, "first_seq", p.FirstSeq, "last_seq", p.LastSeq,
		"before", before, "archived_event_seq", p.Seq, "file_states", p.Files, "took", time.Since(start).Round(time.Millisecond).String())
	return p, true
}
