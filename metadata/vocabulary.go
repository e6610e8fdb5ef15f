package metadata

import (
	"bufio"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// MaxVocabularySize bounds a vocabulary file. Vocabularies are streamed
// (never read whole), so this only refuses absurd inputs.
const MaxVocabularySize = 1 << 30

// maxVocabLine bounds one line of an OBO or CSV vocabulary.
const maxVocabLine = 1 << 20

// Term is one term of a controlled vocabulary.
type Term struct {
	ID       string
	Label    string
	Synonyms []string
	Parents  []string // direct is_a parents, by ID
}

// Vocabulary is a registered controlled vocabulary: an OBO 1.4 ontology or
// a CSV list of terms. Obsolete OBO terms (is_obsolete: true) are kept only
// to name them in DiffVocabulary: Lookup does not find them and Len does
// not count them.
type Vocabulary struct {
	Name   string
	Path   string
	SHA256 string // hex of the file's bytes

	terms    map[string]*Term    // by ID, live terms
	obsolete map[string]*Term    // by ID
	byLabel  map[string][]string // folded label -> IDs
	byExact  map[string][]string // folded EXACT synonym (and CSV synonyms) -> IDs
	byOther  map[string][]string // folded NARROW/BROAD/RELATED synonym -> IDs
	nonExact map[string]bool     // ID + "\x00" + synonym: not an EXACT synonym
}

// LoadVocabulary reads an OBO (.obo) or CSV (.csv) vocabulary. Errors name
// FILE:LINE. A term's is_a parents that the file does not define are kept
// as IDs (ontologies import terms from others); a cycle of is_a among the
// file's terms is an error.
func LoadVocabulary(name, path string) (*Vocabulary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vocabulary %s: %w", name, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > MaxVocabularySize {
		return nil, &FileError{File: path, Msg: fmt.Sprintf("%v: over %d bytes", ErrTooLarge, MaxVocabularySize), Err: ErrTooLarge}
	}
	h := sha256.New()
	r := io.TeeReader(io.LimitReader(f, MaxVocabularySize+1), h)
	v := &Vocabulary{Name: name, Path: path, terms: map[string]*Term{}, obsolete: map[string]*Term{}, nonExact: map[string]bool{}}
	lines := map[string]int{} // ID -> line of its definition
	switch strings.ToLower(filepath.Ext(path)) {
	case ".obo":
		err = v.readOBO(path, r, lines)
	case ".csv":
		err = v.readCSV(path, r, lines)
	default:
		return nil, fmt.Errorf("vocabulary %s: %s: want an .obo or .csv file", name, path)
	}
	if err != nil {
		return nil, err
	}
	// Drain what the parser did not read so the hash covers the file.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	v.SHA256 = hex.EncodeToString(h.Sum(nil))
	if err := v.checkCycles(path, lines); err != nil {
		return nil, err
	}
	v.index()
	return v, nil
}

func (v *Vocabulary) add(file string, line int, t *Term, obsolete bool, lines map[string]int) error {
	if t.ID == "" {
		return fileErr(file, line, "term has no id")
	}
	if prev, dup := lines[t.ID]; dup {
		return fileErr(file, line, "term %s defined twice (first at line %d)", t.ID, prev)
	}
	lines[t.ID] = line
	if obsolete {
		v.obsolete[t.ID] = t
		return nil
	}
	v.terms[t.ID] = t
	return nil
}

func (v *Vocabulary) readOBO(file string, r io.Reader, lines map[string]int) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxVocabLine)
	var cur *Term
	var curLine int
	var curObsolete, inTerm bool
	flush := func() error {
		if cur == nil {
			return nil
		}
		t := cur
		cur = nil
		return v.add(file, curLine, t, curObsolete, lines)
	}
	ln := 0
	for sc.Scan() {
		ln++
		s := strings.TrimSpace(sc.Text())
		if ln == 1 {
			s = strings.TrimPrefix(s, "\ufeff")
		}
		if s == "" || strings.HasPrefix(s, "!") {
			continue
		}
		if strings.HasPrefix(s, "[") {
			if !strings.HasSuffix(s, "]") {
				return fileErr(file, ln, "bad stanza header %q", s)
			}
			if err := flush(); err != nil {
				return err
			}
			inTerm = s == "[Term]"
			if inTerm {
				cur, curLine, curObsolete = &Term{}, ln, false
			}
			continue
		}
		tag, val, ok := strings.Cut(s, ":")
		if !ok {
			return fileErr(file, ln, "want \"tag: value\", found %q", s)
		}
		if !inTerm {
			continue // header and [Typedef]/[Instance] stanzas
		}
		tag, val = strings.TrimSpace(tag), strings.TrimSpace(val)
		if tag != "id" && cur.ID == "" {
			return fileErr(file, ln, "%s: before the term's id (id must come first)", tag)
		}
		switch tag {
		case "id":
			if cur.ID != "" {
				return fileErr(file, ln, "term has a second id %q", val)
			}
			cur.ID = stripOBOComment(val)
			if cur.ID == "" || strings.ContainsAny(cur.ID, " \t") {
				return fileErr(file, ln, "bad term id %q", val)
			}
		case "name":
			if cur.Label != "" {
				return fileErr(file, ln, "term %s has a second name", cur.ID)
			}
			cur.Label = unescapeOBO(stripOBOComment(val))
		case "synonym":
			text, scope, err := parseOBOSynonym(val)
			if err != nil {
				return fileErr(file, ln, "synonym: %v", err)
			}
			if scope != "EXACT" {
				v.nonExact[cur.ID+"\x00"+text] = true
			}
			cur.Synonyms = append(cur.Synonyms, text)
		case "is_a":
			p := stripOBOComment(val)
			if i := strings.IndexAny(p, " \t{"); i >= 0 {
				p = p[:i] // qualifiers: is_a: X {source="..."}
			}
			if p == "" {
				return fileErr(file, ln, "is_a without a term id")
			}
			cur.Parents = append(cur.Parents, p)
		case "is_obsolete":
			switch stripOBOComment(val) {
			case "true":
				curObsolete = true
			case "false":
			default:
				return fileErr(file, ln, "is_obsolete: want true or false, found %q", val)
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fileErr(file, ln+1, "line longer than %d bytes", maxVocabLine)
		}
		return fmt.Errorf("%s: %w", file, err)
	}
	return flush()
}

// stripOBOComment drops a trailing "! comment" (outside quotes) and spaces.
func stripOBOComment(s string) string {
	inQ, esc := false, false
	for i, c := range s {
		switch {
		case esc:
			esc = false
		case c == '\\':
			esc = true
		case c == '"':
			inQ = !inQ
		case c == '!' && !inQ:
			return strings.TrimSpace(s[:i])
		}
	}
	return strings.TrimSpace(s)
}

func unescapeOBO(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	esc := false
	for _, c := range s {
		if esc {
			switch c {
			case 'n':
				b.WriteByte(' ')
			case 't':
				b.WriteByte(' ')
			default:
				b.WriteRune(c)
			}
			esc = false
			continue
		}
		if c == '\\' {
			esc = true
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// parseOBOSynonym parses `"text" SCOPE [TYPE] [xrefs]`.
func parseOBOSynonym(s string) (text, scope string, err error) {
	if !strings.HasPrefix(s, "\"") {
		return "", "", fmt.Errorf("want a quoted text, found %q", s)
	}
	end := -1
	esc := false
	for i := 1; i < len(s); i++ {
		switch {
		case esc:
			esc = false
		case s[i] == '\\':
			esc = true
		case s[i] == '"':
			end = i
		}
		if end >= 0 {
			break
		}
	}
	if end < 0 {
		return "", "", fmt.Errorf("unterminated quote in %q", s)
	}
	text = unescapeOBO(s[1:end])
	rest := strings.Fields(stripOBOComment(s[end+1:]))
	if len(rest) == 0 {
		return "", "", fmt.Errorf("%q has no scope (EXACT, NARROW, BROAD or RELATED)", s)
	}
	scope = rest[0]
	switch scope {
	case "EXACT", "NARROW", "BROAD", "RELATED":
	default:
		return "", "", fmt.Errorf("scope %q: want EXACT, NARROW, BROAD or RELATED", scope)
	}
	if !strings.HasSuffix(strings.TrimSpace(stripOBOComment(s[end+1:])), "]") {
		return "", "", fmt.Errorf("%q has no [xrefs] list", s)
	}
	return text, scope, nil
}

func (v *Vocabulary) readCSV(file string, r io.Reader, lines map[string]int) error {
	cr := csv.NewReader(bufio.NewReaderSize(r, 64<<10))
	cr.ReuseRecord = false
	hdr, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fileErr(file, 1, "empty file: want a header id,label,synonyms")
		}
		return csvErr(file, err)
	}
	if len(hdr) > 0 {
		hdr[0] = strings.TrimPrefix(hdr[0], "\ufeff")
	}
	want := []string{"id", "label", "synonyms"}
	ok := len(hdr) == 3 || (len(hdr) == 4 && strings.EqualFold(strings.TrimSpace(hdr[3]), "parents"))
	for i := 0; ok && i < 3; i++ {
		ok = strings.EqualFold(strings.TrimSpace(hdr[i]), want[i])
	}
	if !ok {
		return fileErr(file, 1, "header %q: want id,label,synonyms (and optionally parents)", strings.Join(hdr, ","))
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return csvErr(file, err)
		}
		ln, _ := cr.FieldPos(0)
		t := &Term{ID: strings.TrimSpace(rec[0]), Label: strings.TrimSpace(rec[1])}
		if t.Label == "" {
			return fileErr(file, ln, "term %q has no label", t.ID)
		}
		t.Synonyms = splitBar(rec[2])
		if len(rec) == 4 {
			t.Parents = splitBar(rec[3])
		}
		if err := v.add(file, ln, t, false, lines); err != nil {
			return err
		}
	}
}

func csvErr(file string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fileErr(file, pe.Line, "%v", pe.Err)
	}
	return fmt.Errorf("%s: %w", file, err)
}

func splitBar(s string) []string {
	var out []string
	for _, p := range strings.Split(s, "|") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// checkCycles refuses an is_a cycle among the file's terms.
func (v *Vocabulary) checkCycles(file string, lines map[string]int) error {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var visit func(id string, path []string) error
	visit = func(id string, path []string) error {
		switch color[id] {
		case grey:
			i := slices.Index(path, id)
			return fileErr(file, lines[id], "is_a cycle: %s", strings.Join(append(slices.Clone(path[i:]), id), " -> "))
		case black:
			return nil
		}
		t := v.terms[id]
		if t == nil {
			return nil
		}
		color[id] = grey
		for _, p := range t.Parents {
			if err := visit(p, append(path, id)); err != nil {
				return err
			}
		}
		color[id] = black
		return nil
	}
	ids := make([]string, 0, len(v.terms))
	for id := range v.terms {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := visit(id, nil); err != nil {
			return err
		}
	}
	return nil
}

func fold(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

func (v *Vocabulary) index() {
	v.byLabel, v.byExact, v.byOther = map[string][]string{}, map[string][]string{}, map[string][]string{}
	put := func(m map[string][]string, k, id string) {
		k = fold(k)
		if k != "" && !slices.Contains(m[k], id) {
			m[k] = append(m[k], id)
		}
	}
	for _, t := range v.terms {
		put(v.byLabel, t.Label, t.ID)
		for _, s := range t.Synonyms {
			if v.nonExact[t.ID+"\x00"+s] {
				put(v.byOther, s, t.ID)
			} else {
				put(v.byExact, s, t.ID)
			}
		}
	}
	for _, m := range []map[string][]string{v.byLabel, v.byExact, v.byOther} {
		for _, ids := range m {
			slices.Sort(ids)
		}
	}
}

// Len is the number of live (not obsolete) terms.
func (v *Vocabulary) Len() int { return len(v.terms) }

// Lookup finds the term a value names: its ID (exact), else its label,
// else an EXACT synonym (CSV synonyms count as EXACT), else a NARROW,
// BROAD or RELATED synonym; labels and synonyms match case-insensitively
// with spaces trimmed and runs of spaces folded. A value that names two
// terms at the first level where it matches is ambiguous: not found.
func (v *Vocabulary) Lookup(value string) (Term, bool) {
	t, amb := v.resolve(value)
	if t == nil || len(amb) > 0 {
		return Term{}, false
	}
	return *t, true
}

// resolve is Lookup that also says which terms an ambiguous value names.
func (v *Vocabulary) resolve(value string) (*Term, []string) {
	if v == nil {
		return nil, nil
	}
	if t := v.terms[strings.TrimSpace(value)]; t != nil {
		return t, nil
	}
	k := fold(value)
	for _, m := range []map[string][]string{v.byLabel, v.byExact, v.byOther} {
		switch ids := m[k]; len(ids) {
		case 0:
			continue
		case 1:
			return v.terms[ids[0]], nil
		default:
			return v.terms[ids[0]], ids
		}
	}
	return nil, nil
}

// Term returns the live term with this exact ID.
func (v *Vocabulary) Term(id string) (Term, bool) {
	t := v.terms[id]
	if t == nil {
		return Term{}, false
	}
	return *t, true
}

// Under reports whether term id is ancestor or one of its descendants by
// is_a (transitively). A term counts as under itself, so "x-ferry-under":
// "NCBITaxon:40674" admits Mammalia as well as every mammal.
func (v *Vocabulary) Under(id, ancestor string) bool {
	if id == ancestor {
		return v.terms[id] != nil
	}
	seen := map[string]bool{}
	stack := []string{id}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		t := v.terms[cur]
		if t == nil || seen[cur] {
			continue
		}
		seen[cur] = true
		for _, p := range t.Parents {
			if p == ancestor {
				return true
			}
			stack = append(stack, p)
		}
	}
	return false
}

// maxDiffLines bounds DiffVocabulary and DiffSchema.
const maxDiffLines = 50

func capLines(lines []string) []string {
	if len(lines) <= maxDiffLines {
		return lines
	}
	n := len(lines) - maxDiffLines
	return append(lines[:maxDiffLines:maxDiffLines], fmt.Sprintf("... and %d more", n))
}

// DiffVocabulary lists, for people, how new differs from old (nil: an
// empty vocabulary): terms added, removed or made obsolete, and changed
// labels, synonyms and parents, by term ID; at most 50 lines and a count
// of the rest.
func DiffVocabulary(old, new *Vocabulary) []string {
	if old == nil {
		old = &Vocabulary{}
	}
	if new == nil {
		new = &Vocabulary{}
	}
	ids := map[string]bool{}
	for id := range old.terms {
		ids[id] = true
	}
	for id := range new.terms {
		ids[id] = true
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	var out []string
	for _, id := range sorted {
		o, n := old.terms[id], new.terms[id]
		switch {
		case o == nil:
			out = append(out, fmt.Sprintf("added term %s (%s)", id, n.Label))
		case n == nil:
			if _, obs := new.obsolete[id]; obs {
				out = append(out, fmt.Sprintf("obsoleted term %s (%s)", id, o.Label))
			} else {
				out = append(out, fmt.Sprintf("removed term %s (%s)", id, o.Label))
			}
		default:
			if o.Label != n.Label {
				out = append(out, fmt.Sprintf("label of %s: %s -> %s", id, o.Label, n.Label))
			}
			if !sameSet(o.Parents, n.Parents) {
				out = append(out, fmt.Sprintf("parents of %s: %s -> %s", id, listOrNone(o.Parents), listOrNone(n.Parents)))
			}
			if !sameSet(o.Synonyms, n.Synonyms) {
				out = append(out, fmt.Sprintf("synonyms of %s: %s -> %s", id, listOrNone(o.Synonyms), listOrNone(n.Synonyms)))
			}
		}
	}
	return capLines(out)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return strings.Join(s, ", ")
}
