package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/metadata"
)

// Metadata (issue 13). A watch with a metadata profile journals, with the
// first file of each dataset, a dataset_metadata row; its files are held
// until the dataset's metadata was validated. The dataset loop validates,
// each pass, the datasets marked dirty (new, a source file settled, the
// rules changed), records the outcome, and releases or holds the files by
// the profile's on_invalid and on_drift.

// isMetadataSource says whether a file (its path inside its dataset) is
// one the profile reads: the dataset is validated again when it settles.
// A pattern matches the path or, for sidecars anywhere in the dataset,
// the file's name; the built-in readers' files case-insensitively (MiSeq
// writes runParameters.xml).
func isMetadataSource(p *metadata.Profile, inside string) bool {
	if p == nil {
		return false
	}
	base := path.Base(inside)
	for _, s := range p.Sources {
		if strings.EqualFold(s, inside) || strings.EqualFold(s, base) && !strings.ContainsAny(s, "*?[{") {
			return true
		}
		if ok, _ := doublestar.Match(s, inside); ok {
			return true
		}
		if ok, _ := doublestar.Match(s, base); ok {
			return true
		}
	}
	return false
}

// metadataPass validates every dirty dataset's metadata.
func (l *datasetLoop) metadataPass(ctx context.Context, w *wiring) {
	ms, err := l.d.j.DirtyMetadata(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.logOnce("metadata", "cannot read the journal's dataset metadata", "error", err.Error())
		}
		return
	}
	for _, m := range ms {
		if ctx.Err() != nil {
			return
		}
		d := m.Dataset
		wc, ok := watchOf(w.cfg, d.Watch)
		prof := w.cfg.Profile(wc)
		if !ok || prof == nil {
			// Its watch, or the watch's profile, left the configuration:
			// it waits as it is (a person can accept it).
			l.logOnce("metadata "+d.Watch+"/"+d.RelPath, "a dataset's metadata profile is not in the configuration; its files wait",
				"dataset", d.RelPath, "watch", d.Watch, "profile", m.Profile)
			continue
		}
		l.validate(ctx, w.cfg, wc, prof, m)
	}
}

// validate captures and validates one dataset's metadata and journals the
// outcome.
func (l *datasetLoop) validate(ctx context.Context, cfg *config.Config, wc config.WatchConfig, prof *metadata.Profile, m journal.DatasetMetadata) {
	d := m.Dataset
	seen, err := watchShape(ctx, l.d.j, d.Watch)
	if err != nil {
		l.logOnce("metadata "+d.Watch+"/"+d.RelPath, "cannot read the watch's metadata shape", "dataset", d.RelPath, "error", err.Error())
		return
	}
	res, capture := evaluateDataset(prof, d.Watch, d.RelPath, seen)
	ev, err := evaluation(cfg, wc.Metadata, res, capture)
	if err != nil {
		l.logOnce("metadata "+d.Watch+"/"+d.RelPath, "cannot encode a dataset's metadata", "dataset", d.RelPath, "error", err.Error())
		return
	}
	ev.Marks = m.Marks
	released, held, err := l.d.j.RecordMetadata(ctx, d.Watch, d.RelPath, ev, replaceShape)
	if err != nil {
		if ctx.Err() == nil {
			l.logOnce("metadata "+d.Watch+"/"+d.RelPath, "cannot journal a dataset's metadata validation", "dataset", d.RelPath, "error", err.Error())
		}
		return
	}
	l.ok("metadata " + d.Watch + "/" + d.RelPath)
	log := l.d.log.With("dataset", d.RelPath, "watch", d.Watch, "schema_version", res.SchemaVersion, "validation_status", string(res.Status))
	level := log.Info
	if res.Status != metadata.StatusValid {
		level = log.Warn
	}
	held = max(held, m.Held)
	switch {
	case ev.Hold && m.AcceptedAt.IsZero():
		level("dataset metadata validated: its files are held (ferry dlq list shows the findings; ferry metadata accept releases it)",
			"findings", len(res.Findings), "held", held, "profile", wc.Metadata)
	default:
		level("dataset metadata validated", "findings", len(res.Findings), "released", released, "profile", wc.Metadata)
	}
	for _, f := range res.Findings {
		log.Warn("metadata finding", "kind", f.Kind, "field", f.Field, "expected", f.Expected, "found", f.Found, "message", f.Message)
	}
	if released > 0 {
		l.d.uploader().Notify()
	}
	if l.d.metrics != nil {
		l.d.metrics.observeValidation(string(res.Status))
	}
}

// watchShape is the watch's metadata baseline (nil: no dataset released
// yet).
func watchShape(ctx context.Context, j *journal.Journal, watch string) (*metadata.Shape, error) {
	b, err := j.WatchShape(ctx, watch)
	if err != nil || len(b) == 0 {
		return nil, err
	}
	var s metadata.Shape
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("the journal's metadata shape of %s: %w", watch, err)
	}
	return &s, nil
}

// evaluateDataset captures and validates the dataset rel of the watch
// root against seen.
func evaluateDataset(prof *metadata.Profile, root, rel string, seen *metadata.Shape) (metadata.Result, *metadata.Capture) {
	c := prof.Capture(filepath.Join(root, filepath.FromSlash(rel)), rel)
	return prof.Evaluate(c, seen), c
}

// evaluation is what the journal records of a validation.
func evaluation(cfg *config.Config, profile string, res metadata.Result, c *metadata.Capture) (journal.MetadataEvaluation, error) {
	findings := res.Findings
	if findings == nil {
		findings = []metadata.Finding{}
	}
	sources := c.Sources
	if sources == nil {
		sources = []metadata.Source{}
	}
	var ev journal.MetadataEvaluation
	var err error
	for _, x := range []struct {
		dst *json.RawMessage
		v   any
	}{{&ev.Findings, findings}, {&ev.Document, res.Doc}, {&ev.Shape, res.Shape}, {&ev.Sources, sources}} {
		if *x.dst, err = json.Marshal(x.v); err != nil {
			return ev, err
		}
	}
	ev.Status, ev.SchemaVersion = string(res.Status), res.SchemaVersion
	ev.Hold = cfg.HoldsOn(profile, res.Status)
	return ev, nil
}

// replaceShape makes a released dataset's shape (the watch's baseline
// merged with the dataset's, as Evaluate returns it) the watch's.
func replaceShape(_ []byte, datasetShape []byte) ([]byte, error) { return datasetShape, nil }

// recordRules records the validation rules in force in the audit log when
// they differ from those last recorded (at start, and after each reload),
// and marks the unclosed datasets of every watch with metadata for
// validation again. It returns the changed rule files.
func (d *Daemon) recordRules(ctx context.Context, cfg *config.Config) ([]string, error) {
	vocabs, schemas := cfg.RuleFiles()
	prev, err := d.j.RuleFiles(ctx)
	if err != nil {
		return nil, err
	}
	var files []journal.RuleFile
	var changed, lines []string
	now := map[string]bool{}
	for _, v := range vocabs {
		b, err := os.ReadFile(v.Path)
		if err != nil {
			return nil, err
		}
		now[v.Path] = true
		files = append(files, journal.RuleFile{Path: v.Path, Kind: "vocabulary", Name: v.Name, SHA256: v.SHA256, Content: b})
		old, had := prev[v.Path]
		if had && old.SHA256 == v.SHA256 {
			continue
		}
		changed = append(changed, v.Path)
		var oldVocab *metadata.Vocabulary
		if had {
			oldVocab = loadOldVocabulary(v.Name, v.Path, old.Content)
		}
		lines = append(lines, fmt.Sprintf("vocabulary %s %s sha256=%s terms=%d%s", v.Name, v.Path, v.SHA256, v.Len(), changesText(metadata.DiffVocabulary(oldVocab, v), had)))
	}
	for _, s := range schemas {
		now[s.Path] = true
		files = append(files, journal.RuleFile{Path: s.Path, Kind: "schema", Name: s.ID, SHA256: s.SHA256, Content: s.Raw})
		old, had := prev[s.Path]
		if had && old.SHA256 == s.SHA256 {
			continue
		}
		changed = append(changed, s.Path)
		var oldRaw []byte
		if had {
			oldRaw = old.Content
		}
		lines = append(lines, fmt.Sprintf("schema %s $id=%s version=%s sha256=%s schema_version=%s%s", s.Path, orDash(s.ID), orDash(s.Version), s.SHA256,
			s.Stamp(), changesText(metadata.DiffSchema(oldRaw, s.Raw), had)))
	}
	for p, old := range prev {
		if !now[p] {
			changed = append(changed, p)
			lines = append(lines, fmt.Sprintf("%s %s no longer in force (sha256=%s)", old.Kind, p, old.SHA256))
		}
	}
	if len(changed) == 0 {
		return nil, nil
	}
	sort.Strings(changed)
	sum := sha256.New()
	for _, f := range files {
		fmt.Fprintf(sum, "%s %s\n", f.Path, f.SHA256)
	}
	rec := journal.AuditRecord{Kind: journal.AuditValidationRulesChanged, Subject: cfg.File(), SHA256: hex.EncodeToString(sum.Sum(nil)),
		Changed: changed, Detail: strings.Join(lines, "\n")}
	if err := d.j.RecordRules(ctx, files, rec); err != nil {
		return nil, err
	}
	for _, w := range cfg.Watch {
		if w.Metadata == "" {
			continue
		}
		if _, err := d.j.MarkMetadataDirty(ctx, w.Path); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func changesText(diff []string, had bool) string {
	if !had {
		return " (new)"
	}
	if len(diff) == 0 {
		return " (content changed, no rule changed)"
	}
	return "; changes: " + strings.Join(diff, "; ")
}

// loadOldVocabulary parses the content of a vocabulary as last recorded,
// for the diff (nil when it cannot be read: the diff then lists every
// term).
func loadOldVocabulary(name, p string, content []byte) *metadata.Vocabulary {
	dir, err := os.MkdirTemp("", "ferry-vocabulary-")
	if err != nil {
		return nil
	}
	defer os.RemoveAll(dir)
	f := filepath.Join(dir, "old"+filepath.Ext(p))
	if err := os.WriteFile(f, content, 0o600); err != nil {
		return nil
	}
	v, err := metadata.LoadVocabulary(name, f)
	if err != nil {
		return nil
	}
	return v
}
