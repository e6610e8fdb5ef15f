package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-data/ferry/dataset"
	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/datasets"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/metadata"
)

// datasetsCmd lists datasets; datasetCmd shows one. Both read the journal
// (read-only, beside a running daemon).
func (a *app) datasetsCmd() *cobra.Command {
	var configFlag, state string
	var asJSON bool
	c := &cobra.Command{
		Use:   "datasets",
		Short: "List the datasets (runs): files landed of total, state, completion",
		Long: `List the datasets of the configuration's watches: a folder that a watch's
dataset pattern matches (a run folder). For each: its id (the folder,
relative to the watch root), files landed of total, bytes, state (open,
complete, closing, closed, failed_run), what completed it, where its
manifest lands, and its age. It reads the journal, whether or not the
daemon runs.`,
		Example: `  ferry datasets --config /etc/ferry/ferry.toml
  ferry datasets --state open
  ferry datasets --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st := journal.DatasetState(state)
			if state != "" && st.Info().State != st {
				return fmt.Errorf("--state %q: use one of %s", state, datasetStateNames())
			}
			return a.withReadJournal(configFlag, func(cfg *config.Config, j *journal.Journal) int {
				return datasetsList(cmd.Context(), j, a.stdout, a.stderr, st, asJSON, time.Now())
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "list as JSON")
	c.Flags().StringVar(&state, "state", "", "only datasets in this state ("+datasetStateNames()+")")
	a.configFlag(c, &configFlag)
	return c
}

func (a *app) datasetCmd() *cobra.Command {
	var configFlag string
	var asJSON bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one dataset: its files, states, notifications and source deletions",
		Long: `Show the dataset ID (its folder relative to the watch root, as ferry
datasets lists it): its state and completion, every file with its state and
SHA-256, the notifications sent for it, and what happened to its source
files. It reads the journal, whether or not the daemon runs.`,
		Example: `  ferry dataset show 261203_LH00001_0042_A22XYZLT3 --config /etc/ferry/ferry.toml
  ferry dataset show projA/run7 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withReadJournal(configFlag, func(cfg *config.Config, j *journal.Journal) int {
				return datasetShow(cmd.Context(), cfg, j, args[0], a.stdout, a.stderr, asJSON, time.Now())
			})
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "show as JSON")
	a.configFlag(show, &configFlag)
	return group("dataset", "One dataset (run)", show)
}

func datasetStateNames() string {
	var out []string
	for _, s := range journal.DatasetStates() {
		out = append(out, string(s))
	}
	return strings.Join(out, ", ")
}

// withReadJournal opens the configuration's journal read-only (a missing
// journal is refused, never created) and runs fn.
func (a *app) withReadJournal(flag string, fn func(*config.Config, *journal.Journal) int) error {
	return a.withConfig(flag, func(path string) int {
		cfg, code := loadConfig(path, a.getenv, a.stderr)
		if cfg == nil {
			return code
		}
		j, err := journal.OpenReadOnly(cfg.Journal.Path)
		if err != nil {
			if errors.Is(err, journal.ErrNoJournal) {
				fmt.Fprintf(a.stderr, "ferry: no journal at %s (has ferry run with this configuration?)\n", cfg.Journal.Path)
			} else {
				fmt.Fprintf(a.stderr, "ferry: %v\n", err)
			}
			return exitFailed
		}
		defer j.Close()
		return fn(cfg, j)
	})
}

// datasetJSON is a dataset as the commands print it.
type datasetJSON struct {
	ID          string     `json:"id"`
	Watch       string     `json:"watch"`
	Target      string     `json:"target"`
	State       string     `json:"state"`
	Files       int        `json:"files"`
	Landed      int        `json:"files_landed"`
	Waiting     int        `json:"files_waiting"`
	DeadLetters int        `json:"files_failed"`
	Bytes       int64      `json:"bytes"`
	Signal      string     `json:"signal"`
	Outcome     string     `json:"outcome"`
	Reason      string     `json:"reason"`
	Manifest    string     `json:"manifest_key"`
	Crate       string     `json:"crate_key"`
	ManifestSHA string     `json:"manifest_sha256"`
	OpenedAt    time.Time  `json:"opened_at"`
	CompletedAt *time.Time `json:"completed_at"`
	ClosedAt    *time.Time `json:"closed_at"`
	// Metadata, for a watch with a metadata profile (metadataOf).
	ValidationStatus string          `json:"validation_status,omitempty"`
	SchemaVersion    string          `json:"schema_version,omitempty"`
	Held             int             `json:"files_held,omitempty"`
	Findings         json.RawMessage `json:"metadata_findings,omitempty"`
	AcceptedReason   string          `json:"metadata_accepted_reason,omitempty"`
}

// withMetadata adds a dataset's metadata row to its JSON form.
func (d *datasetJSON) withMetadata(m journal.DatasetMetadata) {
	d.ValidationStatus, d.SchemaVersion, d.Held, d.AcceptedReason = m.Status, m.SchemaVersion, m.Held, m.AcceptedReason
	if d.ValidationStatus == "" {
		d.ValidationStatus = "pending"
	}
	if len(m.Findings) > 0 && string(m.Findings) != "[]" {
		d.Findings = m.Findings
	}
}

// metadataOf is every dataset's metadata, by watch and dataset.
func metadataOf(ctx context.Context, j *journal.Journal) (map[[2]string]journal.DatasetMetadata, error) {
	ms, err := j.AllMetadata(ctx)
	out := make(map[[2]string]journal.DatasetMetadata, len(ms))
	for _, m := range ms {
		out[[2]string{m.Dataset.Watch, m.Dataset.RelPath}] = m
	}
	return out, err
}

func toJSON(d journal.Dataset) datasetJSON {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	out := datasetJSON{ID: d.RelPath, Watch: d.Watch, Target: d.Target, State: string(d.State), Files: d.Total, Landed: d.Landed,
		Waiting: d.Waiting, DeadLetters: d.DeadLetters, Bytes: d.TotalBytes, Signal: d.Signal, Outcome: d.Outcome, Reason: d.Reason,
		ManifestSHA: d.ManifestSHA256, OpenedAt: d.OpenedAt, CompletedAt: opt(d.CompletedAt), ClosedAt: opt(d.ClosedAt)}
	if d.State.Info().Closed {
		out.Manifest, out.Crate = d.KeyPrefix+dataset.ManifestName, d.KeyPrefix+dataset.CrateName
	}
	return out
}

func datasetsList(ctx context.Context, j *journal.Journal, stdout, stderr io.Writer, st journal.DatasetState, asJSON bool, now time.Time) int {
	ds, err := j.Datasets(ctx, journal.DatasetFilter{State: st})
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	meta, err := metadataOf(ctx, j)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	if asJSON {
		out := make([]datasetJSON, 0, len(ds))
		for _, d := range ds {
			row := toJSON(d)
			if m, ok := meta[[2]string{d.Watch, d.RelPath}]; ok {
				row.withMetadata(m)
			}
			out = append(out, row)
		}
		return writeJSON(stdout, out)
	}
	if len(ds) == 0 {
		fmt.Fprintln(stdout, "no datasets")
		return exitOK
	}
	watches := map[string]bool{}
	for _, d := range ds {
		watches[d.Watch] = true
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	head := "DATASET\tSTATE\tFILES\tBYTES\tSIGNAL\tMANIFEST\tAGE"
	if len(meta) > 0 {
		head += "\tMETADATA"
	}
	if len(watches) > 1 {
		head = "WATCH\t" + head
	}
	fmt.Fprintln(tw, head)
	for _, d := range ds {
		row := toJSON(d)
		files := fmt.Sprintf("%d/%d", row.Landed, row.Files)
		if row.DeadLetters > 0 {
			files += fmt.Sprintf(" (%d failed)", row.DeadLetters)
		}
		manifest := row.Manifest
		if manifest == "" {
			manifest = "-"
		}
		signal := row.Signal
		if signal == "" {
			signal = "-"
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", row.ID, row.State, files, iec(row.Bytes), signal, manifest, age(now.Sub(d.OpenedAt)))
		if len(meta) > 0 {
			status := "-"
			if m, ok := meta[[2]string{d.Watch, d.RelPath}]; ok {
				row.withMetadata(m)
				status = row.ValidationStatus
				if row.Held > 0 {
					status += fmt.Sprintf(" (%d held)", row.Held)
				} else if row.AcceptedReason != "" {
					status += " (accepted)"
				}
			}
			line += "\t" + status
		}
		if len(watches) > 1 {
			line = d.Watch + "\t" + line
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	return exitOK
}

func datasetShow(ctx context.Context, cfg *config.Config, j *journal.Journal, id string, stdout, stderr io.Writer, asJSON bool, now time.Time) int {
	ds, err := j.Datasets(ctx, journal.DatasetFilter{RelPath: strings.Trim(filepath.ToSlash(id), "/")})
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	if len(ds) == 0 {
		fmt.Fprintf(stderr, "ferry: no dataset %q in the journal (ferry datasets lists them)\n", id)
		return exitUsage
	}
	type fileJSON struct {
		Path   string `json:"path"`
		State  string `json:"state"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
		Key    string `json:"key"`
		Error  string `json:"error,omitempty"`
	}
	type noteJSON struct {
		Event     string     `json:"event"`
		EventID   string     `json:"event_id"`
		Endpoint  string     `json:"endpoint"`
		Attempts  int        `json:"attempts"`
		Delivered *time.Time `json:"delivered_at"`
		LastError string     `json:"last_error,omitempty"`
	}
	type deletionJSON struct {
		Path     string `json:"path"`
		State    string `json:"state"`
		Attempts int    `json:"attempts"`
		Reason   string `json:"reason,omitempty"`
		Evidence string `json:"evidence,omitempty"`
	}
	type showJSON struct {
		datasetJSON
		AfterUpload   string         `json:"after_upload"`
		Deletions     []deletionJSON `json:"source_deletions"`
		FilesList     []fileJSON     `json:"file_list"`
		Notifications []noteJSON     `json:"notifications"`
	}
	meta, err := metadataOf(ctx, j)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	var all []showJSON
	for _, d := range ds {
		s := showJSON{datasetJSON: toJSON(d), AfterUpload: config.AfterUploadKeep, Deletions: []deletionJSON{}, FilesList: []fileJSON{}, Notifications: []noteJSON{}}
		if m, ok := meta[[2]string{d.Watch, d.RelPath}]; ok {
			s.withMetadata(m)
		}
		if i := slices.IndexFunc(cfg.Watch, func(w config.WatchConfig) bool { return filepath.Clean(w.Path) == d.Watch }); i >= 0 {
			s.AfterUpload = cfg.Watch[i].AfterUpload
		}
		rows, err := j.DatasetRows(ctx, d.Watch, d.RelPath)
		if err != nil {
			fmt.Fprintf(stderr, "ferry: %v\n", err)
			return exitFailed
		}
		for _, r := range rows {
			inside := strings.TrimPrefix(r.RelPath, d.RelPath+"/")
			sha := r.UploadedSHA256
			if sha == "" {
				sha = r.SHA256
			}
			s.FilesList = append(s.FilesList, fileJSON{Path: inside, State: string(r.State), Size: r.Size, SHA256: sha, Key: r.Key, Error: r.Error})
		}
		dels, err := j.DatasetDeletions(ctx, d.ID)
		if err != nil {
			fmt.Fprintf(stderr, "ferry: %v\n", err)
			return exitFailed
		}
		for _, x := range dels {
			s.Deletions = append(s.Deletions, deletionJSON{Path: strings.TrimPrefix(x.RelPath, d.RelPath+"/"), State: string(x.State),
				Attempts: x.Attempts, Reason: x.LastError, Evidence: x.Evidence})
		}
		notes, err := j.DatasetNotifications(ctx, d.ID)
		if err != nil {
			fmt.Fprintf(stderr, "ferry: %v\n", err)
			return exitFailed
		}
		for _, n := range notes {
			nj := noteJSON{Event: n.Type, EventID: n.EventID, Endpoint: n.Endpoint, Attempts: n.Attempts, LastError: n.LastError}
			if !n.Delivered.IsZero() {
				t := n.Delivered
				nj.Delivered = &t
			}
			s.Notifications = append(s.Notifications, nj)
		}
		all = append(all, s)
	}
	if asJSON {
		if len(all) == 1 {
			return writeJSON(stdout, all[0])
		}
		return writeJSON(stdout, all)
	}
	for i, s := range all {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "dataset   %s\nwatch     %s\ntarget    %s\nstate     %s\n", s.ID, s.Watch, s.Target, s.State)
		fmt.Fprintf(stdout, "files     %d landed of %d (%s)", s.Landed, s.Files, iec(s.Bytes))
		if s.DeadLetters > 0 {
			fmt.Fprintf(stdout, ", %d failed (ferry dlq list)", s.DeadLetters)
		}
		if s.Waiting > 0 {
			fmt.Fprintf(stdout, ", %d waiting", s.Waiting)
		}
		fmt.Fprintln(stdout)
		fmt.Fprintf(stdout, "opened    %s (%s ago)\n", s.OpenedAt.Format(time.RFC3339), age(now.Sub(s.OpenedAt)))
		if s.CompletedAt != nil {
			fmt.Fprintf(stdout, "complete  %s by %s; run %s", s.CompletedAt.Format(time.RFC3339), s.Signal, s.Outcome)
			if s.Reason != "" {
				fmt.Fprintf(stdout, " (%s)", s.Reason)
			}
			fmt.Fprintln(stdout)
		} else {
			fmt.Fprintln(stdout, "complete  not yet: its completion condition has not held")
		}
		if s.ClosedAt != nil {
			fmt.Fprintf(stdout, "closed    %s\nmanifest  %s (sha256 %s)\ncrate     %s\n", s.ClosedAt.Format(time.RFC3339), s.Manifest, s.ManifestSHA, s.Crate)
		}
		if s.ValidationStatus != "" {
			fmt.Fprintf(stdout, "metadata  %s, schema_version %s", s.ValidationStatus, orDash(s.SchemaVersion))
			if s.Held > 0 {
				fmt.Fprintf(stdout, "; %d files held (ferry metadata accept %s --reason TEXT releases them)", s.Held, s.ID)
			}
			if s.AcceptedReason != "" {
				fmt.Fprintf(stdout, "; accepted: %s", s.AcceptedReason)
			}
			fmt.Fprintln(stdout)
			var fs []metadata.Finding
			_ = json.Unmarshal(s.Findings, &fs)
			for _, f := range fs {
				fmt.Fprintf(stdout, "  %s\n", f)
			}
		}
		fmt.Fprintf(stdout, "sources   after_upload = %q: ", s.AfterUpload)
		counts := map[string]int{}
		for _, x := range s.Deletions {
			counts[x.State]++
		}
		if len(s.Deletions) == 0 {
			fmt.Fprintln(stdout, "no source file deleted")
		} else {
			fmt.Fprintf(stdout, "%d deleted, %d waiting for their checks, %d kept\n", counts["deleted"], counts["pending"], counts["refused"])
			for _, x := range s.Deletions {
				if x.State != "deleted" {
					fmt.Fprintf(stdout, "  %s %s: %s\n", x.Path, x.State, x.Reason)
				}
			}
		}
		fmt.Fprintf(stdout, "notifications (%d)\n", len(s.Notifications))
		for _, n := range s.Notifications {
			st := "pending"
			if n.Delivered != nil {
				st = "delivered " + n.Delivered.Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "  %s to %s: %s after %d attempt(s)", n.Event, n.Endpoint, st, n.Attempts)
			if n.LastError != "" {
				fmt.Fprintf(stdout, "; last error: %s", n.LastError)
			}
			fmt.Fprintln(stdout)
		}
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "FILE\tSTATE\tSIZE\tSHA256")
		for _, f := range s.FilesList {
			sha := f.SHA256
			if sha == "" {
				sha = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", f.Path, f.State, f.Size, sha)
		}
		tw.Flush()
	}
	return exitOK
}

func writeJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return exitFailed
	}
	return exitOK
}

// age is a duration as a person reads it: 45s, 12m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// reclaimCmd shows what the daemon would delete to free the instrument's
// disk (after_upload = "delete" or "reclaim"); the daemon does the
// deleting, each file after its checks.
func (a *app) reclaimCmd() *cobra.Command {
	var configFlag string
	var dryRun bool
	c := &cobra.Command{
		Use:   "reclaim --dry-run",
		Short: "Show which source files ferry would delete to free the disk, and why",
		Long: `For every watch with after_upload = "delete" or "reclaim", show the volume's
free space (and reclaim's threshold) and the closed datasets whose source
files ferry deletes, in the order it would (oldest first), with their
bytes; and the deletions waiting for their checks or refused. Nothing is
deleted: the running daemon deletes, each file only after its checks hold
at that moment (README, "Runs and datasets").`,
		Example: `  ferry reclaim --dry-run --config /etc/ferry/ferry.toml`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !dryRun {
				return errors.New("ferry reclaim only shows (--dry-run): the running daemon deletes, each file after its checks")
			}
			return a.withReadJournal(configFlag, func(cfg *config.Config, j *journal.Journal) int {
				return reclaimDryRun(cmd.Context(), cfg, j, a.stdout, a.stderr)
			})
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be deleted and why (required)")
	a.configFlag(c, &configFlag)
	return c
}

func reclaimDryRun(ctx context.Context, cfg *config.Config, j *journal.Journal, stdout, stderr io.Writer) int {
	deleting := false
	for _, wc := range cfg.Watch {
		if wc.Depth() == 0 || !wc.Deletes() {
			continue
		}
		deleting = true
		root := filepath.Clean(wc.Path)
		free, total, err := datasets.DiskFree(root)
		var pct float64
		if err == nil && total > 0 {
			pct = 100 * float64(free) / float64(total)
		}
		fmt.Fprintf(stdout, "watch %s: after_upload = %q", root, wc.AfterUpload)
		if wc.AfterUpload == config.AfterUploadReclaim {
			fmt.Fprintf(stdout, ", below %s free", wc.ReclaimFreeBelow)
		}
		if err != nil {
			fmt.Fprintf(stdout, "; free space unknown: %v\n", err)
		} else {
			fmt.Fprintf(stdout, "; the volume has %.1f%% free (%s of %s)\n", pct, iec(int64(free)), iec(int64(total)))
		}
		ds, err := j.Datasets(ctx, journal.DatasetFilter{Watch: root})
		if err != nil {
			fmt.Fprintf(stderr, "ferry: %v\n", err)
			return exitFailed
		}
		var pending, refused, listed int
		freed := uint64(0)
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  DATASET\tCLOSED\tFILES\tBYTES\tWHY")
		for _, d := range ds {
			if !d.State.Info().Closed {
				continue
			}
			dels, err := j.DatasetDeletions(ctx, d.ID)
			if err != nil {
				fmt.Fprintf(stderr, "ferry: %v\n", err)
				return exitFailed
			}
			var left, kept int
			var bytes int64
			for _, x := range dels {
				switch x.State {
				case journal.DeletionPending:
					left++
					bytes += x.Bytes
				case journal.DeletionRefused:
					kept++
				}
			}
			pending, refused = pending+left, refused+kept
			why := "closed, manifest and crate landed"
			switch {
			case len(dels) == 0:
				left, bytes = d.Landed, d.LandedBytes
			case left == 0:
				continue // done
			default:
				why = fmt.Sprintf("deletion under way: %d left", left)
			}
			if d.DeadLetters > 0 {
				why = fmt.Sprintf("waits: %d dead letter(s) in it", d.DeadLetters)
			}
			if wc.AfterUpload == config.AfterUploadReclaim && err == nil && total > 0 {
				if 100*float64(free+freed)/float64(total) >= wc.ReclaimPercent() {
					why = "not needed: the threshold is reached before it"
				}
				freed += uint64(bytes)
			}
			listed++
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", d.RelPath, d.ClosedAt.Format(time.RFC3339), left, iec(bytes), why)
		}
		if listed == 0 {
			fmt.Fprintln(stdout, "  no closed dataset left to delete")
		} else {
			tw.Flush()
		}
		fmt.Fprintf(stdout, "  deletions waiting for their checks: %d; refused (kept): %d\n", pending, refused)
	}
	if !deleting {
		fmt.Fprintln(stdout, "no watch deletes source files (after_upload = \"keep\" everywhere): nothing would be deleted")
	}
	return exitOK
}
