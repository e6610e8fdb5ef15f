package metadata

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
)

// SampleSheet is an Illumina SampleSheet.csv, v1 (IEM) or v2 (BCL Convert),
// as a map of section name to content:
//   - "[Data]" and "[*_Data]" sections: []map[string]string, one map per
//     row keyed by the section's header row (missing trailing cells are "");
//   - a [Reads] section whose every row has a single cell (v1): []string;
//   - other sections: map[string]string of key to value.
type SampleSheet map[string]any

// Version returns 2 when [Header] has FileFormatVersion 2, else 1.
func (s SampleSheet) Version() int {
	if h, ok := s["Header"].(map[string]string); ok && h["FileFormatVersion"] == "2" {
		return 2
	}
	return 1
}

// ReadSampleSheet reads and parses a SampleSheet.csv file.
func ReadSampleSheet(file string) (SampleSheet, error) {
	b, err := readBounded(file)
	if err != nil {
		return nil, err
	}
	return ParseSampleSheet(file, b)
}

type ssRow struct {
	cells []string
	line  int
}

// ParseSampleSheet parses SampleSheet.csv content strictly: quoted fields,
// CRLF, a BOM, blank lines and Excel's trailing empty cells are accepted; a
// row before the first section, a repeated section, a repeated key or
// column, a key/value row with more than two cells, and a data row with
// more cells than its header are errors with the line.
func ParseSampleSheet(file string, b []byte) (SampleSheet, error) {
	r := csv.NewReader(bytes.NewReader(stripBOM(b)))
	r.FieldsPerRecord = -1
	r.ReuseRecord = false
	type section struct {
		name string
		line int
		rows []ssRow
	}
	var secs []*section
	seen := map[string]int{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fileErr(file, pe.Line, "malformed CSV: %v", pe.Err)
			}
			return nil, fileErr(file, 0, "%v", err)
		}
		line, _ := r.FieldPos(0)
		for len(rec) > 0 && strings.TrimSpace(rec[len(rec)-1]) == "" {
			rec = rec[:len(rec)-1]
		}
		if len(rec) == 0 {
			continue
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if first := rec[0]; strings.HasPrefix(first, "[") {
			if !strings.HasSuffix(first, "]") || len(first) < 3 || len(rec) > 1 {
				return nil, fileErr(file, line, "bad section header %q", strings.Join(rec, ","))
			}
			name := first[1 : len(first)-1]
			if prev, dup := seen[name]; dup {
				return nil, fileErr(file, line, "section [%s] repeated (first at line %d)", name, prev)
			}
			seen[name] = line
			secs = append(secs, &section{name: name, line: line})
			continue
		}
		if len(secs) == 0 {
			return nil, fileErr(file, line, "row before the first [Section]")
		}
		s := secs[len(secs)-1]
		s.rows = append(s.rows, ssRow{cells: rec, line: line})
	}
	if len(secs) == 0 {
		return nil, fileErr(file, 0, "no [Section] found; not a sample sheet")
	}
	out := SampleSheet{}
	for _, s := range secs {
		switch {
		case s.name == "Data" || strings.HasSuffix(s.name, "_Data"):
			rows, err := dataSection(file, s.name, s.line, s.rows)
			if err != nil {
				return nil, err
			}
			out[s.name] = rows
		case s.name == "Reads" && len(s.rows) > 0 && allSingle(s.rows):
			vals := make([]string, len(s.rows))
			for i, r := range s.rows {
				vals[i] = r.cells[0]
			}
			out[s.name] = vals
		default:
			kv := map[string]string{}
			keyLine := map[string]int{}
			for _, r := range s.rows {
				if len(r.cells) > 2 {
					return nil, fileErr(file, r.line, "[%s]: key/value row has %d cells, want 2", s.name, len(r.cells))
				}
				k := r.cells[0]
				if k == "" {
					return nil, fileErr(file, r.line, "[%s]: empty key", s.name)
				}
				if prev, dup := keyLine[k]; dup {
					return nil, fileErr(file, r.line, "[%s]: duplicate key %q (first at line %d)", s.name, k, prev)
				}
				keyLine[k] = r.line
				v := ""
				if len(r.cells) == 2 {
					v = r.cells[1]
				}
				kv[k] = v
			}
			out[s.name] = kv
		}
	}
	return out, nil
}

func allSingle(rows []ssRow) bool {
	for _, r := range rows {
		if len(r.cells) != 1 {
			return false
		}
	}
	return true
}

func dataSection(file, name string, line int, rows []ssRow) ([]map[string]string, error) {
	if len(rows) == 0 {
		return nil, fileErr(file, line, "[%s]: no header row", name)
	}
	hdr := rows[0]
	cols := map[string]bool{}
	for i, c := range hdr.cells {
		if c == "" {
			return nil, fileErr(file, hdr.line, "[%s]: header column %d is empty", name, i+1)
		}
		if cols[c] {
			return nil, fileErr(file, hdr.line, "[%s]: duplicate column %q", name, c)
		}
		cols[c] = true
	}
	out := []map[string]string{}
	for _, r := range rows[1:] {
		if len(r.cells) > len(hdr.cells) {
			return nil, fileErr(file, r.line, "[%s]: row has %d cells, header has %d columns", name, len(r.cells), len(hdr.cells))
		}
		m := make(map[string]string, len(hdr.cells))
		for i, c := range hdr.cells {
			if i < len(r.cells) {
				m[c] = r.cells[i]
			} else {
				m[c] = ""
			}
		}
		out = append(out, m)
	}
	return out, nil
}
