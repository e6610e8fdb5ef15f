package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-data/ferry/journal"
)

// dlqCmd is the dead-letter list: files failed permanently. Its verbs
// work on the journal, whether or not the daemon is running.
func (a *app) dlqCmd() *cobra.Command {
	const note = "\n\nIt works on the journal, whether or not the daemon runs; a running one takes retried files within a minute."
	var configFlag string
	var asJSON, all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the files that failed permanently, with why",
		Long:  "List the dead letters: ID, time, class, attempts, file and error." + note,
		Example: `  ferry dlq list --config /etc/ferry/ferry.toml
  ferry dlq list --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withJournalReadOnly(configFlag, func(j *journal.Journal) int {
				return dlqList(cmd.Context(), j, a.stdout, a.stderr, asJSON)
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "list as JSON")
	retry := &cobra.Command{
		Use:   "retry {ID... | --all}",
		Short: "Queue dead letters again, after fixing the cause",
		Long:  "Queue the dead letters with these IDs (see ferry dlq list), or all of them, to be uploaded again." + note,
		Example: `  ferry dlq retry 12 17 --config /etc/ferry/ferry.toml
  ferry dlq retry --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.dlqChange(configFlag, args, all, "give the IDs to retry, or --all", func(j *journal.Journal, ids []int64) (int, error) {
				return j.RetryDeadLetters(cmd.Context(), ids...)
			}, "queued %d files again\n")
		},
	}
	retry.Flags().BoolVar(&all, "all", false, "every dead letter")
	drop := &cobra.Command{
		Use:   "drop ID...",
		Short: "Give up on files (recorded; the source stays)",
		Long: `Give up on the files with these IDs: dead letters, or any file not being or
already uploaded (queued, changed, vanished, ignored); recorded in the
journal, the source files untouched.` + note,
		Example: `  ferry dlq drop 12 --config /etc/ferry/ferry.toml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.dlqChange(configFlag, args, false, "give the IDs to drop (see ferry dlq list)", func(j *journal.Journal, ids []int64) (int, error) {
				return j.DropDeadLetters(cmd.Context(), ids...)
			}, "dropped %d files (recorded in the journal; the source files are untouched)\n")
		},
	}
	for _, c := range []*cobra.Command{list, retry, drop} {
		a.configFlag(c, &configFlag)
	}
	return group("dlq", "The dead letters: files that failed permanently", list, retry, drop)
}

// dlqChange changes the files with the IDs args names (all: every dead
// letter, with no IDs; neither is a bad command line, as none says) and
// says how many it changed (done).
func (a *app) dlqChange(flag string, args []string, all bool, none string, change func(*journal.Journal, []int64) (int, error), done string) error {
	var ids []int64
	for _, p := range args {
		id, err := strconv.ParseInt(p, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("%q is not a dead letter's ID (see ferry dlq list)", p)
		}
		ids = append(ids, id)
	}
	if (len(ids) == 0) == !all {
		return errors.New(none)
	}
	return a.withJournal(flag, func(j *journal.Journal) int {
		n, err := change(j, ids)
		if err != nil {
			return dlqError(a.stderr, err)
		}
		fmt.Fprintf(a.stdout, done, n)
		return exitOK
	})
}

func dlqError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "ferry: %v\n", err)
	if errors.Is(err, journal.ErrNotDeadLetter) || errors.Is(err, journal.ErrNoSuchFile) || errors.Is(err, journal.ErrTransition) {
		return exitUsage
	}
	return exitFailed
}

// dlqList streams the dead letters: memory does not grow with their
// number (the table's columns are aligned per page of dlqPage rows). The
// datasets held for their metadata follow (one entry each, with their
// findings: a handful at most).
func dlqList(ctx context.Context, j *journal.Journal, stdout, stderr io.Writer, asJSON bool) int {
	held, err := j.HeldMetadata(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	bw := bufio.NewWriterSize(stdout, 64<<10)
	n := 0
	if asJSON {
		// As encoding/json indents a list, one element at a time: the dead
		// letters as they always were, then each held dataset ("state":
		// "held").
		elem := func(v any) error {
			b, err := json.MarshalIndent(v, "  ", "  ")
			if err != nil {
				return err
			}
			if n == 0 {
				bw.WriteString("[\n  ")
			} else {
				bw.WriteString(",\n  ")
			}
			n++
			_, err = bw.Write(b)
			return err
		}
		err = j.EachDeadLetter(ctx, func(d journal.DeadLetter) error { return elem(d) })
		for _, m := range held {
			if err != nil {
				break
			}
			err = elem(heldJSON{State: string(journal.Held), Watch: m.Dataset.Watch, Dataset: m.Dataset.RelPath, Files: m.Held,
				Status: m.Status, SchemaVersion: m.SchemaVersion, Findings: m.Findings})
		}
		if n == 0 {
			bw.WriteString("[]\n")
		} else {
			bw.WriteString("\n]\n")
		}
	} else {
		tw := tabwriter.NewWriter(bw, 2, 8, 2, ' ', 0)
		err = j.EachDeadLetter(ctx, func(d journal.DeadLetter) error {
			if n%dlqPage == 0 {
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintln(tw, "ID\tFAILED AT\tCLASS\tATTEMPTS\tFILE\tERROR")
			}
			n++
			_, err := fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.FailedAt.Format(time.RFC3339), d.ErrorClass, d.Attempts,
				filepath.Join(d.Watch, filepath.FromSlash(d.RelPath)), strings.ReplaceAll(d.Error, "\n", " "))
			return err
		})
		tw.Flush()
		if err == nil && n == 0 {
			fmt.Fprintln(bw, "no dead letters")
		}
		if err == nil && len(held) > 0 {
			heldList(held, bw)
		}
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// dlqPage is how many dead letters `dlq list` aligns in one table (the
// header is repeated before each).
const dlqPage = 1000
