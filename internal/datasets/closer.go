// Package datasets closes datasets: when a complete dataset's files have
// all landed, it journals the closing, writes manifest-sha256.txt and then
// ro-crate-metadata.json to the target, create-only, and journals the close
// with the notifications it owes. Every step can be repeated after a crash:
// what is written is made from the journal alone (the same bytes every
// time), and a create-only write that finds its own bytes already there
// goes on.
package datasets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-data/ferry/dataset"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
)

// Closer closes the datasets of one target.
type Closer struct {
	Journal *journal.Journal
	Sink    sink.Sink
	// Target describes where datasets land, for the crate (no secrets):
	// e.g. `target "archive" (s3 bucket "runs")`.
	Target       string
	FerryVersion string
	Host         string
	// License is the watch's `license` ("" = dataset.DefaultLicense).
	License string
	// Metadata is the dataset's metadata as last validated (nil: its
	// watch has no metadata profile): the crate carries the document,
	// the status, the schema version and the findings.
	Metadata *journal.DatasetMetadata
	// Notify returns the notifications owed when d closes (its state says
	// closed or failed_run); nil means none.
	Notify func(d journal.Dataset) []journal.Notification
}

// ErrConflict is matched when a key ferry writes a dataset's manifest or
// crate under already holds other content: ferry never overwrites it.
var ErrConflict = errors.New("the key already holds other content")

// Close takes a dataset from complete (or closing, after a crash) to
// closed. A dataset whose files have not all landed returns an error
// matching journal.ErrDatasetNotReady and is left complete.
func (c *Closer) Close(ctx context.Context, d journal.Dataset) (journal.Dataset, error) {
	var manifest []byte
	switch d.State {
	case journal.DatasetComplete:
		if _, err := c.Journal.CloseDataset(ctx, d.Watch, d.RelPath, func(files []journal.DatasetFile) (string, error) {
			m, err := manifestOf(d, files)
			manifest = m
			return sha(m), err
		}); err != nil {
			return d, err
		}
		var err error
		if d, err = c.reload(ctx, d); err != nil {
			return d, err
		}
	case journal.DatasetClosing:
	default:
		return d, fmt.Errorf("dataset %s: %w: closing from state %q", d.RelPath, journal.ErrTransition, d.State)
	}
	files, err := c.Journal.DatasetFiles(ctx, d.Watch, d.RelPath)
	if err != nil {
		return d, err
	}
	if manifest == nil {
		if manifest, err = manifestOf(d, files); err != nil {
			return d, err
		}
	}
	if got := sha(manifest); got != d.ManifestSHA256 {
		// The files journaled for it changed after the closing was
		// journaled: writing would publish a manifest the journal does
		// not vouch for.
		return d, fmt.Errorf("dataset %s: the manifest made now (sha256 %s) is not the one journaled at closing (%s)", d.RelPath, got, d.ManifestSHA256)
	}
	if err := c.put(ctx, d.KeyPrefix+dataset.ManifestName, manifest); err != nil {
		return d, err
	}
	crate, err := c.crate(d, files, manifest)
	if err != nil {
		return d, err
	}
	if err := c.put(ctx, d.KeyPrefix+dataset.CrateName, crate); err != nil {
		return d, err
	}
	var notes []journal.Notification
	if c.Notify != nil {
		closed := d
		closed.State = journal.DatasetClosed
		if d.Outcome == dataset.FailedRun.String() {
			closed.State = journal.DatasetFailedRun
		}
		notes = c.Notify(closed)
	}
	if err := c.Journal.ClosedDataset(ctx, d.Watch, d.RelPath, sha(crate), notes); err != nil {
		return d, err
	}
	return c.reload(ctx, d)
}

func (c *Closer) reload(ctx context.Context, d journal.Dataset) (journal.Dataset, error) {
	ds, err := c.Journal.Datasets(ctx, journal.DatasetFilter{Watch: d.Watch, RelPath: d.RelPath})
	if err != nil {
		return d, err
	}
	if len(ds) != 1 {
		return d, fmt.Errorf("dataset %s: %w", d.RelPath, journal.ErrNoDataset)
	}
	return ds[0], nil
}

// put writes body under key, create-only; finding the same bytes there (a
// write whose journaling a crash prevented) is success.
func (c *Closer) put(ctx context.Context, key string, body []byte) error {
	sum := sha256.Sum256(body)
	err := c.Sink.Put(ctx, key, body, sink.Digest(sum), true)
	if err == nil || !errors.Is(err, sink.ErrExists) {
		return err
	}
	info, serr := c.Sink.Stat(ctx, key)
	if serr != nil {
		return fmt.Errorf("%s exists and cannot be read back: %w", key, serr)
	}
	if info.SHA256 == hex.EncodeToString(sum[:]) && info.Size == int64(len(body)) {
		return nil
	}
	return sink.NewPermanent("Put", fmt.Errorf("%s: %w (sha256 %q), and ferry does not overwrite it", key, ErrConflict, info.SHA256))
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// within turns a file's path under the watch root into its path in the
// dataset's folder.
func within(d journal.Dataset, rel string) (string, error) {
	p, ok := strings.CutPrefix(rel, d.RelPath+"/")
	if !ok || p == "" {
		return "", fmt.Errorf("dataset %s: file %s is not inside it", d.RelPath, rel)
	}
	return p, nil
}

// filesOf lists the dataset's objects for its manifest and crate: each by
// its key under the dataset's folder on the target (with on_change =
// "version" a file's content may have landed as key~<sha12>.ext, and the
// manifest describes what is on the target).
func filesOf(d journal.Dataset, files []journal.DatasetFile) ([]dataset.File, error) {
	out := make([]dataset.File, 0, len(files))
	for _, f := range files {
		p, err := within(d, f.RelPath)
		if err != nil {
			return nil, err
		}
		if k, ok := strings.CutPrefix(f.Key, d.KeyPrefix); ok && k != "" {
			p = k
		}
		out = append(out, dataset.File{Path: p, Size: f.Size, SHA256: f.SHA256, ModTime: f.MTime})
	}
	return out, nil
}

func manifestOf(d journal.Dataset, files []journal.DatasetFile) ([]byte, error) {
	fs, err := filesOf(d, files)
	if err != nil {
		return nil, err
	}
	return dataset.Manifest(fs)
}

// crate makes ro-crate-metadata.json from the journal's record of d: the
// same bytes however often it is made.
func (c *Closer) crate(d journal.Dataset, files []journal.DatasetFile, manifest []byte) ([]byte, error) {
	fs, err := filesOf(d, files)
	if err != nil {
		return nil, err
	}
	outcome := dataset.Completed
	if d.Outcome == dataset.FailedRun.String() {
		outcome = dataset.FailedRun
	}
	name := d.RelPath
	cr := dataset.Crate{
		ID:   d.RelPath,
		Name: name,
		Description: fmt.Sprintf("Dataset %s from %s, archived by ferry: %d files, %d bytes.",
			d.RelPath, d.Watch, len(fs), d.Bytes),
		Published:    d.ClosingAt,
		License:      c.License,
		Files:        fs,
		Manifest:     dataset.File{Path: dataset.ManifestName, Size: int64(len(manifest)), SHA256: sha(manifest), ModTime: d.ClosingAt},
		FerryVersion: c.FerryVersion,
		Host:         c.Host,
		Started:      d.OpenedAt,
		Ended:        d.ClosingAt,
		Signal:       d.Signal,
		Outcome:      outcome,
		Reason:       d.Reason,
		Target:       c.Target,
	}
	if c.Metadata != nil {
		cr.Extra, cr.Entities = metadataEntities(*c.Metadata)
	}
	return cr.JSON()
}

// metadataEntities are the crate's record of a dataset's metadata: the
// root's variableMeasured names one PropertyValue each for the validation
// status, the schema version, the captured document and the findings (as
// JSON text), and a person's acceptance where there was one.
func metadataEntities(m journal.DatasetMetadata) (map[string]any, []map[string]any) {
	pv := func(id, name, value, desc string) map[string]any {
		n := map[string]any{"@id": id, "@type": "PropertyValue", "name": name, "value": value}
		if desc != "" {
			n["description"] = desc
		}
		return n
	}
	status := m.Status
	if status == "" {
		status = "none"
	}
	es := []map[string]any{
		pv("#ferry-validation-status", "validation_status", status, "How the dataset's metadata validated when ferry archived it: valid, drift or invalid."),
		pv("#ferry-schema-version", "schema_version", m.SchemaVersion, "The schema's $id and the first 12 hex digits of its SHA-256."),
		pv("#ferry-metadata", "metadata", compactJSON(m.Document, "{}"), "The metadata ferry captured for the dataset (path, runinfo, runparameters, samplesheet, sidecars), as JSON; vocabulary values as term IDs."),
		pv("#ferry-metadata-findings", "metadata_findings", compactJSON(m.Findings, "[]"), "Every finding of the validation (field, expected, found), as JSON."),
	}
	if !m.AcceptedAt.IsZero() {
		es = append(es, pv("#ferry-metadata-accepted", "metadata_accepted", m.AcceptedReason,
			"A person accepted the metadata as it was, at "+m.AcceptedAt.UTC().Format(time.RFC3339)+", for this reason."))
	}
	refs := make([]any, len(es))
	for i, e := range es {
		refs[i] = map[string]any{"@id": e["@id"]}
	}
	return map[string]any{"variableMeasured": refs}, es
}

func compactJSON(b []byte, def string) string {
	var buf bytes.Buffer
	if len(b) == 0 || json.Compact(&buf, b) != nil {
		return def
	}
	return buf.String()
}
