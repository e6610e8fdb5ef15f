package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/metadata"
)

// metadataCmd is `ferry metadata check` (for the people who write schemas)
// and `ferry metadata accept` (release a held dataset as it is).
func (a *app) metadataCmd() *cobra.Command {
	var configFlag, reason, watchFlag string
	var asJSON bool
	check := &cobra.Command{
		Use:   "check PATH",
		Short: "Show what metadata ferry captures for a dataset folder or file, its status and every finding",
		Long: `Capture and validate the metadata of the dataset that PATH is (a dataset
folder) or is in (a file), as the daemon would, without uploading anything:
what was captured from which file, the validation status (valid, drift,
invalid), the schema version, and each finding with the field, what was
expected and what was found. Drift is judged against what the watch's
released datasets looked like, read from the journal when there is one.

Exit status: 0 valid, 1 drift or invalid, 2 bad command line or
configuration (PATH in no watch, or its watch has no metadata profile).`,
		Example: `  ferry metadata check --config /etc/ferry/ferry.toml /data/incoming/LH00001/20261202_LH00001_0042_A22XYZLT3
  ferry metadata check --json /data/incoming/LH00001/20261202_LH00001_0042_A22XYZLT3/SampleSheet.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withConfig(configFlag, func(path string) int {
				cfg, code := loadConfig(path, a.getenv, a.stderr)
				if cfg == nil {
					return code
				}
				return metadataCheck(cmd.Context(), cfg, args[0], a.stdout, a.stderr, asJSON)
			})
		},
	}
	check.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	accept := &cobra.Command{
		Use:   "accept DATASET --reason TEXT",
		Short: "Release a dataset held for its metadata, as it is (recorded in the audit log)",
		Long: `Release the held dataset DATASET (its folder relative to its watch root, as
ferry datasets lists it): its files are queued for upload although its
metadata is invalid or drifted, and it is not held again. The acceptance,
with the reason, the status and the schema version, is recorded in the
event chain and in the audit log. A running daemon takes the files within
a second or so.`,
		Example: `  ferry metadata accept LH00001/20261202_LH00001_0042_A22XYZLT3 --reason "new RTA version approved (ticket 4711)" --config /etc/ferry/ferry.toml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return errors.New("--reason is required: say why the dataset is accepted as it is (it goes into the audit log)")
			}
			return a.withConfig(configFlag, func(path string) int {
				cfg, code := loadConfig(path, a.getenv, a.stderr)
				if cfg == nil {
					return code
				}
				j, err := journal.Open(cfg.Journal.Path, journal.Options{FerryVersion: versionString()})
				if j, code = journalOpened(j, err, cfg, a.stderr); j == nil {
					return code
				}
				defer j.Close()
				return metadataAccept(cmd.Context(), cfg, j, args[0], watchFlag, reason, a.stdout, a.stderr)
			})
		},
	}
	accept.Flags().StringVar(&reason, "reason", "", "why it is accepted as it is (required; recorded in the audit log)")
	accept.Flags().StringVar(&watchFlag, "watch", "", "the watch folder, when datasets of several watches have this name")
	for _, c := range []*cobra.Command{check, accept} {
		a.configFlag(c, &configFlag)
	}
	return group("metadata", "Datasets' metadata: check it, accept a held dataset", check, accept)
}

// checkJSON is what metadata check prints with --json.
type checkJSON struct {
	Watch         string             `json:"watch"`
	Dataset       string             `json:"dataset"`
	Profile       string             `json:"profile"`
	Schema        string             `json:"schema,omitempty"`
	SchemaVersion string             `json:"schema_version"`
	Status        string             `json:"validation_status"`
	Policy        string             `json:"policy"`
	Baseline      bool               `json:"baseline"` // drift judged against the journal's record of the watch
	Sources       []metadata.Source  `json:"sources"`
	Findings      []metadata.Finding `json:"findings"`
	Document      map[string]any     `json:"document"`
}

func metadataCheck(ctx context.Context, cfg *config.Config, arg string, stdout, stderr io.Writer, asJSON bool) int {
	abs, err := filepath.Abs(arg)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitUsage
	}
	fi, err := os.Stat(abs)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitUsage
	}
	wc, rel, ok := watchHolding(cfg, abs)
	if !ok {
		fmt.Fprintf(stderr, "ferry: %s is in no watch of %s\n", abs, cfg.File())
		return exitUsage
	}
	prof := cfg.Profile(wc)
	if prof == nil {
		fmt.Fprintf(stderr, "ferry: the watch %s has no metadata profile (set metadata = \"NAME\" and a [metadata.NAME] section)\n", wc.Path)
		return exitUsage
	}
	probe := rel + "/x" // a folder: the dataset it is, or a file in it
	if !fi.IsDir() {
		probe = rel
	}
	ds := wc.DatasetOf(probe)
	if ds == "" {
		fmt.Fprintf(stderr, "ferry: %s is neither a dataset folder nor a file in one (the watch's datasets: %q under %s)\n", abs, wc.Dataset, wc.Path)
		return exitUsage
	}
	var seen *metadata.Shape
	baseline := false
	if j, err := journal.OpenReadOnly(cfg.Journal.Path); err == nil {
		var b []byte
		b, err = j.WatchShape(ctx, filepath.Clean(wc.Path))
		j.Close()
		if err == nil && len(b) > 0 {
			var s metadata.Shape
			if json.Unmarshal(b, &s) == nil {
				seen, baseline = &s, true
			}
		}
	}
	c := prof.Capture(filepath.Join(wc.Path, filepath.FromSlash(ds)), ds)
	res := prof.Evaluate(c, seen)
	m := cfg.Metadata[wc.Metadata]
	policy := "upload (valid)"
	switch res.Status {
	case metadata.StatusInvalid:
		policy = "on_invalid = " + m.OnInvalid
	case metadata.StatusDrift:
		policy = "on_drift = " + m.OnDrift
	}
	code := exitOK
	if res.Status == metadata.StatusInvalid || res.Status == metadata.StatusDrift {
		code = exitFailed
	}
	if asJSON {
		out := checkJSON{Watch: wc.Path, Dataset: ds, Profile: wc.Metadata, Schema: m.Schema, SchemaVersion: res.SchemaVersion, Status: string(res.Status),
			Policy: policy, Baseline: baseline, Sources: c.Sources, Findings: res.Findings, Document: res.Doc}
		if out.Sources == nil {
			out.Sources = []metadata.Source{}
		}
		if out.Findings == nil {
			out.Findings = []metadata.Finding{}
		}
		if writeJSON(stdout, out) != exitOK {
			return exitFailed
		}
		return code
	}
	fmt.Fprintf(stdout, "dataset   %s (watch %s, profile %s)\n", ds, wc.Path, wc.Metadata)
	if m.Schema != "" {
		fmt.Fprintf(stdout, "schema    %s (schema_version %s)\n", m.Schema, res.SchemaVersion)
	} else {
		fmt.Fprintln(stdout, "schema    none (capture and drift only)")
	}
	if baseline {
		fmt.Fprintln(stdout, "drift     judged against the datasets this watch released (from the journal)")
	} else {
		fmt.Fprintln(stdout, "drift     no baseline yet (no dataset of this watch released): nothing counts as drift")
	}
	fmt.Fprintln(stdout, "captured:")
	if len(c.Sources) == 0 {
		fmt.Fprintln(stdout, "  nothing")
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	for _, s := range c.Sources {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", orDash(s.File), s.Kind, strings.Join(s.Fields, ", "))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "status    %s (%s)\n", res.Status, policy)
	if len(res.Findings) > 0 {
		fmt.Fprintf(stdout, "findings  %d:\n", len(res.Findings))
		for _, f := range res.Findings {
			fmt.Fprintf(stdout, "  %s\n", f)
		}
	}
	return code
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// watchHolding finds the watch whose folder holds abs (the deepest) and
// abs relative to it, slash-separated ("" for the folder itself).
func watchHolding(cfg *config.Config, abs string) (config.WatchConfig, string, bool) {
	best, bestRel, found := config.WatchConfig{}, "", false
	for _, w := range cfg.Watch {
		root := filepath.Clean(w.Path)
		rel, err := filepath.Rel(root, abs)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		if rel == "." {
			rel = ""
		}
		if !found || len(root) > len(filepath.Clean(best.Path)) {
			best, bestRel, found = w, filepath.ToSlash(rel), true
		}
	}
	return best, bestRel, found
}

func metadataAccept(ctx context.Context, cfg *config.Config, j *journal.Journal, id, watch, reason string, stdout, stderr io.Writer) int {
	id = strings.Trim(filepath.ToSlash(id), "/")
	all, err := j.AllMetadata(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	var matches []journal.DatasetMetadata
	for _, m := range all {
		if m.Dataset.RelPath == id && (watch == "" || filepath.Clean(watch) == m.Dataset.Watch) {
			matches = append(matches, m)
		}
	}
	switch len(matches) {
	case 0:
		fmt.Fprintf(stderr, "ferry: no dataset %q with metadata in the journal of %s (ferry dlq list shows the held ones)\n", id, cfg.File())
		return exitUsage
	case 1:
	default:
		var ws []string
		for _, m := range matches {
			ws = append(ws, m.Dataset.Watch)
		}
		fmt.Fprintf(stderr, "ferry: datasets named %q in several watches (%s): say which with --watch\n", id, strings.Join(ws, ", "))
		return exitUsage
	}
	m := matches[0]
	n, err := j.AcceptMetadata(ctx, m.Dataset.Watch, id, reason, func(_, ds []byte) ([]byte, error) { return ds, nil })
	if errors.Is(err, journal.ErrNotHeld) {
		fmt.Fprintf(stderr, "ferry: %v: nothing to accept\n", err)
		return exitFailed
	}
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	status := m.Status
	if status == "" {
		status = "not validated yet"
	}
	fmt.Fprintf(stdout, "accepted %s (metadata %s, schema_version %s): %d held files queued for upload; recorded in the audit log\n",
		id, status, orDash(m.SchemaVersion), n)
	return exitOK
}

// heldJSON is a held dataset as dlq list prints it.
type heldJSON struct {
	State         string          `json:"state"` // "held"
	Watch         string          `json:"watch"`
	Dataset       string          `json:"dataset"`
	Files         int             `json:"files"`
	Status        string          `json:"validation_status"`
	SchemaVersion string          `json:"schema_version"`
	Findings      json.RawMessage `json:"findings"`
}

// heldList prints the held datasets with their findings (dlq list).
func heldList(ms []journal.DatasetMetadata, stdout io.Writer) {
	fmt.Fprintf(stdout, "\nheld for their metadata (%d datasets; fix the files or the schema, or: ferry metadata accept DATASET --reason TEXT):\n", len(ms))
	for _, m := range ms {
		status := m.Status
		if status == "" {
			status = "not validated yet"
		}
		fmt.Fprintf(stdout, "  %s (watch %s): %d files held, metadata %s, schema_version %s\n", m.Dataset.RelPath, m.Dataset.Watch, m.Held, status, orDash(m.SchemaVersion))
		var fs []metadata.Finding
		_ = json.Unmarshal(m.Findings, &fs)
		for _, f := range fs {
			fmt.Fprintf(stdout, "    %s\n", f)
		}
	}
}
