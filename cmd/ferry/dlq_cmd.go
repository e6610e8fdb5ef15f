package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferry-data/ferry/journal"
)

const dlqUsage = `usage:
  ferry dlq list [--json] --config FILE     the files that failed permanently, with why
  ferry dlq retry ID... | --all --config FILE
                                            queue them again (after fixing the cause)
  ferry dlq drop ID... --config FILE        give up on them (recorded; the source stays):
                                            dead letters, or any file not being or already
                                            uploaded (queued, changed, vanished, ignored)
These work on the journal, whether or not the daemon is running; a running
daemon picks retried files up within a minute.`

// cmdDLQ handles the dead-letter list: files failed permanently.
func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, dlqUsage)
		return exitUsage
	}
	verb := args[0]
	fs := flag.NewFlagSet("dlq "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (TOML)")
	asJSON := fs.Bool("json", false, "list as JSON")
	all := fs.Bool("all", false, "every dead letter")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return exitUsage
	}
	if *configPath == "" {
		fmt.Fprintf(stderr, "ferry dlq %s: --config FILE is required\n", verb)
		return exitUsage
	}
	var ids []int64
	for _, p := range pos {
		id, err := strconv.ParseInt(p, 10, 64)
		if err != nil || id <= 0 {
			fmt.Fprintf(stderr, "ferry dlq %s: %q is not a dead letter's ID (see ferry dlq list)\n", verb, p)
			return exitUsage
		}
		ids = append(ids, id)
	}
	switch verb {
	case "list":
		if len(ids) > 0 || *all {
			fmt.Fprintln(stderr, dlqUsage)
			return exitUsage
		}
	case "retry":
		if (len(ids) == 0) == !*all {
			fmt.Fprintln(stderr, "ferry dlq retry: give the IDs to retry, or --all")
			return exitUsage
		}
	case "drop":
		if len(ids) == 0 || *all {
			fmt.Fprintln(stderr, "ferry dlq drop: give the IDs to drop (see ferry dlq list)")
			return exitUsage
		}
	default:
		fmt.Fprintf(stderr, "ferry dlq: unknown command %q\n%s\n", verb, dlqUsage)
		return exitUsage
	}
	j, code := openJournal(*configPath, getenv, stderr)
	if j == nil {
		return code
	}
	defer j.Close()
	switch verb {
	case "list":
		return dlqList(ctx, j, stdout, stderr, *asJSON)
	case "retry":
		n, err := j.RetryDeadLetters(ctx, ids...)
		if err != nil {
			return dlqError(stderr, err)
		}
		fmt.Fprintf(stdout, "queued %d files again\n", n)
	case "drop":
		n, err := j.DropDeadLetters(ctx, ids...)
		if err != nil {
			return dlqError(stderr, err)
		}
		fmt.Fprintf(stdout, "dropped %d files (recorded in the journal; the source files are untouched)\n", n)
	}
	return exitOK
}

func dlqError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "ferry: %v\n", err)
	if errors.Is(err, journal.ErrNotDeadLetter) || errors.Is(err, journal.ErrNoSuchFile) || errors.Is(err, journal.ErrTransition) {
		return exitUsage
	}
	return exitFailed
}

func dlqList(ctx context.Context, j *journal.Journal, stdout, stderr io.Writer, asJSON bool) int {
	dl, err := j.DeadLetters(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	if asJSON {
		if dl == nil {
			dl = []journal.DeadLetter{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(dl); err != nil {
			return exitFailed
		}
		return exitOK
	}
	if len(dl) == 0 {
		fmt.Fprintln(stdout, "no dead letters")
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFAILED AT\tCLASS\tATTEMPTS\tFILE\tERROR")
	for _, d := range dl {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.FailedAt.Format(time.RFC3339), d.ErrorClass, d.Attempts,
			filepath.Join(d.Watch, filepath.FromSlash(d.RelPath)), strings.ReplaceAll(d.Error, "\n", " "))
	}
	tw.Flush()
	return exitOK
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments ("retry 12 --config f"), which flag.Parse alone
// does not allow.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
