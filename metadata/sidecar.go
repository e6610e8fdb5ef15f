package metadata

import (
	"bytes"
	"encoding/json"
	"errors"

	"io"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
	yamlLine   = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)
)

// yamlParserProblems are the problems yaml.v3's parser (not its scanner)
// reports; for those it prints a 0-based line.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// yamlErrLine is the 1-based line of a yaml.v3 syntax error. yaml.v3 gives
// it only in the message text ("yaml: line N: problem"), 0-based for parser
// problems and 1-based for scanner ones; 0 when it names none.
func yamlErrLine(err error, b []byte) int {
	n := yamlErrLineRaw(err)
	// At the end of input yaml.v3 may name the line after the last one.
	last := max(bytes.Count(b, []byte("\n")), bytes.Count(b, []byte("\r"))) + 1
	return min(n, last)
}

func yamlErrLineRaw(err error) int {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		if p, ok := strings.CutPrefix(err.Error(), "yaml: "); ok && yamlParserProblems[p] {
			return 1
		}
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	if yamlParserProblems[m[2]] {
		n++
	}
	return n
}

// maxYAMLNodes bounds alias expansion in YAML sidecars (billion laughs).
const maxYAMLNodes = 100000

// ReadSidecar reads a JSON (.json) or YAML (.yaml, .yml) sidecar and returns
// its content as JSON values (map[string]any, []any, string, json.Number,
// bool, nil).
func ReadSidecar(file string) (any, error) {
	b, err := readBounded(file)
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(filepath.Ext(file)) {
	case ".json":
		return ParseJSONSidecar(file, b)
	case ".yaml", ".yml":
		return ParseYAMLSidecar(file, b)
	}
	return nil, fileErr(file, 0, "sidecar must end in .json, .yaml or .yml")
}

// ParseJSONSidecar parses one JSON value; trailing data is an error.
func ParseJSONSidecar(file string, b []byte) (any, error) {
	b = stripBOM(b)
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fileErr(file, lineAt(b, se.Offset), "malformed JSON: %v", err)
		}
		// Truncated input: the last line with content.
		return nil, fileErr(file, lineAt(b, int64(len(bytes.TrimRight(b, " \t\r\n")))), "malformed JSON: %v", err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, fileErr(file, lineAt(b, d.InputOffset()), "trailing data after the JSON value")
	}
	return v, nil
}

// ParseYAMLSidecar parses a single YAML document into JSON values. Anchors
// and aliases are expanded (bounded); mapping keys must be strings; values
// JSON cannot hold (.inf, .nan, binary) are errors with their line.
func ParseYAMLSidecar(file string, b []byte) (any, error) {
	d := yaml.NewDecoder(bytes.NewReader(stripBOM(b)))
	var n yaml.Node
	if err := d.Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fileErr(file, yamlErrLine(err, b), "malformed YAML: %v", err)
	}
	var extra yaml.Node
	if err := d.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			line = yamlErrLine(err, b)
		}
		return nil, fileErr(file, line, "more than one YAML document")
	}
	budget := maxYAMLNodes
	return yamlToJSON(file, &n, &budget, 0)
}

func yamlToJSON(file string, n *yaml.Node, budget *int, depth int) (any, error) {
	*budget--
	if *budget < 0 {
		return nil, fileErr(file, n.Line, "YAML expands to more than %d nodes (alias bomb?)", maxYAMLNodes)
	}
	if depth > 200 {
		return nil, fileErr(file, n.Line, "YAML nested too deeply")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return yamlToJSON(file, n.Content[0], budget, depth+1)
	case yaml.AliasNode:
		return yamlToJSON(file, n.Alias, budget, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlToJSON(file, c, budget, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.AliasNode {
				k = k.Alias
			}
			if k.Tag == "!!merge" {
				return nil, fileErr(file, k.Line, "YAML merge keys (<<) are not supported")
			}
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				return nil, fileErr(file, k.Line, "mapping key %q is %s, want a string", k.Value, strings.TrimPrefix(k.ShortTag(), "!!"))
			}
			if _, dup := out[k.Value]; dup {
				return nil, fileErr(file, k.Line, "duplicate key %q", k.Value)
			}
			val, err := yamlToJSON(file, v, budget, depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = val
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var v bool
			if err := n.Decode(&v); err != nil {
				return nil, fileErr(file, n.Line, "%v", err)
			}
			return v, nil
		case "!!int", "!!float":
			if jsonNumber.MatchString(n.Value) {
				return json.Number(n.Value), nil // exact, however long
			}
		}
		switch n.ShortTag() {
		case "!!int":
			var v int64
			if err := n.Decode(&v); err != nil {
				return nil, fileErr(file, n.Line, "integer %q: %v", n.Value, err)
			}
			return json.Number(strconv.FormatInt(v, 10)), nil
		case "!!float":
			var v float64
			if err := n.Decode(&v); err != nil {
				return nil, fileErr(file, n.Line, "number %q: %v", n.Value, err)
			}
			if math.IsInf(v, 0) || math.IsNaN(v) {
				return nil, fileErr(file, n.Line, "%q is not a JSON number", n.Value)
			}
			return json.Number(strconv.FormatFloat(v, 'g', -1, 64)), nil
		case "!!str", "!!timestamp":
			return n.Value, nil
		default:
			return nil, fileErr(file, n.Line, "YAML tag %s has no JSON equivalent", n.ShortTag())
		}
	}
	return nil, fileErr(file, n.Line, "unsupported YAML node")
}
