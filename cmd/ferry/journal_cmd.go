package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/journal"
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

// journalVerbs are the verbs of "ferry journal".
var journalVerbs = map[string]verb{
	"export":  cmdJournalExport,
	"verify":  cmdJournalVerify,
	"state":   cmdJournalState,
	"archive": cmdJournalArchive,
	"rebuild": cmdJournalRebuild,
}

func cmdJournal(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	if code, ok := dispatch(ctx, journalVerbs, args, stdout, stderr, getenv); ok {
		return code
	}
	return usageError(stderr, journalUsage)
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
	fset, configPath := newFlags("journal export", stderr)
	format := fset.String("format", "jsonl", "jsonl or csv")
	since := fset.String("since", "", "only events at or after this time")
	until := fset.String("until", "", "only events at or before this time")
	batch := fset.String("batch", "", "only the events of this dataset (batch_id)")
	logName := fset.String("log", "events", "which log: events or audit")
	outPath := fset.String("out", "", "write to this file instead of standard output")
	if err := fset.Parse(args); err != nil || fset.NArg() > 0 || *configPath == "" {
		return usageError(stderr, journalUsage)
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
	fset, configPath := newFlags("journal verify", stderr)
	exportPath := fset.String("export", "", "an exported JSONL file to check offline")
	against := fset.Bool("against-target", false, "also compare the chains with the latest checkpoint on every target")
	if err := fset.Parse(args); err != nil || fset.NArg() > 0 || (*configPath == "") == (*exportPath == "") || (*against && *configPath == "") {
		return usageError(stderr, journalUsage)
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
// it to fn, in order; a line that does not decode, that fn refuses or that
// cannot be read is an error naming it (1-based).
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
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	return nil
}

// cmdJournalRebuild makes a new journal from the watched folders and what
// the targets hold (daemon.Rebuild).
func cmdJournalRebuild(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	fset, configPath := newFlags("journal rebuild", stderr)
	force := fset.Bool("force", false, "rebuild even though the journal is readable (it is kept, moved aside)")
	cfg, code := parseAndLoad(fset, configPath, args, getenv, stderr, "ferry journal rebuild: --config FILE is required")
	if cfg == nil {
		return code
	}
	log, closeLog, code := openLog(cfg, stderr, nil)
	if log == nil {
		return code
	}
	defer closeLog.Close()
	res, err := daemon.Rebuild(ctx, cfg, *force, versionString(), log)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "rebuilt %s from %d files: %d already on their target (recorded as uploaded), %d not there and %d different there (to be uploaded)\n",
		cfg.Journal.Path, res.Files, res.Uploaded, res.Missing, res.Differ)
	if res.Unstorable > 0 {
		fmt.Fprintf(stdout, "%d files have names that cannot be keys; the daemon records them as failed\n", res.Unstorable)
	}
	if res.Aside != "" {
		fmt.Fprintf(stdout, "the old journal is kept as %s\n", res.Aside)
	}
	return exitOK
}
