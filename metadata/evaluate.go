package metadata

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Status is a dataset's validation_status.
type Status string

const (
	StatusValid   Status = "valid"
	StatusDrift   Status = "drift"
	StatusInvalid Status = "invalid"
	StatusNone    Status = "none"
)

// Finding is one problem with a dataset's metadata.
type Finding struct {
	Kind     string `json:"kind"`               // "invalid" or "drift"
	Field    string `json:"field"`              // dotted path in the document, e.g. samplesheet.BCLConvert_Data[2].Species
	Expected string `json:"expected,omitempty"` // what the schema requires, or the value seen before
	Found    string `json:"found,omitempty"`    // the value found (JSON), "nothing" when missing
	Message  string `json:"message,omitempty"`  // for people: the reader error with FILE:LINE, the kind of drift, the schema's message
}

// String is one line: "KIND FIELD: expected E, found F"; a drift finding
// adds its Message in parentheses; a finding without Expected and Found
// (a reader failure) is "KIND FIELD: MESSAGE".
func (f Finding) String() string {
	if f.Expected == "" && f.Found == "" {
		return fmt.Sprintf("%s %s: %s", f.Kind, f.Field, f.Message)
	}
	s := fmt.Sprintf("%s %s: expected %s, found %s", f.Kind, f.Field, f.Expected, f.Found)
	if f.Kind == "drift" && f.Message != "" {
		s += " (" + f.Message + ")"
	}
	return s
}

// Shape is what a watch has seen of its datasets' metadata: the baseline
// drift is measured against. It is JSON-serializable; its zero value (or
// nil) means "no dataset yet".
type Shape struct {
	// Fields: field path (array indexes collapsed to [], sidecar file names
	// to the pattern that matched them) -> kind and format: "string",
	// "string:date-iso", "string:date-yymmdd", "string:date-us", "integer",
	// "number", "boolean", "null", "object", "array" (several kinds in one
	// dataset: sorted and joined by "|").
	Fields map[string]string `json:"fields"`
	// Values: drift field -> its last value (strings as is, else JSON).
	Values map[string]string `json:"values"`
	// Terms: field path -> sorted term IDs seen there.
	Terms map[string][]string `json:"terms"`
	// Datasets is how many datasets this shape has merged.
	Datasets int `json:"datasets"`
	// Present: field path -> in how many of those datasets it was present.
	Present map[string]int `json:"present"`
}

// Result is the outcome of Evaluate.
type Result struct {
	Status        Status
	SchemaVersion string // Schema.Stamp(), "" without a schema
	Findings      []Finding
	Doc           map[string]any // the captured document, vocabulary values replaced by their term IDs
	Shape         Shape          // seen merged with this dataset: the new baseline once the lead accepts it
}

// Evaluate validates c against the profile's schema (if any) and compares
// its shape with seen (nil: the watch's first dataset, no drift).
//
// invalid: a reader failed or the schema rejects the document (one finding
// per failed keyword; per missing property for "required").
// drift (only when not invalid, and seen has at least one dataset):
//   - a new field: a path not in seen.Fields;
//   - a field gone: a path present in every dataset seen so far
//     (seen.Present[f] == seen.Datasets) and absent now. A field that was
//     ever missing is optional and its absence is not drift;
//   - a changed kind or format (e.g. a date from YYMMDD to ISO 8601);
//   - a changed value of a drift field (Expected the old value, Found the
//     new one); a drift field seen for the first time is not drift;
//   - a vocabulary term never seen for that field (once the field has
//     terms recorded).
//
// A new, gone or changed field is reported once: not again for the fields
// below it. valid otherwise. Status none only for a nil profile.
func (p *Profile) Evaluate(c *Capture, seen *Shape) Result {
	if p == nil {
		return Result{Status: StatusNone}
	}
	if c == nil {
		c = &Capture{}
	}
	res := Result{Status: StatusValid, SchemaVersion: p.Schema.Stamp()}
	res.Findings = append(res.Findings, c.Findings...)
	doc := c.Doc
	if doc == nil {
		doc = map[string]any{}
	}
	var hits []termHit
	if p.Schema != nil {
		var fs []Finding
		fs, hits = p.Schema.validate(doc)
		res.Findings = append(res.Findings, fs...)
	}
	res.Doc = normalizeTerms(doc, hits)

	cur := p.shapeOf(doc, hits)
	if len(res.Findings) > 0 {
		res.Status = StatusInvalid
	} else if seen != nil && seen.Datasets > 0 {
		if drift := p.drift(cur, seen); len(drift) > 0 {
			res.Status = StatusDrift
			res.Findings = drift
		}
	}
	res.Shape = merge(seen, cur)
	return res
}

// shape of one dataset
type dataShape struct {
	kinds  map[string]map[string]bool // field -> kinds (without format) and kinds with format
	values map[string]string
	terms  map[string][]string
	first  map[string]string // term field -> indexed path of each term's first use: key field+"\x00"+id
}

func (p *Profile) shapeOf(doc map[string]any, hits []termHit) *dataShape {
	s := &dataShape{kinds: map[string]map[string]bool{}, values: map[string]string{}, terms: map[string][]string{}, first: map[string]string{}}
	var walk func(path string, key string, v any)
	walk = func(path, key string, v any) {
		k := kindOf(key, v)
		if s.kinds[path] == nil {
			s.kinds[path] = map[string]bool{}
		}
		s.kinds[path][k] = true
		switch c := v.(type) {
		case map[string]any:
			for ck, cv := range c {
				var b strings.Builder
				b.WriteString(path)
				if path == "sidecars" {
					if pat := p.sidecarPattern(ck); pat != "" {
						ck = pat
					}
				}
				writeKey(&b, ck)
				walk(b.String(), ck, cv)
			}
		case []any:
			for _, e := range c {
				walk(path+"[]", key, e)
			}
		}
	}
	for k, v := range doc {
		var b strings.Builder
		writeKey(&b, k)
		walk(b.String(), k, v)
	}
	for _, f := range p.DriftFields {
		if v, ok := lookupPath(doc, f); ok {
			if str, isStr := v.(string); isStr {
				s.values[f] = str
			} else {
				s.values[f] = jsonText(v)
			}
		}
	}
	for _, h := range hits {
		f := collapsedPath(p, doc, h.loc)
		if !slices.Contains(s.terms[f], h.id) {
			s.terms[f] = append(s.terms[f], h.id)
			s.first[f+"\x00"+h.id] = fieldPath(doc, h.loc)
		}
	}
	for f := range s.terms {
		slices.Sort(s.terms[f])
	}
	return s
}

// fieldKinds reduces a field's kinds in one dataset to one string: an
// empty string or null alongside other kinds is not counted; strings with
// different formats (or some without) are "string".
func fieldKinds(ks map[string]bool) string {
	set := maps.Clone(ks)
	if len(set) > 1 {
		delete(set, "null")
	}
	if len(set) > 1 {
		delete(set, "string:empty")
	}
	strs := 0
	for k := range set {
		if strings.HasPrefix(k, "string") {
			strs++
		}
	}
	if strs > 1 {
		for k := range set {
			if strings.HasPrefix(k, "string") {
				delete(set, k)
			}
		}
		set["string"] = true
	}
	out := slices.Sorted(maps.Keys(set))
	for i, k := range out {
		if k == "string:empty" {
			out[i] = "string"
		}
	}
	return strings.Join(out, "|")
}

var (
	reISODate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$`)
	reYYMMDD  = regexp.MustCompile(`^\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$`)
	reUSDate  = regexp.MustCompile(`^\d{1,2}/\d{1,2}/\d{4}( \d{1,2}:\d{2}(:\d{2})?( [AP]M)?)?$`)
)

// kindOf is a value's kind and, for strings, its date format: ISO 8601
// ("2026-12-02", "2026-12-02T10:00:00Z"), US ("12/2/2026 10:00:00 AM",
// NovaSeq 6000), or YYMMDD ("261202", only in a field whose name contains
// "date", since six digits alone are as likely a number).
func kindOf(key string, v any) string {
	switch c := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		if _, err := strconv.ParseInt(c.String(), 10, 64); err == nil {
			return "integer"
		}
		return "number"
	case float64:
		if c == float64(int64(c)) {
			return "integer"
		}
		return "number"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		switch {
		case c == "":
			return "string:empty"
		case reISODate.MatchString(c):
			return "string:date-iso"
		case reUSDate.MatchString(c):
			return "string:date-us"
		case reYYMMDD.MatchString(c) && strings.Contains(strings.ToLower(key), "date"):
			return "string:date-yymmdd"
		}
		return "string"
	}
	return fmt.Sprintf("%T", v)
}

// lookupPath finds a dotted path (keys by ".", or ["key"]) in doc; it does
// not descend into arrays.
func lookupPath(doc map[string]any, p string) (any, bool) {
	var cur any = doc
	for _, k := range splitPath(p) {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func splitPath(p string) []string {
	var out []string
	for len(p) > 0 {
		if strings.HasPrefix(p, "[\"") {
			var k string
			dec := json.NewDecoder(strings.NewReader(p[1:]))
			if err := dec.Decode(&k); err != nil {
				return append(out, p)
			}
			out = append(out, k)
			p = strings.TrimPrefix(p[1+int(dec.InputOffset()):], "]")
			p = strings.TrimPrefix(p, ".")
			continue
		}
		i := strings.IndexAny(p, ".[")
		if i < 0 {
			return append(out, p)
		}
		out = append(out, p[:i])
		p = strings.TrimPrefix(p[i:], ".")
	}
	return out
}

// collapsedPath is fieldPath with indexes as [] and sidecar names as their
// pattern: the key Shape uses.
func collapsedPath(p *Profile, doc any, loc []string) string {
	var b strings.Builder
	cur := doc
	for i, tok := range loc {
		switch c := cur.(type) {
		case []any:
			b.WriteString("[]")
			n := -1
			fmt.Sscan(tok, &n)
			cur = nil
			if n >= 0 && n < len(c) {
				cur = c[n]
			}
			continue
		case map[string]any:
			cur = c[tok]
		default:
			cur = nil
		}
		if i == 1 && loc[0] == "sidecars" {
			if pat := p.sidecarPattern(tok); pat != "" {
				tok = pat
			}
		}
		writeKey(&b, tok)
	}
	return b.String()
}

// normalizeTerms copies doc with each resolved vocabulary value replaced
// by its term ID.
func normalizeTerms(doc map[string]any, hits []termHit) map[string]any {
	out, _ := deepCopy(doc).(map[string]any)
	for _, h := range hits {
		if len(h.loc) == 0 {
			continue
		}
		parent := valueAt(out, h.loc[:len(h.loc)-1])
		last := h.loc[len(h.loc)-1]
		switch c := parent.(type) {
		case map[string]any:
			if _, ok := c[last].(string); ok {
				c[last] = h.id
			}
		case []any:
			n := -1
			fmt.Sscan(last, &n)
			if n >= 0 && n < len(c) {
				if _, ok := c[n].(string); ok {
					c[n] = h.id
				}
			}
		}
	}
	return out
}

func deepCopy(v any) any {
	switch c := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(c))
		for k, e := range c {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(c))
		for i, e := range c {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}

// under reports whether field is below one of the paths in set.
func under(field string, set map[string]bool) bool {
	for f := range set {
		if strings.HasPrefix(field, f) && len(field) > len(f) && (field[len(f)] == '.' || field[len(f)] == '[') {
			return true
		}
	}
	return false
}

func (p *Profile) drift(cur *dataShape, seen *Shape) []Finding {
	var out []Finding
	now := map[string]string{}
	for f, ks := range cur.kinds {
		now[f] = fieldKinds(ks)
	}
	added, gone, changed := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for f, k := range now {
		if old, ok := seen.Fields[f]; ok && old != k {
			changed[f] = true
		}
	}
	for f := range now {
		if _, ok := seen.Fields[f]; !ok {
			added[f] = true
		}
	}
	for f := range seen.Fields {
		if _, ok := now[f]; !ok && seen.Present[f] >= seen.Datasets {
			gone[f] = true
		}
	}
	for _, f := range slices.Sorted(maps.Keys(added)) {
		if under(f, added) || under(f, changed) {
			continue
		}
		out = append(out, Finding{Kind: "drift", Field: f, Expected: "nothing", Found: now[f], Message: "a new field"})
	}
	for _, f := range slices.Sorted(maps.Keys(gone)) {
		if under(f, gone) || under(f, changed) {
			continue
		}
		out = append(out, Finding{Kind: "drift", Field: f, Expected: seen.Fields[f], Found: "nothing",
			Message: fmt.Sprintf("a field present in every dataset so far (%d) is gone", seen.Datasets)})
	}
	for _, f := range slices.Sorted(maps.Keys(changed)) {
		if under(f, changed) {
			continue
		}
		out = append(out, Finding{Kind: "drift", Field: f, Expected: seen.Fields[f], Found: now[f], Message: "a changed type or format"})
	}
	for _, f := range slices.Sorted(maps.Keys(cur.values)) {
		old, ok := seen.Values[f]
		if ok && old != cur.values[f] {
			msg := "a changed value"
			if strings.HasPrefix(f, "runparameters.") && slices.Contains(VersionFieldNames, strings.TrimPrefix(f, "runparameters.")) {
				msg = "a new instrument software or chemistry version"
			}
			out = append(out, Finding{Kind: "drift", Field: f, Expected: valueText(old), Found: valueText(cur.values[f]), Message: msg})
		}
	}
	for _, f := range slices.Sorted(maps.Keys(cur.terms)) {
		known, ok := seen.Terms[f]
		if !ok {
			continue
		}
		for _, id := range cur.terms[f] {
			if slices.Contains(known, id) {
				continue
			}
			exp := "one of " + strings.Join(known, ", ")
			if len(known) > 10 {
				exp = fmt.Sprintf("one of the %d terms seen before", len(known))
			}
			out = append(out, Finding{Kind: "drift", Field: cur.first[f+"\x00"+id], Expected: exp, Found: id,
				Message: "a term never seen for this field"})
		}
	}
	return out
}

// merge is seen with one more dataset: its kinds, values and terms win,
// fields it lacks keep their last kind.
func merge(seen *Shape, cur *dataShape) Shape {
	out := Shape{Fields: map[string]string{}, Values: map[string]string{}, Terms: map[string][]string{}, Present: map[string]int{}}
	if seen != nil {
		maps.Copy(out.Fields, seen.Fields)
		maps.Copy(out.Values, seen.Values)
		for f, ts := range seen.Terms {
			out.Terms[f] = slices.Clone(ts)
		}
		maps.Copy(out.Present, seen.Present)
		out.Datasets = seen.Datasets
	}
	out.Datasets++
	for f, ks := range cur.kinds {
		out.Fields[f] = fieldKinds(ks)
		out.Present[f]++
	}
	maps.Copy(out.Values, cur.values)
	for f, ts := range cur.terms {
		for _, t := range ts {
			if !slices.Contains(out.Terms[f], t) {
				out.Terms[f] = append(out.Terms[f], t)
			}
		}
		slices.Sort(out.Terms[f])
	}
	return out
}
