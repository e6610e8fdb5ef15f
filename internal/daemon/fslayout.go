package daemon

import (
	"context"
	"sort"
	"time"

	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink/fssink"
)

// fsMigrateTimeout bounds the one-time migration of an fs target's layout
// at start (a walk of the archive): it runs beside the uploads, and what
// it has not done by then is done at the next start.
const fsMigrateTimeout = time.Hour

// ledger is what the journal knows of one target, for fssink.Migrate.
type ledger struct {
	j      *journal.Journal
	target string
}

func (l ledger) Sent(ctx context.Context, fn func(key, sha256 string) error) error {
	return l.j.SentObjects(ctx, l.target, fn)
}

func (l ledger) SourceKeys(ctx context.Context) (map[string]bool, error) {
	return l.j.SourceKeysLike(ctx, l.target, "%"+fssink.LegacySidecarSuffix, "%"+fssink.TempPrefix+"%")
}

// fsSinks are the fs targets of the wiring, by name, in name order.
func (w *wiring) fsSinks() ([]string, map[string]*fssink.Sink) {
	out := map[string]*fssink.Sink{}
	var names []string
	for name, t := range w.targets {
		if s, ok := t.Raw().(*fssink.Sink); ok {
			out[name] = s
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, out
}

// sweepFSTemp removes, before the first upload, the temporary files this
// host's puts left in each fs target (a kill during a put).
func (d *Daemon) sweepFSTemp(w *wiring) {
	names, sinks := w.fsSinks()
	for _, name := range names {
		n, err := sinks[name].SweepTemp()
		if err != nil {
			d.log.Warn("could not remove every temporary file an earlier run left in the fs target", "target", name, "removed", n, "error", err.Error())
		}
		if n > 0 {
			d.log.Info("removed temporary files an interrupted run left in the fs target", "target", name, "files", n)
		}
	}
}

// migrateFS brings each fs target written by an earlier ferry into the
// current layout (fssink.Migrate), once per archive, in the background.
func (d *Daemon) migrateFS(ctx context.Context, w *wiring) {
	names, sinks := w.fsSinks()
	for _, name := range names {
		mctx, cancel := context.WithTimeout(ctx, fsMigrateTimeout)
		m, err := sinks[name].Migrate(mctx, ledger{j: d.j, target: name})
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			d.log.Warn("could not finish moving the fs target to the current layout; trying again at the next start", "target", name,
				"sidecars_moved", m.Moved, "temp_files_removed", m.Temps, "error", err.Error())
		case err == nil && !m.Done:
			d.log.Info("fs target moved to the current layout (hash sidecars under "+fssink.SumsDir+"/)", "target", name,
				"sidecars_moved", m.Moved, "sidecars_kept", m.Kept, "temp_files_removed", m.Temps)
		}
	}
}
