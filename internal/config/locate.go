package config

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// locator finds the line of a key, since toml.MetaData has no positions.
type locator struct {
	lines []string
}

func newLocator(data []byte) *locator {
	var l locator
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l.lines = append(l.lines, sc.Text())
	}
	return &l
}

var headerRE = regexp.MustCompile(`^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?`)
var keyRE = regexp.MustCompile(`^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_\-.]+)\s*=`)

func normTable(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

// scan calls fn for every key line with its table name and array index.
func (l *locator) scan(fn func(line int, table string, index int, key string, header bool) bool) {
	table, counts, index := "", map[string]int{}, 0
	for i, s := range l.lines {
		if m := headerRE.FindStringSubmatch(s); m != nil {
			table = normTable(m[2])
			index = 0
			if m[1] == "[[" {
				index = counts[table]
				counts[table]++
			}
			if fn(i+1, table, index, "", true) {
				return
			}
			continue
		}
		if m := keyRE.FindStringSubmatch(s); m != nil {
			if fn(i+1, table, index, normTable(m[1]), false) {
				return
			}
		}
	}
}

// line is the line of key in table (or of the table header when the key is
// absent), 0 when neither is found.
func (l *locator) line(table, key string) int {
	found, header := 0, 0
	l.scan(func(line int, t string, _ int, k string, isHeader bool) bool {
		switch {
		case isHeader && t == table && header == 0:
			header = line
		case !isHeader && t == table && k == key:
			found = line
			return true
		}
		return false
	})
	if found > 0 {
		return found
	}
	// A dotted key at top level or in a parent table: upload.retry.attempts.
	l.scan(func(line int, t string, _ int, k string, isHeader bool) bool {
		full := k
		if t != "" {
			full = t + "." + k
		}
		if !isHeader && full == table+"."+key {
			found = line
			return true
		}
		return false
	})
	if found > 0 {
		return found
	}
	return header
}

func (l *locator) table(table string) int { return l.line(table, "\x00") }

// arrayLine is the line of key in the index-th [[table]] (its header when
// key is "" or absent).
func (l *locator) arrayLine(table string, index int, key string) int {
	found, header := 0, 0
	l.scan(func(line int, t string, i int, k string, isHeader bool) bool {
		if t != table || i != index {
			return false
		}
		if isHeader {
			header = line
			return key == ""
		}
		if k == key {
			found = line
			return true
		}
		return false
	})
	if found > 0 {
		return found
	}
	return header
}

// keyLine locates an undecoded key reported by toml.MetaData and names it
// as the user wrote it ("watch[2].setle").
func (l *locator) keyLine(k toml.Key) (int, string) {
	if len(k) == 0 {
		return 0, ""
	}
	// [[watch]] keys come without an index: find the first occurrence.
	if k[0] == "watch" && len(k) >= 2 {
		found, index := 0, 0
		rest := strings.Join(k[1:], ".")
		l.scan(func(line int, t string, i int, key string, isHeader bool) bool {
			if !isHeader && t == "watch" && key == rest {
				found, index = line, i
				return true
			}
			return false
		})
		return found, fmt.Sprintf("watch[%d].%s", index+1, rest)
	}
	return l.line(strings.Join(k[:len(k)-1], "."), k[len(k)-1]), k.String()
}
