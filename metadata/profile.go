package metadata

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
)

// The built-in readers, by the source name a profile lists (matched
// without regard to case: MiSeq writes runParameters.xml).
const (
	SourceRunInfo       = "RunInfo.xml"
	SourceRunParameters = "RunParameters.xml"
	SourceSampleSheet   = "SampleSheet.csv"
)

var builtins = []struct{ name, kind string }{
	{SourceRunInfo, "runinfo"},
	{SourceRunParameters, "runparameters"},
	{SourceSampleSheet, "samplesheet"},
}

// Profile is a [metadata.NAME] section: where a dataset's metadata comes
// from, the schema it must satisfy and the fields whose change is drift.
type Profile struct {
	Name        string
	Template    *Template
	Sources     []string
	Schema      *Schema // may be nil: capture and drift only
	DriftFields []string

	readers  []string // built-in kinds among Sources, in builtins order
	sidecars []string // sidecar patterns among Sources
}

// NewProfile checks a profile. Each source is a built-in reader name
// (RunInfo.xml, RunParameters.xml, SampleSheet.csv, any case) or a sidecar
// pattern (doublestar, ending in .json, .yaml or .yml): a pattern without
// "/" matches a file's name at any depth of the dataset, one with "/" its
// path relative to the dataset folder. With RunParameters.xml among the
// sources, the RunParameters version fields (VersionFieldNames) are added
// to the drift fields.
func NewProfile(name, pathTemplate string, sources []string, schema *Schema, driftFields []string) (*Profile, error) {
	t, err := ParseTemplate(pathTemplate)
	if err != nil {
		return nil, err
	}
	p := &Profile{Name: name, Template: t, Sources: slices.Clone(sources), Schema: schema}
	seen := map[string]bool{}
	for _, s := range sources {
		if seen[strings.ToLower(s)] {
			return nil, fmt.Errorf("sources: %q listed twice", s)
		}
		seen[strings.ToLower(s)] = true
		if k := builtinKind(s); k != "" {
			p.readers = append(p.readers, k)
			continue
		}
		if s == "" || strings.HasPrefix(s, "/") || strings.Contains(s, "\\") || !doublestar.ValidatePattern(s) {
			return nil, fmt.Errorf("sources: %q is not a valid pattern relative to the dataset folder (use / separators)", s)
		}
		switch strings.ToLower(path.Ext(s)) {
		case ".json", ".yaml", ".yml":
		default:
			return nil, fmt.Errorf("sources: %q: a sidecar pattern must end in .json, .yaml or .yml (the built-in readers are %s, %s, %s)", s, SourceRunInfo, SourceRunParameters, SourceSampleSheet)
		}
		p.sidecars = append(p.sidecars, s)
	}
	slices.SortFunc(p.readers, func(a, b string) int { return kindOrder(a) - kindOrder(b) })
	drift := map[string]bool{}
	for _, f := range driftFields {
		if f == "" {
			return nil, fmt.Errorf("drift_fields: empty field")
		}
		drift[f] = true
	}
	if slices.Contains(p.readers, "runparameters") {
		for _, n := range VersionFieldNames {
			drift["runparameters."+n] = true
		}
	}
	for f := range drift {
		p.DriftFields = append(p.DriftFields, f)
	}
	slices.Sort(p.DriftFields)
	return p, nil
}

func builtinKind(source string) string {
	for _, b := range builtins {
		if strings.EqualFold(source, b.name) {
			return b.kind
		}
	}
	return ""
}

func kindOrder(k string) int {
	return slices.IndexFunc(builtins, func(b struct{ name, kind string }) bool { return b.kind == k })
}

// DatasetPattern is the dataset folder depth the template implies: its
// segments before "**" as "*" globs ("{instrument}/{run_id}/**" -> "*/*");
// "" when the template has no "**".
func (p *Profile) DatasetPattern() string {
	i := slices.Index(p.Template.segs, "**")
	if i < 0 {
		return ""
	}
	segs := make([]string, i)
	for j := range segs {
		segs[j] = "*"
	}
	return strings.Join(segs, "/")
}

// Source is one file metadata was read from.
type Source struct {
	File    string    `json:"file"` // slash path relative to the dataset folder ("." for the path)
	Kind    string    `json:"kind"` // "path", "runinfo", "runparameters", "samplesheet", "sidecar"
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	Fields  []string  `json:"fields"` // top-level dotted paths it gave, e.g. "runinfo.flowcell"
}

// Capture is what was read from where.
type Capture struct {
	Doc      map[string]any // JSON values only: map[string]any, []any, string, json.Number, bool, nil
	Sources  []Source
	Findings []Finding // reader failures: Kind "invalid", Message with FILE:LINE
}

// MaxSourceSize bounds a metadata source file (a reader or a sidecar); a
// larger one is not read and is a finding.
const MaxSourceSize = 4 << 20

// Capture reads the metadata of the dataset folder dir (absolute) whose
// path relative to the watch root is rel (slash-separated). A source that
// is absent is not a finding (the schema says what is required); one that
// cannot be read or parsed is, and gives nothing to the document. A nil
// profile captures nothing.
func (p *Profile) Capture(dir, rel string) *Capture {
	c := &Capture{Doc: map[string]any{}}
	if p == nil {
		return c
	}
	rel = strings.Trim(strings.ReplaceAll(rel, "\\", "/"), "/")
	if fields, ok := p.Template.Match(rel); ok {
		pf := map[string]any{}
		var names []string
		for k, v := range fields {
			pf[k] = v
			names = append(names, "path."+k)
		}
		slices.Sort(names)
		src := Source{File: ".", Kind: "path", Fields: names}
		if fi, err := os.Stat(dir); err == nil {
			src.ModTime = fi.ModTime()
		}
		if len(pf) > 0 {
			c.Doc["path"] = pf
		}
		c.Sources = append(c.Sources, src)
	} else {
		c.Findings = append(c.Findings, Finding{Kind: "invalid", Field: "path",
			Expected: fmt.Sprintf("a path matching %q", p.Template.String()), Found: valueText(rel),
			Message: fmt.Sprintf("dataset path %q does not match path_template %q", rel, p.Template.String())})
	}
	files := p.sourceFiles(dir)
	for _, f := range files {
		full := filepath.Join(dir, filepath.FromSlash(f.rel))
		src := Source{File: f.rel, Kind: f.kind, Size: f.size, ModTime: f.mtime}
		field := f.kind
		if f.kind == "sidecar" {
			field = "sidecars"
		}
		if f.size > MaxSourceSize {
			c.Findings = append(c.Findings, Finding{Kind: "invalid", Field: fieldOf(f),
				Message: fmt.Sprintf("%s: %v: %d bytes, over %d: not read", full, ErrTooLarge, f.size, MaxSourceSize)})
			c.Sources = append(c.Sources, src)
			continue
		}
		v, err := readSource(f.kind, full)
		if err != nil {
			c.Findings = append(c.Findings, Finding{Kind: "invalid", Field: fieldOf(f), Message: err.Error()})
			c.Sources = append(c.Sources, src)
			continue
		}
		jv, err := toJSON(v)
		if err != nil {
			c.Findings = append(c.Findings, Finding{Kind: "invalid", Field: fieldOf(f), Message: fmt.Sprintf("%s: %v", full, err)})
			c.Sources = append(c.Sources, src)
			continue
		}
		prefix := fieldOf(f)
		if obj, ok := jv.(map[string]any); ok {
			for k := range obj {
				var b strings.Builder
				b.WriteString(prefix)
				writeKey(&b, k)
				src.Fields = append(src.Fields, b.String())
			}
			slices.Sort(src.Fields)
		} else {
			src.Fields = []string{prefix}
		}
		if f.kind == "sidecar" {
			sc, _ := c.Doc[field].(map[string]any)
			if sc == nil {
				sc = map[string]any{}
				c.Doc[field] = sc
			}
			sc[f.rel] = jv
		} else {
			c.Doc[field] = jv
		}
		c.Sources = append(c.Sources, src)
	}
	return c
}

func fieldOf(f sourceFile) string {
	if f.kind != "sidecar" {
		return f.kind
	}
	var b strings.Builder
	b.WriteString("sidecars")
	writeKey(&b, f.rel)
	return b.String()
}

func readSource(kind, file string) (any, error) {
	switch kind {
	case "runinfo":
		return ReadRunInfo(file)
	case "runparameters":
		return ReadRunParameters(file)
	case "samplesheet":
		return ReadSampleSheet(file)
	default:
		return ReadSidecar(file)
	}
}

// toJSON turns reader output into plain JSON values (what the schema
// validator and the journal take).
func toJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return ParseJSONSidecar("", b)
}

type sourceFile struct {
	rel   string
	kind  string
	size  int64
	mtime time.Time
}

// sourceFiles lists the dataset's source files with a stat each: the
// built-in readers' files in its root, then sidecars (walked; symlinks not
// followed), sorted by path.
func (p *Profile) sourceFiles(dir string) []sourceFile {
	var out []sourceFile
	if len(p.readers) > 0 {
		ents, _ := os.ReadDir(dir)
		for _, k := range p.readers {
			name := ""
			want := builtins[kindOrder(k)].name
			for _, e := range ents {
				if !e.Type().IsRegular() || !strings.EqualFold(e.Name(), want) {
					continue
				}
				// The exact spelling wins over another case of it.
				if name == "" || e.Name() == want {
					name = e.Name()
				}
			}
			if name == "" {
				continue
			}
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				continue
			}
			out = append(out, sourceFile{rel: name, kind: k, size: fi.Size(), mtime: fi.ModTime()})
		}
	}
	if len(p.sidecars) == 0 {
		return out
	}
	var side []sourceFile
	_ = filepath.WalkDir(dir, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() && full != dir {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		r, err := filepath.Rel(dir, full)
		if err != nil {
			return nil
		}
		r = filepath.ToSlash(r)
		if p.sidecarPattern(r) == "" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil // gone since it was listed: not a source any more
		}
		side = append(side, sourceFile{rel: r, kind: "sidecar", size: fi.Size(), mtime: fi.ModTime()})
		return nil
	})
	slices.SortFunc(side, func(a, b sourceFile) int { return strings.Compare(a.rel, b.rel) })
	return append(out, side...)
}

// sidecarPattern returns the first sidecar pattern matching rel (a slash
// path relative to the dataset folder), or "".
func (p *Profile) sidecarPattern(rel string) string {
	base := path.Base(rel)
	for _, pat := range p.sidecars {
		target := rel
		if !strings.Contains(pat, "/") {
			target = base
		}
		if ok, _ := doublestar.Match(pat, target); ok {
			return pat
		}
	}
	return ""
}

// Fingerprint is a digest of the dataset's source files' names, sizes and
// modification times (stat only, no reads): it changes when a source file
// appears, disappears or changes. With sidecar patterns it walks the
// dataset's folders.
func (p *Profile) Fingerprint(dir, rel string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", strings.Trim(strings.ReplaceAll(rel, "\\", "/"), "/"))
	for _, f := range p.sourceFiles(dir) {
		fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\n", f.kind, f.rel, f.size, f.mtime.UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}
