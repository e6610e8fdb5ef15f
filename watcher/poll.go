package watcher

import (
	"io/fs"
	"strings"

	"github.com/ferry-data/ferry/internal/srcfile"
)

// snapshot is what a polling watch saw of each file at its last round:
// (size, mtime, identity) by relative path. A round stats every file and
// compares it with the snapshot: a file unchanged since it was last
// looked at is left alone (neither the settle machinery nor the journal
// hears of it); a new or changed one is observed, and the journal asked
// about it (Known) when the settle machinery does not track it already.
//
// The snapshot is a cache of the answer "nothing to do for this version":
// an entry is there only for a version that was known (Known said so),
// is pending, or was reported. A pending version the watcher forgets
// (vanished, dropped with its folder) is forgotten here too, so a version
// coming back is looked at again; a miss costs a Known call, never a file.
type snapshot struct {
	files map[string]snapEntry
	gen   uint32 // the round in progress; entries not seen in it are gone
}

// snapEntry is one file as the last round saw it; compact and free of
// pointers (the garbage collector does not scan the map's values).
type snapEntry struct {
	size  int64
	mtime int64 // UnixNano
	id    srcfile.ID
	gen   uint32
}

func newSnapshot() *snapshot { return &snapshot{files: map[string]snapEntry{}} }

// same reports whether rel was seen at st, and marks it seen in this round.
func (s *snapshot) same(rel string, st srcfile.Stat) bool {
	e, ok := s.files[rel]
	if !ok || e.size != st.Size || e.mtime != st.ModTime.UnixNano() || e.id != st.ID {
		return false
	}
	if e.gen != s.gen {
		e.gen = s.gen
		s.files[rel] = e
	}
	return true
}

// sameEntry is same for a listed entry, from what the listing says of it
// (DirEntry.Info: on Windows the listing's own size and mtime, no call
// per file, so a round over a share costs no open per unchanged file; on
// Unix one lstat, with the identity). Where the listing has no identity
// (Windows), size and mtime decide; a change there is looked at with a
// full stat.
func (s *snapshot) sameEntry(rel string, e fs.DirEntry) bool {
	info, err := e.Info()
	if err != nil {
		return false
	}
	st, idKnown := quickStat(info)
	if idKnown {
		return s.same(rel, st)
	}
	old, ok := s.files[rel]
	if !ok || old.size != st.Size || old.mtime != st.ModTime.UnixNano() {
		return false
	}
	st.ID = old.id
	return s.same(rel, st)
}

// put records rel at st, seen in this round.
func (s *snapshot) put(rel string, st srcfile.Stat) {
	if _, ok := s.files[rel]; !ok {
		// rel is a slice of the listed path: kept alone, not the path.
		rel = strings.Clone(rel)
	}
	s.files[rel] = snapEntry{size: st.Size, mtime: st.ModTime.UnixNano(), id: st.ID, gen: s.gen}
}

func (s *snapshot) forget(rel string) { delete(s.files, rel) }

// begin starts a complete round.
func (s *snapshot) begin() { s.gen++ }

// end ends a complete round: files not seen in it are gone.
func (s *snapshot) end() {
	for rel, e := range s.files {
		if e.gen != s.gen {
			delete(s.files, rel)
		}
	}
}

func (s *snapshot) reset() { clear(s.files) }
