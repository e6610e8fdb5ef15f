package fssink

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// SweepTemp removes the temporary files this host's puts left in the
// target (a kill during a put): the files of its own folder under TempDir,
// nothing else. It must run before this host's first put (the daemon calls
// it at start); it returns how many it removed.
func (s *Sink) SweepTemp() (int, error) {
	ents, err := os.ReadDir(s.tmp)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), TempPrefix) {
			continue
		}
		if err := os.Remove(filepath.Join(s.tmp, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Ledger is what the journal knows of a target, for Migrate to tell
// ferry's files of the earlier layout from a source's.
type Ledger interface {
	// Sent calls fn for every key and content SHA-256 (lowercase hex)
	// that ferry sent to the target.
	Sent(ctx context.Context, fn func(key, sha256 string) error) error
	// SourceKeys returns, among the keys of source files the journal
	// holds for the target (sent or not), those that end in ".sha256" or
	// hold ".ferry-tmp-": names an earlier layout's own files could take.
	SourceKeys(ctx context.Context) (map[string]bool, error)
}

// Migration is what Migrate did.
type Migration struct {
	// Done: the archive was in the current layout already (LayoutFile).
	Done bool
	// Moved sidecars, from KEY.sha256 to SumsDir/KEY; Kept: files of a
	// sidecar's name and form left where they are afterwards (a source's,
	// or not proven ferry's).
	Moved, Kept int
	// Temps: temporary files of the earlier layout removed.
	Temps int
}

// Migrate brings an archive written by an earlier ferry (layout 1: the
// sidecar of KEY at KEY.sha256, temporary files .ferry-tmp-<digits> beside
// the objects) into the current layout, touching only what it can prove is
// ferry's:
//
//   - KEY.sha256 is moved to SumsDir/KEY when ferry sent content H under
//     KEY (the ledger) and the file holds exactly the line ferry wrote for
//     it ("H  <base of KEY>\n"), and when no source file of the journal has
//     the name KEY.sha256. When SumsDir/KEY exists already (written since),
//     the old one is removed.
//   - A file named .ferry-tmp-<digits> whose key is no source file's is
//     removed.
//
// Everything else stays as it is (Stat still reads an old sidecar left
// beside its object). When it is done it writes LayoutFile, and a later
// call returns at once. It may run beside puts: a sidecar is moved only
// where none exists, so a newer one always wins.
func (s *Sink) Migrate(ctx context.Context, l Ledger) (Migration, error) {
	var m Migration
	marker := filepath.Join(s.root, filepath.FromSlash(LayoutFile))
	if b, err := os.ReadFile(marker); err == nil && strings.TrimSpace(string(b)) == Layout {
		m.Done = true
		return m, nil
	}
	sources, err := l.SourceKeys(ctx)
	if err != nil {
		return m, err
	}
	err = l.Sent(ctx, func(key, sum string) error {
		if Own(key) {
			return nil
		}
		p, err := s.path(key)
		if err != nil {
			return nil
		}
		old := p + LegacySidecarSuffix
		b, err := os.ReadFile(old)
		if err != nil || parseLegacy(string(b), path.Base(key)) != sum {
			return nil // none, or not the one this content's upload wrote
		}
		if sources[key+LegacySidecarSuffix] {
			return nil // a source's name: never touched (counted as kept below)
		}
		moved, err := s.adopt(old, key, sum)
		if err != nil {
			return err
		}
		if moved {
			m.Moved++
		}
		return ctx.Err()
	})
	if err != nil {
		return m, err
	}
	err = filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if key != "." && Own(key+"/x") {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case d.Type().IsRegular() && legacyTemp(d.Name()) && !sources[key]:
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			m.Temps++
		case d.Type().IsRegular() && strings.HasSuffix(key, LegacySidecarSuffix):
			if fi, err := os.Stat(strings.TrimSuffix(p, LegacySidecarSuffix)); err == nil && fi.Mode().IsRegular() {
				if b, err := os.ReadFile(p); err == nil && parseLegacy(string(b), strings.TrimSuffix(d.Name(), LegacySidecarSuffix)) != "" {
					m.Kept++ // a sidecar's form, not proven ferry's
				}
			}
		}
		return nil
	})
	if err != nil {
		return m, fmt.Errorf("fs target %s: %w", s.root, err)
	}
	if err := s.writeAtomic(marker, []byte(Layout+"\n"), false); err != nil {
		return m, err
	}
	return m, nil
}

// adopt moves the old sidecar at old to SumsDir/key unless one is there
// (then the old one goes): a hard link that fails on an existing name, so
// that a sidecar a put wrote meanwhile is never replaced by an older one.
func (s *Sink) adopt(old, key, sum string) (bool, error) {
	dst := s.sumPath(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, err
	}
	// The new layout's line names the object by its key; written afresh
	// (create-only) rather than linked, since the old line names the base.
	err := s.writeAtomic(dst, []byte(sidecarLine(sum, key)), true)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return false, err
	}
	if err := os.Remove(old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// legacyTemp reports whether name is one of layout 1's temporary files:
// ".ferry-tmp-" and the digits os.CreateTemp puts for its "*".
func legacyTemp(name string) bool {
	rest, ok := strings.CutPrefix(name, TempPrefix)
	return ok && rest != "" && strings.Trim(rest, "0123456789") == ""
}
