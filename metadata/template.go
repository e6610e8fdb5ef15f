package metadata

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Template is a parsed path_template such as "{instrument}/{run_id}/**".
// A segment "{name}" captures exactly one path segment into field name;
// any other segment is a doublestar pattern ("*", "**", "run_*", literal).
// Fields may not share a segment with other text.
type Template struct {
	src    string
	segs   []string // patterns; field segments are "*"
	fields []string // per segment: the field name, or ""
}

var fieldName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseTemplate parses a path template; errors name the template and the
// offending segment.
func ParseTemplate(s string) (*Template, error) {
	if s == "" {
		return nil, fmt.Errorf("path_template: empty")
	}
	if strings.HasPrefix(s, "/") || strings.Contains(s, "\\") {
		return nil, fmt.Errorf("path_template %q: must be relative with / separators", s)
	}
	t := &Template{src: s}
	seen := map[string]bool{}
	for i, seg := range strings.Split(s, "/") {
		if seg == "" {
			return nil, fmt.Errorf("path_template %q: empty segment %d", s, i+1)
		}
		if strings.ContainsAny(seg, "{}") {
			if !strings.HasPrefix(seg, "{") || !strings.HasSuffix(seg, "}") || strings.Count(seg, "{") != 1 || strings.Count(seg, "}") != 1 {
				return nil, fmt.Errorf("path_template %q: segment %q: a field must be a whole segment like {name}", s, seg)
			}
			name := seg[1 : len(seg)-1]
			if !fieldName.MatchString(name) {
				return nil, fmt.Errorf("path_template %q: segment %q: field name must match [A-Za-z_][A-Za-z0-9_]*", s, seg)
			}
			if seen[name] {
				return nil, fmt.Errorf("path_template %q: field {%s} appears twice", s, name)
			}
			seen[name] = true
			t.segs = append(t.segs, "*")
			t.fields = append(t.fields, name)
			continue
		}
		if !doublestar.ValidatePattern(seg) {
			return nil, fmt.Errorf("path_template %q: segment %q is not a valid glob", s, seg)
		}
		t.segs = append(t.segs, seg)
		t.fields = append(t.fields, "")
	}
	return t, nil
}

func (t *Template) String() string { return t.src }

// Fields lists the template's field names in order.
func (t *Template) Fields() []string {
	var out []string
	for _, f := range t.fields {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Match matches rel (a path relative to the watch root, / or OS separators)
// against the template and returns its fields. ok is false when it does not
// match. "**" may match zero or more segments.
func (t *Template) Match(rel string) (fields map[string]string, ok bool) {
	rel = path.Clean(strings.ReplaceAll(rel, "\\", "/"))
	if strings.HasPrefix(rel, "../") || rel == ".." || strings.HasPrefix(rel, "/") {
		return nil, false
	}
	var segs []string // the watch root itself: no segment
	if rel != "." {
		segs = strings.Split(rel, "/")
	}
	fields = map[string]string{}
	if !t.match(t.segs, t.fields, segs, fields) {
		return nil, false
	}
	return fields, true
}

func (t *Template) match(pats, names, segs []string, out map[string]string) bool {
	if len(pats) == 0 {
		return len(segs) == 0
	}
	if pats[0] == "**" {
		for k := 0; k <= len(segs); k++ {
			if t.match(pats[1:], names[1:], segs[k:], out) {
				return true
			}
		}
		return false
	}
	if len(segs) == 0 {
		return false
	}
	ok, err := doublestar.Match(pats[0], segs[0])
	if err != nil || !ok {
		return false
	}
	if names[0] != "" {
		out[names[0]] = segs[0]
	}
	if t.match(pats[1:], names[1:], segs[1:], out) {
		return true
	}
	if names[0] != "" {
		delete(out, names[0])
	}
	return false
}
