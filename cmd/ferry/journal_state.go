package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-data/ferry/journal"
)

// verifyReplay is the second half of `journal verify --config`: the files
// and chunks tables must agree with a replay of the events. It prints each
// difference (naming the file, both values and the file's last event) and
// returns exitFailed if there is any.
func verifyReplay(ctx context.Context, j *journal.Journal, stderr io.Writer) (files int, code int) {
	// The differences stream in: keep the first few to show, count the rest.
	const most = 50
	var shown []journal.Mismatch
	diffs := 0
	files, err := j.VerifyStateFunc(ctx, func(m journal.Mismatch) {
		if diffs < most {
			shown = append(shown, m)
		}
		diffs++
	})
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %s: the events cannot be replayed: %v\n", j.Path(), err)
		return 0, exitFailed
	}
	if diffs > 0 {
		for _, d := range shown {
			fmt.Fprintf(stderr, "ferry: %s\n", d)
		}
		if diffs > most {
			fmt.Fprintf(stderr, "... and %d more\n", diffs-most)
		}
		fmt.Fprintf(stderr, "ferry: %s: the file-state tables do NOT agree with the events (%d differences)\n", j.Path(), diffs)
		return 0, exitFailed
	}
	return files, exitOK
}

// exportEvents streams the events of a JSONL export, for a replay.
func exportEvents(path string) func(fn func(journal.Event) error) error {
	return func(fn func(journal.Event) error) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := readJSONL(f, fn); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	}
}

// stateLine is one file of `journal state --format jsonl`.
type stateLine struct {
	Kind         string `json:"kind"` // "file"
	Watch        string `json:"watch"`
	RelPath      string `json:"rel_path"`
	FileID       int64  `json:"file_id"`
	BatchID      string `json:"batch_id"`
	State        string `json:"state"`
	Size         int64  `json:"size"`
	SHA256       string `json:"sha256"`
	LastEventSeq int64  `json:"last_event_seq"`
	LastEventAt  string `json:"last_event_time"`
}

func (a *app) stateCmd() *cobra.Command {
	var configFlag, exportPath, at, batch, format string
	c := &cobra.Command{
		Use:   "state --at T",
		Short: "Every file as it stood at a time, from a replay of the events",
		Long: `Replay the event chain up to T and print every file as it stood then: state,
size, sha256, last event. Of the journal, or of an export or archive.` + timeHelp,
		Example: `  ferry journal state --config /etc/ferry/ferry.toml --at 2026-11-01T12:00:00Z
  ferry journal state --export journal-2025.jsonl --at 2025-06-30 --format jsonl`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := parseTime(at)
			if err != nil {
				return fmt.Errorf("--at: %v", err)
			}
			if format != "text" && format != "jsonl" {
				return fmt.Errorf("--format must be text or jsonl (got %q)", format)
			}
			show := func(what string, r *journal.Replay, err error) int {
				if err != nil {
					fmt.Fprintf(a.stderr, "ferry journal state: %s: %v\n", what, err)
					return exitFailed
				}
				return writeState(a.stdout, r, t, batch, format == "jsonl")
			}
			if exportPath != "" {
				if configFlag != "" {
					return errors.New("give --config or --export, not both")
				}
				r, err := journal.ReplayEvents(exportEvents(exportPath), t)
				return done(show(exportPath, r, err))
			}
			return a.withJournalReadOnly(configFlag, func(j *journal.Journal) int {
				r, err := j.Replay(cmd.Context(), t)
				return show(j.Path(), r, err)
			})
		},
	}
	a.configFlag(c, &configFlag)
	c.Flags().StringVar(&exportPath, "export", "", "replay an exported JSONL `FILE` (or an archive) instead of the journal")
	c.Flags().StringVar(&at, "at", "", "the time `T` to show the files at (RFC 3339 or a date)")
	c.Flags().StringVar(&batch, "batch", "", "only the files of this dataset (batch_id)")
	c.Flags().StringVar(&format, "format", "text", "text or jsonl")
	c.MarkFlagRequired("at")
	c.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"text", "jsonl"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// datasetStateLine is one dataset of `journal state --format jsonl`.
type datasetStateLine struct {
	Kind         string `json:"kind"` // "dataset"
	Watch        string `json:"watch"`
	Dataset      string `json:"dataset"`
	State        string `json:"state"`
	Signal       string `json:"signal"`
	Outcome      string `json:"outcome"`
	LastEventSeq int64  `json:"last_event_seq"`
	LastEventAt  string `json:"last_event_time"`
}

// writeState prints the files of r (of batch, when set) as of t, then its
// datasets, as tables or as JSONL.
func writeState(stdout io.Writer, r *journal.Replay, t time.Time, batch string, asJSONL bool) int {
	var files []*journal.FileState
	for _, f := range r.Files() {
		if batch == "" || f.BatchID == batch {
			files = append(files, f)
		}
	}
	var datasets []*journal.DatasetReplay
	for _, d := range r.Datasets() {
		if batch == "" || d.RelPath == batch {
			datasets = append(datasets, d)
		}
	}
	bw := bufio.NewWriter(stdout)
	defer bw.Flush()
	if asJSONL {
		enc := json.NewEncoder(bw)
		for _, f := range files {
			enc.Encode(stateLine{Kind: "file", Watch: f.Watch, RelPath: f.RelPath, FileID: f.FileID, BatchID: f.BatchID, State: string(f.State),
				Size: f.Size, SHA256: f.SHA256, LastEventSeq: f.LastSeq, LastEventAt: f.LastTime.UTC().Format(time.RFC3339Nano)})
		}
		for _, d := range datasets {
			enc.Encode(datasetStateLine{Kind: "dataset", Watch: d.Watch, Dataset: d.RelPath, State: string(d.State), Signal: d.Signal,
				Outcome: d.Outcome, LastEventSeq: d.LastSeq, LastEventAt: d.LastTime.UTC().Format(time.RFC3339Nano)})
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tBATCH\tSTATE\tSIZE\tSHA256\tLAST_SEQ\tLAST_EVENT")
	for _, f := range files {
		sha := f.SHA256
		if sha == "" {
			sha = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\n", f.Path(), f.BatchID, f.State, f.Size, sha, f.LastSeq, f.LastTime.UTC().Format(time.RFC3339))
	}
	tw.Flush()
	if len(datasets) > 0 {
		fmt.Fprintln(bw)
		tw = tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DATASET\tSTATE\tSIGNAL\tLAST_SEQ\tLAST_EVENT")
		for _, d := range datasets {
			sig := d.Signal
			if sig == "" {
				sig = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", strings.TrimSuffix(d.Watch, "/")+"/"+d.RelPath, d.State, sig, d.LastSeq, d.LastTime.UTC().Format(time.RFC3339))
		}
		tw.Flush()
	}
	fmt.Fprintf(bw, "%d files as of %s (%d datasets; replayed %d events)\n", len(files), t.UTC().Format(time.RFC3339Nano), len(datasets), r.Applied())
	return exitOK
}

func (a *app) archiveCmd() *cobra.Command {
	var configFlag, before, outPath string
	c := &cobra.Command{
		Use:   "archive --before T [--out FILE]",
		Short: "Move the events older than a time to a JSONL archive",
		Long: `Move the events older than T to FILE (JSONL: it verifies on its own); the
live journal records the archive and every file's state at that point.
Without --out, FILE is ferry-journal-before-T.jsonl in [journal] archive_dir,
where the daemon archives by itself with [journal] archive_after.` + timeHelp,
		Example: `  ferry journal archive --config /etc/ferry/ferry.toml --before 2026-01-01 --out journal-2025.jsonl`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := parseTime(before)
			if err != nil {
				return fmt.Errorf("--before: %v", err)
			}
			return a.withConfig(configFlag, func(path string) int {
				out := outPath
				if out == "" {
					cfg, code := loadConfig(path, a.getenv, a.stderr)
					if cfg == nil {
						return code
					}
					if err := os.MkdirAll(cfg.Journal.ArchiveDir, 0o750); err != nil {
						fmt.Fprintf(a.stderr, "ferry journal archive: %v\n", err)
						return exitFailed
					}
					out = filepath.Join(cfg.Journal.ArchiveDir, journal.ArchiveName(t))
				}
				j, code := openJournal(path, a.getenv, a.stderr)
				if j == nil {
					return code
				}
				defer j.Close()
				return archive(cmd.Context(), j, t, out, a.stdout, a.stderr)
			})
		},
	}
	a.configFlag(c, &configFlag)
	c.Flags().StringVar(&before, "before", "", "archive the events older than this time `T` (RFC 3339 or a date)")
	c.Flags().StringVar(&outPath, "out", "", "the archive `FILE` to write (must not exist; default: in [journal] archive_dir)")
	c.MarkFlagRequired("before")
	return c
}

// archive moves the events of j older than t to a new file at outPath
// (journal.ArchiveFile; see journal/archive.go).
func archive(ctx context.Context, j *journal.Journal, t time.Time, outPath string, stdout, stderr io.Writer) int {
	a, err := j.ArchiveFile(ctx, t, outPath)
	if errors.Is(err, journal.ErrNothingToArchive) {
		fmt.Fprintf(stdout, "no event before %s: nothing archived\n", t.UTC().Format(time.RFC3339Nano))
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "ferry journal archive: %v (the journal is unchanged)\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "archived %d events (seq %d..%d, before %s) to %s (sha256 %s); the live chain records it at seq %d with %d file states\n",
		a.Count, a.FirstSeq, a.LastSeq, t.UTC().Format(time.RFC3339Nano), outPath, a.SHA256, a.Seq, a.Files)
	return exitOK
}
