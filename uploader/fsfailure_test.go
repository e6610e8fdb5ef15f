package uploader

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/internal/testtmp"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/fssink"
	"github.com/ferry-data/ferry/uploader/sink/gate"
	"github.com/ferry-data/ferry/uploader/sink/retry"
)

// A destination the fs target cannot hold (a file where a folder is
// needed, a name too long for its filesystem) fails that file for good,
// with the reason; the other files land and the target's breaker stays
// closed.
func TestFSBadDestinationFailsOnlyThatFile(t *testing.T) {
	e := newEnv(t)
	root := testtmp.Dir(t)
	fsk, err := fssink.New(root)
	if err != nil {
		t.Fatal(err)
	}
	// "blocked" is a file on the target where the source needs a folder.
	if err := os.WriteFile(filepath.Join(root, "blocked"), []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A breaker that would open at the first target-level failure.
	e.u, err = New(withTargets(Options{Journal: e.j, Workers: 2, ChunkSize: testChunk}, map[string]sink.Sink{"t": fsk},
		retry.Policy{Attempts: 3, InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond},
		gate.Policy{FailureThreshold: 1, OpenTimeout: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	// The source's filesystem takes no 300-byte name either: these keys
	// are journaled for short source names (as a key prefix or a
	// case-preserving source could make them).
	long := strings.Repeat("n", 300)
	e.add("blocked/inside", []byte("needs a folder"))
	e.addAs("short", long, []byte("name too long"))
	e.addAs("bigshort", "big/"+long, randBytes(testChunk*2+7, 1)) // multipart, staged then renamed
	for i := range 5 {
		e.add(filepath.ToSlash(filepath.Join("ok", string(rune('a'+i)))), []byte{byte(i)})
	}
	e.drain()
	for _, rel := range []string{"blocked/inside", "short", "bigshort"} {
		r := e.row(rel)
		if r.State != journal.Failed || r.ErrorClass != ClassPermanent {
			t.Errorf("%.20s…: %s class %q, want failed permanent", rel, r.State, r.ErrorClass)
		}
		if !strings.Contains(r.Error, "not a directory") && !strings.Contains(r.Error, "too long") {
			t.Errorf("%.20s…: reason %q does not say why", rel, r.Error)
		}
	}
	for i := range 5 {
		rel := "ok/" + string(rune('a'+i))
		if r := e.row(rel); r.State != journal.Uploaded {
			t.Errorf("%s: %s, want uploaded", rel, r.State)
		}
		if b, err := os.ReadFile(filepath.Join(root, "ok", string(rune('a'+i)))); err != nil || len(b) != 1 || b[0] != byte(i) {
			t.Errorf("%s on the target: %v %v", rel, b, err)
		}
	}
	if g := e.u.o.Targets["t"].Gate(); g.Open() {
		t.Fatalf("breaker %s after per-file failures", g.State())
	}
}

// addAs writes a file and journals it as settled under key.
func (e *env) addAs(rel, key string, data []byte) {
	e.t.Helper()
	p := filepath.Join(e.watch, filepath.FromSlash(rel))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.record(rel, key)
}

// record journals the file at rel, as it is, as settled under key.
func (e *env) record(rel, key string) {
	e.t.Helper()
	p := filepath.Join(e.watch, filepath.FromSlash(rel))
	st, err := srcfile.Lstat(p)
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = e.j.RecordSettled(context.Background(), journal.Settled{Watch: e.watch, RelPath: rel, Target: "t", Key: key,
		BatchID: BatchID(rel), Version: journal.Version{Size: st.Size, MtimeNS: st.ModTime.UnixNano(), FileID: st.ID.String()}, Signal: "quiet"})
	if err != nil {
		e.t.Fatal(err)
	}
}
