package fssink_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/testtmp"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/fssink"
)

func digest(b []byte) sink.Digest { return sink.Digest(sha256.Sum256(b)) }

func hexOf(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func write(t *testing.T, root, rel, data string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Issue 11 item 7: a source file X.sha256 beside X is an object like any
// other: both land intact, each with its own hash; ferry's sidecars are
// under _ferry/fs/sha256/, as sha256sum writes them (naming the key).
func TestSidecarNameIsAnObject(t *testing.T) {
	ctx := context.Background()
	root := testtmp.Dir(t)
	s, err := fssink.New(root)
	if err != nil {
		t.Fatal(err)
	}
	x, xs := []byte("the data\n"), []byte("a source's own checksum file\n")
	for _, o := range []struct {
		key  string
		body []byte
	}{{"run/X", x}, {"run/X.sha256", xs}} {
		if err := s.Put(ctx, o.key, o.body, digest(o.body), true); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t, root, "run/X"); got != string(x) {
		t.Errorf("X holds %q", got)
	}
	if got := read(t, root, "run/X.sha256"); got != string(xs) {
		t.Errorf("X.sha256 holds %q, want the source's bytes", got)
	}
	for key, body := range map[string][]byte{"run/X": x, "run/X.sha256": xs} {
		info, err := s.Stat(ctx, key)
		if err != nil || info.SHA256 != hexOf(body) || info.Size != int64(len(body)) {
			t.Errorf("Stat(%s) = %+v, %v; want the hash of its bytes", key, info, err)
		}
		if got, want := read(t, root, fssink.SumsDir+"/"+key), hexOf(body)+"  "+key+"\n"; got != want {
			t.Errorf("sidecar of %s: %q, want %q", key, got, want)
		}
	}
	keys, err := s.List(ctx, "")
	if err != nil || !slices.Equal(keys, []string{"run/X", "run/X.sha256"}) {
		t.Errorf("List = %q, %v; want both objects and none of ferry's files", keys, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "run")); len(ents) != 2 {
		t.Errorf("the object folder holds %d entries, want the 2 objects only", len(ents))
	}
	// ferry's own folders take no object, in any letter case.
	for _, key := range []string{"_ferry/fs/sha256/run/X", "_FERRY/FS/x", ".ferry-uploads/x"} {
		err := s.Put(ctx, key, x, digest(x), false)
		if !sink.IsPermanent(err) {
			t.Errorf("Put(%s) = %v, want a permanent refusal", key, err)
		}
	}
	// A checkpoint's key under _ferry/ (outside _ferry/fs/) is ferry's to write.
	if err := s.Put(ctx, "_ferry/checkpoints/h/1.json", x, digest(x), true); err != nil {
		t.Errorf("checkpoint: %v", err)
	}
}

// Issue 11 item 11: the temporary file a kill leaves during a put is in this
// host's folder under _ferry/fs/tmp/, and SweepTemp removes it, nothing else.
func TestSweepTemp(t *testing.T) {
	root := testtmp.Dir(t)
	s, err := fssink.New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), "a", []byte("a"), digest([]byte("a")), false); err != nil {
		t.Fatal(err)
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "_ferry", "fs", "tmp", "*"))
	if len(dirs) != 1 {
		t.Fatalf("host folders of temporary files: %q", dirs)
	}
	left := filepath.Join(dirs[0], fssink.TempPrefix+"12345")
	os.WriteFile(left, []byte("half"), 0o600)
	os.WriteFile(filepath.Join(dirs[0], "not-ours"), []byte("x"), 0o600)
	write(t, root, "b/"+fssink.TempPrefix+"99", "a source's file by that name")
	n, err := s.SweepTemp()
	if err != nil || n != 1 {
		t.Fatalf("SweepTemp = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the leftover is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dirs[0], "not-ours")); err != nil {
		t.Errorf("a file not named as ferry's temporary files was removed: %v", err)
	}
	if read(t, root, "a") != "a" || read(t, root, "b/"+fssink.TempPrefix+"99") != "a source's file by that name" {
		t.Error("objects were touched")
	}
}

// ledger is the journal's knowledge for Migrate, as a table.
type ledger struct {
	sent    [][2]string
	sources map[string]bool
}

func (l ledger) Sent(ctx context.Context, fn func(key, sha256 string) error) error {
	for _, kv := range l.sent {
		if err := fn(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

func (l ledger) SourceKeys(context.Context) (map[string]bool, error) { return l.sources, nil }

// Issue 11 item 7: an archive of layout 1 (KEY.sha256 beside KEY,
// .ferry-tmp-N beside the objects) is migrated: what ferry can prove it
// wrote moves under _ferry/fs/sha256/ or goes; a source's files stay.
func TestMigrateLayout1(t *testing.T) {
	ctx := context.Background()
	root := testtmp.Dir(t)
	old := func(key, body string) string { return hexOf([]byte(body)) + "  " + filepath.Base(key) + "\n" }
	write(t, root, "p/a.raw", "A")
	write(t, root, "p/a.raw.sha256", old("a.raw", "A")) // ferry's: sent A under p/a.raw
	write(t, root, "p/b.raw", "B")
	write(t, root, "p/b.raw.sha256", old("b.raw", "B")) // a sidecar's form, but the journal knows of no such upload
	write(t, root, "p/c.raw", "C")
	write(t, root, "p/c.raw.sha256", old("c.raw", "C")) // the journal sent C, but c.raw.sha256 is a source's name
	write(t, root, "p/d.raw", "D2")
	write(t, root, "p/d.raw.sha256", old("d.raw", "D1")) // an older content's line: not what is there
	write(t, root, "p/.ferry-tmp-4711", "half a put")
	write(t, root, "p/.ferry-tmp-42", "a source named so")
	write(t, root, "p/.ferry-tmp-x", "not CreateTemp's name")
	l := ledger{
		sent: [][2]string{{"p/a.raw", hexOf([]byte("A"))}, {"p/c.raw", hexOf([]byte("C"))}, {"p/c.raw.sha256", hexOf([]byte("x"))},
			{"p/d.raw", hexOf([]byte("D2"))}},
		sources: map[string]bool{"p/c.raw.sha256": true, "p/.ferry-tmp-42": true},
	}
	s, err := fssink.New(root)
	if err != nil {
		t.Fatal(err)
	}
	// Before the migration the old sidecar is read where no new one is.
	if info, err := s.Stat(ctx, "p/a.raw"); err != nil || info.SHA256 != hexOf([]byte("A")) {
		t.Fatalf("Stat of an old-layout object: %+v, %v", info, err)
	}
	m, err := s.Migrate(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if m.Done || m.Moved != 1 || m.Temps != 1 || m.Kept != 3 {
		t.Errorf("Migrate = %+v; want 1 moved, 1 temporary file removed, 3 kept", m)
	}
	if got, want := read(t, root, fssink.SumsDir+"/p/a.raw"), hexOf([]byte("A"))+"  p/a.raw\n"; got != want {
		t.Errorf("moved sidecar: %q, want %q", got, want)
	}
	for _, gone := range []string{"p/a.raw.sha256", "p/.ferry-tmp-4711"} {
		if _, err := os.Stat(filepath.Join(root, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there", gone)
		}
	}
	for _, kept := range []string{"p/b.raw.sha256", "p/c.raw.sha256", "p/d.raw.sha256", "p/.ferry-tmp-42", "p/.ferry-tmp-x"} {
		if _, err := os.Stat(filepath.Join(root, kept)); err != nil {
			t.Errorf("%s was touched: %v", kept, err)
		}
	}
	if got := strings.TrimSpace(read(t, root, fssink.LayoutFile)); got != fssink.Layout {
		t.Errorf("layout file: %q", got)
	}
	// Done once: a second call only reads the layout file.
	write(t, root, "p/.ferry-tmp-5", "x")
	if m, err := s.Migrate(ctx, l); err != nil || !m.Done || m.Temps != 0 {
		t.Errorf("second Migrate = %+v, %v; want done at once", m, err)
	}
}

// A put made while the migration runs wins: the old sidecar never replaces
// a newer one.
func TestMigrateKeepsNewerSidecar(t *testing.T) {
	ctx := context.Background()
	root := testtmp.Dir(t)
	s, err := fssink.New(root)
	if err != nil {
		t.Fatal(err)
	}
	v2 := []byte("version 2")
	if err := s.Put(ctx, "k", v2, digest(v2), false); err != nil {
		t.Fatal(err)
	}
	write(t, root, "k.sha256", hexOf([]byte("version 1"))+"  k\n")
	l := ledger{sent: [][2]string{{"k", hexOf([]byte("version 1"))}, {"k", hexOf(v2)}}}
	if _, err := s.Migrate(ctx, l); err != nil {
		t.Fatal(err)
	}
	if info, err := s.Stat(ctx, "k"); err != nil || info.SHA256 != hexOf(v2) {
		t.Errorf("Stat after the migration: %+v, %v; want version 2's hash", info, err)
	}
	if _, err := os.Stat(filepath.Join(root, "k.sha256")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old sidecar is still there: %v", err)
	}
}
