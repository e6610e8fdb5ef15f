package config

import (
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// canonical is p cleaned, absolute and with its symlinks resolved as far
// as the path exists (the part that does not exist yet is kept as
// written), folded to lower case on Windows, where names are
// case-insensitive: two paths that name the same place compare equal.
func canonical(p string) string {
	if p == "" {
		return ""
	}
	p, err := filepath.Abs(p)
	if err != nil {
		return ""
	}
	p = filepath.Clean(p)
	rest := ""
	for cur := p; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			p = filepath.Join(r, rest)
			break
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			break
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
	if runtime.GOOS == "windows" {
		p = strings.ToLower(p)
	}
	return p
}

// within says whether path is dir or inside it (both canonical).
func within(path, dir string) bool {
	if path == "" || dir == "" {
		return false
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// watched says whether path (canonical) is in what a watch of root
// (canonical) sees: root or anything under it, or only root and its
// direct entries when the watch is not recursive.
func watched(path, root string, recursive bool) bool {
	if recursive || !within(path, root) {
		return within(path, root)
	}
	return path == root || filepath.Dir(path) == root
}

// validateOverlaps refuses the configurations that lose or duplicate
// data: an fs target inside a watched folder (ferry writes into what it
// watches), a watch inside an fs target, nested watches that send the
// same files to the same target and prefix (each file stored twice), and
// a watched folder that holds the journal or the log.
func (c *Config) validateOverlaps(v *checker) {
	type watch struct {
		i    int
		root string
	}
	var watches []watch
	for i, w := range c.Watch {
		if root := canonical(w.Path); root != "" && w.Path != "" {
			watches = append(watches, watch{i, root})
		}
	}
	line := func(i int, k string) int { return v.loc.arrayLine("watch", i, k) }
	tbl := func(i int) string { return "watch[" + strconv.Itoa(i+1) + "]" }
	journal, log := canonical(c.Journal.Path), canonical(c.Log.File)
	for _, w := range watches {
		cw := c.Watch[w.i]
		rec := cw.Recursive == nil || *cw.Recursive
		if watched(journal, w.root, rec) {
			v.bad(line(w.i, "path"), tbl(w.i)+".path", "the watched folder %s holds the journal %s: ferry would upload its own journal as it changes; move [journal] path out of it", cw.Path, c.Journal.Path)
		}
		if watched(log, w.root, rec) {
			v.bad(line(w.i, "path"), tbl(w.i)+".path", "the watched folder %s holds the log %s: ferry would upload its own log as it grows; move [log] file out of it", cw.Path, c.Log.File)
		}
		for _, name := range sortedTargets(c) {
			t := c.Target[name]
			if t.Type != "fs" || t.Path == "" {
				continue
			}
			tp := canonical(t.Path)
			switch {
			case tp == w.root || (rec && within(tp, w.root)):
				v.bad(v.loc.line("target."+name, "path"), "target."+name+".path", "the target folder %s is inside the watched folder %s (watch[%d]): ferry would write _ferry/ and the uploads into what it watches; choose a folder outside every watch", t.Path, cw.Path, w.i+1)
			case within(w.root, tp):
				v.bad(line(w.i, "path"), tbl(w.i)+".path", "the watched folder %s is inside the target folder %s (target.%s): ferry would upload what it wrote; choose a folder outside every target", cw.Path, t.Path, name)
			}
		}
	}
	for a, wa := range watches {
		for _, wb := range watches[a+1:] {
			outer, inner := wa, wb
			if !within(inner.root, outer.root) || inner.root == outer.root {
				outer, inner = wb, wa
				if !within(inner.root, outer.root) || inner.root == outer.root {
					continue // unrelated (the same folder twice is reported by validateWatch)
				}
			}
			co, ci := c.Watch[outer.i], c.Watch[inner.i]
			if co.Target != ci.Target || (co.Recursive != nil && !*co.Recursive && filepath.Dir(inner.root) != outer.root) {
				continue // different target, or the outer watch does not go down there
			}
			v.bad(line(inner.i, "path"), tbl(inner.i)+".path", "the watched folder %s is inside watch[%d] (%s), and both send to target %q with the same prefix: every file would be stored twice; remove one of the two watches, or send them to different targets", ci.Path, outer.i+1, co.Path, ci.Target)
		}
	}
}

func sortedTargets(c *Config) []string {
	return slices.Sorted(maps.Keys(c.Target))
}
