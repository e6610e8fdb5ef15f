package watcher

import (
	"encoding/binary"
	"hash/maphash"
	"io/fs"
	"strings"

	"github.com/ferry-data/ferry/internal/srcfile"
)

// snapshot is what a polling watch saw of each file at its last round:
// a fingerprint of its version (size, mtime, identity) by folder and
// name. A round stats every file and compares it with the snapshot: a
// file unchanged since it was last looked at is left alone (neither the
// settle machinery nor the journal hears of it); a new or changed one is
// observed, and the journal asked about it (Known) when the settle
// machinery does not track it already.
//
// The snapshot is a cache of the answer "nothing to do for this version":
// an entry is there only for a version that was known (Known said so),
// is pending, or was reported. A pending version the watcher forgets
// (vanished, dropped with its folder) is forgotten here too, so a version
// coming back is looked at again; a miss costs a Known call, never a file.
//
// It holds no strings per file: a million files cost about 16 bytes each
// (a name hash and a version fingerprint, 64 bits each, in the folder's
// map) rather than their paths. A fingerprint that matched a changed
// version by chance (one in 2^64) would leave that change unseen until
// the file changes again; two names of one folder with the same hash
// share an entry and are asked about again each round, never skipped.
type snapshot struct {
	dirs map[string]*snapDir // by folder, relative and slash-separated ("" the root)
	gen  uint32              // the complete round in progress
	seed maphash.Seed
}

// snapDir is a folder's files as the last round saw them: version
// fingerprint by name hash.
type snapDir struct {
	files map[uint64]uint64
	gen   uint32 // the last complete round that listed the folder
}

func newSnapshot() *snapshot {
	return &snapshot{dirs: map[string]*snapDir{}, seed: maphash.MakeSeed()}
}

// splitRel is a relative path's folder and name.
func splitRel(rel string) (dir, name string) {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i], rel[i+1:]
	}
	return "", rel
}

func (s *snapshot) name(name string) uint64 { return maphash.String(s.seed, name) }

// version is the fingerprint of a version: its size, mtime and, where a
// listing tells it (listingHasID), its identity. Where it does not
// (Windows), size and mtime decide, and a change there is looked at
// with a full stat.
func (s *snapshot) version(st srcfile.Stat) uint64 {
	var b [32]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(st.Size))
	binary.LittleEndian.PutUint64(b[8:], uint64(st.ModTime.UnixNano()))
	if listingHasID {
		binary.LittleEndian.PutUint64(b[16:], st.ID.Volume)
		binary.LittleEndian.PutUint64(b[24:], st.ID.Index)
	}
	return maphash.Bytes(s.seed, b[:])
}

// same reports whether rel was seen at st.
func (s *snapshot) same(rel string, st srcfile.Stat) bool {
	dir, name := splitRel(rel)
	d := s.dirs[dir]
	if d == nil {
		return false
	}
	v, ok := d.files[s.name(name)]
	return ok && v == s.version(st)
}

// sameEntry is same for a listed entry, from what the listing says of it
// (DirEntry.Info: on Windows the listing's own size and mtime, no call
// per file, so a round over a share costs no open per unchanged file; on
// Unix one lstat, with the identity).
func (s *snapshot) sameEntry(rel string, e fs.DirEntry) bool {
	info, err := e.Info()
	if err != nil {
		return false
	}
	st, idKnown := quickStat(info)
	if listingHasID && !idKnown {
		return false // looked at with a full stat
	}
	return s.same(rel, st)
}

// put records rel at st.
func (s *snapshot) put(rel string, st srcfile.Stat) {
	dir, name := splitRel(rel)
	d := s.dirs[dir]
	if d == nil {
		// dir is a slice of the listed path: kept alone, not the path.
		d = &snapDir{files: map[uint64]uint64{}, gen: s.gen}
		s.dirs[strings.Clone(dir)] = d
	}
	d.files[s.name(name)] = s.version(st)
}

func (s *snapshot) forget(rel string) {
	dir, name := splitRel(rel)
	if d := s.dirs[dir]; d != nil {
		delete(d.files, s.name(name))
	}
}

// listed tells the snapshot the regular files a folder holds now (its
// listing, read in full): files no longer there are forgotten, and in a
// complete round the folder is marked seen.
func (s *snapshot) listed(dir string, entries []fs.DirEntry) {
	d := s.dirs[dir]
	if d == nil {
		return
	}
	d.gen = s.gen
	if len(d.files) == 0 {
		return
	}
	present := 0
	for _, e := range entries {
		if e.Type().IsRegular() {
			if _, ok := d.files[s.name(e.Name())]; ok {
				present++
			}
		}
	}
	if present == len(d.files) {
		return // nothing gone (the common case)
	}
	here := make(map[uint64]struct{}, len(entries))
	for _, e := range entries {
		if e.Type().IsRegular() {
			here[s.name(e.Name())] = struct{}{}
		}
	}
	for h := range d.files {
		if _, ok := here[h]; !ok {
			delete(d.files, h)
		}
	}
}

// begin starts a complete round.
func (s *snapshot) begin() { s.gen++ }

// end ends a complete round: folders not listed in it (gone, or not
// readable) are forgotten with their files.
func (s *snapshot) end() {
	for dir, d := range s.dirs {
		if d.gen != s.gen || len(d.files) == 0 {
			delete(s.dirs, dir)
		}
	}
}

func (s *snapshot) reset() { clear(s.dirs) }

// len is the number of files in the snapshot.
func (s *snapshot) len() int {
	n := 0
	for _, d := range s.dirs {
		n += len(d.files)
	}
	return n
}
