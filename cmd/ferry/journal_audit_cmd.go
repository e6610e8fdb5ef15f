package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/journal"
)

// isAuditExport tells whether an exported JSONL file holds the audit log
// (its records carry "log": "audit"; events have no such field), from its
// first non-empty line, and rewinds the file.
func isAuditExport(f *os.File) bool {
	defer f.Seek(0, io.SeekStart)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var x struct {
			Log string `json:"log"`
		}
		return json.Unmarshal(line, &x) == nil && x.Log == journal.AuditLogName
	}
	return false
}

// verifyAuditExport checks an exported audit log (JSONL) on its own, from
// its first record's prev_hash: exit 0 with a summary when intact, 1
// naming the first bad seq.
func verifyAuditExport(r io.Reader, name string, stdout, stderr io.Writer) int {
	v := journal.NewAuditRangeVerifier()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "ferry: %s (audit log): NOT intact after %d good records: %v\n", name, v.Count(), err)
		return exitFailed
	}
	if err := readJSONL(r, v.Check); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "%s (audit log): intact, %d audit records, chain tail %s\n", name, v.Count(), v.Last())
	return exitOK
}

// verifyChains recomputes the event chain and the audit chain of an open
// journal and, with against, compares both with the latest checkpoint
// this host uploaded to every target. Exit 0 with a one-line summary
// when all holds, 1 naming the first bad seq (and chain, or target).
func verifyChains(ctx context.Context, j *journal.Journal, configPath string, against bool, getenv env, stdout, stderr io.Writer) int {
	// SQLite's full check first: Open checks only a journal not closed
	// cleanly (journal/clean.go), this is the check of every page.
	if err := j.IntegrityCheck(ctx); err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	// The live chain may start after an archive (journal archive).
	ev, err := j.LiveVerifier(ctx)
	if err == nil {
		err = j.Events(ctx, journal.EventFilter{}, ev.Check)
	}
	if err != nil {
		var good int64
		if ev != nil {
			good = ev.Count()
		}
		fmt.Fprintf(stderr, "ferry: %s: event chain NOT intact after %d good events: %v\n", j.Path(), good, err)
		return exitFailed
	}
	av, err := j.VerifyAudit(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %s: audit chain NOT intact after %d good records: %v\n", j.Path(), av.Count(), err)
		return exitFailed
	}
	// The chains hold; the replay and the checkpoints are checked both,
	// so that one report names everything that is wrong.
	files, code := verifyReplay(ctx, j, stderr)
	summary := fmt.Sprintf("%s: intact, %d events (chain tail %s), %d audit records (chain tail %s); the file-state tables agree with a replay of the events (%d files)",
		j.Path(), ev.Count(), ev.Last(), av.Count(), av.Last(), files)
	if against {
		n, acode := verifyAgainstTargets(ctx, j, configPath, getenv, stderr)
		if acode != exitOK {
			return acode
		}
		summary += fmt.Sprintf(", and both hold the latest checkpoint on every target (%d)", n)
	}
	if code != exitOK {
		return code
	}
	fmt.Fprintln(stdout, summary)
	return exitOK
}

// verifyAgainstTargets compares the journal with the latest checkpoint
// this host uploaded to each target (daemon.VerifyAgainstTargets) and
// returns how many it compared and the exit code.
func verifyAgainstTargets(ctx context.Context, j *journal.Journal, configPath string, getenv env, stderr io.Writer) (int, int) {
	cfg, code := loadConfig(configPath, getenv, stderr)
	if cfg == nil {
		return 0, code
	}
	n, err := daemon.VerifyAgainstTargets(ctx, j, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return 0, exitFailed
	}
	return n, exitOK
}
