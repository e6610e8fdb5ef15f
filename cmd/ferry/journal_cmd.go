package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/watcher"
)

const journalUsage = `usage:
  ferry journal export --config FILE [--format jsonl|csv] [--since T] [--until T] [--batch ID] [--log events|audit] [--out FILE]
  ferry journal verify --config FILE [--against-target]
                                            recompute both chains (events and audit), check
                                            the file-state tables against a replay of the
                                            events; with --against-target, compare the chains
                                            with the latest checkpoint on every target
  ferry journal verify --export FILE        check an exported JSONL file (either log) offline
  ferry journal state --config FILE | --export FILE --at T [--batch ID] [--format text|jsonl]
                                            every file as it stood at T (a replay of the chain)
  ferry journal archive --config FILE --before T --out FILE
                                            move the events older than T to FILE (JSONL)
  ferry journal rebuild --config FILE [--force]
T is RFC 3339 (2026-11-26T10:00:00Z) or a date (2026-11-26, midnight UTC). A
time-range export verifies on its own (from its first event's prev_hash); a
--batch export is a selection, not a chain. An archive verifies on its own,
and the live chain keeps the link to it.`

func cmdJournal(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	if len(args) > 0 {
		switch args[0] {
		case "rebuild":
			return cmdJournalRebuild(ctx, args[1:], stdout, stderr, getenv)
		case "export":
			return cmdJournalExport(ctx, args[1:], stdout, stderr, getenv)
		case "verify":
			return cmdJournalVerify(ctx, args[1:], stdout, stderr, getenv)
		case "state":
			return cmdJournalState(ctx, args[1:], stdout, stderr, getenv)
		case "archive":
			return cmdJournalArchive(ctx, args[1:], stdout, stderr, getenv)
		}
	}
	fmt.Fprintln(stderr, journalUsage)
	return exitUsage
}

// openJournal loads the configuration and opens its journal for a
// command that works on the journal alone. On failure it has told stderr
// why and returns nil with the exit code.
func openJournal(configPath string, getenv env, stderr io.Writer) (*journal.Journal, int) {
	cfg, err := config.Load(configPath, getenv)
	if err != nil {
		return nil, reportConfigError(stderr, err)
	}
	j, err := journal.Open(cfg.Journal.Path, journal.Options{FerryVersion: versionString()})
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		if errors.Is(err, journal.ErrCorrupt) {
			fmt.Fprintf(stderr, "to recover: ferry journal rebuild --config %s\n", cfg.File())
		}
		return nil, exitFailed
	}
	return j, exitOK
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q: use RFC 3339 (2026-11-26T10:00:00Z) or a date (2026-11-26)", s)
}

// cmdJournalExport streams events as JSONL or CSV: one event per line or
// row with every field, seq, prev_hash and hash included, so that the
// export verifies on its own.
func cmdJournalExport(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	fset := flag.NewFlagSet("journal export", flag.ContinueOnError)
	fset.SetOutput(stderr)
	configPath := fset.String("config", "", "configuration file (TOML)")
	format := fset.String("format", "jsonl", "jsonl or csv")
	since := fset.String("since", "", "only events at or after this time")
	until := fset.String("until", "", "only events at or before this time")
	batch := fset.String("batch", "", "only the events of this dataset (batch_id)")
	logName := fset.String("log", "events", "which log: events or audit")
	outPath := fset.String("out", "", "write to this file instead of standard output")
	if err := fset.Parse(args); err != nil || fset.NArg() > 0 || *configPath == "" {
		fmt.Fprintln(stderr, journalUsage)
		return exitUsage
	}
	var f journal.EventFilter
	var err error
	if *since != "" {
		if f.Since, err = parseTime(*since); err != nil {
			fmt.Fprintf(stderr, "ferry journal export: --since: %v\n", err)
			return exitUsage
		}
	}
	if *until != "" {
		if f.Until, err = parseTime(*until); err != nil {
			fmt.Fprintf(stderr, "ferry journal export: --until: %v\n", err)
			return exitUsage
		}
	}
	f.BatchID = *batch
	if *format != "jsonl" && *format != "csv" {
		fmt.Fprintf(stderr, "ferry journal export: --format must be jsonl or csv (got %q)\n", *format)
		return exitUsage
	}
	if *logName != "events" && *logName != journal.AuditLogName {
		fmt.Fprintf(stderr, "ferry journal export: --log must be events or audit (got %q)\n", *logName)
		return exitUsage
	}
	audit := *logName == journal.AuditLogName
	if audit && f.BatchID != "" {
		fmt.Fprintln(stderr, "ferry journal export: --batch selects events: the audit log belongs to no batch")
		return exitUsage
	}
	j, code := openJournal(*configPath, getenv, stderr)
	if j == nil {
		return code
	}
	defer j.Close()
	out := stdout
	var file *os.File
	if *outPath != "" {
		if file, err = os.Create(*outPath); err != nil {
			fmt.Fprintf(stderr, "ferry: %v\n", err)
			return exitFailed
		}
		out = file
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	n := 0
	if *format == "csv" {
		cw := csv.NewWriter(bw)
		if audit {
			cw.Write(journal.AuditExportColumns)
			err = j.AuditRecords(ctx, f, func(r journal.AuditRecord) error { n++; return cw.Write(r.CSVRecord()) })
		} else {
			cw.Write(journal.ExportColumns)
			err = j.Events(ctx, f, func(e journal.Event) error { n++; return cw.Write(e.CSVRecord()) })
		}
		cw.Flush()
		if err == nil {
			err = cw.Error()
		}
	} else {
		enc := json.NewEncoder(bw)
		if audit {
			err = j.AuditRecords(ctx, f, func(r journal.AuditRecord) error { n++; return enc.Encode(r) })
		} else {
			err = j.Events(ctx, f, func(e journal.Event) error { n++; return enc.Encode(e) })
		}
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if file != nil {
		if cerr := file.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "ferry journal export: %v\n", err)
		return exitFailed
	}
	if *outPath != "" {
		what := "events"
		if audit {
			what = "audit records"
		}
		fmt.Fprintf(stdout, "exported %d %s to %s\n", n, what, *outPath)
	}
	return exitOK
}

// cmdJournalVerify recomputes the event chain of the journal, or of an
// exported JSONL file with only the ferry binary: exit 0 with a summary
// when intact, 1 naming the first bad seq.
func cmdJournalVerify(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	fset := flag.NewFlagSet("journal verify", flag.ContinueOnError)
	fset.SetOutput(stderr)
	configPath := fset.String("config", "", "configuration file (TOML)")
	exportPath := fset.String("export", "", "an exported JSONL file to check offline")
	against := fset.Bool("against-target", false, "also compare the chains with the latest checkpoint on every target")
	if err := fset.Parse(args); err != nil || fset.NArg() > 0 || (*configPath == "") == (*exportPath == "") || (*against && *configPath == "") {
		fmt.Fprintln(stderr, journalUsage)
		return exitUsage
	}
	report := func(what string, v *journal.ChainVerifier, err error) int {
		if err != nil {
			fmt.Fprintf(stderr, "ferry: %s: NOT intact after %d good events: %v\n", what, v.Count(), err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "%s: intact, %d events, chain tail %s\n", what, v.Count(), v.Last())
		return exitOK
	}
	if *exportPath != "" {
		f, err := os.Open(*exportPath)
		if err != nil {
			fmt.Fprintf(stderr, "ferry: %v\n", err)
			return exitFailed
		}
		defer f.Close()
		if isAuditExport(f) { // the audit log's export: see journal_audit_cmd.go
			return verifyAuditExport(f, *exportPath, stdout, stderr)
		}
		v := journal.NewRangeVerifier()
		return report(*exportPath, v, readJSONL(f, v.Check))
	}
	j, code := openJournal(*configPath, getenv, stderr)
	if j == nil {
		return code
	}
	defer j.Close()
	// Both chains, the replay of the events against the file tables, and
	// with --against-target the remote checkpoints: see journal_audit_cmd.go.
	return verifyChains(ctx, j, *configPath, *against, getenv, stdout, stderr)
}

// readJSONL decodes each non-empty line of r (an export) as a T and hands
// it to fn, in order; a line that does not decode is an error naming it.
func readJSONL[T any](r io.Reader, fn func(T) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return fmt.Errorf("line %d: %v", line, err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return sc.Err()
}

// rebuildStats counts what a rebuild found.
type rebuildStats struct {
	files, uploaded, missing, differ, unstorable int
}

// cmdJournalRebuild makes a new journal from the watched folders and what
// the targets hold: a file whose object exists with the same size and
// sha256 is recorded as uploaded, so nothing is sent twice; every other file
// is left for the daemon to take as new. The old journal (corrupt, or
// readable with --force) is moved aside, never deleted. The new journal is
// built under a temporary name and only moved into place when complete.
func cmdJournalRebuild(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	fset := flag.NewFlagSet("journal rebuild", flag.ContinueOnError)
	fset.SetOutput(stderr)
	configPath := fset.String("config", "", "configuration file (TOML)")
	force := fset.Bool("force", false, "rebuild even though the journal is readable (it is kept, moved aside)")
	if err := fset.Parse(args); err != nil {
		return exitUsage
	}
	if *configPath == "" || fset.NArg() > 0 {
		fmt.Fprintln(stderr, "ferry journal rebuild: --config FILE is required")
		return exitUsage
	}
	cfg, err := config.Load(*configPath, getenv)
	if err != nil {
		return reportConfigError(stderr, err)
	}
	log, closeLog, err := newLogger(cfg.Log, stderr, nil)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: log file %s: %v\n", cfg.Log.File, err)
		return exitUsage
	}
	defer closeLog.Close()
	path := cfg.Journal.Path
	oldExists := exists(path)
	if oldExists {
		j, err := journal.Open(path, journal.Options{})
		switch {
		case err == nil:
			j.Close()
			if !*force {
				fmt.Fprintf(stderr, "ferry: journal %s is readable and intact: rebuild is for a corrupt or lost journal (add --force to rebuild anyway; the old one is kept beside it)\n", path)
				return exitFailed
			}
		case errors.Is(err, journal.ErrCorrupt):
		default:
			fmt.Fprintf(stderr, "ferry: %v\n", err)
			return exitFailed
		}
	}
	tmp := path + ".rebuild"
	removeDB(tmp)
	st, err := rebuild(ctx, cfg, tmp, log)
	if err != nil {
		removeDB(tmp)
		fmt.Fprintf(stderr, "ferry: journal rebuild: %v (nothing was changed)\n", err)
		return exitFailed
	}
	aside := ""
	if oldExists {
		kind := "corrupt"
		if *force {
			kind = "old"
		}
		aside = fmt.Sprintf("%s.%s-%s", path, kind, time.Now().UTC().Format("20060102T150405Z"))
		if err := moveDB(path, aside); err != nil {
			removeDB(tmp)
			fmt.Fprintf(stderr, "ferry: cannot move the old journal aside: %v (nothing was changed)\n", err)
			return exitFailed
		}
	}
	if err := moveDB(tmp, path); err != nil {
		fmt.Fprintf(stderr, "ferry: cannot put the rebuilt journal in place: %v (it is at %s)\n", err, tmp)
		return exitFailed
	}
	log.Info("journal rebuilt", "journal", path, "old_journal", aside, "files", st.files, "recorded_uploaded", st.uploaded,
		"not_on_target", st.missing, "different_on_target", st.differ)
	fmt.Fprintf(stdout, "rebuilt %s from %d files: %d already on their target (recorded as uploaded), %d not there and %d different there (to be uploaded)\n",
		path, st.files, st.uploaded, st.missing, st.differ)
	if st.unstorable > 0 {
		fmt.Fprintf(stdout, "%d files have names that cannot be keys; the daemon records them as failed\n", st.unstorable)
	}
	if aside != "" {
		fmt.Fprintf(stdout, "the old journal is kept as %s\n", aside)
	}
	return exitOK
}

func rebuild(ctx context.Context, cfg *config.Config, path string, log *slog.Logger) (rebuildStats, error) {
	var st rebuildStats
	j, err := journal.Open(path, journal.Options{FerryVersion: versionString()})
	if err != nil {
		return st, err
	}
	defer j.Close()
	sinks := map[string]sink.Sink{}
	for name, t := range cfg.Target {
		s, err := newSink(t, cfg.Upload.MaxConcurrentUploads, nil, nil)
		if err != nil {
			return st, fmt.Errorf("target %s: %w", name, err)
		}
		sinks[name] = s
	}
	for _, wc := range cfg.Watch {
		w, err := watcher.New(watcherOptions(cfg, wc, nil, log))
		if err != nil {
			return st, err
		}
		t, s := cfg.Target[wc.Target], sinks[wc.Target]
		err = w.Walk(ctx, func(f watcher.File) error {
			st.files++
			key, err := uploader.ObjectKey(t.Prefix, f.RelPath)
			if err != nil {
				st.unstorable++
				return nil
			}
			info, err := s.Stat(ctx, key)
			if errors.Is(err, sink.ErrNotFound) {
				st.missing++
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
				st.differ++
				return nil
			}
			same := false
			if info.Size == f.Stat.Size {
				sum, err := hashFile(f.Path)
				same = err == nil && sum == info.SHA256
			}
			if same {
				st.uploaded++
				return j.RecordFromTarget(ctx, settled, info.SHA256, true, "rebuild: the target holds this content under "+key)
			}
			st.differ++
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

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// moveDB renames a SQLite database with its WAL and shared-memory files.
func moveDB(from, to string) error {
	for _, suffix := range []string{"-wal", "-shm"} {
		if exists(from + suffix) {
			if err := os.Rename(from+suffix, to+suffix); err != nil {
				return err
			}
		}
	}
	return os.Rename(from, to)
}

func removeDB(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}
