package metadata

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// The keywords ferry adds to JSON Schema.
const (
	KeywordVocabulary = "x-ferry-vocabulary"
	KeywordUnder      = "x-ferry-under"
)

const draft2020 = "https://json-schema.org/draft/2020-12/schema"

// Schema is a compiled JSON Schema (draft 2020-12) with ferry's
// vocabulary keywords.
type Schema struct {
	Path    string
	ID      string // $id; may be ""
	Version string // the top-level "version" (a string or number), else ""
	SHA256  string // hex of the file's bytes
	Raw     []byte

	doc      any // Raw parsed, for the requirement of a failed keyword
	compiled *jsonschema.Schema
	mu       sync.Mutex // serializes validations: rec is per validation
	rec      *termRecorder
}

// termRecorder collects, during one validation, the vocabulary values that
// resolved to a term: their instance location and term ID.
type termRecorder struct {
	hits []termHit
}

type termHit struct {
	loc []string
	id  string
}

// CompileSchema reads and compiles a schema file. Errors: malformed JSON
// (FILE:LINE), a $schema other than draft 2020-12, an x-ferry-vocabulary
// naming no vocabulary in vocabs, an x-ferry-under naming no term of it,
// and anything the JSON Schema compiler refuses. "format" is asserted.
func CompileSchema(path string, vocabs map[string]*Vocabulary) (*Schema, error) {
	raw, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	doc, err := ParseJSONSidecar(path, raw)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	s := &Schema{Path: path, SHA256: hex.EncodeToString(sum[:]), Raw: raw, doc: doc}
	if obj, ok := doc.(map[string]any); ok {
		if v, ok := obj["$schema"]; ok {
			if str, _ := v.(string); strings.TrimSuffix(str, "#") != draft2020 {
				return nil, fileErr(path, lineOfKey(raw, "$schema"), "$schema %v: ferry supports only %s", jsonText(v), draft2020)
			}
		}
		if id, ok := obj["$id"].(string); ok {
			s.ID = id
		}
		switch v := obj["version"].(type) {
		case string:
			s.Version = v
		case json.Number:
			s.Version = v.String()
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.AssertVocabs()
	c.RegisterVocabulary(s.vocabulary(vocabs))
	if err := c.AddResource(abs, doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sch, err := c.Compile(abs)
	if err != nil {
		var ke *keywordError
		if errors.As(err, &ke) {
			return nil, fileErr(path, lineOfValue(raw, ke.keyword, ke.value), "%s", ke.msg)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.compiled = sch
	return s, nil
}

// keywordError is a bad ferry keyword, found while compiling.
type keywordError struct {
	keyword, value, msg string
}

func (e *keywordError) Error() string { return e.msg }

// lineOfKey finds the line of the first `"key"` in raw (0 if absent).
func lineOfKey(raw []byte, key string) int {
	q, _ := json.Marshal(key)
	if i := bytes.Index(raw, q); i >= 0 {
		return lineAt(raw, int64(i))
	}
	return 0
}

// lineOfValue finds the line of `"keyword": "value"` (whitespace allowed).
func lineOfValue(raw []byte, keyword, value string) int {
	k, _ := json.Marshal(keyword)
	v, _ := json.Marshal(value)
	off := 0
	for {
		i := bytes.Index(raw[off:], k)
		if i < 0 {
			return lineOfKey(raw, keyword)
		}
		rest := bytes.TrimLeft(raw[off+i+len(k):], " \t\r\n")
		if bytes.HasPrefix(rest, []byte(":")) && bytes.HasPrefix(bytes.TrimLeft(rest[1:], " \t\r\n"), v) {
			return lineAt(raw, int64(off+i))
		}
		off += i + len(k)
	}
}

func (s *Schema) vocabulary(vocabs map[string]*Vocabulary) *jsonschema.Vocabulary {
	return &jsonschema.Vocabulary{
		URL: "https://ferry-data.github.io/vocab/ontology",
		Compile: func(_ *jsonschema.CompilerContext, obj map[string]any) (jsonschema.SchemaExt, error) {
			nv, hasV := obj[KeywordVocabulary]
			nu, hasU := obj[KeywordUnder]
			if !hasV && !hasU {
				return nil, nil
			}
			name, ok := nv.(string)
			if !hasV || !ok {
				if hasU {
					return nil, &keywordError{KeywordUnder, fmt.Sprint(nu), fmt.Sprintf("%s without a %s naming its vocabulary", KeywordUnder, KeywordVocabulary)}
				}
				return nil, &keywordError{KeywordVocabulary, "", fmt.Sprintf("%s: want a vocabulary name (a string), found %s", KeywordVocabulary, jsonText(nv))}
			}
			v := vocabs[name]
			if v == nil {
				return nil, &keywordError{KeywordVocabulary, name, fmt.Sprintf("%s %q: no such vocabulary (registered: %s)", KeywordVocabulary, name, vocabNames(vocabs))}
			}
			ext := &vocabExt{s: s, v: v}
			if hasU {
				u, ok := nu.(string)
				if !ok {
					return nil, &keywordError{KeywordUnder, "", fmt.Sprintf("%s: want a term ID (a string), found %s", KeywordUnder, jsonText(nu))}
				}
				t, found := v.Term(u)
				if !found {
					return nil, &keywordError{KeywordUnder, u, fmt.Sprintf("%s %q: no such term in vocabulary %s (%s)", KeywordUnder, u, name, v.Path)}
				}
				ext.under = t.ID
			}
			return ext, nil
		},
	}
}

func vocabNames(vocabs map[string]*Vocabulary) string {
	var names []string
	for n := range vocabs {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "none"
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// vocabExt checks x-ferry-vocabulary / x-ferry-under on one value.
type vocabExt struct {
	s     *Schema
	v     *Vocabulary
	under string
}

func (e *vocabExt) Validate(ctx *jsonschema.ValidatorContext, val any) {
	str, ok := val.(string)
	if !ok {
		ctx.AddError(&vocabError{e: e, found: val, why: "not a string"})
		return
	}
	t, amb := e.v.resolve(str)
	switch {
	case t == nil:
		ctx.AddError(&vocabError{e: e, found: val, why: fmt.Sprintf("not a term of %s", e.v.Name)})
	case len(amb) > 0:
		ctx.AddError(&vocabError{e: e, found: val, why: fmt.Sprintf("ambiguous: names %s", strings.Join(amb, ", "))})
	case e.under != "" && !e.v.Under(t.ID, e.under):
		u, _ := e.v.Term(e.under)
		ctx.AddError(&vocabError{e: e, found: val, under: true, why: fmt.Sprintf("%s (%s) is not under %s (%s)", t.ID, t.Label, u.ID, u.Label)})
	default:
		if e.s.rec != nil {
			e.s.rec.hits = append(e.s.rec.hits, termHit{loc: slices.Clone(ctx.ValueLocation()), id: t.ID})
		}
	}
}

// vocabError is the ErrorKind of a value outside its vocabulary or branch.
type vocabError struct {
	e     *vocabExt
	found any
	under bool
	why   string
}

func (k *vocabError) KeywordPath() []string {
	if k.under {
		return []string{KeywordUnder}
	}
	return []string{KeywordVocabulary}
}

func (k *vocabError) LocalizedString(p *message.Printer) string { return p.Sprintf("%s", k.why) }

func (k *vocabError) expected() string {
	if k.e.under != "" {
		return fmt.Sprintf("a term of %s under %s", k.e.v.Name, k.e.under)
	}
	return fmt.Sprintf("a term of %s", k.e.v.Name)
}

// Stamp is the schema_version ferry records: the $id, "@", and the first
// 12 hex digits of the file's SHA-256 (only those without an $id). It is
// ASCII (S3 user metadata): bytes outside printable ASCII in the $id are
// %-escaped.
func (s *Schema) Stamp() string {
	if s == nil {
		return ""
	}
	h := s.SHA256
	if len(h) > 12 {
		h = h[:12]
	}
	if s.ID == "" {
		return h
	}
	var b strings.Builder
	for i := 0; i < len(s.ID); i++ {
		c := s.ID[i]
		if c < 0x21 || c > 0x7e || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String() + "@" + h
}

var printer = message.NewPrinter(language.English)

// validate checks doc (JSON values) and returns the schema's findings and
// the vocabulary values that resolved to terms.
func (s *Schema) validate(doc any) ([]Finding, []termHit) {
	s.mu.Lock()
	rec := &termRecorder{}
	s.rec = rec
	err := s.compiled.Validate(doc)
	s.rec = nil
	s.mu.Unlock()
	if err == nil {
		return nil, rec.hits
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Finding{{Kind: "invalid", Field: "", Message: err.Error()}}, rec.hits
	}
	var out []Finding
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		out = append(out, s.findings(doc, e)...)
	}
	walk(ve)
	// Hits inside a failed branch (anyOf) may repeat a finding's location:
	// keep the hits, they only normalize values that are terms.
	return out, rec.hits
}

func (s *Schema) findings(doc any, e *jsonschema.ValidationError) []Finding {
	msg := e.ErrorKind.LocalizedString(printer)
	loc := e.InstanceLocation
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		var out []Finding
		for _, m := range k.Missing {
			out = append(out, Finding{Kind: "invalid", Field: fieldPath(doc, append(slices.Clone(loc), m)),
				Expected: "a value (required)", Found: "nothing", Message: msg})
		}
		return out
	case *kind.AdditionalProperties:
		var out []Finding
		for _, p := range k.Properties {
			l := append(slices.Clone(loc), p)
			out = append(out, Finding{Kind: "invalid", Field: fieldPath(doc, l),
				Expected: "no such property (additionalProperties)", Found: valueText(valueAt(doc, l)), Message: msg})
		}
		return out
	case *vocabError:
		return []Finding{{Kind: "invalid", Field: fieldPath(doc, loc), Expected: k.expected(), Found: valueText(k.found), Message: k.why}}
	case *kind.FalseSchema:
		return []Finding{{Kind: "invalid", Field: fieldPath(doc, loc), Expected: "nothing here (false schema)", Found: valueText(valueAt(doc, loc)), Message: msg}}
	}
	exp := msg
	if kw := e.ErrorKind.KeywordPath(); len(kw) == 1 {
		if want, ok := s.keywordValue(e.SchemaURL, kw[0]); ok {
			exp = kw[0] + " " + valueText(want)
		}
	}
	return []Finding{{Kind: "invalid", Field: fieldPath(doc, loc), Expected: exp, Found: valueText(valueAt(doc, loc)), Message: msg}}
}

// keywordValue finds keyword's value in the schema object at schemaURL
// when that is in this schema's own file.
func (s *Schema) keywordValue(schemaURL, keyword string) (any, bool) {
	_, frag, _ := strings.Cut(schemaURL, "#")
	frag, err := url.PathUnescape(frag)
	if err != nil {
		return nil, false
	}
	cur := s.doc
	if frag != "" {
		for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			switch c := cur.(type) {
			case map[string]any:
				cur = c[tok]
			case []any:
				i := -1
				fmt.Sscan(tok, &i)
				if i < 0 || i >= len(c) {
					return nil, false
				}
				cur = c[i]
			default:
				return nil, false
			}
		}
	}
	obj, ok := cur.(map[string]any)
	if !ok {
		return nil, false
	}
	v, ok := obj[keyword]
	return v, ok
}

// valueAt walks doc along a JSON Schema instance location.
func valueAt(doc any, loc []string) any {
	cur := doc
	for _, tok := range loc {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[tok]
		case []any:
			i := -1
			fmt.Sscan(tok, &i)
			if i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// fieldPath renders an instance location as the dotted path findings use:
// keys joined by ".", array indexes as [N], and keys that are not simple
// names (e.g. a sidecar's file name) as ["key"].
func fieldPath(doc any, loc []string) string {
	var b strings.Builder
	cur := doc
	for _, tok := range loc {
		switch c := cur.(type) {
		case []any:
			b.WriteString("[" + tok + "]")
			i := -1
			fmt.Sscan(tok, &i)
			if i >= 0 && i < len(c) {
				cur = c[i]
			} else {
				cur = nil
			}
			continue
		case map[string]any:
			cur = c[tok]
		default:
			cur = nil
		}
		writeKey(&b, tok)
	}
	return b.String()
}

func writeKey(b *strings.Builder, k string) {
	if simpleKey(k) {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(k)
		return
	}
	q, _ := json.Marshal(k)
	b.WriteString("[" + string(q) + "]")
}

func simpleKey(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		switch {
		case c == '_' || c == '-' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'):
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// valueText renders a value for a finding: compact JSON, at most 120 bytes.
func valueText(v any) string {
	s := jsonText(v)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// DiffSchema lists, for people, how schema new differs from old (nil: no
// previous schema) as JSON pointers: "added /p", "removed /p", "changed
// /p: OLD -> NEW" (arrays and scalars compared whole); at most 50 lines and
// a count of the rest. A file that is not JSON is compared as text.
func DiffSchema(old, new []byte) []string {
	var o, n any
	if old != nil {
		if err := json.Unmarshal(old, &o); err != nil {
			return []string{"previous schema is not JSON: " + err.Error()}
		}
	} else {
		o = map[string]any{}
	}
	if err := json.Unmarshal(new, &n); err != nil {
		return []string{"schema is not JSON: " + err.Error()}
	}
	var out []string
	diffJSON("", o, n, &out)
	return capLines(out)
}

func diffJSON(ptr string, o, n any, out *[]string) {
	om, ok1 := o.(map[string]any)
	nm, ok2 := n.(map[string]any)
	if ok1 && ok2 {
		keys := map[string]bool{}
		for k := range om {
			keys[k] = true
		}
		for k := range nm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		slices.Sort(sorted)
		for _, k := range sorted {
			p := ptr + "/" + strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
			ov, inO := om[k]
			nv, inN := nm[k]
			switch {
			case !inO:
				*out = append(*out, "added "+p+scalarSuffix(nv))
			case !inN:
				*out = append(*out, "removed "+p)
			default:
				diffJSON(p, ov, nv, out)
			}
		}
		return
	}
	if jsonText(o) != jsonText(n) {
		p := ptr
		if p == "" {
			p = "/"
		}
		*out = append(*out, fmt.Sprintf("changed %s: %s -> %s", p, valueText(o), valueText(n)))
	}
}

func scalarSuffix(v any) string {
	switch v.(type) {
	case map[string]any:
		return ""
	}
	return ": " + valueText(v)
}
