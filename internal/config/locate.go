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

// first is the first line that match accepts (given its table, its index
// among the [[table]]s, its key, and whether it is a table header), 0 when
// none does.
func (l *locator) first(match func(table string, index int, key string, header bool) bool) int {
	found := 0
	l.scan(func(line int, t string, i int, k string, header bool) bool {
		if match(t, i, k, header) {
			found = line
			return true
		}
		return false
	})
	return found
}

// line is the line of key in table (or of the table header when the key is
// absent), 0 when neither is found.
func (l *locator) line(table, key string) int {
	if n := l.first(func(t string, _ int, k string, header bool) bool { return !header && t == table && k == key }); n > 0 {
		return n
	}
	// A dotted key at top level or in a parent table: upload.retry.attempts.
	dotted := func(t string, _ int, k string, header bool) bool {
		if t != "" {
			k = t + "." + k
		}
		return !header && k == table+"."+key
	}
	if n := l.first(dotted); n > 0 {
		return n
	}
	return l.first(func(t string, _ int, _ string, header bool) bool { return header && t == table })
}

func (l *locator) table(table string) int { return l.line(table, "\x00") }

// arrayLine is the line of key in the index-th [[table]] (its header when
// key is "" or absent).
func (l *locator) arrayLine(table string, index int, key string) int {
	if key != "" {
		if n := l.first(func(t string, i int, k string, header bool) bool {
			return !header && t == table && i == index && k == key
		}); n > 0 {
			return n
		}
	}
	return l.first(func(t string, i int, _ string, header bool) bool { return header && t == table && i == index })
}

// keyLine locates an undecoded key reported by toml.MetaData and names it
// as the user wrote it ("watch[2].setle").
func (l *locator) keyLine(k toml.Key) (int, string) {
	if len(k) == 0 {
		return 0, ""
	}
	// [[watch]] and [[notify]] keys come without an index: find the first
	// occurrence.
	if (k[0] == "watch" || k[0] == "notify") && len(k) >= 2 {
		table := k[0]
		found, index := 0, 0
		rest := strings.Join(k[1:], ".")
		l.scan(func(line int, t string, i int, key string, isHeader bool) bool {
			if !isHeader && t == table && key == rest {
				found, index = line, i
				return true
			}
			return false
		})
		return found, fmt.Sprintf("%s[%d].%s", table, index+1, rest)
	}
	return l.line(strings.Join(k[:len(k)-1], "."), k[len(k)-1]), k.String()
}

// arrayKey says whether key is written in the index-th [[table]].
func (l *locator) arrayKey(table string, index int, key string) bool {
	return l.first(func(t string, i int, k string, header bool) bool {
		return !header && t == table && i == index && k == key
	}) > 0
}
