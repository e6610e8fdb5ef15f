package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/journal"
)

func (a *app) journalCmd() *cobra.Command {
	return group("journal", "The journal: export, verify, state, archive, rebuild",
		a.exportCmd(), a.verifyCmd(), a.stateCmd(), a.archiveCmd(), a.rebuildCmd())
}

// timeHelp is what the journal verbs take as a time.
const timeHelp = "\n\nT is RFC 3339 (2026-11-26T10:00:00Z) or a date (2026-11-26, midnight UTC)."

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q: use RFC 3339 (2026-11-26T10:00:00Z) or a date (2026-11-26)", s)
}

func (a *app) exportCmd() *cobra.Command {
	var configFlag, format, since, until, batch, logName, outPath string
	c := &cobra.Command{
		Use:   "export",
		Short: "Write a hash-chained log (the events, or ferry's audit log) as JSONL or CSV",
		Long: `Write the events (every step of every file), or ferry's audit log (--log
audit), one per line (JSONL) or row (CSV) with seq, prev_hash and hash, so
that the export verifies on its own (ferry journal verify --export).` + timeHelp,
		Example: `  ferry journal export --config ferry.toml --since 2026-11-01 --out nov.jsonl
  ferry journal export --format csv --batch run-0007 > run-0007.csv
  ferry journal export --log audit --out audit.jsonl`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var f journal.EventFilter
			var err error
			if since != "" {
				if f.Since, err = parseTime(since); err != nil {
					return fmt.Errorf("--since: %v", err)
				}
			}
			if until != "" {
				if f.Until, err = parseTime(until); err != nil {
					return fmt.Errorf("--until: %v", err)
				}
			}
			f.BatchID = batch
			switch {
			case format != "jsonl" && format != "csv":
				return fmt.Errorf("--format must be jsonl or csv (got %q)", format)
			case logName != "events" && logName != journal.AuditLogName:
				return fmt.Errorf("--log must be events or audit (got %q)", logName)
			case logName == journal.AuditLogName && batch != "":
				return errors.New("--batch selects events: the audit log belongs to no batch")
			}
			return a.withJournalReadOnly(configFlag, func(j *journal.Journal) int {
				return exportLog(cmd.Context(), j, f, format == "csv", logName == journal.AuditLogName, outPath, a.stdout, a.stderr)
			})
		},
	}
	a.configFlag(c, &configFlag)
	c.Flags().StringVar(&format, "format", "jsonl", "jsonl or csv")
	c.Flags().StringVar(&since, "since", "", "only entries at or after this time `T`")
	c.Flags().StringVar(&until, "until", "", "only entries at or before this time `T`")
	c.Flags().StringVar(&batch, "batch", "", "only the events of this dataset (batch_id)")
	c.Flags().StringVar(&logName, "log", "events", "which log: events or audit")
	c.Flags().StringVar(&outPath, "out", "", "write to this `FILE` instead of standard output")
	c.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"jsonl", "csv"}, cobra.ShellCompDirectiveNoFileComp))
	c.RegisterFlagCompletionFunc("log", cobra.FixedCompletions([]string{"events", "audit"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// exportLog streams the events (or, with audit, the audit records) that f
// selects as JSONL or CSV to outPath, or stdout when it is "".
func exportLog(ctx context.Context, j *journal.Journal, f journal.EventFilter, asCSV, audit bool, outPath string, stdout, stderr io.Writer) int {
	var err error
	out := stdout
	var file *os.File
	if outPath != "" {
		if file, err = os.Create(outPath); err != nil {
			fmt.Fprintf(stderr, "ferry: %v\n", err)
			return exitFailed
		}
		out = file
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	n := 0
	if asCSV {
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
	if outPath != "" {
		what := "events"
		if audit {
			what = "audit records"
		}
		fmt.Fprintf(stdout, "exported %d %s to %s\n", n, what, outPath)
	}
	return exitOK
}

func (a *app) verifyCmd() *cobra.Command {
	var configFlag, exportPath string
	var against bool
	c := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the hash chains, of the journal or of an export",
		Long: `Recompute the hash chains; exit 1 naming the first bad seq (AUDIT.md). Of
the live journal: SQLite's integrity_check, both chains, its file tables
against a replay of the events and, with --against-target, the latest
checkpoint on every target.
Of an exported file or archive (--export): offline, without a configuration.`,
		Example: `  ferry journal verify --config /etc/ferry/ferry.toml
  ferry journal verify --against-target
  ferry journal verify --export nov.jsonl`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if exportPath != "" {
				if configFlag != "" || against {
					return errors.New("--export checks a file on its own: not with --config or --against-target")
				}
				return done(verifyExport(exportPath, a.stdout, a.stderr))
			}
			// Both chains, the replay of the events against the file tables, and
			// with --against-target the remote checkpoints: see journal_audit_cmd.go.
			return a.withConfig(configFlag, func(path string) int {
				j, code := openJournalReadOnly(path, a.getenv, a.stderr)
				if j == nil {
					return code
				}
				defer j.Close()
				return verifyChains(cmd.Context(), j, path, against, a.getenv, a.stdout, a.stderr)
			})
		},
	}
	a.configFlag(c, &configFlag)
	c.Flags().StringVar(&exportPath, "export", "", "check this exported JSONL `FILE` (either log, or an archive) offline")
	c.Flags().BoolVar(&against, "against-target", false, "also compare the chains with the latest checkpoint on every target")
	return c
}

// verifyExport checks an exported JSONL file (either log) on its own.
func verifyExport(path string, stdout, stderr io.Writer) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	defer f.Close()
	if isAuditExport(f) { // the audit log's export: see journal_audit_cmd.go
		return verifyAuditExport(f, path, stdout, stderr)
	}
	v := journal.NewRangeVerifier()
	if err := readJSONL(f, v.Check); err != nil {
		fmt.Fprintf(stderr, "ferry: %s: NOT intact after %d good events: %v\n", path, v.Count(), err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: intact, %d events, chain tail %s\n", path, v.Count(), v.Last())
	return exitOK
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

func (a *app) rebuildCmd() *cobra.Command {
	var force bool
	c := a.configVerb(&cobra.Command{
		Use:   "rebuild",
		Short: "Rebuild a corrupt or lost journal from the watched folders and the targets",
		Long: `Make a new journal from the watched folders and what the targets hold: a
file whose object has the same size and sha256 is recorded as uploaded, the
others are uploaded by the next run. The old journal is kept aside; a
readable one is rebuilt only with --force. Stop the daemon first.`,
		Example: `  ferry journal rebuild --config /etc/ferry/ferry.toml`,
	}, func(ctx context.Context, path string) int { return a.rebuild(ctx, path, force) })
	c.Flags().BoolVar(&force, "force", false, "rebuild even though the journal is readable (it is kept, moved aside)")
	return c
}

// rebuild makes a new journal from the watched folders and what the
// targets hold (daemon.Rebuild).
func (a *app) rebuild(ctx context.Context, path string, force bool) int {
	cfg, code := loadConfig(path, a.getenv, a.stderr)
	if cfg == nil {
		return code
	}
	log, closeLog, code := openLog(cfg, a.stderr, nil)
	if log == nil {
		return code
	}
	defer closeLog.Close()
	res, err := daemon.Rebuild(ctx, cfg, force, versionString(), log)
	if err != nil {
		fmt.Fprintf(a.stderr, "ferry: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(a.stdout, "rebuilt %s from %d files: %d already on their target (recorded as uploaded), %d not there and %d different there (to be uploaded)\n",
		cfg.Journal.Path, res.Files, res.Uploaded, res.Missing, res.Differ)
	if res.Unstorable > 0 {
		fmt.Fprintf(a.stdout, "%d files have names that cannot be keys; the daemon records them as failed\n", res.Unstorable)
	}
	if res.Aside != "" {
		fmt.Fprintf(a.stdout, "the old journal is kept as %s\n", res.Aside)
	}
	return exitOK
}
