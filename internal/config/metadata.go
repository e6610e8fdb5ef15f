package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ferry-data/ferry/metadata"
)

// MetadataConfig is one [metadata.NAME]: how a watch's datasets' metadata
// is captured, the schema it must satisfy, which fields' change is drift,
// and what happens to a dataset whose metadata is invalid or drifted.
type MetadataConfig struct {
	PathTemplate string   `toml:"path_template"`
	Sources      []string `toml:"sources"`
	Schema       string   `toml:"schema"`
	DriftFields  []string `toml:"drift_fields"`
	OnInvalid    string   `toml:"on_invalid"`
	OnDrift      string   `toml:"on_drift"`

	profile *metadata.Profile
}

// VocabularyConfig is one [vocabulary.NAME]: a registered ontology.
type VocabularyConfig struct {
	File string `toml:"file"`

	vocab *metadata.Vocabulary
}

// The policies of on_invalid and on_drift.
const (
	PolicyFlag = "flag" // upload; the outcome is recorded
	PolicyHold = "hold" // keep the dataset's files local until it validates or a person accepts it
)

// The defaults: invalid metadata holds (a run archived with the wrong
// species or project is the liability this feature exists to prevent, and
// nothing is lost: the files stay on the instrument until a person
// decides); drift only flags (an instrument software update must not stop
// a facility's archiving overnight).
const (
	DefaultOnInvalid = PolicyHold
	DefaultOnDrift   = PolicyFlag
)

// DefaultMetadataComplete is a watch's `complete` when it has a metadata
// profile but neither dataset nor complete: its datasets (the folders the
// path template names) are complete after an hour without a new file.
const DefaultMetadataComplete = "quiet:1h"

// Profile is the compiled profile (schema and vocabularies loaded).
func (m MetadataConfig) Profile() *metadata.Profile { return m.profile }

// Vocabulary is the loaded vocabulary.
func (v VocabularyConfig) Vocabulary() *metadata.Vocabulary { return v.vocab }

// Profile is the watch's compiled metadata profile (nil for none).
func (c *Config) Profile(w WatchConfig) *metadata.Profile {
	if w.Metadata == "" {
		return nil
	}
	return c.Metadata[w.Metadata].profile
}

// HoldsOn reports whether a dataset with the given validation status is
// held under profile name's policy.
func (c *Config) HoldsOn(profile string, status metadata.Status) bool {
	m, ok := c.Metadata[profile]
	if !ok {
		return false
	}
	switch status {
	case metadata.StatusInvalid:
		return m.OnInvalid == PolicyHold
	case metadata.StatusDrift:
		return m.OnDrift == PolicyHold
	}
	return false
}

// RuleFiles are the validation rules in force: every vocabulary, then
// every schema, sorted by path.
func (c *Config) RuleFiles() (vocabs []*metadata.Vocabulary, schemas []*metadata.Schema) {
	for _, name := range sortedKeys(c.Vocabulary) {
		if v := c.Vocabulary[name].vocab; v != nil {
			vocabs = append(vocabs, v)
		}
	}
	seen := map[string]bool{}
	for _, name := range sortedKeys(c.Metadata) {
		if p := c.Metadata[name].profile; p != nil && p.Schema != nil && !seen[p.Schema.Path] {
			seen[p.Schema.Path] = true
			schemas = append(schemas, p.Schema)
		}
	}
	sort.Slice(schemas, func(a, b int) bool { return schemas[a].Path < schemas[b].Path })
	return vocabs, schemas
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// validateMetadata loads every [vocabulary.NAME] and compiles every
// [metadata.NAME], before the watches that name them are checked.
func (c *Config) validateMetadata(v *checker) {
	vocabs := map[string]*metadata.Vocabulary{}
	for _, name := range sortedKeys(c.Vocabulary) {
		voc := c.Vocabulary[name]
		tbl := "vocabulary." + name
		if voc.File == "" {
			v.bad(v.loc.table(tbl), tbl+".file", "required: an OBO 1.4 or CSV (id,label,synonyms) file")
			continue
		}
		voc.File = c.resolve(voc.File)
		loaded, err := metadata.LoadVocabulary(name, voc.File)
		if err != nil {
			v.badKey(tbl, "file", "%v", err)
		} else {
			voc.vocab = loaded
			vocabs[name] = loaded
		}
		c.Vocabulary[name] = voc
	}
	for _, name := range sortedKeys(c.Metadata) {
		m := c.Metadata[name]
		tbl := "metadata." + name
		for _, k := range []struct {
			key string
			p   *string
			def string
		}{{"on_invalid", &m.OnInvalid, DefaultOnInvalid}, {"on_drift", &m.OnDrift, DefaultOnDrift}} {
			switch *k.p {
			case "":
				*k.p = k.def
			case PolicyFlag, PolicyHold:
			default:
				v.badKey(tbl, k.key, "must be %q or %q (got %q)", PolicyFlag, PolicyHold, *k.p)
			}
		}
		for _, s := range m.Sources {
			if strings.TrimSpace(s) == "" || strings.Contains(s, `\`) {
				v.badKey(tbl, "sources", "%q is not a file name or pattern (use / as separator)", s)
			}
		}
		var schema *metadata.Schema
		if m.Schema != "" {
			m.Schema = c.resolve(m.Schema)
			s, err := metadata.CompileSchema(m.Schema, vocabs)
			if err != nil {
				v.badKey(tbl, "schema", "%v", err)
				c.Metadata[name] = m
				continue
			}
			schema = s
		}
		p, err := metadata.NewProfile(name, m.PathTemplate, m.Sources, schema, m.DriftFields)
		if err != nil {
			key := "path_template"
			if strings.Contains(err.Error(), "drift") {
				key = "drift_fields"
			} else if strings.Contains(err.Error(), "source") {
				key = "sources"
			}
			v.badKey(tbl, key, "%v", err)
		} else {
			m.profile = p
		}
		c.Metadata[name] = m
	}
}

// validateWatchMetadata checks a watch's metadata key. A watch with a
// profile but no dataset pattern takes its datasets from the profile's
// path template (the folders before "**").
func (c *Config) validateWatchMetadata(v *checker, w *WatchConfig, tbl string, line func(string) int) {
	if w.Metadata == "" {
		return
	}
	m, ok := c.Metadata[w.Metadata]
	if !ok {
		v.bad(line("metadata"), tbl+".metadata", "no [metadata.%s] section (profiles: %s)", w.Metadata, orNone(sortedKeys(c.Metadata)))
		return
	}
	if w.Dataset != "" || m.profile == nil {
		return
	}
	pat := m.profile.DatasetPattern()
	if pat == "" {
		v.bad(line("metadata"), tbl+".metadata",
			"metadata is captured per dataset: set dataset (e.g. dataset = \"*\"), or give [metadata.%s] a path_template whose dataset folders come before \"**\" (e.g. \"{instrument}/{run_id}/**\")", w.Metadata)
		return
	}
	w.Dataset = pat
	w.datasetFromTemplate = true
	if len(w.Complete) == 0 {
		w.Complete = StringList{DefaultMetadataComplete}
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// DatasetFromTemplate reports whether the watch's dataset pattern was
// taken from its metadata profile's path template.
func (w WatchConfig) DatasetFromTemplate() bool { return w.datasetFromTemplate }

// DescribeMetadata is a line per profile and vocabulary, for config check.
func (c *Config) DescribeMetadata() []string {
	var out []string
	for _, name := range sortedKeys(c.Metadata) {
		out = append(out, c.Metadata[name].describe(name))
	}
	for _, name := range sortedKeys(c.Vocabulary) {
		voc := c.Vocabulary[name]
		line := fmt.Sprintf("vocabulary %s: %s", name, voc.File)
		if voc.vocab != nil {
			line += fmt.Sprintf(" (%d terms, sha256 %s)", voc.vocab.Len(), voc.vocab.SHA256[:12])
		}
		out = append(out, line)
	}
	return out
}

func (m MetadataConfig) describe(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "metadata %s: on_invalid %s, on_drift %s", name, m.OnInvalid, m.OnDrift)
	if m.profile != nil && m.profile.Schema != nil {
		fmt.Fprintf(&b, ", schema %s (%s)", m.Schema, m.profile.Schema.Stamp())
	}
	if len(m.Sources) > 0 {
		fmt.Fprintf(&b, ", sources %s", strings.Join(m.Sources, " "))
	}
	return b.String()
}
